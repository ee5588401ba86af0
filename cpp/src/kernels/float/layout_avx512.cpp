// copy_padded_rows for AVX512: each output row in 16-float pieces, one masked load (the padding
// lanes take `value`) and one masked store each, so short rows (7-30 floats: small images, phase
// planes) cost two instructions instead of a memset / memmove / memset call triple.
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

}  // namespace apl::kernels::detail
