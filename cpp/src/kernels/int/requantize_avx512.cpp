// AVX-512 requantization run, bit-identical to requantize_one. 16 lanes are handled as two halves
// of 8 64-bit sums acc * m + 2^(s-1) (vpmuldq on the even lanes, then on the odd lanes shifted
// down); |acc * m| <= 2^62 and 2^(s-1) <= 2^61, so the sums never overflow. Then:
// * shift >= 32 (the usual case, see with_shift_at_least_32): the high 32-bit words of the sums,
//   floor(v / 2^32), shifted arithmetically by s - 32 and clamped in 32 bits;
// * otherwise: a 64-bit arithmetic shift (vpsravq) and a 64-bit clamp per half.
#include <algorithm>

// GCC 12 falsely flags the _mm512_undefined_* inside the intrinsics (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "int_kernels_isa.hpp"

namespace apl::kernels::avx512 {
namespace {

// 2^(s-1) per 64-bit lane for shift counts s (0 when s == 0).
inline __m512i rounding_term(__m512i s64) {
  return _mm512_srli_epi64(_mm512_sllv_epi64(_mm512_set1_epi64(1), s64), 1);
}

// Multipliers m and shifts s per int32 lane.
struct Scales {
  __m512i m, s;
};

inline Scales broadcast_scales(FixedPointMultiplier fp) {
  return {_mm512_set1_epi32(fp.multiplier), _mm512_set1_epi32(fp.shift)};
}

// Lanes [0, count) from an array of FixedPointMultiplier {m, s}.
inline Scales load_scales(const FixedPointMultiplier* scale, int64_t count) {
  static_assert(sizeof(FixedPointMultiplier) == 8, "FixedPointMultiplier is {int32 m, int32 s}");
  const int32_t* words = reinterpret_cast<const int32_t*>(scale);
  const int64_t nwords = 2 * count;
  const __mmask16 first = nwords >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nwords) - 1);
  const __mmask16 second =
      nwords >= 32 ? 0xFFFF : nwords <= 16 ? 0 : static_cast<__mmask16>((1u << (nwords - 16)) - 1);
  const __m512i a = _mm512_maskz_loadu_epi32(first, words);
  const __m512i b = _mm512_maskz_loadu_epi32(second, words + 16);
  const __m512i even_words =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  return {_mm512_permutex2var_epi32(a, even_words, b),
          _mm512_permutex2var_epi32(a, _mm512_add_epi32(even_words, _mm512_set1_epi32(1)), b)};
}

// acc * m + 2^(s-1) of the even (first) and odd (second) int32 lanes, as 64-bit lanes.
inline __m512i even_shifts(const Scales& sc) {
  return _mm512_and_si512(sc.s, _mm512_set1_epi64(0xFFFFFFFF));
}
inline __m512i odd_shifts(const Scales& sc) { return _mm512_srli_epi64(sc.s, 32); }

inline void rounded_products(__m512i acc, const Scales& sc, __m512i* even, __m512i* odd) {
  *even = _mm512_add_epi64(_mm512_mul_epi32(acc, sc.m), rounding_term(even_shifts(sc)));
  *odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(acc, 32), _mm512_srli_epi64(sc.m, 32)),
                          rounding_term(odd_shifts(sc)));
}

// All shifts >= 32.
inline __m512i requantize_high_words(__m512i acc, const Scales& sc, __m512i lo, __m512i hi) {
  __m512i even, odd;
  rounded_products(acc, sc, &even, &odd);
  const __m512i high = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  const __m512i v = _mm512_srav_epi32(high, _mm512_sub_epi32(sc.s, _mm512_set1_epi32(32)));
  return _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
}

// Any shift in [0, 62].
inline __m512i requantize_any_shift(__m512i acc, const Scales& sc, __m512i lo, __m512i hi) {
  __m512i even, odd;
  rounded_products(acc, sc, &even, &odd);
  const __m512i lo64 = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(lo));
  const __m512i hi64 = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(hi));
  auto shift_clamp = [&](__m512i v, __m512i s64) {
    return _mm512_min_epi64(_mm512_max_epi64(_mm512_srav_epi64(v, s64), lo64), hi64);
  };
  even = shift_clamp(even, even_shifts(sc));
  odd = shift_clamp(odd, odd_shifts(sc));
  return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

inline __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << count) - 1);
}

}  // namespace

void requantize_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                    bool per_lane, int32_t lo, int32_t hi, uint8_t* y) {
  const __m512i lo_v = _mm512_set1_epi32(lo), hi_v = _mm512_set1_epi32(hi);
  const Scales uniform = broadcast_scales(*scale);
  const bool uniform_high = scale->shift >= 32;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = first_lanes(n - i);
    const Scales sc = per_lane ? load_scales(scale + i, std::min<int64_t>(16, n - i)) : uniform;
    const bool high =
        per_lane ? _mm512_mask_cmplt_epi32_mask(mask, sc.s, _mm512_set1_epi32(32)) == 0
                 : uniform_high;
    const __m512i a = _mm512_maskz_loadu_epi32(mask, acc + i);
    const __m512i v = high ? requantize_high_words(a, sc, lo_v, hi_v)
                           : requantize_any_shift(a, sc, lo_v, hi_v);
    _mm_mask_storeu_epi8(y + i, mask, _mm512_cvtepi32_epi8(v));
  }
}

}  // namespace apl::kernels::avx512
