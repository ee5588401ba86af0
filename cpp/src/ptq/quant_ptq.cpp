// quantize_network, in two halves around calibration, and the options it takes.
#include <cstdio>

#include "aidge_ptq_lite/cle.hpp"
#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/sign_map.hpp"
#include "quantize_internal.hpp"

namespace apl {

void check_clipping_mode(const std::string& mode) {
  if (mode != "MAX" && mode != "MSE" && mode != "AA" && mode != "KL")
    throw ValueError("unknown clipping mode '" + mode + "' (expected MAX, MSE, AA or KL)");
}

void QuantizeOptions::validate() const {
  (void)spec();  // nb_bits
  check_clipping_mode(clipping_mode);
  if (histogram_bins < 2 || histogram_bins > (int64_t(1) << 24) || (histogram_bins & (histogram_bins - 1)))
    throw ValueError("histogram_bins must be a power of two in [2, 2^24], got " + std::to_string(histogram_bins));
}

void prepare_for_calibration(Graph& g, const QuantizeOptions& o) {
  o.validate();
  if (g.is_quantized()) throw ValueError("the graph is already quantized");
  prepare_network(g);
  const QuantizabilityReport report = quantizability_report(g);
  if (!report.unsupported.empty()) throw UnsupportedError("cannot quantize: " + report.text());
  if (o.cross_layer_equalization) cross_layer_equalization(g, 0.01f, o.verbose);
  insert_scaling_nodes(g);
  if (o.optimize_signs)
    for (const auto& [name, signs] : compute_sign_map(g, o.verbose)) g.node(name).quant.is_unsigned = signs.second;
  normalize_parameters(g, o.channel_wise);
}

void quantize_from_calibration(Graph& g, const RangeCollector& calibration, const QuantizeOptions& o) {
  o.validate();
  if (calibration.samples() == 0) throw ValueError("calibration set is empty");
  // All-zero calibration data gives the input no range: it used to take 1.0 silently (lenet:
  // 91% -> 54% top-1). A dead inner tensor is legitimate; a dead input is a wrong data set.
  const auto input_range = calibration.ranges().find(g.input());
  if (input_range != calibration.ranges().end() && input_range->second == 0.f)
    throw ValueError("calibration data is all zeros (the input's range over " +
                     std::to_string(calibration.samples()) +
                     " samples is 0); calibrate on real samples, normalized as for inference");
  const RangeMap ranges = adjust_ranges(g, o.clipping_mode, calibration.ranges(), calibration.histograms(),
                                        o.nb_bits, o.optimize_signs);
  const auto means = calibration.channel_means();
  for (Node& n : g.mutable_nodes()) {
    auto it = calibration.ranges().find(n.name);
    if (it != calibration.ranges().end()) n.quant.max_abs = it->second;
    auto low = calibration.mins().find(n.name);
    if (low != calibration.mins().end()) n.quant.min_value = low->second;
    if (!n.traits().affine) continue;
    auto mean = means.find(n.inputs[0]);
    n.quant.input_mean = mean != means.end() ? mean->second : std::vector<float>{};
  }
  if (o.optimize_signs && o.zero_points && !o.no_quant) choose_zero_points(g, ranges, o.nb_bits, o.verbose);
  normalize_activations(g, ranges, o.verbose);
  if (o.single_shift) apply_single_shift(g, o.nb_bits, o.optimize_signs);
  quantize_normalized(g, o.spec(), o.no_quant, o.optimize_signs);
  if (!o.no_quant) cast_to_integer(g, o.nb_bits);
  g.set_quantized(o);  // once, when every pass has run
}

void quantize_network(Graph& g, const CalibrationBatches& next_batch, const QuantizeOptions& o) {
  o.validate();
  if (g.is_quantized())
    throw ValueError("the graph is already quantized; quantize a fresh load_onnx() or a clone taken before quantizing");
  Graph work = g.clone();  // the caller's graph changes only once everything has succeeded
  prepare_for_calibration(work, o);
  RangeCollector calibration(work, o);
  Tensor batch;
  for (int64_t i = 1; next_batch(batch); ++i) {
    calibration.update(batch);
    if (o.verbose)
      std::fprintf(stderr, "\rcalibration: batch %lld, %lld samples", static_cast<long long>(i),
                   static_cast<long long>(calibration.samples()));
  }
  if (o.verbose) std::fprintf(stderr, "\n");
  quantize_from_calibration(work, calibration, o);
  g = std::move(work);
}

}  // namespace apl
