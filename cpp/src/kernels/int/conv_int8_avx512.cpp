// AVX-512 + VNNI pieces of ConvInt8 (see conv_int8.cpp for the packed layouts).
// GEMM: vpdpbusd adds four uint8 x int8 products into each int32 lane WITHOUT saturation
// (unlike vpdpbusds / vpmaddubsw), so every accumulator is the exact sum modulo 2^32.

// GCC 12 falsely flags the _mm512_undefined_* inside the intrinsics (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>

#include "int_kernels_isa.hpp"

namespace apl::kernels::avx512 {
namespace {

constexpr int kLanes = 16;
constexpr int kColumnVectors = kGemmCols / kLanes;

inline __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << count) - 1);
}

inline __mmask32 first_bytes(int64_t count) {
  return count >= 32 ? ~__mmask32{0} : count <= 0 ? 0 : (__mmask32{1} << count) - 1;
}

// Columns [i, i + count) (count <= 32) of 4 rows, flipped by xor -> count 4-byte cells at out.
inline void interleave32(const uint8_t* const* rows, int64_t i, int64_t count, __m256i flip,
                         uint8_t* out) {
  auto row = [&](int c) {
    return _mm256_xor_si256(_mm256_maskz_loadu_epi8(first_bytes(count), rows[c] + i), flip);
  };
  const __m256i a = row(0), b = row(1), c = row(2), d = row(3);
  // Bytes to (a,b) and (c,d) pairs, pairs to quads; unpack works per 128-bit half, so quads of
  // columns 0-3 | 16-19, 4-7 | 20-23, 8-11 | 24-27, 12-15 | 28-31, reordered at the store.
  const __m256i ab_lo = _mm256_unpacklo_epi8(a, b), ab_hi = _mm256_unpackhi_epi8(a, b);
  const __m256i cd_lo = _mm256_unpacklo_epi8(c, d), cd_hi = _mm256_unpackhi_epi8(c, d);
  const __m256i q0 = _mm256_unpacklo_epi16(ab_lo, cd_lo), q1 = _mm256_unpackhi_epi16(ab_lo, cd_lo);
  const __m256i q2 = _mm256_unpacklo_epi16(ab_hi, cd_hi), q3 = _mm256_unpackhi_epi16(ab_hi, cd_hi);
  const __m256i cells[4] = {
      _mm256_permute2x128_si256(q0, q1, 0x20), _mm256_permute2x128_si256(q2, q3, 0x20),
      _mm256_permute2x128_si256(q0, q1, 0x31), _mm256_permute2x128_si256(q2, q3, 0x31)};
  for (int j = 0; j < 4; ++j)  // columns 8j..8j+7
    _mm256_mask_storeu_epi8(out + 32 * j, first_bytes(4 * (count - 8 * j)), cells[j]);
}

// Columns [q0, q0 + 16 * ColumnVectors) of every k tile.
template <int ColumnVectors>
void gemm_columns(const GemmPanelArgs& args, int64_t q0) {
  for (int64_t kt = 0; kt < args.ktiles; ++kt) {
    const int32_t* init = args.init + kt * kGemmRows;
    __m512i acc[kGemmRows][ColumnVectors];
    for (int r = 0; r < kGemmRows; ++r)
      for (int v = 0; v < ColumnVectors; ++v) acc[r][v] = _mm512_set1_epi32(init[r]);
    const uint8_t* w = args.weights + kt * args.weight_tile_bytes;
    for (int64_t b = 0; b < args.nblocks; ++b) {
      const uint8_t* block = args.act + b * args.block_stride + q0 * kPackedColumnBytes;
      for (int64_t t = 0; t < args.ntaps; ++t, w += kGemmRows * 4) {
        const uint8_t* x = block + args.tap_offset[t];
        __m512i xv[ColumnVectors];
        for (int v = 0; v < ColumnVectors; ++v) xv[v] = _mm512_loadu_si512(x + 64 * v);
        for (int r = 0; r < kGemmRows; ++r) {
          const __m512i wr = _mm512_set1_epi32(load_i32(w + 4 * r));
          for (int v = 0; v < ColumnVectors; ++v)
            acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], xv[v], wr);
        }
      }
    }
    int32_t* out = args.out + kt * kGemmRows * args.ldo + q0;
    for (int r = 0; r < kGemmRows; ++r)
      for (int v = 0; v < ColumnVectors; ++v)
        _mm512_storeu_si512(out + r * args.ldo + kLanes * v, acc[r][v]);
  }
}

// Each int32 lane holds one activation, which fits the lane's low int16; vpdpwssd with the
// weight pair (w, 0) then adds exactly x * w.
template <bool Signed, int Vectors>
void depthwise_columns(const DepthwiseArgs& args, int64_t q0) {
  __m512i acc[Vectors];
  for (int v = 0; v < Vectors; ++v) acc[v] = _mm512_set1_epi32(args.init);
  for (int64_t t = 0; t < args.ntaps; ++t) {
    const __m512i w = _mm512_set1_epi32(args.tap_weight[t] & 0xFFFF);
    const uint8_t* x = args.plane + args.tap_offset[t] + q0;
    for (int v = 0; v < Vectors; ++v) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + kLanes * v));
      const __m512i xv = Signed ? _mm512_cvtepi8_epi32(bytes) : _mm512_cvtepu8_epi32(bytes);
      acc[v] = _mm512_dpwssd_epi32(acc[v], xv, w);
    }
  }
  for (int v = 0; v < Vectors; ++v) _mm512_storeu_si512(args.out + q0 + kLanes * v, acc[v]);
}

template <bool Signed>
void depthwise_plane(const DepthwiseArgs& args) {
  constexpr int kVectors = 4;
  int64_t q0 = 0;
  for (; q0 + kVectors * kLanes <= args.ncols; q0 += kVectors * kLanes)
    depthwise_columns<Signed, kVectors>(args, q0);
  for (; q0 < args.ncols; q0 += kLanes) depthwise_columns<Signed, 1>(args, q0);
}

// vpermb / vpermt2b are AVX512-VBMI, which the AVX512 level does not require (Cascade Lake has
// VNNI without it): these functions carry their own target, and ConvInt8 calls them only when
// the CPU has VBMI (see depthwise_vnni_available in conv_int8.cpp).
#define APL_VBMI __attribute__((target("avx512vbmi")))

template <bool Narrow, int Rows, int Quads>
APL_VBMI void depthwise_vnni_groups(const DepthwiseVnniArgs& a) {
  const int rows = Rows > 0 ? Rows : static_cast<int>(a.rows);
  const int quads = Quads > 0 ? Quads : static_cast<int>(a.quads);
  constexpr int kMaxWeights = 32;
  __m512i w[kMaxWeights];
  for (int i = 0; i < rows * quads; ++i) w[i] = _mm512_set1_epi32(a.weights[i]);
  const __m512i init = _mm512_set1_epi32(a.init);
  for (int64_t g = 0; g < a.ngroups; ++g) {
    const uint8_t* window = a.plane + a.base[g];
    const uint8_t* index = a.index + g * quads * 64;
    __m512i acc = init;
    for (int r = 0; r < rows; ++r, window += a.row_step) {
      const __m512i lo = _mm512_loadu_si512(window);
      const __m512i hi = Narrow ? lo : _mm512_loadu_si512(window + 64);
      for (int q = 0; q < quads; ++q) {
        const __m512i idx = _mm512_loadu_si512(index + 64 * q);
        const __m512i x = Narrow ? _mm512_permutexvar_epi8(idx, lo)
                                 : _mm512_permutex2var_epi8(lo, idx, hi);
        acc = _mm512_dpbusd_epi32(acc, x, w[r * quads + q]);
      }
    }
    const int32_t first = a.first[g], lanes = a.first[g + 1] - first;
    _mm512_mask_storeu_epi32(a.out + first, first_lanes(lanes), acc);
  }
}

template <bool Narrow>
APL_VBMI void depthwise_vnni_dispatch(const DepthwiseVnniArgs& a) {
  if (a.rows == 3 && a.quads == 1) return depthwise_vnni_groups<Narrow, 3, 1>(a);
  return depthwise_vnni_groups<Narrow, 0, 0>(a);
}

}  // namespace

APL_VBMI void depthwise_vnni(const DepthwiseVnniArgs& args) {
  if (args.narrow)
    depthwise_vnni_dispatch<true>(args);
  else
    depthwise_vnni_dispatch<false>(args);
}

void gather_even(const uint8_t* in, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n; i += 32, in += 64, out += 32) {
    const int64_t m = std::min<int64_t>(32, n - i);  // outputs; input bytes 0 .. 2m - 2
    const __mmask64 load = m == 32 ? ~__mmask64{0} >> 1 : (__mmask64{1} << (2 * m - 1)) - 1;
    const __m256i even = _mm512_cvtepi16_epi8(_mm512_maskz_loadu_epi8(load, in));
    _mm256_mask_storeu_epi8(out, m == 32 ? ~__mmask32{0} : (__mmask32{1} << m) - 1, even);
  }
}

void split_even_odd(const uint8_t* in, int64_t W, int64_t rows, int64_t in_pitch,
                    int64_t out_pitch, uint8_t* even, uint8_t* odd) {
  auto first32 = [](int64_t k) { return k >= 32 ? ~__mmask32{0} : (__mmask32{1} << k) - 1; };
  for (int64_t r = 0; r < rows; ++r, in += in_pitch, even += out_pitch, odd += out_pitch)
    for (int64_t i = 0; i < W; i += 64) {
      const int64_t m = std::min<int64_t>(64, W - i);  // input bytes of this step
      const __mmask64 load = m == 64 ? ~__mmask64{0} : (__mmask64{1} << m) - 1;
      const __m512i x = _mm512_maskz_loadu_epi8(load, in + i);
      _mm256_mask_storeu_epi8(even + i / 2, first32((m + 1) / 2), _mm512_cvtepi16_epi8(x));
      _mm256_mask_storeu_epi8(odd + i / 2, first32(m / 2),
                              _mm512_cvtepi16_epi8(_mm512_srli_epi16(x, 8)));
    }
}

void copy_rows_flip(const uint8_t* src, int64_t H, int64_t W, int64_t dst_pitch, bool x_signed,
                    uint8_t* dst) {
  const __m512i flip = _mm512_set1_epi8(x_signed ? static_cast<char>(0x80) : 0);
  if (W <= 64) {  // one masked move per row (the zoo planes: 7-28 bytes)
    const __mmask64 m = W == 64 ? ~__mmask64{0} : (__mmask64{1} << W) - 1;
    for (int64_t h = 0; h < H; ++h, src += W, dst += dst_pitch)
      _mm512_mask_storeu_epi8(dst, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src), flip));
    return;
  }
  for (int64_t h = 0; h < H; ++h, src += W, dst += dst_pitch)
    for (int64_t i = 0; i < W; i += 64) {
      const __mmask64 m = W - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (W - i)) - 1;
      _mm512_mask_storeu_epi8(dst + i, m,
                              _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src + i), flip));
    }
}

void interleave_u8x4(const uint8_t* const* planes, int64_t width, int64_t height,
                     int64_t src_pitch, int64_t dst_pitch, bool x_signed, void* dst) {
  const __m256i flip = _mm256_set1_epi8(x_signed ? static_cast<char>(0x80) : 0);
  for (int64_t h = 0; h < height; ++h) {
    const uint8_t* rows[4];
    for (int c = 0; c < 4; ++c) rows[c] = planes[c] + h * src_pitch;
    uint8_t* out = static_cast<uint8_t*>(dst) + h * dst_pitch * kPackedColumnBytes;
    for (int64_t i = 0; i < width; i += 32)
      interleave32(rows, i, std::min<int64_t>(32, width - i), flip, out + 4 * i);
  }
}

void gemm_panel(const GemmPanelArgs& args) {
  int64_t q0 = 0;
  for (; q0 + kGemmCols <= args.ncols; q0 += kGemmCols) gemm_columns<kColumnVectors>(args, q0);
  for (; q0 < args.ncols; q0 += kGemmColumnStep) gemm_columns<1>(args, q0);
}

void depthwise(const DepthwiseArgs& args) {
  if (args.x_signed)
    depthwise_plane<true>(args);
  else
    depthwise_plane<false>(args);
}

}  // namespace apl::kernels::avx512
