"""Numeric edge cases of the quantized pipeline (issue 16): one NaN rule for every bit width,
ranges that cannot be ranges, and calibration data at the wrong scale."""
import numpy as np
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import _core, datasets, zoo


@pytest.fixture(scope="module")
def calib():
    return datasets.load_calibration_set(64, data_dir="bundled")


@pytest.mark.parametrize("nb_bits", [4, 8, 12, 16])
def test_a_nan_input_is_code_zero_at_every_width(calib, nb_bits):
    g = apl.load_onnx(zoo.model_path("lenet"))
    apl.quantize_network(g, calib, nb_bits=nb_bits)
    x = calib[:4].copy()
    x[:, 0, 3:9, 5:11] = np.nan
    zeros = x.copy()
    zeros[np.isnan(zeros)] = 0.0
    np.testing.assert_array_equal(g.forward(x, dequantize=False), g.forward(zeros, dequantize=False))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_normalize_activations_refuses_a_range_that_is_not_one(bad):
    g = apl.load_onnx(zoo.model_path("lenet"))
    apl.prepare_network(g)
    apl.insert_scaling_nodes(g)
    apl.normalize_parameters(g)
    ranges = apl.compute_ranges(g, datasets.load_calibration_set(16, data_dir="bundled"))
    victim = next(name for name in ranges if name != g.input_name)
    ranges[victim] = bad
    with pytest.raises(ValueError, match=f"range of Scaling '{victim}'"):
        apl.normalize_activations(g, ranges)


def test_calibration_data_at_the_wrong_scale_says_what_to_check(calib):
    g = apl.load_onnx(zoo.model_path("lenet"))
    with pytest.raises(ValueError, match="scaled as for inference"):
        apl.quantize_network(g, calib * np.float32(1e-30))
    assert not g.is_quantized


@pytest.mark.parametrize("nb_bits", [4, 8, 16])
def test_input_codes_round_half_to_even_and_saturate(calib, nb_bits):
    """The input quantization (branch-free, vectorised) against numpy: x / step in double,
    rounded half to even, NaN to 0, then clamped (+-Inf and huge values saturate)."""
    g = apl.load_onnx(zoo.model_path("lenet"))
    apl.quantize_network(g, calib, nb_bits=nb_bits)
    q = g.node(g.input_name).quant
    step, lo, hi = q["step"], q["lo"], q["hi"]
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.5, 1.5, size=(3, 1, 28, 28)).astype(np.float32)
    flat = x.reshape(-1)
    ties = (np.arange(-40, 40) + 0.5) * step  # halfway between codes (up to float32 rounding)
    specials = [np.nan, np.inf, -np.inf, 1e30, -1e30, 3.4e38, -0.0, 1e-45, -1e-45, hi * step, lo * step]
    flat[:len(ties)] = ties
    flat[len(ties):len(ties) + len(specials)] = specials
    codes = np.rint(g.intermediate_outputs(x, [g.input_name])[g.input_name].astype(np.float64) / step)
    v = x.astype(np.float64) * (1.0 / step)
    expected = np.clip(np.rint(np.where(np.isnan(v), 0.0, v)), lo, hi)
    np.testing.assert_array_equal(codes, expected)
