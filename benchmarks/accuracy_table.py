"""Accuracy tables of the zoo on the full Fashion-MNIST test set (calibration: 256 train images).

    python benchmarks/accuracy_table.py [--models resnet ...] [--bits 8 6 4]
        [--clipping MAX MSE AA KL] [--features] [--calibration-sets N]

Prints, per model, top-1 accuracy for every (bits, clipping, per-tensor / channel-wise) and,
with --features, the effect of CLE, sign optimization and single shift. Differences are in
points against float. With --calibration-sets N, each cell is the mean over N disjoint sets of
256 train images: one set is a single draw, good to about +-0.1 point at 8 bits.
"""
import argparse
import time

import numpy as np

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo


def accuracy(g, x, y, batch=500):
    hits = 0
    for i in range(0, len(x), batch):
        hits += int(np.sum(g.forward(x[i:i + batch]).argmax(1) == y[i:i + batch]))
    return 100.0 * hits / len(x)


def quantized_accuracy(path, calibration_sets, x, y, **kw):
    """Mean accuracy over the calibration sets, and the longest quantize_network time."""
    accuracies, seconds = [], []
    for calib in calibration_sets:
        g = apl.load_onnx(path)
        t0 = time.perf_counter()
        apl.quantize_network(g, calibration_set=calib, **kw)
        seconds.append(time.perf_counter() - t0)
        accuracies.append(accuracy(g, x, y))
    return float(np.mean(accuracies)), max(seconds)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(zoo.ZOO_MODELS))
    p.add_argument("--bits", nargs="+", type=int, default=[8, 6, 4])
    p.add_argument("--clipping", nargs="+", default=["MAX", "MSE", "AA", "KL"])
    p.add_argument("--features", action="store_true", help="CLE / signs / single shift table instead")
    p.add_argument("--calibration-sets", type=int, default=1,
                   help="mean over this many disjoint sets of 256 calibration images")
    args = p.parse_args()
    x, y = datasets.load_fashion_mnist("test")
    everything = datasets.load_calibration_set(256 * args.calibration_sets)
    calib = [everything[k * 256:(k + 1) * 256] for k in range(args.calibration_sets)]
    print(f"data: {datasets.data_source()}, {len(x)} test images, "
          f"{args.calibration_sets} x 256 calibration images")
    for name in args.models:
        path = zoo.model_path(name)
        f = accuracy(apl.load_onnx(path), x, y)
        print(f"\n{name}: float {f:.2f}%")
        if args.features:
            rows = [("baseline", {}), ("CLE", {"cross_layer_equalization": True}),
                    ("signs", {"optimize_signs": True}), ("single shift", {"single_shift": True}),
                    ("CLE+signs", {"cross_layer_equalization": True, "optimize_signs": True})]
            print(f"{'bits':>4} {'mode':<12} " + " ".join(f"{r[0]:>13}" for r in rows))
            for bits in args.bits:
                for cw in (False, True):
                    cells = [quantized_accuracy(path, calib, x, y, nb_bits=bits, channel_wise=cw, **kw)[0] for _, kw in rows]
                    print(f"{bits:>4} {'channel' if cw else 'tensor':<12} " +
                          " ".join(f"{c:6.2f} ({c - f:+.2f})" for c in cells))
            continue
        print(f"{'bits':>4} {'mode':<8} " + " ".join(f"{c:>15}" for c in args.clipping))
        for bits in args.bits:
            for cw in (False, True):
                cells = [quantized_accuracy(path, calib, x, y, nb_bits=bits, channel_wise=cw, clipping_mode=c)
                         for c in args.clipping]
                print(f"{bits:>4} {'channel' if cw else 'tensor':<8} " +
                      " ".join(f"{a:6.2f} ({a - f:+.2f})" for a, _ in cells) +
                      f"   ptq {min(t for _, t in cells):.2f}-{max(t for _, t in cells):.2f} s")


if __name__ == "__main__":
    main()
