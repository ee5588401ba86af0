"""Shared helpers of the benchmarks: side-by-side timing with medians, onnxruntime sessions."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
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


def interleaved_times(fns: dict, repeats: int = 7, warmup: int = 2) -> dict:
    """Wall times of each function over `repeats` rounds, one run of each per round, so machine
    noise hits all alike (round i of every function ran at about the same time)."""
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
    return times


def interleaved_medians(fns: dict, repeats: int = 7, warmup: int = 2) -> dict:
    """Median time of each function, the runs interleaved (interleaved_times)."""
    return {name: statistics.median(t) for name, t in interleaved_times(fns, repeats, warmup).items()}


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


def ort_quantize_static(path: str, calib: np.ndarray, out: str, activation_unsigned: bool = False,
                        method: str = "MinMax") -> str:
    """onnxruntime's quantize_static to a QDQ model at `out` (int8 weights; uint8 or int8
    activations), one calibration input per batch as its examples do. Returns `out`."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(path, out, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8 if activation_unsigned else QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=getattr(CalibrationMethod, method))
    return out


def resnet18_path(batch_norm: bool = True) -> str:
    """The ImageNet-shape ResNet-18 (zoo.make_resnet18, seed 0), built once into the temp dir.
    batch_norm=False folds BatchNormalization into the convs, as torch.onnx.export writes it."""
    from aidge_ptq_lite import zoo
    name = "apl_resnet18.onnx" if batch_norm else "apl_resnet18_folded.onnx"
    path = os.path.join(tempfile.gettempdir(), name)
    if not os.path.exists(path):
        zoo.make_resnet18(path, seed=0, batch_norm=batch_norm)
    return path


def per_thread_count_rows(script: str, args: list) -> list:
    """Runs `script --worker *args` once with 1 and once with 2 OpenMP threads (the runtime reads
    OMP_NUM_THREADS at start-up, so each needs its own process); the JSON lines it prints."""
    rows = []
    for threads in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, os.path.abspath(script), "--worker", *map(str, args)],
                             env=env, check=True, capture_output=True, text=True).stdout
        rows += [json.loads(line) for line in out.splitlines()]
    return rows


def rng_images(n: int, shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)
