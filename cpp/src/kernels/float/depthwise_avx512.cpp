// Depthwise kernel for AVX512: a block of kDepthwiseBlock outputs in 4 zmm accumulators across
// the taps (one broadcast weight, 4 loads and 4 FMAs per tap). The terms and their order of
// depthwise_flat_scalar, each step one fused multiply-add (within float rounding of it).
#include <immintrin.h>

#include <algorithm>

#include "float_internal.hpp"

namespace apl::kernels::detail {

void depthwise_flat_avx512(int64_t taps, const int64_t* tap_offset, const float* band,
                         const float* w, float bias, int64_t n, float* out) {
  constexpr int kVectors = kDepthwiseBlock / 16;
  static_assert(kVectors * 16 == kDepthwiseBlock);
  for (int64_t p0 = 0; p0 < n; p0 += kDepthwiseBlock) {
    __m512 acc[kVectors];
    for (int v = 0; v < kVectors; ++v) acc[v] = _mm512_set1_ps(bias);
    for (int64_t t = 0; t < taps; ++t) {
      const __m512 weight = _mm512_set1_ps(w[t]);
      const float* src = band + tap_offset[t] + p0;
      for (int v = 0; v < kVectors; ++v) acc[v] = _mm512_fmadd_ps(weight, _mm512_loadu_ps(src + v * 16), acc[v]);
    }
    for (int v = 0; v < kVectors; ++v) _mm512_storeu_ps(out + p0 + v * 16, acc[v]);
  }
}

}  // namespace apl::kernels::detail

// ---- Direct 3x3 planes ---------------------------------------------------------------------------
// One output plane of a 3x3 depthwise convolution straight from the unpadded input plane, in
// chunks of 16 output columns per row: per tap one masked load of the input row (lanes outside
// the plane read as zeros, as the padded band holds; stride_w 2: two loads and an even-lane
// permute), one FMA with the tap's weight held in a register. No band copy, no junk columns, no
// output copy: what dominates on small planes (7x7: 49 outputs). A clamp (lo, hi), when given, is
// applied at the store (a fused Relu / Clip). Same terms in the same order
// as depthwise_flat_scalar (bias, then taps row-major, one FMA each), zeros included, so the
// same floats.
namespace apl::kernels::detail {
namespace {

template <int SW>
void depthwise3x3_plane(const Conv2dShape& s, const float* x, const float* w, float bias,
                        const float* clamp, float* y) {
  constexpr int R = 3, S = 3;
  // max(lo, v) then min(hi, .): the second operand (v) when one is NaN, as Clamp keeps NaN.
  const __m512 lo_v = _mm512_set1_ps(clamp ? clamp[0] : 0.0f), hi_v = _mm512_set1_ps(clamp ? clamp[1] : 0.0f);
  const int64_t OH = s.OH(), OW = s.OW();
  __m512 wv[R * S];
  for (int t = 0; t < R * S; ++t) wv[t] = _mm512_set1_ps(w[t]);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  if (SW == 2 && OW <= 8) {
    // Two output rows a vector (lanes 0-7: row oh, 8-15: row oh + 1): per tap one 16-column load
    // of each input row and one permute of their even lanes.
    int64_t base[S];
    uint32_t lanes[S];
    for (int q = 0; q < S; ++q) {
      base[q] = q * s.dil_w - s.pad_left;
      const int64_t lo = std::clamp<int64_t>(-base[q], 0, 16), hi = std::clamp<int64_t>(s.W - base[q], lo, 16);
      lanes[q] = ((1u << hi) - 1) & ~((1u << lo) - 1) & 0x5555u & ((1u << (2 * OW)) - 1);
    }
    const __mmask16 row_mask = static_cast<__mmask16>((1u << OW) - 1);
    for (int64_t oh = 0; oh < OH; oh += 2) {
      __m512 acc = _mm512_set1_ps(bias);
      for (int r = 0; r < R; ++r) {
        const int64_t ih_a = oh * s.stride_h - s.pad_top + r * s.dil_h, ih_b = ih_a + s.stride_h;
        const bool in_a = ih_a >= 0 && ih_a < s.H, in_b = oh + 1 < OH && ih_b >= 0 && ih_b < s.H;
        const float* row_a = x + (in_a ? ih_a : 0) * s.W;
        const float* row_b = x + (in_b ? ih_b : 0) * s.W;
        for (int q = 0; q < S; ++q) {
          const __m512 a = _mm512_maskz_loadu_ps(static_cast<__mmask16>(in_a ? lanes[q] : 0), row_a + base[q]);
          const __m512 b = _mm512_maskz_loadu_ps(static_cast<__mmask16>(in_b ? lanes[q] : 0), row_b + base[q]);
          acc = _mm512_fmadd_ps(wv[r * S + q], _mm512_permutex2var_ps(a, even, b), acc);
        }
      }
      if (clamp) acc = _mm512_min_ps(hi_v, _mm512_max_ps(lo_v, acc));
      // Lanes 0..OW-1 to row oh; lanes 8..8+OW-1 to row oh + 1 (compressed to follow it).
      _mm512_mask_storeu_ps(y + oh * OW, row_mask, acc);
      if (oh + 1 < OH)
        _mm512_mask_storeu_ps(y + (oh + 1) * OW, row_mask,
                              _mm512_shuffle_f32x4(acc, acc, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    return;
  }
  for (int64_t j0 = 0; j0 < OW; j0 += 16) {
    const int64_t n = std::min<int64_t>(16, OW - j0);
    const __mmask16 out_mask = static_cast<__mmask16>((1u << n) - 1);
    // Per tap column: the input column of lane 0 and the lanes inside the plane (rows inside).
    int64_t base[S];
    uint32_t lanes[S];
    for (int q = 0; q < S; ++q) {
      base[q] = j0 * SW - s.pad_left + q * s.dil_w;
      if (SW == 1) {
        const int64_t lo = std::clamp<int64_t>(-base[q], 0, n), hi = std::clamp<int64_t>(s.W - base[q], lo, n);
        lanes[q] = ((1u << hi) - 1) & ~((1u << lo) - 1);
      } else {  // window lane m holds column base + m; output lane l takes window lane 2 l
        const int64_t lo = std::clamp<int64_t>(-base[q], 0, 32), hi = std::clamp<int64_t>(s.W - base[q], lo, 32);
        uint64_t m = ((uint64_t(1) << hi) - 1) & ~((uint64_t(1) << lo) - 1);
        lanes[q] = static_cast<uint32_t>(m & 0x55555555u & ((uint64_t(1) << (2 * n)) - 1));
      }
    }
    // kRows output rows at a time: independent FMA chains (each output's own sum stays in order).
    constexpr int kRows = 1;
    for (int64_t oh0 = 0; oh0 < OH; oh0 += kRows) {
      __m512 acc[kRows];
      for (int i = 0; i < kRows; ++i) acc[i] = _mm512_set1_ps(bias);
      for (int r = 0; r < R; ++r) {
        const float* row[kRows];
        bool inside[kRows];
        for (int i = 0; i < kRows; ++i) {
          const int64_t ih = (oh0 + i) * s.stride_h - s.pad_top + r * s.dil_h;
          inside[i] = ih >= 0 && ih < s.H;  // rows past OH read as zeros (and are not stored)
          row[i] = x + (inside[i] ? ih : 0) * s.W;
        }
        for (int q = 0; q < S; ++q)
          for (int i = 0; i < kRows; ++i) {
            const uint32_t m = inside[i] ? lanes[q] : 0;
            __m512 v;
            if (SW == 1) {
              v = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m), row[i] + base[q]);
            } else {
              const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m), row[i] + base[q]);
              const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m >> 16), row[i] + base[q] + 16);
              v = _mm512_permutex2var_ps(lo, even, hi);
            }
            acc[i] = _mm512_fmadd_ps(wv[r * S + q], v, acc[i]);
          }
      }
      for (int i = 0; i < kRows && oh0 + i < OH; ++i) {
        __m512 v = acc[i];
        if (clamp) v = _mm512_min_ps(hi_v, _mm512_max_ps(lo_v, v));  // NaN stays NaN
        _mm512_mask_storeu_ps(y + (oh0 + i) * OW + j0, out_mask, v);
      }
    }
  }
}

// Flat planes (stride 1, OW == W): output p reads input p + tap_offset[t] under the tap's lane
// mask for its 16-output chunk (zeros outside the plane), so 16 outputs per vector across rows
// (7x7: 4 vectors a plane instead of 7 part-empty rows).
template <int TAPS>
void depthwise_flat_plane(int64_t n_out, int64_t taps_rt, const int64_t* tap_offset,
                          const uint16_t* masks, const float* x, const float* w, float bias,
                          const float* clamp, float* y) {
  const int64_t taps = TAPS > 0 ? TAPS : taps_rt;
  const __m512 lo_v = _mm512_set1_ps(clamp ? clamp[0] : 0.0f), hi_v = _mm512_set1_ps(clamp ? clamp[1] : 0.0f);
  __m512 wv[TAPS > 0 ? TAPS : 1];
  if (TAPS > 0)
    for (int t = 0; t < TAPS; ++t) wv[t] = _mm512_set1_ps(w[t]);
  for (int64_t p0 = 0; p0 < n_out; p0 += 16, masks += taps) {
    __m512 acc = _mm512_set1_ps(bias);
    for (int64_t t = 0; t < taps; ++t) {
      const __m512 v = _mm512_maskz_loadu_ps(masks[t], x + p0 + tap_offset[t]);
      acc = _mm512_fmadd_ps(TAPS > 0 ? wv[t] : _mm512_set1_ps(w[t]), v, acc);
    }
    if (clamp) acc = _mm512_min_ps(hi_v, _mm512_max_ps(lo_v, acc));
    const int64_t n = std::min<int64_t>(16, n_out - p0);
    _mm512_mask_storeu_ps(y + p0, static_cast<__mmask16>((1u << n) - 1), acc);
  }
}

}  // namespace

DepthwiseFlatPlaneFn depthwise_flat_plane_avx512(int64_t taps) {
  return taps == 9 ? depthwise_flat_plane<9> : depthwise_flat_plane<0>;
}

DepthwisePlaneFn depthwise_plane_avx512(const Conv2dShape& s) {
  if (s.R != 3 || s.S != 3) return nullptr;
  if (s.stride_w == 1) return depthwise3x3_plane<1>;
  if (s.stride_w == 2) return depthwise3x3_plane<2>;
  return nullptr;
}

}  // namespace apl::kernels::detail
