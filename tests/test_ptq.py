"""The PTQ pipeline and the integer network: no_quant equals float, int8 stays close, joins and
extremes do not overflow, bad arguments are refused without touching the graph."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl
from aidge_ptq_lite import _core, datasets, zoo

from conftest import relative_error


@pytest.fixture(scope="module")
def calib():
    return datasets.load_calibration_set(256)


def _quantized(name, calib, **kw):
    g = apl.load_onnx(zoo.model_path(name))
    apl.quantize_network(g, calibration_set=calib, **kw)
    return g


def test_no_quant_equals_float(zoo_model, calib, test_images):
    x, _ = test_images
    g = apl.load_onnx(zoo.model_path(zoo_model))
    ref = g.forward(x)
    apl.quantize_network(g, calibration_set=calib, no_quant=True)
    assert g.is_quantized
    assert relative_error(g.forward(x), ref) <= 1e-4


@pytest.mark.parametrize("channel_wise", [False, True])
def test_int8_close_to_float(zoo_model, calib, test_images, channel_wise):
    x, y = test_images
    g = apl.load_onnx(zoo.model_path(zoo_model))
    ref = g.forward(x)
    apl.quantize_network(g, calibration_set=calib, channel_wise=channel_wise)
    out = g.forward(x)
    assert relative_error(out, ref) < 0.15
    agree = np.mean(out.argmax(1) == ref.argmax(1))
    assert agree >= 0.97, f"top-1 agreement with float {agree:.3f}"


def test_raw_integer_outputs(calib, test_images):
    x, _ = test_images
    g = _quantized("lenet", calib)
    raw = g.forward(x[:8], dequantize=False)
    assert raw.dtype == np.int32
    deq = g.forward(x[:8])
    assert np.array_equal(raw.argmax(1), deq.argmax(1))


@pytest.mark.parametrize("nb_bits", [2, 3, 4, 6, 9, 12, 16])
def test_every_bit_width_runs(nb_bits, calib, test_images):
    x, y = test_images
    g = apl.load_onnx(zoo.model_path("lenet"))
    ref = g.forward(x)
    apl.quantize_network(g, nb_bits=nb_bits, calibration_set=calib)
    out = g.forward(x)
    assert np.all(np.isfinite(out))
    assert out.shape == ref.shape
    if nb_bits >= 9:  # wide path: int32 activations, int64 accumulators
        assert np.mean(out.argmax(1) == ref.argmax(1)) > 0.97
        # On the calibration data nothing is clipped: the error halves with each bit.
        calib_ref = apl.load_onnx(zoo.model_path("lenet")).forward(calib)
        assert relative_error(g.forward(calib), calib_ref) < 2.0 ** (3 - nb_bits)


# ---- joins and extremes on hand-built models -------------------------------------------------

RNG = np.random.default_rng(0)


def _model(nodes, inits, in_shape, out_shape):
    g = helper.make_graph(nodes, "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def _w(name, shape, scale):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


@pytest.mark.parametrize("join", ["Add", "Concat"])
def test_join_of_branches_with_very_different_scales(join):
    out_c = 8 if join == "Add" else 16
    model = _model(
        [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["x", "w2"], ["b"], pads=[1, 1, 1, 1]),
         helper.make_node(join, ["a", "b"], ["j"], **({"axis": 1} if join == "Concat" else {})),
         helper.make_node("Relu", ["j"], ["r"]),
         helper.make_node("Conv", ["r", "w3"], ["y"])],
        [_w("w1", (8, 3, 3, 3), 0.1), _w("w2", (8, 3, 3, 3), 10.0), _w("w3", (4, out_c, 1, 1), 0.3)],
        (3, 6, 6), (4, 6, 6))
    x = RNG.standard_normal((64, 3, 6, 6)).astype(np.float32)
    g = apl.load_onnx(model)
    ref = g.forward(x)
    apl.quantize_network(g, calibration_set=x)
    out = g.forward(x)
    assert np.all(np.isfinite(out))
    assert relative_error(out, ref) < 0.05


def test_extremes_do_not_overflow_int32():
    # The largest reduction in the zoo and in ResNet-18: 512 channels x 3 x 3 = 4608 products.
    c = 512
    w = np.full((2, c, 3, 3), 1.0, np.float32)
    w[1] = -1.0
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"])],
                   [numpy_helper.from_array(w, "w")], (c, 3, 3), (2, 1, 1))
    x = np.full((2, c, 3, 3), 1.0, np.float32)
    x[1] = -1.0
    g = apl.load_onnx(model)
    apl.quantize_network(g, calibration_set=x)
    raw = g.forward(x, dequantize=False)
    full = 127 * 127 * c * 9  # every product at the range limit
    np.testing.assert_array_equal(raw.reshape(2, 2), [[full, -full], [-full, full]])
    np.testing.assert_allclose(g.forward(x).reshape(2, 2), [[c * 9, -c * 9], [-c * 9, c * 9]], rtol=1e-6)


@pytest.mark.parametrize("nb_bits", [8, 4])
def test_single_shift_weights_stay_in_range_and_fill_its_top_bit(calib, nb_bits):
    """Per tensor, the shift is chosen per output channel: each channel's largest weight code lands
    in the top half of the n-bit range (never outside it), and every rescaling after a Conv/Gemm
    is a power of two."""
    g = _quantized("mobilenet", calib[:32], nb_bits=nb_bits, single_shift=True)
    limit = 2 ** (nb_bits - 1) - 1
    checked = 0
    for n in g.nodes():
        if n.op != "Scaling" or g.node(n.inputs[0]).op not in ("Conv", "Gemm") or n.quant["dequantize_point"]:
            continue
        assert all(m & (m - 1) == 0 for m, _ in n.quant["multiplier"]), n.name  # 1, or 2^j with shift 0
        w = g.node(n.inputs[0]).params[0].astype(np.int32)
        channel_max = np.abs(w.reshape(len(w), -1)).max(axis=1)
        assert channel_max.max() <= limit
        live = channel_max > 0
        assert np.all(channel_max[live] > limit // 2), (n.name, channel_max.min())
        checked += 1
    assert checked >= 20


# ---- calibration ranges ------------------------------------------------------------------------

def _prepared(model):
    g = apl.load_onnx(model)
    apl.prepare_network(g)
    apl.insert_scaling_nodes(g)
    apl.normalize_parameters(g)
    return g


def _feeds_only_relus(g, name):
    users = g.consumers(name)
    return name not in g.outputs and bool(users) and all(g.node(u).op == "Relu" for u in users)


def test_compute_ranges_streamed_equals_numpy_over_the_whole_set(calib):
    g = _prepared(zoo.model_path("resnet"))
    scaling = [n for n in g.nodes() if n.op == "Scaling"]
    outs = g.intermediate_outputs(calib, [n.name for n in scaling])
    expected = {g.input_name: float(np.abs(calib).max())}
    for n in scaling:
        # A Scaling node feeding only ReLUs needs just its positive range.
        out = outs[n.name]
        expected[n.name] = float(max(out.max(), 0.0) if _feeds_only_relus(g, n.name) else np.abs(out).max())
    assert any(_feeds_only_relus(g, n.name) for n in scaling)
    streamed = apl.compute_ranges(g, (calib[i:i + 50] for i in range(0, len(calib), 50)))
    assert streamed.keys() == expected.keys()
    for name, value in expected.items():
        assert streamed[name] == pytest.approx(value, rel=1e-6), name


def test_scaling_nodes_are_measured_where_their_codes_are_consumed(calib):
    # lenet: Conv -> Scaling -> ReLU -> MaxPool. Quantizing commutes with ReLU and MaxPool, so the
    # codes the next layer reads are those of the MaxPool's output: the max and the MSE/AA
    # histograms are taken there; KL's histograms stay on the Scaling node's own |x|.
    g = _prepared(zoo.model_path("lenet"))
    scaling, relu, pool = "/features/features.0/Conv_scaling", "/features/features.1/Relu", "/features/features.2/MaxPool"
    assert g.consumers(scaling) == [relu] and g.consumers(relu) == [pool]
    outs = g.intermediate_outputs(calib, [scaling, pool])
    assert (outs[scaling] < 0).any() and outs[pool].size * 4 == outs[scaling].size
    assert apl.compute_ranges(g, calib)[scaling] == pytest.approx(float(outs[pool].max()), rel=1e-6)

    def histogram(values):
        h = apl.Histogram(1024)
        h.add(values)
        return h.counts

    for mode, values in (("MSE", outs[pool]), ("AA", outs[pool]), ("KL", outs[scaling])):
        counts = apl.compute_histograms(g, calib, bins=1024, clipping_mode=mode)[scaling].counts
        np.testing.assert_array_equal(counts, histogram(values), err_msg=mode)


def test_range_collector_rejects_an_unknown_clipping_mode():
    # The mode decides where histograms are taken: a typo must not silently give MSE's.
    g = _prepared(zoo.model_path("lenet"))
    for mode in ("kl", "Entropy", ""):
        with pytest.raises(ValueError, match="unknown clipping mode"):
            _core.RangeCollector(g, 16, mode)
    assert _core.RangeCollector(g, 16, "KL").samples == 0


def test_negative_side_before_a_relu_does_not_cost_resolution():
    # Pre-ReLU values reach -100 while the surviving positive part stays below 1: the range (and
    # so the step) follows the positive part, and the quantized network stays close to float.
    w = np.zeros((2, 1, 1, 1), np.float32)
    w[:, 0, 0, 0] = [1.0, 1.0]
    model = _model([helper.make_node("Conv", ["x", "w", "b"], ["c"]),
                    helper.make_node("Relu", ["c"], ["r"]),
                    helper.make_node("Conv", ["r", "w2"], ["y"])],
                   [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([-100.0, 0.0], np.float32), "b"),
                    numpy_helper.from_array(np.ones((1, 2, 1, 1), np.float32), "w2")], (1, 4, 4), (1, 4, 4))
    x = RNG.uniform(0, 1, (32, 1, 4, 4)).astype(np.float32)
    g = apl.load_onnx(model)
    ref = g.forward(x)
    ranges = apl.compute_ranges(_prepared(model), x)
    assert max(ranges.values()) <= 1.0
    apl.quantize_network(g, calibration_set=x)
    assert relative_error(g.forward(x), ref) < 0.01


def _conv_relu_model(bias, output_too):
    outputs = ["y", "c"] if output_too else ["y"]
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"]), helper.make_node("Relu", ["c"], ["y"])], "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N", 2, 4, 4]) for o in outputs],
        [numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w"),
         numpy_helper.from_array(np.array(bias, np.float32), "b")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_a_network_output_before_a_relu_keeps_its_negative_range():
    model = _conv_relu_model([-100.0, 0.0], output_too=True)
    x = RNG.uniform(0, 1, (8, 1, 4, 4)).astype(np.float32)
    g = apl.load_onnx(model)
    ref = np.stack(g.forward(x))  # both outputs: after the ReLU, and the conv's own (down to -100)
    assert max(apl.compute_ranges(_prepared(model), x).values()) >= 99.0
    apl.quantize_network(g, calibration_set=x)
    assert relative_error(np.stack(g.forward(x)), ref) < 0.01


def test_relu_keeps_nan_as_onnxruntime_does():
    # Calibration measures ReLU-fed Scaling nodes after their ReLU: a NaN must survive it to be reported.
    from conftest import ort_forward
    model = _conv_relu_model([-0.5, 0.0], output_too=False)
    x = RNG.uniform(0, 1, (2, 1, 4, 4)).astype(np.float32)
    x[0, 0, 1, 2] = np.nan
    y = apl.load_onnx(model).forward(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ort_forward(model, x)))
    assert np.isnan(y[0, :, 1, 2]).all()


# ---- bad arguments leave the graph untouched --------------------------------------------------

@pytest.mark.parametrize("kwargs, error", [
    ({"nb_bits": 1}, ValueError),
    ({"nb_bits": 17}, ValueError),
    ({"nb_bits": 8.5}, ValueError),
    ({"clipping_mode": "median"}, ValueError),
    ({"calibration_set": np.zeros((0, 1, 28, 28), np.float32)}, ValueError),
    ({"calibration_set": np.full((4, 1, 28, 28), np.nan, np.float32)}, ValueError),
    ({"calibration_set": np.full((4, 1, 28, 28), np.inf, np.float32)}, ValueError),
    ({"calibration_set": np.zeros((4, 1, 32, 32), np.float32)}, apl.ShapeError),
    ({"calibration_set": []}, ValueError),
])
def test_bad_arguments_raise_and_keep_the_graph(kwargs, error, calib, test_images):
    x, _ = test_images
    g = apl.load_onnx(zoo.model_path("lenet"))
    before = g.forward(x[:16])
    args = {"calibration_set": calib, **kwargs}
    with pytest.raises(error):
        apl.quantize_network(g, **args)
    assert not g.is_quantized
    np.testing.assert_array_equal(g.forward(x[:16]), before)


def test_quantizing_twice_is_refused(calib):
    g = _quantized("lenet", calib)
    with pytest.raises(ValueError, match="already quantized"):
        apl.quantize_network(g, calibration_set=calib)


def test_op_without_integer_form_inside_the_network_is_a_named_float_island():
    model = _model([helper.make_node("Sigmoid", ["x"], ["s"], name="mid_sigmoid"),
                    helper.make_node("Conv", ["s", "w"], ["y"])],
                   [_w("w", (2, 3, 1, 1), 1.0)], (3, 4, 4), (2, 4, 4))
    g = apl.load_onnx(model)
    report = apl.quantizability_report(g)
    assert report.ok and report.islands == ["mid_sigmoid"] and "Sigmoid 'mid_sigmoid'" in str(report)
    x = RNG.standard_normal((16, 3, 4, 4)).astype(np.float32)
    ref = g.forward(x)
    apl.quantize_network(g, calibration_set=x)
    assert np.max(np.abs(g.forward(x) - ref)) < 0.02 * np.max(np.abs(ref))


def test_final_softmax_stays_float(test_images):
    model = _model([helper.make_node("Conv", ["x", "w"], ["c"]),
                    helper.make_node("Flatten", ["c"], ["f"]),
                    helper.make_node("Softmax", ["f"], ["y"], name="probs")],
                   [_w("w", (5, 3, 4, 4), 0.5)], (3, 4, 4), (5,))
    x = RNG.standard_normal((32, 3, 4, 4)).astype(np.float32)
    g = apl.load_onnx(model)
    ref = g.forward(x)
    report = apl.quantizability_report(g)
    assert "probs" in report.kept_float
    apl.quantize_network(g, calibration_set=x)
    out = g.forward(x)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)
    assert np.abs(out - ref).max() < 0.05  # probabilities; logits carry 8-bit noise


@pytest.mark.parametrize("pool", ["GlobalAveragePool", "AveragePool"])
def test_network_ending_in_an_average_pool(pool):
    """The output is dequantized from the pool's window sums: the 1/window must be applied."""
    attrs = {"kernel_shape": [4, 4], "strides": [4, 4]} if pool == "AveragePool" else {}
    out_shape = (6, 2, 2) if pool == "AveragePool" else (6, 1, 1)
    model = _model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                    helper.make_node("Relu", ["c"], ["r"]),
                    helper.make_node(pool, ["r"], ["y"], **attrs)],
                   [_w("w", (6, 3, 3, 3), 0.5)], (3, 8, 8), out_shape)
    x = RNG.standard_normal((16, 3, 8, 8)).astype(np.float32)
    g = apl.load_onnx(model)
    ref = g.forward(x)
    apl.quantize_network(g, calibration_set=x)
    assert relative_error(g.forward(x), ref) < 0.02
