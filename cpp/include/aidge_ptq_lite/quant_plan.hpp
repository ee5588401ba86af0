// The quantization plan of one node, typed by the stage of the PTQ that decides it:
//
//   calibration        compute_ranges / RangeCollector: max |x| where the codes are consumed
//   parameters         normalize_parameters: the weight ranges the weights were divided by
//   scale and sign     compute_sign_map, adjust_ranges, normalize_activations (max arbitration)
//   output codes       quantize_normalized_network: step, clamp, float-kept nodes
//   requantization     quantize_normalized_network writes a Scaling node's record, cast_to_integer
//                      encodes it; the integer executor and the exporters read only this record
//
// The node's params keep their meaning through the pipeline (a Scaling node's params[0] is its
// factor in the float network); the plan is where quantization decisions live.
#pragma once
#include <cstdint>
#include <vector>

#include "aidge_ptq_lite/fixed_point.hpp"

namespace apl {

// How a Scaling node rescales its input's accumulator codes in the integer network.
struct Requantization {
  // Real factor per output channel (or one) from accumulator codes to output codes; at a
  // dequantization point, from accumulator codes to float values (1/window of a summing pool
  // included once cast).
  std::vector<float> factor;
  std::vector<FixedPointMultiplier> multiplier;  // the factors' encoding (cast_to_integer)
  bool single_shift = false;      // factors are powers of two: pure rounding shifts
  bool dequantize_point = false;  // hands its accumulator to the graph outputs, dequantized
  // Added to the accumulator before rescaling, per output channel (or one): the node's own
  // zero point (round(zero_point / factor)) and the zero point of the producer's input taken
  // out (-z_in * sum(W) after a Conv/Gemm, -z_in * window after a summing pool). After a
  // Conv/Gemm the executor folds it into the layer's bias. Empty: none.
  std::vector<int32_t> acc_offset;
};

struct NodeQuant {
  // calibration and parameters
  float max_abs = 0.f;              // max |x| seen in calibration (max x before ReLUs only)
  float min_value = 0.f;            // Scaling nodes: min x seen in calibration, where max_abs is
  std::vector<float> weight_range;  // affine nodes: max |W| per output channel (or 1 value)
  // Affine nodes: mean of each input channel over the calibration set (float network), by which
  // quantize_normalized corrects the bias for the mean error of the rounded weights.
  std::vector<float> input_mean;
  // scale and sign
  float range = 0.f;                // S: the float value mapped to the largest code of the output
                                    // (max_abs, clipped, then raised by max arbitration)
  bool is_unsigned = false;         // output codes in [0, 2^n - 1] (sign optimisation)
  // Code of the real value 0 (choose_zero_points): a nearly non-negative Scaling output (HardSwish,
  // x * Sigmoid(x), a gated product) keeps its few negative values on unsigned codes below it.
  // Real value of code c: (c - zero_point) * step.
  int32_t zero_point = 0;
  // output codes
  double step = 1.0;                // real value of one unit of the output integer (S / Q)
  int32_t lo = 0, hi = 0;           // clamp of the output codes
  bool kept_float = false;          // runs in float on dequantized inputs (final Softmax)
  // A float island (an op without integer form inside the network): runs its float op on its
  // dequantized inputs; its output is an accumulator of unit `step` that the Scaling node after
  // it requantizes. An element-wise island is a lookup table instead (cast_to_integer):
  // accumulator of input code c = lut[c - lut_first_code].
  bool island = false;
  std::vector<int32_t> lut;
  int32_t lut_first_code = 0;
  // A padded Conv whose input has a zero point: per (output channel, output row, column), what
  // the padding taps would have added had they held the zero point's code (z_in * their weights);
  // the executor adds it to the accumulator (the kernel pads with code 0). Empty: none.
  std::vector<int32_t> border_offset;
  // requantization (Scaling nodes)
  Requantization requant;
};

}  // namespace apl
