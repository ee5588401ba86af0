"""Command line of aidge_ptq_lite: ``python aidge_ptq.py --model resnet`` or ``python -m aidge_ptq_lite``."""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from . import datasets, zoo
from .onnx_io import load_onnx


def _progress(iterable, total, desc, enabled=True):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional (pip install "aidge_ptq_lite[cli]")
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False, disable=not enabled,
                file=sys.stderr)


def evaluate(graph, x: np.ndarray, y: np.ndarray, batch_size: int = 256, desc: str = "eval",
             progress: bool = True) -> float:
    """Top-1 accuracy of ``graph`` on (x, y), batch by batch."""
    correct = 0
    starts = range(0, len(x), batch_size)
    for start in _progress(starts, len(starts), desc, progress):
        logits = graph.forward(x[start:start + batch_size])
        correct += int(np.sum(logits.argmax(axis=1) == y[start:start + batch_size]))
    return correct / len(x)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aidge_ptq.py",
        description="Evaluate a float network on Fashion-MNIST, quantize it, evaluate the integer network.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", choices=zoo.ZOO_MODELS, default="resnet", help="zoo model (default: resnet)")
    src.add_argument("--onnx", metavar="PATH", help="an ONNX model taking (N, 1, 28, 28) inputs")
    p.add_argument("--data", metavar="DIR",
                   help="directory with the Fashion-MNIST idx .gz files (default: Debian's "
                        f"{datasets.FASHION_MNIST_DIR} when installed, else the bundled subset)")
    p.add_argument("--eval-samples", type=int, default=None, help="test images to evaluate (default: all)")
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    path = args.onnx or zoo.model_path(args.model)
    name = args.model if not args.onnx else os.path.basename(args.onnx)
    x_test, y_test = datasets.load_fashion_mnist("test", data_dir=args.data, limit=args.eval_samples)
    print(f"model      : {name} ({path})")
    print(f"data       : {datasets.data_source(args.data)}, {len(x_test)} test images")
    graph = load_onnx(path)
    print(f"parameters : {graph.param_count:,}")
    t0 = time.perf_counter()
    acc = evaluate(graph, x_test, y_test, args.batch_size, "float eval", not args.no_progress)
    dt = time.perf_counter() - t0
    print(f"float      : {100 * acc:.2f}% top-1 ({len(x_test) / dt:,.0f} images/s)")
    print("quantization is not available yet in this version: stopping after the float evaluation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
