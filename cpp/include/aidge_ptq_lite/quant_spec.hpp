// The quantization spec: what n bits mean for codes, weights, biases and accumulators, in one
// place (models: TFLite's quantization_util, onnxruntime's qmin/qmax rule). Symmetric, no zero
// point: signed codes in [-(2^(n-1)-1), 2^(n-1)-1] (the narrow range, so that -x is
// representable), unsigned codes in [0, 2^n-1] where the sign map proves x >= 0.
//
//              codes            weights  biases, accumulators
//   n <= 8     int8 / uint8     int8     int32      (|acc| < 2^31 proven in kernels/int_kernels.hpp)
//   8 < n <= 16  int32          int32    int64
#pragma once
#include <cstdint>
#include <string>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/tensor.hpp"

namespace apl {

class QuantSpec {
 public:
  // The one check of a bit width: ValueError unless 2 <= nb_bits <= 16.
  explicit QuantSpec(int nb_bits) : nb_bits_(nb_bits) {
    if (nb_bits < 2 || nb_bits > 16)
      throw ValueError("nb_bits must be in 2..16, got " + std::to_string(nb_bits));
  }
  int nb_bits() const { return nb_bits_; }
  // Above 8 bits codes are int32 and accumulators int64.
  bool wide() const { return nb_bits_ > 8; }

  int32_t code_max(bool is_unsigned) const { return (int32_t(1) << (is_unsigned ? nb_bits_ : nb_bits_ - 1)) - 1; }
  int32_t code_min(bool is_unsigned) const { return is_unsigned ? 0 : -code_max(false); }
  int32_t weight_max() const { return code_max(false); }
  // Largest |bias| code: the accumulator's range (int64 kept well inside 2^63 for the sums).
  double bias_limit() const { return wide() ? 4.0e18 : 2147483647.0; }

  DType code_dtype(bool is_unsigned) const { return wide() ? DType::I32 : is_unsigned ? DType::U8 : DType::I8; }
  DType weight_dtype() const { return wide() ? DType::I32 : DType::I8; }
  DType acc_dtype() const { return wide() ? DType::I64 : DType::I32; }
  DType bias_dtype() const { return acc_dtype(); }

 private:
  int nb_bits_;
};

}  // namespace apl
