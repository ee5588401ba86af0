"""Bad models and bad inputs give clear exceptions, never a crash."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl
from aidge_ptq_lite import zoo


def _graph(nodes, inits=(), in_shape=("N", 3, 4, 4), out_shape=("N", 3, 4, 4)):
    g = helper.make_graph(nodes, "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
                          list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_unsupported_op_names_op_node_and_supported_set():
    m = _graph([helper.make_node("Relu", ["x"], ["r"], name="first"),
                helper.make_node("Det", ["r"], ["y"], name="my_det")])
    with pytest.raises(apl.UnsupportedOpError) as err:
        apl.load_onnx(m)
    msg = str(err.value)
    assert "Det" in msg and "my_det" in msg and "Conv" in msg and "GlobalAveragePool" in msg
    assert isinstance(err.value, NotImplementedError)


def test_wrong_input_shape_is_a_clear_error():
    g = apl.load_onnx(zoo.model_path("lenet"))
    with pytest.raises(apl.ShapeError, match=r"\(N, 1, 28, 28\)"):
        g.forward(np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(apl.ShapeError):
        g.forward(np.zeros((1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="float"):
        g.forward(np.zeros((2, 1, 28, 28), np.int64))
    # the graph still works afterwards
    assert g.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)


def test_float64_input_is_converted():
    g = apl.load_onnx(zoo.model_path("lenet"))
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28))
    np.testing.assert_allclose(g.forward(x), g.forward(x.astype(np.float32)), rtol=1e-6)


def test_dynamic_spatial_shape_is_refused():
    m = _graph([helper.make_node("Relu", ["x"], ["y"])], in_shape=("N", 3, "H", 4))
    with pytest.raises(apl.ShapeError, match="dynamic dimension 2"):
        apl.load_onnx(m)


def test_missing_initializer_is_named():
    m = _graph([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])])
    with pytest.raises(ValueError, match="'w'"):
        apl.load_onnx(m)


def test_weights_that_do_not_fit_the_input():
    w = numpy_helper.from_array(np.ones((3, 5, 1, 1), np.float32), "w")
    m = _graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c1")], [w])
    with pytest.raises(apl.ShapeError, match="c1"):
        apl.load_onnx(m)


def test_not_an_onnx_file(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ValueError):
        apl.load_onnx(p)
    good = onnx.load(zoo.model_path("lenet")).SerializeToString()
    p.write_bytes(good[: len(good) // 3])
    with pytest.raises(ValueError):
        apl.load_onnx(p)
    with pytest.raises(FileNotFoundError):
        apl.load_onnx(tmp_path / "missing.onnx")


def test_summary_lists_nodes_shapes_and_params():
    g = apl.load_onnx(zoo.model_path("resnet"))
    text = repr(g)
    assert "Conv" in text and "Add" in text and "GlobalAveragePool" in text
    assert f"{g.param_count} parameters" in text
    assert g.input_shape == [1, 28, 28]
    conv = next(n for n in g.nodes() if n.op == "Conv")
    assert conv.params[0].ndim == 4 and conv.shape[0] == conv.params[0].shape[0]


def test_clone_is_independent():
    g = apl.load_onnx(zoo.model_path("lenet"))
    c = g.clone()
    conv = next(n for n in g.nodes() if n.op == "Conv").name
    w = g.get_param(conv, 0)
    c.set_param(conv, 0, np.zeros_like(w))
    np.testing.assert_array_equal(g.get_param(conv, 0), w)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert not np.allclose(g.forward(x), c.forward(x))


def test_forward_dequantize_must_be_a_bool():
    # None used to return the raw int32 accumulators of a quantized graph without a word.
    g = apl.load_onnx(zoo.model_path("lenet"))
    for bad in (None, "False", 0):
        with pytest.raises(TypeError, match="dequantize must be a bool"):
            g.forward(np.zeros((2, 1, 28, 28), np.float32), dequantize=bad)
