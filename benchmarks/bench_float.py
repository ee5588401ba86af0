"""Float inference: our Graph.forward vs onnxruntime (2 threads), side by side, medians.

    python benchmarks/bench_float.py [--repeats 7]

Prints images/s of both and the ratio ours / onnxruntime, on the zoo resnet and mobilenet (batch
64) and an ImageNet-shape ResNet-18 with BatchNormalization folded into the convs, as torch exports
it (batch 1 and 8). Issue 17's target: ratio >= 1.0 on every row. Run with OMP_NUM_THREADS=2 (the
default here).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved_medians, ort_session, resnet18_path, rng_images  # noqa: E402

import aidge_ptq_lite as apl  # noqa: E402
from aidge_ptq_lite import datasets, zoo  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
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
