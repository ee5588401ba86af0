"""Shared helpers of the benchmarks: side-by-side timing with medians, onnxruntime sessions."""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

# The OpenMP runtime reads this when aidge_ptq_lite loads, so it is set here, before the benchmarks
# import the package (2 threads: the machine these figures are for, and onnxruntime's setting).
os.environ.setdefault("OMP_NUM_THREADS", "2")

# onnxruntime's pool threads spin for a while after each run; whatever runs next would share the
# cores with them. A pause before each timed run lets every runtime's threads go idle first.
SETTLE_SECONDS = 0.2


def median_seconds(fn, repeats: int = 7, warmup: int = 2) -> float:
    """Median wall time of fn() over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_medians(fns: dict, repeats: int = 7, warmup: int = 2) -> dict:
    """Median time of each function, the runs interleaved so machine noise hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(SETTLE_SECONDS)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def ort_session(model, threads: int = 2):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    data = model if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    sess = ort.InferenceSession(str(data) if isinstance(data, os.PathLike) else data, opts,
                                providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def rng_images(n: int, shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)
