// Small helpers shared by the float and integer op kernels.
#pragma once
#include <functional>

#include "aidge_ptq_lite/executor.hpp"
#include "aidge_ptq_lite/kernels/int_kernels.hpp"

namespace apl {

inline Shape batched(int64_t N, const Shape& per_sample) {
  Shape s{N};
  s.insert(s.end(), per_sample.begin(), per_sample.end());
  return s;
}

// Base for kernels that know their node's output shape.
class NodeKernel : public OpKernel {
 public:
  explicit NodeKernel(const Node& n) : out_shape_(n.shape), label_(n.label()) {}

 protected:
  // Uninitialised: every kernel writes all of its output.
  Tensor make_output(const Tensor& x, DType dtype = DType::F32) const {
    return Tensor::uninitialized(dtype, batched(x.dim(0), out_shape_));
  }
  Shape out_shape_;
  std::string label_;
};

// Element-wise float ops: y[i] = f(x[i]) with the node's attributes bound at plan time.
class PointwiseKernel : public NodeKernel {
 public:
  using Fn = std::function<void(int64_t, const float*, float*)>;
  PointwiseKernel(const Node& n, Fn f) : NodeKernel(n), f_(std::move(f)) {}
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0]);
    f_(y.numel(), in[0]->data<float>(), y.data<float>());
    return y;
  }

 private:
  Fn f_;
};

// A function of the middle axis of an (outer, axis, inner) view: Softmax, LogSoftmax, LRN.
class AxisKernel : public NodeKernel {
 public:
  using Fn = std::function<void(int64_t, int64_t, int64_t, const float*, float*)>;
  AxisKernel(const Node& n, int64_t axis, Fn f) : NodeKernel(n), f_(std::move(f)) {
    const int64_t rank = static_cast<int64_t>(n.shape.size()) + 1;
    axis_ = axis < 0 ? axis + rank : axis;
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0]);
    const Shape& s = y.shape();
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis_; ++d) outer *= s[d];
    for (size_t d = axis_ + 1; d < s.size(); ++d) inner *= s[d];
    f_(outer, s[axis_], inner, in[0]->data<float>(), y.data<float>());
    return y;
  }

 private:
  int64_t axis_;
  Fn f_;
};

// Channels (axis 1) and the size of everything after them, for per-channel factors.
inline void channel_layout(const Tensor& t, int64_t& channels, int64_t& inner) {
  channels = t.ndim() > 1 ? t.dim(1) : 1;
  inner = t.numel() / (t.dim(0) * channels);
}

// Integer affine kernels (int_op_kernels.cpp): the Scaling node run fused into the affine
// node's kernel (null: none; that Scaling node then passes its input through), and its record.
const Node* fused_scaling(const Graph& g, const Node& affine);
kernels::RequantParams requant_params(const Graph& g, const Node& scaling);
// An 8-bit Conv/Gemm's int32 bias plus its Scaling node's accumulator offset (zero points).
std::vector<int32_t> bias_with_offsets(const Graph& g, const Node& affine);

}  // namespace apl
