#include "cohort/runtime/evaluation.h"

#include <algorithm>
#include <vector>

namespace cohort {

FederatedEval federated_summary(std::span<const EvalResult> per_client) {
  FederatedEval f;
  std::vector<double> accs;
  double n = 0, acc = 0, loss = 0;
  for (const EvalResult& r : per_client) {
    if (r.num_examples <= 0) continue;
    const auto w = static_cast<double>(r.num_examples);
    n += w;
    acc += w * r.accuracy;
    loss += w * r.loss;
    accs.push_back(r.accuracy);
  }
  if (accs.empty()) return f;
  f.accuracy = acc / n;
  f.loss = loss / n;
  std::sort(accs.begin(), accs.end());
  const size_t k = std::max<size_t>(1, (accs.size() + 9) / 10);
  double worst = 0;
  for (size_t i = 0; i < k; ++i) worst += accs[i];
  f.worst10_accuracy = worst / static_cast<double>(k);
  return f;
}

void Evaluation::add_to(Json& ev) const {
  ev["accuracy"] = central.accuracy;
  ev["loss"] = central.loss;
  if (!central.parts.empty()) {
    Json m = Json::object();
    for (const PartEval& p : central.parts) {
      m[p.name] = {{"accuracy", p.accuracy}, {"loss", p.loss}, {"reached_target", p.reached_target}};
    }
    ev["models"] = std::move(m);
  }
  if (fed) {
    ev["fed_accuracy"] = fed->accuracy;
    ev["fed_loss"] = fed->loss;
    ev["fed_worst10_accuracy"] = fed->worst10_accuracy;
    ev["fed_clients"] = fed_clients;
  }
}

}  // namespace cohort
