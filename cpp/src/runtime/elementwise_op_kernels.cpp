// Float and integer kernels of the element-wise, reduction and per-channel ops (Sum, PRelu,
// HardSigmoid, Elu, Selu, LRN, LogSoftmax, Reduce*, Div, Pow, Max, Min): the factories that their
// registry rows name (op_parts.hpp).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "../kernels/broadcast_plan.hpp"
#include "../ops/op_parts.hpp"
#include "aidge_ptq_lite/fixed_point.hpp"
#include "aidge_ptq_lite/kernels/float_activations.hpp"
#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "aidge_ptq_lite/kernels/int_kernels.hpp"
#include "aidge_ptq_lite/kernels/requantize.hpp"
#include "kernel_util.hpp"

namespace apl {
namespace {

using namespace kernels;

// Sum of any number of inputs, numpy broadcasting, accumulated in place into the output.
class SumKernel : public NodeKernel {
 public:
  using NodeKernel::NodeKernel;
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y(DType::F32, batched(in[0]->dim(0), out_shape_));  // zeros
    for (const Tensor* x : in)
      binary_f32(BinaryOp::Add, y.shape(), y.data<float>(), x->shape(), x->data<float>(), y.shape(),
                 y.data<float>());
    return y;
  }
};

// Integer Sum: the inputs share one scale (max arbitration, as for Add); an accumulator the
// Scaling node after it renormalizes.
class IntSumKernel : public NodeKernel {
 public:
  IntSumKernel(const Graph& g, const Node& n)
      : NodeKernel(n), acc_(g.quant_config().spec().acc_dtype()) {}
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y(acc_, batched(in[0]->dim(0), out_shape_));  // zeros
    for (const Tensor* x : in) {
      if (acc_ == DType::I64) add<int64_t, int32_t>(y, *x);
      else if (x->dtype() == DType::U8) add<int32_t, uint8_t>(y, *x);
      else add<int32_t, int8_t>(y, *x);
    }
    return y;
  }

 private:
  template <class Acc, class T> static void add(Tensor& y, const Tensor& x) {
    binary_int<Acc, T, Acc>(IntBinaryOp::Add, y.shape(), y.data<Acc>(), x.shape(), x.data<T>(), y.shape(),
                            y.data<Acc>());
  }
  DType acc_;
};

// The slope of a PRelu expanded to one whole sample (it broadcasts to the input, ONNX's
// unidirectional broadcasting).
std::vector<float> expanded_slope(const Node& n) {
  const Tensor& slope = n.params.at(0);
  Shape sample{1};
  sample.insert(sample.end(), n.shape.begin(), n.shape.end());
  Tensor zeros(DType::F32, sample), out(DType::F32, sample);
  binary_f32(BinaryOp::Add, zeros.shape(), zeros.data<float>(), slope.shape(), slope.data<float>(), sample,
             out.data<float>());
  return std::vector<float>(out.data<float>(), out.data<float>() + out.numel());
}

class PReluKernel : public NodeKernel {
 public:
  explicit PReluKernel(const Node& n) : NodeKernel(n), slope_(expanded_slope(n)) {}
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0]);
    prelu_f32(y.numel(), static_cast<int64_t>(slope_.size()), slope_.data(), in[0]->data<float>(), y.data<float>());
    return y;
  }

 private:
  std::vector<float> slope_;
};

// Integer PRelu: codes kept on the positive side, the negative side times the channel's slope
// with one rounding (as LeakyRelu's piecewise kernel). The slope is per channel or scalar (its
// blocked rule sends other slopes to a float island).
class IntPReluKernel : public NodeKernel {
 public:
  explicit IntPReluKernel(const Node& n) : NodeKernel(n) {
    const Tensor& s = n.params.at(0);
    for (int64_t c = 0; c < s.numel(); ++c) {
      const float v = s.data<float>()[c];
      slope_.push_back(encode_multiplier(std::fabs(double(v))));
      negate_.push_back(v < 0.f);
    }
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0], in[0]->dtype());
    switch (y.dtype()) {
      case DType::I8: apply<int8_t>(*in[0], y); break;
      case DType::U8: apply<uint8_t>(*in[0], y); break;
      case DType::I32: apply<int32_t>(*in[0], y); break;
      default: throw Error(label_ + ": unexpected code dtype " + dtype_name(y.dtype()));
    }
    return y;
  }

 private:
  template <class T> void apply(const Tensor& xt, Tensor& yt) const {
    int64_t channels, inner;
    channel_layout(xt, channels, inner);
    const T* x = xt.data<T>();
    T* out = yt.data<T>();
    const int64_t planes = xt.dim(0) * channels;
#pragma omp parallel for schedule(static) if (xt.numel() > 65536)
    for (int64_t p = 0; p < planes; ++p) {
      const size_t c = slope_.size() == 1 ? 0 : static_cast<size_t>(p % channels);
      for (int64_t i = p * inner; i < (p + 1) * inner; ++i) {
        int64_t v = x[i];
        if (v < 0) {
          v = requantize_one_wide(v, slope_[c], INT64_MIN / 4, INT64_MAX / 4);
          if (negate_[c]) v = -v;
        }
        out[i] = static_cast<T>(std::clamp<int64_t>(v, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
      }
    }
  }
  std::vector<FixedPointMultiplier> slope_;
  std::vector<bool> negate_;
};

class ReduceKernel : public NodeKernel {
 public:
  ReduceKernel(const Graph& g, const Node& n, ReduceOp op)
      : NodeKernel(n), op_(op), reduced_(reduced_axes(n, g.node(n.inputs[0]).shape.size() + 1)) {}
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0]);
    reduce_f32(op_, in[0]->shape(), reduced_, in[0]->data<float>(), y.data<float>());
    return y;
  }

 private:
  ReduceOp op_;
  std::vector<bool> reduced_;
};

// Div, Pow, Max, Min: numpy broadcasting between two activations, or with a constant operand.
class FloatBinaryKernel : public NodeKernel {
 public:
  using Fn = float (*)(float, float);
  FloatBinaryKernel(const Node& n, Fn f) : NodeKernel(n), f_(f) {
    if (!n.params.empty()) {
      constant_ = n.params[0];
      const_index_ = static_cast<int>(n.attr_int("const_index", 1));
    }
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    const Tensor* a = in[0];
    const Tensor* b = in.size() > 1 ? in[1] : &constant_;
    if (in.size() == 1 && const_index_ == 0) std::swap(a, b);
    Tensor y = make_output(*in[0]);
    const BroadcastPlan plan = plan_broadcast(a->shape(), b->shape(), y.shape(), label_.c_str());
    broadcast_apply(plan, a->data<float>(), b->data<float>(), y.data<float>(), f_);
    return y;
  }

 private:
  Fn f_;
  Tensor constant_;
  int const_index_ = 1;
};

float divide(float a, float b) { return a / b; }
float power(float a, float b) { return std::pow(a, b); }
float maximum(float a, float b) { return std::isnan(a) || std::isnan(b) ? std::numeric_limits<float>::quiet_NaN() : std::max(a, b); }
float minimum(float a, float b) { return std::isnan(a) || std::isnan(b) ? std::numeric_limits<float>::quiet_NaN() : std::min(a, b); }

}  // namespace

// Which axes of a full-rank (batch first) tensor a Reduce* node reduces (shapes::reduce checked them).
std::vector<bool> reduced_axes(const Node& n, size_t rank) {
  std::vector<bool> reduced(rank, false);
  for (int64_t a : n.attr_ints("axes", {})) reduced[static_cast<size_t>(a < 0 ? a + int64_t(rank) : a)] = true;
  return reduced;
}

namespace float_kernels {

std::unique_ptr<OpKernel> sum(const Graph&, const Node& n) { return std::make_unique<SumKernel>(n); }
std::unique_ptr<OpKernel> prelu(const Graph&, const Node& n) { return std::make_unique<PReluKernel>(n); }
std::unique_ptr<OpKernel> hard_sigmoid(const Graph&, const Node& n) {
  const float alpha = n.attr_float("alpha", 0.2f), beta = n.attr_float("beta", 0.5f);
  return std::make_unique<PointwiseKernel>(n, [=](int64_t k, const float* x, float* y) { hard_sigmoid_f32(k, alpha, beta, x, y); });
}
std::unique_ptr<OpKernel> elu(const Graph&, const Node& n) {
  const float alpha = n.attr_float("alpha", 1.f);
  return std::make_unique<PointwiseKernel>(n, [=](int64_t k, const float* x, float* y) { elu_f32(k, alpha, x, y); });
}
std::unique_ptr<OpKernel> selu(const Graph&, const Node& n) {
  const float alpha = n.attr_float("alpha", 1.67326319217681884765625f);
  const float gamma = n.attr_float("gamma", 1.05070102214813232421875f);
  return std::make_unique<PointwiseKernel>(n, [=](int64_t k, const float* x, float* y) { selu_f32(k, alpha, gamma, x, y); });
}
std::unique_ptr<OpKernel> log_softmax(const Graph&, const Node& n) {
  return std::make_unique<AxisKernel>(n, n.attr_int("axis", -1), log_softmax_f32);
}
std::unique_ptr<OpKernel> lrn(const Graph&, const Node& n) {
  const int64_t size = n.attr_int("size", 1);
  const float alpha = n.attr_float("alpha", 1e-4f), beta = n.attr_float("beta", 0.75f), bias = n.attr_float("bias", 1.f);
  return std::make_unique<AxisKernel>(n, 1, [=](int64_t o, int64_t c, int64_t i, const float* x, float* y) {
    lrn_f32(o, c, i, size, alpha, beta, bias, x, y);
  });
}
std::unique_ptr<OpKernel> reduce_mean(const Graph& g, const Node& n) { return std::make_unique<ReduceKernel>(g, n, ReduceOp::Mean); }
std::unique_ptr<OpKernel> reduce_max(const Graph& g, const Node& n) { return std::make_unique<ReduceKernel>(g, n, ReduceOp::Max); }
std::unique_ptr<OpKernel> reduce_sum(const Graph& g, const Node& n) { return std::make_unique<ReduceKernel>(g, n, ReduceOp::Sum); }
std::unique_ptr<OpKernel> div(const Graph&, const Node& n) { return std::make_unique<FloatBinaryKernel>(n, divide); }
std::unique_ptr<OpKernel> pow(const Graph&, const Node& n) { return std::make_unique<FloatBinaryKernel>(n, power); }
std::unique_ptr<OpKernel> max(const Graph&, const Node& n) { return std::make_unique<FloatBinaryKernel>(n, maximum); }
std::unique_ptr<OpKernel> min(const Graph&, const Node& n) { return std::make_unique<FloatBinaryKernel>(n, minimum); }

}  // namespace float_kernels

namespace integer_kernels {

std::unique_ptr<OpKernel> sum(const Graph& g, const Node& n) { return std::make_unique<IntSumKernel>(g, n); }
std::unique_ptr<OpKernel> prelu(const Graph&, const Node& n) { return std::make_unique<IntPReluKernel>(n); }

}  // namespace integer_kernels

}  // namespace apl
