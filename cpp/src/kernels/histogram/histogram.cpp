// Histogram of |x| and max |x|: the scalar references (one table), and the dispatching kernels.
// The histogram kernel works tile by tile: the active SIMD level turns a tile of values into bin
// indices (when the data is mostly in bin 0, only those of the other values, bin 0 being counted
// by vector compares; histogram_isa.hpp), then scalar increments count the listed bins into
// sub-histograms. Each thread has its own sub-histograms, added into the output at the
// end. Every level and thread count gives the reference's counts: the bin index is the same
// float32 computation everywhere and integer sums do not depend on their order.

#include <algorithm>
#include <limits>
#include <vector>

#include "aidge_ptq_lite/histogram.hpp"
#include "aidge_ptq_lite/simd.hpp"
#include "../parallel_guard.hpp"
#include "histogram_isa.hpp"

namespace apl::kernels {

namespace {

// Bins are computed a tile at a time into a buffer that stays in L1 beside the tables. Writing
// them to memory and reading them back with scalar loads is faster than extracting them from
// vector registers lane by lane (the extracts all compete for one shuffle port).
constexpr int64_t kTileValues = 1024;
// Counting is compute-bound and reading x memory-bound; without help they take turns, as no
// load of x is pending while a tile is counted. Prefetching this far ahead, one cache line per
// 16 bins counted, overlaps them (1.8x on 64 Mi values from DRAM).
constexpr int64_t kPrefetchValues = 2 * kTileValues;
constexpr int64_t kValuesPerLine = 64 / sizeof(float);
// The k-th listed bin of a tile is counted in sub-histogram k % kSubHistograms, so a run of
// values in one bin increments independent counters instead of waiting on the store-to-load
// latency of a single one. Each is a table of `bins` uint32 counters, kTablePad counters apart:
// with tables a multiple of 4 KiB apart, the counters of one bin in different tables alias for
// the memory disambiguation (same address bits 0-11), which stalls increments of a bin that
// follow each other closely (2x slower on Gaussian data).
constexpr int kSubHistograms = 4;
constexpr int64_t kTablePad = 64 / sizeof(uint32_t);
// Values per scheduling unit (each thread takes a contiguous run of blocks).
constexpr int64_t kBlockValues = int64_t(1) << 16;
// A table counter grows by at most the number of values counted since the last flush.
constexpr int64_t kMaxValuesPerFlush = UINT32_MAX;

float float_from_bits(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

TileBinsFn tile_bins_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AMX:  // AMX tiles serve the int8 GEMMs; vector kernels are AVX512 here
    case SimdLevel::AVX512: return avx512::tile_bins;
    case SimdLevel::AVX2: return avx2::tile_bins;
    case SimdLevel::Scalar: break;
  }
  return scalar::tile_bins;
}

MaxAbsMinBitsFn max_abs_min_bits_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AMX:  // AMX tiles serve the int8 GEMMs; vector kernels are AVX512 here
    case SimdLevel::AVX512: return avx512::max_abs_min_bits;
    case SimdLevel::AVX2: return avx2::max_abs_min_bits;
    case SimdLevel::Scalar: break;
  }
  return scalar::max_abs_min_bits;
}

MaxAbsBitsFn max_abs_bits_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AMX:  // AMX tiles serve the int8 GEMMs; vector kernels are AVX512 here
    case SimdLevel::AVX512: return avx512::max_abs_bits;
    case SimdLevel::AVX2: return avx2::max_abs_bits;
    case SimdLevel::Scalar: break;
  }
  return scalar::max_abs_bits;
}

// Whether a tile skips bin 0 is decided from the previous tile (neighbouring values tend to be
// alike). Packing costs about a fifth of an increment per value (Sapphire Rapids), so skipping
// pays once about a fifth of the values are in bin 0, or fewer as zeros come in runs, which
// count slower: skip from 1/8 on (Gaussian data has ~0.3% in bin 0, ReLU outputs over half).
constexpr int64_t kSkipBin0Fraction = 8;

uint32_t bin0_counted(const uint32_t* tables, int64_t stride) {
  uint32_t sum = 0;  // modulo 2^32: only differences over a tile are used
  for (int k = 0; k < kSubHistograms; ++k) sum += tables[k * stride];
  return sum;
}

// Counts n values into the sub-histograms, and those of bin 0 that are not listed into
// *in_bin0; returns max |x_i| as bits. x holds `readable` >= n values (the prefetch looks past
// the block). *skip_bin0 carries the choice for the next tile over from block to block.
uint32_t count_block(TileBinsFn tile_bins, const float* x, int64_t n, int64_t readable, float inv_width,
                     int32_t bins, uint32_t* tables, uint64_t* in_bin0, bool* skip_bin0) {
  const int64_t stride = bins + kTablePad;
  // One base pointer per sub-histogram: the unrolled increments then need no index arithmetic.
  uint32_t* sub[kSubHistograms];
  for (int k = 0; k < kSubHistograms; ++k) sub[k] = tables + k * stride;
  uint32_t listed_bins[kTileValues + kBinSlack];
  uint32_t max_bits = 0;
  for (int64_t begin = 0; begin < n; begin += kTileValues) {
    const int64_t len = std::min(kTileValues, n - begin);
    const uint32_t bin0_before = bin0_counted(tables, stride);
    const TileBins tile = tile_bins(x + begin, len, inv_width, bins, *skip_bin0, listed_bins);
    max_bits = std::max(max_bits, tile.max_bits);
    const float* ahead = x + begin + kPrefetchValues;
    const float* const ahead_end = x + std::min(readable, begin + len + kPrefetchValues);
    int64_t i = 0;
    for (; i + kValuesPerLine <= tile.listed; i += kValuesPerLine) {
      if (ahead < ahead_end) __builtin_prefetch(ahead);
      ahead += kValuesPerLine;
#pragma GCC unroll 16
      for (int64_t k = 0; k < kValuesPerLine; ++k) ++sub[k % kSubHistograms][listed_bins[i + k]];
    }
    for (; i < tile.listed; ++i) ++sub[i % kSubHistograms][listed_bins[i]];
    // The lines not prefetched yet: fewer values were listed than read.
    for (; ahead < ahead_end; ahead += kValuesPerLine) __builtin_prefetch(ahead);
    *in_bin0 += len - tile.listed;
    const int64_t tile_bin0 = len - tile.listed + (bin0_counted(tables, stride) - bin0_before);
    *skip_bin0 = tile_bin0 * kSkipBin0Fraction >= len;
  }
  return max_bits;
}

// Adds the sub-histograms and the bin-0 count into counts (shared by the threads) and clears them.
void flush_tables(std::vector<uint32_t>& tables, uint64_t& in_bin0, int64_t bins, uint64_t* counts) {
#pragma omp critical(apl_histogram_flush)
  {
    counts[0] += in_bin0;
    for (int k = 0; k < kSubHistograms; ++k)
      for (int64_t b = 0; b < bins; ++b) counts[b] += tables[k * (bins + kTablePad) + b];
  }
  std::fill(tables.begin(), tables.end(), 0u);
  in_bin0 = 0;
}

}  // namespace

namespace scalar {
TileBins tile_bins(const float* x, int64_t n, float inv_width, int32_t bins, bool skip_bin0, uint32_t* out) {
  const float last_bin = static_cast<float>(bins - 1);
  uint32_t max_bits = 0;
  int64_t listed = 0;
  for (int64_t i = 0; i < n; ++i) {
    max_bits = std::max(max_bits, abs_bits(x[i]));
    // Branch-free packing: the bin is always stored, and kept unless it is a skipped 0.
    out[listed] = bin_index(x[i], inv_width, last_bin);
    listed += !skip_bin0 || out[listed] != 0;
  }
  return {max_bits, listed};
}

uint32_t max_abs_bits(const float* x, int64_t n) {
  uint32_t max_bits = 0;
  for (int64_t i = 0; i < n; ++i) max_bits = std::max(max_bits, abs_bits(x[i]));
  return max_bits;
}

uint32_t max_abs_min_bits(const float* x, int64_t n, float* min) {
  uint32_t max_bits = 0;
  float lo = x[0];
  for (int64_t i = 0; i < n; ++i) {
    max_bits = std::max(max_bits, abs_bits(x[i]));
    lo = x[i] < lo ? x[i] : lo;
  }
  *min = lo;
  return max_bits;
}
}  // namespace scalar

float max_abs_f32_reference(const float* x, int64_t n) { return float_from_bits(scalar::max_abs_bits(x, n)); }

float max_abs_f32(const float* x, int64_t n) {
  const MaxAbsBitsFn max_abs_bits = max_abs_bits_for(active_simd_level());
  uint32_t max_bits = 0;
#pragma omp parallel for reduction(max : max_bits) schedule(static) if (n >= 4 * kBlockValues)
  for (int64_t begin = 0; begin < n; begin += kBlockValues)
    max_bits = std::max(max_bits, max_abs_bits(x + begin, std::min(kBlockValues, n - begin)));
  return float_from_bits(max_bits);
}

float max_abs_min_f32_reference(const float* x, int64_t n, float* min) {
  *min = n > 0 ? *std::min_element(x, x + n) : 0.f;
  return max_abs_f32_reference(x, n);
}

float max_abs_min_f32(const float* x, int64_t n, float* min) {
  if (n <= 0) {
    *min = 0.f;
    return 0.f;
  }
  const MaxAbsMinBitsFn max_abs_min_bits = max_abs_min_bits_for(active_simd_level());
  uint32_t max_bits = 0;
  float lo = std::numeric_limits<float>::infinity();
#pragma omp parallel for reduction(max : max_bits) reduction(min : lo) schedule(static) if (n >= 4 * kBlockValues)
  for (int64_t begin = 0; begin < n; begin += kBlockValues) {
    float block_min;
    max_bits = std::max(max_bits, max_abs_min_bits(x + begin, std::min(kBlockValues, n - begin), &block_min));
    lo = std::min(lo, block_min);
  }
  // The minimum by value is the minimum element except for the sign of zero: std::min_element
  // gives the first of the values equal to it, -0 and +0 being equal.
  if (lo == 0.f) lo = *std::find(x, x + n, 0.f);
  *min = lo;
  return float_from_bits(max_bits);
}

float histogram_abs_f32_reference(const float* x, int64_t n, float inv_width, int64_t bins,
                                  uint64_t* counts) {
  const float last_bin = static_cast<float>(bins - 1);
  uint32_t max_bits = 0;
  for (int64_t i = 0; i < n; ++i) {
    max_bits = std::max(max_bits, abs_bits(x[i]));
    ++counts[bin_index(x[i], inv_width, last_bin)];
  }
  return float_from_bits(max_bits);
}

float histogram_abs_f32(const float* x, int64_t n, float inv_width, int64_t bins, uint64_t* counts) {
  const TileBinsFn tile_bins = tile_bins_for(active_simd_level());
  uint32_t max_bits = 0;
  ParallelGuard guard;  // the per-thread tables allocate
#pragma omp parallel reduction(max : max_bits) if (n >= 4 * kBlockValues)
  {
    std::vector<uint32_t> tables;
    guard.run([&] { tables.assign((bins + kTablePad) * kSubHistograms, 0u); });
    uint64_t in_bin0 = 0;
    bool skip_bin0 = false;
    int64_t unflushed = 0;
#pragma omp for schedule(static)
    for (int64_t begin = 0; begin < n; begin += kBlockValues) {
      if (guard.failed()) continue;  // every thread still runs the loop, as OpenMP requires
      const int64_t len = std::min(kBlockValues, n - begin);
      if (unflushed + len > kMaxValuesPerFlush) {
        flush_tables(tables, in_bin0, bins, counts);
        unflushed = 0;
      }
      max_bits = std::max(max_bits, count_block(tile_bins, x + begin, len, n - begin, inv_width,
                                                static_cast<int32_t>(bins), tables.data(), &in_bin0, &skip_bin0));
      unflushed += len;
    }
    if (!tables.empty()) flush_tables(tables, in_bin0, bins, counts);
  }
  guard.rethrow();
  return float_from_bits(max_bits);
}

}  // namespace apl::kernels
