// Float32 kernels (NCHW, batched) used by the float executor and by calibration.
// Kernels with SIMD variants keep a plain scalar *_reference beside them; tests hold them close.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>

#include "aidge_ptq_lite/kernels/conv_shape.hpp"
#include "aidge_ptq_lite/tensor.hpp"

namespace apl::kernels {

// y = min(max(y, lo), hi): a Relu (lo 0) or Clip applied in the output pass of the kernel before
// it, as the float executor fuses them. NaN stays NaN, as in relu_f32 and clip_f32.
struct Clamp {
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  bool identity() const { return lo == -std::numeric_limits<float>::infinity() && hi == std::numeric_limits<float>::infinity(); }
  float operator()(float v) const { return std::min(std::max(v, lo), hi); }
};

// A convolution's output pass: y = clamp(y * factor[k] + residual) for output channel k, the
// factor (when given) one value or one per channel (a float Scaling node fused with its
// producer), the residual (when given) a tensor of y's shape (a residual Add). Same values as the
// separate kernels: the sum is complete before the factor, and the factor before the residual.
struct Epilogue {
  const float* factor = nullptr;
  int64_t factors = 0;  // 1 or the channel count
  const float* residual = nullptr;
  Clamp clamp;
  bool identity() const { return !factor && !residual && clamp.identity(); }
  // The n outputs of channel k at y, `at` floats into the output tensor.
  void apply(int64_t n, float* y, int64_t at, int64_t k) const {
    const float f = factor ? factor[factors == 1 ? 0 : k] : 1.0f;
    if (factor)  // y * 1 would be exact too, but costs a pass of multiplies
      for (int64_t i = 0; i < n; ++i) y[i] *= f;
    if (residual)
      for (int64_t i = 0; i < n; ++i) y[i] = clamp(y[i] + residual[at + i]);
    else
      for (int64_t i = 0; i < n; ++i) y[i] = clamp(y[i]);
  }
};

// ---- GEMM: row-major C(M x N) = alpha * op(A) * op(B) + beta * C -------------------------------
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc);

// ---- Convolution ------------------------------------------------------------------------------
// A convolution prepared once (weights packed for the active SIMD level), run many times.
// Weights in ONNX layout (K, C/groups, R, S); bias may be null. Thread-safe run().
class ConvF32 {
 public:
  ConvF32(const Conv2dShape& shape, const float* weights, const float* bias);
  ~ConvF32();
  ConvF32(const ConvF32&) = delete;
  ConvF32& operator=(const ConvF32&) = delete;
  // x: (N, C, H, W) -> y: (N, K, OH, OW), the epilogue applied in the output pass.
  void run(int64_t N, const float* x, float* y, const Epilogue& epilogue = {}) const;
  const Conv2dShape& shape() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
void conv2d_f32_reference(const Conv2dShape& s, int64_t N, const float* x, const float* w,
                          const float* bias, float* y);

// ---- Pools ------------------------------------------------------------------------------------
// Padding cells are ignored by max pooling; average pooling divides by the window size when
// count_include_pad, else by the number of non-padding cells.
void maxpool2d_f32(const Pool2dShape& s, int64_t N, const float* x, float* y);
void avgpool2d_f32(const Pool2dShape& s, bool count_include_pad, int64_t N, const float* x, float* y);
void global_avgpool_f32(int64_t N, int64_t C, int64_t HW, const float* x, float* y);

// ---- Normalisation and element-wise -----------------------------------------------------------
// y = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + bias[c]
void batchnorm_f32(int64_t N, int64_t C, int64_t HW, const float* x, const float* scale,
                   const float* bias, const float* mean, const float* var, float eps, float* y);
void relu_f32(int64_t n, const float* x, float* y);
void leaky_relu_f32(int64_t n, float alpha, const float* x, float* y);
void clip_f32(int64_t n, float lo, float hi, const float* x, float* y);
void sigmoid_f32(int64_t n, const float* x, float* y);
void tanh_f32(int64_t n, const float* x, float* y);
// Softmax over the middle axis of a (outer, axis_len, inner) view.
void softmax_f32(int64_t outer, int64_t axis_len, int64_t inner, const float* x, float* y);

enum class BinaryOp { Add, Sub, Mul };
// Numpy broadcasting; a_shape and b_shape are right-aligned against out_shape. Clamped as it goes.
void binary_f32(BinaryOp op, const Shape& a_shape, const float* a, const Shape& b_shape,
                const float* b, const Shape& out_shape, float* y, Clamp clamp = {});

// Concatenation along an axis of (outer, size_i, inner) views; any element type.
void concat_bytes(int64_t outer, int64_t inner_bytes, const int64_t* sizes, const void* const* inputs,
                  int n_inputs, void* y);

}  // namespace apl::kernels
