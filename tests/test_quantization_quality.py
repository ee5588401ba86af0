"""Causes of the 8-bit SQNR gaps against onnxruntime on the real-world models (issue 15), each
checked on a small network built here: per-channel gains quantized per channel even with
per-tensor weights (a BatchNormalization after a Concat, DenseNet); bias correction of the
rounded weights (the mean error that global average pooling and the classifier accumulate)."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl

from conftest import ort_forward

RNG = np.random.default_rng(23)


def _sqnr(ref, y):
    ref, y = np.asarray(ref, np.float64), np.asarray(y, np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((y - ref) ** 2))


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def _concat_batchnorm_net():
    """Conv (8 ch) and the input (3 ch) concatenated, then a BatchNormalization whose gains span
    1000x: it follows no layer, so it becomes a depthwise 1x1 Conv, the network's last layer
    (its output is dequantized from the accumulator: the gains' quantization shows as it is)."""
    c = 11
    gains = np.geomspace(1e-3, 1.0, c) * RNG.choice([-1, 1], c)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Concat", ["c1", "x"], ["cat"], axis=1, name="cat"),
             helper.make_node("BatchNormalization", ["cat", "gamma", "beta", "mean", "var"], ["y"], name="bn")]
    inits = [_init("w1", RNG.standard_normal((8, 3, 3, 3)) * 0.3), _init("b1", np.zeros(8)),
             _init("gamma", gains), _init("beta", RNG.standard_normal(c) * 0.01),
             _init("mean", np.zeros(c)), _init("var", np.ones(c))]
    graph = helper.make_graph(nodes, "concat_bn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", c, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_batchnorm_after_concat_keeps_a_weight_range_per_channel_with_per_tensor_weights(tmp_path):
    """With per-tensor weights, one shared range would round the small gains to 0 or 1 code
    (those channels lost); each gain has its own range, and the export writes per-channel
    weight scales for that layer alone."""
    model = _concat_batchnorm_net()
    x = RNG.standard_normal((32, 3, 8, 8)).astype(np.float32)
    reference = ort_forward(model, x)
    g = apl.load_onnx(model)
    apl.quantize_network(g, x, nb_bits=8, channel_wise=False)
    depthwise = [n for n in g.nodes() if n.op == "Conv" and n.params[0].size == n.params[0].shape[0]]
    assert len(depthwise) == 1 and len(depthwise[0].quant["weight_range"]) == 11
    assert len(g.node("conv1").quant["weight_range"]) == 1  # an ordinary Conv stays per tensor
    y = g.forward(x)
    worst_channel = min(_sqnr(reference[:, c], y[:, c]) for c in range(11))
    assert worst_channel > 30  # below 0 dB with one shared range (gain 1e-3: 0.13 code)
    path = tmp_path / "concat_bn.onnx"
    apl.export_onnx(g, path)
    assert _sqnr(y, ort_forward(str(path), x)) > 35


def _offset_input_net():
    """Conv 3x3 (no padding) whose per-tensor weights are dominated by one large weight, on an
    input of mean 2, then GlobalAveragePool: rounding the small weights shifts every output
    channel's mean by sum(dW * E[x]), which the average does not wash out."""
    w = RNG.standard_normal((8, 3, 3, 3)) * 0.05
    w[0, 0, 1, 1] = 1.0
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node("GlobalAveragePool", ["c"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["y"], name="flat")]
    graph = helper.make_graph(nodes, "offset_input",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
                              [_init("w", w), _init("b", np.zeros(8))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_bias_correction_removes_the_mean_error_of_rounded_weights():
    """The mean error per output channel of our integer network is a fraction of the shift
    that the rounded weights cause (sum(dW * E[x]), computed here from the weight codes), which
    is what a quantizer without bias correction keeps."""
    model = _offset_input_net()
    x = (RNG.standard_normal((256, 3, 8, 8)) + 2.0).astype(np.float32)
    reference = ort_forward(model, x)
    g = apl.load_onnx(model)
    apl.quantize_network(g, x, nb_bits=8, channel_wise=False)
    mean_error = np.abs((g.forward(x) - reference).mean(axis=0))
    # The weights the integer network uses, in real units: per-tensor codes of step max |w| / 127.
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w")).astype(np.float64)
    w_real = g.node("conv").params[0].astype(np.float64) * (np.abs(w).max() / 127.0)
    shift = np.abs(((w_real - w) * x.mean(axis=(0, 2, 3))[None, :, None, None]).sum(axis=(1, 2, 3)))
    assert np.median(shift) > 10 * np.median(mean_error)  # about 50x here
    assert _sqnr(reference, g.forward(x)) > 30
