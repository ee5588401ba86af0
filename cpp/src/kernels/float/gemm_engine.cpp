// Packed-panel GEMM driver and the portable micro-kernel (the Scalar level).
#include "float_internal.hpp"

#include <algorithm>
#include <new>

namespace apl::kernels::detail {

AlignedFloats::AlignedFloats(size_t n) : size_(n) {
  const size_t bytes = round_up(static_cast<int64_t>(std::max<size_t>(n, 1) * sizeof(float)), 64);
  data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
  if (!data_) throw std::bad_alloc();
}

namespace {
thread_local AlignedFloats scratch_buffers[static_cast<int>(Scratch::Count)];
}  // namespace

float* thread_scratch(Scratch slot, size_t n_floats) {
  AlignedFloats& buffer = scratch_buffers[static_cast<int>(slot)];
  if (buffer.size() < n_floats) buffer = AlignedFloats(n_floats + n_floats / 4);
  return buffer.data();
}

int64_t* thread_offsets(size_t n) {
  static_assert(sizeof(int64_t) == 2 * sizeof(float));
  return reinterpret_cast<int64_t*>(thread_scratch(Scratch::RowOffsets, 2 * n));
}

namespace {

// Plain C++ tile; the compiler vectorises it for the baseline ISA.
constexpr int kScalarRows = 4, kScalarCols = 8;
void micro_kernel_scalar(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset,
                         float* c, int64_t ldc, const float* row_init, bool accumulate, int64_t n,
                         const float* clamp) {
  float acc[kScalarRows][kScalarCols];
  for (int i = 0; i < kScalarRows; ++i)
    for (int j = 0; j < kScalarCols; ++j)
      acc[i][j] = accumulate && j < n ? c[i * ldc + j] : (row_init ? row_init[i] : 0.0f);
  for (int64_t k = 0; k < kc; ++k, a += kScalarRows) {
    const float* bk = b + b_row_offset[k];
    for (int i = 0; i < kScalarRows; ++i)
      for (int j = 0; j < kScalarCols; ++j) acc[i][j] += a[i] * bk[j];
  }
  for (int i = 0; i < kScalarRows; ++i)
    for (int64_t j = 0; j < n; ++j)
      c[i * ldc + j] = clamp ? std::min(std::max(acc[i][j], clamp[0]), clamp[1]) : acc[i][j];
}

}  // namespace

MicroKernel micro_kernel_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AMX:  // AMX tiles serve the int8 GEMMs; vector kernels are AVX512 here
    case SimdLevel::AVX512: return {kAvx512Rows, kAvx512Cols, micro_kernel_avx512};
    case SimdLevel::AVX2: return {kAvx2Rows, kAvx2Cols, micro_kernel_avx2};
    case SimdLevel::Scalar: break;
  }
  return {kScalarRows, kScalarCols, micro_kernel_scalar};
}

MicroKernel wide_micro_kernel_for(SimdLevel level) {
  if (level == SimdLevel::AVX512 || level == SimdLevel::AMX)
    return {kAvx512Rows, kAvx512WideCols, micro_kernel_avx512_wide};
  return micro_kernel_for(level);
}

PackedA::PackedA(int mr, int64_t rows, int64_t depth, float alpha, const float* a,
                 int64_t row_stride, int64_t col_stride)
    : mr_(mr), rows_(rows), depth_(depth), padded_rows_(round_up(rows, mr)) {
  block_count_ = std::max<int64_t>(1, (depth + kMaxDepthBlock - 1) / kMaxDepthBlock);
  block_depth_ = (depth + block_count_ - 1) / block_count_;
  data_ = AlignedFloats(static_cast<size_t>(padded_rows_ * std::max<int64_t>(depth, 1)));
  for (int64_t blk = 0; blk < block_count_; ++blk) {
    const int64_t k0 = block_begin(blk), kb = block_size(blk);
    for (int64_t p = 0; p < padded_rows_ / mr; ++p) {
      float* dst = const_cast<float*>(panel(blk, p));
      for (int64_t k = 0; k < kb; ++k)
        for (int i = 0; i < mr; ++i) {
          const int64_t row = p * mr + i;
          *dst++ = row < rows ? alpha * a[row * row_stride + (k0 + k) * col_stride] : 0.0f;
        }
    }
  }
}

int64_t PackedA::block_size(int64_t block) const {
  return std::min(block_depth_, depth_ - block_begin(block));
}

const float* PackedA::panel(int64_t block, int64_t row_panel) const {
  return data_.data() + block_begin(block) * padded_rows_ + row_panel * block_size(block) * mr_;
}

namespace {
// Rows of A per outer block: with a depth block of 256 this keeps the A block near 256 KiB (L2),
// while the B block it multiplies is reused across all of them.
constexpr int64_t kRowBlock = 240;
}  // namespace

void gemm_depth_block(const MicroKernel& kernel, const PackedA& a, int64_t block, const float* b,
                      int64_t b_panel_stride, const int64_t* b_row_offset, int64_t cols, float* c,
                      int64_t ldc, const float* row_init, bool accumulate, int64_t first_row,
                      int64_t end_row, const float* clamp) {
  const int mr = kernel.mr, nr = kernel.nr;
  const int64_t kb = a.block_size(block), rows = end_row < 0 ? a.rows() : std::min(end_row, a.rows());
  const int64_t row_block = std::max<int64_t>(mr, kRowBlock / mr * mr);
  alignas(64) float tile[kMaxTileFloats];
  for (int64_t i0 = first_row; i0 < rows; i0 += row_block) {
    const int64_t i1 = std::min(rows, i0 + row_block);
    for (int64_t j = 0; j < cols; j += nr) {
      const int64_t n = std::min<int64_t>(nr, cols - j);
      const float* b_panel = b + j / nr * b_panel_stride;
      for (int64_t i = i0; i < i1; i += mr) {
        const int64_t m = std::min<int64_t>(mr, i1 - i);
        const float* a_panel = a.panel(block, i / mr);
        const float* init = row_init ? row_init + i : nullptr;
        float* c_tile = c + i * ldc + j;
        if (m == mr) {  // the kernel masks the columns past n
          kernel.fn(kb, a_panel, b_panel, b_row_offset, c_tile, ldc, init, accumulate, n, clamp);
          continue;
        }
        // Rows past the matrix: compute a full tile aside, then merge the part inside C.
        kernel.fn(kb, a_panel, b_panel, b_row_offset, tile, nr, nullptr, false, n, nullptr);
        for (int64_t ii = 0; ii < m; ++ii)
          for (int64_t jj = 0; jj < n; ++jj) {
            float& dst = c_tile[ii * ldc + jj];
            dst = (accumulate ? dst : (init ? init[ii] : 0.0f)) + tile[ii * nr + jj];
            if (clamp) dst = std::min(std::max(dst, clamp[0]), clamp[1]);
          }
      }
    }
  }
}

void pack_row_into_panels(const float* row, int64_t cols, int64_t k, int64_t kb, int nr,
                          float* panels) {
  for (int64_t j = 0; j < cols; j += nr) {
    float* dst = panels + j * kb + k * nr;
    const int64_t n = std::min<int64_t>(nr, cols - j);
    std::copy_n(row + j, n, dst);
    std::fill(dst + n, dst + nr, 0.0f);
  }
}

const int64_t* packed_row_offsets(int nr) {
  int64_t* offsets = thread_offsets(kMaxDepthBlock);
  for (int64_t k = 0; k < kMaxDepthBlock; ++k) offsets[k] = k * nr;
  return offsets;
}

}  // namespace apl::kernels::detail
