// `strategies:` parsing, run_comparison's outputs and determinism, and the HTML report.
#include "cohort/runner/compare.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "cohort/report/report.h"

namespace cohort {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() /
               ("cohort_compare_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json read_json(const std::string& path) { return Json::parse(read_text(path)); }

std::vector<Json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<Json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(Json::parse(line));
  return out;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// A small synthetic scenario: three strategies, four rounds, about a second in all.
const char* kCompare = R"(
data:
  dataset: synthetic
  partition: dirichlet
  alpha: 0.5
  synthetic: {num_examples: 1200, test_examples: 400, dim: 10, classes: 4, separation: 3.0}
clients:
  count: 8
  speed: {distribution: exponential, mean: 50}
  up_mbps: {distribution: uniform, low: 1, high: 20}
model: {name: mlp, hidden: [16]}
training: {lr: 0.1, batch_size: 16, local_epochs: 1}
strategies:
  - {name: fedavg, fraction: 0.5, min_clients: 2}
  - {name: fedprox, label: prox, mu: 0.1, fraction: 0.5, min_clients: 2}
  - {name: fedavg, label: fedavg-all, fraction: 1.0, min_clients: 2}
run: {rounds: 4, seed: 5, threads: 2, target_accuracy: 0.5}
)";

// ---------------------------------------------------------------------------------------
// Config.

TEST(CompareConfigTest, ParsesStrategiesWithLabelsAndParams) {
  auto cfg = parse_simulation_config(kCompare, "c.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
  ASSERT_EQ(cfg->strategies.size(), 3u);
  EXPECT_EQ(cfg->strategies[0].name, "fedavg");
  EXPECT_EQ(cfg->strategies[0].label, "fedavg");  // defaults to the name
  EXPECT_EQ(cfg->strategies[1].name, "fedprox");
  EXPECT_EQ(cfg->strategies[1].label, "prox");
  EXPECT_EQ(cfg->strategies[2].label, "fedavg-all");
  // Parameters keep their YAML types; name and label are not parameters.
  const ConfigRecord& p = cfg->strategies[1].params;
  EXPECT_EQ(p.size(), 3u);
  EXPECT_EQ(std::get<double>(p.at("mu")), 0.1);
  EXPECT_EQ(std::get<int64_t>(p.at("min_clients")), 2);
  EXPECT_EQ(p.count("label"), 0u);
  EXPECT_EQ(std::get<double>(cfg->strategies[2].params.at("fraction")), 1.0);

  // config.json holds the list (with labels) instead of `strategy`, and reads back the same.
  const Json j = to_json(*cfg);
  EXPECT_FALSE(j.contains("strategy"));
  ASSERT_EQ(j["strategies"].size(), 3u);
  EXPECT_EQ(j["strategies"][1], Json::parse(R"({"name": "fedprox", "label": "prox",
      "fraction": 0.5, "min_clients": 2, "mu": 0.1})"));
  auto back = parse_simulation_config(j.dump(), "config.json");
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(to_json(*back), j);

  // Without the list, nothing changes for `cohort simulate` configs.
  auto single = parse_simulation_config("strategy: {name: fedprox, mu: 0.5}", "s.yaml");
  ASSERT_TRUE(single.ok());
  EXPECT_TRUE(single->strategies.empty());
  EXPECT_TRUE(to_json(*single).contains("strategy"));
  EXPECT_FALSE(to_json(*single).contains("strategies"));
}

TEST(CompareConfigTest, StrategiesErrorsNameThePath) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"strategy: {name: fedavg}\nstrategies: [{name: fedprox}]",
       "c.yaml: strategies: cannot be combined with a strategy: section; use strategies: (a "
       "list, for cohort compare) or strategy: (one strategy, for cohort simulate)"},
      {"strategies: fedavg",
       "c.yaml: strategies: expected a sequence of mappings (- name: fedavg ...), got 'fedavg'"},
      {"strategies: []", "c.yaml: strategies: must list at least one strategy"},
      {"strategies: [fedavg]",
       "c.yaml: strategies[0]: expected a mapping (name: ... plus parameters), got 'fedavg'"},
      {"strategies: [{name: fedavg}, {fraction: 0.5}]",
       "c.yaml: strategies[1].name: required key is missing (the strategy to run, e.g. fedavg)"},
      {"strategies: [{name: fedavg}, {name: fedprox}, {name: fedavg, fraction: 0.2}]",
       "c.yaml: strategies[2].name: 'fedavg' is already the label of strategies[0] (a label "
       "defaults to the name); add a distinct label: key, e.g. label: fedavg-2"},
      {"strategies: [{name: fedavg, label: a}, {name: fedprox, label: a}]",
       "c.yaml: strategies[1].label: 'a' is already the label of strategies[0]; labels must be "
       "unique"},
      {"strategies: [{name: fedavg, label: ../x}]",
       "c.yaml: strategies[0].label: '../x' cannot be used as a label (a directory name): use "
       "letters, digits, '.', '_', '-' or '+', not starting with '.' or '-'"},
      {"strategies: [{name: fedavg, label: [a]}]",
       "c.yaml: strategies[0].label: expected a string, got a sequence"},
      {"strategies: [{name: fedavg, schedule: {a: 1}}]",
       "c.yaml: strategies[0].schedule: expected a scalar (number, bool or string), got a "
       "mapping"},
  };
  for (const auto& [yaml, message] : cases) {
    auto cfg = parse_simulation_config(yaml, "c.yaml");
    ASSERT_FALSE(cfg.ok()) << yaml;
    EXPECT_EQ(cfg.error().code(), StatusCode::kInvalidArgument) << yaml;
    EXPECT_EQ(cfg.error().message(), message) << yaml;
  }
  // An override that adds a strategy: section to a strategies: file hits the same check.
  auto ov =
      parse_simulation_config("strategies: [{name: fedavg}]", "c.yaml", {"strategy.fraction=0.2"});
  ASSERT_FALSE(ov.ok());
  EXPECT_NE(ov.error().message().find("strategies: cannot be combined"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// run_comparison.

Result<Comparison> compare(const std::vector<std::string>& overrides, const std::string& out,
                           int64_t jobs) {
  COHORT_ASSIGN_OR_RETURN(SimulationConfig cfg,
                          parse_simulation_config(kCompare, "c.yaml", overrides));
  COHORT_ASSIGN_OR_RETURN(Scenario scenario, build_scenario(cfg));
  CompareOptions o;
  o.out_dir = out;
  o.progress = false;
  o.jobs = jobs;
  return run_comparison(cfg, scenario, o);
}

TEST(CompareTest, OutputsAgreeWithEachRunAndItsMetrics) {
  const std::string dir = temp_dir("outputs");
  auto cmp = compare({}, dir, 0);
  ASSERT_TRUE(cmp.ok()) << cmp.error().to_string();
  ASSERT_EQ(cmp->entries.size(), 3u);

  for (const char* f : {"config.json", "comparison.json", "report.html"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  }
  const Json c = read_json(dir + "/comparison.json");
  EXPECT_EQ(c["target_accuracy"], 0.5);
  EXPECT_EQ(c["stopped_early"], false);
  EXPECT_EQ(c["setting"]["clients"]["count"], 8);
  EXPECT_EQ(c["setting"]["run"]["seed"], 5);
  EXPECT_EQ(c["setting"]["data"]["partition"], "dirichlet");
  EXPECT_EQ(c["setting"]["train_examples"], 1200);
  EXPECT_EQ(c["setting"]["test_examples"], 400);
  EXPECT_EQ(c["setting"]["classes"], 4);
  // The top-level config.json is the comparison's own, readable back by cohort compare.
  EXPECT_EQ(read_json(dir + "/config.json")["strategies"].size(), 3u);

  const std::vector<std::string> labels = {"fedavg", "prox", "fedavg-all"};
  const std::vector<std::string> names = {"fedavg", "fedprox", "fedavg"};
  ASSERT_EQ(c["strategies"].size(), 3u);
  std::string first_clients;
  for (size_t i = 0; i < labels.size(); ++i) {
    const Json& row = c["strategies"][i];
    const std::string sub = dir + "/" + labels[i];
    EXPECT_EQ(row["label"], labels[i]);
    EXPECT_EQ(row["strategy"], names[i]);
    EXPECT_EQ(row["dir"], labels[i]);
    const Json summary = read_json(sub + "/summary.json");
    for (const char* key : {"final_accuracy", "best_accuracy", "updates", "rounds", "bytes_up",
                            "bytes_down", "virtual_time_s", "model_hash", "time_to_target"}) {
      EXPECT_EQ(row[key], summary[key]) << labels[i] << " " << key;
    }
    EXPECT_EQ(summary["strategy"], names[i]);
    EXPECT_EQ(row["rounds"], 4);
    // Each run's config.json is a single-strategy config `cohort simulate` can repeat.
    const Json run_cfg = read_json(sub + "/config.json");
    EXPECT_EQ(run_cfg["strategy"]["name"], names[i]);
    EXPECT_FALSE(run_cfg.contains("strategies"));
    // Same partition and device draws for every strategy.
    const std::string clients = read_text(sub + "/clients.json");
    if (i == 0)
      first_clients = clients;
    else
      EXPECT_EQ(clients, first_clients) << labels[i];

    // *_to_target recomputed from the metrics stream.
    Json first_hit = nullptr;
    for (const Json& e : read_jsonl(sub + "/metrics.jsonl")) {
      if (e["event"] == "eval" && e["accuracy"].get<double>() >= 0.5) {
        first_hit = e;
        break;
      }
    }
    ASSERT_FALSE(first_hit.is_null()) << labels[i] << " never reached 0.5 (chance is 0.25)";
    EXPECT_EQ(row["rounds_to_target"], first_hit["round"]);
    EXPECT_EQ(row["updates_to_target"], first_hit["updates"]);
    EXPECT_EQ(row["bytes_to_target"],
              first_hit["bytes_up"].get<int64_t>() + first_hit["bytes_down"].get<int64_t>());
    EXPECT_EQ(row["uplink_to_target"], first_hit["bytes_up"]);
    EXPECT_EQ(row["time_to_target"], first_hit["virtual_time_s"]);
    EXPECT_EQ(cmp->entries[i].summary.model_hash, summary["model_hash"]);
  }
  // fraction 1.0 samples every client each round: twice fedavg's 4 of 8.
  EXPECT_EQ(c["strategies"][0]["updates"], 16);
  EXPECT_EQ(c["strategies"][2]["updates"], 32);

  // A comparison run is exactly the standalone simulation of that strategy.
  auto cfg = parse_simulation_config(kCompare, "c.yaml");
  ASSERT_TRUE(cfg.ok());
  SimulationConfig one = *cfg;
  one.strategy = one.strategies[1];
  one.strategies.clear();
  auto scenario = build_scenario(one);
  ASSERT_TRUE(scenario.ok());
  RunOutputs ro;
  ro.progress = false;
  auto alone = run_simulation(one, *scenario, ro);
  ASSERT_TRUE(alone.ok()) << alone.error().to_string();
  EXPECT_EQ(alone->model_hash, c["strategies"][1]["model_hash"]);
  fs::remove_all(dir);
}

// The comparison.json content that must not depend on how the runs were scheduled.
Json deterministic_part(const Json& c) {
  Json out = c;
  for (Json& row : out["strategies"]) {
    row.erase("wall_time_s");
    row.erase("threads");
  }
  out["setting"]["run"].erase("threads");
  return out;
}

TEST(CompareTest, DeterministicAcrossThreadCountsAndConcurrency) {
  struct Variant {
    const char* threads;
    int64_t jobs;
  };
  // Sequential with one thread, sequential with two threads each, and concurrent runs
  // sharing two threads (one each), three at once with three threads.
  const Variant variants[] = {
      {"run.threads=1", 1}, {"run.threads=2", 1}, {"run.threads=2", 2}, {"run.threads=3", 3}};
  Json reference;
  for (const Variant& v : variants) {
    const std::string dir = temp_dir(std::string("det_") + std::to_string(v.jobs));
    auto cmp = compare({v.threads}, dir, v.jobs);
    ASSERT_TRUE(cmp.ok()) << cmp.error().to_string();
    const Json c = read_json(dir + "/comparison.json");
    if (reference.is_null()) {
      reference = deterministic_part(c);
      for (const Json& row : c["strategies"])
        EXPECT_EQ(row["model_hash"].get<std::string>().size(), 16u);
    } else {
      EXPECT_EQ(deterministic_part(c), reference) << v.threads << " jobs " << v.jobs;
    }
    // The threads the runs got: the total split among the runs that go together.
    const int64_t total = std::stoll(std::string(v.threads).substr(12));
    for (const Json& row : c["strategies"]) {
      EXPECT_EQ(row["threads"].get<int64_t>(), std::max<int64_t>(1, total / v.jobs));
    }
    fs::remove_all(dir);
  }
}

// Codecs side by side: a strategies: entry may set its own uplink / downlink chain.
TEST(CompareTest, EntriesMayCompressDifferently) {
  std::string text = kCompare;
  const std::string from = "strategies:\n  - {name: fedavg, fraction: 0.5, min_clients: 2}\n"
                           "  - {name: fedprox, label: prox, mu: 0.1, fraction: 0.5, min_clients: 2}\n"
                           "  - {name: fedavg, label: fedavg-all, fraction: 1.0, min_clients: 2}\n";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(),
               "strategies:\n  - {name: fedavg, label: raw, fraction: 0.5, min_clients: 2}\n"
               "  - {name: fedavg, label: int8, uplink: int8, downlink: fp16, fraction: 0.5, "
               "min_clients: 2}\n"
               "  - {name: fedavg, label: topk, uplink: [topk:0.1, int8, zstd], fraction: 0.5, "
               "min_clients: 2}\n");
  auto cfg = parse_simulation_config(text, "c.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
  EXPECT_EQ(cfg->strategies[1].uplink, "int8");
  EXPECT_EQ(cfg->strategies[2].uplink, "topk:0.1 -> int8 -> zstd");
  EXPECT_TRUE(cfg->strategies[1].params.count("uplink") == 0);
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok()) << scenario.error().to_string();
  auto cmp = run_comparison(*cfg, *scenario, {});
  ASSERT_TRUE(cmp.ok()) << cmp.error().to_string();
  const Json c = cmp->to_json();
  const Json& rows = c["strategies"];
  EXPECT_EQ(rows[1]["uplink"], "int8");
  EXPECT_EQ(rows[1]["downlink"], "fp16");
  EXPECT_FALSE(rows[0].contains("uplink"));
  // A 244-parameter model: the payload headers weigh, so the ratios are below the asymptotic
  // 3.94 (int8) and 2 (fp16). Fixed-rate chains cost the same for every update.
  const int64_t updates = rows[1]["updates"].get<int64_t>();
  const double raw = rows[0]["bytes_up"].get<double>(), int8 = rows[1]["bytes_up"].get<double>(),
               topk = rows[2]["bytes_up"].get<double>();
  EXPECT_EQ(rows[1]["bytes_up"].get<int64_t>() % updates, 0);
  EXPECT_GT(raw / int8, 2.5);
  EXPECT_GT(raw / topk, 4.0);
  EXPECT_GT(rows[0]["bytes_down"].get<double>() / rows[1]["bytes_down"].get<double>(), 1.5);
  // Same sampling (seeded by the run, not by the codec): the same number of updates.
  EXPECT_EQ(rows[0]["updates"], rows[1]["updates"]);
  // A bad chain in an entry names the entry's key.
  std::string bad = text;
  bad.replace(bad.find("uplink: int8,"), 13, "uplink: int9,");
  auto e = parse_simulation_config(bad, "c.yaml");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("strategies[1].uplink: compression chain 'int9'"),
            std::string::npos)
      << e.error().message();
}

// Defences side by side against one attack: each entry's robust: section, trust and the
// attackers in comparison.json, and the report's robustness table with a trust AUC per run.
TEST(CompareTest, EntriesMayDefendDifferently) {
  const std::string dir = temp_dir("robust");
  auto cmp = compare({"strategies=[{name: fedavg, label: plain, fraction: 1.0, robust: none}, "
                      "{name: fedavg, label: median, fraction: 1.0, robust: {rule: median}}]",
                      "attack.kind=scaling", "attack.clients=[2, 5]", "admission.norm_policy=off",
                      "contribution.method=loo", "contribution.evaluations=8"},
                     dir, 0);
  ASSERT_TRUE(cmp.ok()) << cmp.error().to_string();
  const Json c = cmp->to_json();
  const Json& rows = c["strategies"];
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["attackers"], Json::array({2, 5}));
  EXPECT_FALSE(rows[0].contains("trust"));  // no rule, no trust
  EXPECT_EQ(rows[0]["contribution"]["method"], "loo");
  EXPECT_EQ(rows[1]["contribution"]["values"].size(), 8u);
  ASSERT_EQ(rows[1]["trust"].size(), 8u);
  EXPECT_EQ(rows[1]["robust_rule"], "median");
  const std::string html = read_text(dir + "/report.html");
  EXPECT_EQ(count(html, "<h2>Robustness</h2>"), 1u);
  EXPECT_NE(html.find("Trust AUC"), std::string::npos);
  EXPECT_NE(html.find("2: 2, 5"), std::string::npos);  // two attackers: their ids
  fs::remove_all(dir);
}

TEST(CompareTest, BadStrategyFailsBeforeAnyRun) {
  const std::string dir = temp_dir("bad");
  auto cmp = compare({"strategies=[{name: fedavg}, {name: fedprox, mu: -1}]"}, dir, 0);
  ASSERT_FALSE(cmp.ok());
  EXPECT_EQ(cmp.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cmp.error().message(), "strategies[1].mu: must be >= 0, got -1");
  EXPECT_FALSE(fs::exists(dir + "/fedavg"));  // the first entry did not run either

  auto unknown = compare({"strategies=[{name: fedavg}, {name: fedfoo}]"}, dir, 0);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message().rfind("strategies[1].name: unknown strategy 'fedfoo'", 0), 0u)
      << unknown.error().message();
  fs::remove_all(dir);
}

TEST(CompareTest, SimulateRefusesAStrategiesList) {
  auto cfg = parse_simulation_config(kCompare, "c.yaml");
  ASSERT_TRUE(cfg.ok());
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok());
  RunOutputs out;
  out.progress = false;
  auto s = run_simulation(*cfg, *scenario, out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.error().message().find("use cohort compare"), std::string::npos);
}

TEST(CompareTest, SingleStrategyConfigIsAComparisonOfOne) {
  auto cfg = parse_simulation_config(
      "data: {dataset: synthetic, synthetic: {num_examples: 400, test_examples: 100}}\n"
      "clients: {count: 4}\nmodel: {name: logreg}\nstrategy: {name: fedavg, min_clients: 1}\n"
      "run: {rounds: 2, threads: 1}",
      "one.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok());
  CompareOptions o;
  o.progress = false;
  auto one = run_comparison(*cfg, *scenario, o);
  ASSERT_TRUE(one.ok()) << one.error().to_string();
  ASSERT_EQ(one->entries.size(), 1u);
  EXPECT_EQ(one->entries[0].label, "fedavg");
  EXPECT_EQ(one->entries[0].summary.rounds, 2);
  EXPECT_FALSE(one->entries[0].rounds_to_target.has_value());  // no target
}

// ---------------------------------------------------------------------------------------
// The report.

TEST(ReportTest, SelfContainedWithALinePerStrategyPerPlotAndRegeneratesIdentically) {
  const std::string dir = temp_dir("report");
  auto cmp = compare({}, dir, 0);
  ASSERT_TRUE(cmp.ok()) << cmp.error().to_string();
  const std::string html = read_text(dir + "/report.html");
  ASSERT_FALSE(html.empty());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count(html, "<svg class=\"plot\""), 4u);
  EXPECT_EQ(count(html, "<polyline"), 4u * 3u);  // four plots, three strategies
  EXPECT_EQ(count(html, "bytes sent up<"), 1u);  // accuracy against uplink bytes
  EXPECT_EQ(count(html, "<table"), 1u);
  EXPECT_EQ(count(html, "<td class=\"rank\">"), 3u);  // one row each
  for (const char* label : {">fedavg<", ">prox<", ">fedavg-all<"}) {
    EXPECT_GE(count(html, label), 5u) << label;  // table plus four legends
  }
  EXPECT_EQ(count(html, "class=\"target\""), 4u);  // the dashed target line in each plot
  // Nothing to fetch: no URL, no script, no external stylesheet or font.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);

  // `cohort report DIR` reads the same files and writes the same page.
  ASSERT_TRUE(write_report(dir, dir + "/again.html").ok());
  EXPECT_EQ(read_text(dir + "/again.html"), html);
  fs::remove(dir + "/report.html");
  ASSERT_TRUE(write_report(dir).ok());
  EXPECT_EQ(read_text(dir + "/report.html"), html);
  fs::remove_all(dir);
}

// Hand-made input so positions, ordering and marks can be checked exactly.
Json eval(double t, int64_t updates, int64_t bytes, double acc, int64_t round) {
  return Json{{"event", "eval"}, {"round", round}, {"updates", updates}, {"virtual_time_s", t},
              {"accuracy", acc}, {"loss", 1.0},    {"bytes_up", bytes},  {"bytes_down", 0}};
}

TEST(ReportTest, PointsSortingAndMarks) {
  Json cmp = Json::parse(R"({
    "target_accuracy": 0.0,
    "strategies": [{"label": "a", "strategy": "fedavg", "final_accuracy": 0.9,
                    "best_accuracy": 0.9, "time_to_target": null}],
    "setting": {}})");
  ReportSeries s{
      "a", nullptr, {eval(0, 0, 0, 0.5, 0), eval(5, 5, 100, 0.7, 1), eval(10, 10, 200, 0.9, 2)}};
  const std::string html = render_report(cmp, {s});
  // Plot area x in [72, 972]; one legend row puts it at y in [54, 394]. Accuracy ticks are
  // 0.05 apart from 50% to 90%, virtual time 1 s apart from 0 to 10, so the three points
  // sit at the corners and the centre.
  EXPECT_NE(html.find("<polyline points=\"72.00,394.00 522.00,224.00 972.00,54.00\""),
            std::string::npos);
  EXPECT_NE(html.find(">50%</text>"), std::string::npos);
  EXPECT_NE(html.find(">90%</text>"), std::string::npos);
  EXPECT_EQ(count(html, "class=\"target\""), 0u);  // no target, no line

  // Sorted by time to target, unreached last; the fastest row starred, best values bold;
  // bytes totals 10x+ apart switch the bytes axis to log scale.
  Json three = Json::parse(R"({
    "target_accuracy": 0.8,
    "strategies": [
      {"label": "slow", "strategy": "fedavg", "time_to_target": 30.0, "rounds_to_target": 6,
       "bytes_to_target": 6000, "final_accuracy": 0.85, "best_accuracy": 0.86},
      {"label": "never", "strategy": "fedavg", "time_to_target": null, "final_accuracy": 0.7,
       "best_accuracy": 0.75},
      {"label": "fast", "strategy": "fedadam", "time_to_target": 10.0, "rounds_to_target": 2,
       "bytes_to_target": 2000, "final_accuracy": 0.84, "best_accuracy": 0.88}],
    "setting": {}})");
  std::vector<ReportSeries> series = {
      {"slow", nullptr, {eval(0, 0, 0, 0.1, 0), eval(30, 30, 60000, 0.85, 6)}},
      {"never", nullptr, {eval(0, 0, 0, 0.1, 0), eval(30, 30, 3000, 0.7, 6)}},
      {"fast", nullptr, {eval(0, 0, 0, 0.1, 0), eval(10, 10, 2000, 0.84, 2)}}};
  const std::string page = render_report(three, series);
  // The table comes after the highlights paragraph; look inside it.
  const size_t table = page.find("<table");
  ASSERT_NE(table, std::string::npos);
  const size_t fast_row = page.find("<b>fast</b>", table);
  const size_t slow_row = page.find("<b>slow</b>", table);
  const size_t never_row = page.find("<b>never</b>", table);
  EXPECT_LT(fast_row, slow_row);
  EXPECT_LT(slow_row, never_row);
  EXPECT_EQ(count(page, "<tr class=\"winner\">"), 1u);
  EXPECT_LT(page.find("<tr class=\"winner\">"), fast_row);
  EXPECT_NE(page.find("<td class=\"num best\">10.0 s</td>"), std::string::npos);
  EXPECT_NE(page.find("<td class=\"num best\">88.00%</td>"), std::string::npos);  // best
  EXPECT_NE(page.find("<td class=\"num best\">85.00%</td>"), std::string::npos);  // final
  EXPECT_NE(page.find("not reached"), std::string::npos);
  EXPECT_NE(page.find("3.0&times; sooner than <b>slow</b>"), std::string::npos);
  EXPECT_NE(page.find("bytes sent up + down (log scale)"), std::string::npos);
  EXPECT_NE(page.find("bytes sent up (log scale)"), std::string::npos);
  EXPECT_EQ(count(page, "<polyline"), 12u);  // four plots, three series
}

TEST(ReportTest, RunsOfSeveralModelsGetAModelsTable) {
  Json cmp = Json::parse(R"({
    "target_accuracy": 0.8,
    "strategies": [
      {"label": "fedast", "strategy": "fedast", "time_to_target": 70.0, "final_accuracy": 0.85,
       "best_accuracy": 0.86,
       "models": {"logreg": {"target_accuracy": 0.78, "time_to_target": 40.0,
                             "final_accuracy": 0.81, "best_accuracy": 0.82},
                  "mlp": {"target_accuracy": 0.82, "time_to_target": null,
                          "final_accuracy": 0.79, "best_accuracy": 0.8}}},
      {"label": "plain", "strategy": "fedbuff", "time_to_target": 50.0, "final_accuracy": 0.84,
       "best_accuracy": 0.84}],
    "setting": {}})");
  const std::string page = render_report(cmp, {});
  EXPECT_NE(page.find("<h2>Models</h2>"), std::string::npos);
  EXPECT_NE(page.find("<tr><td>fedast</td><td>logreg</td><td>78.00%</td><td>40 s</td>"
                      "<td>81.00%</td><td>82.00%</td></tr>"),
            std::string::npos);
  EXPECT_NE(page.find("<tr><td>fedast</td><td>mlp</td><td>82.00%</td><td>&ndash;</td>"),
            std::string::npos);
  EXPECT_EQ(count(page, "<tr><td>plain</td>"), 0u);  // one model: no rows
  cmp["strategies"][0].erase("models");
  EXPECT_EQ(render_report(cmp, {}).find("<h2>Models</h2>"), std::string::npos);
}

TEST(ReportTest, ReadErrorsNameTheFile) {
  const std::string dir = temp_dir("errors");
  fs::create_directories(dir);
  auto none = render_report_from_dir(dir);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), StatusCode::kNotFound);
  EXPECT_NE(none.error().message().find("neither comparison.json"), std::string::npos);

  std::ofstream(dir + "/comparison.json")
      << R"({"target_accuracy": 0, "strategies": [{"label": "a"}], "setting": {}})";
  auto missing = render_report_from_dir(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.error().message().find(dir + "/a/metrics.jsonl"), std::string::npos);

  fs::create_directories(dir + "/a");
  std::ofstream(dir + "/a/metrics.jsonl")
      << "{\"event\": \"start\"}\n{\"event\": \"eval\"}\n{oops\n";
  auto bad = render_report_from_dir(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), StatusCode::kDataLoss);
  EXPECT_EQ(bad.error().message().rfind(dir + "/a/metrics.jsonl:3: ", 0), 0u)
      << bad.error().message();

  std::ofstream(dir + "/comparison.json") << "{not json";
  auto corrupt = render_report_from_dir(dir);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code(), StatusCode::kDataLoss);
  fs::remove_all(dir);
}

TEST(ReportTest, RendersASingleSimulateDirectory) {
  auto cfg = parse_simulation_config(
      "data: {dataset: synthetic, synthetic: {num_examples: 400, test_examples: 100}}\n"
      "clients: {count: 4}\nmodel: {name: logreg}\nstrategy: {name: fedavg, min_clients: 1}\n"
      "run: {rounds: 3, threads: 1, target_accuracy: 0.3}",
      "one.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok());
  RunOutputs out;
  out.out_dir = temp_dir("single");
  out.progress = false;
  auto s = run_simulation(*cfg, *scenario, out);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  auto html = render_report_from_dir(out.out_dir);
  ASSERT_TRUE(html.ok()) << html.error().to_string();
  EXPECT_EQ(count(*html, "<polyline"), 4u);
  EXPECT_NE(html->find("400 training"), std::string::npos);
  EXPECT_NE(html->find(s->model_hash), std::string::npos);
  fs::remove_all(out.out_dir);
}

}  // namespace
}  // namespace cohort
