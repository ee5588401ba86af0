#pragma once
#include <pybind11/pybind11.h>

// Each file of cpp/bindings/ binds one part of the API into the module.
void bind_ptq(pybind11::module_& m);
void bind_clipping(pybind11::module_& m);
void bind_kernels(pybind11::module_& m);
void bind_cle_and_signs(pybind11::module_& m);
