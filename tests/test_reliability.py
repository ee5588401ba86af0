"""Bad input gets a clear Python exception, never a crash: each case runs in its own process."""
import subprocess
import sys
import textwrap

import pytest

PRELUDE = textwrap.dedent("""
    import numpy as np, onnx, pytest, threading
    from onnx import TensorProto, helper, numpy_helper
    import aidge_ptq_lite as apl
    from aidge_ptq_lite import datasets, zoo
    LENET = zoo.model_path("lenet")
    X = datasets.load_fashion_mnist("test", data_dir="bundled", limit=32)[0]
    CALIB = datasets.load_calibration_set(64, data_dir="bundled")

    def model(nodes, inits=(), inputs=None, in_shape=("N", 3, 4, 4)):
        inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))]
        g = helper.make_graph(nodes, "t", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], list(inits))
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    def lenet():
        return apl.load_onnx(LENET)
""")

CASES = {
    "truncated_onnx": """
        data = open(LENET, "rb").read()
        open("t.onnx", "wb").write(data[: len(data) // 2])
        with pytest.raises(ValueError, match="t.onnx"): apl.load_onnx("t.onnx")""",
    "not_onnx": """
        open("t.onnx", "wb").write(b"GIF89a" + bytes(range(256)) * 8)
        with pytest.raises(ValueError): apl.load_onnx("t.onnx")""",
    "empty_file": """
        open("t.onnx", "wb").close()
        with pytest.raises(ValueError): apl.load_onnx("t.onnx")""",
    "directory": """
        with pytest.raises(FileNotFoundError): apl.load_onnx(".")""",
    "wrong_type": """
        with pytest.raises(TypeError): apl.load_onnx(42)""",
    "cycle": """
        m = model([helper.make_node("Add", ["x", "b"], ["a"], name="A"),
                   helper.make_node("Relu", ["a"], ["b"], name="B"),
                   helper.make_node("Relu", ["b"], ["y"])])
        with pytest.raises(ValueError, match="cycle|neither produced"): apl.load_onnx(m)""",
    "missing_initializer": """
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv1")])
        with pytest.raises(ValueError, match="'w'"): apl.load_onnx(m)""",
    "unsupported_op": """
        m = model([helper.make_node("Det", ["x"], ["y"], name="t1")])
        with pytest.raises(apl.UnsupportedOpError, match="Det.*t1"): apl.load_onnx(m)""",
    "dynamic_spatial_shape": """
        m = model([helper.make_node("Relu", ["x"], ["y"])], in_shape=("N", 3, "H", "W"))
        with pytest.raises(apl.ShapeError, match="dynamic"): apl.load_onnx(m)""",
    "two_inputs": """
        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3]) for n in ("a", "b")]
        m = model([helper.make_node("Add", ["a", "b"], ["y"])], inputs=ins)
        with pytest.raises(NotImplementedError, match="single-input"): apl.load_onnx(m)""",
    "bad_conv_weights": """
        w = numpy_helper.from_array(np.ones((2, 5, 3, 3), np.float32), "w")
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], [w])
        with pytest.raises(apl.ShapeError, match="'c'"): apl.load_onnx(m)""",
    "bad_reshape": """
        s = numpy_helper.from_array(np.array([-1, 7], np.int64), "s")
        m = model([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], [s])
        with pytest.raises(apl.ShapeError, match="'r'"): apl.load_onnx(m)""",
    "concat_on_batch_axis": """
        m = model([helper.make_node("Concat", ["x", "x"], ["y"], axis=0)])
        with pytest.raises(NotImplementedError, match="batch"): apl.load_onnx(m)""",
    "gemm_trans_a": """
        w = numpy_helper.from_array(np.ones((3, 3), np.float32), "w")
        m = model([helper.make_node("Gemm", ["x", "w"], ["y"], transA=1)], [w], in_shape=("N", 3))
        with pytest.raises(NotImplementedError, match="transA"): apl.load_onnx(m)""",
    "input_wrong_rank": """
        with pytest.raises(apl.ShapeError, match="28, 28"): lenet().forward(np.zeros((1, 28, 28), np.float32))""",
    "input_wrong_shape": """
        with pytest.raises(apl.ShapeError): lenet().forward(np.zeros((2, 1, 27, 28), np.float32))""",
    "input_wrong_channels": """
        with pytest.raises(apl.ShapeError): lenet().forward(np.zeros((2, 3, 28, 28), np.float32))""",
    "input_int_dtype": """
        with pytest.raises(ValueError, match="float"): lenet().forward(np.zeros((2, 1, 28, 28), np.int32))""",
    "input_not_array": """
        with pytest.raises((ValueError, TypeError)): lenet().forward("images")""",
    "input_empty_batch": """
        with pytest.raises(apl.ShapeError, match="empty"): lenet().forward(np.zeros((0, 1, 28, 28), np.float32))""",
    "calibration_empty_array": """
        with pytest.raises(ValueError, match="empty"):
            apl.quantize_network(lenet(), calibration_set=np.zeros((0, 1, 28, 28), np.float32))""",
    "calibration_empty_list": """
        with pytest.raises(ValueError, match="empty"): apl.quantize_network(lenet(), calibration_set=[])""",
    "calibration_missing": """
        with pytest.raises(ValueError, match="required"): apl.quantize_network(lenet())""",
    "calibration_nan": """
        c = CALIB.copy(); c[3, 0, 5, 5] = np.nan
        with pytest.raises(ValueError, match="NaN"): apl.quantize_network(lenet(), calibration_set=c)""",
    "calibration_inf": """
        c = CALIB.copy(); c[0, 0, 0, 0] = -np.inf
        with pytest.raises(ValueError, match="Inf"): apl.quantize_network(lenet(), calibration_set=c)""",
    "calibration_wrong_shape": """
        with pytest.raises(apl.ShapeError): apl.quantize_network(lenet(), calibration_set=np.zeros((4, 1, 32, 32), np.float32))""",
    "nb_bits_too_small": """
        with pytest.raises(ValueError, match="nb_bits"): apl.quantize_network(lenet(), nb_bits=1, calibration_set=CALIB)""",
    "nb_bits_too_large": """
        with pytest.raises(ValueError, match="nb_bits"): apl.quantize_network(lenet(), nb_bits=17, calibration_set=CALIB)""",
    "nb_bits_not_int": """
        with pytest.raises(ValueError, match="nb_bits"): apl.quantize_network(lenet(), nb_bits=8.0, calibration_set=CALIB)""",
    "nb_bits_bool": """
        with pytest.raises(ValueError, match="nb_bits"): apl.quantize_network(lenet(), nb_bits=True, calibration_set=CALIB)""",
    "unknown_clipping": """
        with pytest.raises(ValueError, match="clipping"): apl.quantize_network(lenet(), clipping_mode="P99", calibration_set=CALIB)""",
    "quantize_twice": """
        g = lenet(); apl.quantize_network(g, calibration_set=CALIB)
        with pytest.raises(ValueError, match="already quantized"): apl.quantize_network(g, calibration_set=CALIB)""",
    "nan_weights_forward": """
        g = lenet(); conv = [n for n in g.nodes() if n.op == "Conv"][0].name
        w = g.get_param(conv, 0); w[0, 0, 0, 0] = np.nan; g.set_param(conv, 0, w)
        with pytest.raises(ValueError, match="NaN"): g.forward(X)""",
    "nan_weights_quantize": """
        g = lenet(); conv = [n for n in g.nodes() if n.op == "Conv"][0].name
        w = g.get_param(conv, 0); w[:] = np.inf; g.set_param(conv, 0, w)
        with pytest.raises(ValueError): apl.quantize_network(g, calibration_set=CALIB)
        assert not g.is_quantized""",
    "set_param_wrong_shape": """
        g = lenet(); conv = [n for n in g.nodes() if n.op == "Conv"][0].name
        with pytest.raises(apl.ShapeError): g.set_param(conv, 0, np.zeros((1, 1), np.float32))
        g.forward(X)""",
    "unknown_node": """
        with pytest.raises(apl.GraphError, match="nope"): lenet().node("nope")""",
    "export_float_graph": """
        with pytest.raises(ValueError, match="quantized"): apl.export_onnx(lenet(), "m.onnx")""",
    "threads": """
        g = lenet(); apl.quantize_network(g, calibration_set=CALIB)
        ref = g.forward(X)
        results, errors = [], []
        def work():
            try:
                for _ in range(20): results.append(g.forward(X))
            except Exception as e: errors.append(e)
        threads = [threading.Thread(target=work) for _ in range(4)]
        [t.start() for t in threads]; [t.join() for t in threads]
        assert not errors and len(results) == 80
        assert all(np.array_equal(r, ref) for r in results)""",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_clear_exception(case, tmp_path):
    code = PRELUDE + textwrap.dedent(CASES[case])
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
