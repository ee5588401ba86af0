// Run-time choice of the SIMD level. Each ISA lives in its own translation unit (*_avx2.cpp,
// *_avx512.cpp) compiled with its own flags; callers dispatch on active_simd_level().
// The AVX512 level requires AVX-512 F/BW/VL/DQ and VNNI (machines without VNNI use AVX2).
// The environment variable APL_SIMD=scalar|avx2|avx512 caps the level (read once).
#pragma once

namespace apl {

enum class SimdLevel { Scalar = 0, AVX2 = 1, AVX512 = 2 };

SimdLevel detected_simd_level();  // best level this CPU supports
SimdLevel active_simd_level();    // level the kernels use now
// Force a level (tests, benchmarks). Throws ValueError if the CPU does not support it.
void set_simd_level(SimdLevel level);
const char* simd_level_name(SimdLevel level);
SimdLevel parse_simd_level(const char* name);  // throws ValueError on an unknown name

}  // namespace apl
