// Pooling. Each (sample, channel) plane is copied into per-thread scratch with its padding
// filled by a neutral value (-inf for max, 0 for sums), so the window loops need no bounds checks
// and vectorise along the output width.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "../parallel_guard.hpp"
#include "float_internal.hpp"

namespace apl::kernels {
namespace {

// Number of window taps along one axis of output position o that fall inside the input.
int64_t taps_inside(int64_t o, int64_t stride, int64_t pad, int64_t dil, int64_t taps,
                    int64_t size) {
  int64_t count = 0;
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t i = o * stride - pad + t * dil;
    count += i >= 0 && i < size;
  }
  return count;
}

// Calls reduce(out_row, in_row, OW, stride_w) for every window tap of every output row, after
// filling the output rows with `init`; planes are shared among threads.
template <class Reduce>
void pool_planes(const Pool2dShape& s, int64_t N, const float* x, float* y, float pad_value,
                 float init, Reduce reduce) {
  const int64_t padded_h = s.H + s.pad_top + s.pad_bottom;
  const int64_t padded_w = s.W + s.pad_left + s.pad_right;
  const int64_t OH = s.OH(), OW = s.OW();
  const detail::CopyPaddedRowsFn copy_rows = detail::copy_padded_rows_for(active_simd_level());
  ParallelGuard guard;  // thread_scratch allocates
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < N * s.C; ++plane) guard.run([&] {
    float* padded = detail::thread_scratch(detail::Scratch::Plane, padded_h * padded_w);
    copy_rows(x + plane * s.H * s.W, s.H, s.W, -s.pad_top, padded_h, s.pad_left, s.pad_right,
              pad_value, padded);
    for (int64_t oh = 0; oh < OH; ++oh) {
      float* out = y + (plane * OH + oh) * OW;
      std::fill_n(out, OW, init);
      // The stride a constant for 1 and 2, so that the compiler vectorises the taps' loops.
      auto taps = [&](auto stride) {
        for (int64_t r = 0; r < s.R; ++r)
          for (int64_t col = 0; col < s.S; ++col)
            reduce(out, padded + (oh * s.stride_h + r * s.dil_h) * padded_w + col * s.dil_w, OW, stride);
      };
      if (s.stride_w == 1)
        taps(std::integral_constant<int64_t, 1>());
      else if (s.stride_w == 2)
        taps(std::integral_constant<int64_t, 2>());
      else
        taps(s.stride_w);
    }
  });
  guard.rethrow();
}

// The window's max, a NaN winning over everything after it.
inline float nan_max(float acc, float v) { return v > acc || std::isnan(v) ? v : acc; }

}  // namespace

// A NaN anywhere in the window gives NaN (as numpy and torch do): calibration measures ranges
// after a MaxPool and must see it.
// Separable, as max is: per output row, the maxima of its R padded input rows over the whole
// padded width (contiguous loops the compiler vectorises), then the S column taps of each output
// (strided): S strided passes per output row instead of R x S.
void maxpool2d_f32(const Pool2dShape& s, int64_t N, const float* x, float* y) {
  const float lowest = -std::numeric_limits<float>::infinity();
  const int64_t padded_h = s.H + s.pad_top + s.pad_bottom;
  const int64_t padded_w = s.W + s.pad_left + s.pad_right;
  const int64_t OH = s.OH(), OW = s.OW();
  const detail::CopyPaddedRowsFn copy_rows = detail::copy_padded_rows_for(active_simd_level());
  ParallelGuard guard;  // thread_scratch allocates
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < N * s.C; ++plane) guard.run([&] {
    float* padded = detail::thread_scratch(detail::Scratch::Plane, padded_h * padded_w);
    float* row_max = detail::thread_scratch(detail::Scratch::B, padded_w);
    copy_rows(x + plane * s.H * s.W, s.H, s.W, -s.pad_top, padded_h, s.pad_left, s.pad_right,
              lowest, padded);
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t W = padded_w;  // locals and restrict: stores must not alias the loop bounds
      float* __restrict m = row_max;
      std::copy_n(padded + oh * s.stride_h * W, W, m);
      for (int64_t r = 1; r < s.R; ++r) {
        const float* __restrict in = padded + (oh * s.stride_h + r * s.dil_h) * W;
        for (int64_t i = 0; i < W; ++i) m[i] = nan_max(m[i], in[i]);
      }
      float* __restrict out = y + (plane * OH + oh) * OW;
      auto taps = [&](auto stride) {
        for (int64_t ow = 0; ow < OW; ++ow) out[ow] = m[ow * stride];
        for (int64_t col = 1; col < s.S; ++col) {
          const float* tap = m + col * s.dil_w;
          for (int64_t ow = 0; ow < OW; ++ow) out[ow] = nan_max(out[ow], tap[ow * stride]);
        }
      };
      if (s.stride_w == 1)  // the stride a constant for 1 and 2, so that the loops vectorise
        taps(std::integral_constant<int64_t, 1>());
      else if (s.stride_w == 2)
        taps(std::integral_constant<int64_t, 2>());
      else
        taps(s.stride_w);
    }
  });
  guard.rethrow();
}

void avgpool2d_f32(const Pool2dShape& s, bool count_include_pad, int64_t N, const float* x,
                   float* y) {
  pool_planes(s, N, x, y, 0.0f, 0.0f, [](float* out, const float* in, int64_t OW, auto stride) {
    for (int64_t ow = 0; ow < OW; ++ow) out[ow] += in[ow * stride];
  });
  const int64_t OH = s.OH(), OW = s.OW();
  // Window cells inside the input (with count_include_pad: inside the padded input, whose end
  // stops before the cells ceil_mode adds): a product of per-axis counts.
  std::vector<float> rows_inside(OH), cols_inside(OW);
  const int64_t padded_h = s.H + s.pad_top + s.pad_bottom - s.ceil_extra_h;
  const int64_t padded_w = s.W + s.pad_left + s.pad_right - s.ceil_extra_w;
  for (int64_t oh = 0; oh < OH; ++oh)
    rows_inside[oh] = count_include_pad ? taps_inside(oh, s.stride_h, 0, s.dil_h, s.R, padded_h)
                                        : taps_inside(oh, s.stride_h, s.pad_top, s.dil_h, s.R, s.H);
  for (int64_t ow = 0; ow < OW; ++ow)
    cols_inside[ow] = count_include_pad ? taps_inside(ow, s.stride_w, 0, s.dil_w, s.S, padded_w)
                                        : taps_inside(ow, s.stride_w, s.pad_left, s.dil_w, s.S, s.W);
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < N * s.C; ++plane)
    for (int64_t oh = 0; oh < OH; ++oh) {
      float* out = y + (plane * OH + oh) * OW;
      for (int64_t ow = 0; ow < OW; ++ow) out[ow] /= rows_inside[oh] * cols_inside[ow];
    }
}

void global_avgpool_f32(int64_t N, int64_t C, int64_t HW, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (N * C * HW > (1 << 16))
  for (int64_t plane = 0; plane < N * C; ++plane) {
    const float* in = x + plane * HW;
    float sum = 0.0f;
    for (int64_t i = 0; i < HW; ++i) sum += in[i];
    y[plane] = sum / static_cast<float>(HW);
  }
}

}  // namespace apl::kernels
