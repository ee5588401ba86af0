// Shape inference and attribute validation of every op: the infer_shape functions that the
// registry rows (registry.cpp) name. Shapes are per sample (no batch axis).
//
// Every count is computed with overflow checks (checked_add / checked_mul / checked_numel,
// tensor.hpp): a model file must get a ShapeError naming the node, never a wrapped count. Limits:
// every per-sample shape, and every padded window input, holds at most kMaxTensorElements
// (2^33) elements; one window op (Conv, MaxPool, AveragePool) does at most kMaxWindowWork
// (2^40) multiply-adds or compares per sample, so a file cannot make a forward run for days.
#include <algorithm>
#include <climits>

#include "aidge_ptq_lite/op_geometry.hpp"
#include "op_parts.hpp"

namespace apl {
namespace {

constexpr int64_t kMaxWindowWork = int64_t{1} << 40;

[[noreturn]] void shape_fail(const Node& n, const std::string& what) {
  throw ShapeError(n.label() + ": " + what);
}

// Attributes read as integer lists must be integer lists (a float list reads as empty).
void require_ints(const Node& n, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    auto it = n.attrs.find(key);
    if (it != n.attrs.end() && it->second.kind != Attribute::Kind::Ints)
      shape_fail(n, std::string(key) + " must be a list of integers");
  }
}

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Full-rank shapes carry the batch as dimension 0 (written as 1 here); constants broadcast
// against them right-aligned, as in numpy.
Shape broadcast(const Node& n, const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    const int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1)
      shape_fail(n, "cannot broadcast " + shape_str(a) + " with " + shape_str(b));
    out[i] = std::max(da, db);
  }
  return out;
}

Shape with_batch(const Shape& s) {
  Shape f{1};
  f.insert(f.end(), s.begin(), s.end());
  return f;
}

Shape infer_binary(const Node& n, const std::vector<Shape>& in) {
  Shape a, b;
  if (in.size() == 2) {
    a = with_batch(in[0]);
    b = with_batch(in[1]);
  } else if (in.size() == 1 && n.params.size() == 1) {
    a = with_batch(in[0]);
    b = n.params[0].shape();
    if (b.size() > a.size()) shape_fail(n, "constant operand has a higher rank than the data");
    if (b.size() == a.size() && b[0] != 1) shape_fail(n, "constant operand spans the batch axis");
  } else {
    shape_fail(n, "expects two operands");
  }
  Shape out = broadcast(n, a, b);
  if (out.size() != a.size() || (in.size() == 2 && out.size() != b.size()))
    shape_fail(n, "operands of different rank");
  return Shape(out.begin() + 1, out.end());
}

int64_t normalise_axis(const Node& n, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    shape_fail(n, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

Shape infer_window(const Node& n, const std::vector<Shape>& in) {
  if (in[0].size() != 3) shape_fail(n, "expects a 4-D input (N, C, H, W), got (N, " +
                                           shape_str(in[0]).substr(1));
  const kernels::Conv2dShape g = window_geometry(n, in[0]);  // validates the window
  if (g.OH() <= 0 || g.OW() <= 0)
    shape_fail(n, "window larger than the padded input " + shape_str(in[0]));
  return {g.K, g.OH(), g.OW()};
}

}  // namespace

kernels::Conv2dShape window_geometry(const Node& n, const Shape& in) {
  kernels::Conv2dShape g;
  if (in.size() != 3) shape_fail(n, "expects a 4-D input (N, C, H, W)");
  g.C = in[0];
  g.H = in[1];
  g.W = in[2];
  if (g.C <= 0 || g.H <= 0 || g.W <= 0) shape_fail(n, "empty input " + shape_str(in));
  require_ints(n, {"kernel_shape", "strides", "dilations", "pads"});
  std::vector<int64_t> kernel = n.attr_ints("kernel_shape");
  const bool affine = n.traits().affine;
  if (!affine && !n.attrs.count("kernel_shape")) shape_fail(n, "kernel_shape is required");
  if (affine) {  // Conv: the weights give K and the kernel
    if (n.params.empty()) shape_fail(n, "has no weights (input 1 is missing or empty)");
    const Shape& w = n.params[0].shape();
    if (w.size() != 4) shape_fail(n, "weights must be 4-D (K, C/group, R, S), got " + shape_str(w));
    g.groups = n.attr_int("group", 1);
    g.K = w[0];
    if (g.K <= 0) shape_fail(n, "weights " + shape_str(w) + " have no output channel");
    if (g.groups <= 0 || g.C % g.groups || g.K % g.groups || w[1] != g.C / g.groups)
      shape_fail(n, "weights " + shape_str(w) + " do not fit " + std::to_string(g.C) +
                        " input channels with group " + std::to_string(g.groups));
    if (kernel.empty()) kernel = {w[2], w[3]};
    if (kernel.size() != 2) shape_fail(n, "only 2-D windows are supported");
    if (kernel[0] != w[2] || kernel[1] != w[3]) shape_fail(n, "kernel_shape disagrees with weights");
    if (n.params.size() > 1 && n.params[1].numel() != g.K)
      shape_fail(n, "bias of shape " + shape_str(n.params[1].shape()) + " for " +
                        std::to_string(g.K) + " output channels");
  } else {
    g.K = g.C;
  }
  if (kernel.size() != 2) shape_fail(n, "only 2-D windows are supported (kernel_shape " + ints_str(kernel) + ")");
  g.R = kernel[0];
  g.S = kernel[1];
  if (g.R <= 0 || g.S <= 0) shape_fail(n, "kernel_shape " + ints_str(kernel) + " must be positive");
  const auto strides = n.attr_ints("strides", {1, 1});
  const auto dilations = n.attr_ints("dilations", {1, 1});
  std::vector<int64_t> pads = n.attr_ints("pads", {0, 0, 0, 0});
  if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4)
    shape_fail(n, "strides, dilations and pads must describe 2 spatial axes");
  g.stride_h = strides[0];
  g.stride_w = strides[1];
  g.dil_h = dilations[0];
  g.dil_w = dilations[1];
  if (g.stride_h <= 0 || g.stride_w <= 0 || g.dil_h <= 0 || g.dil_w <= 0)
    shape_fail(n, "strides and dilations must be positive");
  const std::string who = n.label();
  // Window extents dil * (k - 1) + 1, checked: a kernel or dilation of 2^62 must not wrap.
  const int64_t extent_h = checked_add(checked_mul(g.dil_h, g.R - 1, who + ": window height"), 1, who);
  const int64_t extent_w = checked_add(checked_mul(g.dil_w, g.S - 1, who + ": window width"), 1, who);
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const int64_t size[2] = {g.H, g.W}, window[2] = {extent_h, extent_w},
                  st[2] = {g.stride_h, g.stride_w};
    for (int a = 0; a < 2; ++a) {
      const int64_t out = (size[a] - 1) / st[a] + 1;  // ceil(size / stride), without overflow
      // (out - 1) * st < size, so the sum is at most size + window: checked once.
      const int64_t total = std::max<int64_t>(
          0, checked_add((out - 1) * st[a], window[a], who + ": auto_pad") - size[a]);
      const int64_t small = total / 2, big = total - small;
      pads[a] = auto_pad == "SAME_UPPER" ? small : big;
      pads[a + 2] = auto_pad == "SAME_UPPER" ? big : small;
    }
  } else if (auto_pad == "VALID") {
    pads = {0, 0, 0, 0};
  } else if (auto_pad != "NOTSET") {
    throw UnsupportedError(n.label() + ": auto_pad '" + auto_pad + "' is not supported");
  }
  for (int64_t p : pads)
    if (p < 0) shape_fail(n, "pads " + ints_str(pads) + " must be non-negative");
  g.pad_top = pads[0];
  g.pad_left = pads[1];
  g.pad_bottom = pads[2];
  g.pad_right = pads[3];
  if (n.attr_int("ceil_mode", 0) != 0)
    throw UnsupportedError(n.label() + ": ceil_mode=1 is not supported");
  // As onnxruntime: a pooling window must overlap the input (explicit pads below the kernel).
  if (!affine && auto_pad == "NOTSET" &&
      (g.pad_top >= g.R || g.pad_bottom >= g.R || g.pad_left >= g.S || g.pad_right >= g.S))
    shape_fail(n, "pads " + ints_str(pads) + " must be smaller than kernel_shape " + ints_str(kernel));
  // The padded input, which the kernels copy plane by plane, is bounded like any tensor.
  const int64_t padded_h = checked_add(checked_add(g.H, g.pad_top, who + ": padded height"),
                                       g.pad_bottom, who + ": padded height");
  const int64_t padded_w = checked_add(checked_add(g.W, g.pad_left, who + ": padded width"),
                                       g.pad_right, who + ": padded width");
  checked_numel({g.C, padded_h, padded_w}, who + ": padded input");
  if (extent_h > padded_h || extent_w > padded_w)
    shape_fail(n, "window " + std::to_string(extent_h) + "x" + std::to_string(extent_w) +
                      " larger than the padded input " + std::to_string(padded_h) + "x" +
                      std::to_string(padded_w));
  // A stride past the last window position gives one output row (column) whatever its value:
  // use the smallest such stride, so the kernels' phase arithmetic stays within the input.
  g.stride_h = std::min(g.stride_h, padded_h - extent_h + 1);
  g.stride_w = std::min(g.stride_w, padded_w - extent_w + 1);
  // Work per sample: output cells x window taps (x input channels per group for Conv).
  const int64_t taps = checked_mul(g.R, g.S, who + ": window taps");
  int64_t work = checked_mul(checked_mul(g.K, g.OH(), who + ": output size"), g.OW(), who + ": output size");
  work = checked_mul(work, taps, who + ": work per sample", kMaxWindowWork);
  if (affine) checked_mul(work, g.channels_per_group(), who + ": work per sample", kMaxWindowWork);
  return g;
}

namespace shapes {

Shape window(const Node& n, const std::vector<Shape>& in) { return infer_window(n, in); }

Shape same(const Node&, const std::vector<Shape>& in) { return in[0]; }

Shape softmax(const Node& n, const std::vector<Shape>& in) {
  const int64_t axis = normalise_axis(n, n.attr_int("axis", -1), in[0].size() + 1);
  if (axis == 0) throw UnsupportedError(n.label() + ": softmax over the batch axis");
  return in[0];
}

Shape batchnorm(const Node& n, const std::vector<Shape>& in) {
  if (in[0].empty()) shape_fail(n, "expects an input with channels");
  if (n.params.size() != 4)
    shape_fail(n, "expects 4 constant inputs (scale, B, mean, var), has " + std::to_string(n.params.size()));
  for (const Tensor& p : n.params)
    if (p.numel() != in[0][0])
      shape_fail(n, "parameter of shape " + shape_str(p.shape()) + " for " +
                        std::to_string(in[0][0]) + " channels");
  return in[0];
}

Shape global_pool(const Node& n, const std::vector<Shape>& in) {
  if (in[0].size() != 3) shape_fail(n, "expects a 4-D input");
  return {in[0][0], 1, 1};
}

Shape gemm(const Node& n, const std::vector<Shape>& in) {
  if (in[0].size() != 1) shape_fail(n, "expects a 2-D input (N, K), got (N, " + shape_str(in[0]).substr(1));
  if (n.attr_int("transA", 0) != 0)
    throw UnsupportedError(n.label() + ": transA=1 would mix the batch axis into the reduction");
  if (n.params.empty()) shape_fail(n, "has no B operand (input 1 is missing or empty)");
  const Shape& b = n.params[0].shape();
  if (b.size() != 2) shape_fail(n, "B must be 2-D, got " + shape_str(b));
  const bool tb = n.attr_int("transB", 0) != 0;
  const int64_t k = tb ? b[1] : b[0], m = tb ? b[0] : b[1];
  if (k != in[0][0]) shape_fail(n, "input has " + std::to_string(in[0][0]) + " features, B expects " + std::to_string(k));
  if (n.params.size() > 1 && n.params[1].numel() != m && n.params[1].numel() != 1)
    shape_fail(n, "C of shape " + shape_str(n.params[1].shape()) + " does not broadcast to " + std::to_string(m));
  return {m};
}

Shape matmul(const Node& n, const std::vector<Shape>& in) {
  if (n.params.empty() && in.size() == 1) shape_fail(n, "has no second operand (input 1 is missing or empty)");
  if (n.params.size() != 1) throw UnsupportedError(n.label() + ": MatMul of two data tensors is not supported (the second operand must be a constant)");
  const Shape& b = n.params[0].shape();
  if (b.size() != 2) throw UnsupportedError(n.label() + ": only a 2-D constant operand is supported");
  if (in[0].empty() || in[0].back() != b[0])
    shape_fail(n, "inner dimensions differ: (N, " + shape_str(in[0]).substr(1) + " x " + shape_str(b));
  Shape out = in[0];
  out.back() = b[1];
  return out;
}

Shape binary(const Node& n, const std::vector<Shape>& in) { return infer_binary(n, in); }

Shape concat(const Node& n, const std::vector<Shape>& in) {
  const int64_t axis = normalise_axis(n, n.attr_int("axis", 1), in[0].size() + 1);
  if (axis == 0) throw UnsupportedError(n.label() + ": concatenation along the batch axis");
  Shape out = in[0];
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i].size() != out.size()) shape_fail(n, "inputs of different rank");
    for (size_t d = 0; d < out.size(); ++d)
      if (static_cast<int64_t>(d) + 1 != axis && in[i][d] != out[d])
        shape_fail(n, "input " + std::to_string(i) + " of shape " + shape_str(in[i]) + " does not match " + shape_str(in[0]));
    out[axis - 1] = checked_add(out[axis - 1], in[i][axis - 1], n.label() + ": concatenated size");
  }
  return out;
}

Shape flatten(const Node& n, const std::vector<Shape>& in) {
  if (n.attr_int("axis", 1) != 1)
    throw UnsupportedError(n.label() + ": only axis=1 keeps the batch axis");
  return {checked_numel(in[0], n.label() + ": input")};
}

Shape reshape(const Node& n, const std::vector<Shape>& in) {
  require_ints(n, {"shape"});
  const auto target = n.attr_ints("shape");
  if (target.empty() || (target[0] != 0 && target[0] != -1))
    throw UnsupportedError(n.label() + ": the target shape " + shape_str(target) +
                           " must keep the batch axis (first dimension 0 or -1)");
  Shape out(target.begin() + 1, target.end());
  int64_t known = 1, infer = -1;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 0) {  // copies the input's dimension at the same position (ONNX allowzero=0)
      if (n.attr_int("allowzero", 0) != 0)
        throw UnsupportedError(n.label() + ": allowzero=1 with a 0 in the target shape (an empty tensor)");
      if (d >= in[0].size())
        shape_fail(n, "a 0 at position " + std::to_string(d + 1) + " of the target shape " +
                          shape_str(target) + " copies no input dimension (the input has rank " +
                          std::to_string(in[0].size() + 1) + ")");
      out[d] = in[0][d];
    }
    if (out[d] == -1) {
      if (infer >= 0 || target[0] == -1) shape_fail(n, "more than one -1 in " + shape_str(target));
      infer = static_cast<int64_t>(d);
    } else if (out[d] < 0) {
      shape_fail(n, "negative dimension " + std::to_string(out[d]) + " in the target shape " + shape_str(target));
    } else {
      // Saturates: a product past the input's size can only fail the size check below.
      if (__builtin_mul_overflow(known, out[d], &known)) known = INT64_MAX;
    }
  }
  const int64_t total = checked_numel(in[0], n.label() + ": input");
  if (infer >= 0) {
    if (known == 0 || total % known) shape_fail(n, "cannot reshape " + shape_str(in[0]) + " to " + shape_str(target));
    out[infer] = total / known;
  }
  if (known == INT64_MAX || checked_numel(out, n.label() + ": target shape") != total)
    shape_fail(n, "cannot reshape " + shape_str(in[0]) + " to " + shape_str(target));
  return out;
}

Shape pad(const Node& n, const std::vector<Shape>& in) {
  if (n.attr_string("mode", "constant") != "constant")
    throw UnsupportedError(n.label() + ": only constant padding is supported");
  require_ints(n, {"pads"});
  const auto pads = n.attr_ints("pads");
  const size_t r = in[0].size() + 1;
  if (r != 4) throw UnsupportedError(n.label() + ": only 4-D (N, C, H, W) inputs can be padded");
  if (pads.size() != 2 * r) shape_fail(n, "pads must have " + std::to_string(2 * r) + " values");
  for (size_t d = 0; d + 2 < r; ++d)
    if (pads[d] != 0 || pads[d + r] != 0)
      throw UnsupportedError(n.label() + ": only the last two axes can be padded");
  Shape out = in[0];
  for (size_t d = r - 2; d < r; ++d) {
    if (pads[d] < 0 || pads[d + r] < 0) throw UnsupportedError(n.label() + ": negative pads");
    const std::string what = n.label() + ": padded size of axis " + std::to_string(d);
    out[d - 1] = checked_add(checked_add(out[d - 1], pads[d], what), pads[d + r], what);
  }
  return out;
}

}  // namespace shapes

Shape infer_shape(const Node& n, const std::vector<Shape>& in) {
  const OpTraits& t = n.traits();
  if (!t.infer_shape) throw UnsupportedError(n.label() + " has no shape inference");
  // Ops with a possible constant operand check their operands themselves.
  if (!t.constant_operand) {
    if (in.empty() && t.min_inputs > 0) shape_fail(n, "has no input");
    if (in.size() < static_cast<size_t>(t.min_inputs) ||
        (t.max_inputs >= 0 && in.size() > static_cast<size_t>(t.max_inputs)))
      shape_fail(n, "expects " + std::to_string(t.min_inputs) + " data input(s), has " +
                        std::to_string(in.size()));
  }
  // Every shape a node reads and makes is bounded (this also checks the graph input's declared
  // dims at its first consumer): the kernels' index arithmetic cannot overflow.
  for (size_t i = 0; i < in.size(); ++i)
    if (checked_numel(in[i], n.label() + ": input " + std::to_string(i)) == 0)
      shape_fail(n, "input " + std::to_string(i) + " of shape " + shape_str(in[i]) + " is empty");
  Shape out = t.infer_shape(n, in);
  checked_numel(out, n.label() + ": output");
  return out;
}

}  // namespace apl

// ---- element-wise, reductions and per-channel ops ----
namespace apl::shapes {

Shape variadic(const Node& n, const std::vector<Shape>& in) {
  Shape out = with_batch(in[0]);
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i].size() != in[0].size()) shape_fail(n, "inputs of different rank");
    out = broadcast(n, out, with_batch(in[i]));
  }
  return Shape(out.begin() + 1, out.end());
}

Shape prelu(const Node& n, const std::vector<Shape>& in) {
  if (n.params.size() != 1) shape_fail(n, "the slope (input 1) must be a constant");
  const Shape x = with_batch(in[0]), slope = n.params[0].shape();
  if (slope.size() > x.size() || broadcast(n, x, slope) != x)
    shape_fail(n, "slope of shape " + shape_str(slope) + " does not broadcast to the input (N, " +
                      shape_str(in[0]).substr(1));
  if (slope.size() == x.size() && slope[0] != 1) shape_fail(n, "slope spans the batch axis");
  return in[0];
}

Shape reduce(const Node& n, const std::vector<Shape>& in) {
  require_ints(n, {"axes"});
  const int64_t rank = static_cast<int64_t>(in[0].size()) + 1;
  const auto axes = n.attr_ints("axes", {});
  if (axes.empty())
    throw UnsupportedError(n.label() + ": no axes (a reduction over every axis, the batch too); give the axes");
  std::vector<bool> reduced(rank, false);
  for (int64_t a : axes) {
    const int64_t axis = normalise_axis(n, a, rank);
    if (axis == 0) throw UnsupportedError(n.label() + ": reduction over the batch axis");
    if (reduced[axis]) shape_fail(n, "axis " + std::to_string(a) + " given twice");
    reduced[axis] = true;
  }
  const bool keep = n.attr_int("keepdims", 1) != 0;
  Shape out;
  for (int64_t d = 1; d < rank; ++d)
    if (!reduced[d]) out.push_back(in[0][d - 1]);
    else if (keep) out.push_back(1);
  return out;
}

Shape lrn(const Node& n, const std::vector<Shape>& in) {
  if (in[0].size() < 2) shape_fail(n, "expects an input (N, C, ...) of rank 3 or more");
  if (n.attr_int("size", 0) < 1) shape_fail(n, "size must be a positive number of channels");
  return in[0];
}

}  // namespace apl::shapes
