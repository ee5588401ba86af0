"""Zero points for nearly non-negative activations (choose_zero_points, optimize_signs at 8 bits
and below): HardSwish, x * Sigmoid(x) and squeeze-excite products keep their few negative values
on unsigned codes below a zero point instead of spending the sign bit on them.

Oracles: the float network (SQNR with zero points against SQNR without, same data), onnxruntime
on the QDQ export, the C export compiled and run (bit-exact with our integer forward), and our
own integer forward at every SIMD level and batch size."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl

from test_export_c import needs_gcc, skip_without_arm
from test_export_c_ops import _run_export


def _weights(rng, name, shape, scale):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def mbconv_model():
    """Conv -> HardSwish -> padded depthwise Conv -> HardSwish -> squeeze-excite (GlobalAveragePool,
    1x1 Convs, Sigmoid gate, Mul) -> 1x1 Conv -> x * Sigmoid(x) -> GlobalAveragePool -> Flatten ->
    Gemm: every reader of zero-point codes the library takes (padded and 1x1 Conv, pool, Mul of
    activations, lookup table, Gemm behind a reshape at the output)."""
    rng = np.random.default_rng(7)
    inits = [
        _weights(rng, "w0", (8, 3, 3, 3), 0.5), _weights(rng, "b0", (8,), 0.3),
        _weights(rng, "wd", (8, 1, 3, 3), 0.6), _weights(rng, "bd", (8,), 0.3),
        _weights(rng, "ws1", (4, 8, 1, 1), 0.6), _weights(rng, "bs1", (4,), 0.1),
        _weights(rng, "ws2", (8, 4, 1, 1), 0.6), _weights(rng, "bs2", (8,), 0.1),
        _weights(rng, "wp", (8, 8, 1, 1), 0.5), _weights(rng, "bp", (8,), 0.3),
        _weights(rng, "wg", (5, 8), 0.5), _weights(rng, "bg", (5,), 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["c0"], ["h0"], name="hswish0"),
        helper.make_node("Conv", ["h0", "wd", "bd"], ["cd"], name="depthwise", pads=[1, 1, 1, 1], group=8),
        helper.make_node("HardSwish", ["cd"], ["h1"], name="hswish1"),
        helper.make_node("GlobalAveragePool", ["h1"], ["sq"], name="squeeze"),
        helper.make_node("Conv", ["sq", "ws1", "bs1"], ["s1"], name="fc1"),
        helper.make_node("Relu", ["s1"], ["r1"], name="relu"),
        helper.make_node("Conv", ["r1", "ws2", "bs2"], ["s2"], name="fc2"),
        helper.make_node("Sigmoid", ["s2"], ["gate"], name="gate"),
        helper.make_node("Mul", ["h1", "gate"], ["se"], name="excite"),
        helper.make_node("Conv", ["se", "wp", "bp"], ["p"], name="project"),
        helper.make_node("Sigmoid", ["p"], ["sp"], name="silu_sigmoid"),
        helper.make_node("Mul", ["p", "sp"], ["silu"], name="silu"),
        helper.make_node("GlobalAveragePool", ["silu"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wg", "bg"], ["y"], name="head", transB=1),
    ]
    graph = helper.make_graph(nodes, "mbconv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return (rng.standard_normal((64, 3, 8, 8)).astype(np.float32),
            rng.standard_normal((32, 3, 8, 8)).astype(np.float32))


def quantized(data, **options):
    g = apl.load_onnx(mbconv_model())
    apl.quantize_network(g, data[0], nb_bits=8, optimize_signs=True, **options)
    return g


def sqnr_db(ref, test):
    return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((test.astype(np.float64) - ref) ** 2))


@pytest.mark.parametrize("channel_wise", [False, True])
def test_zero_points_beat_symmetric_codes_against_float(data, channel_wise):
    """The nearly non-negative activations get unsigned codes with a zero point, and their SQNR
    against float rises (their own rounding noise falls by about 6 dB; the figure also holds the
    error from upstream, measured 1.4 to 3.5 dB better), and so does the output's (+1.7 / +4.0 dB)."""
    g_float = apl.load_onnx(mbconv_model())
    ref = g_float.forward(data[1])
    with_zp = quantized(data, channel_wise=channel_wise)
    without = quantized(data, channel_wise=channel_wise, zero_points=False)
    chosen = {n.name: n.quant["zero_point"] for n in with_zp.nodes() if n.quant["zero_point"]}
    for after in ("hswish0", "hswish1", "excite", "silu"):
        assert chosen.get(f"{after}_scaling", 0) > 0, f"no zero point after {after}: {chosen}"
        assert next(n for n in with_zp.nodes() if n.name == f"{after}_scaling").quant["unsigned"]
    assert not any(n.quant["zero_point"] for n in without.nodes())
    per_tensor = {}
    for g in (with_zp, without):
        for row in apl.layer_report(g_float, g, data[1]):
            per_tensor.setdefault(row["node"], []).append(row["sqnr_db"])
    for name in chosen:
        gain = per_tensor[name][0] - per_tensor[name][1]
        assert gain > 1.0, f"{name}: {per_tensor[name][0]:.1f} dB with its zero point, {per_tensor[name][1]:.1f} without"
    out_with, out_without = sqnr_db(ref, with_zp.forward(data[1])), sqnr_db(ref, without.forward(data[1]))
    assert out_with > out_without + 1.0, f"output SQNR {out_with:.1f} dB with zero points, {out_without:.1f} without"


def test_plan_records_offsets(data):
    """The plan carries what the kernels add: the padded depthwise Conv's border offsets (its
    input has a zero point), the squeeze pool's Scaling offset (the window times the zero point
    taken out) and the head Gemm's offset (the zero point behind the Flatten)."""
    g = quantized(data)
    q = {n.name: n.quant for n in g.nodes()}
    z0 = q["hswish0_scaling"]["zero_point"]
    assert len(q["depthwise"]["border_offset"]) == 8 * 8 * 8
    assert not any(q["depthwise"]["border_offset"][8 * 3 + 3: 8 * 3 + 5])  # interior cells: no padding tap
    assert np.all(q["depthwise"]["border_offset"] % z0 == 0)
    assert len(q["squeeze_scaling"]["acc_offset"]) and len(q["head_scaling"]["acc_offset"])
    assert not len(q["conv0"]["border_offset"])  # its input (the network's) has no zero point


def test_integer_outputs_identical_across_simd_levels_and_batches(data):
    g = quantized(data, channel_wise=True)
    x = data[1]
    outputs = {}
    try:
        for level in ("scalar", "avx2", "avx512", "amx"):
            apl.set_simd_level(level)
            h = g.clone()
            outputs[level] = h.forward(x, dequantize=False)
            singles = np.concatenate([h.forward(x[i:i + 1], dequantize=False) for i in range(4)])
            assert np.array_equal(singles, outputs[level][:4]), f"{level}: batch of 1 differs from batch of 32"
    finally:
        apl.set_simd_level(apl.detected_simd_level())
    for level, y in outputs.items():
        assert np.array_equal(y, outputs["scalar"]), f"{level} differs from scalar"


@pytest.mark.parametrize("channel_wise", [False, True])
def test_qdq_export_writes_zero_points(data, channel_wise, tmp_path):
    import onnx

    g = quantized(data, channel_wise=channel_wise)
    path = str(tmp_path / "zp.onnx")
    apl.export_onnx(g, path)
    model = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert any(z.dtype == np.uint8 and int(z) > 0 for z in zero_points)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    theirs = sess.run(None, {"x": data[1]})[0]
    assert sqnr_db(g.forward(data[1]), theirs) >= 30.0


@needs_gcc
@pytest.mark.parametrize("channel_wise", [False, True])
def test_c_export_bit_exact(data, channel_wise, tmp_path):
    g = quantized(data, channel_wise=channel_wise)
    got, ref = _run_export(g, data[1][:16], tmp_path)
    assert np.array_equal(got, ref), f"{int(np.sum(got != ref))} of {ref.size} raw outputs differ"


def test_c_export_bit_exact_on_32bit_arm(data, tmp_path):
    skip_without_arm()
    g = quantized(data)
    got, ref = _run_export(g, data[1][:8], tmp_path, arm=True)
    assert np.array_equal(got, ref), f"{int(np.sum(got != ref))} of {ref.size} raw outputs differ"


def producers_model(kind):
    """A nearly non-negative tensor made by a Concat of two HardSwish branches (its Scaling node
    passes their codes at factor 1) or by a ConvTranspose with a positive bias (its offset goes into
    that kernel's bias), read by a padded Conv."""
    rng = np.random.default_rng(11)
    inits = [_weights(rng, "wa", (4, 3, 3, 3), 0.5), _weights(rng, "ba", (4,), 0.3),
             _weights(rng, "wb", (4, 3, 3, 3), 0.2), _weights(rng, "bb", (4,), 0.3),
             _weights(rng, "wc", (6, 8, 3, 3), 0.3), _weights(rng, "bc", (6,), 0.1)]
    if kind == "concat":
        nodes = [helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
                 helper.make_node("HardSwish", ["a"], ["ha"], name="hswish_a"),
                 helper.make_node("Conv", ["x", "wb", "bb"], ["b"], name="conv_b", pads=[1, 1, 1, 1]),
                 helper.make_node("HardSwish", ["b"], ["hb"], name="hswish_b"),
                 helper.make_node("Concat", ["ha", "hb"], ["t"], name="join", axis=1)]
    else:
        inits += [_weights(rng, "wt", (3, 8, 2, 2), 0.2),
                  numpy_helper.from_array(np.full(8, 1.5, np.float32), "bt")]
        nodes = [helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["t"], name="join", strides=[2, 2])]
    nodes.append(helper.make_node("Conv", ["t", "wc", "bc"], ["y"], name="reader", pads=[1, 1, 1, 1]))
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@needs_gcc
@pytest.mark.parametrize("kind", ["concat", "conv_transpose"])
def test_other_producers_of_zero_point_codes(data, kind, tmp_path):
    """After a ConvTranspose the zero point is chosen and the integer output beats symmetric codes
    against float; after a Concat none is (a zero point would round its inputs' codes a second
    time: measured 31.0 dB against 31.8 without); the C export stays bit-exact."""
    ref = apl.load_onnx(producers_model(kind)).forward(data[1])
    results = {}
    for zero_points in (True, False):
        g = apl.load_onnx(producers_model(kind))
        apl.quantize_network(g, data[0], nb_bits=8, optimize_signs=True, zero_points=zero_points)
        results[zero_points] = g
    q = {n.name: n.quant for n in results[True].nodes()}
    if kind == "concat":
        assert q["join_scaling"]["zero_point"] == 0
    else:
        assert q["join_scaling"]["zero_point"] > 0, "no zero point chosen"
        assert len(q["reader"]["border_offset"])
        assert sqnr_db(ref, results[True].forward(data[1])) > sqnr_db(ref, results[False].forward(data[1]))
    got, want = _run_export(results[True], data[1][:8], tmp_path)
    assert np.array_equal(got, want), f"{int(np.sum(got != want))} of {want.size} raw outputs differ"
