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
#include <cmath>

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
  if (in[0].size() == 4 && !n.traits().affine) {  // 3-D pool: (N, C, D, H, W)
    const auto passes = pool_passes(n, in[0]);
    return {in[0][0], passes[1].OH(), passes[0].OH(), passes[0].OW()};
  }
  if (in[0].size() != 3 && in[0].size() != 2)
    shape_fail(n, std::string("expects a 4-D input (N, C, H, W) or a 3-D one (N, C, L)") +
                      (n.traits().affine ? "" : " or a 5-D one (N, C, D, H, W)") + ", got (N, " +
                      shape_str(in[0]).substr(1));
  const kernels::Conv2dShape g = window_geometry(n, in[0]);  // validates the window
  if (g.OH() <= 0 || g.OW() <= 0)
    shape_fail(n, "window larger than the padded input " + shape_str(in[0]));
  if (in[0].size() == 2) return {g.K, g.OW()};  // 1-D: run as an H = 1 window
  return {g.K, g.OH(), g.OW()};
}

// 1-D windows on (N, C, L) run as 2-D ones of height 1: their attributes as 2-D ones.
std::vector<int64_t> as_2d(const std::vector<int64_t>& v, bool one_d, int64_t h) {
  if (!one_d || v.size() != 1) return v;
  return {h, v[0]};
}
std::vector<int64_t> pads_as_2d(const std::vector<int64_t>& p, bool one_d) {
  if (!one_d || p.size() != 2) return p;
  return {0, p[0], 0, p[1]};
}

}  // namespace

kernels::Conv2dShape window_geometry(const Node& n, const Shape& in) {
  kernels::Conv2dShape g;
  if (in.size() != 3 && in.size() != 2) shape_fail(n, "expects a 4-D input (N, C, H, W) or a 3-D one (N, C, L)");
  const bool one_d = in.size() == 2;
  const size_t rank = one_d ? 1 : 2;  // spatial axes
  g.C = in[0];
  g.H = one_d ? 1 : in[1];
  g.W = in.back();
  if (g.C <= 0 || g.H <= 0 || g.W <= 0) shape_fail(n, "empty input " + shape_str(in));
  require_ints(n, {"kernel_shape", "strides", "dilations", "pads"});
  std::vector<int64_t> kernel = n.attr_ints("kernel_shape");
  const bool affine = n.traits().affine;
  if (!affine && !n.attrs.count("kernel_shape")) shape_fail(n, "kernel_shape is required");
  if (affine) {  // Conv: the weights give K and the kernel
    if (n.params.empty()) shape_fail(n, "has no weights (input 1 is missing or empty)");
    const Shape& w = n.params[0].shape();
    if (w.size() != rank + 2)
      shape_fail(n, std::string("weights must be ") + (one_d ? "3-D (K, C/group, L)" : "4-D (K, C/group, R, S)") +
                        " for a " + std::to_string(rank + 2) + "-D input, got " + shape_str(w));
    g.groups = n.attr_int("group", 1);
    g.K = w[0];
    if (g.K <= 0) shape_fail(n, "weights " + shape_str(w) + " have no output channel");
    if (g.groups <= 0 || g.C % g.groups || g.K % g.groups || w[1] != g.C / g.groups)
      shape_fail(n, "weights " + shape_str(w) + " do not fit " + std::to_string(g.C) +
                        " input channels with group " + std::to_string(g.groups));
    const std::vector<int64_t> window(w.begin() + 2, w.end());
    if (kernel.empty()) kernel = window;
    if (kernel != window) shape_fail(n, "kernel_shape " + ints_str(kernel) + " disagrees with weights " + shape_str(w));
    if (n.params.size() > 1 && n.params[1].numel() != g.K)
      shape_fail(n, "bias of shape " + shape_str(n.params[1].shape()) + " for " +
                        std::to_string(g.K) + " output channels");
  } else {
    g.K = g.C;
  }
  if (kernel.size() != rank)
    shape_fail(n, "kernel_shape " + ints_str(kernel) + " must have " + std::to_string(rank) +
                      " value(s) for a " + std::to_string(rank + 2) + "-D input (1-D and 2-D windows are supported)");
  kernel = as_2d(kernel, one_d, 1);
  g.R = kernel[0];
  g.S = kernel[1];
  if (g.R <= 0 || g.S <= 0) shape_fail(n, "kernel_shape " + ints_str(kernel) + " must be positive");
  const auto strides = as_2d(n.attr_ints("strides", std::vector<int64_t>(rank, 1)), one_d, 1);
  const auto dilations = as_2d(n.attr_ints("dilations", std::vector<int64_t>(rank, 1)), one_d, 1);
  std::vector<int64_t> pads = pads_as_2d(n.attr_ints("pads", std::vector<int64_t>(2 * rank, 0)), one_d);
  if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4)
    shape_fail(n, "strides, dilations and pads must describe " + std::to_string(rank) + " spatial axis/axes");
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
  // As onnxruntime: a pooling window must overlap the input (explicit pads below the kernel).
  if (!affine && auto_pad == "NOTSET" &&
      (g.pad_top >= g.R || g.pad_bottom >= g.R || g.pad_left >= g.S || g.pad_right >= g.S))
    shape_fail(n, "pads " + ints_str(pads) + " must be smaller than kernel_shape " + ints_str(kernel));
  if (n.attr_int("ceil_mode", 0) != 0) {
    if (affine) shape_fail(n, "has no ceil_mode attribute");
    // Output length rounded up, without a last window that starts in the end padding (as
    // onnxruntime and torch): the missing cells become extra end padding.
    const auto extra = [&](int64_t size, int64_t pad_begin, int64_t pad_end, int64_t ext, int64_t st) {
      const int64_t span = size + pad_begin + pad_end - ext;
      if (span < 0) return int64_t{0};  // the size check below fails
      int64_t out = (span + st - 1) / st + 1;
      if ((out - 1) * st >= size + pad_begin) --out;
      return std::max<int64_t>(0, (out - 1) * st + ext - (size + pad_begin + pad_end));
    };
    g.ceil_extra_h = extra(g.H, g.pad_top, g.pad_bottom, extent_h, g.stride_h);
    g.ceil_extra_w = extra(g.W, g.pad_left, g.pad_right, extent_w, g.stride_w);
    g.pad_bottom += g.ceil_extra_h;
    g.pad_right += g.ceil_extra_w;
  }
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

std::vector<kernels::Pool2dShape> pool_passes(const Node& n, const Shape& in) {
  if (in.size() != 4) return {window_geometry(n, in)};
  require_ints(n, {"kernel_shape", "strides", "dilations", "pads"});
  if (!n.attrs.count("kernel_shape")) shape_fail(n, "kernel_shape is required");
  const auto kernel = n.attr_ints("kernel_shape");
  const auto strides = n.attr_ints("strides", {1, 1, 1}), dilations = n.attr_ints("dilations", {1, 1, 1});
  const auto pads = n.attr_ints("pads", {0, 0, 0, 0, 0, 0});
  if (kernel.size() != 3 || strides.size() != 3 || dilations.size() != 3 || pads.size() != 6)
    shape_fail(n, "kernel_shape " + ints_str(kernel) + ", strides, dilations and pads must describe the 3 "
                  "spatial axes of a 5-D input");
  // Each pass is the node with the window of its axes (auto_pad and ceil_mode act per axis).
  const auto pass = [&](std::vector<int64_t> k, std::vector<int64_t> st, std::vector<int64_t> dil,
                        std::vector<int64_t> p, const Shape& plane) {
    Node axes = n;
    axes.set_attr("kernel_shape", std::move(k));
    axes.set_attr("strides", std::move(st));
    axes.set_attr("dilations", std::move(dil));
    axes.set_attr("pads", std::move(p));
    return window_geometry(axes, plane);
  };
  const std::string who = n.label();
  const kernels::Pool2dShape hw = pass({kernel[1], kernel[2]}, {strides[1], strides[2]},
                                       {dilations[1], dilations[2]}, {pads[1], pads[2], pads[4], pads[5]},
                                       {checked_mul(in[0], in[1], who + ": depth planes"), in[2], in[3]});
  const kernels::Pool2dShape depth = pass({kernel[0], 1}, {strides[0], 1}, {dilations[0], 1},
                                          {pads[0], 0, pads[3], 0}, {in[0], in[1], hw.OH() * hw.OW()});
  return {hw, depth};
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
  if (in[0].size() < 2) shape_fail(n, "expects a 4-D input (N, C, H, W), a 3-D one (N, C, L) or a 5-D one (N, C, D, H, W)");
  Shape out(in[0].size(), 1);
  out[0] = in[0][0];
  return out;
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
  const int64_t rank = static_cast<int64_t>(in[0].size()) + 1;
  const int64_t axis = n.attr_int("axis", 1);
  if (axis != 1 && axis != 1 - rank)  // axis -rank+1 is axis 1 too
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
  if (pads.size() != 2 * r) shape_fail(n, "pads must have " + std::to_string(2 * r) + " values");
  if (pads[0] != 0 || pads[r] != 0) throw UnsupportedError(n.label() + ": padding the batch axis");
  Shape out = in[0];
  for (size_t d = 1; d < r; ++d) {
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

// ---- data movement and geometry: Transpose, Slice, Squeeze, Unsqueeze, Resize, ConvTranspose ----
namespace apl {
namespace {

// An integer list attribute that a constant input may hold as floats (an empty tensor reads as
// an empty integer list): as integers.
std::vector<float> attr_floats(const Node& n, const char* key) {
  auto it = n.attrs.find(key);
  if (it == n.attrs.end()) return {};
  const Attribute& a = it->second;
  if (a.kind == Attribute::Kind::Floats) return a.floats;
  if (a.kind == Attribute::Kind::Ints) return std::vector<float>(a.ints.begin(), a.ints.end());
  if (a.kind == Attribute::Kind::Float) return {a.f};
  if (a.kind == Attribute::Kind::Int) return {static_cast<float>(a.i)};
  shape_fail(n, std::string(key) + " must be a list of numbers");
}

// Axes of a full-rank tensor (batch = 0), normalised, distinct; the batch axis refused.
std::vector<int64_t> non_batch_axes(const Node& n, const std::vector<int64_t>& axes, int64_t rank,
                                    const char* what) {
  std::vector<int64_t> out;
  for (int64_t a : axes) {
    const int64_t axis = normalise_axis(n, a, rank);
    if (axis == 0) throw UnsupportedError(n.label() + ": " + what + " the batch axis (axis 0)");
    if (std::find(out.begin(), out.end(), axis) != out.end())
      shape_fail(n, "axis " + std::to_string(a) + " is given twice in " + ints_str(axes));
    out.push_back(axis);
  }
  return out;
}

std::string resize_mode(const Node& n) { return n.attr_string("mode", "nearest"); }

}  // namespace

std::vector<SliceAxis> slice_plan(const Node& n, const Shape& in) {
  require_ints(n, {"starts", "ends", "axes", "steps"});
  const int64_t rank = static_cast<int64_t>(in.size()) + 1;
  if (!n.has_attr("starts") || !n.has_attr("ends")) shape_fail(n, "needs starts and ends (inputs 1 and 2)");
  const auto starts = n.attr_ints("starts"), ends = n.attr_ints("ends");
  std::vector<int64_t> axes = n.attr_ints("axes"), steps = n.attr_ints("steps");
  if (!n.has_attr("axes"))
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (!n.has_attr("steps")) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    shape_fail(n, "starts " + ints_str(starts) + ", ends " + ints_str(ends) + ", axes " + ints_str(axes) +
                      " and steps " + ints_str(steps) + " must have the same length");
  std::vector<SliceAxis> plan(in.size());
  for (size_t d = 0; d < in.size(); ++d) plan[d] = {0, 1, in[d]};
  std::vector<int64_t> seen;
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t axis = normalise_axis(n, axes[i], rank);
    if (std::find(seen.begin(), seen.end(), axis) != seen.end())
      shape_fail(n, "axis " + std::to_string(axes[i]) + " is sliced twice (axes " + ints_str(axes) + ")");
    seen.push_back(axis);
    const int64_t step = steps[i];
    if (step == 0) shape_fail(n, "steps " + ints_str(steps) + " holds a 0 (a slice step must be non-zero)");
    if (axis == 0) {  // the batch: only the whole of it
      if (step == 1 && starts[i] == 0 && ends[i] >= (int64_t{1} << 31) - 1) continue;
      throw UnsupportedError(n.label() + ": slicing the batch axis (axis 0) is not supported");
    }
    const int64_t dim = in[axis - 1];
    // ONNX: negative indices count from the end, then clamp ([0, dim] going forward,
    // [-1, dim - 1] going backward).
    int64_t start = starts[i] < 0 ? std::max<int64_t>(starts[i], INT64_MIN + dim) + dim : starts[i];
    int64_t end = ends[i] < 0 ? std::max<int64_t>(ends[i], INT64_MIN + dim) + dim : ends[i];
    int64_t count;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      count = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
      start = std::clamp<int64_t>(start, 0, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
      count = start > end ? (start - end - 1) / -step + 1 : 0;
    }
    if (count == 0)
      shape_fail(n, "slice of axis " + std::to_string(axis) + " (size " + std::to_string(dim) + ") from " +
                        std::to_string(starts[i]) + " to " + std::to_string(ends[i]) + " step " +
                        std::to_string(step) + " is empty");
    plan[axis - 1] = {start, step, count};
  }
  return plan;
}

ResizePlan resize_plan(const Node& n, const Shape& in) {
  ResizePlan p;
  const std::string mode = resize_mode(n);
  if (mode != "nearest" && mode != "linear")
    throw UnsupportedError(n.label() + ": mode '" + mode + "' is not supported (nearest, linear)");
  p.linear = mode == "linear";
  const std::string ctm = n.attr_string("coordinate_transformation_mode", "half_pixel");
  const bool known = ctm == "half_pixel" || ctm == "pytorch_half_pixel" || ctm == "align_corners" ||
                     ctm == "asymmetric";  // as onnxruntime runs at opset 13+
  if (!known)
    throw UnsupportedError(n.label() + ": coordinate_transformation_mode '" + ctm +
                           "' is not supported (half_pixel, pytorch_half_pixel, align_corners, asymmetric)");
  const std::string nearest = n.attr_string("nearest_mode", "round_prefer_floor");
  if (nearest != "round_prefer_floor" && nearest != "round_prefer_ceil" && nearest != "floor" && nearest != "ceil")
    throw UnsupportedError(n.label() + ": nearest_mode '" + nearest + "' is not supported");
  if (n.attr_int("antialias", 0) != 0) throw UnsupportedError(n.label() + ": antialias=1 is not supported");
  if (n.has_attr("axes")) throw UnsupportedError(n.label() + ": the axes attribute is not supported (give every axis)");
  if (n.attr_string("keep_aspect_ratio_policy", "stretch") != "stretch")
    throw UnsupportedError(n.label() + ": keep_aspect_ratio_policy other than stretch is not supported");
  const size_t rank = in.size() + 1;
  if (rank < 3) throw UnsupportedError(n.label() + ": expects an input (N, C, spatial...)");
  const std::vector<float> scales = attr_floats(n, "scales");
  require_ints(n, {"sizes"});
  const std::vector<int64_t> sizes = n.attr_ints("sizes");
  if (scales.empty() == sizes.empty())
    shape_fail(n, "needs exactly one of scales (input 2) and sizes (input 3), non-empty");
  if (!scales.empty() && scales.size() != rank)
    shape_fail(n, "scales has " + std::to_string(scales.size()) + " values for a rank-" + std::to_string(rank) + " input");
  if (!sizes.empty() && sizes.size() != rank)
    shape_fail(n, "sizes " + ints_str(sizes) + " must have one value per axis (rank " + std::to_string(rank) + ")");
  if (!scales.empty() && scales[0] != 1.f)
    throw UnsupportedError(n.label() + ": resizing the batch axis is not supported");
  for (size_t d = 1; d < rank; ++d) {
    const int64_t in_len = in[d - 1];
    int64_t out;
    float scale;
    if (!scales.empty()) {
      scale = scales[d];
      if (!(scale > 0.f) || !std::isfinite(scale))
        shape_fail(n, "scale " + std::to_string(scale) + " of axis " + std::to_string(d) + " must be positive");
      const double o = std::floor(static_cast<double>(in_len) * scale);
      if (o > static_cast<double>(kMaxTensorElements)) shape_fail(n, "output too large");
      out = static_cast<int64_t>(o);
    } else {
      out = sizes[d];
      if (out <= 0) shape_fail(n, "sizes " + ints_str(sizes) + " must be positive");
      scale = static_cast<float>(out) / static_cast<float>(in_len);
    }
    if (out <= 0) shape_fail(n, "axis " + std::to_string(d) + " resized to an empty length");
    if (d == 1 && out != in_len)
      throw UnsupportedError(n.label() + ": resizing the channel axis is not supported");
    p.out.push_back(out);
    p.scale.push_back(scale);
  }
  return p;
}

ConvTransposeGeometry conv_transpose_geometry(const Node& n, const Shape& in) {
  if (in.size() != 3 && in.size() != 2)
    shape_fail(n, "expects a 4-D input (N, C, H, W) or a 3-D one (N, C, L), got (N, " + shape_str(in).substr(1));
  require_ints(n, {"kernel_shape", "strides", "dilations", "pads", "output_padding", "output_shape"});
  const bool one_d = in.size() == 2;
  const size_t rank = one_d ? 1 : 2;
  if (n.params.empty()) shape_fail(n, "has no weights (input 1 is missing or empty)");
  const Shape& w = n.params[0].shape();
  if (w.size() != rank + 2)
    shape_fail(n, "weights " + shape_str(w) + " must have " + std::to_string(rank + 2) + " dimensions for this input");
  ConvTransposeGeometry t;
  kernels::Conv2dShape& g = t.conv;
  g.groups = n.attr_int("group", 1);
  g.C = in[0];
  g.K = w[0];
  if (g.groups <= 0 || g.C % g.groups || g.K % g.groups || w[1] != g.C / g.groups || g.K <= 0)
    shape_fail(n, "weights (held as (C_out, C_in/group, ...)) " + shape_str(w) + " do not fit " +
                      std::to_string(g.C) + " input channels with group " + std::to_string(g.groups));
  if (n.params.size() > 1 && n.params[1].numel() != g.K)
    shape_fail(n, "bias of shape " + shape_str(n.params[1].shape()) + " for " + std::to_string(g.K) + " output channels");
  const std::vector<int64_t> window(w.begin() + 2, w.end());
  const auto kernel = n.attr_ints("kernel_shape", window);
  if (kernel != window) shape_fail(n, "kernel_shape " + ints_str(kernel) + " disagrees with the weights");
  const auto k2 = as_2d(kernel, one_d, 1);
  const auto strides = as_2d(n.attr_ints("strides", std::vector<int64_t>(rank, 1)), one_d, 1);
  const auto dil = as_2d(n.attr_ints("dilations", std::vector<int64_t>(rank, 1)), one_d, 1);
  const auto out_pad = as_2d(n.attr_ints("output_padding", std::vector<int64_t>(rank, 0)), one_d, 0);
  std::vector<int64_t> pads = pads_as_2d(n.attr_ints("pads", std::vector<int64_t>(2 * rank, 0)), one_d);
  if (strides.size() != 2 || dil.size() != 2 || out_pad.size() != 2 || pads.size() != 4)
    shape_fail(n, "strides, dilations, output_padding and pads must describe " + std::to_string(rank) + " spatial axis/axes");
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "VALID") pads = {0, 0, 0, 0};
  else if (auto_pad != "NOTSET")
    throw UnsupportedError(n.label() + ": auto_pad '" + auto_pad + "' is not supported (give pads or output_shape)");
  const int64_t size[2] = {one_d ? 1 : in[1], in.back()};
  const std::string who = n.label();
  int64_t full[2];  // output length with no pads
  for (int a = 0; a < 2; ++a) {
    if (k2[a] <= 0 || strides[a] <= 0 || dil[a] <= 0)
      shape_fail(n, "kernel_shape, strides and dilations must be positive");
    if (out_pad[a] < 0 || out_pad[a] >= std::max(strides[a], dil[a]))
      shape_fail(n, "output_padding " + ints_str(n.attr_ints("output_padding")) + " must be below the stride (or the dilation)");
    const int64_t extent = checked_add(checked_mul(dil[a], k2[a] - 1, who + ": window"), 1, who);
    full[a] = checked_add(checked_add(checked_mul(strides[a], size[a] - 1, who + ": output size"), extent, who),
                          out_pad[a], who);
  }
  if (n.has_attr("output_shape")) {  // pads follow from the requested size (ONNX's rule)
    auto target = n.attr_ints("output_shape");
    if (target.size() == rank + 2) target.erase(target.begin(), target.begin() + 2);
    target = as_2d(target, one_d, full[0]);
    if (target.size() != 2) shape_fail(n, "output_shape " + ints_str(n.attr_ints("output_shape")) + " must give the spatial size");
    for (int a = 0; a < 2; ++a) {
      const int64_t total = full[a] - target[a];
      if (total < 0) throw UnsupportedError(n.label() + ": output_shape larger than the full transposed convolution");
      pads[a] = total - total / 2;
      pads[a + 2] = total / 2;
    }
  }
  for (int64_t p : pads)
    if (p < 0) shape_fail(n, "pads " + ints_str(pads) + " must be non-negative");
  g.R = k2[0];
  g.S = k2[1];
  g.dil_h = dil[0];
  g.dil_w = dil[1];
  const int64_t out_h = full[0] - pads[0] - pads[2], out_w = full[1] - pads[1] - pads[3];
  if (out_h <= 0 || out_w <= 0) shape_fail(n, "pads " + ints_str(pads) + " leave an empty output");
  g.H = out_h + g.dil_h * (g.R - 1);
  g.W = out_w + g.dil_w * (g.S - 1);
  t.in_h = size[0];
  t.in_w = size[1];
  t.stride_h = strides[0];
  t.stride_w = strides[1];
  t.offset_h = g.dil_h * (g.R - 1) - pads[0];
  t.offset_w = g.dil_w * (g.S - 1) - pads[1];
  checked_numel({g.C, g.H, g.W}, who + ": spread-out input");
  int64_t work = checked_mul(checked_mul(g.K, out_h, who + ": output size"), out_w, who + ": output size");
  work = checked_mul(work, checked_mul(g.R, g.S, who + ": window taps"), who + ": work per sample", kMaxWindowWork);
  checked_mul(work, g.channels_per_group(), who + ": work per sample", kMaxWindowWork);
  return t;
}

namespace shapes {

Shape transpose(const Node& n, const std::vector<Shape>& in) {
  require_ints(n, {"perm"});
  const int64_t rank = static_cast<int64_t>(in[0].size()) + 1;
  std::vector<int64_t> perm = n.attr_ints("perm");
  if (!n.has_attr("perm"))
    for (int64_t d = rank - 1; d >= 0; --d) perm.push_back(d);
  std::vector<bool> used(static_cast<size_t>(rank), false);
  bool ok = static_cast<int64_t>(perm.size()) == rank;
  for (size_t i = 0; ok && i < perm.size(); ++i) {
    ok = perm[i] >= 0 && perm[i] < rank && !used[perm[i]];
    if (ok) used[perm[i]] = true;
  }
  if (!ok)
    shape_fail(n, "perm " + ints_str(perm) + " is not a permutation of the " + std::to_string(rank) +
                      " axes 0.." + std::to_string(rank - 1));
  if (perm[0] != 0) throw UnsupportedError(n.label() + ": perm " + ints_str(perm) + " moves the batch axis (perm[0] must be 0)");
  Shape out;
  for (int64_t d = 1; d < rank; ++d) out.push_back(in[0][perm[d] - 1]);
  return out;
}

Shape slice(const Node& n, const std::vector<Shape>& in) {
  Shape out;
  for (const SliceAxis& a : slice_plan(n, in[0])) out.push_back(a.count);
  return out;
}

Shape squeeze(const Node& n, const std::vector<Shape>& in) {
  require_ints(n, {"axes"});
  const int64_t rank = static_cast<int64_t>(in[0].size()) + 1;
  std::vector<int64_t> axes;
  if (n.has_attr("axes")) {
    axes = non_batch_axes(n, n.attr_ints("axes"), rank, "squeezes");
  } else {  // every axis of length 1 (but the batch)
    for (int64_t d = 1; d < rank; ++d)
      if (in[0][d - 1] == 1) axes.push_back(d);
  }
  Shape out;
  for (int64_t d = 1; d < rank; ++d) {
    const bool drop = std::find(axes.begin(), axes.end(), d) != axes.end();
    if (drop && in[0][d - 1] != 1)
      shape_fail(n, "axis " + std::to_string(d) + " of (N, " + shape_str(in[0]).substr(1) + " has length " +
                        std::to_string(in[0][d - 1]) + ", not 1");
    if (!drop) out.push_back(in[0][d - 1]);
  }
  return out;
}

Shape unsqueeze(const Node& n, const std::vector<Shape>& in) {
  require_ints(n, {"axes"});
  if (!n.has_attr("axes")) shape_fail(n, "needs axes (input 1)");
  const auto given = n.attr_ints("axes");
  const int64_t rank = static_cast<int64_t>(in[0].size() + given.size()) + 1;
  const auto axes = non_batch_axes(n, given, rank, "inserts an axis before");
  Shape out;
  size_t next = 0;
  for (int64_t d = 1; d < rank; ++d)
    out.push_back(std::find(axes.begin(), axes.end(), d) != axes.end() ? 1 : in[0][next++]);
  return out;
}

Shape resize(const Node& n, const std::vector<Shape>& in) { return resize_plan(n, in[0]).out; }

Shape conv_transpose(const Node& n, const std::vector<Shape>& in) {
  const ConvTransposeGeometry t = conv_transpose_geometry(n, in[0]);
  if (in[0].size() == 2) return {t.conv.K, t.conv.OW()};
  return {t.conv.K, t.conv.OH(), t.conv.OW()};
}

}  // namespace shapes
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
