// Integer kernels of the quantized network (NCHW, batched). Exact: every SIMD level and thread
// count gives the same integers as the scalar *_reference beside each kernel.
//
// Activations of n <= 8 bits are int8 (signed, in [-127, 127]) or uint8 (unsigned, [0, 255]);
// weights int8 in [-127, 127]; biases and accumulators int32. Above 8 bits ("wide"), activations
// and weights are int32 and accumulators int64 (scalar kernels only).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "aidge_ptq_lite/kernels/conv_shape.hpp"
#include "aidge_ptq_lite/kernels/requantize.hpp"
#include "aidge_ptq_lite/tensor.hpp"

namespace apl::kernels {

// Output stage: per-channel (size K) or per-tensor (size 1) fixed-point multipliers, then clamp
// to [lo, hi], stored as int8 (lo >= -128) or uint8 (lo >= 0).
struct RequantParams {
  std::vector<FixedPointMultiplier> scale;  // size 1 or K
  int32_t lo = -127, hi = 127;
  bool out_unsigned = false;
};

// ---- int8 convolution (and Gemm as a 1x1 convolution on a 1x1 image) ---------------------------
// Prepared once (weights packed for the active SIMD level), run many times, thread-safe run().
class ConvInt8 {
 public:
  // weights (K, C/groups, R, S) int8 in [-127, 127]; bias int32 per K or null.
  // x_unsigned: activations are uint8 (else int8). Zero padding is the integer 0.
  ConvInt8(const Conv2dShape& shape, const int8_t* weights, const int32_t* bias, bool x_unsigned);
  ~ConvInt8();
  ConvInt8(const ConvInt8&) = delete;
  ConvInt8& operator=(const ConvInt8&) = delete;
  // x: (N, C, H, W) int8/uint8 -> acc: (N, K, OH, OW) int32
  void run(int64_t N, const void* x, int32_t* acc) const;
  // Fused output stage: -> y (N, K, OH, OW) int8/uint8 as rq says.
  void run_requantized(int64_t N, const void* x, const RequantParams& rq, void* y) const;
  const Conv2dShape& shape() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
void conv2d_int8_reference(const Conv2dShape& s, int64_t N, const void* x, bool x_unsigned,
                           const int8_t* w, const int32_t* bias, int32_t* acc);
// Wide (n > 8 bits): int32 activations and weights, int64 accumulators.
void conv2d_wide_reference(const Conv2dShape& s, int64_t N, const int32_t* x, const int32_t* w,
                           const int64_t* bias, int64_t* acc);

// ---- Requantization (int32 -> int8/uint8), see requantize.hpp for the rule ---------------------
// acc viewed as (N, channels, inner); rq.scale has size 1 or channels.
void requantize_int32(int64_t N, int64_t channels, int64_t inner, const int32_t* acc,
                      const RequantParams& rq, void* y);
void requantize_int32_reference(int64_t N, int64_t channels, int64_t inner, const int32_t* acc,
                                const RequantParams& rq, void* y);
// Single-shift rescaling (the multiplier-1 case of the rule, see requantize.hpp), bit-identical
// to requantize_one(acc, {1, k}, lo, hi): y = clamp((acc + 2^(k-1)) >> k, lo, hi), or
// clamp(acc, lo, hi) for k == 0. acc is viewed as (N, channels, inner) and shifts holds one
// shift per channel, each in [0, 31] (a pointer carries no size: for one shift per tensor pass
// channels = 1 and the whole sample as inner). [lo, hi] must fit the int8 (or, if out_unsigned,
// uint8) output. requantize_int32 routes here by itself when every multiplier is 1.
void shift_rescale_int32(int64_t N, int64_t channels, int64_t inner, const int32_t* acc,
                         const int32_t* shifts, int32_t lo, int32_t hi, bool out_unsigned, void* y);
void shift_rescale_int32_reference(int64_t N, int64_t channels, int64_t inner, const int32_t* acc,
                                   const int32_t* shifts, int32_t lo, int32_t hi,
                                   bool out_unsigned, void* y);
// Wide: int64 -> int32 values in [lo, hi].
void requantize_wide_reference(int64_t N, int64_t channels, int64_t inner, const int64_t* acc,
                               const std::vector<FixedPointMultiplier>& scale, int64_t lo,
                               int64_t hi, int32_t* y);

// ---- Input quantization -----------------------------------------------------------------------
// y[i] = clamp(round_half_even(x[i] * scale), lo, hi) computed in double (scale = 1 / step), NaN to
// code 0, +-Inf saturating; T: int8_t, uint8_t or int32_t (above 8 bits), lo and hi inside T.
template <class T>
void quantize_codes(int64_t n, const float* x, double scale, double lo, double hi, T* y);

// ---- Other integer ops (templated on the storage type: int8_t, uint8_t, int32_t) ---------------
template <class T> void relu_int(int64_t n, const T* x, T* y);
template <class T> void maxpool2d_int(const Pool2dShape& s, int64_t N, const T* x, T* y);
// Window sums (no division: the scaling node after the pool applies 1/window); padding cells
// count as 0. count_include_pad=false is unsupported for pools with padding (exact division
// per cell would need a per-cell scale).
template <class T, class Acc> void sumpool2d_int(const Pool2dShape& s, int64_t N, const T* x, Acc* y);
template <class T, class Acc> void global_sumpool_int(int64_t N, int64_t C, int64_t HW, const T* x, Acc* y);
// Element-wise a op b of same-shape operands (the executor aligns scales and shapes first) into a
// wider accumulator; the operands may differ in signedness (int8 and uint8).
enum class IntBinaryOp { Add, Sub, Mul };
template <class A, class B, class Acc>
void binary_int(IntBinaryOp op, int64_t n, const A* a, const B* b, Acc* y);
// The same with numpy broadcasting of a_shape and b_shape against out_shape (right-aligned).
template <class A, class B, class Acc>
void binary_int(IntBinaryOp op, const Shape& a_shape, const A* a, const Shape& b_shape, const B* b,
                const Shape& out_shape, Acc* y);
// A join and the Scaling after it in one pass: y = requantize(a + b) (or a - b) of two code
// tensors of one shape, viewed as (N, channels, inner); bit-identical to binary_int into int32
// then requantize_int32, without the int32 sums going through memory. A, B: int8_t or uint8_t.
template <class A, class B>
void requantize_binary_int8(IntBinaryOp op, int64_t N, int64_t channels, int64_t inner, const A* a,
                            const B* b, const RequantParams& rq, void* y);
// Requantization of int8 / uint8 codes (a Scaling node after a join that copies codes, such as
// Concat, or on one operand of a join): requantize_int32 of the codes widened, without the widened
// tensor.
template <class T>
void requantize_codes_int8(int64_t N, int64_t channels, int64_t inner, const T* x,
                           const RequantParams& rq, void* y);

}  // namespace apl::kernels
