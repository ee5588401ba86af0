"""ONNX import: an ``onnx.ModelProto`` (or a file) to an :class:`aidge_ptq_lite.Graph`."""
from __future__ import annotations

import os
from typing import Union

import numpy as np
import onnx
from onnx import numpy_helper

from . import _core

# Per op, from its registry row: which ONNX inputs are constant operands (moved into the node's
# params), which are read as attributes (must be constants), and whether one operand may be a
# constant (element-wise binaries).
_OPS = _core.op_registry()


def load_onnx(model: Union[str, os.PathLike, onnx.ModelProto]) -> _core.Graph:
    """Load an ONNX model (path or ``onnx.ModelProto``) as a :class:`Graph`.

    The model must have one float input of static shape except the batch axis, and only ops
    of :func:`supported_ops`. Constants (initializers and Constant nodes) become the params
    of the nodes that use them.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file is not a valid ONNX model, a tensor is missing, or shapes are dynamic.
        UnsupportedOpError: an op outside the supported set (the message names op, node and set).
    """
    proto = _read_model(model)
    return _GraphBuilder(proto).build()


def _read_model(model) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"load_onnx expects a path or an onnx.ModelProto, got {type(model).__name__}")
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no ONNX file at '{path}'")
    try:
        proto = onnx.load(path)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for corrupt files
        raise ValueError(f"'{path}' is not a readable ONNX model: {exc}") from None
    if not proto.graph.node:
        raise ValueError(f"'{path}' is not an ONNX model (it has no graph nodes)")
    return proto


class _GraphBuilder:
    def __init__(self, proto: onnx.ModelProto):
        self.proto = proto
        self.graph = proto.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.producer = {}  # tensor name -> our node name
        self.g = _core.Graph()
        self.used_names = set()

    def build(self) -> _core.Graph:
        self._add_input()
        for node in self.graph.node:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = _constant_value(node)
            else:
                self._add_node(node)
        outputs = []
        for out in self.graph.output:
            if out.name not in self.producer:
                raise ValueError(f"graph output '{out.name}' is not produced by any node")
            outputs.append(self.producer[out.name])
        self.g._set_outputs(outputs)
        self.g._finalize()
        return self.g

    def _add_input(self):
        inputs = [i for i in self.graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise NotImplementedError(f"only single-input models are supported; inputs: {names}")
        inp = inputs[0]
        ttype = inp.type.tensor_type
        if ttype.elem_type != onnx.TensorProto.FLOAT:
            raise NotImplementedError(f"input '{inp.name}' must be float32")
        dims = list(ttype.shape.dim)
        if len(dims) < 2:
            raise _core.ShapeError(f"input '{inp.name}' must have a batch axis and at least one more")
        shape = []
        for i, d in enumerate(dims[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                label = d.dim_param or "?"
                raise _core.ShapeError(
                    f"input '{inp.name}' has a dynamic dimension {i} ('{label}'); only the batch "
                    "axis (0) may be dynamic")
            shape.append(d.dim_value)
        name = self._unique(inp.name)
        self.g._add_node(name, "Input", [], {"shape": shape}, [])
        self.producer[inp.name] = name

    def _unique(self, base: str) -> str:
        name, i = base or "node", 1
        while name in self.used_names:
            name, i = f"{base}_{i}", i + 1
        self.used_names.add(name)
        return name

    def _constant(self, node, tensor: str) -> np.ndarray:
        if tensor not in self.constants:
            raise ValueError(f"{node.op_type} '{node.name}': input '{tensor}' must be a constant "
                             "(initializer) and none is given")
        return self.constants[tensor]

    def _add_node(self, node):
        op = node.op_type
        if op not in _core.supported_ops():
            raise _core.UnsupportedOpError(
                f"unsupported op {op} (node '{node.name or node.output[0]}'); supported ops: "
                + ", ".join(_core.supported_ops()))
        attrs = {a.name: _attribute_value(a) for a in node.attribute}
        row = _OPS[op]
        param_idx = row["param_inputs"]
        attr_inputs = row["attribute_inputs"]
        data, params = [], []
        for idx, tensor in enumerate(node.input):
            if not tensor:  # optional input left out
                continue
            if idx in param_idx:
                params.append(np.ascontiguousarray(self._constant(node, tensor)))
            elif idx in attr_inputs:
                value = self._constant(node, tensor)
                attrs[attr_inputs[idx]] = value.tolist() if value.ndim else value.item()
            elif row["constant_operand"] and tensor in self.constants:
                params.append(np.ascontiguousarray(self.constants[tensor], dtype=np.float32))
                attrs["const_index"] = idx
            elif tensor in self.producer:
                data.append(self.producer[tensor])
            else:
                raise ValueError(f"{op} '{node.name}': input '{tensor}' is neither produced by a "
                                 "node nor an initializer (missing initializer?)")
        if op == "Dropout" and attrs.get("training_mode"):
            raise NotImplementedError(f"Dropout '{node.name}' in training mode")
        if op == "Pad" and "value" in attrs:
            attrs["value"] = float(attrs["value"])
        for key in ("min", "max", "ratio"):
            if key in attrs and isinstance(attrs[key], int):
                attrs[key] = float(attrs[key])
        name = self._unique(node.name or node.output[0])
        self.g._add_node(name, op, data, attrs, params, node.domain)
        self.producer[node.output[0]] = name


def _attribute_value(a: onnx.AttributeProto):
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v).tolist()
    if isinstance(v, (list, tuple)):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    return v


def _constant_value(node) -> np.ndarray:
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name in ("value_float", "value_int"):
            return np.array(onnx.helper.get_attribute_value(a))
        if a.name in ("value_floats", "value_ints"):
            return np.array(onnx.helper.get_attribute_value(a))
    raise NotImplementedError(f"Constant '{node.name}' without a supported value attribute")
