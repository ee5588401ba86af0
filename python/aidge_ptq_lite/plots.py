"""Per-layer activation histograms with the chosen clip, as PNG files (matplotlib, optional)."""
from __future__ import annotations

import os
import re

import numpy as np

from . import _core
from .ptq import HISTOGRAM_BINS, compute_histograms


def plot_activation_histograms(float_graph: _core.Graph, quantized_graph: _core.Graph, calibration_set,
                               out_dir: str, channel_wise: bool = False,
                               cross_layer_equalization: bool = False) -> list:
    """Write one PNG per Scaling node: the histogram of |x| over the calibration set (the one the
    quantized network's clipping mode searched: see ``compute_histograms``), the max and the range
    the quantized network uses (the clip). Returns the written paths.

    The histograms are collected on a fresh prepared copy of ``float_graph`` (same pipeline up to
    calibration, so the node names match ``quantized_graph``).

    Raises:
        ImportError: matplotlib is not installed (``pip install matplotlib``).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot-dir needs matplotlib: pip install matplotlib") from exc
    work = float_graph.clone()
    _core._prepare_for_calibration(work, _core.QuantizeOptions(cross_layer_equalization=cross_layer_equalization,
                                                                channel_wise=channel_wise))
    histograms = compute_histograms(work, calibration_set, HISTOGRAM_BINS,
                                    clipping_mode=quantized_graph.quantization["clipping_mode"])
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for index, node in enumerate(n for n in quantized_graph.nodes() if n.op == "Scaling"):
        hist = histograms.get(node.name)
        if hist is None or hist.total == 0:
            continue
        counts = hist.counts.astype(np.float64)
        edges = np.arange(len(counts) + 1) * hist.bin_width
        q = node.quant
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.stairs(np.maximum(counts, 0.5), edges, fill=True, color="#4c72b0")
        ax.set_yscale("log")
        ax.axvline(q["max_abs"], color="#555555", linestyle=":", label=f"calibrated max {q['max_abs']:.4g}")
        if not q["dequantize_point"]:
            ax.axvline(q["range"], color="#c44e52", label=f"range used {q['range']:.4g}")
        top = edges[np.flatnonzero(counts).max() + 1] if counts.any() else edges[-1]
        ax.set_xlim(0, max(top, q["max_abs"], q["range"]) * 1.05)
        ax.set_xlabel("|activation|")
        ax.set_ylabel("count")
        ax.set_title(node.name, fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{index:03d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', node.name)}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
