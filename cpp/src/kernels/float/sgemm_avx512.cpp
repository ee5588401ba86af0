// AVX-512 GEMM micro-kernel: an 8 x 32 tile (16 zmm accumulators); per depth step two loads of B
// and eight broadcasts of A feed 16 FMAs, so the loop is bound by the two FMA ports. A tile of
// fewer columns reads and writes C under masks.
#include <immintrin.h>

#include "float_internal.hpp"

namespace apl::kernels::detail {

void micro_kernel_avx512(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset,
                         float* c, int64_t ldc, const float* row_init, bool accumulate, int64_t n) {
  constexpr int MR = kAvx512Rows;
  const __mmask16 lo_mask = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
  const __mmask16 hi_mask = n >= 32 ? 0xFFFF : n <= 16 ? 0 : static_cast<__mmask16>((1u << (n - 16)) - 1);
  __m512 lo[MR], hi[MR];
  for (int i = 0; i < MR; ++i) {
    if (accumulate) {
      lo[i] = _mm512_maskz_loadu_ps(lo_mask, c + i * ldc);
      hi[i] = _mm512_maskz_loadu_ps(hi_mask, c + i * ldc + 16);
    } else {
      lo[i] = hi[i] = row_init ? _mm512_set1_ps(row_init[i]) : _mm512_setzero_ps();
    }
  }
  for (int64_t k = 0; k < kc; ++k, a += MR) {
    const float* bk = b + b_row_offset[k];
    const __m512 b_lo = _mm512_loadu_ps(bk);
    const __m512 b_hi = _mm512_loadu_ps(bk + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      lo[i] = _mm512_fmadd_ps(ai, b_lo, lo[i]);
      hi[i] = _mm512_fmadd_ps(ai, b_hi, hi[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(c + i * ldc, lo_mask, lo[i]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, hi_mask, hi[i]);
  }
}

}  // namespace apl::kernels::detail
