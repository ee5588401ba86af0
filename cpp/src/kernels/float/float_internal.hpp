// Private building blocks shared by the float kernels: per-thread scratch memory, plane padding,
// a BLIS-like GEMM driver (A packed into micro-panels, depth blocking, register-blocked
// micro-kernels per SIMD level) and the depthwise plane kernels. Not installed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "aidge_ptq_lite/kernels/conv_shape.hpp"
#include "aidge_ptq_lite/simd.hpp"

namespace apl::kernels::detail {

// 64-byte aligned float array: SIMD loads of packed panels never straddle cache lines.
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(size_t n);
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> data_;
  size_t size_ = 0;
};

// Per-thread buffers that grow on demand and live as long as the (OpenMP) thread, so repeated
// runs neither allocate nor page-fault. Each slot is an independent buffer.
enum class Scratch { B, C, RowOffsets, Plane, Count };
float* thread_scratch(Scratch slot, size_t n_floats);
int64_t* thread_offsets(size_t n);

// Rows [first_row, first_row + n_rows) of an H x W plane with pad_left / pad_right columns of
// `value` on each side (negative pads crop); rows outside the plane are all `value`.
void copy_padded_rows(const float* plane, int64_t H, int64_t W, int64_t first_row, int64_t n_rows,
                      int64_t pad_left, int64_t pad_right, float value, float* dst);
void copy_padded_rows_avx512(const float* plane, int64_t H, int64_t W, int64_t first_row,
                             int64_t n_rows, int64_t pad_left, int64_t pad_right, float value,
                             float* dst);
using CopyPaddedRowsFn = decltype(&copy_padded_rows);
CopyPaddedRowsFn copy_padded_rows_for(SimdLevel level);  // the same rows, by the level's variant
// Rows first_row + i * row_step (i < n_rows) of an H x W plane, their input columns first_col +
// 2 j for j < width (zeros outside the plane): a stride-2 phase plane. Null below AVX512 (the
// caller's scalar loop serves).
void copy_even_columns_avx512(const float* plane, int64_t H, int64_t W, int64_t first_row,
                              int64_t row_step, int64_t n_rows, int64_t first_col, int64_t width,
                              float* dst);
using CopyEvenColumnsFn = decltype(&copy_even_columns_avx512);
CopyEvenColumnsFn copy_even_columns_for(SimdLevel level);

// ---- Micro-kernels ------------------------------------------------------------------------------
// One MR x NR tile of C from kc steps, of which columns j < n (1 <= n <= NR) are read and written:
//   c[i][j] = (accumulate ? c[i][j] : (row_init ? row_init[i] : 0)) + sum_k a[k*MR + i] * b_k[j]
// where a is a packed micro-panel (k-major, MR floats per step) and b_k = b + b_row_offset[k]
// points at NR readable floats. Row offsets let B be a packed matrix or rows of an image.
// clamp, when given, clamps the stored sums to [clamp[0], clamp[1]] as Clamp does (NaN kept).
using MicroKernelFn = void (*)(int64_t kc, const float* a, const float* b,
                               const int64_t* b_row_offset, float* c, int64_t ldc,
                               const float* row_init, bool accumulate, int64_t n,
                               const float* clamp);
struct MicroKernel {
  int mr;
  int nr;
  MicroKernelFn fn;
};
MicroKernel micro_kernel_for(SimdLevel level);
// Same rows (so the same packed A), more columns where the level has such a kernel: faster on
// wide images (56x56, one thread: 187 -> 200 GFLOPS), slower where its columns would go unused.
MicroKernel wide_micro_kernel_for(SimdLevel level);
constexpr int64_t kWideKernelColumns = 384;  // an implicit-GEMM work item's columns from which it pays

constexpr int kAvx2Rows = 6, kAvx2Cols = 16;
constexpr int kAvx512Rows = 8, kAvx512Cols = 32, kAvx512WideCols = 48;
constexpr int kMaxTileFloats = 8 * 48;
void micro_kernel_avx2(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset,
                       float* c, int64_t ldc, const float* row_init, bool accumulate, int64_t n,
                       const float* clamp);
void micro_kernel_avx512(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset,
                         float* c, int64_t ldc, const float* row_init, bool accumulate, int64_t n,
                       const float* clamp);
void micro_kernel_avx512_wide(int64_t kc, const float* a, const float* b, const int64_t* b_row_offset,
                              float* c, int64_t ldc, const float* row_init, bool accumulate, int64_t n,
                       const float* clamp);

// ---- Pixel-broadcast convolution kernels (conv_pixels_avx512.cpp) -------------------------------
// mr output pixels x 16 nv output channels (channels <= 16 nv of them read and written):
//   c[i * ldc + j] = (accumulate ? c[i * ldc + j] : (channel_init ? channel_init[j] : 0))
//                    + sum over k < kc of band[pixel_offset[i] + tap_offset[k]] * w[k * 16 nv + j]
// w: a 64-byte aligned tap-major panel. Null for unsupported (mr, nv).
using PixelKernelFn = void (*)(int64_t kc, const float* band, const int64_t* tap_offset,
                               const int64_t* pixel_offset, const float* w, float* c, int64_t ldc,
                               const float* channel_init, bool accumulate, int64_t channels);
// The most pixels per tile for nv channel vectors (accumulators + weights + a broadcast <= 32 zmm).
constexpr int pixel_kernel_rows(int nv) { return nv >= 4 ? 6 : 8; }
PixelKernelFn pixel_kernel_avx512(int mr, int nv);  // nv in 2..4, 1 <= mr <= pixel_kernel_rows(nv)

// ---- Packed A and the block driver --------------------------------------------------------------
// The depth (k) axis is cut into near-equal blocks of at most kMaxDepthBlock so that a B
// micro-panel (depth block x NR) stays in L1 while the A panels stream from L2.
constexpr int64_t kMaxDepthBlock = 256;

// A (rows x depth), scaled by alpha, packed per depth block into MR-row micro-panels (rows past
// the end are zero). Element (i, k) is read at a[i * row_stride + k * col_stride].
class PackedA {
 public:
  PackedA(int mr, int64_t rows, int64_t depth, float alpha, const float* a, int64_t row_stride,
          int64_t col_stride);
  int64_t rows() const { return rows_; }
  int64_t depth() const { return depth_; }
  int64_t block_count() const { return block_count_; }
  int64_t block_begin(int64_t block) const { return block * block_depth_; }
  int64_t block_size(int64_t block) const;
  const float* panel(int64_t block, int64_t row_panel) const;

 private:
  int mr_;
  int64_t rows_, depth_, padded_rows_, block_depth_, block_count_;
  AlignedFloats data_;
};

// C[0:rows, 0:cols] (row stride ldc) for one depth block of A: C = row_init + A_blk * B_blk, or
// C += A_blk * B_blk when accumulate. B comes in micro-panels of NR columns: the one of columns
// [j, j + NR) starts at b + j / NR * b_panel_stride, its row k at b_row_offset[k] from there, and
// it must be readable over NR columns even past cols. Packed panels (b_panel_stride = kb * NR)
// keep a micro-panel within a few pages; an image band (b_panel_stride = NR) needs no copy.
// Only rows [first_row, end_row) when given (first_row a multiple of MR; end_row -1: all).
// clamp: as the micro-kernel's (on the last depth block: a fused Relu / Clip).
void gemm_depth_block(const MicroKernel& kernel, const PackedA& a, int64_t block, const float* b,
                      int64_t b_panel_stride, const int64_t* b_row_offset, int64_t cols, float* c,
                      int64_t ldc, const float* row_init, bool accumulate, int64_t first_row = 0,
                      int64_t end_row = -1, const float* clamp = nullptr);

// Row k of a depth block of kb rows, `cols` floats, into NR-column packed micro-panels (see
// gemm_depth_block); columns past cols, up to the last panel's end, are zeroed.
void pack_row_into_panels(const float* row, int64_t cols, int64_t k, int64_t kb, int nr,
                          float* panels);
// Row offsets k * nr of packed micro-panels, for k < kMaxDepthBlock (in the thread's offsets
// scratch).
const int64_t* packed_row_offsets(int nr);

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
// A stride for scratch planes of `n` floats that is no multiple of 4 KiB, so that walking across
// planes does not map every access to the same L1 set.
inline int64_t scratch_stride(int64_t n) { return n % 1024 == 0 ? n + 16 : n; }

// ---- Depthwise convolution ----------------------------------------------------------------------
// One output plane of a depthwise convolution computed on the phase width (conv.cpp): tap t
// reads the phase planes `band` at tap_offset[t], so each tap is one flat run over the n outputs
// (out[p] = bias + sum over t of w[t] * band[tap_offset[t] + p], taps in order). band and out
// must be readable / writable up to kDepthwiseBlock floats past n.
constexpr int64_t kDepthwiseBlock = 64;
using DepthwiseFlatFn = void (*)(int64_t taps, const int64_t* tap_offset, const float* band,
                                 const float* w, float bias, int64_t n, float* out);
DepthwiseFlatFn depthwise_flat_for(SimdLevel level);
void depthwise_flat_scalar(int64_t taps, const int64_t* tap_offset, const float* band,
                           const float* w, float bias, int64_t n, float* out);
void depthwise_flat_avx2(int64_t taps, const int64_t* tap_offset, const float* band,
                         const float* w, float bias, int64_t n, float* out);
void depthwise_flat_avx512(int64_t taps, const int64_t* tap_offset, const float* band,
                           const float* w, float bias, int64_t n, float* out);
// One whole output plane (OH x OW) of a depthwise convolution from its unpadded input plane (H x
// W), weights w (R*S), the same sums as depthwise_flat_scalar on the padded band, then clamped to
// [clamp[0], clamp[1]] when clamp is given (NaN stays NaN). Null for shapes a level has no such
// kernel for (AVX512: 3x3, stride_w 1 or 2, any stride_h, pads, dilation).
using DepthwisePlaneFn = void (*)(const Conv2dShape& s, const float* x, const float* w, float bias,
                                  const float* clamp, float* y);
DepthwisePlaneFn depthwise_plane_avx512(const Conv2dShape& s);
// The same for stride 1 and OW == W on the flattened plane: output p (of n_out) gets bias + the
// taps' w[t] * x[p + tap_offset[t]] under masks[p / 16 * taps + t] (lane l: output p0 + l reads
// inside the plane), clamped when clamp is given. Any kernel size (9 taps: weights in registers).
using DepthwiseFlatPlaneFn = void (*)(int64_t n_out, int64_t taps, const int64_t* tap_offset,
                                      const uint16_t* masks, const float* x, const float* w,
                                      float bias, const float* clamp, float* y);
DepthwiseFlatPlaneFn depthwise_flat_plane_avx512(int64_t taps);

}  // namespace apl::kernels::detail
