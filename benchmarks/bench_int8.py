"""Integer inference: our quantized forward vs onnxruntime's quantize_static QDQ models, side by side.

    python benchmarks/bench_int8.py [--repeats 7]

onnxruntime is measured both ways: S8S8 (its default: int8 activations and weights) and U8S8
(uint8 activations: its fast path). Also our float forward. The wall time of quantize_network is
in bench_quantize.py.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved_medians, ort_quantize_static, ort_session, resnet18_path, rng_images  # noqa: E402

import aidge_ptq_lite as apl  # noqa: E402
from aidge_ptq_lite import datasets, zoo  # noqa: E402


def ort_quantized(path: str, calib: np.ndarray, activation_unsigned: bool) -> str:
    kind = "u8s8" if activation_unsigned else "s8s8"
    out = os.path.join(tempfile.gettempdir(), f"{os.path.basename(path)}.{kind}.onnx")
    return ort_quantize_static(path, calib, out, activation_unsigned)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    resnet18 = resnet18_path()
    print(f"SIMD level: {apl.simd_level()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"medians of {args.repeats} interleaved runs")
    header = f"{'model':<12} {'batch':>5} {'ours int8':>10} {'ours float':>10} {'ORT S8S8':>9} {'ORT U8S8':>9} {'ORT float':>9}  ratios ours-int8 / (ORT S8S8, ORT U8S8, ours float)"
    rows = []
    for name, path, batch, calib in [
            ("resnet (zoo)", zoo.model_path("resnet"), 64, datasets.load_calibration_set(256)),
            ("ResNet-18", resnet18, 8, rng_images(64, (3, 224, 224), seed=1))]:
        x = datasets.load_fashion_mnist("test", limit=batch)[0] if name.startswith("resnet") else rng_images(batch, (3, 224, 224))
        g_float = apl.load_onnx(path)
        g_int = g_float.clone()
        apl.quantize_network(g_int, calibration_set=calib)
        fns = {"int": lambda: g_int.forward(x), "float": lambda: g_float.forward(x),
               "s8s8": ort_session(ort_quantized(path, calib[:64], False)),
               "u8s8": ort_session(ort_quantized(path, calib[:64], True)), "ortf": ort_session(path)}
        fns = {k: (v if k in ("int", "float") else (lambda f=v: f(x))) for k, v in fns.items()}
        t = interleaved_medians(fns, args.repeats)
        ips = {k: batch / v for k, v in t.items()}
        rows.append(f"{name:<12} {batch:>5} {ips['int']:>10.1f} {ips['float']:>10.1f} {ips['s8s8']:>9.1f} "
                    f"{ips['u8s8']:>9.1f} {ips['ortf']:>9.1f}  {ips['int'] / ips['s8s8']:.2f}x, "
                    f"{ips['int'] / ips['u8s8']:.2f}x, {ips['int'] / ips['float']:.2f}x")
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
