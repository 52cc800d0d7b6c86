#include "cohort/strategy/staleness.h"

#include <cmath>

namespace cohort {

double StalenessFn::operator()(int64_t staleness) const {
  const auto t = static_cast<double>(std::max<int64_t>(0, staleness));
  if (kind == "polynomial") return std::pow(t + 1.0, -a);
  if (kind == "hinge") return t <= b ? 1.0 : 1.0 / (a * (t - b) + 1.0);
  if (kind == "exponential") return std::exp(-a * t);
  return 1.0;
}

StalenessFn StalenessFn::read(StrategyParams& p, const std::string& default_kind) {
  StalenessFn f;
  f.kind = p.string("staleness", default_kind);
  if (f.kind != "constant" && f.kind != "polynomial" && f.kind != "hinge" &&
      f.kind != "exponential") {
    p.fail_with("staleness", "unknown staleness function '" + f.kind +
                                 "' (known: constant, polynomial, hinge, exponential)");
  }
  f.a = p.number("staleness_a", f.a);
  p.check(f.a >= 0, "staleness_a", "must be >= 0", f.a);
  f.b = p.number("staleness_b", f.b);
  p.check(f.b >= 0, "staleness_b", "must be >= 0", f.b);
  return f;
}

}  // namespace cohort
