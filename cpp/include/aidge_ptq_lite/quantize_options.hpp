// The options of a quantization, as quantize_network takes them and a quantized Graph keeps them.
#pragma once
#include <cstdint>
#include <string>

#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {

struct QuantizeOptions {
  int nb_bits = 8;                        // 2..16
  std::string clipping_mode = "MAX";      // "MAX", "MSE", "AA" or "KL"
  bool cross_layer_equalization = false;  // CLE before normalization
  bool optimize_signs = false;            // unsigned codes where the sign map allows
  bool zero_points = true;                // with optimize_signs: nearly non-negative ones too (choose_zero_points)
  bool single_shift = false;              // power-of-two rescaling, compensated in the weights
  bool no_quant = false;                  // the whole pipeline without rounding (debugging)
  bool channel_wise = false;              // one weight scale per output channel
  bool verbose = false;                   // progress and decisions on stdout / stderr
  int64_t histogram_bins = 2048;          // per Scaling node, for the MSE / AA / KL searches

  // ValueError naming the field whose value is out of its domain.
  void validate() const;
  QuantSpec spec() const { return QuantSpec(nb_bits); }
  // The histograms calibration must collect: none for MAX, which reads only the max.
  int64_t calibration_histogram_bins() const { return clipping_mode == "MAX" ? 0 : histogram_bins; }
};

// ValueError unless mode is one of "MAX", "MSE", "AA", "KL" (upper case, as the C++ API takes it).
void check_clipping_mode(const std::string& mode);

}  // namespace apl
