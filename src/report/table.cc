// The report's text sections (report/table.h): the comparison table, the highlights above
// it, and the setting.
#include "report/table.h"

#include <cstdint>
#include <utility>

#include "cohort/core/format.h"
#include "report/plot.h"
#include "report/text.h"

namespace cohort::report_detail {

// ---------------------------------------------------------------------------------------
// The table.

namespace {

std::string params_text(const Json& params) {
  std::string out;
  if (!params.is_object()) return out;
  for (const auto& [key, value] : params.items()) {
    if (!out.empty()) out += " \xc2\xb7 ";
    out += key + " " + param_value(value);
  }
  return out;
}

// True when `v` is the best of `values` (the minimum when `lower`, else the maximum) and at
// least two rows have a value, so marking it says something.
bool is_best(const std::optional<double>& v, const std::vector<std::optional<double>>& values,
             bool lower) {
  if (!v) return false;
  size_t present = 0;
  for (const auto& o : values) {
    if (!o) continue;
    ++present;
    if (lower ? *o < *v : *o > *v) return false;
  }
  return present >= 2;
}

}  // namespace

std::string render_table(const Json& cmp, const std::vector<Row>& rows, double target) {
  const bool has_target = target > 0;
  auto column = [&](const char* key) {
    std::vector<std::optional<double>> out;
    for (const Row& r : rows) out.push_back(opt_number(*r.j, key));
    return out;
  };
  std::vector<std::optional<double>> bytes_to_target = column("bytes_to_target");
  const auto ttt = column("time_to_target");
  const auto rtt = column("rounds_to_target");
  const auto fin = column("final_accuracy");
  const auto best = column("best_accuracy");

  std::string h;
  h += "<div class=\"table-wrap\"><table class=\"results\">\n<thead>\n<tr class=\"group\">"
       "<th rowspan=\"2\" class=\"rank\">#</th><th rowspan=\"2\" class=\"name\">Strategy</th>";
  if (has_target) {
    h += "<th colspan=\"3\">To reach " + esc(fmt_pct(target, 1)) + "</th>";
  }
  h += "<th colspan=\"2\">Test accuracy</th><th colspan=\"4\">Whole run</th></tr>\n<tr>";
  if (has_target) h += "<th>virtual time</th><th>rounds</th><th>traffic</th>";
  h += "<th>final</th><th>best</th><th>rounds</th><th>updates</th><th>traffic</th>"
       "<th>virtual time</th></tr>\n</thead>\n<tbody>\n";
  (void)cmp;
  for (size_t k = 0; k < rows.size(); ++k) {
    const Json& j = *rows[k].j;
    const size_t i = rows[k].index;
    const bool winner = k == 0 && rows.size() > 1 && (!has_target || rows[k].ttt.has_value());
    h += winner ? "<tr class=\"winner\">" : "<tr>";
    h += "<td class=\"rank\">" + std::to_string(k + 1) +
         (winner ? " <span class=\"star\" title=\"best\">\xe2\x98\x85</span>" : "") + "</td>";
    const std::string label = json_text(j, "label");
    const std::string name = json_text(j, "strategy");
    // The swatch is the legend's line, dashes included, so rows past the tenth colour
    // still match their plot line.
    h += "<td class=\"name\"><svg class=\"swatch\" viewBox=\"0 0 22 10\" width=\"22\" "
         "height=\"10\"><line x1=\"2\" x2=\"20\" y1=\"5\" y2=\"5\" stroke=\"" +
         std::string(colour(i)) + "\"" + dash(i) + "/></svg><b>" + esc(label) + "</b>";
    std::string sub;
    if (name != label) sub = name;
    const std::string params = params_text(j.value("params", Json::object()));
    if (!params.empty()) sub += (sub.empty() ? "" : ": ") + params;
    if (!sub.empty()) h += "<div class=\"params\">" + esc(sub) + "</div>";
    const std::string hash = json_text(j, "model_hash");
    if (!hash.empty())
      h += "<div class=\"hash\" title=\"final model hash\">model " + esc(hash) + "</div>";
    h += "</td>";

    auto cell = [&](const std::string& text, bool mark) {
      h += mark ? "<td class=\"num best\">" : "<td class=\"num\">";
      h += text + "</td>";
    };
    if (has_target) {
      const auto t = opt_number(j, "time_to_target");
      cell(t ? esc(fmt_seconds(*t)) : "<span class=\"never\">not reached</span>",
           is_best(t, ttt, true));
      const auto r = opt_number(j, "rounds_to_target");
      cell(r ? with_commas(static_cast<int64_t>(*r)) : kDash, is_best(r, rtt, true));
      const auto b = opt_number(j, "bytes_to_target");
      const auto bu = opt_number(j, "uplink_to_target");
      cell(b ? esc(fmt_bytes(*b)) + (bu ? "<div class=\"sub\">\xe2\x86\x91 " + esc(fmt_bytes(*bu)) + "</div>"
                                       : std::string())
             : kDash,
           is_best(b, bytes_to_target, true));
    }
    const auto f = opt_number(j, "final_accuracy");
    cell(f ? esc(fmt_pct(*f)) : kDash, is_best(f, fin, false));
    const auto ba = opt_number(j, "best_accuracy");
    cell(ba ? esc(fmt_pct(*ba)) : kDash, is_best(ba, best, false));
    const auto rounds = opt_number(j, "rounds");
    cell(rounds ? with_commas(static_cast<int64_t>(*rounds)) : kDash, false);
    const auto updates = opt_number(j, "updates");
    cell(updates ? with_commas(static_cast<int64_t>(*updates)) : kDash, false);
    const auto up = opt_number(j, "bytes_up");
    const auto down = opt_number(j, "bytes_down");
    if (up && down) {
      const auto peak = opt_number(j, "peak_bytes_per_s");
      const auto sync = opt_number(j, "peak_sync_bytes_per_s");
      cell(esc(fmt_bytes(*up + *down)) + "<div class=\"sub\">\xe2\x86\x91 " + esc(fmt_bytes(*up)) +
               " \xc2\xb7 \xe2\x86\x93 " + esc(fmt_bytes(*down)) + "</div>" +
               (peak && *peak > 0 ? "<div class=\"sub\">peak " + esc(fmt_bytes(*peak)) + "/s" +
                                        (sync && *sync > 0 ? " \xc2\xb7 sync " +
                                                                 esc(fmt_bytes(*sync)) + "/s"
                                                           : std::string()) +
                                        "</div>"
                                  : std::string()),
           false);
    } else {
      cell(kDash, false);
    }
    const auto vt = opt_number(j, "virtual_time_s");
    const auto wt = opt_number(j, "wall_time_s");
    cell((vt ? esc(fmt_seconds(*vt)) : std::string(kDash)) +
             (wt ? "<div class=\"sub\">wall " + esc(fmt_seconds(*wt)) + "</div>" : ""),
         false);
    h += "</tr>\n";
  }
  h += "</tbody>\n</table></div>\n";
  return h;
}

std::string render_highlights(const std::vector<Row>& rows, double target) {
  if (rows.empty()) return "<p class=\"lead\">No runs.</p>\n";
  std::string h = "<p class=\"lead\">";
  if (rows.size() == 1) {
    const Json& j = *rows[0].j;
    h += "<b>" + esc(json_text(j, "label")) + "</b>";
    if (target > 0 && rows[0].ttt) {
      h += " reached " + esc(fmt_pct(target, 1)) + " after " + esc(fmt_seconds(*rows[0].ttt)) +
           " of virtual time";
      if (auto r = opt_number(j, "rounds_to_target")) {
        h += " (round " + with_commas(static_cast<int64_t>(*r)) + ")";
      }
      h += ".";
    } else if (target > 0) {
      h += " did not reach the target accuracy of " + esc(fmt_pct(target, 1)) + ".";
    }
    const auto f = opt_number(j, "final_accuracy");
    const auto b = opt_number(j, "best_accuracy");
    if (f) {
      h += target > 0 ? " Final accuracy " : ": final accuracy ";
      h += esc(fmt_pct(*f));
      if (b) h += " (best " + esc(fmt_pct(*b)) + ")";
      h += ".";
    }
    return h + "</p>\n";
  }
  if (target > 0) {
    std::vector<const Row*> reached;
    std::vector<std::string> never;
    for (const Row& r : rows) {
      if (r.ttt) {
        reached.push_back(&r);
      } else {
        never.push_back(json_text(*r.j, "label"));
      }
    }
    if (reached.empty()) {
      h += "No strategy reached the target accuracy of " + esc(fmt_pct(target, 1)) + ".";
    } else {
      const Row& first = *reached.front();
      h += "<b>" + esc(json_text(*first.j, "label")) + "</b> reached " + esc(fmt_pct(target, 1)) +
           " first, after " + esc(fmt_seconds(*first.ttt)) + " of virtual time";
      if (auto r = opt_number(*first.j, "rounds_to_target")) {
        h += " (round " + with_commas(static_cast<int64_t>(*r)) + ")";
      }
      if (reached.size() > 1 && *first.ttt > 0) {
        const Row& last = *reached.back();
        h += strformat(", %.1f&times; sooner than ", *last.ttt / *first.ttt) + "<b>" +
             esc(json_text(*last.j, "label")) + "</b>";
      }
      h += ".";
      if (!never.empty()) {
        std::string list;
        for (size_t k = 0; k < never.size(); ++k) {
          if (k > 0) list += k + 1 == never.size() ? " and " : ", ";
          list += "<b>" + esc(never[k]) + "</b>";
        }
        h += " " + list + (never.size() == 1 ? " never reached it." : " never reached it.");
      }
    }
    h += " ";
  }
  const Row* best = nullptr;
  for (const Row& r : rows) {
    const auto f = opt_number(*r.j, "final_accuracy");
    if (f && (best == nullptr || *f > *opt_number(*best->j, "final_accuracy"))) best = &r;
  }
  if (best != nullptr) {
    h += "Highest final accuracy: <b>" + esc(json_text(*best->j, "label")) + "</b>, " +
         esc(fmt_pct(*opt_number(*best->j, "final_accuracy"))) + ".";
  }
  h += "</p>\n";
  return h;
}

// ---------------------------------------------------------------------------------------
// The setting.

namespace {

std::string describe_distribution(const Json& d, const std::string& unit) {
  if (d.is_number()) return short_num(d.get<double>()) + " " + unit;
  if (!d.is_object()) return esc(d.dump());
  const std::string kind = d.value("distribution", "constant");
  auto v = [&](const char* key) {
    return short_num(d.value(key, 0.0));
  };
  std::string s;
  if (kind == "constant") {
    s = v("mean") + " " + unit;
  } else {
    if (kind == "normal") {
      s = "normal, mean " + v("mean") + " " + unit + ", std " + v("std");
    } else if (kind == "exponential") {
      s = "exponential, mean " + v("mean") + " " + unit;
    } else if (kind == "uniform") {
      s = "uniform, " + v("low") + " \xe2\x80\x93 " + v("high") + " " + unit;
    } else if (kind == "lognormal") {
      s = "lognormal, mean " + v("mean") + " " + unit + ", \xcf\x83 " + v("sigma");
    } else {
      s = kind + ", mean " + v("mean") + " " + unit;
    }
    const double mn = d.value("min", 1e-6);
    const double mx = d.value("max", 1e300);
    const bool has_min = mn != 1e-6;
    const bool has_max = mx < 1e299;
    if (has_min && has_max) {
      s += ", clamped to [" + short_num(mn) + ", " + short_num(mx) + "]";
    } else if (has_min) {
      s += ", at least " + short_num(mn);
    } else if (has_max) {
      s += ", at most " + short_num(mx);
    }
  }
  return esc(s);
}

}  // namespace

std::string render_setting(const Json& setting, const std::vector<ReportSeries>& series,
                           double target, const Json& comparison) {
  std::vector<std::pair<std::string, std::string>> items;  // term, HTML
  const Json data = setting.value("data", Json::object());
  const Json clients = setting.value("clients", Json::object());
  const Json model = setting.value("model", Json::object());
  const Json training = setting.value("training", Json::object());
  const Json run = setting.value("run", Json::object());

  if (!data.empty()) {
    std::string d = esc(data.value("dataset", "?"));
    std::vector<std::string> parts;
    if (auto n = opt_number(setting, "train_examples")) {
      parts.push_back(with_commas(static_cast<int64_t>(*n)) + " training");
    }
    if (auto n = opt_number(setting, "test_examples")) {
      parts.push_back(with_commas(static_cast<int64_t>(*n)) + " test examples");
    }
    if (auto n = opt_number(setting, "classes")) {
      parts.push_back(with_commas(static_cast<int64_t>(*n)) + " classes");
    }
    for (size_t k = 0; k < parts.size(); ++k) d += (k == 0 ? ": " : ", ") + parts[k];
    items.emplace_back("Data", d);
    const std::string kind = data.value("partition", "");
    std::string p = esc(kind);
    if (kind == "dirichlet") {
      p += " over labels, \xce\xb1 = " + short_num(data.value("alpha", 0.0)) + ", at least " +
           short_num(data.value("min_size", 0.0)) + " examples per client";
    } else if (kind == "shards") {
      p += ", " + short_num(data.value("shards_per_client", 0.0)) + " shards per client";
    } else if (kind == "iid") {
      const double skew = data.value("size_skew", 0.0);
      p += skew > 0 ? ", size skew " + short_num(skew) : ", equal sizes";
    }
    items.emplace_back("Partition", p);
  }
  if (!clients.empty()) {
    items.emplace_back("Clients", esc(short_num(clients.value("count", 0.0))));
    const Json trace = clients.value("trace", Json(nullptr));
    if (trace.is_string()) {
      items.emplace_back("Devices",
                         "from the trace <code>" + esc(trace.get<std::string>()) + "</code>");
    } else {
      const std::pair<const char*, const char*> fields[] = {{"speed", "local steps/s"},
                                                            {"up_mbps", "Mbit/s"},
                                                            {"down_mbps", "Mbit/s"},
                                                            {"latency_ms", "ms"}};
      const char* names[] = {"Client speed", "Uplink", "Downlink", "Latency"};
      for (size_t k = 0; k < 4; ++k) {
        if (clients.contains(fields[k].first)) {
          items.emplace_back(names[k],
                             describe_distribution(clients[fields[k].first], fields[k].second));
        }
      }
    }
    const double jitter = clients.value("jitter", 0.0);
    if (jitter > 0) {
      items.emplace_back("Compute jitter", esc("each task's compute time \xc3\x97 max(0.05, N(1, " +
                                               short_num(jitter) + "))"));
    }
    const double dropout = clients.value("dropout", 0.0);
    if (dropout > 0) {
      items.emplace_back("Dropout",
                         esc(fmt_pct(dropout, 1) + " of tasks never return (noticed after " +
                             short_num(clients.value("task_timeout_factor", 3.0)) +
                             "\xc3\x97 the expected duration)"));
    }
    const Json avail = clients.value("availability", Json::object());
    if (avail.is_object() && avail.value("mean_online_s", 0.0) > 0) {
      items.emplace_back(
          "Availability",
          esc(avail.value("distribution", std::string("exponential")) + " on/off periods: online " +
              short_num(avail.value("mean_online_s", 0.0)) + " s, offline " +
              short_num(avail.value("mean_offline_s", 0.0)) + " s on average"));
    }
    // Keys this page does not know are still shown, as JSON.
    for (const auto& [key, value] : clients.items()) {
      if (key == "count" || key == "speed" || key == "up_mbps" || key == "down_mbps" ||
          key == "latency_ms" || key == "trace" || key == "jitter" || key == "dropout" ||
          key == "task_timeout_factor" || key == "availability") {
        continue;
      }
      items.emplace_back("clients." + key, "<code>" + esc(value.dump()) + "</code>");
    }
  }
  if (!model.empty()) {
    std::string m = esc(model.value("name", "?"));
    if (model.value("name", "") == "mlp" && model.contains("hidden")) {
      std::string widths;
      for (const Json& w : model["hidden"]) widths += (widths.empty() ? "" : ", ") + w.dump();
      m += ", hidden layers " + esc("[" + widths + "]");
    }
    for (const auto& s : series) {
      if (s.start.is_object() && s.start.contains("params")) {
        m += ", " + with_commas(s.start.value("params", int64_t{0})) + " parameters";
        break;
      }
    }
    items.emplace_back("Model", m);
  }
  if (!training.empty()) {
    std::string t = esc(training.value("optimizer", "sgd")) + ", lr " +
                    short_num(training.value("lr", 0.0)) + ", batch " +
                    short_num(training.value("batch_size", 0.0));
    if (training.value("momentum", 0.0) > 0)
      t += ", momentum " + short_num(training.value("momentum", 0.0));
    if (training.value("weight_decay", 0.0) > 0) {
      t += ", weight decay " + short_num(training.value("weight_decay", 0.0));
    }
    if (training.value("local_steps", int64_t{0}) > 0) {
      t += ", " + short_num(training.value("local_steps", 0.0)) + " local steps per task";
    } else {
      const double ep = training.value("local_epochs", 1.0);
      t += ", " + short_num(ep) + (ep == 1.0 ? " local epoch" : " local epochs") + " per task";
    }
    items.emplace_back("Local training", t);
  }
  if (!run.empty()) {
    std::vector<std::string> parts;
    if (run.value("rounds", int64_t{0}) > 0) {
      parts.push_back("up to " + with_commas(run.value("rounds", int64_t{0})) + " rounds");
    }
    if (run.value("max_virtual_time_s", 0.0) > 0) {
      parts.push_back("up to " + fmt_seconds(run.value("max_virtual_time_s", 0.0)) + " virtual");
    }
    const int64_t every = run.value("eval_every", int64_t{1});
    if (every > 0) {
      parts.push_back(every == 1 ? "evaluated every round"
                                 : "evaluated every " + with_commas(every) + " rounds");
    }
    if (run.value("eval_interval_s", 0.0) > 0) {
      parts.push_back("evaluated every " + fmt_seconds(run.value("eval_interval_s", 0.0)) +
                      " virtual");
    }
    parts.push_back("seed " + json_text(run, "seed"));
    std::string r;
    for (size_t k = 0; k < parts.size(); ++k) r += (k == 0 ? "" : ", ") + parts[k];
    items.emplace_back("Run", esc(r));
  }
  items.emplace_back("Target accuracy", target > 0 ? esc(fmt_pct(target, 1)) : "none");
  if (comparison.value("stopped_early", false)) {
    items.emplace_back("Note", "stopped early (interrupted); strategies not started are absent");
  }

  std::string h = "<dl class=\"setting\">\n";
  for (const auto& [term, html] : items) {
    h += "<dt>" + esc(term) + "</dt><dd>" + html + "</dd>\n";
  }
  h += "</dl>\n";
  return h;
}

}  // namespace cohort::report_detail
