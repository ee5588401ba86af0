// The op registry: every op the library knows is one OpKind and ONE traits row
// (cpp/src/ops/registry.cpp). Passes, executor, importer and exporter ask the traits what an op
// does; no code outside the registry compares op names. README "Adding an op" says how to add one.
//
// Params layout per op (constants owned by the node):
//   Conv               {W (K, C/g, R, S), B (K) optional}
//   Gemm               {B, C optional}       attrs alpha, beta, transA (must be 0), transB
//   MatMul             {B (K, M)}            (the data operand is the first input)
//   BatchNormalization {scale, bias, mean, var}  attr epsilon
//   Add / Sub / Mul    {constant operand} when one operand is constant, attr const_index 0|1
//   Reshape            attr shape;  Pad: attr pads, value;  Clip: attrs min, max
//   Scaling            (PTQ) see ptq.hpp
//   ConvTranspose      {W in a Conv's layout (C_out, C_in/g, kH, kW), spatially flipped, B (C_out)}:
//                      the importer converts ONNX's (C_in, C_out/g, kH, kW), the export converts back
//   Transpose attr perm; Slice attrs starts, ends, axes, steps; Squeeze / Unsqueeze attr axes;
//   Resize attrs roi, scales, sizes (read from its constant inputs)
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "aidge_ptq_lite/tensor.hpp"

namespace apl {

class Graph;
class Node;
class OpKernel;

enum class OpKind : uint8_t {
  Input,    // the graph input (not an ONNX op)
  Scaling,  // the PTQ's requantization point (not an ONNX op)
  Add, AveragePool, BatchNormalization, Clip, Concat, Conv, Dropout, Flatten, Gemm,
  GlobalAveragePool, Identity, LeakyRelu, MatMul, MaxPool, Mul, Pad, Relu, Reshape, Sigmoid,
  Softmax, Sub, Tanh,
  // Data movement and geometry (Transpose, Slice, Resize, ConvTranspose, ...).
  Transpose, Slice, Squeeze, Unsqueeze, Resize, ConvTranspose,

  // End of data movement.
  // Element-wise, reductions and per-channel affine ops.
  Sum, PRelu, HardSigmoid, HardSwish, Elu, Selu, Softplus, Erf, Exp, Log, Sqrt, Neg, Abs, Reciprocal,
  LogSoftmax, LRN, ReduceMean, ReduceMax, ReduceSum, Div, Pow, Max, Min,

  // End of element-wise.
  Count
};

using ShapeFn = Shape (*)(const Node& node, const std::vector<Shape>& inputs);
using KernelFactory = std::unique_ptr<OpKernel> (*)(const Graph& graph, const Node& node);
using NodePredicate = bool (*)(const Node& node);

// Where calibration may measure a Scaling node's codes: after ops that commute with the
// monotone quantizer (clip + round), so values they drop do not count (see ranges.cpp).
enum class MeasuredThrough : uint8_t {
  No,
  AnyUsers,  // pointwise (Relu): every consumer computes the same values
  SoleUser,  // windowed (MaxPool): only when it is the one consumer
};

// How the QDQ export writes a node.
enum class ExportRule : uint8_t {
  QuantizeInput,  // Input: QuantizeLinear / DequantizeLinear of the float input
  Affine,         // Conv, Gemm: integer weights and bias behind DequantizeLinear
  Requantize,     // Scaling: QuantizeLinear / DequantizeLinear at the step of its codes
  FloatOp,        // the ONNX op on dequantized values (exact for the ops the integer net keeps)
  None,           // never reaches a quantized graph (removed or folded by prepare_network)
};

// An attribute in activation units. In codes it becomes a whole number, rounded inwards (a lower
// bound up, an upper bound down), so that the integer kernel and the export clip at the same value.
struct ActivationAttribute {
  const char* key;
  float absent;      // its value when the node does not set it
  bool lower_bound;  // rounds up to a whole code (else down)
};

struct OpTraits {
  OpKind kind = OpKind::Count;
  const char* name = "";    // ONNX op type ("Input" and "Scaling" for the library's own nodes)
  const char* domain = "";  // ONNX domain; "" is ai.onnx
  int min_inputs = 1, max_inputs = 1;  // data inputs; max -1: any number

  // ---- ONNX import / export ----
  std::vector<int> param_inputs;                            // inputs moved into params
  std::vector<std::pair<int, const char*>> attribute_inputs;  // inputs read as attributes
  bool constant_operand = false;  // one operand may be a constant (kept in params[0])
  // Attributes in activation units (Clip min/max): the passes rescale them with the activation,
  // the export writes them at the activation's step.
  std::vector<ActivationAttribute> activation_attributes;
  ExportRule export_rule = ExportRule::FloatOp;

  // ---- shape inference and validation (ShapeError / UnsupportedError naming the node) ----
  ShapeFn infer_shape = nullptr;

  // ---- roles in the PTQ passes ----
  bool affine = false;             // weights (params[0]) and bias (params[1]): an integer GEMM
  bool join = false;               // inputs share one scale (max arbitration) and one sign
  // A join that stacks its inputs along the channel axis (Concat on axis 1): each input keeps its
  // own scale, the per-channel Scaling node after it rescales each input's channels (no max
  // arbitration, which would coarsen a branch for its other readers).
  NodePredicate stacks_channels = nullptr;
  bool multiplies_scales = false;  // output scale = product of the input scales (Mul)
  bool needs_scaling = false;      // output is an accumulator: a Scaling node follows it
  bool keeps_codes = false;        // output codes are input codes at the same scale
  // Keeps the scale but rounds on its grid (LeakyRelu's alpha x code): a QDQ export rounds the
  // float op's output back to the input's codes, as the integer kernel does.
  bool rounds_codes = false;
  bool view = false;               // moves data only, any dtype (Flatten, Reshape, ...)
  bool removed_by_prepare = false; // the identity at inference (Identity, Dropout)
  bool folds_into_affine = false;  // per-channel affine folded into the Conv/Gemm before it
  // ONNX stores the weights (C_in, C_out/g, k...), the node a Conv's (C_out, C_in/g, k...) with
  // the window flipped (ConvTranspose): the importer converts, the QDQ export converts back.
  bool transposed_weights = false;
  // No integer form: after the last layer it runs in float on the dequantized outputs (a float
  // tail); inside the network it is a float island (dequantize, float op, quantize by the
  // Scaling node inserted after it), as is any node with a quantization_blocker.
  bool float_only = false;
  bool elementwise = false;               // y[i] = f(x[i]), one input: an island is a lookup table
  NodePredicate non_negative = nullptr;   // output >= 0 whatever the input (Sigmoid): unsigned codes
  NodePredicate homogeneous = nullptr;    // f(s x) = s f(x) for s > 0, channel by channel (CLE)
  NodePredicate sign_as_input = nullptr;  // output non-negative when its input is
  bool sign_all_inputs = false;           // output non-negative when all inputs are (no constant)
  NodePredicate clamps_at_zero = nullptr; // output >= 0 whatever the input
  MeasuredThrough measured_through = MeasuredThrough::No;
  // Ops whose integer kernel sums its window instead of averaging: the window size, which the
  // Scaling node after it divides by.
  int64_t (*summed_window)(const Graph&, const Node&) = nullptr;
  // Why a node has no integer form ("" when it has): it runs as a float island.
  std::string (*quantization_blocker)(const Node&) = nullptr;

  // ---- kernels ----
  KernelFactory float_kernel = nullptr;
  // The float op is a clamp to [lo, hi] (Relu, Clip), or y = a + b of two tensors of one shape
  // (Add): the float executor may apply it in the output pass of the node before it
  // (OpKernel::fuse_epilogue).
  std::pair<float, float> (*clamp_bounds)(const Node& node) = nullptr;
  bool adds_operands = false;
  void (*pointwise_f32)(int64_t n, const float* x, float* y) = nullptr;  // attribute-free element-wise ops
  KernelFactory integer_kernel = nullptr;  // null: a float_only op, or removed before quantizing
};

// The row of an op kind; of an ONNX op type (UnsupportedError naming `node_label` and the
// supported set when the type or domain is unknown).
const OpTraits& op_traits(OpKind kind);
OpKind op_kind(const std::string& onnx_name, const std::string& domain = "",
               const std::string& node_label = "");
const char* op_name(OpKind kind);
bool is_onnx_domain(const std::string& domain);  // "" or "ai.onnx"

// ONNX op types the importer accepts (without Input and Scaling), sorted; and as "Add, ..." text.
std::vector<std::string> supported_ops();
std::string supported_ops_list();

// Output shape per sample from the input shapes per sample (the op's infer_shape, after the
// arity check); throws ShapeError / UnsupportedError naming the node.
Shape infer_shape(const Node& node, const std::vector<Shape>& inputs);

}  // namespace apl
