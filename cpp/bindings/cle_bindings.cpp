#include "bindings.hpp"

void bind_cle_and_signs(pybind11::module_& m) {}
