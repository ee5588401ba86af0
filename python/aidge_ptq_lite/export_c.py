"""export_c: the quantized network as a self-contained C99 project, bit-exact with the executor.

Files written (all at the top of the directory, so ``gcc DIR/*.c -lm`` builds the demo):

- ``<name>.h``: the API: input / output shapes and storage types, the input step, the arena size,
  ``<name>_run(input codes, output)`` (several outputs: ``output0, output1, ...`` in the graph's
  output order).
- ``<name>.c``: the layer sequence; one static activation arena, no heap, no floating point.
- ``<name>_weights.c`` / ``.h``: weights, biases, requantization multipliers and shifts as
  ``const`` integer arrays (flash on a microcontroller).
- ``apl_kernels.c`` / ``.h``: the portable integer kernels (see ``_c_kernels``), only those called.
- ``apl_float_kernels.c`` / ``.h``: only with ``allow_float=True`` and a float node to write.
- ``<name>_float.c`` / ``.h``: the only floating point of the export, kept apart: quantize a
  float input to the network's input codes (round half to even, as the executor), dequantize the
  raw outputs.
- ``main.c``: ``./<name> IN OUT``: IN raw little-endian float32 samples of the input shape (as
  many as the file holds); OUT the raw outputs, exactly as ``graph.forward(x, dequantize=False)``
  gives them (same dtype, little-endian, sample after sample; several outputs one after another
  per sample).
- ``Makefile`` and ``CMakeLists.txt``; ``apl_export.txt``, the manifest of the files written (a
  later export into the directory replaces exactly those).

The integer semantics are those of the executor (cpp/src/runtime/int_op_kernels.cpp): a Conv/Gemm
followed by its only consumer, a Scaling node, runs as one kernel writing codes; a Scaling node at
the dequantization point hands the int32 accumulator to the output; ReLU, MaxPool, Pad and views
keep codes; average pools, Add, Sub, Mul and Sum produce int32 sums that the next Scaling node
requantizes (numpy broadcasting between activations, e.g. a squeeze-excite gate; an AveragePool
whose count varies per cell weighs each sum by D / count as avgpool_border_kernels.cpp); PRelu
keeps codes (negative side times the channel's slope, one rounding); Concat, Transpose, Slice and
a nearest Resize copy codes; ConvTranspose is a Conv over its input spread by the strides; 1-D
windows (N, C, L) run as 2-D ones of height 1; an element-wise float island is its lookup table. Above 8 bits
(9..16) codes and weights are int32, accumulators int64 and no Scaling node is fused (as in the
executor); the requantization product is exact in 128 bits, computed from two 64-bit words
(``apl_requant_wide``).

Memory: a liveness-based planner over the node schedule. Views and pass-through Scaling nodes
alias their input; element-wise ops (ReLU, LeakyRelu, Clip, requantization, lookups, float ops)
run in place on an input no later node reads when their elements do not grow; every other output is a buffer live from its producer to its last
reader, and buffers whose lifetimes do not overlap share arena bytes (greedy by size, first fit).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from . import _c_kernels, _core
from .export import _write_atomically

_OPS = _core.op_registry()
_ALIGN = 4
_C_TYPE = {"s8": "int8_t", "u8": "uint8_t", "s32": "int32_t", "s64": "int64_t", "f32": "float"}
_APL_TYPE = {"s8": "APL_S8", "u8": "APL_U8", "s32": "APL_S32", "s64": "APL_S64"}
_SIZE = {"s8": 1, "u8": 1, "s32": 4, "s64": 8, "f32": 4}
_NP_TYPE = {"s8": np.int8, "u8": np.uint8, "s32": np.int32, "s64": np.int64, "f32": np.float32}
# float ops the C export writes with allow_float=True (apl_float_kernels.c)
_C_FLOAT_OPS = ("Softmax", "Sigmoid", "Tanh")
# Every op the export writes and the attributes it reads or knows to be harmless: anything else
# (an op or attribute added to the registry later, e.g. by a new importer row) is refused by
# name rather than exported with the wrong meaning.
_WINDOW = {"kernel_shape", "strides", "pads", "dilations", "auto_pad"}
_KNOWN_ATTRIBUTES = {
    "Input": {"shape"}, "Scaling": set(),
    "Conv": _WINDOW | {"group"},
    "ConvTranspose": _WINDOW | {"group", "output_padding", "output_shape"},
    "MaxPool": _WINDOW | {"ceil_mode", "storage_order"},
    "AveragePool": _WINDOW | {"ceil_mode", "count_include_pad"},
    "GlobalAveragePool": set(),
    "Gemm": {"alpha", "beta", "transA", "transB"},  # folded into the params at import
    "Relu": set(), "LeakyRelu": {"alpha"}, "Clip": {"min", "max"},
    "Add": set(), "Sub": set(), "Mul": set(), "Sum": set(), "PRelu": set(),
    # data movement of codes (apl_gather); Resize: its float island (linear) is refused as a float op
    "Transpose": {"perm"}, "Slice": {"starts", "ends", "axes", "steps"},
    "Resize": {"mode", "coordinate_transformation_mode", "nearest_mode", "scales", "sizes", "roi",
               "cubic_coeff_a", "exclude_outside", "extrapolation_value",
               "antialias", "keep_aspect_ratio_policy"},  # the importer refuses their other values
    "Pad": {"pads", "value", "mode"}, "Concat": {"axis"},
    # views: the same bytes under another per-sample shape (NCHW is contiguous)
    "Flatten": {"axis"}, "Reshape": {"shape", "allowzero"}, "Identity": set(),
    "Dropout": {"ratio", "training_mode", "seed"}, "Squeeze": {"axes"}, "Unsqueeze": {"axes"},
    # float ops (lookup tables, or C float code with allow_float)
    "Softmax": {"axis"}, "Sigmoid": set(), "Tanh": set(),
    # element-wise islands, always lookup tables (their attributes are in the table)
    "HardSigmoid": {"alpha", "beta"}, "HardSwish": set(), "Elu": {"alpha"}, "Selu": {"alpha", "gamma"},
    "Softplus": set(), "Erf": set(), "Exp": set(), "Log": set(), "Sqrt": set(), "Neg": set(), "Abs": set(),
    "Reciprocal": set(),
}
_VIEW_OPS = ("Flatten", "Reshape", "Identity", "Dropout", "Squeeze", "Unsqueeze")
# copies into a new buffer, element by element (the registry calls them views of the codes)
_GATHER_OPS = ("Transpose", "Slice", "Resize")
_C_TYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int32_t": 4, "int64_t": 8}
_INPLACE_OPS = {"Relu", "LeakyRelu", "Clip", "Scaling"}


@dataclass
class Buffer:
    """One arena allocation: live from step `start` to step `end` (both inclusive)."""
    index: int
    size: int
    start: int
    end: int
    offset: int = -1
    tensors: list = field(default_factory=list)


@dataclass
class MemoryPlan:
    buffers: list
    arena_bytes: int
    naive_bytes: int        # sum of all activation buffers, no sharing nor in-place
    lower_bound: int        # max over the schedule of the bytes of live buffers
    steps: int

    def live_at(self, step):
        return [b for b in self.buffers if b.start <= step <= b.end]


def plan_memory(buffers, steps, align=_ALIGN) -> MemoryPlan:
    """Offsets for buffers (sizes and [start, end] lifetimes): greedy by size, first fit; offsets
    and the arena size are multiples of `align` bytes."""
    placed = []
    for b in sorted(buffers, key=lambda b: (-b.size, b.start, b.index)):
        busy = sorted((p.offset, p.offset + p.size) for p in placed if p.start <= b.end and b.start <= p.end)
        offset = 0
        for lo, hi in busy:
            if offset + b.size <= lo:
                break
            offset = max(offset, _aligned(hi, align))
        b.offset = offset
        placed.append(b)
    arena = max((b.offset + b.size for b in buffers), default=0)
    bound = max((sum(b.size for b in buffers if b.start <= s <= b.end) for s in range(steps)), default=0)
    naive = sum(sum(t.nbytes for t in b.tensors) for b in buffers)
    return MemoryPlan(buffers, _aligned(arena, align), naive, bound, steps)


def _aligned(n, align=_ALIGN):
    return (n + align - 1) // align * align


@dataclass
class Tensor:
    node: str
    dtype: str
    shape: list
    buffer: object = None     # Buffer, or "input" for the caller's input codes
    nbytes: int = 0


class _CExporter:
    def __init__(self, graph, name, allow_float=False):
        self.g = graph
        self.name = name
        self.allow_float = allow_float
        self.uses_float = False  # a float op was written: apl_float_kernels.c joins the network
        self.nodes = graph.nodes()
        self.by_name = {n.name: n for n in self.nodes}
        self.step = {n.name: i for i, n in enumerate(self.nodes)}
        self.options = graph.quantization
        self.wide = (graph.nb_bits or 0) > 8      # int32 codes, int64 accumulators
        self.acc = "s64" if self.wide else "s32"
        self.tensors = {}
        self.buffers = []
        self.weights = []        # (c name, c type, flat integer array)
        self.body = []           # statements of <name>_run
        self.statics = []        # geometry and requantization records
        self._last_use = {}

    # ---- checks and types ------------------------------------------------------------------

    def check(self):
        g = self.g
        if not g.is_quantized:
            raise ValueError("export_c needs a quantized graph (run quantize_network first)")
        if self.options.get("no_quant"):
            raise ValueError("a no_quant graph holds no integers: quantize without no_quant to export")
        for n in self.nodes:
            q = n.quant
            if not (q.get("kept_float") or (q.get("island") and len(q.get("lut", [])) == 0)):
                continue
            where = ("runs in float after the output dequantization (kept_float)" if q.get("kept_float")
                     else "is a float island without a lookup table")
            if not self.allow_float:
                raise NotImplementedError(
                    f"export_c: node '{n.name}' ({n.op}) {where}; the C export is integers only: pass "
                    "allow_float=True (CLI --allow-float) to write it as C float code, or remove it "
                    "(e.g. a final Softmax) before exporting")
            if n.op not in _C_FLOAT_OPS or len(n.inputs) != 1 or n.params:
                raise NotImplementedError(
                    f"export_c: node '{n.name}' ({n.op}) {where}, and the C export has no float kernel "
                    f"for it (allow_float writes {', '.join(_C_FLOAT_OPS)} of one input)")

    def code_type(self, node):
        if self.wide:
            return "s32"
        return "u8" if node.quant["unsigned"] and self.options.get("optimize_signs") else "s8"

    def fused_scaling(self, node):
        # as the executor: no fused stage above 8 bits, nor where border offsets come between
        if not _OPS[node.op]["affine"] or self.wide or len(node.quant["border_offset"]):
            return None
        users = self.g.consumers(node.name)
        if len(users) != 1:
            return None
        s = self.by_name[users[0]]
        return s if s.op == "Scaling" and not s.quant["dequantize_point"] else None

    # ---- liveness ----------------------------------------------------------------------------

    def aliases_input(self, node):
        """True when the node's output is its input's storage (views, pass-through Scaling)."""
        if _OPS[node.op]["view"]:
            return node.op not in _GATHER_OPS
        if node.op == "Scaling":
            producer = self.by_name[node.inputs[0]]
            return bool(node.quant["dequantize_point"]) or self.fused_scaling(producer) is node
        return False

    def last_use(self, name):
        """Last step reading node `name`'s value, following aliases (graph outputs: the end)."""
        memo = self._last_use
        if name in memo:
            return memo[name]
        end = len(self.nodes) if name in self.g.outputs else self.step[name]
        for user in self.g.consumers(name):
            u = self.by_name[user]
            end = max(end, self.last_use(user) if self.aliases_input(u) else self.step[user])
        memo[name] = end
        return end

    def new_tensor(self, node, dtype, shape=None, inplace_of=None):
        shape = list(node.shape if shape is None else shape)
        t = Tensor(node.name, dtype, shape, nbytes=int(np.prod(shape)) * _SIZE[dtype])
        end = self.last_use(node.name)
        # in place: the input is read for the last time here, and elements do not grow (the
        # kernels walk forward, so element i is read before any byte of it is overwritten)
        if inplace_of is not None and isinstance(inplace_of.buffer, Buffer) \
                and inplace_of.buffer.end == self.step[node.name] and inplace_of.buffer.size >= t.nbytes \
                and _SIZE[inplace_of.dtype] >= _SIZE[dtype]:
            b = inplace_of.buffer
            b.end = max(b.end, end)
        else:
            b = Buffer(len(self.buffers), t.nbytes, self.step[node.name], end)
            self.buffers.append(b)
        t.buffer = b
        b.tensors.append(t)
        self.tensors[node.name] = t
        return t

    def alias(self, node, src, dtype=None):
        t = Tensor(node.name, dtype or src.dtype, list(node.shape), src.buffer, 0)
        if isinstance(src.buffer, Buffer):
            src.buffer.end = max(src.buffer.end, self.last_use(node.name))
        self.tensors[node.name] = t
        return t

    # ---- code generation helpers -------------------------------------------------------------

    def ptr(self, t):
        if t.buffer == "input":
            return "input"
        return f"(apl_arena + {t.buffer.index if t.buffer.offset < 0 else t.buffer.offset})"

    def typed(self, t, const=False):
        return f"({'const ' if const else ''}{_C_TYPE[t.dtype]}*){self._ptr_token(t)}"

    def _ptr_token(self, t):
        return "input" if t.buffer == "input" else f"@B{t.buffer.index}@"

    def add_weights(self, cname, ctype, array):
        self.weights.append((cname, ctype, np.asarray(array).ravel()))
        return cname

    def geometry(self, cname, **kw):
        fields = ["C", "H", "W", "K", "OH", "OW", "R", "S", "stride_h", "stride_w", "pad_top",
                  "pad_left", "dil_h", "dil_w", "groups"]
        vals = ", ".join(str(int(kw.get(f, 1 if f in ("stride_h", "stride_w", "dil_h", "dil_w", "groups") else 0)))
                         for f in fields)
        self.statics.append(f"static const apl_geom_t {cname} = {{{vals}}};")
        return f"&{cname}"

    def requant(self, cname, scaling, channels):
        mult = scaling.quant["multiplier"]
        if not mult:
            raise ValueError(f"export_c: Scaling node '{scaling.name}' has no requantization multiplier")
        m = np.array([p[0] for p in mult], np.int64)
        s = np.array([p[1] for p in mult], np.int64)
        if np.any(s < 0) or np.any(s > 62) or np.any(m < 0) or np.any(m >= 2 ** 31):
            raise ValueError(f"export_c: Scaling node '{scaling.name}': multiplier/shift out of range")
        per_channel = len(mult) != 1 and not (np.all(m == m[0]) and np.all(s == s[0]))
        if not per_channel:
            m, s = m[:1], s[:1]
        elif len(mult) != channels:
            raise ValueError(f"export_c: Scaling node '{scaling.name}': {len(mult)} multipliers for {channels} channels")
        # all multipliers 1 (single shift): no multiplier array, the kernel shifts only
        mn = "0" if np.all(m == 1) else f"{self.name}_" + self.add_weights(f"{cname}_m", "int32_t", m)
        sn = self.add_weights(f"{cname}_s", "uint8_t", s)
        lo, hi = int(scaling.quant["lo"]), int(scaling.quant["hi"])
        self.statics.append(f"static const apl_rq_t {cname} = {{{mn}, {self.name}_{sn}, "
                            f"{int(per_channel)}, {lo}, {hi}}};")
        return f"&{cname}"

    def zero_point_of(self, name):
        """The zero point of the codes a node carries: that of the node above its reshapes."""
        node = self.by_name[name]
        while _OPS[node.op]["view"] and node.inputs:
            node = self.by_name[node.inputs[0]]
        return int(node.quant["zero_point"])

    def scratch(self, node, part, dtype, shape):
        """A buffer of this step only."""
        t = Tensor(f"{node.name}.{part}", dtype, list(shape), nbytes=int(np.prod(shape)) * _SIZE[dtype])
        b = Buffer(len(self.buffers), t.nbytes, self.step[node.name], self.step[node.name])
        self.buffers.append(b)
        t.buffer = b
        b.tensors.append(t)
        return t

    def add_offsets(self, node, idx, part, offsets, count, y):
        """y (int32, `count` values) += offsets, one per channel of equal blocks (or one)."""
        offsets = np.asarray(offsets, np.int64).ravel()
        on = self.add_weights(f"{part}{idx}", "int32_t", offsets)
        self.emit(node, f"apl_offset({offsets.size}, {count // offsets.size}, {self.name}_{on}, {self.typed(y)});")

    def emit(self, node, stmt):
        self.body.append(f"  /* {node.op} {node.name} */")
        self.body.append(f"  {stmt}")

    # ---- ops ---------------------------------------------------------------------------------

    def window(self, node, x_shape, weight_shape=None):
        """The window of a Conv / pool as the importer's window_geometry (cpp/src/ops/shapes.cpp):
        1-D windows on (N, C, L) as 2-D ones of height 1, auto_pad resolved, ceil_mode=1 as extra
        end padding; refuses what the C kernels do not implement, naming it."""
        a = node.attributes
        who = f"export_c: {node.op} '{node.name}'"
        auto_pad = a.get("auto_pad", "NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else (auto_pad or "NOTSET")
        if len(x_shape) not in (2, 3):
            raise NotImplementedError(f"{who}: input of shape {tuple(x_shape)} per sample: only 1-D and 2-D "
                                      "windows ((N, C, L), (N, C, H, W)) are exported")
        one_d = len(x_shape) == 2
        rank = 1 if one_d else 2
        kernel = list(weight_shape[2:]) if weight_shape is not None else list(a.get("kernel_shape", []))
        strides = list(a.get("strides", [1] * rank))
        dil = list(a.get("dilations", [1] * rank))
        pads = list(a.get("pads", [0] * 2 * rank))
        if len(kernel) != rank or len(strides) != rank or len(dil) != rank or len(pads) != 2 * rank:
            raise NotImplementedError(f"{who}: kernel_shape {kernel}, strides {strides}, dilations {dil}, "
                                      f"pads {pads}: only 1-D and 2-D windows are exported")
        if one_d:  # as the importer: height 1
            kernel, strides, dil, pads = [1] + kernel, [1] + strides, [1] + dil, [0, pads[0], 0, pads[1]]
            C, H, W = x_shape[0], 1, x_shape[1]
        else:
            C, H, W = x_shape
        extent = [dil[i] * (kernel[i] - 1) + 1 for i in range(2)]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            for i, size in enumerate((H, W)):
                out = (size - 1) // strides[i] + 1
                total = max(0, (out - 1) * strides[i] + extent[i] - size)
                small, big = total // 2, total - total // 2
                pads[i], pads[i + 2] = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        elif auto_pad != "NOTSET":
            raise NotImplementedError(f"{who}: auto_pad '{auto_pad}' is not exported")
        model_pads = list(pads)
        if int(a.get("ceil_mode", 0)) != 0:
            # the output length rounded up, no last window starting in the end padding: the
            # missing cells are extra end padding (counted neither as input nor as padding)
            for i, size in enumerate((H, W)):
                span = size + pads[i] + pads[i + 2] - extent[i]
                if span < 0:
                    continue
                out = (span + strides[i] - 1) // strides[i] + 1
                if (out - 1) * strides[i] >= size + pads[i]:
                    out -= 1
                pads[i + 2] += max(0, (out - 1) * strides[i] + extent[i] - (size + pads[i] + pads[i + 2]))
        OH = (H + pads[0] + pads[2] - extent[0]) // strides[0] + 1
        OW = (W + pads[1] + pads[3] - extent[1]) // strides[1] + 1
        expected = [OW] if one_d else [OH, OW]
        if list(node.shape[1:]) != expected or len(node.shape) != rank + 1:
            raise NotImplementedError(f"{who}: the window gives {'x'.join(map(str, expected))} outputs, the graph "
                                      f"{tuple(node.shape)}: an attribute the export does not know changes the geometry")
        geo = dict(C=C, H=H, W=W, K=node.shape[0], OH=OH, OW=OW, R=kernel[0], S=kernel[1],
                   stride_h=strides[0], stride_w=strides[1], pad_top=pads[0], pad_left=pads[1],
                   dil_h=dil[0], dil_w=dil[1], groups=a.get("group", 1))
        if node.op == "AveragePool":
            geo["count_weights"] = self.average_pool_weights(node, geo, model_pads)
        return geo

    def average_pool_weights(self, node, geo, model_pads):
        """None when every window is divided by its size; else the executor's per-cell weights
        D / count (BorderWeightedSumKernel, avgpool_border_kernels.cpp): D = lcm(1..R) * lcm(1..S)
        and the Scaling node after the pool divides by D."""
        a = node.attributes
        auto_pad = a.get("auto_pad", "NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else (auto_pad or "NOTSET")
        include_pad = int(a.get("count_include_pad", 0)) != 0
        varies = int(a.get("ceil_mode", 0)) != 0 or (
            not include_pad and (auto_pad in ("SAME_UPPER", "SAME_LOWER") or
                                 (auto_pad != "VALID" and any(int(p) for p in a.get("pads", [])))))
        if not varies:
            return None
        divisor = 1
        for k in a.get("kernel_shape", []):
            divisor *= math.lcm(*range(1, int(k) + 1))
        if divisor > 1 << 23:
            raise NotImplementedError(f"export_c: AveragePool '{node.name}': divisor {divisor} has no exact integer form")

        def taps_inside(o, stride, pad, d, taps, size):
            return sum(0 <= o * stride - pad + t * d < size for t in range(taps))

        g = geo
        padded_h = g["H"] + model_pads[0] + model_pads[2]
        padded_w = g["W"] + model_pads[1] + model_pads[3]
        weights = []
        for oh in range(g["OH"]):
            rows = (taps_inside(oh, g["stride_h"], 0, g["dil_h"], g["R"], padded_h) if include_pad
                    else taps_inside(oh, g["stride_h"], g["pad_top"], g["dil_h"], g["R"], g["H"]))
            for ow in range(g["OW"]):
                cols = (taps_inside(ow, g["stride_w"], 0, g["dil_w"], g["S"], padded_w) if include_pad
                        else taps_inside(ow, g["stride_w"], g["pad_left"], g["dil_w"], g["S"], g["W"]))
                if rows * cols == 0 or divisor % (rows * cols):
                    raise NotImplementedError(f"export_c: AveragePool '{node.name}': a window of {rows}x{cols} "
                                              f"taps does not divide {divisor}")
                weights.append(divisor // (rows * cols))
        return weights

    def op_affine(self, node, idx):
        x = self.tensors[node.inputs[0]]
        if x.dtype not in (("s32",) if self.wide else ("s8", "u8")):
            raise NotImplementedError(f"export_c: {node.op} '{node.name}' reads {x.dtype} values, not codes")
        w, b = node.params
        wt, bt = (np.int32, np.int64) if self.wide else (np.int8, np.int32)
        if w.dtype != wt or b.dtype != bt:
            raise ValueError(f"export_c: {node.op} '{node.name}': weights {w.dtype}/{b.dtype}, expected "
                             f"{np.dtype(wt).name}/{np.dtype(bt).name}")
        if node.op == "Conv":
            geo = self.window(node, x.shape, w.shape)
        elif node.op == "ConvTranspose":
            geo, x = self.spread_out(node, idx, x, w.shape)
        else:
            geo = dict(C=int(np.prod(x.shape)), H=1, W=1, K=w.shape[0], OH=1, OW=1, R=1, S=1)
            if w.shape[1] != geo["C"]:
                raise ValueError(f"export_c: Gemm '{node.name}': weights {w.shape} for {geo['C']} inputs")
        gname = self.geometry(f"geo{idx}", **geo)
        if self.wide:
            wn = self.add_weights(f"w{idx}", "int32_t", w)
            bn = self.add_weights(f"b{idx}", "int64_t", b)
            y = self.new_tensor(node, "s64")
            self.emit(node, f"apl_conv_wide({gname}, {self.typed(x, True)}, {self.name}_{wn}, {self.name}_{bn}, "
                            f"{self.typed(y)});")
            return
        wn = self.add_weights(f"w{idx}", "int8_t", w)
        # zero points: the Scaling node's accumulator offset is part of the bias (as the executor)
        offset = np.asarray(self.by_name[self.g.consumers(node.name)[0]].quant["acc_offset"], np.int64)
        bn = self.add_weights(f"b{idx}", "int32_t", b.astype(np.int64) + offset if offset.size else b)
        s = self.fused_scaling(node)
        if s is not None:
            y = self.new_tensor(node, self.code_type(s))
            rq = self.requant(f"rq{idx}", s, geo["K"])
        else:
            y = self.new_tensor(node, "s32")
            rq = "0"
        fn = "apl_conv_u8" if x.dtype == "u8" else "apl_conv_s8"
        self.emit(node, f"{fn}({gname}, {self.typed(x, True)}, {self.name}_{wn}, {self.name}_{bn}, "
                        f"{self._ptr_token(y)}, {_APL_TYPE[y.dtype]}, {rq});")
        border = node.quant["border_offset"]
        if len(border):  # the padding taps' share of the input's zero point
            self.add_offsets(node, idx, "bo", border, len(border), y)

    def spread_out(self, node, idx, x, weight_shape):
        """ConvTranspose as the executor runs it (conv_transpose_op_kernels.cpp): the input codes
        spread by the strides into a zero plane (apl_spread, a buffer of this step only), then a
        stride-1 Conv with the weights the importer holds flipped. Returns the Conv's geometry and
        the spread tensor; the geometry follows conv_transpose_geometry (shapes.cpp)."""
        a = node.attributes
        who = f"export_c: ConvTranspose '{node.name}'"
        if len(x.shape) not in (2, 3):
            raise NotImplementedError(f"{who}: input of shape {tuple(x.shape)} per sample: only 1-D and 2-D are exported")
        one_d = len(x.shape) == 2
        rank = 1 if one_d else 2

        def as_2d(v, fill):
            v = [int(e) for e in v]
            return [fill] + v if one_d and len(v) == 1 else v

        kernel = as_2d(weight_shape[2:], 1)
        strides = as_2d(a.get("strides", [1] * rank), 1)
        dil = as_2d(a.get("dilations", [1] * rank), 1)
        out_pad = as_2d(a.get("output_padding", [0] * rank), 0)
        pads = [int(p) for p in a.get("pads", [0] * 2 * rank)]
        if one_d and len(pads) == 2:
            pads = [0, pads[0], 0, pads[1]]
        auto_pad = _text(a.get("auto_pad"), "NOTSET")
        if auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        elif auto_pad != "NOTSET":
            raise NotImplementedError(f"{who}: auto_pad '{auto_pad}' is not exported")
        if len(kernel) != 2 or len(strides) != 2 or len(dil) != 2 or len(out_pad) != 2 or len(pads) != 4:
            raise NotImplementedError(f"{who}: strides {strides}, dilations {dil}, pads {pads}: not a 1-D or 2-D window")
        C = x.shape[0]
        size = [1 if one_d else x.shape[1], x.shape[-1]]
        full = [strides[i] * (size[i] - 1) + dil[i] * (kernel[i] - 1) + 1 + out_pad[i] for i in range(2)]
        if "output_shape" in a:  # pads follow from the requested size (ONNX's rule)
            target = [int(v) for v in a["output_shape"]]
            if len(target) == rank + 2:
                target = target[2:]
            target = [full[0]] + target if one_d and len(target) == 1 else target
            for i in range(2):
                total = full[i] - target[i]
                pads[i], pads[i + 2] = total - total // 2, total // 2
        out_h, out_w = full[0] - pads[0] - pads[2], full[1] - pads[1] - pads[3]
        if list(node.shape) != ([weight_shape[0], out_w] if one_d else [weight_shape[0], out_h, out_w]):
            raise NotImplementedError(f"{who}: the export computes {out_h}x{out_w} outputs, the graph "
                                      f"{tuple(node.shape)}: an attribute the export does not know changes the geometry")
        H, W = out_h + dil[0] * (kernel[0] - 1), out_w + dil[1] * (kernel[1] - 1)
        off_h, off_w = dil[0] * (kernel[0] - 1) - pads[0], dil[1] * (kernel[1] - 1) - pads[1]
        spread = Tensor(node.name + ".spread", x.dtype, [C, H, W], nbytes=C * H * W * _SIZE[x.dtype])
        b = Buffer(len(self.buffers), spread.nbytes, self.step[node.name], self.step[node.name])
        self.buffers.append(b)
        spread.buffer = b
        b.tensors.append(spread)
        self.emit(node, f"apl_spread({C}, {size[0]}, {size[1]}, {H}, {W}, {off_h}, {off_w}, {strides[0]}, "
                        f"{strides[1]}, {_SIZE[x.dtype]}, {self._ptr_token(x)}, {self._ptr_token(spread)});")
        geo = dict(C=C, H=H, W=W, K=weight_shape[0], OH=out_h, OW=out_w, R=kernel[0], S=kernel[1],
                   dil_h=dil[0], dil_w=dil[1], groups=int(a.get("group", 1)))
        return geo, spread

    def op_scaling(self, node, idx):
        x = self.tensors[node.inputs[0]]
        producer = self.by_name[node.inputs[0]]
        offset = node.quant["acc_offset"] if not _OPS[producer.op]["affine"] else []  # else in the bias
        if len(offset):
            if node.quant["dequantize_point"]:
                raise NotImplementedError(f"export_c: Scaling '{node.name}': a zero point offset at a dequantization "
                                          "point after a non-affine node is not exported")
            count = int(np.prod(node.shape))
            if x.dtype != "s32" or self.g.consumers(producer.name) != [node.name]:  # codes, or read elsewhere
                acc = self.scratch(node, "acc", "s32", node.shape)
                self.emit(node, f"apl_unzero({count}, {self._ptr_token(x)}, {_APL_TYPE[x.dtype]}, 0, {self.typed(acc)});")
                x = acc
            self.add_offsets(node, idx, "ao", offset, count, x)
        if self.aliases_input(node):
            self.alias(node, x)
            return
        y = self.new_tensor(node, self.code_type(node), inplace_of=x)
        channels = node.shape[0] if len(node.shape) > 0 else 1
        inner = int(np.prod(node.shape)) // channels
        rq = self.requant(f"rq{idx}", node, channels)
        if self.wide:
            self.emit(node, f"apl_requantize_wide({channels}, {inner}, {self._ptr_token(x)}, {_APL_TYPE[x.dtype]}, "
                            f"{rq}, {self.typed(y)});")
            return
        self.emit(node, f"apl_requantize({channels}, {inner}, {self._ptr_token(x)}, {_APL_TYPE[x.dtype]}, {rq}, "
                        f"{self._ptr_token(y)}, {_APL_TYPE[y.dtype]});")

    def op_pointwise(self, node, idx):
        x = self.tensors[node.inputs[0]]
        y = self.new_tensor(node, x.dtype, inplace_of=x)
        n = int(np.prod(node.shape))
        args = f"{n}, {self._ptr_token(x)}, {self._ptr_token(y)}, {_APL_TYPE[x.dtype]}"
        a = node.attributes
        if node.op == "Relu":
            self.emit(node, f"apl_relu({args});")
        elif node.op == "LeakyRelu":
            alpha = float(a.get("alpha", 0.01))
            m, s = _encode_multiplier(abs(np.float32(alpha)))
            self.emit(node, f"apl_leaky_relu({args}, {m}, {s}, {int(alpha < 0)});")
        else:  # Clip, bounds in codes
            lo = float(np.float32(a.get("min", -3.4e38)))
            hi = float(np.float32(a.get("max", 3.4e38)))
            lo_i = int(np.ceil(max(-4.0e18, lo)))
            hi_i = int(np.floor(min(4.0e18, hi)))
            self.emit(node, f"apl_clip({args}, {_c_int64(lo_i)}, {_c_int64(hi_i)});")

    def op_pool(self, node, idx):
        x = self.tensors[node.inputs[0]]
        if x.dtype not in ("s8", "u8") and not (self.wide and x.dtype == "s32"):
            raise NotImplementedError(f"export_c: {node.op} '{node.name}' reads {x.dtype} values, not codes")
        if node.op == "GlobalAveragePool":
            if len(x.shape) not in (2, 3):
                raise NotImplementedError(f"export_c: GlobalAveragePool '{node.name}': input of shape "
                                          f"{tuple(x.shape)} per sample: only (N, C, L) and (N, C, H, W) are exported")
            y = self.new_tensor(node, self.acc)
            C, HW = x.shape[0], int(np.prod(x.shape[1:]))
            self.emit(node, f"apl_global_sumpool({C}, {HW}, {self._ptr_token(x)}, {_APL_TYPE[x.dtype]}, "
                            f"{self._ptr_token(y)}, {_APL_TYPE[y.dtype]});")
            return
        geo = self.window(node, x.shape)
        geo["groups"] = 1
        weights = geo.pop("count_weights", None)
        gname = self.geometry(f"geo{idx}", **geo)
        if node.op == "MaxPool":
            y = self.new_tensor(node, x.dtype)
            self.emit(node, f"apl_maxpool({gname}, {self._ptr_token(x)}, {self._ptr_token(y)}, {_APL_TYPE[x.dtype]});")
        else:
            y = self.new_tensor(node, self.acc)
            self.emit(node, f"apl_sumpool({gname}, {self._ptr_token(x)}, {_APL_TYPE[x.dtype]}, "
                            f"{self._ptr_token(y)}, {_APL_TYPE[y.dtype]});")
            if weights is not None:  # a divisor per output cell: sums times D / count
                wn = self.add_weights(f"aw{idx}", "int32_t", np.array(weights, np.int64))
                self.emit(node, f"apl_weigh({geo['C']}, {len(weights)}, {self.name}_{wn}, {self._ptr_token(y)}, "
                                f"{_APL_TYPE[y.dtype]});")

    def broadcast_strides(self, node, x):
        """Element strides of operand x over node's output axes, 0 where it broadcasts (numpy
        rules, as cpp/src/kernels/broadcast_plan.hpp; the batch axis is never broadcast)."""
        out = list(node.shape)
        if len(x.shape) != len(out):
            raise NotImplementedError(f"export_c: {node.op} '{node.name}': operand '{x.node}' of shape "
                                      f"{tuple(x.shape)} per sample has another rank than the output "
                                      f"{tuple(out)}: only operands of the output's rank are exported")
        strides, step = [0] * len(out), 1
        for d in reversed(range(len(out))):
            if x.shape[d] == out[d]:
                strides[d] = step
            elif x.shape[d] != 1:
                raise ValueError(f"export_c: {node.op} '{node.name}': operand '{x.node}' of shape "
                                 f"{tuple(x.shape)} does not broadcast to {tuple(out)}")
            step *= x.shape[d]
        return strides

    def broadcast_args(self, node, idx, part, a_strides, b_strides):
        """The geometry statics of one apl_broadcast call: dims and both operands' strides."""
        dims = list(node.shape) or [1]
        a_strides, b_strides = a_strides or [0], b_strides or [0]
        name = f"bc{idx}_{part}"
        for suffix, vals in (("d", dims), ("a", a_strides), ("b", b_strides)):
            self.statics.append(f"static const int32_t {name}{suffix}[{len(vals)}] = {{{', '.join(map(str, vals))}}};")
        return f"{len(dims)}, {name}d, {name}a, {name}b"

    def op_binary(self, node, idx):
        if len(node.inputs) != 2 or node.params:
            raise NotImplementedError(f"export_c: {node.op} '{node.name}' with a constant operand is not supported")
        a, b = (self.tensors[i] for i in node.inputs)
        zero = [self.zero_point_of(i) for i in node.inputs]
        y = self.new_tensor(node, self.acc)
        if any(zero):  # a product of codes with zero points: of (code - z), in int32 (as the executor)
            operands = []
            for k, (t, z) in enumerate(zip((a, b), zero)):
                u = self.scratch(node, f"operand{k}", "s32", t.shape)
                self.emit(node, f"apl_unzero({int(np.prod(t.shape))}, {self._ptr_token(t)}, {_APL_TYPE[t.dtype]}, {z}, "
                                f"{self.typed(u)});")
                operands.append(u)
            a, b = operands
        op = {"Add": 0, "Sub": 1, "Mul": 2}[node.op]
        if a.shape == list(node.shape) and b.shape == list(node.shape):
            self.emit(node, f"apl_binary({op}, {int(np.prod(node.shape))}, {self._ptr_token(a)}, {_APL_TYPE[a.dtype]}, "
                            f"{self._ptr_token(b)}, {_APL_TYPE[b.dtype]}, {self._ptr_token(y)}, {_APL_TYPE[y.dtype]});")
            return
        geo = self.broadcast_args(node, idx, 0, self.broadcast_strides(node, a), self.broadcast_strides(node, b))
        self.emit(node, f"apl_broadcast({op}, {geo}, {self._ptr_token(a)}, {_APL_TYPE[a.dtype]}, "
                        f"{self._ptr_token(b)}, {_APL_TYPE[b.dtype]}, {self._ptr_token(y)}, {_APL_TYPE[y.dtype]});")

    def op_sum(self, node, idx):
        """n-ary Sum: the accumulator is the first input (broadcast), then each other input added in
        place, every step narrowed to the accumulator's width as the executor (IntSumKernel)."""
        xs = [self.tensors[i] for i in node.inputs]
        if node.params:
            raise NotImplementedError(f"export_c: Sum '{node.name}' with a constant operand is not supported")
        y = self.new_tensor(node, self.acc)
        own = self.broadcast_strides(node, Tensor(node.name, y.dtype, list(node.shape)))
        for part, x in enumerate(xs):
            geo = self.broadcast_args(node, idx, part, own, self.broadcast_strides(node, x))
            self.emit(node, f"apl_broadcast({3 if part == 0 else 0}, {geo}, {self._ptr_token(y)}, {_APL_TYPE[y.dtype]}, "
                            f"{self._ptr_token(x)}, {_APL_TYPE[x.dtype]}, {self._ptr_token(y)}, {_APL_TYPE[y.dtype]});")

    def op_prelu(self, node, idx):
        """Codes kept on the positive side, the negative side times the channel's (or the one)
        slope with one rounding: the executor's IntPReluKernel."""
        x = self.tensors[node.inputs[0]]
        if x.dtype not in ("s8", "u8", "s32"):
            raise NotImplementedError(f"export_c: PRelu '{node.name}' reads {x.dtype} values, not codes")
        slope = np.asarray(node.params[0], np.float32).ravel()
        channels = node.shape[0] if len(node.shape) > 0 else 1
        if slope.size not in (1, channels):
            raise NotImplementedError(f"export_c: PRelu '{node.name}': {slope.size} slopes for {channels} channels "
                                      "(only one per channel or a scalar has an integer form)")
        enc = [_encode_multiplier(abs(float(v))) for v in slope]
        mn = self.add_weights(f"pm{idx}", "int32_t", np.array([m for m, _ in enc], np.int64))
        sn = self.add_weights(f"ps{idx}", "uint8_t", np.array([s for _, s in enc], np.int64))
        nn = self.add_weights(f"pn{idx}", "uint8_t", (slope < 0).astype(np.int64))
        y = self.new_tensor(node, x.dtype, inplace_of=x)
        inner = int(np.prod(node.shape)) // channels
        self.emit(node, f"apl_prelu({channels}, {inner}, {self._ptr_token(x)}, {self._ptr_token(y)}, "
                        f"{_APL_TYPE[x.dtype]}, {self.name}_{mn}, {self.name}_{sn}, {self.name}_{nn}, "
                        f"{int(slope.size > 1)});")

    def op_pad(self, node, idx):
        x = self.tensors[node.inputs[0]]
        pads = list(node.attributes.get("pads", []))
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or any(p < 0 for p in pads):
            raise NotImplementedError(f"export_c: Pad '{node.name}': only non-negative spatial pads of a 4-D tensor")
        if float(node.attributes.get("value", 0.0)) != 0.0:
            raise NotImplementedError(f"export_c: Pad '{node.name}': non-zero pad value")
        mode = node.attributes.get("mode", "constant")
        if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
            raise NotImplementedError(f"export_c: Pad '{node.name}': mode '{mode}' (only constant zero padding)")
        y = self.new_tensor(node, x.dtype)
        C, H, W = x.shape
        self.emit(node, f"apl_pad({C}, {H}, {W}, {pads[2]}, {pads[3]}, {node.shape[1]}, {node.shape[2]}, "
                        f"{_SIZE[x.dtype]}, {self._ptr_token(x)}, {self._ptr_token(y)});")

    def op_concat(self, node, idx):
        xs = [self.tensors[i] for i in node.inputs]
        if len({x.dtype for x in xs}) != 1:
            raise NotImplementedError(f"export_c: Concat '{node.name}' joins codes of different types")
        axis = int(node.attributes.get("axis", 1))
        if axis < 0:
            axis += len(node.shape) + 1
        if axis < 1:
            raise NotImplementedError(f"export_c: Concat '{node.name}' along the batch axis")
        y = self.new_tensor(node, xs[0].dtype)
        elem = _SIZE[y.dtype]
        outer = int(np.prod(node.shape[:axis - 1]))
        inner = int(np.prod(node.shape[axis:])) * elem
        offset = 0
        for x in xs:
            nb = x.shape[axis - 1] * inner
            self.emit(node, f"apl_concat_part({outer}, {nb}, {offset}, {node.shape[axis - 1] * inner}, "
                            f"{self._ptr_token(x)}, {self._ptr_token(y)});")
            offset += nb

    def op_lookup(self, node, idx):
        """Element-wise float island: its lookup table of input codes (integers, exact)."""
        x = self.tensors[node.inputs[0]]
        if x.dtype not in ("s8", "u8", "s32"):
            raise NotImplementedError(f"export_c: {node.op} '{node.name}' reads {x.dtype} values, not codes")
        lut = np.asarray(node.quant["lut"], np.int32)
        y = self.new_tensor(node, "s32", inplace_of=x)
        tn = self.add_weights(f"lut{idx}", "int32_t", lut)
        self.emit(node, f"apl_lookup({int(np.prod(node.shape))}, {self._ptr_token(x)}, {_APL_TYPE[x.dtype]}, "
                        f"{int(node.quant['lut_first_code'])}, {lut.size - 1}, {self.name}_{tn}, {self.typed(y)});")

    def op_float(self, node, idx):
        """A float op (allow_float): dequantize its input as the executor (codes x step, or the
        dequantization point's factors), run it in float, and for an island round it into the
        next Scaling node's accumulator."""
        self.uses_float = True
        island = bool(node.quant["island"])
        producer = self.by_name[node.inputs[0]]
        x = self.tensors[node.inputs[0]]
        n = int(np.prod(node.shape))
        y = self.new_tensor(node, "s32" if island else "f32", inplace_of=x)
        yf = f"(float*){self._ptr_token(y)}"
        if x.dtype == "f32":  # the previous float op's output
            if x.buffer is not y.buffer:
                self.emit(node, f"apl_copy({n * 4}, {self._ptr_token(x)}, {self._ptr_token(y)});")
        else:
            if self.zero_point_of(producer.name):
                raise NotImplementedError(f"export_c: {node.op} '{node.name}' reads codes with a zero point: "
                                          "not written as C float code")
            if producer.quant["dequantize_point"]:
                f = np.asarray(producer.quant["factor"], np.float32).ravel()
            else:
                f = np.array([producer.quant["step"]], np.float32)
            channels = x.shape[0] if len(x.shape) > 0 else 1
            if f.size not in (1, channels):
                raise ValueError(f"export_c: {node.op} '{node.name}': {f.size} dequantization factors "
                                 f"for {channels} channels")
            vals = ", ".join(_c_float(v) for v in f)
            self.statics.append(f"static const float fq{idx}[{f.size}] = {{{vals}}};")
            self.emit(node, f"apl_dequantize({channels}, {n // channels}, {self._ptr_token(x)}, "
                            f"{_APL_TYPE[x.dtype]}, fq{idx}, {int(f.size > 1)}, {yf});")
        if node.op == "Softmax":
            rank = len(node.shape) + 1
            axis = int(node.attributes.get("axis", -1))
            axis = axis + rank if axis < 0 else axis
            if not 1 <= axis < rank:
                raise NotImplementedError(f"export_c: Softmax '{node.name}' over axis {axis}")
            outer = int(np.prod(node.shape[:axis - 1]))
            inner = int(np.prod(node.shape[axis:]))
            self.emit(node, f"apl_softmax({outer}, {node.shape[axis - 1]}, {inner}, {yf});")
        else:
            self.emit(node, f"apl_{node.op.lower()}({n}, {yf});")
        if island:
            inv = 1.0 / float(node.quant["step"])
            self.emit(node, f"apl_float_to_acc({n}, {yf}, {inv.hex()}, {self.typed(y)});")

    def op_gather(self, node, idx):
        """Transpose, Slice, nearest Resize: codes (or accumulators) copied, never computed; each
        output axis reads the input at one offset per index (apl_gather), the offsets computed here
        as the executor's plans (movement_op_kernels.cpp, slice_plan / resize_plan of shapes.cpp)."""
        x = self.tensors[node.inputs[0]]
        ins, out = list(x.shape), list(node.shape)
        who = f"export_c: {node.op} '{node.name}'"
        st = [int(np.prod(ins[d + 1:])) for d in range(len(ins))]  # contiguous element strides
        if node.op == "Transpose":
            perm = [int(p) for p in node.attributes.get("perm", [])] or list(reversed(range(len(ins) + 1)))
            if perm[0] != 0:
                raise NotImplementedError(f"{who}: perm {perm} moves the batch axis (only per-sample axes are exported)")
            tables = [[i * st[p - 1] for i in range(out[j])] for j, p in enumerate(perm[1:])]
        elif node.op == "Slice":
            tables = [[i * st[d] for i in range(ins[d])] for d in range(len(ins))]
            for d, (start, step, count) in _slice_axes(node, ins).items():
                tables[d] = [(start + i * step) * st[d] for i in range(count)]
        else:
            tables = [[i * st[0] for i in range(ins[0])]]
            tables += [[i * st[d] for i in idx_d] for d, idx_d in enumerate(_resize_nearest_indices(node, ins), 1)]
        if [len(t) for t in tables] != out:
            raise NotImplementedError(f"{who}: the export computes {[len(t) for t in tables]} outputs per axis, the "
                                      f"graph {tuple(out)}: an attribute the export does not know changes the geometry")
        if len(out) > 8:
            raise NotImplementedError(f"{who}: rank {len(out) + 1}: the C export gathers at most 8 axes per sample")
        y = self.new_tensor(node, x.dtype)
        dims, offs = out or [1], [v for t in tables for v in t] or [0]
        self.statics.append(f"static const int32_t gd{idx}[{len(dims)}] = {{{', '.join(map(str, dims))}}};")
        on = self.add_weights(f"go{idx}", "int32_t", np.array(offs, np.int64))
        self.emit(node, f"apl_gather({len(dims)}, gd{idx}, {self.name}_{on}, {_SIZE[x.dtype]}, "
                        f"{self._ptr_token(x)}, {self._ptr_token(y)});")

    # ---- driver ------------------------------------------------------------------------------

    def build(self):
        self.check()
        for idx, node in enumerate(self.nodes):
            op = node.op
            check_node_supported(node)
            if op == "Input":
                t = Tensor(node.name, self.code_type(node), list(node.shape), "input", 0)
                t.nbytes = int(np.prod(node.shape)) * _SIZE[t.dtype]
                self.tensors[node.name] = t
            elif node.quant["kept_float"] or (node.quant["island"] and len(node.quant["lut"]) == 0):
                self.op_float(node, idx)  # check() refused it unless allow_float
            elif node.quant["island"]:
                self.op_lookup(node, idx)
            elif _OPS[op]["affine"] and op in ("Conv", "Gemm", "ConvTranspose"):
                self.op_affine(node, idx)
            elif op == "Scaling":
                self.op_scaling(node, idx)
            elif op in ("Relu", "LeakyRelu", "Clip"):
                self.op_pointwise(node, idx)
            elif op in ("MaxPool", "AveragePool", "GlobalAveragePool"):
                self.op_pool(node, idx)
            elif op in ("Add", "Sub", "Mul"):
                self.op_binary(node, idx)
            elif op == "Sum":
                self.op_sum(node, idx)
            elif op == "PRelu":
                self.op_prelu(node, idx)
            elif op in _GATHER_OPS:
                self.op_gather(node, idx)
            elif op == "Pad":
                self.op_pad(node, idx)
            elif op == "Concat":
                self.op_concat(node, idx)
            elif op in _VIEW_OPS and _OPS[op]["view"]:
                self.alias(node, self.tensors[node.inputs[0]])
            else:
                raise NotImplementedError(f"export_c: op {op} (node '{node.name}') is not supported by the C export")
        self.outputs = [self.tensors[o] for o in self.g.outputs]
        for o in self.outputs:
            if o.buffer == "input":
                raise NotImplementedError(f"export_c: output '{o.node}' is the input itself")
        # int64 accumulators above 8 bits: 8-byte aligned offsets
        self.plan = plan_memory(self.buffers, len(self.nodes) + 1, align=8 if self.wide else _ALIGN)
        self.input = self.tensors[self.g.input_name]
        self.output = self.outputs[0]

    # ---- files -------------------------------------------------------------------------------

    def resolve(self, text):
        return re.sub(r"@B(\d+)@", lambda m: f"(apl_arena + {self.buffers[int(m.group(1))].offset})", text)

    def files(self):
        N, P = self.name, self.name.upper()
        inp, outs, plan = self.input, self.outputs, self.plan
        in_node = self.by_name[self.g.input_name]
        step = float(in_node.quant["step"])
        weights_bytes = sum(a.size * _C_TYPE_BYTES[t] for _, t, a in self.weights)
        self.weights_bytes = weights_bytes
        in_n = int(np.prod(inp.shape))
        several = len(outs) > 1
        out_args = [f"output{i}" if several else "output" for i in range(len(outs))]
        arith = "floating point only in the float ops allowed by allow_float" if self.uses_float \
            else "no floating point"
        files = {}
        out_decls = []
        for i, (oname, o) in enumerate(zip(self.g.outputs, outs)):
            n = int(np.prod(o.shape))
            what = "float values of the float tail" if o.dtype == "f32" else "as graph.forward(x, dequantize=False)"
            out_decls.append(f"""/* Output {i} ('{oname}'): {_C_TYPE[o.dtype]} of shape {tuple(o.shape)}, {what}. */
#define {P}_OUTPUT{i}_RANK {len(o.shape)}
#define {P}_OUTPUT{i}_SIZE {n}
typedef {_C_TYPE[o.dtype]} {N}_output{i}_t;
static const int32_t {N}_output{i}_shape[{max(1, len(o.shape))}] = {{{", ".join(map(str, o.shape)) or "1"}}};
""")
        aliases = "" if several else f"""/* The only output, unnumbered. */
#define {P}_OUTPUT_RANK {P}_OUTPUT0_RANK
#define {P}_OUTPUT_SIZE {P}_OUTPUT0_SIZE
typedef {N}_output0_t {N}_output_t;
#define {N}_output_shape {N}_output0_shape
"""
        params = ", ".join(f"{N}_output{i}_t* {a}" for i, a in enumerate(out_args))
        files[f"{N}.h"] = f"""/* {N}: integer network exported by aidge_ptq_lite (C99, no heap, {arith}). */
#ifndef {P}_H
#define {P}_H
#include <stdint.h>

/* Input: {_C_TYPE[inp.dtype]} codes of shape {tuple(inp.shape)}, in [{P}_INPUT_LO, {P}_INPUT_HI];
   code = round_half_even(x / {P}_INPUT_STEP) clamped ({N}_float.h does it). */
#define {P}_INPUT_RANK {len(inp.shape)}
#define {P}_INPUT_SIZE {in_n}
#define {P}_INPUT_LO {int(in_node.quant['lo'])}
#define {P}_INPUT_HI {int(in_node.quant['hi'])}
#define {P}_INPUT_STEP {step.hex()} /* {step!r} */
typedef {_C_TYPE[inp.dtype]} {N}_input_t;
static const int32_t {N}_input_shape[{len(inp.shape)}] = {{{", ".join(map(str, inp.shape))}}};

#define {P}_OUTPUTS {len(outs)}
{"".join(out_decls)}{aliases}
/* Memory: the static activation arena (RAM) and the constant parameters (flash). */
#define {P}_ARENA_BYTES {plan.arena_bytes}
#define {P}_NAIVE_ACTIVATION_BYTES {plan.naive_bytes}
#define {P}_WEIGHTS_BYTES {weights_bytes}

/* Runs the network on one sample: `input` codes -> {"the outputs, in the graph's output order" if several else "`output`"}.
   Not reentrant (one arena). */
void {N}_run(const {N}_input_t* input, {params});

#endif /* {P}_H */
"""
        decls = "\n".join(f"extern const {t} {N}_{n}[{max(a.size, 1)}];" for n, t, a in self.weights)
        files[f"{N}_weights.h"] = f"/* Parameters of {N} (integers, const: flash). */\n#ifndef {P}_WEIGHTS_H\n" \
                                  f"#define {P}_WEIGHTS_H\n#include <stdint.h>\n\n{decls}\n\n#endif\n"
        chunks = [f"/* Parameters of {N}: {weights_bytes} bytes. */\n#include \"{N}_weights.h\"\n"]
        for n, t, a in self.weights:
            vals = a.astype(np.int64).tolist() or [0]
            lines = [", ".join(map(str, vals[i:i + 24])) for i in range(0, len(vals), 24)]
            chunks.append(f"const {t} {N}_{n}[{len(vals)}] = {{\n  " + ",\n  ".join(lines) + "\n};\n")
        files[f"{N}_weights.c"] = "\n".join(chunks)
        body = "\n".join(self.body)
        statics = "\n".join(self.statics)
        word = "int64_t" if self.wide else "int32_t"
        words = max(1, plan.arena_bytes // _C_TYPE_BYTES[word])
        copies = "\n".join(f"  apl_copy({int(np.prod(o.shape)) * _SIZE[o.dtype]}, {self._ptr_token(o)}, {a});"
                           for o, a in zip(outs, out_args))
        float_include = '#include "apl_float_kernels.h"\n' if self.uses_float else ""
        files[f"{N}.c"] = self.resolve(f"""/* {N}: the layer sequence. Activation arena: {plan.arena_bytes} bytes (naive sum of the
   activation buffers: {plan.naive_bytes}; lower bound, the most bytes live at one step: {plan.lower_bound}). */
#include "{N}.h"
#include "{N}_weights.h"
#include "apl_kernels.h"
{float_include}
static {word} apl_arena_words[{words}]; /* aligned for the widest value it holds */
#define apl_arena ((uint8_t*)apl_arena_words)

{statics}

void {N}_run(const {N}_input_t* input, {params}) {{
{body}
{copies}
}}
""")
        files["apl_kernels.h"] = _c_kernels.KERNELS_H
        sections = {"wide"} if self.wide else set()
        if any(n.quant["island"] and len(n.quant["lut"]) for n in self.nodes):
            sections.add("lookup")
        sections |= {k for k in ("broadcast", "prelu", "gather", "weigh", "spread", "offset", "unzero")
                     if f"apl_{k}(" in body}
        files["apl_kernels.c"] = _c_kernels.kernels_c(sections)
        if self.uses_float:
            files["apl_float_kernels.h"] = _c_kernels.FLOAT_KERNELS_H
            files["apl_float_kernels.c"] = _c_kernels.FLOAT_KERNELS_C
        deq_decls, deq_defs = [], []
        for i, (oname, o) in enumerate(zip(self.g.outputs, outs)):
            suffix = str(i) if several else ""
            out_n = int(np.prod(o.shape))
            deq_decls.append(f"void {N}_dequantize_output{suffix}(const {N}_output{i}_t* y, float* out);")
            node = self.by_name[oname]
            if o.dtype == "f32":
                deq_defs.append(f"""void {N}_dequantize_output{suffix}(const {N}_output{i}_t* y, float* out) {{
  int32_t i;
  for (i = 0; i < {out_n}; ++i) out[i] = y[i]; /* already float (the float tail) */
}}
""")
                continue
            if node.quant["dequantize_point"]:
                f = np.asarray(node.quant["factor"], np.float32).ravel()
            else:
                f = np.array([node.quant["step"]], np.float32)
            channels = o.shape[0] if o.shape else 1
            inner = out_n // channels
            fvals = ", ".join(float(v).hex() for v in f)
            deq_defs.append(f"""void {N}_dequantize_output{suffix}(const {N}_output{i}_t* y, float* out) {{
  static const float factor[{len(f)}] = {{{fvals}}};
  int32_t c, i;
  for (c = 0; c < {channels}; ++c)
    for (i = 0; i < {inner}; ++i)
      out[c * {inner} + i] = (float)y[c * {inner} + i] * factor[{"c" if len(f) > 1 else "0"}];
}}
""")
        deq_decls = "\n".join(deq_decls)
        files[f"{N}_float.h"] = f"""/* The floating point of the export, kept apart from the integer network. */
#ifndef {P}_FLOAT_H
#define {P}_FLOAT_H
#include "{N}.h"

/* x (float, {P}_INPUT_SIZE values) -> input codes, as the executor: round half to even of
   x * (1 / step) in double, clamped to [{P}_INPUT_LO, {P}_INPUT_HI]. */
void {N}_quantize_input(const float* x, {N}_input_t* codes);
/* Raw outputs -> float values (per output channel factor, or the output step). */
{deq_decls}

#endif
"""
        files[f"{N}_float.c"] = f"""/* The floating point of the export, kept apart from the integer network. */
#include <math.h>
#include "{N}_float.h"

void {N}_quantize_input(const float* x, {N}_input_t* codes) {{
  const double inv_step = {(1.0 / step).hex()}; /* 1 / {step!r} */
  int32_t i;
  for (i = 0; i < {P}_INPUT_SIZE; ++i) {{
    double v = nearbyint((double)x[i] * inv_step);
    if (v != v) v = 0; /* NaN: code 0, as the executor */
    if (v < {P}_INPUT_LO) v = {P}_INPUT_LO;
    if (v > {P}_INPUT_HI) v = {P}_INPUT_HI;
    codes[i] = ({N}_input_t)v;
  }}
}}

{"".join(deq_defs)}"""
        out_statics, out_writes = [], []
        for i, (o, a) in enumerate(zip(outs, out_args)):
            osz = _SIZE[o.dtype]
            out_statics.append(f"static {N}_output{i}_t {a}[{P}_OUTPUT{i}_SIZE];\n"
                               f"static unsigned char {a}_bytes[{P}_OUTPUT{i}_SIZE * {osz}];")
            if o.dtype == "f32":
                word = f"uint32_t w;\n      memcpy(&w, &{a}[i], 4);\n      v = w;"
            else:
                word = f"v = (uint64_t)(int64_t){a}[i]; /* two's complement bytes, any width */"
            out_writes.append(f"""    for (i = 0; i < {P}_OUTPUT{i}_SIZE; ++i) {{
      uint64_t v;
      int b;
      {word}
      for (b = 0; b < {osz}; ++b) {a}_bytes[i * {osz} + b] = (unsigned char)((v >> (8 * b)) & 0xFFu);
    }}
    if (fwrite({a}_bytes, 1, sizeof {a}_bytes, out) != sizeof {a}_bytes) {{ perror(argv[2]); return 1; }}""")
        order = (f"; per sample, the {len(outs)} outputs one after another in the graph's output order "
                 f"({', '.join(self.g.outputs)})") if several else ""
        types = ", ".join(_C_TYPE[o.dtype] for o in outs)
        files["main.c"] = f"""/* ./{N} IN OUT: IN raw little-endian float32 samples of shape {tuple(inp.shape)} (as many as
   the file holds); OUT the raw outputs ({types}, little-endian), sample after sample{order}. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "{N}.h"
#include "{N}_float.h"

static unsigned char raw[{P}_INPUT_SIZE * 4];
static float x[{P}_INPUT_SIZE];
static {N}_input_t codes[{P}_INPUT_SIZE];
{chr(10).join(out_statics)}

int main(int argc, char** argv) {{
  FILE *in, *out;
  long samples = 0;
  if (argc != 3) {{
    fprintf(stderr, "usage: %s IN.f32 OUT.bin\\n", argv[0]);
    return 2;
  }}
  in = fopen(argv[1], "rb");
  if (!in) {{ perror(argv[1]); return 1; }}
  out = fopen(argv[2], "wb");
  if (!out) {{ perror(argv[2]); fclose(in); return 1; }}
  for (;;) {{
    size_t got = fread(raw, 1, sizeof raw, in);
    int32_t i;
    if (got == 0) break;
    if (got != sizeof raw) {{
      fprintf(stderr, "%s: truncated sample %ld\\n", argv[1], samples);
      fclose(in); fclose(out);
      return 1;
    }}
    for (i = 0; i < {P}_INPUT_SIZE; ++i) {{
      unsigned long u = (unsigned long)raw[4 * i] | ((unsigned long)raw[4 * i + 1] << 8) |
                        ((unsigned long)raw[4 * i + 2] << 16) | ((unsigned long)raw[4 * i + 3] << 24);
      unsigned int u32 = (unsigned int)u;
      float f;
      memcpy(&f, &u32, 4);
      x[i] = f;
    }}
    {N}_quantize_input(x, codes);
    {N}_run(codes, {", ".join(out_args)});
{chr(10).join(out_writes)}
    ++samples;
  }}
  fclose(in);
  if (fclose(out) != 0) {{ perror(argv[2]); return 1; }}
  return 0;
}}
"""
        float_src = " apl_float_kernels.c" if self.uses_float else ""
        files["Makefile"] = f"""# Builds the demo ./{N} (IN.f32 OUT.bin). The network itself is {N}.c {N}_weights.c apl_kernels.c{float_src}.
CC ?= gcc
CFLAGS ?= -std=c99 -O2 -Wall -Wextra -Werror -pedantic
SRCS = $(wildcard *.c)

{N}: $(SRCS) $(wildcard *.h)
\t$(CC) $(CFLAGS) -o $@ $(SRCS) -lm

clean:
\trm -f {N}
.PHONY: clean
"""
        net_libs = "m" if self.uses_float else ""
        files["CMakeLists.txt"] = f"""cmake_minimum_required(VERSION 3.13)
project({N} C)
set(CMAKE_C_STANDARD 99)
set(CMAKE_C_STANDARD_REQUIRED ON)
# The network: {"integers" if not self.uses_float else "integers and the allowed float ops"}, no heap (link it into a firmware).
add_library({N}_net STATIC {N}.c {N}_weights.c apl_kernels.c{float_src})
target_include_directories({N}_net PUBLIC ${{CMAKE_CURRENT_SOURCE_DIR}})
{f"target_link_libraries({N}_net PUBLIC {net_libs})" if net_libs else ""}
# The demo: float input quantization and file I/O.
add_executable({N} main.c {N}_float.c)
target_link_libraries({N} PRIVATE {N}_net m)
"""
        return files


def check_node_supported(node):
    """Refuse (NotImplementedError naming the node) an op or attribute the export does not know."""
    if node.op not in _KNOWN_ATTRIBUTES:
        raise NotImplementedError(f"export_c: op {node.op} (node '{node.name}') is not supported by the C export")
    unknown = sorted(set(node.attributes) - _KNOWN_ATTRIBUTES[node.op])
    if unknown:
        raise NotImplementedError(f"export_c: {node.op} '{node.name}': attribute '{unknown[0]}' is not "
                                  "supported by the C export")


def _text(v, default):
    if v is None:
        return default
    return v.decode() if isinstance(v, bytes) else str(v)


def _slice_axes(node, ins):
    """{per-sample axis: (start, step, count)} of a Slice, ONNX clamping as slice_plan (shapes.cpp)."""
    a = node.attributes
    starts, ends = [int(v) for v in a["starts"]], [int(v) for v in a["ends"]]
    axes = [int(v) for v in a.get("axes", range(len(starts)))]
    steps = [int(v) for v in a.get("steps", [1] * len(starts))]
    plan = {}
    for s0, e0, axis, step in zip(starts, ends, axes, steps):
        axis = axis + len(ins) + 1 if axis < 0 else axis
        if axis == 0:
            continue  # the whole batch (the importer refused any other slice of it)
        dim = ins[axis - 1]
        start = s0 + dim if s0 < 0 else s0
        end = e0 + dim if e0 < 0 else e0
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
            count = (end - start - 1) // step + 1 if end > start else 0
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            count = (start - end - 1) // -step + 1 if start > end else 0
        plan[axis - 1] = (start, step, count)
    return plan


def _round_half_away(v: float) -> int:
    """std::round: halves away from zero (v is a float32 value, exact in a double)."""
    r = math.floor(abs(v))
    if abs(v) - r >= 0.5:
        r += 1
    return int(r) if v >= 0 else -int(r)


def _resize_nearest_indices(node, ins):
    """Input index of each output index, per spatial axis (ins[1:]) of a nearest Resize, in float32
    as the executor's ResizeKernel (original_coordinate, nearest_index of movement_op_kernels.cpp)."""
    a, f32 = node.attributes, np.float32
    who = f"export_c: Resize '{node.name}'"
    if _text(a.get("mode"), "nearest") != "nearest":
        raise NotImplementedError(f"{who}: only the nearest mode keeps codes")
    ctm = _text(a.get("coordinate_transformation_mode"), "half_pixel")
    nearest = _text(a.get("nearest_mode"), "round_prefer_floor")
    if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric") or \
            nearest not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        raise NotImplementedError(f"{who}: coordinate_transformation_mode '{ctm}', nearest_mode '{nearest}'")
    scales = [f32(v) for v in a.get("scales", [])]
    sizes = [int(v) for v in a.get("sizes", [])]
    tables = []
    for d in range(1, len(ins)):
        in_len = ins[d]
        if scales:
            scale = scales[d + 1]
            out_len = int(math.floor(float(in_len) * float(scale)))
        else:
            out_len = sizes[d + 1]
            scale = f32(out_len) / f32(in_len)
        idx = []
        for o in range(out_len):
            xf = f32(o)
            if ctm == "asymmetric":
                x = xf / scale
            elif ctm == "align_corners":
                x = f32(0) if out_len == 1 else xf * f32(in_len - 1) / f32(out_len - 1)
            elif ctm == "pytorch_half_pixel" and out_len == 1:
                x = f32(0)
            else:
                x = (xf + f32(0.5)) / scale - f32(0.5)
            x = f32(x)
            if nearest == "floor":
                v = math.floor(float(x))
            elif nearest == "ceil":
                v = math.ceil(float(x))
            elif nearest == "round_prefer_floor" and x == f32(f32(math.trunc(float(x))) + f32(0.5)):
                v = math.floor(float(x))
            else:
                v = _round_half_away(float(x))
            idx.append(min(max(int(v), 0), in_len - 1))
        tables.append(idx)
    return tables


def _c_float(v) -> str:
    """A float32 value as an exact C99 hexadecimal float literal."""
    v = float(np.float32(v))
    if not math.isfinite(v):
        raise ValueError(f"export_c: non-finite float constant {v}")
    return f"{v.hex()}f"


def _c_int64(v: int) -> str:
    if v == -(2 ** 63):
        return "(-9223372036854775807LL - 1)"
    return f"{v}LL" if v >= 0 else f"({v}LL)"


def _encode_multiplier(f: float):
    """encode_multiplier of fixed_point.hpp: nearest (m, s) with f ~= m / 2^s, m in [2^30, 2^31)."""
    f = float(f)
    if f == 0.0:
        return 0, 0
    frac, e = math.frexp(f)
    m = int(math.floor(frac * 2147483648.0 + 0.5))  # llround of a positive value
    if m == 1 << 31:
        m >>= 1
        e += 1
    s = 31 - int(e)
    if s > 62:
        m >>= (s - 62)
        s = 62
    while s < 0:
        m <<= 1
        s += 1
    return m, s


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


MANIFEST = "apl_export.txt"
_MANIFEST_HEAD = "# aidge_ptq_lite C export: the files below were written by export_c and are replaced by the next one"


def _read_manifest(directory):
    """The file names a previous export listed in `directory` (None: no manifest)."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as fh:
        names = [line.strip() for line in fh if line.strip() and not line.startswith("#")]
    # only plain names inside the directory: a hand-edited manifest cannot point elsewhere
    return {n for n in names if os.path.basename(n) == n and n not in (".", "..")}


def _write_atomically_text(path, text):
    _write_atomically(text.encode("ascii"), path)


def check_export_directory(directory, names=()):
    """Raise FileExistsError unless `directory` may receive an export writing `names`: missing,
    empty, or holding a previous export (its manifest) whose unlisted files `names` do not
    overwrite. Returns the previous export's file names (empty set if none). Changes nothing."""
    directory = os.fspath(directory)
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise FileExistsError(f"export_c: '{directory}' exists and is not a directory")
    if not os.path.isdir(directory):
        return set()
    present = set(os.listdir(directory))
    previous = _read_manifest(directory)
    if previous is None:
        if present:
            foreign = sorted(present)[0]
            raise FileExistsError(
                f"export_c: '{directory}' is not empty and holds no previous export (no {MANIFEST}): "
                f"it has '{foreign}'{f' and {len(present) - 1} other entries' if len(present) > 1 else ''}; "
                "export into a new or empty directory")
        return set()
    clash = sorted(n for n in names if n in present and n not in previous and n != MANIFEST)
    if clash:
        raise FileExistsError(
            f"export_c: '{directory}' holds a previous export, but '{clash[0]}' is not one of its files "
            f"({MANIFEST} does not list it) and this export would overwrite it: move it away or export "
            "into a new directory")
    return previous


def _prepare_directory(directory, names):
    previous = check_export_directory(directory, names)
    os.makedirs(directory, exist_ok=True)
    return previous


def export_c(graph: _core.Graph, directory, name: str = "network", verbose: bool = False,
             allow_float: bool = False) -> dict:
    """Write a quantized graph as a self-contained C99 project in `directory`, bit-exact with
    ``graph.forward(x, dequantize=False)``.

    Build the demo with ``gcc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -o net DIR/*.c -lm``
    and run ``./net IN.f32 OUT.bin``. See the module docstring for the files.

    Parameters:
        graph: a quantized graph (``quantize_network``), 2 to 16 bits, one or several outputs.
            Element-wise float islands are exported as integer lookup tables (exact).
        directory: created if missing; else it must be empty or hold a previous export (its
            ``apl_export.txt`` manifest): the files that export listed are replaced (or removed
            when this export does not write them), every other file is left alone, and an export
            that would overwrite an unlisted file is refused. Each file is written atomically
            (temporary file and rename).
        name: C identifier prefixing the files and symbols.
        verbose: print the sizes.
        allow_float: write the nodes that run in float (the float tail after the output
            dequantization, e.g. a final Softmax; float islands without a lookup table, e.g. a
            mid-network Softmax) as C float code (``apl_float_kernels.c``: Softmax, Sigmoid, Tanh
            of one input). Without it they are refused. The float code follows the executor's
            scalar float kernels operation by operation (float arithmetic, ``expf`` / ``tanhf``
            from <math.h>, no contraction in ISO C mode); its results equal the executor's
            where the C library's ``expf`` / ``tanhf`` give the same floats as the one our C++
            core was linked with: tested bit-exact with gcc and glibc on x86-64 (the same libm);
            on another libm (a microcontroller's) expect last-bit differences in float outputs,
            and in rare cases one code off after an island.

    Returns:
        dict with ``weights_bytes`` (flash), ``arena_bytes`` (RAM), ``naive_activation_bytes``
        (sum of all activation buffers), ``arena_lower_bound`` (most bytes live at one step),
        ``input_dtype``, ``output_dtype`` (of the first output) and ``output_dtypes`` (one per
        output), ``files`` (paths written) and ``plan`` (the MemoryPlan, buffers with offsets
        and lifetimes).

    Raises:
        ValueError: not quantized, ``no_quant``, a name that is not a C identifier (or is ``main``
            or starts with ``apl_``), or parameters out of range.
        NotImplementedError: a node running in float without ``allow_float`` (or one the float
            code does not cover), or an op or attribute the export does not implement; the
            message names the node and its op.
        FileExistsError: `directory` holds files that are not a previous export's.
    """
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"export_c: name {name!r} is not a C identifier")
    if name in ("main", "apl_kernels", "apl_float_kernels") or name.startswith("apl_"):
        raise ValueError(f"export_c: name {name!r} collides with the export's own files or symbols")
    ex = _CExporter(graph, name, allow_float=allow_float)
    ex.build()
    files = ex.files()
    directory = os.fspath(directory)
    previous = _prepare_directory(directory, list(files) + [MANIFEST])
    # The manifest first lists both exports' files, so an interrupted export leaves a directory
    # that the next export still recognises; the final manifest lists this export's files only.
    _write_atomically_text(os.path.join(directory, MANIFEST),
                  "\n".join([_MANIFEST_HEAD, *sorted(previous | set(files))]) + "\n")
    paths = []
    for fname, text in files.items():
        path = os.path.join(directory, fname)
        _write_atomically_text(path, text)
        paths.append(path)
    for stale in sorted(previous - set(files) - {MANIFEST}):
        try:
            os.unlink(os.path.join(directory, stale))  # e.g. apl_float_kernels.c of a float export
        except FileNotFoundError:
            pass
    _write_atomically_text(os.path.join(directory, MANIFEST), "\n".join([_MANIFEST_HEAD, *sorted(files)]) + "\n")
    info = {
        "weights_bytes": ex.weights_bytes,
        "arena_bytes": ex.plan.arena_bytes,
        "naive_activation_bytes": ex.plan.naive_bytes,
        "arena_lower_bound": ex.plan.lower_bound,
        "input_dtype": np.dtype(_NP_TYPE[ex.input.dtype]).name,
        "output_dtype": np.dtype(_NP_TYPE[ex.output.dtype]).name,
        "output_dtypes": [np.dtype(_NP_TYPE[o.dtype]).name for o in ex.outputs],
        "uses_float": ex.uses_float,
        "files": paths,
        "plan": ex.plan,
        # node name -> index of the arena buffer holding its value (None: the caller's input)
        "buffer_of": {k: (t.buffer.index if isinstance(t.buffer, Buffer) else None) for k, t in ex.tensors.items()},
    }
    if verbose:
        print(f"export_c: {directory}/{name}.c: weights {info['weights_bytes']:,} bytes (flash), "
              f"arena {info['arena_bytes']:,} bytes (RAM; lower bound {info['arena_lower_bound']:,}), "
              f"naive sum of activation buffers {info['naive_activation_bytes']:,} bytes")
    return info
