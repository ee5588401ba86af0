// AVX2 GEMM micro-kernel: a 6 x 16 tile (12 ymm accumulators); per depth step two loads of B
// and six broadcasts of A feed 12 FMAs. A tile of fewer columns reads and writes C under masks.
#include <immintrin.h>

#include "float_internal.hpp"

namespace apl::kernels::detail {

void micro_kernel_avx2(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset,
                       float* c, int64_t ldc, const float* row_init, bool accumulate, int64_t n,
                       const float* clamp) {
  constexpr int MR = kAvx2Rows;
  // Lane j of the low / high half is kept when j < n / j + 8 < n.
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i lo_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes);
  const __m256i hi_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n) - 8), lanes);
  const bool full = n >= kAvx2Cols;
  __m256 lo[MR], hi[MR];
  for (int i = 0; i < MR; ++i) {
    if (accumulate) {
      lo[i] = full ? _mm256_loadu_ps(c + i * ldc) : _mm256_maskload_ps(c + i * ldc, lo_mask);
      hi[i] = full ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_maskload_ps(c + i * ldc + 8, hi_mask);
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
  if (clamp) {  // max(lo, x) then min(hi, .) return x when it is NaN, as Clamp keeps NaN
    const __m256 lo_v = _mm256_set1_ps(clamp[0]), hi_v = _mm256_set1_ps(clamp[1]);
    for (int i = 0; i < MR; ++i) {
      lo[i] = _mm256_min_ps(hi_v, _mm256_max_ps(lo_v, lo[i]));
      hi[i] = _mm256_min_ps(hi_v, _mm256_max_ps(lo_v, hi[i]));
    }
  }
  for (int i = 0; i < MR; ++i) {
    if (full) {
      _mm256_storeu_ps(c + i * ldc, lo[i]);
      _mm256_storeu_ps(c + i * ldc + 8, hi[i]);
    } else {
      _mm256_maskstore_ps(c + i * ldc, lo_mask, lo[i]);
      _mm256_maskstore_ps(c + i * ldc + 8, hi_mask, hi[i]);
    }
  }
}

}  // namespace apl::kernels::detail
