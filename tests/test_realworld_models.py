"""The real-world model set (issue 15): small published architectures as torch 2.13 exports them
(opset 17, dynamic batch) and classic-zoo style opset 7-9 files, committed under
tests/models/realworld/ by tools/make_realworld_models.py.

Per model and stage (tests/models/realworld/realworld_checks.py):
- load: apl.load_onnx on the file as exported;
- float: our float forward within 1e-4 of max |y| of onnxruntime on the same file;
- quantize_per_tensor / quantize_channel_wise: 8 bits (MAX, unsigned codes where proven), SQNR
  of our integer output against float at most 1 dB below onnxruntime's quant_pre_process +
  quantize_static QDQ U8S8 (MinMax) on the same 32 calibration images;
- export_per_tensor / export_channel_wise: onnxruntime on our QDQ export, SQNR >= 30 dB against
  our integer forward.
The channel-wise stages are in the slow suite; the rest runs by default.

What fails today is listed below, with the stable part of its error (up to the first ';' or
' (got'): such a case is a strict xfail that passes only if it fails with that error. A case that
starts to pass, or fails differently, fails the suite: update the tables (run
`python benchmarks/realworld_report.py --xfail-table` for the current ones).
"""
import os
import sys

import numpy as np
import onnx
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "realworld"))
import realworld_checks as rc  # noqa: E402
import synthetic_data  # noqa: E402

DEFAULT_STAGES = ("load", "float", "quantize_per_tensor", "export_per_tensor")
SLOW_STAGES = ("quantize_channel_wise", "export_channel_wise")

# Every stage of these models fails with their load error.
LOAD_FAILURES = {
}

# Models that load but fail a later stage.
STAGE_FAILURES = {
    # (none: mobilenet_v3_small and efficientnet_b0 passed once nearly non-negative activations
    # got zero points, choose_zero_points)
}


class KnownFailure(Exception):
    """The case failed with the error its table entry records."""


def expected_failure(name, stage):
    return STAGE_FAILURES.get((name, stage), LOAD_FAILURES.get(name))


def cases(stages):
    for name in rc.MODELS:
        for stage in stages:
            expected = expected_failure(name, stage)
            marks = [pytest.mark.xfail(strict=True, raises=KnownFailure, reason=expected)] if expected else []
            yield pytest.param(name, stage, marks=marks, id=f"{name}-{stage}")


def check(name, stage):
    expected = expected_failure(name, stage)
    try:
        rc.run_stage(name, stage)
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        if expected is not None and expected in text:
            raise KnownFailure(text) from exc
        raise


@pytest.mark.parametrize("name,stage", list(cases(DEFAULT_STAGES)))
def test_realworld_stage(name, stage):
    check(name, stage)


@pytest.mark.slow
@pytest.mark.parametrize("name,stage", list(cases(SLOW_STAGES)))
def test_realworld_stage_channel_wise(name, stage):
    check(name, stage)


def test_failure_tables_name_real_cases():
    """A typo in a table entry would silently never match: every key must be a model and stage."""
    assert set(LOAD_FAILURES) <= set(rc.MODELS)
    for name, stage in STAGE_FAILURES:
        assert name in rc.MODELS and stage in rc.STAGES, (name, stage)
        assert stage != "load", f"{name}: load failures go in LOAD_FAILURES"


@pytest.mark.parametrize("name", list(rc.MODELS))
def test_manifest_entry_matches_file(name):
    """The manifest's input shape is the file's, the file passes the onnx checker and runs in
    onnxruntime on the synthetic data with the output the manifest's shape implies."""
    entry = rc.MODELS[name]
    model = onnx.load(rc.path_of(name))
    onnx.checker.check_model(model)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert list(dims[1:]) == entry["input_shape"][1:]
    assert (dims[0] == entry["fixed_batch"]) if entry["fixed_batch"] else isinstance(dims[0], str)
    assert sorted({n.op_type for n in model.graph.node}) == entry["ops"]
    y = rc.float_reference(name)
    assert len(y) == rc.N_EVALUATION and np.all(np.isfinite(y))


def test_model_set_size():
    total = sum(os.path.getsize(rc.path_of(name)) for name in rc.MODELS)
    assert total < 8 * 1024 * 1024, f"the committed model set is {total / 2**20:.2f} MiB (budget 8 MiB)"


def test_synthetic_data_is_seeded_and_smooth():
    """Same seed, same data; neighbouring pixels strongly correlated (unlike N(0, 1) noise)."""
    a, b = synthetic_data.calibration_set((3, 32, 32)), synthetic_data.calibration_set((3, 32, 32))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, synthetic_data.evaluation_set((3, 32, 32)))
    neighbour = np.corrcoef(a[:, :, :, :-1].ravel(), a[:, :, :, 1:].ravel())[0, 1]
    white = np.random.default_rng(0).standard_normal(a.shape)
    assert neighbour > 0.5 > abs(np.corrcoef(white[:, :, :, :-1].ravel(), white[:, :, :, 1:].ravel())[0, 1])
