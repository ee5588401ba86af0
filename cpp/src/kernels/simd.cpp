#include "aidge_ptq_lite/simd.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "aidge_ptq_lite/errors.hpp"

namespace apl {
namespace {

// AMX-TILE and AMX-INT8 in CPUID, and the kernel's permission to use the tile data (Linux keeps
// it off until a process asks: ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA). Asked once, from
// detect(); the permission then holds for every thread of the process.
bool amx_int8_usable() {
#if defined(__linux__) && defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool tile = (edx >> 24) & 1, int8 = (edx >> 25) & 1;
  if (!tile || !int8) return false;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

SimdLevel detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vnni");
  if (avx512) return amx_int8_usable() ? SimdLevel::AMX : SimdLevel::AVX512;
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
                       "' is not a SIMD level: expected scalar, avx2 or avx512, amx on AMX-INT8 CPUs "
                       "(or unset it)");
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
    case SimdLevel::AMX: return "amx";
  }
  return "?";
}

SimdLevel parse_simd_level(const char* name) {
  for (SimdLevel l : {SimdLevel::Scalar, SimdLevel::AVX2, SimdLevel::AVX512, SimdLevel::AMX})
    if (std::strcmp(name, simd_level_name(l)) == 0) return l;
  throw ValueError(std::string("unknown SIMD level '") + name +
                   "' (expected scalar, avx2, avx512 or amx)");
}

}  // namespace apl
