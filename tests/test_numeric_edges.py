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
