// Normalisation, activations, softmax and broadcasting binary operations. These are bound by
// memory bandwidth: plain loops (vectorised by the compiler), threaded when large enough.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/kernels/float_kernels.hpp"
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

namespace {

// An output shape collapsed into as few axes as possible: adjacent axes merge when a and b both
// broadcast along them or both do not. Strides are in elements of a and b (0 = broadcast).
struct BroadcastPlan {
  std::vector<int64_t> dims, a_stride, b_stride;
};

BroadcastPlan plan_broadcast(const Shape& a_shape, const Shape& b_shape, const Shape& out_shape) {
  const size_t rank = out_shape.size();
  auto dim_of = [rank](const Shape& s, size_t axis) {  // right-aligned, missing axes are 1
    return axis + s.size() >= rank ? s[axis + s.size() - rank] : int64_t{1};
  };
  auto check = [&](const Shape& s, const char* name) {
    bool ok = s.size() <= rank;
    for (size_t axis = 0; ok && axis < rank; ++axis)
      ok = dim_of(s, axis) == 1 || dim_of(s, axis) == out_shape[axis];
    if (!ok)
      throw ShapeError(std::string("binary_f32: operand ") + name + " of shape " + shape_str(s) +
                       " does not broadcast to " + shape_str(out_shape));
  };
  check(a_shape, "a");
  check(b_shape, "b");

  BroadcastPlan plan;
  int64_t a_size = 1, b_size = 1;  // elements of a and b spanned by the axes seen so far
  for (size_t axis = rank; axis-- > 0;) {
    const int64_t d = out_shape[axis];
    if (d == 1) continue;
    const bool a_full = dim_of(a_shape, axis) == d, b_full = dim_of(b_shape, axis) == d;
    const bool merge = !plan.dims.empty() && (plan.a_stride.back() != 0) == a_full &&
                       (plan.b_stride.back() != 0) == b_full;
    if (merge) {
      plan.dims.back() *= d;
    } else {
      plan.dims.push_back(d);
      plan.a_stride.push_back(a_full ? a_size : 0);
      plan.b_stride.push_back(b_full ? b_size : 0);
    }
    if (a_full) a_size *= d;
    if (b_full) b_size *= d;
  }
  // Stored innermost first; make the innermost axis last.
  std::reverse(plan.dims.begin(), plan.dims.end());
  std::reverse(plan.a_stride.begin(), plan.a_stride.end());
  std::reverse(plan.b_stride.begin(), plan.b_stride.end());
  if (plan.dims.empty()) plan = {{1}, {0}, {0}};
  return plan;
}

template <class Op>
void broadcast_apply(const BroadcastPlan& p, const float* a, const float* b, float* y, Op op) {
  const size_t last = p.dims.size() - 1;
  const int64_t inner = p.dims[last], a_step = p.a_stride[last], b_step = p.b_stride[last];
  int64_t rows = 1;
  for (size_t axis = 0; axis < last; ++axis) rows *= p.dims[axis];
#pragma omp parallel for schedule(static) if (rows * inner > kParallelElements && rows > 1)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t a_off = 0, b_off = 0, rest = row;
    for (size_t axis = last; axis-- > 0;) {
      const int64_t i = rest % p.dims[axis];
      rest /= p.dims[axis];
      a_off += i * p.a_stride[axis];
      b_off += i * p.b_stride[axis];
    }
    const float* ar = a + a_off;
    const float* br = b + b_off;
    float* out = y + row * inner;
    // Separate loops per broadcast pattern so that each one vectorises.
    if (a_step && b_step)
      for (int64_t i = 0; i < inner; ++i) out[i] = op(ar[i], br[i]);
    else if (a_step)
      for (int64_t i = 0; i < inner; ++i) out[i] = op(ar[i], br[0]);
    else if (b_step)
      for (int64_t i = 0; i < inner; ++i) out[i] = op(ar[0], br[i]);
    else
      std::fill_n(out, inner, op(ar[0], br[0]));
  }
}

}  // namespace

void binary_f32(BinaryOp op, const Shape& a_shape, const float* a, const Shape& b_shape,
                const float* b, const Shape& out_shape, float* y) {
  if (shape_numel(out_shape) == 0) return;
  const BroadcastPlan plan = plan_broadcast(a_shape, b_shape, out_shape);
  switch (op) {
    case BinaryOp::Add:
      return broadcast_apply(plan, a, b, y, [](float u, float v) { return u + v; });
    case BinaryOp::Sub:
      return broadcast_apply(plan, a, b, y, [](float u, float v) { return u - v; });
    case BinaryOp::Mul:
      return broadcast_apply(plan, a, b, y, [](float u, float v) { return u * v; });
  }
}

}  // namespace apl::kernels
