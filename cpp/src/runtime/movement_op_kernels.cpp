// Data-movement kernels: Transpose, Slice, Pad and Resize. Each moves elements of any dtype (float
// values, or integer codes that keep their scale), so one kernel serves the float and the
// integer network; only Resize's linear mode computes, in float (an island when quantized).
// No SIMD variants: these are copies, bounded by memory, not by arithmetic.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../ops/op_parts.hpp"
#include "kernel_util.hpp"

namespace apl {
namespace {

// Element strides of a contiguous tensor.
std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t d = s.size(); d-- > 1;) st[d - 1] = st[d] * s[d];
  return st;
}

// y[i0, i1, ...] = x[base + sum_d i_d * stride[d]] over every index of `shape` (y contiguous).
template <class T>
void strided_gather(const Shape& shape, const std::vector<int64_t>& stride, int64_t base, const T* x, T* y) {
  const size_t r = shape.size();
  const int64_t inner = shape[r - 1], inner_stride = stride[r - 1];
  int64_t outer = 1;
  for (size_t d = 0; d + 1 < r; ++d) outer *= shape[d];
  std::vector<int64_t> index(r, 0);
  int64_t src = base;
  for (int64_t o = 0; o < outer; ++o) {
    T* out = y + o * inner;
    if (inner_stride == 1) {
      std::copy_n(x + src, inner, out);
    } else {
      for (int64_t i = 0; i < inner; ++i) out[i] = x[src + i * inner_stride];
    }
    // Next index of the outer axes (an odometer), moving src along.
    for (size_t d = r - 1; d-- > 0;) {
      src += stride[d];
      if (++index[d] < shape[d]) break;
      src -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
}

void strided_gather_bytes(DType t, const Shape& shape, const std::vector<int64_t>& stride, int64_t base,
                          const void* x, void* y) {
  switch (dtype_size(t)) {
    case 1: strided_gather(shape, stride, base, static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y)); break;
    case 2: strided_gather(shape, stride, base, static_cast<const uint16_t*>(x), static_cast<uint16_t*>(y)); break;
    case 4: strided_gather(shape, stride, base, static_cast<const uint32_t*>(x), static_cast<uint32_t*>(y)); break;
    case 8: strided_gather(shape, stride, base, static_cast<const uint64_t*>(x), static_cast<uint64_t*>(y)); break;
    default: throw Error(std::string("unexpected dtype ") + dtype_name(t));
  }
}

// Transpose and Slice: one strided gather, its strides and start fixed at plan time.
class GatherKernel : public NodeKernel {
 public:
  GatherKernel(const Graph& g, const Node& n) : NodeKernel(n) {
    const Shape& in = g.node(n.inputs[0]).shape;
    const std::vector<int64_t> st = contiguous_strides(batched(1, in));
    if (n.is(OpKind::Transpose)) {
      std::vector<int64_t> perm = n.attr_ints("perm");
      if (perm.empty())
        for (size_t d = st.size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
      for (int64_t p : perm) stride_.push_back(st[p]);
    } else {  // Slice
      stride_.push_back(st[0]);
      const std::vector<SliceAxis> plan = slice_plan(n, in);
      for (size_t d = 0; d < plan.size(); ++d) {
        stride_.push_back(st[d + 1] * plan[d].step);
        base_ += plan[d].start * st[d + 1];
      }
    }
    sample_ = st[0];
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    const Tensor& x = *in[0];
    Tensor y = make_output(x, x.dtype());
    std::vector<int64_t> stride = stride_;
    stride[0] = sample_;  // the batch axis stays axis 0
    strided_gather_bytes(x.dtype(), y.shape(), stride, base_, x.raw(), y.raw());
    return y;
  }

 private:
  std::vector<int64_t> stride_;
  int64_t base_ = 0, sample_ = 1;
};

// Pad: the output filled with the pad value (the float network's `value`; code 0 in the integer
// network, where only zero padding runs), then every innermost row of the input copied to its
// place: an odometer over the other axes, the batch included.
class PadKernel : public NodeKernel {
 public:
  PadKernel(const Graph& g, const Node& n) : NodeKernel(n), in_shape_(g.node(n.inputs[0]).shape),
                                             value_(n.attr_float("value", 0.f)) {
    const std::vector<int64_t> pads = n.attr_ints("pads");
    const size_t rank = in_shape_.size() + 1;
    const std::vector<int64_t> st = contiguous_strides(batched(1, out_shape_));
    for (size_t d = 1; d < rank; ++d) offset_ += pads[d] * st[d];
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    const Tensor& x = *in[0];
    Tensor y = make_output(x, x.dtype());
    if (x.dtype() == DType::F32) std::fill_n(y.data<float>(), y.numel(), value_);
    else std::memset(y.raw(), 0, y.numel() * dtype_size(x.dtype()));
    const Shape dims = batched(x.dim(0), in_shape_);
    const std::vector<int64_t> out_stride = contiguous_strides(y.shape());
    const size_t r = dims.size(), elem = dtype_size(x.dtype());
    const size_t row_bytes = static_cast<size_t>(dims[r - 1]) * elem;
    const int64_t rows = x.numel() / dims[r - 1];
    const auto* src = static_cast<const uint8_t*>(x.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    std::vector<int64_t> index(r, 0);
    int64_t at = offset_;  // element offset of the current row in y
    for (int64_t row = 0; row < rows; ++row) {
      std::memcpy(dst + at * elem, src + row * row_bytes, row_bytes);
      for (size_t d = r - 1; d-- > 0;) {  // next row: the odometer over the outer axes
        at += out_stride[d];
        if (++index[d] < dims[d]) break;
        at -= out_stride[d] * dims[d];
        index[d] = 0;
      }
    }
    return y;
  }

 private:
  Shape in_shape_;
  float value_;
  int64_t offset_ = 0;  // of the first input element in a sample of y
};

// Resize, axis by axis (nearest and linear interpolation are separable): per spatial axis, the
// input coordinate of each output cell as onnxruntime computes it (in float).
float original_coordinate(const std::string& mode, int64_t x, float scale, int64_t out_len, int64_t in_len) {
  const float xf = static_cast<float>(x);
  if (mode == "asymmetric") return xf / scale;
  if (mode == "align_corners")
    return out_len == 1 ? 0.f : xf * static_cast<float>(in_len - 1) / static_cast<float>(out_len - 1);
  if (mode == "pytorch_half_pixel" && out_len == 1) return 0.f;
  return (xf + 0.5f) / scale - 0.5f;  // half_pixel, pytorch_half_pixel
}

int64_t nearest_index(const std::string& mode, float x, int64_t in_len) {
  float v;
  if (mode == "floor") v = std::floor(x);
  else if (mode == "ceil") v = std::ceil(x);
  else if (mode == "round_prefer_floor" && x == static_cast<float>(static_cast<int64_t>(x)) + 0.5f) v = std::floor(x);
  else v = std::round(x);  // round_prefer_ceil, and round_prefer_floor off the half
  return std::clamp<int64_t>(static_cast<int64_t>(v), 0, in_len - 1);
}

class ResizeKernel : public NodeKernel {
 public:
  ResizeKernel(const Graph& g, const Node& n) : NodeKernel(n) {
    const Shape& in = g.node(n.inputs[0]).shape;
    const ResizePlan plan = resize_plan(n, in);
    linear_ = plan.linear;
    const std::string ctm = n.attr_string("coordinate_transformation_mode", "half_pixel");
    const std::string nearest = n.attr_string("nearest_mode", "round_prefer_floor");
    Shape shape = in;
    for (size_t d = 1; d < in.size(); ++d) {  // the channel axis (d = 0) keeps its length
      Axis a;
      a.axis = d + 1;
      a.in_len = in[d];
      a.out_len = plan.out[d];
      for (int64_t o = 0; o < a.out_len; ++o) {
        const float x = original_coordinate(ctm, o, plan.scale[d], a.out_len, a.in_len);
        if (!linear_) {
          a.lo.push_back(nearest_index(nearest, x, a.in_len));
          continue;
        }
        const float c = std::clamp(x, 0.f, static_cast<float>(a.in_len - 1));
        const int64_t i0 = std::min<int64_t>(static_cast<int64_t>(c), a.in_len - 1), i1 = std::min(i0 + 1, a.in_len - 1);
        float w0 = std::fabs(c - static_cast<float>(i1)), w1 = std::fabs(c - static_cast<float>(i0));
        if (i0 == i1) w0 = w1 = 0.5f;
        a.lo.push_back(i0);
        a.hi.push_back(i1);
        a.w_lo.push_back(w0);
        a.w_hi.push_back(w1);
      }
      shape[d] = a.out_len;
      a.shape_after = shape;
      axes_.push_back(std::move(a));
    }
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor x = *in[0];
    if (linear_ && x.dtype() != DType::F32) throw Error(label_ + ": linear resize of integer codes");
    for (const Axis& a : axes_) {
      Tensor y = Tensor::uninitialized(x.dtype(), batched(x.dim(0), a.shape_after));
      int64_t outer = 1, inner = 1;
      for (size_t d = 0; d < a.axis; ++d) outer *= y.dim(static_cast<int>(d));
      for (int d = static_cast<int>(a.axis) + 1; d < y.ndim(); ++d) inner *= y.dim(d);
      if (linear_) {
        const float* src = x.data<float>();
        float* dst = y.data<float>();
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t j = 0; j < a.out_len; ++j) {
            const float* p0 = src + (o * a.in_len + a.lo[j]) * inner;
            const float* p1 = src + (o * a.in_len + a.hi[j]) * inner;
            float* q = dst + (o * a.out_len + j) * inner;
            for (int64_t i = 0; i < inner; ++i) q[i] = a.w_lo[j] * p0[i] + a.w_hi[j] * p1[i];
          }
      } else {
        const size_t bytes = static_cast<size_t>(inner) * dtype_size(x.dtype());
        const auto* src = static_cast<const uint8_t*>(x.raw());
        auto* dst = static_cast<uint8_t*>(y.raw());
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t j = 0; j < a.out_len; ++j)
            std::memcpy(dst + (o * a.out_len + j) * bytes, src + (o * a.in_len + a.lo[j]) * bytes, bytes);
      }
      x = std::move(y);
    }
    return x;
  }

 private:
  struct Axis {
    size_t axis = 0;  // of the full-rank tensor
    int64_t in_len = 1, out_len = 1;
    std::vector<int64_t> lo, hi;  // nearest: lo only
    std::vector<float> w_lo, w_hi;
    Shape shape_after;  // per sample, once this axis is resized
  };
  bool linear_ = false;
  std::vector<Axis> axes_;
};

}  // namespace

namespace float_kernels {

std::unique_ptr<OpKernel> transpose(const Graph& g, const Node& n) { return std::make_unique<GatherKernel>(g, n); }
std::unique_ptr<OpKernel> slice(const Graph& g, const Node& n) { return std::make_unique<GatherKernel>(g, n); }
std::unique_ptr<OpKernel> resize(const Graph& g, const Node& n) { return std::make_unique<ResizeKernel>(g, n); }
std::unique_ptr<OpKernel> pad(const Graph& g, const Node& n) { return std::make_unique<PadKernel>(g, n); }

}  // namespace float_kernels
}  // namespace apl
