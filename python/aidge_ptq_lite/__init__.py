"""aidge_ptq_lite: post-training quantization of convolutional networks to real integer execution.

Quick start::

    import aidge_ptq_lite as apl
    g = apl.load_onnx("model.onnx")
    y = g.forward(x)                     # float32 (N, C, H, W) -> logits
    apl.quantize_network(g, nb_bits=8, calibration_set=x_calib)
    yq = g.forward(x)                    # the integer network, dequantized
"""
import os

# Idle OpenMP threads sleep instead of spinning: on a loaded machine a spinning thread burns the
# time slice its descheduled partner needs (set OMP_WAIT_POLICY yourself to override).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._core import (  # noqa: E402
    Error,
    Graph,
    GraphError,
    Node,
    Histogram,
    OptionError,
    QuantizabilityReport,
    QuantizeOptions,
    RangeCollector,
    ShapeError,
    UnsupportedOpError,
    adjust_ranges,
    cast_to_integer,
    compute_kl_clipping,
    compute_me_clipping,
    compute_sign_map,
    cross_layer_equalization,
    detected_simd_level,
    insert_scaling_nodes,
    normalize_activations,
    normalize_parameters,
    prepare_network,
    quantizability_report,
    quantize_normalized_network,
    set_simd_level,
    simd_level,
    supported_ops,
)
# APL_SIMD is read once, here: an invalid value is a ValueError at import that names the variable
# (not an error at the first forward).
simd_level()

from .export import export_onnx  # noqa: E402
from .export_c import export_c  # noqa: E402
from .onnx_io import load_onnx  # noqa: E402
from .ptq import Clipping, compute_histograms, compute_ranges, quantize_network  # noqa: E402
from .report import layer_report  # noqa: E402

__all__ = [
    "Clipping", "Error", "Graph", "GraphError", "Histogram", "Node", "OptionError", "QuantizabilityReport",
    "QuantizeOptions", "RangeCollector", "ShapeError", "UnsupportedOpError", "adjust_ranges", "cast_to_integer",
    "compute_histograms", "compute_kl_clipping", "compute_me_clipping", "compute_ranges",
    "compute_sign_map", "cross_layer_equalization", "detected_simd_level",
    "export_c", "export_onnx", "insert_scaling_nodes", "layer_report", "load_onnx", "normalize_activations", "normalize_parameters",
    "prepare_network", "quantizability_report", "quantize_network", "quantize_normalized_network",
    "set_simd_level", "simd_level", "supported_ops",
]
__version__ = "0.1.0"
