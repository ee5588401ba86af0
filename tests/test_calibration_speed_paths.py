"""The fast calibration paths (issue 17) give exactly what the plain loops gave.

RangeCollector takes, per batch, max |x| and the min in one SIMD pass (max_abs_min_f32, threaded)
and the per-channel sums of every affine layer's input with several addition chains at once
(threaded). The oracles here are NumPy computations of the old definitions, on the float
network's intermediate outputs, batch by batch as the collector sees them:
- the min is std::min_element's: the smallest value, and when that is a zero, the first zero
  with its sign (-0 and +0 compare equal); across batches the earlier one stays unless a later
  one is smaller;
- each channel sum is the double sum of each sample's row in index order (np.cumsum is
  sequential), added into the channel's total sample by sample, then divided by the count.
Every comparison is bitwise (float32 bytes, so the sign of a zero counts).
"""
import numpy as np
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import _core, datasets, zoo
from aidge_ptq_lite.ptq import iter_batches

LEVELS = ("scalar", "avx2", "avx512")


def _bits(v) -> bytes:
    return np.float32(v).tobytes()


def _first_min(x: np.ndarray) -> np.float32:
    flat = x.ravel()
    v = flat.min()
    if v == 0:
        v = flat[np.flatnonzero(flat == 0)[0]]
    return np.float32(v)


def _prepared(model: str, **options):
    g = apl.load_onnx(zoo.model_path(model))
    _core._prepare_for_calibration(g, _core.QuantizeOptions(**options))
    return g


def _levels():
    order = ["scalar", "avx2", "avx512", "amx"]
    top = order.index(apl.detected_simd_level())
    return [lv for lv in LEVELS if order.index(lv) <= top]


@pytest.fixture(scope="module")
def calib():
    # 130 images: two batches of 64 and one of 2; at 64 the larger tensors take the threaded paths.
    return datasets.load_calibration_set(130)


def _oracle(g, calib):
    """(max |x| and first-min per observed node, channel means per affine input) from NumPy."""
    affine_inputs = sorted({n.inputs[0] for n in g.nodes() if n.op in ("Conv", "Gemm")})
    names = sorted({n.name for n in g.nodes()})
    stats, acc, count = {}, {}, {}
    for batch in iter_batches(calib):
        outs = g.intermediate_outputs(batch, names)
        for name, x in outs.items():
            m, low = np.float32(np.abs(x).max()), _first_min(x)
            if name not in stats:
                stats[name] = (m, low)
            else:
                pm, plow = stats[name]
                stats[name] = (max(pm, m), low if low < plow else plow)
        for name in affine_inputs:
            x = outs[name]
            n, c = x.shape[0], x.shape[1]
            rows = x.reshape(n, c, -1).astype(np.float64)
            sums = np.cumsum(rows, axis=2)[:, :, -1]  # sequential, in index order
            a = acc.setdefault(name, np.zeros(c))
            for b in range(n):
                a += sums[b]
            count[name] = count.get(name, 0) + rows.shape[0] * rows.shape[2]
    means = {name: (acc[name] / float(count[name])).astype(np.float32) for name in acc}
    return stats, means


def _chain(g, name):
    """The node and the single-consumer chain below it: where its range may be measured."""
    chain = [name]
    while len(chain) < 6:
        users = g.consumers(chain[-1])
        if not users:
            break
        chain.append(users[0])
    return chain


@pytest.mark.parametrize("model", ["resnet", "mobilenet", "branchnet", "lenet"])
@pytest.mark.parametrize("clipping_mode", ["MAX", "MSE", "KL"])
def test_ranges_mins_and_channel_means_match_numpy(model, clipping_mode, calib):
    g = _prepared(model, clipping_mode=clipping_mode)
    previous = apl.simd_level()
    try:
        for level in _levels():
            apl.set_simd_level(level)  # the float kernels too: the oracle runs at the same level
            stats, means = _oracle(g, calib)
            rc = _core.RangeCollector(g, _core.QuantizeOptions(clipping_mode=clipping_mode))
            for batch in iter_batches(calib):
                rc.update(batch)
            ranges, mins = dict(rc.ranges), dict(rc._mins)
            assert ranges.keys() == mins.keys() and ranges
            for name, r in ranges.items():
                # Measured at the node or down its ReLU / MaxPool chain: exactly one candidate's
                # (max, min) pair, bit for bit.
                candidates = [(stats[c][0], stats[c][1]) for c in _chain(g, name) if c in stats]
                assert any(_bits(r) == _bits(m) and _bits(mins[name]) == _bits(low) for m, low in candidates), (
                    level, name, r, mins[name], candidates)
            got = rc._channel_means
            assert got.keys() == means.keys(), level
            for name, mean in means.items():
                assert np.asarray(got[name], dtype=np.float32).tobytes() == mean.tobytes(), (level, name)
    finally:
        apl.set_simd_level(previous)


@pytest.mark.parametrize("first_zero", [-0.0, 0.0])
@pytest.mark.parametrize("nb_bits", [8, 4])
def test_min_is_the_first_zero_with_its_sign(first_zero, nb_bits):
    """All values >= 0: the min is the first zero, its sign kept, also when it lies in the second
    thread's half of a large batch and the other sign comes later. At 8 bits the input (read by
    a conv) is summed per channel and its max / min taken in the same pass; at 4 bits it is not
    summed and max_abs_min_f32 alone reads it."""
    g = _prepared("resnet", nb_bits=nb_bits)
    shape = (512, *calib_shape())
    x = np.full(shape, 0.5, dtype=np.float32)
    flat = x.reshape(-1)
    assert flat.size >= 4 * 65536  # the threaded path
    other = np.float32(0.0) if np.signbit(first_zero) else np.float32(-0.0)
    # The first zero in the first thread's blocks; zeros of the other sign after it in the same
    # SIMD lane (16 and 32 values on), in an earlier lane and in the other thread's blocks.
    flat[100_003] = first_zero
    for i in (100_019, 100_035, 100_017, 300_001):
        flat[i] = other
    flat[7] = 2.0
    previous = apl.simd_level()
    try:
        for level in _levels():
            apl.set_simd_level(level)
            rc = _core.RangeCollector(g, _core.QuantizeOptions(nb_bits=nb_bits))
            rc.update(x)
            assert bool(rc._channel_means) == (nb_bits == 8)
            name = g.nodes()[0].name
            assert _bits(rc._mins[name]) == _bits(np.float32(first_zero)), level
            assert rc.ranges[name] == 2.0
            # A negative value after the zeros is the min, whatever the zeros' signs.
            y = x.copy()
            y.reshape(-1)[400_000] = -0.25
            rc = _core.RangeCollector(g, _core.QuantizeOptions(nb_bits=nb_bits))
            rc.update(y)
            assert rc._mins[name] == -0.25, level
    finally:
        apl.set_simd_level(previous)


def calib_shape():
    return datasets.load_calibration_set(1).shape[1:]


def test_non_finite_still_refused():
    g = _prepared("resnet")
    x = datasets.load_calibration_set(64).copy()
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y.reshape(-1)[12345] = bad
        rc = _core.RangeCollector(g, _core.QuantizeOptions())
        with pytest.raises(ValueError, match="NaN or Inf"):
            rc.update(y)


@pytest.mark.parametrize("model", ["resnet", "mobilenet", "lenet"])
@pytest.mark.parametrize("nb_bits,channel_wise", [(8, False), (4, True)])
def test_weight_codes_are_nearbyint_of_the_normalized_weights(model, nb_bits, channel_wise, calib):
    """The inline round-half-to-even of quantize_normalized / cast_to_integer against NumPy's rint
    (ties to even, -0 kept) of the normalized weights times 2^(n-1) - 1, and the normalization
    (max |W| per tensor or channel through the SIMD max) against NumPy's division."""
    g = apl.load_onnx(zoo.model_path(model))
    prepared = g.clone()
    _core._prepare_for_calibration(prepared, _core.QuantizeOptions(nb_bits=nb_bits, channel_wise=channel_wise))
    apl.quantize_network(g, calibration_set=calib[:64], nb_bits=nb_bits, channel_wise=channel_wise)
    q = 2 ** (nb_bits - 1) - 1
    raw = {n.name: n for n in apl.load_onnx(zoo.model_path(model)).nodes()}
    checked = 0
    for n in prepared.nodes():
        if n.op not in ("Conv", "Gemm"):
            continue
        normalized = np.asarray(n.params[0], dtype=np.float32)
        codes = np.asarray(g.node(n.name).params[0])
        expected = np.rint(normalized.astype(np.float64) * q)
        assert np.array_equal(codes.astype(np.float64), expected), n.name
        if n.name in raw and raw[n.name].op == n.op and np.asarray(raw[n.name].params[0]).shape == normalized.shape:
            w = np.asarray(raw[n.name].params[0], dtype=np.float32)
            axes = tuple(range(1, w.ndim)) if channel_wise or w[0].size == 1 else None
            r = np.abs(w).max(axis=axes, keepdims=axes is not None).astype(np.float32)
            r = np.where(r == 0, np.float32(1), r)
            assert (w / r).astype(np.float32).tobytes() == normalized.tobytes(), n.name
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("nb_bits,no_quant,expected", [(8, False, True), (12, False, True), (4, False, False),
                                                        (8, True, False)])
def test_channel_sums_only_where_bias_correction_reads_them(nb_bits, no_quant, expected, calib):
    """quantize_network's collector sums the affine inputs per channel only when the biases will
    be corrected (rounding, 8 bits and more); the explicit constructor keeps them."""
    g = _prepared("resnet", nb_bits=nb_bits, no_quant=no_quant)
    rc = _core.RangeCollector(g, _core.QuantizeOptions(nb_bits=nb_bits, no_quant=no_quant))
    rc.update(calib[:64])
    assert bool(rc._channel_means) == expected
    rc = _core.RangeCollector(g, 0, "MSE")
    rc.update(calib[:64])
    assert rc._channel_means


@pytest.mark.parametrize("clipping_mode", ["MSE", "AA", "KL"])
def test_adjust_ranges_threaded_equals_one_node_at_a_time(clipping_mode, calib):
    """adjust_ranges runs the nodes' searches on the threads: the result equals each node's own
    search (compute_me_clipping / compute_kl_clipping) applied in turn."""
    g = _prepared("resnet", clipping_mode=clipping_mode)
    rc = _core.RangeCollector(g, _core.QuantizeOptions(clipping_mode=clipping_mode))
    for batch in iter_batches(calib):
        rc.update(batch)
    ranges, histograms = dict(rc.ranges), dict(rc.histograms)
    adjusted = _core.adjust_ranges(g, clipping_mode, ranges, histograms, 8, False)
    expected = dict(ranges)
    for name, h in histograms.items():
        if h.total == 0 or ranges[name] == 0:
            continue
        clip = (_core.compute_kl_clipping(h, 8, False) if clipping_mode == "KL"
                else _core.compute_me_clipping(h, 8, 2 if clipping_mode == "MSE" else 1, False))
        expected[name] = min(ranges[name], clip)
    assert {k: _bits(v) for k, v in adjusted.items()} == {k: _bits(v) for k, v in expected.items()}
    assert any(adjusted[k] < ranges[k] for k in histograms)
