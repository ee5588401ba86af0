// AVX-512 micro-kernels of the pixel-broadcast convolution (conv.cpp, run_pixels): MR output
// pixels x NV vectors of 16 output channels. Per tap one input value per pixel is broadcast
// from the zero-padded band (pixel i at pixel_offset[i], tap k at tap_offset[k], so any pixel
// set, across rows, and any stride / dilation) and NV weight vectors are loaded from a packed
// panel (tap-major, 16 NV channels per tap): MR NV FMAs per tap. Small planes (7x7, 14x14) thus
// compute no column past the output width and no rounded-up micro-tile; output channels fill
// the vectors instead. Each accumulator starts at the bias (or the stored partial sum) and adds
// the taps in order with one FMA each: the sums of micro_kernel_avx512, bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "float_internal.hpp"

namespace apl::kernels::detail {
namespace {

template <int MR, int NV>
void pixel_kernel(int64_t kc, const float* band, const int64_t* tap_offset,
                  const int64_t* pixel_offset, const float* w, float* c, int64_t ldc,
                  const float* channel_init, bool accumulate, int64_t channels) {
  __mmask16 mask[NV];
  for (int v = 0; v < NV; ++v) {
    const int64_t lanes = std::clamp<int64_t>(channels - 16 * v, 0, 16);
    mask[v] = static_cast<__mmask16>((1u << lanes) - 1);
  }
  const float* p[MR];
  for (int i = 0; i < MR; ++i) p[i] = band + pixel_offset[i];
  __m512 acc[MR][NV];
  for (int v = 0; v < NV; ++v) {
    const __m512 init = channel_init ? _mm512_maskz_loadu_ps(mask[v], channel_init + 16 * v)
                                     : _mm512_setzero_ps();
    for (int i = 0; i < MR; ++i)
      acc[i][v] = accumulate ? _mm512_maskz_loadu_ps(mask[v], c + i * ldc + 16 * v) : init;
  }
  for (int64_t k = 0; k < kc; ++k, w += 16 * NV) {
    const int64_t t = tap_offset[k];
    __m512 wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_load_ps(w + 16 * v);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(p[i][t]);
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(a, wv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mask[v], acc[i][v]);
}

template <int NV, int... M>
PixelKernelFn pick(int mr, std::integer_sequence<int, M...>) {
  PixelKernelFn fn = nullptr;
  ((fn = (M + 1 == mr ? &pixel_kernel<M + 1, NV> : fn)), ...);
  return fn;
}

}  // namespace

PixelKernelFn pixel_kernel_avx512(int mr, int nv) {
  if (mr < 1 || mr > pixel_kernel_rows(nv)) return nullptr;
  switch (nv) {
    case 2: return pick<2>(mr, std::make_integer_sequence<int, 8>{});
    case 3: return pick<3>(mr, std::make_integer_sequence<int, 8>{});
    case 4: return pick<4>(mr, std::make_integer_sequence<int, 6>{});
    default: return nullptr;
  }
}

}  // namespace apl::kernels::detail
