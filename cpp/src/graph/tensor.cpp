#include "aidge_ptq_lite/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>

namespace apl {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::I8: return 1;
    case DType::U8: return 1;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::I8: return "int8";
    case DType::U8: return "uint8";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
  }
  return "?";
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ',';
  os << ')';
  return os.str();
}

int64_t checked_add(int64_t a, int64_t b, const std::string& what, int64_t limit) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r) || r > limit)
    throw ShapeError(what + ": " + std::to_string(a) + " + " + std::to_string(b) +
                     (a < 0 || b < 0 ? " has a negative term" : " exceeds " + std::to_string(limit)));
  return r;
}

int64_t checked_mul(int64_t a, int64_t b, const std::string& what, int64_t limit) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || r > limit)
    throw ShapeError(what + ": " + std::to_string(a) + " x " + std::to_string(b) +
                     (a < 0 || b < 0 ? " has a negative factor" : " exceeds " + std::to_string(limit)));
  return r;
}

int64_t checked_numel(const Shape& s, const std::string& what, int64_t max_elements) {
  int64_t n = 1;
  bool too_large = false;
  for (int64_t d : s)
    if (d < 0) throw ShapeError(what + ": negative dimension in shape " + shape_str(s));
  for (int64_t d : s)
    if (d == 0) return 0;  // before the product: (2^40, 2^40, 0) is empty, not an overflow
  for (int64_t d : s)
    if (__builtin_mul_overflow(n, d, &n) || n > max_elements) {
      too_large = true;
      break;
    }
  if (too_large)
    throw ShapeError(what + ": shape " + shape_str(s) + " has more than " +
                     std::to_string(max_elements) + " elements (the library's limit: tensors of "
                     "at most 2^36 bytes)");
  return n;
}

int64_t shape_numel(const Shape& s) { return checked_numel(s, "tensor", kMaxTensorBytes); }

namespace {
// Whole cache lines and one more, so SIMD tails may read a full vector past the end safely.
size_t allocated_bytes(size_t nbytes) { return (nbytes + 64 + 63) / 64 * 64; }

// Freed blocks of 1 MiB and more, kept for the next tensors of about their size (as
// onnxruntime's CPU arena does). The allocator maps such blocks afresh each time and the kernel
// zeroes every page on first touch: a ResNet-18 forward at batch 64 allocates ~600 MB of
// activations. At most kCachedBytes (APL_TENSOR_CACHE_MIB, 0: off) are kept; a block serves a
// request of at least 4/5 of its size. Never destroyed (tensors may outlive static destructors).
class BlockCache {
 public:
  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache();
    return *cache;
  }
  static constexpr size_t kMinBytes = size_t(1) << 20;

  void* take(size_t bytes, size_t* block_bytes) {
    if (bytes >= kMinBytes && limit_ > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first / 5 * 4 <= bytes) {
        *block_bytes = it->first;
        void* p = it->second;
        cached_ -= it->first;
        free_.erase(it);
        return p;
      }
    }
    *block_bytes = bytes;
    return std::aligned_alloc(64, bytes);
  }
  void give_back(void* p, size_t bytes) {
    if (bytes >= kMinBytes && bytes <= limit_) {
      std::lock_guard<std::mutex> lock(mutex_);
      while (cached_ + bytes > limit_ && !free_.empty()) {  // the largest go first
        const auto largest = std::prev(free_.end());
        cached_ -= largest->first;
        std::free(largest->second);
        free_.erase(largest);
      }
      free_.emplace(bytes, p);
      cached_ += bytes;
      return;
    }
    std::free(p);
  }

 private:
  BlockCache() {
    const char* mib = std::getenv("APL_TENSOR_CACHE_MIB");
    limit_ = (mib && *mib ? std::strtoull(mib, nullptr, 10) : 1024) << 20;
  }
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // by size
  size_t cached_ = 0, limit_ = 0;
};
}  // namespace

Tensor Tensor::uninitialized(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.numel_ = checked_numel(shape, std::string(dtype_name(dtype)) + " tensor",
                           kMaxTensorBytes / static_cast<int64_t>(dtype_size(dtype)));
  t.shape_ = std::move(shape);
  size_t block = 0;
  void* p = BlockCache::instance().take(allocated_bytes(t.nbytes()), &block);
  if (!p) throw Error("out of memory allocating a tensor of shape " + shape_str(t.shape_));
  t.storage_ = std::shared_ptr<void>(p, [block](void* q) { BlockCache::instance().give_back(q, block); });
  return t;
}

Tensor::Tensor(DType dtype, Shape shape) {
  *this = uninitialized(dtype, std::move(shape));
  std::memset(storage_.get(), 0, allocated_bytes(nbytes()));
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel())
    throw ShapeError("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);  // same count: numel_ stays
  return t;
}

Tensor Tensor::clone() const {
  if (empty()) return Tensor();
  Tensor t(dtype_, shape_);
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

namespace {
template <class Dst, class Src>
void convert(const Src* src, Dst* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<Dst>(src[i]);
}
template <class Dst>
void convert_from(const Tensor& src, Dst* dst) {
  const int64_t n = src.numel();
  switch (src.dtype()) {
    case DType::F32: convert(src.data<float>(), dst, n); break;
    case DType::I8: convert(src.data<int8_t>(), dst, n); break;
    case DType::U8: convert(src.data<uint8_t>(), dst, n); break;
    case DType::I32: convert(src.data<int32_t>(), dst, n); break;
    case DType::I64: convert(src.data<int64_t>(), dst, n); break;
  }
}
}  // namespace

Tensor Tensor::astype(DType dtype) const {
  Tensor t = uninitialized(dtype, shape_);
  switch (dtype) {
    case DType::F32: convert_from(*this, t.data<float>()); break;
    case DType::I8: convert_from(*this, t.data<int8_t>()); break;
    case DType::U8: convert_from(*this, t.data<uint8_t>()); break;
    case DType::I32: convert_from(*this, t.data<int32_t>()); break;
    case DType::I64: convert_from(*this, t.data<int64_t>()); break;
  }
  return t;
}

std::string Tensor::repr() const { return std::string(dtype_name(dtype_)) + shape_str(shape_); }

void Tensor::check_dtype(DType expected) const {
  if (expected != dtype_)
    throw Error(std::string("tensor of dtype ") + dtype_name(dtype_) + " accessed as " +
                dtype_name(expected));
}

}  // namespace apl
