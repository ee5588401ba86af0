"""aidge_ptq_lite: post-training quantization of convolutional networks to real integer execution.

Quick start::

    import aidge_ptq_lite as apl
    g = apl.load_onnx("model.onnx")
    y = g.forward(x)                     # float32 (N, C, H, W) -> logits
    apl.quantize_network(g, nb_bits=8, calibration_set=x_calib)
    yq = g.forward(x)                    # the integer network, dequantized
"""
from ._core import (
    Error,
    Graph,
    GraphError,
    Node,
    QuantizabilityReport,
    RangeCollector,
    ShapeError,
    UnsupportedOpError,
    cast_to_integer,
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
from .export import export_onnx
from .onnx_io import load_onnx
from .ptq import Clipping, compute_ranges, quantize_network
from .report import layer_report

__all__ = [
    "Clipping", "Error", "Graph", "GraphError", "Node", "QuantizabilityReport", "RangeCollector",
    "ShapeError", "UnsupportedOpError", "cast_to_integer", "compute_ranges", "detected_simd_level",
    "export_onnx", "insert_scaling_nodes", "layer_report", "load_onnx", "normalize_activations", "normalize_parameters",
    "prepare_network", "quantizability_report", "quantize_network", "quantize_normalized_network",
    "set_simd_level", "simd_level", "supported_ops",
]
__version__ = "0.1.0"
