// Float convolution. Four paths:
//  - depthwise (chosen at construction): a direct kernel per (sample, channel) plane on a
//    zero-padded copy of the plane; at AVX512 straight from the input plane when it can (stride 1
//    with OW == W: 16 outputs a vector across rows; 3x3 with stride_w 1 or 2: row chunks);
//  - pixel broadcast (chosen at construction, AVX512, small output planes with >= 32 output
//    channels per group: 14x14, 7x7): the same phase-plane band as the implicit GEMM below, but
//    output channels in the vectors and pixels broadcast (conv_pixels_avx512.cpp), so no column
//    past the output width and no part-empty micro-tile is computed; the pixel-major result is
//    transposed into the output with the epilogue;
//  - im2col across samples, for small output planes whose columns would fill few micro-tiles
//    per sample (e.g. 7x7: 49 of 64 columns) while many output channels amortise the copy;
//  - otherwise an "implicit GEMM" without im2col. The zero-padded input is split into
//    stride_h x stride_w phase planes (padded row i*stride_h + a, column j*stride_w + b go to
//    phase (a, b), row i, column j). Computed on the phase width, output (oh, ow) of tap (c, r, s)
//    reads phase ((r*dil_h) % stride_h, (s*dil_w) % stride_w) at row oh + r*dil_h / stride_h,
//    column ow + s*dil_w / stride_w: a fixed offset per tap. So B rows are pointers into a band of
//    phase rows, and the few columns past the true output width are computed then dropped.
// Weights are packed once for the SIMD level active at construction; bias is fused into the
// micro-kernel's first depth block. Work items (group and block of samples, rows or columns) are
// handed out dynamically to OpenMP threads, so a thread slowed by other load holds none back.
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "../parallel_guard.hpp"
#include "float_internal.hpp"

namespace apl::kernels {
namespace {

using detail::round_up;

// Output columns (spatial positions) computed per work item: the B block (depth block x
// columns) and the C block stay in L2.
constexpr int64_t kBlockColumns = 1024;

// How many blocks to cut each image's `extent` output rows into: blocks of at
// most max_units, and, when the jobs do not divide evenly among threads, at least one per thread.
int64_t units_per_block(int64_t extent, int64_t max_units, int64_t jobs) {
  const int64_t threads = omp_get_max_threads();
  int64_t blocks = (extent + max_units - 1) / max_units;
  if (jobs % threads != 0 && jobs < 4 * threads) blocks = std::max(blocks, threads);
  blocks = std::min(blocks, extent);
  return (extent + blocks - 1) / blocks;
}

// Rows [first_row, first_row + n_rows) of phase plane (a, b) of one zero-padded input channel,
// `width` columns each (past the padded input: zeros).
void fill_phase_rows(const Conv2dShape& s, const float* channel, int64_t a, int64_t b,
                     int64_t first_row, int64_t n_rows, int64_t width, float* dst) {
  // Phase column j holds input column j * stride_w + b - pad_left: inside for j in [lo, hi).
  const int64_t shift = b - s.pad_left;
  const int64_t lo = std::min(width, shift >= 0 ? 0 : (-shift + s.stride_w - 1) / s.stride_w);
  const int64_t hi = std::clamp((s.W - shift + s.stride_w - 1) / s.stride_w, lo, width);
  for (int64_t i = 0; i < n_rows; ++i, dst += width) {
    const int64_t ih = (first_row + i) * s.stride_h + a - s.pad_top;
    if (ih < 0 || ih >= s.H) {
      std::fill_n(dst, width, 0.0f);
      continue;
    }
    const float* row = channel + ih * s.W + shift;
    std::fill(dst, dst + lo, 0.0f);
    if (s.stride_w == 1)
      std::copy(row + lo, row + hi, dst + lo);
    else
      for (int64_t j = lo; j < hi; ++j) dst[j] = row[j * s.stride_w];
    std::fill(dst + hi, dst + width, 0.0f);
  }
}

// The phase planes of a zero-padded input (see the file comment): the phases some tap reads,
// each in its slot, their width, and how far past an output a tap reaches.
struct PhaseLayout {
  int64_t width, extra_rows, extra_cols, slots = 0;
  std::vector<int64_t> slot_of;  // per phase a * stride_w + b: its slot, -1 when no tap reads it
  // The SIMD level's row copies: for stride 1 (one phase: padded rows), for stride_w 2 (null: none).
  detail::CopyPaddedRowsFn copy_rows;
  detail::CopyEvenColumnsFn copy_even;

  PhaseLayout(const Conv2dShape& s, detail::CopyPaddedRowsFn copy_rows, detail::CopyEvenColumnsFn copy_even)
      : width((s.W + s.pad_left + s.pad_right + s.stride_w - 1) / s.stride_w),
        extra_rows((s.R - 1) * s.dil_h / s.stride_h),
        extra_cols((s.S - 1) * s.dil_w / s.stride_w),
        slot_of(s.stride_h * s.stride_w, -1),
        copy_rows(copy_rows),
        copy_even(copy_even) {
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t col = 0; col < s.S; ++col) {
        int64_t& slot = slot_of[(r * s.dil_h % s.stride_h) * s.stride_w + col * s.dil_w % s.stride_w];
        if (slot < 0) slot = slots++;
      }
  }
  // Phase rows [first_row, first_row + n_rows) of one input channel, slot by slot from `planes`
  // (plane_stride floats apart; the floats past the rows are zeroed).
  void fill(const Conv2dShape& s, const float* channel, int64_t first_row, int64_t n_rows,
            int64_t plane_stride, float* planes) const {
    if (s.stride_h == 1 && s.stride_w == 1) {
      copy_rows(channel, s.H, s.W, first_row - s.pad_top, n_rows, s.pad_left, width - s.W - s.pad_left, 0.0f, planes);
      std::fill(planes + n_rows * width, planes + plane_stride, 0.0f);
      return;
    }
    for (int64_t phase = 0; phase < s.stride_h * s.stride_w; ++phase) {
      if (slot_of[phase] < 0) continue;
      float* plane = planes + slot_of[phase] * plane_stride;
      const int64_t a = phase / s.stride_w, b = phase % s.stride_w;
      if (s.stride_w == 2 && copy_even)
        copy_even(channel, s.H, s.W, first_row * s.stride_h + a - s.pad_top, s.stride_h, n_rows,
                  b - s.pad_left, width, plane);
      else
        fill_phase_rows(s, channel, a, b, first_row, n_rows, width, plane);
      std::fill(plane + n_rows * width, plane + plane_stride, 0.0f);
    }
  }
  // Where tap (r, col) reads, from its channel's first plane.
  int64_t tap_offset(const Conv2dShape& s, int64_t r, int64_t col, int64_t plane_stride) const {
    const int64_t dy = r * s.dil_h, dx = col * s.dil_w;
    const int64_t slot = slot_of[(dy % s.stride_h) * s.stride_w + dx % s.stride_w];
    return slot * plane_stride + dy / s.stride_h * width + dx / s.stride_w;
  }
};

// Rows [k0, k0 + kb) of the im2col matrix of one group (rows: taps (c, r, s); columns: output
// positions (sample, oh, ow) of every sample), restricted to columns [j0, j0 + nb), packed into
// micro-panels of nr columns. Samples are sample_stride floats apart; row is a scratch row.
void im2col_block(const Conv2dShape& s, const float* x_group, int64_t sample_stride, int64_t k0,
                  int64_t kb, int64_t j0, int64_t nb, int nr, float* row_buffer, float* panels) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t k = 0; k < kb; ++k) {
    const int64_t tap = k0 + k;
    const int64_t c = tap / (s.R * s.S), r = tap / s.S % s.R, col = tap % s.S;
    // Input column of output column ow is ow * stride_w + shift: inside for ow in [lo, hi).
    const int64_t shift = col * s.dil_w - s.pad_left;
    const int64_t lo = std::min(OW, shift >= 0 ? 0 : (-shift + s.stride_w - 1) / s.stride_w);
    const int64_t hi = std::clamp((s.W - shift + s.stride_w - 1) / s.stride_w, lo, OW);
    // Walk the columns one output row segment at a time: (sample, oh, ow) of column j0 onwards.
    int64_t sample = j0 / (OH * OW), oh = j0 / OW % OH, ow_begin = j0 % OW;
    float* out = row_buffer;
    for (int64_t left = nb; left > 0;) {
      const int64_t ow_end = std::min(OW, ow_begin + left);
      const int64_t ih = oh * s.stride_h - s.pad_top + r * s.dil_h;
      float* seg = out - ow_begin;  // seg[ow] is this segment's column ow
      if (ih < 0 || ih >= s.H || lo == hi) {
        for (int64_t ow = ow_begin; ow < ow_end; ++ow) seg[ow] = 0.0f;
      } else {
        // Branch-free and call-free: segments are short (the output width).
        const float* row = x_group + sample * sample_stride + (c * s.H + ih) * s.W + shift;
        for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
          const float v = row[std::clamp(ow, lo, hi - 1) * s.stride_w];
          seg[ow] = ow >= lo && ow < hi ? v : 0.0f;
        }
      }
      out += ow_end - ow_begin;
      left -= ow_end - ow_begin;
      ow_begin = 0;
      if (++oh == OH) oh = 0, ++sample;
    }
    detail::pack_row_into_panels(row_buffer, nb, k, kb, nr, panels);
  }
}

// The pixel-broadcast path: small output planes, where the implicit GEMM's columns past the
// output width and part-empty micro-tiles cost most (7x7: 49 of 64 computed columns useful),
// enough output channels per group to fill the vectors, and more than one tap per channel.
// Measured on one thread (ms, implicit -> pixel): 64x 64ch 7x7 3x3 2.08 -> 1.49; 64x 32ch 14x14
// 1.72 -> 1.52; 8x 512ch 7x7 13.1 -> 11.9; 8x 256ch 14x14 11.7 -> 10.4; 3x3 stride 2 to 14x14 /
// 7x7 -16..-21%. 1x1 convolutions lose (the transpose weighs on their short sums: 64x 32 -> 192
// ch 7x7 0.45 -> 0.65), and so do planes of 28x28 and more (64x 16 -> 32 ch 28x28 3.5 -> 4.0).
bool pixel_path_suits(const Conv2dShape& s) {
  return !s.is_depthwise() && s.outputs_per_group() >= 32 && s.OH() * s.OW() <= 256 && s.R * s.S > 1;
}

// Channel vectors per pixel-kernel tile: the fewest padded channels, then the widest tile.
int pixel_vectors(int64_t Kg) {
  int best = 4;
  for (int nv : {3, 2})
    if (round_up(Kg, 16 * nv) < round_up(Kg, 16 * best)) best = nv;
  return best;
}

// Taps per depth block of the pixel path: a weight block (taps x 16 nv floats) of 32 KiB stays
// in L1 across the pixel tiles.
int64_t pixel_depth_block(int nv) { return 2048 / nv; }

void check_shape(const Conv2dShape& s) {
  const bool ok = s.C > 0 && s.K > 0 && s.H > 0 && s.W > 0 && s.R > 0 && s.S > 0 &&
                  s.stride_h > 0 && s.stride_w > 0 && s.dil_h > 0 && s.dil_w > 0 &&
                  s.groups > 0 && s.C % s.groups == 0 && s.K % s.groups == 0 && s.pad_top >= 0 &&
                  s.pad_left >= 0 && s.pad_bottom >= 0 && s.pad_right >= 0 && s.OH() > 0 &&
                  s.OW() > 0;
  if (!ok)
    throw ShapeError("ConvF32: invalid convolution shape (C=" + std::to_string(s.C) +
                     ", K=" + std::to_string(s.K) + ", H=" + std::to_string(s.H) +
                     ", W=" + std::to_string(s.W) + ", kernel " + std::to_string(s.R) + "x" +
                     std::to_string(s.S) + ", groups=" + std::to_string(s.groups) + ")");
}

}  // namespace

struct ConvF32::Impl {
  Conv2dShape shape;
  detail::MicroKernel kernel{}, wide_kernel{};
  detail::DepthwiseFlatFn depthwise = nullptr;  // set on the depthwise path only
  detail::DepthwisePlaneFn depthwise_plane = nullptr;  // depthwise path: a direct plane kernel
  // ... or one on the flattened plane (stride 1, OW == W), with its tap offsets and lane masks.
  detail::DepthwiseFlatPlaneFn depthwise_flat_plane = nullptr;
  std::vector<int64_t> depthwise_offsets;
  std::vector<uint16_t> depthwise_masks;
  detail::CopyPaddedRowsFn copy_rows = nullptr;
  detail::CopyEvenColumnsFn copy_even = nullptr;
  std::vector<detail::PackedA> group_weights;    // GEMM paths: one (K/g x C/g*R*S) per group
  std::vector<float> depthwise_weights;          // depthwise path: (C, R*S)
  std::vector<float> bias;                       // K values, zeros when the model has none
  // Pixel path: channel vectors per tile (0: path off), the kernel per tile height, and per
  // group the weights in channel blocks of 16 nv, each tap-major (taps x 16 nv), zeros past Kg.
  int pixel_nv = 0;
  detail::PixelKernelFn pixel_kernels[9] = {};
  std::vector<detail::AlignedFloats> pixel_weights;

  void run_depthwise(int64_t N, const float* x, float* y, const Epilogue& epilogue) const;
  void run_pixels(int64_t N, const float* x, float* y, const Epilogue& epilogue) const;
  bool prefers_im2col(int64_t N) const;
  void run_im2col(int64_t N, const float* x, float* y, const Epilogue& epilogue) const;
  void run_implicit(int64_t N, const float* x, float* y, const Epilogue& epilogue) const;
};

ConvF32::ConvF32(const Conv2dShape& shape, const float* weights, const float* bias)
    : impl_(std::make_unique<Impl>()) {
  check_shape(shape);
  Impl& m = *impl_;
  m.shape = shape;
  m.bias.assign(shape.K, 0.0f);
  if (bias) std::copy_n(bias, shape.K, m.bias.begin());
  const SimdLevel level = active_simd_level();
  m.copy_rows = detail::copy_padded_rows_for(level);
  m.copy_even = detail::copy_even_columns_for(level);
  const int64_t taps = shape.channels_per_group() * shape.R * shape.S;
  if (shape.is_depthwise()) {
    m.depthwise = detail::depthwise_flat_for(level);
    if (level == SimdLevel::AVX512 || level == SimdLevel::AMX) {
      const Conv2dShape& s = shape;
      if (s.stride_h == 1 && s.stride_w == 1 && s.OW() == s.W) {
        m.depthwise_flat_plane = detail::depthwise_flat_plane_avx512(taps);
        const int64_t n_out = s.OH() * s.OW();
        for (int64_t r = 0; r < s.R; ++r)
          for (int64_t q = 0; q < s.S; ++q)
            m.depthwise_offsets.push_back((r * s.dil_h - s.pad_top) * s.W + q * s.dil_w - s.pad_left);
        for (int64_t p0 = 0; p0 < n_out; p0 += 16)
          for (int64_t r = 0; r < s.R; ++r)
            for (int64_t q = 0; q < s.S; ++q) {
              uint16_t mask = 0;
              for (int64_t l = 0; l < 16 && p0 + l < n_out; ++l) {
                const int64_t ih = (p0 + l) / s.OW() + r * s.dil_h - s.pad_top;
                const int64_t iw = (p0 + l) % s.OW() + q * s.dil_w - s.pad_left;
                if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) mask |= uint16_t(1u << l);
              }
              m.depthwise_masks.push_back(mask);
            }
      } else {
        m.depthwise_plane = detail::depthwise_plane_avx512(shape);
      }
    }
    m.depthwise_weights.assign(weights, weights + shape.K * taps);
    return;
  }
  const int64_t rows = shape.outputs_per_group();
  if ((level == SimdLevel::AVX512 || level == SimdLevel::AMX) && pixel_path_suits(shape)) {
    const int nv = m.pixel_nv = pixel_vectors(rows), block = 16 * nv;
    for (int mr = 1; mr <= detail::pixel_kernel_rows(nv); ++mr)
      m.pixel_kernels[mr] = detail::pixel_kernel_avx512(mr, nv);
    const int64_t blocks = (rows + block - 1) / block;
    for (int64_t g = 0; g < shape.groups; ++g) {
      detail::AlignedFloats& panel = m.pixel_weights.emplace_back(blocks * taps * block);
      std::fill_n(panel.data(), panel.size(), 0.0f);
      for (int64_t k = 0; k < rows; ++k)
        for (int64_t t = 0; t < taps; ++t)
          panel.data()[(k / block * taps + t) * block + k % block] = weights[(g * rows + k) * taps + t];
    }
    return;
  }
  m.kernel = detail::micro_kernel_for(level);
  m.wide_kernel = detail::wide_micro_kernel_for(level);
  for (int64_t g = 0; g < shape.groups; ++g)
    m.group_weights.emplace_back(m.kernel.mr, rows, taps, 1.0f, weights + g * rows * taps, taps, 1);
}

ConvF32::~ConvF32() = default;

const Conv2dShape& ConvF32::shape() const { return impl_->shape; }

void ConvF32::run(int64_t N, const float* x, float* y, const Epilogue& epilogue) const {
  if (N <= 0) return;
  if (impl_->depthwise)
    impl_->run_depthwise(N, x, y, epilogue);
  else if (impl_->pixel_nv)
    impl_->run_pixels(N, x, y, epilogue);
  else if (impl_->prefers_im2col(N))
    impl_->run_im2col(N, x, y, epilogue);
  else
    impl_->run_implicit(N, x, y, epilogue);
}

void ConvF32::Impl::run_depthwise(int64_t N, const float* x, float* y, const Epilogue& epilogue) const {
  const Conv2dShape& s = shape;
  if (depthwise_plane || depthwise_flat_plane) {  // from the input planes: no band, copies, scratch
    const int64_t in_plane = s.H * s.W, out_plane = s.OH() * s.OW(), taps = s.R * s.S;
    const int chunk = static_cast<int>(std::max<int64_t>(1, 4096 / out_plane));
    // A clamp alone is applied at the kernel's stores; a factor or residual in the output pass.
    const bool clamp_only = !epilogue.factor && !epilogue.residual && !epilogue.clamp.identity();
    const float clamp[2] = {epilogue.clamp.lo, epilogue.clamp.hi};
#pragma omp parallel for schedule(dynamic, chunk)
    for (int64_t plane = 0; plane < N * s.C; ++plane) {
      const int64_t c = plane % s.C;
      float* y_plane = y + plane * out_plane;
      if (depthwise_flat_plane)
        depthwise_flat_plane(out_plane, taps, depthwise_offsets.data(), depthwise_masks.data(),
                             x + plane * in_plane, depthwise_weights.data() + c * taps, bias[c],
                             clamp_only ? clamp : nullptr, y_plane);
      else
        depthwise_plane(s, x + plane * in_plane, depthwise_weights.data() + c * taps, bias[c],
                        clamp_only ? clamp : nullptr, y_plane);
      if (!clamp_only && !epilogue.identity()) epilogue.apply(out_plane, y_plane, plane * out_plane, c);
    }
    return;
  }
  const PhaseLayout phases(s, copy_rows, copy_even);
  const int64_t OH = s.OH(), OW = s.OW(), taps = s.R * s.S, out_plane = OH * OW;
  const int64_t band_rows = OH + phases.extra_rows, flat = OH * phases.width;
  const int64_t plane_stride = detail::scratch_stride(band_rows * phases.width);
  // The last tap reads a block past the flat outputs; zeros keep those junk columns finite.
  const int64_t band_size =
      std::max(phases.slots * plane_stride, (phases.slots - 1) * plane_stride +
                                                phases.extra_rows * phases.width +
                                                phases.extra_cols + round_up(flat, detail::kDepthwiseBlock));
  std::vector<int64_t> tap_offset;
  for (int64_t r = 0; r < s.R; ++r)
    for (int64_t col = 0; col < s.S; ++col) tap_offset.push_back(phases.tap_offset(s, r, col, plane_stride));
  // Planes are small (7x7: 49 outputs): hand them out a few thousand outputs at a time.
  const int chunk = static_cast<int>(std::max<int64_t>(1, 4096 / out_plane));
  ParallelGuard guard;  // thread_scratch allocates
#pragma omp parallel for schedule(dynamic, chunk)
  for (int64_t plane = 0; plane < N * s.C; ++plane) guard.run([&] {
    const int64_t c = plane % s.C;
    float* band = detail::thread_scratch(detail::Scratch::Plane, band_size);
    float* out = detail::thread_scratch(detail::Scratch::C, round_up(flat, detail::kDepthwiseBlock));
    phases.fill(s, x + plane * s.H * s.W, 0, band_rows, plane_stride, band);
    std::fill(band + phases.slots * plane_stride, band + band_size, 0.0f);
    depthwise(taps, tap_offset.data(), band, depthwise_weights.data() + c * taps, bias[c], flat, out);
    float* y_plane = y + plane * out_plane;
    copy_rows(out, OH, phases.width, 0, OH, 0, OW - phases.width, 0.0f, y_plane);  // drops the junk columns
    if (!epilogue.identity()) epilogue.apply(out_plane, y_plane, plane * out_plane, c);
  });
  guard.rethrow();
}

void ConvF32::Impl::run_pixels(int64_t N, const float* x, float* y, const Epilogue& epilogue) const {
  const Conv2dShape& s = shape;
  const int64_t OH = s.OH(), OW = s.OW(), out_plane = OH * OW, Cg = s.channels_per_group(),
                Kg = s.outputs_per_group(), taps = Cg * s.R * s.S;
  const PhaseLayout phases(s, copy_rows, copy_even);
  const int64_t band_rows = OH + phases.extra_rows, slots = phases.slots;
  const int64_t plane_stride = detail::scratch_stride(band_rows * phases.width);
  const int64_t band_size = Cg * slots * plane_stride;
  std::vector<int64_t> tap_offset, pixel_offset;
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t col = 0; col < s.S; ++col)
        tap_offset.push_back(c * slots * plane_stride + phases.tap_offset(s, r, col, plane_stride));
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow) pixel_offset.push_back(oh * phases.width + ow);
  const int nv = pixel_nv, block = 16 * nv, mr = detail::pixel_kernel_rows(nv);
  const int64_t blocks = (Kg + block - 1) / block, ldc = blocks * block;
  const int64_t depth_block = pixel_depth_block(nv);
  // Fewer images (x groups) than threads: the threads share the channel blocks.
  const int64_t jobs = N * s.groups, threads = omp_get_max_threads();
  const int64_t chunks = jobs < threads ? std::min(threads, blocks) : 1;
  const int64_t chunk_blocks = (blocks + chunks - 1) / chunks;
  const bool clamp_only = !epilogue.factor && !epilogue.residual && !epilogue.clamp.identity();
  const Clamp clamp = epilogue.clamp;

  ParallelGuard guard;  // thread_scratch allocates
#pragma omp parallel for schedule(dynamic)
  for (int64_t item = 0; item < jobs * chunks; ++item) guard.run([&] {
    const int64_t job = item / chunks, n = job / s.groups, g = job % s.groups;
    const int64_t b0 = item % chunks * chunk_blocks, b1 = std::min(blocks, b0 + chunk_blocks);
    if (b0 >= b1) return;
    const float* x_group = x + (n * s.C + g * Cg) * s.H * s.W;
    float* band = detail::thread_scratch(detail::Scratch::B, band_size);
    for (int64_t c = 0; c < Cg; ++c)
      phases.fill(s, x_group + c * s.H * s.W, 0, band_rows, plane_stride, band + c * slots * plane_stride);
    float* ct = detail::thread_scratch(detail::Scratch::C, out_plane * ldc);  // pixel-major
    const float* w_group = pixel_weights[g].data();
    for (int64_t k0 = 0; k0 < taps; k0 += depth_block) {
      const int64_t kb = std::min(depth_block, taps - k0);
      for (int64_t b = b0; b < b1; ++b) {
        const float* w = w_group + (b * taps + k0) * block;
        const int64_t channels = std::min<int64_t>(block, Kg - b * block);
        const float* init = bias.data() + g * Kg + b * block;
        for (int64_t p = 0; p < out_plane; p += mr) {
          const int64_t m = std::min<int64_t>(mr, out_plane - p);
          pixel_kernels[m](kb, band, tap_offset.data() + k0, pixel_offset.data() + p, w,
                           ct + p * ldc + b * block, ldc, init, k0 > 0, channels);
        }
      }
    }
    for (int64_t k = b0 * block; k < std::min(Kg, b1 * block); ++k) {
      float* dst = y + (n * s.K + g * Kg + k) * out_plane;
      if (clamp_only) {  // a lone Relu / Clip in the transposing pass
        for (int64_t p = 0; p < out_plane; ++p) dst[p] = clamp(ct[p * ldc + k]);
        continue;
      }
      for (int64_t p = 0; p < out_plane; ++p) dst[p] = ct[p * ldc + k];
      if (!epilogue.identity()) epilogue.apply(out_plane, dst, dst - y, g * Kg + k);
    }
  });
  guard.rethrow();
}

// Compares the share of useful micro-kernel work of both GEMM paths. Implicit: lost to the
// columns past the output width and to rounding each image's columns up to whole micro-tiles.
// im2col: its columns run across samples, but each copied element feeds only K/groups
// multiply-adds, and copying it costs about as much as kCopyCost of them (measured).
bool ConvF32::Impl::prefers_im2col(int64_t N) const {
  constexpr double kCopyCost = 64.0;
  const Conv2dShape& s = shape;
  // A 1x1 convolution with stride 1 and no padding reads its input in place on the implicit
  // path: with few input channels that beats im2col's fuller tiles (one thread, 64 images 7x7:
  // 64 -> 384 channels 1.27 vs 1.44 ms, 64 -> 256 0.88 vs 1.00; even at 128 input channels,
  // im2col ahead from 256: 8 images 256 -> 512 0.65 vs 0.76).
  const bool in_place = s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 &&
                        s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0;
  if (in_place && s.channels_per_group() < 128) return false;
  const int64_t OH = s.OH(), OW = s.OW(), nr = kernel.nr;
  const int64_t phase_w = (s.W + s.pad_left + s.pad_right + s.stride_w - 1) / s.stride_w;
  const int64_t image_cols = OH * phase_w;
  const double implicit = double(OW) / phase_w * image_cols / round_up(image_cols, nr);
  const double im2col = double(N * OH * OW) / round_up(N * OH * OW, nr) /
                        (1.0 + kCopyCost / s.outputs_per_group());
  return im2col > implicit;
}

void ConvF32::Impl::run_im2col(int64_t N, const float* x, float* y, const Epilogue& epilogue) const {
  const Conv2dShape& s = shape;
  const int64_t out_plane = s.OH() * s.OW(), Cg = s.channels_per_group(),
                Kg = s.outputs_per_group();
  const int nr = kernel.nr;
  const int64_t total_cols = N * out_plane;
  const int64_t threads = omp_get_max_threads();
  int64_t col_blocks = (total_cols + kBlockColumns - 1) / kBlockColumns;
  if (s.groups % threads != 0) col_blocks = std::max(col_blocks, threads);
  const int64_t block_cols = round_up((total_cols + col_blocks - 1) / col_blocks, nr);
  col_blocks = (total_cols + block_cols - 1) / block_cols;

  ParallelGuard guard;  // thread_scratch allocates
#pragma omp parallel for schedule(dynamic)
  for (int64_t item = 0; item < s.groups * col_blocks; ++item) guard.run([&] {
    const int64_t g = item / col_blocks;
    const int64_t j0 = item % col_blocks * block_cols, nb = std::min(block_cols, total_cols - j0);
    float* panels =
        detail::thread_scratch(detail::Scratch::B, detail::kMaxDepthBlock * round_up(nb, nr));
    float* row_buffer = detail::thread_scratch(detail::Scratch::Plane, nb);
    const int64_t* row_offset = detail::packed_row_offsets(nr);
    float* c_block = detail::thread_scratch(detail::Scratch::C, Kg * nb);

    const detail::PackedA& a = group_weights[g];
    for (int64_t d = 0; d < a.block_count(); ++d) {
      const int64_t kb = a.block_size(d);
      im2col_block(s, x + g * Cg * s.H * s.W, s.C * s.H * s.W, a.block_begin(d), kb, j0, nb,
                   nr, row_buffer, panels);
      detail::gemm_depth_block(kernel, a, d, panels, kb * nr, row_offset, nb, c_block, nb,
                               bias.data() + g * Kg, d > 0);
    }
    // Scatter the columns back to their samples.
    for (int64_t j = j0; j < j0 + nb;) {
      const int64_t n = j / out_plane, p = j % out_plane;
      const int64_t run = std::min(out_plane - p, j0 + nb - j);
      for (int64_t k = 0; k < Kg; ++k) {
        float* dst = y + (n * s.K + g * Kg + k) * out_plane + p;
        std::copy_n(c_block + k * nb + (j - j0), run, dst);
        if (!epilogue.identity()) epilogue.apply(run, dst, dst - y, g * Kg + k);
      }
      j += run;
    }
  });
  guard.rethrow();
}

void ConvF32::Impl::run_implicit(int64_t N, const float* x, float* y, const Epilogue& epilogue) const {
  const Conv2dShape& s = shape;
  const int64_t OH = s.OH(), OW = s.OW(), Cg = s.channels_per_group(), Kg = s.outputs_per_group();
  const PhaseLayout phases(s, copy_rows, copy_even);
  const int64_t phase_w = phases.width, extra_rows = phases.extra_rows, slots = phases.slots;
  const int64_t jobs = N * s.groups;
  // Fewer images (x groups) than threads: the threads share the output channels rather than the
  // image's rows, whose split leaves part-empty micro-tiles (one 7x7 image: 51% of the computed
  // columns useful, 77% unsplit).
  const int64_t threads = omp_get_max_threads(), row_panels = (Kg + kernel.mr - 1) / kernel.mr;
  const int64_t channel_chunks = jobs < threads ? std::min(threads, row_panels) : 1;
  const int64_t chunk_rows = (row_panels + channel_chunks - 1) / channel_chunks * kernel.mr;
  const int64_t block_rows = units_per_block(OH, std::max<int64_t>(1, kBlockColumns / phase_w),
                                             jobs * channel_chunks);
  const int64_t row_blocks = (OH + block_rows - 1) / block_rows;
  const detail::MicroKernel& kernel =
      block_rows * phase_w >= detail::kWideKernelColumns ? wide_kernel : this->kernel;
  // When the phase width is the output width, C is y itself; a 1x1 convolution with stride 1 and
  // no padding reads its input as it is (each channel's rows are a B row: no band copy), unless
  // the last micro-tile would read past the end of x.
  const bool direct_output = phase_w == OW;
  const bool pointwise = s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 &&
                         s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0;
  const int64_t x_size = N * s.C * s.H * s.W;
  const bool clamp_only = !epilogue.factor && !epilogue.residual && !epilogue.clamp.identity();
  const Clamp clamp = epilogue.clamp;
  const float clamp_bounds[2] = {clamp.lo, clamp.hi};

  ParallelGuard guard;  // thread_scratch allocates
#pragma omp parallel for schedule(dynamic)
  for (int64_t item = 0; item < jobs * row_blocks * channel_chunks; ++item) guard.run([&] {
    const int64_t k0 = item % channel_chunks * chunk_rows, k1 = std::min(Kg, k0 + chunk_rows);
    const int64_t spatial_item = item / channel_chunks;
    const int64_t job = spatial_item / row_blocks, n = job / s.groups, g = job % s.groups;
    const int64_t oh0 = spatial_item % row_blocks * block_rows, rows = std::min(block_rows, OH - oh0);
    const int64_t band_rows = rows + extra_rows, cols = rows * phase_w;

    // The band: for each channel of the group and phase slot, band_rows phase rows. Junk columns
    // of the last micro-tile read up to `reach` floats past a plane start: zeros keep them finite.
    const float* x_group = x + (n * s.C + g * Cg) * s.H * s.W;
    const float* band = x_group + oh0 * s.W;
    int64_t plane_stride = s.H * s.W;
    const bool direct_input =
        pointwise && (band - x) + (Cg - 1) * plane_stride + round_up(cols, kernel.nr) <= x_size;
    if (!direct_input) {
      plane_stride = detail::scratch_stride(band_rows * phase_w);
      const int64_t planes = Cg * slots;
      const int64_t reach = extra_rows * phase_w + phases.extra_cols + round_up(cols, kernel.nr);
      const int64_t band_size = (planes - 1) * plane_stride + std::max(plane_stride, reach);
      float* filled = detail::thread_scratch(detail::Scratch::B, band_size);
      for (int64_t c = 0; c < Cg; ++c)
        phases.fill(s, x_group + c * s.H * s.W, oh0, band_rows, plane_stride, filled + c * slots * plane_stride);
      std::fill(filled + planes * plane_stride, filled + band_size, 0.0f);
      band = filled;
    }

    const int64_t taps = Cg * s.R * s.S;
    int64_t* tap_offset = detail::thread_offsets(taps);
    for (int64_t c = 0, t = 0; c < Cg; ++c)
      for (int64_t r = 0; r < s.R; ++r)
        for (int64_t col = 0; col < s.S; ++col)
          tap_offset[t++] = c * slots * plane_stride + phases.tap_offset(s, r, col, plane_stride);

    float* y_block = y + ((n * s.K + g * Kg) * OH + oh0) * OW;
    float* c_block =
        direct_output ? y_block : detail::thread_scratch(detail::Scratch::C, Kg * cols);
    const int64_t ldc = direct_output ? OH * OW : cols;
    const detail::PackedA& a = group_weights[g];
    // Writing y in place, a lone clamp goes in the last depth block's stores.
    const bool clamp_in_kernel = direct_output && clamp_only;
    for (int64_t d = 0; d < a.block_count(); ++d)
      detail::gemm_depth_block(kernel, a, d, band, kernel.nr, tap_offset + a.block_begin(d), cols,
                               c_block, ldc, bias.data() + g * Kg, d > 0, k0, k1,
                               clamp_in_kernel && d + 1 == a.block_count() ? clamp_bounds : nullptr);
    if (clamp_in_kernel) return;
    if (!direct_output) {
      for (int64_t k = k0; k < k1; ++k)
        for (int64_t i = 0; i < rows; ++i) {
          const float* src = c_block + k * cols + i * phase_w;
          float* dst = y_block + k * OH * OW + i * OW;
          if (clamp_only)  // a lone Relu / Clip in the copy
            for (int64_t j = 0; j < OW; ++j) dst[j] = clamp(src[j]);
          else
            std::copy_n(src, OW, dst);
        }
      if (clamp_only) return;
    }
    if (!epilogue.identity())  // on this item's outputs, while they are in cache
      for (int64_t k = k0; k < k1; ++k) {
        float* out = y_block + k * OH * OW;
        epilogue.apply(rows * OW, out, out - y, g * Kg + k);
      }
  });
  guard.rethrow();
}

void conv2d_f32_reference(const Conv2dShape& s, int64_t N, const float* x, const float* w,
                          const float* bias, float* y) {
  const int64_t OH = s.OH(), OW = s.OW(), Cg = s.channels_per_group(), Kg = s.outputs_per_group();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < s.K; ++k) {
      const int64_t g = k / Kg;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          float sum = bias ? bias[k] : 0.0f;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < s.R; ++r) {
              const int64_t ih = oh * s.stride_h - s.pad_top + r * s.dil_h;
              if (ih < 0 || ih >= s.H) continue;
              for (int64_t col = 0; col < s.S; ++col) {
                const int64_t iw = ow * s.stride_w - s.pad_left + col * s.dil_w;
                if (iw < 0 || iw >= s.W) continue;
                sum += x[((n * s.C + g * Cg + c) * s.H + ih) * s.W + iw] *
                       w[((k * Cg + c) * s.R + r) * s.S + col];
              }
            }
          y[((n * s.K + k) * OH + oh) * OW + ow] = sum;
        }
    }
}

}  // namespace apl::kernels
