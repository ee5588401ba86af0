"""Integer inference: our quantized forward vs onnxruntime's int8 QDQ models, side by side.

    python benchmarks/bench_int8.py [--repeats 7] [--quick]

Models as users have them: ResNet-18 as torch exports it (BatchNormalization folded into the
convs: tools/make_resnet18.py --no-batch-norm, seed 0) at batch 1 and 8, the zoo resnet (ResNet-20,
28x28) and zoo mobilenet at batch 64. onnxruntime runs U8S8 QDQ models (uint8 activations, int8
weights: its fast path) made two ways: `quantize_static` on the model as it is, and after
`onnxruntime.quantization.shape_inference.quant_pre_process` as its documentation asks; the
ratio is ours over the faster of the two ("best"). Ours: int8 per tensor, MAX, and the same with
optimize_signs=True (unsigned activations after ReLUs). All runs interleaved, a 0.3 s pause before
each timed run (onnxruntime's pool threads spin after a run), medians of --repeats. Both runtimes
use OMP_NUM_THREADS threads (default 2); on a loaded machine 1 thread is the steadier comparison.
Per-layer GOPS and % of peak of our int8 convolutions: benchmarks/cpp/conv_int8_layers.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import (interleaved_medians, ort_quantize_static, ort_session, resnet18_path,  # noqa: E402
                    rng_images)

import aidge_ptq_lite as apl  # noqa: E402
from aidge_ptq_lite import datasets, zoo  # noqa: E402

common.SETTLE_SECONDS = 0.3


def ort_u8s8(path: str, calib: np.ndarray, pre_process: bool) -> str:
    stem = os.path.join(tempfile.gettempdir(), os.path.basename(path))
    src = path
    if pre_process:
        from onnxruntime.quantization.shape_inference import quant_pre_process
        src = f"{stem}.pre.onnx"
        quant_pre_process(path, src)
    return ort_quantize_static(src, calib, f"{stem}.u8s8{'.pre' if pre_process else ''}.onnx",
                               activation_unsigned=True)


def cases(quick: bool):
    r18 = resnet18_path(batch_norm=False)
    r18_calib = rng_images(64, (3, 224, 224), seed=1)
    fm_calib = datasets.load_calibration_set(256)
    fm_x = datasets.load_fashion_mnist("test", limit=64)[0]
    out = [("ResNet-18", r18, 1, r18_calib, rng_images(1, (3, 224, 224))),
           ("ResNet-18", r18, 8, r18_calib, rng_images(8, (3, 224, 224)))]
    if not quick:
        out += [("zoo resnet", zoo.model_path("resnet"), 64, fm_calib, fm_x),
                ("zoo mobilenet", zoo.model_path("mobilenet"), 64, fm_calib, fm_x)]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="ResNet-18 only")
    args = p.parse_args()
    print(f"SIMD level: {apl.simd_level()} (detected {apl.detected_simd_level()}), "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, medians of {args.repeats} "
          f"interleaved runs, {common.SETTLE_SECONDS} s pause before each, load average "
          f"{os.getloadavg()[0]:.1f}")
    header = (f"{'model':<14} {'batch':>5} {'ours int8':>10} {'+signs':>8} {'ORT U8S8':>9} "
              f"{'ORT pre':>8}  img/s; ours/ORT-best: int8, int8+signs")
    rows = []
    for name, path, batch, calib, x in cases(args.quick):
        g_float = apl.load_onnx(path)
        g_int, g_signs = g_float.clone(), g_float.clone()
        apl.quantize_network(g_int, calibration_set=calib)
        apl.quantize_network(g_signs, calibration_set=calib, optimize_signs=True)
        threads = int(os.environ["OMP_NUM_THREADS"])
        ort_plain = ort_session(ort_u8s8(path, calib[:64], False), threads)
        ort_pre = ort_session(ort_u8s8(path, calib[:64], True), threads)
        fns = {"int": lambda: g_int.forward(x), "signs": lambda: g_signs.forward(x),
               "ort": lambda: ort_plain(x), "ort_pre": lambda: ort_pre(x)}
        t = interleaved_medians(fns, args.repeats)
        ips = {k: batch / v for k, v in t.items()}
        best = max(ips["ort"], ips["ort_pre"])
        rows.append(f"{name:<14} {batch:>5} {ips['int']:>10.1f} {ips['signs']:>8.1f} "
                    f"{ips['ort']:>9.1f} {ips['ort_pre']:>8.1f}  {ips['int'] / best:.2f}x, "
                    f"{ips['signs'] / best:.2f}x")
        print(rows[-1], flush=True)
    print(header)
    print("\n".join(rows))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
