// AMX-INT8 GEMM of ConvInt8 (see conv_int8.cpp for the packed layouts). TDPBSUD multiplies a
// tile of int8 weights (A: 16 output channels x kd channel blocks of 4 bytes) by a tile of the
// uint8 packed activations (B: kd channel blocks x 16 columns of 4 bytes) into 16 x 16 int32
// accumulators. B's rows are the panel's channel blocks at the same columns, block_stride apart,
// so the VNNI panel is read as it is; A tiles are the weights as pack_gemm_weights lays them out
// for kd blocks per step. Like vpdpbusd, every product and sum is exact modulo 2^32 (no
// saturation), so the int32 results equal the scalar reference's.
//
// Tiles: C0..C3 accumulators (2 k tiles x 2 column tiles), A4/A5 weights, B6/B7 activations.
// GCC 12 falsely flags the _mm512_undefined_* inside the intrinsics (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
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

// A stored C tile of k tile kt (of the call) at columns q0 .. q0 + 15: requantized and written.
void emit_tile(const TileEpilogue& e, const int32_t* acc, int64_t kt, int64_t q0) {
  alignas(64) uint8_t bytes[256];
  e.run(acc, 256, e.per_lane ? e.scale + kt * 256 : e.scale, e.per_lane, e.lo, e.hi, bytes);
  const int64_t t = e.col_tile0 + q0 / 16;
  const int64_t rows = std::min<int64_t>(16, e.rows - kt * 16);
  const __m128i iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  uint8_t* y = e.y + kt * 16 * e.plane;
  for (int32_t i = e.run_begin[t]; i < e.run_begin[t + 1]; ++i) {
    const OutRun& run = e.runs[i];
    const __m128i index = _mm_add_epi8(iota, _mm_set1_epi8(static_cast<char>(run.first)));
    const __mmask16 mask = static_cast<__mmask16>((1u << run.len) - 1);
    uint8_t* dst = y + run.dst;
    for (int64_t r = 0; r < rows; ++r) {
      const __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(bytes + 16 * r));
      _mm_mask_storeu_epi8(dst + r * e.plane, mask, _mm_shuffle_epi8(v, index));
    }
  }
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
  if (a.epilogue) {
    alignas(64) int32_t buf[4][256];
    _tile_stored(0, buf[0], 64);
    if constexpr (ColTiles == 2) _tile_stored(1, buf[1], 64);
    if constexpr (KTiles == 2) {
      _tile_stored(2, buf[2], 64);
      if constexpr (ColTiles == 2) _tile_stored(3, buf[3], 64);
    }
    emit_tile(*a.epilogue, buf[0], kt, q0);
    if constexpr (ColTiles == 2) emit_tile(*a.epilogue, buf[1], kt, q0 + 16);
    if constexpr (KTiles == 2) {
      emit_tile(*a.epilogue, buf[2], kt + 1, q0);
      if constexpr (ColTiles == 2) emit_tile(*a.epilogue, buf[3], kt + 1, q0 + 16);
    }
    return;
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

// ---- Channels-last GEMM (gemm_cells) ------------------------------------------------------------

// r[i] = row i of a 16 x 16 int32 block; on return r[j] = column j.
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // Per 128-bit lane L, u[4g + j] holds column 4L + j of rows 4g .. 4g + 3.
  __m512i u[16];
  for (int g = 0; g < 16; g += 4) {
    u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i v = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);  // lanes 0, 2
    const __m512i w = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xDD);  // lanes 1, 3
    const __m512i x = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
    const __m512i y = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xDD);
    r[j] = _mm512_shuffle_i32x4(v, x, 0x88);       // lane 0 of every row group
    r[8 + j] = _mm512_shuffle_i32x4(v, x, 0xDD);   // lane 2
    r[4 + j] = _mm512_shuffle_i32x4(w, y, 0x88);   // lane 1
    r[12 + j] = _mm512_shuffle_i32x4(w, y, 0xDD);  // lane 3
  }
}

void configure_cell_tiles(int64_t a_colsb, int64_t b_rows) {
  TileConfig cfg;
  for (int t = 0; t < 4; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  for (int t = 4; t < 6; ++t) cfg.rows[t] = 16, cfg.colsb[t] = static_cast<uint16_t>(a_colsb);
  for (int t = 6; t < 8; ++t) cfg.rows[t] = static_cast<uint8_t>(b_rows), cfg.colsb[t] = 64;
  _tile_loadconfig(&cfg);
}

// A stored C tile (16 columns x 16 channels, rows of 64 bytes) transposed to out's 16 rows (ldo
// apart). The _tile_* macros name their tile register literally, so the caller stores it.
inline void store_transposed(const int32_t* tile, int32_t* out, int64_t ldo) {
  __m512i r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(tile + 16 * i);
  transpose16(r);
  for (int i = 0; i < 16; ++i) _mm512_storeu_si512(out + i * ldo, r[i]);
}

// Tiles: C0 = (column tile 0, k tile kt), C1 = (0, kt + 1), C2 = (1, kt), C3 = (1, kt + 1);
// A4 / A5 the activations of column tiles 0 / 1, B6 / B7 the weights of k tiles kt / kt + 1.
template <int KTiles, int ColTiles>
void cells_block(const GemmCellsArgs& a, int64_t kt, int64_t q0) {
  const int32_t* init0 = a.init_tiles + kt * 256;
  _tile_loadd(0, init0, 64);
  if constexpr (KTiles == 2) _tile_loadd(1, init0 + 256, 64);
  if constexpr (ColTiles == 2) {
    _tile_loadd(2, init0, 64);
    if constexpr (KTiles == 2) _tile_loadd(3, init0 + 256, 64);
  }
  const int64_t cb = a.cell_bytes, b_bytes = a.fold * cb / 4 * 64;
  const uint8_t* w0 = a.weights + kt * a.weight_tile_bytes;
  const uint8_t* w1 = w0 + a.weight_tile_bytes;
  for (int64_t st = 0; st < a.steps; ++st) {
    const uint8_t* act = a.act + st * a.step_stride + q0 * cb;
    for (int64_t g = 0; g < a.ngroups; ++g, w0 += b_bytes, w1 += b_bytes) {
      const uint8_t* x = act + a.group_offset[g];
      _tile_loadd(4, x, cb);
      _tile_loadd(6, w0, 64);
      _tile_dpbusd(0, 4, 6);
      if constexpr (KTiles == 2) {
        _tile_loadd(7, w1, 64);
        _tile_dpbusd(1, 4, 7);
      }
      if constexpr (ColTiles == 2) {
        _tile_loadd(5, x + 16 * cb, cb);
        _tile_dpbusd(2, 5, 6);
        if constexpr (KTiles == 2) _tile_dpbusd(3, 5, 7);
      }
    }
  }
  const bool direct = a.epilogue == nullptr;
  int32_t* out0 = direct ? a.out + kt * 16 * a.ldo + q0 : nullptr;
  alignas(64) int32_t buf[4][256];
  _tile_stored(0, buf[0], 64);
  if constexpr (KTiles == 2) _tile_stored(1, buf[1], 64);
  if constexpr (ColTiles == 2) {
    _tile_stored(2, buf[2], 64);
    if constexpr (KTiles == 2) _tile_stored(3, buf[3], 64);
  }
  if (!direct) {  // transposed to channel rows, then requantized and written
    for (int t = 0; t < (KTiles == 2 ? 2 : 1) * ColTiles; ++t) {
      alignas(64) int32_t rows[256];
      store_transposed(buf[KTiles == 2 ? t : 2 * t], rows, 16);  // C0, C1, C2, C3 order
      const int64_t k = kt + (KTiles == 2 ? t % 2 : 0), q = q0 + 16 * (KTiles == 2 ? t / 2 : t);
      emit_tile(*a.epilogue, rows, k, q);
    }
    return;
  }
  store_transposed(buf[0], out0, a.ldo);
  if constexpr (KTiles == 2) store_transposed(buf[1], out0 + 16 * a.ldo, a.ldo);
  if constexpr (ColTiles == 2) {
    store_transposed(buf[2], out0 + 16, a.ldo);
    if constexpr (KTiles == 2) store_transposed(buf[3], out0 + 16 * a.ldo + 16, a.ldo);
  }
}

template <int KTiles>
void cells_row(const GemmCellsArgs& a, int64_t kt) {
  int64_t q0 = 0;
  for (; q0 + 32 <= a.ncols; q0 += 32) cells_block<KTiles, 2>(a, kt, q0);
  if (q0 < a.ncols) cells_block<KTiles, 1>(a, kt, q0);
}

template <int ColTiles>
void cells_column(const GemmCellsArgs& a, int64_t q0) {
  int64_t kt = 0;
  for (; kt + 2 <= a.ktiles; kt += 2) cells_block<2, ColTiles>(a, kt, q0);
  if (kt < a.ktiles) cells_block<1, ColTiles>(a, kt, q0);
}

}  // namespace

void gemm_cells(const GemmCellsArgs& args) {
  configure_cell_tiles(args.fold * args.cell_bytes, args.fold * args.cell_bytes / 4);
  if (args.k_outer) {
    int64_t kt = 0;
    for (; kt + 2 <= args.ktiles; kt += 2) cells_row<2>(args, kt);
    if (kt < args.ktiles) cells_row<1>(args, kt);
  } else {
    int64_t q0 = 0;
    for (; q0 + 32 <= args.ncols; q0 += 32) cells_column<2>(args, q0);
    if (q0 < args.ncols) cells_column<1>(args, q0);
  }
  _tile_release();
}

void pack_cells(const uint8_t* src, int64_t block_stride, int64_t kd, int64_t steps,
                int64_t cells, int64_t step_stride, uint8_t* dst) {
  const int64_t cell_bytes = 4 * kd;
  if (kd == 1) {  // one block a step: the same bytes
    for (int64_t st = 0; st < steps; ++st)
      std::memcpy(dst + st * step_stride, src + st * block_stride, cells * 4);
    return;
  }
  if (kd == 4) {  // 4 x 16 dword transposes: 16 cells of 16 bytes from 4 block rows
    for (int64_t st = 0; st < steps; ++st) {
      const uint8_t* blocks = src + st * kd * block_stride;
      uint8_t* out = dst + st * step_stride;
      for (int64_t c = 0; c < cells; c += 16) {
        const int64_t n = std::min<int64_t>(16, cells - c);
        const __mmask16 col_mask = static_cast<__mmask16>((1u << n) - 1);
        __m512i r[4];
        for (int b = 0; b < 4; ++b)
          r[b] = _mm512_maskz_loadu_epi32(col_mask, blocks + b * block_stride + c * 4);
        // Per 128-bit lane L: u[j] = cell 4L + j (its 4 blocks).
        const __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]), t1 = _mm512_unpackhi_epi32(r[0], r[1]);
        const __m512i t2 = _mm512_unpacklo_epi32(r[2], r[3]), t3 = _mm512_unpackhi_epi32(r[2], r[3]);
        const __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
        const __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
        // o[m] = cells 4m .. 4m + 3: lane m of u0 .. u3.
        const __m512i v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
        const __m512i v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
        const __m512i o[4] = {_mm512_shuffle_i32x4(v0, v1, 0x88), _mm512_shuffle_i32x4(v0, v1, 0xDD),
                              _mm512_shuffle_i32x4(v2, v3, 0x88), _mm512_shuffle_i32x4(v2, v3, 0xDD)};
        for (int m = 0; m < 4; ++m) {
          const int64_t valid = std::min<int64_t>(4, std::max<int64_t>(0, n - 4 * m));
          if (valid == 4)
            _mm512_storeu_si512(out + (c + 4 * m) * 16, o[m]);
          else if (valid > 0)
            _mm512_mask_storeu_epi32(out + (c + 4 * m) * 16,
                                     static_cast<__mmask16>((1u << (4 * valid)) - 1), o[m]);
        }
      }
    }
    return;
  }
  const __mmask16 row_mask = static_cast<__mmask16>((1u << kd) - 1);
  for (int64_t st = 0; st < steps; ++st) {
    const uint8_t* blocks = src + st * kd * block_stride;
    uint8_t* out = dst + st * step_stride;
    for (int64_t c = 0; c < cells; c += 16) {
      const int64_t n = std::min<int64_t>(16, cells - c);
      const __mmask16 col_mask = static_cast<__mmask16>((1u << n) - 1);
      __m512i r[16];
      for (int64_t b = 0; b < 16; ++b)
        r[b] = b < kd ? _mm512_maskz_loadu_epi32(col_mask, blocks + b * block_stride + c * 4)
                      : _mm512_setzero_si512();
      transpose16(r);
      for (int64_t j = 0; j < n; ++j)
        _mm512_mask_storeu_epi32(out + (c + j) * cell_bytes, row_mask, r[j]);
    }
  }
}

void gemm_panel(const GemmPanelArgs& args) {
  thread_local std::vector<int32_t> init_storage;
  init_storage.resize(args.ktiles * kGemmRows * 16 + 16);
  int32_t* init_tiles = init_storage.data();  // 64-byte aligned (tile loads)
  while (reinterpret_cast<uintptr_t>(init_tiles) % 64) ++init_tiles;
  broadcast_init(args.init, args.ktiles, init_tiles);
  configure_tiles(args.blocks_per_step);
  // Stream the larger operand once: with more weight bytes than panel bytes (small images, many
  // channels: ResNet-18's last stages) the k tiles are the outer loop and the panel stays in L2.
  const int64_t weight_bytes = args.ktiles * args.weight_tile_bytes;
  const int64_t panel_bytes = args.nblocks * args.block_stride;
  if (weight_bytes > panel_bytes) {
    int64_t kt = 0;
    for (; kt + 2 <= args.ktiles; kt += 2) row_block<2>(args, init_tiles, kt);
    if (kt < args.ktiles) row_block<1>(args, init_tiles, kt);
  } else {
    int64_t q0 = 0;
    for (; q0 + kGemmCols <= args.ncols; q0 += kGemmCols)
      column_block<2>(args, init_tiles, q0);
    for (; q0 < args.ncols; q0 += kGemmColumnStep) column_block<1>(args, init_tiles, q0);
  }
  _tile_release();  // back to the init state: cheap context switches for this thread
}

}  // namespace apl::kernels::amx
