"""Shared fixtures: onnxruntime as the float oracle, the zoo, data."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from aidge_ptq_lite import datasets, zoo


def ort_forward(model, x: np.ndarray) -> np.ndarray:
    """Run a model (ModelProto or path) with onnxruntime on the CPU, 2 threads."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def relative_error(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(y - ref)) / max(np.max(np.abs(ref)), 1e-12))


def one_input_model(nodes, inits, in_shape, opset=17):
    """A model of `nodes` reading input x of shape (N, *in_shape) and writing output y."""
    from onnx import TensorProto, helper
    g = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def int64_initializer(name, values):
    from onnx import numpy_helper
    return numpy_helper.from_array(np.array(values, np.int64), name)


def sqnr_db(y: np.ndarray, ref: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of y against ref, dB (inf when equal)."""
    noise = np.sum((y - ref).astype(np.float64) ** 2)
    return np.inf if noise == 0 else 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / noise)


SIMD_LEVELS = ["scalar", "avx2", "avx512", "amx"]


def assert_same_integers_at_every_level(g, x: np.ndarray) -> None:
    """The raw integers of g.forward at every SIMD level this CPU has equal the scalar level's
    (skips, saying so, on a CPU without AVX2)."""
    from aidge_ptq_lite import detected_simd_level, set_simd_level
    detected = SIMD_LEVELS.index(detected_simd_level())
    outputs = []
    try:
        for level in SIMD_LEVELS[:detected + 1]:
            set_simd_level(level)
            outputs.append(g.forward(x, dequantize=False))
    finally:
        set_simd_level(SIMD_LEVELS[detected])
    if detected == 0:
        pytest.skip("this CPU has no AVX2: only the scalar level ran")
    for other in outputs[1:]:
        np.testing.assert_array_equal(other, outputs[0])


@pytest.fixture(scope="session")
def test_images():
    x, y = datasets.load_fashion_mnist("test", limit=512)
    return x, y


@pytest.fixture(scope="session", params=zoo.ZOO_MODELS)
def zoo_model(request):
    return request.param
