"""aidge_ptq_lite: post-training quantization of convolutional networks to real integer execution.

Quick start::

    import aidge_ptq_lite as apl
    g = apl.load_onnx("model.onnx")
    y = g.forward(x)                     # float32 (N, C, H, W) -> logits
    apl.quantize_network(g, nb_bits=8, calibration_set=x_calib)
    yq = g.forward(x)                    # the integer network, dequantized
"""
import os

# Idle OpenMP threads spin a little, then sleep. 30,000 spins (well under a millisecond here)
# bridge the gaps between the kernels of one forward; sleeping at once (OMP_WAIT_POLICY=PASSIVE,
# the default until 2026-12-04) made every kernel pay a futex wake-up: int8 ResNet-18 at batch 1
# ran 2.2x slower. The bound keeps an idle thread from burning the time slice a descheduled
# partner needs on a loaded machine. Your own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins. (Read by
# libgomp when it loads, with _core below.)
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "30000")

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
