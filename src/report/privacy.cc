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

std::string render_models(const std::vector<Row>& rows) {
  bool any = false;
  for (const Row& r : rows) any = any || r.j->contains("models");
  if (!any) return "";
  std::string h =
      "<section class=\"card\">\n<h2>Models</h2>\n<p>Runs that trained several models at once: "
      "each model's target accuracy, the virtual time at which it first reached it, and its "
      "final and best accuracy. The run's time to target is the last of these.</p>\n<table>\n"
      "<thead><tr><th>Run</th><th>Model</th><th>Target</th><th>Time to target</th>"
      "<th>Final accuracy</th><th>Best accuracy</th></tr></thead>\n<tbody>\n";
  for (const Row& r : rows) {
    if (!r.j->contains("models") || !(*r.j)["models"].is_object()) continue;
    const Json& models = (*r.j)["models"];
    for (auto it = models.begin(); it != models.end(); ++it) {
      const Json& m = it.value();
      auto pct = [&](const char* key) {
        return m.contains(key) && m[key].is_number() ? fmt_pct(m[key].get<double>(), 2)
                                                     : std::string("&ndash;");
      };
      const std::string ttt = m.contains("time_to_target") && m["time_to_target"].is_number()
                                  ? sig3(m["time_to_target"].get<double>()) + " s"
                                  : std::string("&ndash;");
      h += "<tr><td>" + esc(json_text(*r.j, "label")) + "</td><td>" + esc(it.key()) +
           "</td><td>" + pct("target_accuracy") + "</td><td>" + ttt + "</td><td>" +
           pct("final_accuracy") + "</td><td>" + pct("best_accuracy") + "</td></tr>\n";
    }
  }
  return h + "</tbody>\n</table>\n</section>\n";
}

}  // namespace cohort::report_detail
