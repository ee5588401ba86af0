"""aidge_ptq.py end to end on the bundled subset: the printed accuracies are the library's."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "aidge_ptq.py"), "--data", "bundled",
                           "--no-progress", *args], capture_output=True, text=True, timeout=600)
    return proc


def printed(text, label):
    return float(re.search(rf"^{label}\s*: ([\d.]+)% top-1", text, re.M).group(1))


def library_accuracy(model, **kw):
    x, y = datasets.load_fashion_mnist("test", data_dir="bundled")
    g = apl.load_onnx(zoo.model_path(model))
    float_acc = np.mean(g.forward(x).argmax(1) == y)
    apl.quantize_network(g, calibration_set=datasets.load_calibration_set(256, data_dir="bundled"), **kw)
    return 100 * float_acc, 100 * np.mean(g.forward(x).argmax(1) == y)


@pytest.mark.parametrize("model", zoo.ZOO_MODELS)
def test_script_prints_the_library_accuracies(model):
    proc = run_cli("--model", model)
    assert proc.returncode == 0, proc.stderr
    float_acc, quant_acc = library_accuracy(model)
    assert printed(proc.stdout, "float") == pytest.approx(float_acc, abs=0.006)
    assert printed(proc.stdout, "quantized") == pytest.approx(quant_acc, abs=0.006)
    assert "PTQ time" in proc.stdout and "model size" in proc.stdout


@pytest.mark.parametrize("flags, kwargs", [
    (["--nb-bits", "4", "--channel-wise"], {"nb_bits": 4, "channel_wise": True, "clipping_mode": "MSE"}),
    (["--clipping", "kl", "--optimize-signs", "--cle"],
     {"clipping_mode": "KL", "optimize_signs": True, "cross_layer_equalization": True}),
    (["--single-shift"], {"single_shift": True}),
    (["--no-quant"], {"no_quant": True}),
])
def test_script_flags(flags, kwargs):
    proc = run_cli("--model", "lenet", *flags)
    assert proc.returncode == 0, proc.stderr
    _, quant_acc = library_accuracy("lenet", **kwargs)
    assert printed(proc.stdout, "quantized") == pytest.approx(quant_acc, abs=0.006)


def test_script_verbose_and_export(tmp_path):
    out = tmp_path / "lenet_int8.onnx"
    proc = run_cli("--model", "lenet", "--verbose", "--export", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "SQNR" in proc.stdout and "<- worst" in proc.stdout
    assert out.exists()


def test_script_reports_bad_input_clearly(tmp_path):
    proc = run_cli("--model", "lenet", "--nb-bits", "1")
    assert proc.returncode != 0 and "nb_bits" in proc.stderr
    proc = run_cli("--onnx", str(tmp_path / "missing.onnx"))
    assert proc.returncode != 0 and "missing.onnx" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_script_plots_histograms(tmp_path):
    pytest.importorskip("matplotlib")
    proc = run_cli("--model", "lenet", "--clipping", "mse", "--plot-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 5  # one per Scaling node of lenet
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_export_c_option_writes_a_project_that_builds(tmp_path):
    out = tmp_path / "c"
    proc = run_cli("--model", "lenet", "--eval-samples", "64", "--export-c", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "C export" in proc.stdout and "arena" in proc.stdout
    for name in ("network.h", "network.c", "network_weights.c", "main.c"):
        assert (out / name).is_file(), name


def test_export_c_above_8_bits(tmp_path):
    out = tmp_path / "c"
    proc = run_cli("--model", "lenet", "--eval-samples", "64", "--nb-bits", "12", "--export-c", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "typedef int64_t network_output0_t;" in (out / "network.h").read_text()


@pytest.mark.parametrize("args, message", [
    (("--no-quant",), "needs integers"),
    (("--foreign",), "not empty and holds no previous export"),
])
def test_export_c_misuse_is_refused_before_the_evaluation(tmp_path, args, message):
    target = tmp_path / "c"
    if "--foreign" in args:  # a user's folder: refused, naming the file, which stays as it was
        target.mkdir()
        (target / "notes.txt").write_text("mine")
        args = ()
    proc = run_cli("--model", "lenet", "--export-c", str(target), *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert "top-1" not in proc.stdout  # refused before anything ran
    if (target / "notes.txt").exists():
        assert "notes.txt" in proc.stderr and (target / "notes.txt").read_text() == "mine"
        assert sorted(os.listdir(target)) == ["notes.txt"]


def test_allow_float_needs_export_c():
    proc = run_cli("--model", "lenet", "--allow-float")
    assert proc.returncode == 2 and "--export-c" in proc.stderr


def _symbolic_hw_classifier(path):
    """Conv -> GlobalAveragePool -> Flatten on (batch, 1, height, width): H and W left symbolic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.3, (10, 1, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1] * 4),
             helper.make_node("GlobalAveragePool", ["c"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["y"], name="flat")]
    graph = helper.make_graph(nodes, "symbolic_hw",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, "height", "width"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_input_shape_option_for_models_with_symbolic_dims(tmp_path):
    model = tmp_path / "symbolic.onnx"
    _symbolic_hw_classifier(model)
    small = ("--onnx", str(model), "--eval-samples", "64", "--calib-samples", "32")
    proc = run_cli(*small)  # the images' shape is taken, and said
    assert proc.returncode == 0, proc.stderr
    assert "symbolic" in proc.stderr and "1,28,28" in proc.stderr
    proc = run_cli(*small, "--input-shape", "1,28,28")
    assert proc.returncode == 0 and "symbolic" not in proc.stderr, proc.stderr
    proc = run_cli(*small, "--input-shape", "3,28,28")  # contradicts the model's 1 channel
    assert proc.returncode == 2 and "dimension 1" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(*small, "--input-shape", "1,x")
    assert proc.returncode == 2 and "1,28,28" in proc.stderr
