// The histogram kernel at every SIMD level this CPU supports and with 1 and 2 threads against the
// scalar reference (identical counts), bin edges checked against counts written out here, and
// the Histogram class: range growth, streaming and merging exactly equal to one whole histogram.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/histogram.hpp"
#include "aidge_ptq_lite/simd.hpp"
#include "test_support.hpp"

namespace {

using apl::Histogram;
using apl::SimdLevel;
using apl::kernels::histogram_abs_f32;
using apl::kernels::histogram_abs_f32_reference;

constexpr int64_t kBins = 2048;


std::vector<float> gaussian(std::mt19937& rng, int64_t n, float sigma = 1.f) {
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> v(n);
  for (float& e : v) e = dist(rng);
  return v;
}

// ReLU output: 70% exact zeros, the rest half-normal: most of the mass in bin 0.
std::vector<float> relu_like(std::mt19937& rng, int64_t n) {
  std::vector<float> v = gaussian(rng, n);
  std::bernoulli_distribution zero(0.7);
  for (float& e : v) e = zero(rng) ? 0.f : std::fabs(e);
  return v;
}

// Values on bin edges, just below them, above the range, huge, negative zero and subnormal.
std::vector<float> edge_values(float width) {
  std::vector<float> v;
  for (int64_t b = 0; b <= kBins + 3; ++b) {
    v.push_back(b * width);
    v.push_back(-std::nextafter(b * width, 0.f));
  }
  for (float e : {-0.f, 1e-40f, -1e-45f, 1e30f, -3.4e38f, std::numeric_limits<float>::infinity()})
    v.push_back(e);
  return v;
}

void expect_all_levels_match_reference(const std::vector<float>& x, float inv_width, int64_t bins = kBins) {
  std::vector<uint64_t> expected(bins, 0);
  const float expected_max = histogram_abs_f32_reference(x.data(), x.size(), inv_width, bins, expected.data());
  apl::test::for_each_level_and_threads([&] {
    std::vector<uint64_t> counts(bins, 0);
    const float max_abs = histogram_abs_f32(x.data(), x.size(), inv_width, bins, counts.data());
    EXPECT_EQ(counts, expected);
    if (std::isnan(expected_max))
      EXPECT_TRUE(std::isnan(max_abs));
    else
      EXPECT_EQ(max_abs, expected_max);
  });
}

Histogram histogram_of(const std::vector<float>& x, int64_t bins = kBins) {
  Histogram h(bins);
  h.add(x.data(), x.size());
  return h;
}

void expect_same(const Histogram& a, const Histogram& b) {
  EXPECT_EQ(a.range(), b.range());
  EXPECT_EQ(a.counts(), b.counts());
}

// ---- Kernel ------------------------------------------------------------------------------------

TEST(HistogramKernel, GaussianMatchesReferenceAtEveryLevel) {
  std::mt19937 rng(1);
  const std::vector<float> x = gaussian(rng, 1'000'003);
  expect_all_levels_match_reference(x, kBins / 8.f);
  expect_all_levels_match_reference(x, kBins / 3.7f);  // an inexact multiply: rounding must agree
}

TEST(HistogramKernel, SkewedMatchesReferenceAtEveryLevel) {
  std::mt19937 rng(2);
  expect_all_levels_match_reference(relu_like(rng, 2'000'001), kBins / 4.f);
  expect_all_levels_match_reference(std::vector<float>(300'007, 0.f), kBins / 4.f);
}

TEST(HistogramKernel, EdgesAndOutOfRangeMatchReferenceAtEveryLevel) {
  expect_all_levels_match_reference(edge_values(1.f / 256), 256.f);
  std::vector<float> with_nan = edge_values(1.f / 256);
  with_nan.insert(with_nan.begin() + 5, std::numeric_limits<float>::quiet_NaN());
  expect_all_levels_match_reference(with_nan, 256.f);
  const std::vector<float> coarse_edges = edge_values(0.5f);
  for (int64_t n : {0, 1, 7, 15, 17, 33})  // shorter than a vector, and vectors with tails
    expect_all_levels_match_reference(std::vector<float>(coarse_edges.begin(), coarse_edges.begin() + n), 2.f);
}

// The kernel lists bin 0 like the other bins after data with few values in bin 0, and only counts
// it after data with many: edge values, NaN and tails must come out the same after either, and
// when the data switches from one kind to the other, at any offset from a vector boundary.
TEST(HistogramKernel, EdgesAfterZerosOrGaussianMatchReferenceAtEveryLevel) {
  std::mt19937 rng(6);
  std::vector<float> edges = edge_values(1.f / 256);
  edges.insert(edges.begin() + 7, std::numeric_limits<float>::quiet_NaN());
  edges.insert(edges.end() - 3, -std::numeric_limits<float>::quiet_NaN());
  const std::vector<float> zeros(20'000, 0.f), normal = gaussian(rng, 20'000, 0.05f);
  for (const std::vector<float>* before : {&zeros, &normal})
    for (int64_t offset : {0, 1, 5, 8, 15, 16, 17}) {
      std::vector<float> x(before->begin(), before->end() - offset);
      x.insert(x.end(), edges.begin(), edges.end());
      x.insert(x.end(), before->begin(), before->begin() + 20 + offset);  // a tail, in the other mode
      expect_all_levels_match_reference(x, 256.f);
    }
}

TEST(HistogramKernel, RunsAndSwitchesMatchReferenceAtEveryLevel) {
  std::mt19937 rng(7);
  std::vector<float> x;
  // Runs of one bin (0 by exact zeros and by tiny values, a middle bin, the last bin), runs of
  // mostly-zero and of Gaussian data, each of a length no vector or tile divides.
  const std::vector<std::pair<float, int64_t>> runs = {
      {0.f, 3'001}, {1e-6f, 2'053}, {0.5f, 4'099}, {1e9f, 1'031}, {-0.f, 17}, {0.25f, 9}};
  for (int round = 0; round < 3; ++round) {
    for (const auto& [value, length] : runs) x.insert(x.end(), length, value);
    const std::vector<float> relu = relu_like(rng, 5'003), normal = gaussian(rng, 7'001);
    x.insert(x.end(), relu.begin(), relu.end());
    x.insert(x.end(), normal.begin(), normal.end());
  }
  expect_all_levels_match_reference(x, kBins / 4.f);
  expect_all_levels_match_reference(x, 1.f, 2);  // two bins: bin 0 holds most values
}

TEST(HistogramKernel, EdgeValuesLandInTheBinTheyOpen) {
  const float width = 1.f / 256;  // a power of two: edges b * width are exact
  apl::test::for_each_level_and_threads([&] {
    std::vector<float> x;
    for (int64_t b = 0; b < kBins; ++b) x.push_back(b * width);
    for (int64_t b = 1; b < kBins; ++b) x.push_back(-std::nextafter(b * width, 0.f));  // top of bin b - 1
    for (float above : {kBins * width, 1e30f, std::numeric_limits<float>::infinity()}) x.push_back(above);
    std::vector<uint64_t> counts(kBins, 0);
    const float max_abs = histogram_abs_f32(x.data(), x.size(), 1 / width, kBins, counts.data());
    std::vector<uint64_t> expected(kBins, 2);
    expected[kBins - 1] = 1 + 3;
    EXPECT_EQ(counts, expected);
    EXPECT_EQ(max_abs, std::numeric_limits<float>::infinity());
  });
}

TEST(MaxAbsKernel, MatchesReferenceAtEveryLevel) {
  std::mt19937 rng(3);
  std::vector<float> x = gaussian(rng, 1'000'003);  // several blocks, so both threads work
  x[777'777] = -9.5f;                                // the maximum is negative and far from the start
  const std::vector<float> edges = edge_values(1.f / 256);
  std::vector<float> with_nan = edges;
  with_nan.insert(with_nan.begin() + 3, -std::numeric_limits<float>::quiet_NaN());
  for (const std::vector<float>* data : std::vector<const std::vector<float>*>{&x, &edges, &with_nan})
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(15), int64_t(63), int64_t(65), int64_t(data->size())}) {
      const int64_t len = std::min<int64_t>(n, data->size());
      const float expected = apl::kernels::max_abs_f32_reference(data->data(), len);
      apl::test::for_each_level_and_threads([&] {
        const float m = apl::kernels::max_abs_f32(data->data(), len);
        if (std::isnan(expected))
          EXPECT_TRUE(std::isnan(m));
        else
          EXPECT_EQ(m, expected) << "n = " << len;
      });
    }
  EXPECT_EQ(apl::kernels::max_abs_f32_reference(x.data(), x.size()), 9.5f);
  EXPECT_EQ(apl::kernels::max_abs_f32_reference(edges.data(), edges.size()), std::numeric_limits<float>::infinity());
}

// ---- Histogram -----------------------------------------------------------------------------------

TEST(Histogram, RejectsBadBinCounts) {
  for (int64_t bins : std::vector<int64_t>{0, 1, 3, 1000, -2, int64_t(1) << 25}) EXPECT_THROW(Histogram{bins}, apl::ValueError);
  EXPECT_NO_THROW(Histogram{2});
}

TEST(Histogram, RejectsNonFiniteAndStaysUnchanged) {
  Histogram h(64);
  const std::vector<float> good = {0.5f, -3.f};
  h.add(good.data(), good.size());
  const Histogram before = h;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    const std::vector<float> small = {0.1f, bad}, large = {100.f, bad};  // within range, and growing it
    EXPECT_THROW(h.add(small.data(), small.size()), apl::ValueError);
    EXPECT_THROW(h.add(large.data(), large.size()), apl::ValueError);
    Histogram fresh(64);
    EXPECT_THROW(fresh.add(small.data(), small.size()), apl::ValueError);
  }
  expect_same(h, before);
}

TEST(Histogram, RangeIsThePowerOfTwoAboveTheMax) {
  const std::vector<std::pair<float, float>> max_and_range = {{1.f, 2.f}, {0.75f, 1.f}, {3.f, 4.f}, {1e-3f, 1.f / 512}};
  for (const auto& [max_abs, range] : max_and_range) {
    const Histogram h = histogram_of({0.f, -max_abs, max_abs / 2});
    EXPECT_EQ(h.range(), range);
    EXPECT_EQ(h.bin_width(), range / kBins);
    EXPECT_EQ(h.total(), 3u);
  }
  const Histogram zeros = histogram_of(std::vector<float>(10, 0.f));
  EXPECT_GT(zeros.range(), 0.f);
  EXPECT_EQ(zeros.counts()[0], 10u);
  EXPECT_EQ(Histogram().range(), 0.f);
}

TEST(Histogram, GrowingFoldsExactly) {
  std::mt19937 rng(3);
  // Growth by 2, by more than the bin count (everything folds into bin 0), and from all zeros.
  for (float scale : {2.f, 1e6f, 1e30f}) {
    const std::vector<float> small = gaussian(rng, 10'000), large = gaussian(rng, 10'000, scale);
    for (const std::vector<float>& first : {small, std::vector<float>(100, 0.f)}) {
      Histogram streamed(kBins);
      streamed.add(first.data(), first.size());
      streamed.add(large.data(), large.size());
      std::vector<float> whole = first;
      whole.insert(whole.end(), large.begin(), large.end());
      expect_same(streamed, histogram_of(whole));
    }
  }
}

TEST(Histogram, MergeAndStreamingEqualTheWholeForRandomSplits) {
  std::mt19937 rng(4);
  for (int trial = 0; trial < 10; ++trial) {
    // Parts with different scales, hence different ranges; some parts empty.
    std::vector<float> whole;
    std::vector<std::vector<float>> parts;
    for (int p = 0; p < 4; ++p) {
      const float scale = std::ldexp(1.f, std::uniform_int_distribution<int>(-12, 12)(rng));
      const int64_t n = std::uniform_int_distribution<int64_t>(0, 100'000)(rng);
      parts.push_back(trial % 2 ? relu_like(rng, n) : gaussian(rng, n, scale));
      whole.insert(whole.end(), parts.back().begin(), parts.back().end());
    }
    const Histogram expected = histogram_of(whole, 256);
    Histogram merged(256), streamed(256);
    for (const std::vector<float>& part : parts) {
      merged.merge(histogram_of(part, 256));
      streamed.add(part.data(), part.size());
    }
    expect_same(merged, expected);
    expect_same(streamed, expected);
    Histogram reversed(256);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) reversed.merge(histogram_of(*it, 256));
    expect_same(reversed, expected);
  }
}

TEST(Histogram, MergeRejectsDifferentBinCounts) {
  Histogram a(64), b(128);
  EXPECT_THROW(a.merge(b), apl::ValueError);
}

// ---- Clipping (the numpy oracle tests are in tests/test_clipping.py) ----------------------------

TEST(HistogramClipping, RejectsBadArguments) {
  const Histogram h = histogram_of({1.f, 2.f});
  EXPECT_THROW(apl::compute_me_clipping(h, 1, 2), apl::ValueError);
  EXPECT_THROW(apl::compute_me_clipping(h, 17, 2), apl::ValueError);
  EXPECT_THROW(apl::compute_me_clipping(h, 8, 3), apl::ValueError);
  EXPECT_THROW(apl::compute_kl_clipping(h, 0), apl::ValueError);
  EXPECT_THROW(apl::compute_me_clipping(Histogram(), 8, 2), apl::ValueError);
  EXPECT_THROW(apl::compute_kl_clipping(Histogram(), 8), apl::ValueError);
}

TEST(HistogramClipping, UniformDataIsBarelyClipped) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> x(200'000);
  for (float& e : x) e = dist(rng);
  const Histogram h = histogram_of(x);
  for (int exponent : {1, 2}) {
    const float clip = apl::compute_me_clipping(h, 8, exponent);
    EXPECT_GT(clip, 0.97f);
    EXPECT_LT(clip, 1.01f);
  }
  EXPECT_GT(apl::compute_kl_clipping(h, 8), 0.9f);
}

TEST(HistogramClipping, KlReturnsTheRangeWithFewerBinsThanLevels) {
  const Histogram h = histogram_of({0.1f, 0.3f}, 64);
  EXPECT_EQ(apl::compute_kl_clipping(h, 8), h.range());
}

}  // namespace
