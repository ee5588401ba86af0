#pragma once
#include <pybind11/pybind11.h>

// Each file of cpp/bindings/ binds one part of the API into the module.
void bind_ptq(pybind11::module_& m);
void bind_clipping(pybind11::module_& m);
void bind_kernels(pybind11::module_& m);
void bind_cle_and_signs(pybind11::module_& m);

namespace apl {
struct QuantizeOptions;
}
// QuantizeOptions as a dict (ptq_bindings.cpp): QuantizeOptions.to_dict() and Graph.quantization.
pybind11::dict options_dict(const apl::QuantizeOptions& options);
