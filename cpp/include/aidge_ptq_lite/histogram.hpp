// Histograms of |x| for clipping optimization, and the clipping searches that read them.
//
// A Histogram covers [0, range) in `bins` equal bins, where range is a power of two chosen from
// the data (values at or above range go to the last bin only while range cannot grow). When a
// batch holds larger values, range doubles and bins fold pairwise, which is exact. Two
// histograms therefore merge exactly (the smaller range folds up to the larger): the histogram
// of two halves added equals the histogram of the whole, so calibration streams batches and
// never holds activations.
#pragma once
#include <cstdint>
#include <vector>

namespace apl {

class Histogram {
 public:
  explicit Histogram(int64_t bins = 2048);  // bins: a power of two in [2, 2^24] (ValueError otherwise)
  // Adds |x_i| of n values and returns max |x_i|; ValueError on NaN or Inf.
  float add(const float* x, int64_t n);
  // The same, and *min = the smallest x_i as kernels::max_abs_min_f32 gives it (read in the same
  // pass when the data is read for its max first: the first batch).
  float add(const float* x, int64_t n, float* min);
  void merge(const Histogram& other);  // ValueError if bin counts differ
  int64_t bins() const { return static_cast<int64_t>(counts_.size()); }
  float range() const { return range_; }  // 0 while empty
  float bin_width() const { return range_ / static_cast<float>(bins()); }
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const;

 private:
  // Doubles the range until it reaches new_range (a power of two), folding bins pairwise.
  void grow_to(float new_range);

  std::vector<uint64_t> counts_;
  float range_ = 0.f;
};

namespace kernels {
// counts[min(int(|x| * inv_width), bins - 1)] += 1 for each of n values (NaN counts in the last
// bin), and returns max |x_i| (NaN or Inf when some x_i is), found in the same pass. Exact on
// every SIMD level and thread count (the scalar reference is histogram_abs_f32_reference).
// bins <= 2^24.
float histogram_abs_f32(const float* x, int64_t n, float inv_width, int64_t bins, uint64_t* counts);
float histogram_abs_f32_reference(const float* x, int64_t n, float inv_width, int64_t bins, uint64_t* counts);
// max |x_i| (NaN or Inf when some x_i is: the largest of the values' bits with the sign cleared,
// whose integer order is the float order). Same result on every SIMD level and thread count.
float max_abs_f32(const float* x, int64_t n);
float max_abs_f32_reference(const float* x, int64_t n);
// max |x_i| as max_abs_f32 returns it, and in the same pass *min = *std::min_element(x, x + n)
// (0 when n = 0; the first zero, with its sign, when the smallest value is a zero). Without NaN
// in x: the same result on every SIMD level and thread count. With NaN, *min is unspecified
// (the returned value says that there is one).
float max_abs_min_f32(const float* x, int64_t n, float* min);
float max_abs_min_f32_reference(const float* x, int64_t n, float* min);
}  // namespace kernels

// Clip value minimising the expected quantization error E|x - q(x)|^exponent over the histogram
// (exponent 2: MSE, 1: AA) for n-bit codes: 2^(n-1)-1 levels when signed, 2^n-1 when unsigned.
float compute_me_clipping(const Histogram& h, int nb_bits, int exponent, bool is_unsigned = false);
// Clip value minimising the KL divergence between the histogram and its quantized version
// (TensorRT entropy calibration) with 2^(n-1) levels when signed, 2^n when unsigned.
float compute_kl_clipping(const Histogram& h, int nb_bits, bool is_unsigned = false);

}  // namespace apl
