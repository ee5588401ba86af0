"""Wall time of quantize_network per clipping mode, beside onnxruntime's quantize_static.

    python benchmarks/bench_quantize.py [--repeats 5] [--no-ort] [--stages [--modes MAX,KL]]

Models: the zoo resnet with 256 calibration images, ResNet-18 (ImageNet shape, BatchNormalization
folded into the convs as torch exports it) with 64 inputs.
Ours: the whole quantize_network (preparation, one streamed calibration pass, clipping search,
integer plan). The peer: onnxruntime.quantization.quantize_static writing a QDQ model with the
same calibration set, one input per batch as its examples do: MinMax on the file as it is, MinMax
after onnxruntime's quant_pre_process (as its documentation asks; its time included), and Entropy
calibration (its KL). Ratios: onnxruntime's time / our MAX time, and our MSE and KL over our MAX.
Issue 17's targets on ResNet-18: pre+MinMax / MAX >= 3; MSE and KL <= 1.5x MAX.

--stages: the stage profile instead, per model and mode: the median wall time (ms) of every pass of
quantize_network (the C++ timers that APL_PTQ_STAGES=1 turns on; calibration split into fetching
the batches from Python, the float forward, the channel sums for bias correction, and the
max / min / histogram observation), the sum of the stages and the wall time around the call.
"""
import argparse
import os
import re
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median_seconds, ort_quantize_static, resnet18_path, rng_images  # noqa: E402

import aidge_ptq_lite as apl  # noqa: E402
from aidge_ptq_lite import datasets, zoo  # noqa: E402

MODES = ("MAX", "MSE", "AA", "KL")


def ort_quantize(path: str, calib: np.ndarray, method: str, pre_process: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if pre_process:
            from onnxruntime.quantization.shape_inference import quant_pre_process
            pre = os.path.join(tmp, "pre.onnx")
            quant_pre_process(path, pre)
            path = pre
        ort_quantize_static(path, calib, os.path.join(tmp, "q.onnx"), method=method)


def _stage_run(g, calib, mode: str) -> tuple:
    """One quantize_network with the stage profile on: ({stage: ms}, wall ms). The C++ prints the
    profile on the process's stderr (fd 2), captured here through a temporary file."""
    with tempfile.TemporaryFile(mode="w+b") as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.environ["APL_PTQ_STAGES"] = "1"
        try:
            os.dup2(capture.fileno(), 2)
            t0 = time.perf_counter()
            apl.quantize_network(g.clone(), calibration_set=calib, clipping_mode=mode)
            wall = (time.perf_counter() - t0) * 1e3
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            del os.environ["APL_PTQ_STAGES"]
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    line = [ln for ln in text.splitlines() if ln.startswith("ptq stages (ms):")][-1]
    stages = {m.group(1): float(m.group(2))
              for m in re.finditer(r"([A-Za-z_]+) (-?[0-9.]+)", line.split(":", 1)[1])}
    return stages, wall


def stage_profile(models, modes, repeats: int) -> None:
    for name, path, calib in models:
        g = apl.load_onnx(path)
        for mode in modes:
            _stage_run(g, calib, mode)  # warm-up
            runs = [_stage_run(g, calib, mode) for _ in range(repeats)]
            stages = {k: statistics.median(r[0][k] for r in runs) for k in runs[0][0]}
            wall = statistics.median(r[1] for r in runs)
            total = sum(stages.values())
            print(f"{name}, {len(calib)} inputs, {mode}: wall {wall:.1f} ms, stages sum {total:.1f} ms "
                  f"(medians of {repeats})")
            for stage, ms in stages.items():
                print(f"    {stage:<24} {ms:>9.2f} ms {100 * ms / total:>5.1f}%")
            forward = stages.get("forward", 0.0)
            print(f"    {'(all but the forward)':<24} {total - forward:>9.2f} ms {100 * (total - forward) / total:>5.1f}%")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-ort", action="store_true", help="skip onnxruntime (it takes minutes on ResNet-18)")
    p.add_argument("--stages", action="store_true", help="print the stage profile of quantize_network")
    p.add_argument("--modes", default="MAX", help="clipping modes of --stages, comma-separated")
    args = p.parse_args()
    resnet18 = resnet18_path(batch_norm=False)
    models = [("resnet (zoo)", zoo.model_path("resnet"), datasets.load_calibration_set(256)),
              ("ResNet-18", resnet18, rng_images(64, (3, 224, 224), seed=1))]
    if args.stages:
        print(f"SIMD level: {apl.simd_level()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
        stage_profile(models, [m.strip().upper() for m in args.modes.split(",")], args.repeats)
        return
    ort_variants = {"ORT MinMax": ("MinMax", False), "ORT pre+MinMax": ("MinMax", True),
                    "ORT Entropy": ("Entropy", False)}
    print(f"SIMD level: {apl.simd_level()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"medians of {args.repeats} runs (onnxruntime: 1 run)")
    print(f"{'model':<14} {'inputs':>6} " + " ".join(f"{m:>7}" for m in MODES) +
          "".join(f" {v:>15}" for v in ort_variants) +
          "  MinMax/MAX pre+MinMax/MAX  MSE/MAX  KL/MAX")
    for name, path, calib in models:
        g = apl.load_onnx(path)
        seconds = {m: median_seconds(lambda m=m: apl.quantize_network(g.clone(), calibration_set=calib,
                                                                      clipping_mode=m), args.repeats, 1)
                   for m in MODES}
        ort = {v: float("nan") if args.no_ort else
               median_seconds(lambda: ort_quantize(path, calib, method, pre), 1, 0)
               for v, (method, pre) in ort_variants.items()}
        print(f"{name:<14} {len(calib):>6} " + " ".join(f"{seconds[m]:>6.2f}s" for m in MODES) +
              "".join(f" {ort[v]:>14.2f}s" for v in ort_variants) +
              f"  {ort['ORT MinMax'] / seconds['MAX']:>9.2f}x {ort['ORT pre+MinMax'] / seconds['MAX']:>13.2f}x"
              f"  {seconds['MSE'] / seconds['MAX']:>6.2f}x {seconds['KL'] / seconds['MAX']:>6.2f}x")


if __name__ == "__main__":
    main()
