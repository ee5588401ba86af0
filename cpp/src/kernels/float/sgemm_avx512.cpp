// AVX-512 GEMM micro-kernels: 8 rows x NV vectors of 16 columns (8 x 32: 16 zmm accumulators; 8 x
// 48: 24). Per depth step NV loads of B and eight broadcasts of A feed 8 NV FMAs, so the loop is
// bound by the two FMA ports; the wider tile leaves more room for B loads split across cache lines
// (image rows at any offset) but wastes more columns on narrow images. A tile of fewer columns
// reads and writes C under masks.
#include <immintrin.h>

#include <algorithm>

#include "float_internal.hpp"

namespace apl::kernels::detail {
namespace {

template <int NV>
void micro_kernel(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset, float* c,
                  int64_t ldc, const float* row_init, bool accumulate, int64_t n, const float* clamp) {
  constexpr int MR = kAvx512Rows;
  __mmask16 mask[NV];
  for (int v = 0; v < NV; ++v) {
    const int64_t lanes = std::clamp<int64_t>(n - 16 * v, 0, 16);
    mask[v] = static_cast<__mmask16>((1u << lanes) - 1);
  }
  __m512 acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v)
      acc[i][v] = accumulate ? _mm512_maskz_loadu_ps(mask[v], c + i * ldc + 16 * v)
                             : row_init ? _mm512_set1_ps(row_init[i]) : _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, a += MR) {
    const float* bk = b + b_row_offset[k];
    __m512 bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(bk + 16 * v);
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  if (clamp) {  // max(lo, x) then min(hi, .) return x when it is NaN, as Clamp keeps NaN
    const __m512 lo = _mm512_set1_ps(clamp[0]), hi = _mm512_set1_ps(clamp[1]);
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[i][v]));
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mask[v], acc[i][v]);
}

}  // namespace

void micro_kernel_avx512(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset,
                         float* c, int64_t ldc, const float* row_init, bool accumulate, int64_t n,
                         const float* clamp) {
  micro_kernel<kAvx512Cols / 16>(kc, a, b, b_row_offset, c, ldc, row_init, accumulate, n, clamp);
}

void micro_kernel_avx512_wide(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset,
                              float* c, int64_t ldc, const float* row_init, bool accumulate, int64_t n,
                              const float* clamp) {
  micro_kernel<kAvx512WideCols / 16>(kc, a, b, b_row_offset, c, ldc, row_init, accumulate, n, clamp);
}

}  // namespace apl::kernels::detail
