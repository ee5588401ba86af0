// Float kernels against naive loops written here (accumulated in double). The SIMD kernels
// (sgemm, ConvF32) run at every SIMD level this CPU supports and on 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "aidge_ptq_lite/simd.hpp"
#include "test_support.hpp"

namespace apl::kernels {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A sum computed in double with the sum of its terms' magnitudes, which bounds the float
// rounding error of any summation order.
struct ExactSum {
  std::vector<double> value, magnitude;
  explicit ExactSum(size_t n) : value(n, 0.0), magnitude(n, 0.0) {}
  void add(size_t i, double term) {
    value[i] += term;
    magnitude[i] += std::fabs(term);
  }
};

void expect_close(const std::vector<float>& actual, const ExactSum& expected,
                  double rel_tol = 1e-5) {
  ASSERT_EQ(actual.size(), expected.value.size());
  size_t failures = 0;
  for (size_t i = 0; i < actual.size() && failures < 5; ++i) {
    const double tol = rel_tol * expected.magnitude[i] + 1e-7;
    if (!(std::fabs(actual[i] - expected.value[i]) <= tol)) {
      ADD_FAILURE() << "at " << i << ": got " << actual[i] << ", expected " << expected.value[i];
      ++failures;
    }
  }
}

void expect_near_all(const std::vector<float>& actual, const std::vector<float>& expected,
                     float rel_tol = 1e-6f) {
  ASSERT_EQ(actual.size(), expected.size());
  size_t failures = 0;
  for (size_t i = 0; i < actual.size() && failures < 5; ++i) {
    const float tol = rel_tol * std::max(1.0f, std::fabs(expected[i]));
    if (!(std::fabs(actual[i] - expected[i]) <= tol) && actual[i] != expected[i]) {
      ADD_FAILURE() << "at " << i << ": got " << actual[i] << ", expected " << expected[i];
      ++failures;
    }
  }
}

// ---- SGEMM --------------------------------------------------------------------------------------

struct GemmCase {
  int64_t M, N, K;
  float alpha, beta;
  int64_t lead_pad;  // extra columns in every leading dimension
};

TEST(FloatKernelsSgemm, MatchesNaiveAtEveryLevelAndTransposition) {
  const GemmCase cases[] = {{1, 1, 1, 1.0f, 0.0f, 0},     {7, 13, 5, 1.0f, 0.0f, 3},
                            {6, 16, 9, 0.5f, 1.0f, 0},    {8, 32, 300, 1.0f, 0.0f, 0},
                            {33, 65, 513, -1.5f, 0.25f, 2}, {250, 70, 40, 1.0f, 1.0f, 1},
                            {3, 1000, 17, 2.0f, 0.0f, 0}, {64, 100, 260, 1.0f, -0.3f, 5}};
  uint32_t seed = 1;
  for (const GemmCase& g : cases)
    for (bool trans_a : {false, true})
      for (bool trans_b : {false, true}) {
        SCOPED_TRACE("M=" + std::to_string(g.M) + " N=" + std::to_string(g.N) + " K=" +
                     std::to_string(g.K) + " trans_a=" + std::to_string(trans_a) +
                     " trans_b=" + std::to_string(trans_b));
        const int64_t lda = (trans_a ? g.M : g.K) + g.lead_pad;
        const int64_t ldb = (trans_b ? g.K : g.N) + g.lead_pad;
        const int64_t ldc = g.N + g.lead_pad;
        const auto A = random_floats((trans_a ? g.K : g.M) * lda, seed++);
        const auto B = random_floats((trans_b ? g.N : g.K) * ldb, seed++);
        const auto C0 = random_floats(g.M * ldc, seed++);

        ExactSum expected(g.M * ldc);
        for (int64_t i = 0; i < g.M; ++i)
          for (int64_t j = 0; j < ldc; ++j) {
            const size_t at = i * ldc + j;
            if (j >= g.N) {  // outside C: must stay untouched
              expected.add(at, C0[at]);
              continue;
            }
            if (g.beta != 0.0f) expected.add(at, double(g.beta) * C0[at]);
            for (int64_t k = 0; k < g.K; ++k)
              expected.add(at, double(g.alpha) * (trans_a ? A[k * lda + i] : A[i * lda + k]) *
                                   (trans_b ? B[j * ldb + k] : B[k * ldb + j]));
          }

        test::for_each_level_and_threads([&] {
          std::vector<float> C = C0;
          sgemm(trans_a, trans_b, g.M, g.N, g.K, g.alpha, A.data(), lda, B.data(), ldb, g.beta,
                C.data(), ldc);
          expect_close(C, expected);
        });
        std::vector<float> C = C0;
        sgemm_reference(trans_a, trans_b, g.M, g.N, g.K, g.alpha, A.data(), lda, B.data(), ldb,
                        g.beta, C.data(), ldc);
        expect_close(C, expected);
      }
}

TEST(FloatKernelsSgemm, BetaZeroIgnoresNonFiniteC) {
  const auto A = random_floats(4 * 5, 7), B = random_floats(5 * 3, 8);
  test::for_each_level_and_threads([&] {
    std::vector<float> C(4 * 3, std::numeric_limits<float>::quiet_NaN());
    sgemm(false, false, 4, 3, 5, 1.0f, A.data(), 5, B.data(), 3, 0.0f, C.data(), 3);
    for (float v : C) EXPECT_TRUE(std::isfinite(v));
  });
}

// ---- Convolution ------------------------------------------------------------------------------

Conv2dShape conv_shape(int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                       int64_t stride, int64_t pad, int64_t dil = 1, int64_t groups = 1) {
  Conv2dShape s;
  s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = s.stride_w = stride;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = pad;
  s.dil_h = s.dil_w = dil;
  s.groups = groups;
  return s;
}

Conv2dShape with_pads(Conv2dShape s, int64_t top, int64_t left, int64_t bottom, int64_t right) {
  s.pad_top = top, s.pad_left = left, s.pad_bottom = bottom, s.pad_right = right;
  return s;
}

Conv2dShape with_strides(Conv2dShape s, int64_t stride_h, int64_t stride_w) {
  s.stride_h = stride_h, s.stride_w = stride_w;
  return s;
}

std::string describe(const Conv2dShape& s, int64_t N) {
  return "N=" + std::to_string(N) + " C=" + std::to_string(s.C) + " H=" + std::to_string(s.H) +
         " W=" + std::to_string(s.W) + " K=" + std::to_string(s.K) + " kernel " +
         std::to_string(s.R) + "x" + std::to_string(s.S) + " stride " +
         std::to_string(s.stride_h) + "," + std::to_string(s.stride_w) + " pads " +
         std::to_string(s.pad_top) + "," + std::to_string(s.pad_left) + "," +
         std::to_string(s.pad_bottom) + "," + std::to_string(s.pad_right) + " dil " +
         std::to_string(s.dil_h) + "," + std::to_string(s.dil_w) + " groups " +
         std::to_string(s.groups);
}

ExactSum naive_conv(const Conv2dShape& s, int64_t N, const std::vector<float>& x,
                    const std::vector<float>& w, const float* bias) {
  const int64_t OH = s.OH(), OW = s.OW(), Cg = s.C / s.groups, Kg = s.K / s.groups;
  ExactSum y(N * s.K * OH * OW);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const size_t at = ((n * s.K + k) * OH + oh) * OW + ow;
          if (bias) y.add(at, bias[k]);
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < s.R; ++r)
              for (int64_t q = 0; q < s.S; ++q) {
                const int64_t ih = oh * s.stride_h - s.pad_top + r * s.dil_h;
                const int64_t iw = ow * s.stride_w - s.pad_left + q * s.dil_w;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                y.add(at, double(x[((n * s.C + k / Kg * Cg + c) * s.H + ih) * s.W + iw]) *
                              w[((k * Cg + c) * s.R + r) * s.S + q]);
              }
        }
  return y;
}

void check_conv(const Conv2dShape& s, int64_t N, bool with_bias, uint32_t seed) {
  SCOPED_TRACE(describe(s, N) + (with_bias ? " bias" : " no bias"));
  const auto x = random_floats(N * s.C * s.H * s.W, seed);
  const auto w = random_floats(s.K * (s.C / s.groups) * s.R * s.S, seed + 1);
  const auto b = random_floats(s.K, seed + 2);
  const float* bias = with_bias ? b.data() : nullptr;
  const ExactSum expected = naive_conv(s, N, x, w, bias);
  const size_t y_size = N * s.K * s.OH() * s.OW();

  std::vector<float> y(y_size);
  conv2d_f32_reference(s, N, x.data(), w.data(), bias, y.data());
  expect_close(y, expected);
  test::for_each_level_and_threads([&] {
    const ConvF32 conv(s, w.data(), bias);
    std::vector<float> out(y_size, std::numeric_limits<float>::quiet_NaN());
    conv.run(N, x.data(), out.data());
    expect_close(out, expected);
    std::fill(out.begin(), out.end(), 0.0f);  // a second run reuses the per-thread scratch
    conv.run(N, x.data(), out.data());
    expect_close(out, expected);
    // The output pass (a fused Scaling node, residual Add, Relu / Clip) gives the separate ops'
    // values: y * factor[k], then + residual, then the clamp.
    const auto residual = random_floats(y_size, seed + 3);
    const auto factor = random_floats(s.K, seed + 4);
    const int64_t plane = s.OH() * s.OW();
    for (const Clamp clamp : {Clamp{}, Clamp{0.0f}, Clamp{-0.25f, 0.5f}})
      for (const float* r : {static_cast<const float*>(nullptr), residual.data()})
        for (const int64_t factors : {0, 1, static_cast<int>(s.K)}) {
          std::vector<float> fused(y_size, std::numeric_limits<float>::quiet_NaN());
          conv.run(N, x.data(), fused.data(), Epilogue{factors ? factor.data() : nullptr, factors, r, clamp});
          for (size_t i = 0; i < y_size; ++i) {
            float v = out[i];
            if (factors) v *= factor[factors == 1 ? 0 : i / plane % s.K];
            ASSERT_EQ(fused[i], clamp(r ? v + r[i] : v)) << "at " << i;
          }
        }
  });
}

TEST(FloatKernelsConv, PointwiseConvolutions) {
  check_conv(conv_shape(5, 7, 9, 11, 1, 1, 1, 0), 2, true, 10);
  check_conv(conv_shape(64, 14, 14, 48, 1, 1, 1, 0), 2, true, 11);
  check_conv(conv_shape(16, 9, 9, 24, 1, 1, 2, 0), 2, false, 12);
  check_conv(conv_shape(7, 32, 32, 260, 1, 1, 1, 0), 1, true, 13);  // > one row block of A
  check_conv(conv_shape(3, 1, 1, 5, 1, 1, 1, 0), 3, true, 14);
  check_conv(conv_shape(4, 5, 5, 6, 1, 1, 1, 1), 2, true, 15);  // padded 1x1
  check_conv(conv_shape(40, 7, 7, 300, 1, 1, 1, 0), 3, true, 16);  // in place, not im2col
  check_conv(conv_shape(130, 7, 7, 260, 1, 1, 1, 0), 3, false, 17);  // im2col
}

TEST(FloatKernelsConv, SquareKernelsStridesAndPads) {
  check_conv(conv_shape(3, 11, 13, 7, 3, 3, 1, 1), 3, true, 20);
  check_conv(conv_shape(130, 28, 28, 20, 3, 3, 1, 1), 2, true, 21);  // several depth blocks
  check_conv(conv_shape(17, 15, 15, 33, 3, 3, 2, 1), 2, true, 22);
  check_conv(conv_shape(40, 16, 16, 24, 3, 3, 2, 1), 1, false, 23);  // depth 360: two blocks
  check_conv(conv_shape(4, 12, 10, 9, 5, 5, 1, 2), 1, true, 24);
  check_conv(conv_shape(3, 32, 32, 16, 7, 7, 2, 3), 2, true, 25);
  check_conv(conv_shape(2, 2, 2, 3, 3, 3, 1, 1), 2, true, 26);
  check_conv(conv_shape(8, 40, 40, 8, 3, 3, 1, 1), 1, true, 27);  // several row blocks
  check_conv(conv_shape(6, 90, 90, 10, 3, 3, 2, 1), 1, true, 28);  // several column blocks
  check_conv(conv_shape(16, 28, 28, 16, 3, 3, 1, 1), 5, true, 29);
}

// Small output planes with many output channels take the im2col path, whose column blocks run
// across samples.
TEST(FloatKernelsConv, SmallPlanesAcrossSamples) {
  check_conv(conv_shape(8, 7, 7, 512, 3, 3, 1, 1), 3, true, 70);
  check_conv(conv_shape(40, 7, 7, 512, 3, 3, 1, 1), 5, true, 71);  // depth 360: two blocks
  check_conv(conv_shape(24, 13, 13, 1024, 5, 5, 2, 2, 1, 2), 3, true, 72);
  check_conv(conv_shape(32, 8, 8, 512, 3, 3, 1, 1), 7, false, 73);
  check_conv(with_pads(conv_shape(16, 9, 9, 512, 3, 3, 2, 0), 0, 1, 2, 0), 4, true, 74);
  check_conv(conv_shape(16, 4, 4, 128, 3, 3, 1, 1, 2), 9, true, 75);
  check_conv(conv_shape(64, 14, 14, 512, 1, 1, 2, 0), 8, true, 76);
}

// Output planes of at most 256 pixels, >= 32 output channels per group and more than one tap per
// channel take the pixel-broadcast path at AVX512 (channel blocks of 32, 48 or 64, masked past
// the channels; tiles of up to 6 or 8 pixels and the remainder; depth blocks of 512 / 1024 taps;
// channel blocks shared by the threads when there are fewer images than threads).
TEST(FloatKernelsConv, PixelBroadcastPath) {
  check_conv(conv_shape(64, 7, 7, 64, 3, 3, 1, 1), 3, true, 80);
  check_conv(conv_shape(32, 14, 14, 32, 3, 3, 1, 1), 2, true, 81);
  check_conv(conv_shape(16, 16, 16, 40, 3, 3, 1, 1), 2, false, 82);      // 256 pixels, 48-wide block
  check_conv(conv_shape(70, 7, 7, 100, 3, 3, 1, 1), 1, true, 83);        // 630 taps: two depth blocks
  check_conv(conv_shape(130, 5, 5, 33, 3, 3, 1, 1), 2, true, 84);        // 1170 taps, 33 channels
  check_conv(conv_shape(24, 7, 7, 320, 3, 3, 1, 1), 1, true, 85);        // 5 blocks over 2 threads
  check_conv(conv_shape(16, 28, 28, 32, 3, 3, 2, 1), 2, true, 86);       // stride 2 to 14x14
  check_conv(with_pads(conv_shape(9, 13, 11, 36, 3, 3, 2, 0), 0, 1, 2, 0), 3, true, 87);
  check_conv(conv_shape(8, 9, 10, 48, 3, 3, 1, 2, 2), 2, true, 88);      // dilation 2
  check_conv(with_pads(conv_shape(6, 5, 9, 50, 1, 3, 1, 0), 0, 1, 0, 1), 2, true, 89);  // 1x3
  check_conv(conv_shape(64, 7, 7, 96, 3, 3, 1, 1, 1, 2), 2, true, 90);   // 2 groups of 48
  check_conv(conv_shape(5, 3, 3, 64, 5, 5, 1, 2), 4, true, 91);          // taps past the plane
  check_conv(conv_shape(4, 1, 1, 32, 3, 3, 1, 1), 3, false, 92);         // one pixel
}

TEST(FloatKernelsConv, AsymmetricPadsStridesAndRectangularKernels) {
  check_conv(with_pads(conv_shape(5, 10, 11, 6, 3, 3, 1, 0), 0, 1, 2, 0), 2, true, 30);
  check_conv(with_pads(conv_shape(5, 10, 11, 6, 3, 3, 2, 0), 1, 0, 0, 2), 2, true, 31);
  check_conv(with_pads(conv_shape(3, 9, 12, 4, 1, 3, 1, 0), 0, 1, 0, 1), 2, true, 32);
  check_conv(with_pads(conv_shape(3, 9, 12, 4, 3, 1, 1, 0), 1, 0, 1, 0), 2, true, 33);
  check_conv(with_strides(conv_shape(4, 13, 14, 5, 3, 3, 1, 1), 2, 1), 2, true, 34);
  check_conv(with_strides(conv_shape(4, 13, 14, 5, 3, 3, 1, 1), 1, 3), 2, true, 35);
}

TEST(FloatKernelsConv, Dilation) {
  check_conv(conv_shape(6, 15, 15, 7, 3, 3, 1, 2, 2), 2, true, 40);
  check_conv(conv_shape(6, 16, 17, 7, 3, 3, 2, 1, 2), 2, true, 41);
  check_conv(with_pads(conv_shape(3, 12, 12, 4, 5, 5, 1, 0, 2), 1, 3, 2, 0), 1, true, 42);
}

TEST(FloatKernelsConv, GroupedConvolutions) {
  check_conv(conv_shape(8, 10, 10, 6, 3, 3, 1, 1, 1, 2), 2, true, 50);
  check_conv(conv_shape(12, 9, 9, 8, 1, 1, 1, 0, 1, 4), 2, true, 51);
  check_conv(conv_shape(9, 11, 11, 15, 3, 3, 2, 1, 1, 3), 2, false, 52);
  check_conv(conv_shape(8, 8, 8, 16, 3, 3, 1, 1, 1, 8), 2, true, 53);  // channel multiplier 2
}

TEST(FloatKernelsConv, DepthwiseConvolutions) {
  check_conv(conv_shape(13, 12, 17, 13, 3, 3, 1, 1, 1, 13), 2, true, 60);
  check_conv(conv_shape(8, 15, 16, 8, 3, 3, 2, 1, 1, 8), 3, true, 61);
  check_conv(conv_shape(5, 14, 14, 5, 5, 5, 1, 4, 2, 5), 1, false, 62);
  check_conv(conv_shape(4, 9, 9, 4, 3, 3, 3, 0, 1, 4), 2, true, 63);
  check_conv(with_pads(conv_shape(6, 10, 9, 6, 3, 3, 2, 0, 1, 6), 0, 1, 2, 0), 2, true, 64);
  check_conv(conv_shape(3, 7, 7, 3, 7, 7, 1, 3, 1, 3), 2, true, 65);
  check_conv(with_strides(conv_shape(6, 13, 14, 6, 3, 3, 1, 1, 1, 6), 2, 1), 2, true, 66);
  check_conv(with_strides(conv_shape(4, 41, 37, 4, 3, 3, 1, 1, 1, 4), 1, 2), 2, true, 67);  // many blocks
  // AVX512 direct kernels: flattened planes (stride 1, OW == W; 9 taps or any) and 3x3 rows in
  // chunks of 16 columns (stride_w 1 or 2, OW == W or not).
  check_conv(conv_shape(37, 7, 7, 37, 3, 3, 1, 1, 1, 37), 3, true, 68);
  check_conv(conv_shape(20, 14, 14, 20, 3, 3, 1, 1, 1, 20), 2, false, 69);
  check_conv(conv_shape(5, 1, 1, 5, 3, 3, 1, 1, 1, 5), 2, true, 160);                  // one pixel
  check_conv(conv_shape(6, 5, 19, 6, 5, 5, 1, 2, 1, 6), 1, true, 161);                 // 25 taps
  check_conv(conv_shape(6, 40, 40, 6, 3, 3, 2, 1, 1, 6), 2, true, 162);                // OW 20 > 16
  check_conv(conv_shape(7, 12, 35, 7, 3, 3, 1, 0, 1, 7), 2, true, 163);                // OW != W
  check_conv(with_pads(conv_shape(4, 9, 9, 4, 3, 3, 1, 0, 1, 4), 2, 0, 0, 2), 2, true, 164);
  check_conv(conv_shape(4, 11, 13, 4, 3, 3, 1, 2, 2, 4), 2, true, 165);                // dilation 2
  // stride_w 2 with OW <= 8: two output rows a vector (odd and even OH, stride_h 1 or 2)
  check_conv(conv_shape(18, 14, 14, 18, 3, 3, 2, 1, 1, 18), 3, true, 166);              // 7x7 out
  check_conv(with_strides(conv_shape(5, 9, 13, 5, 3, 3, 1, 1, 1, 5), 1, 2), 2, true, 167);
  check_conv(conv_shape(3, 12, 11, 3, 3, 3, 2, 2, 2, 3), 2, false, 168);                 // dilation 2
  check_conv(with_pads(conv_shape(4, 3, 4, 4, 3, 3, 2, 0, 1, 4), 2, 0, 1, 2), 2, true, 169);
}

TEST(FloatKernelsConv, RandomShapes) {
  std::mt19937 rng(2024);
  auto pick = [&rng](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int i = 0; i < 25; ++i) {
    Conv2dShape s;
    s.groups = pick(1, 3) == 3 ? pick(2, 3) : 1;
    s.C = s.groups * pick(1, 12);
    s.K = s.groups * pick(1, 12);
    s.R = pick(1, 4), s.S = pick(1, 4);
    s.dil_h = pick(1, 2), s.dil_w = pick(1, 2);
    s.stride_h = pick(1, 2), s.stride_w = pick(1, 2);
    s.pad_top = pick(0, s.R - 1), s.pad_bottom = pick(0, s.R - 1);
    s.pad_left = pick(0, s.S - 1), s.pad_right = pick(0, s.S - 1);
    s.H = pick((s.R - 1) * s.dil_h + 1, 20), s.W = pick((s.S - 1) * s.dil_w + 1, 20);
    check_conv(s, pick(1, 3), pick(0, 1) == 1, 100 + 3 * i);
  }
}

TEST(FloatKernelsConv, RejectsInvalidShape) {
  const std::vector<float> w(64, 0.0f);
  EXPECT_THROW(ConvF32(conv_shape(6, 8, 8, 4, 3, 3, 1, 1, 1, 4), w.data(), nullptr), ShapeError);
  EXPECT_THROW(ConvF32(conv_shape(2, 2, 2, 4, 5, 5, 1, 0), w.data(), nullptr), ShapeError);
}

// ---- Pools ------------------------------------------------------------------------------------

std::vector<float> naive_pool(const Pool2dShape& s, int64_t N, const std::vector<float>& x,
                              bool is_max, bool count_include_pad) {
  const int64_t OH = s.OH(), OW = s.OW();
  std::vector<float> y(N * s.C * OH * OW);
  for (int64_t p = 0; p < N * s.C; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double acc = is_max ? -INFINITY : 0.0;
        int64_t inside = 0;
        for (int64_t r = 0; r < s.R; ++r)
          for (int64_t q = 0; q < s.S; ++q) {
            const int64_t ih = oh * s.stride_h - s.pad_top + r * s.dil_h;
            const int64_t iw = ow * s.stride_w - s.pad_left + q * s.dil_w;
            if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
            const double v = x[(p * s.H + ih) * s.W + iw];
            acc = is_max ? std::max(acc, v) : acc + v;
            ++inside;
          }
        if (!is_max) acc /= count_include_pad ? s.R * s.S : inside;
        y[(p * OH + oh) * OW + ow] = static_cast<float>(acc);
      }
  return y;
}

std::vector<Pool2dShape> pool_shapes() {
  return {conv_shape(3, 12, 12, 0, 3, 3, 2, 1),  conv_shape(4, 8, 9, 0, 2, 2, 2, 0),
          with_pads(conv_shape(2, 9, 10, 0, 3, 3, 1, 0), 0, 1, 2, 0),
          conv_shape(2, 11, 11, 0, 3, 3, 1, 1, 2), conv_shape(5, 7, 7, 0, 7, 7, 1, 0),
          with_strides(conv_shape(3, 10, 13, 0, 2, 3, 1, 1), 1, 2)};
}

TEST(FloatKernelsPool, MaxPoolIgnoresPadding) {
  test::KernelSettingsGuard guard;
  for (const Pool2dShape& s : pool_shapes())
    for (int threads : {1, 2}) {
      SCOPED_TRACE(describe(s, 2));
      omp_set_num_threads(threads);
      const auto x = random_floats(2 * s.C * s.H * s.W, 300, -3.0f, -1.0f);  // all below 0 pads
      std::vector<float> y(2 * s.C * s.OH() * s.OW());
      maxpool2d_f32(s, 2, x.data(), y.data());
      expect_near_all(y, naive_pool(s, 2, x, true, false), 0.0f);
    }
}

TEST(FloatKernelsPool, AveragePoolWithAndWithoutPadCells) {
  test::KernelSettingsGuard guard;
  for (const Pool2dShape& s : pool_shapes())
    for (bool include_pad : {true, false})
      for (int threads : {1, 2}) {
        SCOPED_TRACE(describe(s, 2) + " count_include_pad=" + std::to_string(include_pad));
        omp_set_num_threads(threads);
        const auto x = random_floats(2 * s.C * s.H * s.W, 301);
        std::vector<float> y(2 * s.C * s.OH() * s.OW());
        avgpool2d_f32(s, include_pad, 2, x.data(), y.data());
        expect_near_all(y, naive_pool(s, 2, x, false, include_pad), 1e-5f);
      }
}

TEST(FloatKernelsPool, GlobalAveragePool) {
  const int64_t N = 3, C = 5, HW = 49;
  const auto x = random_floats(N * C * HW, 302);
  std::vector<float> y(N * C), expected(N * C);
  for (int64_t p = 0; p < N * C; ++p) {
    double sum = 0.0;
    for (int64_t i = 0; i < HW; ++i) sum += x[p * HW + i];
    expected[p] = static_cast<float>(sum / HW);
  }
  global_avgpool_f32(N, C, HW, x.data(), y.data());
  expect_near_all(y, expected, 1e-5f);
}

// ---- Normalisation and element-wise ------------------------------------------------------------

TEST(FloatKernelsElementwise, BatchNorm) {
  const int64_t N = 2, C = 3, HW = 10;
  const auto x = random_floats(N * C * HW, 400), scale = random_floats(C, 401),
             bias = random_floats(C, 402), mean = random_floats(C, 403),
             var = random_floats(C, 404, 0.1f, 2.0f);
  const float eps = 1e-5f;
  std::vector<float> y(x.size()), expected(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        const size_t at = (n * C + c) * HW + i;
        const double normalised = (x[at] - double(mean[c])) / std::sqrt(double(var[c]) + eps);
        expected[at] = static_cast<float>(normalised * scale[c] + bias[c]);
      }
  batchnorm_f32(N, C, HW, x.data(), scale.data(), bias.data(), mean.data(), var.data(), eps,
                y.data());
  expect_near_all(y, expected, 1e-5f);
}

template <class Kernel, class Expected>
void check_unary(Kernel kernel, Expected expected, float rel_tol = 0.0f) {
  const auto x = random_floats(1003, 410, -8.0f, 8.0f);
  std::vector<float> y(x.size()), want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = expected(x[i]);
  kernel(static_cast<int64_t>(x.size()), x.data(), y.data());
  expect_near_all(y, want, rel_tol);
}

TEST(FloatKernelsElementwise, Activations) {
  check_unary(relu_f32, [](float v) { return v < 0 ? 0.0f : v; });
  check_unary([](int64_t n, const float* x, float* y) { leaky_relu_f32(n, 0.1f, x, y); },
              [](float v) { return v < 0 ? 0.1f * v : v; });
  check_unary([](int64_t n, const float* x, float* y) { clip_f32(n, -1.5f, 6.0f, x, y); },
              [](float v) { return v < -1.5f ? -1.5f : (v > 6.0f ? 6.0f : v); });
  check_unary(
      sigmoid_f32, [](float v) { return static_cast<float>(1.0 / (1.0 + std::exp(-double(v)))); },
      1e-6f);
}

TEST(FloatKernelsElementwise, LargeActivationsUseThreads) {
  test::KernelSettingsGuard guard;
  omp_set_num_threads(2);
  const auto x = random_floats(300000, 411);
  std::vector<float> y(x.size());
  relu_f32(static_cast<int64_t>(x.size()), x.data(), y.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], std::max(x[i], 0.0f));
}

TEST(FloatKernelsElementwise, SoftmaxOverMiddleAxis) {
  for (auto [outer, axis_len, inner] : {std::tuple<int64_t, int64_t, int64_t>{4, 10, 1},
                                        {2, 5, 7}, {1, 1, 3}, {3, 1000, 1}}) {
    const auto x = random_floats(outer * axis_len * inner, 420, -20.0f, 20.0f);
    std::vector<float> y(x.size()), expected(x.size());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        auto at = [&](int64_t a) { return (o * axis_len + a) * inner + i; };
        double max = -INFINITY, sum = 0.0;
        for (int64_t a = 0; a < axis_len; ++a) max = std::max(max, double(x[at(a)]));
        for (int64_t a = 0; a < axis_len; ++a) sum += std::exp(x[at(a)] - max);
        for (int64_t a = 0; a < axis_len; ++a)
          expected[at(a)] = static_cast<float>(std::exp(x[at(a)] - max) / sum);
      }
    softmax_f32(outer, axis_len, inner, x.data(), y.data());
    expect_near_all(y, expected, 1e-5f);
  }
}

// Naive numpy broadcasting over right-aligned shapes.
std::vector<float> naive_binary(BinaryOp op, const Shape& as, const std::vector<float>& a,
                                const Shape& bs, const std::vector<float>& b, const Shape& os) {
  const size_t rank = os.size();
  std::vector<float> y(shape_numel(os));
  for (int64_t flat = 0; flat < static_cast<int64_t>(y.size()); ++flat) {
    std::vector<int64_t> index(rank);
    for (size_t axis = rank, rest = flat; axis-- > 0;) {
      index[axis] = static_cast<int64_t>(rest % os[axis]);
      rest /= os[axis];
    }
    auto offset = [&](const Shape& s) {
      int64_t off = 0;
      for (size_t axis = 0; axis < s.size(); ++axis) {
        const int64_t i = index[axis + rank - s.size()];
        off = off * s[axis] + (s[axis] == 1 ? 0 : i);
      }
      return off;
    };
    const float u = a[offset(as)], v = b[offset(bs)];
    y[flat] = op == BinaryOp::Add ? u + v : op == BinaryOp::Sub ? u - v : u * v;
  }
  return y;
}

TEST(FloatKernelsElementwise, BinaryBroadcasting) {
  struct Case {
    Shape a, b, out;
  };
  const Case cases[] = {{{2, 3, 4, 5}, {3, 1, 1}, {2, 3, 4, 5}},
                        {{2, 3}, {1, 3}, {2, 3}},
                        {{2, 3, 4}, {}, {2, 3, 4}},
                        {{}, {4, 5}, {4, 5}},
                        {{4, 1}, {1, 5}, {4, 5}},
                        {{2, 3, 4, 5}, {2, 3, 4, 5}, {2, 3, 4, 5}},
                        {{1, 3, 1, 5}, {2, 1, 4, 1}, {2, 3, 4, 5}},
                        {{64, 64, 8, 8}, {1, 64, 1, 1}, {64, 64, 8, 8}},
                        // rows longer than a piece (same shapes collapse to one row)
                        {{5, 20000}, {5, 20000}, {5, 20000}},
                        {{4, 33000}, {33000}, {4, 33000}},
                        {{70001}, {1}, {70001}},
                        {{1}, {1}, {1}}};
  test::KernelSettingsGuard guard;
  uint32_t seed = 430;
  for (const Case& c : cases)
    for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul})
      for (int threads : {1, 2}) {
        SCOPED_TRACE(shape_str(c.a) + " op " + shape_str(c.b));
        omp_set_num_threads(threads);
        const auto a = random_floats(shape_numel(c.a), seed++);
        const auto b = random_floats(shape_numel(c.b), seed++);
        std::vector<float> y(shape_numel(c.out));
        binary_f32(op, c.a, a.data(), c.b, b.data(), c.out, y.data());
        const std::vector<float> expected = naive_binary(op, c.a, a, c.b, b, c.out);
        expect_near_all(y, expected, 0.0f);
        const Clamp relu{0.0f};  // a fused Relu: the clamp of each value
        binary_f32(op, c.a, a.data(), c.b, b.data(), c.out, y.data(), relu);
        for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], relu(expected[i])) << "at " << i;
      }
}

TEST(FloatKernelsElementwise, BinaryRejectsIncompatibleShapes) {
  const std::vector<float> a(6), b(4), y(6);
  EXPECT_THROW(binary_f32(BinaryOp::Add, {2, 3}, a.data(), {4}, b.data(), {2, 3},
                          const_cast<float*>(y.data())),
               ShapeError);
}

// ---- Layout -------------------------------------------------------------------------------------

TEST(FloatKernelsLayout, ConcatBytes) {
  // Three int8 inputs of shapes (2, a_i, 3) concatenated along the middle axis.
  const int64_t outer = 2, inner = 3, sizes[] = {1, 4, 2};
  std::vector<std::vector<int8_t>> inputs;
  const void* pointers[3];
  for (int i = 0; i < 3; ++i) {
    inputs.emplace_back(outer * sizes[i] * inner);
    for (size_t e = 0; e < inputs[i].size(); ++e) inputs[i][e] = static_cast<int8_t>(10 * i + e);
    pointers[i] = inputs[i].data();
  }
  std::vector<int8_t> y(outer * 7 * inner), expected;
  for (int64_t o = 0; o < outer; ++o)
    for (int i = 0; i < 3; ++i)
      for (int64_t e = 0; e < sizes[i] * inner; ++e)
        expected.push_back(inputs[i][o * sizes[i] * inner + e]);
  concat_bytes(outer, inner * sizeof(int8_t), sizes, pointers, 3, y.data());
  EXPECT_EQ(y, expected);

  // Float elements: inner_bytes counts bytes, not elements.
  const std::vector<float> f0 = {1, 2, 3, 4}, f1 = {5, 6};
  const int64_t fsizes[] = {2, 1};
  const void* fptrs[] = {f0.data(), f1.data()};
  std::vector<float> fy(6);
  concat_bytes(2, sizeof(float), fsizes, fptrs, 2, fy.data());
  EXPECT_EQ(fy, (std::vector<float>{1, 2, 5, 3, 4, 6}));
}

}  // namespace
}  // namespace apl::kernels
