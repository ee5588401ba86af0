"""Import front: rewrites an ONNX model as exporters emit it into the plain form the graph
builder of :mod:`onnx_io` reads (one data input, opset 13..21 semantics, constants folded,
no Identity / Dropout, static shapes except the batch).

Everything here evaluates through onnx itself (shape inference, the version converter, the
reference evaluator): no op is folded by hand, so a folded value is what the ONNX spec says.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
import onnx.shape_inference
import onnx.version_converter
from onnx import helper, numpy_helper

from . import _core

# The opsets whose semantics the registry rows follow: below, the model is upgraded to the
# lowest; above the highest it is refused by onnx itself.
MIN_OPSET = 13
DOWNGRADE_TARGET = 17

# Batch sizes at which batch-dependent shape arithmetic is evaluated: a value equal at both does
# not depend on the batch; one equal to the batch at both is the batch.
_PROBE_BATCHES = (5, 7)
_BATCH_PARAM = "N"

# Folded tensors larger than this are left to the graph (memory), and ops that make a tensor
# whose size comes from their input values are not evaluated unless shape inference bounds it.
_MAX_FOLDED_ELEMENTS = 2 ** 27
_VALUE_SIZED_OPS = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad",
                    "OneHot", "NonZero"}
_NON_DETERMINISTIC_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                          "RandomUniformLike", "Multinomial", "Bernoulli"}
_STANDARD_DOMAINS = ("", "ai.onnx")
# Initializers up to this size may be shape values that shape inference propagates.
_SHAPE_VALUE_ELEMENTS = 4096


def normalize(model: onnx.ModelProto, input_shape: Optional[Sequence[int]] = None) -> onnx.ModelProto:
    """A copy of ``model`` in the form the graph builder reads.

    - graph inputs that are initializers (IR < 4) and inputs no node uses are dropped; exactly
      one data input must remain;
    - local functions are inlined; models below opset 13 are upgraded with onnx's version
      converter (an op it cannot upgrade is refused, naming op and opset), models above 17 are
      brought to 17 where the converter can;
    - the data input gets a symbolic batch and static other dims (from ``input_shape`` when the
      model leaves them symbolic), then onnx shape inference runs;
    - an If whose condition is constant once folded is replaced by the nodes of the branch it
      takes (names scoped by the If's name); an If on data is left for the builder to refuse;
    - Identity and inference Dropout are removed; every node whose inputs are all constant is
      evaluated with onnx's reference evaluator and becomes an initializer; shape arithmetic
      from ``Shape`` is evaluated at two batch sizes and folded where it does not depend on the
      batch, or is the batch (a Reshape then copies it: 0 / -1);
    - a Reshape to a literal batch of 1 keeps the batch instead (old zoo models);
    - Split with constant sizes becomes Slices when the registry has Slice and no Split;
    - a Sum with constant inputs becomes the Sum of its data inputs plus one Add of the
      constants' sum (Sum joins activations; a constant is an Add operand);
    - nodes that feed no graph output are removed.

    Raises:
        ValueError: no data input, or ``input_shape`` of the wrong length.
        NotImplementedError: several data inputs (named), or an op the version converter cannot
            bring to opset 13 (named with its opset).
        ShapeError: a non-batch input dimension is symbolic and ``input_shape`` is not given, or
            ``input_shape`` contradicts the model's static dims.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    _drop_initializer_inputs(m)
    _remove_dead_nodes(m.graph)
    _keep_one_data_input(m.graph)
    m = _inline_functions(m)
    m = _convert_opset(m)
    _set_input_shape(m.graph, input_shape)
    _clear_shape_annotations(m.graph)
    _remove_identities(m.graph)
    # A rewritten Reshape changes the shapes after it, a fold may make a Reshape target
    # constant: infer again after each, Reshapes first (a Shape read before its Reshape keeps
    # the batch would bake the literal 1 in).
    for _ in range(16):
        m = _infer_shapes(m)
        if _keep_batch_in_reshapes(m):
            continue
        if _inline_constant_ifs(m):
            _remove_identities(m.graph)  # a branch often passes a value through Identity
            continue
        if not _fold_constants(m):
            break
    _split_to_slices(m)
    _sum_constants_to_add(m)
    _remove_dead_nodes(m.graph)
    _remove_unused_initializers(m.graph)
    return m


# ---- inputs ------------------------------------------------------------------------------------

def _drop_initializer_inputs(m: onnx.ModelProto) -> None:
    """IR < 4 lists every initializer as a graph input too: it is a constant, not data (and
    from IR 4 on, initializers need not be inputs)."""
    graph = m.graph
    if m.ir_version < 4:
        m.ir_version = 4
    constants = {t.name for t in graph.initializer}
    keep = [i for i in graph.input if i.name not in constants]
    if len(keep) != len(graph.input):
        del graph.input[:]
        graph.input.extend(keep)


def _consumed_names(graph: onnx.GraphProto) -> set:
    used = {o.name for o in graph.output}
    for node in graph.node:
        used.update(node.input)
        for a in node.attribute:  # subgraphs read outer tensors by name
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                used |= _consumed_names(sub)
    return used


def _keep_one_data_input(graph: onnx.GraphProto) -> None:
    if not graph.input:
        raise ValueError("the model has no graph input (graph.input is empty or lists only "
                         "initializers); aidge_ptq_lite needs one float input of shape (N, C, ...)")
    used = _consumed_names(graph)
    live = [i for i in graph.input if i.name in used]
    if not live:
        return  # nothing reads any input: the builder says what is wrong with the outputs
    if len(live) > 1:
        names = ", ".join(f"'{i.name}'" for i in live)
        raise NotImplementedError(
            f"only single-input models are supported; inputs: {names} are all read by nodes. "
            "Feed the others as constants (make them initializers) or cut the model to one input")
    del graph.input[:]
    graph.input.extend(live)


def _set_input_shape(graph: onnx.GraphProto, input_shape) -> None:
    """Symbolic batch, static other dims: from the model, or from input_shape (which may include
    the batch)."""
    inp = graph.input[0]
    ttype = inp.type.tensor_type
    dims = list(ttype.shape.dim) if ttype.HasField("shape") else None
    if input_shape is not None:
        try:
            given = [int(d) for d in input_shape]
        except (TypeError, ValueError):
            raise ValueError(f"input_shape must be a sequence of integers, got {input_shape!r}") from None
        if dims is None:
            given = given if len(given) >= 2 else [1] + given
            ttype.shape.SetInParent()
            for _ in given:
                ttype.shape.dim.add()
            dims = list(ttype.shape.dim)
        rank = len(dims)
        if len(given) == rank:
            given = given[1:]
        if len(given) != rank - 1:
            raise ValueError(
                f"input_shape {tuple(input_shape)} does not fit input '{inp.name}' of rank {rank}: "
                f"give the {rank - 1} dims after the batch (e.g. (3, 224, 224)) or all {rank}")
        for i, (d, v) in enumerate(zip(dims[1:], given), start=1):
            if v <= 0:
                raise _core.ShapeError(f"input_shape {tuple(input_shape)}: dimension {i} must be "
                                       f"positive, got {v}")
            if d.HasField("dim_value") and d.dim_value != v:
                raise _core.ShapeError(
                    f"input_shape {tuple(input_shape)} says dimension {i} of input '{inp.name}' is "
                    f"{v}; the model fixes it to {d.dim_value}")
            d.dim_value = v
    if dims is None or len(dims) < 2:
        return  # the builder refuses it, naming the input
    for i, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value"):
            label = d.dim_param or "?"
            raise _core.ShapeError(
                f"input '{inp.name}' has a dynamic dimension {i} ('{label}'); only the batch axis "
                f"(0) may be dynamic: pass the dims after the batch to load_onnx, e.g. "
                f"input_shape=({', '.join(str(x.dim_value) if x.HasField('dim_value') else x.dim_param or '?' for x in dims[1:])}) "
                "with numbers for the symbolic ones")
    if not dims[0].dim_param:
        dims[0].dim_param = _BATCH_PARAM  # a literal batch (often 1) of an old export


def _batch_param(graph: onnx.GraphProto) -> str:
    dims = graph.input[0].type.tensor_type.shape.dim
    return (dims[0].dim_param if dims else "") or _BATCH_PARAM


def _clear_shape_annotations(graph: onnx.GraphProto) -> None:
    """Exporters annotate intermediates and outputs with the batch they were traced at (often a
    literal 1): shape inference would keep those over the symbolic batch."""
    del graph.value_info[:]
    for out in graph.output:
        if out.type.HasField("tensor_type"):
            out.type.tensor_type.ClearField("shape")


# ---- functions and opset -------------------------------------------------------------------------

def _inline_functions(m: onnx.ModelProto) -> onnx.ModelProto:
    if not m.functions:
        return m
    try:
        import onnx.inliner
    except ImportError:  # onnx < 1.16: the builder reports the function calls as unsupported ops
        return m
    return onnx.inliner.inline_local_functions(m)


def _default_opset(m: onnx.ModelProto) -> Optional[int]:
    return next((o.version for o in m.opset_import if o.domain in _STANDARD_DOMAINS), None)


def _convert_opset(m: onnx.ModelProto) -> onnx.ModelProto:
    version = _default_opset(m)
    if version is None or MIN_OPSET <= version <= DOWNGRADE_TARGET:
        return m
    target = MIN_OPSET if version < MIN_OPSET else DOWNGRADE_TARGET
    if version < 7:
        _prelu_slopes_per_channel(m)
    try:
        converted = onnx.version_converter.convert_version(m, target)
    except Exception as exc:
        if version > DOWNGRADE_TARGET:
            # onnx has few down-adapters; ops of 18+ are read by their rows, which follow the
            # newest definition of the ops they support.
            return m
        if any(n.domain not in _STANDARD_DOMAINS for n in m.graph.node):
            return m  # the builder refuses the model, listing every op it lacks
        found = re.search(r"for (\w+)", str(exc))
        op = found.group(1) if found else next(
            (n.op_type for n in m.graph.node if n.domain in _STANDARD_DOMAINS
             and not onnx.defs.has(n.op_type)), None)  # an op removed from ONNX (Crop, ...)
        if op is None and version < 7:  # legacy broadcasting (broadcast=1, axis), the usual one
            op = next((n.op_type for n in m.graph.node
                       if any(a.name == "broadcast" and a.i for a in n.attribute)), None)
        nodes = [n for n in m.graph.node if n.op_type == op] if op else []
        where = f" (node '{nodes[0].name or nodes[0].output[0]}')" if nodes else ""
        raise NotImplementedError(
            f"the model is in opset {version}; aidge_ptq_lite reads ops with their opset-"
            f"{MIN_OPSET} meaning and onnx's version converter cannot upgrade "
            f"{op or 'one of its ops'}{where} from opset {version} ("
            f"{str(exc).splitlines()[-1].split('failed: ')[-1]}). "
            f"Re-export the model with opset {MIN_OPSET} or later") from None
    if version < 11:
        _resize_keeps_asymmetric_coordinates(converted)
    return converted


def _resize_keeps_asymmetric_coordinates(m: onnx.ModelProto) -> None:
    """Upsample and Resize before opset 11 map output pixel i to input i / scale (nearest: its
    floor); the converter leaves opset 11's defaults (half_pixel, round_prefer_floor), which move
    every linear output. Write the old meaning out."""
    for node in m.graph.node:
        if node.op_type != "Resize" or node.domain not in _STANDARD_DOMAINS:
            continue
        attrs = {a.name for a in node.attribute}
        if "coordinate_transformation_mode" not in attrs:
            node.attribute.append(helper.make_attribute("coordinate_transformation_mode",
                                                        "asymmetric"))
        if "nearest_mode" not in attrs:
            node.attribute.append(helper.make_attribute("nearest_mode", "floor"))


def _prelu_slopes_per_channel(m: onnx.ModelProto) -> None:
    """PRelu before opset 7 applied a 1-D slope of C values per channel (as PyTorch exported
    it); from 7 on it broadcasts numpy-style, against the last axis, and onnx's converter keeps
    the 1-D slope: give it the shape (C, 1, ..., 1) that keeps the meaning."""
    graph = m.graph
    constants = {t.name: t for t in graph.initializer}
    prelus = [n for n in graph.node if n.op_type == "PRelu" and n.domain in _STANDARD_DOMAINS
              and len(n.input) > 1 and n.input[1] in constants
              and len(constants[n.input[1]].dims) == 1 and constants[n.input[1]].dims[0] > 1]
    if not prelus:
        return
    ranks = {name: len(dims) for name, dims in _shapes(_infer_shapes(m).graph).items()}
    del graph.value_info[:]
    taken = _all_names(graph)
    for node in prelus:
        rank = ranks.get(node.input[0])
        if rank is None or rank <= 2:
            continue
        slope = numpy_helper.to_array(constants[node.input[1]])
        name = _fresh_name(f"{node.input[1]}_per_channel", taken)
        graph.initializer.append(numpy_helper.from_array(
            slope.reshape(slope.size, *([1] * (rank - 2))), name))
        node.input[1] = name


# ---- shapes -------------------------------------------------------------------------------------

def _infer_shapes(m: onnx.ModelProto) -> onnx.ModelProto:
    """onnx shape inference (with data propagation), run on a skeleton of the model whose large
    initializers (weights, never shape values) are typed inputs: inference serializes the
    model, and copying the weights of an ImageNet ResNet-18 was most of the load time."""
    graph = m.graph
    del graph.value_info[:]
    skeleton = onnx.ModelProto()
    skeleton.ir_version = m.ir_version
    skeleton.opset_import.extend(m.opset_import)
    skeleton.functions.extend(m.functions)
    sk = skeleton.graph
    sk.name = graph.name
    sk.node.extend(graph.node)
    sk.input.extend(graph.input)
    sk.output.extend(graph.output)
    for t in graph.initializer:
        if np.prod(t.dims) <= _SHAPE_VALUE_ELEMENTS:
            sk.initializer.append(t)
        else:
            sk.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton, check_type=False,
                                                     strict_mode=False, data_prop=True)
    except Exception:  # an invalid model: the builder names what is wrong
        return m
    graph.value_info.extend(inferred.graph.value_info)
    for out, typed in zip(graph.output, inferred.graph.output):
        out.type.CopyFrom(typed.type)
    return m


def _shapes(graph: onnx.GraphProto) -> Dict[str, list]:
    """name -> dims (int, or the symbol's name, or None) of every tensor shape inference knows."""
    shapes = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                               for d in t.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _elem_types(graph: onnx.GraphProto) -> Dict[str, int]:
    return {vi.name: vi.type.tensor_type.elem_type
            for vi in list(graph.input) + list(graph.value_info) + list(graph.output)
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type}


# ---- graph edits ------------------------------------------------------------------------------

def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _fresh_name(base: str, taken: set) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _all_names(graph: onnx.GraphProto) -> set:
    names = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.output)
        names.add(node.name)
    return names


def _remove_identities(graph: onnx.GraphProto) -> None:
    """Identity and inference Dropout pass their input through: consumers read the input."""
    outputs = {o.name for o in graph.output}
    inputs_and_constants = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    constants = {t.name: t for t in graph.initializer}
    used = _consumed_names(graph)
    keep = []
    for node in graph.node:
        if node.domain not in _STANDARD_DOMAINS or node.op_type not in ("Identity", "Dropout") \
                or len(node.input) < 1 or not node.input[0] or not node.output:
            keep.append(node)
            continue
        if node.op_type == "Dropout":
            mask_used = len(node.output) > 1 and node.output[1] and node.output[1] in used
            training = len(node.input) > 2 and node.input[2]
            if training and node.input[2] in constants:
                training = bool(numpy_helper.to_array(constants[node.input[2]]).any())
            if mask_used or training or any(a.name == "training_mode" for a in node.attribute):
                keep.append(node)  # the builder refuses training mode by name
                continue
        src, dst = node.input[0], node.output[0]
        if dst not in outputs:
            _rename_uses(graph, dst, src)
        elif src not in inputs_and_constants and src not in outputs:
            # The graph output keeps its name: the producer of src writes it directly.
            for other in graph.node:
                for i, name in enumerate(other.output):
                    if name == src:
                        other.output[i] = dst
            _rename_uses(graph, src, dst)
        else:
            keep.append(node)
            continue
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)


def _remove_dead_nodes(graph: onnx.GraphProto) -> None:
    """Removes the nodes that feed no graph output (a graph out of order, invalid, is left as
    it is for the builder to name what is wrong)."""
    if _out_of_order(graph):
        return
    needed = {o.name for o in graph.output}
    live = set()
    nodes = list(graph.node)  # one wrapper per node, so that id() names it
    for node in reversed(nodes):
        # a node without outputs is kept: the builder refuses it by name
        if not any(o for o in node.output) or any(o and o in needed for o in node.output):
            live.add(id(node))
            needed.update(node.input)
            for a in node.attribute:
                for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    needed |= _consumed_names(sub)
    if len(live) != len(graph.node):
        kept = [n for n in nodes if id(n) in live]
        del graph.node[:]
        graph.node.extend(kept)


def _out_of_order(graph: onnx.GraphProto) -> bool:
    """Whether some node reads a tensor produced only by a later node (a cycle or an unsorted
    graph): left as is for the builder to refuse."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    later = {o for n in graph.node for o in n.output}
    for node in graph.node:
        if any(i and i not in known and i in later for i in node.input):
            return True
        known.update(node.output)
    return False


def _remove_unused_initializers(graph: onnx.GraphProto) -> None:
    used = _consumed_names(graph)
    keep = [t for t in graph.initializer if t.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


# ---- constant folding ---------------------------------------------------------------------------

def _evaluate(node: onnx.NodeProto, opsets, feeds: Dict[str, np.ndarray]) -> List[np.ndarray]:
    """Runs one node with onnx's reference evaluator."""
    from onnx.reference import ReferenceEvaluator
    inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
              for name, v in feeds.items()]
    outputs = [helper.make_value_info(o, onnx.TypeProto()) for o in node.output if o]
    g = helper.make_graph([node], "fold", inputs, outputs)
    model = helper.make_model(g, opset_imports=opsets)
    results = ReferenceEvaluator(model).run(None, feeds)
    return [np.asarray(r) for r in results]


def _size(dims, batch_param: str, batch: int) -> Optional[int]:
    if dims is None:
        return None
    total = 1
    for d in dims:
        if isinstance(d, int):
            total *= d
        elif d == batch_param:
            total *= batch
        else:
            return None
    return total


def _foldable(node: onnx.NodeProto, shapes, feeds, batch_param) -> bool:
    if node.domain not in _STANDARD_DOMAINS or node.op_type in _NON_DETERMINISTIC_OPS:
        return False
    if any(a.HasField("g") or a.graphs for a in node.attribute):
        return False
    sizes = [_size(shapes.get(o), batch_param, max(_PROBE_BATCHES)) for o in node.output if o]
    if all(s is not None for s in sizes):
        return sum(sizes) <= _MAX_FOLDED_ELEMENTS
    return node.op_type not in _VALUE_SIZED_OPS and \
        sum(np.asarray(v).size for v in feeds.values()) <= _MAX_FOLDED_ELEMENTS


def _batch_rewrite(value5: np.ndarray, value7: np.ndarray, data_dims, allowzero: bool,
                   batch_param: str) -> Optional[np.ndarray]:
    """The shape a Reshape should get for a target computed from the batch: entries equal at
    both batches kept, the batch copied from the input (0) when it is the input's batch axis,
    one other batch-dependent entry inferred (-1). None when that does not express it."""
    if value5.ndim != 1 or value5.shape != value7.shape or value5.dtype.kind not in "iu":
        return None
    out = value5.astype(np.int64).copy()
    differ = [i for i in range(out.size) if value5[i] != value7[i]]
    inferred = [i for i in range(out.size) if i not in differ and out[i] == -1]
    rest = []
    for i in differ:
        is_batch = (value5[i], value7[i]) == _PROBE_BATCHES
        copies_input_batch = i == 0 and data_dims and data_dims[0] == batch_param
        if is_batch and copies_input_batch and not allowzero:
            out[i] = 0
        else:
            rest.append(i)
    if len(rest) > 1 or (rest and inferred):
        return None
    for i in rest:
        out[i] = -1
    return out


class _LazyConstants(dict):
    """name -> value of the constants; initializers are read when a fold needs them (most are
    weights that no fold reads)."""

    def __init__(self, initializers):
        super().__init__()
        self._tensors = {t.name: t for t in initializers}

    def __contains__(self, name):
        return dict.__contains__(self, name) or name in self._tensors

    def __getitem__(self, name):
        if not dict.__contains__(self, name):
            try:
                self[name] = numpy_helper.to_array(self._tensors[name])
            except Exception:
                raise KeyError(name) from None  # unreadable: the builder names it
        return dict.__getitem__(self, name)


def _fold_constants(m: onnx.ModelProto) -> bool:
    """Every node whose inputs are constant becomes an initializer (evaluated by onnx's
    reference evaluator); values computed from a Shape are evaluated at two batch sizes."""
    graph = m.graph
    shapes = _shapes(graph)
    types = _elem_types(graph)
    batch_param = _batch_param(graph)
    outputs = {o.name for o in graph.output}
    constants = _LazyConstants(graph.initializer)
    probed: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}  # batch-dependent values at 5 and 7
    taken = _all_names(graph)
    changed = False
    keep = []
    new_initializers = []
    for node in graph.node:
        ins = [i for i in node.input if i]
        if node.op_type in ("Shape", "Size") and node.domain in _STANDARD_DOMAINS and ins \
                and ins[0] not in constants and ins[0] not in probed:
            dims = shapes.get(ins[0])
            # Every data tensor has the batch first; a literal there is a Reshape to batch 1
            # not rewritten yet (next round).
            if dims and dims[0] == batch_param and all(isinstance(d, int) for d in dims[1:]):
                try:
                    pair = tuple(_evaluate(node, m.opset_import, {ins[0]: np.broadcast_to(
                        np.zeros((), np.float32), [b if d == batch_param else d for d in dims])})[0]
                        for b in _PROBE_BATCHES)
                except Exception:
                    keep.append(node)
                    continue
                if np.array_equal(pair[0], pair[1]) and node.output[0] not in outputs:
                    constants[node.output[0]] = pair[0]
                    new_initializers.append(numpy_helper.from_array(pair[0], node.output[0]))
                    changed = True
                    continue
                probed[node.output[0]] = pair
            keep.append(node)
            continue
        all_known = all(i in constants or i in probed for i in ins)
        if not all_known or any(o in outputs for o in node.output) or \
                (not ins and node.op_type != "Constant"):
            keep.append(node)
            continue
        try:
            feeds5 = {i: constants[i] if i in constants else probed[i][0] for i in ins}
        except KeyError:  # an unreadable initializer
            keep.append(node)
            continue
        if not _foldable(node, shapes, feeds5, batch_param):
            keep.append(node)
            continue
        try:
            r5 = _evaluate(node, m.opset_import, feeds5)
            if any(i in probed for i in ins):
                r7 = _evaluate(node, m.opset_import,
                               {i: constants[i] if i in constants else probed[i][1] for i in ins})
            else:
                r7 = r5
        except Exception:
            keep.append(node)  # the builder reports the node (unsupported op, bad input, ...)
            continue
        names = [o for o in node.output if o]
        if len(r5) != len(names):
            keep.append(node)
            continue
        batch_dependent = any(not (a.shape == b.shape and np.array_equal(a, b))
                              for a, b in zip(r5, r7))
        if batch_dependent:
            for name, a, b in zip(names, r5, r7):
                probed[name] = (a, b)
            keep.append(node)
            continue
        for name, value in zip(names, r5):
            if name in types:
                want = helper.tensor_dtype_to_np_dtype(types[name])
                if value.dtype != want:
                    value = value.astype(want)
            constants[name] = value
            new_initializers.append(numpy_helper.from_array(value, name))
        changed = True
    # A batch-dependent Reshape target: keep what does not depend on the batch, copy the batch.
    for node in keep:
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in probed:
            allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
            target = _batch_rewrite(*probed[node.input[1]], shapes.get(node.input[0]), allowzero,
                                    batch_param)
            if target is not None:
                name = _fresh_name(f"{node.input[1]}_batch", taken)
                new_initializers.append(numpy_helper.from_array(target, name))
                node.input[1] = name
                changed = True
    if changed:
        del graph.node[:]
        graph.node.extend(keep)
        graph.initializer.extend(new_initializers)
        _remove_dead_nodes(graph)
        _remove_unused_initializers(graph)
    return changed


def _keep_batch_in_reshapes(m: onnx.ModelProto) -> bool:
    """A Reshape to a literal batch of 1 (a model exported at batch 1) of a tensor whose batch is
    symbolic copies the batch instead, so that any batch runs; a target (-1, d1, ...) whose -1 is
    the batch copies it too (0), so that the shapes after it keep the batch's name."""
    graph = m.graph
    shapes = _shapes(graph)
    batch_param = _batch_param(graph)
    constants = {t.name: t for t in graph.initializer}
    taken = _all_names(graph)
    changed = False
    for node in graph.node:
        if node.op_type != "Reshape" or node.domain not in _STANDARD_DOMAINS or len(node.input) < 2 \
                or node.input[1] not in constants:
            continue
        data_dims = shapes.get(node.input[0])
        if not data_dims or data_dims[0] != batch_param:
            continue
        try:
            target = numpy_helper.to_array(constants[node.input[1]])
        except Exception:
            continue
        if target.ndim != 1 or target.size == 0 or target.dtype.kind not in "iu":
            continue
        allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
        new = target.astype(np.int64).copy()
        if new[0] == -1 and not allowzero and _infers_the_batch(new, data_dims):
            new[0] = 0  # same result, and shape inference keeps the batch's name after it
        elif new[0] != 1:
            continue
        elif not allowzero:
            new[0] = 0
        elif not (new == -1).any():
            new[0] = -1
        else:
            continue
        name = _fresh_name(f"{node.input[1]}_batch", taken)
        graph.initializer.append(numpy_helper.from_array(new, name))
        node.input[1] = name
        changed = True
    if changed:
        _remove_unused_initializers(graph)
    return changed


def _infers_the_batch(target: np.ndarray, data_dims) -> bool:
    """Whether the -1 leading ``target`` stands for the batch: the other entries are literal and
    hold exactly the static per-sample size of the data."""
    rest = data_dims[1:]
    return bool((target[1:] > 0).all()) and all(isinstance(d, int) for d in rest) and \
        int(np.prod(target[1:])) == int(np.prod(rest))


# ---- If with a constant condition ------------------------------------------------------------

def _subgraphs(node: onnx.NodeProto):
    for a in node.attribute:
        if a.HasField("g"):
            yield a.g
        yield from a.graphs


def _names_in_subgraphs(graph: onnx.GraphProto) -> set:
    """Every name a nested subgraph defines (fresh names must not collide with them either)."""
    names = set()
    for node in graph.node:
        for sub in _subgraphs(node):
            names |= _all_names(sub) | _names_in_subgraphs(sub)
    return names


def _rename_in_subgraph(graph: onnx.GraphProto, rename: Dict[str, str]) -> None:
    """References of a nested subgraph to renamed outer values (ONNX forbids a subgraph to
    shadow an outer name, so every match is such a reference)."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
        for sub in _subgraphs(node):
            _rename_in_subgraph(sub, rename)
    for out in graph.output:
        out.name = rename.get(out.name, out.name)


def _constant_condition(node: onnx.NodeProto, constants) -> Optional[bool]:
    if not node.input or node.input[0] not in constants:
        return None
    try:
        value = numpy_helper.to_array(constants[node.input[0]])
    except Exception:
        return None
    return bool(value.reshape(-1)[0]) if value.size == 1 else None


def _inline_constant_ifs(m: onnx.ModelProto) -> bool:
    """An If whose condition is a constant (torch writes rank tests of a tensor whose rank is
    known, e.g. in LRN) becomes the nodes of the branch it takes: the branch's values and nodes
    get names scoped by the If's name, its outputs become the If's outputs."""
    graph = m.graph
    constants = {t.name: t for t in graph.initializer}
    taken = None
    nodes, changed = [], False
    for node in graph.node:
        taken_branch = None
        if node.op_type == "If" and node.domain in _STANDARD_DOMAINS:
            condition = _constant_condition(node, constants)
            attrs = {a.name: a.g for a in node.attribute if a.HasField("g")}
            if condition is not None:
                taken_branch = attrs.get("then_branch" if condition else "else_branch")
        if taken_branch is None or taken_branch.sparse_initializer or \
                len(taken_branch.output) != len(node.output):
            nodes.append(node)  # the builder refuses an If on data, naming it
            continue
        if taken is None:
            taken = _all_names(graph) | _names_in_subgraphs(graph)
        nodes.extend(_branch_nodes(node, taken_branch, graph, taken))
        changed = True
    if changed:
        del graph.node[:]
        graph.node.extend(nodes)
    return changed


def _branch_nodes(node: onnx.NodeProto, branch: onnx.GraphProto, graph: onnx.GraphProto,
                  taken: set) -> List[onnx.NodeProto]:
    """The nodes of ``branch`` renamed into the outer graph (its initializers moved there), so
    that they compute the outputs of the If ``node``."""
    scope = node.name or node.output[0]
    produced = {o for n in branch.node for o in n.output if o}
    rename: Dict[str, str] = {}
    copies = []  # (branch output, If output) the branch passes through (outer value, constant)
    for out, target in zip(branch.output, node.output):
        if out.name in produced and out.name not in rename and target:
            rename[out.name] = target
        elif target:
            copies.append((out.name, target))
    for local in sorted(produced - set(rename)) + [t.name for t in branch.initializer]:
        rename.setdefault(local, _fresh_name(f"{scope}/{local.lstrip('/')}", taken))
    for t in branch.initializer:
        moved = onnx.TensorProto()
        moved.CopyFrom(t)
        moved.name = rename[t.name]
        graph.initializer.append(moved)
    spliced = []
    for inner in branch.node:
        new = onnx.NodeProto()
        new.CopyFrom(inner)
        new.name = _fresh_name(f"{scope}/{(inner.name or inner.op_type).lstrip('/')}", taken)
        for i, name in enumerate(new.input):
            new.input[i] = rename.get(name, name)
        for i, name in enumerate(new.output):
            new.output[i] = rename.get(name, name)
        for sub in _subgraphs(new):
            _rename_in_subgraph(sub, rename)
        spliced.append(new)
    for src, target in copies:
        spliced.append(helper.make_node("Identity", [rename.get(src, src)], [target],
                                        name=_fresh_name(f"{scope}/output_{target}", taken)))
    return spliced


def _registry_ops() -> dict:
    return _core.op_registry()


# ---- Sum with constants ----------------------------------------------------------------------------

def _sum_constants_to_add(m: onnx.ModelProto) -> None:
    graph = m.graph
    constants = {t.name: t for t in graph.initializer}
    taken = _all_names(graph)
    nodes, changed = [], False
    for node in graph.node:
        given = [i for i in node.input if i]
        known = [i for i in given if i in constants]
        data = [i for i in given if i not in constants]
        if node.op_type != "Sum" or node.domain not in _STANDARD_DOMAINS or not known or not data:
            nodes.append(node)  # all constant: folded already (or the builder names it)
            continue
        try:
            total = numpy_helper.to_array(constants[known[0]])
            for name in known[1:]:
                total = total + numpy_helper.to_array(constants[name])
        except Exception:
            nodes.append(node)
            continue
        base = node.name or node.output[0]
        k = _fresh_name(f"{base}_constants", taken)
        graph.initializer.append(numpy_helper.from_array(np.asarray(total), k))
        src = data[0]
        if len(data) > 1:
            src = _fresh_name(f"{base}_data", taken)
            nodes.append(helper.make_node("Sum", data, [src], name=_fresh_name(f"{base}_data_sum", taken)))
        nodes.append(helper.make_node("Add", [src, k], list(node.output), name=node.name))
        changed = True
    if changed:
        del graph.node[:]
        graph.node.extend(nodes)


# ---- Split ---------------------------------------------------------------------------------------

def _split_to_slices(m: onnx.ModelProto) -> None:
    """Split with constant sizes as one Slice per output, when the registry has Slice only."""
    ops = _registry_ops()
    if "Split" in ops or "Slice" not in ops:
        return
    graph = m.graph
    shapes = _shapes(graph)
    constants = {t.name: t for t in graph.initializer}
    taken = _all_names(graph)
    nodes = []
    for node in graph.node:
        if node.op_type != "Split" or node.domain not in _STANDARD_DOMAINS:
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axis = attrs.get("axis", 0)
        dims = shapes.get(node.input[0])
        sizes = None
        if len(node.input) > 1 and node.input[1]:
            if node.input[1] in constants:
                sizes = [int(s) for s in numpy_helper.to_array(constants[node.input[1]])]
        elif "split" in attrs:
            sizes = [int(s) for s in attrs["split"]]
        elif dims is not None and -len(dims) <= axis < len(dims) and isinstance(dims[axis], int):
            parts = len(node.output)
            extent = dims[axis]
            chunk = -(-extent // parts)  # ceil: opset 18's rule; divisible below
            sizes = [min(chunk, extent - chunk * i) for i in range(parts)]
        if sizes is None or len(sizes) != len(node.output) or any(s < 0 for s in sizes):
            nodes.append(node)  # the builder reports Split as unsupported, naming it
            continue
        start = 0
        for i, (out, size) in enumerate(zip(node.output, sizes)):
            base = node.name or node.output[0]
            arrays = {"starts": [start], "ends": [start + size], "axes": [axis]}
            names = []
            for key, value in arrays.items():
                name = _fresh_name(f"{base}_{key}{i}", taken)
                graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), name))
                names.append(name)
            nodes.append(helper.make_node("Slice", [node.input[0], *names], [out],
                                          name=_fresh_name(f"{base}_slice{i}", taken)))
            start += size
    if len(nodes) != len(graph.node):
        del graph.node[:]
        graph.node.extend(nodes)
