// AVX2 tile bins, 8 values per step: and (abs), mul, min, cvtt, the same float32 operations as
// bin_index, then the bins, or those that are not 0 packed by a permutation.
#include <immintrin.h>

#include <limits>

#include "histogram_isa.hpp"

namespace apl::kernels::avx2 {

namespace {
// AVX2 has no compress: the lanes of an 8-bit mask are packed by a permutation looked up here,
// entry m listing the set bits of m as bytes, lowest first.
struct PackLanes {
  uint64_t of_mask[256];
};
constexpr PackLanes make_pack_lanes() {
  PackLanes table{};
  for (int mask = 0; mask < 256; ++mask) {
    int packed = 0;
    for (int lane = 0; lane < 8; ++lane)
      if (mask >> lane & 1) table.of_mask[mask] |= static_cast<uint64_t>(lane) << (8 * packed++);
  }
  return table;
}
constexpr PackLanes kPackLanes = make_pack_lanes();

uint32_t horizontal_max(__m256i v) {
  __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(m));
}

template <bool kSkipBin0>
TileBins tile_bins_impl(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* out) {
  constexpr int kLanes = 8;
  static_assert(kLanes <= kBinSlack, "a whole vector is stored at the end of the list");
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256 scale = _mm256_set1_ps(inv_width);
  const __m256 last_bin = _mm256_set1_ps(static_cast<float>(bins - 1));
  __m256i max_bits = _mm256_setzero_si256();
  int64_t listed = 0;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i bits = _mm256_and_si256(raw, abs_mask);
    max_bits = _mm256_max_epu32(max_bits, bits);
    // min(a, b) returns b when a is NaN, as bin_index does.
    const __m256 t = _mm256_min_ps(_mm256_mul_ps(_mm256_castsi256_ps(bits), scale), last_bin);
    const __m256i bin = _mm256_cvttps_epi32(t);
    if constexpr (kSkipBin0) {
      const int nonzero =
          ~_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(bin, _mm256_setzero_si256()))) & 0xff;
      const __m256i lanes =
          _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(kPackLanes.of_mask[nonzero])));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + listed), _mm256_permutevar8x32_epi32(bin, lanes));
      listed += _mm_popcnt_u32(static_cast<uint32_t>(nonzero));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + listed), bin);
      listed += kLanes;
    }
  }
  const TileBins tail = scalar::tile_bins(x + i, n - i, inv_width, bins, kSkipBin0, out + listed);
  return {std::max(horizontal_max(max_bits), tail.max_bits), listed + tail.listed};
}
}  // namespace

TileBins tile_bins(const float* x, int64_t n, float inv_width, int32_t bins, bool skip_bin0, uint32_t* out) {
  return skip_bin0 ? tile_bins_impl<true>(x, n, inv_width, bins, out)
                   : tile_bins_impl<false>(x, n, inv_width, bins, out);
}

uint32_t max_abs_bits(const float* x, int64_t n) {
  constexpr int kLanes = 8;
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const auto abs_bits_at = [&](int64_t i) {
    return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs_mask);
  };
  // Four independent maxima: the loop is bound by loads, not by a dependency chain.
  __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    m0 = _mm256_max_epu32(m0, abs_bits_at(i));
    m1 = _mm256_max_epu32(m1, abs_bits_at(i + kLanes));
    m2 = _mm256_max_epu32(m2, abs_bits_at(i + 2 * kLanes));
    m3 = _mm256_max_epu32(m3, abs_bits_at(i + 3 * kLanes));
  }
  for (; i + kLanes <= n; i += kLanes) m0 = _mm256_max_epu32(m0, abs_bits_at(i));
  const __m256i m = _mm256_max_epu32(_mm256_max_epu32(m0, m1), _mm256_max_epu32(m2, m3));
  return std::max(horizontal_max(m), scalar::max_abs_bits(x + i, n - i));
}

uint32_t max_abs_min_bits(const float* x, int64_t n, float* min) {
  constexpr int kLanes = 8;
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  // Two independent (max, min) pairs: one load feeds both, the loop is bound by loads.
  __m256i m0 = _mm256_setzero_si256(), m1 = m0;
  __m256 lo0 = _mm256_set1_ps(std::numeric_limits<float>::infinity()), lo1 = lo0;
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + kLanes);
    m0 = _mm256_max_epu32(m0, _mm256_and_si256(_mm256_castps_si256(a), abs_mask));
    m1 = _mm256_max_epu32(m1, _mm256_and_si256(_mm256_castps_si256(b), abs_mask));
    lo0 = _mm256_min_ps(lo0, a);
    lo1 = _mm256_min_ps(lo1, b);
  }
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 a = _mm256_loadu_ps(x + i);
    m0 = _mm256_max_epu32(m0, _mm256_and_si256(_mm256_castps_si256(a), abs_mask));
    lo0 = _mm256_min_ps(lo0, a);
  }
  alignas(32) float lane_min[kLanes];
  _mm256_store_ps(lane_min, _mm256_min_ps(lo0, lo1));
  float head_min = std::numeric_limits<float>::infinity();
  for (int k = 0; k < kLanes; ++k) head_min = std::min(head_min, lane_min[k]);
  const uint32_t head_max = horizontal_max(_mm256_max_epu32(m0, m1));
  if (i == n) {
    *min = head_min;
    return head_max;
  }
  float tail_min;
  const uint32_t tail_max = scalar::max_abs_min_bits(x + i, n - i, &tail_min);
  *min = std::min(head_min, tail_min);
  return std::max(head_max, tail_max);
}

}  // namespace apl::kernels::avx2
