"""ONNX QDQ export: onnxruntime runs the exported model and agrees with our integer network."""
import os

import numpy as np
import onnx
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

from conftest import one_input_model, ort_forward, sqnr_db


@pytest.fixture(scope="module", params=["bundled", pytest.param("full", marks=pytest.mark.slow)])
def test_set(request):
    """The bundled 1,000 test images; the full 10,000 in the slow suite (about 70 s, mostly
    onnxruntime running the QDQ models)."""
    if request.param == "full" and datasets.data_source().startswith("bundled"):
        pytest.skip("needs the full test set (apt-get install dataset-fashion-mnist)")
    return datasets.load_fashion_mnist("test", data_dir="bundled" if request.param == "bundled" else None)


def test_exported_model_agrees_with_integer_forward(zoo_model, test_set, tmp_path):
    x, y = test_set
    g = apl.load_onnx(zoo.model_path(zoo_model))
    apl.quantize_network(g, calibration_set=datasets.load_calibration_set(256))
    path = tmp_path / f"{zoo_model}_int8.onnx"
    apl.export_onnx(g, path)
    ours = g.forward(x)
    theirs = ort_forward(str(path), x)
    agreement = np.mean(ours.argmax(1) == theirs.argmax(1))
    assert agreement >= 0.995, f"top-1 agreement {agreement:.4f}"
    acc_ours, acc_theirs = np.mean(ours.argmax(1) == y), np.mean(theirs.argmax(1) == y)
    assert abs(acc_ours - acc_theirs) <= 0.002
    model = onnx.load(path)
    types = {i.name: i.data_type for i in model.graph.initializer}
    assert any(t == onnx.TensorProto.INT8 for t in types.values())
    assert any(t == onnx.TensorProto.INT32 for t in types.values())
    assert {n.op_type for n in model.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    ratio = os.path.getsize(zoo.model_path(zoo_model)) / os.path.getsize(path)
    assert ratio > 3.5, f"only {ratio:.2f}x smaller"


@pytest.mark.parametrize("nb_bits", [4, 6])
def test_low_bit_export_keeps_the_code_range(nb_bits, tmp_path):
    x, _ = datasets.load_fashion_mnist("test", limit=512)
    g = apl.load_onnx(zoo.model_path("lenet"))
    apl.quantize_network(g, nb_bits=nb_bits, calibration_set=datasets.load_calibration_set(256))
    apl.export_onnx(g, tmp_path / "m.onnx")
    ours, theirs = g.forward(x), ort_forward(str(tmp_path / "m.onnx"), x)
    assert np.mean(ours.argmax(1) == theirs.argmax(1)) >= 0.99


def test_export_refuses_float_and_no_quant_graphs(tmp_path):
    g = apl.load_onnx(zoo.model_path("lenet"))
    with pytest.raises(ValueError, match="quantized"):
        apl.export_onnx(g, tmp_path / "m.onnx")
    apl.quantize_network(g, calibration_set=datasets.load_calibration_set(64), no_quant=True)
    with pytest.raises(ValueError, match="no_quant"):
        apl.export_onnx(g, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def _conv_activation_conv(activation: str):
    """Conv -> LeakyRelu (alpha 0.2) or PRelu (one slope per channel) -> Conv, random weights."""
    from onnx import helper, numpy_helper
    rng = np.random.default_rng(3)

    def init(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    slope = numpy_helper.from_array(rng.uniform(0.05, 0.4, (8, 1, 1)).astype(np.float32), "slope")
    act = (helper.make_node("PRelu", ["a", "slope"], ["h"]) if activation == "PRelu"
           else helper.make_node("LeakyRelu", ["a"], ["h"], alpha=0.2))
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[1, 1, 1, 1]), act,
             helper.make_node("Conv", ["h", "w2", "b2"], ["y"], pads=[1, 1, 1, 1])]
    inits = [init("w1", 8, 3, 3, 3), init("b1", 8, scale=0.1), slope, init("w2", 4, 8, 3, 3), init("b2", 4, scale=0.1)]
    return one_input_model(nodes, inits, [3, 12, 12])


@pytest.mark.parametrize("optimize_signs", [False, True], ids=["signed", "signs"])
@pytest.mark.parametrize("nb_bits", [8, 4])
@pytest.mark.parametrize("activation", ["LeakyRelu", "PRelu"])
def test_export_rounds_after_leaky_activations_as_the_integer_kernel(activation, nb_bits, optimize_signs, tmp_path):
    """The integer LeakyRelu / PRelu round alpha x code on the input's grid; the exported model
    must round there too (without it about 97% of the outputs differ). Allowed: the spread of a
    rare tie of a Conv's requantization (ONNX rounds half to even, we half up)."""
    rng = np.random.default_rng(4)
    g = apl.load_onnx(_conv_activation_conv(activation))
    apl.quantize_network(g, rng.standard_normal((64, 3, 12, 12)).astype(np.float32), nb_bits=nb_bits,
                         optimize_signs=optimize_signs)
    apl.export_onnx(g, tmp_path / "m.onnx")
    x = rng.standard_normal((16, 3, 12, 12)).astype(np.float32)
    ours, theirs = g.forward(x), ort_forward(str(tmp_path / "m.onnx"), x)
    differ = np.mean(np.abs(theirs - ours) > 1e-4 * np.abs(ours).max())
    assert differ < 0.01, f"{differ:.1%} of the outputs differ ({sqnr_db(theirs, ours):.1f} dB)"
