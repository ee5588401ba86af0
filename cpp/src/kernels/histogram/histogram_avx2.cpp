// AVX2 bin slots, 8 values per step: and (abs), mul, min, cvtt, the same float32 operations as
// bin_index, then the slot bin * kSubHistograms + lane % kSubHistograms.
#include <immintrin.h>

#include "histogram_isa.hpp"

namespace apl::kernels::avx2 {

namespace {
uint32_t horizontal_max(__m256i v) {
  __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(m));
}
}  // namespace

uint32_t bin_slots(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* slots) {
  constexpr int kLanes = 8;
  static_assert(kLanes % kSubHistograms == 0, "a vector must cover whole rounds of sub-histograms");
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256 scale = _mm256_set1_ps(inv_width);
  const __m256 last_bin = _mm256_set1_ps(static_cast<float>(bins - 1));
  const __m256i table_of_lane = _mm256_and_si256(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                                 _mm256_set1_epi32(kSubHistograms - 1));
  __m256i max_bits = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i bits = _mm256_and_si256(raw, abs_mask);
    max_bits = _mm256_max_epu32(max_bits, bits);
    // min(a, b) returns b when a is NaN, as bin_index does.
    const __m256 t = _mm256_min_ps(_mm256_mul_ps(_mm256_castsi256_ps(bits), scale), last_bin);
    const __m256i bin = _mm256_cvttps_epi32(t);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(slots + i),
                        _mm256_or_si256(_mm256_slli_epi32(bin, kLog2SubHistograms), table_of_lane));
  }
  return std::max(horizontal_max(max_bits), scalar::bin_slots(x + i, n - i, inv_width, bins, slots + i));
}

uint32_t max_abs_bits(const float* x, int64_t n) {
  constexpr int kLanes = 8;
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const auto abs_bits_at = [&](int64_t i) {
    return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs_mask);
  };
  // Four independent maxima: the loop is bound by loads, not by a dependency chain.
  __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    m0 = _mm256_max_epu32(m0, abs_bits_at(i));
    m1 = _mm256_max_epu32(m1, abs_bits_at(i + kLanes));
    m2 = _mm256_max_epu32(m2, abs_bits_at(i + 2 * kLanes));
    m3 = _mm256_max_epu32(m3, abs_bits_at(i + 3 * kLanes));
  }
  for (; i + kLanes <= n; i += kLanes) m0 = _mm256_max_epu32(m0, abs_bits_at(i));
  const __m256i m = _mm256_max_epu32(_mm256_max_epu32(m0, m1), _mm256_max_epu32(m2, m3));
  return std::max(horizontal_max(m), scalar::max_abs_bits(x + i, n - i));
}

}  // namespace apl::kernels::avx2
