"""Determinism: the input model file is never modified, and quantizing the same model with the same
data gives bit-identical integer weights and raw outputs — run after run, on every SIMD level and
at every thread count."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

LEVELS = ("scalar", "avx2", "avx512", "amx")
OPTION_SETS = {
    "int8": dict(nb_bits=8),
    "int8_all_options": dict(nb_bits=8, channel_wise=True, optimize_signs=True, single_shift=True),
    "int4_channel_wise": dict(nb_bits=4, channel_wise=True),
    "int12_wide_path": dict(nb_bits=12, optimize_signs=True),
}


def _zoo_path(name):
    path = zoo.model_path(name)
    if not os.path.exists(path):
        pytest.skip(f"zoo model {name} is not there yet ({path})")
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path) -> str:
    with open(path, "rb") as f:
        return _sha256(f.read())


def _fingerprint(g, x) -> dict:
    """Hashes of the integer weights (every param of every Conv/Gemm), the requantization
    multipliers (m, shift) and the raw outputs."""
    weights = hashlib.sha256()
    for node in g.nodes():
        if node.op in ("Conv", "Gemm"):
            for i in range(len(node.params)):
                p = np.ascontiguousarray(g.get_param(node.name, i))
                weights.update(f"{node.name}/{i}/{p.dtype}/{p.shape}".encode())
                weights.update(p.tobytes())
    multipliers = [(n.name, n.quant["multiplier"]) for n in g.nodes() if n.op == "Scaling"]
    raw = np.ascontiguousarray(g.forward(x, dequantize=False))
    return {"weights": weights.hexdigest(), "multipliers": _sha256(repr(multipliers).encode()),
            "raw": _sha256(raw.tobytes()), "dtype": str(raw.dtype)}


@pytest.fixture(scope="module")
def data():
    x, _ = datasets.load_fashion_mnist("test", data_dir="bundled", limit=64)
    return datasets.load_calibration_set(128, data_dir="bundled"), x


def test_model_file_is_never_modified(tmp_path, data):
    """load_onnx + quantize_network + export_onnx read the .onnx file (and the ModelProto) only."""
    calib, x = data
    path = tmp_path / "lenet.onnx"
    shutil.copyfile(_zoo_path("lenet"), path)
    before, mtime = _file_sha256(path), os.stat(path).st_mtime_ns
    proto = onnx.load(str(path))
    proto_bytes = proto.SerializeToString()
    for source in (str(path), proto):
        g = apl.load_onnx(source)
        apl.quantize_network(g, calibration_set=calib, channel_wise=True, optimize_signs=True)
        g.forward(x)
        apl.export_onnx(g, str(tmp_path / "lenet_int8.onnx"))
    assert _file_sha256(path) == before
    assert os.stat(path).st_mtime_ns == mtime
    assert proto.SerializeToString() == proto_bytes
    assert sorted(os.listdir(tmp_path)) == ["lenet.onnx", "lenet_int8.onnx"]


@pytest.mark.parametrize("model", zoo.ZOO_MODELS)
@pytest.mark.parametrize("options", sorted(OPTION_SETS))
def test_two_quantizations_are_bit_identical(model, options, data):
    """Same model, same data, same options: the same integer weights and raw outputs."""
    calib, x = data
    path = _zoo_path(model)
    prints = []
    for _ in range(2):
        g = apl.load_onnx(path)
        apl.quantize_network(g, calibration_set=calib, **OPTION_SETS[options])
        prints.append(_fingerprint(g, x))
    assert prints[0] == prints[1]


# One process per (SIMD level, thread count); APL_SIMD caps the level at start-up.
# "pinned": calibrated and quantized at the scalar level, then run at the process's level: the
# integer network must be bit-identical everywhere. "native": the whole pipeline at the process's
# level. Its float calibration kernels may differ in the last ulp between levels (FMA, summation
# order), which can move a multiplier by one unit, so it must only match across thread counts.
# At the scalar level the two modes are the same computation, so it runs once there. (Most of the
# resnet case is the int12 forward: the wide path costs ~40 ms per image at every level.)
CHILD = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    import aidge_ptq_lite as apl
    from aidge_ptq_lite import datasets
    from test_determinism import OPTION_SETS, _fingerprint
    x, _ = datasets.load_fashion_mnist("test", data_dir="bundled", limit=64)
    calib = datasets.load_calibration_set(128, data_dir="bundled")
    level = apl.simd_level()
    result = {{"level": level, "pinned": {{}}, "native": {{}}}}
    for name, options in sorted(OPTION_SETS.items()):
        for mode in ("pinned", "native"):
            if mode == "native" and level == "scalar":
                result[mode][name] = result["pinned"][name]
                continue
            apl.set_simd_level("scalar" if mode == "pinned" else level)
            g = apl.load_onnx({path!r})
            apl.quantize_network(g, calibration_set=calib, **options)
            apl.set_simd_level(level)
            result[mode][name] = _fingerprint(g, x)
    print(json.dumps(result))
""")


def _run_child(path, level, threads):
    env = dict(os.environ, APL_SIMD=level, OMP_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(apl.__path__[0]),
                                                     env.get("PYTHONPATH")) if p)
    code = CHILD.format(tests=os.path.dirname(os.path.abspath(__file__)), path=path)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", ["lenet", "resnet"])
def test_identical_across_simd_levels_and_threads(model):
    """The integer network gives the same integers under APL_SIMD=scalar/avx2/avx512 (up to what
    the CPU has) with 1 or 2 OpenMP threads; the whole pipeline, calibration included, gives the
    same integers at 1 and 2 threads on each level."""
    path = _zoo_path(model)
    detected = LEVELS.index(apl.detected_simd_level())
    results = {}
    for level in LEVELS[:detected + 1]:
        for threads in (1, 2):
            result = _run_child(path, level, threads)
            assert result["level"] == level  # the level we asked for is the one that ran
            results[(level, threads)] = result
    reference = results[("scalar", 1)]["pinned"]
    for (level, threads), result in results.items():
        assert result["pinned"] == reference, (level, threads)
        assert result["native"] == results[(level, 1)]["native"], (level, threads)


def _run_script(code, threads):
    """The JSON last printed by `code` run in a fresh process on `threads` threads, APL_SIMD unset."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env.pop("APL_SIMD", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _amx_or_skip():
    if apl.detected_simd_level() != "amx":
        pytest.skip(f"no AMX level here (detected {apl.detected_simd_level()}: CPU without "
                    "AMX-INT8, or the kernel refused the tile permission); AMX kernels untested")


def test_amx_integers_equal_scalar_at_every_batch_size_and_thread_count():
    """The AMX tile kernels (zoo resnet: 16-64 channel convs, the Gemm) give the scalar reference's
    raw integers for batches of 1, 5 and 16, at 1 and 2 threads (each in its own process: the
    OpenMP runtime reads the thread count at start-up)."""
    _amx_or_skip()
    code = textwrap.dedent("""
        import json
        import numpy as np
        import aidge_ptq_lite as apl
        from aidge_ptq_lite import datasets, zoo
        assert apl.simd_level() == "amx"
        x, _ = datasets.load_fashion_mnist("test", data_dir="bundled", limit=22)
        apl.set_simd_level("scalar")
        g = apl.load_onnx(zoo.model_path("resnet"))
        apl.quantize_network(g, calibration_set=datasets.load_calibration_set(64, data_dir="bundled"))
        out = {}
        for level in ("scalar", "avx512", "amx"):
            apl.set_simd_level(level)
            assert apl.simd_level() == level
            out[level] = [g.forward(x[a:b], dequantize=False).tolist()
                          for a, b in ((0, 1), (1, 6), (6, 22))]
        print(json.dumps({"same": out["amx"] == out["scalar"] and out["avx512"] == out["scalar"],
                          "nonzero": bool(np.any(np.asarray(out["amx"][2])))}))
    """)
    for threads in (1, 2):
        assert _run_script(code, threads) == {"same": True, "nonzero": True}, threads


def test_apl_simd_avx512_disables_amx():
    """APL_SIMD=avx512 caps an AMX machine at VNNI; APL_SIMD=amx keeps AMX."""
    _amx_or_skip()
    for cap, expected in (("avx512", "avx512"), ("amx", "amx")):
        env = dict(os.environ, APL_SIMD=cap)
        proc = subprocess.run([sys.executable, "-c", "import aidge_ptq_lite as apl; "
                               "print(apl.simd_level(), apl.detected_simd_level())"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [expected, "amx"], cap


@pytest.mark.parametrize("options", ["{}", "{'optimize_signs': True, 'channel_wise': True}"])
def test_depthwise_integers_equal_scalar_at_every_batch_size_and_thread_count(options):
    """Zoo mobilenet (depthwise 3x3 at stride 1 and 2 on 28x28 to 7x7 planes, 16-384 channels, and
    pointwise 1x1s): every level the CPU has (the VNNI depthwise kernel at avx512 / amx) gives the
    scalar reference's raw integers for batches of 1, 5 and 16, at 1 and 2 threads, with int8
    activations and with unsigned ones after ReLUs (optimize_signs)."""
    code = textwrap.dedent("""
        import json
        import numpy as np
        import aidge_ptq_lite as apl
        from aidge_ptq_lite import datasets, zoo
        levels = ("scalar", "avx2", "avx512", "amx")
        have = levels[:levels.index(apl.detected_simd_level()) + 1]
        x, _ = datasets.load_fashion_mnist("test", data_dir="bundled", limit=22)
        apl.set_simd_level("scalar")
        g = apl.load_onnx(zoo.model_path("mobilenet"))
        apl.quantize_network(g, calibration_set=datasets.load_calibration_set(64, data_dir="bundled"),
                             **OPTIONS)
        out = {}
        for level in have:
            apl.set_simd_level(level)
            assert apl.simd_level() == level
            out[level] = [g.forward(x[a:b], dequantize=False).tolist()
                          for a, b in ((0, 1), (1, 6), (6, 22))]
        print(json.dumps({"levels": list(have),
                          "same": all(out[l] == out["scalar"] for l in have),
                          "nonzero": bool(np.any(np.asarray(out[have[-1]][2])))}))
    """).replace("OPTIONS", options)
    for threads in (1, 2):
        result = _run_script(code, threads)
        if len(result["levels"]) == 1:
            pytest.skip("this CPU has no AVX2: only the scalar level ran")
        assert result["same"] and result["nonzero"], (threads, result)


def _strided_rgb_model(path):
    """A hand-built stack that takes the AMX channels-last conv kernel's paths: an RGB 7x7/2
    first layer (space to depth: 3 channels x 4 phases), a 3x3/2 from 32 channels (the VNNI-panel
    tile kernel, requantized from its tiles), a 3x3/2 from 128 and a 3x3 from 256 channels (the
    cells kernel, requantized from its tiles on 6- and 7-column wide rows)."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(7)
    layers = [("c1", 3, 32, 7, 2), ("c2", 32, 128, 3, 2), ("c3", 128, 256, 3, 2), ("c4", 256, 48, 3, 1)]
    nodes, inits, x = [], [], "x"
    for i, (name, cin, cout, k, stride) in enumerate(layers):
        w = rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))
        inits += [numpy_helper.from_array(w.astype(np.float32), f"{name}.w"),
                  numpy_helper.from_array((0.1 * rng.standard_normal(cout)).astype(np.float32), f"{name}.b")]
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [name], name,
                                      pads=[k // 2] * 4, strides=[stride, stride]))
        x = name
        if i + 1 < len(layers):
            nodes.append(helper.make_node("Relu", [x], [f"{name}.relu"], f"{name}.relu"))
            x = f"{name}.relu"
    graph = helper.make_graph(nodes, "amx_cells", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, 40, 40])], [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.mark.parametrize("options", ["{}", "{'optimize_signs': True, 'channel_wise': True}"])
def test_amx_cells_integers_equal_scalar_at_every_batch_size_and_thread_count(tmp_path, options):
    """The strided RGB stack above: the AMX level (cells kernel, space to depth, requantization
    from the tiles) and the avx512 one give the scalar reference's raw integers for batches of 1
    and 3, at 1 and 2 threads, per-tensor and per-channel scales."""
    _amx_or_skip()
    path = tmp_path / "amx_cells.onnx"
    _strided_rgb_model(path)
    code = textwrap.dedent("""
        import json
        import numpy as np
        import aidge_ptq_lite as apl
        rng = np.random.default_rng(3)
        x = rng.standard_normal((4, 3, 40, 40)).astype(np.float32)
        apl.set_simd_level("scalar")
        g = apl.load_onnx(PATH)
        apl.quantize_network(g, calibration_set=rng.standard_normal((16, 3, 40, 40)).astype(np.float32),
                             **OPTIONS)
        out = {}
        for level in ("scalar", "avx512", "amx"):
            apl.set_simd_level(level)
            assert apl.simd_level() == level
            out[level] = [g.forward(x[a:b], dequantize=False).tolist() for a, b in ((0, 1), (1, 4))]
        print(json.dumps({"same": out["amx"] == out["scalar"] and out["avx512"] == out["scalar"],
                          "nonzero": bool(np.any(np.asarray(out["amx"][1])))}))
    """).replace("PATH", repr(str(path))).replace("OPTIONS", options)
    for threads in (1, 2):
        assert _run_script(code, threads) == {"same": True, "nonzero": True}, threads
