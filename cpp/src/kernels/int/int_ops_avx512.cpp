// AVX-512 pieces of the integer element-wise and pooling kernels (int_ops.cpp dispatches).
#include <immintrin.h>

#include <algorithm>

#include "int_kernels_isa.hpp"
#include "quantize_codes_loop.hpp"

namespace apl::kernels::avx512 {

// 32 outputs per step: per tap one masked 64-byte load whose even bytes (vpmovwb keeps each
// word's low byte) are in[2 i + t dil], then a byte max.
void max_stride2_taps(const uint8_t* in, int64_t n, int64_t taps, int64_t dil, bool is_signed,
                      uint8_t* out) {
  for (int64_t i0 = 0; i0 < n; i0 += 32) {
    const int64_t m = std::min<int64_t>(32, n - i0);
    const __mmask64 load = (uint64_t(1) << (2 * m - 1)) - 1;  // bytes 0 .. 2 (m - 1)
    __m256i acc = _mm256_setzero_si256();
    for (int64_t t = 0; t < taps; ++t) {
      const __m256i v = _mm512_maskz_cvtepi16_epi8(~__mmask32(0), _mm512_maskz_loadu_epi8(load, in + 2 * i0 + t * dil));
      acc = t == 0 ? v : is_signed ? _mm256_max_epi8(acc, v) : _mm256_max_epu8(acc, v);
    }
    _mm256_mask_storeu_epi8(out + i0, static_cast<__mmask32>((uint64_t(1) << m) - 1), acc);
  }
}

template <class T>
void quantize_codes(const float* x, int64_t n, double scale, double lo, double hi, T* y) {
  quantize_codes_loop(x, n, scale, lo, hi, y);
}
template void quantize_codes<int8_t>(const float*, int64_t, double, double, double, int8_t*);
template void quantize_codes<uint8_t>(const float*, int64_t, double, double, double, uint8_t*);
template void quantize_codes<int32_t>(const float*, int64_t, double, double, double, int32_t*);

}  // namespace apl::kernels::avx512
