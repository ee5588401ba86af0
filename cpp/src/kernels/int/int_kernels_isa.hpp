// Private: the per-ISA pieces of the integer kernels. Each namespace below lives in its own
// translation unit (requantize_<isa>.cpp, conv_int8_<isa>.cpp) compiled with that ISA's flags;
// the dispatching code (requantize.cpp, conv_int8.cpp) calls them only when
// active_simd_level() allows it.
#pragma once
#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aidge_ptq_lite/kernels/int_kernels.hpp"
#include "aidge_ptq_lite/kernels/requantize.hpp"
#include "aidge_ptq_lite/simd.hpp"

namespace apl::kernels {

// Requantizes n accumulators into bytes; element i uses scale[per_lane ? i : 0]. Values are
// clamped to [lo, hi] (inside the int8 or uint8 range) before narrowing, so the low byte is the
// result for either output type.
using RequantizeRunFn = void (*)(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                                 bool per_lane, int32_t lo, int32_t hi, uint8_t* y);
RequantizeRunFn requantize_run_for(SimdLevel level);
// The same signature for single shifts: every scale used has multiplier 1 and a shift k in
// [0, 31] (only the shifts are read). The scalar run applies requantize_one in 64 bits; the SIMD
// runs stay in 32-bit lanes. For k >= 1 write acc = q * 2^k + r with q = acc >> k (arithmetic)
// and 0 <= r < 2^k; then
//   (acc + 2^(k-1)) >> k = q + [r >= 2^(k-1)] = q + bit k-1 of acc,
// and |q| <= 2^(31-k) <= 2^30, so q + 1 never overflows (unlike acc + 2^(k-1) near INT32_MAX).
// Bit k-1 is (acc >>> (k-1)) & 1 with a logical variable shift; for k == 0 the count k - 1 wraps
// to 0xFFFFFFFF and variable shifts by counts > 31 give 0, so the term vanishes and y = acc.
RequantizeRunFn shift_rescale_run_for(SimdLevel level);

// The same rescaling with a shift of at least 32 when m has the headroom: (m * 2^j, s + j)
// gives the same result for every accumulator (the product and the rounding term both scale by
// 2^j). The SIMD runs are fastest with shifts >= 32: they then work on the high 32-bit words of
// the 64-bit sums.
inline FixedPointMultiplier with_shift_at_least_32(FixedPointMultiplier fp) {
  if (fp.shift >= 32) return fp;
  const int64_t m = static_cast<int64_t>(fp.multiplier) * (int64_t(1) << (32 - fp.shift));
  if (m < INT32_MIN || m > INT32_MAX) return fp;
  return {static_cast<int32_t>(m), 32};
}

// The run and the scales it takes for a set of multipliers: the shift-rescale run on the scales
// as they are when they are all single shifts (multiplier 1, shift <= 31), else the general run
// on the scales with shifts >= 32. Shared by requantize_int32 and ConvInt8's fused output stage.
struct RequantStage {
  RequantizeRunFn run;
  std::vector<FixedPointMultiplier> scale;
};
RequantStage requant_stage_for(SimdLevel level, const std::vector<FixedPointMultiplier>& scale);
// Throws ValueError unless rq has 1 or `channels` multipliers, shifts in [0, 62] and a clamp
// range inside its output type.
void check_requant_params(int64_t channels, const RequantParams& rq);

// Packed input of the int8 GEMM: every column step holds 4 bytes per output position, either
// 4 channels as uint8 (VNNI; signed activations are stored x ^ 0x80, see conv_int8.cpp) or
// 2 channels as int16 (AVX2). Columns are consecutive 4-byte cells.
constexpr int64_t kPackedColumnBytes = 4;

// Interleaves `channels` (4 or 2) planes of raw activation bytes into packed columns: row h of
// plane c starts at planes[c] + h * src_pitch, row h of dst at cell h * dst_pitch.
using InterleaveFn = void (*)(const uint8_t* const* planes, int64_t width, int64_t height,
                              int64_t src_pitch, int64_t dst_pitch, bool x_signed, void* dst);

// The requantized output taken straight from the C tiles (amx::gemm_panel, gemm_cells): each 16 x 16 tile
// (16 output channels x 16 wide columns) is stored to an L1 buffer, requantized in one run of
// 256 and its rows' valid columns written to the output with byte-masked stores, with no int32
// round trip through a wide accumulator buffer. The runs of column tile t (global over the
// wide columns: col_tile0 + q / 16 for column q of the call) are runs[run_begin[t] ..
// run_begin[t + 1]): bytes first .. first + len - 1 of a tile row go to the channel's plane at
// dst ...
struct OutRun {
  int32_t dst;
  int16_t first, len;
};
struct TileEpilogue {
  RequantizeRunFn run;
  const FixedPointMultiplier* scale;  // per_lane: 256 per k tile (scale of row r at 16 r ...)
  bool per_lane;
  int32_t lo, hi;
  uint8_t* y;           // the output plane of the call's first row (output channel)
  int64_t plane;        // bytes between the planes of consecutive channels
  int64_t rows;         // valid rows (channels) of the call
  int64_t col_tile0;
  const int32_t* run_begin;
  const OutRun* runs;
};

// The implicit GEMM over one packed input panel for `ktiles` tiles of output channels (the
// kernel's row count each). Column tiles are the outer loop, so the panel columns being read stay
// in L1 while the weights of every tile stream past.
struct GemmPanelArgs {
  const uint8_t* weights;     // per tile: [step][tap][row][blocks_per_step][4 bytes], tiles
                              // weight_tile_bytes apart
  int64_t weight_tile_bytes;
  const int32_t* init;        // per tile and row: the accumulator's initial value
  int64_t ktiles;
  const uint8_t* act;         // packed input panel: [block][...], column q at q * 4 bytes
  const int64_t* tap_offset;  // byte offset of each kernel tap inside a block
  int64_t ntaps;
  int64_t nblocks;            // channel blocks (4 or 2 channels each), a multiple of the next
  int64_t blocks_per_step;    // channel blocks per weight step: 1, or the AMX tile depth kd
  int64_t block_stride;       // bytes
  int64_t ncols;              // multiple of the kernel's column step
  int32_t* out;               // (ktiles * rows) x ncols accumulators, row stride ldo
  int64_t ldo;
  const TileEpilogue* epilogue = nullptr;  // amx only: requantized output instead of out
};
using GemmPanelFn = void (*)(const GemmPanelArgs&);

// Depthwise convolution of one padded input plane (raw int8/uint8 bytes, one byte per column).
struct DepthwiseArgs {
  const uint8_t* plane;
  bool x_signed;
  const int64_t* tap_offset;  // byte offset of each tap
  const int32_t* tap_weight;
  int64_t ntaps;
  int32_t init;               // bias
  int64_t ncols;              // multiple of the kernel's column tile
  int32_t* out;
};
using DepthwiseFn = void (*)(const DepthwiseArgs&);

// VNNI depthwise (AVX512 and AMX levels) of one channel plane, padded but not phase-split: the
// plane is Hp rows of Wp bytes, signed activations stored x ^ 0x80 (padding 0x80), unsigned as
// they are (padding 0). The OH * OW outputs, contiguous as in NCHW, are cut into groups of up to
// 16 consecutive outputs whose inputs for one tap row lie in a 64- or 128-byte window (window
// offset base[g] in the plane, tap row r adds r * row_step). Lane j of group g, quad q holds the
// window bytes index[g][q][4j .. 4j + 3]: taps s = 4q .. 4q + 3 of the tap row (taps past S
// point at byte 0 with weight 0), so one vpdpbusd per tap row and quad adds 4 exact uint8 x
// int8 products to each lane's int32.
struct DepthwiseVnniArgs {
  const uint8_t* plane;
  int64_t row_step;           // bytes between tap rows: dil_h * Wp
  int64_t rows, quads;        // R, ceil(S / 4)
  bool narrow;                // every window fits 64 bytes (one load, vpermb)
  int64_t ngroups;
  const int64_t* base;        // per group
  const uint8_t* index;       // per group and quad: 64 bytes
  const int32_t* first;       // per group: its first output; first[ngroups] = OH * OW
  const int32_t* weights;     // per tap row and quad: 4 int8 weights
  int32_t init;               // bias, plus -128 * sum(w) for signed activations
  int32_t* out;               // OH * OW accumulators
};

namespace scalar {
void requantize_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                    bool per_lane, int32_t lo, int32_t hi, uint8_t* y);
void shift_rescale_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                       bool per_lane, int32_t lo, int32_t hi, uint8_t* y);
}  // namespace scalar

// AVX2: int16 x int16 pairs by vpmaddwd (exact: |a*b + c*d| <= 2 * 255 * 128 < 2^31).
namespace avx2 {
constexpr int kGemmRows = 4, kGemmCols = 24;  // 12 ymm accumulators
constexpr int kGemmColumnStep = 8;             // narrower tiles finish the columns
constexpr int kDepthwiseCols = 8;
void requantize_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                    bool per_lane, int32_t lo, int32_t hi, uint8_t* y);
void shift_rescale_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                       bool per_lane, int32_t lo, int32_t hi, uint8_t* y);
void interleave_i16x2(const uint8_t* const* planes, int64_t width, int64_t height,
                      int64_t src_pitch, int64_t dst_pitch, bool x_signed, void* dst);
void gemm_panel(const GemmPanelArgs& args);
void depthwise(const DepthwiseArgs& args);
}  // namespace avx2

// AVX-512 + VNNI: uint8 x int8 quads by the non-saturating vpdpbusd.
namespace avx512 {
constexpr int kGemmRows = 8, kGemmCols = 32;  // 16 zmm accumulators
constexpr int kGemmColumnStep = 16;            // narrower tiles finish the columns
constexpr int kDepthwiseCols = 16;
void requantize_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                    bool per_lane, int32_t lo, int32_t hi, uint8_t* y);
void shift_rescale_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                       bool per_lane, int32_t lo, int32_t hi, uint8_t* y);
void interleave_u8x4(const uint8_t* const* planes, int64_t width, int64_t height,
                     int64_t src_pitch, int64_t dst_pitch, bool x_signed, void* dst);
void gemm_panel(const GemmPanelArgs& args);
void depthwise(const DepthwiseArgs& args);
void depthwise_vnni(const DepthwiseVnniArgs& args);
// out[i] = in[2 * i] for i < n; reads in[0 .. 2n - 2] only.
void gather_even(const uint8_t* in, int64_t n, uint8_t* out);
// For rows r < rows of W bytes at in + r * in_pitch: even[r * out_pitch + i] = row[2i] for
// i < (W + 1) / 2 and odd[r * out_pitch + i] = row[2i + 1] for i < W / 2; reads rows only.
void split_even_odd(const uint8_t* in, int64_t W, int64_t rows, int64_t in_pitch,
                    int64_t out_pitch, uint8_t* even, uint8_t* odd);
// out[i] = the max over t < taps of in[2 i + t * dil] (bytes, signed when is_signed) for i < n:
// a stride-2 max-pool window row; reads in[0 .. 2 (n - 1) + (taps - 1) dil] only.
void max_stride2_taps(const uint8_t* in, int64_t n, int64_t taps, int64_t dil, bool is_signed,
                      uint8_t* out);
// The widening loops of widen_loops.hpp (a join's sums, a Scaling node's codes) in AVX-512.
template <class A, class B>
void widen_sum(const A* a, const B* b, int64_t n, bool subtract, int32_t* y);
template <class T> void widen(const T* x, int64_t n, int32_t* y);
// quantize_codes (int_kernels.hpp) on one run, no threads.
template <class T>
void quantize_codes(const float* x, int64_t n, double scale, double lo, double hi, T* y);
// Copies an H x W plane into the interior of a padded one (rows dst_pitch apart), each byte
// xor 0x80 when x_signed.
void copy_rows_flip(const uint8_t* src, int64_t H, int64_t W, int64_t dst_pitch, bool x_signed,
                    uint8_t* dst);
}  // namespace avx512

// AMX-INT8 tiles (TDPBSUD: int8 weights x uint8 activations) on the VNNI panel layout; every
// other piece of the AMX level (interleave, depthwise, requantization) is AVX512's.
namespace amx {
constexpr int kGemmRows = 16, kGemmCols = 32;  // 2 x 2 accumulator tiles of 16 x 16
constexpr int kGemmColumnStep = 16;            // one column tile finishes the columns
constexpr int kMaxBlocksPerStep = 16;          // 64 channels: a tile row of 64 bytes
// Below this many channel blocks the tiles would run mostly empty: such convolutions (an RGB
// first layer) keep the VNNI kernel.
constexpr int kMinBlocks = 4;
void gemm_panel(const GemmPanelArgs& args);

// Channels-last implicit GEMM (3x3 and other padded / strided convolutions at the AMX level).
// The panel holds, per step of kd channel blocks, every padded cell as one "cell" of
// cell_bytes = 4 * kd bytes (its 4 * kd channels, uint8 or x ^ 0x80): [step][cell][cell_bytes],
// steps step_stride apart. The activations are the A operand of TDPBUSD (uint8 x int8): row m
// of an A tile is wide output column q0 + m, i.e. the cell_bytes * F bytes from cell q0 + m +
// the tap group's cell offset, rows cell_bytes apart. One tap group is F taps of a tap row that
// are consecutive cells (stride-1, undilated columns; F * cell_bytes <= 64), so with few
// channels one TDPBUSD covers up to F taps; a group past the kernel's last tap reads real cells
// against zero weights. Every A row is contiguous (no straddling of the VNNI panel's 4-byte
// columns). B tiles are the weights, F * kd rows x 16 output channels x 4 bytes. The 16 x 16
// C tiles are (output column, output channel), transposed into `out` rows (channel) x columns.
struct GemmCellsArgs {
  const uint8_t* weights;      // per k tile: [step][group][F * kd rows][16 channels][4 bytes]
  int64_t weight_tile_bytes;
  const int32_t* init_tiles;   // per k tile: 16 x 16, every row the tile's 16 initial values
  int64_t ktiles;
  const uint8_t* act;          // the panel at the first column's cell
  int64_t step_stride, steps;  // bytes, count
  const int64_t* group_offset; // byte offset of each tap group's first cell
  int64_t ngroups;
  int64_t cell_bytes;          // 4 * kd
  int64_t fold;                // F
  int64_t ncols;               // multiple of 16
  int32_t* out;                // (ktiles * 16) x ncols, row stride ldo
  int64_t ldo;
  bool k_outer;                // k tiles as the outer loop (more weight bytes than panel bytes)
  const TileEpilogue* epilogue = nullptr;  // requantized output instead of out
};
void gemm_cells(const GemmCellsArgs& args);
// From a VNNI panel (channel block b of 4-byte cells at src + b * block_stride, cells of them)
// to the channels-last panel: step st's cell c = blocks st * kd ... st * kd + kd - 1 of cell c.
void pack_cells(const uint8_t* src, int64_t block_stride, int64_t kd, int64_t steps,
                int64_t cells, int64_t step_stride, uint8_t* dst);
}  // namespace amx

// Unaligned 32-bit load without aliasing concerns (compiles to one mov / broadcast operand).
inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace apl::kernels
