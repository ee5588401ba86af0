// Data movement: plane padding (also used by the convolution and pooling kernels) and concat.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "aidge_ptq_lite/kernels/float_kernels.hpp"
#include "float_internal.hpp"

namespace apl::kernels {

void detail::copy_padded_rows(const float* plane, int64_t H, int64_t W, int64_t first_row,
                              int64_t n_rows, int64_t pad_left, int64_t pad_right, float value,
                              float* dst) {
  const int64_t out_w = pad_left + W + pad_right;
  // Output columns [lo, hi) come from the plane, the rest are `value`.
  const int64_t lo = std::clamp<int64_t>(pad_left, 0, out_w);
  const int64_t hi = std::clamp<int64_t>(pad_left + W, lo, out_w);
  for (int64_t i = 0; i < n_rows; ++i, dst += out_w) {
    const int64_t row = first_row + i;
    if (row < 0 || row >= H) {
      std::fill_n(dst, out_w, value);
      continue;
    }
    std::fill(dst, dst + lo, value);
    std::copy(plane + row * W + (lo - pad_left), plane + row * W + (hi - pad_left), dst + lo);
    std::fill(dst + hi, dst + out_w, value);
  }
}

detail::CopyPaddedRowsFn detail::copy_padded_rows_for(SimdLevel level) {
  return level >= SimdLevel::AVX512 ? copy_padded_rows_avx512 : copy_padded_rows;
}

detail::CopyEvenColumnsFn detail::copy_even_columns_for(SimdLevel level) {
  return level >= SimdLevel::AVX512 ? copy_even_columns_avx512 : nullptr;
}

void concat_bytes(int64_t outer, int64_t inner_bytes, const int64_t* sizes,
                  const void* const* inputs, int n_inputs, void* y) {
  auto* out = static_cast<unsigned char*>(y);
  for (int64_t o = 0; o < outer; ++o)
    for (int i = 0; i < n_inputs; ++i) {
      const int64_t bytes = sizes[i] * inner_bytes;
      std::memcpy(out, static_cast<const unsigned char*>(inputs[i]) + o * bytes, bytes);
      out += bytes;
    }
}

}  // namespace apl::kernels
