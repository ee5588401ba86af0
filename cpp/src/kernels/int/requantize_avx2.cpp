// AVX2 requantization run, bit-identical to requantize_one. 8 lanes are handled as two halves of
// 4 64-bit sums acc * m + 2^(s-1) (vpmuldq on the even lanes, then on the odd lanes shifted
// down); |acc * m| <= 2^62 and 2^(s-1) <= 2^61, so the sums never overflow. Then:
// * shift >= 32 (the usual case, see with_shift_at_least_32): the high 32-bit words of the sums,
//   floor(v / 2^32), shifted arithmetically by s - 32 and clamped in 32 bits;
// * otherwise a 64-bit arithmetic shift, which AVX2 lacks: v lies in (-2^62, 2^62 + 2^61], so
//   u = v + 2^62 lies in (0, 2^64) as an unsigned value and, since 2^s divides 2^62,
//   u >> s (logical) = floor(v / 2^s) + 2^(62-s) exactly; then a 64-bit clamp per half.
//
// Single shifts (shift_rescale_run): 32-bit lanes throughout, see shift_rescale_run_for in
// int_kernels_isa.hpp for the formulation and why it cannot overflow.
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

// Single shifts k per lane, unclamped: (acc >> k) + bit k-1 of acc (see shift_rescale_run_for).
inline __m256i shift_round(__m256i acc, __m256i k) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i round_bit = _mm256_and_si256(_mm256_srlv_epi32(acc, _mm256_sub_epi32(k, one)), one);
  return _mm256_add_epi32(_mm256_srav_epi32(acc, k), round_bit);
}

// 4 x 8 int32 lanes -> 32 bytes in order, clamped to [lo, hi]. The saturating packs are
// monotone and [lo, hi] lies inside their final range (uint8 when lo >= 0, else int8, see
// check_requant_params), so clamping the packed bytes equals clamping the int32 values: one
// clamp per 32 lanes instead of four.
inline __m256i pack_clamp_bytes(__m256i a, __m256i b, __m256i c, __m256i d, bool unsigned_bytes,
                                __m256i lo8, __m256i hi8) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  // Per 128-bit lane L, dwords: a[4L..4L+3], b[4L..], c[4L..], d[4L..].
  const __m256i bytes = unsigned_bytes ? _mm256_min_epu8(_mm256_max_epu8(_mm256_packus_epi16(ab, cd), lo8), hi8)
                                       : _mm256_min_epi8(_mm256_max_epi8(_mm256_packs_epi16(ab, cd), lo8), hi8);
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
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

void shift_rescale_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                       bool per_lane, int32_t lo, int32_t hi, uint8_t* y) {
  const __m256i uniform = _mm256_set1_epi32(scale->shift);
  auto rescaled = [&](int64_t i) {
    return shift_round(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i)),
                       per_lane ? load_scales(scale + i).s : uniform);
  };
  const bool unsigned_bytes = lo >= 0;
  const __m256i lo8 = _mm256_set1_epi8(static_cast<char>(lo));
  const __m256i hi8 = _mm256_set1_epi8(static_cast<char>(hi));
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        pack_clamp_bytes(rescaled(i), rescaled(i + 8), rescaled(i + 16),
                                         rescaled(i + 24), unsigned_bytes, lo8, hi8));
  const __m256i lo_v = _mm256_set1_epi32(lo), hi_v = _mm256_set1_epi32(hi);
  for (; i + 8 <= n; i += 8) {
    const int64_t bytes = narrow_to_bytes(_mm256_min_epi32(_mm256_max_epi32(rescaled(i), lo_v), hi_v));
    std::memcpy(y + i, &bytes, 8);
  }
  scalar::shift_rescale_run(acc + i, n - i, per_lane ? scale + i : scale, per_lane, lo, hi, y + i);
}

}  // namespace apl::kernels::avx2
