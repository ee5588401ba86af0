"""Where does a real-world model's 8-bit SQNR go? Per tensor, ours against onnxruntime's QDQ U8S8.

For one model of tests/models/realworld (same data and settings as realworld_report.py):
1. every quantized activation, the SQNR against float of our integer network (apl.layer_report)
   beside that of onnxruntime's QDQ model at the same tensor (its DequantizeLinear output against
   the float model's tensor), with onnxruntime's float min / max and zero point;
2. with --ablation, onnxruntime's output SQNR when the activations of one producing op type are
   made symmetric (scale max |x| / 127, zero point 128, the other activations as onnxruntime chose),
   and when all but that type are: which of onnxruntime's asymmetric zero points buy its SQNR;
3. with --zero-points, an estimate of what zero points would give OUR network: our QDQ export run
   by onnxruntime (graph optimizations off: the QDQ arithmetic as written), with the per-tensor
   activations after chosen op types given asymmetric u8 grids from their calibration min / max
   (scale (max - min) / 255, zero point round(-min / scale)), as onnxruntime's MinMax does.

Usage: python benchmarks/realworld_tensor_report.py MODEL [--mode per_tensor|channel_wise] [--ablation]
                                                       [--zero-points]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "models", "realworld"))
os.environ.setdefault("OMP_NUM_THREADS", "2")

import aidge_ptq_lite as apl  # noqa: E402
import realworld_checks as rc  # noqa: E402


def activation_quantizers(model: onnx.ModelProto):
    """(QuantizeLinear node, op type of the node that produced its input or 'Input') per
    activation (QuantizeLinear of a non-initializer)."""
    initializers = {i.name for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    return [(n, producer[n.input[0]].op_type if n.input[0] in producer else "Input")
            for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in initializers]


def symmetrized(model: onnx.ModelProto, pick) -> onnx.ModelProto:
    """A copy whose activations picked by pick(op_type) and not non-negative get a symmetric u8
    grid: scale max |x| / 127 over onnxruntime's range, zero point 128."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name: i for i in model.graph.initializer}
    for q, op in activation_quantizers(model):
        if not pick(op):
            continue
        scale, zero = (numpy_helper.to_array(inits[q.input[k]]).astype(np.float64) for k in (1, 2))
        lo, hi = -zero * scale, (255 - zero) * scale
        if lo >= 0:  # non-negative: unsigned as ours
            continue
        inits[q.input[1]].CopyFrom(numpy_helper.from_array(np.array(max(-lo, hi) / 127, np.float32), q.input[1]))
        inits[q.input[2]].CopyFrom(numpy_helper.from_array(np.array(128, np.uint8), q.input[2]))
    return model


def with_zero_points(model: onnx.ModelProto, ranges: dict, pick) -> onnx.ModelProto:
    """A copy whose per-tensor activations picked by pick(op_type) and not non-negative get a
    u8 grid over their (min, max) in `ranges` (QuantizeLinear input name -> (min, max))."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name: i for i in model.graph.initializer}
    done = set()
    for q, op in activation_quantizers(model):
        lo, hi = min(ranges[q.input[0]][0], 0.0), max(ranges[q.input[0]][1], 0.0)
        if not pick(op) or lo >= 0 or q.input[1] in done or numpy_helper.to_array(inits[q.input[1]]).size != 1:
            continue
        scale = (hi - lo) / 255
        inits[q.input[1]].CopyFrom(numpy_helper.from_array(np.array(scale, np.float32), q.input[1]))
        inits[q.input[2]].CopyFrom(numpy_helper.from_array(np.array(int(np.clip(round(-lo / scale), 0, 255)), np.uint8),
                                                           q.input[2]))
        done.add(q.input[1])
    return model


def run_unoptimized(model: onnx.ModelProto, x: np.ndarray, outputs=None):
    """onnxruntime without graph optimizations (no QLinear fusions: each QDQ pair as written)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(outputs or [sess.get_outputs()[0].name], {sess.get_inputs()[0].name: x})


def zero_point_estimates(name: str, mode: str) -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ours.onnx")
        apl.export_onnx(rc.quantized(name, mode), path)
        ours = onnx.load(path)
    probe = onnx.ModelProto.FromString(ours.SerializeToString())
    names = [q.input[0] for q, _ in activation_quantizers(ours)]
    for n in names:
        probe.graph.output.append(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    ranges = {n: (float(v.min()), float(v.max())) for n, v in zip(names, run_unoptimized(probe, rc.calibration(name), names))}
    ref, x = rc.float_reference(name), rc.evaluation(name)

    def sqnr(pick):
        return rc.sqnr_db(ref, run_unoptimized(with_zero_points(ours, ranges, pick), x)[0])
    nearly_non_negative = ("Mul", "HardSwish")  # HardSwish, x * Sigmoid(x), gated (SE) outputs
    print(f"\nour QDQ export, zero points added (dB): none {sqnr(lambda op: False):.2f}, after Mul and HardSwish "
          f"{sqnr(lambda op: op in nearly_non_negative):.2f}, + GlobalAveragePool "
          f"{sqnr(lambda op: op in nearly_non_negative + ('GlobalAveragePool',)):.2f}, everywhere {sqnr(lambda op: True):.2f}"
          f"; onnxruntime's own {rc.ort_quantized_sqnr(name, mode):.2f}")


def onnxruntime_tensor_sqnr(name: str, mode: str) -> dict:
    """ONNX node name -> (SQNR dB, float min, float max, zero point) of onnxruntime's QDQ
    activation at that node's output."""
    x = rc.evaluation(name)
    qdq = onnx.ModelProto.FromString(rc.ort_qdq_model(name, mode).SerializeToString())
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    dequantized = {d.input[0]: d.output[0] for d in qdq.graph.node if d.op_type == "DequantizeLinear"}
    float_model = onnx.load(rc.path_of(name))
    producer = {o: n.name for n in float_model.graph.node for o in n.output}
    tensors = {q.input[0]: (dequantized[q.output[0]], int(inits[q.input[2]]))
               for q, _ in activation_quantizers(qdq) if q.input[0] in producer}
    for tensor, (deq, _) in tensors.items():
        qdq.graph.output.append(helper.make_tensor_value_info(deq, onnx.TensorProto.FLOAT, None))
        float_model.graph.output.append(helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))

    def run(model, names):
        import onnxruntime as ort
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x})))

    ref = run(float_model, list(tensors))
    got = run(qdq, [deq for deq, _ in tensors.values()])
    return {producer[t]: (rc.sqnr_db(ref[t], got[deq]), float(ref[t].min()), float(ref[t].max()), zero)
            for t, (deq, zero) in tensors.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=list(rc.MODELS))
    parser.add_argument("--mode", choices=list(rc.MODES), default="per_tensor")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--zero-points", action="store_true")
    args = parser.parse_args()
    name, mode = args.model, args.mode
    if rc.MODELS[name]["fixed_batch"]:
        sys.exit(f"{name}: fixed batch in the file; this report runs the evaluation set as one batch")

    theirs = onnxruntime_tensor_sqnr(name, mode)
    report = apl.layer_report(rc.loaded(name).clone(), rc.quantized(name, mode), rc.evaluation(name))
    print(f"{name} {mode}: SQNR (dB) against float per quantized activation")
    print(f"{'node':48s} {'after':12s} {'ours':>6s} {'sign':>4s} | {'ort':>6s} {'min':>8s} {'max':>8s} {'zp':>4s}")
    for row in report:
        ort_row = theirs.get(row["node"].replace("_scaling", ""))
        tail = f"{ort_row[0]:6.2f} {ort_row[1]:8.3f} {ort_row[2]:8.3f} {ort_row[3]:4d}" if ort_row else ""
        print(f"{row['node'][-48:]:48s} {row['after'][:12]:12s} {row['sqnr_db']:6.2f} "
              f"{'s' if row['signed'] else 'u':>4s} | {tail}")
    print("(ours below 10 dB before a ReLU: the report compares the Scaling node's codes, which the "
          "ReLU after it clamps, with the float value before the ReLU)")
    print(f"output: ours {rc.our_quantized_sqnr(name, mode):.2f} dB, onnxruntime {rc.ort_quantized_sqnr(name, mode):.2f} dB")

    if args.ablation:
        qdq, ref, x = rc.ort_qdq_model(name, mode), rc.float_reference(name), rc.evaluation(name)
        kinds = sorted({op for _, op in activation_quantizers(qdq)})

        def sqnr(model):
            return rc.sqnr_db(ref, rc.ort_forward(model, x))
        print(f"\nonnxruntime output SQNR, activations made symmetric: all {sqnr(symmetrized(qdq, lambda op: True)):.2f} dB")
        for kind in kinds:
            print(f"  after {kind:18s} only {sqnr(symmetrized(qdq, lambda op: op == kind)):6.2f}   "
                  f"all but {sqnr(symmetrized(qdq, lambda op: op != kind)):6.2f}")

    if args.zero_points:
        zero_point_estimates(name, mode)


if __name__ == "__main__":
    main()
