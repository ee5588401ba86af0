"""Command line of aidge_ptq_lite: ``python aidge_ptq.py --model resnet`` or ``python -m aidge_ptq_lite``.

Evaluates the float network on Fashion-MNIST, quantizes it with the chosen options, evaluates the
integer network and prints a summary (accuracies, PTQ time, model sizes).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from . import _core, datasets, zoo
from .onnx_io import load_onnx
from .ptq import CALIBRATION_BATCH, quantize_network
from .report import format_layer_report, layer_report


def _progress(iterable, total, desc, enabled=True):
    """tqdm progress bar on stderr when tqdm is installed (pip install "aidge_ptq_lite[cli]")."""
    try:
        from tqdm import tqdm
    except ImportError:
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


def model_bytes(graph) -> int:
    """Bytes of the constant tensors (weights, biases, BatchNorm statistics, scaling factors)."""
    return sum(p.nbytes for n in graph.nodes() for p in n.params if not (graph.is_quantized and n.op == "Scaling"))


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _input_shape(text: str) -> tuple:
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive dims such as 1,28,28, got {text}")
    return dims


def _nb_bits(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 2 <= value <= 16:
        raise argparse.ArgumentTypeError(f"nb_bits must be an integer in 2..16, got {text}")
    return value


def _check_plot_dir(path: str) -> None:
    """The folder exists or can be created (its nearest existing ancestor is a writable folder)."""
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise NotADirectoryError(f"--plot-dir '{path}' exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"--plot-dir '{path}' is not writable")
        return
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"--plot-dir '{path}' cannot be created ('{parent}' is not a writable folder)")


def validate_args(parser: argparse.ArgumentParser, args, source: str) -> None:
    """Every check that does not need the evaluation, done before it: incompatible flags exit
    with a usage error, unusable paths with an error naming the flag and the path."""
    from .export import check_export_path

    if args.export:
        if args.nb_bits > 8:
            parser.error(f"--export writes ONNX QDQ models of 8 bits or fewer; got --nb-bits {args.nb_bits}")
        if args.no_quant:
            parser.error("--export needs integers: it cannot be combined with --no-quant")
        try:
            check_export_path(args.export, [source])
        except (OSError, ValueError) as exc:
            parser.error(f"--export: {exc}")
    if args.allow_float and not args.export_c:
        parser.error("--allow-float applies to the C export: give it with --export-c DIR")
    if args.export_c:
        if args.no_quant:
            parser.error("--export-c needs integers: it cannot be combined with --no-quant")
        if args.export and os.path.abspath(args.export) == os.path.abspath(args.export_c):
            parser.error(f"--export and --export-c name the same path '{args.export}' (a file and a folder)")
        from .export_c import check_export_directory
        try:  # before the evaluation: never lose a user's file, nor minutes of work
            check_export_directory(args.export_c)
        except OSError as exc:
            parser.error(f"--export-c: {exc}")
    if args.plot_dir:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot-dir needs matplotlib (pip install matplotlib)")
        try:
            _check_plot_dir(args.plot_dir)
        except OSError as exc:
            parser.error(str(exc))


def _load(path, input_shape, data_shape):
    """load_onnx with --input-shape; a model leaving its dims symbolic gets the data's shape."""
    try:
        return load_onnx(path, input_shape=input_shape)
    except _core.ShapeError as exc:
        if input_shape is not None or "input_shape" not in str(exc):
            raise
    print(f"note         : the model leaves input dims symbolic; using the images' "
          f"{','.join(map(str, data_shape))} (--input-shape to choose)", file=sys.stderr)
    return load_onnx(path, input_shape=data_shape)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aidge_ptq.py",
        description="Quantize a network to n-bit integers (post-training) and compare it with the float one "
                    "on Fashion-MNIST.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", choices=zoo.ZOO_MODELS, default="resnet", help="zoo model (default: resnet)")
    src.add_argument("--onnx", metavar="PATH", help="an ONNX model taking (N, 1, 28, 28) normalized inputs")
    p.add_argument("--input-shape", type=_input_shape, metavar="C,H,W",
                   help="the input's dims after the batch, for an --onnx model that leaves them symbolic "
                        "(default: the images' 1,28,28 when the model does not fix them)")
    p.add_argument("--data", metavar="DIR",
                   help="directory with the Fashion-MNIST idx .gz files (default: Debian's "
                        f"{datasets.FASHION_MNIST_DIR} when installed, else the bundled subset; "
                        f"'{datasets.BUNDLED}' forces the subset)")
    p.add_argument("--nb-bits", type=_nb_bits, default=8, help="bit width of weights and activations, 2..16 (default 8)")
    p.add_argument("--clipping", choices=["max", "mse", "aa", "kl"], default=None,
                   help="activation range selection (default: max at 8 bits and more, mse below, "
                        "where clipping pays)")
    p.add_argument("--cle", action="store_true", help="cross-layer equalization before quantizing")
    p.add_argument("--optimize-signs", action="store_true", help="unsigned codes after ReLU (one more bit)")
    p.add_argument("--single-shift", action="store_true", help="power-of-two rescaling, compensated in the weights")
    p.add_argument("--no-quant", action="store_true", help="run the pipeline without rounding (debug)")
    p.add_argument("--channel-wise", action="store_true", help="per-output-channel weight scales")
    p.add_argument("--calib-samples", type=_positive, default=256, help="calibration images from the train split (default 256)")
    p.add_argument("--eval-samples", type=_positive, default=None, help="test images to evaluate (default: all)")
    p.add_argument("--batch-size", type=_positive, default=256, help="evaluation batch size (default 256)")
    p.add_argument("--export", metavar="PATH", help="write the quantized network as an ONNX QDQ model")
    p.add_argument("--export-c", metavar="DIR",
                   help="write the integer network as a standalone C99 project (DIR new, empty or a previous export)")
    p.add_argument("--allow-float", action="store_true",
                   help="with --export-c: write float nodes (a final Softmax, float islands) as C float code")
    p.add_argument("--verbose", action="store_true", help="print the per-layer report (SQNR per activation)")
    p.add_argument("--plot-dir", metavar="DIR",
                   help="write a PNG per layer: activation histogram with the chosen clip (needs matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.clipping = args.clipping or ("max" if args.nb_bits >= 8 else "mse")
    show = not args.no_progress
    path = args.onnx or zoo.model_path(args.model)
    validate_args(parser, args, path)
    name = os.path.basename(args.onnx) if args.onnx else args.model
    try:
        x_test, y_test = datasets.load_fashion_mnist("test", data_dir=args.data, limit=args.eval_samples)
        x_calib = datasets.load_calibration_set(args.calib_samples, data_dir=args.data)
        graph = _load(path, args.input_shape, x_test.shape[1:])
    except (OSError, ValueError, NotImplementedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if tuple(graph.input_shape) != tuple(x_test.shape[1:]):
        # Checked before the evaluation: a model for other images would fail in its first batch.
        print(f"error: {'--onnx ' + args.onnx if args.onnx else name} takes inputs of shape "
              f"(N, {', '.join(map(str, graph.input_shape))}); the Fashion-MNIST images are "
              f"(N, {', '.join(map(str, x_test.shape[1:]))})", file=sys.stderr)
        return 2
    print(f"model        : {name} ({path}), {graph.param_count:,} parameters")
    print(f"data         : {datasets.data_source(args.data)}; {len(x_test)} test images, "
          f"{len(x_calib)} calibration images")

    float_graph = graph.clone()
    float_acc = evaluate(graph, x_test, y_test, args.batch_size, "float eval", show)
    print(f"float        : {100 * float_acc:.2f}% top-1")

    batches = [x_calib[i:i + CALIBRATION_BATCH] for i in range(0, len(x_calib), CALIBRATION_BATCH)]
    t0 = time.perf_counter()
    try:
        quantize_network(graph, nb_bits=args.nb_bits, calibration_set=_progress(batches, len(batches), "calibration", show),
                         clipping_mode=args.clipping.upper(), cross_layer_equalization=args.cle,
                         optimize_signs=args.optimize_signs, single_shift=args.single_shift,
                         no_quant=args.no_quant, channel_wise=args.channel_wise, verbose=args.verbose)
    except (ValueError, NotImplementedError, _core.Error) as exc:
        print(f"error: quantization failed: {exc}", file=sys.stderr)
        return 1
    ptq_time = time.perf_counter() - t0

    quant_acc = evaluate(graph, x_test, y_test, args.batch_size, "integer eval", show)
    options = [f"{args.nb_bits} bits", args.clipping.upper(), "channel-wise" if args.channel_wise else "per tensor"]
    options += [flag for flag, on in (("CLE", args.cle), ("signs", args.optimize_signs),
                                      ("single shift", args.single_shift), ("no_quant", args.no_quant)) if on]
    print(f"quantized    : {100 * quant_acc:.2f}% top-1 ({', '.join(options)}; SIMD {_core.simd_level()})")
    print(f"difference   : {100 * (quant_acc - float_acc):+.2f} points")
    print(f"PTQ time     : {ptq_time:.2f} s")
    float_size, quant_size = model_bytes(float_graph), model_bytes(graph)
    print(f"model size   : {float_size / 1024:,.1f} KiB float -> {quant_size / 1024:,.1f} KiB integer "
          f"({float_size / max(quant_size, 1):.1f}x smaller)")
    if args.verbose:
        print("\nper-layer report (SQNR of each quantized activation against float, 256 test images):")
        print(format_layer_report(layer_report(float_graph, graph, x_test[:256])))
    if args.plot_dir:
        from .plots import plot_activation_histograms
        try:
            paths = plot_activation_histograms(float_graph, graph, x_calib, args.plot_dir, args.channel_wise, args.cle)
        except (ImportError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"plots        : {len(paths)} PNG files in {args.plot_dir}")
    if args.export:
        from .export import export_onnx
        try:
            export_onnx(graph, args.export, protect=[path])
        except (OSError, ValueError, NotImplementedError) as exc:
            print(f"error: export failed: {exc}", file=sys.stderr)
            return 1
        print(f"exported     : {args.export} ({os.path.getsize(args.export) / 1024:,.1f} KiB)")
    if args.export_c:
        from .export_c import export_c
        try:
            sizes = export_c(graph, args.export_c, name="network", allow_float=args.allow_float)
        except (OSError, ValueError, NotImplementedError) as exc:
            print(f"error: C export failed: {exc}", file=sys.stderr)
            return 1
        print(f"C export     : {args.export_c} (weights {sizes['weights_bytes']:,} B flash, arena "
              f"{sizes['arena_bytes']:,} B RAM, {sizes['naive_activation_bytes']:,} B without the planner)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
