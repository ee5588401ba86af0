// Float islands: ops without an integer form inside the quantized network (NodeQuant::island).
// The island dequantizes its inputs (codes x step), runs its float kernel, and hands the Scaling
// node after it an accumulator in units of its own step: round(y / step), NaN -> 0, saturated to
// int32 (the Scaling node clamps far below that). An element-wise island is instead a lookup
// table of its input codes, built once by cast_to_integer from the same float kernel: exact,
// identical at every SIMD level, and what the C export writes.
#include <algorithm>
#include <cmath>
#include <limits>

#include "aidge_ptq_lite/executor.hpp"
#include "kernel_util.hpp"

namespace apl {
namespace {

int32_t to_accumulator(float y, double inv_step) {
  if (std::isnan(y)) return 0;
  const double v = std::nearbyint(static_cast<double>(y) * inv_step);
  return static_cast<int32_t>(std::clamp<double>(v, std::numeric_limits<int32_t>::min(),
                                                 std::numeric_limits<int32_t>::max()));
}

class IslandKernel : public NodeKernel {
 public:
  IslandKernel(const Graph& g, const Node& n)
      : NodeKernel(n), inner_(make_dequantizing_kernel(g, n)), inv_step_(1.0 / n.quant.step),
        integer_(!g.quant_config().no_quant) {}
  Tensor run(const std::vector<const Tensor*>& in) const override {
    Tensor y;
    {
      // Float kernels may round differently per SIMD level; the integers must not.
      const SimdLevelScope scalar(SimdLevel::Scalar);
      y = inner_->run(in);
    }
    const float* src = y.data<float>();
    if (!integer_) {  // no_quant: the same unit, unrounded
      Tensor acc = Tensor::uninitialized(DType::F32, y.shape());
      for (int64_t i = 0; i < y.numel(); ++i) acc.data<float>()[i] = static_cast<float>(src[i] * inv_step_);
      return acc;
    }
    Tensor acc = Tensor::uninitialized(DType::I32, y.shape());
    int32_t* out = acc.data<int32_t>();
    for (int64_t i = 0; i < y.numel(); ++i) out[i] = to_accumulator(src[i], inv_step_);
    return acc;
  }

 private:
  std::unique_ptr<OpKernel> inner_;  // the float op on dequantized inputs
  double inv_step_;
  bool integer_;
};

class LookupTableKernel : public NodeKernel {
 public:
  explicit LookupTableKernel(const Node& n)
      : NodeKernel(n), lut_(n.quant.lut), first_(n.quant.lut_first_code), last_(int64_t(lut_.size()) - 1) {}
  Tensor run(const std::vector<const Tensor*>& in) const override {
    const Tensor& x = *in[0];
    Tensor y = make_output(x, DType::I32);
    int32_t* out = y.data<int32_t>();
    const int64_t n = y.numel();
    const auto lookup = [&](const auto* codes) {
#pragma omp parallel for schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) out[i] = lut_[static_cast<size_t>(std::clamp<int64_t>(int64_t(codes[i]) - first_, 0, last_))];
    };
    switch (x.dtype()) {
      case DType::I8: lookup(x.data<int8_t>()); break;
      case DType::U8: lookup(x.data<uint8_t>()); break;
      case DType::I32: lookup(x.data<int32_t>()); break;
      default: throw Error(label_ + ": unexpected input dtype " + dtype_name(x.dtype()));
    }
    return y;
  }

 private:
  std::vector<int32_t> lut_;
  int32_t first_;
  int64_t last_;  // codes outside the producer's clamp cannot occur; never index past the table
};

}  // namespace

std::unique_ptr<OpKernel> make_island_kernel(const Graph& g, const Node& n) {
  if (!n.quant.lut.empty()) return std::make_unique<LookupTableKernel>(n);
  return std::make_unique<IslandKernel>(g, n);
}

std::vector<int32_t> island_lookup_table(const Graph& g, const Node& island) {
  const Node& producer = g.node(island.inputs.at(0));
  const int64_t first = producer.quant.lo, count = int64_t(producer.quant.hi) - first + 1;
  // Every code once, laid out as whole samples of the island's input shape.
  int64_t per_sample = 1;
  for (int64_t d : producer.shape) per_sample *= d;
  const int64_t samples = (count + per_sample - 1) / per_sample;
  Shape shape{samples};
  shape.insert(shape.end(), producer.shape.begin(), producer.shape.end());
  Tensor x(DType::F32, shape);  // zero-filled past the last code
  for (int64_t i = 0; i < count; ++i)
    x.data<float>()[i] = static_cast<float>(static_cast<double>(first + i - producer.quant.zero_point) * producer.quant.step);
  const SimdLevelScope scalar(SimdLevel::Scalar);
  const Tensor y = make_float_kernel(g, island)->run({&x});
  std::vector<int32_t> lut(static_cast<size_t>(count));
  const double inv_step = 1.0 / island.quant.step;
  for (int64_t i = 0; i < count; ++i) lut[static_cast<size_t>(i)] = to_accumulator(y.data<float>()[i], inv_step);
  return lut;
}

}  // namespace apl
