"""Pools on 5-D tensors (N, C, D, H, W) and Pad of any axis (issue 15: torch writes LRN as a
Pad + avg_pool3d over a (N, 1, C, H, W) view; other exporters use 3-D pools as they are).
Oracles: onnxruntime for the float forward and for our QDQ export of the quantized network, the
float network for the quantized one, the scalar level for the other SIMD levels."""
import numpy as np
import onnx
import onnx.shape_inference
import pytest
from onnx import helper, numpy_helper

import aidge_ptq_lite as apl

from conftest import (assert_same_integers_at_every_level, int64_initializer as _ints, ort_forward,
                      one_input_model, relative_error, sqnr_db as _sqnr)


def _model(nodes, inits, in_shape, opset=19):
    return one_input_model(nodes, inits, in_shape, opset)


RNG = np.random.default_rng(53)


def _init(name, shape, scale=0.5):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


# ---- one op on a 5-D input: float forward against onnxruntime ------------------------------------

SHAPE_5D = (2, 7, 9, 8)
ONE_OP = {
    "maxpool": ("MaxPool", dict(kernel_shape=[2, 3, 2], strides=[1, 2, 2])),
    "maxpool_pads_dilations": ("MaxPool", dict(kernel_shape=[3, 2, 2], pads=[1, 0, 1, 1, 1, 0],
                                               dilations=[2, 1, 2])),
    "maxpool_ceil": ("MaxPool", dict(kernel_shape=[2, 3, 3], strides=[2, 2, 2], ceil_mode=1)),
    "avgpool": ("AveragePool", dict(kernel_shape=[3, 2, 2], strides=[1, 1, 2])),
    "avgpool_exclude_pad": ("AveragePool", dict(kernel_shape=[3, 3, 2], pads=[1, 1, 0, 1, 1, 1])),
    "avgpool_include_pad": ("AveragePool", dict(kernel_shape=[3, 3, 2], pads=[1, 1, 0, 1, 1, 1],
                                                count_include_pad=1)),
    "avgpool_ceil": ("AveragePool", dict(kernel_shape=[2, 3, 3], strides=[2, 2, 2], ceil_mode=1)),
    "avgpool_same": ("AveragePool", dict(kernel_shape=[2, 4, 3], strides=[2, 2, 1], auto_pad="SAME_UPPER")),
    "global_avgpool": ("GlobalAveragePool", {}),
}


@pytest.mark.parametrize("name", sorted(ONE_OP))
def test_float_forward_matches_onnxruntime(name):
    op, attrs = ONE_OP[name]
    model = _model([helper.make_node(op, ["x"], ["y"], name="pool3d", **attrs)], [], SHAPE_5D)
    x = RNG.standard_normal((3, *SHAPE_5D)).astype(np.float32)
    ref = ort_forward(model, x)
    ours = apl.load_onnx(model).forward(x)
    assert ours.shape == ref.shape
    assert relative_error(ours, ref) <= 1e-5


@pytest.mark.parametrize("pads", [[0, 0, 2, 0, 0, 0, 0, 1, 0, 0], [0, 1, 0, 2, 1, 0, 0, 1, 3, 0],
                                  [0, 0, 0, 0, 2, 0, 0, 0, 0, 1]])
def test_pad_of_any_axis_matches_onnxruntime(pads):
    nodes = [helper.make_node("Pad", ["x", "p", "v"], ["y"], name="pad5d")]
    model = _model(nodes, [_ints("p", pads), numpy_helper.from_array(np.array(0.75, np.float32), "v")],
                   SHAPE_5D)
    x = RNG.standard_normal((2, *SHAPE_5D)).astype(np.float32)
    np.testing.assert_array_equal(apl.load_onnx(model).forward(x), ort_forward(model, x))


# ---- 3-D pools between quantized layers ----------------------------------------------------------

def _net(pool, c=6, in_shape=(3, 8, 8), depth=3):
    """Conv -> Relu -> Reshape (N, c / depth, depth, H, W) -> ``pool`` -> Reshape (N, -1, H', W')
    -> Conv: the 5-D view as torch's LRN and exporters of video nets write it."""
    op, attrs = pool
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c"], ["r"], name="relu1"),
             helper.make_node("Reshape", ["r", "to5d"], ["v"], name="to5d"),
             helper.make_node(op, ["v"], ["p"], name="pool3d", **attrs)]
    inits = [_init("w1", (c, in_shape[0], 3, 3)), _init("b1", (c,)),
             _ints("to5d", [0, c // depth, depth, *in_shape[1:]])]
    pooled = _model(nodes, inits, in_shape)
    pooled.graph.output[0].name = "p"
    dims = onnx.shape_inference.infer_shapes(pooled).graph.output[0].type.tensor_type.shape.dim
    channels, oh, ow = dims[1].dim_value * dims[2].dim_value, dims[3].dim_value, dims[4].dim_value
    nodes += [helper.make_node("Reshape", ["p", "to4d"], ["m"], name="to4d"),
              helper.make_node("Conv", ["m", "w2", "b2"], ["y"], name="head")]
    inits += [_ints("to4d", [0, channels, oh, ow]), _init("w2", (5, channels, 3, 3), 0.3), _init("b2", (5,))]
    return _model(nodes, inits, in_shape)


NETS = {
    "maxpool": ("MaxPool", dict(kernel_shape=[2, 2, 2], strides=[1, 2, 2])),
    "avgpool": ("AveragePool", dict(kernel_shape=[3, 1, 1], pads=[1, 0, 0, 1, 0, 0], count_include_pad=1)),
    "avgpool_exclude_pad": ("AveragePool", dict(kernel_shape=[3, 3, 3], pads=[1, 1, 1, 1, 1, 1])),
    "avgpool_ceil": ("AveragePool", dict(kernel_shape=[2, 3, 3], strides=[2, 2, 2], ceil_mode=1)),
}


@pytest.fixture(scope="module")
def nets():
    built = {}
    for name, pool in NETS.items():
        model = _net(pool)
        x = RNG.standard_normal((32, 3, 8, 8)).astype(np.float32)
        float_out = apl.load_onnx(model).forward(x)
        assert relative_error(float_out, ort_forward(model, x)) <= 1e-5, name
        built[name] = (model, x, float_out)
    return built


@pytest.mark.parametrize("channel_wise", [False, True], ids=["per_tensor", "channel_wise"])
@pytest.mark.parametrize("name", sorted(NETS))
def test_quantized_net_runs_the_pool_in_integers_and_exports(name, channel_wise, nets):
    model, x, float_out = nets[name]
    g = apl.load_onnx(model)
    apl.quantize_network(g, calibration_set=x, nb_bits=8, channel_wise=channel_wise, optimize_signs=True)
    report = apl.quantizability_report(g)
    assert report.islands == [], report.text()
    ours = g.forward(x)
    assert _sqnr(ours, float_out) > 30
    # Max and window sums are exact in integers (one rounding, in the Scaling node after an
    # average): onnxruntime's float pool on the dequantized codes agrees but for ties.
    assert _sqnr(ort_forward(apl.export_onnx(g, None), x), ours) > 80


@pytest.mark.parametrize("name", ["maxpool", "avgpool_exclude_pad"])
def test_integers_identical_at_every_simd_level(name, nets):
    model, x, _ = nets[name]
    g = apl.load_onnx(model)
    apl.quantize_network(g, calibration_set=x, nb_bits=8)
    assert_same_integers_at_every_level(g, x)


def test_wide_codes_through_a_3d_average():
    """Above 8 bits the window sums are int64 in both passes (a wrong second pass would wreck
    the SQNR, as 12-bit codes keep the integer network within ~60 dB of float)."""
    model = _net(NETS["avgpool_exclude_pad"])
    x = RNG.standard_normal((16, 3, 8, 8)).astype(np.float32)
    g = apl.load_onnx(model)
    float_out = g.forward(x)
    apl.quantize_network(g, calibration_set=x, nb_bits=12)
    ours = g.forward(x)
    assert _sqnr(ours, float_out) > 55
    assert_same_integers_at_every_level(g, x)


@pytest.mark.parametrize("op,attrs,message", [
    ("MaxPool", dict(kernel_shape=[2, 2]), "3 spatial axes"),
    ("AveragePool", dict(kernel_shape=[2, 2, 2], pads=[2, 0, 0, 0, 0, 0]), "smaller than kernel_shape"),
    ("AveragePool", dict(kernel_shape=[9, 2, 2]), "larger than the padded input"),
])
def test_bad_3d_windows_name_the_node(op, attrs, message):
    model = _model([helper.make_node(op, ["x"], ["y"], name="bad_pool", **attrs)], [], SHAPE_5D)
    with pytest.raises(apl.ShapeError) as err:
        apl.load_onnx(model)
    assert "bad_pool" in str(err.value) and message in str(err.value), str(err.value)


def test_3d_conv_is_refused_naming_the_node():
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv3d")],
                   [_init("w", (4, 2, 1, 1, 1))], SHAPE_5D)
    with pytest.raises(apl.ShapeError) as err:
        apl.load_onnx(model)
    assert "conv3d" in str(err.value) and "(N, C, H, W)" in str(err.value), str(err.value)


def test_export_c_refuses_a_3d_pool_naming_it(nets, tmp_path):
    model, x, _ = nets["maxpool"]
    g = apl.load_onnx(model)
    apl.quantize_network(g, calibration_set=x, nb_bits=8)
    with pytest.raises(NotImplementedError) as err:
        apl.export_c(g, tmp_path / "c")
    assert "pool3d" in str(err.value), str(err.value)
