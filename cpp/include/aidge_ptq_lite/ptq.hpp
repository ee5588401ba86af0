// The PTQ passes, one per file in cpp/src/ptq/, in the order quantize_network runs them:
//
//   prepare_network             fold BatchNorm, drop Identity/Dropout, canonical affine nodes
//   cross_layer_equalization    (optional) balance weight ranges of consecutive affine layers
//   insert_scaling_nodes        a Scaling node after every affine, pooling and joining node
//   normalize_parameters        weights into [-1, 1] (per tensor or per output channel)
//   compute_ranges              max |x| per node over the calibration set, streamed
//   adjust_ranges               (optional) clip ranges from histograms (MSE, AA, KL)
//   normalize_activations       every activation into [-1, 1]; max arbitration at joins
//   quantize_normalized_network scale to n-bit codes, round (unless no_quant)
//   cast_to_integer             int8/int32 tensors and fixed-point multipliers
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/histogram.hpp"
#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {

class Executor;

// ---- prepare.cpp --------------------------------------------------------------------------------
// Folds BatchNorm into the preceding Conv/Gemm (a lone BatchNorm becomes a depthwise 1x1 Conv),
// removes Identity and Dropout, turns 2-D MatMul into Gemm, and gives every affine node a bias
// and the canonical layout (Gemm: transB=1, alpha=beta=1). The float function is unchanged.
void prepare_network(Graph& g);

struct QuantizabilityReport {
  std::vector<std::string> quantized;    // run in integers
  std::vector<std::string> kept_float;   // run in float after the output dequantization (Softmax)
  std::vector<std::string> islands;      // float islands inside the integer network (see NodeQuant)
  std::vector<std::string> island_reasons;  // per island: why it has no integer form
  std::vector<std::string> unsupported;  // "node (op): reason"
  std::string text() const;
};
QuantizabilityReport quantizability_report(const Graph& g);

// ---- scaling_nodes.cpp --------------------------------------------------------------------------
// Inserts "<name>_scaling" after each node whose output is an accumulator that must be brought
// back to n bits (OpTraits::needs_scaling) and after each float island (quantizability_report),
// with factor 1 per output channel; marks the islands (quant.island).
void insert_scaling_nodes(Graph& g);

// ---- normalize.cpp ------------------------------------------------------------------------------
// Divides each affine node's weights and bias by max |W| (per output channel if channel_wise)
// and multiplies its Scaling node's factor by the same amount: the function is unchanged.
void normalize_parameters(Graph& g, bool channel_wise);

using RangeMap = std::map<std::string, float>;
// Sets every node's quant.range, with max arbitration at joins (Add, Sub, Concat: the smaller
// branches' upstream Scaling or Input node takes the largest range), and rescales biases and
// Scaling factors so that every activation lies in [-1, 1] (the "normalized network").
// Returns the ranges actually used (after arbitration).
RangeMap normalize_activations(Graph& g, const RangeMap& ranges, bool verbose = false);

// ---- ranges.cpp ---------------------------------------------------------------------------------
// max |x| of the Input's and every Scaling node's values, and (when histogram_bins > 0) a
// histogram of |x| per Scaling node, accumulated batch by batch in one pass: memory does not grow
// with the calibration set.
// A Scaling node is measured where its codes are consumed: at the end of the ReLU / MaxPool chain
// that all its consumers go through (both commute with the monotone quantizer). Values a ReLU
// zeroes or a MaxPool drops would only widen the range and weigh in the clipping error; on
// lenet's conv -> ReLU -> MaxPool layers, MSE clipping at 4 bits gains 0.7 point over MAX
// measured there, 0.45 on the Scaling node's own |x|.
// The histograms serve the clipping search of `clipping_mode`: the error searches (MSE, AA) get
// the consumed values, like the max; KL gets |x| of the Scaling node's own output, since
// TensorRT's KL search compares distributions and on the positive part alone it clipped far too
// hard (8 bits: -1 point on lenet, -0.3 to -3 on branchnet).
// Whether quantize_normalized corrects biases with the calibration means of the affine layers'
// inputs (quantize.cpp): when rounding, at 8 bits and above.
bool bias_correction_applies(int nb_bits, bool no_quant);

// The sum of each row of `inner` values (rows * inner floats), in double, added in index order:
// the plain loop that RangeCollector's channel sums reproduce, faster (the oracle of its tests).
void channel_row_sums_reference(const float* p, int64_t rows, int64_t inner, double* out);

class RangeCollector {
 public:
  // channel_means: also sum each affine layer's input per channel (channel_means(), for bias
  // correction).
  explicit RangeCollector(const Graph& g, int64_t histogram_bins = 0, const std::string& clipping_mode = "MSE",
                          bool channel_means = true);
  // The collector quantize_network runs: histograms for the clipping mode (none for MAX), channel
  // sums only where bias correction will read them (bias_correction_applies).
  RangeCollector(const Graph& g, const QuantizeOptions& options)
      : RangeCollector(g, options.calibration_histogram_bins(), options.clipping_mode,
                       bias_correction_applies(options.nb_bits, options.no_quant)) {}
  // Runs one float batch through the graph as it was when the collector was made; ValueError if
  // the batch or an activation holds NaN or Inf.
  void update(const Tensor& batch);
  const RangeMap& ranges() const { return ranges_; }
  // Min x where each range is measured (choose_zero_points: nearly non-negative tensors).
  const RangeMap& mins() const { return mins_; }
  const std::map<std::string, Histogram>& histograms() const { return histograms_; }
  int64_t samples() const { return samples_; }
  // Per channel (axis 1) mean of the input of each affine layer, by the name of the node giving it.
  std::map<std::string, std::vector<float>> channel_means() const;
  // Wall seconds spent in update() so far: the whole executor run (forward plus observation),
  // and of it the observation of the outputs (channel sums; max / min / histograms). The stage
  // profile (APL_PTQ_STAGES=1, quantize_network) prints them.
  struct Times {
    double run = 0, channel_sums = 0, ranges = 0;
  };
  const Times& times() const { return times_; }

 private:
  Times times_;
  std::shared_ptr<const Executor> executor_;
  // Observed node -> the Scaling (or Input) node whose range / histogram it gives.
  std::map<std::string, std::string> range_at_, histogram_at_;
  RangeMap ranges_, mins_;
  std::map<std::string, Histogram> histograms_;
  std::map<std::string, std::vector<double>> channel_sums_;  // nodes feeding an affine layer
  std::map<std::string, int64_t> channel_counts_;            // values summed per channel
  std::vector<double> row_sums_;                             // update's scratch: per (sample, channel)
  int64_t samples_ = 0;
};

// ---- adjust_ranges.cpp ------------------------------------------------------------------------------
// The range of each Scaling node clipped by its histogram: min(max, clip) where the clip minimises
// the MSE ("MSE"), the mean absolute error ("AA") or the KL divergence ("KL") of n-bit codes
// (unsigned codes where the node's quant.is_unsigned says so). "MAX" returns the ranges as they are.
RangeMap adjust_ranges(const Graph& g, const std::string& clipping_mode, const RangeMap& ranges,
                       const std::map<std::string, Histogram>& histograms, int nb_bits,
                       bool optimize_signs);

// ---- quantize.cpp -------------------------------------------------------------------------------
// Scales the normalized network to n-bit codes: weights * (2^(n-1) - 1) (rounded unless no_quant),
// biases to the accumulator scale, and writes each Scaling node's requantization record (its
// params keep their float-network meaning) and each output's step and clamp. Marks the Scaling
// nodes feeding the outputs as dequantization points, and the graph quantized (the stepwise
// pipeline then runs, with no_quant, or calls cast_to_integer).
void quantize_normalized_network(Graph& g, int nb_bits, bool no_quant, bool optimize_signs);
// Scaling nodes whose output goes only to the graph outputs (or to float-kept nodes): they hand
// the accumulator over instead of requantizing it. kept_float: quantizability_report's.
std::set<std::string> dequantize_points(const Graph& g, const std::vector<std::string>& kept_float);

// ---- single_shift.cpp ---------------------------------------------------------------------------
// On the normalized network, before quantize_normalized_network: makes the requantization factor
// of every Scaling node that follows a Conv/Gemm (except the dequantization points) a power of two
// p = 2^ceil(log2(m * w_max)) per output channel (w_max: the channel's normalized weight range), and
// multiplies that channel's weights and bias by m / p: its largest weight lands in (0.5, 1], inside
// the n-bit range and using its top bit. Scaling nodes after joins and pools have no weights to
// compensate in: they keep their fixed-point multiplier.
void apply_single_shift(Graph& g, int nb_bits, bool optimize_signs);
// Largest code of a node's output: 2^(n-1)-1, or 2^n-1 when unsigned (and signs are optimized).
double code_max(const Node& n, const QuantSpec& spec, bool optimize_signs);

// ---- cast.cpp -----------------------------------------------------------------------------------
// Integer tensors (int8 weights / int32 biases, or int32 / int64 above 8 bits, as QuantSpec says)
// and the encoding of every requantization record (fixed-point multipliers, or single shifts).
void cast_to_integer(Graph& g, int nb_bits);

// ---- quant_ptq.cpp ------------------------------------------------------------------------------
// The whole PTQ: `next_batch` fills its argument with the next float calibration batch and
// returns false at the end of the set. Validates the options first (ValueError naming the field),
// works on a copy, and changes `g` only once everything has succeeded.
using CalibrationBatches = std::function<bool(Tensor& batch)>;
void quantize_network(Graph& g, const CalibrationBatches& next_batch, const QuantizeOptions& options);

// Its two halves, around calibration (a RangeCollector(g, options) fed with every batch):
// everything before calibration (prepare, CLE, scaling nodes, sign map, parameter normalization);
void prepare_for_calibration(Graph& g, const QuantizeOptions& options);
// and everything after it: adjust_ranges, normalize_activations, single shift, quantize, cast;
// the graph is marked quantized (with `options`) at the end.
void quantize_from_calibration(Graph& g, const RangeCollector& calibration, const QuantizeOptions& options);

}  // namespace apl
