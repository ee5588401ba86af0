// AveragePool whose divisor varies per output cell (ceil_mode=1, or pads with
// count_include_pad=0), in integers and exact: the window sum of cell (oh, ow) is multiplied by
// D / count(oh, ow), where D = lcm(1..R) * lcm(1..S) (times lcm(1..kernel_d) for a 3-D window)
// is a multiple of every possible count (rows inside x columns inside), and the Scaling node
// after it divides by the constant D (summed_window). One rounding, in that Scaling node, as
// after any other pool.
#include <numeric>

#include "../ops/op_parts.hpp"
#include "aidge_ptq_lite/op_geometry.hpp"
#include "kernel_util.hpp"

namespace apl {
namespace {

int64_t lcm_up_to(int64_t k) {
  int64_t l = 1;
  for (int64_t i = 2; i <= k; ++i) l = std::lcm(l, i);
  return l;
}

// Taps of a window along one axis that fall in [0, size) once shifted by -pad.
int64_t taps_inside(int64_t o, int64_t stride, int64_t pad, int64_t dil, int64_t taps, int64_t size) {
  int64_t count = 0;
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t i = o * stride - pad + t * dil;
    count += i >= 0 && i < size;
  }
  return count;
}

// D / count per output cell of one 2-D pass, D = lcm(1..R) * lcm(1..S).
std::vector<int64_t> pass_weights(const kernels::Pool2dShape& s, bool include_pad) {
  const int64_t divisor = lcm_up_to(s.R) * lcm_up_to(s.S), OH = s.OH(), OW = s.OW();
  const int64_t padded_h = s.H + s.pad_top + s.pad_bottom - s.ceil_extra_h;
  const int64_t padded_w = s.W + s.pad_left + s.pad_right - s.ceil_extra_w;
  std::vector<int64_t> weight(static_cast<size_t>(OH * OW));
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t rows = include_pad ? taps_inside(oh, s.stride_h, 0, s.dil_h, s.R, padded_h)
                                       : taps_inside(oh, s.stride_h, s.pad_top, s.dil_h, s.R, s.H);
      const int64_t cols = include_pad ? taps_inside(ow, s.stride_w, 0, s.dil_w, s.S, padded_w)
                                       : taps_inside(ow, s.stride_w, s.pad_left, s.dil_w, s.S, s.W);
      weight[oh * OW + ow] = divisor / (rows * cols);  // exact: rows | lcm, cols | lcm
    }
  return weight;
}

class BorderWeightedSumKernel : public NodeKernel {
 public:
  BorderWeightedSumKernel(const Graph& g, const Node& n) : NodeKernel(n), sums_(integer_kernels::avgpool(g, n)) {
    const auto passes = pool_passes(n, g.node(n.inputs[0]).shape);
    const bool include_pad = n.attr_int("count_include_pad", 0) != 0;
    // The count of a 3-D window is the product of its passes' counts, and cell i of the last
    // pass's plane sits at i % (its plane) in each earlier pass's (the depth pass keeps OH * OW
    // innermost): the weight is the product of the passes' weights there.
    plane_ = passes.back().OH() * passes.back().OW();
    weight_.assign(static_cast<size_t>(plane_), 1);
    for (const kernels::Pool2dShape& s : passes) {
      const std::vector<int64_t> w = pass_weights(s, include_pad);
      for (int64_t i = 0; i < plane_; ++i) weight_[i] *= static_cast<int32_t>(w[i % static_cast<int64_t>(w.size())]);
    }
  }
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor acc = sums_->run(in);
    const auto weigh = [&](auto* a) {
      const int64_t planes = acc.numel() / plane_;
      for (int64_t p = 0; p < planes; ++p)
        for (int64_t i = 0; i < plane_; ++i) a[p * plane_ + i] *= weight_[i];
    };
    if (acc.dtype() == DType::I64) weigh(acc.data<int64_t>());
    else weigh(acc.data<int32_t>());
    return acc;
  }

 private:
  std::unique_ptr<OpKernel> sums_;
  std::vector<int32_t> weight_;
  int64_t plane_ = 1;
};

}  // namespace

bool average_pool_divisor_varies(const Node& n) {
  if (n.attr_int("ceil_mode", 0) != 0) return true;
  if (n.attr_int("count_include_pad", 0) != 0) return false;
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") return true;
  if (auto_pad == "VALID") return false;
  for (int64_t p : n.attr_ints("pads")) if (p != 0) return true;
  return false;
}

int64_t average_pool_divisor(const Node& n) {
  const std::vector<int64_t> k = n.attr_ints("kernel_shape");
  int64_t window = 1;
  for (int64_t v : k) window *= v;  // 3-D, 2-D, or 1-D (H = 1)
  if (!average_pool_divisor_varies(n)) return window;
  int64_t divisor = 1;
  for (int64_t v : k) {
    if (v > 32) return 0;  // lcm(1..33) > 2^43: no exact integer form
    const int64_t l = lcm_up_to(v);
    if (l > kMaxAveragePoolDivisor) return 0;
    divisor *= l;  // both factors at most 2^23: no overflow
    if (divisor > kMaxAveragePoolDivisor) return 0;
  }
  return divisor;
}

namespace integer_kernels {
std::unique_ptr<OpKernel> avgpool_any_divisor(const Graph& g, const Node& n) {
  if (!average_pool_divisor_varies(n)) return avgpool(g, n);
  return std::make_unique<BorderWeightedSumKernel>(g, n);
}
}  // namespace integer_kernels

}  // namespace apl
