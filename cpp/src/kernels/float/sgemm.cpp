// SGEMM: A packed once per call, B packed per (depth block, column block) into per-thread
// scratch, column blocks handed out dynamically to OpenMP threads; the micro-kernel follows the
// SIMD level.
#include <omp.h>

#include <algorithm>

#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "../parallel_guard.hpp"
#include "float_internal.hpp"

namespace apl::kernels {
namespace {

using detail::round_up;

// Columns of B packed at a time (with a 256-deep block: 512 KiB, in L2).
constexpr int64_t kColumnBlock = 512;

// Packs op(B)[k0:k0+kb, j0:j0+nb] into micro-panels of nr columns; row is a scratch row.
void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t k0, int64_t kb, int64_t j0,
            int64_t nb, int nr, float* row, float* panels) {
  for (int64_t k = 0; k < kb; ++k) {
    const float* src = B + (k0 + k) * ldb + j0;
    if (trans_b) {
      for (int64_t j = 0; j < nb; ++j) row[j] = B[(j0 + j) * ldb + k0 + k];
      src = row;
    }
    detail::pack_row_into_panels(src, nb, k, kb, nr, panels);
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (beta != 1.0f)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
  if (K <= 0 || alpha == 0.0f) return;

  const detail::MicroKernel kernel = detail::micro_kernel_for(active_simd_level());
  const int nr = kernel.nr;
  const detail::PackedA a(kernel.mr, M, K, alpha, A, trans_a ? 1 : lda, trans_a ? lda : 1);
  const int64_t threads = omp_get_max_threads();
  const int64_t block_cols =
      std::min(kColumnBlock, round_up((N + threads - 1) / threads, nr));
  const int64_t n_blocks = (N + block_cols - 1) / block_cols;

  ParallelGuard guard;  // thread_scratch allocates
#pragma omp parallel for schedule(dynamic) if (n_blocks > 1)
  for (int64_t blk = 0; blk < n_blocks; ++blk) guard.run([&] {
    const int64_t j0 = blk * block_cols, nb = std::min(block_cols, N - j0);
    float* packed_b =
        detail::thread_scratch(detail::Scratch::B, detail::kMaxDepthBlock * round_up(nb, nr));
    float* row = detail::thread_scratch(detail::Scratch::Plane, nb);
    const int64_t* row_offset = detail::packed_row_offsets(nr);
    for (int64_t d = 0; d < a.block_count(); ++d) {
      const int64_t kb = a.block_size(d);
      pack_b(trans_b, B, ldb, a.block_begin(d), kb, j0, nb, nr, row, packed_b);
      detail::gemm_depth_block(kernel, a, d, packed_b, kb * nr, row_offset, nb, C + j0, ldc,
                               nullptr, d > 0 || beta != 0.0f);
    }
  });
  guard.rethrow();
}

void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float sum = 0.0f;
      for (int64_t k = 0; k < K; ++k)
        sum += (trans_a ? A[k * lda + i] : A[i * lda + k]) *
               (trans_b ? B[j * ldb + k] : B[k * ldb + j]);
      float& c = C[i * ldc + j];
      c = alpha * sum + (beta == 0.0f ? 0.0f : beta * c);
    }
}

}  // namespace apl::kernels
