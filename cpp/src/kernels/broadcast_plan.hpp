// Numpy broadcasting of two operands against an output shape, as a loop plan shared by the
// float and integer binary kernels (float/elementwise.cpp, int/int_ops.cpp). Internal.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/tensor.hpp"

namespace apl::kernels {

// An output shape collapsed into as few axes as possible: adjacent axes merge when a and b both
// broadcast along them or both do not. Strides are in elements of a and b (0 = broadcast).
struct BroadcastPlan {
  std::vector<int64_t> dims, a_stride, b_stride;
};

inline BroadcastPlan plan_broadcast(const Shape& a_shape, const Shape& b_shape, const Shape& out_shape,
                                    const char* who) {
  const size_t rank = out_shape.size();
  auto dim_of = [rank](const Shape& s, size_t axis) {  // right-aligned, missing axes are 1
    return axis + s.size() >= rank ? s[axis + s.size() - rank] : int64_t{1};
  };
  auto check = [&](const Shape& s, const char* name) {
    bool ok = s.size() <= rank;
    for (size_t axis = 0; ok && axis < rank; ++axis)
      ok = dim_of(s, axis) == 1 || dim_of(s, axis) == out_shape[axis];
    if (!ok)
      throw ShapeError(std::string(who) + ": operand " + name + " of shape " + shape_str(s) +
                       " does not broadcast to " + shape_str(out_shape));
  };
  check(a_shape, "a");
  check(b_shape, "b");

  BroadcastPlan plan;
  int64_t a_size = 1, b_size = 1;  // elements of a and b spanned by the axes seen so far
  for (size_t axis = rank; axis-- > 0;) {
    const int64_t d = out_shape[axis];
    if (d == 1) continue;
    const bool a_full = dim_of(a_shape, axis) == d, b_full = dim_of(b_shape, axis) == d;
    const bool merge = !plan.dims.empty() && (plan.a_stride.back() != 0) == a_full &&
                       (plan.b_stride.back() != 0) == b_full;
    if (merge) {
      plan.dims.back() *= d;
    } else {
      plan.dims.push_back(d);
      plan.a_stride.push_back(a_full ? a_size : 0);
      plan.b_stride.push_back(b_full ? b_size : 0);
    }
    if (a_full) a_size *= d;
    if (b_full) b_size *= d;
  }
  // Stored innermost first; make the innermost axis last.
  std::reverse(plan.dims.begin(), plan.dims.end());
  std::reverse(plan.a_stride.begin(), plan.a_stride.end());
  std::reverse(plan.b_stride.begin(), plan.b_stride.end());
  if (plan.dims.empty()) plan = {{1}, {0}, {0}};
  return plan;
}

// y = op(a, b) over the plan; threaded above `parallel_elements` outputs.
template <class A, class B, class Y, class Op>
void broadcast_apply(const BroadcastPlan& p, const A* a, const B* b, Y* y, Op op,
                     int64_t parallel_elements = int64_t{1} << 16) {
  const size_t last = p.dims.size() - 1;
  const int64_t inner = p.dims[last], a_step = p.a_stride[last], b_step = p.b_stride[last];
  int64_t rows = 1;
  for (size_t axis = 0; axis < last; ++axis) rows *= p.dims[axis];
  // Long rows (same-shape operands collapse to one) are cut into pieces, so threads share them.
  constexpr int64_t kPiece = int64_t{1} << 14;
  const int64_t pieces = inner > kPiece ? (inner + kPiece - 1) / kPiece : 1;
#pragma omp parallel for schedule(static) if (rows * inner > parallel_elements && rows * pieces > 1)
  for (int64_t item = 0; item < rows * pieces; ++item) {
    const int64_t row = item / pieces, begin = item % pieces * kPiece;
    const int64_t end = pieces == 1 ? inner : std::min(inner, begin + kPiece);
    int64_t a_off = 0, b_off = 0, rest = row;
    for (size_t axis = last; axis-- > 0;) {
      const int64_t i = rest % p.dims[axis];
      rest /= p.dims[axis];
      a_off += i * p.a_stride[axis];
      b_off += i * p.b_stride[axis];
    }
    const A* ar = a + a_off;
    const B* br = b + b_off;
    Y* out = y + row * inner;
    // Separate loops per broadcast pattern so that each one vectorises.
    if (a_step && b_step)
      for (int64_t i = begin; i < end; ++i) out[i] = op(ar[i], br[i]);
    else if (a_step)
      for (int64_t i = begin; i < end; ++i) out[i] = op(ar[i], br[0]);
    else if (b_step)
      for (int64_t i = begin; i < end; ++i) out[i] = op(ar[0], br[i]);
    else
      std::fill(out + begin, out + end, op(ar[0], br[0]));
  }
}

}  // namespace apl::kernels
