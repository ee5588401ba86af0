// Requantization int32 -> int8/uint8 (and the wide int64 -> int32 reference). The rule is
// requantize_one / requantize_one_wide in requantize.hpp; the SIMD runs are bit-identical to it.
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "aidge_ptq_lite/kernels/int_kernels.hpp"
#include "aidge_ptq_lite/simd.hpp"
#include "int_kernels_isa.hpp"
#include "widen_loops.hpp"

namespace apl::kernels {

namespace scalar {
void requantize_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                    bool per_lane, int32_t lo, int32_t hi, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<uint8_t>(requantize_one(acc[i], scale[per_lane ? i : 0], lo, hi));
}
// The general rule with m = 1 (in 64 bits, so acc + 2^(k-1) cannot overflow).
void shift_rescale_run(const int32_t* acc, int64_t n, const FixedPointMultiplier* scale,
                       bool per_lane, int32_t lo, int32_t hi, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<uint8_t>(
        requantize_one(acc[i], {1, scale[per_lane ? i : 0].shift}, lo, hi));
}
}  // namespace scalar

RequantizeRunFn requantize_run_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AMX:  // AMX tiles serve the int8 GEMMs; vector kernels are AVX512 here
    case SimdLevel::AVX512: return avx512::requantize_run;
    case SimdLevel::AVX2: return avx2::requantize_run;
    case SimdLevel::Scalar: break;
  }
  return scalar::requantize_run;
}

RequantizeRunFn shift_rescale_run_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AMX:  // AMX tiles serve the int8 GEMMs; vector kernels are AVX512 here
    case SimdLevel::AVX512: return avx512::shift_rescale_run;
    case SimdLevel::AVX2: return avx2::shift_rescale_run;
    case SimdLevel::Scalar: break;
  }
  return scalar::shift_rescale_run;
}

namespace {

bool is_single_shift(const FixedPointMultiplier& fp) {
  return fp.multiplier == 1 && fp.shift >= 0 && fp.shift <= 31;
}

}  // namespace

RequantStage requant_stage_for(SimdLevel level, const std::vector<FixedPointMultiplier>& scale) {
  if (std::all_of(scale.begin(), scale.end(), is_single_shift))
    return {shift_rescale_run_for(level), scale};
  RequantStage stage{requantize_run_for(level), scale};
  for (FixedPointMultiplier& fp : stage.scale) fp = with_shift_at_least_32(fp);
  return stage;
}

namespace {

void check_shifts(const std::vector<FixedPointMultiplier>& scale) {
  for (const FixedPointMultiplier& fp : scale)
    if (fp.shift < 0 || fp.shift > 62)
      throw ValueError("requantize: shift " + std::to_string(fp.shift) + " outside [0, 62]");
}

}  // namespace

void check_requant_params(int64_t channels, const RequantParams& rq) {
  const auto n = static_cast<int64_t>(rq.scale.size());
  if (n != 1 && n != channels)
    throw ValueError("requantize: " + std::to_string(n) + " multipliers for " +
                     std::to_string(channels) + " channels (expected 1 or " +
                     std::to_string(channels) + ")");
  const int32_t type_lo = rq.out_unsigned ? 0 : -128, type_hi = rq.out_unsigned ? 255 : 127;
  if (rq.lo > rq.hi || rq.lo < type_lo || rq.hi > type_hi)
    throw ValueError("requantize: clamp range [" + std::to_string(rq.lo) + ", " +
                     std::to_string(rq.hi) + "] does not fit the " +
                     (rq.out_unsigned ? "uint8" : "int8") + " output");
  check_shifts(rq.scale);
}

namespace {

// Below this many elements per channel, per-channel scales are expanded per element so the
// SIMD run covers whole samples instead of tiny per-channel runs.
constexpr int64_t kMinChannelRun = 16;

// Splits the tensor into runs over the threads (by chunks, channels or samples) and calls
// run(begin, length, scale, per_lane) for each: element `begin` onwards, scale[0] for all of
// them or (per_lane) scale[i] for element begin + i.
template <class Run>
void for_each_run(const std::vector<FixedPointMultiplier>& scale, int64_t N, int64_t channels,
                  int64_t inner, Run&& run) {
  const int64_t total = N * channels * inner;
  const bool parallel = total >= (int64_t(1) << 16);
  if (scale.size() == 1) {
    constexpr int64_t kChunk = int64_t(1) << 14;
    const int64_t chunks = (total + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t c = 0; c < chunks; ++c)
      run(c * kChunk, std::min(kChunk, total - c * kChunk), scale.data(), false);
  } else if (inner >= kMinChannelRun) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t nc = 0; nc < N * channels; ++nc) run(nc * inner, inner, &scale[nc % channels], false);
  } else {
    std::vector<FixedPointMultiplier> per_element(channels * inner);
    for (int64_t c = 0; c < channels; ++c)
      std::fill_n(per_element.begin() + c * inner, inner, scale[c]);
    const int64_t sample = channels * inner;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t n = 0; n < N; ++n) run(n * sample, sample, per_element.data(), true);
  }
}

void requantize_with(const RequantStage& stage, int64_t N, int64_t channels, int64_t inner,
                     const int32_t* acc, const RequantParams& rq, uint8_t* y) {
  for_each_run(stage.scale, N, channels, inner,
               [&](int64_t begin, int64_t n, const FixedPointMultiplier* scale, bool per_lane) {
                 stage.run(acc + begin, n, scale, per_lane, rq.lo, rq.hi, y + begin);
               });
}

}  // namespace

void requantize_int32(int64_t N, int64_t channels, int64_t inner, const int32_t* acc,
                      const RequantParams& rq, void* y) {
  check_requant_params(channels, rq);
  requantize_with(requant_stage_for(active_simd_level(), rq.scale), N, channels, inner, acc, rq,
                  static_cast<uint8_t*>(y));
}

void requantize_int32_reference(int64_t N, int64_t channels, int64_t inner, const int32_t* acc,
                                const RequantParams& rq, void* y) {
  check_requant_params(channels, rq);
  auto* out = static_cast<uint8_t*>(y);
  const bool per_channel = rq.scale.size() != 1;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t idx = (n * channels + c) * inner + i;
        const int32_t v = requantize_one(acc[idx], rq.scale[per_channel ? c : 0], rq.lo, rq.hi);
        if (rq.out_unsigned)
          out[idx] = static_cast<uint8_t>(v);
        else
          reinterpret_cast<int8_t*>(out)[idx] = static_cast<int8_t>(v);
      }
}

namespace {

// Requantizes int32 values that `fill(begin, m, values)` writes for elements [begin, begin + m),
// in blocks that stay in L1: they never go through memory as a tensor.
template <class Fill>
void requantize_filled(int64_t N, int64_t channels, int64_t inner, const RequantParams& rq, void* y,
                       Fill&& fill) {
  check_requant_params(channels, rq);
  const RequantStage stage = requant_stage_for(active_simd_level(), rq.scale);
  auto* out = static_cast<uint8_t*>(y);
  for_each_run(stage.scale, N, channels, inner,
               [&](int64_t begin, int64_t n, const FixedPointMultiplier* scale, bool per_lane) {
                 constexpr int64_t kBlock = 2048;
                 int32_t values[kBlock];
                 for (int64_t off = 0; off < n; off += kBlock) {
                   const int64_t m = std::min(kBlock, n - off);
                   fill(begin + off, m, values);
                   stage.run(values, m, per_lane ? scale + off : scale, per_lane, rq.lo, rq.hi,
                             out + begin + off);
                 }
               });
}

}  // namespace

template <class A, class B>
void requantize_binary_int8(IntBinaryOp op, int64_t N, int64_t channels, int64_t inner, const A* a,
                            const B* b, const RequantParams& rq, void* y) {
  if (op == IntBinaryOp::Mul) throw ValueError("requantize_binary_int8: Add or Sub only");
  const bool subtract = op == IntBinaryOp::Sub, simd = active_simd_level() >= SimdLevel::AVX512;
  requantize_filled(N, channels, inner, rq, y, [&](int64_t begin, int64_t m, int32_t* sums) {
    if (simd) avx512::widen_sum(a + begin, b + begin, m, subtract, sums);
    else widen_sum_loop(a + begin, b + begin, m, subtract, sums);
  });
}

template <class T>
void requantize_codes_int8(int64_t N, int64_t channels, int64_t inner, const T* x,
                           const RequantParams& rq, void* y) {
  const bool simd = active_simd_level() >= SimdLevel::AVX512;
  requantize_filled(N, channels, inner, rq, y, [&](int64_t begin, int64_t m, int32_t* values) {
    if (simd) avx512::widen(x + begin, m, values);
    else widen_loop(x + begin, m, values);
  });
}
template void requantize_codes_int8<int8_t>(int64_t, int64_t, int64_t, const int8_t*, const RequantParams&, void*);
template void requantize_codes_int8<uint8_t>(int64_t, int64_t, int64_t, const uint8_t*, const RequantParams&, void*);

#define APL_REQUANTIZE_BINARY(A, B)                                                              \
  template void requantize_binary_int8<A, B>(IntBinaryOp, int64_t, int64_t, int64_t, const A*, \
                                             const B*, const RequantParams&, void*);
APL_REQUANTIZE_BINARY(int8_t, int8_t)
APL_REQUANTIZE_BINARY(int8_t, uint8_t)
APL_REQUANTIZE_BINARY(uint8_t, int8_t)
APL_REQUANTIZE_BINARY(uint8_t, uint8_t)
#undef APL_REQUANTIZE_BINARY

namespace {

// The `channels` shifts as RequantParams of multiplier 1, validated like requantize_int32's.
RequantParams shift_params(int64_t channels, const int32_t* shifts, int32_t lo, int32_t hi,
                           bool out_unsigned) {
  if (!shifts) throw ValueError("shift_rescale: null shifts");
  RequantParams rq;
  rq.lo = lo;
  rq.hi = hi;
  rq.out_unsigned = out_unsigned;
  rq.scale.resize(channels);
  for (int64_t c = 0; c < channels; ++c) {
    if (shifts[c] < 0 || shifts[c] > 31)
      throw ValueError("shift_rescale: shift " + std::to_string(shifts[c]) + " outside [0, 31]");
    rq.scale[c] = {1, shifts[c]};
  }
  check_requant_params(channels, rq);
  return rq;
}

}  // namespace

void shift_rescale_int32(int64_t N, int64_t channels, int64_t inner, const int32_t* acc,
                         const int32_t* shifts, int32_t lo, int32_t hi, bool out_unsigned,
                         void* y) {
  const RequantParams rq = shift_params(channels, shifts, lo, hi, out_unsigned);
  requantize_with({shift_rescale_run_for(active_simd_level()), rq.scale}, N, channels, inner, acc,
                  rq, static_cast<uint8_t*>(y));
}

void shift_rescale_int32_reference(int64_t N, int64_t channels, int64_t inner,
                                   const int32_t* acc, const int32_t* shifts, int32_t lo,
                                   int32_t hi, bool out_unsigned, void* y) {
  requantize_int32_reference(N, channels, inner, acc,
                             shift_params(channels, shifts, lo, hi, out_unsigned), y);
}

void requantize_wide_reference(int64_t N, int64_t channels, int64_t inner, const int64_t* acc,
                               const std::vector<FixedPointMultiplier>& scale, int64_t lo,
                               int64_t hi, int32_t* y) {
  if (scale.size() != 1 && static_cast<int64_t>(scale.size()) != channels)
    throw ValueError("requantize_wide: " + std::to_string(scale.size()) + " multipliers for " +
                     std::to_string(channels) + " channels");
  if (lo > hi || lo < INT32_MIN || hi > INT32_MAX)
    throw ValueError("requantize_wide: clamp range does not fit int32");
  check_shifts(scale);
  const bool per_channel = scale.size() != 1;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t idx = (n * channels + c) * inner + i;
        y[idx] = static_cast<int32_t>(
            requantize_one_wide(acc[idx], scale[per_channel ? c : 0], lo, hi));
      }
}

}  // namespace apl::kernels
