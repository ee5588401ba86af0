// AVX-512 tile bins, 16 values per step: and (abs), mul, min, cvtt, the same float32 operations
// as bin_index, then the bins, or those that are not 0 packed with vpcompressd.
// GCC 12 falsely flags the _mm512_undefined_* inside the intrinsics (GCC PR 105593), which is
// also why the lane maxima are reduced through memory rather than with _mm512_reduce_max_epu32.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <limits>

#include "histogram_isa.hpp"

namespace apl::kernels::avx512 {

namespace {
template <bool kSkipBin0>
TileBins tile_bins_impl(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* out) {
  constexpr int kLanes = 16;
  static_assert(kLanes <= kBinSlack, "a whole vector is stored at the end of the list");
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512 scale = _mm512_set1_ps(inv_width);
  const __m512 last_bin = _mm512_set1_ps(static_cast<float>(bins - 1));
  __m512i max_bits = _mm512_setzero_si512();
  int64_t listed = 0;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m512i bits = _mm512_and_si512(_mm512_loadu_si512(x + i), abs_mask);
    max_bits = _mm512_max_epu32(max_bits, bits);
    // min(a, b) returns b when a is NaN, as bin_index does.
    const __m512 t = _mm512_min_ps(_mm512_mul_ps(_mm512_castsi512_ps(bits), scale), last_bin);
    const __m512i bin = _mm512_cvttps_epi32(t);
    if constexpr (kSkipBin0) {
      const __mmask16 nonzero = _mm512_test_epi32_mask(bin, bin);
      // Compress in a register and store the whole vector (into the slack): as fast here as a
      // compressing store to memory, which some CPUs (AMD Zen 4) run very slowly.
      _mm512_storeu_si512(out + listed, _mm512_maskz_compress_epi32(nonzero, bin));
      listed += _mm_popcnt_u32(nonzero);
    } else {
      _mm512_storeu_si512(out + listed, bin);
      listed += kLanes;
    }
  }
  alignas(64) uint32_t lane_max[kLanes];
  _mm512_store_si512(lane_max, max_bits);
  const uint32_t head_max = *std::max_element(lane_max, lane_max + kLanes);
  const TileBins tail = scalar::tile_bins(x + i, n - i, inv_width, bins, kSkipBin0, out + listed);
  return {std::max(head_max, tail.max_bits), listed + tail.listed};
}
}  // namespace

TileBins tile_bins(const float* x, int64_t n, float inv_width, int32_t bins, bool skip_bin0, uint32_t* out) {
  return skip_bin0 ? tile_bins_impl<true>(x, n, inv_width, bins, out)
                   : tile_bins_impl<false>(x, n, inv_width, bins, out);
}

uint32_t max_abs_bits(const float* x, int64_t n) {
  constexpr int kLanes = 16;
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  // Four independent maxima: the loop is bound by loads, not by a dependency chain.
  __m512i m0 = _mm512_setzero_si512(), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(x + i), abs_mask));
    m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(x + i + kLanes), abs_mask));
    m2 = _mm512_max_epu32(m2, _mm512_and_si512(_mm512_loadu_si512(x + i + 2 * kLanes), abs_mask));
    m3 = _mm512_max_epu32(m3, _mm512_and_si512(_mm512_loadu_si512(x + i + 3 * kLanes), abs_mask));
  }
  for (; i + kLanes <= n; i += kLanes)
    m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(x + i), abs_mask));
  alignas(64) uint32_t lane_max[4 * kLanes];
  _mm512_store_si512(lane_max, m0);
  _mm512_store_si512(lane_max + kLanes, m1);
  _mm512_store_si512(lane_max + 2 * kLanes, m2);
  _mm512_store_si512(lane_max + 3 * kLanes, m3);
  const uint32_t head_max = *std::max_element(lane_max, lane_max + 4 * kLanes);
  return std::max(head_max, scalar::max_abs_bits(x + i, n - i));
}

uint32_t max_abs_min_bits(const float* x, int64_t n, float* min) {
  constexpr int kLanes = 16;
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  // Two independent (max, min) pairs: one load feeds both, the loop is bound by loads.
  __m512i m0 = _mm512_setzero_si512(), m1 = m0;
  __m512 lo0 = _mm512_set1_ps(std::numeric_limits<float>::infinity()), lo1 = lo0;
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + kLanes);
    m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_castps_si512(a), abs_mask));
    m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_castps_si512(b), abs_mask));
    lo0 = _mm512_min_ps(lo0, a);
    lo1 = _mm512_min_ps(lo1, b);
  }
  for (; i + kLanes <= n; i += kLanes) {
    const __m512 a = _mm512_loadu_ps(x + i);
    m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_castps_si512(a), abs_mask));
    lo0 = _mm512_min_ps(lo0, a);
  }
  alignas(64) uint32_t lane_max[2 * kLanes];
  alignas(64) float lane_min[2 * kLanes];
  _mm512_store_si512(lane_max, m0);
  _mm512_store_si512(lane_max + kLanes, m1);
  _mm512_store_ps(lane_min, lo0);
  _mm512_store_ps(lane_min + kLanes, lo1);
  uint32_t head_max = 0;
  float head_min = std::numeric_limits<float>::infinity();
  for (int k = 0; k < 2 * kLanes; ++k) {
    head_max = std::max(head_max, lane_max[k]);
    head_min = std::min(head_min, lane_min[k]);
  }
  if (i == n) {
    *min = head_min;
    return head_max;
  }
  float tail_min;
  const uint32_t tail_max = scalar::max_abs_min_bits(x + i, n - i, &tail_min);
  *min = std::min(head_min, tail_min);
  return std::max(head_max, tail_max);
}

}  // namespace apl::kernels::avx512
