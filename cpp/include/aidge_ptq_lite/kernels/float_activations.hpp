// Float element-wise activations and maths functions without an integer form (they run as
// lookup-table islands in the quantized network), a local response normalization, log-softmax and
// reductions. Plain loops: they are memory-bound (the compiler vectorises at the baseline ISA).
#pragma once
#include <cstdint>
#include <vector>

namespace apl::kernels {

// y[i] = f(x[i]), attribute-free (the registry's pointwise rows).
void hard_swish_f32(int64_t n, const float* x, float* y);  // x * clamp(x / 6 + 1/2, 0, 1)
void softplus_f32(int64_t n, const float* x, float* y);    // log(1 + exp(x)), stable for large |x|
void erf_f32(int64_t n, const float* x, float* y);
void exp_f32(int64_t n, const float* x, float* y);
void log_f32(int64_t n, const float* x, float* y);
void sqrt_f32(int64_t n, const float* x, float* y);
void neg_f32(int64_t n, const float* x, float* y);
void abs_f32(int64_t n, const float* x, float* y);
void reciprocal_f32(int64_t n, const float* x, float* y);

// With attributes.
void hard_sigmoid_f32(int64_t n, float alpha, float beta, const float* x, float* y);  // clamp(alpha x + beta, 0, 1)
void elu_f32(int64_t n, float alpha, const float* x, float* y);
void selu_f32(int64_t n, float alpha, float gamma, const float* x, float* y);
// x >= 0 ? x : slope[i % slope_len] * x, the slope expanded to a whole sample (slope_len values).
void prelu_f32(int64_t n, int64_t slope_len, const float* slope, const float* x, float* y);

// Over the middle axis of (outer, axis_len, inner): log(softmax); and the cross-channel local
// response normalization of ONNX LRN (window of `size` channels centred on each).
void log_softmax_f32(int64_t outer, int64_t axis_len, int64_t inner, const float* x, float* y);
void lrn_f32(int64_t outer, int64_t C, int64_t inner, int64_t size, float alpha, float beta, float bias,
             const float* x, float* y);

// Reduction of a tensor of shape `dims` over the axes where reduced[d] is true (into the shape
// with those axes of size 1): mean, max or sum.
enum class ReduceOp { Mean, Max, Sum };
void reduce_f32(ReduceOp op, const std::vector<int64_t>& dims, const std::vector<bool>& reduced,
                const float* x, float* y);

}  // namespace apl::kernels
