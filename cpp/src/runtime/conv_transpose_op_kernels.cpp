// ConvTranspose, float and integer: the input is spread out by the strides into a zero plane
// (shifted by the window minus the begin pads, cropped where pads exceed the window) and a Conv
// of stride 1 with the flipped weights (the node's weights are held that way, see ops.hpp) runs
// over it. The Conv kernels (scalar reference and SIMD) do the arithmetic; zeros are code 0, so
// the integer form is exact, and its Scaling node is fused as after a Conv.
#include <cstring>

#include "../ops/op_parts.hpp"
#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "kernel_util.hpp"

namespace apl {
namespace {

using namespace kernels;

// x (N, C, in_h, in_w) -> the zero plane (N, C, conv.H, conv.W) with the input cells spread out.
Tensor spread_out(const ConvTransposeGeometry& t, const Tensor& x) {
  const Conv2dShape& c = t.conv;
  const int64_t N = x.dim(0);
  Tensor y(x.dtype(), {N, c.C, c.H, c.W});  // zero-filled
  const size_t elem = dtype_size(x.dtype());
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(y.raw());
  for (int64_t p = 0; p < N * c.C; ++p)
    for (int64_t h = 0; h < t.in_h; ++h) {
      const int64_t oh = t.offset_h + h * t.stride_h;
      if (oh < 0 || oh >= c.H) continue;
      for (int64_t w = 0; w < t.in_w; ++w) {
        const int64_t ow = t.offset_w + w * t.stride_w;
        if (ow < 0 || ow >= c.W) continue;
        std::memcpy(dst + ((p * c.H + oh) * c.W + ow) * elem, src + ((p * t.in_h + h) * t.in_w + w) * elem, elem);
      }
    }
  return y;
}

ConvTransposeGeometry geometry(const Graph& g, const Node& n) {
  return conv_transpose_geometry(n, g.node(n.inputs[0]).shape);
}

class ConvTransposeF32Kernel : public NodeKernel {
 public:
  ConvTransposeF32Kernel(const Graph& g, const Node& n)
      : NodeKernel(n), t_(geometry(g, n)),
        conv_(t_.conv, n.params[0].data<float>(), n.params.size() > 1 ? n.params[1].data<float>() : nullptr) {}
  Tensor run(const std::vector<const Tensor*>& in) const override {
    const Tensor spread = spread_out(t_, *in[0]);
    Tensor y = make_output(*in[0]);
    conv_.run(in[0]->dim(0), spread.data<float>(), y.data<float>());
    return y;
  }

 private:
  ConvTransposeGeometry t_;
  ConvF32 conv_;
};

class ConvTransposeIntKernel : public NodeKernel {
 public:
  ConvTransposeIntKernel(const Graph& g, const Node& n) : NodeKernel(n), t_(geometry(g, n)) {
    if (g.quant_config().spec().wide()) {
      weights_ = n.params[0];
      bias_ = n.params[1];
      return;
    }
    const Node& producer = g.node(n.inputs[0]);
    const bool x_unsigned =
        g.quant_config().spec().code_dtype(producer.quant.is_unsigned && g.quant_config().optimize_signs) == DType::U8;
    conv_ = std::make_unique<ConvInt8>(t_.conv, n.params[0].data<int8_t>(), bias_with_offsets(g, n).data(), x_unsigned);
    if (const Node* s = fused_scaling(g, n)) {
      fused_ = true;
      requant_ = requant_params(g, *s);
    }
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    const Tensor spread = spread_out(t_, *in[0]);
    const int64_t N = in[0]->dim(0);
    if (!conv_) {
      Tensor acc = make_output(*in[0], DType::I64);
      conv2d_wide_reference(t_.conv, N, spread.data<int32_t>(), weights_.data<int32_t>(), bias_.data<int64_t>(),
                            acc.data<int64_t>());
      return acc;
    }
    if (fused_) {
      Tensor y = make_output(*in[0], requant_.out_unsigned ? DType::U8 : DType::I8);
      conv_->run_requantized(N, spread.raw(), requant_, y.raw());
      return y;
    }
    Tensor acc = make_output(*in[0], DType::I32);
    conv_->run(N, spread.raw(), acc.data<int32_t>());
    return acc;
  }

 private:
  ConvTransposeGeometry t_;
  std::unique_ptr<ConvInt8> conv_;
  Tensor weights_, bias_;  // wide only
  bool fused_ = false;
  RequantParams requant_;
};

}  // namespace

namespace float_kernels {
std::unique_ptr<OpKernel> conv_transpose(const Graph& g, const Node& n) {
  return std::make_unique<ConvTransposeF32Kernel>(g, n);
}
}  // namespace float_kernels

namespace integer_kernels {
std::unique_ptr<OpKernel> conv_transpose(const Graph& g, const Node& n) {
  return std::make_unique<ConvTransposeIntKernel>(g, n);
}
}  // namespace integer_kernels

}  // namespace apl
