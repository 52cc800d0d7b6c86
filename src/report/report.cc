// The report's page (cohort/report/report.h): reading the run files, putting the sections
// (report/table.h, report/plot.h) together under the inline CSS, and writing report.html.
// Everything is computed here, at generation time, so the page is static: inline CSS, inline
// SVG, no script and no external resource (no URL at all; inline SVG in HTML needs no xmlns).
#include "cohort/report/report.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "report/plot.h"
#include "report/privacy.h"
#include "report/robustness.h"
#include "report/table.h"
#include "report/text.h"

namespace cohort {

using report_detail::accuracy_axis;
using report_detail::any_epsilon;
using report_detail::Axis;
using report_detail::esc;
using report_detail::fmt_pct;
using report_detail::json_text;
using report_detail::opt_number;
using report_detail::render_highlights;
using report_detail::render_models;
using report_detail::render_privacy;
using report_detail::render_plot;
using report_detail::render_setting;
using report_detail::render_table;
using report_detail::Row;
using report_detail::short_num;
using report_detail::XKind;

namespace {

constexpr const char* kStyle = R"CSS(
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f8; color: #1f2328;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
  Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 40px; }
header h1 { font-size: 24px; margin: 0 0 2px; letter-spacing: -0.01em; }
header .subtitle { color: #59636e; margin: 0; }
.card { background: #fff; border: 1px solid #d8dee4; border-radius: 10px; padding: 18px 22px 14px;
  margin: 18px 0; box-shadow: 0 1px 2px rgba(31, 35, 40, 0.04); }
.card h2 { font-size: 16px; margin: 0 0 10px; }
.lead { margin: 0 0 14px; }
.warn { margin: 0 0 10px; padding: 8px 12px; border-radius: 6px; background: #fff8c5;
  border: 1px solid #eac54f; }
.table-wrap { overflow-x: auto; }
table.results { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums;
  font-size: 13px; }
.results th, .results td { padding: 7px; border-bottom: 1px solid #e6e9ed; vertical-align: top; }
.results thead th { font-weight: 600; color: #424a53; background: #f6f8fa; white-space: nowrap;
  text-align: right; }
.results thead tr.group th { text-align: center; border-bottom: 1px solid #d8dee4; }
.results thead tr.group th.name, .results thead tr.group th.rank { text-align: left;
  vertical-align: bottom; }
.results td.num { text-align: right; white-space: nowrap; }
.results td.rank { color: #59636e; white-space: nowrap; }
.results td.name { min-width: 170px; }
.results tr.winner td { background: #f3f9f1; }
.results td.best { font-weight: 700; color: #1a7f37; }
.results .star { color: #bf8700; }
.results .never { color: #9a6700; }
.results .sub, .results .params, .results .hash { font-size: 12px; color: #59636e;
  font-weight: 400; }
.results .hash { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 11px; }
.swatch { margin-right: 6px; vertical-align: 0; }
.swatch line { stroke-width: 3; stroke-linecap: round; }
svg.plot { width: 100%; height: auto; display: block; font-size: 13px; }
svg.plot .grid line { stroke: #eaeef2; stroke-width: 1; }
svg.plot .ticks text { fill: #59636e; font-size: 12px; }
svg.plot .axis { fill: none; stroke: #8c959f; stroke-width: 1; }
svg.plot .axis-title { fill: #424a53; font-size: 13px; }
svg.plot .target { stroke: #57606a; stroke-width: 1.3; stroke-dasharray: 6 5; }
svg.plot .target-label { fill: #57606a; font-size: 12px; }
svg.plot .series polyline { fill: none; stroke-width: 2.2; stroke-linejoin: round;
  stroke-linecap: round; }
svg.plot .series circle { stroke: #fff; stroke-width: 0.8; }
svg.plot .series circle:hover { r: 5; }
svg.plot .legend line { stroke-width: 3; stroke-linecap: round; }
svg.plot .legend text { fill: #1f2328; }
dl.setting { display: grid; grid-template-columns: max-content 1fr; gap: 6px 22px; margin: 0; }
dl.setting dt { color: #59636e; }
dl.setting dd { margin: 0; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
footer { color: #6e7781; font-size: 12px; margin-top: 8px; }
)CSS";

// ---------------------------------------------------------------------------------------
// Reading the files.

Result<Json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot read '" + path + "': " + std::strerror(errno));
  try {
    return Json::parse(in);
  } catch (const std::exception& e) {
    return Status::data_loss("'" + path + "' is not valid JSON: " + e.what());
  }
}

Result<ReportSeries> read_series(const std::string& path, const std::string& label) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot read '" + path + "': " + std::strerror(errno));
  ReportSeries s;
  s.label = label;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json e;
    try {
      e = Json::parse(line);
    } catch (const std::exception& ex) {
      return Status::data_loss(path + ":" + std::to_string(n) +
                               ": not a JSON object: " + ex.what());
    }
    if (!e.is_object()) {
      return Status::data_loss(path + ":" + std::to_string(n) + ": not a JSON object");
    }
    const std::string kind = e.value("event", "");
    if (kind == "eval") {
      s.evals.push_back(std::move(e));
    } else if (kind == "start" && s.start.is_null()) {
      s.start = std::move(e);
    }
  }
  return s;
}

// A `cohort simulate` directory as a comparison of one.
Result<std::string> render_single_run(const std::string& dir) {
  COHORT_ASSIGN_OR_RETURN(Json summary, read_json(dir + "/summary.json"));
  Json config = Json::object();
  if (std::filesystem::exists(dir + "/config.json")) {
    COHORT_ASSIGN_OR_RETURN(config, read_json(dir + "/config.json"));
  }
  const std::string name = summary.value("strategy", "run");
  COHORT_ASSIGN_OR_RETURN(ReportSeries s, read_series(dir + "/metrics.jsonl", name));
  const double target = config.value("run", Json::object()).value("target_accuracy", 0.0);

  const std::optional<TargetCrossing> crossing = first_target_crossing(s.evals, target);
  Json row = Json::object();
  row["label"] = name;
  row["strategy"] = name;
  Json params = config.value("strategy", Json::object());
  params.erase("name");
  row["params"] = params;
  row["time_to_target"] = summary.value("time_to_target", Json(nullptr));
  row["rounds_to_target"] = crossing ? Json(crossing->round) : Json(nullptr);
  row["updates_to_target"] = crossing ? Json(crossing->updates) : Json(nullptr);
  row["bytes_to_target"] = crossing ? Json(crossing->bytes) : Json(nullptr);
  row["uplink_to_target"] = crossing ? Json(crossing->bytes_up) : Json(nullptr);
  for (const char* key :
       {"final_accuracy", "final_loss", "best_accuracy", "rounds", "updates", "rejected", "lost",
        "bytes_up", "bytes_down", "peak_bytes_per_s", "peak_sync_bytes_per_s", "virtual_time_s", "wall_time_s", "model_hash", "robust_rule",
        "trust", "contribution", "attackers", "epsilon", "delta", "noise_multiplier", "clip_norm",
        "secagg", "models"}) {
    if (summary.contains(key)) row[key] = summary[key];
  }
  Json setting = Json::object();
  for (const char* key : {"data", "clients", "model", "training", "run"}) {
    if (config.contains(key)) setting[key] = config[key];
  }
  if (std::filesystem::exists(dir + "/clients.json")) {
    COHORT_ASSIGN_OR_RETURN(Json clients, read_json(dir + "/clients.json"));
    int64_t total = 0;
    size_t classes = 0;
    for (const Json& c : clients) {
      total += c.value("examples", int64_t{0});
      if (c.contains("label_counts")) classes = std::max(classes, c["label_counts"].size());
    }
    setting["train_examples"] = total;
    if (classes > 0) setting["classes"] = classes;
  }
  Json cmp = Json::object();
  cmp["target_accuracy"] = target;
  cmp["stopped_early"] = false;
  cmp["strategies"] = Json::array({row});
  cmp["setting"] = setting;
  return render_report(cmp, {std::move(s)});
}

}  // namespace

std::optional<TargetCrossing> first_target_crossing(const std::vector<Json>& evals, double target) {
  if (!(target > 0)) return std::nullopt;
  for (const Json& e : evals) {
    if (e.value("accuracy", 0.0) < target) continue;
    TargetCrossing crossing;
    crossing.round = e.value("round", int64_t{0});
    crossing.updates = e.value("updates", int64_t{0});
    crossing.bytes_up = e.value("bytes_up", int64_t{0});
    crossing.bytes = crossing.bytes_up + e.value("bytes_down", int64_t{0});
    return crossing;
  }
  return std::nullopt;
}

std::string render_report(const Json& comparison, const std::vector<ReportSeries>& series_in) {
  const Json list = comparison.value("strategies", Json::array());
  const double target = comparison.value("target_accuracy", 0.0);
  const Json setting = comparison.value("setting", Json::object());

  // One series per strategy row, in row order (missing ones are empty).
  std::vector<ReportSeries> series;
  for (size_t i = 0; i < list.size(); ++i) {
    ReportSeries s = i < series_in.size() ? series_in[i] : ReportSeries{};
    if (s.label.empty()) s.label = json_text(list[i], "label");
    series.push_back(std::move(s));
  }

  // Rows: reached the target first (by time, then rounds), then by final accuracy.
  std::vector<Row> rows;
  for (size_t i = 0; i < list.size(); ++i) {
    rows.push_back(
        {i, &list[i], target > 0 ? opt_number(list[i], "time_to_target") : std::nullopt});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.ttt.has_value() != b.ttt.has_value()) return a.ttt.has_value();
    if (a.ttt && *a.ttt != *b.ttt) return *a.ttt < *b.ttt;
    const double fa = opt_number(*a.j, "final_accuracy").value_or(-1);
    const double fb = opt_number(*b.j, "final_accuracy").value_or(-1);
    return fa > fb;
  });

  std::string labels;
  for (size_t i = 0; i < series.size(); ++i) labels += (i ? ", " : "") + series[i].label;
  const bool single = series.size() == 1;
  const std::string title = single ? "Cohort run: " + labels : "Cohort comparison: " + labels;

  std::string subtitle;
  {
    const Json data = setting.value("data", Json::object());
    const Json clients = setting.value("clients", Json::object());
    const Json model = setting.value("model", Json::object());
    const Json run = setting.value("run", Json::object());
    std::vector<std::string> parts;
    if (data.contains("dataset")) parts.push_back(json_text(data, "dataset"));
    if (clients.contains("count")) {
      parts.push_back(short_num(clients.value("count", 0.0)) + " clients");
    }
    if (data.contains("partition")) {
      std::string p = json_text(data, "partition");
      if (p == "dirichlet") p += " \xce\xb1=" + short_num(data.value("alpha", 0.0));
      parts.push_back(p + " partition");
    }
    if (model.contains("name")) parts.push_back(json_text(model, "name"));
    if (run.contains("seed")) parts.push_back("seed " + json_text(run, "seed"));
    if (target > 0) parts.push_back("target " + fmt_pct(target, 1));
    for (size_t k = 0; k < parts.size(); ++k) subtitle += (k ? " \xc2\xb7 " : "") + parts[k];
  }

  const Axis y = accuracy_axis(series, target);
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       "<meta name=\"generator\" content=\"cohort report\">\n<title>" +
       esc(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  h += "<header>\n<h1>" + std::string(single ? "Run report" : "Strategy comparison") +
       "</h1>\n<p class=\"subtitle\">" + esc(subtitle) + "</p>\n</header>\n";

  const std::string stopped =
      comparison.value("stopped_early", false)
          ? "<p class=\"warn\">Stopped early (interrupted): the runs in flight were cut short "
            "and strategies not started are missing, so totals are not comparable.</p>\n"
          : "";
  h += "<section class=\"card\">\n<h2>Results</h2>\n" + stopped + render_highlights(rows, target) +
       render_table(comparison, rows, target) + "</section>\n";
  h += render_robustness(rows);
  h += render_privacy(rows);
  h += render_models(rows);

  struct PlotDef {
    const char* title;
    XKind kind;
  };
  const PlotDef plots[] = {{"Accuracy against virtual time", XKind::kTime},
                           {"Accuracy against client updates", XKind::kUpdates},
                           {"Accuracy against communication", XKind::kBytes},
                           {"Accuracy against uplink bytes", XKind::kUplink}};
  for (const PlotDef& p : plots) {
    h += "<section class=\"card\">\n<h2>" + esc(p.title) + "</h2>\n" +
         render_plot(p.title, p.kind, series, y, target) + "</section>\n";
  }
  if (any_epsilon(series)) {
    const char* t = "Accuracy against privacy spent";
    h += "<section class=\"card\">\n<h2>" + std::string(t) + "</h2>\n" +
         render_plot(t, XKind::kEpsilon, series, y, target) + "</section>\n";
  }
  h += "<section class=\"card\">\n<h2>Setting</h2>\n" +
       render_setting(setting, series, target, comparison) + "</section>\n";
  h += "<footer>Generated by <code>cohort report</code> from " +
       std::string(single ? "summary.json, config.json and metrics.jsonl"
                          : "comparison.json and each strategy&#39;s metrics.jsonl. Every "
                            "strategy ran on the same data partition, client population and "
                            "seed") +
       ". Hover a point for its values.</footer>\n</main>\n</body>\n</html>\n";
  return h;
}

Result<std::string> render_report_from_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) return Status::not_found("'" + dir + "' is not a directory");
  if (!fs::exists(dir + "/comparison.json")) {
    if (fs::exists(dir + "/metrics.jsonl") && fs::exists(dir + "/summary.json")) {
      return render_single_run(dir);
    }
    return Status::not_found("'" + dir +
                             "' holds neither comparison.json (from cohort compare) "
                             "nor metrics.jsonl and summary.json (from cohort simulate)");
  }
  const std::string path = dir + "/comparison.json";
  COHORT_ASSIGN_OR_RETURN(Json cmp, read_json(path));
  if (!cmp.is_object() || !cmp.contains("strategies") || !cmp["strategies"].is_array()) {
    return Status::data_loss("'" + path + "' has no \"strategies\" list");
  }
  std::vector<ReportSeries> series;
  for (const Json& entry : cmp["strategies"]) {
    const std::string label = json_text(entry, "label");
    std::string sub = json_text(entry, "dir");
    if (sub.empty()) sub = label;
    if (sub.empty() || sub.find('/') != std::string::npos || sub[0] == '.') {
      return Status::data_loss("'" + path + "': strategy directory '" + sub +
                               "' is not a plain directory name");
    }
    COHORT_ASSIGN_OR_RETURN(ReportSeries s, read_series(dir + "/" + sub + "/metrics.jsonl", label));
    series.push_back(std::move(s));
  }
  return render_report(cmp, series);
}

Status write_report(const std::string& dir, const std::string& out_path) {
  COHORT_ASSIGN_OR_RETURN(std::string html, render_report_from_dir(dir));
  const std::string path = out_path.empty() ? dir + "/report.html" : out_path;
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return Status::unavailable("cannot write '" + tmp + "': " + std::strerror(errno));
  }
  const bool ok = std::fwrite(html.data(), 1, html.size(), f) == html.size() &&
                  std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int err = errno;
  std::fclose(f);
  if (!ok) {
    std::remove(tmp.c_str());
    return Status::unavailable("cannot write '" + tmp + "': " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    return Status::unavailable("cannot write '" + path + "': " + std::strerror(e));
  }
  return Status();
}

}  // namespace cohort
