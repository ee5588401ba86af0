"""Histogram and clipping searches against independent numpy oracles.

- Binning: np.histogram of |x| with the same (power-of-two) range gives the same counts.
- Streaming/merging: histograms of the parts, merged or added in turn, equal the whole's.
- MSE / AA clipping: the clip found from the histogram is within 2% of the clip a brute-force
  search finds on the raw samples (quantize-dequantize each sample at candidate clips, mean
  |x - q(x)|^p), for Gaussian, Laplace and Gaussian-with-outliers samples, at 8, 6 and 4 bits,
  signed and unsigned (ReLU outputs).
- KL clipping: below the max when outliers exist, near the max for uniform data.
"""
import numpy as np
import pytest

from aidge_ptq_lite import Histogram, compute_kl_clipping, compute_me_clipping

SAMPLES = 100_000
DISTRIBUTIONS = ("gaussian", "laplace", "outliers")


def samples(kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.standard_normal(SAMPLES).astype(np.float32)
    if kind == "laplace":
        return rng.laplace(size=SAMPLES).astype(np.float32)
    x = rng.standard_normal(SAMPLES).astype(np.float32)  # 0.1% of the values 20 times larger
    x[rng.choice(SAMPLES, SAMPLES // 1000, replace=False)] *= 20
    return x


def histogram_of(x: np.ndarray, bins: int = 2048) -> Histogram:
    h = Histogram(bins)
    h.add(x)
    return h


def levels(nb_bits: int, is_unsigned: bool) -> int:
    return 2**nb_bits - 1 if is_unsigned else 2 ** (nb_bits - 1) - 1


def mean_error(x: np.ndarray, clip: float, nb_levels: int, lowest_code: int, exponent: int) -> float:
    step = clip / nb_levels
    q = np.clip(np.round(x / step), lowest_code, nb_levels) * step
    return float(np.mean(np.abs(x - q) ** exponent))


def brute_force_clip(x: np.ndarray, nb_bits: int, is_unsigned: bool, exponent: int) -> float:
    """Best clip on a geometric grid over 3 decades below max |x|, then refined in 0.1% steps."""
    x = x.astype(np.float64)
    nb_levels = levels(nb_bits, is_unsigned)
    lowest = 0 if is_unsigned else -nb_levels

    def best(grid):
        return grid[np.argmin([mean_error(x, c, nb_levels, lowest, exponent) for c in grid])]

    coarse = best(np.geomspace(np.abs(x).max() / 1000, np.abs(x).max(), 150))
    return float(best(np.linspace(coarse * 0.95, coarse * 1.05, 101)))


# ---- Histogram -----------------------------------------------------------------------------------

def test_counts_match_numpy_histogram():
    x = samples("outliers")
    h = histogram_of(x)
    assert h.range == 2.0 ** (np.floor(np.log2(np.abs(x).max())) + 1)  # the power of two above the max
    expected, _ = np.histogram(np.abs(x), bins=2048, range=(0.0, h.range))
    assert h.counts.dtype == np.uint64
    np.testing.assert_array_equal(h.counts, expected)
    assert h.total == x.size and h.bins == 2048 and h.bin_width == h.range / 2048


@pytest.mark.parametrize("seed", range(5))
def test_merge_and_streaming_equal_the_whole(seed):
    rng = np.random.default_rng(seed)
    # Parts of different scales (so different ranges), one of them possibly empty.
    parts = [rng.standard_normal(rng.integers(0, 50_000)).astype(np.float32) * 2.0 ** rng.integers(-10, 10)
             for _ in range(4)]
    whole = histogram_of(np.concatenate(parts))
    merged, streamed = Histogram(), Histogram()
    for part in parts:
        merged.merge(histogram_of(part))
        streamed.add(part)
    for h in (merged, streamed):
        assert h.range == whole.range
        np.testing.assert_array_equal(h.counts, whole.counts)


def test_add_accepts_any_shape_and_float64():
    x = samples("gaussian").reshape(10, 100, 100)
    np.testing.assert_array_equal(histogram_of(x.astype(np.float64)).counts, histogram_of(x.ravel()).counts)


def test_counts_is_a_copy():
    h = histogram_of(samples("gaussian"))
    h.counts[:] = 0
    assert h.total == SAMPLES


# ---- MSE / AA clipping against the brute-force oracle ------------------------------------------

@pytest.mark.parametrize("is_unsigned", [False, True], ids=["signed", "unsigned"])
@pytest.mark.parametrize("nb_bits", [8, 6, 4])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_me_clipping_matches_brute_force(kind, nb_bits, is_unsigned):
    x = samples(kind)
    if is_unsigned:
        x = np.maximum(x, 0)  # ReLU output
    h = histogram_of(x)
    for exponent in (2, 1):
        clip = compute_me_clipping(h, nb_bits=nb_bits, exponent=exponent, is_unsigned=is_unsigned)
        oracle = brute_force_clip(x, nb_bits, is_unsigned, exponent)
        assert abs(clip - oracle) <= 0.02 * oracle, f"exponent {exponent}: {clip} vs brute force {oracle}"


def test_me_clipping_is_below_the_max_for_a_long_tail():
    x = samples("laplace")
    assert compute_me_clipping(histogram_of(x), nb_bits=4) < 0.6 * np.abs(x).max()


# ---- KL clipping -----------------------------------------------------------------------------------

def smooth(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """MXNet / onnxruntime smoothing: eps moved to the empty bins from the others."""
    zeros = p == 0
    return np.where(zeros, eps, p - eps * zeros.sum() / (p.size - zeros.sum()))


def kl_divergences(counts: np.ndarray, nb_levels: int) -> dict:
    """Entropy calibration written out as in MXNet's _get_optimal_threshold: kept bins -> KL(P||Q),
    for kept from nb_levels to the end of the data."""
    counts = counts.astype(np.float64)
    last = max(nb_levels, int(np.flatnonzero(counts)[-1]) + 1)
    divergences = {}
    for kept in range(nb_levels, last + 1):
        sliced = counts[:kept]
        p = sliced.copy()
        p[-1] += counts[kept:].sum()
        nonzero = p != 0
        starts = np.arange(nb_levels) * (kept // nb_levels)
        group_of_bin = np.minimum(np.arange(kept) // (kept // nb_levels), nb_levels - 1)
        q_total = np.add.reduceat(sliced, starts)[group_of_bin]
        q_nonzero = np.add.reduceat(nonzero.astype(np.float64), starts)[group_of_bin]
        q = np.where(nonzero, q_total / np.maximum(q_nonzero, 1), 0.0)
        if q.any():
            p, q = smooth(p), smooth(q)
            p, q = p / p.sum(), q / q.sum()
            divergences[kept] = float(np.sum(p * np.log(p / q)))
    return divergences


@pytest.mark.parametrize("kind,nb_bits,is_unsigned", [("gaussian", 8, False), ("laplace", 6, True),
                                                      ("outliers", 8, False), ("outliers", 4, True)])
def test_kl_clipping_matches_the_reference_algorithm(kind, nb_bits, is_unsigned):
    x = np.abs(samples(kind)) if is_unsigned else samples(kind)
    h = histogram_of(x)
    divergences = kl_divergences(h.counts, 2**nb_bits if is_unsigned else 2 ** (nb_bits - 1))
    best_kept = min(divergences, key=divergences.get)
    clip = compute_kl_clipping(h, nb_bits=nb_bits, is_unsigned=is_unsigned)
    assert clip == pytest.approx((best_kept + 0.5) * h.bin_width)


@pytest.mark.parametrize("is_unsigned", [False, True], ids=["signed", "unsigned"])
def test_kl_clips_outliers(is_unsigned):
    x = samples("outliers")
    if is_unsigned:
        x = np.abs(x)
    h = histogram_of(x)
    assert 0 < compute_kl_clipping(h, nb_bits=8, is_unsigned=is_unsigned) < 0.8 * np.abs(x).max()
    assert compute_kl_clipping(h, nb_bits=4, is_unsigned=is_unsigned) < 0.1 * np.abs(x).max()


@pytest.mark.parametrize("nb_bits", [8, 6, 4])
@pytest.mark.parametrize("top", [1.0, 0.7, 3.3])
def test_kl_keeps_uniform_data_nearly_whole(nb_bits, top):
    x = np.random.default_rng(1).uniform(-top, top, SAMPLES).astype(np.float32)
    clip = compute_kl_clipping(histogram_of(x), nb_bits=nb_bits)
    assert 0.9 * top <= clip <= 1.02 * top


def test_kl_with_fewer_bins_than_levels_returns_the_range():
    h = histogram_of(samples("gaussian"), bins=64)
    assert compute_kl_clipping(h, nb_bits=8) == h.range


# ---- Bad inputs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_raise_and_leave_the_histogram_unchanged(bad):
    h = histogram_of(samples("gaussian"))
    before = h.counts
    for scale in (0.1, 1e6):  # within the range, and beyond it
        with pytest.raises(ValueError, match="NaN or Inf"):
            h.add(np.array([scale, bad, 0.5], dtype=np.float32))
    np.testing.assert_array_equal(h.counts, before)
    with pytest.raises(ValueError):
        Histogram().add(np.array([bad], dtype=np.float32))


@pytest.mark.parametrize("bins", [0, 1, 3, 1000, -4])
def test_bins_must_be_a_power_of_two(bins):
    with pytest.raises(ValueError, match="power of two"):
        Histogram(bins)


@pytest.mark.parametrize("nb_bits", [0, 1, 17])
def test_nb_bits_out_of_range_raise(nb_bits):
    h = histogram_of(samples("gaussian"))
    with pytest.raises(ValueError, match="nb_bits"):
        compute_me_clipping(h, nb_bits=nb_bits)
    with pytest.raises(ValueError, match="nb_bits"):
        compute_kl_clipping(h, nb_bits=nb_bits)


def test_other_bad_arguments_raise():
    h = histogram_of(samples("gaussian"))
    with pytest.raises(ValueError, match="exponent"):
        compute_me_clipping(h, exponent=3)
    with pytest.raises(ValueError, match="empty"):
        compute_me_clipping(Histogram())
    with pytest.raises(ValueError, match="empty"):
        compute_kl_clipping(Histogram())
    with pytest.raises(ValueError, match="bin counts"):
        h.merge(Histogram(1024))
