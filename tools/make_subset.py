"""Build the bundled Fashion-MNIST subset (uint8, compressed npz) from the Debian idx files.

Usage: python tools/make_subset.py [--data DIR] [--out PATH]
"""
import argparse
import importlib.util
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "apl_datasets", os.path.join(ROOT, "python", "aidge_ptq_lite", "datasets.py"))
datasets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(datasets)

N_TEST, N_TRAIN = 1000, 256


def main():
    """Write the first 1,000 test and 256 train images and labels to the subset file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=datasets.FASHION_MNIST_DIR, help="dir of the idx .gz files")
    ap.add_argument("--out", default=datasets.SUBSET_PATH, help="output .npz")
    args = ap.parse_args()
    arrays = {}
    for split, n in (("test", N_TEST), ("train", N_TRAIN)):
        images, labels = datasets.load_raw(split, args.data)
        arrays[f"{split}_images"] = np.ascontiguousarray(images[:n], dtype=np.uint8)
        arrays[f"{split}_labels"] = np.ascontiguousarray(labels[:n], dtype=np.uint8)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
