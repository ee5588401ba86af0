"""C99 sources of the portable integer kernels written by export_c (apl_kernels.h / .c).

Integers only: int8/uint8 codes, int32 accumulators, int64 for the requantization product. The
rules are those of the integer executor (cpp/src/kernels/int, cpp/src/runtime/int_op_kernels.cpp):

- requantize: y = clamp((acc * m + (1 << (s - 1))) >> s, lo, hi) in int64 (s == 0: no rounding
  term); the arithmetic right shift is written as floor division (~(~v >> s) for negative v), so
  the result does not depend on the compiler's choice for shifts of negative values.
- conv / gemm: accumulated modulo 2^32 in uint32 (no signed-overflow UB), plus the int32 bias.
- pools: max keeps codes (padding cells ignored, an all-padding window gives 0); average pools
  sum their window (padding cells ignored) into the accumulator type.
- above 8 bits ("wide"): int32 codes and weights, int64 accumulators (conv summed modulo 2^64 in
  uint64), and the requantization product acc * m exact in 128 bits, built from two uint64
  words (C99 has no 128-bit integer): apl_requant_wide.
- lookup tables (element-wise float islands): y = lut[clamp(code - first, 0, last)], int32.
"""

import re

KERNELS_H = r"""/* Portable integer kernels of aidge_ptq_lite's C export (C99, no heap, no floating point). */
#ifndef APL_KERNELS_H
#define APL_KERNELS_H
#include <stdint.h>

/* Storage type of a tensor. */
enum { APL_S8 = 0, APL_U8 = 1, APL_S32 = 2, APL_S64 = 3 };

/* Window geometry of a Conv / Gemm (1x1 conv on a 1x1 image) / pool, per sample. */
typedef struct {
  int32_t C, H, W;          /* input channels and size */
  int32_t K, OH, OW;        /* output channels (pools: K = C) and size */
  int32_t R, S;             /* window */
  int32_t stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, groups;
} apl_geom_t;

/* Requantization record: per channel (or one) multiplier m and right shift s, clamp lo..hi.
   m == 0 (a null pointer): every multiplier is 1, a single shift. */
typedef struct {
  const int32_t* m;
  const uint8_t* s;
  int32_t per_channel;
  int32_t lo, hi;
} apl_rq_t;

int32_t apl_requant_one(int32_t acc, int32_t m, int32_t s, int32_t lo, int32_t hi);
/* The same rule on a 64-bit accumulator, the product exact in 128 bits (above 8 bits). */
int32_t apl_requant_wide(int64_t acc, int32_t m, int32_t s, int32_t lo, int32_t hi);

/* x: int8 (apl_conv_s8) or uint8 (apl_conv_u8) codes, w int8 (K, C/groups, R, S), b int32 (K).
   rq == 0: y is the int32 accumulator; else y gets codes of type yt (APL_S8 / APL_U8). */
void apl_conv_s8(const apl_geom_t* g, const int8_t* x, const int8_t* w, const int32_t* b,
                 void* y, int yt, const apl_rq_t* rq);
void apl_conv_u8(const apl_geom_t* g, const uint8_t* x, const int8_t* w, const int32_t* b,
                 void* y, int yt, const apl_rq_t* rq);

/* Above 8 bits: x int32 codes, w int32, b int64 -> y int64 accumulators (no fused output stage). */
void apl_conv_wide(const apl_geom_t* g, const int32_t* x, const int32_t* w, const int64_t* b, int64_t* y);

/* Requantize n = channels * inner values of type xt into codes of type yt (in place allowed). */
void apl_requantize(int32_t channels, int32_t inner, const void* x, int xt, const apl_rq_t* rq,
                    void* y, int yt);
/* Above 8 bits: values of type xt (APL_S64 accumulators or APL_S32) -> int32 codes (in place allowed). */
void apl_requantize_wide(int32_t channels, int32_t inner, const void* x, int xt, const apl_rq_t* rq,
                         int32_t* y);
/* Element-wise float island as a table: y[i] = lut[clamp(x[i] - first, 0, last)]. */
void apl_lookup(int32_t n, const void* x, int xt, int32_t first, int32_t last, const int32_t* lut,
                int32_t* y);

void apl_relu(int32_t n, const void* x, void* y, int t);
/* LeakyRelu: negative codes times m / 2^s (one rounding), negated if neg; Clip: clamp lo..hi. */
void apl_leaky_relu(int32_t n, const void* x, void* y, int t, int32_t m, int32_t s, int32_t neg);
void apl_clip(int32_t n, const void* x, void* y, int t, int64_t lo, int64_t hi);
void apl_maxpool(const apl_geom_t* g, const void* x, void* y, int t);
/* Window sums into the accumulator type yt (APL_S32, or APL_S64 above 8 bits), modulo its width. */
void apl_sumpool(const apl_geom_t* g, const void* x, int t, void* y, int yt);
void apl_global_sumpool(int32_t C, int32_t HW, const void* x, int t, void* y, int yt);
/* y[p * plane + i] *= w[i] for p < planes, modulo the accumulator's width (yt): an AveragePool
   whose divisor varies per output cell (ceil_mode=1, count_include_pad=0 with pads). */
void apl_weigh(int32_t planes, int32_t plane, const int32_t* w, void* y, int yt);
/* Zero points: y[c * inner + i] += off[c] (int32 accumulators, modulo 2^32); y[i] = x[i] - z. */
void apl_offset(int32_t channels, int32_t inner, const int32_t* off, int32_t* y);
void apl_unzero(int32_t n, const void* x, int xt, int32_t z, int32_t* y);
/* op: 0 add, 1 sub, 2 mul; result of accumulator type yt. */
void apl_binary(int op, int32_t n, const void* a, int at, const void* b, int bt, void* y, int yt);
void apl_pad(int32_t C, int32_t H, int32_t W, int32_t top, int32_t left, int32_t OH, int32_t OW,
             int32_t elem, const void* x, void* y);
/* Copy of one concat input: `outer` blocks of `bytes`, at byte `offset` of blocks of `out_bytes`. */
void apl_concat_part(int32_t outer, int32_t bytes, int32_t offset, int32_t out_bytes,
                     const void* x, void* y);
void apl_copy(int32_t bytes, const void* x, void* y);
/* ConvTranspose's input spread out: y (C, H, W) zero, y[c, off_h + h * st_h, off_w + w * st_w] =
   x[c, h, w] where inside (elements of `elem` bytes). */
void apl_spread(int32_t C, int32_t in_h, int32_t in_w, int32_t H, int32_t W, int32_t off_h, int32_t off_w,
                int32_t st_h, int32_t st_w, int32_t elem, const void* x, void* y);
/* Numpy broadcasting over an output of `rank` (<= APL_MAX_RANK) axes `dims`: element strides of a
   and b per axis (0: broadcast). op: 0 add, 1 sub, 2 mul, 3 y = b (a unused); each result exact in
   int64, stored in the accumulator type yt modulo its width. a may be y (Sum accumulates in place). */
#define APL_MAX_RANK 8
void apl_broadcast(int op, int32_t rank, const int32_t* dims, const int32_t* as, const int32_t* bs,
                   const void* a, int at, const void* b, int bt, void* y, int yt);
/* PRelu: negative codes times the channel's m / 2^s (one rounding), negated if neg[c]. */
void apl_prelu(int32_t channels, int32_t inner, const void* x, void* y, int t, const int32_t* m,
               const uint8_t* s, const uint8_t* neg, int32_t per_channel);
/* y[i0, i1, ...] = x[off_0[i0] + off_1[i1] + ...] over `rank` axes `dims` (elements of `elem`
   bytes): Transpose, Slice and nearest Resize; offs holds the axes' tables one after another. */
void apl_gather(int32_t rank, const int32_t* dims, const int32_t* offs, int32_t elem, const void* x, void* y);

#endif /* APL_KERNELS_H */
"""

KERNELS_C = r"""/* Portable integer kernels of aidge_ptq_lite's C export: the scalar reference rules of the
   integer executor, written in C99 without heap or floating point. */
#include "apl_kernels.h"

static int32_t apl_load(const void* p, int t, int32_t i) {
  if (t == APL_S8) return ((const int8_t*)p)[i];
  if (t == APL_U8) return ((const uint8_t*)p)[i];
  return ((const int32_t*)p)[i];
}

static void apl_store(void* p, int t, int32_t i, int32_t v) {
  if (t == APL_S8) ((int8_t*)p)[i] = (int8_t)v;
  else if (t == APL_U8) ((uint8_t*)p)[i] = (uint8_t)v;
  else ((int32_t*)p)[i] = v;
}

/* [wide] */
static int64_t apl_load64(const void* p, int t, int32_t i) {
  return t == APL_S64 ? ((const int64_t*)p)[i] : (int64_t)apl_load(p, t, i);
}
/* [/wide] */

/* An exact int64 sum stored in an accumulator of type yt (APL_S32 or APL_S64), modulo its width. */
static void apl_store_acc(void* p, int yt, int32_t i, int64_t v) {
  if (yt == APL_S64) ((int64_t*)p)[i] = v;
  else ((int32_t*)p)[i] = (int32_t)(uint32_t)(uint64_t)v;
}

/* floor(v / 2^s) for any sign, without shifting a negative number. */
static int64_t apl_floor_shift(int64_t v, int32_t s) {
  return v >= 0 ? (v >> s) : ~((~v) >> s);
}

int32_t apl_requant_one(int32_t acc, int32_t m, int32_t s, int32_t lo, int32_t hi) {
  int64_t v = (int64_t)acc * (int64_t)m;
  if (s > 0) v = apl_floor_shift(v + ((int64_t)1 << (s - 1)), s);
  if (v < lo) return lo;
  if (v > hi) return hi;
  return (int32_t)v;
}

/* [signed64] */
/* The two's complement uint64 word of an int64 value, back (no implementation-defined casts). */
static int64_t apl_signed64(uint64_t u) {
  return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}
/* [/signed64] */

/* [wide] */
int32_t apl_requant_wide(int64_t acc, int32_t m, int32_t s, int32_t lo, int32_t hi) {
  /* |acc| * m as a 128-bit magnitude (hi:lo words), from 32-bit halves of |acc| (m < 2^31). */
  int neg = acc < 0;
  uint64_t mag = neg ? (uint64_t)0 - (uint64_t)acc : (uint64_t)acc;
  uint64_t pl = (mag & 0xFFFFFFFFu) * (uint64_t)m, ph = (mag >> 32) * (uint64_t)m;
  uint64_t wlo = pl + (ph << 32), whi = (ph >> 32) + (wlo < pl);
  int64_t v;
  if (neg) { /* two's complement negation of the 128-bit word */
    wlo = ~wlo + 1;
    whi = ~whi + (wlo == 0);
  }
  if (s > 0) {
    uint64_t r = (uint64_t)1 << (s - 1), t = wlo + r;
    whi += t < wlo;
    wlo = t;
    /* arithmetic shift right by s (1..62) of the 128-bit word: floor division by 2^s */
    wlo = (wlo >> s) | (whi << (64 - s));
    whi = (whi >> 63) ? ~((~whi) >> s) : (whi >> s);
  }
  /* the value fits int64 when the high word is the sign extension of the low one */
  if (whi != ((wlo >> 63) ? ~(uint64_t)0 : 0)) return (whi >> 63) ? lo : hi;
  v = apl_signed64(wlo);
  if (v < lo) return lo;
  if (v > hi) return hi;
  return (int32_t)v;
}
/* [/wide] */

static void apl_conv_out(void* y, int yt, const apl_rq_t* rq, int32_t k, int32_t i, uint32_t sum) {
  int32_t acc = (int32_t)sum;
  if (!rq) {
    ((int32_t*)y)[i] = acc;
  } else {
    int32_t c = rq->per_channel ? k : 0;
    apl_store(y, yt, i, apl_requant_one(acc, rq->m ? rq->m[c] : 1, rq->s[c], rq->lo, rq->hi));
  }
}

/* First and end window taps inside the input: o0 + t * dil in [0, n) for t in [*t0, *t1). */
static void apl_taps(int32_t o0, int32_t taps, int32_t dil, int32_t n, int32_t* t0, int32_t* t1) {
  int32_t a = 0, b = taps;
  while (a < taps && o0 + a * dil < 0) ++a;
  while (b > a && o0 + (b - 1) * dil >= n) --b;
  *t0 = a;
  *t1 = b;
}

#define APL_CONV_BODY(XT)                                                                   \
  int32_t Cg = g->C / g->groups, Kg = g->K / g->groups, k, oh, ow, c, r, q;                \
  for (k = 0; k < g->K; ++k) {                                                              \
    const XT* xg = x + (int32_t)(k / Kg) * Cg * g->H * g->W;                                \
    const int8_t* wk = w + k * Cg * g->R * g->S;                                            \
    for (oh = 0; oh < g->OH; ++oh) {                                                        \
      int32_t ih0 = oh * g->stride_h - g->pad_top, r0, r1;                                  \
      apl_taps(ih0, g->R, g->dil_h, g->H, &r0, &r1);                                        \
      for (ow = 0; ow < g->OW; ++ow) {                                                      \
        uint32_t sum = (uint32_t)b[k];                                                      \
        int32_t iw0 = ow * g->stride_w - g->pad_left, q0, q1;                               \
        apl_taps(iw0, g->S, g->dil_w, g->W, &q0, &q1);                                      \
        for (c = 0; c < Cg; ++c) {                                                          \
          const XT* xc = xg + c * g->H * g->W;                                              \
          const int8_t* wc = wk + c * g->R * g->S;                                          \
          for (r = r0; r < r1; ++r) {                                                       \
            const XT* xr = xc + (ih0 + r * g->dil_h) * g->W;                                \
            const int8_t* wr = wc + r * g->S;                                               \
            int32_t part = 0;                                                               \
            for (q = q0; q < q1; ++q) part += (int32_t)xr[iw0 + q * g->dil_w] * (int32_t)wr[q]; \
            sum += (uint32_t)part;                                                          \
          }                                                                                 \
        }                                                                                   \
        apl_conv_out(y, yt, rq, k, (k * g->OH + oh) * g->OW + ow, sum);                     \
      }                                                                                     \
    }                                                                                       \
  }

void apl_conv_s8(const apl_geom_t* g, const int8_t* x, const int8_t* w, const int32_t* b,
                 void* y, int yt, const apl_rq_t* rq) {
  APL_CONV_BODY(int8_t)
}

void apl_conv_u8(const apl_geom_t* g, const uint8_t* x, const int8_t* w, const int32_t* b,
                 void* y, int yt, const apl_rq_t* rq) {
  APL_CONV_BODY(uint8_t)
}

/* [wide] */
void apl_conv_wide(const apl_geom_t* g, const int32_t* x, const int32_t* w, const int64_t* b, int64_t* y) {
  int32_t Cg = g->C / g->groups, Kg = g->K / g->groups, k, oh, ow, c, r, q;
  for (k = 0; k < g->K; ++k) {
    const int32_t* xg = x + (int32_t)(k / Kg) * Cg * g->H * g->W;
    const int32_t* wk = w + k * Cg * g->R * g->S;
    for (oh = 0; oh < g->OH; ++oh) {
      int32_t ih0 = oh * g->stride_h - g->pad_top, r0, r1;
      apl_taps(ih0, g->R, g->dil_h, g->H, &r0, &r1);
      for (ow = 0; ow < g->OW; ++ow) {
        uint64_t sum = (uint64_t)b[k];
        int32_t iw0 = ow * g->stride_w - g->pad_left, q0, q1;
        apl_taps(iw0, g->S, g->dil_w, g->W, &q0, &q1);
        for (c = 0; c < Cg; ++c) {
          const int32_t* xc = xg + c * g->H * g->W;
          const int32_t* wc = wk + c * g->R * g->S;
          for (r = r0; r < r1; ++r) {
            const int32_t* xr = xc + (ih0 + r * g->dil_h) * g->W;
            const int32_t* wr = wc + r * g->S;
            for (q = q0; q < q1; ++q) sum += (uint64_t)((int64_t)xr[iw0 + q * g->dil_w] * (int64_t)wr[q]);
          }
        }
        y[(k * g->OH + oh) * g->OW + ow] = apl_signed64(sum);
      }
    }
  }
}

void apl_requantize_wide(int32_t channels, int32_t inner, const void* x, int xt, const apl_rq_t* rq,
                         int32_t* y) {
  int32_t c, i;
  for (c = 0; c < channels; ++c) {
    int32_t j = rq->per_channel ? c : 0;
    int32_t m = rq->m ? rq->m[j] : 1;
    for (i = 0; i < inner; ++i) {
      int32_t idx = c * inner + i;
      y[idx] = apl_requant_wide(apl_load64(x, xt, idx), m, rq->s[j], rq->lo, rq->hi);
    }
  }
}
/* [/wide] */

/* [lookup] */
void apl_lookup(int32_t n, const void* x, int xt, int32_t first, int32_t last, const int32_t* lut,
                int32_t* y) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    int64_t k = (int64_t)apl_load(x, xt, i) - first;
    y[i] = lut[k < 0 ? 0 : k > last ? last : k];
  }
}
/* [/lookup] */

void apl_requantize(int32_t channels, int32_t inner, const void* x, int xt, const apl_rq_t* rq,
                    void* y, int yt) {
  int32_t c, i;
  for (c = 0; c < channels; ++c) {
    int32_t j = rq->per_channel ? c : 0;
    int32_t m = rq->m ? rq->m[j] : 1;
    for (i = 0; i < inner; ++i) {
      int32_t idx = c * inner + i;
      apl_store(y, yt, idx, apl_requant_one(apl_load(x, xt, idx), m, rq->s[j], rq->lo, rq->hi));
    }
  }
}

static int32_t apl_type_clamp(int64_t v, int t) {
  int64_t lo = t == APL_S8 ? -128 : t == APL_U8 ? 0 : -2147483647 - 1;
  int64_t hi = t == APL_S8 ? 127 : t == APL_U8 ? 255 : 2147483647;
  return (int32_t)(v < lo ? lo : v > hi ? hi : v);
}

void apl_relu(int32_t n, const void* x, void* y, int t) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    int32_t v = apl_load(x, t, i);
    apl_store(y, t, i, v < 0 ? 0 : v);
  }
}

void apl_leaky_relu(int32_t n, const void* x, void* y, int t, int32_t m, int32_t s, int32_t neg) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    int64_t v = apl_load(x, t, i);
    if (v < 0) {
      v = v * m;
      if (s > 0) v = apl_floor_shift(v + ((int64_t)1 << (s - 1)), s);
      if (neg) v = -v;
    }
    apl_store(y, t, i, apl_type_clamp(v, t));
  }
}

void apl_clip(int32_t n, const void* x, void* y, int t, int64_t lo, int64_t hi) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    int64_t v = apl_load(x, t, i);
    v = v < lo ? lo : v > hi ? hi : v;
    apl_store(y, t, i, apl_type_clamp(v, t));
  }
}

/* mode 0: max (into type t), 1: sum (into the accumulator type yt). */
static void apl_pool(const apl_geom_t* g, const void* x, int t, void* y, int yt, int mode) {
  int32_t c, oh, ow, r, q;
  for (c = 0; c < g->C; ++c)
    for (oh = 0; oh < g->OH; ++oh)
      for (ow = 0; ow < g->OW; ++ow) {
        int64_t sum = 0;
        int32_t best = 0, any = 0;
        for (r = 0; r < g->R; ++r) {
          int32_t ih = oh * g->stride_h - g->pad_top + r * g->dil_h;
          if (ih < 0 || ih >= g->H) continue;
          for (q = 0; q < g->S; ++q) {
            int32_t iw = ow * g->stride_w - g->pad_left + q * g->dil_w;
            int32_t v;
            if (iw < 0 || iw >= g->W) continue;
            v = apl_load(x, t, (c * g->H + ih) * g->W + iw);
            sum += v;
            if (!any || v > best) best = v;
            any = 1;
          }
        }
        if (mode == 0) apl_store(y, t, (c * g->OH + oh) * g->OW + ow, best);
        else apl_store_acc(y, yt, (c * g->OH + oh) * g->OW + ow, sum);
      }
}

void apl_maxpool(const apl_geom_t* g, const void* x, void* y, int t) { apl_pool(g, x, t, y, t, 0); }

void apl_sumpool(const apl_geom_t* g, const void* x, int t, void* y, int yt) { apl_pool(g, x, t, y, yt, 1); }

void apl_global_sumpool(int32_t C, int32_t HW, const void* x, int t, void* y, int yt) {
  int32_t c, i;
  for (c = 0; c < C; ++c) {
    int64_t sum = 0;
    for (i = 0; i < HW; ++i) sum += apl_load(x, t, c * HW + i);
    apl_store_acc(y, yt, c, sum);
  }
}

/* [weigh] */
void apl_weigh(int32_t planes, int32_t plane, const int32_t* w, void* y, int yt) {
  int32_t p, i;
  for (p = 0; p < planes; ++p)
    for (i = 0; i < plane; ++i) {
      int32_t k = p * plane + i;
      if (yt == APL_S64) /* modulo 2^64, as the executor's int64 product */
        ((int64_t*)y)[k] = apl_signed64((uint64_t)((int64_t*)y)[k] * (uint64_t)(int64_t)w[i]);
      else
        ((int32_t*)y)[k] = (int32_t)((uint32_t)((int32_t*)y)[k] * (uint32_t)w[i]);
    }
}
/* [/weigh] */

/* [offset] */
void apl_offset(int32_t channels, int32_t inner, const int32_t* off, int32_t* y) {
  int32_t c, i;
  for (c = 0; c < channels; ++c)
    for (i = 0; i < inner; ++i) y[c * inner + i] = (int32_t)((uint32_t)y[c * inner + i] + (uint32_t)off[c]);
}
/* [/offset] */

/* [unzero] */
void apl_unzero(int32_t n, const void* x, int xt, int32_t z, int32_t* y) {
  int32_t i;
  for (i = 0; i < n; ++i) y[i] = (int32_t)(apl_load(x, xt, i) - z);
}
/* [/unzero] */

void apl_binary(int op, int32_t n, const void* a, int at, const void* b, int bt, void* y, int yt) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    int64_t p = apl_load(a, at, i), q = apl_load(b, bt, i);
    int64_t v = op == 0 ? p + q : op == 1 ? p - q : p * q;
    apl_store_acc(y, yt, i, v);
  }
}

void apl_pad(int32_t C, int32_t H, int32_t W, int32_t top, int32_t left, int32_t OH, int32_t OW,
             int32_t elem, const void* x, void* y) {
  const uint8_t* src = (const uint8_t*)x;
  uint8_t* dst = (uint8_t*)y;
  int32_t i, c, h;
  for (i = 0; i < C * OH * OW * elem; ++i) dst[i] = 0;
  for (c = 0; c < C; ++c)
    for (h = 0; h < H; ++h)
      for (i = 0; i < W * elem; ++i)
        dst[((c * OH + h + top) * OW + left) * elem + i] = src[(c * H + h) * W * elem + i];
}

/* [spread] */
void apl_spread(int32_t C, int32_t in_h, int32_t in_w, int32_t H, int32_t W, int32_t off_h, int32_t off_w,
                int32_t st_h, int32_t st_w, int32_t elem, const void* x, void* y) {
  const uint8_t* src = (const uint8_t*)x;
  uint8_t* dst = (uint8_t*)y;
  int32_t i, c, h, w, k;
  for (i = 0; i < C * H * W * elem; ++i) dst[i] = 0;
  for (c = 0; c < C; ++c)
    for (h = 0; h < in_h; ++h) {
      int32_t oh = off_h + h * st_h;
      if (oh < 0 || oh >= H) continue;
      for (w = 0; w < in_w; ++w) {
        int32_t ow = off_w + w * st_w;
        if (ow < 0 || ow >= W) continue;
        for (k = 0; k < elem; ++k)
          dst[((c * H + oh) * W + ow) * elem + k] = src[((c * in_h + h) * in_w + w) * elem + k];
      }
    }
}
/* [/spread] */

void apl_concat_part(int32_t outer, int32_t bytes, int32_t offset, int32_t out_bytes,
                     const void* x, void* y) {
  const uint8_t* src = (const uint8_t*)x;
  uint8_t* dst = (uint8_t*)y;
  int32_t o, i;
  for (o = 0; o < outer; ++o)
    for (i = 0; i < bytes; ++i) dst[o * out_bytes + offset + i] = src[o * bytes + i];
}

void apl_copy(int32_t bytes, const void* x, void* y) {
  const uint8_t* src = (const uint8_t*)x;
  uint8_t* dst = (uint8_t*)y;
  int32_t i;
  if (src == dst) return;
  for (i = 0; i < bytes; ++i) dst[i] = src[i];
}

/* [broadcast] */
/* Any storage or accumulator type, widened exactly. */
static int64_t apl_load_any(const void* p, int t, int32_t i) {
  return t == APL_S64 ? ((const int64_t*)p)[i] : (int64_t)apl_load(p, t, i);
}

void apl_broadcast(int op, int32_t rank, const int32_t* dims, const int32_t* as, const int32_t* bs,
                   const void* a, int at, const void* b, int bt, void* y, int yt) {
  int32_t idx[APL_MAX_RANK] = {0}, n = 1, i, d, ai = 0, bi = 0;
  for (d = 0; d < rank; ++d) n *= dims[d];
  for (i = 0; i < n; ++i) {
    int64_t p = op == 3 ? 0 : apl_load_any(a, at, ai), q = apl_load_any(b, bt, bi);
    apl_store_acc(y, yt, i, op == 0 ? p + q : op == 1 ? p - q : op == 2 ? p * q : q);
    for (d = rank - 1; d >= 0; --d) { /* odometer over the output index */
      ai += as[d];
      bi += bs[d];
      if (++idx[d] < dims[d]) break;
      ai -= as[d] * dims[d];
      bi -= bs[d] * dims[d];
      idx[d] = 0;
    }
  }
}
/* [/broadcast] */

/* [prelu] */
void apl_prelu(int32_t channels, int32_t inner, const void* x, void* y, int t, const int32_t* m,
               const uint8_t* s, const uint8_t* neg, int32_t per_channel) {
  int32_t c, i;
  for (c = 0; c < channels; ++c) {
    int32_t j = per_channel ? c : 0;
    for (i = c * inner; i < (c + 1) * inner; ++i) {
      int64_t v = apl_load(x, t, i);
      if (v < 0) {
        v = v * m[j];
        if (s[j] > 0) v = apl_floor_shift(v + ((int64_t)1 << (s[j] - 1)), s[j]);
        if (neg[j]) v = -v;
      }
      apl_store(y, t, i, apl_type_clamp(v, t));
    }
  }
}
/* [/prelu] */

/* [gather] */
void apl_gather(int32_t rank, const int32_t* dims, const int32_t* offs, int32_t elem, const void* x, void* y) {
  const uint8_t* src = (const uint8_t*)x;
  uint8_t* dst = (uint8_t*)y;
  int32_t idx[APL_MAX_RANK] = {0}, base[APL_MAX_RANK] = {0}, n = 1, i, d, k;
  for (d = 0; d < rank; ++d) {
    if (d > 0) base[d] = base[d - 1] + dims[d - 1];
    n *= dims[d];
  }
  for (i = 0; i < n; ++i) {
    int32_t at = 0;
    for (d = 0; d < rank; ++d) at += offs[base[d] + idx[d]];
    for (k = 0; k < elem; ++k) dst[i * elem + k] = src[at * elem + k];
    for (d = rank - 1; d >= 0; --d) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
}
/* [/gather] */
"""

# Written only when export_c(..., allow_float=True) exports a float op (a float island without a
# lookup table, or the float tail): the float rules of the executor (float_op_kernels.cpp,
# elementwise.cpp, island_kernels.cpp) in C99 float arithmetic and <math.h>.
FLOAT_KERNELS_H = r"""/* Float ops of aidge_ptq_lite's C export (only with allow_float): C99 float and <math.h>. */
#ifndef APL_FLOAT_KERNELS_H
#define APL_FLOAT_KERNELS_H
#include <stdint.h>

/* Codes or accumulators of type xt (APL_S8 .. APL_S64) -> float: (float)v * factor[c or 0]. */
void apl_dequantize(int32_t channels, int32_t inner, const void* x, int xt, const float* factor,
                    int32_t per_channel, float* y);
/* In place, as the executor's scalar float kernels. */
void apl_softmax(int32_t outer, int32_t axis_len, int32_t inner, float* x);
void apl_sigmoid(int32_t n, float* x);
void apl_tanh(int32_t n, float* x);
/* Island output -> accumulator of the next Scaling node: round half even of x * inv_step in
   double, NaN -> 0, saturated to int32 (in place allowed). */
void apl_float_to_acc(int32_t n, const float* x, double inv_step, int32_t* y);

#endif /* APL_FLOAT_KERNELS_H */
"""

FLOAT_KERNELS_C = r"""/* Float ops of aidge_ptq_lite's C export (only with allow_float). */
#include <math.h>
#include "apl_kernels.h"
#include "apl_float_kernels.h"

static float apl_to_float(const void* p, int t, int32_t i) {
  if (t == APL_S8) return (float)((const int8_t*)p)[i];
  if (t == APL_U8) return (float)((const uint8_t*)p)[i];
  if (t == APL_S32) return (float)((const int32_t*)p)[i];
  return (float)((const int64_t*)p)[i];
}

void apl_dequantize(int32_t channels, int32_t inner, const void* x, int xt, const float* factor,
                    int32_t per_channel, float* y) {
  int32_t c, i;
  for (c = 0; c < channels; ++c) {
    float f = factor[per_channel ? c : 0];
    for (i = 0; i < inner; ++i) y[c * inner + i] = apl_to_float(x, xt, c * inner + i) * f;
  }
}

void apl_softmax(int32_t outer, int32_t axis_len, int32_t inner, float* x) {
  int32_t o, a, i;
  for (o = 0; o < outer; ++o)
    for (i = 0; i < inner; ++i) {
      float* v = x + o * axis_len * inner + i;
      float max = v[0], sum = 0.0f;
      for (a = 1; a < axis_len; ++a) max = max < v[a * inner] ? v[a * inner] : max;
      for (a = 0; a < axis_len; ++a) {
        v[a * inner] = expf(v[a * inner] - max);
        sum += v[a * inner];
      }
      for (a = 0; a < axis_len; ++a) v[a * inner] /= sum;
    }
}

void apl_sigmoid(int32_t n, float* x) {
  int32_t i;
  for (i = 0; i < n; ++i) x[i] = 1.0f / (1.0f + expf(-x[i]));
}

void apl_tanh(int32_t n, float* x) {
  int32_t i;
  for (i = 0; i < n; ++i) x[i] = tanhf(x[i]);
}

void apl_float_to_acc(int32_t n, const float* x, double inv_step, int32_t* y) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    float f = x[i];
    double v = f != f ? 0.0 : nearbyint((double)f * inv_step);
    y[i] = v < -2147483648.0 ? (-2147483647 - 1) : v > 2147483647.0 ? 2147483647 : (int32_t)v;
  }
}
"""


# Optional sections of KERNELS_C: "wide" (above 8 bits), "lookup" (float-island tables), and one
# per kernel named for it (apl_<name>), plus "signed64", the helper that "wide" and "weigh" share.
SECTIONS = ("wide", "lookup", "broadcast", "prelu", "gather", "weigh", "spread", "offset", "unzero", "signed64")


def kernels_c(sections=SECTIONS):
    """KERNELS_C keeping only the optional sections a network calls: a firmware linked without
    --gc-sections then carries no dead kernel, and no static helper is left unused (-Werror)."""
    sections = set(sections)
    if sections & {"wide", "weigh"}:
        sections.add("signed64")
    text = KERNELS_C
    for name in SECTIONS:
        block = re.compile(r"/\* \[" + name + r"\] \*/\n(.*?)/\* \[/" + name + r"\] \*/\n", re.S)
        text = block.sub((lambda m: m.group(1)) if name in sections else (lambda m: ""), text)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"  # no blank runs where sections were
