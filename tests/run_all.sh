#!/usr/bin/env bash
# The one test command: builds and runs the C++ unit tests (ctest), then the Python tests (pytest)
# against the installed package (pip install ".[test]" first; see README). The `slow` suite (the
# accuracy targets on the full test set) is deselected: `python -m pytest -q -m slow tests` runs
# it (CI does, after this); extra arguments go to pytest, and a later `-m` replaces this one.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${APL_TEST_BUILD_DIR:-$root/build/ctest}"

cmake -S "$root" -B "$build" -DAPL_BUILD_TESTS=ON -DAPL_BUILD_PYTHON=OFF -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"

# The C++ package: install it, then build and run the example against the installed copy.
cmake --install "$build" --prefix "$build/install" > /dev/null
cmake -S "$root/examples/cpp" -B "$build/example" -DCMAKE_PREFIX_PATH="$build/install" > /dev/null
cmake --build "$build/example" -j "$(nproc)" > /dev/null
"$build/example/quantize_example" > /dev/null && echo "C++ example against the installed package: OK"
# The C++ benchmarks are only built here (run them by hand: benchmarks/cpp/CMakeLists.txt).
cmake -S "$root/benchmarks/cpp" -B "$build/bench-cpp" -DCMAKE_PREFIX_PATH="$build/install" > /dev/null
cmake --build "$build/bench-cpp" -j "$(nproc)" > /dev/null

cd "$root"
python -m pytest -q -m "not slow" tests "$@"
