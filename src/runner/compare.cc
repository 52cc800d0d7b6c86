#include "cohort/core/config_record_json.h"
#include "cohort/runner/compare.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "cohort/core/parallel.h"
#include "cohort/report/report.h"
#include "cohort/strategy/registry.h"

namespace cohort {

namespace {

Json optional_json(const std::optional<int64_t>& v) { return v ? Json(*v) : Json(nullptr); }
Json optional_json(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", v * 100.0);
  return buf;
}

// Progress of all runs on one stderr. Concurrent runs report through their own sink, and
// everything is written under one lock, so lines never interleave. A line per finished
// strategy is printed whenever progress is on; the live line (the runs in flight) only on
// a terminal, where it can be redrawn in place.
class CompareProgress {
 public:
  CompareProgress(bool enabled, std::vector<std::string> labels, int64_t max_rounds)
      : enabled_(enabled),
        live_(enabled && ::isatty(STDERR_FILENO) == 1),
        max_rounds_(max_rounds),
        runs_(labels.size()) {
    for (size_t i = 0; i < labels.size(); ++i) runs_[i].label = std::move(labels[i]);
    for (const auto& r : runs_) width_ = std::max(width_, r.label.size());
  }
  ~CompareProgress() {
    if (live_drawn_) std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }

  void started(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    runs_[i].running = true;
    draw_live();
  }
  void on_event(size_t i, const Json& e) {
    if (!live_) return;
    const std::string kind = e.value("event", "");
    if (kind != "eval" && kind != "round") return;
    std::lock_guard<std::mutex> lock(mu_);
    Run& r = runs_[i];
    if (kind == "eval") {
      r.accuracy = e.value("accuracy", 0.0);
      r.have_accuracy = true;
      r.round = e.value("round", r.round);
    } else {
      r.round = std::max(r.round, e.value("version", e.value("round", r.round)));
    }
    draw_live();
  }
  void finished(size_t i, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    runs_[i].running = false;
    ++done_;
    if (!enabled_) return;
    if (live_drawn_) std::fputs("\r\033[K", stderr);
    live_drawn_ = false;
    std::fprintf(stderr, "[%zu/%zu] %-*s %s\n", done_, runs_.size(), static_cast<int>(width_),
                 runs_[i].label.c_str(), what.c_str());
    draw_live();
  }

 private:
  struct Run {
    std::string label;
    bool running = false;
    int64_t round = 0;
    double accuracy = 0.0;
    bool have_accuracy = false;
  };

  void draw_live() {
    if (!live_) return;
    std::string line =
        "compare: " + std::to_string(done_) + "/" + std::to_string(runs_.size()) + " done";
    for (const Run& r : runs_) {
      if (!r.running) continue;
      // Appended piece by piece: GCC 12 warns (-Wrestrict, falsely) on the chained form.
      line += " | ";
      line += r.label;
      line += " round ";
      line += std::to_string(r.round);
      if (max_rounds_ > 0) {
        line += '/';
        line += std::to_string(max_rounds_);
      }
      if (r.have_accuracy) {
        line += ' ';
        line += percent(r.accuracy);
      }
    }
    winsize ws{};
    size_t cols = 100;
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) cols = ws.ws_col;
    if (line.size() >= cols) line.resize(cols - 1);
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    live_drawn_ = true;
  }

  std::mutex mu_;
  const bool enabled_;
  const bool live_;
  const int64_t max_rounds_;
  std::vector<Run> runs_;
  size_t width_ = 0;
  size_t done_ = 0;
  bool live_drawn_ = false;
};

// Keeps a run's "eval" events (for the *_to_target fields) and feeds the progress line.
class CompareSink final : public MetricsSink {
 public:
  CompareSink(CompareProgress* progress, size_t index) : progress_(progress), index_(index) {}
  void on_event(const Json& e) override {
    if (e.value("event", "") == "eval") evals.push_back(e);
    progress_->on_event(index_, e);
  }
  // Bulk events (the per-client "clients") are neither evals nor progress.
  void on_event_text(std::string_view /*name*/, const std::string& /*text*/) override {}
  std::vector<Json> evals;

 private:
  CompareProgress* progress_;
  size_t index_;
};

std::string finished_line(const ComparisonEntry& e, double target) {
  const sim::SimSummary& s = e.summary;
  std::string line = "final " + percent(s.final_accuracy) + ", best " + percent(s.best_accuracy);
  char buf[160];
  if (target > 0) {
    if (s.time_to_target) {
      std::snprintf(buf, sizeof buf, ", %s at %.1f s virtual", percent(target).c_str(),
                    *s.time_to_target);
      line += buf;
      if (e.rounds_to_target) line += " (round " + std::to_string(*e.rounds_to_target) + ")";
    } else {
      line += ", never reached " + percent(target);
    }
  }
  std::snprintf(buf, sizeof buf, "; %lld rounds, %.1f s wall", static_cast<long long>(s.rounds),
                s.wall_time_s);
  return line + buf;
}

}  // namespace

Json Comparison::to_json() const {
  Json list = Json::array();
  for (const ComparisonEntry& e : entries) {
    const sim::SimSummary& s = e.summary;
    Json j = Json::object();
    j["label"] = e.label;
    j["strategy"] = e.strategy.name;
    j["params"] = cohort::to_json(e.strategy.params);
    if (!e.strategy.uplink.empty()) j["uplink"] = e.strategy.uplink;
    if (!e.strategy.downlink.empty()) j["downlink"] = e.strategy.downlink;
    if (e.strategy.downlink_delta) j["downlink_delta"] = *e.strategy.downlink_delta;
    j["time_to_target"] = optional_json(s.time_to_target);
    j["rounds_to_target"] = optional_json(e.rounds_to_target);
    j["updates_to_target"] = optional_json(e.updates_to_target);
    j["bytes_to_target"] = optional_json(e.bytes_to_target);
    j["uplink_to_target"] = optional_json(e.uplink_to_target);
    j["final_accuracy"] = s.final_accuracy;
    j["final_loss"] = s.final_loss;
    j["best_accuracy"] = s.best_accuracy;
    j["rounds"] = s.rounds;
    j["updates"] = s.updates;
    j["rejected"] = s.rejected;
    j["lost"] = s.lost;
    j["bytes_up"] = s.bytes_up;
    j["bytes_down"] = s.bytes_down;
    j["peak_bytes_per_s"] = s.peak_bytes_per_s;
    j["peak_sync_bytes_per_s"] = s.peak_sync_bytes_per_s;
    j["virtual_time_s"] = s.virtual_time_s;
    j["wall_time_s"] = s.wall_time_s;
    j["threads"] = e.threads;
    j["model_hash"] = s.model_hash;
    // Robustness and privacy (docs/robustness.md, docs/privacy.md): only when on.
    const Json sj = s.to_json();
    for (const char* key : {"robust_rule", "trust", "contribution", "attackers", "epsilon",
                            "delta", "noise_multiplier", "clip_norm", "secagg", "models"}) {
      if (sj.contains(key)) j[key] = sj[key];
    }
    j["dir"] = e.label;
    list.push_back(std::move(j));
  }
  Json out = Json::object();
  out["target_accuracy"] = target_accuracy;
  out["stopped_early"] = stopped_early;
  out["strategies"] = std::move(list);
  out["setting"] = setting;
  return out;
}

Json comparison_setting(const SimulationConfig& config, const Scenario& scenario) {
  const Json full = to_json(config);
  Json j = Json::object();
  for (const char* key : {"data", "clients", "model", "training", "run", "compression"}) {
    if (full.contains(key)) j[key] = full[key];
  }
  j["train_examples"] = scenario.train ? scenario.train->size() : 0;
  j["test_examples"] = scenario.test ? scenario.test->size() : 0;
  j["classes"] = scenario.train ? scenario.train->num_classes : 0;
  return j;
}

void fill_target_fields(const std::vector<Json>& eval_events, double target_accuracy,
                        ComparisonEntry* entry) {
  entry->rounds_to_target.reset();
  entry->updates_to_target.reset();
  entry->bytes_to_target.reset();
  entry->uplink_to_target.reset();
  const std::optional<TargetCrossing> crossing =
      first_target_crossing(eval_events, target_accuracy);
  if (!crossing) return;
  entry->rounds_to_target = crossing->round;
  entry->updates_to_target = crossing->updates;
  entry->bytes_to_target = crossing->bytes;
  entry->uplink_to_target = crossing->bytes_up;
}

Result<Comparison> run_comparison(const SimulationConfig& config, const Scenario& scenario,
                                  const CompareOptions& options) {
  std::vector<StrategyConfig> strategies = config.strategies;
  if (strategies.empty()) {
    strategies.push_back(config.strategy);
    strategies.back().label = config.strategy.name;
  }
  // Every strategy is built once here so a typo in the last entry fails before the first
  // entry has spent minutes training.
  COHORT_RETURN_IF_ERROR(check_strategies(config, static_cast<int64_t>(scenario.clients->size())));

  namespace fs = std::filesystem;
  if (!options.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options.out_dir, ec);
    if (ec) {
      return Status::unavailable("cannot create output directory '" + options.out_dir +
                                 "': " + ec.message());
    }
    COHORT_RETURN_IF_ERROR(write_json_file(options.out_dir + "/config.json", to_json(config)));
  }

  const size_t n = strategies.size();
  const int64_t total_threads =
      config.run.threads > 0
          ? config.run.threads
          : static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t jobs = options.jobs > 0 ? options.jobs : 1;  // automatic: see CompareOptions::jobs
  jobs = std::clamp<int64_t>(jobs, 1, static_cast<int64_t>(n));
  // Worker slot w of the outer pool always runs with the same share of the threads; the
  // split does not change any result, only how busy the cores are.
  std::vector<int64_t> slot_threads(static_cast<size_t>(jobs));
  for (int64_t w = 0; w < jobs; ++w) {
    slot_threads[static_cast<size_t>(w)] =
        std::max<int64_t>(1, total_threads / jobs + (w < total_threads % jobs ? 1 : 0));
  }

  std::vector<std::string> labels;
  for (const auto& s : strategies) labels.push_back(s.label);
  CompareProgress progress(options.progress, labels, config.run.rounds);

  std::vector<ComparisonEntry> entries(n);
  std::vector<Status> errors(n);
  std::vector<char> ran(n, 0);  // not vector<bool>: runs set their own flags concurrently
  std::atomic<bool> failed{false};

  auto run_one = [&](size_t i, size_t slot) {
    if (failed.load() || (options.stop != nullptr && options.stop->load())) return;
    SimulationConfig c = config;
    c.strategies.clear();
    c.strategy = strategies[i];
    c.strategy.label.clear();
    if (!strategies[i].uplink.empty()) c.compression.uplink = strategies[i].uplink;
    if (!strategies[i].downlink.empty()) c.compression.downlink = strategies[i].downlink;
    if (strategies[i].downlink_delta) c.compression.downlink_delta = *strategies[i].downlink_delta;
    if (strategies[i].robust_set) c.robust = strategies[i].robust;
    if (strategies[i].privacy_set) c.privacy = strategies[i].privacy;
    if (strategies[i].rounds > 0) c.run.rounds = strategies[i].rounds;
    c.run.threads = slot_threads[slot];
    auto sink = std::make_shared<CompareSink>(&progress, i);
    RunOutputs out;
    if (!options.out_dir.empty()) out.out_dir = options.out_dir + "/" + strategies[i].label;
    out.progress = false;
    out.stop = options.stop;
    out.sinks.push_back(sink);
    progress.started(i);
    Result<sim::SimSummary> s = run_simulation(c, scenario, out);
    ran[i] = 1;
    if (!s.ok()) {
      errors[i] = Status(s.error().code(), strategies[i].label + ": " + s.error().message());
      failed.store(true);
      progress.finished(i, "failed: " + s.error().to_string());
      return;
    }
    ComparisonEntry& e = entries[i];
    e.label = strategies[i].label;
    e.strategy = strategies[i];
    e.summary = std::move(*s);
    e.threads = c.run.threads;
    fill_target_fields(sink->evals, config.run.target_accuracy, &e);
    const bool cut = options.stop != nullptr && options.stop->load();
    progress.finished(
        i, finished_line(e, config.run.target_accuracy) + (cut ? " (stopped early)" : ""));
  };

  if (jobs == 1) {
    for (size_t i = 0; i < n; ++i) run_one(i, 0);
  } else {
    ThreadPool pool(static_cast<size_t>(jobs));
    std::vector<std::future<void>> done;
    for (size_t i = 0; i < n; ++i) {
      done.push_back(pool.submit([&run_one, i](size_t worker) {
        run_one(i, worker);
      }));
    }
    for (auto& f : done) f.get();
  }
  // ran[] and errors[] are only read after every job has finished (future::get).
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i].ok()) return errors[i];
  }

  Comparison cmp;
  cmp.target_accuracy = config.run.target_accuracy;
  cmp.setting = comparison_setting(config, scenario);
  for (size_t i = 0; i < n; ++i) {
    if (ran[i]) cmp.entries.push_back(std::move(entries[i]));
  }
  cmp.stopped_early = (options.stop != nullptr && options.stop->load());
  if (!options.out_dir.empty()) {
    COHORT_RETURN_IF_ERROR(write_json_file(options.out_dir + "/comparison.json", cmp.to_json()));
    COHORT_RETURN_IF_ERROR(write_report(options.out_dir));
  }
  return cmp;
}

}  // namespace cohort
