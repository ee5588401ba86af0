// AVX-512 requantization run, bit-identical to requantize_one: 16 lanes as two halves of 8
// 64-bit products (vpmuldq on the even lanes, then on the odd lanes shifted down), the rounding
// term 2^(s-1), a 64-bit arithmetic shift (vpsravq), a 64-bit clamp, narrowing to bytes.
// |acc * m| < 2^62 and the rounding term is <= 2^61, so the 64-bit sum never overflows.
// GCC 12 falsely flags the _mm512_undefined_* inside the intrinsics (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>

#include "int_kernels_isa.hpp"

namespace apl::kernels::avx512 {
namespace {

// acc, m: int32 in the low half of each 64-bit lane; s: 64-bit shift counts.
inline __m512i multiply_round_shift_clamp(__m512i acc, __m512i m, __m512i s, __m512i lo,
                                          __m512i hi) {
  // 2^(s-1) for s >= 1 and 0 for s == 0, without a branch.
  const __m512i round = _mm512_srli_epi64(_mm512_sllv_epi64(_mm512_set1_epi64(1), s), 1);
  const __m512i v = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(acc, m), round), s);
  return _mm512_min_epi64(_mm512_max_epi64(v, lo), hi);
}

// 16 accumulators with per-lane multipliers m and shifts s (int32 lanes) -> 16 bytes.
inline __m128i requantize16(__m512i acc, __m512i m, __m512i s, __m512i lo, __m512i hi) {
  const __m512i low_half = _mm512_set1_epi64(0xFFFFFFFF);
  const __m512i even = multiply_round_shift_clamp(acc, m, _mm512_and_si512(s, low_half), lo, hi);
  const __m512i odd = multiply_round_shift_clamp(_mm512_srli_epi64(acc, 32),
                                                 _mm512_srli_epi64(m, 32),
                                                 _mm512_srli_epi64(s, 32), lo, hi);
  const __m512i both = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  return _mm512_cvtepi32_epi8(both);
}

// Multipliers and shifts of lanes [0, count) from an array of FixedPointMultiplier {m, s}.
inline void load_scales(const FixedPointMultiplier* scale, int64_t count, __m512i* m, __m512i* s) {
  static_assert(sizeof(FixedPointMultiplier) == 8, "FixedPointMultiplier is {int32 m, int32 s}");
  const int32_t* words = reinterpret_cast<const int32_t*>(scale);
  const int64_t nwords = 2 * count;
  const __mmask16 first = nwords >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nwords) - 1);
  const __mmask16 second =
      nwords >= 32 ? 0xFFFF : nwords <= 16 ? 0 : static_cast<__mmask16>((1u << (nwords - 16)) - 1);
  const __m512i a = _mm512_maskz_loadu_epi32(first, words);
  const __m512i b = _mm512_maskz_loadu_epi32(second, words + 16);
  const __m512i even_words = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                               28, 30);
  *m = _mm512_permutex2var_epi32(a, even_words, b);
  *s = _mm512_permutex2var_epi32(a, _mm512_add_epi32(even_words, _mm512_set1_epi32(1)), b);
}

}  // namespace

void requantize_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                    bool per_lane, int32_t lo, int32_t hi, uint8_t* y) {
  const __m512i lo_v = _mm512_set1_epi64(lo), hi_v = _mm512_set1_epi64(hi);
  __m512i m = _mm512_set1_epi32(scale->multiplier), s = _mm512_set1_epi32(scale->shift);
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t count = std::min<int64_t>(16, n - i);
    const __mmask16 mask = count == 16 ? 0xFFFF : static_cast<__mmask16>((1u << count) - 1);
    if (per_lane) load_scales(scale + i, count, &m, &s);
    const __m512i a = _mm512_maskz_loadu_epi32(mask, acc + i);
    _mm_mask_storeu_epi8(y + i, mask, requantize16(a, m, s, lo_v, hi_v));
  }
}

}  // namespace apl::kernels::avx512
