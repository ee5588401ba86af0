// Histogram of |x|: the scalar reference (one table), and the dispatching kernel that runs the
// active SIMD level's block loop over threads, each thread with its own sub-histograms, merged
// at the end. Every level and thread count gives the reference's counts: the bin index is the
// same float32 computation everywhere (histogram_isa.hpp) and integer sums do not depend on order.
#include <omp.h>

#include <vector>

#include "aidge_ptq_lite/histogram.hpp"
#include "aidge_ptq_lite/simd.hpp"
#include "histogram_isa.hpp"

namespace apl::kernels {

namespace {

float float_from_bits(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Values per scheduling unit (threads take contiguous runs of blocks).
constexpr int64_t kBlockValues = int64_t(1) << 16;
// A table counter grows by at most the number of values added since the last flush.
constexpr int64_t kMaxValuesPerFlush = UINT32_MAX;

HistogramBlockFn histogram_block_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AVX512: return avx512::histogram_block;
    case SimdLevel::AVX2: return avx2::histogram_block;
    case SimdLevel::Scalar: break;
  }
  return scalar::histogram_block;
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
uint32_t histogram_block(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* tables) {
  const float last_bin = static_cast<float>(bins - 1);
  uint32_t max_bits = 0;
  int64_t i = 0;
  for (; i + kSubHistograms <= n; i += kSubHistograms)
    for (int k = 0; k < kSubHistograms; ++k) {
      max_bits = std::max(max_bits, abs_bits(x[i + k]));
      ++tables[bin_index(x[i + k], inv_width, last_bin) * kSubHistograms + k];
    }
  for (; i < n; ++i) {
    max_bits = std::max(max_bits, abs_bits(x[i]));
    ++tables[bin_index(x[i], inv_width, last_bin) * kSubHistograms];
  }
  return max_bits;
}
}  // namespace scalar

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
  const HistogramBlockFn block = histogram_block_for(active_simd_level());
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
      max_bits = std::max(max_bits, block(x + begin, len, inv_width, static_cast<int32_t>(bins), tables.data()));
      unflushed += len;
    }
    flush_tables(tables, bins, counts);
  }
  return float_from_bits(max_bits);
}

}  // namespace apl::kernels
