// AVX-512 requantization run, bit-identical to requantize_one. 16 lanes are handled as two halves
// of 8 64-bit sums acc * m + 2^(s-1) (vpmuldq on the even lanes, then on the odd lanes shifted
// down); |acc * m| <= 2^62 and 2^(s-1) <= 2^61, so the sums never overflow. Then:
// * shift >= 32 (the usual case, see with_shift_at_least_32): the high 32-bit words of the sums,
//   floor(v / 2^32), shifted arithmetically by s - 32 and clamped in 32 bits;
// * otherwise: a 64-bit arithmetic shift (vpsravq, or vpsraq for one scale) and a 64-bit clamp
//   per half.
//
// Single shifts (shift_rescale_run): 32-bit lanes throughout, see shift_rescale_run_for in
// int_kernels_isa.hpp for the formulation and why it cannot overflow.
#include <algorithm>

// GCC 12 falsely flags the _mm512_undefined_* inside the intrinsics (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "int_kernels_isa.hpp"
#include "widen_loops.hpp"

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

// Single shifts k per lane, unclamped: (acc >> k) + bit k-1 of acc (see shift_rescale_run_for).
inline __m512i shift_round(__m512i acc, __m512i k) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i round_bit = _mm512_and_si512(_mm512_srlv_epi32(acc, _mm512_sub_epi32(k, one)), one);
  return _mm512_add_epi32(_mm512_srav_epi32(acc, k), round_bit);
}

// 4 x 16 int32 lanes -> 64 bytes in order, clamped to [lo, hi]. The saturating packs are
// monotone and [lo, hi] lies inside their final range (uint8 when lo >= 0, else int8, see
// check_requant_params), so clamping the packed bytes equals clamping the int32 values: one
// clamp per 64 lanes instead of four.
inline __m512i pack_clamp_bytes(__m512i a, __m512i b, __m512i c, __m512i d, bool unsigned_bytes,
                                __m512i lo8, __m512i hi8) {
  const __m512i ab = _mm512_packs_epi32(a, b), cd = _mm512_packs_epi32(c, d);
  // Per 128-bit lane L, dwords: a[4L..4L+3], b[4L..], c[4L..], d[4L..].
  const __m512i bytes = unsigned_bytes ? _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(ab, cd), lo8), hi8)
                                       : _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(ab, cd), lo8), hi8);
  return _mm512_permutexvar_epi32(
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), bytes);
}

inline __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << count) - 1);
}

// first_lanes for any count (none when count <= 0).
inline __mmask16 lanes_from(int64_t count) { return count <= 0 ? 0 : first_lanes(count); }

// One scale with shift s >= 32 (the usual fused output stage), 64 lanes per step, the clamp on
// the packed bytes (equal to the int32 clamp, as argued at pack_clamp_bytes). The high words
// H = floor(P / 2^32) of the products P = acc * m (|P| <= 2^62) come from vpmuldq on the even and
// the odd lanes and one vpermt2d. With P = H * 2^32 + L, 0 <= L < 2^32:
// * s >= 33: 2^(s-1) = 2^(s-33) * 2^32, so (P + 2^(s-1)) >> s = ((H + 2^(s-33)) * 2^32 + L) >> s
//   = (H + 2^(s-33)) >> (s - 32) (L cannot carry into bit 32), all in 32-bit lanes:
//   |H| <= 2^30 and 2^(s-33) <= 2^29, so the sum fits;
// * s == 32: the rounding term 2^31 is added to the 64-bit products, then their high words are
//   the result.
template <bool Fold>
inline __m512i high_word_rescale(__m512i a, __m512i m, __m512i round64, __m512i round32,
                                 __m128i rest) {
  const __m512i high_dwords =
      _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
  __m512i even = _mm512_mul_epi32(a, m);
  // vpmuldq reads the low dword of each qword: the odd lanes moved down by a vpshufd (port 5,
  // beside the multiplies and shifts on port 0).
  __m512i odd = _mm512_mul_epi32(_mm512_shuffle_epi32(a, _MM_PERM_CDAB), m);
  if (!Fold) {
    even = _mm512_add_epi64(even, round64);
    odd = _mm512_add_epi64(odd, round64);
  }
  const __m512i high = _mm512_permutex2var_epi32(even, high_dwords, odd);
  return Fold ? _mm512_sra_epi32(_mm512_add_epi32(high, round32), rest) : high;
}

template <bool Fold>
void requantize_uniform_high(const int32_t* acc, int64_t n, FixedPointMultiplier fp, int32_t lo,
                             int32_t hi, uint8_t* y) {
  const __m512i m = _mm512_set1_epi32(fp.multiplier);
  const __m512i round64 = _mm512_set1_epi64(int64_t{1} << (fp.shift - 1));
  const __m512i round32 = _mm512_set1_epi32(Fold ? int32_t{1} << (fp.shift - 33) : 0);
  const __m128i rest = _mm_cvtsi32_si128(fp.shift - 32);
  auto rescale = [&](__m512i a) { return high_word_rescale<Fold>(a, m, round64, round32, rest); };
  const bool unsigned_bytes = lo >= 0;
  const __m512i lo8 = _mm512_set1_epi8(static_cast<char>(lo));
  const __m512i hi8 = _mm512_set1_epi8(static_cast<char>(hi));
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i a = rescale(_mm512_loadu_si512(acc + i));
    const __m512i b = rescale(_mm512_loadu_si512(acc + i + 16));
    const __m512i c = rescale(_mm512_loadu_si512(acc + i + 32));
    const __m512i d = rescale(_mm512_loadu_si512(acc + i + 48));
    _mm512_storeu_si512(y + i, pack_clamp_bytes(a, b, c, d, unsigned_bytes, lo8, hi8));
  }
  if (i < n) {  // the last 1..63 as one masked step (short runs: output rows, small planes)
    auto part = [&](int64_t k) {
      return rescale(_mm512_maskz_loadu_epi32(lanes_from(n - i - 16 * k), acc + i + 16 * k));
    };
    _mm512_mask_storeu_epi8(y + i, (__mmask64{1} << (n - i)) - 1,
                            pack_clamp_bytes(part(0), part(1), part(2), part(3), unsigned_bytes,
                                             lo8, hi8));
  }
}

// One scale with shift s < 32 (a multiplier without the headroom for with_shift_at_least_32:
// factors above 1/2, as at joins), 64 lanes per step: the 64-bit sums P + 2^(s-1) shifted
// arithmetically (vpsraq) and clamped in 64 bits, so that results beyond int32 saturate as the
// rule does; then their low dwords, packed and clamped as bytes.
void requantize_uniform_low(const int32_t* acc, int64_t n, FixedPointMultiplier fp, int32_t lo,
                            int32_t hi, uint8_t* y) {
  const __m512i m = _mm512_set1_epi32(fp.multiplier);
  const __m512i round64 = _mm512_set1_epi64(fp.shift > 0 ? int64_t{1} << (fp.shift - 1) : 0);
  const __m128i count = _mm_cvtsi32_si128(fp.shift);
  const __m512i lo64 = _mm512_set1_epi64(lo), hi64 = _mm512_set1_epi64(hi);
  const __m512i low_dwords =
      _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
  auto rescale = [&](__m512i a) {
    auto shifted = [&](__m512i v) {
      v = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(v, m), round64), count);
      return _mm512_min_epi64(_mm512_max_epi64(v, lo64), hi64);
    };
    return _mm512_permutex2var_epi32(shifted(a), low_dwords,
                                     shifted(_mm512_shuffle_epi32(a, _MM_PERM_CDAB)));
  };
  const bool unsigned_bytes = lo >= 0;
  const __m512i lo8 = _mm512_set1_epi8(static_cast<char>(lo));
  const __m512i hi8 = _mm512_set1_epi8(static_cast<char>(hi));
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i a = rescale(_mm512_loadu_si512(acc + i));
    const __m512i b = rescale(_mm512_loadu_si512(acc + i + 16));
    const __m512i c = rescale(_mm512_loadu_si512(acc + i + 32));
    const __m512i d = rescale(_mm512_loadu_si512(acc + i + 48));
    _mm512_storeu_si512(y + i, pack_clamp_bytes(a, b, c, d, unsigned_bytes, lo8, hi8));
  }
  if (i < n) {
    auto part = [&](int64_t k) {
      return rescale(_mm512_maskz_loadu_epi32(lanes_from(n - i - 16 * k), acc + i + 16 * k));
    };
    _mm512_mask_storeu_epi8(y + i, (__mmask64{1} << (n - i)) - 1,
                            pack_clamp_bytes(part(0), part(1), part(2), part(3), unsigned_bytes,
                                             lo8, hi8));
  }
}

}  // namespace

void requantize_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                    bool per_lane, int32_t lo, int32_t hi, uint8_t* y) {
  if (!per_lane && scale->shift >= 33)
    return requantize_uniform_high<true>(acc, n, *scale, lo, hi, y);
  if (!per_lane && scale->shift == 32)
    return requantize_uniform_high<false>(acc, n, *scale, lo, hi, y);
  if (!per_lane) return requantize_uniform_low(acc, n, *scale, lo, hi, y);
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

void shift_rescale_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                       bool per_lane, int32_t lo, int32_t hi, uint8_t* y) {
  const __m512i uniform = _mm512_set1_epi32(scale->shift);
  auto shifts = [&](int64_t i, int64_t count) {
    return per_lane ? load_scales(scale + i, count).s : uniform;
  };
  auto rescaled = [&](int64_t i) {
    return shift_round(_mm512_loadu_si512(acc + i), shifts(i, 16));
  };
  const bool unsigned_bytes = lo >= 0;
  const __m512i lo8 = _mm512_set1_epi8(static_cast<char>(lo));
  const __m512i hi8 = _mm512_set1_epi8(static_cast<char>(hi));
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    _mm512_storeu_si512(y + i, pack_clamp_bytes(rescaled(i), rescaled(i + 16), rescaled(i + 32),
                                                rescaled(i + 48), unsigned_bytes, lo8, hi8));
  if (!per_lane && i < n) {  // the last 1..63 as one masked step
    auto part = [&](int64_t k) {
      return shift_round(_mm512_maskz_loadu_epi32(lanes_from(n - i - 16 * k), acc + i + 16 * k),
                         uniform);
    };
    _mm512_mask_storeu_epi8(y + i, (__mmask64{1} << (n - i)) - 1,
                            pack_clamp_bytes(part(0), part(1), part(2), part(3), unsigned_bytes,
                                             lo8, hi8));
    return;
  }
  const __m512i lo_v = _mm512_set1_epi32(lo), hi_v = _mm512_set1_epi32(hi);
  for (; i < n; i += 16) {
    const __mmask16 mask = first_lanes(n - i);
    const __m512i v = shift_round(_mm512_maskz_loadu_epi32(mask, acc + i),
                                  shifts(i, std::min<int64_t>(16, n - i)));
    _mm_mask_storeu_epi8(y + i, mask, _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, lo_v), hi_v)));
  }
}

template <class A, class B>
void widen_sum(const A* a, const B* b, int64_t n, bool subtract, int32_t* y) {
  widen_sum_loop(a, b, n, subtract, y);
}
template <class T> void widen(const T* x, int64_t n, int32_t* y) { widen_loop(x, n, y); }
template void widen_sum<int8_t, int8_t>(const int8_t*, const int8_t*, int64_t, bool, int32_t*);
template void widen_sum<int8_t, uint8_t>(const int8_t*, const uint8_t*, int64_t, bool, int32_t*);
template void widen_sum<uint8_t, int8_t>(const uint8_t*, const int8_t*, int64_t, bool, int32_t*);
template void widen_sum<uint8_t, uint8_t>(const uint8_t*, const uint8_t*, int64_t, bool, int32_t*);
template void widen<int8_t>(const int8_t*, int64_t, int32_t*);
template void widen<uint8_t>(const uint8_t*, int64_t, int32_t*);

}  // namespace apl::kernels::avx512
