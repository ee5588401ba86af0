"""Float islands: ops without an integer form inside the quantized network (Sigmoid of SiLU, a
mid-network Softmax, padding with a non-zero value, an Add of a full-shape constant). Each runs
its float op on dequantized inputs and the Scaling node after it requantizes; an element-wise
island is a lookup table of its input codes."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl

from conftest import ort_forward, relative_error, assert_same_integers_at_every_level

RNG = np.random.default_rng(11)


def _init(name, shape, scale=0.5):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes, inits, in_shape=(3, 8, 8), out_shape=(5,)):
    g = helper.make_graph(nodes, "islands", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _head(source):
    """source -> Conv 1x1 -> GlobalAveragePool -> Flatten -> y (5 classes)."""
    return [helper.make_node("Conv", [source, "wh", "bh"], ["h"], name="conv_head"),
            helper.make_node("GlobalAveragePool", ["h"], ["p"], name="gap"),
            helper.make_node("Flatten", ["p"], ["y"], name="flat")]


def _silu_softmax_net():
    """Conv -> SiLU (x * Sigmoid(x)) -> Conv -> Softmax over channels -> head."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Sigmoid", ["c1"], ["s"], name="gate"),
             helper.make_node("Mul", ["c1", "s"], ["m"], name="silu"),
             helper.make_node("Conv", ["m", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Softmax", ["c2"], ["sm"], axis=1, name="mid_softmax"), *_head("sm")]
    return _model(nodes, [_init("w1", (8, 3, 3, 3)), _init("b1", (8,)), _init("w2", (8, 8, 3, 3), 0.3),
                          _init("b2", (8,)), _init("wh", (5, 8, 1, 1), 2.0), _init("bh", (5,))])


def _blocked_ops_net():
    """Ops whose integer form is blocked for these attributes: Pad with value 0.5, and an Add of
    a constant of the activation's full shape (not per channel)."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Pad", ["r1", "pads", "value"], ["pd"], name="pad_half"),
             helper.make_node("Add", ["pd", "bias_map"], ["a"], name="add_map"),
             helper.make_node("Conv", ["a", "w2", "b2"], ["c2"], name="conv2"), *_head("c2")]
    inits = [_init("w1", (6, 3, 1, 1)), _init("b1", (6,)),
             numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
             numpy_helper.from_array(np.array(0.5, np.float32), "value"),
             _init("bias_map", (6, 10, 10)), _init("w2", (7, 6, 3, 3), 0.3), _init("b2", (7,)),
             _init("wh", (5, 7, 1, 1), 2.0), _init("bh", (5,))]
    return _model(nodes, inits)


def _sqnr(y, ref):
    noise = np.sum((y - ref).astype(np.float64) ** 2)
    return np.inf if noise == 0 else 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / noise)


@pytest.fixture(scope="module")
def data():
    return RNG.standard_normal((64, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("make, islands", [(_silu_softmax_net, {"gate", "mid_softmax"}),
                                            (_blocked_ops_net, {"pad_half", "add_map"})])
def test_islands_are_reported_and_quantize_close_to_float(make, islands, data):
    model = make()
    g = apl.load_onnx(model)
    float_out = g.forward(data)
    assert relative_error(float_out, ort_forward(model, data)) <= 1e-5
    apl.quantize_network(g, data, nb_bits=8)
    report = apl.quantizability_report(g)
    assert set(report.islands) == islands and report.ok
    assert all(any(f"'{name}'" in why for why in report.island_reasons) for name in islands)
    plan = {n.name: n.quant for n in g.nodes()}
    for name in islands:  # each island hands an accumulator to its own Scaling node: a shift by 8
        assert plan[name]["island"]
        scaling = plan[g.consumers(name)[0]]
        assert scaling["single_shift"] and {m for m in scaling["multiplier"]} == {(1, 8)}
    assert _sqnr(g.forward(data), float_out) > 30


def test_no_quant_equals_float_through_islands(data):
    for make in (_silu_softmax_net, _blocked_ops_net):
        g = apl.load_onnx(make())
        float_out = g.forward(data)
        apl.quantize_network(g, data, no_quant=True)
        assert relative_error(g.forward(data), float_out) <= 1e-5


def test_elementwise_island_is_a_lookup_table_of_its_input_codes(data):
    g = apl.load_onnx(_silu_softmax_net())
    apl.quantize_network(g, data, nb_bits=8)
    gate, producer = g.node("gate"), g.node(g.node("gate").inputs[0])
    lut = gate.quant["lut"]
    lo, hi = producer.quant["lo"], producer.quant["hi"]
    assert gate.quant["lut_first_code"] == lo and len(lut) == hi - lo + 1
    codes = np.arange(lo, hi + 1, dtype=np.float64)
    expected = np.rint(1 / (1 + np.exp(-codes * producer.quant["step"])) / gate.quant["step"])
    assert np.max(np.abs(lut - expected)) <= 1  # float32 sigmoid vs float64: at most one unit
    assert len(g.node("mid_softmax").quant["lut"]) == 0  # not element-wise: the float op runs


@pytest.mark.parametrize("options", [dict(nb_bits=4, clipping_mode="MSE"), dict(nb_bits=12),
                                     dict(single_shift=True, channel_wise=True),
                                     dict(optimize_signs=True)])
def test_islands_at_other_settings(options, data):
    g = apl.load_onnx(_silu_softmax_net())
    float_out = g.forward(data)
    apl.quantize_network(g, data, **options)
    threshold = 12 if options.get("nb_bits") == 4 else 30
    assert _sqnr(g.forward(data), float_out) > threshold
    if options.get("optimize_signs"):  # a Sigmoid's output is never negative
        assert g.node(g.consumers("gate")[0]).quant["unsigned"]


def test_island_integers_identical_at_every_simd_level(data):
    g = apl.load_onnx(_silu_softmax_net())
    apl.quantize_network(g, data, nb_bits=8)
    assert_same_integers_at_every_level(g, data)


@pytest.mark.parametrize("make", [_silu_softmax_net, _blocked_ops_net])
def test_islands_export_to_onnxruntime(make, data, tmp_path):
    g = apl.load_onnx(make())
    apl.quantize_network(g, data, nb_bits=8)
    path = tmp_path / "islands_qdq.onnx"
    apl.export_onnx(g, path)
    assert _sqnr(ort_forward(str(path), data), g.forward(data)) > 30


def test_clip_bounds_are_whole_codes_in_the_network_and_the_export(data, tmp_path):
    """ReLU6 (Clip 0..6): the integer Clip and the exported Clip stop at the same value."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Clip", ["c1", "zero", "six"], ["r6"], name="relu6"),
             helper.make_node("Conv", ["r6", "w2", "b2"], ["c2"], name="conv2"), *_head("c2")]
    model = _model(nodes, [_init("w1", (8, 3, 3, 3), 3.0), _init("b1", (8,)),
                           numpy_helper.from_array(np.array(0, np.float32), "zero"),
                           numpy_helper.from_array(np.array(6, np.float32), "six"),
                           _init("w2", (8, 8, 1, 1)), _init("b2", (8,)), _init("wh", (5, 8, 1, 1)),
                           _init("bh", (5,))])
    g = apl.load_onnx(model)
    apl.quantize_network(g, data * 3, nb_bits=8)
    relu6 = g.node("relu6")
    assert relu6.attributes["max"] == np.floor(relu6.attributes["max"])
    path = tmp_path / "relu6.onnx"
    apl.export_onnx(g, path)
    assert _sqnr(ort_forward(str(path), data * 3), g.forward(data * 3)) > 35


def test_join_rescales_a_shared_input_instead_of_coarsening_it(data):
    """An Add joins the network input with a branch ~100x larger, and a conv also reads the
    input directly: raising the input's range to the branch's would leave that conv codes
    {-1, 0, 1}; a Scaling node on the Add's input edge rescales for the join alone."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="big_branch"),
             helper.make_node("Add", ["x", "c1"], ["sum1"], name="join"),
             helper.make_node("Conv", ["x", "w2", "b2"], ["c2"], name="reads_input"),
             helper.make_node("Conv", ["sum1", "w3", "b3"], ["c3"], name="after_join"),
             helper.make_node("Add", ["c2", "c3"], ["y"], name="sum")]
    model = _model(nodes, [_init("w1", (3, 3, 3, 3), 30.0), _init("b1", (3,)), _init("w2", (4, 3, 1, 1)),
                           _init("b2", (4,)), _init("w3", (4, 3, 1, 1), 0.05), _init("b3", (4,))],
                   out_shape=(4, 8, 8))
    g = apl.load_onnx(model)
    float_out = g.forward(data)
    apl.quantize_network(g, data, nb_bits=8)
    assert g.node("join").inputs[0] != "x"  # the edge has its own requantizer
    assert g.node("x").quant["range"] < 10  # the input kept its own range (about 4)
    assert relative_error(g.forward(data), float_out) < 0.05  # the input raised would leave reads_input codes {-1, 0, 1}


def test_channel_concat_keeps_each_input_scale(data, tmp_path):
    """A Concat on the channels joins the network input with a branch ~100x larger, and a conv
    also reads the input directly: no range is raised and no edge requantizer is needed, the
    Scaling node after the Concat rescales each input's channels by its own factor. The QDQ
    export (float Concat of dequantized inputs) matches."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="big_branch"),
             helper.make_node("Concat", ["x", "c1"], ["cat"], axis=1, name="cat"),
             helper.make_node("Conv", ["x", "w2", "b2"], ["c2"], name="reads_input"),
             helper.make_node("Conv", ["cat", "w3", "b3"], ["c3"], name="after_cat"),
             helper.make_node("Add", ["c2", "c3"], ["y"], name="sum")]
    model = _model(nodes, [_init("w1", (4, 3, 3, 3), 30.0), _init("b1", (4,)), _init("w2", (4, 3, 1, 1)),
                           _init("b2", (4,)), _init("w3", (4, 7, 1, 1), 0.05), _init("b3", (4,))],
                   out_shape=(4, 8, 8))
    g = apl.load_onnx(model)
    float_out = g.forward(data)
    apl.quantize_network(g, data, nb_bits=8)
    assert g.node("cat").inputs == ["x", "big_branch_scaling"]
    assert g.node("x").quant["range"] < 10  # the input kept its own range (about 4)
    factors = [m / 2.0 ** s for m, s in g.node("cat_scaling").quant["multiplier"]]
    ratio = g.node("x").quant["range"] / g.node("big_branch_scaling").quant["range"]
    assert np.allclose(np.array(factors[:3]) / factors[3], ratio, rtol=1e-3)  # input channels: own factor
    assert relative_error(g.forward(data), float_out) < 0.05  # 1.09 when the input was raised
    path = tmp_path / "cat.onnx"
    apl.export_onnx(g, path)
    assert _sqnr(g.forward(data), ort_forward(str(path), data)) > 35
