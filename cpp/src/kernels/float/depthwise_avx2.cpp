// Depthwise kernel for AVX2: a block of kDepthwiseBlock outputs in 8 ymm accumulators across
// the taps (one broadcast weight, 8 loads and 8 FMAs per tap). The terms and their order of
// depthwise_flat_scalar, each step one fused multiply-add (within float rounding of it).
#include <immintrin.h>

#include "float_internal.hpp"

namespace apl::kernels::detail {

void depthwise_flat_avx2(int64_t taps, const int64_t* tap_offset, const float* band,
                         const float* w, float bias, int64_t n, float* out) {
  constexpr int kVectors = kDepthwiseBlock / 8;
  static_assert(kVectors * 8 == kDepthwiseBlock);
  for (int64_t p0 = 0; p0 < n; p0 += kDepthwiseBlock) {
    __m256 acc[kVectors];
    for (int v = 0; v < kVectors; ++v) acc[v] = _mm256_set1_ps(bias);
    for (int64_t t = 0; t < taps; ++t) {
      const __m256 weight = _mm256_set1_ps(w[t]);
      const float* src = band + tap_offset[t] + p0;
      for (int v = 0; v < kVectors; ++v) acc[v] = _mm256_fmadd_ps(weight, _mm256_loadu_ps(src + v * 8), acc[v]);
    }
    for (int v = 0; v < kVectors; ++v) _mm256_storeu_ps(out + p0 + v * 8, acc[v]);
  }
}

}  // namespace apl::kernels::detail
