"""export_c of the ops the integer runtime gained in issue 18: broadcasting Add / Sub / Mul and
Sum, PRelu, Transpose / Slice / nearest Resize, 1-D windows, pools with ceil_mode=1, AveragePool
with count_include_pad=0, ConvTranspose. Per op family a small net, quantized, exported,
compiled with the strict flags, run: every raw output equals g.forward(x, dequantize=False)."""
import os
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl

from test_export_c import (ARM_GCC, CONFIGS, GCC_FLAGS, QEMU_ARM, check_plan, compile_export, needs_gcc,
                           skip_without_arm)

# 8 bits, 4 bits with unsigned codes (the uint8 kernels), 12 bits (int32 codes, int64 accumulators)
OP_CONFIGS = ["8bit-tensor", "4bit-signs-shift", "12bit-signs-shift"]


def _rng(name):
    return np.random.default_rng(sum(map(ord, name)))


def _init(rng, name, shape, scale=0.5):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _ints(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _floats(name, values):
    return numpy_helper.from_array(np.array(values, np.float32), name)


def _conv(rng, name, src, dst, cin, cout, k=1, scale=0.5, **attrs):
    attrs.setdefault("pads", [k // 2] * 4)
    return (helper.make_node("Conv", [src, f"{name}.w", f"{name}.b"], [dst], name=name, **attrs),
            [_init(rng, f"{name}.w", (cout, cin, k, k), scale), _init(rng, f"{name}.b", (cout,), 0.1)])


def _model(layers, in_shape):
    nodes, inits = [], []
    for layer in layers:
        node, more = layer if isinstance(layer, tuple) else (layer, [])
        nodes.append(node)
        inits += more
    g = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                          [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _run_export(g, x, tmp_path, arm=False):
    """Export, compile (gcc -std=c99 -O2 -Wall -Wextra -Werror -pedantic; arm: static for 32-bit
    ARM, run under qemu-arm), run; the raw outputs."""
    d = str(tmp_path / "c")
    info = apl.export_c(g, d)
    if arm:
        binary = os.path.join(d, "net_arm")
        sources = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".c"))
        r = subprocess.run([ARM_GCC, *GCC_FLAGS, "-static", "-o", binary, *sources, "-lm"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[:4000]
        run = [QEMU_ARM, binary]
    else:
        run = [compile_export(d)]
    inp, out = str(tmp_path / "in.f32"), str(tmp_path / "out.bin")
    x.astype("<f4").tofile(inp)
    subprocess.run([*run, inp, out], check=True, timeout=120)
    ref = g.forward(x, dequantize=False)
    assert info["output_dtype"] == ref.dtype.name
    # the arena plan: no two live buffers share a byte, each value live from producer to readers
    check_plan({"graph": g, "info": info})
    return np.fromfile(out, dtype=ref.dtype.newbyteorder("<")).reshape(ref.shape), ref


def check_bit_exact(model, in_shape, config, tmp_path, integer_nodes, samples=16, arm=False):
    """Quantize `model` at `config`, check `integer_nodes` run in integers (no island, not kept
    float), and compare every raw output of the C network with our integer forward."""
    rng = _rng(config + model.graph.name)
    g = apl.load_onnx(model)
    apl.quantize_network(g, rng.standard_normal((48, *in_shape)).astype(np.float32), **CONFIGS[config])
    by_name = {n.name: n for n in g.nodes()}
    for name in integer_nodes:
        q = by_name[name].quant
        assert not q["island"] and not q["kept_float"], f"{name} does not run in integers"
    x = (rng.standard_normal((samples, *in_shape)) * 1.5).astype(np.float32)
    got, ref = _run_export(g, x, tmp_path, arm)
    assert np.array_equal(got, ref), f"{int(np.sum(got != ref))} of {ref.size} raw outputs differ"
    return g


# ---- 1. broadcasting Add / Sub / Mul between activations, Sum ----------------------------------

def _broadcast_net():
    """A squeeze-excite gate (N, C, H, W) x (N, C, 1, 1), a broadcast Add and a Sub whose first
    operand is the (N, C, 1, 1) one, a Sum of four branches (one broadcast)."""
    rng = _rng("broadcast")
    layers = [_conv(rng, "conv1", "x", "c1", 4, 8, 3), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
              helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="gap"),
              _conv(rng, "gate", "g", "gs", 8, 8, scale=0.3),
              helper.make_node("Mul", ["r1", "gs"], ["m"], name="bcast_mul"),
              _conv(rng, "shift", "g", "sh", 8, 8),
              helper.make_node("Add", ["m", "sh"], ["a"], name="bcast_add"),
              helper.make_node("Sub", ["sh", "a"], ["d"], name="bcast_sub"),
              _conv(rng, "conv2", "r1", "c2", 8, 8, 3, 0.2),
              helper.make_node("Sum", ["d", "r1", "gs", "c2"], ["sm"], name="sum4"),
              _conv(rng, "head", "sm", "y", 8, 3)]
    return _model(layers, (4, 6, 5))


@needs_gcc
@pytest.mark.parametrize("config", OP_CONFIGS)
def test_broadcasting_binary_ops_and_sum_bit_exact(config, tmp_path):
    check_bit_exact(_broadcast_net(), (4, 6, 5), config, tmp_path,
                    ["bcast_mul", "bcast_add", "bcast_sub", "sum4"])


# ---- 2. PRelu -------------------------------------------------------------------------------------

def _prelu_net():
    """PRelu with a per-channel slope (negative, zero, one ones among them) and a scalar slope."""
    rng = _rng("prelu")
    slope = numpy_helper.from_array(np.array([0.25, -0.5, 0.0, 1.0, 0.1, -0.03, 0.7, 0.9], np.float32)
                                    .reshape(8, 1, 1), "slope")
    layers = [_conv(rng, "conv1", "x", "c1", 3, 8, 3),
              (helper.make_node("PRelu", ["c1", "slope"], ["p1"], name="prelu_channel"), [slope]),
              _conv(rng, "conv2", "p1", "c2", 8, 6, 3, 0.3),
              (helper.make_node("PRelu", ["c2", "s0"], ["p2"], name="prelu_scalar"), [_floats("s0", [0.2])]),
              _conv(rng, "head", "p2", "y", 6, 3)]
    return _model(layers, (3, 5, 6))


@needs_gcc
@pytest.mark.parametrize("config", OP_CONFIGS)
def test_prelu_bit_exact(config, tmp_path):
    check_bit_exact(_prelu_net(), (3, 5, 6), config, tmp_path, ["prelu_channel", "prelu_scalar"])


# ---- 3. Transpose, Slice, nearest Resize: codes moved, never computed -------------------------------

def _resize(name, src, dst, scales=None, sizes=None, **attrs):
    inits = [_floats(f"{name}.roi", [])]
    inputs = [src, f"{name}.roi"]
    if scales is not None:
        inits.append(_floats(f"{name}.scales", scales))
        inputs.append(f"{name}.scales")
    else:
        inits.append(_ints(f"{name}.sizes", sizes))
        inputs += ["", f"{name}.sizes"]
    return helper.make_node("Resize", inputs, [dst], mode="nearest", name=name, **attrs), inits


def _slice(name, src, dst, starts, ends, axes, steps):
    inits = [_ints(f"{name}.s", starts), _ints(f"{name}.e", ends), _ints(f"{name}.a", axes), _ints(f"{name}.t", steps)]
    return helper.make_node("Slice", [src] + [i.name for i in inits], [dst], name=name), inits


def _movement_net():
    """Transposes (to NHWC and back, H <-> W), a Slice with a negative step and clamped bounds,
    nearest Resizes in three coordinate / rounding modes (up, down, by sizes)."""
    rng = _rng("movement")
    layers = [_conv(rng, "conv1", "x", "c1", 3, 6, 3),
              helper.make_node("Transpose", ["c1"], ["t1"], perm=[0, 2, 3, 1], name="to_nhwc"),
              helper.make_node("Transpose", ["t1"], ["t2"], perm=[0, 3, 2, 1], name="to_nwhc"),
              _slice("cut", "t2", "s1", [-1, 1, 0], [-1000, 6, 100], [2, 3, 1], [-2, 2, 1]),
              _resize("up", "s1", "r1", scales=[1, 1, 2, 1.5]),
              _resize("down", "r1", "r2", scales=[1, 1, 0.6, 0.7], coordinate_transformation_mode="asymmetric",
                      nearest_mode="floor"),
              _resize("sized", "r2", "r3", sizes=[1, 6, 7, 5], coordinate_transformation_mode="align_corners",
                      nearest_mode="round_prefer_ceil"),
              _conv(rng, "head", "r3", "y", 6, 3)]
    return _model(layers, (3, 5, 7))


@needs_gcc
@pytest.mark.parametrize("config", OP_CONFIGS)
def test_transpose_slice_resize_bit_exact(config, tmp_path):
    g = check_bit_exact(_movement_net(), (3, 5, 7), config, tmp_path, ["to_nhwc", "to_nwhc", "cut", "up", "down", "sized"])
    shapes = {n.name: list(n.shape) for n in g.nodes()}
    assert shapes["cut"] == [6, 4, 2] and shapes["sized"] == [6, 7, 5]


# ---- 4. 1-D windows, ceil_mode=1, AveragePool with count_include_pad=0 -------------------------------

def _pool(op, src, dst, name, **attrs):
    return helper.make_node(op, [src], [dst], name=name, **attrs)


def _windows_1d_net():
    """(N, C, L): strided dilated Conv, MaxPool with ceil_mode, AveragePool with pads excluded,
    depthwise Conv, AveragePool with ceil_mode, GlobalAveragePool."""
    rng = _rng("windows1d")
    layers = [(helper.make_node("Conv", ["x", "c1.w", "c1.b"], ["c1"], pads=[2, 1], strides=[2], dilations=[2],
                                name="conv1"), [_init(rng, "c1.w", (6, 2, 3)), _init(rng, "c1.b", (6,), 0.1)]),
              helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
              _pool("MaxPool", "r1", "p1", "maxpool_ceil", kernel_shape=[3], strides=[2], ceil_mode=1),
              _pool("AveragePool", "p1", "p2", "avg_exclude", kernel_shape=[3], pads=[1, 1], count_include_pad=0),
              (helper.make_node("Conv", ["p2", "dw.w", "dw.b"], ["c2"], pads=[1, 1], group=6, name="dw"),
               [_init(rng, "dw.w", (6, 1, 3)), _init(rng, "dw.b", (6,), 0.1)]),
              _pool("AveragePool", "c2", "p3", "avg_ceil", kernel_shape=[2], strides=[2], ceil_mode=1),
              (helper.make_node("Conv", ["p3", "c3.w", "c3.b"], ["c3"], name="conv3"),
               [_init(rng, "c3.w", (4, 6, 1)), _init(rng, "c3.b", (4,), 0.1)]),
              helper.make_node("GlobalAveragePool", ["c3"], ["y"], name="gap")]
    return _model(layers, (2, 23))


def _windows_2d_net():
    """ceil_mode=1 on a padded MaxPool and on AveragePools (pads excluded, then included),
    count_include_pad=0 with explicit pads and with SAME_UPPER."""
    rng = _rng("windows2d")
    layers = [_conv(rng, "conv1", "x", "c1", 3, 6, 3), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
              _pool("MaxPool", "r1", "p1", "maxpool_ceil", kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                    ceil_mode=1),
              _pool("AveragePool", "p1", "p2", "avg_ceil", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
              _conv(rng, "conv2", "r1", "c2", 6, 6, 3, 0.3),
              _pool("AveragePool", "c2", "p3", "avg_exclude", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                    count_include_pad=0),
              _pool("AveragePool", "p3", "p4", "avg_ceil_include", kernel_shape=[3, 2], strides=[2, 2],
                    pads=[1, 0, 1, 1], count_include_pad=1, ceil_mode=1),
              _pool("AveragePool", "p4", "p5", "avg_same", kernel_shape=[4, 4], strides=[2, 2], auto_pad="SAME_UPPER"),
              helper.make_node("Concat", ["p2", "p5"], ["cat"], axis=1, name="cat"),
              _conv(rng, "head", "cat", "y", 12, 3)]
    return _model(layers, (3, 11, 14))


@needs_gcc
@pytest.mark.parametrize("config", OP_CONFIGS)
def test_1d_windows_bit_exact(config, tmp_path):
    check_bit_exact(_windows_1d_net(), (2, 23), config, tmp_path,
                    ["conv1", "maxpool_ceil", "avg_exclude", "dw", "avg_ceil", "gap"])


@needs_gcc
@pytest.mark.parametrize("config", OP_CONFIGS)
def test_ceil_mode_and_excluded_pads_bit_exact(config, tmp_path):
    check_bit_exact(_windows_2d_net(), (3, 11, 14), config, tmp_path,
                    ["maxpool_ceil", "avg_ceil", "avg_exclude", "avg_ceil_include", "avg_same"])


# ---- 5. ConvTranspose ------------------------------------------------------------------------------

def _conv_transpose(rng, name, src, dst, c_in, c_out, k, group=1, **attrs):
    window = [k, k] if isinstance(k, int) else list(k)
    inits = [_init(rng, f"{name}.w", (c_in, c_out // group, *window), 0.4), _init(rng, f"{name}.b", (c_out,), 0.1)]
    return helper.make_node("ConvTranspose", [src, f"{name}.w", f"{name}.b"], [dst], name=name, group=group,
                            **attrs), inits


def _conv_transpose_net():
    """Strides with asymmetric pads and output_padding, groups with dilations, output_shape."""
    rng = _rng("convtranspose")
    layers = [_conv(rng, "conv1", "x", "c1", 3, 4, 3), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
              _conv_transpose(rng, "up1", "r1", "u1", 4, 6, 3, strides=[2, 2], pads=[1, 0, 1, 2],
                              output_padding=[1, 1]),
              helper.make_node("Relu", ["u1"], ["r2"], name="relu2"),
              _conv_transpose(rng, "up2", "r2", "u2", 6, 4, (3, 2), group=2, strides=[2, 1], dilations=[1, 2]),
              _conv_transpose(rng, "up3", "u2", "u3", 4, 4, 3, strides=[2, 2], output_shape=[40, 27]),
              _conv(rng, "head", "u3", "y", 4, 3)]
    return _model(layers, (3, 5, 6))


def _conv_transpose_1d_net():
    rng = _rng("convtranspose1d")
    layers = [(helper.make_node("Conv", ["x", "c1.w", "c1.b"], ["c1"], pads=[1, 1], name="conv1"),
               [_init(rng, "c1.w", (4, 3, 3)), _init(rng, "c1.b", (4,), 0.1)]),
              helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
              _conv_transpose(rng, "up", "r1", "u", 4, 5, (4,), strides=[2], pads=[1, 1]),
              helper.make_node("Relu", ["u"], ["y"], name="relu2")]
    return _model(layers, (3, 9))


@needs_gcc
@pytest.mark.parametrize("config", OP_CONFIGS)
def test_conv_transpose_bit_exact(config, tmp_path):
    g = check_bit_exact(_conv_transpose_net(), (3, 5, 6), config, tmp_path, ["up1", "up2", "up3"])
    assert list(g.node("up3").shape) == [4, 40, 27]


@needs_gcc
@pytest.mark.parametrize("config", OP_CONFIGS)
def test_conv_transpose_1d_bit_exact(config, tmp_path):
    check_bit_exact(_conv_transpose_1d_net(), (3, 9), config, tmp_path, ["up"])


# ---- the ops together, as the models that need them use them ---------------------------------------

@needs_gcc
@pytest.mark.parametrize("config", ["8bit-tensor", "4bit-channel", "12bit-signs-shift"])
@pytest.mark.parametrize("net", ["kws_1d", "unet"])
def test_models_of_the_new_ops_bit_exact(net, config, tmp_path):
    """A keyword-spotting 1-D net (ceil_mode MaxPool, depthwise 1-D Conv) and a small U-Net
    (ConvTranspose, nearest Resize, broadcast-free Add, Concat) of tests/test_ops_movement.py."""
    from test_ops_movement import _keyword_spotting_net, _unet
    model = _keyword_spotting_net() if net == "kws_1d" else _unet()
    in_shape = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:])
    check_bit_exact(model, in_shape, config, tmp_path, [])


def test_every_op_with_an_integer_kernel_is_written_by_the_c_export():
    """Issue 18: an op the integer runtime executes in integers is never refused by name."""
    import importlib
    export_c = importlib.import_module("aidge_ptq_lite.export_c")
    registry = apl._core.op_registry()
    missing = sorted(op for op, row in registry.items() if row["integer_kernel"] and op not in export_c._KNOWN_ATTRIBUTES)
    assert not missing, f"ops with an integer kernel the C export refuses: {missing}"


NETS = {"broadcast": (_broadcast_net, (4, 6, 5)), "prelu": (_prelu_net, (3, 5, 6)),
        "movement": (_movement_net, (3, 5, 7)), "windows_1d": (_windows_1d_net, (2, 23)),
        "windows_2d": (_windows_2d_net, (3, 11, 14)), "conv_transpose": (_conv_transpose_net, (3, 5, 6))}


@pytest.mark.parametrize("config", ["8bit-tensor", "12bit-signs-shift"])
@pytest.mark.parametrize("net", sorted(NETS))
def test_bit_exact_on_32bit_arm(net, config, tmp_path):
    """The new kernels on a 32-bit target (arm-linux-gnueabihf-gcc, qemu-arm): same raw outputs."""
    skip_without_arm()
    make, in_shape = NETS[net]
    check_bit_exact(make(), in_shape, config, tmp_path, [], samples=8, arm=True)
