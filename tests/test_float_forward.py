"""Float forward against onnxruntime: the zoo, ResNet-18, and one small model per op."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl
from aidge_ptq_lite import zoo

from conftest import ort_forward, relative_error


def test_zoo_model_matches_onnxruntime(zoo_model, test_images):
    x, _ = test_images
    path = zoo.model_path(zoo_model)
    g = apl.load_onnx(path)
    ours = g.forward(x)
    ref = ort_forward(path, x)
    assert ours.shape == ref.shape == (512, 10)
    assert relative_error(ours, ref) <= 1e-4
    assert np.array_equal(ours.argmax(1), ref.argmax(1))


def test_resnet18_scale_case_matches_onnxruntime():
    model = zoo.make_resnet18(seed=0)
    x = np.random.default_rng(1).standard_normal((8, 3, 224, 224), dtype=np.float32)
    g = apl.load_onnx(model)
    ours = g.forward(x)
    ref = ort_forward(model, x)
    assert relative_error(ours, ref) <= 1e-4
    assert np.array_equal(ours.argmax(1), ref.argmax(1))


# ---- one small model per op, built with onnx.helper ------------------------------------------

RNG = np.random.default_rng(0)


def _init(name, shape, scale=0.5, dtype=np.float32):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(dtype), name)


def _model(nodes, inits, in_shape, out_shape, opset=17):
    g = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
        inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(m)
    return m


def _positive(name, shape):
    return numpy_helper.from_array(RNG.uniform(0.5, 1.5, shape).astype(np.float32), name)


CASES = {
    "conv_group_dilation": lambda: _model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], group=2, dilations=[2, 2], pads=[2, 1, 0, 1], strides=[1, 2])],
        [_init("w", (6, 2, 3, 3)), _init("b", (6,))], (4, 9, 9), (6, 7, 5)),
    "depthwise": lambda: _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], group=5, pads=[1, 1, 1, 1])],
        [_init("w", (5, 1, 3, 3))], (5, 7, 7), (5, 7, 7)),
    "batchnorm_leaky": lambda: _model(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["h"], epsilon=1e-3),
         helper.make_node("LeakyRelu", ["h"], ["y"], alpha=0.2)],
        [_init("s", (3,)), _init("b", (3,)), _init("m", (3,)), _positive("v", (3,))], (3, 4, 4), (3, 4, 4)),
    "pools": lambda: _model(
        [helper.make_node("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
         helper.make_node("AveragePool", ["a"], ["b"], kernel_shape=[2, 2], pads=[1, 1, 0, 0], count_include_pad=0),
         helper.make_node("AveragePool", ["b"], ["y"], kernel_shape=[2, 2], pads=[0, 0, 1, 1], count_include_pad=1)],
        [], (2, 9, 9), (2, 6, 6)),
    "pad_clip_sigmoid": lambda: _model(
        [helper.make_node("Pad", ["x", "p", "v"], ["a"], mode="constant"),
         helper.make_node("Clip", ["a", "lo", "hi"], ["b"]),
         helper.make_node("Sigmoid", ["b"], ["y"])],
        [numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64), "p"),
         numpy_helper.from_array(np.array(0.25, np.float32), "v"),
         numpy_helper.from_array(np.array(-0.5, np.float32), "lo"),
         numpy_helper.from_array(np.array(0.7, np.float32), "hi")], (2, 3, 3), (2, 7, 5)),
    "binary_broadcast": lambda: _model(
        [helper.make_node("Mul", ["x", "c"], ["a"]),
         helper.make_node("Sub", ["d", "a"], ["b"]),
         helper.make_node("Add", ["b", "x"], ["y"])],
        [_init("c", (3, 1, 1)), _init("d", (1, 1, 4))], (3, 2, 4), (3, 2, 4)),
    "concat_gap_gemm_softmax": lambda: _model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Concat", ["x", "r"], ["c"], axis=1),
         helper.make_node("GlobalAveragePool", ["c"], ["g"]),
         helper.make_node("Flatten", ["g"], ["f"]),
         helper.make_node("Dropout", ["f"], ["d"]),
         helper.make_node("Gemm", ["d", "w", "b"], ["h"], transB=1, alpha=0.5, beta=2.0),
         helper.make_node("Softmax", ["h"], ["y"], axis=-1)],
        [_init("w", (7, 6)), _init("b", (7,))], (3, 5, 5), (7,)),
    "reshape_matmul_identity": lambda: _model(
        [helper.make_node("Reshape", ["x", "s"], ["r"]),
         helper.make_node("MatMul", ["r", "w"], ["m"]),
         helper.make_node("Identity", ["m"], ["y"])],
        [numpy_helper.from_array(np.array([-1, 12], np.int64), "s"), _init("w", (12, 4))], (3, 2, 2), (4,)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_onnxruntime(case):
    model = CASES[case]()
    x = RNG.standard_normal((3, *[d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]])).astype(np.float32)
    ours = apl.load_onnx(model).forward(x)
    ref = ort_forward(model, x)
    assert ours.shape == ref.shape
    assert relative_error(ours, ref) <= 1e-5


def test_maxpool_window_with_a_nan_gives_nan():
    # numpy's max semantics: a NaN anywhere in the window (not only in its first cell) is kept, so
    # calibration, which measures ranges after MaxPools, reports it. (onnxruntime keeps it or not
    # depending on where it sits in the window.)
    g = helper.make_graph([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 2, 2])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = np.arange(32, dtype=np.float32).reshape(2, 1, 4, 4)
    x[0, 0, 0, 0] = x[0, 0, 1, 3] = x[1, 0, 3, 3] = np.nan  # first, second and last window cells
    expected = x.reshape(2, 1, 2, 2, 2, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(apl.load_onnx(model).forward(x), expected)
    assert np.isnan(expected).sum() == 3


# ---- clamps fused into their producer's output pass (Executor::fuse_clamps) -------------------

def _fusion_model():
    """Fused into their producer: Conv -> Relu (r0), Conv -> Clip (k1), Add -> Relu (r1), Conv ->
    Add of an earlier tensor -> Relu (s5, r5), an Add whose other operand is computed later
    (s6, into c7). Not fused: an Add of a constant (s7), a Conv read by two nodes and a Conv
    that is also a graph output, each followed by a Relu."""
    c = 4
    w = lambda name: _init(name, (c, c, 3, 3))  # noqa: E731
    conv = lambda x, wt, y, *b: helper.make_node("Conv", [x, wt, *b], [y], pads=[1, 1, 1, 1])  # noqa: E731
    nodes = [
        conv("x", "w0", "c0", "b0"), helper.make_node("Relu", ["c0"], ["r0"]),
        conv("r0", "w1", "c1", "b1"), helper.make_node("Clip", ["c1", "lo", "hi"], ["k1"]),
        helper.make_node("Add", ["k1", "r0"], ["s"]), helper.make_node("Relu", ["s"], ["r1"]),
        conv("r1", "w5", "c5"), helper.make_node("Add", ["r1", "c5"], ["s5"]), helper.make_node("Relu", ["s5"], ["r5"]),
        conv("r5", "w6", "c6"), conv("r5", "w7", "c7"), helper.make_node("Add", ["c6", "c7"], ["s6"]),
        helper.make_node("Add", ["s6", "bias"], ["s7"]),
        conv("s7", "w2", "c2"), helper.make_node("Relu", ["c2"], ["r2"]),  # c2: two readers
        helper.make_node("Add", ["r2", "c2"], ["s2"]),
        conv("s2", "w3", "c3"),  # also an output
        helper.make_node("Relu", ["c3"], ["y"]),
    ]
    inits = [w("w0"), _init("b0", (c,)), w("w1"), _init("b1", (c,)), w("w2"), w("w3"), w("w5"), w("w6"), w("w7"),
             _init("bias", (c, 1, 1)),
             numpy_helper.from_array(np.array(-0.3, np.float32), "lo"),
             numpy_helper.from_array(np.array(0.7, np.float32), "hi")]
    g = helper.make_graph(nodes, "fusion", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, 9, 9])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", c, 9, 9]),
                           helper.make_tensor_value_info("c3", TensorProto.FLOAT, ["N", c, 9, 9])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _fused_and_unfused(g, x):
    """forward (no observer: clamps fused) and the same outputs through intermediate_outputs (an
    observer: every node runs its own kernel)."""
    fused = g.forward(x)
    fused = fused if isinstance(fused, list) else [fused]
    observed = g.intermediate_outputs(x, g.outputs)
    return fused, [observed[o] for o in g.outputs]


def test_fused_clamps_give_the_unfused_values_bit_for_bit():
    model = _fusion_model()
    x = RNG.standard_normal((3, 4, 9, 9)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan  # NaN stays NaN through a fused Relu, as through the Relu kernel
    x[1, 2, 4, 4] = -0.0
    g = apl.load_onnx(model)
    fused, unfused = _fused_and_unfused(g, x)
    for a, b in zip(fused, unfused):
        np.testing.assert_array_equal(a, b)  # NaN where NaN, same bits elsewhere
    assert np.isnan(fused[0]).any()
    clean = np.nan_to_num(x, nan=0.0)
    assert relative_error(g.forward(clean)[0], ort_forward(model, clean)) <= 1e-5


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_zoo_forward_fused_equals_unfused(name, test_images):
    g = apl.load_onnx(zoo.model_path(name))
    fused, unfused = _fused_and_unfused(g, test_images[0][:64])
    np.testing.assert_array_equal(fused[0], unfused[0])


def test_profile_shows_which_clamps_ran_fused(tmp_path):
    import os
    import subprocess
    import sys
    path = tmp_path / "fusion.onnx"
    onnx.save(_fusion_model(), path)
    script = ("import sys, numpy as np, aidge_ptq_lite as apl\n"
              "g = apl.load_onnx(sys.argv[1])\n"
              "g.forward(np.ones((2, 4, 9, 9), np.float32))\n")
    err = subprocess.run([sys.executable, "-c", script, str(path)], env=dict(os.environ, APL_PROFILE="1"),
                         capture_output=True, text=True, check=True).stderr
    rows = {line.split("'")[1]: line.split()[-1] for line in err.splitlines() if line.count("'") == 2}
    assert [n for n, v in rows.items() if v == "fused"] == ["r0", "k1", "r1", "s5", "r5", "s6"], err


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_calibration_graph_fuses_its_scaling_nodes_bit_for_bit(name, test_images):
    """The float network with its Scaling nodes (as calibration runs it, normalized weights and
    factors): forward fuses Conv -> Scaling -> (Add ->) Relu; intermediate_outputs runs them apart."""
    from aidge_ptq_lite import _core
    g = apl.load_onnx(zoo.model_path(name))
    _core._prepare_for_calibration(g, _core.QuantizeOptions())
    assert any(n.op == "Scaling" for n in g.nodes())
    fused, unfused = _fused_and_unfused(g, test_images[0][:32])
    np.testing.assert_array_equal(fused[0], unfused[0])
    ref = apl.load_onnx(zoo.model_path(name)).forward(test_images[0][:32])
    assert relative_error(fused[0], ref) <= 1e-4
