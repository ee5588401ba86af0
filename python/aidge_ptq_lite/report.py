"""layer_report: which layer broke my accuracy? SQNR of every quantized activation against float."""
from __future__ import annotations

from typing import List

import numpy as np

from . import _core


def _sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    noise = float(np.sum((ref.astype(np.float64) - test) ** 2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * np.log10(signal / noise)


def _structure(graph: _core.Graph) -> dict:
    """Node name -> (op, per-sample shape, inputs), Scaling nodes left out (their consumers read
    what the Scaling node reads): what a float graph and its quantized form have in common."""
    nodes = {n.name: n for n in graph.nodes()}

    def source(name):
        while nodes[name].op == "Scaling":
            name = nodes[name].inputs[0]
        return name

    return {n.name: (n.op, tuple(n.shape), tuple(source(i) for i in n.inputs))
            for n in nodes.values() if n.op != "Scaling"}


def _check_same_network(reference: _core.Graph, quantized: _core.Graph) -> None:
    ref, q = _structure(reference), _structure(quantized)
    if ref == q and reference.input_shape == quantized.input_shape:
        return
    only_q = sorted(set(q) - set(ref))
    only_ref = sorted(set(ref) - set(q))
    differ = sorted(k for k in set(q) & set(ref) if q[k] != ref[k])
    details = []
    if only_q:
        details.append(f"{len(only_q)} node(s) only in the quantized graph ({', '.join(only_q[:3])}"
                       + (", ..." if len(only_q) > 3 else "") + ")")
    if only_ref:
        details.append(f"{len(only_ref)} only in the float graph ({', '.join(only_ref[:3])}"
                       + (", ..." if len(only_ref) > 3 else "") + ")")
    if differ:
        details.append(f"{len(differ)} differing in op, shape or inputs ({', '.join(differ[:3])}"
                       + (", ..." if len(differ) > 3 else "") + ")")
    if reference.input_shape != quantized.input_shape:
        details.append(f"inputs of shape {tuple(reference.input_shape)} and {tuple(quantized.input_shape)}")
    raise ValueError("layer_report: float_graph and quantized_graph are not the same network: "
                     + "; ".join(details) + " (pass the float graph quantize_network started from, "
                     "e.g. g.clone() taken before it)")


def layer_report(float_graph: _core.Graph, quantized_graph: _core.Graph, x: np.ndarray,
                 verbose: bool = False) -> List[dict]:
    """Per quantized activation (the Input and each Scaling node): SQNR in dB of the integer
    network's value against the float network's, with the range, step, rescaling and sign.

    Args:
        float_graph: the float network (``g.clone()`` taken before ``quantize_network``).
        quantized_graph: the same network after ``quantize_network``.
        x: float32 inputs (N, C, H, W); a few dozen samples are enough.
        verbose: also print the table.

    Returns:
        A list of dicts in network order with keys ``node``, ``after`` (the op it rescales),
        ``sqnr_db``, ``range``, ``step``, ``rescale`` (the factor, or "2^-k" shifts), ``signed``.

    Raises:
        ValueError: if ``quantized_graph`` is not quantized or ``float_graph`` is, if they are
            not the same network (nodes, ops, shapes and connections differ), or if ``x`` holds
            NaN or Inf.
        TypeError: if either graph is not a ``Graph``.
    """
    for which, g in (("float_graph", float_graph), ("quantized_graph", quantized_graph)):
        if not isinstance(g, _core.Graph):
            raise TypeError(f"layer_report: {which} must be a Graph (from load_onnx), got {type(g).__name__}")
    x_array = np.asarray(x)
    if np.issubdtype(x_array.dtype, np.floating) and not np.all(np.isfinite(x_array)):
        # The float network would give NaN at every layer and the SQNR column would be NaN.
        raise ValueError("layer_report: x holds NaN or Inf; compare the networks on finite inputs")
    if not quantized_graph.is_quantized or float_graph.is_quantized:
        raise ValueError("layer_report expects (float graph, quantized graph)")
    reference = float_graph.clone()
    _core.prepare_network(reference)  # BatchNorm folded, as in the quantized graph
    if quantized_graph.quantization["cross_layer_equalization"]:
        _core.cross_layer_equalization(reference)  # the same per-channel rescaling
    _check_same_network(reference, quantized_graph)
    rows, float_names, q_names = [], [], []
    for node in quantized_graph.nodes():
        if node.op not in ("Input", "Scaling"):
            continue
        counterpart = node.name if node.op == "Input" else node.inputs[0]
        try:
            reference.node(counterpart)
        except _core.GraphError:
            continue
        rows.append((node, counterpart))
        float_names.append(counterpart)
        q_names.append(node.name)
    ref_out = reference.intermediate_outputs(x, float_names)
    q_out = quantized_graph.intermediate_outputs(x, q_names)
    ops = {n.name: n.op for n in quantized_graph.nodes()}
    report = []
    for node, counterpart in rows:
        q = node.quant
        if node.op == "Scaling" and q["multiplier"]:
            factors = [m / 2.0 ** s for m, s in q["multiplier"]]
            rescale = f"{min(factors):.4g}" if len(set(factors)) == 1 else f"{min(factors):.4g}..{max(factors):.4g}"
        else:
            rescale = "-"
        report.append({
            "node": node.name,
            "after": ops[counterpart] if node.op == "Scaling" else "Input",
            "sqnr_db": _sqnr_db(ref_out[counterpart], q_out[node.name]),
            "range": q["range"],
            "step": q["step"] if not q["dequantize_point"] else None,
            "rescale": "dequantize" if q["dequantize_point"] else rescale,
            "signed": not q["unsigned"],
        })
    if verbose:
        print(format_layer_report(report))
    return report


def format_layer_report(report: List[dict]) -> str:
    """The layer report as a text table, worst SQNR marked."""
    worst = min((r["sqnr_db"] for r in report), default=0.0)
    width = max([len(r["node"]) for r in report] + [4])
    lines = [f"{'node':<{width}}  {'after':<18} {'SQNR dB':>8} {'range':>10} {'step':>10}  {'rescale':<16} sign"]
    for r in report:
        step = "-" if r["step"] is None else f"{r['step']:.4g}"
        mark = "  <- worst" if r["sqnr_db"] == worst else ""
        lines.append(f"{r['node']:<{width}}  {r['after']:<18} {r['sqnr_db']:8.2f} {r['range']:10.4g} "
                     f"{step:>10}  {r['rescale']:<16} {'s' if r['signed'] else 'u'}{mark}")
    return "\n".join(lines)
