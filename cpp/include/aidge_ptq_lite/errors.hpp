// Exceptions of the library. Every error names what is wrong (node, op, shape); the Python
// bindings map each class to a Python exception (see cpp/bindings/module.cpp).
#pragma once
#include <stdexcept>
#include <string>

namespace apl {

// Base of every error raised by the library.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A tensor shape or rank that does not fit the graph (Python: ValueError subclass).
struct ShapeError : Error {
  using Error::Error;
};
// An argument value out of its domain: nb_bits, empty or non-finite data (Python: ValueError).
struct ValueError : Error {
  using Error::Error;
};
// An operator or attribute the library does not implement (Python: NotImplementedError).
struct UnsupportedError : Error {
  using Error::Error;
};
// A graph that is malformed: cycle, dangling input, duplicate name (Python: ValueError).
struct GraphError : Error {
  using Error::Error;
};

}  // namespace apl
