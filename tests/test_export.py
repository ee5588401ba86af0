"""ONNX QDQ export: onnxruntime runs the exported model and agrees with our integer network."""
import os

import numpy as np
import onnx
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

from conftest import ort_forward


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
