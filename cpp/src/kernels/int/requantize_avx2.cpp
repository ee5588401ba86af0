// AVX2 requantization run, bit-identical to requantize_one: 8 lanes as two halves of 4 64-bit
// products (vpmuldq on the even lanes, then on the odd lanes shifted down), the rounding term
// 2^(s-1), then a 64-bit right shift. AVX2 has no 64-bit arithmetic shift, so the sum is biased
// to be positive and shifted logically:
//   v = acc * m + 2^(s-1) lies in (-2^62, 2^62 + 2^61] (|acc|, |m| <= 2^31, s <= 62), so
//   u = v + 2^62 lies in (0, 2^64) as an unsigned value, and since 2^s divides 2^62,
//   u >> s = floor(v / 2^s) + 2^(62-s) exactly; subtracting 2^(62-s) gives the arithmetic shift.
#include <immintrin.h>

#include "int_kernels_isa.hpp"

namespace apl::kernels::avx2 {
namespace {

// acc, m: int32 in the low half of each 64-bit lane; s: 64-bit shift counts.
inline __m256i multiply_round_shift_clamp(__m256i acc, __m256i m, __m256i s, __m256i lo,
                                          __m256i hi) {
  const __m256i bias = _mm256_set1_epi64x(int64_t(1) << 62);
  const __m256i round = _mm256_srli_epi64(_mm256_sllv_epi64(_mm256_set1_epi64x(1), s), 1);
  const __m256i u = _mm256_add_epi64(_mm256_add_epi64(_mm256_mul_epi32(acc, m), round), bias);
  const __m256i v = _mm256_sub_epi64(_mm256_srlv_epi64(u, s), _mm256_srlv_epi64(bias, s));
  const __m256i above_lo = _mm256_blendv_epi8(lo, v, _mm256_cmpgt_epi64(v, lo));
  return _mm256_blendv_epi8(above_lo, hi, _mm256_cmpgt_epi64(above_lo, hi));
}

// 8 accumulators with per-lane multipliers m and shifts s (int32 lanes) -> 8 bytes.
inline int64_t requantize8(__m256i acc, __m256i m, __m256i s, __m256i lo, __m256i hi) {
  const __m256i low_half = _mm256_set1_epi64x(0xFFFFFFFF);
  const __m256i even = multiply_round_shift_clamp(acc, m, _mm256_and_si256(s, low_half), lo, hi);
  const __m256i odd = multiply_round_shift_clamp(_mm256_srli_epi64(acc, 32),
                                                 _mm256_srli_epi64(m, 32),
                                                 _mm256_srli_epi64(s, 32), lo, hi);
  const __m256i both = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  // Low byte of each int32 to the first 4 bytes of each 128-bit half, then both halves together.
  const __m256i low_bytes = _mm256_shuffle_epi8(
      both, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8,
                             12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
  const __m256i packed = _mm256_permutevar8x32_epi32(low_bytes, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
  return _mm_cvtsi128_si64(_mm256_castsi256_si128(packed));
}

// Multipliers and shifts of 8 lanes from an array of FixedPointMultiplier {m, s}.
inline void load_scales(const FixedPointMultiplier* scale, __m256i* m, __m256i* s) {
  static_assert(sizeof(FixedPointMultiplier) == 8, "FixedPointMultiplier is {int32 m, int32 s}");
  const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);  // m m m m s s s s
  const __m256i a = _mm256_permutevar8x32_epi32(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scale)), split);
  const __m256i b = _mm256_permutevar8x32_epi32(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scale + 4)), split);
  *m = _mm256_permute2x128_si256(a, b, 0x20);
  *s = _mm256_permute2x128_si256(a, b, 0x31);
}

}  // namespace

void requantize_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                    bool per_lane, int32_t lo, int32_t hi, uint8_t* y) {
  const __m256i lo_v = _mm256_set1_epi64x(lo), hi_v = _mm256_set1_epi64x(hi);
  __m256i m = _mm256_set1_epi32(scale->multiplier), s = _mm256_set1_epi32(scale->shift);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (per_lane) load_scales(scale + i, &m, &s);
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i));
    const int64_t bytes = requantize8(a, m, s, lo_v, hi_v);
    std::memcpy(y + i, &bytes, 8);
  }
  scalar::requantize_run(acc + i, n - i, per_lane ? scale + i : scale, per_lane, lo, hi, y + i);
}

}  // namespace apl::kernels::avx2
