// Integer kernels of every op of the quantized network (cast_to_integer done): activations are
// int8/uint8 codes (int32 above 8 bits), accumulators int32 (int64 above 8 bits).
#include <algorithm>
#include <cmath>
#include <limits>

#include "../ops/op_parts.hpp"
#include "aidge_ptq_lite/fixed_point.hpp"
#include "aidge_ptq_lite/kernels/int_kernels.hpp"
#include "aidge_ptq_lite/op_geometry.hpp"
#include "aidge_ptq_lite/sign_map.hpp"
#include "kernel_util.hpp"

namespace apl {
namespace {

using namespace kernels;

// Storage of a node's output codes: int32 above 8 bits, else uint8 when unsigned, int8 otherwise.
DType code_dtype(const QuantizeOptions& options, const Node& n) {
  return options.spec().code_dtype(n.quant.is_unsigned && options.optimize_signs);
}
DType code_dtype(const Graph& g, const Node& n) { return code_dtype(g.quant_config(), n); }
bool wide(const Graph& g) { return g.quant_config().spec().wide(); }
DType acc_dtype(const Graph& g) { return g.quant_config().spec().acc_dtype(); }
// A Relu alone (OpTraits::clamp_bounds): the one epilogue an integer kernel fuses, as a clamp at
// code 0 whatever the step.
bool is_relu(const FusedEpilogue& e) {
  return !e.factor && !e.residual && e.lo == 0.f && e.hi == std::numeric_limits<float>::infinity();
}

}  // namespace

// The Scaling node that follows a Conv/Gemm, when the two run as one fused kernel (not when
// border offsets go into the accumulator between them).
const Node* fused_scaling(const Graph& g, const Node& affine) {
  if (!affine.traits().affine || wide(g) || !affine.quant.border_offset.empty()) return nullptr;
  const auto users = g.consumers(affine.name);
  if (users.size() != 1) return nullptr;
  const Node& s = g.node(users[0]);
  return s.is(OpKind::Scaling) && !s.quant.requant.dequantize_point ? &s : nullptr;
}

RequantParams requant_params(const Graph& g, const Node& scaling) {
  RequantParams rq;
  rq.scale = scaling.quant.requant.multiplier;
  rq.lo = scaling.quant.lo;
  rq.hi = scaling.quant.hi;
  rq.out_unsigned = code_dtype(g, scaling) == DType::U8;
  return rq;
}

std::vector<int32_t> bias_with_offsets(const Graph& g, const Node& affine) {
  const Tensor& b = affine.params[1];
  std::vector<int32_t> bias(b.data<int32_t>(), b.data<int32_t>() + b.numel());
  const std::vector<int32_t>& offset = g.node(g.consumers(affine.name).at(0)).quant.requant.acc_offset;
  for (size_t k = 0; k < bias.size() && !offset.empty(); ++k)
    bias[k] = static_cast<int32_t>(int64_t(bias[k]) + offset[offset.size() == 1 ? 0 : k]);
  return bias;
}

namespace {

Conv2dShape affine_geometry(const Graph& g, const Node& n) {
  const Shape& in = g.node(n.inputs[0]).shape;
  if (n.params[0].ndim() >= 3) return window_geometry(n, in);  // Conv (2-D, or 1-D as H = 1)
  Conv2dShape s;  // Gemm: a 1x1 convolution on a 1x1 image
  s.C = in[0];
  s.H = s.W = 1;
  s.K = n.params[0].dim(0);
  return s;
}

class IntAffineKernel : public NodeKernel {
 public:
  IntAffineKernel(const Graph& g, const Node& n) : NodeKernel(n), shape_(affine_geometry(g, n)) {
    if (wide(g)) {
      weights_ = n.params[0];
      bias_ = n.params[1];
      return;
    }
    const bool x_unsigned = code_dtype(g, g.node(n.inputs[0])) == DType::U8;
    border_ = n.quant.border_offset;
    conv_ = std::make_unique<ConvInt8>(shape_, n.params[0].data<int8_t>(), bias_with_offsets(g, n).data(), x_unsigned);
    if (const Node* s = fused_scaling(g, n)) {
      fused_ = true;
      requant_ = requant_params(g, *s);
    }
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    const Tensor& x = *in[0];
    const int64_t N = x.dim(0);
    if (!conv_) {
      Tensor acc = make_output(x, DType::I64);
      conv2d_wide_reference(shape_, N, x.data<int32_t>(), weights_.data<int32_t>(), bias_.data<int64_t>(),
                            acc.data<int64_t>());
      return acc;
    }
    if (fused_) return requantized(x, requant_);
    Tensor acc = make_output(x, DType::I32);
    conv_->run(N, x.raw(), acc.data<int32_t>());
    int32_t* a = acc.data<int32_t>();
    for (int64_t b = 0; !border_.empty() && b < N; ++b, a += border_.size())
      for (size_t i = 0; i < border_.size(); ++i) a[i] += border_[i];
    return acc;
  }
  // A Relu after the fused Scaling node: max(code, 0) of the clamped codes is the clamp at
  // max(lo, 0).
  bool fuse_epilogue(const FusedEpilogue& e) override {
    if (!fused_ || !e.after_own_scaling || !is_relu(e) || requant_.hi < 0) return false;
    relu_requant_ = requant_;
    relu_requant_.lo = std::max(requant_.lo, 0);
    return true;
  }
  Tensor run_fused(const std::vector<const Tensor*>& in, const Tensor*) const override {
    return requantized(*in[0], relu_requant_);
  }

 private:
  Tensor requantized(const Tensor& x, const RequantParams& rq) const {
    Tensor y = make_output(x, rq.out_unsigned ? DType::U8 : DType::I8);
    conv_->run_requantized(x.dim(0), x.raw(), rq, y.raw());
    return y;
  }
  Conv2dShape shape_;
  std::unique_ptr<ConvInt8> conv_;
  std::vector<int32_t> border_;  // NodeQuant::border_offset, one sample's accumulator
  Tensor weights_, bias_;  // wide only
  bool fused_ = false;
  RequantParams requant_, relu_requant_;
};

class IntScalingKernel : public NodeKernel {
 public:
  IntScalingKernel(const Graph& g, const Node& n)
      : NodeKernel(n), wide_(wide(g)), requant_(requant_params(g, n)) {
    const Node& producer = g.node(n.inputs[0]);
    pass_through_ = fused_scaling(g, producer) == &n;
    dequantize_point_ = n.quant.requant.dequantize_point;
    if (!producer.traits().affine) offset_ = n.quant.requant.acc_offset;  // a Conv/Gemm has it in its bias
  }
  Tensor run(const std::vector<const Tensor*>& in) const override { return run_with(in, requant_); }
  // A Relu after this requantization (as in IntAffineKernel::fuse_epilogue).
  bool fuse_epilogue(const FusedEpilogue& e) override {
    if (pass_through_ || dequantize_point_ || wide_ || e.after_own_scaling || !is_relu(e) || requant_.hi < 0)
      return false;
    relu_requant_ = requant_;
    relu_requant_.lo = std::max(requant_.lo, 0);
    return true;
  }
  Tensor run_fused(const std::vector<const Tensor*>& in, const Tensor*) const override {
    return run_with(in, relu_requant_);
  }

 private:
  Tensor run_with(const std::vector<const Tensor*>& in, const RequantParams& rq) const {
    if (pass_through_ || (dequantize_point_ && offset_.empty())) return *in[0];
    // Joins that copy codes (Concat) hand over n-bit codes rather than an accumulator.
    const DType in_type = in[0]->dtype();
    if ((in_type == DType::I8 || in_type == DType::U8) && offset_.empty() && !dequantize_point_) {
      int64_t channels, inner;
      channel_layout(*in[0], channels, inner);
      Tensor y = make_output(*in[0], rq.out_unsigned ? DType::U8 : DType::I8);
      if (in_type == DType::I8) requantize_codes_int8(in[0]->dim(0), channels, inner, in[0]->data<int8_t>(), rq, y.raw());
      else requantize_codes_int8(in[0]->dim(0), channels, inner, in[0]->data<uint8_t>(), rq, y.raw());
      return y;
    }
    const DType acc_type = wide_ ? DType::I64 : DType::I32;
    // Adding offsets writes the accumulator: a copy, unless astype already made one.
    Tensor acc = in[0]->dtype() != acc_type ? in[0]->astype(acc_type) : offset_.empty() ? *in[0] : in[0]->clone();
    int64_t channels, inner;
    channel_layout(acc, channels, inner);
    if (!offset_.empty()) {  // zero points (never wide)
      int32_t* a = acc.data<int32_t>();
      for (int64_t b = 0; b < acc.dim(0); ++b)
        for (int64_t c = 0; c < channels; ++c) {
          const int32_t o = offset_[offset_.size() == 1 ? 0 : static_cast<size_t>(c)];
          for (int64_t i = 0; i < inner; ++i) a[(b * channels + c) * inner + i] += o;
        }
      if (dequantize_point_) return acc;
    }
    if (wide_) {
      Tensor y = make_output(acc, DType::I32);
      requantize_wide_reference(acc.dim(0), channels, inner, acc.data<int64_t>(), requant_.scale,
                                requant_.lo, requant_.hi, y.data<int32_t>());
      return y;
    }
    Tensor y = make_output(acc, rq.out_unsigned ? DType::U8 : DType::I8);
    requantize_int32(acc.dim(0), channels, inner, acc.data<int32_t>(), rq, y.raw());
    return y;
  }

  bool wide_, pass_through_ = false, dequantize_point_ = false;
  RequantParams requant_, relu_requant_;
  std::vector<int32_t> offset_;
};

// Calls f with a typed null pointer for the storage type of an integer code tensor.
template <class F> void with_code_type(DType t, F&& f) {
  switch (t) {
    case DType::I8: f(static_cast<int8_t*>(nullptr)); break;
    case DType::U8: f(static_cast<uint8_t*>(nullptr)); break;
    case DType::I32: f(static_cast<int32_t*>(nullptr)); break;
    default: throw Error(std::string("unexpected code dtype ") + dtype_name(t));
  }
}

// Calls f with the typed data of two int8 / uint8 code tensors (any mix of signedness).
template <class F> void with_byte_codes(const Tensor& a, const Tensor& b, F&& f) {
  const bool au = a.dtype() == DType::U8, bu = b.dtype() == DType::U8;
  if (!au && !bu) f(a.data<int8_t>(), b.data<int8_t>());
  else if (au && bu) f(a.data<uint8_t>(), b.data<uint8_t>());
  else if (au) f(a.data<uint8_t>(), b.data<int8_t>());
  else f(a.data<int8_t>(), b.data<uint8_t>());
}

class IntReluKernel : public NodeKernel {
 public:
  using NodeKernel::NodeKernel;
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0], in[0]->dtype());
    with_code_type(y.dtype(), [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      relu_int<T>(y.numel(), in[0]->data<T>(), y.data<T>());
    });
    return y;
  }
};

// LeakyRelu (negative side times alpha, one rounding) and Clip (bounds in codes).
class IntPiecewiseKernel : public NodeKernel {
 public:
  IntPiecewiseKernel(const Graph&, const Node& n) : NodeKernel(n), leaky_(n.is(OpKind::LeakyRelu)) {
    if (leaky_) alpha_ = encode_multiplier(std::fabs(n.attr_float("alpha", 0.01f)));
    negate_ = leaky_ && n.attr_float("alpha", 0.01f) < 0.f;
    lo_ = static_cast<int64_t>(std::ceil(std::max(-4.0e18, double(n.attr_float("min", -3.4e38f)))));
    hi_ = static_cast<int64_t>(std::floor(std::min(4.0e18, double(n.attr_float("max", 3.4e38f)))));
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y = make_output(*in[0], in[0]->dtype());
    with_code_type(y.dtype(), [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      const T* x = in[0]->data<T>();
      T* out = y.data<T>();
      const int64_t n = y.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) {
        int64_t v = x[i];
        if (leaky_) {
          if (v < 0) {
            v = requantize_one_wide(v, alpha_, INT64_MIN / 4, INT64_MAX / 4);
            if (negate_) v = -v;
          }
        } else {
          v = std::clamp(v, lo_, hi_);
        }
        out[i] = static_cast<T>(std::clamp<int64_t>(v, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
      }
    });
    return y;
  }

 private:
  bool leaky_, negate_ = false;
  FixedPointMultiplier alpha_;
  int64_t lo_, hi_;
};

// MaxPool keeps its input's codes; average pools sum their window (the Scaling node after them
// divides by it). A 3-D window runs as two 2-D passes (pool_passes), sums of sums in Acc.
class IntPoolKernel : public NodeKernel {
 public:
  enum class Mode { Max, WindowSum, GlobalSum };
  IntPoolKernel(const Graph& g, const Node& n, Mode mode) : NodeKernel(n), mode_(mode), acc_(acc_dtype(g)) {
    const Shape& in = g.node(n.inputs[0]).shape;
    if (mode_ != Mode::GlobalSum) passes_ = pool_passes(n, in);
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    const Tensor& x = *in[0];
    const int64_t N = x.dim(0);
    if (mode_ == Mode::Max) {
      Tensor y = make_output(x, x.dtype());
      with_code_type(x.dtype(), [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        if (passes_.size() == 1) return maxpool2d_int<T>(passes_[0], N, x.data<T>(), y.data<T>());
        Tensor between = first_pass_output(N, x.dtype());
        maxpool2d_int<T>(passes_[0], N, x.data<T>(), between.data<T>());
        maxpool2d_int<T>(passes_[1], N, between.data<T>(), y.data<T>());
      });
      return y;
    }
    Tensor y = make_output(x, acc_);
    with_code_type(x.dtype(), [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      if (acc_ == DType::I32) sum<T, int32_t>(x, y);
      else sum<T, int64_t>(x, y);
    });
    return y;
  }

 private:
  Tensor first_pass_output(int64_t N, DType dtype) const {
    const Pool2dShape& s = passes_[0];
    return Tensor::uninitialized(dtype, {N, s.C, s.OH(), s.OW()});
  }
  template <class T, class Acc> void sum(const Tensor& x, Tensor& y) const {
    const int64_t N = x.dim(0);
    if (mode_ == Mode::GlobalSum)
      return global_sumpool_int<T, Acc>(N, x.dim(1), x.numel() / (N * x.dim(1)), x.data<T>(), y.data<Acc>());
    if (passes_.size() == 1) return sumpool2d_int<T, Acc>(passes_[0], N, x.data<T>(), y.data<Acc>());
    Tensor between = first_pass_output(N, acc_);
    sumpool2d_int<T, Acc>(passes_[0], N, x.data<T>(), between.data<Acc>());
    sumpool2d_int<Acc, Acc>(passes_[1], N, between.data<Acc>(), y.data<Acc>());
  }
  Mode mode_;
  DType acc_;
  std::vector<Pool2dShape> passes_;  // at most two
};

// Add / Sub / Mul of two activations, numpy broadcasting between them (the squeeze-excite gate
// multiplies (N, C, H, W) codes by (N, C, 1, 1) ones).
class IntBinaryKernel : public NodeKernel {
 public:
  IntBinaryKernel(const Graph& g, const Node& n) : NodeKernel(n), acc_(acc_dtype(g)) {
    switch (n.kind) {
      case OpKind::Add: op_ = IntBinaryOp::Add; break;
      case OpKind::Sub: op_ = IntBinaryOp::Sub; break;
      case OpKind::Mul: op_ = IntBinaryOp::Mul; break;
      default: throw Error(n.label() + " is not an element-wise binary op");
    }
    if (n.inputs.size() != 2)
      throw UnsupportedError(n.label() + ": a constant operand has no integer form (prepare_network folds "
                             "per-channel ones; others run as a float island)");
    for (int i = 0; i < 2; ++i) zero_[i] = zero_point_of(g, n.inputs[i]);
    const auto users = g.consumers(n.name);
    const Node* s = users.size() == 1 ? &g.node(users[0]) : nullptr;
    // A join (Add / Sub of same-shape codes) and the Scaling that alone reads its sums can run as
    // one pass (fuse_epilogue), when that Scaling only requantizes.
    joins_ = op_ != IntBinaryOp::Mul && acc_ == DType::I32 && !zero_[0] && !zero_[1] && !g.is_output(n.name) && s &&
             s->is(OpKind::Scaling) && !s->quant.requant.dequantize_point &&
             s->quant.requant.acc_offset.empty() && g.node(n.inputs[0]).shape == n.shape &&
             g.node(n.inputs[1]).shape == n.shape;
    if (joins_) join_requant_ = requant_params(g, *s);
  }
  // The Scaling after a join, and a Relu after that as a clamp at code 0.
  bool fuse_epilogue(const FusedEpilogue& e) override {
    if (!joins_ || !e.after_own_scaling || e.factor || e.residual) return false;
    if (e.clamps() && (!is_relu(e) || join_requant_.hi < 0)) return false;
    if (e.clamps()) join_requant_.lo = std::max(join_requant_.lo, 0);
    return true;
  }
  Tensor run_fused(const std::vector<const Tensor*>& in, const Tensor*) const override {
    const Tensor &a = *in[0], &b = *in[1];
    Tensor y = make_output(a, join_requant_.out_unsigned ? DType::U8 : DType::I8);
    int64_t channels, inner;
    channel_layout(a, channels, inner);
    with_byte_codes(a, b, [&](const auto* pa, const auto* pb) {
      requantize_binary_int8(op_, a.dim(0), channels, inner, pa, pb, join_requant_, y.raw());
    });
    return y;
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    if (zero_[0] || zero_[1]) {  // a product of codes with zero points: of (code - z), in int32
      const Tensor a = without_zero_point(*in[0], zero_[0]), b = without_zero_point(*in[1], zero_[1]);
      Tensor y = make_output(a, acc_);
      apply<int32_t, int32_t, int32_t>(a, b, y);
      return y;
    }
    const Tensor &a = *in[0], &b = *in[1];
    Tensor y = make_output(a, acc_);
    if (acc_ == DType::I64) {
      apply<int32_t, int32_t, int64_t>(a, b, y);
      return y;
    }
    with_byte_codes(a, b, [&](const auto* pa, const auto* pb) {
      apply<std::remove_cv_t<std::remove_pointer_t<decltype(pa)>>,
            std::remove_cv_t<std::remove_pointer_t<decltype(pb)>>, int32_t>(a, b, y);
    });
    return y;
  }

 private:
  static Tensor without_zero_point(const Tensor& x, int32_t z) {
    Tensor y = x.astype(DType::I32);
    for (int64_t i = 0; z && i < y.numel(); ++i) y.data<int32_t>()[i] -= z;
    return y;
  }
  template <class A, class B, class Acc> void apply(const Tensor& a, const Tensor& b, Tensor& y) const {
    if (a.shape() == y.shape() && b.shape() == y.shape())
      binary_int<A, B, Acc>(op_, y.numel(), a.data<A>(), b.data<B>(), y.data<Acc>());
    else
      binary_int<A, B, Acc>(op_, a.shape(), a.data<A>(), b.shape(), b.data<B>(), y.shape(), y.data<Acc>());
  }
  IntBinaryOp op_;
  DType acc_;
  int32_t zero_[2] = {0, 0};  // zero points of the operands' codes (Mul only: joins have none)
  bool joins_ = false;
  RequantParams join_requant_;  // of the Scaling after the join (and a fused Relu's clamp)
};

// A float op on dequantized inputs: the float tail (final Softmax), and inside float islands.
class DequantizingKernel : public OpKernel {
 public:
  DequantizingKernel(const Graph& g, const Node& n) : inner_(make_float_kernel(g, n)) {
    for (const std::string& in : n.inputs) producers_.push_back(&g.node(in));
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    std::vector<Tensor> floats;
    std::vector<const Tensor*> args;
    for (size_t i = 0; i < in.size(); ++i) floats.push_back(dequantize_output(*producers_[i], *in[i]));
    for (const Tensor& t : floats) args.push_back(&t);
    return inner_->run(args);
  }

 private:
  std::unique_ptr<OpKernel> inner_;
  std::vector<const Node*> producers_;
};

std::unique_ptr<OpKernel> make_integer_kernel(const Graph& g, const Node& n) {
  if (const KernelFactory f = n.traits().integer_kernel) return f(g, n);
  throw UnsupportedError("no integer kernel for " + n.label());
}

}  // namespace

Tensor dequantize_output(const Node& n, const Tensor& t) {
  if (n.quant.kept_float) return t;
  Tensor y = Tensor::uninitialized(DType::F32, t.shape());
  const Tensor codes = t.astype(DType::F32);
  const float* x = codes.data<float>();
  float* out = y.data<float>();
  if (!n.quant.requant.dequantize_point) {
    const float step = static_cast<float>(n.quant.step), zero = static_cast<float>(n.quant.zero_point);
    for (int64_t i = 0; i < y.numel(); ++i) out[i] = (x[i] - zero) * step;
    return y;
  }
  int64_t channels, inner;
  channel_layout(y, channels, inner);
  const std::vector<float>& f = n.quant.requant.factor;
  for (int64_t b = 0; b < y.dim(0); ++b)
    for (int64_t c = 0; c < channels; ++c) {
      const float s = f[f.size() == 1 ? 0 : c];
      const int64_t base = (b * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) out[base + i] = x[base + i] * s;
    }
  return y;
}

Tensor quantize_input(const Node& input, const QuantizeOptions& config, const Tensor& x) {
  const double inv_step = 1.0 / input.quant.step;
  const float* src = x.data<float>();
  const int64_t n = x.numel();
  if (config.no_quant) {
    Tensor y = Tensor::uninitialized(DType::F32, x.shape());
    for (int64_t i = 0; i < n; ++i) y.data<float>()[i] = static_cast<float>(src[i] * inv_step);
    return y;
  }
  const DType t = code_dtype(config, input);
  Tensor y = Tensor::uninitialized(t, x.shape());
  with_code_type(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    quantize_codes<T>(n, src, inv_step, input.quant.lo, input.quant.hi, y.data<T>());
  });
  return y;
}

namespace integer_kernels {

std::unique_ptr<OpKernel> affine(const Graph& g, const Node& n) { return std::make_unique<IntAffineKernel>(g, n); }
std::unique_ptr<OpKernel> scaling(const Graph& g, const Node& n) { return std::make_unique<IntScalingKernel>(g, n); }
std::unique_ptr<OpKernel> relu(const Graph&, const Node& n) { return std::make_unique<IntReluKernel>(n); }
std::unique_ptr<OpKernel> piecewise(const Graph& g, const Node& n) { return std::make_unique<IntPiecewiseKernel>(g, n); }
std::unique_ptr<OpKernel> maxpool(const Graph& g, const Node& n) {
  return std::make_unique<IntPoolKernel>(g, n, IntPoolKernel::Mode::Max);
}
std::unique_ptr<OpKernel> avgpool(const Graph& g, const Node& n) {
  return std::make_unique<IntPoolKernel>(g, n, IntPoolKernel::Mode::WindowSum);
}
std::unique_ptr<OpKernel> global_avgpool(const Graph& g, const Node& n) {
  return std::make_unique<IntPoolKernel>(g, n, IntPoolKernel::Mode::GlobalSum);
}
std::unique_ptr<OpKernel> binary(const Graph& g, const Node& n) { return std::make_unique<IntBinaryKernel>(g, n); }

}  // namespace integer_kernels

std::unique_ptr<OpKernel> make_dequantizing_kernel(const Graph& g, const Node& n) {
  return std::make_unique<DequantizingKernel>(g, n);
}

std::unique_ptr<OpKernel> make_kernel(const Graph& g, const Node& n) {
  if (!g.is_quantized()) return make_float_kernel(g, n);
  if (n.quant.kept_float) return make_dequantizing_kernel(g, n);
  if (n.quant.island) return make_island_kernel(g, n);
  if (g.quant_config().no_quant) return make_float_kernel(g, n);
  return make_integer_kernel(g, n);
}

}  // namespace apl
