// Run-time choice of the SIMD level. Each ISA lives in its own translation unit (*_avx2.cpp,
// *_avx512.cpp) compiled with its own flags; callers dispatch on active_simd_level().
// The AVX512 level requires AVX-512 F/BW/VL/DQ and VNNI (machines without VNNI use AVX2).
// The AMX level is AVX512 plus AMX-TILE and AMX-INT8 tiles for the int8 convolutions and GEMMs
// (every other kernel runs its AVX512 form there); it is detected only when the kernel grants
// the process the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM, asked once).
// The environment variable APL_SIMD=scalar|avx2|avx512|amx caps the level (read once).
#pragma once

namespace apl {

enum class SimdLevel { Scalar = 0, AVX2 = 1, AVX512 = 2, AMX = 3 };

SimdLevel detected_simd_level();  // best level this CPU supports
SimdLevel active_simd_level();    // level the kernels use now
// Force a level (tests, benchmarks). Throws ValueError if the CPU does not support it.
void set_simd_level(SimdLevel level);
const char* simd_level_name(SimdLevel level);
SimdLevel parse_simd_level(const char* name);  // throws ValueError on an unknown name

// While a scope lives, active_simd_level() returns its level on this thread (whatever
// set_simd_level does meanwhile): an Executor builds and runs all its kernels under one, so a
// plan uses the one level it captured when it was built. Kernels read the level at their entry,
// on the calling thread.
class SimdLevelScope {
 public:
  explicit SimdLevelScope(SimdLevel level);  // ValueError if the CPU lacks the level
  ~SimdLevelScope();
  SimdLevelScope(const SimdLevelScope&) = delete;
  SimdLevelScope& operator=(const SimdLevelScope&) = delete;

 private:
  int previous_;
};

}  // namespace apl
