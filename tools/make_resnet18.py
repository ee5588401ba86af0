"""Write the seeded ImageNet-shape ResNet-18 (random weights) used as the scale case.

Usage: python tools/make_resnet18.py PATH [--seed 0] [--no-batch-norm]
"""
import argparse
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "apl_zoo", os.path.join(ROOT, "python", "aidge_ptq_lite", "zoo.py"))
zoo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(zoo)


def main():
    """Build the model with :func:`zoo.make_resnet18` and save it to PATH."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="output .onnx file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-batch-norm", action="store_true",
                    help="fold the BatchNormalization nodes into the convs")
    args = ap.parse_args()
    zoo.make_resnet18(args.path, seed=args.seed, batch_norm=not args.no_batch_norm)
    print(f"wrote {args.path} ({os.path.getsize(args.path) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
