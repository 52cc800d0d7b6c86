#include "report/privacy.h"

#include "report/text.h"

namespace cohort::report_detail {

bool any_epsilon(const std::vector<ReportSeries>& series) {
  for (const ReportSeries& s : series) {
    for (const Json& e : s.evals) {
      if (e.contains("epsilon")) return true;
    }
  }
  return false;
}

std::string render_privacy(const std::vector<Row>& rows) {
  bool any = false;
  for (const Row& r : rows) any = any || r.j->contains("epsilon") || r.j->contains("secagg");
  if (!any) return "";
  std::string h =
      "<section class=\"card\">\n<h2>Privacy</h2>\n<p>Client-level differential privacy: the "
      "(&epsilon;, &delta;) guarantee each run spent (RDP accountant), with its noise multiplier "
      "and its clip norm at the end. Secure aggregation: the groups the server learned only as "
      "sums, and the groups whose protocol failed (too many dropouts; the model was left "
      "unchanged).</p>\n<table>\n<thead><tr><th>Run</th><th>&epsilon;</th><th>&delta;</th>"
      "<th>Noise multiplier</th><th>Clip norm</th><th>Secure groups</th><th>Failed</th></tr>"
      "</thead>\n<tbody>\n";
  auto num = [](const Json& j, const char* key) {
    return j.contains(key) && j[key].is_number() ? sig3(j[key].get<double>()) : "&ndash;";
  };
  for (const Row& r : rows) {
    const Json& j = *r.j;
    const Json secagg = j.value("secagg", Json::object());
    h += "<tr><td>" + esc(json_text(j, "label")) + "</td><td>" + num(j, "epsilon") +
         "</td><td>" + num(j, "delta") + "</td><td>" + num(j, "noise_multiplier") +
         "</td><td>" + num(j, "clip_norm") + "</td><td>" + num(secagg, "groups") + "</td><td>" +
         num(secagg, "failed") + "</td></tr>\n";
  }
  return h + "</tbody>\n</table>\n</section>\n";
}

}  // namespace cohort::report_detail
