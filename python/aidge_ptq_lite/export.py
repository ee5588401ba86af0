"""export_onnx: the quantized network as an ONNX QDQ model that onnxruntime runs.

Layout: each quantized activation (the input and every Scaling node) becomes a
QuantizeLinear/DequantizeLinear pair with the activation's step as scale and its zero point (0,
or the code of 0 of a nearly non-negative tensor: int8, or uint8 for unsigned codes); Conv/Gemm weights are int8 initializers behind a per-channel
DequantizeLinear, biases int32 initializers at scale (input step x weight scale). The weight
scale folds the requantization multiplier in, so QuantizeLinear after the layer computes the same
codes as our requantizer (up to ties: ONNX rounds half to even, we round half up). Below 8 bits a
Clip after DequantizeLinear keeps the codes in the n-bit range. Other ops run in float on
dequantized values, which is exact for ReLU, max pooling, padding and reshapes, and is what a
float island does (its Scaling node's QuantizeLinear follows); after ops whose integer kernel
rounds on its input's grid (LeakyRelu, PRelu: registry row ``rounds_codes``) a QDQ pair at the
input's step rounds the same way (up to ties).
"""
from __future__ import annotations

import os
import secrets
from typing import Iterable, Optional, Union

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import _core

_OPSET = 17
_OPS = _core.op_registry()


def _onnx_attributes(node) -> dict:
    """The node's attributes that ONNX keeps as attributes (not inputs, not our const_index)."""
    as_inputs = set(_OPS[node.op]["attribute_inputs"].values())
    return {k: v for k, v in node.attributes.items() if k not in as_inputs and k != "const_index"}


def _is_input_at_opset(op: str, index: int) -> bool:
    """Whether the export's opset takes input `index` of `op` (an attribute read from an input
    may be an attribute in older opsets)."""
    try:
        return index < len(onnx.defs.get_schema(op, _OPSET).inputs)
    except onnx.defs.SchemaError:  # no such op at the export's opset: the checker names it
        return True


class _Exporter:
    def __init__(self, graph: _core.Graph):
        self.graph = graph
        self.nodes, self.inits = [], []
        self.tensor = {}  # our node name -> float tensor name in the ONNX graph
        self.by_name = {n.name: n for n in graph.nodes()}
        self.nb_bits = graph.nb_bits

    def const(self, name, array):
        name = f"c{len(self.inits)}"  # short names: see add()
        array = np.asarray(array)  # a scalar stays 0-D (ascontiguousarray makes it (1,), which
        array = np.ascontiguousarray(array) if array.ndim else array  # QLinearAveragePool refuses)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def add(self, op, inputs, output, **attrs):
        """Append a node; its output gets a short generated name (long names would be a sizeable
        part of a small model's file), except graph outputs, passed with keep_name."""
        name = output if attrs.pop("keep_name", False) else f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [name], **attrs))
        return name

    def quantize_dequantize(self, source: str, node) -> str:
        q = node.quant
        zero = np.array(q["zero_point"], np.uint8 if q["unsigned"] else np.int8)
        scale = self.const(f"{node.name}.step", np.array(q["step"], np.float32))
        zp = self.const(f"{node.name}.zero_point", zero)
        codes = self.add("QuantizeLinear", [source, scale, zp], f"{node.name}.codes")
        out = self.add("DequantizeLinear", [codes, scale, zp], f"{node.name}.dequantized")
        full_range = (-128, 127) if not q["unsigned"] else (0, 255)
        if self.nb_bits < 8 and (q["lo"], q["hi"]) != full_range:
            lo = self.const(f"{node.name}.lo", np.array((q["lo"] - q["zero_point"]) * q["step"], np.float32))
            hi = self.const(f"{node.name}.hi", np.array((q["hi"] - q["zero_point"]) * q["step"], np.float32))
            out = self.add("Clip", [out, lo, hi], f"{node.name}.clipped")
        return out

    def acc_to_float(self, affine) -> np.ndarray:
        """Per output channel: the float value of one accumulator unit after the Scaling node."""
        users = self.graph.consumers(affine.name)
        scaling = self.by_name[users[0]]
        if scaling.quant["dequantize_point"]:
            return scaling.quant["factor"].astype(np.float64)
        m = np.array([mult / 2.0 ** shift for mult, shift in scaling.quant["multiplier"]])
        return m * scaling.quant["step"]

    def affine(self, node) -> str:
        x = self.tensor[node.inputs[0]]
        step_in = self.by_name[node.inputs[0]].quant["step"]
        w_codes, b_codes = node.params
        weight_scale = np.broadcast_to(self.acc_to_float(node) / step_in, (w_codes.shape[0],)).astype(np.float32)
        bias_scale = (weight_scale.astype(np.float64) * step_in).astype(np.float32)
        # One scale per tensor when the layer has one (per-tensor weights, no single shift):
        # smaller files. Zero points are left out (0 by default).
        per_axis = bool(np.any(weight_scale != weight_scale[0]))
        axis = {"axis": 0} if per_axis else {}
        if not per_axis:
            weight_scale, bias_scale = weight_scale[:1].reshape(()), bias_scale[:1].reshape(())
        if _OPS[node.op].get("transposed_weights"):
            w = self.transposed_weights(node, w_codes, weight_scale, per_axis)
        else:
            w = self.add("DequantizeLinear", [self.const("w", w_codes), self.const("ws", weight_scale)],
                         f"{node.name}.weight", **axis)
        b = self.add("DequantizeLinear", [self.const("b", b_codes), self.const("bs", bias_scale)],
                     f"{node.name}.bias", **axis)
        return self.add(node.op, [x, w, b], f"{node.name}.out", **_onnx_attributes(node))

    def transposed_weights(self, node, w_codes, weight_scale, per_axis) -> str:
        """ConvTranspose weights back in ONNX's layout (C_in, C_out/g, k...). With one group a
        per-output-channel scale is on axis 1; with several, output channels span axes 0 and 1,
        so the codes are dequantized in the library's layout and rearranged by ONNX ops."""
        from .onnx_io import transposed_weights_of_conv_layout

        group = int(node.attributes.get("group", 1))
        if group == 1 or not per_axis:
            codes = transposed_weights_of_conv_layout(w_codes, group)
            return self.add("DequantizeLinear", [self.const("w", codes), self.const("ws", weight_scale)],
                            f"{node.name}.weight", **({"axis": 1} if per_axis else {}))
        c_out, c_in_g, window = w_codes.shape[0], w_codes.shape[1], list(w_codes.shape[2:])
        w = self.add("DequantizeLinear", [self.const("w", w_codes), self.const("ws", weight_scale)],
                     f"{node.name}.weight_conv_layout", axis=0)
        shape = self.const("s", np.array([group, c_out // group, c_in_g, *window], np.int64))
        w = self.add("Reshape", [w, shape], f"{node.name}.weight_groups")
        w = self.add("Transpose", [w], f"{node.name}.weight_swapped",
                     perm=[0, 2, 1, *range(3, 3 + len(window))])
        shape = self.const("s", np.array([group * c_in_g, c_out // group, *window], np.int64))
        w = self.add("Reshape", [w, shape], f"{node.name}.weight_flipped")
        axes = list(range(2, 2 + len(window)))
        big = np.iinfo(np.int64).max
        return self.add("Slice", [w, self.const("s", np.full(len(axes), -1, np.int64)),
                                  self.const("e", np.full(len(axes), -big, np.int64)),
                                  self.const("a", np.array(axes, np.int64)),
                                  self.const("st", np.full(len(axes), -1, np.int64))],
                        f"{node.name}.weight")

    def float_op(self, node) -> str:
        """The op on dequantized values, its constants back at their ONNX input positions: the
        params (a binary's constant operand, BatchNorm statistics) and the attributes ONNX takes
        as inputs (Reshape's shape, Pad's pads, Clip's bounds). Attributes in activation units are
        whole codes, written at the input's step (a float island keeps real units)."""
        row, a = _OPS[node.op], node.attributes
        slots = {}
        if row["constant_operand"] and node.params:
            slots[a.get("const_index", 1)] = self.const("k", node.params[0])
        else:
            for index, param in zip(row["param_inputs"], node.params):
                slots[index] = self.const("k", param)
        step_in = self.by_name[node.inputs[0]].quant["step"]
        attributes = _onnx_attributes(node)
        for index, key in row["attribute_inputs"].items():
            if key not in a:
                continue
            if not _is_input_at_opset(node.op, index):  # e.g. ReduceMean's axes before opset 18
                attributes[key] = a[key]
                continue
            v = a[key]
            if isinstance(v, list) and not v:
                continue  # an empty optional input (Resize's roi or scales) stays out
            if key in row["activation_attributes"] and not node.quant["island"]:
                value = np.array(v * step_in, np.float32)
            else:
                ints = isinstance(v, int) or (isinstance(v, list) and all(isinstance(x, int) for x in v))
                value = np.array(v, np.int64 if ints else np.float32)  # Resize's scales stay float
            slots[index] = self.const(f"{node.name}.{key}", value)
        data, inputs = [self.tensor[i] for i in node.inputs], []
        while data or slots:
            position = len(inputs)
            if position in slots:
                inputs.append(slots.pop(position))
            else:  # a data input, or "" for an optional input left out before a given one
                inputs.append(data.pop(0) if data else "")
        return self.add(node.op, inputs, f"{node.name}.out", **attributes)

    def run(self) -> onnx.ModelProto:
        g = self.graph
        for node in g.nodes():
            rule = _OPS[node.op]["export_rule"]
            if rule == "quantize_input":
                self.tensor[node.name] = self.quantize_dequantize(node.name, node)
            elif rule == "affine":
                self.tensor[node.name] = self.affine(node)
            elif rule == "requantize":
                source = self.tensor[node.inputs[0]]
                self.tensor[node.name] = source if node.quant["dequantize_point"] else self.quantize_dequantize(source, node)
            elif rule == "float_op":
                out = self.float_op(node)
                if _OPS[node.op]["rounds_codes"] and not node.quant["island"]:
                    out = self.quantize_dequantize(out, node)  # the kernel's rounding to codes
                self.tensor[node.name] = out
            else:
                raise ValueError(f"{node.op} '{node.name}' cannot be exported (prepare_network removes it)")
        outputs = []
        for name in g.outputs:
            self.add("Identity", [self.tensor[name]], name, keep_name=True)
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *self.by_name[name].shape]))
        inp = helper.make_tensor_value_info(g.input_name, TensorProto.FLOAT, ["N", *g.input_shape])
        graph = helper.make_graph(self.nodes, "aidge_ptq_lite_qdq", [inp], outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)],
                                  producer_name="aidge_ptq_lite")
        onnx.checker.check_model(model)
        return model


def check_export_path(path, protected: Iterable[Union[str, os.PathLike]] = ()) -> str:
    """The absolute path an export to ``path`` writes (through a symbolic link: its target);
    ValueError when it is one of the ``protected`` files (e.g. the model it was loaded from),
    IsADirectoryError / FileNotFoundError when it is a folder or its folder does not exist,
    PermissionError when the folder is not writable. Nothing is written."""
    path = os.fspath(path)
    target = os.path.realpath(path)
    for source in protected:
        if source is None:
            continue
        source = os.fspath(source)
        same = os.path.realpath(source) == target
        if not same and os.path.exists(source) and os.path.exists(target):
            same = os.path.samefile(source, target)  # hard links, bind mounts
        if same:
            raise ValueError(f"refusing to export onto '{path}': it is the source model "
                             f"'{source}' (choose another output path)")
    if os.path.isdir(target):
        raise IsADirectoryError(f"export path '{path}' is a directory (give a file name)")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot export to '{path}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot export to '{path}': folder '{folder}' is not writable")
    return target


def _write_atomically(data: bytes, target: str) -> None:
    """Writes `data` to a new file next to `target` and renames it over `target`: a failure
    (disk full, interruption) leaves either the old file or the complete new one, never half a
    file. The new file keeps the mode of the file it replaces. A target that exists and is not a
    regular file (/dev/null, a FIFO) is written in place: renaming over it would replace it."""
    if os.path.exists(target) and not os.path.isfile(target):
        with open(target, "wb") as f:
            f.write(data)
        return
    folder, base = os.path.split(target)
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(target):
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def export_onnx(graph: _core.Graph, path, *, protect: Optional[Iterable] = None) -> onnx.ModelProto:
    """Write a quantized graph as an ONNX QDQ model (and return it).

    int8/uint8 initializers for weights, int32 for biases, QuantizeLinear/DequantizeLinear around
    every quantized activation; onnxruntime runs it (its QDQ fusion turns it into integer kernels).

    The file is written atomically (a temporary file in the same folder, renamed over ``path``):
    a failed export leaves any existing file untouched. ``path`` None only builds the model.

    Args:
        protect: more paths the export must not overwrite. The ONNX file ``graph`` was loaded
            from (``load_onnx`` records it) is always protected, so the float model is never lost.

    Raises:
        ValueError: the graph is not quantized, or was quantized with ``no_quant`` (no integers),
            or ``path`` is a protected file (the source model).
        NotImplementedError: more than 8 bits (ONNX int16 QDQ is not exported yet).
        OSError: ``path`` is a directory, or its folder does not exist or is not writable.
    """
    from .onnx_io import source_path

    if not graph.is_quantized:
        raise ValueError("export_onnx needs a quantized graph (run quantize_network first)")
    affine = next((n for n in graph.nodes() if _OPS[n.op]["affine"]), None)
    if affine is not None and affine.params[0].dtype == np.float32:
        raise ValueError("a no_quant graph holds no integers: quantize without no_quant to export")
    if graph.nb_bits > 8:
        raise NotImplementedError("export of more than 8 bits is not supported yet")
    target = None
    if path is not None:  # checked before the model is built: nothing is written on refusal
        target = check_export_path(path, [source_path(graph), *(protect or ())])
    model = _Exporter(graph).run()
    if target is not None:
        _write_atomically(model.SerializeToString(), target)
    return model
