#include "cohort/core/model_parts.h"

#include <set>

namespace cohort {

Result<std::vector<ModelPart>> model_parts(const ArrayLayout& layout) {
  std::vector<ModelPart> parts;
  std::set<std::string> seen;
  const auto& specs = layout.specs();
  size_t prefixed = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const size_t slash = specs[i].name.find('/');
    if (slash == std::string::npos || slash == 0) continue;
    ++prefixed;
    const std::string model = specs[i].name.substr(0, slash);
    if (!parts.empty() && parts.back().name == model && parts.back().end_array == i) {
      parts.back().end_array = i + 1;
      parts.back().end = specs[i].offset + specs[i].numel;
      continue;
    }
    if (!seen.insert(model).second) {
      return Status::invalid_argument("array '" + specs[i].name + "': the arrays of model '" +
                                      model + "' are not consecutive");
    }
    parts.push_back(ModelPart{model, i, i + 1, specs[i].offset, specs[i].offset + specs[i].numel});
  }
  if (prefixed != 0 && prefixed != specs.size()) {
    for (const ArraySpec& s : specs) {
      if (s.name.find('/') == std::string::npos || s.name.front() == '/') {
        return Status::invalid_argument("array '" + s.name +
                                        "' names no model while others do (\"<model>/<array>\")");
      }
    }
  }
  return parts;
}

Result<std::shared_ptr<const ArrayLayout>> part_layout(const ArrayLayout& layout,
                                                       const ModelPart& part) {
  std::vector<ArraySpec> specs;
  for (size_t i = part.first_array; i < part.end_array; ++i) {
    ArraySpec s = layout.specs()[i];
    s.name = s.name.substr(part.name.size() + 1);
    s.offset = 0;
    s.numel = 0;
    specs.push_back(std::move(s));
  }
  return ArrayLayout::create(std::move(specs));
}

}  // namespace cohort
