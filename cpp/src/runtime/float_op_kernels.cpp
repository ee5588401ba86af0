// Float kernels of every op: the executor's plain mode, also used during calibration.
#include <algorithm>
#include <cstring>
#include <functional>

#include "../ops/op_parts.hpp"
#include "aidge_ptq_lite/executor.hpp"
#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "aidge_ptq_lite/op_geometry.hpp"
#include "kernel_util.hpp"

namespace apl {
namespace {

using namespace kernels;

class ConvKernel : public NodeKernel {
 public:
  ConvKernel(const Graph& g, const Node& n)
      : NodeKernel(n),
        conv_(window_geometry(n, g.node(n.inputs[0]).shape), n.params[0].data<float>(),
              n.params.size() > 1 ? n.params[1].data<float>() : nullptr) {}
  Tensor run(const std::vector<const Tensor*>& in) const override { return run_with(in, {}); }
  bool fuse_epilogue(const FusedEpilogue& e) override {
    if (e.after_own_scaling) return false;  // a no_quant network's Scaling node runs on its own
    if (e.factor && e.factor->numel() != 1 && e.factor->numel() != conv_.shape().K) return false;
    if (e.factor) factor_.assign(e.factor->data<float>(), e.factor->data<float>() + e.factor->numel());
    clamp_ = {e.lo, e.hi};
    return true;
  }
  Tensor run_fused(const std::vector<const Tensor*>& in, const Tensor* residual) const override {
    return run_with(in, {factor_.empty() ? nullptr : factor_.data(), static_cast<int64_t>(factor_.size()),
                         residual ? residual->data<float>() : nullptr, clamp_});
  }

 private:
  Tensor run_with(const std::vector<const Tensor*>& in, const Epilogue& epilogue) const {
    Tensor y = make_output(*in[0]);
    conv_.run(in[0]->dim(0), in[0]->data<float>(), y.data<float>(), epilogue);
    return y;
  }
  ConvF32 conv_;
  std::vector<float> factor_;  // of a fused Scaling node
  Clamp clamp_;
};

class PoolKernel : public NodeKernel {
 public:
  PoolKernel(const Graph& g, const Node& n, bool max)
      : NodeKernel(n), passes_(pool_passes(n, g.node(n.inputs[0]).shape)),
        max_(max), include_pad_(n.attr_int("count_include_pad", 0) != 0) {}
  Tensor run(const std::vector<const Tensor*>& in) const override {
    const int64_t N = in[0]->dim(0);
    Tensor y = make_output(*in[0]), between;  // between the two passes of a 3-D window
    const float* src = in[0]->data<float>();
    for (const Pool2dShape& s : passes_) {
      const bool last = &s == &passes_.back();
      if (!last) between = Tensor::uninitialized(DType::F32, {N, s.C, s.OH(), s.OW()});
      float* dst = last ? y.data<float>() : between.data<float>();
      if (max_)
        maxpool2d_f32(s, N, src, dst);
      else
        avgpool2d_f32(s, include_pad_, N, src, dst);
      src = dst;
    }
    return y;
  }

 private:
  std::vector<Pool2dShape> passes_;  // at most two
  bool max_, include_pad_;
};

class GlobalAvgPoolKernel : public NodeKernel {
 public:
  using NodeKernel::NodeKernel;
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0]);
    global_avgpool_f32(in[0]->dim(0), in[0]->dim(1), in[0]->numel() / (in[0]->dim(0) * in[0]->dim(1)),
                       in[0]->data<float>(), y.data<float>());
    return y;
  }
};

// Gemm and MatMul (which has none of Gemm's attributes and no bias): y = x * W (+ bias), W
// stored (K x M) once at plan time.
class DenseKernel : public NodeKernel {
 public:
  DenseKernel(const Graph& g, const Node& n) : NodeKernel(n) {
    const Tensor& b = n.params.at(0);
    const bool trans_b = n.attr_int("transB", 0) != 0;
    k_ = trans_b ? b.dim(1) : b.dim(0);
    m_ = trans_b ? b.dim(0) : b.dim(1);
    const float alpha = n.attr_float("alpha", 1.f);
    weights_ = Tensor(DType::F32, {k_, m_});
    float* w = weights_.data<float>();
    const float* src = b.data<float>();
    for (int64_t i = 0; i < k_; ++i)
      for (int64_t j = 0; j < m_; ++j) w[i * m_ + j] = alpha * (trans_b ? src[j * k_ + i] : src[i * m_ + j]);
    if (n.params.size() > 1) {
      const float beta = n.attr_float("beta", 1.f);
      bias_.assign(static_cast<size_t>(m_), 0.f);
      const Tensor& c = n.params[1];
      for (int64_t j = 0; j < m_; ++j) bias_[j] = beta * c.data<float>()[c.numel() == 1 ? 0 : j];
    }
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0]);
    const int64_t rows = in[0]->numel() / k_;
    float* out = y.data<float>();
    float beta = 0.f;
    if (!bias_.empty()) {
      for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * m_, bias_.data(), m_ * sizeof(float));
      beta = 1.f;
    }
    sgemm(false, false, rows, m_, k_, 1.f, in[0]->data<float>(), k_, weights_.data<float>(), m_,
          beta, out, m_);
    return y;
  }

 private:
  int64_t k_ = 0, m_ = 0;
  Tensor weights_;
  std::vector<float> bias_;
};

class BatchNormKernel : public NodeKernel {
 public:
  BatchNormKernel(const Graph&, const Node& n)
      : NodeKernel(n), params_(n.params), eps_(n.attr_float("epsilon", 1e-5f)) {}
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0]);
    const int64_t C = in[0]->dim(1);
    batchnorm_f32(in[0]->dim(0), C, in[0]->numel() / (in[0]->dim(0) * C), in[0]->data<float>(),
                  params_[0].data<float>(), params_[1].data<float>(), params_[2].data<float>(),
                  params_[3].data<float>(), eps_, y.data<float>());
    return y;
  }

 private:
  std::vector<Tensor> params_;
  float eps_;
};

BinaryOp binary_op(const Node& n) {
  switch (n.kind) {
    case OpKind::Add: return BinaryOp::Add;
    case OpKind::Sub: return BinaryOp::Sub;
    case OpKind::Mul: return BinaryOp::Mul;
    default: throw Error(n.label() + " is not an element-wise binary op");
  }
}

class BinaryKernel : public NodeKernel {
 public:
  BinaryKernel(const Graph&, const Node& n) : NodeKernel(n) {
    op_ = binary_op(n);
    if (!n.params.empty()) {
      constant_ = n.params[0];
      const_index_ = static_cast<int>(n.attr_int("const_index", 1));
    }
  }
  Tensor run(const std::vector<const Tensor*>& in) const override { return run_with(in, {}); }
  bool fuse_epilogue(const FusedEpilogue& e) override {
    clamp_ = {e.lo, e.hi};
    return !e.after_own_scaling && !e.factor && !e.residual;
  }
  Tensor run_fused(const std::vector<const Tensor*>& in, const Tensor*) const override { return run_with(in, clamp_); }

 private:
  Tensor run_with(const std::vector<const Tensor*>& in, Clamp clamp) const {
    const Tensor* a = in[0];
    const Tensor* b = in.size() > 1 ? in[1] : &constant_;
    if (in.size() == 1 && const_index_ == 0) std::swap(a, b);
    Tensor y = make_output(*in[0]);
    binary_f32(op_, a->shape(), a->data<float>(), b->shape(), b->data<float>(), y.shape(),
               y.data<float>(), clamp);
    return y;
  }
  Clamp clamp_;
  BinaryOp op_;
  Tensor constant_;
  int const_index_ = 1;
};

class ConcatKernel : public NodeKernel {
 public:
  ConcatKernel(const Graph&, const Node& n) : NodeKernel(n) {
    axis_ = n.attr_int("axis", 1);
    if (axis_ < 0) axis_ += static_cast<int64_t>(n.shape.size()) + 1;
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0], in[0]->dtype());
    std::vector<int64_t> sizes;
    std::vector<const void*> ptrs;
    for (const Tensor* t : in) {
      sizes.push_back(t->dim(static_cast<int>(axis_)));
      ptrs.push_back(t->raw());
    }
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis_; ++d) outer *= y.dim(static_cast<int>(d));
    for (int d = static_cast<int>(axis_) + 1; d < y.ndim(); ++d) inner *= y.dim(d);
    concat_bytes(outer, inner * static_cast<int64_t>(dtype_size(y.dtype())), sizes.data(),
                 ptrs.data(), static_cast<int>(in.size()), y.raw());
    return y;
  }

 private:
  int64_t axis_;
};

// Scaling: y = x * factor[channel], the float network's factor, or in a quantized no_quant
// network its requantization factor. A dequantization point passes its accumulator through
// (the executor applies its factors to the graph outputs).
Tensor as_tensor(const std::vector<float>& v) {
  Tensor t(DType::F32, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

class ScalingKernel : public NodeKernel {
 public:
  ScalingKernel(const Graph& g, const Node& n)
      : NodeKernel(n), factor_(g.is_quantized() ? as_tensor(n.quant.requant.factor) : n.params.at(0)),
        pass_through_(g.is_quantized() && n.quant.requant.dequantize_point) {}
  Tensor run(const std::vector<const Tensor*>& in) const override { return run_with(in, {}); }
  bool fuse_epilogue(const FusedEpilogue& e) override {
    clamp_ = {e.lo, e.hi};
    return !pass_through_ && !e.after_own_scaling && !e.factor && !e.residual;
  }
  Tensor run_fused(const std::vector<const Tensor*>& in, const Tensor*) const override { return run_with(in, clamp_); }

 private:
  Tensor run_with(const std::vector<const Tensor*>& in, Clamp clamp) const {
    if (pass_through_) return *in[0];
    Tensor y = make_output(*in[0]);
    int64_t channels, inner;
    channel_layout(y, channels, inner);
    const float* x = in[0]->data<float>();
    const float* f = factor_.data<float>();
    float* out = y.data<float>();
    const int64_t N = y.dim(0);
#pragma omp parallel for collapse(2) schedule(static) if (y.numel() > 65536)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < channels; ++c) {
        const float s = f[factor_.numel() == 1 ? 0 : c];
        const int64_t base = (n * channels + c) * inner;
        for (int64_t i = 0; i < inner; ++i) out[base + i] = clamp(x[base + i] * s);
      }
    return y;
  }

  Tensor factor_;
  bool pass_through_;
  Clamp clamp_;
};

// Identity, Dropout, Flatten, Reshape: a view of the same storage.
class ViewKernel : public NodeKernel {
 public:
  using NodeKernel::NodeKernel;
  Tensor run(const std::vector<const Tensor*>& in) const override {
    return in[0]->reshaped(batched(in[0]->dim(0), out_shape_));
  }
};

}  // namespace

namespace float_kernels {

std::unique_ptr<OpKernel> conv(const Graph& g, const Node& n) { return std::make_unique<ConvKernel>(g, n); }
std::unique_ptr<OpKernel> maxpool(const Graph& g, const Node& n) { return std::make_unique<PoolKernel>(g, n, true); }
std::unique_ptr<OpKernel> avgpool(const Graph& g, const Node& n) { return std::make_unique<PoolKernel>(g, n, false); }
std::unique_ptr<OpKernel> global_avgpool(const Graph&, const Node& n) { return std::make_unique<GlobalAvgPoolKernel>(n); }
std::unique_ptr<OpKernel> dense(const Graph& g, const Node& n) { return std::make_unique<DenseKernel>(g, n); }
std::unique_ptr<OpKernel> batchnorm(const Graph& g, const Node& n) { return std::make_unique<BatchNormKernel>(g, n); }
std::unique_ptr<OpKernel> pointwise(const Graph&, const Node& n) {
  return std::make_unique<PointwiseKernel>(n, n.traits().pointwise_f32);
}
std::unique_ptr<OpKernel> leaky_relu(const Graph&, const Node& n) {
  const float alpha = n.attr_float("alpha", 0.01f);
  return std::make_unique<PointwiseKernel>(n, [alpha](int64_t k, const float* x, float* y) { leaky_relu_f32(k, alpha, x, y); });
}
std::unique_ptr<OpKernel> clip(const Graph&, const Node& n) {
  const float lo = n.attr_float("min", -3.4028235e38f), hi = n.attr_float("max", 3.4028235e38f);
  return std::make_unique<PointwiseKernel>(n, [lo, hi](int64_t k, const float* x, float* y) { clip_f32(k, lo, hi, x, y); });
}
std::unique_ptr<OpKernel> softmax(const Graph&, const Node& n) { return std::make_unique<AxisKernel>(n, n.attr_int("axis", -1), softmax_f32); }
std::unique_ptr<OpKernel> binary(const Graph& g, const Node& n) { return std::make_unique<BinaryKernel>(g, n); }
std::unique_ptr<OpKernel> concat(const Graph& g, const Node& n) { return std::make_unique<ConcatKernel>(g, n); }
std::unique_ptr<OpKernel> scaling(const Graph& g, const Node& n) { return std::make_unique<ScalingKernel>(g, n); }
std::unique_ptr<OpKernel> view(const Graph&, const Node& n) { return std::make_unique<ViewKernel>(n); }

}  // namespace float_kernels

std::unique_ptr<OpKernel> make_float_kernel(const Graph& g, const Node& n) {
  if (const KernelFactory f = n.traits().float_kernel) return f(g, n);
  throw UnsupportedError("no float kernel for " + n.label());
}

}  // namespace apl
