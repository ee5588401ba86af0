// Bindings of raw kernel entry points for benchmarks and tests (underscore names, not the public
// API): the int32 -> int8/uint8 output stages on a 1-D array, per tensor.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>

#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/kernels/int_kernels.hpp"
#include "bindings.hpp"

namespace py = pybind11;
using namespace apl;

namespace {

using Accumulators = py::array_t<int32_t, py::array::c_style>;

// `out` when given (checked, so the kernel writes exactly n bytes into it), else a new array; a
// preallocated output lets benchmarks time the kernel without the allocation.
py::array output_for(int64_t n, bool out_unsigned, const std::optional<py::array>& out) {
  const py::dtype dtype = out_unsigned ? py::dtype::of<uint8_t>() : py::dtype::of<int8_t>();
  if (!out) return py::array(dtype, std::vector<py::ssize_t>{n});
  const py::array& y = *out;
  if (!y.dtype().equal(dtype) || y.ndim() != 1 || y.size() != n ||
      !(y.flags() & py::array::c_style) || !y.writeable())
    throw ValueError("out must be a writeable contiguous 1-D " +
                     std::string(out_unsigned ? "uint8" : "int8") + " array of " +
                     std::to_string(n) + " elements");
  return y;
}

// Runs kernel(n, acc, y) without the GIL and returns y.
template <class Kernel>
py::array rescale(const Accumulators& acc, bool out_unsigned, const std::optional<py::array>& out,
                  Kernel kernel) {
  if (acc.ndim() != 1) throw ValueError("acc must be a 1-D int32 array");
  const int64_t n = acc.size();
  py::array y = output_for(n, out_unsigned, out);
  const int32_t* a = acc.data();
  void* dst = y.mutable_data();
  {
    py::gil_scoped_release release;
    kernel(n, a, dst);
  }
  return y;
}

}  // namespace

void bind_kernels(py::module_& m) {
  m.def("_shift_rescale",
        [](const Accumulators& acc, int32_t shift, int32_t lo, int32_t hi, bool out_unsigned,
           const std::optional<py::array>& out) {
          return rescale(acc, out_unsigned, out, [&](int64_t n, const int32_t* a, void* y) {
            kernels::shift_rescale_int32(1, 1, n, a, &shift, lo, hi, out_unsigned, y);
          });
        },
        py::arg("acc"), py::arg("shift"), py::arg("lo"), py::arg("hi"), py::arg("out_unsigned"),
        py::arg("out") = std::nullopt, R"pbdoc(
Kernel entry point for benchmarks and tests: clamp((acc + 2^(shift-1)) >> shift, lo, hi) of a
1-D int32 array as int8 (uint8 if out_unsigned), shift in [0, 31]. Writes into ``out`` when
given (contiguous, same size, that dtype), else a new array. Releases the GIL.
)pbdoc");
  m.def("_multiplier_rescale",
        [](const Accumulators& acc, int32_t multiplier, int32_t shift, int32_t lo, int32_t hi,
           bool out_unsigned, const std::optional<py::array>& out) {
          kernels::RequantParams rq;
          rq.scale = {{multiplier, shift}};
          rq.lo = lo;
          rq.hi = hi;
          rq.out_unsigned = out_unsigned;
          return rescale(acc, out_unsigned, out, [&](int64_t n, const int32_t* a, void* y) {
            kernels::requantize_int32(1, 1, n, a, rq, y);
          });
        },
        py::arg("acc"), py::arg("multiplier"), py::arg("shift"), py::arg("lo"), py::arg("hi"),
        py::arg("out_unsigned"), py::arg("out") = std::nullopt, R"pbdoc(
Kernel entry point for benchmarks and tests: the general requantization
clamp((acc * multiplier + 2^(shift-1)) >> shift, lo, hi) of a 1-D int32 array, per tensor,
shift in [0, 62] (multiplier 1 takes the shift-rescale loop). ``out`` as in ``_shift_rescale``.
Releases the GIL.
)pbdoc");
}
