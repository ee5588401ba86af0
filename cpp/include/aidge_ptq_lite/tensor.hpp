// Tensor: a typed, contiguous, 64-byte aligned n-d array. Copies share storage (like numpy
// views); clone() makes an independent deep copy.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"

namespace apl {

enum class DType : uint8_t { F32, I8, U8, I32, I64 };

using Shape = std::vector<int64_t>;

size_t dtype_size(DType t);
const char* dtype_name(DType t);
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<int8_t>() { return DType::I8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }

class Tensor {
 public:
  Tensor() = default;
  // Zero-initialised tensor of the given type and shape.
  Tensor(DType dtype, Shape shape);
  // Contents left undefined: for a kernel's output that the kernel writes entirely (saves a
  // write pass over every activation).
  static Tensor uninitialized(DType dtype, Shape shape);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + ndim() : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return !storage_; }

  void* raw() { return storage_.get(); }
  const void* raw() const { return storage_.get(); }
  template <class T> T* data() {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(storage_.get());
  }
  template <class T> const T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(storage_.get());
  }

  // Same storage, new shape (same number of elements).
  Tensor reshaped(Shape shape) const;
  Tensor clone() const;
  // Element-wise conversion to another dtype (float -> int truncates; use the quantizers to round).
  Tensor astype(DType dtype) const;
  std::string repr() const;

 private:
  void check_dtype(DType expected) const;
  DType dtype_ = DType::F32;
  Shape shape_;
  std::shared_ptr<void> storage_;
};

}  // namespace apl
