#include "report/robustness.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "report/text.h"

namespace cohort::report_detail {

namespace {

std::set<std::string> attacker_ids(const Json& row) {
  std::set<std::string> ids;
  for (const Json& c : row.value("attackers", Json::array())) ids.insert(c.dump());
  return ids;
}

struct Spread {
  double mean = 0, lo = 0, hi = 0;
  size_t n = 0;
};

Spread spread(const std::vector<double>& v) {
  Spread s;
  s.n = v.size();
  if (v.empty()) return s;
  s.lo = *std::min_element(v.begin(), v.end());
  s.hi = *std::max_element(v.begin(), v.end());
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  return s;
}

}  // namespace

std::optional<double> trust_auc(const Json& row) {
  const Json trust = row.value("trust", Json::object());
  const std::set<std::string> bad = attacker_ids(row);
  std::vector<double> honest, attackers;
  for (const auto& [id, t] : trust.items()) {
    (bad.count(id) ? attackers : honest).push_back(t.get<double>());
  }
  if (honest.empty() || attackers.empty()) return std::nullopt;
  double wins = 0;
  for (double h : honest) {
    for (double a : attackers) wins += h > a ? 1.0 : h == a ? 0.5 : 0.0;
  }
  return wins / static_cast<double>(honest.size() * attackers.size());
}

std::string render_robustness(const std::vector<Row>& rows) {
  bool any = false;
  for (const Row& r : rows) {
    any = any || r.j->contains("trust") || r.j->contains("contribution") ||
          r.j->contains("attackers");
  }
  if (!any) return "";
  std::string h =
      "<section class=\"card\">\n<h2>Robustness</h2>\n<p>Trust: a running score per client of "
      "how much the robust rule used its updates (1 = fully). AUC: the probability that a "
      "random honest client's trust exceeds a random attacker's (1 = perfect separation, 0.5 = "
      "none). Contribution: per-client sums of the per-round estimates.</p>\n"
      "<table>\n<thead><tr><th>Run</th><th>Rule</th><th>Attackers</th>"
      "<th>Trust, honest: mean (min)</th><th>Trust, attackers: mean (max)</th>"
      "<th>Trust AUC</th><th>Contribution</th></tr></thead>\n<tbody>\n";
  for (const Row& r : rows) {
    const Json& j = *r.j;
    const std::set<std::string> bad = attacker_ids(j);
    std::vector<double> honest, attackers;
    const Json trust = j.value("trust", Json::object());  // items() must not outlive it
    for (const auto& [id, t] : trust.items()) {
      (bad.count(id) ? attackers : honest).push_back(t.get<double>());
    }
    const Spread sh = spread(honest), sa = spread(attackers);
    std::string attackers_text = bad.empty() ? "none" : std::to_string(bad.size()) + ": ";
    if (!bad.empty()) {
      size_t k = 0;
      for (const Json& c : j["attackers"]) attackers_text += (k++ ? ", " : "") + c.dump();
    }
    const std::optional<double> auc = trust_auc(j);
    std::string contribution = "&ndash;";
    if (j.contains("contribution")) {
      const Json& c = j["contribution"];
      std::vector<std::pair<double, std::string>> v;
      const Json values = c.value("values", Json::object());
      for (const auto& [id, x] : values.items()) {
        v.emplace_back(x.get<double>(), id);
      }
      std::sort(v.begin(), v.end());
      contribution = esc(json_text(c, "method"));
      if (!v.empty()) {
        contribution += ": lowest client " + esc(v.front().second) + " (" +
                        sig3(v.front().first) + "), highest " + esc(v.back().second) + " (" +
                        sig3(v.back().first) + ")";
      }
    }
    h += "<tr><td>" + esc(json_text(j, "label")) + "</td><td>" +
         esc(j.contains("robust_rule") ? json_text(j, "robust_rule") : "mean (none)") +
         "</td><td>" + esc(attackers_text) + "</td><td>" +
         (sh.n ? sig3(sh.mean) + " (" + sig3(sh.lo) + ")" : "&ndash;") + "</td><td>" +
         (sa.n ? sig3(sa.mean) + " (" + sig3(sa.hi) + ")" : "&ndash;") + "</td><td>" +
         (auc ? sig3(*auc) : "&ndash;") + "</td><td>" + contribution + "</td></tr>\n";
  }
  h += "</tbody>\n</table>\n";
  // One run: every client.
  if (rows.size() == 1) {
    const Json& j = *rows[0].j;
    const std::set<std::string> bad = attacker_ids(j);
    const Json trust = j.value("trust", Json::object());
    const Json values =
        j.value("contribution", Json::object()).value("values", Json::object());
    std::set<std::string> ids;
    for (const auto& [id, t] : trust.items()) ids.insert(id);
    for (const auto& [id, t] : values.items()) ids.insert(id);
    std::vector<std::string> order(ids.begin(), ids.end());
    std::sort(order.begin(), order.end(), [](const std::string& a, const std::string& b) {
      return std::stoll(a) < std::stoll(b);
    });
    if (!order.empty()) {
      h += "<table>\n<thead><tr><th>Client</th><th>Attacker</th><th>Trust</th>"
           "<th>Contribution</th></tr></thead>\n<tbody>\n";
      for (const std::string& id : order) {
        h += "<tr><td>" + esc(id) + "</td><td>" + (bad.count(id) ? "yes" : "") + "</td><td>" +
             (trust.contains(id) ? sig3(trust[id].get<double>()) : "&ndash;") +
             "</td><td>" +
             (values.contains(id) ? sig3(values[id].get<double>()) : "&ndash;") +
             "</td></tr>\n";
      }
      h += "</tbody>\n</table>\n";
    }
  }
  return h + "</section>\n";
}

}  // namespace cohort::report_detail
