// adjust_ranges: clipping optimization. Each Scaling node's range becomes the clip value that
// minimises the chosen quantization error over its activation histogram (see histogram.hpp).
#include <algorithm>

#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {

RangeMap adjust_ranges(const Graph& g, const std::string& mode, const RangeMap& ranges,
                       const std::map<std::string, Histogram>& histograms, int nb_bits,
                       bool optimize_signs) {
  check_clipping_mode(mode);
  const QuantSpec spec(nb_bits);  // checked before any search
  RangeMap adjusted = ranges;
  if (mode == "MAX") return adjusted;
  for (const Node& n : g.nodes()) {
    if (!n.is(OpKind::Scaling)) continue;
    auto h = histograms.find(n.name);
    auto r = adjusted.find(n.name);
    if (h == histograms.end() || r == adjusted.end())
      throw ValueError("adjust_ranges: no histogram or range for " + n.label());
    if (h->second.total() == 0 || r->second == 0.f) continue;
    const bool is_unsigned = optimize_signs && n.quant.is_unsigned;
    const float clip = mode == "KL" ? compute_kl_clipping(h->second, nb_bits, is_unsigned)
                                    : compute_me_clipping(h->second, nb_bits, mode == "MSE" ? 2 : 1, is_unsigned);
    r->second = std::min(r->second, clip);
  }
  return adjusted;
}

}  // namespace apl
