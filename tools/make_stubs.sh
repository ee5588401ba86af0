#!/usr/bin/env bash
# Regenerates python/aidge_ptq_lite/_core.pyi from the compiled module (pip install pybind11-stubgen).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
pybind11-stubgen aidge_ptq_lite._core -o "$out"
cp "$out/aidge_ptq_lite/_core.pyi" "$root/python/aidge_ptq_lite/_core.pyi"
rm -r "$out"
