#!/usr/bin/env bash
# The C++ unit tests under AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer, in a
# second build (build/asan unless APL_ASAN_BUILD_DIR says otherwise). Exits non-zero on any
# sanitizer report or test failure. The tests themselves loop over every SIMD level and several
# thread counts, so one ctest run covers the scalar, AVX2 and AVX-512 kernels.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${APL_ASAN_BUILD_DIR:-$root/build/asan}"
jobs="$(nproc)"
generator=()
command -v ninja > /dev/null && [[ ! -f "$build/CMakeCache.txt" ]] && generator=(-G Ninja)

# -O1 -g: an instrumented -O2 build takes much longer on 2 cores, and -O1 keeps usable stacks.
cmake -S "$root" -B "$build" "${generator[@]}" \
  -DAPL_SANITIZE=ON -DAPL_BUILD_TESTS=ON -DAPL_BUILD_PYTHON=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -fno-omit-frame-pointer" > /dev/null
cmake --build "$build" -j "$jobs"

# The build really is instrumented (a silently dropped flag would make this script vacuous).
symbols="$(nm "$build/apl_tests")"
[[ "$symbols" == *__asan_report_load* && "$symbols" == *__ubsan_handle* ]] \
  || { echo "apl_tests is not built with ASan/UBSan" >&2; exit 1; }

# Any report is fatal: ASan aborts at the first error, UBSan halts (the build also passes
# -fno-sanitize-recover=all), LeakSanitizer reports at the exit of each test process and then
# fails it. No suppressions are needed: libgomp gives no false positive here.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"  # the parallel paths run under ASan too

ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600
echo "sanitizers (ASan + LSan + UBSan): clean"
