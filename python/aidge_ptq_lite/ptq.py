"""quantize_network and compute_ranges: the PTQ pipeline around streamed calibration."""
from __future__ import annotations

import enum
import sys
import time
from typing import Iterable, Iterator, Union

import numpy as np

from . import _core


class Clipping(str, enum.Enum):
    """How each activation range is chosen from calibration."""

    MAX = "MAX"  #: the largest |x| seen
    MSE = "MSE"  #: minimises the quantization mean squared error over the histogram
    AA = "AA"    #: minimises the mean absolute error
    KL = "KL"    #: minimises the KL divergence (TensorRT entropy calibration)


CalibrationSet = Union[np.ndarray, Iterable[np.ndarray]]
CALIBRATION_BATCH = 64
HISTOGRAM_BINS = _core.QuantizeOptions().histogram_bins


def _clipping_name(mode) -> str:
    """The upper-case name of a clipping mode (str or Clipping); ValueError if unknown."""
    name = mode.value if isinstance(mode, Clipping) else str(mode).upper()
    if name not in Clipping.__members__:
        raise ValueError(f"unknown clipping mode {mode!r}; expected one of MAX, MSE, AA, KL")
    return name


def _check_float(batch: np.ndarray) -> None:
    if not np.issubdtype(batch.dtype, np.floating):
        raise ValueError(f"calibration data must be floating point, normalized as for inference; got "
                         f"{batch.dtype} (raw pixels? convert and normalize them as forward() expects)")


def iter_batches(calibration_set: CalibrationSet, batch_size: int = CALIBRATION_BATCH) -> Iterator[np.ndarray]:
    """Yield float32 batches from a float array (N, C, H, W) or an iterable of such arrays.

    Raises ValueError for an empty set or batch, or data that is not floating point (integer,
    uint8 or bool data is refused rather than silently converted: normalize it as for inference).
    """
    if isinstance(calibration_set, np.ndarray):
        if calibration_set.ndim < 2 or len(calibration_set) == 0:
            raise ValueError(f"calibration set is empty or has no batch axis (shape {calibration_set.shape})")
        _check_float(calibration_set)
        for start in range(0, len(calibration_set), batch_size):
            yield np.ascontiguousarray(calibration_set[start:start + batch_size], dtype=np.float32)
        return
    if calibration_set is None:
        raise ValueError("calibration_set is required")
    for i, batch in enumerate(calibration_set):
        if batch is None or isinstance(batch, (str, bytes)):
            raise TypeError(f"calibration batch {i} is {type(batch).__name__}, not a float array "
                            "(N, C, H, W)")
        batch = np.asarray(batch)
        if batch.ndim == 0 or len(batch) == 0:
            raise ValueError(f"calibration set holds an empty batch (batch {i})")
        _check_float(batch)
        yield np.ascontiguousarray(batch, dtype=np.float32)


def _check_graph(graph, function: str) -> None:
    """A Graph, not an onnx.ModelProto or a path: TypeError naming the function."""
    if not isinstance(graph, _core.Graph):
        raise TypeError(f"{function} expects an aidge_ptq_lite Graph (from load_onnx), got "
                        f"{type(graph).__module__}.{type(graph).__name__}; load it first: "
                        "g = aidge_ptq_lite.load_onnx(model)")


def _calibrate(graph: _core.Graph, calibration_set: CalibrationSet, histogram_bins: int,
               verbose: bool, clipping: str = "MSE") -> _core.RangeCollector:
    """One streamed pass over the calibration set: ranges, and histograms (for ``clipping``) if
    bins > 0."""
    _check_graph(graph, "calibration")
    collector = _core.RangeCollector(graph, histogram_bins, clipping)
    for i, batch in enumerate(iter_batches(calibration_set)):
        collector.update(batch)
        if verbose:
            print(f"\rcalibration: batch {i + 1}, {collector.samples} samples", end="", file=sys.stderr)
    if verbose:
        print(file=sys.stderr)
    if collector.samples == 0:
        raise ValueError("calibration set is empty")
    return collector


def compute_ranges(graph: _core.Graph, calibration_set: CalibrationSet, verbose: bool = False) -> dict:
    """Max |x| of the Input's and every Scaling node's values over the calibration set, streamed
    batch by batch. A Scaling node is measured where its codes are consumed: after the ReLU and
    MaxPool that all its consumers go through (the max of x > 0 after a ReLU: the ReLU zeroes the
    rest, so negative values must not widen its range and cost resolution).

    Args:
        graph: a float graph (usually after ``insert_scaling_nodes`` and ``normalize_parameters``).
        calibration_set: array (N, C, H, W) or an iterable of batches.
        verbose: show a progress line per batch on stderr.

    Returns:
        dict node name -> max |x| (max x for a Scaling node feeding only ReLUs), float.

    Raises:
        ValueError: empty calibration set, NaN or Inf in the data or in an activation.
    """
    return dict(_calibrate(graph, calibration_set, 0, verbose).ranges)


def compute_histograms(graph: _core.Graph, calibration_set: CalibrationSet, bins: int = HISTOGRAM_BINS,
                       verbose: bool = False, clipping_mode: Union[str, Clipping] = "MSE") -> dict:
    """Histogram of |x| per Scaling node over the calibration set, streamed, for the clipping
    search of ``clipping_mode``.

    For "MSE" and "AA" (errors) the values are those consumed, as in ``compute_ranges``: after the
    ReLU and MaxPool that all the node's consumers go through, since only their errors reach the
    next layer. For "KL" (distributions) they are the Scaling node's own output, as in TensorRT's
    entropy calibration: on the positive part alone KL clips far too hard.
    Each histogram covers a power-of-two range split into ``bins`` bins and grows by folding,
    so histograms of parts of the set merge exactly (``Histogram.merge``).

    Args:
        graph: a float graph after ``insert_scaling_nodes``.
        calibration_set: array (N, C, H, W) or an iterable of batches.
        bins: bins per histogram, a power of two (default 2048).
        verbose: show a progress line per batch on stderr.
        clipping_mode: the search the histograms are for: "MSE", "AA" or "KL" ("MAX": as "MSE").

    Returns:
        dict Scaling node name -> ``Histogram``.

    Raises:
        ValueError: empty calibration set, NaN or Inf, bins not a power of two, unknown mode.
    """
    if bins <= 0:
        raise ValueError(f"bins must be a positive power of two, got {bins}")
    return dict(_calibrate(graph, calibration_set, bins, verbose, _clipping_name(clipping_mode)).histograms)


def quantize_network(graph: _core.Graph, calibration_set: CalibrationSet = None,
                     options: _core.QuantizeOptions = None, **kwargs) -> None:
    """Quantize ``graph`` in place: afterwards ``graph.forward`` runs the integer network.

    ``quantize_network(g, x_calib, nb_bits=4, clipping_mode="MSE")``, or with an options object
    ``quantize_network(g, x_calib, options=QuantizeOptions(nb_bits=4, clipping_mode="MSE"))``;
    keywords given beside ``options`` override its fields.

    Pipeline: prepare_network, (cross_layer_equalization), insert_scaling_nodes, (compute_sign_map),
    normalize_parameters, compute_ranges and compute_histograms (one streamed pass),
    adjust_ranges, normalize_activations, (single shift), quantize_normalized_network,
    cast_to_integer.

    Args:
        graph: a float graph from ``load_onnx``. Keep ``graph.clone()`` first to compare.
        calibration_set: float array (N, C, H, W) or an iterable of such batches (a few hundred
            samples is typical), normalized as for inference.
        options: a ``QuantizeOptions``; default: 8 bits, MAX clipping, every flag off.
        **kwargs: fields of ``QuantizeOptions``:
            nb_bits: 2..16. Up to 8 bits the network runs int8 x int8 -> int32 kernels; above,
                int32 activations with int64 accumulators.
            clipping_mode: "MAX", "MSE", "AA" or "KL" (or ``Clipping``).
            cross_layer_equalization: balance weight ranges of consecutive layers first.
            optimize_signs: unsigned codes where activations are provably non-negative.
            zero_points: with optimize_signs (default on), also unsigned codes with a zero point
                for nearly non-negative activations (HardSwish, x * Sigmoid(x), gated products)
                whose readers take it out exactly (Conv/Gemm, GlobalAveragePool, Mul, tables).
            single_shift: power-of-two rescaling, compensated in the weights.
            no_quant: the whole pipeline without rounding (debugging): outputs equal the float ones.
            channel_wise: per-output-channel weight scales.
            verbose: print progress and the arbitration decisions.
            histogram_bins: bins per activation histogram (MSE, AA, KL), default 2048.

    Raises:
        OptionError: an option of the wrong type, out of its domain (nb_bits outside 2..16,
            unknown clipping mode) or unknown; the message names it. It is both a TypeError and
            a ValueError.
        ValueError: empty, non-float or non-finite calibration data, a graph that is already
            quantized.
        UnsupportedOpError: a node that cannot be quantized (see ``quantizability_report``).
        TypeError: ``graph`` is not a ``Graph`` (an ``onnx.ModelProto`` or a path: load it first),
            or a calibration batch is not an array.

    On any error the graph is left unchanged.
    """
    _check_graph(graph, "quantize_network")
    if isinstance(calibration_set, (int, np.integer)) and not isinstance(calibration_set, bool):
        # The signature before QuantizeOptions: quantize_network(graph, nb_bits, calibration_set).
        kwargs.setdefault("nb_bits", calibration_set)
        calibration_set, options = options, None
    try:
        if options is None:
            options = _core.QuantizeOptions(**kwargs)
        elif not isinstance(options, _core.QuantizeOptions):
            raise TypeError(f"quantize_network: options must be a QuantizeOptions, got {type(options).__name__}")
        elif kwargs:
            options = options.replace(**kwargs)
    except _core.OptionError as exc:
        raise _core.OptionError(f"quantize_network: {exc}") from None
    if graph.is_quantized:
        raise ValueError("the graph is already quantized; quantize a fresh load_onnx() or a clone "
                         "taken before quantizing")
    if calibration_set is None:
        raise ValueError("calibration_set is required")
    t0 = time.perf_counter()
    _core._quantize_network(graph, iter_batches(calibration_set), options)
    if options.verbose:
        print(f"quantize_network: {options.nb_bits} bits, {options.clipping_mode}, "
              f"{time.perf_counter() - t0:.2f} s", file=sys.stderr)
