#!/usr/bin/env bash
# The one test command: builds and runs the C++ unit tests (ctest), then the Python tests (pytest)
# against the installed package (pip install ".[test]" first; see README).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${APL_TEST_BUILD_DIR:-$root/build/ctest}"

cmake -S "$root" -B "$build" -DAPL_BUILD_TESTS=ON -DAPL_BUILD_PYTHON=OFF -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"

cd "$root"
python -m pytest -q tests "$@"
