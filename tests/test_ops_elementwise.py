"""Element-wise, reduction and per-channel affine ops (issue 15): Sum, broadcasting integer
Add / Sub / Mul between activations (the squeeze-excite gate), PRelu, the per-channel affine folds
of prepare_network (BatchNormalization, constant Add / Sub / Mul / Div, MatMul + bias, ReduceMean
over (H, W)), and the float-only ops that become islands. Oracles: onnxruntime for the float
forward and the QDQ export, the float network for the quantized one."""
import shutil
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl

from conftest import ort_forward, relative_error, assert_same_integers_at_every_level

RNG = np.random.default_rng(15)
IN_SHAPE = (4, 6, 6)


def _init(name, shape, scale=0.5, positive=False):
    v = RNG.standard_normal(shape) * scale
    return numpy_helper.from_array((np.abs(v) + 0.5 if positive else v).astype(np.float32), name)


def _const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def _model(nodes, inits, out_shape, in_shape=IN_SHAPE, opset=17):
    g = helper.make_graph(nodes, "elem", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _sqnr(y, ref):
    noise = np.sum((y - ref).astype(np.float64) ** 2)
    return np.inf if noise == 0 else 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / noise)


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(15).standard_normal((48, *IN_SHAPE)).astype(np.float32)


# ---- float forward of each op against onnxruntime --------------------------------------------------

def _node(op, inputs, **attrs):
    return helper.make_node(op, inputs, ["y"], name=f"the_{op.lower()}", **attrs)


def _gap(src="x"):
    return helper.make_node("GlobalAveragePool", [src], ["g"], name="gap")


# (id, nodes, initializers, output shape, positive input)
FLOAT_CASES = [
    ("sum3", [helper.make_node("Relu", ["x"], ["r"], name="r"), helper.make_node("Sigmoid", ["x"], ["s"], name="s"),
              _node("Sum", ["x", "r", "s"])], [], IN_SHAPE, False),
    ("sum1", [_node("Sum", ["x"])], [], IN_SHAPE, False),
    ("sum_broadcast", [_gap(), _node("Sum", ["g", "x", "g"])], [], IN_SHAPE, False),
    ("mul_gate", [_gap(), _node("Mul", ["x", "g"])], [], IN_SHAPE, False),
    ("add_broadcast", [_gap(), _node("Add", ["g", "x"])], [], IN_SHAPE, False),
    ("sub_broadcast", [_gap(), _node("Sub", ["x", "g"])], [], IN_SHAPE, False),
    ("prelu_channel", [_node("PRelu", ["x", "slope"])], [_init("slope", (4, 1, 1))], IN_SHAPE, False),
    ("prelu_scalar", [_node("PRelu", ["x", "slope"])], [_const("slope", [0.2])], IN_SHAPE, False),
    ("prelu_full", [_node("PRelu", ["x", "slope"])], [_init("slope", IN_SHAPE)], IN_SHAPE, False),
    ("hardsigmoid", [_node("HardSigmoid", ["x"], alpha=0.3, beta=0.4)], [], IN_SHAPE, False),
    ("hardswish", [_node("HardSwish", ["x"])], [], IN_SHAPE, False),
    ("elu", [_node("Elu", ["x"], alpha=0.7)], [], IN_SHAPE, False),
    ("selu", [_node("Selu", ["x"])], [], IN_SHAPE, False),
    ("softplus", [_node("Softplus", ["x"])], [], IN_SHAPE, False),
    ("erf", [_node("Erf", ["x"])], [], IN_SHAPE, False),
    ("exp", [_node("Exp", ["x"])], [], IN_SHAPE, False),
    ("log", [_node("Log", ["x"])], [], IN_SHAPE, True),
    ("sqrt", [_node("Sqrt", ["x"])], [], IN_SHAPE, True),
    ("neg", [_node("Neg", ["x"])], [], IN_SHAPE, False),
    ("abs", [_node("Abs", ["x"])], [], IN_SHAPE, False),
    ("reciprocal", [_node("Reciprocal", ["x"])], [], IN_SHAPE, True),
    ("logsoftmax_last", [_node("LogSoftmax", ["x"])], [], IN_SHAPE, False),
    ("logsoftmax_channels", [_node("LogSoftmax", ["x"], axis=1)], [], IN_SHAPE, False),
    ("softmax_channels", [_node("Softmax", ["x"], axis=1)], [], IN_SHAPE, False),
    ("lrn", [_node("LRN", ["x"], size=3, alpha=0.01, beta=0.75, bias=1.5)], [], IN_SHAPE, False),
    ("reducemean_hw", [_node("ReduceMean", ["x"], axes=[2, 3])], [], (4, 1, 1), False),
    ("reducemean_c", [_node("ReduceMean", ["x"], axes=[1], keepdims=0)], [], (6, 6), False),
    ("reducemax", [_node("ReduceMax", ["x"], axes=[1, 3], keepdims=0)], [], (6,), False),
    ("reducesum", [_node("ReduceSum", ["x", "axes"])], [_const("axes", [-1], np.int64)], (4, 6, 1), False),
    ("div_activations", [helper.make_node("Exp", ["x"], ["e"], name="e"), _node("Div", ["x", "e"])], [], IN_SHAPE, False),
    ("div_constant", [_node("Div", ["x", "k"])], [_init("k", (4, 1, 1), positive=True)], IN_SHAPE, False),
    ("div_by_activation", [_node("Div", ["k", "x"])], [_const("k", 2.0)], IN_SHAPE, True),
    ("pow_square", [_node("Pow", ["x", "k"])], [_const("k", 2.0)], IN_SHAPE, False),
    ("pow_root", [_node("Pow", ["x", "k"])], [_const("k", 0.5)], IN_SHAPE, True),
    ("max", [helper.make_node("Neg", ["x"], ["n"], name="n"), _node("Max", ["x", "n"])], [], IN_SHAPE, False),
    ("min_constant", [_node("Min", ["x", "k"])], [_const("k", 0.3)], IN_SHAPE, False),
]


@pytest.mark.parametrize("nodes, inits, out_shape, positive", [c[1:] for c in FLOAT_CASES],
                         ids=[c[0] for c in FLOAT_CASES])
def test_float_forward_matches_onnxruntime(nodes, inits, out_shape, positive, data):
    model = _model(nodes, inits, out_shape)
    x = np.abs(data) + 0.1 if positive else data
    ref = ort_forward(model, x)
    y = apl.load_onnx(model).forward(x)
    assert y.shape == ref.shape
    assert relative_error(y, ref) <= 1e-5


# ---- quantized networks ---------------------------------------------------------------------------

def _conv(name, src, dst, cin, cout, k=1, scale=0.5):
    pads = [k // 2] * 4
    return (helper.make_node("Conv", [src, f"{name}.w", f"{name}.b"], [dst], pads=pads, name=name),
            [_init(f"{name}.w", (cout, cin, k, k), scale), _init(f"{name}.b", (cout,), 0.1)])


def _seeded(make):
    """Each net's weights come from its own seed, whatever the tests ran before."""
    def build():
        global RNG
        RNG = np.random.default_rng(sum(map(ord, make.__name__)))
        return make()
    build.__name__ = make.__name__
    return build


def _net(layers, tail, out_shape):
    """layers: (node or (node, inits)) in order; tail: nodes after them (no inits)."""
    nodes, inits = [], []
    for layer in layers:
        if isinstance(layer, tuple):
            nodes.append(layer[0])
            inits += layer[1]
        else:
            nodes.append(layer)
    return _model(nodes + tail, inits, out_shape)


def _head(src, cin):
    """src -> Conv 1x1 (5) -> ReduceMean over (H, W) without keepdims: (N, 5)."""
    return [_conv("head", src, "hc", cin, 5, scale=1.0),
            helper.make_node("ReduceMean", ["hc"], ["y"], axes=[2, 3], keepdims=0, name="mean")]


@_seeded
def _se_net():
    """MobileNetV3 / EfficientNet-style block: a squeeze-excite gate (HardSigmoid, Mul of
    (N, C, H, W) by (N, C, 1, 1)), an Add of (N, C, 1, 1) to (N, C, H, W), a Sum of three
    branches, HardSwish, PRelu."""
    layers = [_conv("conv1", "x", "c1", 4, 8, 3), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
              helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="gap"),
              _conv("squeeze", "g", "s", 8, 4), helper.make_node("Relu", ["s"], ["sr"], name="srelu"),
              _conv("excite", "sr", "e", 4, 8), helper.make_node("HardSigmoid", ["e"], ["h"], name="gate"),
              helper.make_node("Mul", ["r1", "h"], ["m"], name="se_mul"),
              _conv("shift", "g", "cb", 8, 8), helper.make_node("Add", ["m", "cb"], ["a"], name="bcast_add"),
              _conv("conv2", "r1", "c2", 8, 8, 3, 0.2),
              helper.make_node("Sum", ["a", "r1", "c2"], ["sm"], name="sum3"),
              helper.make_node("HardSwish", ["sm"], ["hs"], name="hswish"),
              (helper.make_node("PRelu", ["hs", "slope"], ["pr"], name="prelu"), [_init("slope", (8, 1, 1), 0.3)])]
    return _net(layers + _head("pr", 8), [], (5,))


@_seeded
def _integer_net():
    """Nothing but integer forms: Sum, PRelu, broadcasting Mul and Sub between activations."""
    layers = [_conv("conv1", "x", "c1", 4, 8, 3), _conv("conv2", "x", "c2", 4, 8, 3),
              _conv("conv3", "x", "c3", 4, 8, 3),
              helper.make_node("Sum", ["c1", "c2", "c3"], ["sm"], name="sum3"),
              (helper.make_node("PRelu", ["sm", "slope"], ["pr"], name="prelu"), [_init("slope", (8, 1, 1), 0.3)]),
              helper.make_node("GlobalAveragePool", ["pr"], ["g"], name="gap"),
              # A gate near 1 (as a trained squeeze-excite's): the product keeps pr's distribution.
              (helper.make_node("Conv", ["g", "gate.w", "gate.b"], ["gs"], name="gate"),
               [_init("gate.w", (8, 8, 1, 1), 0.05), _const("gate.b", np.ones(8))]),
              helper.make_node("Mul", ["pr", "gs"], ["m"], name="bcast_mul"),
              helper.make_node("Sub", ["m", "g"], ["d"], name="bcast_sub"),
              helper.make_node("Relu", ["d"], ["dr"], name="relu")]
    return _net(layers + _head("dr", 8), [], (5,))


@_seeded
def _affine_net():
    """Per-channel affine ops that follow no Conv/Gemm: input mean/std normalization (Sub, Div by
    (C, 1, 1) constants), a BatchNormalization after a Concat, a scalar Mul and a per-channel Add
    after a Conv (folded), and a MatMul followed by a bias Add (a Gemm)."""
    bn = [_init("bn.scale", (12,), 0.3), _init("bn.bias", (12,), 0.2), _init("bn.mean", (12,), 0.2),
          _init("bn.var", (12,), positive=True)]
    layers = [(helper.make_node("Sub", ["x", "mean"], ["xc"], name="sub_mean"), [_init("mean", (4, 1, 1), 0.5)]),
              (helper.make_node("Div", ["xc", "std"], ["xn"], name="div_std"), [_init("std", (4, 1, 1), positive=True)]),
              _conv("conv1", "xn", "c1", 4, 8, 3),
              (helper.make_node("Mul", ["c1", "two"], ["c1m"], name="mul_scalar"), [_const("two", 2.0)]),
              (helper.make_node("Add", ["shift", "c1m"], ["c1a"], name="add_channel"), [_init("shift", (8, 1, 1))]),
              helper.make_node("Relu", ["c1a"], ["r1"], name="relu1"),
              helper.make_node("Concat", ["r1", "xn"], ["cat"], axis=1, name="cat"),
              (helper.make_node("BatchNormalization", ["cat", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["bnc"],
                                name="bn_after_cat"), bn),
              helper.make_node("Relu", ["bnc"], ["r2"], name="relu2"),
              helper.make_node("ReduceMean", ["r2"], ["p"], axes=[2, 3], keepdims=1, name="spatial_mean"),
              helper.make_node("Flatten", ["p"], ["f"], name="flat"),
              (helper.make_node("MatMul", ["f", "wm"], ["mm"], name="matmul"), [_init("wm", (12, 5))]),
              (helper.make_node("Add", ["mm", "bm"], ["y"], name="bias_add"), [_init("bm", (5,))])]
    return _net(layers, [], (5,))


@_seeded
def _islands_net():
    """Ops without an integer form inside the network: Elu, LRN, a ReduceMax over channels, Div of
    two activations, Softplus."""
    layers = [_conv("conv1", "x", "c1", 4, 8, 3), helper.make_node("Elu", ["c1"], ["el"], name="elu"),
              helper.make_node("LRN", ["el"], ["ln"], size=3, alpha=0.1, name="lrn"),
              _conv("conv2", "ln", "c2", 8, 8, 3, 0.3),
              helper.make_node("ReduceMax", ["c2"], ["mx"], axes=[1], keepdims=1, name="channel_max"),
              helper.make_node("Softplus", ["mx"], ["sp"], name="softplus"),
              helper.make_node("Div", ["c2", "sp"], ["dv"], name="div"),
              helper.make_node("Sigmoid", ["c2"], ["sg"], name="sig"),
              helper.make_node("Mul", ["dv", "sg"], ["m"], name="mul")]
    return _net(layers + _head("m", 8), [], (5,))


@_seeded
def _gelu_net():
    """GELU as torch exports it below opset 20: x * 0.5 * (1 + Erf(x / sqrt(2))), whose scalar
    Div, Add and Mul follow no Conv they could fold into (the Conv output has two readers)."""
    layers = [_conv("conv1", "x", "c1", 4, 8, 3),
              (helper.make_node("Div", ["c1", "sqrt2"], ["d"], name="div_sqrt2"), [_const("sqrt2", 1.4142135)]),
              helper.make_node("Erf", ["d"], ["e"], name="erf"),
              (helper.make_node("Add", ["e", "one"], ["e1"], name="add_one"), [_const("one", 1.0)]),
              helper.make_node("Mul", ["c1", "e1"], ["m"], name="mul_x"),
              (helper.make_node("Mul", ["m", "half"], ["gl"], name="mul_half"), [_const("half", 0.5)])]
    return _net(layers + _head("gl", 8), [], (5,))


NETS = {"gelu": (_gelu_net, {"erf"}), "se": (_se_net, {"gate", "hswish"}), "integer": (_integer_net, set()),
        "affine": (_affine_net, set()),
        "islands": (_islands_net, {"elu", "lrn", "channel_max", "softplus", "div", "sig"})}


@pytest.mark.parametrize("name", NETS)
def test_net_float_forward_matches_onnxruntime(name, data):
    model = NETS[name][0]()
    assert relative_error(apl.load_onnx(model).forward(data), ort_forward(model, data)) <= 1e-5


@pytest.mark.parametrize("channel_wise", [False, True], ids=["per_tensor", "channel_wise"])
@pytest.mark.parametrize("name", NETS)
def test_net_quantizes_close_to_float_and_exports(name, channel_wise, data):
    make, islands = NETS[name]
    g = apl.load_onnx(make())
    float_out = g.forward(data)
    apl.quantize_network(g, data, nb_bits=8, channel_wise=channel_wise)
    report = apl.quantizability_report(g)
    assert report.ok and set(report.islands) == islands and not report.kept_float
    y = g.forward(data)
    assert _sqnr(y, float_out) > (25 if islands else 30)
    exported = apl.export_onnx(g, None)
    assert _sqnr(ort_forward(exported, data), y) > 30


@pytest.mark.parametrize("options", [dict(nb_bits=12), dict(optimize_signs=True),
                                     dict(single_shift=True, channel_wise=True)],
                         ids=["12_bits", "unsigned", "single_shift"])
@pytest.mark.parametrize("name", NETS)
def test_net_at_other_settings(name, options, data):
    """Wide codes (int32 codes, int64 accumulators: Sum, PRelu and the broadcasting binaries at
    12 bits), unsigned codes (HardSigmoid's output is never negative) and single shift."""
    make, islands = NETS[name]
    g = apl.load_onnx(make())
    float_out = g.forward(data)
    apl.quantize_network(g, data, **options)
    y = g.forward(data)
    assert _sqnr(y, float_out) > (45 if options.get("nb_bits") == 12 else 25 if islands else 30)
    if options.get("optimize_signs") and name == "se":
        assert g.node(g.consumers("gate")[0]).quant["unsigned"]


def test_no_quant_equals_float(data):
    for make, _ in NETS.values():
        g = apl.load_onnx(make())
        float_out = g.forward(data)
        apl.quantize_network(g, data, no_quant=True)
        assert relative_error(g.forward(data), float_out) <= 1e-5


def test_affine_ops_are_folded_or_become_depthwise_convs(data):
    model = _affine_net()
    g = apl.load_onnx(model)
    apl.prepare_network(g)
    ops = {n.name: n.op for n in g.nodes()}
    # Sub on the input: a depthwise Conv, into which the Div folds; Mul and Add fold into conv1.
    assert ops["sub_mean"] == "Conv" and "div_std" not in ops
    assert "mul_scalar" not in ops and "add_channel" not in ops
    assert ops["bn_after_cat"] == "Conv" and g.node("bn_after_cat").attributes["group"] == 12
    assert "bias_add" not in ops and ops["matmul"] == "Gemm"
    assert ops["spatial_mean"] == "GlobalAveragePool"
    assert relative_error(g.forward(data), ort_forward(model, data)) <= 1e-5


@pytest.mark.parametrize("op, constant_first, shape", [
    ("Add", True, (8, 1, 1)), ("Sub", False, (8, 1, 1)), ("Sub", True, (1, 8, 1, 1)), ("Mul", True, ()),
    ("Mul", False, (1,)), ("Div", False, (8, 1, 1))])
def test_constant_per_channel_op_after_a_conv_folds_into_it(op, constant_first, shape, data):
    k = numpy_helper.from_array((np.abs(RNG.standard_normal(shape)) + 0.5).astype(np.float32), "k")
    inputs = ["k", "c1"] if constant_first else ["c1", "k"]
    model = _net([_conv("conv1", "x", "c1", 4, 8, 3), (helper.make_node(op, inputs, ["o"], name="affine_op"), [k]),
                  *_head("o", 8)], [], (5,))
    g = apl.load_onnx(model)
    apl.prepare_network(g)
    assert "affine_op" not in {n.name for n in g.nodes()}
    assert relative_error(g.forward(data), ort_forward(model, data)) <= 1e-5


def test_opset_18_reductions_take_axes_as_an_input_and_export_at_opset_17(data):
    """From opset 18 ReduceMean / ReduceMax read their axes from an input (what torch exports);
    the export (opset 17) writes them back as an attribute."""
    axes_hw, axes_c = _const("axes_hw", [2, 3], np.int64), _const("axes_c", [1], np.int64)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("ReduceMax", ["c1", "axes_c"], ["mx"], name="channel_max"),
             helper.make_node("Add", ["c1", "mx"], ["a"], name="add"),
             helper.make_node("Conv", ["a", "wh", "bh"], ["h"], name="head"),
             helper.make_node("ReduceMean", ["h", "axes_hw"], ["y"], keepdims=0, name="mean")]
    model = _model(nodes, [_init("w1", (8, 4, 3, 3)), _init("b1", (8,)), _init("wh", (5, 8, 1, 1)),
                           _init("bh", (5,)), axes_hw, axes_c], (5,), opset=18)
    g = apl.load_onnx(model)
    float_out = g.forward(data)
    assert relative_error(float_out, ort_forward(model, data)) <= 1e-5
    apl.quantize_network(g, data, nb_bits=8)
    assert apl.quantizability_report(g).islands == ["channel_max"]
    assert g.node("mean_pool").op == "GlobalAveragePool" and g.node("mean").op == "Flatten"
    assert _sqnr(g.forward(data), float_out) > 25
    exported = apl.export_onnx(g, None)
    assert [a.ints for n in exported.graph.node if n.op_type == "ReduceMax" for a in n.attribute] == [[1]]
    assert _sqnr(ort_forward(exported, data), g.forward(data)) > 30


def test_reduce_mean_without_keepdims_keeps_its_output_name(data):
    g = apl.load_onnx(_integer_net())
    apl.prepare_network(g)
    assert g.node("mean").op == "Flatten" and g.node(g.node("mean").inputs[0]).op == "GlobalAveragePool"
    assert g.outputs == ["mean"]


def test_reduce_mean_without_keepdims_before_a_gemm(data):
    """x.mean((2, 3)) -> Linear, as torch exports a global pool: GlobalAveragePool + Flatten, and
    the Gemm never sees the pool's (C, 1, 1)."""
    layers = [_conv("conv1", "x", "c1", 4, 8, 3), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
              helper.make_node("ReduceMean", ["r1"], ["p"], axes=[2, 3], keepdims=0, name="mean"),
              (helper.make_node("Gemm", ["p", "wf", "bf"], ["y"], transB=1, name="fc"),
               [_init("wf", (5, 8), 2.0), _init("bf", (5,))])]
    model = _net(layers, [], (5,))
    g = apl.load_onnx(model)
    float_out = g.forward(data)
    apl.quantize_network(g, data, nb_bits=8)
    assert g.node("mean").op == "Flatten" and g.node("fc").inputs == ["mean"]
    assert not apl.quantizability_report(g).islands
    assert _sqnr(g.forward(data), float_out) > 30
    assert _sqnr(ort_forward(apl.export_onnx(g, None), data), g.forward(data)) > 30


def test_full_shape_constant_and_non_channel_slope_stay_islands(data):
    """A constant of the activation's full shape is no per-channel affine, and a PRelu slope that
    varies along H and W has no per-channel integer form: both run as float islands."""
    layers = [_conv("conv1", "x", "c1", 4, 8, 3), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
              (helper.make_node("Add", ["r1", "map"], ["a"], name="add_map"), [_init("map", (8, 6, 6))]),
              (helper.make_node("PRelu", ["a", "slope"], ["p"], name="prelu_map"), [_init("slope", (8, 6, 6))])]
    model = _net(layers + _head("p", 8), [], (5,))
    g = apl.load_onnx(model)
    float_out = g.forward(data)
    apl.quantize_network(g, data, nb_bits=8)
    report = apl.quantizability_report(g)
    assert set(report.islands) == {"add_map", "prelu_map"}
    assert any("'prelu_map'" in why and "channels" in why for why in report.island_reasons)
    assert _sqnr(g.forward(data), float_out) > 25
    assert _sqnr(ort_forward(apl.export_onnx(g, None), data), g.forward(data)) > 30


def test_integer_broadcasting_mul_is_exact_on_codes(data):
    """The integer gate multiplies codes: its accumulator equals the product of the codes it
    reads, broadcast as numpy does."""
    layers = [_conv("conv1", "x", "c1", 4, 8, 3), helper.make_node("GlobalAveragePool", ["c1"], ["g"], name="gap"),
              _conv("gate", "g", "gc", 8, 8), helper.make_node("Mul", ["c1", "gc"], ["y"], name="gate_mul")]
    g = apl.load_onnx(_net(layers, [], (8, 6, 6)))
    apl.quantize_network(g, data, nb_bits=8)
    assert g.outputs == ["gate_mul_scaling"] and g.node("gate_mul_scaling").quant["dequantize_point"]
    acc = g.forward(data[:4], dequantize=False)  # the dequantization point hands the accumulator over
    codes = g.intermediate_outputs(data[:4], ["conv1_scaling", "gate_scaling"])  # code * step
    a = np.rint(codes["conv1_scaling"] / g.node("conv1_scaling").quant["step"])
    b = np.rint(codes["gate_scaling"] / g.node("gate_scaling").quant["step"])
    assert a.shape == (4, 8, 6, 6) and b.shape == (4, 8, 1, 1)
    np.testing.assert_array_equal(acc, a * b)


# ---- errors name the node -------------------------------------------------------------------------

@pytest.mark.parametrize("nodes, inits, out_shape, error, words", [
    ([_node("PRelu", ["x", "slope"])], [_init("slope", (3, 1, 1))], IN_SHAPE, apl.ShapeError, ["the_prelu", "broadcast"]),
    ([_node("ReduceMean", ["x"], axes=[0, 2])], [], (4, 1, 6), apl.UnsupportedOpError, ["the_reducemean", "batch"]),
    ([_node("ReduceSum", ["x"])], [], (1, 1, 1), apl.UnsupportedOpError, ["the_reducesum", "axes"]),
    ([helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
      _node("Sum", ["x", "p"])], [], IN_SHAPE, apl.ShapeError, ["the_sum", "broadcast"]),
    ([_node("LRN", ["x"])], [], IN_SHAPE, apl.ShapeError, ["the_lrn", "size"]),
], ids=["prelu_slope", "reduce_batch", "reduce_no_axes", "sum_shapes", "lrn_size"])
def test_bad_nodes_are_refused_naming_the_node(nodes, inits, out_shape, error, words):
    with pytest.raises(error) as info:
        apl.load_onnx(_model(nodes, inits, out_shape))
    assert all(w in str(info.value) for w in words), str(info.value)


def test_export_c_refuses_what_it_does_not_write_naming_the_node(data, tmp_path):
    g = apl.load_onnx(NETS["islands"][0]())
    apl.quantize_network(g, data, nb_bits=8)
    with pytest.raises(NotImplementedError, match="'lrn'"):
        apl.export_c(g, tmp_path / "out")


def _export_c_bit_exact(g, x, tmp_path):
    out = tmp_path / "c"
    apl.export_c(g, out)
    sources = sorted(str(p) for p in out.glob("*.c"))
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", str(out / "net"),
                    *sources, "-lm"], check=True)
    x.astype("<f4").tofile(tmp_path / "in.f32")
    subprocess.run([str(out / "net"), str(tmp_path / "in.f32"), str(tmp_path / "out.bin")], check=True)
    ref = g.forward(x, dequantize=False)
    got = np.fromfile(tmp_path / "out.bin", dtype=ref.dtype.newbyteorder("<")).reshape(ref.shape)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
@pytest.mark.parametrize("nb_bits", [8, 12])
@pytest.mark.parametrize("name", ["integer", "se"])
def test_export_c_writes_sum_prelu_and_broadcasting_bit_exact(name, nb_bits, data, tmp_path):
    """Sum, PRelu, the squeeze-excite gate and the broadcasting Add / Sub: integer C kernels."""
    g = apl.load_onnx(NETS[name][0]())
    apl.quantize_network(g, data, nb_bits=nb_bits)
    _export_c_bit_exact(g, data[:8], tmp_path)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_export_c_writes_the_broadcast_gate_bit_exact(data, tmp_path):
    layers = [_conv("conv1", "x", "c1", 4, 8, 3), helper.make_node("GlobalAveragePool", ["c1"], ["g"], name="gap"),
              _conv("gate", "g", "gc", 8, 8), helper.make_node("Mul", ["c1", "gc"], ["m"], name="gate_mul")]
    g = apl.load_onnx(_net(layers + _head("m", 8), [], (5,)))
    apl.quantize_network(g, data, nb_bits=8)
    _export_c_bit_exact(g, data[:8], tmp_path)


@pytest.mark.parametrize("name", ["se", "integer"])
def test_integers_identical_at_every_simd_level(name, data):
    g = apl.load_onnx(NETS[name][0]())
    apl.quantize_network(g, data, nb_bits=8)
    assert_same_integers_at_every_level(g, data)


def test_log_softmax_head_is_kept_float_and_exports(data):
    layers = [_conv("conv1", "x", "c1", 4, 8, 3), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
              helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="gap"),
              helper.make_node("Flatten", ["g"], ["f"], name="flat"),
              (helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], transB=1, name="fc"),
               [_init("wf", (5, 8), 2.0), _init("bf", (5,))]),
              helper.make_node("LogSoftmax", ["logits"], ["y"], name="log_probs")]
    model = _net(layers, [], (5,))
    g = apl.load_onnx(model)
    float_out = g.forward(data)
    apl.quantize_network(g, data, nb_bits=8)
    report = apl.quantizability_report(g)
    assert report.kept_float == ["log_probs"] and not report.islands
    y = g.forward(data)
    assert np.mean(y.argmax(1) == float_out.argmax(1)) >= 0.95
    assert _sqnr(np.exp(y), np.exp(float_out)) > 30  # the probabilities
    assert _sqnr(np.exp(ort_forward(apl.export_onnx(g, None), data)), np.exp(y)) > 30


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_export_c_writes_elementwise_islands_as_lookup_tables_bit_exact(data, tmp_path):
    """HardSwish, HardSigmoid, Elu, Softplus, Abs islands: integer tables in the C network,
    bit-exact with our integer forward."""
    layers = [_conv("conv1", "x", "c1", 4, 8, 3), helper.make_node("HardSwish", ["c1"], ["h1"], name="hswish"),
              _conv("conv2", "h1", "c2", 8, 8, 3, 0.3), helper.make_node("HardSigmoid", ["c2"], ["h2"], name="hsig"),
              _conv("conv3", "h2", "c3", 8, 8, 1), helper.make_node("Elu", ["c3"], ["e"], alpha=0.5, name="elu"),
              helper.make_node("Softplus", ["e"], ["sp"], name="softplus"),
              helper.make_node("Abs", ["sp"], ["ab"], name="abs"), *_head("ab", 8)]
    g = apl.load_onnx(_net(layers, [], (5,)))
    apl.quantize_network(g, data, nb_bits=8)
    assert set(apl.quantizability_report(g).islands) == {"hswish", "hsig", "elu", "softplus", "abs"}
    out = tmp_path / "c"
    apl.export_c(g, out)
    sources = sorted(str(p) for p in out.glob("*.c"))
    subprocess.run(["gcc", "-std=c99", "-O1", "-o", str(out / "net"), *sources, "-lm"], check=True)
    x = data[:8]
    x.astype("<f4").tofile(tmp_path / "in.f32")
    subprocess.run([str(out / "net"), str(tmp_path / "in.f32"), str(tmp_path / "out.bin")], check=True)
    ref = g.forward(x, dequantize=False)
    got = np.fromfile(tmp_path / "out.bin", dtype=ref.dtype.newbyteorder("<")).reshape(ref.shape)
    np.testing.assert_array_equal(got, ref)
