// How close is the histogram kernel to the floor of any scatter histogram on this core?
//
//   OMP_NUM_THREADS=1 histogram_floor [rounds]
//
// kernel: kernels::histogram_abs_f32 on 64 Mi Gaussian float32 values read from DRAM, 2048 bins
//         over [0, 8) (the power-of-two range Histogram would pick), as bench_histogram.py does;
// floor:  the same number of increments ++table[k % 4][bin] over precomputed bin indices of the
//         same data that stay in L1: no reading of x, no binning, nothing but the counting, which
//         every scatter histogram has to do (about one store per value).
// Runs alternate so that the machine's other load hits both alike; medians and the per-round
// range of kernel / floor are printed. Checks the counts against the scalar reference first.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "aidge_ptq_lite/histogram.hpp"

namespace {

constexpr int64_t kValues = int64_t(64) << 20;
constexpr int64_t kBins = 2048;
constexpr float kRange = 8.0f;
constexpr int64_t kFloorIndices = 4096;  // 16 KiB of indices: they and the tables fit in L1
constexpr int kTables = 4;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// kValues increments over the kFloorIndices bins, repeated; returns a checksum so that the
// compiler keeps the work.
uint64_t count_floor(const std::vector<uint32_t>& bins, std::vector<uint32_t>& tables) {
  uint32_t* table[kTables];
  for (int t = 0; t < kTables; ++t) table[t] = tables.data() + t * (kBins + 16);
  for (int64_t done = 0; done < kValues; done += kFloorIndices) {
    const uint32_t* b = bins.data();
    for (int64_t i = 0; i < kFloorIndices; i += 16) {
#pragma GCC unroll 16
      for (int k = 0; k < 16; ++k) ++table[k % kTables][b[i + k]];
    }
  }
  uint64_t sum = 0;
  for (uint32_t c : tables) sum += c;
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 9;
  std::vector<float> x(kValues);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  const float inv_width = kBins / kRange;

  std::vector<uint64_t> counts(kBins), expected(kBins);
  apl::kernels::histogram_abs_f32_reference(x.data(), kValues, inv_width, kBins, expected.data());
  apl::kernels::histogram_abs_f32(x.data(), kValues, inv_width, kBins, counts.data());
  if (counts != expected) {
    std::fprintf(stderr, "histogram_abs_f32 differs from the scalar reference\n");
    return 1;
  }

  std::vector<uint32_t> floor_bins(kFloorIndices);
  for (int64_t i = 0; i < kFloorIndices; ++i)
    floor_bins[i] = static_cast<uint32_t>(std::min(std::fabs(x[i]) * inv_width, float(kBins - 1)));
  std::vector<uint32_t> tables(kTables * (kBins + 16));

  std::vector<double> kernel, floor, ratio;
  uint64_t checksum = 0;
  for (int r = 0; r < rounds; ++r) {
    std::fill(counts.begin(), counts.end(), 0);
    auto t0 = std::chrono::steady_clock::now();
    apl::kernels::histogram_abs_f32(x.data(), kValues, inv_width, kBins, counts.data());
    kernel.push_back(seconds_since(t0));
    std::fill(tables.begin(), tables.end(), 0u);
    t0 = std::chrono::steady_clock::now();
    checksum += count_floor(floor_bins, tables);
    floor.push_back(seconds_since(t0));
    ratio.push_back(kernel.back() / floor.back());
  }
  const double ns = 1e9 / kValues;
  std::printf("64 Mi values, %lld bins, medians of %d alternating rounds (checksum %llu)\n",
              static_cast<long long>(kBins), rounds, static_cast<unsigned long long>(checksum));
  std::printf("kernel (from DRAM)      %.3f ns/value\n", median(kernel) * ns);
  std::printf("floor (increments only) %.3f ns/value\n", median(floor) * ns);
  std::printf("kernel / floor          %.2fx (per round %.2f-%.2fx)\n", median(ratio),
              *std::min_element(ratio.begin(), ratio.end()), *std::max_element(ratio.begin(), ratio.end()));
  return 0;
}
