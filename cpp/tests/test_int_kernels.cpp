// Integer kernels against naive loops written here (not the library's references only), at every
// SIMD level this CPU supports and with 1 and 2 threads: all must give identical integers.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "aidge_ptq_lite/kernels/int_kernels.hpp"
#include "aidge_ptq_lite/simd.hpp"
#include "test_support.hpp"

namespace {

using apl::FixedPointMultiplier;
using apl::SimdLevel;
using namespace apl::kernels;


template <class T>
std::vector<T> random_vector(std::mt19937& rng, int64_t n, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  std::vector<T> v(n);
  for (T& e : v) e = static_cast<T>(dist(rng));
  return v;
}

// ---- Naive loops -------------------------------------------------------------------------------

template <class X, class Wt, class B>
std::vector<int64_t> naive_conv(const Conv2dShape& s, int64_t N, const X* x, const Wt* w,
                                const B* bias) {
  const int64_t OH = s.OH(), OW = s.OW(), Cg = s.C / s.groups, Kg = s.K / s.groups;
  std::vector<int64_t> y(N * s.K * OH * OW);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t sum = bias ? bias[k] : 0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < s.R; ++r)
              for (int64_t q = 0; q < s.S; ++q) {
                const int64_t ih = oh * s.stride_h + r * s.dil_h - s.pad_top;
                const int64_t iw = ow * s.stride_w + q * s.dil_w - s.pad_left;
                if (ih < 0 || iw < 0 || ih >= s.H || iw >= s.W) continue;  // zero padding
                const int64_t ci = (k / Kg) * Cg + c;
                sum += int64_t{x[((n * s.C + ci) * s.H + ih) * s.W + iw]} *
                       int64_t{w[((k * Cg + c) * s.R + r) * s.S + q]};
              }
          y[((n * s.K + k) * OH + oh) * OW + ow] = sum;
        }
  return y;
}

// round half up of acc * m / 2^s, in 128 bits, then clamp.
int64_t naive_requantize(int64_t acc, FixedPointMultiplier fp, int64_t lo, int64_t hi) {
  __int128 v = static_cast<__int128>(acc) * fp.multiplier;
  if (fp.shift > 0) {
    const __int128 d = static_cast<__int128>(1) << fp.shift;
    v += d / 2;
    v = (v >= 0) ? v / d : -((-v + d - 1) / d);  // floor division
  }
  return static_cast<int64_t>(std::min<__int128>(std::max<__int128>(v, lo), hi));
}

// ---- Convolution -------------------------------------------------------------------------------

struct ConvCase {
  std::string name;
  Conv2dShape s;
  int64_t N;
};

Conv2dShape conv(int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                 int64_t stride = 1, int64_t pad = 0, int64_t groups = 1, int64_t dil = 1) {
  Conv2dShape s;
  s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = s.stride_w = stride;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = pad;
  s.groups = groups;
  s.dil_h = s.dil_w = dil;
  return s;
}

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cases{
      {"3x3_16to16_pad1", conv(16, 12, 12, 16, 3, 3, 1, 1), 2},
      {"3x3_single_sample", conv(24, 9, 10, 40, 3, 3, 1, 1), 1},
      {"3x3_stride2_64to40", conv(64, 10, 11, 40, 3, 3, 2, 1), 3},
      {"1x1_pointwise_33to17", conv(33, 7, 5, 17, 1, 1), 3},
      {"1x1_pointwise_stride2", conv(20, 9, 8, 12, 1, 1, 2), 2},
      {"1x1_padded_goes_implicit", conv(6, 5, 5, 9, 1, 1, 1, 1), 2},
      {"gemm_1x1_image", conv(100, 1, 1, 37, 1, 1), 9},
      {"gemm_single_sample", conv(70, 1, 1, 10, 1, 1), 1},
      {"7x7_stride2_pad3_rgb", conv(3, 23, 21, 8, 7, 7, 2, 3), 2},
      {"5x5_dilation2", conv(5, 14, 13, 6, 5, 5, 1, 4, 1, 2), 2},
      {"groups2_odd", conv(6, 8, 9, 10, 3, 3, 1, 1, 2), 2},
      {"groups3_channel_multiplier", conv(3, 8, 8, 6, 3, 3, 1, 1, 3), 2},
      {"depthwise_3x3", conv(8, 10, 12, 8, 3, 3, 1, 1, 8), 2},
      {"depthwise_5x5_stride2_dil2", conv(5, 17, 15, 5, 5, 5, 2, 3, 5, 2), 2},
      {"single_channel", conv(1, 12, 12, 5, 3, 3, 1, 1), 2},
      // One input channel runs the VNNI depthwise kernel at the AVX512 / AMX levels (K output
      // planes per input plane): the zoo first layer, stride 2 with a 5x5 kernel, a 1x1, and
      // 3 samples x 5 outputs, which 2 threads split inside a sample.
      {"single_channel_zoo_first_layer", conv(1, 28, 28, 16, 3, 3, 1, 1), 3},
      {"single_channel_5x5_stride2", conv(1, 13, 15, 7, 5, 5, 2, 2), 2},
      {"single_channel_1x1", conv(1, 6, 7, 4, 1, 1), 2},
      {"single_channel_split_inside_a_sample", conv(1, 9, 11, 5, 3, 3, 1, 1), 3},
      // Enough output channels that the accumulators are produced in column chunks.
      {"column_chunks_3x3", conv(8, 20, 20, 256, 3, 3, 1, 1), 2},
      {"column_chunks_1x1", conv(16, 12, 12, 600, 1, 1), 2},
      {"column_chunks_gemm", conv(40, 1, 1, 1100, 1, 1), 70},
      // AMX tiles: 34 channel blocks in 3 steps of 12 (2 padding blocks), an odd k tile count;
      // groups of 20 channels; a Gemm whose 25 blocks take 2 steps of 13.
      {"amx_padded_steps_stride2", conv(136, 9, 10, 48, 3, 3, 2, 1), 2},
      {"amx_groups2", conv(40, 8, 9, 34, 3, 3, 1, 1, 2), 2},
      {"amx_gemm_odd_steps", conv(100, 1, 1, 70, 1, 1), 5},
      // Pointwise convs over images at the AMX level: 16 blocks in one step, 9 blocks.
      {"amx_pointwise_64to40", conv(64, 7, 9, 40, 1, 1), 3},
      {"amx_pointwise_36to50", conv(36, 6, 5, 50, 1, 1), 3},
      // Stride-2 packing on rows long enough for the 16-pair SSE2 split, odd and even pads/widths.
      {"stride2_wide_rows_pad1", conv(16, 6, 75, 16, 3, 3, 2, 1), 2},
      {"stride2_wide_rows_pad2", conv(17, 5, 74, 18, 5, 5, 2, 2), 2},
      {"stride2_pad0", conv(12, 11, 13, 8, 3, 3, 2, 0), 2},
      {"1x1_pointwise_stride2_wide_rows", conv(16, 4, 77, 20, 1, 1, 2), 2},
      // Stride-2 pointwise rows of 33 outputs (a 32-byte step and a 1-byte one), the tensor's
      // last byte an even input column; and the ResNet-20 shortcut shape.
      {"1x1_pointwise_stride2_odd_width", conv(5, 5, 65, 7, 1, 1, 2), 1},
      {"1x1_pointwise_stride2_resnet20_shortcut", conv(16, 28, 28, 32, 1, 1, 2), 2},
      // The VNNI depthwise kernel (AVX512 / AMX levels): groups of 16 outputs across rows in
      // 64-byte windows (7x7, 14x14 stride 1, 8x8: whole groups only) and 128-byte ones (stride 2),
      // channel counts not a multiple of 16, rows wider than 64 bytes, odd sizes, kernels of two
      // tap quads (7x7) and of one tap (1x1).
      {"depthwise_7x7_pad1", conv(24, 7, 7, 24, 3, 3, 1, 1, 24), 3},
      {"depthwise_14x14_stride2_19ch", conv(19, 14, 14, 19, 3, 3, 2, 1, 19), 2},
      {"depthwise_28x28_stride2", conv(16, 28, 28, 16, 3, 3, 2, 1, 16), 2},
      {"depthwise_8x8_whole_groups", conv(17, 8, 8, 17, 3, 3, 1, 1, 17), 2},
      {"depthwise_odd_stride2", conv(10, 13, 15, 10, 3, 3, 2, 1, 10), 3},
      {"depthwise_wide_rows", conv(5, 9, 70, 5, 3, 3, 1, 1, 5), 2},
      {"depthwise_kernel7_pad3", conv(6, 11, 13, 6, 7, 7, 1, 3, 6), 2},
      {"depthwise_1x1", conv(4, 5, 6, 4, 1, 1, 1, 0, 4), 2},
      {"depthwise_stride2_pad0", conv(9, 12, 11, 9, 3, 3, 2, 0, 9), 2},
      // AMX channels-last cells (amx::gemm_cells): 32 channels fold 2 taps a group (the
      // second group's second tap is past the kernel: zero weights), 12 channels fold 4 of a
      // 5x5 row, 80 channels take 2 steps of 10 blocks, K not a multiple of 16, stride 2 rows
      // with stride-1 columns (folded), dilated columns (not folded), wide rows of 3 C tiles.
      {"cells_32ch_fold2", conv(32, 9, 11, 20, 3, 3, 1, 1), 2},
      {"cells_12ch_5x5_fold4", conv(12, 10, 9, 18, 5, 5, 1, 2), 2},
      {"cells_80ch_two_steps", conv(80, 6, 7, 33, 3, 3, 1, 1), 2},
      {"cells_wide_rows", conv(16, 5, 46, 16, 3, 3, 1, 1), 1},
  };
  {
    Conv2dShape rows2 = conv(24, 11, 12, 17, 3, 3, 1, 1);
    rows2.stride_h = 2;
    cases.push_back({"cells_stride_h2_fold", rows2, 2});
    Conv2dShape dil = conv(20, 9, 12, 16, 3, 3, 1, 2);
    dil.dil_w = 2;
    cases.push_back({"cells_dilated_columns", dil, 2});
  }
  // Asymmetric pads, strides and a non-square kernel, depthwise and not.
  Conv2dShape odd = conv(7, 11, 9, 13, 3, 2, 2);
  odd.stride_w = 3;
  odd.pad_top = 0, odd.pad_left = 2, odd.pad_bottom = 1, odd.pad_right = 0;
  cases.push_back({"asymmetric_pads_3x2", odd, 2});
  Conv2dShape odd_dw = odd;
  odd_dw.K = odd_dw.groups = 7;
  odd_dw.dil_w = 2;
  cases.push_back({"depthwise_asymmetric", odd_dw, 2});
  // Column stride 2 with row strides 1 and 3, asymmetric pads (the row-phase packing).
  for (int64_t sh : {1, 3}) {
    Conv2dShape sw2 = conv(6, 10, 29, 9, 3, 3, 2, 1);
    sw2.stride_h = sh;
    sw2.pad_top = 2, sw2.pad_left = 1, sw2.pad_bottom = 0, sw2.pad_right = 2;
    cases.push_back({"stride_w2_stride_h" + std::to_string(sh), sw2, 2});
  }
  // A tap row wider than the VNNI kernel's 128-byte window: the int16 depthwise kernel runs.
  Conv2dShape far_dw = conv(3, 5, 140, 3, 3, 3, 1, 1, 3);
  far_dw.dil_w = 70;
  cases.push_back({"depthwise_dilation_past_the_window", far_dw, 2});
  return cases;
}

// Every ConvInt8 path at every level and thread count against the naive loops, as int32
// accumulators and through the fused requantization (per-tensor and per-channel).
void check_every_conv_case() {
  std::mt19937 rng(1234);
  for (const ConvCase& tc : conv_cases())
    for (bool x_unsigned : {false, true}) {
      SCOPED_TRACE(tc.name + (x_unsigned ? " uint8" : " int8"));
      const Conv2dShape& s = tc.s;
      const int64_t in_size = tc.N * s.C * s.H * s.W;
      const int64_t out_size = tc.N * s.K * s.OH() * s.OW();
      std::vector<uint8_t> xu = random_vector<uint8_t>(rng, in_size, 0, 255);
      std::vector<int8_t> xs = random_vector<int8_t>(rng, in_size, -128, 127);
      const void* x = x_unsigned ? static_cast<const void*>(xu.data()) : xs.data();
      const auto w = random_vector<int8_t>(rng, s.K * (s.C / s.groups) * s.R * s.S, -127, 127);
      const auto bias = random_vector<int32_t>(rng, s.K, -100000, 100000);
      const std::vector<int64_t> expected =
          x_unsigned ? naive_conv(s, tc.N, xu.data(), w.data(), bias.data())
                     : naive_conv(s, tc.N, xs.data(), w.data(), bias.data());

      std::vector<int32_t> reference(out_size);
      conv2d_int8_reference(s, tc.N, x, x_unsigned, w.data(), bias.data(), reference.data());
      for (int64_t i = 0; i < out_size; ++i) ASSERT_EQ(reference[i], expected[i]) << "at " << i;

      RequantParams per_tensor, per_channel;
      per_tensor.scale = {apl::encode_multiplier(1.0 / 700)};
      for (int64_t k = 0; k < s.K; ++k)
        per_channel.scale.push_back(apl::encode_multiplier((1 + k % 5) / 3000.0));
      per_channel.out_unsigned = true, per_channel.lo = 0, per_channel.hi = 255;
      // Single shifts (multiplier 1) take the shift-rescale output stage.
      RequantParams shift_per_tensor, shift_per_channel;
      shift_per_tensor.scale = {{1, 9}};
      for (int64_t k = 0; k < s.K; ++k) shift_per_channel.scale.push_back({1, int32_t(k % 14)});
      shift_per_channel.lo = -128, shift_per_channel.hi = 100;

      apl::test::for_each_level_and_threads([&] {
        ConvInt8 op(s, w.data(), bias.data(), x_unsigned);
        std::vector<int32_t> acc(out_size, 0x5A5A5A5A);
        op.run(tc.N, x, acc.data());
        for (int64_t i = 0; i < out_size; ++i) ASSERT_EQ(acc[i], expected[i]) << "at " << i;
        for (const RequantParams* rq :
             {&per_tensor, &per_channel, &shift_per_tensor, &shift_per_channel}) {
          std::vector<uint8_t> y(out_size, 0xA5);
          op.run_requantized(tc.N, x, *rq, y.data());
          const int64_t plane = s.OH() * s.OW();
          for (int64_t i = 0; i < out_size; ++i) {
            const FixedPointMultiplier fp =
                rq->scale[rq->scale.size() == 1 ? 0 : (i / plane) % s.K];
            const int64_t want = naive_requantize(expected[i], fp, rq->lo, rq->hi);
            const int64_t got = rq->out_unsigned ? int64_t{y[i]} : int64_t{int8_t(y[i])};
            ASSERT_EQ(got, want) << "requantized at " << i;
          }
        }
      });
    }
}

TEST(IntKernelsConv, MatchesNaiveLoopsAtEveryLevelAndThreadCount) { check_every_conv_case(); }

// The same at every level with each AMX implicit-GEMM kernel forced (APL_AMX_CELLS, read when
// a ConvInt8 is built): the channels-last amx::gemm_cells (=1) and the VNNI-panel one (=0); by
// default each takes some of the cases.
TEST(IntKernelsConv, EachAmxKernelMatchesNaiveLoops) {
  if (apl::detected_simd_level() != SimdLevel::AMX) GTEST_SKIP() << "no AMX level";
  const char* before = std::getenv("APL_AMX_CELLS");
  const std::string saved = before ? before : "";
  for (const char* mode : {"1", "0"}) {
    SCOPED_TRACE(std::string("APL_AMX_CELLS=") + mode);
    setenv("APL_AMX_CELLS", mode, 1);
    check_every_conv_case();
  }
  if (before)
    setenv("APL_AMX_CELLS", saved.c_str(), 1);
  else
    unsetenv("APL_AMX_CELLS");
}

TEST(IntKernelsConv, ExtremeValuesOverTheLargestReductionNeitherOverflowNorSaturate) {
  const Conv2dShape s = conv(512, 4, 4, 2, 3, 3, 1, 1);
  constexpr int64_t kTaps = 512 * 3 * 3;
  struct Extreme {
    bool x_unsigned;
    int x, w;
  };
  for (Extreme e : {Extreme{true, 255, 127}, Extreme{true, 255, -127}, Extreme{false, -127, 127},
                    Extreme{false, -127, -127}, Extreme{false, 127, 127},
                    Extreme{false, -128, -128}, Extreme{true, 255, -128}}) {
    SCOPED_TRACE("x=" + std::to_string(e.x) + " w=" + std::to_string(e.w));
    const int64_t full_window = kTaps * e.x * e.w;
    ASSERT_LT(std::abs(full_window), int64_t{1} << 28);  // the bound, far from 2^31
    // Output channel 0's full-window outputs land exactly on the int32 limit of their sign.
    const int64_t limit = full_window > 0 ? INT32_MAX : INT32_MIN;
    const std::vector<int32_t> bias{static_cast<int32_t>(limit - full_window), 0};
    std::vector<uint8_t> x(s.C * s.H * s.W, static_cast<uint8_t>(e.x));
    const std::vector<int8_t> w(s.K * s.C * 9, static_cast<int8_t>(e.w));
    const auto* x_signed = reinterpret_cast<const int8_t*>(x.data());
    const std::vector<int64_t> expected =
        e.x_unsigned ? naive_conv(s, 1, x.data(), w.data(), bias.data())
                     : naive_conv(s, 1, x_signed, w.data(), bias.data());
    const int64_t centre = 1 * s.W + 1;  // a full-window output
    ASSERT_EQ(expected[centre], limit);
    for (int64_t v : expected) {
      ASSERT_GE(v, INT32_MIN);
      ASSERT_LE(v, INT32_MAX);
    }
    apl::test::for_each_level_and_threads([&] {
      ConvInt8 op(s, w.data(), bias.data(), e.x_unsigned);
      std::vector<int32_t> acc(expected.size());
      op.run(1, x.data(), acc.data());
      for (size_t i = 0; i < acc.size(); ++i) ASSERT_EQ(acc[i], expected[i]) << "at " << i;
    });
  }
}

// The AMX level is there when the CPU has AMX-INT8 and the kernel grants the tile state; then
// MatchesNaiveLoopsAtEveryLevelAndThreadCount and the extreme-value test above ran at it too.
// This one names the skip where it is absent, and checks APL_SIMD-style capping below it.
TEST(IntKernelsConv, AmxLevelIsDetectedAndCanBeCapped) {
  if (apl::detected_simd_level() != SimdLevel::AMX)
    GTEST_SKIP() << "no AMX level on this machine (CPU without AMX-INT8, or the kernel refused "
                    "ARCH_REQ_XCOMP_PERM): the AMX tile kernels are not tested here";
  apl::test::KernelSettingsGuard guard;
  EXPECT_STREQ(apl::simd_level_name(SimdLevel::AMX), "amx");
  EXPECT_EQ(apl::parse_simd_level("amx"), SimdLevel::AMX);
  apl::set_simd_level(SimdLevel::AVX512);
  EXPECT_EQ(apl::active_simd_level(), SimdLevel::AVX512);
  // A conv planned below the AMX level runs VNNI; the same conv at AMX gives the same integers.
  const Conv2dShape s = conv(64, 14, 14, 64, 3, 3, 1, 1);
  std::mt19937 rng(7);
  const auto x = random_vector<uint8_t>(rng, 2 * s.C * s.H * s.W, 0, 255);
  const auto w = random_vector<int8_t>(rng, s.K * s.C * 9, -128, 127);
  const auto bias = random_vector<int32_t>(rng, s.K, -100000, 100000);
  std::vector<int32_t> vnni(2 * s.K * s.OH() * s.OW()), tiles(vnni.size()), ref(vnni.size());
  ConvInt8(s, w.data(), bias.data(), false).run(2, x.data(), vnni.data());
  apl::set_simd_level(SimdLevel::AMX);
  ConvInt8(s, w.data(), bias.data(), false).run(2, x.data(), tiles.data());
  conv2d_int8_reference(s, 2, x.data(), false, w.data(), bias.data(), ref.data());
  EXPECT_EQ(tiles, ref);
  EXPECT_EQ(vnni, ref);
}

TEST(IntKernelsConv, RejectsBadShapesAndRequantParams) {
  const std::vector<int8_t> w(64, 1);
  EXPECT_THROW(ConvInt8(conv(6, 8, 8, 4, 3, 3, 1, 1, 4), w.data(), nullptr, false),
               apl::ShapeError);  // 4 groups do not divide 6 channels
  EXPECT_THROW(ConvInt8(conv(2, 2, 2, 2, 5, 5), w.data(), nullptr, false), apl::ShapeError);
  ConvInt8 op(conv(2, 4, 4, 3, 1, 1), w.data(), nullptr, true);
  const std::vector<uint8_t> x(32, 1);
  std::vector<uint8_t> y(48);
  RequantParams two_scales;
  two_scales.scale = {{1 << 30, 31}, {1 << 30, 31}};
  EXPECT_THROW(op.run_requantized(1, x.data(), two_scales, y.data()), apl::ValueError);
  RequantParams bad_range;
  bad_range.scale = {{1 << 30, 31}};
  bad_range.hi = 200;  // above int8
  EXPECT_THROW(op.run_requantized(1, x.data(), bad_range, y.data()), apl::ValueError);
}

// ---- Requantization ----------------------------------------------------------------------------

std::vector<FixedPointMultiplier> requant_scales(std::mt19937& rng, int64_t n) {
  std::uniform_int_distribution<int64_t> m(INT32_MIN, INT32_MAX);
  std::uniform_int_distribution<int> shift(0, 62);
  const FixedPointMultiplier special[] = {{INT32_MAX, 62}, {INT32_MIN, 62}, {INT32_MIN, 0},
                                          {1, 0},          {1, 1},          {0, 5},
                                          {1 << 30, 31},   {-1, 1},         {INT32_MAX, 0}};
  std::vector<FixedPointMultiplier> v;
  for (int64_t i = 0; i < n; ++i)
    v.push_back(i < 9 ? special[i]
                      : FixedPointMultiplier{static_cast<int32_t>(m(rng)), shift(rng)});
  return v;
}

std::vector<int32_t> requant_accumulators(std::mt19937& rng, int64_t n) {
  std::vector<int32_t> acc = random_vector<int32_t>(rng, n, INT32_MIN, INT32_MAX);
  std::uniform_int_distribution<int32_t> small(-300, 300);
  for (int64_t i = 0; i < n; ++i) {
    if (i % 7 == 0) acc[i] = small(rng);  // many results inside the clamp range
    if (i % 11 == 3) acc[i] = INT32_MIN;
    if (i % 13 == 5) acc[i] = INT32_MAX;
  }
  return acc;
}

// Every shift 0..62, multipliers over the whole int32 range (incl. INT32_MIN, 0, negative),
// accumulators incl. INT32_MIN/MAX, per-tensor and per-channel with short and long runs.
TEST(IntKernelsRequantize, MatchesTheRuleAtEveryLevel) {
  std::mt19937 rng(99);
  struct Layout {
    int64_t N, channels, inner;
  };
  for (Layout L : {Layout{3, 63, 1}, Layout{2, 40, 3}, Layout{2, 9, 16}, Layout{1, 5, 37},
                   Layout{4, 7, 29}}) {
    const int64_t total = L.N * L.channels * L.inner;
    const std::vector<int32_t> acc = requant_accumulators(rng, total);
    for (bool per_channel : {false, true})
      for (int variant = 0; variant < 3; ++variant) {
        RequantParams rq;
        rq.scale = requant_scales(rng, per_channel ? L.channels : 1);
        if (!per_channel)
          rq.scale[0] = FixedPointMultiplier{static_cast<int32_t>(rng()), variant * 31};
        rq.out_unsigned = variant == 1;
        rq.lo = rq.out_unsigned ? 0 : (variant == 0 ? -128 : -127);
        rq.hi = rq.out_unsigned ? 255 : (variant == 0 ? 127 : 100);
        std::vector<int64_t> expected(total);
        for (int64_t i = 0; i < total; ++i)
          expected[i] = naive_requantize(
              acc[i], rq.scale[per_channel ? (i / L.inner) % L.channels : 0], rq.lo, rq.hi);
        auto as_int = [&](const std::vector<uint8_t>& y, int64_t i) {
          return rq.out_unsigned ? int64_t{y[i]} : int64_t{int8_t(y[i])};
        };
        std::vector<uint8_t> y(total);
        requantize_int32_reference(L.N, L.channels, L.inner, acc.data(), rq, y.data());
        for (int64_t i = 0; i < total; ++i)
          ASSERT_EQ(as_int(y, i), expected[i]) << "reference at " << i;
        apl::test::for_each_level_and_threads([&] {
          std::vector<uint8_t> out(total, 0x5A);
          requantize_int32(L.N, L.channels, L.inner, acc.data(), rq, out.data());
          for (int64_t i = 0; i < total; ++i)
            ASSERT_EQ(as_int(out, i), expected[i])
                << "at " << i << " acc " << acc[i] << " inner " << L.inner;
        });
      }
  }
}

// One scale for the whole run (the fused output stage's usual case, run 64 lanes at a time with
// the clamp on the packed bytes and the last 1..63 lanes as one masked step): shifts >= 32 and
// single shifts (multiplier 1, shifts 0..31), extreme multipliers and accumulators, runs with
// and without tails of every size class, signed and unsigned outputs with narrow clamp ranges.
TEST(IntKernelsRequantize, UniformScaleRunsMatchTheRule) {
  std::mt19937 rng(17);
  for (int32_t shift : {0, 1, 9, 31, 32, 33, 47, 62})
    for (int32_t m : {INT32_MIN, INT32_MAX, -1, 1, 1 << 30, static_cast<int32_t>(rng())})
      for (int64_t n : {1, 15, 16, 17, 49, 63, 64, 65, 100, 127, 130, 203}) {
        const std::vector<int32_t> acc = requant_accumulators(rng, n);
        for (int range = 0; range < 3; ++range) {
          RequantParams rq;
          rq.scale = {{m, shift}};
          rq.out_unsigned = range == 1;
          rq.lo = range == 0 ? -128 : range == 1 ? 3 : -50;
          rq.hi = range == 0 ? 127 : range == 1 ? 200 : 60;
          apl::test::for_each_level_and_threads([&] {
            std::vector<uint8_t> y(n, 0x5A);
            requantize_int32(1, 1, n, acc.data(), rq, y.data());
            for (int64_t i = 0; i < n; ++i) {
              const int64_t got = rq.out_unsigned ? int64_t{y[i]} : int64_t{int8_t(y[i])};
              ASSERT_EQ(got, naive_requantize(acc[i], rq.scale[0], rq.lo, rq.hi))
                  << "m " << m << " shift " << shift << " n " << n << " at " << i;
            }
          });
        }
      }
}

// A large per-tensor run (the parallel, chunked path) with realistic multipliers.
TEST(IntKernelsRequantize, LongRunsAgreeAcrossLevels) {
  std::mt19937 rng(5);
  const int64_t total = 300001;
  const std::vector<int32_t> acc = random_vector<int32_t>(rng, total, -2000000, 2000000);
  RequantParams rq;
  rq.scale = {apl::encode_multiplier(1.0 / 12345.0)};
  std::vector<int64_t> expected(total);
  for (int64_t i = 0; i < total; ++i)
    expected[i] = naive_requantize(acc[i], rq.scale[0], rq.lo, rq.hi);
  apl::test::for_each_level_and_threads([&] {
    std::vector<int8_t> y(total);
    requantize_int32(1, 1, total, acc.data(), rq, y.data());
    for (int64_t i = 0; i < total; ++i) ASSERT_EQ(y[i], expected[i]) << "at " << i;
  });
}

TEST(IntKernelsRequantize, RejectsBadParams) {
  const std::vector<int32_t> acc(8);
  std::vector<uint8_t> y(8);
  RequantParams rq;
  rq.scale = {{1, 63}};
  EXPECT_THROW(requantize_int32(1, 2, 4, acc.data(), rq, y.data()), apl::ValueError);
  rq.scale = {{1, 1}, {1, 1}, {1, 1}};
  EXPECT_THROW(requantize_int32(1, 2, 4, acc.data(), rq, y.data()), apl::ValueError);
  rq.scale = {{1, 1}};
  rq.out_unsigned = true;  // lo = -127 does not fit uint8
  EXPECT_THROW(requantize_int32(1, 2, 4, acc.data(), rq, y.data()), apl::ValueError);
}

// ---- Wide (n > 8 bits) references --------------------------------------------------------------

TEST(IntKernelsWide, ConvAndRequantizeMatchNaiveLoops) {
  std::mt19937 rng(7);
  for (const ConvCase& tc : {ConvCase{"3x3_groups2", conv(6, 7, 8, 4, 3, 3, 2, 1, 2), 2},
                             ConvCase{"depthwise_dil2", conv(3, 9, 9, 3, 3, 3, 1, 2, 3, 2), 1}}) {
    SCOPED_TRACE(tc.name);
    const Conv2dShape& s = tc.s;
    const auto x = random_vector<int32_t>(rng, tc.N * s.C * s.H * s.W, -32767, 32767);
    const auto w = random_vector<int32_t>(rng, s.K * (s.C / s.groups) * s.R * s.S, -32767, 32767);
    const auto bias = random_vector<int64_t>(rng, s.K, -(int64_t{1} << 40), int64_t{1} << 40);
    const std::vector<int64_t> expected = naive_conv(s, tc.N, x.data(), w.data(), bias.data());
    std::vector<int64_t> acc(expected.size());
    conv2d_wide_reference(s, tc.N, x.data(), w.data(), bias.data(), acc.data());
    EXPECT_EQ(acc, expected);

    const int64_t plane = s.OH() * s.OW();
    std::vector<FixedPointMultiplier> scale;
    for (int64_t k = 0; k < s.K; ++k)
      scale.push_back(apl::encode_multiplier(1.0 / (1e5 * (k + 1))));
    const int64_t lo = -32767, hi = 32767;
    std::vector<int32_t> y(acc.size());
    requantize_wide_reference(tc.N, s.K, plane, acc.data(), scale, lo, hi, y.data());
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_EQ(y[i], naive_requantize(acc[i], scale[(i / plane) % s.K], lo, hi)) << "at " << i;
  }
}

// ---- Other integer ops -------------------------------------------------------------------------

template <class T, class Acc>
void check_pool_case(std::mt19937& rng, int64_t lo, int64_t hi, const Pool2dShape& s, int64_t N) {
  SCOPED_TRACE("pool " + std::to_string(s.R) + "x" + std::to_string(s.S) + " on " +
               std::to_string(s.H) + "x" + std::to_string(s.W));
  const int64_t OH = s.OH(), OW = s.OW();
  const auto x = random_vector<T>(rng, N * s.C * s.H * s.W, lo, hi);
  std::vector<T> mx(N * s.C * OH * OW);
  std::vector<Acc> sum(mx.size());
  maxpool2d_int(s, N, x.data(), mx.data());
  sumpool2d_int(s, N, x.data(), sum.data());
  for (int64_t nc = 0; nc < N * s.C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t best = INT64_MIN, total = 0;
        for (int64_t r = 0; r < s.R; ++r)
          for (int64_t q = 0; q < s.S; ++q) {
            const int64_t ih = oh * s.stride_h + r * s.dil_h - s.pad_top;
            const int64_t iw = ow * s.stride_w + q * s.dil_w - s.pad_left;
            if (ih < 0 || iw < 0 || ih >= s.H || iw >= s.W) continue;  // padding: ignored / 0
            const int64_t v = x[(nc * s.H + ih) * s.W + iw];
            best = std::max(best, v);
            total += v;
          }
        const int64_t i = (nc * OH + oh) * OW + ow;
        ASSERT_EQ(int64_t{mx[i]}, best == INT64_MIN ? 0 : best) << "max at " << i;
        ASSERT_EQ(int64_t{sum[i]}, total) << "sum at " << i;
      }
  std::vector<Acc> global(N * s.C);
  global_sumpool_int(N, s.C, s.H * s.W, x.data(), global.data());
  for (int64_t nc = 0; nc < N * s.C; ++nc) {
    int64_t total = 0;
    for (int64_t i = 0; i < s.H * s.W; ++i) total += x[nc * s.H * s.W + i];
    ASSERT_EQ(int64_t{global[nc]}, total);
  }
}

// Pool shapes: asymmetric pads and strides; ResNet-18's 3x3/2 pad-1 max pool on a batch big
// enough to run threaded; dilation; pads wider than the window (windows of padding only).
std::vector<std::pair<Pool2dShape, int64_t>> pool_cases() {
  std::vector<std::pair<Pool2dShape, int64_t>> cases;
  Pool2dShape s = conv(3, 9, 8, 0, 3, 2, 2, 1);
  s.pad_top = 0, s.pad_bottom = 2, s.stride_w = 1;
  cases.push_back({s, 2});
  cases.push_back({conv(64, 30, 31, 0, 3, 3, 2, 1), 3});
  cases.push_back({conv(5, 13, 12, 0, 3, 2, 1, 2, 1, 2), 2});
  Pool2dShape wide_pads = conv(2, 5, 6, 0, 2, 2, 1, 3);
  cases.push_back({wide_pads, 2});
  cases.push_back({conv(3, 7, 151, 0, 3, 3, 2, 1), 2});  // stride-2 rows of 76: 32-lane steps and a tail
  cases.push_back({conv(2, 9, 70, 0, 2, 4, 2, 0, 1, 2), 1});  // stride 2, dilation 2, no padding
  return cases;
}

template <class T, class Acc>
void check_pools(std::mt19937& rng, int64_t lo, int64_t hi) {
  for (const auto& [s, N] : pool_cases()) check_pool_case<T, Acc>(rng, lo, hi, s, N);
}

TEST(IntKernelsOps, PoolsMatchNaiveLoops) {
  apl::test::for_each_level_and_threads([] {
    std::mt19937 rng(11);
    check_pools<int8_t, int32_t>(rng, -127, 127);
    check_pools<uint8_t, int32_t>(rng, 0, 255);
    check_pools<int32_t, int64_t>(rng, -(int64_t{1} << 30), int64_t{1} << 30);
    check_pools<int8_t, int64_t>(rng, -127, 127);
  });
}

TEST(IntKernelsOps, ReluClampsNegativesOnly) {
  const std::vector<int8_t> x8{-128, -1, 0, 1, 127};
  std::vector<int8_t> y8(5);
  relu_int(5, x8.data(), y8.data());
  EXPECT_EQ(y8, (std::vector<int8_t>{0, 0, 0, 1, 127}));
  const std::vector<int32_t> x32{INT32_MIN, -5, 0, 7, INT32_MAX};
  std::vector<int32_t> y32(5);
  relu_int(5, x32.data(), y32.data());
  EXPECT_EQ(y32, (std::vector<int32_t>{0, 0, 0, 7, INT32_MAX}));
  const std::vector<uint8_t> xu{0, 128, 255};
  std::vector<uint8_t> yu(3);
  relu_int(3, xu.data(), yu.data());
  EXPECT_EQ(yu, xu);
}

template <class A, class B, class Acc>
void check_binary(std::mt19937& rng, int64_t a_lo, int64_t a_hi, int64_t b_lo, int64_t b_hi) {
  const int64_t n = 1000;
  const auto a = random_vector<A>(rng, n, a_lo, a_hi);
  const auto b = random_vector<B>(rng, n, b_lo, b_hi);
  for (IntBinaryOp op : {IntBinaryOp::Add, IntBinaryOp::Sub, IntBinaryOp::Mul}) {
    std::vector<Acc> y(n);
    binary_int(op, n, a.data(), b.data(), y.data());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t p = a[i], q = b[i];
      const int64_t want = op == IntBinaryOp::Add ? p + q : op == IntBinaryOp::Sub ? p - q : p * q;
      ASSERT_EQ(int64_t{y[i]}, want) << "op " << int(op) << " at " << i;
    }
  }
}

TEST(IntKernelsOps, BinaryMixedSignednessMatchesNaive) {
  std::mt19937 rng(13);
  check_binary<int8_t, uint8_t, int32_t>(rng, -128, 127, 0, 255);
  check_binary<uint8_t, int8_t, int32_t>(rng, 0, 255, -128, 127);
  check_binary<int8_t, int8_t, int32_t>(rng, -128, 127, -128, 127);
  check_binary<uint8_t, uint8_t, int64_t>(rng, 0, 255, 0, 255);
  check_binary<int32_t, int32_t, int64_t>(rng, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX);
  check_binary<int32_t, int32_t, int32_t>(rng, -40000, 40000, -40000, 40000);
}

// Numpy broadcasting (the squeeze-excite gate and Sum's accumulation): against an explicit loop
// over the output's multi-index.
TEST(IntKernelsOps, BinaryBroadcastingMatchesNaive) {
  std::mt19937 rng(17);
  const apl::Shape out{2, 3, 5, 4};
  for (const auto& [as, bs] : std::vector<std::pair<apl::Shape, apl::Shape>>{
           {{2, 3, 5, 4}, {2, 3, 1, 1}}, {{2, 3, 1, 1}, {2, 3, 5, 4}}, {{2, 3, 1, 4}, {1, 3, 5, 1}},
           {{2, 3, 5, 4}, {4}}, {{1}, {2, 3, 5, 4}}}) {
    const auto a = random_vector<int8_t>(rng, apl::shape_numel(as), -127, 127);
    const auto b = random_vector<uint8_t>(rng, apl::shape_numel(bs), 0, 255);
    const auto at = [&](const apl::Shape& s, int64_t n, int64_t c, int64_t h, int64_t w) {
      const int64_t idx[4] = {n, c, h, w};
      int64_t off = 0;
      for (size_t d = 0; d < s.size(); ++d) off = off * s[d] + (s[d] == 1 ? 0 : idx[d + 4 - s.size()]);
      return off;
    };
    for (IntBinaryOp op : {IntBinaryOp::Add, IntBinaryOp::Sub, IntBinaryOp::Mul}) {
      std::vector<int32_t> y(apl::shape_numel(out));
      binary_int(op, as, a.data(), bs, b.data(), out, y.data());
      for (int64_t n = 0, i = 0; n < 2; ++n)
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t h = 0; h < 5; ++h)
            for (int64_t w = 0; w < 4; ++w, ++i) {
              const int64_t p = a[at(as, n, c, h, w)], q = b[at(bs, n, c, h, w)];
              const int64_t want = op == IntBinaryOp::Add ? p + q : op == IntBinaryOp::Sub ? p - q : p * q;
              ASSERT_EQ(int64_t{y[i]}, want) << apl::shape_str(as) << " op " << int(op) << " at " << i;
            }
    }
  }
}

// ---- Shift rescale (single shifts) --------------------------------------------------------------

// Accumulators at the extremes and at every rounding boundary j * 2^k + 2^(k-1) (+-1) of shift k.
std::vector<int32_t> shift_accumulators(std::mt19937& rng, int64_t n, int k) {
  std::vector<int32_t> acc = requant_accumulators(rng, n);
  std::uniform_int_distribution<int64_t> j(-200, 200);
  const int32_t extremes[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, -1, 0, 1};
  for (int64_t i = 0; i < n; ++i) {
    if (i % 5 == 1) {
      const int64_t v = j(rng) * (int64_t(1) << k) + (k ? int64_t(1) << (k - 1) : 0) + i % 3 - 1;
      acc[i] = static_cast<int32_t>(std::clamp<int64_t>(v, INT32_MIN, INT32_MAX));
    }
    if (i < 7) acc[i] = extremes[i];
  }
  return acc;
}

// Every shift 0..31 against the general rule with multiplier 1, per tensor and per channel, with
// tails that are not a multiple of any vector width, through shift_rescale_int32, its reference
// and requantize_int32 (which routes multiplier-1 scales here).
TEST(IntKernelsShiftRescale, MatchesTheGeneralRuleForEveryShift) {
  std::mt19937 rng(31);
  struct Layout {
    int64_t N, channels, inner;
  };
  // Clamp ranges: signed, signed non-negative (ReLU), unsigned full and narrowed.
  struct Clamp {
    bool out_unsigned;
    int32_t lo, hi;
  };
  for (Layout L : {Layout{1, 1, 37}, Layout{2, 3, 29}, Layout{3, 5, 16}, Layout{2, 40, 3},
                   Layout{2, 3, 201}}) {
    const int64_t total = L.N * L.channels * L.inner;
    for (int k = 0; k < 32; ++k)
      for (bool per_channel : {false, true})
        for (Clamp clamp : {Clamp{false, -128, 100}, Clamp{false, 0, 127}, Clamp{true, 0, 255},
                            Clamp{true, 5, 200}}) {
          const bool out_unsigned = clamp.out_unsigned;
          SCOPED_TRACE("shift " + std::to_string(k) + (per_channel ? " per channel" : "") +
                       " inner " + std::to_string(L.inner));
          const std::vector<int32_t> acc = shift_accumulators(rng, total, k);
          // Per tensor is one channel covering the whole sample.
          const int64_t channels = per_channel ? L.channels : 1;
          const int64_t inner = per_channel ? L.inner : L.channels * L.inner;
          std::vector<int32_t> shifts(channels, k);
          for (int64_t c = 1; c < channels; ++c) shifts[c] = (k + 7 * int32_t(c)) % 32;
          RequantParams rq;
          for (int32_t sh : shifts) rq.scale.push_back({1, sh});
          rq.out_unsigned = out_unsigned;
          rq.lo = clamp.lo;
          rq.hi = clamp.hi;
          std::vector<int64_t> expected(total);
          for (int64_t i = 0; i < total; ++i)
            expected[i] = apl::requantize_one(acc[i], rq.scale[(i / inner) % channels], rq.lo, rq.hi);
          auto check = [&](const std::vector<uint8_t>& y, const char* what) {
            for (int64_t i = 0; i < total; ++i)
              ASSERT_EQ(out_unsigned ? int64_t{y[i]} : int64_t{int8_t(y[i])}, expected[i])
                  << what << " at " << i << " acc " << acc[i];
          };
          std::vector<uint8_t> y(total, 0x5A);
          shift_rescale_int32_reference(L.N, channels, inner, acc.data(), shifts.data(), rq.lo,
                                        rq.hi, out_unsigned, y.data());
          check(y, "reference");
          apl::test::for_each_level_and_threads([&] {
            std::vector<uint8_t> out(total, 0x5A);
            shift_rescale_int32(L.N, channels, inner, acc.data(), shifts.data(), rq.lo, rq.hi,
                                out_unsigned, out.data());
            check(out, "shift_rescale_int32");
            std::fill(out.begin(), out.end(), 0x5A);
            requantize_int32(L.N, channels, inner, acc.data(), rq, out.data());
            check(out, "requantize_int32");
          });
        }
  }
}

// A large per-tensor run (the parallel, chunked path) with realistic accumulators.
TEST(IntKernelsShiftRescale, LongRunsAgreeAcrossLevels) {
  std::mt19937 rng(8);
  const int64_t total = 300001;
  const std::vector<int32_t> acc = random_vector<int32_t>(rng, total, -2000000, 2000000);
  const int32_t shift = 13;
  std::vector<int64_t> expected(total);
  for (int64_t i = 0; i < total; ++i) expected[i] = apl::requantize_one(acc[i], {1, shift}, -127, 127);
  apl::test::for_each_level_and_threads([&] {
    std::vector<int8_t> y(total);
    shift_rescale_int32(1, 1, total, acc.data(), &shift, -127, 127, false, y.data());
    for (int64_t i = 0; i < total; ++i) ASSERT_EQ(y[i], expected[i]) << "at " << i;
  });
}

TEST(IntKernelsShiftRescale, RejectsBadParams) {
  const std::vector<int32_t> acc(8);
  std::vector<uint8_t> y(8);
  for (int32_t bad : {-1, 32}) {
    const int32_t shifts[] = {3, bad};
    EXPECT_THROW(shift_rescale_int32(1, 2, 4, acc.data(), shifts, -127, 127, false, y.data()),
                 apl::ValueError);
  }
  const int32_t shift = 3;
  EXPECT_THROW(shift_rescale_int32(1, 1, 8, acc.data(), nullptr, -127, 127, false, y.data()),
               apl::ValueError);
  EXPECT_THROW(shift_rescale_int32(1, 1, 8, acc.data(), &shift, -127, 127, true, y.data()),
               apl::ValueError);  // lo = -127 does not fit uint8
  EXPECT_THROW(shift_rescale_int32(1, 1, 8, acc.data(), &shift, 0, 200, false, y.data()),
               apl::ValueError);  // hi = 200 does not fit int8
}


// ---- A join and its Scaling in one pass ---------------------------------------------------------

// requantize_binary_int8 against its definition: binary_int into int32, then the reference
// requantization. Per-tensor and per-channel scales (single shifts too), short and long runs
// (past the fused kernel's block), every operand signedness, Add and Sub.
template <class A, class B> void check_requantize_binary(std::mt19937& rng) {
  struct Layout {
    int64_t N, channels, inner;
  };
  for (Layout L : {Layout{1, 1, 5000}, Layout{2, 3, 2049}, Layout{3, 40, 7}, Layout{2, 16, 16},
                   Layout{1, 1, 70000}})
    for (IntBinaryOp op : {IntBinaryOp::Add, IntBinaryOp::Sub})
      for (int variant = 0; variant < 4; ++variant) {
        const int64_t total = L.N * L.channels * L.inner;
        const auto a = random_vector<A>(rng, total, std::numeric_limits<A>::min(), std::numeric_limits<A>::max());
        const auto b = random_vector<B>(rng, total, std::numeric_limits<B>::min(), std::numeric_limits<B>::max());
        RequantParams rq;
        rq.scale = requant_scales(rng, variant % 2 ? L.channels : 1);
        if (variant == 0) rq.scale[0] = {1 << 30, 32};
        if (variant == 2) rq.scale[0] = {1, 1};  // a single shift
        rq.out_unsigned = variant == 3;
        rq.lo = rq.out_unsigned ? 0 : -127;
        rq.hi = rq.out_unsigned ? 255 : 127;
        std::vector<int32_t> sums(total);
        binary_int<A, B, int32_t>(op, total, a.data(), b.data(), sums.data());
        std::vector<uint8_t> expected(total);
        requantize_int32_reference(L.N, L.channels, L.inner, sums.data(), rq, expected.data());
        apl::test::for_each_level_and_threads([&] {
          std::vector<uint8_t> y(total, 0x5A);
          requantize_binary_int8<A, B>(op, L.N, L.channels, L.inner, a.data(), b.data(), rq, y.data());
          for (int64_t i = 0; i < total; ++i)
            ASSERT_EQ(y[i], expected[i]) << "at " << i << " of " << L.N << "x" << L.channels << "x"
                                         << L.inner << ", variant " << variant;
        });
      }
}

TEST(IntKernelsJoin, RequantizedSumMatchesBinaryThenRequantize) {
  std::mt19937 rng(5);
  check_requantize_binary<int8_t, int8_t>(rng);
  check_requantize_binary<uint8_t, uint8_t>(rng);
  check_requantize_binary<int8_t, uint8_t>(rng);
  check_requantize_binary<uint8_t, int8_t>(rng);
}

// requantize_codes_int8 against the reference requantization of the widened codes.
template <class T> void check_requantize_codes(std::mt19937& rng) {
  for (int64_t inner : {int64_t{3}, int64_t{16}, int64_t{2049}, int64_t{70000}})
    for (bool per_channel : {false, true}) {
      const int64_t N = 2, channels = inner > 5000 ? 1 : 5, total = N * channels * inner;
      const auto x = random_vector<T>(rng, total, std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
      RequantParams rq;
      rq.scale = requant_scales(rng, per_channel ? channels : 1);
      const std::vector<int32_t> wide(x.begin(), x.end());
      std::vector<uint8_t> expected(total);
      requantize_int32_reference(N, channels, inner, wide.data(), rq, expected.data());
      apl::test::for_each_level_and_threads([&] {
        std::vector<uint8_t> y(total, 0x5A);
        requantize_codes_int8<T>(N, channels, inner, x.data(), rq, y.data());
        for (int64_t i = 0; i < total; ++i) ASSERT_EQ(y[i], expected[i]) << "at " << i << ", inner " << inner;
      });
    }
}

TEST(IntKernelsJoin, RequantizedCodesMatchTheReference) {
  std::mt19937 rng(8);
  check_requantize_codes<int8_t>(rng);
  check_requantize_codes<uint8_t>(rng);
}

// Input quantization at every level against nearbyint: ties, NaN, +-Inf, huge and tiny values,
// and runs longer than one thread's chunk.
template <class T> void check_quantize_codes(double lo, double hi) {
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> u(-300.f, 300.f);
  const int64_t n = 70000;
  std::vector<float> x(n);
  for (float& v : x) v = u(rng);
  const float specials[] = {NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 3.4e38f, -0.f, 1e-45f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f};
  std::copy(std::begin(specials), std::end(specials), x.begin());
  for (int64_t i = 20; i < 200; ++i) x[i] = static_cast<float>(i - 110) * 0.25f;  // ties after x 2
  const double scale = 2.0;
  std::vector<T> expected(n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = std::isnan(x[i]) ? 0.0 : std::nearbyint(double(x[i]) * scale);
    expected[i] = static_cast<T>(std::clamp(v, lo, hi));
  }
  apl::test::for_each_level_and_threads([&] {
    std::vector<T> y(n, T(7));
    quantize_codes<T>(n, x.data(), scale, lo, hi, y.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], expected[i]) << "at " << i << ": x = " << x[i];
  });
}

TEST(IntKernelsInput, QuantizedCodesRoundHalfToEvenAndSaturate) {
  check_quantize_codes<int8_t>(-127, 127);
  check_quantize_codes<int8_t>(-7, 7);
  check_quantize_codes<uint8_t>(0, 255);
  check_quantize_codes<int32_t>(-32767, 32767);
}

TEST(IntKernelsJoin, RejectsMulAndBadParams) {
  const auto join = requantize_binary_int8<int8_t, int8_t>;  // (a template-id's comma splits a macro)
  const std::vector<int8_t> a(8), b(8);
  std::vector<uint8_t> y(8);
  RequantParams rq;
  rq.scale = {{1 << 30, 31}};
  EXPECT_THROW(join(IntBinaryOp::Mul, 1, 1, 8, a.data(), b.data(), rq, y.data()),
               apl::ValueError);
  rq.scale = {{1 << 30, 31}, {1 << 30, 31}, {1 << 30, 31}};  // 3 scales for 2 channels
  EXPECT_THROW(join(IntBinaryOp::Add, 1, 2, 4, a.data(), b.data(), rq, y.data()),
               apl::ValueError);
}

}  // namespace
