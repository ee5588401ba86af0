// Row copies for AVX512. copy_padded_rows: each output row in 16-float pieces, one masked load
// (the padding lanes take `value`) and one masked store each, so short rows (7-30 floats: small
// images, phase planes) cost two instructions instead of a memset / memmove / memset call triple.
// copy_even_columns: the same for every second input column (stride-2 phase planes), from two
// masked loads and one permute per 16 outputs instead of a scalar strided loop.
#include <immintrin.h>

#include <algorithm>

#include "float_internal.hpp"

namespace apl::kernels::detail {

void copy_padded_rows_avx512(const float* plane, int64_t H, int64_t W, int64_t first_row,
                             int64_t n_rows, int64_t pad_left, int64_t pad_right, float value,
                             float* dst) {
  const int64_t out_w = pad_left + W + pad_right;
  const __m512 fill = _mm512_set1_ps(value);
  for (int64_t i = 0; i < n_rows; ++i, dst += out_w) {
    const int64_t row = first_row + i;
    const bool inside = row >= 0 && row < H;
    // Output column j is input column j - pad_left: inside for j in [pad_left, pad_left + W).
    const float* src = inside ? plane + row * W : plane;
    for (int64_t j = 0; j < out_w; j += 16) {
      const int64_t n = std::min<int64_t>(16, out_w - j);
      const int64_t lo = std::clamp<int64_t>(pad_left - j, 0, n);
      const int64_t hi = std::clamp<int64_t>(pad_left + W - j, lo, n);
      const __mmask16 store = static_cast<__mmask16>((1u << n) - 1);
      const __mmask16 load = inside ? static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1)) : 0;
      // Lanes off the mask are neither read nor faulted on, wherever src + j - pad_left points.
      const __m512 v = _mm512_mask_loadu_ps(fill, load, src + (j - pad_left));
      _mm512_mask_storeu_ps(dst + j, store, v);
    }
  }
}

void copy_even_columns_avx512(const float* plane, int64_t H, int64_t W, int64_t first_row,
                              int64_t row_step, int64_t n_rows, int64_t first_col, int64_t width,
                              float* dst) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t i = 0; i < n_rows; ++i, dst += width) {
    const int64_t row = first_row + i * row_step;
    const bool inside = row >= 0 && row < H;
    const float* src = inside ? plane + row * W : plane;
    for (int64_t j = 0; j < width; j += 16) {
      const int64_t n = std::min<int64_t>(16, width - j);
      // Window lane m holds input column base + m; output lane l takes window lane 2 l.
      const int64_t base = first_col + 2 * j;
      const int64_t lo = std::clamp<int64_t>(-base, 0, 32), hi = std::clamp<int64_t>(W - base, lo, 32);
      uint64_t lanes = inside ? ((uint64_t(1) << hi) - 1) & ~((uint64_t(1) << lo) - 1) : 0;
      lanes &= 0x55555555u & ((uint64_t(1) << (2 * n)) - 1);
      const __m512 w_lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(lanes), src + base);
      const __m512 w_hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(lanes >> 16), src + base + 16);
      _mm512_mask_storeu_ps(dst + j, static_cast<__mmask16>((1u << n) - 1),
                            _mm512_permutex2var_ps(w_lo, even, w_hi));
    }
  }
}

}  // namespace apl::kernels::detail
