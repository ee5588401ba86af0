// THE op registry: one traits row per op. To add an op, add its OpKind, its row here and the
// functions the row names (README, "Adding an op"); nothing else asks for the op by name.
#include <algorithm>
#include <cmath>
#include <limits>
#include <array>

#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/kernels/float_activations.hpp"
#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "op_parts.hpp"

namespace apl {
namespace {

// ---- small predicates the rows share ------------------------------------------------------------
bool always(const Node&) { return true; }
bool pads_with_zero(const Node& n) { return n.attr_float("value", 0.f) == 0.f; }
bool pads_with_non_negative(const Node& n) { return n.attr_float("value", 0.f) >= 0.f; }
bool clip_min_non_negative(const Node& n) { return n.attr_float("min", -1.f) >= 0.f; }
// Concat along the channel axis (ONNX axis 1, or its negative form).
bool concat_on_channels(const Node& n) {
  const int64_t rank = static_cast<int64_t>(n.shape.size()) + 1, axis = n.attr_int("axis", 1);
  return (axis < 0 ? axis + rank : axis) == 1;
}

int64_t pool_window(const Graph&, const Node& n) { return average_pool_divisor(n); }
int64_t global_pool_window(const Graph& g, const Node& n) {
  const Shape& in = g.node(n.inputs[0]).shape;
  return shape_numel(in) / in[0];  // H * W, or L
}

std::string blocked_by_constant_operand(const Node& n) {
  // prepare_network folds a scalar or per-channel constant (or makes it a depthwise 1x1 Conv).
  return n.params.empty() ? "" : "a constant operand that is neither a scalar nor one value per channel, "
                                 "or a per-channel one on a tensor that is not 4-D and follows no Conv/Gemm";
}
std::string blocked_matmul(const Node&) { return "MatMul on a tensor of rank > 2"; }
std::string blocked_batchnorm(const Node& n) {
  return n.shape.size() == 3 ? "" : "BatchNormalization that follows no Conv/Gemm on a non-4-D tensor";
}
std::string blocked_avgpool(const Node& n) {
  return average_pool_divisor(n) != 0 ? ""
      : "average pooling whose count varies at the border, with a window too large for exact integer sums";
}
// ---- data movement and geometry ----
bool resize_nearest(const Node& n) { return n.attr_string("mode", "nearest") == "nearest"; }
std::string blocked_resize(const Node& n) {
  return resize_nearest(n) ? "" : "linear resize (interpolates between codes)";
}
// ---- end of data movement and geometry ----
// Codes kept through a LeakyRelu hold only while |alpha| <= 1 (the negative side never outgrows
// the input's range); a steeper slope would saturate them.
std::string blocked_steep_leaky_relu(const Node& n) {
  return std::abs(n.attr_float("alpha", 0.01f)) <= 1.f ? "" : "LeakyRelu with |alpha| > 1 (its codes would saturate)";
}
std::string blocked_pad(const Node& n) { return pads_with_zero(n) ? "" : "padding with a non-zero value"; }
// The integer PRelu scales the negative side per channel: a slope that varies along other axes
// runs as a float island.
std::string blocked_prelu(const Node& n) {
  const Tensor& slope = n.params.at(0);
  if (slope.numel() == 1) return "";
  const size_t rank = n.shape.size() + 1, k = slope.shape().size();
  bool per_channel = rank >= 2 && k <= rank;
  for (size_t j = 0; per_channel && j < k; ++j)
    per_channel = slope.dim(static_cast<int>(j)) == (j + rank - k == 1 ? n.shape[0] : 1);
  return per_channel ? "" : "slope varies along other axes than the channels";
}

// Relu and Clip as clamps of the float executor's fusion (Clip's defaults: its float kernel's).
std::pair<float, float> relu_bounds(const Node&) { return {0.f, std::numeric_limits<float>::infinity()}; }
std::pair<float, float> clip_bounds(const Node& n) {
  return {n.attr_float("min", -3.4028235e38f), n.attr_float("max", 3.4028235e38f)};
}

// A row under construction: chained setters keep each row one readable statement.
struct Row : OpTraits {
  Row(OpKind k, const char* onnx_name, ShapeFn shape) {
    kind = k;
    name = onnx_name;
    infer_shape = shape;
  }
  Row&& inputs(int lo, int hi) && { min_inputs = lo; max_inputs = hi; return std::move(*this); }
  Row&& params_from(std::vector<int> idx) && { param_inputs = std::move(idx); return std::move(*this); }
  Row&& attributes_from(std::vector<std::pair<int, const char*>> a) && {
    attribute_inputs = std::move(a);
    return std::move(*this);
  }
  Row&& activation_attrs(std::vector<ActivationAttribute> a) && {
    activation_attributes = std::move(a);
    return std::move(*this);
  }
  Row&& with_constant_operand() && { constant_operand = true; return std::move(*this); }
  Row&& exported(ExportRule r) && { export_rule = r; return std::move(*this); }
  Row&& is_affine() && { affine = needs_scaling = true; export_rule = ExportRule::Affine; return std::move(*this); }
  Row&& is_join() && { join = needs_scaling = true; return std::move(*this); }
  Row&& channel_stacking_if(NodePredicate p) && { stacks_channels = p; return std::move(*this); }
  Row&& scaled() && { needs_scaling = true; return std::move(*this); }
  Row&& product_of_scales() && { multiplies_scales = needs_scaling = true; return std::move(*this); }
  Row&& codes_kept() && { keeps_codes = true; return std::move(*this); }
  Row&& codes_rounded() && { keeps_codes = rounds_codes = true; return std::move(*this); }
  Row&& is_view() && { view = keeps_codes = true; return std::move(*this); }
  Row&& removed() && { removed_by_prepare = true; export_rule = ExportRule::None; return std::move(*this); }
  Row&& weights_transposed() && { transposed_weights = true; return std::move(*this); }
  Row&& folded() && { folds_into_affine = true; export_rule = ExportRule::None; return std::move(*this); }
  Row&& no_integer_form() && { float_only = true; return std::move(*this); }
  Row&& is_elementwise() && { elementwise = true; return std::move(*this); }
  Row&& non_negative_if(NodePredicate p = always) && { non_negative = p; return std::move(*this); }
  Row&& homogeneous_if(NodePredicate p) && { homogeneous = p; return std::move(*this); }
  Row&& unsigned_if_input(NodePredicate p = always) && { sign_as_input = p; return std::move(*this); }
  Row&& unsigned_if_all_inputs() && { sign_all_inputs = true; return std::move(*this); }
  Row&& zero_clamp(NodePredicate p = always) && { clamps_at_zero = p; return std::move(*this); }
  Row&& measured(MeasuredThrough m) && { measured_through = m; return std::move(*this); }
  Row&& sums_window(int64_t (*w)(const Graph&, const Node&)) && { summed_window = w; return std::move(*this); }
  Row&& blocked(std::string (*b)(const Node&)) && { quantization_blocker = b; return std::move(*this); }
  Row&& clamps(std::pair<float, float> (*bounds)(const Node&)) && { clamp_bounds = bounds; return std::move(*this); }
  Row&& sums_operands() && { adds_operands = true; return std::move(*this); }
  Row&& kernels(KernelFactory f, KernelFactory i) && { float_kernel = f; integer_kernel = i; return std::move(*this); }
  Row&& pointwise(void (*f)(int64_t, const float*, float*), KernelFactory i) && {
    pointwise_f32 = f;
    elementwise = true;
    return std::move(*this).kernels(float_kernels::pointwise, i);
  }
};

namespace fk = float_kernels;
namespace ik = integer_kernels;
using K = OpKind;

std::vector<OpTraits> make_rows() {
  std::vector<OpTraits> rows;
  // The library's own nodes.
  rows.push_back(Row(K::Input, "Input", nullptr).inputs(0, 0).exported(ExportRule::QuantizeInput));
  rows.push_back(Row(K::Scaling, "Scaling", shapes::same).exported(ExportRule::Requantize)
                     .kernels(fk::scaling, ik::scaling));
  // Affine layers: weights, an integer GEMM, a Scaling node after.
  rows.push_back(Row(K::Conv, "Conv", shapes::window).params_from({1, 2}).is_affine().kernels(fk::conv, ik::affine));
  rows.push_back(Row(K::Gemm, "Gemm", shapes::gemm).params_from({1, 2}).is_affine().kernels(fk::dense, ik::affine));
  rows.push_back(Row(K::MatMul, "MatMul", shapes::matmul).params_from({1}).blocked(blocked_matmul)
                     .kernels(fk::dense, nullptr));  // prepare_network makes a 2-D MatMul a Gemm
  rows.push_back(Row(K::BatchNormalization, "BatchNormalization", shapes::batchnorm).params_from({1, 2, 3, 4})
                     .folded().blocked(blocked_batchnorm).kernels(fk::batchnorm, nullptr));
  // Joins and element-wise binaries: a Scaling node renormalizes their accumulator.
  rows.push_back(Row(K::Add, "Add", shapes::binary).inputs(2, 2).with_constant_operand().is_join()
                     .unsigned_if_all_inputs().blocked(blocked_by_constant_operand).sums_operands()
                     .kernels(fk::binary, ik::binary));
  rows.push_back(Row(K::Sub, "Sub", shapes::binary).inputs(2, 2).with_constant_operand().is_join()
                     .blocked(blocked_by_constant_operand).kernels(fk::binary, ik::binary));
  rows.push_back(Row(K::Mul, "Mul", shapes::binary).inputs(2, 2).with_constant_operand().product_of_scales()
                     .unsigned_if_all_inputs().blocked(blocked_by_constant_operand).kernels(fk::binary, ik::binary));
  rows.push_back(Row(K::Concat, "Concat", shapes::concat).inputs(1, -1).is_join().unsigned_if_all_inputs()
                     .channel_stacking_if(concat_on_channels).kernels(fk::concat, fk::concat));
  // Pools.
  rows.push_back(Row(K::MaxPool, "MaxPool", shapes::window).codes_kept().homogeneous_if(always)
                     .unsigned_if_input().measured(MeasuredThrough::SoleUser).kernels(fk::maxpool, ik::maxpool));
  rows.push_back(Row(K::AveragePool, "AveragePool", shapes::window).scaled().homogeneous_if(always)
                     .unsigned_if_input().sums_window(pool_window).blocked(blocked_avgpool)
                     .kernels(fk::avgpool, ik::avgpool_any_divisor));
  rows.push_back(Row(K::GlobalAveragePool, "GlobalAveragePool", shapes::global_pool).scaled()
                     .homogeneous_if(always).unsigned_if_input().sums_window(global_pool_window)
                     .kernels(fk::global_avgpool, ik::global_avgpool));
  // Activations that keep their input's codes.
  rows.push_back(Row(K::Relu, "Relu", shapes::same).codes_kept().homogeneous_if(always).unsigned_if_input()
                     .zero_clamp().measured(MeasuredThrough::AnyUsers).clamps(relu_bounds)
                     .pointwise(kernels::relu_f32, ik::relu));
  rows.push_back(Row(K::LeakyRelu, "LeakyRelu", shapes::same).codes_rounded().homogeneous_if(always)
                     .unsigned_if_input().blocked(blocked_steep_leaky_relu).kernels(fk::leaky_relu, ik::piecewise));
  rows.push_back(Row(K::Clip, "Clip", shapes::same).attributes_from({{1, "min"}, {2, "max"}})
                     .activation_attrs({{"min", -3.4028235e38f, true}, {"max", 3.4028235e38f, false}}).codes_kept()
                     .unsigned_if_input().zero_clamp(clip_min_non_negative).clamps(clip_bounds)
                     .kernels(fk::clip, ik::piecewise));
  rows.push_back(Row(K::Pad, "Pad", shapes::pad).attributes_from({{1, "pads"}, {2, "value"}}).codes_kept()
                     .homogeneous_if(pads_with_zero).unsigned_if_input(pads_with_non_negative)
                     .blocked(blocked_pad).kernels(fk::pad, fk::pad));
  // Data movement: any dtype, codes unchanged.
  rows.push_back(Row(K::Flatten, "Flatten", shapes::flatten).is_view().homogeneous_if(always)
                     .unsigned_if_input().kernels(fk::view, fk::view));
  rows.push_back(Row(K::Reshape, "Reshape", shapes::reshape).attributes_from({{1, "shape"}}).is_view()
                     .unsigned_if_input().kernels(fk::view, fk::view));
  rows.push_back(Row(K::Identity, "Identity", shapes::same).is_view().removed().unsigned_if_input()
                     .kernels(fk::view, fk::view));
  rows.push_back(Row(K::Dropout, "Dropout", shapes::same).attributes_from({{1, "ratio"}, {2, "training_mode"}})
                     .is_view().removed().unsigned_if_input().kernels(fk::view, fk::view));
  // No integer form: a float tail after the last layer, a float island inside the network.
  rows.push_back(Row(K::Softmax, "Softmax", shapes::softmax).no_integer_form().non_negative_if()
                     .kernels(fk::softmax, nullptr));
  rows.push_back(Row(K::Sigmoid, "Sigmoid", shapes::same).no_integer_form().non_negative_if()
                     .pointwise(kernels::sigmoid_f32, nullptr));
  rows.push_back(Row(K::Tanh, "Tanh", shapes::same).no_integer_form().pointwise(kernels::tanh_f32, nullptr));
  // ---- data movement and geometry ----
  // Copies of any dtype, codes unchanged (Squeeze / Unsqueeze are views of the same storage).
  rows.push_back(Row(K::Transpose, "Transpose", shapes::transpose).is_view().unsigned_if_input()
                     .kernels(fk::transpose, fk::transpose));
  rows.push_back(Row(K::Slice, "Slice", shapes::slice)
                     .attributes_from({{1, "starts"}, {2, "ends"}, {3, "axes"}, {4, "steps"}}).is_view()
                     .unsigned_if_input().kernels(fk::slice, fk::slice));
  rows.push_back(Row(K::Squeeze, "Squeeze", shapes::squeeze).attributes_from({{1, "axes"}}).is_view()
                     .unsigned_if_input().kernels(fk::view, fk::view));
  rows.push_back(Row(K::Unsqueeze, "Unsqueeze", shapes::unsqueeze).attributes_from({{1, "axes"}}).is_view()
                     .unsigned_if_input().kernels(fk::view, fk::view));
  // Nearest copies codes; linear interpolates, a float island.
  rows.push_back(Row(K::Resize, "Resize", shapes::resize)
                     .attributes_from({{1, "roi"}, {2, "scales"}, {3, "sizes"}}).codes_kept()
                     .homogeneous_if(resize_nearest).unsigned_if_input().blocked(blocked_resize)
                     .kernels(fk::resize, fk::resize));
  // Affine like Conv: weights held as a flipped Conv's, integer GEMM, Scaling node after.
  rows.push_back(Row(K::ConvTranspose, "ConvTranspose", shapes::conv_transpose).params_from({1, 2})
                     .is_affine().weights_transposed().kernels(fk::conv_transpose, ik::conv_transpose));
  // ---- end of data movement and geometry ----
  // ---- element-wise, reductions and per-channel affine ops ----
  // Variadic Add: a join like Add (inputs share one scale), numpy broadcasting.
  rows.push_back(Row(K::Sum, "Sum", shapes::variadic).inputs(1, -1).is_join().unsigned_if_all_inputs()
                     .kernels(fk::sum, ik::sum));
  // Codes kept on the positive side, the negative side times a per-channel or scalar slope.
  rows.push_back(Row(K::PRelu, "PRelu", shapes::prelu).params_from({1}).codes_rounded().homogeneous_if(always)
                     .unsigned_if_input().blocked(blocked_prelu).kernels(fk::prelu, ik::prelu));
  // Element-wise without an integer form: lookup-table islands inside the network.
  rows.push_back(Row(K::HardSigmoid, "HardSigmoid", shapes::same).no_integer_form().is_elementwise()
                     .non_negative_if().kernels(fk::hard_sigmoid, nullptr));
  rows.push_back(Row(K::HardSwish, "HardSwish", shapes::same).no_integer_form().pointwise(kernels::hard_swish_f32, nullptr));
  rows.push_back(Row(K::Elu, "Elu", shapes::same).no_integer_form().is_elementwise().kernels(fk::elu, nullptr));
  rows.push_back(Row(K::Selu, "Selu", shapes::same).no_integer_form().is_elementwise().kernels(fk::selu, nullptr));
  rows.push_back(Row(K::Softplus, "Softplus", shapes::same).no_integer_form().non_negative_if()
                     .pointwise(kernels::softplus_f32, nullptr));
  rows.push_back(Row(K::Erf, "Erf", shapes::same).no_integer_form().pointwise(kernels::erf_f32, nullptr));
  rows.push_back(Row(K::Exp, "Exp", shapes::same).no_integer_form().non_negative_if().pointwise(kernels::exp_f32, nullptr));
  rows.push_back(Row(K::Log, "Log", shapes::same).no_integer_form().pointwise(kernels::log_f32, nullptr));
  rows.push_back(Row(K::Sqrt, "Sqrt", shapes::same).no_integer_form().non_negative_if().pointwise(kernels::sqrt_f32, nullptr));
  rows.push_back(Row(K::Neg, "Neg", shapes::same).no_integer_form().pointwise(kernels::neg_f32, nullptr));
  rows.push_back(Row(K::Abs, "Abs", shapes::same).no_integer_form().non_negative_if().pointwise(kernels::abs_f32, nullptr));
  rows.push_back(Row(K::Reciprocal, "Reciprocal", shapes::same).no_integer_form().pointwise(kernels::reciprocal_f32, nullptr));
  // Along an axis, and reductions (prepare_network makes a ReduceMean over (H, W) a global average
  // pool). Axes are an input from opset 18 (13 for ReduceSum), an attribute before.
  rows.push_back(Row(K::LogSoftmax, "LogSoftmax", shapes::softmax).no_integer_form().kernels(fk::log_softmax, nullptr));
  rows.push_back(Row(K::LRN, "LRN", shapes::lrn).no_integer_form().unsigned_if_input().kernels(fk::lrn, nullptr));
  rows.push_back(Row(K::ReduceMean, "ReduceMean", shapes::reduce).attributes_from({{1, "axes"}}).no_integer_form().unsigned_if_input()
                     .kernels(fk::reduce_mean, nullptr));
  rows.push_back(Row(K::ReduceMax, "ReduceMax", shapes::reduce).attributes_from({{1, "axes"}}).no_integer_form().unsigned_if_input()
                     .kernels(fk::reduce_max, nullptr));
  rows.push_back(Row(K::ReduceSum, "ReduceSum", shapes::reduce).attributes_from({{1, "axes"}}).no_integer_form()
                     .unsigned_if_input().kernels(fk::reduce_sum, nullptr));
  // Binaries without an integer form (prepare_network folds a Div by a per-channel constant).
  rows.push_back(Row(K::Div, "Div", shapes::binary).inputs(2, 2).with_constant_operand().no_integer_form()
                     .kernels(fk::div, nullptr));
  rows.push_back(Row(K::Pow, "Pow", shapes::binary).inputs(2, 2).with_constant_operand().no_integer_form()
                     .kernels(fk::pow, nullptr));
  rows.push_back(Row(K::Max, "Max", shapes::binary).inputs(2, 2).with_constant_operand().no_integer_form()
                     .unsigned_if_all_inputs().kernels(fk::max, nullptr));
  rows.push_back(Row(K::Min, "Min", shapes::binary).inputs(2, 2).with_constant_operand().no_integer_form()
                     .unsigned_if_all_inputs().kernels(fk::min, nullptr));

  // ---- end of element-wise ----
  return rows;
}

// Rows indexed by kind, checked once: every kind has exactly one row.
const std::array<OpTraits, static_cast<size_t>(OpKind::Count)>& table() {
  static const auto rows = [] {
    std::array<OpTraits, static_cast<size_t>(OpKind::Count)> by_kind{};
    for (OpTraits& row : make_rows()) {
      OpTraits& slot = by_kind.at(static_cast<size_t>(row.kind));
      if (slot.kind != OpKind::Count) throw Error(std::string("op registry: two rows for ") + row.name);
      slot = std::move(row);
    }
    for (const OpTraits& row : by_kind)
      if (row.kind == OpKind::Count) throw Error("op registry: an OpKind has no row");
    return by_kind;
  }();
  return rows;
}

}  // namespace

const OpTraits& op_traits(OpKind kind) {
  const size_t i = static_cast<size_t>(kind);
  if (i >= static_cast<size_t>(OpKind::Count)) throw Error("invalid OpKind " + std::to_string(i));
  return table()[i];
}

const char* op_name(OpKind kind) { return op_traits(kind).name; }

bool is_onnx_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

OpKind op_kind(const std::string& onnx_name, const std::string& domain, const std::string& node_label) {
  const std::string where = node_label.empty() ? "" : " (node '" + node_label + "')";
  if (!is_onnx_domain(domain))
    throw UnsupportedError("unsupported op " + onnx_name + " of domain '" + domain + "'" + where +
                           "; only the standard ONNX domain is supported");
  for (const OpTraits& row : table())
    if (onnx_name == row.name) return row.kind;
  throw UnsupportedError("unsupported op " + onnx_name + where + "; supported ops: " + supported_ops_list());
}

std::vector<std::string> supported_ops() {
  std::vector<std::string> ops;
  for (const OpTraits& row : table())
    if (row.kind != OpKind::Input && row.kind != OpKind::Scaling) ops.push_back(row.name);
  std::sort(ops.begin(), ops.end());
  return ops;
}

std::string supported_ops_list() {
  std::string s;
  for (const std::string& op : supported_ops()) s += (s.empty() ? "" : ", ") + op;
  return s;
}

}  // namespace apl
