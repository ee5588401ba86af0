"""Fuzzing with hypothesis: random small CNNs built with onnx.helper.

Chains and DAGs of Conv (kernel 1/3/5, stride 1/2, dilation, asymmetric pads, grouped and
depthwise, odd channel counts), Relu, LeakyRelu, MaxPool/AveragePool, Add (two branches of one
shape), Concat (channel axis), and a head of Gemm after Flatten or GlobalAveragePool (or none).
Weights come from a seeded RNG whose seed hypothesis draws, so every failure replays exactly.

Properties: the float forward matches onnxruntime; ``no_quant`` matches float; quantization at
2..16 bits with random options never crashes, gives finite outputs, integer raw outputs, codes
inside their n-bit clamp at every Scaling node, and close to float from 10 bits on.
CI is deterministic (``derandomize=True``): 800 examples in all, about 15 s.
"""
from dataclasses import dataclass, field

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl

from conftest import ort_forward, relative_error

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass
class _Builder:
    """Accumulates nodes and seeded initializers; tracks the (C, H, W) of every tensor."""

    rng: np.random.Generator
    quantizable: bool
    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    shapes: dict = field(default_factory=dict)

    def name(self, prefix):
        return f"{prefix}{len(self.nodes)}_{len(self.inits)}"

    def init(self, prefix, array):
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def node(self, op, inputs, shape, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        self.shapes[out] = shape
        return out


def _out(extent, k, stride, dil, pad_a, pad_b):
    return (extent + pad_a + pad_b - dil * (k - 1) - 1) // stride + 1


def _conv(draw, b, x, c_out=None, same=False):
    """A random Conv on x. ``same``: stride 1, spatial size kept (for joins)."""
    c, h, w = b.shapes[x]
    kinds = ["dense", "depthwise"] + (["grouped"] if c > 1 and c_out is None else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "depthwise":
        if c_out is not None and c_out % c:
            kind = "dense"
        groups = c
    elif kind == "grouped":
        groups = draw(st.sampled_from([d for d in range(2, c + 1) if c % d == 0]))
    if kind == "dense":
        groups = 1
    if c_out is None:
        c_out = {"dense": draw(st.integers(1, 9)),
                 "depthwise": c * draw(st.integers(1, 2)),
                 "grouped": groups * draw(st.integers(1, 3))}[kind]
    if same:
        k, stride, dil = draw(st.sampled_from([1, 3, 5])), 1, 1
        pads = [(k - 1) // 2] * 4
    else:
        k = draw(st.sampled_from([k for k in (1, 3, 5) if k <= min(h, w) + 2 * (k // 2)]))
        stride = draw(st.sampled_from([1, 2]))
        dil = draw(st.sampled_from([1, 1, 2])) if k > 1 else 1
        pads = [draw(st.integers(0, k // 2)) for _ in range(4)]
        ho = _out(h, k, stride, dil, pads[0], pads[2])
        wo = _out(w, k, stride, dil, pads[1], pads[3])
        if ho < 1 or wo < 1:
            k, stride, dil, pads = 1, 1, 1, [0, 0, 0, 0]
    ho = _out(h, k, stride, dil, pads[0], pads[2])
    wo = _out(w, k, stride, dil, pads[1], pads[3])
    fan_in = (c // groups) * k * k
    weight = b.rng.standard_normal((c_out, c // groups, k, k)) * np.sqrt(2.0 / fan_in)
    inputs = [x, b.init("w", weight)]
    if draw(st.booleans()):
        inputs.append(b.init("b", b.rng.standard_normal(c_out) * 0.1))
    return b.node("Conv", inputs, (c_out, ho, wo), kernel_shape=[k, k], strides=[stride, stride],
                  dilations=[dil, dil], pads=pads, group=groups)


def _activation(draw, b, x):
    if draw(st.booleans()):
        return b.node("Relu", [x], b.shapes[x])
    return b.node("LeakyRelu", [x], b.shapes[x], alpha=draw(st.sampled_from([0.01, 0.1, 0.3])))


def _pool(draw, b, x):
    c, h, w = b.shapes[x]
    op = draw(st.sampled_from(["MaxPool", "AveragePool"]))
    k = draw(st.sampled_from([k for k in (1, 2, 3) if k <= min(h, w)]))
    stride = draw(st.sampled_from([1, 2]))
    pads = [draw(st.integers(0, (k - 1) // 2)) for _ in range(4)]
    attrs = {"kernel_shape": [k, k], "strides": [stride, stride], "pads": pads}
    if op == "AveragePool":
        # Padding excluded from the count makes the divisor vary per window: the float network
        # supports it, quantization refuses it (UnsupportedOpError), so quantizable graphs avoid it.
        exclude_ok = not b.quantizable or not any(pads)
        attrs["count_include_pad"] = draw(st.integers(0, 1)) if exclude_ok else 1
    shape = (c, _out(h, k, stride, 1, pads[0], pads[2]), _out(w, k, stride, 1, pads[1], pads[3]))
    return b.node(op, [x], shape, **attrs)


def _add(draw, b, x):
    """Residual (x + f(x)) or two conv branches of one shape."""
    c = b.shapes[x][0]
    left = x if draw(st.booleans()) else _conv(draw, b, x, c_out=c, same=True)
    right = _conv(draw, b, x, c_out=c, same=True)
    if draw(st.booleans()):
        right = _activation(draw, b, right)
    return b.node("Add", [left, right], b.shapes[x])


def _concat(draw, b, x):
    """Two or three branches (conv, conv+act, or identity) joined on the channel axis."""
    branches = []
    for _ in range(draw(st.integers(2, 3))):
        kind = draw(st.sampled_from(["conv", "conv_act", "identity"]))
        if kind == "identity":
            branches.append(x)
        else:
            y = _conv(draw, b, x, c_out=draw(st.integers(1, 6)), same=True)
            branches.append(_activation(draw, b, y) if kind == "conv_act" else y)
    _, h, w = b.shapes[x]
    return b.node("Concat", branches, (sum(b.shapes[t][0] for t in branches), h, w), axis=1)


def _gemm(draw, b, x, features):
    units = draw(st.integers(1, 10))
    trans_b = draw(st.integers(0, 1))
    weight = b.rng.standard_normal((features, units)) * np.sqrt(2.0 / features)
    inputs = [x, b.init("w", weight.T if trans_b else weight)]
    if draw(st.booleans()):
        inputs.append(b.init("b", b.rng.standard_normal(units) * 0.1))
    out = b.name("gemm")
    b.nodes.append(helper.make_node("Gemm", inputs, [out], name=out, transB=trans_b))
    b.shapes[out] = (units,)
    return out, units


@st.composite
def networks(draw, quantizable=True):
    """(ModelProto, input shape (C, H, W), seed) of a random small CNN; ``quantizable=False``
    also allows float-only features (average pooling that excludes padding)."""
    seed = draw(st.integers(0, 2**32 - 1))
    b = _Builder(np.random.default_rng(seed), quantizable)
    in_shape = (draw(st.integers(1, 5)), draw(st.integers(3, 10)), draw(st.integers(3, 10)))
    b.shapes["x"] = in_shape
    x = "x"
    blocks = {"conv": _conv, "act": _activation, "pool": _pool, "add": _add, "concat": _concat}
    x = _conv(draw, b, x)  # the first layer is affine, as in any real network
    for _ in range(draw(st.integers(0, 5))):
        x = blocks[draw(st.sampled_from(sorted(blocks)))](draw, b, x)
    head = draw(st.sampled_from(["flatten_gemm", "gap_gemm", "none"]))
    if head != "none":
        if head == "gap_gemm":
            x = b.node("GlobalAveragePool", [x], (b.shapes[x][0], 1, 1))
        features = int(np.prod(b.shapes[x]))
        x = b.node("Flatten", [x], (features,), axis=1)
        x, features = _gemm(draw, b, x, features)
        if draw(st.booleans()):
            x = _activation(draw, b, x)
            x, _ = _gemm(draw, b, x, features)
    b.nodes[-1].output[0] = "y"
    graph = helper.make_graph(b.nodes, "fuzz",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *b.shapes[x]])],
                              b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model, in_shape, seed


def _inputs(in_shape, seed, n=8):
    return np.random.default_rng(seed ^ 0x5EED).standard_normal((n, *in_shape)).astype(np.float32)


@settings(FUZZ, max_examples=300)
@given(networks(quantizable=False))
def test_float_forward_matches_onnxruntime(net):
    """Our float kernels compute what onnxruntime computes, on any supported random graph."""
    model, in_shape, seed = net
    x = _inputs(in_shape, seed)
    ours = apl.load_onnx(model).forward(x)
    ref = ort_forward(model, x)
    assert ours.shape == ref.shape
    assert relative_error(ours, ref) <= 1e-4


@settings(FUZZ, max_examples=200)
@given(networks(), st.booleans(), st.booleans(), st.booleans())
def test_no_quant_matches_float(net, channel_wise, optimize_signs, single_shift):
    """The whole PTQ pipeline without rounding leaves the network's function unchanged."""
    model, in_shape, seed = net
    x = _inputs(in_shape, seed)
    g = apl.load_onnx(model)
    ref = g.forward(x)
    apl.quantize_network(g, calibration_set=x, no_quant=True, channel_wise=channel_wise,
                         optimize_signs=optimize_signs, single_shift=single_shift)
    assert relative_error(g.forward(x), ref) <= 1e-4


def _check_codes_in_range(g, x, nb_bits):
    """Every Scaling node's dequantized output is a whole number of steps inside its clamp (the
    codes are value / step + zero point)."""
    scalers = [n for n in g.nodes() if n.op == "Scaling" and not n.quant["dequantize_point"]]
    if not scalers:
        return
    values = g.intermediate_outputs(x, [n.name for n in scalers])
    for n in scalers:
        q = n.quant
        codes = values[n.name].astype(np.float64) / q["step"] + q["zero_point"]
        assert np.all(np.abs(codes - np.round(codes)) <= 1e-3 * np.maximum(1.0, np.abs(codes))), n.name
        codes = np.round(codes)
        assert q["lo"] <= codes.min() and codes.max() <= q["hi"], (n.name, q["lo"], q["hi"])
        assert -(2 ** (nb_bits - 1)) < q["lo"] and q["hi"] < 2 ** nb_bits, (n.name, q["lo"], q["hi"])


@settings(FUZZ, max_examples=300)
@given(networks(), st.integers(2, 16), st.booleans(), st.booleans(), st.booleans())
def test_quantization_stays_in_range(net, nb_bits, channel_wise, optimize_signs, single_shift):
    """Any bit width and option set: no crash, finite output, integer raw output (int32 up to 8
    bits), every activation code inside its n-bit clamp; from 10 bits on, close to float."""
    model, in_shape, seed = net
    x = _inputs(in_shape, seed)
    g = apl.load_onnx(model)
    ref = g.forward(x)
    apl.quantize_network(g, nb_bits=nb_bits, calibration_set=x, channel_wise=channel_wise,
                         optimize_signs=optimize_signs, single_shift=single_shift)
    out = g.forward(x)
    assert out.shape == ref.shape
    assert np.all(np.isfinite(out))
    raw = g.forward(x, dequantize=False)
    # Integers no wider than int32 up to 8 bits (the output accumulator, or the codes when the
    # network ends after its last Scaling node, e.g. with a Relu); int64 on the wide path.
    assert np.issubdtype(raw.dtype, np.integer)
    assert raw.dtype.itemsize <= (4 if nb_bits <= 8 else 8)
    _check_codes_in_range(g, x, nb_bits)
    if nb_bits >= 10:  # calibrated on x itself (MAX): nothing clips, the rounding error halves
        assert relative_error(out, ref) <= 2.0 ** (6 - nb_bits)  # with each bit (~1e-3 at 16)
