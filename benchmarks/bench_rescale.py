"""Output-stage rescaling int32 -> int8: shift-rescale and multiplier-rescale vs a plain copy.

    python benchmarks/bench_rescale.py [--repeats 7] [--values-mi 64]

On 64 Mi int32 accumulators (Gaussian, sd 20000: typical int8 conv sums), per tensor, into a
preallocated int8 output:
  - shift:      clamp((acc + 2^(k-1)) >> k, -127, 127) with k = 8 (single-shift networks),
  - multiplier: clamp((acc * m + 2^(s-1)) >> s, -127, 127) with (m, s) encoding 1/300,
  - copy:       np.copyto(y, acc) into a preallocated int32 array: the memory-bandwidth reference.
Each thread count runs in its own process (OMP_NUM_THREADS is read at start-up); the copy is
single-threaded in both. Runs are interleaved, medians are reported; both outputs are checked
against numpy's int64 formula first. GB/s counts the bytes of acc read once, so "% of copy" is
copy time / kernel time. Target (1 thread): shift and multiplier >= 50% of the copy's GB/s.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved_medians, per_thread_count_rows  # noqa: E402

from aidge_ptq_lite import _core, simd_level  # noqa: E402

SHIFT = 8
FACTOR = 1.0 / 300
LO, HI = -127, 127


def encode_multiplier(f: float) -> tuple[int, int]:
    """Q31 multiplier m in [2^30, 2^31) and shift s with f = m / 2^s (as the library's encoder)."""
    frac, e = math.frexp(f)
    m = round(frac * 2**31)
    if m == 2**31:
        m, e = m >> 1, e + 1
    return m, 31 - e


def expected(acc: np.ndarray, m: int, s: int) -> np.ndarray:
    v = acc.astype(np.int64) * m
    if s:
        v = (v + (1 << (s - 1))) >> s
    return np.clip(v, LO, HI).astype(np.int8)


def measure(n: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    acc = np.clip(rng.normal(0.0, 20000.0, n), -2**31, 2**31 - 1).astype(np.int32)
    y = np.empty(n, np.int8)
    copy = np.empty_like(acc)
    m, s = encode_multiplier(FACTOR)
    check = acc[: 1 << 20]
    if not np.array_equal(_core._shift_rescale(check, SHIFT, LO, HI, False), expected(check, 1, SHIFT)):
        raise SystemExit("shift-rescale differs from numpy's formula")
    if not np.array_equal(_core._multiplier_rescale(check, m, s, LO, HI, False), expected(check, m, s)):
        raise SystemExit("multiplier-rescale differs from numpy's formula")
    t = interleaved_medians({
        "shift": lambda: _core._shift_rescale(acc, SHIFT, LO, HI, False, out=y),
        "multiplier": lambda: _core._multiplier_rescale(acc, m, s, LO, HI, False, out=y),
        "copy": lambda: np.copyto(copy, acc),
    }, repeats=repeats, warmup=1)
    return {"threads": int(os.environ.get("OMP_NUM_THREADS", "0")), "simd": simd_level(),
            "bytes": acc.nbytes, **t}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--values-mi", type=int, default=64, help="accumulators, in Mi (2^20)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.repeats < 5:
        p.error("--repeats must be at least 5")
    n = args.values_mi << 20
    if args.worker:
        print(json.dumps(measure(n, args.repeats)), flush=True)
        return

    rows = per_thread_count_rows(__file__, ["--repeats", args.repeats, "--values-mi", args.values_mi])

    m, s = encode_multiplier(FACTOR)
    print(f"{args.values_mi} Mi int32 accumulators -> int8, per tensor, medians of {args.repeats} "
          f"interleaved runs")
    print(f"SIMD level: {rows[0]['simd']}; shift k = {SHIFT}; multiplier (m, s) = ({m}, {s})")
    print(f"{'kernel':<11} {'threads':>7} {'ms':>8} {'GB/s':>7} {'% of copy':>10}")
    for r in rows:
        gb = r["bytes"] / 1e9
        for kernel in ("shift", "multiplier", "copy"):
            t = r[kernel]
            print(f"{kernel:<11} {r['threads']:>7} {t * 1e3:>8.1f} {gb / t:>7.2f} "
                  f"{100 * r['copy'] / t:>9.0f}%")


if __name__ == "__main__":
    main()
