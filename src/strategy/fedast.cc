#include "cohort/strategy/fedast.h"

#include <algorithm>
#include <cmath>

#include "cohort/core/ops.h"
#include "cohort/strategy/task_config.h"

namespace cohort {

FedAst::FedAst(FedAstOptions options) : AsyncStrategy(options.async), options_(options) {}

Result<std::unique_ptr<Strategy>> FedAst::create(StrategyParams& p) {
  FedAstOptions o;
  o.async = AsyncOptions::read(p);
  o.buffer_size = p.integer("buffer_size", o.buffer_size);
  p.check(o.buffer_size >= 1, "buffer_size", "must be >= 1", static_cast<double>(o.buffer_size));
  o.server_lr = p.number("server_lr", o.server_lr);
  p.check(o.server_lr > 0, "server_lr", "must be > 0", o.server_lr);
  o.adaptive = p.boolean("adaptive", o.adaptive);
  o.window = p.integer("window", o.window);
  p.check(o.window >= 2, "window", "must be >= 2", static_cast<double>(o.window));
  o.realloc_every = p.integer("realloc_every", o.realloc_every);
  p.check(o.realloc_every >= 0, "realloc_every", "must be >= 0 (0 = automatic)",
          static_cast<double>(o.realloc_every));
  o.min_share = p.number("min_share", o.min_share);
  p.check(o.min_share >= 0 && o.min_share <= 1, "min_share", "must be in [0, 1]", o.min_share);
  return std::unique_ptr<Strategy>(new FedAst(o));
}

Status FedAst::on_start() {
  COHORT_ASSIGN_OR_RETURN(parts_, model_parts(*model_->layout()));
  several_ = !parts_.empty();
  if (!several_) parts_.push_back(ModelPart{"model", 0, model_->layout()->num_arrays(), 0, model_->numel()});
  const size_t m = parts_.size();
  shares_.assign(m, 1.0 / static_cast<double>(m));
  active_.assign(m, 0);
  dispatched_.assign(m, 0);
  steps_.assign(m, 0);
  reached_.assign(m, false);
  count_.assign(m, 0);
  window_.assign(m, {});
  buffer_.clear();
  for (const ModelPart& p : parts_) buffer_.emplace_back(static_cast<size_t>(p.numel()), 0.0f);
  return Status();
}

bool FedAst::training(size_t m) const {
  return !reached_[m] || std::all_of(reached_.begin(), reached_.end(), [](bool r) { return r; });
}

size_t FedAst::pick_model() const {
  int64_t total = 0;
  double share_sum = 0;
  for (size_t m = 0; m < parts_.size(); ++m) {
    if (!training(m)) continue;
    total += active_[m];
    share_sum += shares_[m];
  }
  size_t best = 0;
  double best_gap = -1e300;
  for (size_t m = 0; m < parts_.size(); ++m) {
    if (!training(m)) continue;
    const double gap = shares_[m] / share_sum * static_cast<double>(total + 1) -
                       static_cast<double>(active_[m]);
    // Ties go to the model given fewer tasks so far (so one client alone takes turns), then
    // to the lower index.
    if (gap > best_gap + 1e-12 ||
        (gap > best_gap - 1e-12 && dispatched_[m] < dispatched_[best])) {
      best_gap = gap;
      best = m;
    }
  }
  return best;
}

Task FedAst::make_task(ClientId id) {
  Task t = AsyncStrategy::make_task(id);
  const size_t m = pick_model();
  if (several_) set_task_model(t.config, static_cast<int64_t>(m));
  task_model_[id] = m;
  ++active_[m];
  ++dispatched_[m];
  return t;
}

void FedAst::release(ClientId id) {
  auto it = task_model_.find(id);
  if (it == task_model_.end()) return;
  current_ = it->second;
  --active_[it->second];
  task_model_.erase(it);
}

Status FedAst::on_update(Update update) {
  release(update.client);  // sets current_ for apply()
  return AsyncStrategy::on_update(std::move(update));
}

void FedAst::on_task_lost(ClientId id, ModelVersion version) {
  release(id);
  AsyncStrategy::on_task_lost(id, version);
}

Status FedAst::apply(const Update& update, int64_t /*staleness*/) {
  const size_t m = current_;
  const ModelPart& part = parts_[m];
  if (!training(m)) return Status();  // reached its target while this task ran: not needed
  const std::span<const float> d = update.delta.flat().subspan(static_cast<size_t>(part.begin),
                                                                static_cast<size_t>(part.numel()));
  std::vector<float>& buf = buffer_[m];
  ops::axpy(1.0f, d, buf);
  ++count_[m];
  if (options_.adaptive) {
    window_[m].emplace_back(d.begin(), d.end());
    while (static_cast<int64_t>(window_[m].size()) > options_.window) window_[m].pop_front();
    int64_t every = options_.realloc_every;
    if (every == 0) {
      const int64_t r = async_.max_concurrency > 0 ? async_.max_concurrency
                                                   : static_cast<int64_t>(host_->num_clients());
      int64_t models = 0;
      for (size_t k = 0; k < parts_.size(); ++k) models += training(k) ? 1 : 0;
      every = std::max<int64_t>(1, (3 * r + 3) / 4) * std::max<int64_t>(1, models);
    }
    if (++since_realloc_ >= every) reallocate();
  }
  if (count_[m] < options_.buffer_size) return Status();
  ArrayRecord next = model_->clone();
  const float scale = static_cast<float>(options_.server_lr / static_cast<double>(count_[m]));
  ops::axpy(-scale, buf, next.flat().subspan(static_cast<size_t>(part.begin),
                                             static_cast<size_t>(part.numel())));
  host_->emit({{"event", "model_step"},
               {"strategy", name()},
               {"model", part.name},
               {"updates", count_[m]},
               {"model_steps", steps_[m] + 1},
               {"version", version_ + 1}});
  std::fill(buf.begin(), buf.end(), 0.0f);
  count_[m] = 0;
  if (commit(std::move(next))) ++steps_[m];
  return Status();
}

void FedAst::reallocate() {
  since_realloc_ = 0;
  std::vector<double> v(parts_.size(), 0.0);
  double sum = 0;
  size_t training_models = 0;
  for (size_t m = 0; m < parts_.size(); ++m) {
    if (!training(m)) continue;
    ++training_models;
    const auto& w = window_[m];
    if (w.size() < 2) return;  // not every model has an estimate yet
    std::vector<double> mean(w.front().size(), 0.0);
    for (const auto& d : w) {
      for (size_t i = 0; i < d.size(); ++i) mean[i] += d[i];
    }
    double mean_sq = 0;
    for (double& x : mean) {
      x /= static_cast<double>(w.size());
      mean_sq += x * x;
    }
    double spread = 0;
    for (const auto& d : w) {
      for (size_t i = 0; i < d.size(); ++i) spread += (d[i] - mean[i]) * (d[i] - mean[i]);
    }
    v[m] = mean_sq > 0 ? spread / (static_cast<double>(w.size()) * mean_sq) : 0.0;
    sum += v[m];
  }
  if (training_models == 0 || !(sum > 0) || !std::isfinite(sum)) return;
  const double floor = options_.min_share / static_cast<double>(training_models);
  double total = 0;
  for (size_t m = 0; m < parts_.size(); ++m) {
    if (!training(m)) continue;
    shares_[m] = std::max(floor, v[m] / sum);
    total += shares_[m];
  }
  Json ev = {{"event", "allocation"}, {"strategy", name()}};
  for (size_t m = 0; m < parts_.size(); ++m) {
    if (training(m)) shares_[m] /= total;
    ev["shares"][parts_[m].name] = training(m) ? shares_[m] : 0.0;
    ev["variance"][parts_[m].name] = v[m];
  }
  host_->emit(std::move(ev));
}

Status FedAst::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(io_async_state(io));
  const size_t m = parts_.size();
  int64_t buffered = 0;
  for (int64_t c : count_) buffered += c;
  io.value("buffer_count", buffered);  // all models' (work in progress)
  io.value("model_buffers", buffer_);
  io.value("model_counts", count_);
  io.value("shares", shares_);
  io.value("active", active_);
  io.value("dispatched", dispatched_);
  io.value("model_steps", steps_);
  std::vector<int> reached(reached_.begin(), reached_.end());
  io.value("reached", reached);
  std::vector<std::vector<std::vector<float>>> windows;
  for (const auto& w : window_) windows.emplace_back(w.begin(), w.end());
  io.value("windows", windows);
  std::vector<std::pair<ClientId, size_t>> tasks(task_model_.begin(), task_model_.end());
  io.value("task_models", tasks);
  io.value("since_realloc", since_realloc_);
  if (io.loading() && io.status().ok()) {
    bool sizes = buffer_.size() == m && count_.size() == m && shares_.size() == m &&
                 active_.size() == m && dispatched_.size() == m && steps_.size() == m &&
                 reached.size() == m && windows.size() == m;
    for (size_t k = 0; sizes && k < m; ++k) {
      sizes = static_cast<int64_t>(buffer_[k].size()) == parts_[k].numel();
    }
    if (!sizes) {
      io.fail(Status::invalid_argument("fedast: checkpoint is of another set of models"));
      return io.status();
    }
    reached_.assign(reached.begin(), reached.end());
    for (size_t k = 0; k < m; ++k) window_[k].assign(windows[k].begin(), windows[k].end());
    task_model_ = std::map<ClientId, size_t>(tasks.begin(), tasks.end());
  }
  return io.status();
}

void FedAst::on_evaluation(const EvalResult& result) {
  if (!several_) return;
  for (const PartEval& p : result.parts) {
    for (size_t m = 0; m < parts_.size(); ++m) {
      if (parts_[m].name == p.name && p.reached_target && !reached_[m]) {
        reached_[m] = true;
        host_->emit({{"event", "model_done"}, {"strategy", name()}, {"model", p.name},
                     {"accuracy", p.accuracy}});
      }
    }
  }
}

}  // namespace cohort
