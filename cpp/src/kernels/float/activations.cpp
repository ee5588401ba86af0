// Float activations, LRN, log-softmax and reductions (declared in float_activations.hpp).
#include "aidge_ptq_lite/kernels/float_activations.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace apl::kernels {
namespace {

constexpr int64_t kParallelElements = 1 << 16;  // below this a second thread costs more than it saves

template <class F>
void map_f32(int64_t n, const float* x, float* y, F f) {
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

}  // namespace

void hard_swish_f32(int64_t n, const float* x, float* y) {
  map_f32(n, x, y, [](float v) { return v * std::min(std::max(v / 6.0f + 0.5f, 0.0f), 1.0f); });
}
void softplus_f32(int64_t n, const float* x, float* y) {
  // log(1 + e^v) = max(v, 0) + log1p(e^-|v|): no overflow for large v.
  map_f32(n, x, y, [](float v) { return std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v))); });
}
void erf_f32(int64_t n, const float* x, float* y) { map_f32(n, x, y, [](float v) { return std::erf(v); }); }
void exp_f32(int64_t n, const float* x, float* y) { map_f32(n, x, y, [](float v) { return std::exp(v); }); }
void log_f32(int64_t n, const float* x, float* y) { map_f32(n, x, y, [](float v) { return std::log(v); }); }
void sqrt_f32(int64_t n, const float* x, float* y) { map_f32(n, x, y, [](float v) { return std::sqrt(v); }); }
void neg_f32(int64_t n, const float* x, float* y) { map_f32(n, x, y, [](float v) { return -v; }); }
void abs_f32(int64_t n, const float* x, float* y) { map_f32(n, x, y, [](float v) { return std::fabs(v); }); }
void reciprocal_f32(int64_t n, const float* x, float* y) { map_f32(n, x, y, [](float v) { return 1.0f / v; }); }

void hard_sigmoid_f32(int64_t n, float alpha, float beta, const float* x, float* y) {
  map_f32(n, x, y, [=](float v) { return std::min(std::max(alpha * v + beta, 0.0f), 1.0f); });
}
void elu_f32(int64_t n, float alpha, const float* x, float* y) {
  map_f32(n, x, y, [=](float v) { return v >= 0.0f ? v : alpha * std::expm1(v); });
}
void selu_f32(int64_t n, float alpha, float gamma, const float* x, float* y) {
  map_f32(n, x, y, [=](float v) { return v > 0.0f ? gamma * v : gamma * alpha * std::expm1(v); });
}
void prelu_f32(int64_t n, int64_t slope_len, const float* slope, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] >= 0.0f ? x[i] : slope[i % slope_len] * x[i];
}

void log_softmax_f32(int64_t outer, int64_t axis_len, int64_t inner, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (outer * axis_len * inner > kParallelElements)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* in = x + o * axis_len * inner + i;
      float* out = y + o * axis_len * inner + i;
      float max = in[0];
      for (int64_t a = 1; a < axis_len; ++a) max = std::max(max, in[a * inner]);
      double sum = 0.0;
      for (int64_t a = 0; a < axis_len; ++a) sum += std::exp(double(in[a * inner]) - max);
      const float log_sum = static_cast<float>(std::log(sum));
      for (int64_t a = 0; a < axis_len; ++a) out[a * inner] = in[a * inner] - max - log_sum;
    }
}

void lrn_f32(int64_t outer, int64_t C, int64_t inner, int64_t size, float alpha, float beta, float bias,
             const float* x, float* y) {
  // ONNX: square sum over channels [c - floor((size-1)/2), c + ceil((size-1)/2)].
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
#pragma omp parallel for schedule(static) if (outer * C * inner > kParallelElements)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        double sq = 0.0;
        for (int64_t k = std::max<int64_t>(0, c - before); k <= std::min(C - 1, c + after); ++k) {
          const double v = x[(o * C + k) * inner + i];
          sq += v * v;
        }
        const int64_t at = (o * C + c) * inner + i;
        y[at] = static_cast<float>(x[at] / std::pow(bias + alpha / size * sq, double(beta)));
      }
}

void reduce_f32(ReduceOp op, const std::vector<int64_t>& dims, const std::vector<bool>& reduced,
                const float* x, float* y) {
  // Output strides (0 along reduced axes) map every input element to its output element.
  const size_t rank = dims.size();
  std::vector<int64_t> out_stride(rank, 0);
  int64_t out_n = 1, in_n = 1, group = 1;
  for (size_t d = rank; d-- > 0;) {
    in_n *= dims[d];
    if (reduced[d]) {
      group *= dims[d];
    } else {
      out_stride[d] = out_n;
      out_n *= dims[d];
    }
  }
  std::vector<double> acc(static_cast<size_t>(out_n),
                          op == ReduceOp::Max ? -std::numeric_limits<double>::infinity() : 0.0);
  std::vector<int64_t> index(rank, 0);
  for (int64_t i = 0; i < in_n; ++i) {
    int64_t at = 0;
    for (size_t d = 0; d < rank; ++d) at += index[d] * out_stride[d];
    double& a = acc[static_cast<size_t>(at)];
    a = op == ReduceOp::Max ? std::max(a, double(x[i])) : a + x[i];
    for (size_t d = rank; d-- > 0;) {  // next multi-index, last axis fastest
      if (++index[d] < dims[d]) break;
      index[d] = 0;
    }
  }
  for (int64_t j = 0; j < out_n; ++j)
    y[j] = static_cast<float>(op == ReduceOp::Mean ? acc[j] / group : acc[j]);
}

}  // namespace apl::kernels
