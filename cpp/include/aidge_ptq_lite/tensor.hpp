// Tensor: a typed, contiguous, 64-byte aligned n-d array. Copies share storage (like numpy
// views); clone() makes an independent deep copy.
#pragma once
#include <cstdint>
#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"

namespace apl {

enum class DType : uint8_t { F32, I8, U8, I32, I64 };

using Shape = std::vector<int64_t>;

// The largest tensor the library creates: 2^36 bytes (64 GiB). Every element and byte count is
// computed with overflow checks against it, so that no shape from a model file can wrap an
// int64 count into a small allocation: a model is refused at load (ShapeError naming the node)
// when a per-sample shape would exceed kMaxTensorElements, and a tensor (e.g. a batch at
// forward) is refused when it would exceed kMaxTensorBytes.
constexpr int64_t kMaxTensorBytes = int64_t{1} << 36;
// Per-sample shapes at load: the count of the widest element (8 bytes, int64 accumulators).
constexpr int64_t kMaxTensorElements = kMaxTensorBytes / 8;

size_t dtype_size(DType t);
const char* dtype_name(DType t);
std::string shape_str(const Shape& s);
// Element count; ShapeError for a negative dimension or a count above kMaxTensorBytes (or one
// that would overflow int64).
int64_t shape_numel(const Shape& s);
// Element count of s with at most `max_elements` elements; ShapeError starting with `what`
// (e.g. the node's label) for a negative dimension, an overflow or a count above the limit.
int64_t checked_numel(const Shape& s, const std::string& what,
                      int64_t max_elements = kMaxTensorElements);
// a + b and a * b for non-negative counts; ShapeError starting with `what` when the result
// exceeds `limit` (default: the int64 range).
int64_t checked_add(int64_t a, int64_t b, const std::string& what,
                    int64_t limit = INT64_MAX);
int64_t checked_mul(int64_t a, int64_t b, const std::string& what,
                    int64_t limit = INT64_MAX);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<int8_t>() { return DType::I8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }

class Tensor {
 public:
  Tensor() = default;
  // Zero-initialised tensor of the given type and shape (ShapeError above kMaxTensorBytes).
  Tensor(DType dtype, Shape shape);
  // Contents left undefined: for a kernel's output that the kernel writes entirely (saves a
  // write pass over every activation).
  static Tensor uninitialized(DType dtype, Shape shape);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + ndim() : i); }
  // Counted once when the shape is set (never throws: safe inside OpenMP regions).
  int64_t numel() const noexcept { return numel_; }
  size_t nbytes() const noexcept { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
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
  int64_t numel_ = 1;  // of shape_
  std::shared_ptr<void> storage_;
};

}  // namespace apl
