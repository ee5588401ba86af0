// Conversions between apl::Tensor and numpy arrays (always copies: numpy owns its memory, the
// library owns its own, and neither outlives the other's mutations).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>

#include "aidge_ptq_lite/tensor.hpp"

namespace apl::py_bridge {

namespace py = pybind11;

inline py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::F32: return py::dtype::of<float>();
    case DType::I8: return py::dtype::of<int8_t>();
    case DType::U8: return py::dtype::of<uint8_t>();
    case DType::I32: return py::dtype::of<int32_t>();
    case DType::I64: return py::dtype::of<int64_t>();
  }
  return py::dtype::of<float>();
}

inline py::array to_numpy(const Tensor& t) {
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  py::array a(numpy_dtype(t.dtype()), shape);
  if (t.nbytes()) std::memcpy(a.mutable_data(), t.raw(), t.nbytes());
  return a;
}

// Copy of any numeric array as a tensor of its own dtype (float64 becomes float32).
inline Tensor from_numpy(const py::array& src, const char* what) {
  DType t;
  py::array a;
  const char kind = src.dtype().kind();
  const auto size = src.dtype().itemsize();
  if (kind == 'f') {
    t = DType::F32;
    a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(src);
  } else if ((kind == 'i' && size == 8) || (kind == 'u' && size >= 4)) {
    t = DType::I64;
    a = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(src);
  } else if (kind == 'i' && size == 1) {
    t = DType::I8;
    a = py::array_t<int8_t, py::array::c_style>::ensure(src);
  } else if (kind == 'u' && size == 1) {
    t = DType::U8;
    a = py::array_t<uint8_t, py::array::c_style>::ensure(src);
  } else if ((kind == 'i' || kind == 'u' || kind == 'b') && size <= 4) {
    t = DType::I32;
    a = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(src);
  } else {
    throw ValueError(std::string(what) + ": unsupported array dtype '" +
                     std::string(py::str(src.dtype())) + "'");
  }
  if (!a) throw ValueError(std::string(what) + ": cannot convert the array");
  Shape shape(a.shape(), a.shape() + a.ndim());
  Tensor out(t, shape);
  if (out.nbytes()) std::memcpy(out.raw(), a.data(), out.nbytes());
  return out;
}

// The forward input: float32, C-contiguous; other float types are converted, anything else refused.
inline Tensor input_from_numpy(const py::handle& obj) {
  py::array src = py::array::ensure(obj);
  if (!src) throw ValueError("forward expects a numpy array, got " + std::string(py::str(py::type::of(obj))));
  if (src.dtype().kind() != 'f')
    throw ValueError("forward expects a float array, got dtype '" + std::string(py::str(src.dtype())) + "'");
  return from_numpy(src, "forward input");
}

}  // namespace apl::py_bridge
