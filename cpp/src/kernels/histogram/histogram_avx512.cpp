// AVX-512 bin slots, 16 values per step: and (abs), mul, min, cvtt, the same float32 operations
// as bin_index, then the slot bin * kSubHistograms + lane % kSubHistograms.
// GCC 12 falsely flags the _mm512_undefined_* inside the intrinsics (GCC PR 105593), which is
// also why the lane maxima are reduced through memory rather than with _mm512_reduce_max_epu32.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "histogram_isa.hpp"

namespace apl::kernels::avx512 {

uint32_t bin_slots(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* slots) {
  constexpr int kLanes = 16;
  static_assert(kLanes % kSubHistograms == 0, "a vector must cover whole rounds of sub-histograms");
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512 scale = _mm512_set1_ps(inv_width);
  const __m512 last_bin = _mm512_set1_ps(static_cast<float>(bins - 1));
  const __m512i table_of_lane = _mm512_and_si512(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(kSubHistograms - 1));
  __m512i max_bits = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m512i bits = _mm512_and_si512(_mm512_loadu_si512(x + i), abs_mask);
    max_bits = _mm512_max_epu32(max_bits, bits);
    // min(a, b) returns b when a is NaN, as bin_index does.
    const __m512 t = _mm512_min_ps(_mm512_mul_ps(_mm512_castsi512_ps(bits), scale), last_bin);
    const __m512i bin = _mm512_cvttps_epi32(t);
    _mm512_storeu_si512(slots + i, _mm512_or_si512(_mm512_slli_epi32(bin, kLog2SubHistograms), table_of_lane));
  }
  alignas(64) uint32_t lane_max[kLanes];
  _mm512_store_si512(lane_max, max_bits);
  const uint32_t head_max = *std::max_element(lane_max, lane_max + kLanes);
  return std::max(head_max, scalar::bin_slots(x + i, n - i, inv_width, bins, slots + i));
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

}  // namespace apl::kernels::avx512
