// Normalisation, activations, softmax and broadcasting binary operations. These are bound by
// memory bandwidth: plain loops (vectorised by the compiler), threaded when large enough.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "../broadcast_plan.hpp"
#include "../parallel_guard.hpp"

namespace apl::kernels {
namespace {

// Below this many elements a second thread costs more than it saves.
constexpr int64_t kParallelElements = 1 << 16;

template <class F>
void map_f32(int64_t n, const float* x, float* y, F f) {
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

}  // namespace

void batchnorm_f32(int64_t N, int64_t C, int64_t HW, const float* x, const float* scale,
                   const float* bias, const float* mean, const float* var, float eps, float* y) {
  // Folded to y = x * mul[c] + add[c].
  std::vector<float> mul(C), add(C);
  for (int64_t c = 0; c < C; ++c) {
    mul[c] = scale[c] / std::sqrt(var[c] + eps);
    add[c] = bias[c] - mean[c] * mul[c];
  }
#pragma omp parallel for schedule(static) if (N * C * HW > kParallelElements)
  for (int64_t plane = 0; plane < N * C; ++plane) {
    const float m = mul[plane % C], a = add[plane % C];
    const float* in = x + plane * HW;
    float* out = y + plane * HW;
    for (int64_t i = 0; i < HW; ++i) out[i] = in[i] * m + a;
  }
}

void relu_f32(int64_t n, const float* x, float* y) {
  map_f32(n, x, y, [](float v) { return v < 0.0f ? 0.0f : v; });  // NaN stays NaN (calibration checks)
}

void leaky_relu_f32(int64_t n, float alpha, const float* x, float* y) {
  map_f32(n, x, y, [alpha](float v) { return v >= 0.0f ? v : alpha * v; });
}

void clip_f32(int64_t n, float lo, float hi, const float* x, float* y) {
  map_f32(n, x, y, [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
}

void sigmoid_f32(int64_t n, const float* x, float* y) {
  map_f32(n, x, y, [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
}

void tanh_f32(int64_t n, const float* x, float* y) {
  map_f32(n, x, y, [](float v) { return std::tanh(v); });
}

void softmax_f32(int64_t outer, int64_t axis_len, int64_t inner, const float* x, float* y) {
  ParallelGuard guard;  // the vectors allocate
#pragma omp parallel for schedule(static) if (outer * axis_len * inner > kParallelElements)
  for (int64_t o = 0; o < outer; ++o) guard.run([&] {
    const float* in = x + o * axis_len * inner;
    float* out = y + o * axis_len * inner;
    // Walk the axis with the contiguous inner positions as the vector lane.
    std::vector<float> max(in, in + inner), sum(inner, 0.0f);
    for (int64_t a = 1; a < axis_len; ++a)
      for (int64_t i = 0; i < inner; ++i) max[i] = std::max(max[i], in[a * inner + i]);
    for (int64_t a = 0; a < axis_len; ++a)
      for (int64_t i = 0; i < inner; ++i) {
        out[a * inner + i] = std::exp(in[a * inner + i] - max[i]);
        sum[i] += out[a * inner + i];
      }
    for (int64_t a = 0; a < axis_len; ++a)
      for (int64_t i = 0; i < inner; ++i) out[a * inner + i] /= sum[i];
  });
  guard.rethrow();
}

void binary_f32(BinaryOp op, const Shape& a_shape, const float* a, const Shape& b_shape,
                const float* b, const Shape& out_shape, float* y, Clamp clamp) {
  if (shape_numel(out_shape) == 0) return;
  const BroadcastPlan plan = plan_broadcast(a_shape, b_shape, out_shape, "binary_f32");
  // The identity clamp changes no value (NaN included): one loop serves both.
  switch (op) {
    case BinaryOp::Add:
      return broadcast_apply(plan, a, b, y, [clamp](float u, float v) { return clamp(u + v); });
    case BinaryOp::Sub:
      return broadcast_apply(plan, a, b, y, [clamp](float u, float v) { return clamp(u - v); });
    case BinaryOp::Mul:
      return broadcast_apply(plan, a, b, y, [clamp](float u, float v) { return clamp(u * v); });
  }
}

}  // namespace apl::kernels
