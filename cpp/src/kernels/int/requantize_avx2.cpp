// AVX2 requantization run, bit-identical to requantize_one. 8 lanes are handled as two halves of
// 4 64-bit sums acc * m + 2^(s-1) (vpmuldq on the even lanes, then on the odd lanes shifted
// down); |acc * m| <= 2^62 and 2^(s-1) <= 2^61, so the sums never overflow. Then:
// * shift >= 32 (the usual case, see with_shift_at_least_32): the high 32-bit words of the sums,
//   floor(v / 2^32), shifted arithmetically by s - 32 and clamped in 32 bits;
// * otherwise a 64-bit arithmetic shift, which AVX2 lacks: v lies in (-2^62, 2^62 + 2^61], so
//   u = v + 2^62 lies in (0, 2^64) as an unsigned value and, since 2^s divides 2^62,
//   u >> s (logical) = floor(v / 2^s) + 2^(62-s) exactly; then a 64-bit clamp per half.
#include <immintrin.h>

#include "int_kernels_isa.hpp"

namespace apl::kernels::avx2 {
namespace {

// 2^(s-1) per 64-bit lane for shift counts s (0 when s == 0).
inline __m256i rounding_term(__m256i s64) {
  return _mm256_srli_epi64(_mm256_sllv_epi64(_mm256_set1_epi64x(1), s64), 1);
}

// Multipliers m and shifts s per int32 lane.
struct Scales {
  __m256i m, s;
};

// 8 lanes from an array of FixedPointMultiplier {m, s}.
inline Scales load_scales(const FixedPointMultiplier* scale) {
  static_assert(sizeof(FixedPointMultiplier) == 8, "FixedPointMultiplier is {int32 m, int32 s}");
  const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);  // m m m m s s s s
  const __m256i a = _mm256_permutevar8x32_epi32(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scale)), split);
  const __m256i b = _mm256_permutevar8x32_epi32(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scale + 4)), split);
  return {_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31)};
}

// acc * m + 2^(s-1) of the even (first) and odd (second) int32 lanes, as 64-bit lanes.
inline void rounded_products(__m256i acc, const Scales& sc, __m256i* even, __m256i* odd) {
  const __m256i low_words = _mm256_set1_epi64x(0xFFFFFFFF);
  *even = _mm256_add_epi64(_mm256_mul_epi32(acc, sc.m),
                           rounding_term(_mm256_and_si256(sc.s, low_words)));
  *odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), _mm256_srli_epi64(sc.m, 32)),
                          rounding_term(_mm256_srli_epi64(sc.s, 32)));
}

// All shifts >= 32.
inline __m256i requantize_high_words(__m256i acc, const Scales& sc, __m256i lo, __m256i hi) {
  __m256i even, odd;
  rounded_products(acc, sc, &even, &odd);
  const __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  const __m256i v = _mm256_srav_epi32(high, _mm256_sub_epi32(sc.s, _mm256_set1_epi32(32)));
  return _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
}

// Any shift in [0, 62].
inline __m256i requantize_any_shift(__m256i acc, const Scales& sc, __m256i lo, __m256i hi) {
  __m256i even, odd;
  rounded_products(acc, sc, &even, &odd);
  const __m256i bias = _mm256_set1_epi64x(int64_t(1) << 62);
  const __m256i lo64 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(lo));
  const __m256i hi64 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(hi));
  auto shift_clamp = [&](__m256i v, __m256i s64) {
    v = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(v, bias), s64),
                         _mm256_srlv_epi64(bias, s64));
    v = _mm256_blendv_epi8(lo64, v, _mm256_cmpgt_epi64(v, lo64));
    return _mm256_blendv_epi8(v, hi64, _mm256_cmpgt_epi64(v, hi64));
  };
  even = shift_clamp(even, _mm256_and_si256(sc.s, _mm256_set1_epi64x(0xFFFFFFFF)));
  odd = shift_clamp(odd, _mm256_srli_epi64(sc.s, 32));
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// Low byte of each int32 lane -> 8 bytes.
inline int64_t narrow_to_bytes(__m256i v) {
  const __m256i low_bytes = _mm256_shuffle_epi8(
      v, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8,
                          12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
  const __m256i both_halves =
      _mm256_permutevar8x32_epi32(low_bytes, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
  return _mm_cvtsi128_si64(_mm256_castsi256_si128(both_halves));
}

}  // namespace

void requantize_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                    bool per_lane, int32_t lo, int32_t hi, uint8_t* y) {
  const __m256i lo_v = _mm256_set1_epi32(lo), hi_v = _mm256_set1_epi32(hi);
  const Scales uniform{_mm256_set1_epi32(scale->multiplier), _mm256_set1_epi32(scale->shift)};
  const bool uniform_high = scale->shift >= 32;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const Scales sc = per_lane ? load_scales(scale + i) : uniform;
    const bool high = per_lane ? _mm256_movemask_epi8(_mm256_cmpgt_epi32(
                                     _mm256_set1_epi32(32), sc.s)) == 0
                               : uniform_high;
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i));
    const int64_t bytes = narrow_to_bytes(high ? requantize_high_words(a, sc, lo_v, hi_v)
                                               : requantize_any_shift(a, sc, lo_v, hi_v));
    std::memcpy(y + i, &bytes, 8);
  }
  scalar::requantize_run(acc + i, n - i, per_lane ? scale + i : scale, per_lane, lo, hi, y + i);
}

}  // namespace apl::kernels::avx2
