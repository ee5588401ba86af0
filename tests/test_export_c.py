"""export_c: the C99 export compiles warning-free and is bit-exact with the integer executor."""
import os
import re
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import helper

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc not found: the C export is not compiled")
GCC_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]

CONFIGS = {
    "8bit-tensor": dict(nb_bits=8),
    "4bit-channel": dict(nb_bits=4, channel_wise=True),
    "8bit-single-shift": dict(nb_bits=8, single_shift=True),
    # unsigned codes (uint8 kernels), single shift at 4 bits, MSE clipping
    "4bit-signs-shift": dict(nb_bits=4, channel_wise=True, optimize_signs=True, single_shift=True,
                             clipping_mode="MSE"),
    # above 8 bits: int32 codes, int64 accumulators, 128-bit requantization products
    "16bit-tensor": dict(nb_bits=16),
    "12bit-signs-shift": dict(nb_bits=12, channel_wise=True, optimize_signs=True, single_shift=True),
    # the narrowest codes: 2 bits is [-1, 1]
    "2bit-channel-mse": dict(nb_bits=2, channel_wise=True, clipping_mode="MSE"),
    "3bit-signs": dict(nb_bits=3, channel_wise=True, clipping_mode="MSE", optimize_signs=True),
}
# (model, config) pairs: every zoo model in the three main configurations, the fast models in the
# unsigned one (keeps the module under a minute).
CASES = [(m, c) for c in list(CONFIGS)[:3] for m in zoo.ZOO_MODELS] + \
        [(m, "4bit-signs-shift") for m in ("lenet", "branchnet")] + \
        [("lenet", "16bit-tensor"), ("branchnet", "12bit-signs-shift"), ("lenet", "2bit-channel-mse"),
         ("branchnet", "3bit-signs")]
# the deeper models above 8 bits (slower: int64 accumulators in scalar C)
SLOW_CASES = [("resnet", "16bit-tensor"), ("mobilenet", "12bit-signs-shift")]
NETWORK_SOURCES = ("network.c", "network.h", "network_weights.c", "network_weights.h",
                   "apl_kernels.c", "apl_kernels.h")
N_TEST = 64


@pytest.fixture(scope="module")
def data():
    x_calib = datasets.load_calibration_set(128, data_dir="bundled")
    x_test, _ = datasets.load_fashion_mnist("test", data_dir="bundled", limit=N_TEST)
    return x_calib, np.ascontiguousarray(x_test, np.float32)


class Builds:
    """One quantized graph, export and (when gcc is there) compiled binary per (model, config)."""

    def __init__(self, data, root):
        self.data, self.root, self.cache = data, root, {}

    def get(self, model, config, compile=True):
        key = (model, config)
        if key not in self.cache:
            g = apl.load_onnx(zoo.model_path(model))
            apl.quantize_network(g, self.data[0], **CONFIGS[config])
            d = os.path.join(self.root, f"{model}-{config}")
            info = apl.export_c(g, d)
            self.cache[key] = {"graph": g, "info": info, "dir": d, "binary": None}
        entry = self.cache[key]
        if compile and entry["binary"] is None and GCC:
            d = entry["dir"]
            sources = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".c"))
            binary = os.path.join(d, "net")
            r = subprocess.run([GCC, *GCC_FLAGS, "-o", binary, *sources, "-lm"], capture_output=True, text=True)
            assert r.returncode == 0, f"gcc failed on {model}/{config}:\n{r.stderr[:4000]}"
            entry["binary"] = binary
        return entry


@pytest.fixture(scope="module")
def builds(data, tmp_path_factory):
    return Builds(data, str(tmp_path_factory.mktemp("export_c")))


def run_binary(entry, x, tmp_dir):
    inp, out = os.path.join(tmp_dir, "in.f32"), os.path.join(tmp_dir, "out.bin")
    x.astype("<f4").tofile(inp)
    subprocess.run([entry["binary"], inp, out], check=True, timeout=120)
    return out


@needs_gcc
@pytest.mark.parametrize("model,config", CASES)
def test_bit_exact_with_executor(builds, data, model, config, tmp_path):
    entry = builds.get(model, config)
    x = data[1]
    ref = entry["graph"].forward(x, dequantize=False)
    assert entry["info"]["output_dtype"] == ref.dtype.name
    out = run_binary(entry, x, str(tmp_path))
    got = np.fromfile(out, dtype=ref.dtype.newbyteorder("<")).reshape(ref.shape)
    assert got.size == ref.size
    mismatch = int(np.sum(got != ref))
    assert np.array_equal(got, ref), f"{model}/{config}: {mismatch} of {ref.size} outputs differ"


@needs_gcc
@pytest.mark.slow
@pytest.mark.parametrize("model,config", SLOW_CASES)
def test_bit_exact_with_executor_wide_deep(builds, data, model, config, tmp_path):
    test_bit_exact_with_executor(builds, data, model, config, tmp_path)


REQUANT_WIDE_MAIN = r"""
#include <stdio.h>
#include <inttypes.h>
#include "apl_kernels.h"
int main(void) {
  long long acc; int m, s, lo, hi;
  while (scanf("%lld %d %d %d %d", &acc, &m, &s, &lo, &hi) == 5)
    printf("%d\n", (int)apl_requant_wide((int64_t)acc, m, s, lo, hi));
  return 0;
}
"""


def requant_wide_oracle(acc, m, s, lo, hi):
    """requantize_one_wide (requantize.hpp) in Python's exact integers."""
    v = acc * m
    if s > 0:
        v = (v + (1 << (s - 1))) >> s
    return min(max(v, lo), hi)


@needs_gcc
def test_wide_requantization_is_exact_in_128_bits(tmp_path):
    """The C99 two-word 128-bit product, rounding and shift against exact integers, on the edges
    (INT64_MIN, products past 2^63, every shift 0..62, ties) and random draws."""
    from aidge_ptq_lite import _c_kernels
    (tmp_path / "apl_kernels.h").write_text(_c_kernels.KERNELS_H)
    (tmp_path / "apl_kernels.c").write_text(_c_kernels.KERNELS_C)
    (tmp_path / "t.c").write_text(REQUANT_WIDE_MAIN)
    binary = str(tmp_path / "t")
    r = subprocess.run([GCC, *GCC_FLAGS, "-o", binary, str(tmp_path / "t.c"), str(tmp_path / "apl_kernels.c")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:4000]
    rng = np.random.default_rng(3)
    cases = []
    lo32, hi32 = -(2 ** 31), 2 ** 31 - 1
    for acc in (0, 1, -1, 2 ** 63 - 1, -(2 ** 63), -(2 ** 63) + 1, 2 ** 40 + 12345, -(2 ** 40) - 12345):
        for m in (0, 1, 2 ** 30, 2 ** 31 - 1, 1137402240):
            for s in (0, 1, 31, 43, 62):
                cases.append((acc, m, s, lo32, hi32))
                cases.append((acc, m, s, -32767, 32767))
    for _ in range(3000):
        s = int(rng.integers(0, 63))
        m = int(rng.integers(0, 2 ** 31))
        acc = int(rng.integers(-(2 ** 62), 2 ** 62)) >> int(rng.integers(0, 62))
        cases.append((acc, m, s, -32767, 32767))
        # near a rounding tie: acc * m = k * 2^s + 2^(s-1) (+-1)
        if s > 0 and m > 0:
            k = int(rng.integers(-1000, 1000))
            target = k * 2 ** s + 2 ** (s - 1) + int(rng.integers(-1, 2))
            cases.append((max(-(2 ** 63), min(2 ** 63 - 1, target // m)), m, s, lo32, hi32))
    text = "".join(f"{a} {m} {s} {lo} {hi}\n" for a, m, s, lo, hi in cases)
    out = subprocess.run([binary], input=text, capture_output=True, text=True, check=True).stdout.split()
    got = [int(v) for v in out]
    want = [requant_wide_oracle(*c) for c in cases]
    bad = [(c, g_, w) for c, g_, w in zip(cases, got, want) if g_ != w]
    assert len(got) == len(cases) and not bad, bad[:5]


@needs_gcc
def test_empty_input_gives_empty_output(builds, tmp_path):
    entry = builds.get("lenet", "8bit-tensor")
    out = run_binary(entry, np.zeros((0, 1, 28, 28), np.float32), str(tmp_path))
    assert os.path.getsize(out) == 0


@pytest.mark.parametrize("model", zoo.ZOO_MODELS)
def test_single_shift_network_has_no_floating_point(builds, model):
    entry = builds.get(model, "8bit-single-shift", compile=False)
    g = entry["graph"]
    # The Scaling nodes after Conv/Gemm are pure shifts (m = 1); those after joins and summing
    # pools keep an integer multiplier (nothing upstream to compensate a power of two in): still
    # integers only.
    shifts = [n for n in g.nodes() if n.op == "Scaling" and n.quant["single_shift"]]
    assert shifts
    for n in shifts:
        assert all(m == 1 for m, _ in n.quant["multiplier"]), n.name
    for f in NETWORK_SOURCES:
        text = open(os.path.join(entry["dir"], f)).read()
        code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments may say "float"
        found = re.findall(r"\b(float|double|long double|_Float\w*|math\.h)\b", code)
        assert not found, f"{model}: {f} contains {found}"
        assert not re.search(r"\bmalloc|\bcalloc|\bfree\s*\(", code), f"{model}: {f} uses the heap"


def check_plan(entry):
    g, info = entry["graph"], entry["info"]
    plan = info["plan"]
    buffers = plan.buffers
    # no two buffers live at the same step share a byte
    for i, a in enumerate(buffers):
        assert a.offset >= 0 and a.offset % 4 == 0 and a.offset + a.size <= plan.arena_bytes
        for b in buffers[i + 1:]:
            if a.start <= b.end and b.start <= a.end:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, \
                    f"buffers {a.index} [{a.start},{a.end}] and {b.index} [{b.start},{b.end}] overlap in the arena"
    # every value is live in its buffer from its producer to each of its readers (and the output
    # to the end)
    step = {n.name: i for i, n in enumerate(g.nodes())}
    by_index = {b.index: b for b in buffers}
    for name, index in info["buffer_of"].items():
        if index is None:
            continue
        b = by_index[index]
        assert b.start <= step[name], name
        for user in g.consumers(name):
            assert b.start <= step[user] <= b.end, f"{name} read by {user} outside its buffer's lifetime"
        if name in g.outputs:
            assert b.end >= len(g.nodes())
    # and a value is never overwritten while still needed: a buffer holds several values only
    # in place (each one's producer reads the previous one at its last step)
    for b in buffers:
        assert b.size == max(t.nbytes for t in b.tensors)
    assert plan.lower_bound <= plan.arena_bytes <= plan.naive_bytes
    assert plan.arena_bytes <= 1.1 * plan.lower_bound
    return plan


@pytest.mark.parametrize("model", ["resnet", "branchnet", "mobilenet", "lenet"])
def test_memory_planner_on_branches_and_joins(builds, model):
    entry = builds.get(model, "8bit-tensor", compile=False)
    ops = {n.op for n in entry["graph"].nodes()}
    if model == "resnet":
        assert "Add" in ops
    if model == "branchnet":
        assert "Concat" in ops
    plan = check_plan(entry)
    assert plan.arena_bytes < plan.naive_bytes
    info = entry["info"]
    assert info["arena_bytes"] == plan.arena_bytes and info["weights_bytes"] > 0
    header = open(os.path.join(entry["dir"], "network.h")).read()
    assert f"#define NETWORK_ARENA_BYTES {plan.arena_bytes}" in header


def test_planner_shares_bytes_of_disjoint_lifetimes():
    from aidge_ptq_lite.export_c import Buffer, Tensor, plan_memory
    bufs = []
    for i, (size, start, end) in enumerate([(100, 0, 1), (50, 1, 2), (100, 2, 3), (8, 0, 3)]):
        b = Buffer(i, size, start, end)
        b.tensors.append(Tensor(str(i), "s8", [size], nbytes=size))
        bufs.append(b)
    plan = plan_memory(bufs, 4)
    assert plan.naive_bytes == 258
    assert plan.lower_bound == 158
    assert plan.arena_bytes == 160  # 100 + 50 (aligned) + 8: buffers 0 and 2 share bytes
    assert bufs[0].offset == bufs[2].offset


def test_verbose_prints_sizes(builds, data, tmp_path, capsys):
    g = builds.get("lenet", "8bit-tensor", compile=False)["graph"]
    info = apl.export_c(g, tmp_path / "out", name="lenet_q", verbose=True)
    printed = capsys.readouterr().out
    assert f"{info['weights_bytes']:,}" in printed and f"{info['arena_bytes']:,}" in printed
    assert f"{info['naive_activation_bytes']:,}" in printed
    for f in ("lenet_q.h", "lenet_q.c", "lenet_q_weights.c", "apl_kernels.c", "main.c", "Makefile", "CMakeLists.txt"):
        assert (tmp_path / "out" / f).exists()


def test_refuses_float_kept_node(data, tmp_path):
    model = onnx.load(zoo.model_path("lenet"))
    out = model.graph.output[0]
    model.graph.node.append(helper.make_node("Softmax", [out.name], ["probs"], axis=1, name="final_softmax"))
    model.graph.output[0].name = "probs"
    g = apl.load_onnx(model)
    apl.quantize_network(g, data[0])
    kept = [n.name for n in g.nodes() if n.quant["kept_float"]]
    assert kept
    with pytest.raises(NotImplementedError, match=re.escape(kept[0]) + ".*allow_float"):
        apl.export_c(g, tmp_path / "c")


def test_refuses_unquantized_and_bad_names(data, tmp_path):
    g = apl.load_onnx(zoo.model_path("lenet"))
    with pytest.raises(ValueError, match="quantized"):
        apl.export_c(g, tmp_path / "a")
    apl.quantize_network(g, data[0])
    with pytest.raises(ValueError, match="identifier"):
        apl.export_c(g, tmp_path / "c", name="my-net")
    with pytest.raises(ValueError, match="collides"):
        apl.export_c(g, tmp_path / "c", name="main")
    gn = apl.load_onnx(zoo.model_path("lenet"))
    apl.quantize_network(gn, data[0], no_quant=True)
    with pytest.raises(ValueError, match="no_quant"):
        apl.export_c(gn, tmp_path / "d")


ARM_GCC, QEMU_ARM = shutil.which("arm-linux-gnueabihf-gcc"), shutil.which("qemu-arm")


def arm_toolchain_missing():
    """Why the 32-bit ARM checks cannot run here, or None."""
    if ARM_GCC is None or QEMU_ARM is None:
        return "32-bit ARM check needs Debian's gcc-arm-linux-gnueabihf and qemu-user"
    if not hasattr(arm_toolchain_missing, "probe"):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "probe.c")
            with open(src, "w") as fh:
                fh.write("#include <stdint.h>\n#include <stdio.h>\nint main(void) { return (int)sizeof(int64_t) - 8; }\n")
            r = subprocess.run([ARM_GCC, "-static", "-o", os.path.join(d, "probe"), src, "-lm"],
                               capture_output=True, text=True)
        arm_toolchain_missing.probe = None if r.returncode == 0 else (
            "arm-linux-gnueabihf-gcc cannot build a static C program (libc headers missing: install "
            f"libc6-dev-armhf-cross, a Recommends of gcc-arm-linux-gnueabihf): {r.stderr.strip()[:200]}")
    return arm_toolchain_missing.probe


def skip_without_arm():
    reason = arm_toolchain_missing()
    if reason:
        pytest.skip(reason)

@pytest.mark.parametrize("model,config", [("lenet", "8bit-tensor"), ("lenet", "4bit-channel"),
                                          ("lenet", "8bit-single-shift"), ("branchnet", "4bit-signs-shift"),
                                          ("lenet", "16bit-tensor"), ("lenet", "2bit-channel-mse")])
def test_bit_exact_on_32bit_arm(builds, data, model, config, tmp_path):
    skip_without_arm()
    entry = builds.get(model, config, compile=False)
    d = entry["dir"]
    binary = str(tmp_path / "net_arm")
    sources = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".c"))
    r = subprocess.run([ARM_GCC, *GCC_FLAGS, "-static", "-o", binary, *sources, "-lm"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:4000]
    x = data[1][:16]
    inp, out = str(tmp_path / "in.f32"), str(tmp_path / "out.bin")
    x.astype("<f4").tofile(inp)
    subprocess.run([QEMU_ARM, binary, inp, out], check=True, timeout=300)
    ref = entry["graph"].forward(x, dequantize=False)
    got = np.fromfile(out, dtype=ref.dtype.newbyteorder("<")).reshape(ref.shape)
    assert np.array_equal(got, ref), f"{model}/{config} on ARM: {int(np.sum(got != ref))} outputs differ"


def op_zoo_model(tail_relu=False):
    """Every op the zoo does not use: LeakyRelu, padded MaxPool, AveragePool, Pad, strided Conv,
    Sub and Mul of two activations, Clip, Reshape (random weights, seeded)."""
    rng = np.random.default_rng(0)

    def init(name, shape, scale=0.3):
        return onnx.numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [init("wa", (4, 1, 3, 3)), init("ba", (4,), 0.1), init("wb", (4, 4, 3, 3)), init("bb", (4,), 0.1),
             init("wc", (4, 4, 1, 1)), init("bc", (4,), 0.1), init("wg", (10, 64)), init("bg", (10,), 0.1),
             onnx.numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
             onnx.numpy_helper.from_array(np.array(-1.0, np.float32), "cmin"),
             onnx.numpy_helper.from_array(np.array(1.0, np.float32), "cmax"),
             onnx.numpy_helper.from_array(np.array([0, -1], np.int64), "shape")]
    N = helper.make_node
    nodes = [N("Conv", ["x", "wa", "ba"], ["a0"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             N("LeakyRelu", ["a0"], ["h"], alpha=0.1),
             N("MaxPool", ["h"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
             N("AveragePool", ["h"], ["a"], kernel_shape=[2, 2], strides=[2, 2]),
             N("Pad", ["p", "pads"], ["pp"]),
             N("Conv", ["pp", "wb", "bb"], ["c1"], kernel_shape=[3, 3], strides=[2, 2]),
             N("Sub", ["c1", "a"], ["s"]),
             N("Conv", ["a", "wc", "bc"], ["c2"], kernel_shape=[1, 1]),
             N("Mul", ["s", "c2"], ["m"]),
             N("Clip", ["m", "cmin", "cmax"], ["cl"]),
             N("Reshape", ["cl", "shape"], ["r"]),
             N("Gemm", ["r", "wg", "bg"], ["g"], transB=1)]
    nodes.append(N("Relu", ["g"], ["y"]) if tail_relu else N("Identity", ["g"], ["y"]))
    graph = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@needs_gcc
@pytest.mark.parametrize("tail_relu", [False, True], ids=["accumulator-out", "codes-out"])
@pytest.mark.parametrize("config", ["8bit-tensor", "4bit-signs-shift", "16bit-tensor", "12bit-signs-shift"])
def test_bit_exact_on_every_other_op(tmp_path, config, tail_relu):
    rng = np.random.default_rng(1)
    g = apl.load_onnx(op_zoo_model(tail_relu))
    apl.quantize_network(g, rng.standard_normal((64, 1, 8, 8)).astype(np.float32), **CONFIGS[config])
    ops = {n.op for n in g.nodes()}
    assert {"LeakyRelu", "MaxPool", "AveragePool", "Pad", "Sub", "Mul", "Clip", "Reshape"} <= ops
    info = apl.export_c(g, tmp_path / "c")
    d = str(tmp_path / "c")
    sources = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".c"))
    r = subprocess.run([GCC, *GCC_FLAGS, "-o", os.path.join(d, "net"), *sources, "-lm"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:4000]
    x = rng.standard_normal((32, 1, 8, 8)).astype(np.float32) * 1.5
    out = run_binary({"binary": os.path.join(d, "net")}, x, str(tmp_path))
    ref = g.forward(x, dequantize=False)
    assert info["output_dtype"] == ref.dtype.name
    if tail_relu:
        # n-bit codes after the last Scaling node, not the accumulator
        assert ref.dtype != (np.int64 if g.nb_bits > 8 else np.int32)
    got = np.fromfile(out, dtype=ref.dtype).reshape(ref.shape)
    assert np.array_equal(got, ref), f"{int(np.sum(got != ref))} outputs differ"


ARM_NONE_GCC, ARM_NONE_NM = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-nm")
ARM_NONE_SIZE = shutil.which("arm-none-eabi-size")


@pytest.mark.skipif(ARM_NONE_GCC is None or ARM_NONE_NM is None or ARM_NONE_SIZE is None,
                    reason="Cortex-M build needs Debian's gcc-arm-none-eabi")
@pytest.mark.parametrize("model,config", [(m, c) for c in ("8bit-tensor", "8bit-single-shift") for m in zoo.ZOO_MODELS]
                         + [("lenet", "16bit-tensor"), ("branchnet", "12bit-signs-shift")])
def test_cortex_m4_build(builds, model, config, tmp_path):
    """The network (not the demo) builds for a Cortex-M4 without warnings, calls no floating-point
    nor heap helper (nor a libgcc 64-bit helper above 8 bits), and its .bss is the planned arena."""
    entry = builds.get(model, config, compile=False)
    objects = []
    for src in ("network.c", "network_weights.c", "apl_kernels.c"):
        obj = str(tmp_path / (src[:-2] + ".o"))
        r = subprocess.run([ARM_NONE_GCC, *GCC_FLAGS, "-mcpu=cortex-m4", "-mthumb", "-c", "-o", obj,
                            os.path.join(entry["dir"], src)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[:4000]
        objects.append(obj)
    undefined = subprocess.run([ARM_NONE_NM, "-u", *objects], capture_output=True, text=True, check=True).stdout
    names = set(re.findall(r"U (\S+)", undefined))
    helpers = {n for n in names if not n.startswith(("apl_", "network_"))}
    assert helpers <= {"memset", "memcpy"}, f"{model}: unexpected library calls {sorted(helpers)}"
    sizes = subprocess.run([ARM_NONE_SIZE, "-A", *objects], capture_output=True, text=True, check=True).stdout
    bss = sum(int(m) for m in re.findall(r"^\.bss\S*\s+(\d+)", sizes, flags=re.M))
    assert bss == entry["info"]["arena_bytes"]


# ---- float islands, the float tail, several outputs ----------------------------------------------

def island_model(final_softmax=False, mid_softmax=True, two_outputs=False, pad_value=None):
    """Conv -> SiLU (Sigmoid island, Mul of two activations) -> Conv -> Tanh island -> [Softmax over
    channels: a float island without a table] -> Conv -> Gemm [-> Softmax: the float tail]; the
    second output, if asked, is the Tanh's (random weights, seeded)."""
    rng = np.random.default_rng(0)

    def init(name, shape, scale=0.4):
        return onnx.numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [init("wa", (4, 1, 3, 3)), init("ba", (4,), 0.1), init("wb", (4, 4, 3, 3)), init("bb", (4,), 0.1),
             init("wc", (4, 4, 1, 1)), init("bc", (4,), 0.1)]
    N = helper.make_node
    nodes = [N("Conv", ["x", "wa", "ba"], ["a"], pads=[1, 1, 1, 1], name="conv_a"),
             N("Sigmoid", ["a"], ["sa"], name="sigmoid"),
             N("Mul", ["a", "sa"], ["silu"], name="silu_mul"),
             N("Conv", ["silu", "wb", "bb"], ["b"], pads=[1, 1, 1, 1], name="conv_b"),
             N("Tanh", ["b"], ["t"], name="tanh")]
    last, side = "t", 8
    if mid_softmax:
        nodes.append(N("Softmax", ["t"], ["sm"], axis=1, name="mid_softmax"))
        last = "sm"
    if pad_value is not None:
        inits.append(onnx.numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"))
        inits.append(onnx.numpy_helper.from_array(np.array(pad_value, np.float32), "pad_value"))
        nodes.append(N("Pad", [last, "pads", "pad_value"], ["pd"], name="pad_nonzero"))
        last, side = "pd", 10
    inits += [init("wg", (10, 4 * side * side)), init("bg", (10,), 0.1)]
    nodes += [N("Conv", [last, "wc", "bc"], ["c"], name="conv_c"),
              N("Flatten", ["c"], ["f"], name="flatten"),
              N("Gemm", ["f", "wg", "bg"], ["g"], transB=1, name="gemm")]
    out = "g"
    if final_softmax:
        nodes.append(N("Softmax", ["g"], ["p"], axis=1, name="final_softmax"))
        out = "p"
    outputs = [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, [1, 10])]
    if two_outputs:
        outputs.append(helper.make_tensor_value_info("t", onnx.TensorProto.FLOAT, [1, 4, 8, 8]))
    graph = helper.make_graph(nodes, "islands", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def quantized_island_graph(config, **model_kw):
    rng = np.random.default_rng(1)
    g = apl.load_onnx(island_model(**model_kw))
    apl.quantize_network(g, rng.standard_normal((64, 1, 8, 8)).astype(np.float32), **CONFIGS[config])
    return g, rng.standard_normal((32, 1, 8, 8)).astype(np.float32) * 1.5


def compile_export(d, compiler=None, extra=()):
    sources = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".c"))
    binary = os.path.join(d, "net")
    r = subprocess.run([compiler or GCC, *GCC_FLAGS, *extra, "-o", binary, *sources, "-lm"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:4000]
    return binary


def split_outputs(raw_file, refs, samples):
    """main.c's OUT file: per sample, each output's raw values one after another."""
    raw = np.fromfile(raw_file, dtype=np.uint8)
    per_sample = sum(r[0].nbytes for r in refs)
    assert raw.size == samples * per_sample
    raw = raw.reshape(samples, per_sample)
    got, offset = [], 0
    for r in refs:
        nb = r[0].nbytes
        got.append(raw[:, offset:offset + nb].copy().view(r.dtype.newbyteorder("<")).reshape(r.shape))
        offset += nb
    return got


def assert_outputs_equal(got, refs, what):
    for i, (a, b) in enumerate(zip(got, refs)):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), f"{what}: output {i}: {int(np.sum(a != b))} of {b.size} values differ"


def float_words(d):
    found = []
    for f in NETWORK_SOURCES:
        code = re.sub(r"/\*.*?\*/", "", open(os.path.join(d, f)).read(), flags=re.S)
        found += re.findall(r"\b(float|double|math\.h)\b", code)
    return found


@needs_gcc
@pytest.mark.parametrize("config", ["8bit-tensor", "16bit-tensor", "4bit-signs-shift"])
def test_elementwise_islands_are_integer_lookup_tables(tmp_path, config):
    """Sigmoid and Tanh islands: const int32 tables indexed by codes, no float in the network,
    bit-exact; no allow_float needed."""
    g, x = quantized_island_graph(config, mid_softmax=False)
    islands = [n for n in g.nodes() if n.quant["island"]]
    assert {n.op for n in islands} == {"Sigmoid", "Tanh"} and all(len(n.quant["lut"]) for n in islands)
    d = str(tmp_path / "c")
    info = apl.export_c(g, d)
    assert not info["uses_float"] and not os.path.exists(os.path.join(d, "apl_float_kernels.c"))
    assert float_words(d) == []
    code = open(os.path.join(d, "network.c")).read()
    assert code.count("apl_lookup(") == 2
    out = run_binary({"binary": compile_export(d)}, x, str(tmp_path))
    ref = g.forward(x, dequantize=False)
    assert_outputs_equal(split_outputs(out, [ref], len(x)), [ref], config)


def test_float_nodes_are_refused_without_allow_float(tmp_path):
    g, _ = quantized_island_graph("8bit-tensor")
    with pytest.raises(NotImplementedError, match=r"'mid_softmax' \(Softmax\).*float island.*allow_float"):
        apl.export_c(g, tmp_path / "a")
    g, _ = quantized_island_graph("8bit-tensor", mid_softmax=False, final_softmax=True)
    with pytest.raises(NotImplementedError, match=r"'final_softmax' \(Softmax\).*kept_float.*allow_float"):
        apl.export_c(g, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing written


def test_allow_float_refuses_a_float_op_it_has_no_kernel_for(tmp_path):
    g, _ = quantized_island_graph("8bit-tensor", mid_softmax=False, pad_value=0.5)
    pad = [n for n in g.nodes() if n.op == "Pad"]
    assert pad and pad[0].quant["island"] and not len(pad[0].quant["lut"])
    with pytest.raises(NotImplementedError, match=rf"'{pad[0].name}' \(Pad\).*no float kernel"):
        apl.export_c(g, tmp_path / "a", allow_float=True)


@needs_gcc
@pytest.mark.parametrize("config", ["8bit-tensor", "12bit-signs-shift"])
def test_allow_float_writes_float_islands_and_tail_bit_exact(tmp_path, config):
    """allow_float: the mid-network Softmax island and the final Softmax in C float; the float
    output (and the codes after the island) equal the executor's on x86-64 glibc, bit for bit."""
    g, x = quantized_island_graph(config, final_softmax=True)
    d = str(tmp_path / "c")
    info = apl.export_c(g, d, allow_float=True)
    assert info["uses_float"] and info["output_dtypes"] == ["float32"]
    out = run_binary({"binary": compile_export(d)}, x, str(tmp_path))
    ref = g.forward(x, dequantize=False)
    assert ref.dtype == np.float32
    assert_outputs_equal(split_outputs(out, [ref], len(x)), [ref], config)


@needs_gcc
@pytest.mark.parametrize("config", ["8bit-tensor", "16bit-tensor"])
def test_several_outputs_written_one_after_another(tmp_path, config):
    g, x = quantized_island_graph(config, mid_softmax=False, two_outputs=True)
    assert len(g.outputs) == 2
    d = str(tmp_path / "c")
    info = apl.export_c(g, d)
    refs = g.forward(x, dequantize=False)
    assert isinstance(refs, list) and len(refs) == 2
    assert info["output_dtypes"] == [r.dtype.name for r in refs]
    header = open(os.path.join(d, "network.h")).read()
    assert "#define NETWORK_OUTPUTS 2" in header and "network_output0_t* output0, network_output1_t* output1" in header
    out = run_binary({"binary": compile_export(d)}, x, str(tmp_path))
    assert_outputs_equal(split_outputs(out, refs, len(x)), refs, config)


@pytest.mark.parametrize("model_kw", [dict(final_softmax=True, two_outputs=True)])
def test_islands_float_tail_and_outputs_on_32bit_arm(tmp_path, model_kw):
    """One ARM run of the new features: lookup tables, a float island and the float tail, two
    outputs. The integer output must match; the float one is compared as well (ARM glibc's expf)."""
    skip_without_arm()
    g, x = quantized_island_graph("8bit-tensor", **model_kw)
    d = str(tmp_path / "c")
    apl.export_c(g, d, allow_float=True)
    binary = compile_export(d, ARM_GCC, ["-static"])
    x = x[:8]
    inp, out = str(tmp_path / "in.f32"), str(tmp_path / "out.bin")
    x.astype("<f4").tofile(inp)
    subprocess.run([QEMU_ARM, binary, inp, out], check=True, timeout=300)
    refs = g.forward(x, dequantize=False)
    assert_outputs_equal(split_outputs(out, refs, len(x)), refs, "ARM")


# ---- the export directory ----------------------------------------------------------------------

def small_graph(data, **kw):
    g = apl.load_onnx(zoo.model_path("lenet"))
    apl.quantize_network(g, data[0], **kw)
    return g


def test_export_directory_is_new_empty_or_a_previous_export(data, tmp_path):
    g = small_graph(data)
    d = tmp_path / "c"
    first = apl.export_c(g, d)                       # new
    listed = (d / "apl_export.txt").read_text().split("\n")
    assert {os.path.basename(p) for p in first["files"]} <= set(listed)
    (d / "net").write_text("a build product")       # the user's file beside a previous export
    apl.export_c(g, d)                               # a previous export: replaced
    assert (d / "net").read_text() == "a build product"
    assert not [f for f in os.listdir(d) if f.startswith(".apl_tmp_")]  # temporaries renamed
    empty = tmp_path / "empty"
    empty.mkdir()
    apl.export_c(g, empty)
    mode = os.stat(empty / "network.c").st_mode & 0o777
    assert mode & 0o644 == 0o644 & ~_umask()         # not mkstemp's 0600


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_export_never_overwrites_a_users_file(data, tmp_path):
    g = small_graph(data)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "main.c").write_text("my program")
    with pytest.raises(FileExistsError, match="'main.c'"):
        apl.export_c(g, foreign)
    assert os.listdir(foreign) == ["main.c"] and (foreign / "main.c").read_text() == "my program"
    # a previous export whose manifest does not list a file this export would write
    d = tmp_path / "c"
    apl.export_c(g, d)
    (d / "network.c").write_text("edited by hand")
    names = [n for n in (d / "apl_export.txt").read_text().split("\n") if n != "network.c"]
    (d / "apl_export.txt").write_text("\n".join(names))
    with pytest.raises(FileExistsError, match="'network.c'"):
        apl.export_c(g, d)
    assert (d / "network.c").read_text() == "edited by hand"
    with pytest.raises(FileExistsError, match="not a directory"):
        apl.export_c(g, d / "network.h")


def test_re_export_removes_the_previous_exports_stale_files(tmp_path):
    g_float, _ = quantized_island_graph("8bit-tensor", final_softmax=True)
    g_int, _ = quantized_island_graph("8bit-tensor", mid_softmax=False)
    d = tmp_path / "c"
    apl.export_c(g_float, d, allow_float=True)
    assert (d / "apl_float_kernels.c").exists()
    apl.export_c(g_int, d)
    assert not (d / "apl_float_kernels.c").exists()  # else gcc DIR/*.c would build it
    assert "apl_float_kernels.c" not in (d / "apl_export.txt").read_text()


# ---- auto_pad and what the export refuses --------------------------------------------------------

def auto_pad_model():
    """auto_pad on Conv and pools, with odd totals so that SAME_UPPER and SAME_LOWER differ."""
    rng = np.random.default_rng(2)

    def init(name, shape, scale=0.4):
        return onnx.numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    N = helper.make_node
    inits = [init("wa", (4, 1, 3, 3)), init("ba", (4,), 0.1), init("wb", (4, 4, 3, 3)), init("bb", (4,), 0.1),
             init("wc", (4, 4, 2, 2)), init("bc", (4,), 0.1), init("wg", (10, 36)), init("bg", (10,), 0.1)]
    nodes = [N("Conv", ["x", "wa", "ba"], ["a"], auto_pad="SAME_UPPER", strides=[2, 2], name="conv_same_upper"),
             N("Relu", ["a"], ["ar"]),
             N("Conv", ["ar", "wb", "bb"], ["b"], auto_pad="SAME_LOWER", strides=[2, 2], name="conv_same_lower"),
             N("MaxPool", ["b"], ["m"], kernel_shape=[2, 2], auto_pad="SAME_LOWER", name="maxpool_same_lower"),
             N("AveragePool", ["m"], ["p"], kernel_shape=[2, 2], auto_pad="SAME_UPPER", count_include_pad=1,
               name="avgpool_same_upper"),
             N("Conv", ["p", "wc", "bc"], ["c"], auto_pad="VALID", name="conv_valid"),
             N("Flatten", ["c"], ["f"]),
             N("Gemm", ["f", "wg", "bg"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "auto_pad", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 13, 13])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@needs_gcc
@pytest.mark.parametrize("config", ["8bit-tensor", "16bit-tensor"])
def test_auto_pad_bit_exact(tmp_path, config):
    rng = np.random.default_rng(3)
    g = apl.load_onnx(auto_pad_model())
    apl.quantize_network(g, rng.standard_normal((64, 1, 13, 13)).astype(np.float32), **CONFIGS[config])
    assert [n.shape[1:] for n in g.nodes() if n.op == "Conv"] == [[7, 7], [4, 4], [3, 3]]
    d = str(tmp_path / "c")
    apl.export_c(g, d)
    x = rng.standard_normal((32, 1, 13, 13)).astype(np.float32)
    out = run_binary({"binary": compile_export(d)}, x, str(tmp_path))
    ref = g.forward(x, dequantize=False)
    assert_outputs_equal(split_outputs(out, [ref], len(x)), [ref], config)


class FakeNode:
    def __init__(self, op, attributes=None, shape=(4, 4, 4), name="n"):
        self.op, self.name, self.attributes, self.shape = op, name, dict(attributes or {}), list(shape)


@pytest.mark.parametrize("op, attributes, message", [
    ("LRN", {}, "op LRN"),
    ("ReduceMax", {"axes": [1]}, "op ReduceMax"),
    ("ConvTranspose", {"kernel_shape": [2, 2], "some_future_flag": 1}, "attribute 'some_future_flag'"),
    ("Transpose", {"perm": [0, 2, 3, 1], "some_future_flag": 1}, "attribute 'some_future_flag'"),
    ("Resize", {"mode": "nearest", "some_future_flag": 1}, "attribute 'some_future_flag'"),
    ("Conv", {"output_padding": [1, 1]}, "attribute 'output_padding'"),
    ("MaxPool", {"kernel_shape": [2, 2], "some_future_flag": 1}, "attribute 'some_future_flag'"),
])
def test_unknown_ops_and_attributes_are_refused_by_name(op, attributes, message):
    from aidge_ptq_lite.export_c import check_node_supported
    with pytest.raises(NotImplementedError, match=rf"{message}.*'n'|'n'.*{message}"):
        check_node_supported(FakeNode(op, attributes))


@pytest.mark.parametrize("op, attributes, x_shape, shape, message", [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, [4, 5, 5], [4, 2, 2], "window gives 3x3"),
    ("AveragePool", {"kernel_shape": [40, 2], "pads": [1, 1, 1, 1], "count_include_pad": 0}, [4, 40, 5],
     [4, 3, 6], "no exact integer form"),
    ("MaxPool", {"kernel_shape": [2, 2, 2]}, [4, 5, 5, 5], [4, 4, 4, 4], "only 1-D and 2-D"),
    ("MaxPool", {"kernel_shape": [3]}, [4, 5, 5], [4, 3, 3], "only 1-D and 2-D"),
    ("MaxPool", {"kernel_shape": [2, 2], "dilations": [2]}, [4, 5, 5], [4, 3, 3], "only 1-D and 2-D"),
    ("MaxPool", {"kernel_shape": [2, 2], "auto_pad": "SAME_SIDEWAYS"}, [4, 5, 5], [4, 5, 5], "SAME_SIDEWAYS"),
    ("MaxPool", {"kernel_shape": [2, 2]}, [4, 5, 5], [4, 3, 3], "window gives 4x4"),  # a geometry it misreads
])
def test_window_refuses_what_the_kernels_do_not_implement(op, attributes, x_shape, shape, message):
    from aidge_ptq_lite.export_c import _CExporter
    ex = _CExporter.__new__(_CExporter)
    with pytest.raises(NotImplementedError, match=re.escape(message)):
        ex.window(FakeNode(op, attributes, shape), x_shape)


def test_window_resolves_auto_pad_as_the_importer():
    from aidge_ptq_lite.export_c import _CExporter
    ex = _CExporter.__new__(_CExporter)
    upper = ex.window(FakeNode("MaxPool", {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}, [4, 5, 5]), [4, 5, 5])
    lower = ex.window(FakeNode("MaxPool", {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER"}, [4, 5, 5]), [4, 5, 5])
    assert (upper["pad_top"], upper["pad_left"]) == (0, 0) and (lower["pad_top"], lower["pad_left"]) == (1, 1)


@needs_gcc
def test_dilated_conv_and_maxpool_bit_exact(tmp_path):
    """Dilations (and asymmetric pads) on a Conv and a MaxPool: the C windows step as the executor's."""
    rng = np.random.default_rng(4)

    def init(name, shape, scale=0.4):
        return onnx.numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    N = helper.make_node
    inits = [init("wa", (4, 1, 3, 3)), init("ba", (4,)), init("wg", (10, 4 * 7 * 9)), init("bg", (10,))]
    nodes = [N("Conv", ["x", "wa", "ba"], ["a"], dilations=[2, 2], pads=[1, 2, 1, 2], name="conv_dilated"),
             N("MaxPool", ["a"], ["m"], kernel_shape=[3, 3], dilations=[2, 2], pads=[1, 1, 1, 1], name="pool_dilated"),
             N("Flatten", ["m"], ["f"]), N("Gemm", ["f", "wg", "bg"], ["y"], transB=1)]
    model = helper.make_model(helper.make_graph(
        nodes, "dilated", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 11, 11])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])], inits),
        opset_imports=[helper.make_opsetid("", 17)])
    g = apl.load_onnx(model)
    x = rng.standard_normal((32, 1, 11, 11)).astype(np.float32)
    apl.quantize_network(g, x)
    d = str(tmp_path / "c")
    apl.export_c(g, d)
    out = run_binary({"binary": compile_export(d)}, x, str(tmp_path))
    ref = g.forward(x, dequantize=False)
    assert_outputs_equal(split_outputs(out, [ref], len(x)), [ref], "dilated")
