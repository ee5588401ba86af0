"""Integer inference: our quantized forward vs onnxruntime's int8 QDQ models, side by side.

    python benchmarks/bench_int8.py [--repeats 7] [--quick]
    python benchmarks/bench_int8.py --layers {resnet18,resnet,mobilenet} [--batch N] [--ghz 2.6]

Models as users have them: ResNet-18 as torch exports it (BatchNormalization folded into the
convs: tools/make_resnet18.py --no-batch-norm, seed 0) at batch 1 and 8, the zoo resnet (ResNet-20,
28x28) and zoo mobilenet at batch 64. onnxruntime runs U8S8 QDQ models (uint8 activations, int8
weights: its fast path) made two ways: `quantize_static` on the model as it is, and after
`onnxruntime.quantization.shape_inference.quant_pre_process` as its documentation asks; the
ratio is ours over the faster of the two ("best"). Ours: int8 per tensor, MAX, and the same with
optimize_signs=True (unsigned activations after ReLUs). All runs interleaved, a 0.3 s pause before
each timed run (onnxruntime's pool threads spin after a run), medians of --repeats. Both runtimes
use OMP_NUM_THREADS threads (default 2); on a loaded machine 1 thread is the steadier comparison.
--layers: per Conv / Gemm node of our int8 network (int8 + signs, MAX), inside the whole network
at OMP_NUM_THREADS: the best of --repeats runs (APL_PROFILE per-node times, in a subprocess), its
multiply-adds, achieved GOPS (2 ops per multiply-add) and % of the nominal peak of the level that
runs (APL_SIMD): AMX 1,024 MACs per cycle per core, VNNI (avx512) 2 x 64, at --ghz per core.
Layers that the AMX level leaves on VNNI (few channels) show a low AMX %. Isolated convs:
benchmarks/cpp/conv_int8_layers.
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


LAYER_MODELS = ("resnet18", "resnet", "mobilenet")


def layer_case(name: str, batch: int):
    if name == "resnet18":
        return resnet18_path(batch_norm=False), rng_images(64, (3, 224, 224), seed=1), rng_images(batch, (3, 224, 224))
    return zoo.model_path(name), datasets.load_calibration_set(256), datasets.load_fashion_mnist("test", limit=batch)[0]


def layers_worker(name: str, batch: int, repeats: int):
    """Quantizes, then runs the forward repeats + 1 times (APL_PROFILE set by the parent)."""
    import time
    path, calib, x = layer_case(name, batch)
    g = apl.load_onnx(path)
    apl.quantize_network(g, calibration_set=calib, optimize_signs=True)
    for _ in range(repeats + 1):
        time.sleep(common.SETTLE_SECONDS)
        g.forward(x)


def multiply_adds(path: str) -> dict:
    """Node name -> multiply-adds per sample of each Conv / Gemm (shapes by onnx's inference)."""
    import onnx
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(model.graph.value_info) + list(model.graph.output)}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    macs = {}
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm") and node.input[1] in weights:
            w, out = weights[node.input[1]], dims.get(node.output[0], [])
            per_output = int(np.prod(w[1:])) if node.op_type == "Conv" else w[1]
            macs[node.name] = int(np.prod(out[1:])) * per_output
    return macs


def layers(name: str, batch: int, repeats: int, ghz: float):
    import re
    import subprocess
    path = layer_case(name, 1)[0]
    err = subprocess.run([sys.executable, __file__, "--layers-worker", name, "--batch", str(batch),
                          "--repeats", str(repeats)], env=dict(os.environ, APL_PROFILE="1"),
                         capture_output=True, text=True, check=True).stderr
    runs = err.split("APL_PROFILE batch")[2:]  # calibration's run, then a warm-up, are dropped
    best = {}
    for run in runs[1:]:
        for m in re.finditer(r"^(Conv|Gemm) '(.*)'\s+([\d.]+)$", run, re.M):
            best[m.group(2)] = min(best.get(m.group(2), 1e9), float(m.group(3)))
    macs = multiply_adds(path)
    threads = int(os.environ["OMP_NUM_THREADS"])
    level = apl.simd_level()
    per_cycle = 1024 if level == "amx" else 128 if level == "avx512" else None
    peak = per_cycle * ghz * 1e9 * threads if per_cycle else None  # MACs per second
    print(f"{name} int8 + signs, batch {batch}, {threads} threads, level {level}, best of {repeats}; "
          f"peak {per_cycle} MACs/cycle/core at {ghz} GHz")
    print(f"{'layer':<52} {'ms':>8} {'MMACs':>8} {'GOPS':>8} {'% peak':>7}")
    total_ms = total_macs = 0.0
    for label, ms in best.items():
        n_macs = macs.get(label, 0) * batch
        total_ms, total_macs = total_ms + ms, total_macs + n_macs
        rate = n_macs / (ms * 1e-3)
        pct = f"{100 * rate / peak:>7.1f}" if peak else f"{'-':>7}"
        print(f"{label[-52:]:<52} {ms:>8.3f} {n_macs / 1e6:>8.1f} {2 * rate / 1e9:>8.1f} {pct}")
    rate = total_macs / (total_ms * 1e-3)
    pct = f"{100 * rate / peak:>7.1f}" if peak else f"{'-':>7}"
    print(f"{'all convs and gemms':<52} {total_ms:>8.3f} {total_macs / 1e6:>8.1f} {2 * rate / 1e9:>8.1f} {pct}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="ResNet-18 only")
    p.add_argument("--layers", choices=LAYER_MODELS)
    p.add_argument("--layers-worker", choices=LAYER_MODELS, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=None, help="with --layers (default 8 for resnet18, else 64)")
    p.add_argument("--ghz", type=float, default=2.6, help="nominal clock per core for --layers' peak")
    args = p.parse_args()
    if args.layers_worker:
        return layers_worker(args.layers_worker, args.batch, args.repeats)
    if args.layers:
        return layers(args.layers, args.batch or (8 if args.layers == "resnet18" else 64), args.repeats, args.ghz)
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
