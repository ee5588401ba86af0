// int8 convolution: the scalar references and ConvInt8, which packs weights for the SIMD level
// active at construction and runs one of three paths:
//
// * Implicit GEMM (general convolutions). The input of one sample and group is copied, zero
//   padded, into "padded planes" split into stride phases (padded cell (hp, wp) goes to
//   [hp % stride_h][wp % stride_w][hp / stride_h][wp / stride_w]). Output (oh, ow) is column
//   q = oh * Wph + ow of a "wide" output with rows Wph long, and kernel tap (r, s) reads cell
//   q + tap_offset(r, s) for every q: each tap is a contiguous vector load, and no im2col copy is
//   made. Columns ow >= OW are computed and dropped. Padding cells are written once per thread
//   buffer; packing a sample only writes the cells that come from the input.
// * Pointwise GEMM (1x1 kernels without padding, including Gemm layers as 1x1 images): columns
//   are (sample, output position) pairs across the batch, gathered in chunks.
// * Depthwise (groups == C == K): one padded plane per channel, exact int16 products summed in
//   int32 along the wide output columns.
//
// Packed GEMM columns hold 4 bytes per output position and channel block:
// * AVX-512 VNNI: 4 channels as uint8, multiplied by int8 weights with vpdpbusd. Signed
//   activations are stored as x ^ 0x80 = x + 128 (zero padding becomes 128, still the value 0),
//   and the per-output-channel correction -128 * sum(w) is folded into the initial accumulator.
// * AVX2: 2 channels as int16 (sign- or zero-extended), multiplied by int16 weights (vpmaddwd).
// * AMX: the VNNI panel as it is, read by tiles: kd consecutive channel blocks (kd <= 16, the
//   blocks split evenly into steps) at 16 columns are one B tile, and the weights of a step are
//   laid out as 16 rows of kd * 4 bytes (A tiles). The blocks are padded up to a whole number of
//   steps with zero weights (the panel's extra blocks hold padding bytes: times 0, they add 0).
//   Convolutions with fewer than amx::kMinBlocks blocks run the VNNI kernel at this level.
//
// Accumulator bound: |w| <= 128 and activations in [-128, 255] give |products| <= 32640 each, so
// up to 65793 taps per output (ResNet-18's largest is 512 * 3 * 3 = 4608, 150 M < 2^31) fit int32,
// as do the +128 sums of the VNNI domain (255 * 128 * 4608 = 150 M) and the correction
// (128 * 128 * 4608 = 75 M). All arithmetic wraps modulo 2^32 (SIMD adds, and the scalar paths
// wrap explicitly), so every level gives the same int32 even if a huge bias made the true sum
// overflow.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "aidge_ptq_lite/kernels/int_kernels.hpp"
#include "aidge_ptq_lite/simd.hpp"
#include "../parallel_guard.hpp"
#include "int_kernels_isa.hpp"

namespace apl::kernels {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

std::string shape_desc(const Conv2dShape& s) {
  auto str = [](int64_t v) { return std::to_string(v); };
  return "C=" + str(s.C) + " H=" + str(s.H) + " W=" + str(s.W) + " K=" + str(s.K) +
         " kernel=" + str(s.R) + "x" + str(s.S) + " stride=" + str(s.stride_h) + "x" +
         str(s.stride_w) + " pads=" + str(s.pad_top) + "," + str(s.pad_left) + "," +
         str(s.pad_bottom) + "," + str(s.pad_right) + " dilation=" + str(s.dil_h) + "x" +
         str(s.dil_w) + " groups=" + str(s.groups);
}

void check_conv_shape(const Conv2dShape& s, const char* who) {
  const bool positive = s.C > 0 && s.H > 0 && s.W > 0 && s.K > 0 && s.R > 0 && s.S > 0 &&
                        s.stride_h > 0 && s.stride_w > 0 && s.dil_h > 0 && s.dil_w > 0 &&
                        s.groups > 0;
  const bool pads = s.pad_top >= 0 && s.pad_left >= 0 && s.pad_bottom >= 0 && s.pad_right >= 0;
  if (!positive || !pads || s.C % s.groups != 0 || s.K % s.groups != 0)
    throw ShapeError(std::string(who) + ": invalid convolution shape (" + shape_desc(s) + ")");
  if (s.H + s.pad_top + s.pad_bottom < s.dil_h * (s.R - 1) + 1 ||
      s.W + s.pad_left + s.pad_right < s.dil_w * (s.S - 1) + 1)
    throw ShapeError(std::string(who) + ": kernel larger than the padded input (" +
                     shape_desc(s) + ")");
}

// Naive convolution, accumulated modulo 2^64 and stored modulo 2^|Out| (no overflow UB).
template <class X, class Wt, class Bias, class Out>
void conv_reference(const Conv2dShape& s, int64_t N, const X* x, const Wt* w, const Bias* bias,
                    Out* y) {
  const int64_t Cg = s.channels_per_group(), Kg = s.outputs_per_group();
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < s.K; ++k) {
      const int64_t g = k / Kg;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          uint64_t sum = bias ? static_cast<uint64_t>(bias[k]) : 0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < s.R; ++r) {
              const int64_t ih = oh * s.stride_h - s.pad_top + r * s.dil_h;
              if (ih < 0 || ih >= s.H) continue;
              for (int64_t sx = 0; sx < s.S; ++sx) {
                const int64_t iw = ow * s.stride_w - s.pad_left + sx * s.dil_w;
                if (iw < 0 || iw >= s.W) continue;
                const int64_t xv = x[((n * s.C + g * Cg + c) * s.H + ih) * s.W + iw];
                const int64_t wv = w[((k * Cg + c) * s.R + r) * s.S + sx];
                sum += static_cast<uint64_t>(xv * wv);
              }
            }
          y[((n * s.K + k) * OH + oh) * OW + ow] =
              static_cast<Out>(static_cast<std::make_unsigned_t<Out>>(sum));
        }
    }
}

// ---- Level tables ------------------------------------------------------------------------------

struct IsaKernels {
  int gemm_rows;          // output channels per tile
  int gemm_cols;          // columns are computed in multiples of this
  int gemm_tile_cols;     // columns of the full-width tile
  int channels_per_step;  // channels in one 4-byte packed column cell
  bool offset_signed;     // signed activations stored as x + 128 (VNNI u8 x s8)
  int max_blocks_per_step;  // channel blocks one weight step may span (AMX tiles: 16)
  InterleaveFn interleave;
  GemmPanelFn gemm_panel;
  int depthwise_cols;
  DepthwiseFn depthwise;
};

const IsaKernels* isa_kernels_for(SimdLevel level) {
  static const IsaKernels avx512_kernels{
      avx512::kGemmRows,       avx512::kGemmColumnStep, avx512::kGemmCols,
      4,                       true,                    1,
      avx512::interleave_u8x4,
      avx512::gemm_panel,      avx512::kDepthwiseCols,  avx512::depthwise};
  static const IsaKernels avx2_kernels{
      avx2::kGemmRows,         avx2::kGemmColumnStep,   avx2::kGemmCols,
      2,                       false,                   1,
      avx2::interleave_i16x2,
      avx2::gemm_panel,        avx2::kDepthwiseCols,    avx2::depthwise};
  static const IsaKernels amx_kernels{
      amx::kGemmRows,          amx::kGemmColumnStep,    amx::kGemmCols,
      4,                       true,                    amx::kMaxBlocksPerStep,
      avx512::interleave_u8x4, amx::gemm_panel,         avx512::kDepthwiseCols,
      avx512::depthwise};
  switch (level) {
    case SimdLevel::AMX: return &amx_kernels;
    case SimdLevel::AVX512: return &avx512_kernels;
    case SimdLevel::AVX2: return &avx2_kernels;
    case SimdLevel::Scalar: break;
  }
  return nullptr;
}

// ---- Padded planes -----------------------------------------------------------------------------

struct PaddedPlanes {
  int64_t Hph = 0, Wph = 0;     // size of one stride phase
  int64_t cells = 0;            // stride_h * stride_w * Hph * Wph: one channel's padded plane
  int64_t block_stride = 0;     // bytes of one channel block (cells packed columns)
  int64_t ncols = 0;            // wide output columns OH * Wph, rounded up to the column tile
  int64_t bytes = 0;            // a panel of nblocks blocks plus the tail read past its end
  std::vector<int64_t> tap_offset;  // bytes, per tap r * S + s
};

PaddedPlanes make_padded_planes(const Conv2dShape& s, int64_t nblocks, int64_t column_bytes,
                                int64_t column_tile) {
  PaddedPlanes p;
  p.Hph = ceil_div(s.H + s.pad_top + s.pad_bottom, s.stride_h);
  p.Wph = ceil_div(s.W + s.pad_left + s.pad_right, s.stride_w);
  p.cells = s.stride_h * s.stride_w * p.Hph * p.Wph;
  p.block_stride = p.cells * column_bytes;
  p.ncols = round_up(s.OH() * p.Wph, column_tile);
  int64_t max_offset = 0;
  for (int64_t r = 0; r < s.R; ++r)
    for (int64_t sx = 0; sx < s.S; ++sx) {
      const int64_t dr = r * s.dil_h, dc = sx * s.dil_w;
      const int64_t phase = (dr % s.stride_h) * s.stride_w + dc % s.stride_w;
      const int64_t cell = (phase * p.Hph + dr / s.stride_h) * p.Wph + dc / s.stride_w;
      p.tap_offset.push_back(cell * column_bytes);
      max_offset = std::max(max_offset, cell * column_bytes);
    }
  // The last columns of the last block read past it (into dropped outputs only).
  p.bytes = std::max(nblocks * p.block_stride,
                     (nblocks - 1) * p.block_stride + max_offset + p.ncols * column_bytes);
  return p;
}

// even[i] = in[2i] for i < n_even, odd[i] = in[2i + 1] for i < n_odd (n_odd <= n_even <= n_odd
// + 1): the stride-2 split of a row, 16 pairs at a time where SSE2 (baseline x86-64) is there.
void split_even_odd(const uint8_t* in, int64_t n_even, int64_t n_odd, uint8_t* even,
                    uint8_t* odd) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128i low = _mm_set1_epi16(0x00FF);
  for (; i + 16 <= n_odd; i += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(even + i),
                     _mm_packus_epi16(_mm_and_si128(a, low), _mm_and_si128(b, low)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(odd + i),
                     _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8)));
  }
#endif
  for (int64_t j = i; j < n_odd; ++j) even[j] = in[2 * j], odd[j] = in[2 * j + 1];
  for (int64_t j = std::max(i, n_odd); j < n_even; ++j) even[j] = in[2 * j];
}

// out[i] = in[i * stride], i < n.
void gather_strided(const uint8_t* in, int64_t n, int64_t stride, uint8_t* out) {
  if (stride == 1) {
    std::memcpy(out, in, n);
  } else if (stride == 2 && n >= 2) {
    // The odd elements are read into out's tail scratch-free: split into out and a small
    // stack buffer per 64 elements.
    uint8_t odd[64];
    for (int64_t i = 0; i < n; i += 64) {
      const int64_t m = std::min<int64_t>(64, n - i);
      split_even_odd(in + 2 * i, m, m - 1, out + i, odd);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = in[i * stride];
  }
}

// Copies one input channel into the interior of its padded, phase-split plane; the padding
// cells of dst are zero already and stay untouched. avx512: the level allows AVX-512 (stride-2
// columns are split by avx512::split_even_odd, a row phase per call).
void copy_interior(const Conv2dShape& s, const PaddedPlanes& p, const uint8_t* src, uint8_t* dst,
                   bool avx512 = false) {
  const int64_t sh = s.stride_h, sw = s.stride_w, phase_cells = p.Hph * p.Wph;
  if (sw == 2 && avx512) {  // per row phase: input rows sh apart, destination rows Wph apart
    const int64_t pl = s.pad_left;
    for (int64_t phase = 0; phase < sh; ++phase) {
      const int64_t h0 = ((phase - s.pad_top) % sh + sh) % sh;
      if (h0 >= s.H) continue;
      const int64_t hp = h0 + s.pad_top;
      uint8_t* row = dst + (hp % sh) * sw * phase_cells + (hp / sh) * p.Wph;
      avx512::split_even_odd(src + h0 * s.W, s.W, ceil_div(s.H - h0, sh), sh * s.W, p.Wph,
                             row + (pl % 2) * phase_cells + pl / 2,
                             row + ((pl + 1) % 2) * phase_cells + (pl + 1) / 2);
    }
    return;
  }
  for (int64_t h = 0; h < s.H; ++h) {
    const int64_t hp = h + s.pad_top;
    uint8_t* row = dst + (hp % sh) * sw * phase_cells + (hp / sh) * p.Wph;  // column phase 0
    const uint8_t* in = src + h * s.W;
    if (sw == 1) {
      std::memcpy(row + s.pad_left, in, s.W);
      continue;
    }
    if (sw == 2) {  // even input columns to one phase, odd ones to the other
      const int64_t pl = s.pad_left;
      uint8_t* even = row + (pl % 2) * phase_cells + pl / 2;
      uint8_t* odd = row + ((pl + 1) % 2) * phase_cells + (pl + 1) / 2;
      split_even_odd(in, (s.W + 1) / 2, s.W / 2, even, odd);
      continue;
    }
    for (int64_t phase = 0; phase < sw; ++phase) {  // every sw-th input column
      const int64_t w0 = ((phase - s.pad_left) % sw + sw) % sw;
      uint8_t* out = row + phase * phase_cells + (w0 + s.pad_left) / sw;
      for (int64_t w = w0; w < s.W; w += sw) *out++ = in[w];
    }
  }
}

// ---- Output stage ------------------------------------------------------------------------------

// Where accumulators go: int32 as they are, or requantized to bytes.
struct OutputSink {
  int32_t* acc = nullptr;
  uint8_t* y = nullptr;
  RequantizeRunFn requantize_run = nullptr;
  std::vector<FixedPointMultiplier> scale;  // 1 or K, as requant_stage_for gives them
  int32_t lo = 0, hi = 0;

  bool per_channel() const { return scale.size() != 1; }
  const FixedPointMultiplier* scale_of(int64_t k) const { return &scale[per_channel() ? k : 0]; }
};

// A run of columns of a wide accumulator row that is contiguous in the output.
struct Segment {
  int64_t src_col, dst, len;
};

// The segments' parts inside wide columns [begin, end), relative to begin.
void clip_segments(const std::vector<Segment>& all, int64_t begin, int64_t end,
                   std::vector<Segment>* clipped) {
  clipped->clear();
  for (const Segment& seg : all) {
    const int64_t from = std::max(seg.src_col, begin), to = std::min(seg.src_col + seg.len, end);
    if (from < to) clipped->push_back({from - begin, seg.dst + from - seg.src_col, to - from});
  }
}

// The output runs of pointwise columns [first_col, first_col + ncols): one per sample touched.
void pointwise_segments(int64_t first_col, int64_t ncols, int64_t plane, int64_t K,
                        std::vector<Segment>* segments) {
  segments->clear();
  for (int64_t j = first_col; j < first_col + ncols;) {
    const int64_t n = j / plane, p = j % plane, len = std::min(first_col + ncols - j, plane - p);
    segments->push_back({j - first_col, n * K * plane + p, len});
    j += len;
  }
}

// memcpy of short runs (output rows) without a library call per run: fixed-size moves, the last
// one overlapping the previous where needed.
inline void copy_run(void* dst, const void* src, int64_t bytes) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  auto move = [&](int64_t at, auto chunk) { std::memcpy(d + at, s + at, sizeof chunk); };
  if (bytes >= 16) {
    struct Chunk16 {
      uint8_t b[16];
    };
    for (int64_t i = 0; i + 16 < bytes; i += 16) move(i, Chunk16{});
    move(bytes - 16, Chunk16{});
  } else if (bytes >= 8) {
    move(0, uint64_t{});
    move(bytes - 8, uint64_t{});
  } else if (bytes >= 4) {
    move(0, uint32_t{});
    move(bytes - 4, uint32_t{});
  } else {
    for (int64_t i = 0; i < bytes; ++i) d[i] = s[i];
  }
}

// Rows of wide accumulators (output channels k0...) to the NCHW output: segment j of row r goes
// to base + seg.dst + (k0 + r) * plane. A requantized row is narrowed whole (one SIMD run up to
// its last segment, into row_bytes) and then compacted.
void emit_rows(const int32_t* wide, int64_t ldw, int64_t k0, int64_t nrows,
               const std::vector<Segment>& segments, int64_t base, int64_t plane,
               const OutputSink& out, uint8_t* row_bytes) {
  if (segments.empty()) return;
  const int64_t row_len = segments.back().src_col + segments.back().len;
  for (int64_t r = 0; r < nrows; ++r) {
    const int32_t* row = wide + r * ldw;
    const int64_t k = k0 + r, row_base = base + k * plane;
    if (out.acc) {
      for (const Segment& seg : segments)
        copy_run(out.acc + row_base + seg.dst, row + seg.src_col, seg.len * sizeof(int32_t));
    } else if (segments.size() == 1) {
      const Segment& seg = segments[0];
      out.requantize_run(row + seg.src_col, seg.len, out.scale_of(k), false, out.lo, out.hi,
                         out.y + row_base + seg.dst);
    } else {
      out.requantize_run(row, row_len, out.scale_of(k), false, out.lo, out.hi, row_bytes);
      for (const Segment& seg : segments)
        copy_run(out.y + row_base + seg.dst, row_bytes + seg.src_col, seg.len);
    }
  }
}

// Gemm-shaped output (1x1 image): column j holds the outputs k0... of sample first_sample + j,
// contiguous in the (N, K) output, so the tile is written transposed.
void emit_columns(const int32_t* wide, int64_t ldw, int64_t k0, int64_t nrows,
                  int64_t first_sample, int64_t ncols, int64_t K, const OutputSink& out,
                  int32_t* column) {
  for (int64_t j = 0; j < ncols; ++j) {
    for (int64_t r = 0; r < nrows; ++r) column[r] = wide[r * ldw + j];
    const int64_t dst = (first_sample + j) * K + k0;
    if (out.acc)
      std::memcpy(out.acc + dst, column, nrows * sizeof(int32_t));
    else
      out.requantize_run(column, nrows, out.scale_of(k0), out.per_channel(), out.lo, out.hi,
                         out.y + dst);
  }
}

// Uninitialised scratch memory of one thread, 64-byte aligned: AMX tile loads whose rows
// straddle cache lines run up to 3x slower (a TDPBUSD with both tiles misaligned by 16 bytes,
// as malloc returns large blocks, took 16.4 ns instead of 5.5 ns in a loop of L1 loads).
struct AlignedFree {
  void operator()(void* p) const { ::operator delete(p, std::align_val_t(64)); }
};
template <class T>
using Scratch = std::unique_ptr<T[], AlignedFree>;
template <class T>
Scratch<T> scratch(int64_t n) {
  static_assert(std::is_trivially_copyable_v<T>);
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T);
  return Scratch<T>(static_cast<T*>(::operator new(bytes, std::align_val_t(64))));
}

// std::vector storage aligned like scratch (packed weights: the AMX A / B tiles).
template <class T>
struct Align64 {
  using value_type = T;
  Align64() = default;
  template <class U>
  Align64(const Align64<U>&) {}
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const Align64<U>&) const { return true; }
  template <class U>
  bool operator!=(const Align64<U>&) const { return false; }
};
template <class T>
using AlignedVector = std::vector<T, Align64<T>>;

enum class ConvPath { Reference, ImplicitGemm, PointwiseGemm, Depthwise };

// ---- VNNI depthwise ----------------------------------------------------------------------------

// The plan of avx512::depthwise_vnni for one shape (see DepthwiseVnniArgs): the padded plane, the
// output groups and their byte windows, the weights as tap-row quads.
struct DepthwiseVnniPlan {
  int64_t Hp = 0, Wp = 0, quads = 0, buffer_bytes = 0;
  bool narrow = true;
  std::vector<int64_t> base;
  std::vector<int32_t> first;
  std::vector<uint8_t> index;
  std::vector<int32_t> weights;  // [C][R][quads]
  std::vector<int32_t> init;     // [C]
};

bool depthwise_vnni_available() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx512vbmi");
#else
  return false;
#endif
}

// The output groups: greedy runs of up to 16 consecutive outputs whose tap-row inputs fit one
// 128-byte window (outputs are increasing in their window offsets). False when one output's tap
// row alone is wider than 128 bytes or there are too many weight quads for the kernel.
bool plan_depthwise_vnni(const Conv2dShape& s, const int8_t* w, const std::vector<int32_t>& bias,
                         bool x_unsigned, DepthwiseVnniPlan* p) {
  constexpr int64_t kWindow = 128, kLanes = 16, kMaxWeights = 32;
  p->Hp = s.H + s.pad_top + s.pad_bottom;
  p->Wp = s.W + s.pad_left + s.pad_right;
  p->quads = ceil_div(s.S, 4);
  const int64_t span = (s.S - 1) * s.dil_w + 1;  // bytes of one output's tap row
  if (span > kWindow || s.R * p->quads > kMaxWeights) return false;
  const int64_t OW = s.OW(), plane = s.OH() * OW;
  auto offset = [&](int64_t q) { return (q / OW) * s.stride_h * p->Wp + (q % OW) * s.stride_w; };
  for (int64_t p0 = 0; p0 < plane;) {
    const int64_t base = offset(p0);
    int64_t lanes = 1;
    while (lanes < kLanes && p0 + lanes < plane && offset(p0 + lanes) - base + span <= kWindow)
      ++lanes;
    if (offset(p0 + lanes - 1) - base + span > 64) p->narrow = false;
    p->base.push_back(base);
    p->first.push_back(static_cast<int32_t>(p0));
    const size_t at = p->index.size();
    p->index.resize(at + p->quads * 64, 0);
    for (int64_t j = 0; j < lanes; ++j)
      for (int64_t sx = 0; sx < s.S; ++sx)
        p->index[at + (sx / 4) * 64 + 4 * j + sx % 4] =
            static_cast<uint8_t>(offset(p0 + j) - base + sx * s.dil_w);
    p0 += lanes;
  }
  p->first.push_back(static_cast<int32_t>(plane));
  // Loads reach base + (R - 1) * dil_h * Wp + 127 < Hp * Wp + 127 (the last output's rows).
  p->buffer_bytes = p->Hp * p->Wp + kWindow + 64;
  const int64_t taps = s.R * s.S;
  p->weights.assign(s.K * s.R * p->quads, 0);  // per output channel (K == C, or C == 1)
  p->init.resize(s.K);
  for (int64_t c = 0; c < s.K; ++c) {
    int64_t sum = 0;
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t sx = 0; sx < s.S; ++sx) {
        const int8_t v = w[c * taps + r * s.S + sx];
        sum += v;
        int32_t& quad = p->weights[(c * s.R + r) * p->quads + sx / 4];
        quad = static_cast<int32_t>(static_cast<uint32_t>(quad) |
                                    (uint32_t{static_cast<uint8_t>(v)} << (8 * (sx % 4))));
      }
    const int64_t correction = x_unsigned ? 0 : -128 * sum;
    p->init[c] = static_cast<int32_t>(static_cast<uint32_t>(bias[c] + correction));
  }
  return true;
}

// Which AMX kernel runs an implicit GEMM convolution: APL_AMX_CELLS=1 (read when a ConvInt8 is
// built) the channels-last amx::gemm_cells, =0 the VNNI-panel amx::gemm_panel (or VNNI below
// amx::kMinBlocks blocks), unset: gemm_cells where it measured faster (conv_int8_layers, one
// thread, ResNet-18 b8 / zoo ResNet-20 b64, APL_AMX_CELLS=0 / 1 interleaved): few channels,
// which would run VNNI (ResNet-18's RGB 7x7/2 conv1, as space to depth: 1.7x), strided
// reductions of >= 18 full-depth panel tiles per C tile (3x3/2 from >= 128 channels: 1.09-1.32x)
// and stride-1 ones of >= 27 (3x3 from >= 256 channels: 1.09-1.13x); the 16-128 channel
// stride-1 3x3 layers and 64 channel 3x3/2 were 3-10% slower with it. Also 16 channels at
// stride 1 with >= 3 undilated kernel columns (3 taps per TDPBUSD, packed by 4 x 16 dword
// transposes): zoo ResNet-20 3x3 16->16 @28 1.11x.
bool use_amx_cells(int64_t nblocks, int64_t panel_tiles_per_c_tile, bool strided,
                   bool folds_16_channels) {
  const char* v = std::getenv("APL_AMX_CELLS");
  if (v && std::string(v) == "1") return true;
  if (v && std::string(v) == "0") return false;
  return nblocks < amx::kMinBlocks || panel_tiles_per_c_tile >= 27 ||
         (strided && panel_tiles_per_c_tile >= 18) || folds_16_channels;
}

// Threads, and how many k-tile chunks each packed input unit is split into: only when there are
// fewer units than threads (small batches), at the cost of packing a unit once per chunk.
struct JobSplit {
  int threads;
  int64_t kchunks, jobs;
};

JobSplit split_jobs(int64_t units, int64_t ktiles) {
  const int threads = omp_get_max_threads();
  const int64_t kchunks = units >= threads ? 1 : std::min(ktiles, ceil_div(2 * threads, units));
  return {threads, kchunks, units * kchunks};
}

}  // namespace

// ---- References --------------------------------------------------------------------------------

void conv2d_int8_reference(const Conv2dShape& s, int64_t N, const void* x, bool x_unsigned,
                           const int8_t* w, const int32_t* bias, int32_t* acc) {
  check_conv_shape(s, "conv2d_int8_reference");
  if (x_unsigned)
    conv_reference(s, N, static_cast<const uint8_t*>(x), w, bias, acc);
  else
    conv_reference(s, N, static_cast<const int8_t*>(x), w, bias, acc);
}

void conv2d_wide_reference(const Conv2dShape& s, int64_t N, const int32_t* x, const int32_t* w,
                           const int64_t* bias, int64_t* acc) {
  check_conv_shape(s, "conv2d_wide_reference");
  conv_reference(s, N, x, w, bias, acc);
}

// ---- ConvInt8 ----------------------------------------------------------------------------------

struct ConvInt8::Impl {
  Conv2dShape s;
  bool x_unsigned = false;
  ConvPath path = ConvPath::Reference;
  const IsaKernels* isa = nullptr;
  SimdLevel level = SimdLevel::Scalar;  // of the packed weights and the output stage

  std::vector<int8_t> weights;  // reference path: as given
  std::vector<int32_t> bias;    // K values (zeros when none was given)

  // GEMM paths: per group, [k tile][step][tap][row][blocks_per_step][4 bytes], and per group
  // [k tile][row] initial accumulators. Steps of blocks_per_step channel blocks cover
  // padded_blocks >= nblocks blocks (AMX), or one block each.
  int64_t nblocks = 0, blocks_per_step = 1, padded_blocks = 0, ktiles = 0, weight_tile_bytes = 0;
  AlignedVector<uint8_t> packed_weights;
  AlignedVector<int32_t> init;
  // Implicit GEMM and depthwise: the padded planes of one sample and group (or channel).
  PaddedPlanes planes;
  std::vector<Segment> plane_segments;  // wide rows -> output rows
  std::vector<int32_t> depthwise_weights;  // [C][tap]
  // Depthwise at the AVX512 and AMX levels on CPUs with VBMI (else the int16 kernel above).
  bool depthwise_vnni = false;
  bool single_input = false;  // C == 1: the K output planes of a sample share its input plane
  DepthwiseVnniPlan dw;
  // Implicit GEMM at the AMX level: the channels-last panel of amx::gemm_cells (see there).
  bool cells = false;
  // amx::gemm_panel's requantizing epilogue (implicit GEMM): the output runs per column tile.
  std::vector<int32_t> run_begin;
  std::vector<OutRun> out_runs;
  bool space_to_depth = false;
  int64_t cells_kd = 0, cells_steps = 0, cells_count = 0, cells_src_stride = 0;
  int64_t cell_bytes = 0, fold = 1, cells_step_stride = 0, cells_panel_bytes = 0,
          cells_weight_tile_bytes = 0;
  std::vector<int64_t> group_offset;    // bytes, per tap group
  AlignedVector<uint8_t> cells_weights;   // per group and k tile: [step][tap group][F kd][16][4]
  AlignedVector<int32_t> cells_init;      // per group and k tile: 16 x 16

  Impl(const Conv2dShape& shape, const int8_t* w, const int32_t* b, bool unsigned_x);
  void pack_gemm_weights(const int8_t* w);
  void plan_cells(const int8_t* w);
  uint8_t padding_byte() const { return isa->offset_signed && !x_unsigned ? 0x80 : 0; }
  void run(int64_t N, const uint8_t* x, const OutputSink& out) const;
  void run_reference(int64_t N, const uint8_t* x, const OutputSink& out) const;
  void run_gemm(int64_t N, const uint8_t* x, const OutputSink& out) const;
  void run_depthwise(int64_t N, const uint8_t* x, const OutputSink& out) const;
  void run_depthwise_vnni(int64_t N, const uint8_t* x, const OutputSink& out) const;
  void pack_implicit(const uint8_t* x_sample, int64_t g, const uint8_t* zeros, uint8_t* planes_buf,
                     uint8_t* panel) const;
  void pack_pointwise(const uint8_t* x, int64_t g, int64_t j0, int64_t j1, int64_t chunk_cols,
                      uint8_t* rows, uint8_t* panel) const;
  struct GemmPlan;
  GemmPlan plan_gemm(int64_t N) const;
};

ConvInt8::Impl::Impl(const Conv2dShape& shape, const int8_t* w, const int32_t* b, bool unsigned_x)
    : s(shape), x_unsigned(unsigned_x), bias(shape.K, 0) {
  check_conv_shape(s, "ConvInt8");
  if (!w) throw ValueError("ConvInt8: null weights");
  if (b) std::copy(b, b + s.K, bias.begin());
  level = active_simd_level();
  isa = isa_kernels_for(level);
  const int64_t taps = s.R * s.S;
  const int64_t weight_count = s.K * s.channels_per_group() * taps;
  if (!isa) {
    path = ConvPath::Reference;
    weights.assign(w, w + weight_count);
    return;
  }
  const bool vnni_planes =
      (level == SimdLevel::AVX512 || level == SimdLevel::AMX) && depthwise_vnni_available();
  // One input channel (a grayscale first layer): every output channel is a depthwise conv of the
  // same plane, which the VNNI depthwise kernel does with no zero channels (the GEMM packs 3).
  if (s.C == 1 && s.groups == 1 && s.K > 1 && vnni_planes &&
      plan_depthwise_vnni(s, w, bias, x_unsigned, &dw)) {
    path = ConvPath::Depthwise;
    depthwise_vnni = single_input = true;
    return;
  }
  if (s.is_depthwise()) {
    path = ConvPath::Depthwise;
    if (vnni_planes) depthwise_vnni = plan_depthwise_vnni(s, w, bias, x_unsigned, &dw);
    if (depthwise_vnni) return;
    depthwise_weights.assign(w, w + weight_count);
    planes = make_padded_planes(s, 1, 1, isa->depthwise_cols);
  } else {
    const bool unpadded =
        s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0;
    path = (s.R == 1 && s.S == 1 && unpadded) ? ConvPath::PointwiseGemm : ConvPath::ImplicitGemm;
    nblocks = ceil_div(s.channels_per_group(), isa->channels_per_step);
    // The cells kernel folds taps into its tiles' depth, so it takes few channels too.
    const bool want_cells =
        level == SimdLevel::AMX && path == ConvPath::ImplicitGemm &&
        use_amx_cells(nblocks, ceil_div(nblocks, amx::kMaxBlocksPerStep) * s.R * s.S,
                      s.stride_h > 1 || s.stride_w > 1,
                      nblocks == 4 && s.stride_h == 1 && s.stride_w == 1 && s.dil_w == 1 &&
                          s.S >= 3);
    // Pointwise convs of <= 32 channels run VNNI at the AMX level too: the tiles measured
    // slower there (conv_int8_layers b64, one thread, the levels interleaved: zoo MobileNet
    // 1x1 16->16 1.24-1.35x the VNNI time, 16->96 1.0-1.2x, 24->144 1.07-1.12x, 32->192
    // 1.02-1.04x, ResNet-20 1x1/2 16->32 1.16x; from 64 channels on AMX is 0.67-0.88x).
    constexpr int64_t kMaxVnniPointwiseBlocks = 8;
    if (level == SimdLevel::AMX &&
        ((nblocks < amx::kMinBlocks && !want_cells) ||
         (path == ConvPath::PointwiseGemm && nblocks <= kMaxVnniPointwiseBlocks)))
      isa = isa_kernels_for(SimdLevel::AVX512);
    const int64_t steps = ceil_div(nblocks, isa->max_blocks_per_step);
    blocks_per_step = ceil_div(nblocks, steps);
    padded_blocks = steps * blocks_per_step;
    ktiles = ceil_div(s.outputs_per_group(), isa->gemm_rows);
    pack_gemm_weights(w);
    if (path == ConvPath::ImplicitGemm)
      planes = make_padded_planes(s, padded_blocks, kPackedColumnBytes, isa->gemm_cols);
    if (want_cells) plan_cells(w);
    // Requantized from the tiles only where the wide rows are short (<= 16 columns: 14x14 and
    // smaller outputs): there emit_rows spends most on per-row calls and short copies. For
    // longer rows it measured slower (conv_int8_layers amx, one thread, the epilogue off / on
    // interleaved: 7x7 and 14x14 layers 1.05-1.14x faster with it, ResNet-18 b8 64@56 and
    // 128@28 0.89-0.93x, the 7x7/2 conv1 0.77x).
    if (path == ConvPath::ImplicitGemm && isa->gemm_panel == amx::gemm_panel &&
        planes.Wph <= 16) {
      const int64_t OH = s.OH(), OW = s.OW(), Wph = planes.Wph;
      for (int64_t q0 = 0; q0 < planes.ncols; q0 += 16) {
        run_begin.push_back(static_cast<int32_t>(out_runs.size()));
        for (int64_t oh = q0 / Wph; oh < OH && oh * Wph < q0 + 16; ++oh) {
          const int64_t j0 = std::max(q0, oh * Wph) - q0;
          const int64_t j1 = std::min(q0 + 16, oh * Wph + OW) - q0;
          if (j1 > j0)
            out_runs.push_back({static_cast<int32_t>(oh * OW + q0 + j0 - oh * Wph),
                                static_cast<int16_t>(j0), static_cast<int16_t>(j1 - j0)});
        }
      }
      run_begin.push_back(static_cast<int32_t>(out_runs.size()));
    }
  }
  if (path != ConvPath::PointwiseGemm)
    for (int64_t oh = 0; oh < s.OH(); ++oh)
      plane_segments.push_back({oh * planes.Wph, oh * s.OW(), s.OW()});
}

void ConvInt8::Impl::pack_gemm_weights(const int8_t* w) {
  const int64_t Cg = s.channels_per_group(), Kg = s.outputs_per_group(), taps = s.R * s.S;
  const int rows = isa->gemm_rows, cg = isa->channels_per_step;
  const int64_t kd = blocks_per_step, step_row_bytes = kd * kPackedColumnBytes;
  const int64_t value_bytes = kPackedColumnBytes / cg;  // int8 or int16
  weight_tile_bytes = padded_blocks * taps * rows * kPackedColumnBytes;
  packed_weights.assign(s.groups * ktiles * weight_tile_bytes, 0);
  init.assign(s.groups * ktiles * rows, 0);
  for (int64_t g = 0; g < s.groups; ++g)
    for (int64_t k = 0; k < Kg; ++k) {
      const int64_t tile = g * ktiles + k / rows, row = k % rows;
      const int8_t* wk = w + (g * Kg + k) * Cg * taps;
      int64_t sum = 0;
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t t = 0; t < taps; ++t) {
          const int16_t v = wk[c * taps + t];
          sum += v;
          const int64_t block = c / cg, step = (block / kd) * taps + t;
          uint8_t* cell = packed_weights.data() + tile * weight_tile_bytes +
                          (step * rows + row) * step_row_bytes +
                          (block % kd) * kPackedColumnBytes + (c % cg) * value_bytes;
          std::memcpy(cell, &v, value_bytes);  // little-endian: the low byte is the int8
        }
      const int64_t correction = (isa->offset_signed && !x_unsigned) ? -128 * sum : 0;
      init[tile * rows + row] =
          static_cast<int32_t>(static_cast<uint32_t>(bias[g * Kg + k] + correction));
    }
}

// The tap groups, the channels-last weights and initial tiles of amx::gemm_cells. Two plans,
// the one with fewer TDPBUSD per C tile taken:
// * per phase: a cell is one padded cell of one stride phase (4 kd channel bytes); undilated
//   columns fold taps s = p, p + stride_w, ... of a row (consecutive cells of column phase p).
// * space to depth (strided convolutions with few channels, e.g. an RGB 7x7/2 first layer): a
//   cell is position (h', w') of the phase planes with the channels of every phase, i.e. the
//   strided conv as a stride-1 conv of ceil(R / sh) x ceil(S / sw) taps over C * sh * sw
//   channels; the VNNI panel is that already (block b's phases are consecutive planes of Hph *
//   Wph cells), read as nblocks * phases blocks of one phase plane each.
void ConvInt8::Impl::plan_cells(const int8_t* w) {
  cells = true;
  const int64_t taps = s.R * s.S, Cg = s.channels_per_group(), Kg = s.outputs_per_group();
  const int64_t sh = s.stride_h, sw = s.stride_w, phases = sh * sw;
  struct Group {
    int64_t r, s0, step;  // phase plan: taps (r, s0 + f * step)
  };
  // Phase plan.
  const int64_t kd_p = blocks_per_step, steps_p = padded_blocks / kd_p;
  const int64_t fold_p = std::max<int64_t>(
      1, std::min(s.dil_w == 1 ? ceil_div(s.S, sw) : 1, 64 / (4 * kd_p)));
  std::vector<Group> groups_p;
  for (int64_t r = 0; r < s.R; ++r) {
    if (s.dil_w != 1) {
      for (int64_t sx = 0; sx < s.S; ++sx) groups_p.push_back({r, sx, 1});
      continue;
    }
    for (int64_t p = 0; p < std::min(sw, s.S); ++p)
      for (int64_t s0 = p; s0 < s.S; s0 += fold_p * sw) groups_p.push_back({r, s0, sw});
  }
  const int64_t cost_p = steps_p * static_cast<int64_t>(groups_p.size());
  // Space-to-depth plan: one step of nblocks * phases <= 16 blocks, undilated.
  const int64_t kd_d = nblocks * phases, R_d = ceil_div(s.R, sh), S_d = ceil_div(s.S, sw);
  const int64_t fold_d = std::max<int64_t>(1, std::min(S_d, 64 / (4 * kd_d)));
  const int64_t cost_d = R_d * ceil_div(S_d, fold_d);
  space_to_depth = phases > 1 && s.dil_h == 1 && s.dil_w == 1 && kd_d <= 16 &&
                   padded_blocks == nblocks && cost_d < cost_p;

  const int64_t phase_cells = planes.Hph * planes.Wph;
  int64_t ngroups = 0;
  if (space_to_depth) {
    cells_kd = kd_d, cells_steps = 1, fold = fold_d;
    cells_count = phase_cells;
    cells_src_stride = phase_cells * kPackedColumnBytes;
    for (int64_t r = 0; r < R_d; ++r)
      for (int64_t s0 = 0; s0 < S_d; s0 += fold) group_offset.push_back(r * planes.Wph + s0);
  } else {
    cells_kd = kd_p, cells_steps = steps_p, fold = fold_p;
    cells_count = planes.cells;
    cells_src_stride = planes.block_stride;
    for (const Group& gr : groups_p)
      group_offset.push_back(planes.tap_offset[gr.r * s.S + gr.s0] / kPackedColumnBytes);
  }
  cell_bytes = 4 * cells_kd;
  for (int64_t& off : group_offset) off *= cell_bytes;  // cells -> bytes
  ngroups = static_cast<int64_t>(group_offset.size());
  const int64_t kd = cells_kd, b_bytes = fold * kd * 64;
  cells_weight_tile_bytes = cells_steps * ngroups * b_bytes;
  cells_weights.assign(s.groups * ktiles * cells_weight_tile_bytes, 0);
  for (int64_t g = 0; g < s.groups; ++g)
    for (int64_t k = 0; k < Kg; ++k) {
      uint8_t* tile = cells_weights.data() + (g * ktiles + k / 16) * cells_weight_tile_bytes;
      const int8_t* wk = w + (g * Kg + k) * Cg * taps;
      auto put = [&](int64_t st, int64_t tg, int64_t f, int64_t quad, int64_t c, int8_t v) {
        tile[(st * ngroups + tg) * b_bytes + (f * kd + quad) * 64 + (k % 16) * 4 + c % 4] =
            static_cast<uint8_t>(v);
      };
      for (int64_t c = 0; c < Cg; ++c) {
        const int64_t block = c / 4;
        if (space_to_depth) {
          // Tap (r, sx) = (sh r' + ph, sw s' + pw): group (r', s' / fold), quad block * phases +
          // the phase of (ph, pw) (make_padded_planes' order).
          for (int64_t r = 0; r < s.R; ++r)
            for (int64_t sx = 0; sx < s.S; ++sx) {
              const int64_t rd = r / sh, sd = sx / sw, phase = (r % sh) * sw + sx % sw;
              const int64_t tg = rd * ceil_div(S_d, fold) + sd / fold;
              put(0, tg, sd % fold, block * phases + phase, c, wk[c * taps + r * s.S + sx]);
            }
          continue;
        }
        const int64_t st = block / kd, b = block % kd;
        for (int64_t tg = 0; tg < ngroups; ++tg) {
          const Group& gr = groups_p[tg];
          for (int64_t f = 0; f < fold && gr.s0 + f * gr.step < s.S; ++f)
            put(st, tg, f, b, c, wk[c * taps + gr.r * s.S + gr.s0 + f * gr.step]);
        }
      }
    }
  cells_init.assign(s.groups * ktiles * 256, 0);
  for (int64_t t = 0; t < s.groups * ktiles; ++t)
    for (int64_t m = 0; m < 16; ++m)
      for (int64_t n = 0; n < 16; ++n) cells_init[t * 256 + m * 16 + n] = init[t * 16 + n];
  cells_step_stride = round_up(cells_count * cell_bytes, 64);
  const int64_t max_offset = *std::max_element(group_offset.begin(), group_offset.end());
  cells_panel_bytes = std::max(cells_steps * cells_step_stride,
                               (cells_steps - 1) * cells_step_stride + max_offset +
                                   (planes.ncols + fold) * cell_bytes) +
                      64;
}

void ConvInt8::Impl::run(int64_t N, const uint8_t* x, const OutputSink& out) const {
  if (N < 0) throw ValueError("ConvInt8: negative batch size");
  if (N == 0) return;
  switch (path) {
    case ConvPath::Reference: return run_reference(N, x, out);
    case ConvPath::Depthwise: return run_depthwise(N, x, out);
    case ConvPath::ImplicitGemm:
    case ConvPath::PointwiseGemm: return run_gemm(N, x, out);
  }
}

void ConvInt8::Impl::run_reference(int64_t N, const uint8_t* x, const OutputSink& out) const {
  const int64_t in_sample = s.C * s.H * s.W, plane = s.OH() * s.OW(), out_sample = s.K * plane;
  const std::vector<Segment> whole_plane{{0, 0, plane}};
  ParallelGuard guard;  // scratch allocates
#pragma omp parallel
  {
    Scratch<int32_t> acc;
    guard.run([&] { acc = scratch<int32_t>(out.acc ? 0 : out_sample); });
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) guard.run([&] {
      int32_t* dst = out.acc ? out.acc + n * out_sample : acc.get();
      conv2d_int8_reference(s, 1, x + n * in_sample, x_unsigned, weights.data(), bias.data(), dst);
      if (!out.acc)
        emit_rows(dst, plane, 0, s.K, whole_plane, n * out_sample, plane, out, nullptr);
    });
  }
  guard.rethrow();
}

// The channel blocks of group g of one sample into a panel whose padding cells are set already.
// Stride-1 columns interleave input rows straight into the panel; other strides go through
// phase-split planes (planes_buf, cg planes with zero padding cells).
void ConvInt8::Impl::pack_implicit(const uint8_t* x_sample, int64_t g, const uint8_t* zeros,
                                   uint8_t* planes_buf, uint8_t* panel) const {
  const int64_t Cg = s.channels_per_group(), cg = isa->channels_per_step;
  const uint8_t* channel[4];
  for (int64_t b = 0; b < nblocks; ++b) {
    uint8_t* block = panel + b * planes.block_stride;
    for (int64_t i = 0; i < cg; ++i) {
      const int64_t c = b * cg + i;
      channel[i] = c < Cg ? x_sample + (g * Cg + c) * s.H * s.W : nullptr;
    }
    if (s.stride_w == 1) {
      // Input rows of one row phase are evenly spaced in both the input and the panel.
      for (int64_t phase = 0; phase < s.stride_h; ++phase) {
        const int64_t h0 = ((phase - s.pad_top) % s.stride_h + s.stride_h) % s.stride_h;
        if (h0 >= s.H) continue;
        const uint8_t* src[4];
        for (int64_t i = 0; i < cg; ++i) src[i] = channel[i] ? channel[i] + h0 * s.W : zeros;
        const int64_t cell = (phase * planes.Hph + (h0 + s.pad_top) / s.stride_h) * planes.Wph;
        isa->interleave(src, s.W, ceil_div(s.H - h0, s.stride_h), s.stride_h * s.W, planes.Wph,
                        !x_unsigned, block + (cell + s.pad_left) * kPackedColumnBytes);
      }
    } else {
      const uint8_t* phase_planes[4];
      for (int64_t i = 0; i < cg; ++i) {
        uint8_t* plane = planes_buf + i * planes.cells;
        if (channel[i])
          copy_interior(s, planes, channel[i], plane,
                        level == SimdLevel::AVX512 || level == SimdLevel::AMX);
        phase_planes[i] = channel[i] ? plane : zeros;
      }
      isa->interleave(phase_planes, planes.cells, 1, 0, 0, !x_unsigned, block);
    }
  }
}

// Columns [j0, j1) of the (sample, output position) sequence of a 1x1 unpadded convolution,
// padded with zero columns to chunk_cols.
void ConvInt8::Impl::pack_pointwise(const uint8_t* x, int64_t g, int64_t j0, int64_t j1,
                                    int64_t chunk_cols, uint8_t* rows, uint8_t* panel) const {
  const int64_t Cg = s.channels_per_group(), cg = isa->channels_per_step;
  const int64_t OW = s.OW(), plane = s.OH() * OW, in_plane = s.H * s.W;
  const bool contiguous = s.stride_h == 1 && s.stride_w == 1;  // then plane == in_plane
  // Stride-2 rows (ResNet shortcuts: 7-28 outputs a row) by AVX-512 where the level has it.
  const bool even_gather =
      s.stride_w == 2 && (level == SimdLevel::AVX512 || level == SimdLevel::AMX);
  const uint8_t* row_ptrs[4];
  for (int64_t b = 0; b < nblocks; ++b) {
    for (int64_t i = 0; i < cg; ++i) {
      const int64_t c = b * cg + i;
      uint8_t* row = rows + i * chunk_cols;
      row_ptrs[i] = row;
      const int64_t filled = c < Cg ? j1 - j0 : 0;
      std::memset(row + filled, 0, chunk_cols - filled);
      for (int64_t j = j0; j < j0 + filled;) {
        const int64_t n = j / plane, p = j % plane, len = std::min(j1 - j, plane - p);
        const uint8_t* in = x + (n * s.C + g * Cg + c) * in_plane;
        if (contiguous) {
          std::memcpy(row + (j - j0), in + p, len);
        } else {  // output row by output row
          uint8_t* dst = row + (j - j0);
          for (int64_t q = p; q < p + len;) {
            const int64_t oh = q / OW, ow = q % OW, n_row = std::min(OW - ow, p + len - q);
            const uint8_t* src = in + oh * s.stride_h * s.W + ow * s.stride_w;
            if (even_gather)
              avx512::gather_even(src, n_row, dst);
            else
              gather_strided(src, n_row, s.stride_w, dst);
            dst += n_row;
            q += n_row;
          }
        }
        j += len;
      }
    }
    isa->interleave(row_ptrs, chunk_cols, 1, 0, 0, !x_unsigned,
                    panel + b * chunk_cols * kPackedColumnBytes);
  }
}

// How a GEMM-path run is cut into jobs and buffers.
struct ConvInt8::Impl::GemmPlan {
  // Packed input units: (sample, group) panels, or (group, column chunk) for pointwise.
  int64_t units = 0, chunk_cols = 0, nchunks = 0, total_cols = 0;
  JobSplit split{};
  int64_t max_job_rows = 0;  // output channels of one job
  int64_t ncols = 0;         // panel columns, multiple of the column step
  int64_t wide_cols = 0;     // columns of accumulators produced and emitted at once
  int64_t panel_bytes = 0, planes_buf_bytes = 0, zero_bytes = 0;
};

ConvInt8::Impl::GemmPlan ConvInt8::Impl::plan_gemm(int64_t N) const {
  const bool pointwise = path == ConvPath::PointwiseGemm;
  const int threads = omp_get_max_threads();
  GemmPlan p;
  if (pointwise) {
    // Column chunks small enough for L2, balanced, and enough for all threads if possible.
    constexpr int64_t kPanelBytes = 256 * 1024;
    const int64_t cache_cols =
        std::max<int64_t>(1, kPanelBytes / (padded_blocks * kPackedColumnBytes));
    p.total_cols = N * s.OH() * s.OW();
    p.nchunks = std::max<int64_t>(threads, ceil_div(p.total_cols, cache_cols));
    p.chunk_cols = round_up(ceil_div(p.total_cols, p.nchunks), isa->gemm_cols);
    p.nchunks = ceil_div(p.total_cols, p.chunk_cols);
    p.units = s.groups * p.nchunks;
    p.ncols = p.chunk_cols;
    p.panel_bytes = padded_blocks * p.chunk_cols * kPackedColumnBytes;
    p.planes_buf_bytes = isa->channels_per_step * p.chunk_cols;
  } else {
    p.units = N * s.groups;
    p.ncols = planes.ncols;
    p.panel_bytes = planes.bytes;
    p.planes_buf_bytes = s.stride_w == 1 ? 0 : isa->channels_per_step * planes.cells;
    p.zero_bytes = planes.cells;
  }
  p.split = split_jobs(p.units, ktiles);
  p.max_job_rows = ceil_div(ktiles, p.split.kchunks) * isa->gemm_rows;
  // The accumulators of a job's rows are produced and emitted in column chunks that fit L2.
  constexpr int64_t kWideBytes = 256 * 1024;
  const int64_t tile_cols = isa->gemm_tile_cols;
  p.wide_cols = std::min(
      p.ncols, std::max(tile_cols, kWideBytes / (p.max_job_rows * 4) / tile_cols * tile_cols));
  return p;
}

void ConvInt8::Impl::run_gemm(int64_t N, const uint8_t* x, const OutputSink& out) const {
  const bool pointwise = path == ConvPath::PointwiseGemm;
  const int64_t G = s.groups, Kg = s.outputs_per_group(), rows = isa->gemm_rows;
  const int64_t plane = s.OH() * s.OW(), in_sample = s.C * s.H * s.W;
  const GemmPlan p = plan_gemm(N);
  const JobSplit& split = p.split;
  const std::vector<int64_t> pointwise_taps{0};
  const int64_t* tap_offset = pointwise ? pointwise_taps.data() : planes.tap_offset.data();
  const int64_t ntaps = pointwise ? 1 : s.R * s.S;
  const int64_t block_stride = pointwise ? p.chunk_cols * kPackedColumnBytes : planes.block_stride;
  const bool gemm_shaped = pointwise && plane == 1;
  // The VNNI kernel sweeps the columns once per call: one call per k tile then leaves only that
  // tile's rows of accumulators (8 x the chunk) to emit, read back from L1 rather than L2, when
  // the activations of a column chunk stay in L1 for the next tile's sweep.
  const int64_t max_tap = *std::max_element(tap_offset, tap_offset + ntaps);
  const int64_t chunk_act_bytes = padded_blocks * (p.wide_cols * kPackedColumnBytes + max_tap);
  const bool per_tile = isa->gemm_panel == avx512::gemm_panel && chunk_act_bytes <= 32 * 1024;
  const int64_t tiles_per_call = per_tile ? 1 : ktiles;
  // Requantized output straight from amx::gemm_panel's tiles; per-channel scales as a table in
  // the C tiles' layout (row r of k tile kt: output channel kt * 16 + r).
  const bool tile_epilogue = !out.acc && !run_begin.empty();
  AlignedVector<FixedPointMultiplier> scale_table;
  if (tile_epilogue && out.per_channel()) {
    scale_table.resize(G * ktiles * 256);
    for (int64_t g = 0; g < G; ++g)
      for (int64_t kt = 0; kt < ktiles; ++kt)
        for (int64_t r = 0; r < 16; ++r) {
          const int64_t k = g * Kg + std::min(kt * 16 + r, Kg - 1);
          std::fill_n(scale_table.data() + ((g * ktiles + kt) * 16 + r) * 16, 16, *out.scale_of(k));
        }
  }

  ParallelGuard guard;  // scratch and the segment lists allocate
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(split.threads, split.jobs)))
  {
    Scratch<uint8_t> panel, planes_buf, zeros, row_bytes, cell_panel;
    Scratch<int32_t> wide, column;
    guard.run([&] {
      panel = scratch<uint8_t>(p.panel_bytes);
      if (cells) {
        cell_panel = scratch<uint8_t>(cells_panel_bytes);
        std::memset(cell_panel.get(), padding_byte(), cells_panel_bytes);
      }
      planes_buf = scratch<uint8_t>(p.planes_buf_bytes);
      zeros = scratch<uint8_t>(p.zero_bytes);
      wide = scratch<int32_t>(p.max_job_rows * p.wide_cols);
      row_bytes = scratch<uint8_t>(p.wide_cols);
      column = scratch<int32_t>(p.max_job_rows);
      std::memset(panel.get(), padding_byte(), p.panel_bytes);
      std::memset(planes_buf.get(), 0, p.planes_buf_bytes);
      std::memset(zeros.get(), 0, p.zero_bytes);
    });
    std::vector<Segment> segments, clipped;
    int64_t packed_unit = -1, base = 0, first_col = 0, valid_cols = 0;
#pragma omp for schedule(static)
    for (int64_t job = 0; job < split.jobs; ++job) guard.run([&] {
      const int64_t unit = job / split.kchunks, kchunk = job % split.kchunks;
      const int64_t g = pointwise ? unit / p.nchunks : unit % G;
      if (unit != packed_unit) {
        packed_unit = unit;
        if (pointwise) {
          first_col = (unit % p.nchunks) * p.chunk_cols;
          valid_cols = std::min(p.total_cols, first_col + p.chunk_cols) - first_col;
          pack_pointwise(x, g, first_col, first_col + valid_cols, p.chunk_cols, planes_buf.get(),
                         panel.get());
          pointwise_segments(first_col, valid_cols, plane, s.K, &segments);
        } else {
          const int64_t n = unit / G;
          pack_implicit(x + n * in_sample, g, zeros.get(), planes_buf.get(), panel.get());
          if (cells)
            amx::pack_cells(panel.get(), cells_src_stride, cells_kd, cells_steps, cells_count,
                            cells_step_stride, cell_panel.get());
          base = n * s.K * plane;
        }
      }
      const int64_t kt_begin = kchunk * ktiles / split.kchunks;
      const int64_t kt_end = (kchunk + 1) * ktiles / split.kchunks;
      for (int64_t q0 = 0; q0 < p.ncols; q0 += p.wide_cols) {
        const int64_t qn = std::min(p.wide_cols, p.ncols - q0);
        if (!gemm_shaped)
          clip_segments(pointwise ? segments : plane_segments, q0, q0 + qn, &clipped);
        for (int64_t kt = kt_begin; kt < kt_end; kt += tiles_per_call) {
          const int64_t nt = std::min(tiles_per_call, kt_end - kt);
          const int64_t t_tile = g * ktiles + kt, t_k0 = g * Kg + kt * rows;
          const int64_t t_rows = std::min((kt + nt) * rows, Kg) - kt * rows;
          GemmPanelArgs args{packed_weights.data() + t_tile * weight_tile_bytes,
                                   weight_tile_bytes,
                                   init.data() + t_tile * rows,
                                   nt,
                                   panel.get() + q0 * kPackedColumnBytes,
                                   tap_offset,
                                   ntaps,
                                   padded_blocks,
                                   blocks_per_step,
                                   block_stride,
                                   qn,
                                   wide.get(),
                                   qn};
          TileEpilogue epilogue;
          if (tile_epilogue) {
            epilogue = {out.requantize_run,
                        out.per_channel() ? scale_table.data() + t_tile * 256 : out.scale_of(0),
                        out.per_channel(),
                        out.lo,
                        out.hi,
                        out.y + base + t_k0 * plane,
                        plane,
                        t_rows,
                        q0 / 16,
                        run_begin.data(),
                        out_runs.data()};
            args.epilogue = &epilogue;
          }
          if (cells) {
            const int64_t steps = cells_steps;
            amx::GemmCellsArgs cargs{
                cells_weights.data() + t_tile * cells_weight_tile_bytes,
                cells_weight_tile_bytes,
                cells_init.data() + t_tile * 256,
                nt,
                cell_panel.get() + q0 * cell_bytes,
                cells_step_stride,
                steps,
                group_offset.data(),
                static_cast<int64_t>(group_offset.size()),
                cell_bytes,
                fold,
                qn,
                wide.get(),
                qn,
                nt * cells_weight_tile_bytes > steps * cells_step_stride};
            cargs.epilogue = args.epilogue;
            amx::gemm_cells(cargs);
          } else {
            isa->gemm_panel(args);
          }
          if (tile_epilogue) continue;
          if (gemm_shaped) {
            const int64_t valid = std::min(qn, valid_cols - q0);
            emit_columns(wide.get(), qn, t_k0, t_rows, first_col + q0, valid, s.K, out,
                         column.get());
          } else {
            emit_rows(wide.get(), qn, t_k0, t_rows, clipped, base, plane, out, row_bytes.get());
          }
        }
      }
    });
  }
  guard.rethrow();
}

// One plane per (sample, channel): copied into a padded buffer (whose padding cells are set once
// per thread), convolved into its OH * OW accumulators, which are the output plane as it is
// (NCHW), and requantized in one run. Each thread takes a contiguous range of planes as a
// software pipeline over two buffers: plane i + 1 is copied in and plane i - 1 requantized around
// the convolution of plane i, so no load reads bytes that a (masked, not forwardable) store has
// just written.
constexpr int64_t kDepthwiseBatchValues = 512;

void ConvInt8::Impl::run_depthwise_vnni(int64_t N, const uint8_t* x,
                                        const OutputSink& out) const {
  const int64_t in_plane = s.H * s.W, plane = s.OH() * s.OW(), total = N * s.K;
  const bool x_signed = !x_unsigned;
  ParallelGuard guard;  // scratch allocates
#pragma omp parallel
  guard.run([&] {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t begin = total * t / threads, end = total * (t + 1) / threads;
    if (begin == end) return;
    Scratch<uint8_t> buffers = scratch<uint8_t>(2 * dw.buffer_bytes);
    // With one scale for all channels, `batch` consecutive planes (contiguous in the NCHW
    // output) are requantized in one run: for small planes (7x7, 14x14) the per-plane calls
    // were most of the time. Accumulators: two slots of `batch` planes, alternating.
    const int64_t batch =
        !out.acc && !out.per_channel() ? std::max<int64_t>(1, kDepthwiseBatchValues / plane) : 1;
    Scratch<int32_t> accs = scratch<int32_t>(out.acc ? 0 : 2 * batch * plane);
    std::memset(buffers.get(), x_signed ? 0x80 : 0, 2 * dw.buffer_bytes);
    // Output plane nc = (n, k) reads input plane in(nc): (n, k) itself, or n when C == 1 (then
    // copied once for its K outputs). Buffers alternate with the input plane.
    auto in = [&](int64_t nc) { return single_input ? nc / s.K : nc; };
    auto buffer = [&](int64_t nc) { return buffers.get() + (in(nc) & 1) * dw.buffer_bytes; };
    auto acc = [&](int64_t nc) {
      return out.acc ? out.acc + nc * plane : accs.get() + ((nc - begin) % (2 * batch)) * plane;
    };
    auto copy_in = [&](int64_t nc) {
      avx512::copy_rows_flip(x + in(nc) * in_plane, s.H, s.W, dw.Wp, x_signed,
                             buffer(nc) + s.pad_top * dw.Wp + s.pad_left);
    };
    auto emit = [&](int64_t first, int64_t count) {  // planes of one slot
      if (!out.acc && count > 0)
        out.requantize_run(acc(first), count * plane, out.scale_of(first % s.K), false, out.lo,
                           out.hi, out.y + first * plane);
    };
    copy_in(begin);
    for (int64_t nc = begin; nc < end; ++nc) {
      if (nc + 1 < end && in(nc + 1) != in(nc)) copy_in(nc + 1);
      const int64_t c = nc % s.K;
      const DepthwiseVnniArgs args{buffer(nc),
                                   s.dil_h * dw.Wp,
                                   s.R,
                                   dw.quads,
                                   dw.narrow,
                                   static_cast<int64_t>(dw.base.size()),
                                   dw.base.data(),
                                   dw.index.data(),
                                   dw.first.data(),
                                   dw.weights.data() + c * s.R * dw.quads,
                                   dw.init[c],
                                   acc(nc)};
      avx512::depthwise_vnni(args);
      // Slot j (planes begin + j batch ...) is requantized once slot j + 1 is complete.
      const int64_t done = nc + 1 - begin;
      if (done % batch == 0 && done >= 2 * batch) emit(nc + 1 - 2 * batch, batch);
    }
    const int64_t full = (end - begin) / batch;
    if (full >= 1) emit(begin + (full - 1) * batch, batch);
    emit(begin + full * batch, (end - begin) % batch);
  });
  guard.rethrow();
}

void ConvInt8::Impl::run_depthwise(int64_t N, const uint8_t* x, const OutputSink& out) const {
  if (depthwise_vnni) return run_depthwise_vnni(N, x, out);
  const int64_t taps = s.R * s.S, in_plane = s.H * s.W, plane = s.OH() * s.OW();
  ParallelGuard guard;  // scratch allocates
#pragma omp parallel
  {
    Scratch<uint8_t> panel, row_bytes;
    Scratch<int32_t> wide;
    guard.run([&] {
      panel = scratch<uint8_t>(planes.bytes);
      wide = scratch<int32_t>(planes.ncols);
      row_bytes = scratch<uint8_t>(planes.ncols);
      std::memset(panel.get(), 0, planes.bytes);
    });
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < N * s.C; ++nc) guard.run([&] {
      const int64_t n = nc / s.C, c = nc % s.C;
      copy_interior(s, planes, x + nc * in_plane, panel.get());
      const DepthwiseArgs args{panel.get(),
                               !x_unsigned,
                               planes.tap_offset.data(),
                               depthwise_weights.data() + c * taps,
                               taps,
                               bias[c],
                               planes.ncols,
                               wide.get()};
      isa->depthwise(args);
      emit_rows(wide.get(), planes.ncols, c, 1, plane_segments, n * s.K * plane, plane, out,
                row_bytes.get());
    });
  }
  guard.rethrow();
}

ConvInt8::ConvInt8(const Conv2dShape& shape, const int8_t* weights, const int32_t* bias,
                   bool x_unsigned)
    : impl_(std::make_unique<Impl>(shape, weights, bias, x_unsigned)) {}

ConvInt8::~ConvInt8() = default;

void ConvInt8::run(int64_t N, const void* x, int32_t* acc) const {
  OutputSink out;
  out.acc = acc;
  impl_->run(N, static_cast<const uint8_t*>(x), out);
}

void ConvInt8::run_requantized(int64_t N, const void* x, const RequantParams& rq, void* y) const {
  check_requant_params(impl_->s.K, rq);
  OutputSink out;
  out.y = static_cast<uint8_t*>(y);
  RequantStage stage = requant_stage_for(impl_->level, rq.scale);
  out.requantize_run = stage.run;
  out.scale = std::move(stage.scale);
  out.lo = rq.lo;
  out.hi = rq.hi;
  impl_->run(N, static_cast<const uint8_t*>(x), out);
}

const Conv2dShape& ConvInt8::shape() const { return impl_->s; }

}  // namespace apl::kernels
