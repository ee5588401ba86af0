"""The op registry (cpp/src/ops/registry.cpp) as the importer, the passes and the exporter see
it, and Tanh: the op added through the README's "Adding an op" checklist."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl

from conftest import ort_forward, relative_error

RNG = np.random.default_rng(7)


def _model(nodes, inits, in_shape, out_shape, domain_opsets=()):
    g = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])], inits)
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domain_opsets]
    return helper.make_model(g, opset_imports=opsets)


def _init(name, shape, scale=0.5):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _conv_net(last_op):
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> ``last_op``."""
    return _model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
         helper.make_node("Flatten", ["p"], ["f"], name="flat"),
         helper.make_node("Gemm", ["f", "fw", "fb"], ["h"], transB=1, name="fc"),
         helper.make_node(last_op, ["h"], ["y"], name="head")],
        [_init("w", (8, 2, 3, 3)), _init("b", (8,)), _init("fw", (5, 8), 1.0), _init("fb", (5,))],
        (2, 6, 6), (5,))


def test_registry_lists_every_supported_op_once():
    registry = apl._core.op_registry()
    assert sorted(set(registry) - {"Input", "Scaling"}) == apl.supported_ops()
    for name, row in registry.items():
        if row["affine"] or row["join"]:
            assert row["needs_scaling"], name
        if row["float_only"]:
            assert not row["integer_kernel"], name  # a float-only op has no integer kernel
    assert registry["Conv"]["export_rule"] == "affine"
    assert registry["Clip"]["activation_attributes"] == ["min", "max"]


def test_tanh_matches_onnxruntime():
    model = _model([helper.make_node("Tanh", ["x"], ["y"])], [], (3, 4, 5), (3, 4, 5))
    x = (RNG.standard_normal((4, 3, 4, 5)) * 3).astype(np.float32)
    ours = apl.load_onnx(model).forward(x)
    np.testing.assert_allclose(ours, ort_forward(model, x), rtol=1e-6, atol=1e-7)


def test_tanh_head_is_kept_float_and_exports(tmp_path):
    model = _conv_net("Tanh")
    x = RNG.standard_normal((64, 2, 6, 6)).astype(np.float32)
    g = apl.load_onnx(model)
    float_out = g.forward(x)
    assert relative_error(float_out, ort_forward(model, x)) <= 1e-5
    apl.quantize_network(g, calibration_set=x, nb_bits=8)
    report = apl.quantizability_report(g)
    assert "head" in report.kept_float
    ours = g.forward(x)
    assert np.max(np.abs(ours - float_out)) < 0.05  # 8 bits through a bounded head
    path = tmp_path / "tanh_qdq.onnx"
    apl.export_onnx(g, path)
    exported = ort_forward(str(path), x)
    assert np.max(np.abs(exported - ours)) < 0.02


def test_tanh_inside_the_network_is_a_float_island():
    model = _model(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
         helper.make_node("Tanh", ["c"], ["t"], name="mid_tanh"),
         helper.make_node("Conv", ["t", "w2"], ["y"], name="conv2")],
        [_init("w", (4, 2, 1, 1)), _init("w2", (3, 4, 1, 1))], (2, 4, 4), (3, 4, 4))
    g = apl.load_onnx(model)
    x = RNG.standard_normal((32, 2, 4, 4)).astype(np.float32)
    float_out = g.forward(x)
    apl.quantize_network(g, calibration_set=x)
    assert apl.quantizability_report(g).islands == ["mid_tanh"]
    assert len(g.node("mid_tanh").quant["lut"]) == 255  # every signed 8-bit code
    assert relative_error(g.forward(x), float_out) < 0.03


def test_op_of_a_custom_domain_is_refused():
    model = _model([helper.make_node("Relu", ["x"], ["y"], domain="com.example", name="custom_relu")],
                   [], (3,), (3,), domain_opsets=["com.example"])
    with pytest.raises(apl.UnsupportedOpError, match="com.example.*custom_relu"):
        apl.load_onnx(model)
