// Integer element-wise and pooling ops. Plain loops: they are memory-bound and the compiler
// vectorises them at the baseline ISA; all are exact, so every level agrees by construction.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "aidge_ptq_lite/kernels/int_kernels.hpp"
#include "../broadcast_plan.hpp"
#include "int_kernels_isa.hpp"
#include "quantize_codes_loop.hpp"

namespace apl::kernels {
namespace {

void check_pool_shape(const Pool2dShape& s, const char* who) {
  const bool ok = s.C > 0 && s.H > 0 && s.W > 0 && s.R > 0 && s.S > 0 && s.stride_h > 0 &&
                  s.stride_w > 0 && s.dil_h > 0 && s.dil_w > 0 && s.pad_top >= 0 &&
                  s.pad_left >= 0 && s.pad_bottom >= 0 && s.pad_right >= 0 && s.OH() > 0 &&
                  s.OW() > 0 && s.H + s.pad_top + s.pad_bottom >= s.dil_h * (s.R - 1) + 1 &&
                  s.W + s.pad_left + s.pad_right >= s.dil_w * (s.S - 1) + 1;
  if (!ok)
    throw ShapeError(std::string(who) + ": invalid pooling window " + std::to_string(s.R) + "x" +
                     std::to_string(s.S) + " on " + std::to_string(s.H) + "x" +
                     std::to_string(s.W) + " input");
}

// Calls visit(value) for the non-padding cells of every window, between begin(oh, ow) and
// end(out_index) per output cell.
template <class T, class Begin, class Visit, class End>
void for_each_window(const Pool2dShape& s, int64_t N, const T* x, Begin begin, Visit visit,
                     End end) {
  const int64_t OH = s.OH(), OW = s.OW();
#pragma omp parallel for schedule(static) if (N * s.C * OH * OW >= (1 << 14))
  for (int64_t nc = 0; nc < N * s.C; ++nc) {
    const T* plane = x + nc * s.H * s.W;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        auto state = begin();
        for (int64_t r = 0; r < s.R; ++r) {
          const int64_t ih = oh * s.stride_h - s.pad_top + r * s.dil_h;
          if (ih < 0 || ih >= s.H) continue;
          for (int64_t sx = 0; sx < s.S; ++sx) {
            const int64_t iw = ow * s.stride_w - s.pad_left + sx * s.dil_w;
            if (iw >= 0 && iw < s.W) visit(state, plane[ih * s.W + iw]);
          }
        }
        end(state, (nc * OH + oh) * OW + ow);
      }
  }
}

// The taps k in [lo, hi) of a pooling window at output o that fall inside [0, size).
void valid_taps(int64_t o, int64_t stride, int64_t pad, int64_t dil, int64_t taps, int64_t size,
                int64_t* lo, int64_t* hi) {
  const int64_t first = o * stride - pad;
  int64_t a = 0, b = taps;
  while (a < taps && first + a * dil < 0) ++a;
  while (b > a && first + (b - 1) * dil >= size) --b;
  *lo = a, *hi = b;
}

// Narrows an exact int64 result to Acc modulo 2^|Acc| (wraps instead of overflow UB).
template <class Acc>
Acc narrow(int64_t v) {
  return static_cast<Acc>(static_cast<uint64_t>(v));
}

}  // namespace

template <class T>
void relu_int(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::max<T>(x[i], 0);
}

// Padding cells are ignored (as ONNX MaxPool's -inf padding); a window made only of padding
// (possible with large pads) yields 0, the value of the padding in the integer network.
// Separable, as max is: per output row the maxima of its valid input rows (whole-row loops the
// compiler vectorises), then the maxima over the valid column taps of each output column. Rows
// first: the strided column pass then runs on OH rows instead of H (ResNet-18's 3x3/2 pool:
// half the scalar work).
template <class T>
void maxpool2d_int(const Pool2dShape& s, int64_t N, const T* x, T* y) {
  check_pool_shape(s, "maxpool2d_int");
  const int64_t OH = s.OH(), OW = s.OW();
  std::vector<int64_t> col_lo(OW), col_hi(OW), row_lo(OH), row_hi(OH);
  for (int64_t ow = 0; ow < OW; ++ow)
    valid_taps(ow, s.stride_w, s.pad_left, s.dil_w, s.S, s.W, &col_lo[ow], &col_hi[ow]);
  for (int64_t oh = 0; oh < OH; ++oh)
    valid_taps(oh, s.stride_h, s.pad_top, s.dil_h, s.R, s.H, &row_lo[oh], &row_hi[oh]);
  // The output columns whose taps are all inside: one contiguous run [interior_lo, interior_hi).
  int64_t interior_lo = 0, interior_hi = 0;
  for (int64_t ow = 0; ow < OW; ++ow)
    if (col_lo[ow] == 0 && col_hi[ow] == s.S) {
      if (interior_hi == interior_lo) interior_lo = ow;
      interior_hi = ow + 1;
    }
  const bool parallel = N * s.C * OH * OW >= (1 << 14);
  // One row per thread, each on its own cache lines (rows written by two threads in one line
  // made the 2-thread pool slower than 1 thread).
  const int64_t row_stride = (s.W * int64_t(sizeof(T)) + 63) / 64 * 64 / int64_t(sizeof(T));
  std::vector<T> scratch((parallel ? omp_get_max_threads() : 1) * row_stride + 64 / sizeof(T));
  T* const rows = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63});
  const bool byte_simd = sizeof(T) == 1 && active_simd_level() >= SimdLevel::AVX512;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t nc = 0; nc < N * s.C; ++nc) {
    T* col_max = rows + omp_get_thread_num() * row_stride;
    const T* plane = x + nc * s.H * s.W;
    for (int64_t oh = 0; oh < OH; ++oh) {
      T* out = y + (nc * OH + oh) * OW;
      if (row_lo[oh] >= row_hi[oh]) {
        std::fill(out, out + OW, T(0));
        continue;
      }
      const int64_t ih0 = oh * s.stride_h - s.pad_top;
      std::copy_n(plane + (ih0 + row_lo[oh] * s.dil_h) * s.W, s.W, col_max);
      for (int64_t r = row_lo[oh] + 1; r < row_hi[oh]; ++r) {
        // Local width and restrict pointers: a byte store could otherwise alias s.W (char
        // aliases everything), and the loop would not vectorise.
        const int64_t W = s.W;
        const T* __restrict in = plane + (ih0 + r * s.dil_h) * W;
        T* __restrict cm = col_max;
        for (int64_t iw = 0; iw < W; ++iw) cm[iw] = std::max(cm[iw], in[iw]);
      }
      // Interior columns (every tap inside): tap-outer loops over a run of columns, the stride
      // a constant for 1 and 2 so that the compiler vectorises them; the border columns bounded.
      const int64_t a = interior_lo, b = interior_hi;
      if (a < b) {
        const T* base = col_max + a * s.stride_w - s.pad_left;
        auto taps = [&](auto stride) {
          for (int64_t ow = 0; ow < b - a; ++ow) out[a + ow] = base[ow * stride];
          for (int64_t sx = 1; sx < s.S; ++sx) {
            const T* tap = base + sx * s.dil_w;
            for (int64_t ow = 0; ow < b - a; ++ow) out[a + ow] = std::max(out[a + ow], tap[ow * stride]);
          }
        };
        if (s.stride_w == 2 && byte_simd)  // strided bytes defeat the compiler's vectoriser
          avx512::max_stride2_taps(reinterpret_cast<const uint8_t*>(base), b - a, s.S, s.dil_w,
                                   std::is_signed_v<T>, reinterpret_cast<uint8_t*>(out + a));
        else if (s.stride_w == 1) taps(std::integral_constant<int64_t, 1>());
        else if (s.stride_w == 2) taps(std::integral_constant<int64_t, 2>());
        else taps(s.stride_w);
      }
      auto border_column = [&](int64_t ow) {
        if (col_lo[ow] >= col_hi[ow]) {
          out[ow] = T(0);
          return;
        }
        const T* window = col_max + ow * s.stride_w - s.pad_left;
        T m = window[col_lo[ow] * s.dil_w];
        for (int64_t sx = col_lo[ow] + 1; sx < col_hi[ow]; ++sx) m = std::max(m, window[sx * s.dil_w]);
        out[ow] = m;
      };
      for (int64_t ow = 0; ow < (a < b ? a : OW); ++ow) border_column(ow);
      for (int64_t ow = a < b ? b : OW; ow < OW; ++ow) border_column(ow);
    }
  }
}

template <class T, class Acc>
void sumpool2d_int(const Pool2dShape& s, int64_t N, const T* x, Acc* y) {
  check_pool_shape(s, "sumpool2d_int");
  for_each_window(
      s, N, x, [] { return int64_t{0}; }, [](int64_t& sum, T v) { sum += v; },
      [y](int64_t sum, int64_t i) { y[i] = narrow<Acc>(sum); });
}

template <class T, class Acc>
void global_sumpool_int(int64_t N, int64_t C, int64_t HW, const T* x, Acc* y) {
#pragma omp parallel for schedule(static) if (N * C * HW >= (1 << 16))
  for (int64_t nc = 0; nc < N * C; ++nc) {
    int64_t sum = 0;
    for (int64_t i = 0; i < HW; ++i) sum += x[nc * HW + i];
    y[nc] = narrow<Acc>(sum);
  }
}

// Computed exactly in int64 (operands are at most 32 bits) and narrowed to Acc.
template <class A, class B, class Acc>
void binary_int(IntBinaryOp op, int64_t n, const A* a, const B* b, Acc* y) {
  auto apply = [&](auto f) {
    for (int64_t i = 0; i < n; ++i)
      y[i] = narrow<Acc>(f(int64_t{a[i]}, int64_t{b[i]}));
  };
  switch (op) {
    case IntBinaryOp::Add: return apply([](int64_t p, int64_t q) { return p + q; });
    case IntBinaryOp::Sub: return apply([](int64_t p, int64_t q) { return p - q; });
    case IntBinaryOp::Mul: return apply([](int64_t p, int64_t q) { return p * q; });
  }
  throw ValueError("binary_int: unknown operation");
}

// Numpy broadcasting (the squeeze-excite gate: (N, C, 1, 1) x (N, C, H, W)); exact in int64 as
// above. y may alias a when a has the output's shape (Sum accumulates in place).
template <class A, class B, class Acc>
void binary_int(IntBinaryOp op, const Shape& a_shape, const A* a, const Shape& b_shape, const B* b,
                const Shape& out_shape, Acc* y) {
  if (shape_numel(out_shape) == 0) return;
  const BroadcastPlan plan = plan_broadcast(a_shape, b_shape, out_shape, "binary_int");
  auto apply = [&](auto f) {
    broadcast_apply(plan, a, b, y, [f](A p, B q) { return narrow<Acc>(f(int64_t{p}, int64_t{q})); });
  };
  switch (op) {
    case IntBinaryOp::Add: return apply([](int64_t p, int64_t q) { return p + q; });
    case IntBinaryOp::Sub: return apply([](int64_t p, int64_t q) { return p - q; });
    case IntBinaryOp::Mul: return apply([](int64_t p, int64_t q) { return p * q; });
  }
  throw ValueError("binary_int: unknown operation");
}

template <class T>
void quantize_codes(int64_t n, const float* x, double scale, double lo, double hi, T* y) {
  const bool simd = active_simd_level() >= SimdLevel::AVX512;
  constexpr int64_t kChunk = int64_t(1) << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk, m = std::min(kChunk, n - begin);
    if (simd) avx512::quantize_codes(x + begin, m, scale, lo, hi, y + begin);
    else quantize_codes_loop(x + begin, m, scale, lo, hi, y + begin);
  }
}

#define APL_INT_STORAGE_OPS(T)                                                       \
  template void relu_int<T>(int64_t, const T*, T*);                                  \
  template void quantize_codes<T>(int64_t, const float*, double, double, double, T*); \
  template void maxpool2d_int<T>(const Pool2dShape&, int64_t, const T*, T*);         \
  template void sumpool2d_int<T, int32_t>(const Pool2dShape&, int64_t, const T*, int32_t*); \
  template void sumpool2d_int<T, int64_t>(const Pool2dShape&, int64_t, const T*, int64_t*); \
  template void global_sumpool_int<T, int32_t>(int64_t, int64_t, int64_t, const T*, int32_t*); \
  template void global_sumpool_int<T, int64_t>(int64_t, int64_t, int64_t, const T*, int64_t*);
APL_INT_STORAGE_OPS(int8_t)
APL_INT_STORAGE_OPS(uint8_t)
APL_INT_STORAGE_OPS(int32_t)
#undef APL_INT_STORAGE_OPS
// The second pass of a 3-D window sums the first one's wide sums.
template void sumpool2d_int<int64_t, int64_t>(const Pool2dShape&, int64_t, const int64_t*, int64_t*);

#define APL_INT_BINARY(A, B)                                                                 \
  template void binary_int<A, B, int32_t>(IntBinaryOp, int64_t, const A*, const B*, int32_t*); \
  template void binary_int<A, B, int64_t>(IntBinaryOp, int64_t, const A*, const B*, int64_t*);
APL_INT_BINARY(int8_t, int8_t)
APL_INT_BINARY(int8_t, uint8_t)
APL_INT_BINARY(uint8_t, int8_t)
APL_INT_BINARY(uint8_t, uint8_t)
APL_INT_BINARY(int32_t, int32_t)
#undef APL_INT_BINARY

#define APL_INT_BROADCAST(A, B, Acc)                                                          \
  template void binary_int<A, B, Acc>(IntBinaryOp, const Shape&, const A*, const Shape&, const B*, \
                                      const Shape&, Acc*);
APL_INT_BROADCAST(int8_t, int8_t, int32_t)
APL_INT_BROADCAST(int8_t, uint8_t, int32_t)
APL_INT_BROADCAST(uint8_t, int8_t, int32_t)
APL_INT_BROADCAST(uint8_t, uint8_t, int32_t)
APL_INT_BROADCAST(int32_t, int32_t, int64_t)
APL_INT_BROADCAST(int32_t, int32_t, int32_t)   // Mul of codes with zero points taken out
APL_INT_BROADCAST(int32_t, int8_t, int32_t)   // Sum: accumulator + codes
APL_INT_BROADCAST(int32_t, uint8_t, int32_t)
APL_INT_BROADCAST(int64_t, int32_t, int64_t)
#undef APL_INT_BROADCAST

}  // namespace apl::kernels
