// Per-layer speed of the int8 convolutions of ResNet-18 (224x224 input, as torch exports it):
// achieved GOPS (2 ops per multiply-add) and % of the nominal peak of the level that ran.
//
//   conv_int8_layers [batch=8] [repeats=7] [GHz=2.6] [model=resnet18|resnet20|mobilenet]
//
// model resnet20 / mobilenet: the distinct convs of the zoo ResNet-20 and MobileNet (28x28
// Fashion-MNIST input; run them at batch 64 as bench_int8.py does).
//
// Each distinct conv shape runs ConvInt8::run_requantized (uint8 in, int8 out, as in the
// integer network) at every SIMD level from avx512 up that this CPU has, the levels interleaved,
// medians of `repeats` after a warm-up. Nominal peaks at `GHz` per core x OMP threads: VNNI
// 2 x 64 MACs per cycle (two vpdpbusd zmm ports), AMX 1024 MACs per cycle (a TDPBUSD: 16x16x64
// in 16 cycles). The last line sums all 20 convs of the network (counts per shape below).
//
// For profiling one kernel: CONV_LAYERS_ONLY=<substring of a layer name> runs only the layers
// whose name contains it, CONV_LAYERS_LEVEL=avx512|amx only that level.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <iterator>
#include <vector>

#include "aidge_ptq_lite/fixed_point.hpp"
#include "aidge_ptq_lite/kernels/int_kernels.hpp"
#include "aidge_ptq_lite/simd.hpp"

namespace {

using namespace apl;
using namespace apl::kernels;

struct Layer {
  const char* name;
  int64_t C, HW, K, R, stride, pad, count;  // count: how many convs of the network have the shape
  int64_t groups = 1;
};

// conv1, then per stage the 3x3 convs and the strided 1x1 downsample.
const Layer kLayers[] = {
    {"conv1 7x7/2 3->64 @224", 3, 224, 64, 7, 2, 3, 1},
    {"3x3 64->64 @56", 64, 56, 64, 3, 1, 1, 4},
    {"3x3/2 64->128 @56", 64, 56, 128, 3, 2, 1, 1},
    {"3x3 128->128 @28", 128, 28, 128, 3, 1, 1, 3},
    {"1x1/2 64->128 @56", 64, 56, 128, 1, 2, 0, 1},
    {"3x3/2 128->256 @28", 128, 28, 256, 3, 2, 1, 1},
    {"3x3 256->256 @14", 256, 14, 256, 3, 1, 1, 3},
    {"1x1/2 128->256 @28", 128, 28, 256, 1, 2, 0, 1},
    {"3x3/2 256->512 @14", 256, 14, 512, 3, 2, 1, 1},
    {"3x3 512->512 @7", 512, 7, 512, 3, 1, 1, 3},
    {"1x1/2 256->512 @14", 256, 14, 512, 1, 2, 0, 1},
};

// The zoo ResNet-20 (28x28, 16/32/64 channels).
const Layer kResnet20[] = {
    {"3x3 1->16 @28", 1, 28, 16, 3, 1, 1, 1},
    {"3x3 16->16 @28", 16, 28, 16, 3, 1, 1, 6},
    {"3x3/2 16->32 @28", 16, 28, 32, 3, 2, 1, 1},
    {"1x1/2 16->32 @28", 16, 28, 32, 1, 2, 0, 1},
    {"3x3 32->32 @14", 32, 14, 32, 3, 1, 1, 5},
    {"3x3/2 32->64 @14", 32, 14, 64, 3, 2, 1, 1},
    {"1x1/2 32->64 @14", 32, 14, 64, 1, 2, 0, 1},
    {"3x3 64->64 @7", 64, 7, 64, 3, 1, 1, 5},
};

// The zoo MobileNet (depthwise 3x3 + pointwise 1x1).
const Layer kMobilenet[] = {
    {"3x3 1->16 @28", 1, 28, 16, 3, 1, 1, 1},
    {"dw3x3/2 16 @28", 16, 28, 16, 3, 2, 1, 1, 16},
    {"1x1 16->16 @14", 16, 14, 16, 1, 1, 0, 1},
    {"1x1 16->96 @14", 16, 14, 96, 1, 1, 0, 1},
    {"dw3x3 96 @14", 96, 14, 96, 3, 1, 1, 1, 96},
    {"1x1 96->24 @14", 96, 14, 24, 1, 1, 0, 1},
    {"1x1 24->144 @14", 24, 14, 144, 1, 1, 0, 2},
    {"dw3x3 144 @14", 144, 14, 144, 3, 1, 1, 1, 144},
    {"1x1 144->24 @14", 144, 14, 24, 1, 1, 0, 1},
    {"dw3x3/2 144 @14", 144, 14, 144, 3, 2, 1, 1, 144},
    {"1x1 144->32 @7", 144, 7, 32, 1, 1, 0, 1},
    {"1x1 32->192 @7", 32, 7, 192, 1, 1, 0, 2},
    {"dw3x3 192 @7", 192, 7, 192, 3, 1, 1, 2, 192},
    {"1x1 192->32 @7", 192, 7, 32, 1, 1, 0, 1},
    {"1x1 192->64 @7", 192, 7, 64, 1, 1, 0, 1},
    {"1x1 64->384 @7", 64, 7, 384, 1, 1, 0, 1},
    {"dw3x3 384 @7", 384, 7, 384, 3, 1, 1, 1, 384},
    {"1x1 384->64 @7", 384, 7, 64, 1, 1, 0, 1},
    {"1x1 64->256 @7", 64, 7, 256, 1, 1, 0, 1},
};

double peak_macs_per_cycle(SimdLevel level) { return level == SimdLevel::AMX ? 1024 : 128; }

}  // namespace

int main(int argc, char** argv) {
  const int64_t N = argc > 1 ? std::atoll(argv[1]) : 8;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 7;
  const double ghz = argc > 3 ? std::atof(argv[3]) : 2.6;
  const std::string model = argc > 4 ? argv[4] : "resnet18";
  std::vector<Layer> layers;
  if (model == "resnet18")
    layers.assign(std::begin(kLayers), std::end(kLayers));
  else if (model == "resnet20")
    layers.assign(std::begin(kResnet20), std::end(kResnet20));
  else if (model == "mobilenet")
    layers.assign(std::begin(kMobilenet), std::end(kMobilenet));
  else {
    std::printf("unknown model %s (resnet18, resnet20, mobilenet)\n", model.c_str());
    return 1;
  }
  if (const char* only = std::getenv("CONV_LAYERS_ONLY")) {
    std::vector<Layer> kept;
    for (const Layer& L : layers)
      if (std::string(L.name).find(only) != std::string::npos) kept.push_back(L);
    layers = kept;
  }
  int64_t nconvs = 0;
  for (const Layer& L : layers) nconvs += L.count;
  const int threads = omp_get_max_threads();
  std::vector<SimdLevel> levels{SimdLevel::AVX512};
  if (detected_simd_level() == SimdLevel::AMX) levels.push_back(SimdLevel::AMX);
  if (const char* only = std::getenv("CONV_LAYERS_LEVEL")) {
    std::vector<SimdLevel> kept;
    for (SimdLevel l : levels)
      if (std::string(simd_level_name(l)) == only) kept.push_back(l);
    levels = kept;
  }
  if (detected_simd_level() < SimdLevel::AVX512) {
    std::printf("this CPU has no AVX-512 VNNI: nothing to measure\n");
    return 0;
  }
  std::printf("%s, batch %lld, %d thread(s), medians of %d, peaks at %.2f GHz\n", model.c_str(),
              static_cast<long long>(N), threads, repeats, ghz);
  std::printf("%-24s %9s", "layer", "GMAC");
  for (SimdLevel l : levels) std::printf(" | %6s ms %7s %6s", simd_level_name(l), "GOPS", "%peak");
  std::printf("\n");
  std::mt19937 rng(3);
  std::vector<double> total_ms(levels.size(), 0.0);
  double total_gmac = 0;
  for (const Layer& L : layers) {
    Conv2dShape s;
    s.C = L.C, s.H = s.W = L.HW, s.K = L.K, s.R = s.S = L.R;
    s.stride_h = s.stride_w = L.stride;
    s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = L.pad;
    s.groups = L.groups;
    std::uniform_int_distribution<int> byte(0, 255), weight(-127, 127);
    std::vector<uint8_t> x(N * s.C * s.H * s.W);
    for (auto& v : x) v = static_cast<uint8_t>(byte(rng));
    std::vector<int8_t> w(s.K * (s.C / s.groups) * s.R * s.S);
    for (auto& v : w) v = static_cast<int8_t>(weight(rng));
    std::vector<int32_t> bias(s.K, 1000);
    std::vector<uint8_t> y(N * s.K * s.OH() * s.OW());
    RequantParams rq;
    rq.scale = {encode_multiplier(1.0 / 4096)};
    std::vector<std::unique_ptr<ConvInt8>> ops;  // packed per level
    for (SimdLevel l : levels) {
      set_simd_level(l);
      ops.push_back(std::make_unique<ConvInt8>(s, w.data(), bias.data(), true));
    }
    std::vector<std::vector<double>> ms(levels.size());
    for (int r = -1; r < repeats; ++r)
      for (size_t i = 0; i < levels.size(); ++i) {
        set_simd_level(levels[i]);
        const auto t0 = std::chrono::steady_clock::now();
        ops[i]->run_requantized(N, x.data(), rq, y.data());
        const double t = std::chrono::duration<double, std::milli>(
                             std::chrono::steady_clock::now() - t0).count();
        if (r >= 0) ms[i].push_back(t);
      }
    const double gmac = 1e-9 * N * s.K * s.OH() * s.OW() * (s.C / s.groups) * s.R * s.S;
    total_gmac += gmac * L.count;
    std::printf("%-24s %9.3f", L.name, gmac);
    for (size_t i = 0; i < levels.size(); ++i) {
      std::nth_element(ms[i].begin(), ms[i].begin() + ms[i].size() / 2, ms[i].end());
      const double t = ms[i][ms[i].size() / 2];
      total_ms[i] += t * L.count;
      const double gops = 2 * gmac / (t * 1e-3);
      const double peak = 2 * peak_macs_per_cycle(levels[i]) * ghz * threads;
      std::printf(" | %9.3f %7.0f %5.1f%%", t, gops, 100 * gops / peak);
    }
    std::printf("\n");
  }
  std::printf("%-24s %9.3f", ("all " + std::to_string(nconvs) + " convs").c_str(), total_gmac);
  for (size_t i = 0; i < levels.size(); ++i) {
    const double gops = 2 * total_gmac / (total_ms[i] * 1e-3);
    const double peak = 2 * peak_macs_per_cycle(levels[i]) * ghz * threads;
    std::printf(" | %9.3f %7.0f %5.1f%%", total_ms[i], gops, 100 * gops / peak);
  }
  std::printf("\n");
  return 0;
}
