#include "aidge_ptq_lite/simd.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "aidge_ptq_lite/errors.hpp"

namespace apl {
namespace {

SimdLevel detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vnni");
  if (avx512) return SimdLevel::AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::AVX2;
#endif
  return SimdLevel::Scalar;
}

SimdLevel initial_level() {
  SimdLevel level = detected_simd_level();
  if (const char* env = std::getenv("APL_SIMD"); env && *env) {
    SimdLevel wanted;
    try {
      wanted = parse_simd_level(env);
    } catch (const ValueError&) {
      // Named as the user wrote it: the variable, its value and what it accepts. The Python
      // package reads the level at import, so the error comes up there, not at a first forward.
      throw ValueError(std::string("environment variable APL_SIMD='") + env +
                       "' is not a SIMD level: expected scalar, avx2 or avx512 (or unset it)");
    }
    if (static_cast<int>(wanted) < static_cast<int>(level)) level = wanted;
  }
  return level;
}

std::atomic<int>& level_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_level())};
  return slot;
}

thread_local int scoped_level = -1;  // SimdLevelScope's level on this thread, -1: none

}  // namespace

SimdLevel detected_simd_level() {
  static const SimdLevel level = detect();
  return level;
}

SimdLevel active_simd_level() {
  return static_cast<SimdLevel>(scoped_level >= 0 ? scoped_level : level_slot().load());
}

static void check_supported(SimdLevel level) {
  if (static_cast<int>(level) > static_cast<int>(detected_simd_level()))
    throw ValueError(std::string("SIMD level '") + simd_level_name(level) +
                     "' is not supported by this CPU (best: " +
                     simd_level_name(detected_simd_level()) + ")");
}

void set_simd_level(SimdLevel level) {
  check_supported(level);
  level_slot().store(static_cast<int>(level));
}

SimdLevelScope::SimdLevelScope(SimdLevel level) : previous_(scoped_level) {
  check_supported(level);
  scoped_level = static_cast<int>(level);
}

SimdLevelScope::~SimdLevelScope() { scoped_level = previous_; }

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::AVX2: return "avx2";
    case SimdLevel::AVX512: return "avx512";
  }
  return "?";
}

SimdLevel parse_simd_level(const char* name) {
  for (SimdLevel l : {SimdLevel::Scalar, SimdLevel::AVX2, SimdLevel::AVX512})
    if (std::strcmp(name, simd_level_name(l)) == 0) return l;
  throw ValueError(std::string("unknown SIMD level '") + name + "' (expected scalar, avx2 or avx512)");
}

}  // namespace apl
