#include "bindings.hpp"

void bind_clipping(pybind11::module_& m) {}
