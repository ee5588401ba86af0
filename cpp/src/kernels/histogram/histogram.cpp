// Histogram of |x| and max |x|: the scalar references (one table), and the dispatching kernels. The kernel
// works tile by tile: the active SIMD level turns a tile of values into table slots
// (histogram_isa.hpp), then scalar increments count them into interleaved sub-histograms. Each
// thread has its own sub-histograms, added into the output at the end. Every level and thread
// count gives the reference's counts: the bin index is the same float32 computation everywhere
// and integer sums do not depend on their order.

#include <vector>

#include "aidge_ptq_lite/histogram.hpp"
#include "aidge_ptq_lite/simd.hpp"
#include "histogram_isa.hpp"

namespace apl::kernels {

namespace {

// Slots are computed a tile at a time into a buffer that stays in L1 beside the tables. Writing
// them to memory and reading them back with scalar loads is faster than extracting them from
// vector registers lane by lane (the extracts all compete for one shuffle port).
constexpr int64_t kTileValues = 1024;
// Counting is compute-bound and reading x memory-bound; without help they take turns, as no
// load of x is pending while a tile is counted. Prefetching this far ahead, one cache line per
// line counted, overlaps them (1.8x on 64 Mi values from DRAM).
constexpr int64_t kPrefetchValues = 2 * kTileValues;
constexpr int64_t kValuesPerLine = 64 / sizeof(float);
// Values per scheduling unit (each thread takes a contiguous run of blocks).
constexpr int64_t kBlockValues = int64_t(1) << 16;
// A table counter grows by at most the number of values counted since the last flush.
constexpr int64_t kMaxValuesPerFlush = UINT32_MAX;

float float_from_bits(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

BinSlotsFn bin_slots_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AVX512: return avx512::bin_slots;
    case SimdLevel::AVX2: return avx2::bin_slots;
    case SimdLevel::Scalar: break;
  }
  return scalar::bin_slots;
}

MaxAbsBitsFn max_abs_bits_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AVX512: return avx512::max_abs_bits;
    case SimdLevel::AVX2: return avx2::max_abs_bits;
    case SimdLevel::Scalar: break;
  }
  return scalar::max_abs_bits;
}

// Counts n values into the sub-histograms; returns max |x_i| as bits. x holds `readable` >= n
// values (the prefetch looks past the block).
uint32_t count_block(BinSlotsFn bin_slots, const float* x, int64_t n, int64_t readable, float inv_width,
                     int32_t bins, uint32_t* tables) {
  uint32_t slots[kTileValues];
  uint32_t max_bits = 0;
  for (int64_t begin = 0; begin < n; begin += kTileValues) {
    const int64_t len = std::min(kTileValues, n - begin);
    max_bits = std::max(max_bits, bin_slots(x + begin, len, inv_width, bins, slots));
    for (int64_t line = 0; line < len; line += kValuesPerLine) {
      if (begin + line + kPrefetchValues < readable) __builtin_prefetch(x + begin + line + kPrefetchValues);
      const int64_t line_end = std::min(line + kValuesPerLine, len);
#pragma GCC unroll 16
      for (int64_t i = line; i < line_end; ++i) ++tables[slots[i]];
    }
  }
  return max_bits;
}

// Adds the sub-histograms into counts (shared by the threads) and clears them.
void flush_tables(std::vector<uint32_t>& tables, int64_t bins, uint64_t* counts) {
#pragma omp critical(apl_histogram_flush)
  for (int64_t b = 0; b < bins; ++b)
    for (int k = 0; k < kSubHistograms; ++k) counts[b] += tables[b * kSubHistograms + k];
  std::fill(tables.begin(), tables.end(), 0u);
}

}  // namespace

namespace scalar {
uint32_t bin_slots(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* slots) {
  const float last_bin = static_cast<float>(bins - 1);
  uint32_t max_bits = 0;
  for (int64_t i = 0; i < n; ++i) {
    max_bits = std::max(max_bits, abs_bits(x[i]));
    slots[i] = bin_index(x[i], inv_width, last_bin) * kSubHistograms + i % kSubHistograms;
  }
  return max_bits;
}

uint32_t max_abs_bits(const float* x, int64_t n) {
  uint32_t max_bits = 0;
  for (int64_t i = 0; i < n; ++i) max_bits = std::max(max_bits, abs_bits(x[i]));
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
  const BinSlotsFn bin_slots = bin_slots_for(active_simd_level());
  uint32_t max_bits = 0;
#pragma omp parallel reduction(max : max_bits) if (n >= 4 * kBlockValues)
  {
    std::vector<uint32_t> tables(bins * kSubHistograms, 0u);
    int64_t unflushed = 0;
#pragma omp for schedule(static)
    for (int64_t begin = 0; begin < n; begin += kBlockValues) {
      const int64_t len = std::min(kBlockValues, n - begin);
      if (unflushed + len > kMaxValuesPerFlush) {
        flush_tables(tables, bins, counts);
        unflushed = 0;
      }
      max_bits = std::max(max_bits, count_block(bin_slots, x + begin, len, n - begin, inv_width,
                                                static_cast<int32_t>(bins), tables.data()));
      unflushed += len;
    }
    flush_tables(tables, bins, counts);
  }
  return float_from_bits(max_bits);
}

}  // namespace apl::kernels
