"""Histogram of |x|: our Histogram.add vs np.histogram, and vs a plain copy (memory bandwidth).

    python benchmarks/bench_histogram.py [--repeats 7] [--values-mi 64]

On 64 Mi float32 values (Gaussian, and ReLU-like: 70% zeros, the rest half-normal, so most of the
mass is in bin 0), 2048 bins:
  - ours:  Histogram.add(x) on a histogram whose range already covers x (the steady state of
           calibration; the first batch also reads x once more to find its range),
  - numpy: np.histogram(np.abs(x), bins=2048, range=(0, range)),
  - copy:  np.copyto(y, x) into a preallocated array: the memory-bandwidth reference.
Each thread count runs in its own process (OMP_NUM_THREADS is read at start-up); numpy is
single-threaded in both. Runs are interleaved, medians are reported; "per round" is the range
of numpy / ours within single rounds (one run of each, back to back), which shows how much the
machine's other load moved the ratio during the run. The counts are checked equal to numpy's.
GB/s counts the bytes of x once. Targets (1 thread): ours >= 20x numpy and >= 30% of the copy's
GB/s.

Ours is bound by the counter increments, about one store per value (benchmarks/cpp/histogram_floor
compares the kernel with a bare loop of those increments), which other tenants of a shared
machine slow more than numpy's arithmetic: on a loaded machine, read the per-round range too.
"""
import argparse
import json
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved_times, per_thread_count_rows  # noqa: E402

from aidge_ptq_lite import Histogram, simd_level  # noqa: E402

BINS = 2048


def make_data(kind: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    if kind == "relu-like":
        np.abs(x, out=x)
        x[rng.random(n) < 0.7] = 0.0
    return x


def measure(kind: str, n: int, repeats: int) -> dict:
    x = make_data(kind, n)
    copy = np.empty_like(x)
    hist = Histogram(BINS)
    hist.add(x)  # sets the range: the timed adds are single-pass
    edges = (0.0, float(hist.range))
    expected = np.histogram(np.abs(x), bins=BINS, range=edges)[0]
    if not np.array_equal(hist.counts, expected.astype(np.uint64)):
        raise SystemExit(f"{kind}: counts differ from np.histogram")
    times = interleaved_times({
        "ours": lambda: hist.add(x),
        "numpy": lambda: np.histogram(np.abs(x), bins=BINS, range=edges),
        "copy": lambda: np.copyto(copy, x),
    }, repeats=repeats, warmup=1)
    # numpy / ours within each round: how far the machine's load moved the ratio during the run.
    round_ratios = [n / o for n, o in zip(times["numpy"], times["ours"])]
    return {"data": kind, "threads": int(os.environ.get("OMP_NUM_THREADS", "0")), "simd": simd_level(),
            "bytes": x.nbytes, "ratio_min": min(round_ratios), "ratio_max": max(round_ratios),
            **{name: statistics.median(t) for name, t in times.items()}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--values-mi", type=int, default=64, help="values per array, in Mi (2^20)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    n = args.values_mi << 20
    if args.worker:
        for kind in ("gaussian", "relu-like"):
            print(json.dumps(measure(kind, n, args.repeats)), flush=True)
        return

    rows = per_thread_count_rows(__file__, ["--repeats", args.repeats, "--values-mi", args.values_mi])

    print(f"{args.values_mi} Mi float32 values, {BINS} bins, SIMD level {rows[0]['simd']}, "
          f"medians of {args.repeats} interleaved runs")
    print(f"{'data':<10} {'threads':>7} {'ours ms':>8} {'numpy ms':>9} {'copy ms':>8} "
          f"{'numpy/ours':>11} {'per round':>12} {'ours GB/s':>10} {'copy GB/s':>10} {'% of copy':>10}")
    for r in rows:
        gb = r["bytes"] / 1e9
        spread = f"{r['ratio_min']:.1f}-{r['ratio_max']:.1f}x"
        print(f"{r['data']:<10} {r['threads']:>7} {r['ours'] * 1e3:>8.1f} {r['numpy'] * 1e3:>9.1f} "
              f"{r['copy'] * 1e3:>8.1f} {r['numpy'] / r['ours']:>10.1f}x {spread:>12} {gb / r['ours']:>10.2f} "
              f"{gb / r['copy']:>10.2f} {100 * r['copy'] / r['ours']:>9.0f}%")


if __name__ == "__main__":
    main()
