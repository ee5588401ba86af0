// quantize_network, in two halves around calibration (which streams batches from Python).
#include <cstdio>

#include "aidge_ptq_lite/cle.hpp"
#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/sign_map.hpp"

namespace apl {

static void check_options(const QuantizeOptions& o) {
  check_nb_bits(o.nb_bits);
  check_clipping_mode(o.clipping);
}

void prepare_for_calibration(Graph& g, const QuantizeOptions& o) {
  check_options(o);
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
  check_options(o);
  if (calibration.samples() == 0) throw ValueError("calibration set is empty");
  const RangeMap ranges = adjust_ranges(g, o.clipping, calibration.ranges(), calibration.histograms(),
                                        o.nb_bits, o.optimize_signs);
  for (Node& n : g.mutable_nodes()) {
    auto it = calibration.ranges().find(n.name);
    if (it != calibration.ranges().end()) n.quant.max_abs = it->second;
  }
  normalize_activations(g, ranges, o.verbose);
  if (o.single_shift) apply_single_shift(g, o.nb_bits, o.optimize_signs);
  quantize_normalized_network(g, o.nb_bits, o.no_quant, o.optimize_signs);
  if (!o.no_quant) cast_to_integer(g, o.nb_bits);
  QuantConfig config = g.quant_config();
  config.channel_wise = o.channel_wise;
  config.clipping = o.clipping;
  config.single_shift = o.single_shift;
  config.cross_layer_equalization = o.cross_layer_equalization;
  g.set_quantized(config);
}

}  // namespace apl
