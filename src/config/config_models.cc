// The `models:` section: several models trained at once (config.h, ModelEntry).
#include "cohort/config/config.h"
#include "cohort/core/validate.h"
#include "config/reader.h"

#include <set>

namespace cohort::config_detail {

Status read_models(const MapReader& top, std::vector<ModelEntry>* out) {
  const Node* list = top.get("models");
  if (list == nullptr) return Status();
  const Context& ctx = top.ctx();
  if (top.get("model") != nullptr) {
    return ctx.error("models", "cannot be combined with a model: section (one model: model:, "
                               "several at once: models:)");
  }
  if (list->kind != Node::Kind::kSeq || list->items.empty()) {
    return ctx.error("models", "expected a non-empty sequence of mappings (- name: mlp ...), got " +
                                   describe(*list));
  }
  std::set<std::string> labels;
  for (size_t i = 0; i < list->items.size(); ++i) {
    const std::string path = "models[" + std::to_string(i) + "]";
    const MapReader r(ctx, list->items[i], path);
    COHORT_RETURN_IF_ERROR(r.open({"name", "hidden", "label", "target_accuracy"}));
    ModelEntry e;
    COHORT_RETURN_IF_ERROR(r.read_enum("name", &e.model.name, ModelConfig::kNames));
    if (const Node* h = r.get("hidden")) {
      if (h->kind != Node::Kind::kSeq) {
        return r.error("hidden", "expected a sequence of integers, got " + describe(*h));
      }
      e.model.hidden.clear();
      for (size_t k = 0; k < h->items.size(); ++k) {
        COHORT_ASSIGN_OR_RETURN(int64_t width,
                                to_int(ctx, h->items[k], r.child("hidden") + "[" + std::to_string(k) + "]"));
        e.model.hidden.push_back(width);
      }
    }
    if (Status v = e.model.validate(); !v.ok()) {  // "model.KEY: why"
      auto [field, what] = split_field_error(v.message());
      return ctx.error(path + field.substr(std::string("model").size()), what);
    }
    e.label = e.model.name;
    COHORT_RETURN_IF_ERROR(r.read("label", &e.label));
    if (e.label.empty() || e.label.find('/') != std::string::npos) {
      return r.error("label", "'" + e.label + "' cannot label a model (non-empty, no '/')");
    }
    if (!labels.insert(e.label).second) {
      return r.error(r.get("label") ? "label" : "name",
                     "'" + e.label + "' labels two models; add a distinct label: key");
    }
    COHORT_RETURN_IF_ERROR(r.read("target_accuracy", &e.target_accuracy));
    if (!(e.target_accuracy >= 0 && e.target_accuracy <= 1)) {
      return r.error("target_accuracy",
                     "must be in [0, 1], got " + std::to_string(e.target_accuracy));
    }
    out->push_back(std::move(e));
  }
  return Status();
}

}  // namespace cohort::config_detail
