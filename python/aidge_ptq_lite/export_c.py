"""export_c: the quantized network as a self-contained C99 project, bit-exact with the executor.

Files written (all at the top of the directory, so ``gcc DIR/*.c -lm`` builds the demo):

- ``<name>.h``: the API: input / output shapes and storage types, the input step, the arena size,
  ``<name>_run(input codes, output)``.
- ``<name>.c``: the layer sequence; one static activation arena, no heap, no floating point.
- ``<name>_weights.c`` / ``.h``: weights, biases, requantization multipliers and shifts as
  ``const`` integer arrays (flash on a microcontroller).
- ``apl_kernels.c`` / ``.h``: the portable integer kernels (see ``_c_kernels``).
- ``<name>_float.c`` / ``.h``: the only floating point of the export, kept apart: quantize a
  float input to the network's input codes (round half to even, as the executor), dequantize the
  raw outputs.
- ``main.c``: ``./<name> IN OUT``: IN raw little-endian float32 samples of the input shape (as
  many as the file holds); OUT the raw outputs, exactly as ``graph.forward(x, dequantize=False)``
  gives them (same dtype, little-endian, sample after sample).
- ``Makefile`` and ``CMakeLists.txt``.

The integer semantics are those of the executor (cpp/src/runtime/int_op_kernels.cpp): a Conv/Gemm
followed by its only consumer, a Scaling node, runs as one kernel writing codes; a Scaling node at
the dequantization point hands the int32 accumulator to the output; ReLU, MaxPool, Pad and views
keep codes; average pools, Add, Sub and Mul produce int32 sums that the next Scaling node
requantizes; Concat copies codes.

Memory: a liveness-based planner over the node schedule. Views and pass-through Scaling nodes
alias their input; element-wise ops (ReLU, LeakyRelu, Clip, requantization) run in place on an
input no later node reads; every other output is a buffer live from its producer to its last
reader, and buffers whose lifetimes do not overlap share arena bytes (greedy by size, first fit).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from . import _c_kernels, _core

_OPS = _core.op_registry()
_ALIGN = 4
_C_TYPE = {"s8": "int8_t", "u8": "uint8_t", "s32": "int32_t"}
_APL_TYPE = {"s8": "APL_S8", "u8": "APL_U8", "s32": "APL_S32"}
_SIZE = {"s8": 1, "u8": 1, "s32": 4}
_NP_TYPE = {"s8": np.int8, "u8": np.uint8, "s32": np.int32}
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


def plan_memory(buffers, steps) -> MemoryPlan:
    """Offsets for buffers (sizes and [start, end] lifetimes): greedy by size, first fit."""
    placed = []
    for b in sorted(buffers, key=lambda b: (-b.size, b.start, b.index)):
        busy = sorted((p.offset, p.offset + p.size) for p in placed if p.start <= b.end and b.start <= p.end)
        offset = 0
        for lo, hi in busy:
            if offset + b.size <= lo:
                break
            offset = max(offset, _aligned(hi))
        b.offset = offset
        placed.append(b)
    arena = max((b.offset + b.size for b in buffers), default=0)
    bound = max((sum(b.size for b in buffers if b.start <= s <= b.end) for s in range(steps)), default=0)
    naive = sum(sum(t.nbytes for t in b.tensors) for b in buffers)
    return MemoryPlan(buffers, _aligned(arena), naive, bound, steps)


def _aligned(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


@dataclass
class Tensor:
    node: str
    dtype: str
    shape: list
    buffer: object = None     # Buffer, or "input" for the caller's input codes
    nbytes: int = 0


class _CExporter:
    def __init__(self, graph, name):
        self.g = graph
        self.name = name
        self.nodes = graph.nodes()
        self.by_name = {n.name: n for n in self.nodes}
        self.step = {n.name: i for i, n in enumerate(self.nodes)}
        self.options = graph.quantization
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
        if g.nb_bits > 8:
            raise NotImplementedError(f"export_c: {g.nb_bits} bits (int64 accumulators) is not supported yet; "
                                      "export at 8 bits or fewer")
        for n in self.nodes:
            if n.quant.get("kept_float"):
                raise NotImplementedError(f"export_c: node '{n.name}' ({n.op}) runs in float (kept_float); "
                                          "the C export has no float islands: remove it from the graph "
                                          "(e.g. a final Softmax) before exporting")
            # Float islands (e.g. an AveragePool with count_include_pad=0, a linear Resize) have no C
            # kernel; Transpose and Slice are views in the registry but move data (aliasing is wrong).
            if n.quant.get("island") or n.op in ("Transpose", "Slice"):
                why = "runs as a float island" if n.quant.get("island") else "moves data"
                raise NotImplementedError(f"export_c: node '{n.name}' ({n.op}) {why}, which the C export "
                                          "does not implement; use export_onnx for this network")
        if len(g.outputs) != 1:
            raise NotImplementedError(f"export_c: {len(g.outputs)} outputs; only single-output graphs are exported")

    def code_type(self, node):
        return "u8" if node.quant["unsigned"] and self.options.get("optimize_signs") else "s8"

    def fused_scaling(self, node):
        if not _OPS[node.op]["affine"]:
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
            return True
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
        if inplace_of is not None and isinstance(inplace_of.buffer, Buffer) \
                and inplace_of.buffer.end == self.step[node.name] and inplace_of.buffer.size >= t.nbytes:
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

    def emit(self, node, stmt):
        self.body.append(f"  /* {node.op} {node.name} */")
        self.body.append(f"  {stmt}")

    # ---- ops ---------------------------------------------------------------------------------

    def window(self, node, x_shape, weight_shape=None):
        a = node.attributes
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET", ""):
            raise NotImplementedError(f"export_c: {node.op} '{node.name}': auto_pad is not supported")
        if len(x_shape) != 3:
            raise NotImplementedError(f"export_c: {node.op} '{node.name}': only 2-D windows are supported "
                                      "(not 1-D windows on (N, C, L))")
        if int(a.get("ceil_mode", 0)):
            raise NotImplementedError(f"export_c: {node.op} '{node.name}': ceil_mode=1 is not supported")
        R, S = weight_shape[2:] if weight_shape is not None else a["kernel_shape"]
        pads = list(a.get("pads", [0, 0, 0, 0]))
        strides = list(a.get("strides", [1, 1]))
        dil = list(a.get("dilations", [1, 1]))
        C, H, W = x_shape
        return dict(C=C, H=H, W=W, K=node.shape[0], OH=node.shape[1], OW=node.shape[2], R=R, S=S,
                    stride_h=strides[0], stride_w=strides[1], pad_top=pads[0], pad_left=pads[1],
                    dil_h=dil[0], dil_w=dil[1], groups=a.get("group", 1))

    def op_affine(self, node, idx):
        x = self.tensors[node.inputs[0]]
        if x.dtype not in ("s8", "u8"):
            raise NotImplementedError(f"export_c: {node.op} '{node.name}' reads {x.dtype} values, not codes")
        w, b = node.params
        if w.dtype != np.int8 or b.dtype != np.int32:
            raise ValueError(f"export_c: {node.op} '{node.name}': weights {w.dtype}/{b.dtype}, expected int8/int32")
        if node.op == "Conv":
            geo = self.window(node, x.shape, w.shape)
        else:
            geo = dict(C=int(np.prod(x.shape)), H=1, W=1, K=w.shape[0], OH=1, OW=1, R=1, S=1)
            if w.shape[1] != geo["C"]:
                raise ValueError(f"export_c: Gemm '{node.name}': weights {w.shape} for {geo['C']} inputs")
        gname = self.geometry(f"geo{idx}", **geo)
        wn = self.add_weights(f"w{idx}", "int8_t", w)
        bn = self.add_weights(f"b{idx}", "int32_t", b)
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

    def op_scaling(self, node, idx):
        x = self.tensors[node.inputs[0]]
        if self.aliases_input(node):
            self.alias(node, x)
            return
        y = self.new_tensor(node, self.code_type(node), inplace_of=x)
        channels = node.shape[0] if len(node.shape) > 0 else 1
        inner = int(np.prod(node.shape)) // channels
        rq = self.requant(f"rq{idx}", node, channels)
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
        if x.dtype not in ("s8", "u8"):
            raise NotImplementedError(f"export_c: {node.op} '{node.name}' reads {x.dtype} values, not codes")
        if node.op == "GlobalAveragePool":
            y = self.new_tensor(node, "s32")
            C, H, W = x.shape
            self.emit(node, f"apl_global_sumpool({C}, {H * W}, {self._ptr_token(x)}, {_APL_TYPE[x.dtype]}, "
                            f"(int32_t*){self._ptr_token(y)});")
            return
        geo = self.window(node, x.shape)
        geo["groups"] = 1
        gname = self.geometry(f"geo{idx}", **geo)
        if node.op == "MaxPool":
            y = self.new_tensor(node, x.dtype)
            self.emit(node, f"apl_maxpool({gname}, {self._ptr_token(x)}, {self._ptr_token(y)}, {_APL_TYPE[x.dtype]});")
        else:
            y = self.new_tensor(node, "s32")
            self.emit(node, f"apl_sumpool({gname}, {self._ptr_token(x)}, {_APL_TYPE[x.dtype]}, "
                            f"(int32_t*){self._ptr_token(y)});")

    def op_binary(self, node, idx):
        if len(node.inputs) != 2 or node.params:
            raise NotImplementedError(f"export_c: {node.op} '{node.name}' with a constant operand is not supported")
        a, b = (self.tensors[i] for i in node.inputs)
        if a.shape != list(node.shape) or b.shape != list(node.shape):
            raise NotImplementedError(f"export_c: {node.op} '{node.name}': broadcasting is not supported")
        y = self.new_tensor(node, "s32")
        op = {"Add": 0, "Sub": 1, "Mul": 2}[node.op]
        self.emit(node, f"apl_binary({op}, {int(np.prod(node.shape))}, {self._ptr_token(a)}, {_APL_TYPE[a.dtype]}, "
                        f"{self._ptr_token(b)}, {_APL_TYPE[b.dtype]}, (int32_t*){self._ptr_token(y)});")

    def op_pad(self, node, idx):
        x = self.tensors[node.inputs[0]]
        pads = list(node.attributes.get("pads", []))
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or any(p < 0 for p in pads):
            raise NotImplementedError(f"export_c: Pad '{node.name}': only non-negative spatial pads of a 4-D tensor")
        if float(node.attributes.get("value", 0.0)) != 0.0:
            raise NotImplementedError(f"export_c: Pad '{node.name}': non-zero pad value")
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

    # ---- driver ------------------------------------------------------------------------------

    def build(self):
        self.check()
        for idx, node in enumerate(self.nodes):
            op = node.op
            if op == "Input":
                t = Tensor(node.name, self.code_type(node), list(node.shape), "input", 0)
                t.nbytes = int(np.prod(node.shape)) * _SIZE[t.dtype]
                self.tensors[node.name] = t
            elif _OPS[op]["affine"] and op in ("Conv", "Gemm"):
                self.op_affine(node, idx)
            elif op == "Scaling":
                self.op_scaling(node, idx)
            elif op in ("Relu", "LeakyRelu", "Clip"):
                self.op_pointwise(node, idx)
            elif op in ("MaxPool", "AveragePool", "GlobalAveragePool"):
                self.op_pool(node, idx)
            elif op in ("Add", "Sub", "Mul"):
                self.op_binary(node, idx)
            elif op == "Pad":
                self.op_pad(node, idx)
            elif op == "Concat":
                self.op_concat(node, idx)
            elif _OPS[op]["view"]:
                self.alias(node, self.tensors[node.inputs[0]])
            else:
                raise NotImplementedError(f"export_c: op {op} (node '{node.name}') is not supported by the C export")
        out = self.tensors[self.g.outputs[0]]
        if out.buffer == "input":
            raise NotImplementedError("export_c: the output is the input")
        self.plan = plan_memory(self.buffers, len(self.nodes) + 1)
        self.input = self.tensors[self.g.input_name]
        self.output = out

    # ---- files -------------------------------------------------------------------------------

    def resolve(self, text):
        return re.sub(r"@B(\d+)@", lambda m: f"(apl_arena + {self.buffers[int(m.group(1))].offset})", text)

    def files(self):
        N, P = self.name, self.name.upper()
        inp, out, plan = self.input, self.output, self.plan
        in_node = self.by_name[self.g.input_name]
        step = float(in_node.quant["step"])
        weights_bytes = sum(a.size * {"int8_t": 1, "uint8_t": 1, "int32_t": 4}[t] for _, t, a in self.weights)
        self.weights_bytes = weights_bytes
        in_n, out_n = int(np.prod(inp.shape)), int(np.prod(out.shape))
        files = {}
        files[f"{N}.h"] = f"""/* {N}: integer network exported by aidge_ptq_lite (C99, no heap, no floating point). */
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

/* Output: {_C_TYPE[out.dtype]} of shape {tuple(out.shape)}, as graph.forward(x, dequantize=False). */
#define {P}_OUTPUT_RANK {len(out.shape)}
#define {P}_OUTPUT_SIZE {out_n}
typedef {_C_TYPE[out.dtype]} {N}_output_t;
static const int32_t {N}_output_shape[{len(out.shape)}] = {{{", ".join(map(str, out.shape))}}};

/* Memory: the static activation arena (RAM) and the constant parameters (flash). */
#define {P}_ARENA_BYTES {plan.arena_bytes}
#define {P}_NAIVE_ACTIVATION_BYTES {plan.naive_bytes}
#define {P}_WEIGHTS_BYTES {weights_bytes}

/* Runs the network on one sample: `input` codes -> `output`. Not reentrant (one arena). */
void {N}_run(const {N}_input_t* input, {N}_output_t* output);

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
        body = self.resolve("\n".join(self.body))
        statics = self.resolve("\n".join(self.statics))
        words = max(1, plan.arena_bytes // 4)
        files[f"{N}.c"] = f"""/* {N}: the layer sequence. Activation arena: {plan.arena_bytes} bytes (naive sum of the
   activation buffers: {plan.naive_bytes}; lower bound, the most bytes live at one step: {plan.lower_bound}). */
#include "{N}.h"
#include "{N}_weights.h"
#include "apl_kernels.h"

static int32_t apl_arena_words[{words}];
#define apl_arena ((uint8_t*)apl_arena_words)

{statics}

void {N}_run(const {N}_input_t* input, {N}_output_t* output) {{
{body}
  apl_copy({out_n * _SIZE[out.dtype]}, {self._ptr_token(out)}, output);
}}
"""
        files[f"{N}.c"] = self.resolve(files[f"{N}.c"])
        files["apl_kernels.h"] = _c_kernels.KERNELS_H
        files["apl_kernels.c"] = _c_kernels.KERNELS_C
        files[f"{N}_float.h"] = f"""/* The floating point of the export, kept apart from the integer network. */
#ifndef {P}_FLOAT_H
#define {P}_FLOAT_H
#include "{N}.h"

/* x (float, {P}_INPUT_SIZE values) -> input codes, as the executor: round half to even of
   x * (1 / step) in double, clamped to [{P}_INPUT_LO, {P}_INPUT_HI]. */
void {N}_quantize_input(const float* x, {N}_input_t* codes);
/* Raw outputs -> float values (per output channel factor, or the output step). */
void {N}_dequantize_output(const {N}_output_t* y, float* out);

#endif
"""
        out_node = self.by_name[self.g.outputs[0]]
        if out_node.quant["dequantize_point"]:
            f = np.asarray(out_node.quant["factor"], np.float32).ravel()
        else:
            f = np.array([out_node.quant["step"]], np.float32)
        channels = out.shape[0] if out.shape else 1
        inner = out_n // channels
        fvals = ", ".join(float(v).hex() for v in f)
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

void {N}_dequantize_output(const {N}_output_t* y, float* out) {{
  static const float factor[{len(f)}] = {{{fvals}}};
  int32_t c, i;
  for (c = 0; c < {channels}; ++c)
    for (i = 0; i < {inner}; ++i)
      out[c * {inner} + i] = (float)y[c * {inner} + i] * factor[{"c" if len(f) > 1 else "0"}];
}}
"""
        osz = _SIZE[out.dtype]
        files["main.c"] = f"""/* ./{N} IN OUT: IN raw little-endian float32 samples of shape {tuple(inp.shape)} (as many as
   the file holds); OUT the raw outputs ({_C_TYPE[out.dtype]}, little-endian), sample after sample. */
#include <stdio.h>
#include <string.h>
#include "{N}.h"
#include "{N}_float.h"

static unsigned char raw[{P}_INPUT_SIZE * 4];
static float x[{P}_INPUT_SIZE];
static {N}_input_t codes[{P}_INPUT_SIZE];
static {N}_output_t y[{P}_OUTPUT_SIZE];
static unsigned char bytes[{P}_OUTPUT_SIZE * {osz}];

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
    {N}_run(codes, y);
    for (i = 0; i < {P}_OUTPUT_SIZE; ++i) {{
      unsigned long v = (unsigned long)(long)y[i];
      int b;
      for (b = 0; b < {osz}; ++b) bytes[i * {osz} + b] = (unsigned char)((v >> (8 * b)) & 0xFFu);
    }}
    if (fwrite(bytes, 1, sizeof bytes, out) != sizeof bytes) {{ perror(argv[2]); return 1; }}
    ++samples;
  }}
  fclose(in);
  if (fclose(out) != 0) {{ perror(argv[2]); return 1; }}
  return 0;
}}
"""
        files["Makefile"] = f"""# Builds the demo ./{N} (IN.f32 OUT.bin). The network itself is {N}.c {N}_weights.c apl_kernels.c.
CC ?= gcc
CFLAGS ?= -std=c99 -O2 -Wall -Wextra -Werror -pedantic
SRCS = $(wildcard *.c)

{N}: $(SRCS) $(wildcard *.h)
\t$(CC) $(CFLAGS) -o $@ $(SRCS) -lm

clean:
\trm -f {N}
.PHONY: clean
"""
        files["CMakeLists.txt"] = f"""cmake_minimum_required(VERSION 3.13)
project({N} C)
set(CMAKE_C_STANDARD 99)
set(CMAKE_C_STANDARD_REQUIRED ON)
# The network: integers only, no heap (link it into a firmware).
add_library({N}_net STATIC {N}.c {N}_weights.c apl_kernels.c)
target_include_directories({N}_net PUBLIC ${{CMAKE_CURRENT_SOURCE_DIR}})
# The demo: float input quantization and file I/O.
add_executable({N} main.c {N}_float.c)
target_link_libraries({N} PRIVATE {N}_net m)
"""
        return files


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


def export_c(graph: _core.Graph, directory, name: str = "network", verbose: bool = False) -> dict:
    """Write a quantized graph as a self-contained C99 project in `directory`, bit-exact with
    ``graph.forward(x, dequantize=False)``.

    Build the demo with ``gcc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -o net DIR/*.c -lm``
    and run ``./net IN.f32 OUT.bin``. See the module docstring for the files.

    Parameters:
        graph: a quantized graph (``quantize_network``), at most 8 bits, no float-kept node.
        directory: created if missing; existing files of the same names are overwritten.
        name: C identifier prefixing the files and symbols.
        verbose: print the sizes.

    Returns:
        dict with ``weights_bytes`` (flash), ``arena_bytes`` (RAM), ``naive_activation_bytes``
        (sum of all activation buffers), ``arena_lower_bound`` (most bytes live at one step),
        ``files`` (paths written) and ``plan`` (the MemoryPlan, buffers with offsets and lifetimes).

    Raises:
        ValueError: not quantized, ``no_quant``, a name that is not a C identifier (or is ``main``
            or starts with ``apl_``), or parameters out of range.
        NotImplementedError: more than 8 bits, a float-kept node (e.g. a final Softmax), or an op
            the export does not implement; the message names the node.
    """
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"export_c: name {name!r} is not a C identifier")
    if name in ("main", "apl_kernels") or name.startswith("apl_"):
        raise ValueError(f"export_c: name {name!r} collides with the export's own files or symbols")
    ex = _CExporter(graph, name)
    ex.build()
    files = ex.files()
    os.makedirs(os.fspath(directory), exist_ok=True)
    paths = []
    for fname, text in files.items():
        path = os.path.join(os.fspath(directory), fname)
        with open(path, "w", encoding="ascii") as fh:
            fh.write(text)
        paths.append(path)
    info = {
        "weights_bytes": ex.weights_bytes,
        "arena_bytes": ex.plan.arena_bytes,
        "naive_activation_bytes": ex.plan.naive_bytes,
        "arena_lower_bound": ex.plan.lower_bound,
        "input_dtype": np.dtype(_NP_TYPE[ex.input.dtype]).name,
        "output_dtype": np.dtype(_NP_TYPE[ex.output.dtype]).name,
        "files": paths,
        "plan": ex.plan,
        # node name -> index of the arena buffer holding its value (None: the caller's input)
        "buffer_of": {k: (t.buffer.index if isinstance(t.buffer, Buffer) else None) for k, t in ex.tensors.items()},
    }
    if verbose:
        print(f"export_c: {os.fspath(directory)}/{name}.c: weights {info['weights_bytes']:,} bytes (flash), "
              f"arena {info['arena_bytes']:,} bytes (RAM; lower bound {info['arena_lower_bound']:,}), "
              f"naive sum of activation buffers {info['naive_activation_bytes']:,} bytes")
    return info
