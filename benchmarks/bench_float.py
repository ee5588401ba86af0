"""Float inference: our Graph.forward vs onnxruntime (2 threads), side by side, medians.

    python benchmarks/bench_float.py [--repeats 7]
    python benchmarks/bench_float.py --layers {resnet,mobilenet,resnet18} [--batch N] [--repeats 7]

Prints images/s of both and the ratio ours / onnxruntime, on the zoo resnet and mobilenet (batch
64) and an ImageNet-shape ResNet-18 with BatchNormalization folded into the convs, as torch exports
it (batch 1 and 8). Issue 17's target: ratio >= 1.0 on every row. Run with OMP_NUM_THREADS=2 (the
default here).

--layers: per Conv node, inside the whole network, the best of `repeats` runs of ours (APL_PROFILE
per-node times, in a subprocess) and of onnxruntime (its profiler's kernel times: its NCHWc convs
with their fused Relu / Add), matched by their order, and the ratio. Single-Conv models would not
do: onnxruntime then pays a layout reorder in and out of every conv.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved_medians, ort_session, resnet18_path, rng_images  # noqa: E402

import aidge_ptq_lite as apl  # noqa: E402
from aidge_ptq_lite import datasets, zoo  # noqa: E402


def model_case(name: str, batch: int):
    if name == "resnet18":
        return resnet18_path(batch_norm=False), rng_images(batch, (3, 224, 224))
    return zoo.model_path(name), datasets.load_fashion_mnist("test", limit=batch)[0]


def layers_worker(name: str, batch: int, repeats: int):
    """Runs our forward `repeats` times (APL_PROFILE set by the parent: per-node ms on stderr)."""
    path, x = model_case(name, batch)
    g = apl.load_onnx(path)
    for _ in range(repeats):
        time.sleep(0.2)
        g.forward(x)


def layers(name: str, batch: int, repeats: int):
    import onnxruntime as ort
    path, x = model_case(name, batch)
    threads = int(os.environ["OMP_NUM_THREADS"])
    env = dict(os.environ, APL_PROFILE="1")
    err = subprocess.run([sys.executable, __file__, "--layers-worker", name, "--batch", str(batch),
                          "--repeats", str(repeats + 1)], env=env, capture_output=True, text=True,
                         check=True).stderr
    ours = {}  # node label -> best ms (the first run, a warm-up, is dropped)
    runs = err.split("APL_PROFILE batch")[2:]
    for run in runs:
        for line in run.splitlines():
            m = re.match(r"^Conv '(.*)'\s+([\d.]+)$", line)
            if m:
                ours[m.group(1)] = min(ours.get(m.group(1), 1e9), float(m.group(2)))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(tempfile.gettempdir(), "bench_float_ort_profile")
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    sess.run(None, feed)
    for _ in range(repeats):
        time.sleep(0.2)
        sess.run(None, feed)
    profile = sess.end_profiling()
    with open(profile) as f:
        events = json.load(f)
    os.remove(profile)
    theirs, first = {}, {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["args"].get("op_name") == "Conv":
            key = e["name"][:-len("_kernel_time")]
            first.setdefault(key, e["ts"])
            theirs.setdefault(key, []).append(e["dur"] / 1e3)
    # onnxruntime names a fused conv by its last output (the Conv's, or of the Relu / Add after
    # it) with an _nchwc suffix: map each such tensor back to its Conv node.
    import onnx
    graph = onnx.load(path).graph
    consumers = {}
    for node in graph.node:
        for t in node.input:
            consumers.setdefault(t, []).append(node)
    conv_of = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        t = node.output[0]
        while True:
            conv_of[t] = node.name
            nxt = consumers.get(t, [])
            if len(nxt) != 1 or nxt[0].op_type not in ("Relu", "Add", "Clip"):
                break
            t = nxt[0].output[0]
    ort_ms = {}
    for key, times in theirs.items():
        conv = conv_of.get(re.sub(r"_nchwc$", "", key))
        if conv is not None:
            ort_ms[conv] = min(times[1:] or times)
    print(f"{name} batch {batch}, {threads} threads, best of {repeats} (ms)")
    print(f"{'conv (ours)':<52} {'ours':>8} {'ORT':>8} {'ORT/ours':>8}")
    total_ours = total_ort = 0.0
    for label, ms in ours.items():
        if label not in ort_ms:
            print(f"{label[-52:]:<52} {ms:>8.3f} {'?':>8}")
            continue
        total_ours += ms
        total_ort += ort_ms[label]
        print(f"{label[-52:]:<52} {ms:>8.3f} {ort_ms[label]:>8.3f} {ort_ms[label] / ms:>8.2f}")
    print(f"{'all convs':<52} {total_ours:>8.3f} {total_ort:>8.3f} {total_ort / total_ours:>8.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--layers", choices=["resnet", "mobilenet", "resnet18"])
    p.add_argument("--layers-worker", choices=["resnet", "mobilenet", "resnet18"], help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=None, help="with --layers (default 64; resnet18: 8)")
    args = p.parse_args()
    if args.layers_worker:
        return layers_worker(args.layers_worker, args.batch, args.repeats)
    if args.layers:
        batch = args.batch or (8 if args.layers == "resnet18" else 64)
        return layers(args.layers, batch, args.repeats)
    resnet18 = resnet18_path(batch_norm=False)
    cases = [("resnet (zoo)", zoo.model_path("resnet"), 64, None),
             ("mobilenet (zoo)", zoo.model_path("mobilenet"), 64, None),
             ("ResNet-18", resnet18, 1, (3, 224, 224)),
             ("ResNet-18", resnet18, 8, (3, 224, 224))]
    print(f"SIMD level: {apl.simd_level()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"medians of {args.repeats} interleaved runs")
    print(f"{'model':<16} {'batch':>5} {'ours img/s':>11} {'ORT img/s':>10} {'ours/ORT':>9}")
    for name, path, batch, shape in cases:
        x = datasets.load_fashion_mnist("test", limit=batch)[0] if shape is None else rng_images(batch, shape)
        g = apl.load_onnx(path)
        ort = ort_session(path)
        t = interleaved_medians({"ours": lambda: g.forward(x), "ort": lambda: ort(x)}, args.repeats)
        print(f"{name:<16} {batch:>5} {batch / t['ours']:>11.1f} {batch / t['ort']:>10.1f} "
              f"{t['ort'] / t['ours']:>9.2f}")


if __name__ == "__main__":
    main()
