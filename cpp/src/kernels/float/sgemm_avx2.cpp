// AVX2 GEMM micro-kernel: a 6 x 16 tile (12 ymm accumulators); per depth step two loads of B
// and six broadcasts of A feed 12 FMAs.
#include <immintrin.h>

#include "float_internal.hpp"

namespace apl::kernels::detail {

void micro_kernel_avx2(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset,
                       float* c, int64_t ldc, const float* row_init, bool accumulate) {
  constexpr int MR = kAvx2Rows;
  __m256 lo[MR], hi[MR];
  for (int i = 0; i < MR; ++i) {
    if (accumulate) {
      lo[i] = _mm256_loadu_ps(c + i * ldc);
      hi[i] = _mm256_loadu_ps(c + i * ldc + 8);
    } else {
      lo[i] = hi[i] = row_init ? _mm256_set1_ps(row_init[i]) : _mm256_setzero_ps();
    }
  }
  for (int64_t k = 0; k < kc; ++k, a += MR) {
    const float* bk = b + b_row_offset[k];
    const __m256 b_lo = _mm256_loadu_ps(bk);
    const __m256 b_hi = _mm256_loadu_ps(bk + 8);
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      lo[i] = _mm256_fmadd_ps(ai, b_lo, lo[i]);
      hi[i] = _mm256_fmadd_ps(ai, b_hi, hi[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(c + i * ldc, lo[i]);
    _mm256_storeu_ps(c + i * ldc + 8, hi[i]);
  }
}

}  // namespace apl::kernels::detail
