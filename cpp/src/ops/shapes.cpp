// Shape inference and attribute validation of every op: the infer_shape functions that the
// registry rows (registry.cpp) name. Shapes are per sample (no batch axis).
#include <algorithm>

#include "aidge_ptq_lite/op_geometry.hpp"
#include "op_parts.hpp"

namespace apl {
namespace {

[[noreturn]] void shape_fail(const Node& n, const std::string& what) {
  throw ShapeError(n.label() + ": " + what);
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
  const kernels::Conv2dShape g = window_geometry(n, in[0]);
  if (g.OH() <= 0 || g.OW() <= 0)
    shape_fail(n, "window larger than the padded input " + shape_str(in[0]));
  return {g.K, g.OH(), g.OW()};
}

}  // namespace

kernels::Conv2dShape window_geometry(const Node& n, const Shape& in) {
  kernels::Conv2dShape g;
  g.C = in.at(0);
  g.H = in.at(1);
  g.W = in.at(2);
  std::vector<int64_t> kernel = n.attr_ints("kernel_shape");
  if (n.traits().affine) {  // Conv: the weights give K and the kernel
    const Shape& w = n.params.at(0).shape();
    if (w.size() != 4) shape_fail(n, "weights must be 4-D (K, C/group, R, S), got " + shape_str(w));
    g.groups = n.attr_int("group", 1);
    g.K = w[0];
    if (g.groups <= 0 || g.C % g.groups || g.K % g.groups || w[1] != g.C / g.groups)
      shape_fail(n, "weights " + shape_str(w) + " do not fit " + std::to_string(g.C) +
                        " input channels with group " + std::to_string(g.groups));
    if (kernel.empty()) kernel = {w[2], w[3]};
    if (kernel[0] != w[2] || kernel[1] != w[3]) shape_fail(n, "kernel_shape disagrees with weights");
  } else {
    g.K = g.C;
  }
  if (kernel.size() != 2) shape_fail(n, "only 2-D windows are supported");
  g.R = kernel[0];
  g.S = kernel[1];
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
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const int64_t extent[2] = {g.H, g.W}, k[2] = {g.R, g.S}, st[2] = {g.stride_h, g.stride_w},
                  dl[2] = {g.dil_h, g.dil_w};
    for (int a = 0; a < 2; ++a) {
      const int64_t out = (extent[a] + st[a] - 1) / st[a];
      const int64_t total = std::max<int64_t>(0, (out - 1) * st[a] + (k[a] - 1) * dl[a] + 1 - extent[a]);
      const int64_t small = total / 2, big = total - small;
      pads[a] = auto_pad == "SAME_UPPER" ? small : big;
      pads[a + 2] = auto_pad == "SAME_UPPER" ? big : small;
    }
  } else if (auto_pad == "VALID") {
    pads = {0, 0, 0, 0};
  } else if (auto_pad != "NOTSET") {
    throw UnsupportedError(n.label() + ": auto_pad '" + auto_pad + "' is not supported");
  }
  g.pad_top = pads[0];
  g.pad_left = pads[1];
  g.pad_bottom = pads[2];
  g.pad_right = pads[3];
  if (n.attr_int("ceil_mode", 0) != 0)
    throw UnsupportedError(n.label() + ": ceil_mode=1 is not supported");
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
  const Shape& b = n.params.at(0).shape();
  if (b.size() != 2) shape_fail(n, "B must be 2-D, got " + shape_str(b));
  const bool tb = n.attr_int("transB", 0) != 0;
  const int64_t k = tb ? b[1] : b[0], m = tb ? b[0] : b[1];
  if (k != in[0][0]) shape_fail(n, "input has " + std::to_string(in[0][0]) + " features, B expects " + std::to_string(k));
  if (n.params.size() > 1 && n.params[1].numel() != m && n.params[1].numel() != 1)
    shape_fail(n, "C of shape " + shape_str(n.params[1].shape()) + " does not broadcast to " + std::to_string(m));
  return {m};
}

Shape matmul(const Node& n, const std::vector<Shape>& in) {
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
    out[axis - 1] += in[i][axis - 1];
  }
  return out;
}

Shape flatten(const Node& n, const std::vector<Shape>& in) {
  if (n.attr_int("axis", 1) != 1)
    throw UnsupportedError(n.label() + ": only axis=1 keeps the batch axis");
  return {shape_numel(in[0])};
}

Shape reshape(const Node& n, const std::vector<Shape>& in) {
  const auto target = n.attr_ints("shape");
  if (target.empty() || (target[0] != 0 && target[0] != -1))
    throw UnsupportedError(n.label() + ": the target shape " + shape_str(target) +
                           " must keep the batch axis (first dimension 0 or -1)");
  Shape out(target.begin() + 1, target.end());
  int64_t known = 1, infer = -1;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 0) out[d] = d < in[0].size() ? in[0][d] : 1;
    if (out[d] == -1) {
      if (infer >= 0 || target[0] == -1) shape_fail(n, "more than one -1 in " + shape_str(target));
      infer = static_cast<int64_t>(d);
    } else {
      known *= out[d];
    }
  }
  const int64_t total = shape_numel(in[0]);
  if (infer >= 0) {
    if (known == 0 || total % known) shape_fail(n, "cannot reshape " + shape_str(in[0]) + " to " + shape_str(target));
    out[infer] = total / known;
  }
  if (shape_numel(out) != total) shape_fail(n, "cannot reshape " + shape_str(in[0]) + " to " + shape_str(target));
  return out;
}

Shape pad(const Node& n, const std::vector<Shape>& in) {
  if (n.attr_string("mode", "constant") != "constant")
    throw UnsupportedError(n.label() + ": only constant padding is supported");
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
    out[d - 1] += pads[d] + pads[d + r];
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
  return t.infer_shape(n, in);
}

}  // namespace apl
