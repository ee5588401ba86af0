"""The stages every real-world model goes through, shared by tests/test_realworld_models.py and
benchmarks/realworld_report.py.

Stages: load (apl.load_onnx), float (our float forward vs onnxruntime on the same file),
quantize per tensor / channel-wise at 8 bits (SQNR of our integer output against the float
output, beside onnxruntime's quant_pre_process + quantize_static QDQ U8S8 on the same
calibration data), export (our QDQ export run by onnxruntime against our integer forward).

Each stage returns its figures as a dict or raises; a later stage re-raises the error of the
stage it needs (load, quantize), so a model that does not load fails every stage with the load
error. Results are memoized per process (loading and quantizing once per model and mode).
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

import aidge_ptq_lite as apl

try:  # imported as tests/models/realworld/realworld_checks.py by path or as a package module
    from . import synthetic_data
except ImportError:
    import synthetic_data  # type: ignore

# onnxruntime's quantizer opens sessions of its own: keep their warnings (initializers listed as
# graph inputs, ...) out of the test output.
ort.set_default_logger_severity(3)

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = json.load(open(os.path.join(HERE, "manifest.json")))["models"]
MODELS = {m["name"]: m for m in MANIFEST}

STAGES = ("load", "float", "quantize_per_tensor", "quantize_channel_wise", "export_per_tensor",
          "export_channel_wise")
MODES = {"per_tensor": False, "channel_wise": True}

FLOAT_TOLERANCE = 1e-4   # max |ours - onnxruntime| / max |onnxruntime|
SQNR_MARGIN_DB = 1.0     # ours may be at most this far below onnxruntime's QDQ U8S8
EXPORT_SQNR_DB = 30.0    # onnxruntime on our export vs our integer forward
N_CALIBRATION = 32
N_EVALUATION = 32

# Our settings at 8 bits: MAX ranges (onnxruntime's MinMax) and unsigned codes where the sign map
# proves them (onnxruntime's U8 activations are unsigned too).
OUR_OPTIONS = dict(nb_bits=8, clipping_mode="MAX", optimize_signs=True)


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (test - ref)^2); inf when equal."""
    noise = float(np.sum((test.astype(np.float64) - reference) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if noise == 0.0 else 10.0 * np.log10(signal / noise)


def path_of(name: str) -> str:
    return os.path.join(HERE, MODELS[name]["file"])


def sample_shape(name: str):
    return tuple(MODELS[name]["input_shape"][1:])


def calibration(name: str) -> np.ndarray:
    return synthetic_data.calibration_set(sample_shape(name), N_CALIBRATION)


def evaluation(name: str) -> np.ndarray:
    return synthetic_data.evaluation_set(sample_shape(name), N_EVALUATION)


def batched(fn, x: np.ndarray, fixed_batch) -> np.ndarray:
    """fn on x, one sample at a time for models whose batch is a literal in the file."""
    if not fixed_batch:
        return fn(x)
    return np.concatenate([fn(x[i:i + fixed_batch]) for i in range(0, len(x), fixed_batch)])


def ort_forward(model, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return batched(lambda b: sess.run(None, {name: b})[0], x, None)


class _Memo:
    """Results and errors of expensive steps, so that each runs once per process."""

    def __init__(self):
        self.done = {}

    def __call__(self, key, fn):
        if key not in self.done:
            try:
                self.done[key] = (True, fn())
            except Exception as exc:  # re-raised to every stage that needs this step
                self.done[key] = (False, exc)
        ok, value = self.done[key]
        if not ok:
            raise value
        return value


_memo = _Memo()


def loaded(name: str) -> apl.Graph:
    return _memo(("load", name), lambda: apl.load_onnx(path_of(name)))


def float_reference(name: str) -> np.ndarray:
    fixed = MODELS[name]["fixed_batch"]
    return _memo(("ort_float", name), lambda: batched(lambda b: ort_forward(path_of(name), b), evaluation(name), fixed))


def quantized(name: str, mode: str) -> apl.Graph:
    def run():
        g = loaded(name).clone()
        fixed = MODELS[name]["fixed_batch"]
        x = calibration(name)
        batches = [x[i:i + fixed] for i in range(0, len(x), fixed)] if fixed else x
        apl.quantize_network(g, batches, channel_wise=MODES[mode], **OUR_OPTIONS)
        return g
    return _memo(("quantized", name, mode), run)


def our_forward(g: apl.Graph, name: str, x: np.ndarray) -> np.ndarray:
    return batched(g.forward, x, MODELS[name]["fixed_batch"])


def ort_qdq_model(name: str, mode: str) -> onnx.ModelProto:
    """onnxruntime's own PTQ on the float file: quant_pre_process, then quantize_static (QDQ,
    U8 activations, S8 weights, MinMax, per channel or not) on our calibration set."""
    def run():
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quant_pre_process, quantize_static)
        fixed = MODELS[name]["fixed_batch"] or 1
        x = calibration(name)
        input_name = onnx.load(path_of(name), load_external_data=False).graph.input[0].name

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.batches = iter([{input_name: x[i:i + fixed]} for i in range(0, len(x), fixed)])

            def get_next(self):
                return next(self.batches, None)

        with tempfile.TemporaryDirectory() as tmp:
            src, pre, out = (os.path.join(tmp, f) for f in ("src.onnx", "pre.onnx", "qdq.onnx"))
            onnx.save(peer_input(name), src)
            cwd = os.getcwd()
            os.chdir(tmp)  # its shape inference leaves temporary files in the working directory
            try:
                try:
                    quant_pre_process(src, pre)
                except Exception:  # its symbolic shape inference gives up on some graphs (Resize)
                    quant_pre_process(src, pre, skip_symbolic_shape=True)
            finally:
                os.chdir(cwd)
            quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, per_channel=MODES[mode],
                            calibrate_method=CalibrationMethod.MinMax)
            return onnx.load(out)
    return _memo(("ort_qdq", name, mode), run)


def ort_quantized_output(name: str, mode: str) -> np.ndarray:
    """onnxruntime's QDQ U8S8 model (ort_qdq_model) on the evaluation set."""
    return _memo(("ort_quantized", name, mode),
                 lambda: batched(lambda b: ort_forward(ort_qdq_model(name, mode), b), evaluation(name),
                                 MODELS[name]["fixed_batch"]))


def without_initializer_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its initializers no longer listed as graph inputs (IR < 4 style), as
    onnxruntime advises (tools/python/remove_initializer_from_input.py): its quantizer otherwise
    writes an invalid QDQ model. Only the peer's input is cleaned; ours loads the file as is."""
    names = {t.name for t in model.graph.initializer}
    kept = [i for i in model.graph.input if i.name not in names]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model.ir_version = max(model.ir_version, 4)
    return model


def peer_input(name: str) -> onnx.ModelProto:
    """What onnxruntime's quantizer is given: the file without initializer inputs and, below
    opset 13, converted to opset 13 by onnx's version converter (its per-channel QDQ needs the
    opset-13 DequantizeLinear axis; on an opset 9 file it writes an invalid model)."""
    model = without_initializer_inputs(onnx.load(path_of(name)))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        from onnx import version_converter
        model = version_converter.convert_version(model, 13)
    return model


# ------------------------------------------------------------------------------------- stages
def stage_load(name: str) -> dict:
    return {"nodes": len(loaded(name).nodes())}


def float_figures(name: str) -> dict:
    """Our float forward against onnxruntime's: max error relative to max |y|."""
    x, ref = evaluation(name), float_reference(name)
    y = our_forward(loaded(name), name, x)
    assert y.shape == ref.shape, f"{name} float: output shape {y.shape}, onnxruntime gives {ref.shape}"
    return {"float_error": float(np.max(np.abs(y - ref)) / max(float(np.max(np.abs(ref))), 1e-12))}


def stage_float(name: str) -> dict:
    figures = float_figures(name)
    assert figures["float_error"] <= FLOAT_TOLERANCE, (
        f"{name} float: forward differs from onnxruntime by more than {FLOAT_TOLERANCE:g} of max |y| "
        f"(got {figures['float_error']:.2e})")
    return figures


def our_quantized_sqnr(name: str, mode: str) -> float:
    """SQNR (dB) of our 8-bit integer output against onnxruntime's float output."""
    y = our_forward(quantized(name, mode), name, evaluation(name))
    assert np.all(np.isfinite(y)), f"{name} {mode}: the integer network gives non-finite outputs"
    return sqnr_db(float_reference(name), y)


def ort_quantized_sqnr(name: str, mode: str) -> float:
    """SQNR (dB) of onnxruntime's QDQ U8S8 output against its float output."""
    return sqnr_db(float_reference(name), ort_quantized_output(name, mode))


def stage_quantize(name: str, mode: str) -> dict:
    figures = {"sqnr_ours": our_quantized_sqnr(name, mode), "sqnr_ort": ort_quantized_sqnr(name, mode)}
    assert figures["sqnr_ours"] >= figures["sqnr_ort"] - SQNR_MARGIN_DB, (
        f"{name} {mode}: our 8-bit SQNR is more than {SQNR_MARGIN_DB:g} dB below onnxruntime's QDQ U8S8 "
        f"(got ours {figures['sqnr_ours']:.1f} dB, onnxruntime {figures['sqnr_ort']:.1f} dB)")
    return figures


def export_sqnr(name: str, mode: str) -> float:
    """SQNR (dB) of onnxruntime on our QDQ export against our integer forward."""
    g = quantized(name, mode)
    x = evaluation(name)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}_{mode}_qdq.onnx")
        apl.export_onnx(g, path)
        theirs = batched(lambda b: ort_forward(path, b), x, MODELS[name]["fixed_batch"])
    ours = our_forward(g, name, x)
    assert theirs.shape == ours.shape, f"{name} {mode} export: output shape {theirs.shape}, ours {ours.shape}"
    return sqnr_db(ours, theirs)


def stage_export(name: str, mode: str) -> dict:
    value = export_sqnr(name, mode)
    assert value >= EXPORT_SQNR_DB, (f"{name} {mode} export: onnxruntime on the QDQ export is below "
                                     f"{EXPORT_SQNR_DB:g} dB SQNR against our integer forward (got {value:.1f} dB)")
    return {"export_sqnr": value}


def run_stage(name: str, stage: str) -> dict:
    if stage == "load":
        return stage_load(name)
    if stage == "float":
        return stage_float(name)
    kind, mode = stage.split("_", 1)
    if kind == "quantize":
        return stage_quantize(name, mode)
    return stage_export(name, mode)


def failure_text(exc: BaseException) -> str:
    """The stable part of an error: 'Type: message' up to the first ';' (the supported-op list
    grows as ops merge) or ' (got' (measured figures)."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    for cut in ("; ", " (got"):
        text = text.split(cut)[0]
    return text[:240]
