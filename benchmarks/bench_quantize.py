"""Wall time of quantize_network per clipping mode, beside onnxruntime's quantize_static.

    python benchmarks/bench_quantize.py [--repeats 5]

Models: the zoo resnet with 256 calibration images, ResNet-18 (ImageNet shape, BatchNormalization
folded into the convs as torch exports it) with 64 inputs.
Ours: the whole quantize_network (preparation, one streamed calibration pass, clipping search,
integer plan). The peer: onnxruntime.quantization.quantize_static writing a QDQ model with the
same calibration set, one input per batch as its examples do: MinMax on the file as it is, MinMax
after onnxruntime's quant_pre_process (as its documentation asks; its time included), and Entropy
calibration (its KL). Ratios: onnxruntime's time / our MAX time, and our MSE and KL over our MAX.
Issue 17's targets on ResNet-18: pre+MinMax / MAX >= 3; MSE and KL <= 1.5x MAX.
"""
import argparse
import os
import sys
import tempfile

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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-ort", action="store_true", help="skip onnxruntime (it takes minutes on ResNet-18)")
    args = p.parse_args()
    resnet18 = resnet18_path(batch_norm=False)
    ort_variants = {"ORT MinMax": ("MinMax", False), "ORT pre+MinMax": ("MinMax", True),
                    "ORT Entropy": ("Entropy", False)}
    print(f"SIMD level: {apl.simd_level()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"medians of {args.repeats} runs (onnxruntime: 1 run)")
    print(f"{'model':<14} {'inputs':>6} " + " ".join(f"{m:>7}" for m in MODES) +
          "".join(f" {v:>15}" for v in ort_variants) +
          "  MinMax/MAX pre+MinMax/MAX  MSE/MAX  KL/MAX")
    for name, path, calib in [("resnet (zoo)", zoo.model_path("resnet"), datasets.load_calibration_set(256)),
                              ("ResNet-18", resnet18, rng_images(64, (3, 224, 224), seed=1))]:
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
