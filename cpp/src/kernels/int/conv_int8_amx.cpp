// AMX-INT8 GEMM of ConvInt8 (see conv_int8.cpp for the packed layouts). TDPBSUD multiplies a
// tile of int8 weights (A: 16 output channels x kd channel blocks of 4 bytes) by a tile of the
// uint8 packed activations (B: kd channel blocks x 16 columns of 4 bytes) into 16 x 16 int32
// accumulators. B's rows are the panel's channel blocks at the same columns, block_stride apart,
// so the VNNI panel is read as it is; A tiles are the weights as pack_gemm_weights lays them out
// for kd blocks per step. Like vpdpbusd, every product and sum is exact modulo 2^32 (no
// saturation), so the int32 results equal the scalar reference's.
//
// Tiles: C0..C3 accumulators (2 k tiles x 2 column tiles), A4/A5 weights, B6/B7 activations.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "int_kernels_isa.hpp"

namespace apl::kernels::amx {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles(int64_t kd) {
  TileConfig cfg;
  for (int t = 0; t < 4; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  for (int t = 4; t < 6; ++t) cfg.rows[t] = 16, cfg.colsb[t] = static_cast<uint16_t>(4 * kd);
  for (int t = 6; t < 8; ++t) cfg.rows[t] = static_cast<uint8_t>(kd), cfg.colsb[t] = 64;
  _tile_loadconfig(&cfg);
}

// Rows kt * 16 ... of `init` broadcast along 16 columns: the starting C tiles.
void broadcast_init(const int32_t* init, int64_t ktiles, int32_t* tiles) {
  for (int64_t r = 0; r < ktiles * kGemmRows; ++r)
    for (int j = 0; j < 16; ++j) tiles[r * 16 + j] = init[r];
}

// Output channels of k tiles kt (and kt + 1 when KTiles == 2), columns q0 (and q0 + 16).
template <int KTiles, int ColTiles>
void tile_block(const GemmPanelArgs& a, const int32_t* init_tiles, int64_t kt, int64_t q0) {
  const int64_t kd = a.blocks_per_step, steps = a.nblocks / kd;
  const int64_t a_stride = 4 * kd, a_bytes = kGemmRows * a_stride;
  constexpr int64_t kInitStride = 64;
  const int32_t* init0 = init_tiles + kt * 256;
  _tile_loadd(0, init0, kInitStride);
  if constexpr (ColTiles == 2) _tile_loadd(1, init0, kInitStride);
  if constexpr (KTiles == 2) {
    _tile_loadd(2, init0 + 256, kInitStride);
    if constexpr (ColTiles == 2) _tile_loadd(3, init0 + 256, kInitStride);
  }
  const uint8_t* w0 = a.weights + kt * a.weight_tile_bytes;
  const uint8_t* w1 = w0 + a.weight_tile_bytes;
  for (int64_t step = 0; step < steps; ++step) {
    const uint8_t* blocks = a.act + step * kd * a.block_stride + q0 * kPackedColumnBytes;
    for (int64_t t = 0; t < a.ntaps; ++t, w0 += a_bytes, w1 += a_bytes) {
      const uint8_t* x = blocks + a.tap_offset[t];
      _tile_loadd(6, x, a.block_stride);
      if constexpr (ColTiles == 2) _tile_loadd(7, x + 64, a.block_stride);
      _tile_loadd(4, w0, a_stride);
      _tile_dpbsud(0, 4, 6);
      if constexpr (ColTiles == 2) _tile_dpbsud(1, 4, 7);
      if constexpr (KTiles == 2) {
        _tile_loadd(5, w1, a_stride);
        _tile_dpbsud(2, 5, 6);
        if constexpr (ColTiles == 2) _tile_dpbsud(3, 5, 7);
      }
    }
  }
  const int64_t ldo_bytes = a.ldo * 4;
  int32_t* out0 = a.out + kt * kGemmRows * a.ldo + q0;
  _tile_stored(0, out0, ldo_bytes);
  if constexpr (ColTiles == 2) _tile_stored(1, out0 + 16, ldo_bytes);
  if constexpr (KTiles == 2) {
    int32_t* out1 = out0 + kGemmRows * a.ldo;
    _tile_stored(2, out1, ldo_bytes);
    if constexpr (ColTiles == 2) _tile_stored(3, out1 + 16, ldo_bytes);
  }
}

template <int ColTiles>
void column_block(const GemmPanelArgs& a, const int32_t* init_tiles, int64_t q0) {
  int64_t kt = 0;
  for (; kt + 2 <= a.ktiles; kt += 2) tile_block<2, ColTiles>(a, init_tiles, kt, q0);
  if (kt < a.ktiles) tile_block<1, ColTiles>(a, init_tiles, kt, q0);
}

template <int KTiles>
void row_block(const GemmPanelArgs& a, const int32_t* init_tiles, int64_t kt) {
  int64_t q0 = 0;
  for (; q0 + kGemmCols <= a.ncols; q0 += kGemmCols) tile_block<KTiles, 2>(a, init_tiles, kt, q0);
  for (; q0 < a.ncols; q0 += kGemmColumnStep) tile_block<KTiles, 1>(a, init_tiles, kt, q0);
}

}  // namespace

void gemm_panel(const GemmPanelArgs& args) {
  thread_local std::vector<int32_t> init_tiles;
  init_tiles.resize(args.ktiles * kGemmRows * 16);
  broadcast_init(args.init, args.ktiles, init_tiles.data());
  configure_tiles(args.blocks_per_step);
  // Stream the larger operand once: with more weight bytes than panel bytes (small images, many
  // channels: ResNet-18's last stages) the k tiles are the outer loop and the panel stays in L2.
  const int64_t weight_bytes = args.ktiles * args.weight_tile_bytes;
  const int64_t panel_bytes = args.nblocks * args.block_stride;
  if (weight_bytes > panel_bytes) {
    int64_t kt = 0;
    for (; kt + 2 <= args.ktiles; kt += 2) row_block<2>(args, init_tiles.data(), kt);
    if (kt < args.ktiles) row_block<1>(args, init_tiles.data(), kt);
  } else {
    int64_t q0 = 0;
    for (; q0 + kGemmCols <= args.ncols; q0 += kGemmCols)
      column_block<2>(args, init_tiles.data(), q0);
    for (; q0 < args.ncols; q0 += kGemmColumnStep) column_block<1>(args, init_tiles.data(), q0);
  }
  _tile_release();  // back to the init state: cheap context switches for this thread
}

}  // namespace apl::kernels::amx
