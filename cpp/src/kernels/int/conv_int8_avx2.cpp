// AVX2 pieces of ConvInt8 (see conv_int8.cpp for the packed layouts).
// GEMM: activations and weights are widened to int16 and multiplied by vpmaddwd, which adds
// each pair of int16 products into an int32 exactly (no saturation, unlike vpmaddubsw).
#include <immintrin.h>

#include "int_kernels_isa.hpp"

namespace apl::kernels::avx2 {
namespace {

constexpr int kLanes = 8;
constexpr int kColumnVectors = kGemmCols / kLanes;

inline __m256i widen16(const uint8_t* p, bool x_signed) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return x_signed ? _mm256_cvtepi8_epi16(bytes) : _mm256_cvtepu8_epi16(bytes);
}

// 16 columns of 2 rows -> 16 cells of 2 int16 at out.
inline void interleave16(const uint8_t* const* rows, int64_t i, bool x_signed, int16_t* out) {
  const __m256i a = widen16(rows[0] + i, x_signed), b = widen16(rows[1] + i, x_signed);
  // unpack works per 128-bit half: pairs of columns 0-3 | 8-11 and 4-7 | 12-15.
  const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);
  auto* o = reinterpret_cast<__m256i*>(out);
  _mm256_storeu_si256(o + 0, _mm256_permute2x128_si256(lo, hi, 0x20));
  _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(lo, hi, 0x31));
}

// Columns [q0, q0 + 8 * ColumnVectors) of every k tile.
template <int ColumnVectors>
void gemm_columns(const GemmPanelArgs& args, int64_t q0) {
  for (int64_t kt = 0; kt < args.ktiles; ++kt) {
    const int32_t* init = args.init + kt * kGemmRows;
    __m256i acc[kGemmRows][ColumnVectors];
    for (int r = 0; r < kGemmRows; ++r)
      for (int v = 0; v < ColumnVectors; ++v) acc[r][v] = _mm256_set1_epi32(init[r]);
    const uint8_t* w = args.weights + kt * args.weight_tile_bytes;
    for (int64_t b = 0; b < args.nblocks; ++b) {
      const uint8_t* block = args.act + b * args.block_stride + q0 * kPackedColumnBytes;
      for (int64_t t = 0; t < args.ntaps; ++t, w += kGemmRows * 4) {
        const uint8_t* x = block + args.tap_offset[t];
        __m256i xv[ColumnVectors];
        for (int v = 0; v < ColumnVectors; ++v)
          xv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32 * v));
        for (int r = 0; r < kGemmRows; ++r) {
          const __m256i wr = _mm256_set1_epi32(load_i32(w + 4 * r));
          for (int v = 0; v < ColumnVectors; ++v)
            acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(xv[v], wr));
        }
      }
    }
    int32_t* out = args.out + kt * kGemmRows * args.ldo + q0;
    for (int r = 0; r < kGemmRows; ++r)
      for (int v = 0; v < ColumnVectors; ++v)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * args.ldo + kLanes * v),
                            acc[r][v]);
  }
}

// Each int32 lane holds one activation, which fits the lane's low int16; vpmaddwd with the
// weight pair (w, 0) then gives exactly x * w.
template <bool Signed, int Vectors>
void depthwise_columns(const DepthwiseArgs& args, int64_t q0) {
  __m256i acc[Vectors];
  for (int v = 0; v < Vectors; ++v) acc[v] = _mm256_set1_epi32(args.init);
  for (int64_t t = 0; t < args.ntaps; ++t) {
    const __m256i w = _mm256_set1_epi32(args.tap_weight[t] & 0xFFFF);
    const uint8_t* x = args.plane + args.tap_offset[t] + q0;
    for (int v = 0; v < Vectors; ++v) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + kLanes * v));
      const __m256i xv = Signed ? _mm256_cvtepi8_epi32(bytes) : _mm256_cvtepu8_epi32(bytes);
      acc[v] = _mm256_add_epi32(acc[v], _mm256_madd_epi16(xv, w));
    }
  }
  for (int v = 0; v < Vectors; ++v)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(args.out + q0 + kLanes * v), acc[v]);
}

template <bool Signed>
void depthwise_plane(const DepthwiseArgs& args) {
  constexpr int kVectors = 4;
  int64_t q0 = 0;
  for (; q0 + kVectors * kLanes <= args.ncols; q0 += kVectors * kLanes)
    depthwise_columns<Signed, kVectors>(args, q0);
  for (; q0 < args.ncols; q0 += kLanes) depthwise_columns<Signed, 1>(args, q0);
}

}  // namespace

void interleave_i16x2(const uint8_t* const* planes, int64_t width, int64_t height,
                      int64_t src_pitch, int64_t dst_pitch, bool x_signed, void* dst) {
  for (int64_t h = 0; h < height; ++h) {
    const uint8_t* rows[2] = {planes[0] + h * src_pitch, planes[1] + h * src_pitch};
    int16_t* out = static_cast<int16_t*>(dst) + h * dst_pitch * 2;
    int64_t i = 0;
    for (; i + 16 <= width; i += 16) interleave16(rows, i, x_signed, out + 2 * i);
    if (i == width) continue;
    // Tail through bounce buffers (rows are not readable past the width).
    uint8_t tail[2][16] = {};
    int16_t tail_out[32];
    const uint8_t* tail_rows[2] = {tail[0], tail[1]};
    for (int c = 0; c < 2; ++c) std::memcpy(tail[c], rows[c] + i, width - i);
    interleave16(tail_rows, 0, x_signed, tail_out);
    std::memcpy(out + 2 * i, tail_out, 2 * (width - i) * sizeof(int16_t));
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

}  // namespace apl::kernels::avx2
