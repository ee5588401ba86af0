"""ONNX import: an ``onnx.ModelProto`` (or a file) to an :class:`aidge_ptq_lite.Graph`."""
from __future__ import annotations

import math
import os
import weakref
from typing import Optional, Sequence, Union

import numpy as np
import onnx
from onnx import numpy_helper

from . import _core, onnx_front

# Per op, from its registry row: which ONNX inputs are constant operands (moved into the node's
# params), which are read as attributes (must be constants), and whether one operand may be a
# constant (element-wise binaries).
_OPS = _core.op_registry()

# Per-sample tensors hold at most 2^33 elements (2^36 bytes at 8 bytes an element, the widest
# dtype): kMaxTensorElements in cpp/include/aidge_ptq_lite/tensor.hpp, which the C++ shape
# inference applies to every node; checked here too so that the message names the graph input.
_MAX_SAMPLE_ELEMENTS = 2 ** 33

# The file each graph was loaded from (export_onnx refuses to overwrite it).
_SOURCES: "weakref.WeakKeyDictionary[_core.Graph, str]" = weakref.WeakKeyDictionary()

# Element sizes of the tensor types whose raw_data length can be checked against the dims.
_FIXED_SIZE_TYPES = {
    onnx.TensorProto.FLOAT: 4, onnx.TensorProto.DOUBLE: 8, onnx.TensorProto.FLOAT16: 2,
    onnx.TensorProto.BFLOAT16: 2, onnx.TensorProto.INT8: 1, onnx.TensorProto.UINT8: 1,
    onnx.TensorProto.INT16: 2, onnx.TensorProto.UINT16: 2, onnx.TensorProto.INT32: 4,
    onnx.TensorProto.UINT32: 4, onnx.TensorProto.INT64: 8, onnx.TensorProto.UINT64: 8,
    onnx.TensorProto.BOOL: 1,
}


def source_path(graph: _core.Graph) -> Optional[str]:
    """The ONNX file ``graph`` was loaded from (absolute), or None."""
    return _SOURCES.get(graph)


def load_onnx(model: Union[str, os.PathLike, onnx.ModelProto],
              input_shape: Optional[Sequence[int]] = None) -> _core.Graph:
    """Load an ONNX model (path or ``onnx.ModelProto``) as a :class:`Graph`.

    The model must have one float input (inputs no node reads are ignored) of static shape
    except the batch axis, and only ops of :func:`supported_ops` once
    :func:`onnx_front.normalize` has rewritten it: opset upgraded to 13 (from 7..12), Identity /
    Dropout removed, every constant subgraph (Shape arithmetic of dynamic-batch exports
    included) folded with onnx's reference evaluator, Reshapes to a literal batch of 1 made
    batch-independent. Constants (initializers and Constant nodes) become the params of the
    nodes that use them. Several graph outputs give a graph with several outputs.

    Args:
        model: a path or an ``onnx.ModelProto`` (not modified).
        input_shape: the input's dims after the batch, e.g. ``(3, 224, 224)`` (or with the batch
            first, which is ignored): needed when the model leaves a non-batch dim symbolic.

    External data (tensors stored in separate files) is read only from files inside the model's
    folder: a location that is absolute, climbs out with ``..``, or resolves outside through a
    symbolic link is refused before anything is read, whatever the onnx version. A
    ``ModelProto`` whose external data is not loaded is refused (pass the path instead).

    Raises:
        FileNotFoundError: the path (or an external data file) does not exist.
        ValueError: the file is not a valid ONNX model (two nodes producing one tensor, duplicate
            node names, a node without output, no graph input), a tensor is missing, unreadable
            (raw data shorter than its dims) or of the wrong type (integer or bool weights), an
            external data location is outside the model's folder.
        ShapeError: shapes are dynamic (and ``input_shape`` is not given), too large, or do not
            fit (names the node or input).
        UnsupportedOpError: ops outside the supported set (the message lists every one, with
            its nodes, and the set).
        NotImplementedError: several inputs read by nodes (named), or an opset the version
            converter cannot upgrade (names op and opset).
    """
    proto = _read_model(model)
    # Invalid models are refused before anything is rewritten, with the builder's messages.
    _check_single_assignment(proto.graph)
    for tensor in proto.graph.initializer:
        _check_tensor(tensor)
    proto = onnx_front.normalize(proto, input_shape)
    graph = _GraphBuilder(proto).build()
    if not isinstance(model, onnx.ModelProto):
        _SOURCES[graph] = os.path.abspath(os.fspath(model))
    return graph


def _read_model(model) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"load_onnx expects a path or an onnx.ModelProto, got {type(model).__name__}")
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no ONNX file at '{path}'")
    try:
        # External data is read by _load_external_data, after its locations are checked.
        proto = onnx.load(path, load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for corrupt files
        raise ValueError(f"'{path}' is not a readable ONNX model: {exc}") from None
    if not proto.graph.node:
        raise ValueError(f"'{path}' is not an ONNX model (it has no graph nodes)")
    _load_external_data(proto, path)
    return proto


def _all_tensors(graph: onnx.GraphProto):
    """Every TensorProto of a graph: initializers, sparse initializers, attribute tensors
    (Constant values), and those of subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("sparse_tensor"):
                yield a.sparse_tensor.values
                yield a.sparse_tensor.indices
            if a.HasField("g"):
                yield from _all_tensors(a.g)
            for sub in a.graphs:
                yield from _all_tensors(sub)


def _external_location(tensor: onnx.TensorProto, folder: str) -> tuple:
    """(file, offset, length) of a tensor's external data, refused unless the file is a regular
    file inside `folder` (after resolving symbolic links) with a single hard link."""
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    where = f"tensor '{tensor.name}': external data location '{location}'"
    if not location:
        raise ValueError(f"tensor '{tensor.name}' has external data without a location")
    if os.path.isabs(location) or os.path.splitdrive(location)[0] or location.startswith(("/", "\\")):
        raise ValueError(f"{where} is an absolute path; external data must be inside the model's "
                         f"folder ({folder})")
    real_folder = os.path.realpath(folder)
    candidate = os.path.realpath(os.path.join(real_folder, location))
    if os.path.commonpath([candidate, real_folder]) != real_folder:
        raise ValueError(f"{where} resolves outside the model's folder ({folder}); refused "
                         "(a '..' or a symbolic link leads out of it)")
    if not os.path.isfile(candidate):
        raise FileNotFoundError(f"{where}: no such file in {folder}")
    if os.stat(candidate).st_nlink > 1:
        raise ValueError(f"{where} has several hard links; refused (it may be a file from "
                         "outside the model's folder)")
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ValueError(f"{where}: offset / length are not integers") from None
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"{where}: negative offset or length")
    size = os.path.getsize(candidate)
    if offset > size or (length is not None and offset + length > size):
        raise ValueError(f"{where}: offset {offset} and length {length} go past the end of the "
                         f"file ({size} bytes)")
    return candidate, offset, length


def _load_external_data(proto: onnx.ModelProto, path: str) -> None:
    """Reads the external data of every tensor into its raw_data, after checking each location
    (ourselves: onnx before 1.21 follows '..' or symbolic links out of the model's folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    tensors = list(_all_tensors(proto.graph))
    for function in proto.functions:  # Constant nodes of local functions
        tensors += _all_tensors(onnx.helper.make_graph(function.node, function.name, [], []))
    external = [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]
    located = [(t, _external_location(t, folder)) for t in external]  # all checked before reading
    for tensor, (file, offset, length) in located:
        with open(file, "rb") as f:
            f.seek(offset)
            data = f.read() if length is None else f.read(length)
        tensor.raw_data = data
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def _tensor_array(tensor: onnx.TensorProto, kind: str = "initializer") -> np.ndarray:
    """The tensor as a numpy array; ValueError naming the tensor when its data does not match its
    dims or is stored in an external file that was not read."""
    name, dims, type_name = _check_tensor(tensor, kind)
    try:
        return numpy_helper.to_array(tensor)
    except Exception as exc:  # numpy reshape errors, unknown types, ...
        raise ValueError(f"{name} (dims {tuple(dims)}, {type_name}) cannot be read: {exc}") from None


def _check_tensor(tensor: onnx.TensorProto, kind: str = "initializer"):
    """ValueError naming the tensor when its data is in an external file that was not read, or
    its raw data does not match its dims; else (label, dims, type name)."""
    name = f"{kind} '{tensor.name}'"
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        location = next((e.value for e in tensor.external_data if e.key == "location"), "?")
        raise ValueError(f"{name} has its data in an external file ('{location}') that is not "
                         "loaded; pass the model's path to load_onnx, which checks and reads it")
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise ValueError(f"{name} has negative dims {dims}")
    type_name = onnx.TensorProto.DataType.Name(tensor.data_type) if tensor.data_type in \
        onnx.TensorProto.DataType.values() else str(tensor.data_type)
    if tensor.HasField("raw_data") and tensor.data_type in _FIXED_SIZE_TYPES:
        expected = math.prod(dims) * _FIXED_SIZE_TYPES[tensor.data_type]
        if len(tensor.raw_data) != expected:
            raise ValueError(f"{name} holds {len(tensor.raw_data)} bytes of raw data; its dims "
                             f"{tuple(dims)} of {type_name} need {expected}")
    return name, dims, type_name


def _check_single_assignment(graph: onnx.GraphProto) -> None:
    """Refuses what onnxruntime calls an invalid model: a tensor assigned twice (two nodes
    producing it, or a node output named as a graph input or initializer), two nodes of one
    name, a node without output."""
    producer = {i.name: "the graph input" for i in graph.input}
    producer.update({t.name: "an initializer" for t in graph.initializer})
    named = {}
    for index, node in enumerate(graph.node):
        label = f"{node.op_type} '{node.name}'" if node.name else f"{node.op_type} node #{index}"
        if node.name:
            if node.name in named:
                raise ValueError(f"two nodes are named '{node.name}' ({named[node.name]} and "
                                 f"{node.op_type} node #{index}); ONNX node names must be unique")
            named[node.name] = f"{node.op_type} node #{index}"
        if not node.output or not node.output[0]:
            raise ValueError(f"{label} has no output")
        for out in node.output:
            if not out:
                continue
            if out in producer:
                raise ValueError(f"tensor '{out}' is produced by {producer[out]} and by {label}; "
                                 "an ONNX graph assigns every tensor once")
            producer[out] = label


class _GraphBuilder:
    def __init__(self, proto: onnx.ModelProto):
        self.proto = proto
        self.graph = proto.graph
        self.constants = {t.name: _tensor_array(t) for t in self.graph.initializer}
        self.producer = {}  # tensor name -> our node name
        self.g = _core.Graph()
        self.used_names = set()

    def build(self) -> _core.Graph:
        _check_single_assignment(self.graph)
        self._check_ops()
        self._add_input()
        for node in self.graph.node:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = _constant_value(node)
            else:
                self._add_node(node)
        outputs = []
        for out in self.graph.output:
            if out.name not in self.producer:
                raise ValueError(self._unproduced_output(out.name))
            outputs.append(self.producer[out.name])
        self.g._set_outputs(outputs)
        self.g._finalize()
        return self.g

    def _add_input(self):
        inputs = [i for i in self.graph.input if i.name not in self.constants]
        if not inputs:
            raise ValueError("the model has no graph input (graph.input is empty or lists only "
                             "initializers); aidge_ptq_lite needs one float input of shape (N, C, ...)")
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
            if d.HasField("dim_value") and d.dim_value <= 0:
                raise _core.ShapeError(f"input '{inp.name}' has dimension {i} of size {d.dim_value}; "
                                       "every dimension but the batch must be positive")
            if not d.HasField("dim_value"):
                label = d.dim_param or "?"
                raise _core.ShapeError(
                    f"input '{inp.name}' has a dynamic dimension {i} ('{label}'); only the batch "
                    "axis (0) may be dynamic: pass input_shape=(C, H, W) to load_onnx")
            shape.append(d.dim_value)
        if math.prod(shape) > _MAX_SAMPLE_ELEMENTS:
            raise _core.ShapeError(
                f"input '{inp.name}' of shape (N, {', '.join(map(str, shape))}) has "
                f"{math.prod(shape):,} elements per sample, more than the library's limit "
                f"({_MAX_SAMPLE_ELEMENTS:,}: tensors of at most 2^36 bytes)")
        name = self._unique(inp.name)
        self.g._add_node(name, "Input", [], {"shape": shape}, [])
        self.producer[inp.name] = name

    def _check_ops(self):
        """Every op the model needs and the registry lacks, reported at once."""
        supported = set(_core.supported_ops())
        missing = {}  # (op, domain) -> node names, in model order
        for index, node in enumerate(self.graph.node):
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                continue
            if node.op_type not in supported or node.domain not in ("", "ai.onnx"):
                label = node.name or (node.output[0] if node.output else f"#{index}")
                missing.setdefault((node.op_type, node.domain), []).append(label)
        if not missing:
            return
        parts = []
        for (op, domain), names in missing.items():
            shown = ", ".join(f"'{n}'" for n in names[:3])
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            where = f"node {shown}" if len(names) == 1 else f"{len(names)} nodes: {shown}{more}"
            of_domain = f" of domain '{domain}'" if domain not in ("", "ai.onnx") else ""
            parts.append(f"{op}{of_domain} ({where})")
        domains = any(d not in ("", "ai.onnx") for _, d in missing)
        # A Shape left by the front: its arithmetic depends on the batch beyond what a Reshape's
        # 0 / -1 expresses, or the shape it reads is not static.
        shape_hint = ("Shape / Size nodes remain when the shape arithmetic after them depends on "
                      "the batch in another way than a Reshape target, or when the shape they read "
                      "is not static (give load_onnx input_shape=...). ") \
            if any(op in ("Shape", "Size") for op, _ in missing) else ""
        # An If left by the front: its condition is not a constant once everything foldable is.
        conditions = [f"'{n.input[0]}'" for n in self.graph.node
                      if n.op_type == "If" and n.domain in ("", "ai.onnx") and n.input][:3]
        if_hint = (f"An If is inlined when its condition is constant; here the condition "
                   f"({', '.join(conditions)}) is computed from the input data, which a static "
                   "network cannot follow: export the model with the branch it should take "
                   "(e.g. torch.jit.trace, or the condition fixed in the code). ") if conditions else ""
        raise _core.UnsupportedOpError(
            f"unsupported op{'s' if len(parts) > 1 else ''} {'; '.join(parts)}. "
            + ("Only the standard ONNX domain is supported. " if domains else "") + shape_hint + if_hint
            + "Replace these ops in the model before loading, or add them to the op registry "
            "(README, 'Adding an op'); supported ops: " + ", ".join(sorted(supported)))

    def _unique(self, base: str) -> str:
        name, i = base or "node", 1
        while name in self.used_names:
            name, i = f"{base}_{i}", i + 1
        self.used_names.add(name)
        return name

    def _unproduced_output(self, name: str) -> str:
        if name in self.constants:
            return (f"graph output '{name}' is an initializer (a constant), not computed from the "
                    "input: remove it from the graph outputs")
        for node in self.graph.node:
            if name in list(node.output)[1:]:
                return (f"{node.op_type} '{node.name}': its output '{name}' (output "
                        f"{list(node.output).index(name)}) is a graph output; only a node's first "
                        "output is supported: remove it from the graph outputs")
        return f"graph output '{name}' is not produced by any node"

    def _constant(self, node, tensor: str) -> np.ndarray:
        if tensor not in self.constants:
            raise ValueError(f"{node.op_type} '{node.name}': input '{tensor}' must be a constant "
                             "(initializer) and none is given")
        return self.constants[tensor]

    def _float_constant(self, node, label: str, tensor: str) -> np.ndarray:
        """A constant operand (weights, bias, BatchNorm statistics, a binary op's constant) as
        float32; integer and bool tensors are refused, naming the initializer (ONNX requires these
        operands to be floating point, like the input)."""
        value = self._constant(node, tensor)
        if value.dtype.name == "bfloat16":  # ml_dtypes' bfloat16 is not a numpy floating type
            value = value.astype(np.float32)
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{label}: initializer '{tensor}' is {value.dtype}; this operand must "
                             "be floating point (float32, like the input)")
        return np.ascontiguousarray(value, dtype=np.float32)

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
        label = f"{op} '{node.name or node.output[0]}'"
        # Params are positional: the first one (weights, B, scale) is required, and an optional
        # one may be left out only at the end (Conv's bias), or a later one would take its place.
        present = [i for i in param_idx if i < len(node.input) and node.input[i]]
        missing = [i for i in param_idx if i not in present and (i == min(param_idx, default=-1)
                                                                 or any(j > i for j in present))]
        if missing:
            raise ValueError(f"{label}: input {missing[0]} (a constant operand) is missing or has an "
                             "empty name")
        for idx, tensor in enumerate(node.input):
            if not tensor:  # optional input left out
                continue
            if idx in param_idx:
                params.append(self._float_constant(node, label, tensor))
            elif idx in attr_inputs:
                value = self._constant(node, tensor)
                attrs[attr_inputs[idx]] = value.tolist() if value.ndim else value.item()
            elif row["constant_operand"] and tensor in self.constants:
                params.append(self._float_constant(node, label, tensor))
                attrs["const_index"] = idx
            elif tensor in self.producer:
                data.append(self.producer[tensor])
            elif tensor in self.constants:
                raise ValueError(f"{label}: input {idx} ('{tensor}') is a constant, and {op} takes "
                                 "only activations there: compute it into the model's constants "
                                 "(or feed it from a node) before loading")
            else:
                raise ValueError(f"{op} '{node.name}': input '{tensor}' is neither produced by a "
                                 "node nor an initializer (missing initializer?)")
        if row.get("transposed_weights") and params:
            params[0] = conv_layout_of_transposed_weights(params[0], attrs.get("group", 1), label)
        if op in ("Dropout", "BatchNormalization") and attrs.get("training_mode"):
            raise NotImplementedError(f"{op} '{node.name}' in training mode (training_mode=1): export "
                                      "the model in eval mode (model.eval() before torch.onnx.export)")
        if op == "Pad" and "value" in attrs:
            attrs["value"] = float(attrs["value"])
        for key in ("min", "max", "ratio"):
            if key in attrs and isinstance(attrs[key], int):
                attrs[key] = float(attrs[key])
        name = self._unique(node.name or node.output[0])
        self.g._add_node(name, op, data, attrs, params, node.domain)
        self.producer[node.output[0]] = name


def conv_layout_of_transposed_weights(w: np.ndarray, group, label: str = "ConvTranspose") -> np.ndarray:
    """ConvTranspose weights (C_in, C_out/g, k...) as a Conv's (C_out, C_in/g, k...), the window
    flipped: the layout the library holds them in (its kernel is a Conv over the spread-out input)."""
    group = int(group) if isinstance(group, int) and group > 0 else 0
    if w.ndim < 3 or not group or w.shape[0] % group:
        raise ValueError(f"{label}: weights of shape {w.shape} do not fit group {group} "
                         "(expected (C_in, C_out/group, k...) with C_in a multiple of group)")
    c_in, c_out_g, window = w.shape[0], w.shape[1], w.shape[2:]
    w = w.reshape(group, c_in // group, c_out_g, *window).swapaxes(1, 2)
    w = w.reshape(group * c_out_g, c_in // group, *window)
    return np.ascontiguousarray(np.flip(w, axis=tuple(range(2, w.ndim))))


def transposed_weights_of_conv_layout(w: np.ndarray, group: int) -> np.ndarray:
    """The inverse of :func:`conv_layout_of_transposed_weights` (ONNX's layout back)."""
    c_out, c_in_g, window = w.shape[0], w.shape[1], w.shape[2:]
    w = np.flip(w, axis=tuple(range(2, w.ndim)))
    w = w.reshape(group, c_out // group, c_in_g, *window).swapaxes(1, 2)
    return np.ascontiguousarray(w.reshape(group * c_in_g, c_out // group, *window))


def _attribute_value(a: onnx.AttributeProto):
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, onnx.TensorProto):
        return _tensor_array(v, f"attribute '{a.name}' tensor").tolist()
    if isinstance(v, (list, tuple)):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    return v


def _constant_value(node) -> np.ndarray:
    for a in node.attribute:
        if a.name == "value":
            return _tensor_array(a.t, f"Constant '{node.name or node.output[0]}' value")
        if a.name in ("value_float", "value_int"):
            return np.array(onnx.helper.get_attribute_value(a))
        if a.name in ("value_floats", "value_ints"):
            return np.array(onnx.helper.get_attribute_value(a))
    raise NotImplementedError(f"Constant '{node.name}' without a supported value attribute")
