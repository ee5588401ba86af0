"""Peak memory of quantize_network against the calibration set size (streamed calibration).

Each measurement runs in a fresh process, which reports its peak resident set size after
quantize_network: VmHWM from /proc/self/status. (``getrusage(RUSAGE_SELF).ru_maxrss`` is not
used: Linux carries the parent's peak into it across fork/vfork + exec, so under a large parent
such as pytest it reports the parent's figure.) The calibration images come from
a generator that yields batches of 64 read one by one from the gzip'd Fashion-MNIST train file
(seeded random images when the Debian data is absent), so the caller never holds the set: the
figures are the library's memory, and with streamed calibration they do not grow with the set.

    python benchmarks/bench_memory.py                  # zoo resnet if present, else lenet
    python benchmarks/bench_memory.py --model lenet --images 1000 10000 60000

``--child`` is the measuring process itself (tests/test_memory.py uses it too).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np

BATCH = 64
TRAIN_IMAGES = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def calibration_batches(n_images, shape, seed=0):
    """Yield float32 batches of up to 64 images, (b, *shape), n_images in all, never more in memory.

    Fashion-MNIST train images read lazily from the gzip stream when present and the input is
    (1, 28, 28); seeded normal noise otherwise.
    """
    from aidge_ptq_lite import datasets
    real = tuple(shape) == (1, 28, 28) and os.path.isfile(TRAIN_IMAGES)
    if real:
        stream = gzip.open(TRAIN_IMAGES, "rb")
        stream.read(16)  # idx header: magic, count, rows, cols
    rng = np.random.default_rng(seed)
    try:
        for start in range(0, n_images, BATCH):
            b = min(BATCH, n_images - start)
            if real:
                raw = stream.read(b * 28 * 28)
                if len(raw) < b * 28 * 28:
                    raise ValueError(f"{TRAIN_IMAGES} holds fewer than {n_images} images")
                yield datasets.normalize(np.frombuffer(raw, np.uint8).reshape(b, 28, 28))
            else:
                yield rng.standard_normal((b, *shape)).astype(np.float32)
    finally:
        if real:
            stream.close()


def _status_kib(field):
    """A KiB figure of /proc/self/status: VmRSS (now) or VmHWM (peak of this process image)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(model_path, n_images, nb_bits):
    """Quantize with n_images streamed calibration images; print a JSON line of KiB figures."""
    import aidge_ptq_lite as apl
    g = apl.load_onnx(model_path)
    shape = tuple(g.input_shape)
    before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    apl.quantize_network(g, nb_bits=nb_bits, calibration_set=calibration_batches(n_images, shape))
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    print(json.dumps({"images": n_images, "rss_before_kib": before, "peak_kib": peak,
                      "seconds": seconds, "shape": shape}))


def measure(model_path, n_images, nb_bits=8):
    """Run ``child`` in a fresh process; returns its dict (images, rss_before_kib, peak_kib, ...)."""
    env = dict(os.environ)  # the installed package (PYTHONPATH, if set, is inherited)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--onnx", model_path,
                           "--images", str(n_images), "--nb-bits", str(nb_bits)],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"measuring process failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _default_model():
    from aidge_ptq_lite import zoo
    for name in ("resnet", "lenet"):
        if os.path.isfile(zoo.model_path(name)):
            return name, zoo.model_path(name)
    raise SystemExit("no zoo model found (resnet or lenet)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="zoo model name (default: resnet if present, else lenet)")
    parser.add_argument("--onnx", help="an .onnx file instead of a zoo model")
    parser.add_argument("--images", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--nb-bits", type=int, default=8)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.onnx, args.images[0], args.nb_bits)
        return
    if args.onnx:
        name, path = os.path.basename(args.onnx), args.onnx
    elif args.model:
        from aidge_ptq_lite import zoo
        name, path = args.model, zoo.model_path(args.model)
    else:
        name, path = _default_model()
    print(f"quantize_network peak RSS, {name}, {args.nb_bits} bits, calibration streamed in batches of {BATCH}")
    print(f"{'images':>8} {'RSS before MiB':>15} {'peak RSS MiB':>13} {'growth MiB':>11} {'time s':>7}")
    rows = [measure(path, n, args.nb_bits) for n in args.images]
    for r in rows:
        print(f"{r['images']:>8} {r['rss_before_kib'] / 1024:>15.1f} {r['peak_kib'] / 1024:>13.1f} "
              f"{(r['peak_kib'] - r['rss_before_kib']) / 1024:>11.1f} {r['seconds']:>7.2f}")
    first, last = rows[0], rows[-1]
    print(f"peak ratio {last['images']} / {first['images']} images: {last['peak_kib'] / first['peak_kib']:.3f} "
          f"(holding the {last['images']} images as one float32 array would add "
          f"{last['images'] * int(np.prod(last['shape'])) * 4 / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
