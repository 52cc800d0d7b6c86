#include "cohort/strategy/fedcompass.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "cohort/core/ops.h"

namespace cohort {

namespace {

std::string number_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

// A time of 0 between dispatch and arrival (an instant host) would make every later Q
// infinite; this floor keeps the arithmetic finite without affecting real measurements.
constexpr double kMinSecondsPerStep = 1e-9;

}  // namespace

std::optional<std::pair<std::string, std::string>> FedCompassOptions::first_problem() const {
  auto got = [](double v) {
    return ", got " + number_text(v);
  };
  if (min_local_steps < 1) {
    return std::make_pair("min_local_steps",
                          "must be >= 1" + got(static_cast<double>(min_local_steps)));
  }
  if (max_local_steps < 1) {
    return std::make_pair("max_local_steps",
                          "must be >= 1" + got(static_cast<double>(max_local_steps)));
  }
  if (min_local_steps > max_local_steps) {
    return std::make_pair("min_local_steps", "must be <= max_local_steps (" +
                                                 std::to_string(max_local_steps) + ")" +
                                                 got(static_cast<double>(min_local_steps)));
  }
  if (!(latest_time_factor > 1)) {
    return std::make_pair("latest_time_factor", "must be > 1" + got(latest_time_factor));
  }
  if (!(speed_momentum > 0 && speed_momentum <= 1)) {
    return std::make_pair("speed_momentum", "must be in (0, 1]" + got(speed_momentum));
  }
  if (!(alpha > 0 && alpha <= 1)) {
    return std::make_pair("alpha", "must be in (0, 1]" + got(alpha));
  }
  if (weighting != "uniform" && weighting != "examples") {
    return std::make_pair("weighting",
                          "unknown value '" + weighting + "' (known: uniform, examples)");
  }
  if (staleness.kind != "constant" && staleness.kind != "polynomial" && staleness.kind != "hinge" &&
      staleness.kind != "exponential") {
    return std::make_pair("staleness", "unknown staleness function '" + staleness.kind +
                                           "' (known: constant, polynomial, hinge, exponential)");
  }
  if (!(staleness.a >= 0)) return std::make_pair("staleness_a", "must be >= 0" + got(staleness.a));
  if (!(staleness.b >= 0)) return std::make_pair("staleness_b", "must be >= 0" + got(staleness.b));
  return std::nullopt;
}

FedCompass::FedCompass(FedCompassOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<Strategy>> FedCompass::create(StrategyParams& p) {
  FedCompassOptions o;
  o.min_local_steps = p.integer("min_local_steps", o.min_local_steps);
  o.max_local_steps = p.integer("max_local_steps", o.max_local_steps);
  o.latest_time_factor = p.number("latest_time_factor", o.latest_time_factor);
  o.speed_momentum = p.number("speed_momentum", o.speed_momentum);
  o.alpha = p.number("alpha", o.alpha);
  o.weighting = p.string("weighting", o.weighting);
  o.staleness = StalenessFn::read(p, "polynomial");
  if (auto bad = o.first_problem()) p.fail_with(bad->first, bad->second);
  return std::unique_ptr<Strategy>(new FedCompass(std::move(o)));
}

Status FedCompass::on_start() {
  if (auto bad = options_.first_problem()) {
    return Status::invalid_argument(name() + ": " + bad->first + ": " + bad->second);
  }
  origin_ = host_->now();
  buffer_ranges_.clear();
  buffer_numel_ = 0;
  for (const ArraySpec& s : model_->layout()->specs()) {
    if (s.trainable || s.numel == 0) continue;
    buffer_ranges_.emplace_back(s.offset, s.numel);
    buffer_numel_ += s.numel;
  }
  clients_.clear();
  groups_.clear();
  timers_.clear();
  general_ = Pending{};
  next_group_ = 0;
  return Status();
}

double FedCompass::now() const { return host_->now() - origin_; }

FedCompass::ClientSlot& FedCompass::slot(ClientId id) { return clients_[id]; }

bool FedCompass::host_idle(ClientId id) const { return host_->is_idle(id); }

double FedCompass::client_weight(const Update& u) const {
  if (options_.weighting == "examples") {
    double total = 0;
    for (ClientId id : host_->client_ids()) {
      total += static_cast<double>(host_->client_info(id).num_examples);
    }
    return total > 0 ? static_cast<double>(u.num_examples) / total : 0.0;
  }
  return 1.0 / static_cast<double>(std::max<size_t>(1, host_->num_clients()));
}

// ---------------------------------------------------------------------------------------
// Scheduling (docs/strategies.md, FedCompass "Scheduling rules" and "Arrivals")

void FedCompass::record_speed(ClientSlot& c, double t) {
  const auto steps = static_cast<double>(std::max<int64_t>(1, c.local_steps));
  const double v = std::max(kMinSecondsPerStep, (t - c.start_time) / steps);
  if (!c.has_speed) {
    c.speed = v;
    c.has_speed = true;
  } else {
    c.speed = (1.0 - options_.speed_momentum) * c.speed + options_.speed_momentum * v;
  }
}

void FedCompass::send_task(ClientId id, int64_t local_steps, int64_t group) {
  ClientSlot& c = slot(id);
  c.phase = Phase::kTraining;
  c.local_steps = local_steps;
  c.group = group;
  c.start_time = now();
  c.timestamp = version_;
  // The task's model is needed at arrival only to recover the client's values of
  // non-trainable arrays (base - Δ); without such arrays no old model is kept alive.
  c.base = buffer_numel_ > 0 ? model_ : nullptr;
  Task t;
  t.client = id;
  t.version = version_;
  t.model = model_;
  t.local_steps = local_steps;
  host_->dispatch(std::move(t));
}

void FedCompass::start_client(ClientId id) {
  ClientSlot& c = slot(id);
  if (c.phase == Phase::kTraining || c.phase == Phase::kWaiting) return;
  if (!c.has_speed) {
    // No measurement yet: a first task of Q_max steps outside any group; its arrival is a
    // single update.
    send_task(id, options_.max_local_steps, -1);
    return;
  }
  assign_group(id);
}

void FedCompass::assign_group(ClientId id) {
  const double t = now();
  if (groups_.empty()) {
    create_group(id, t, options_.max_local_steps);
    return;
  }
  if (join_group(id, t)) return;
  create_group(id, t, create_group_steps(id, t));
}

bool FedCompass::join_group(ClientId id, double t) {
  const double speed = slot(id).speed;
  int64_t best_group = -1;
  double best_steps = -1;
  const auto q_min = static_cast<double>(options_.min_local_steps);
  const auto q_max = static_cast<double>(options_.max_local_steps);
  for (const auto& [g, group] : groups_) {
    if (group.closed) continue;
    // Kept in double: a far-away group can give a Q beyond int64.
    const double q = std::floor((group.expected_arrival - t) / speed);
    // `q < best` (not <=): on a tie the later group wins, as in the reference.
    if (q < q_min || q < best_steps || q > q_max) continue;
    best_group = g;
    best_steps = q;
  }
  if (best_group < 0) return false;
  groups_.at(best_group).expected.push_back(id);
  send_task(id, static_cast<int64_t>(best_steps), best_group);
  return true;
}

int64_t FedCompass::create_group_steps(ClientId id, double t) const {
  const double speed = clients_.at(id).speed;
  const auto q_max = static_cast<double>(options_.max_local_steps);
  double q = -1;
  for (const auto& [g, group] : groups_) {
    if (group.closed || !(t < group.latest_arrival)) continue;
    // Line the new group up with the next arrival of this group's fastest member after a
    // full Q_max task, so that fast clients of different groups can merge later.
    double fastest = std::numeric_limits<double>::infinity();
    for (ClientId j : group.expected) fastest = std::min(fastest, clients_.at(j).speed);
    for (ClientId j : group.arrived) fastest = std::min(fastest, clients_.at(j).speed);
    if (!std::isfinite(fastest)) continue;
    const double estimate = group.latest_arrival + fastest * q_max;
    const double qg = std::floor((estimate - t) / speed);
    if (qg <= q_max) q = std::max(q, qg);
  }
  if (q >= 0 && q < static_cast<double>(options_.min_local_steps)) {
    q = static_cast<double>(options_.min_local_steps);
  }
  if (q < 0) q = q_max;
  return static_cast<int64_t>(q);
}

void FedCompass::create_group(ClientId id, double t, int64_t local_steps) {
  const double speed = slot(id).speed;
  const int64_t g = next_group_++;
  Group& group = groups_[g];
  group.expected = {id};
  const double work = static_cast<double>(local_steps) * speed;
  group.expected_arrival = t + work;
  group.latest_arrival = t + work * options_.latest_time_factor;
  group.timer = host_->set_timer(group.latest_arrival - t);
  group.timer_active = true;
  timers_[group.timer] = g;
  send_task(id, local_steps, g);
}

void FedCompass::on_client_idle(ClientId id) {
  if (host_ == nullptr) return;
  start_client(id);
}

Status FedCompass::on_update(Update u) {
  const ClientId id = u.client;
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second.phase != Phase::kTraining) {
    return Status::failed_precondition("update from client " + std::to_string(id) +
                                       ": no task outstanding for it");
  }
  ClientSlot& c = it->second;
  Status s;
  if (u.base_version != c.timestamp) {
    s = Status::failed_precondition("update from client " + std::to_string(id) + ": base version " +
                                    std::to_string(u.base_version) + " is not its task's version " +
                                    std::to_string(c.timestamp));
  }
  if (s.ok()) s = validate_update(u);
  if (s.ok() && buffer_numel_ > 0 && !c.base) {
    // Restored from a checkpoint without its model: the runtime reports such tasks lost.
    s = Status::failed_precondition("update from client " + std::to_string(id) +
                                    ": its task predates the restart");
  }
  if (!s.ok()) {
    // The task's result is unusable: the group must not wait for it.
    const int64_t g = c.group;
    c.phase = Phase::kFree;
    c.group = -1;
    c.base.reset();
    if (g >= 0) drop_from_group(id, g);
    if (host_idle(id)) start_client(id);
    return s;
  }

  const double t = now();
  record_speed(c, t);
  if (c.group < 0) {
    single_update(u, c);
    c.phase = Phase::kFree;
    c.base.reset();
    if (host_idle(id)) start_client(id);
    return Status();
  }

  const int64_t g = c.group;
  auto git = groups_.find(g);
  // (A training member is always among its group's expected members, so the group exists;
  // were it gone, the update is simply treated as late.)
  if (git == groups_.end() || git->second.closed || t > git->second.latest_arrival) {
    // Late. With a real clock the group's timer may not have fired yet: close the group as
    // it would have, so its on-time members are not stranded.
    if (git != groups_.end()) {
      if (!git->second.closed && !git->second.arrived.empty()) aggregate_group(g, "timer");
      drop_from_group(id, g);  // `id` is still expected, so the group was not erased
    }
    fold(general_, u, c);
    host_->emit({{"event", "late"}, {"strategy", name()}, {"client", id}, {"group", g}});
    c.phase = Phase::kFree;
    c.group = -1;
    c.base.reset();
    if (host_idle(id)) start_client(id);
    return Status();
  }

  Group& group = git->second;
  std::erase(group.expected, id);
  group.arrived.push_back(id);
  fold(group.pending, u, c);
  c.phase = Phase::kWaiting;
  c.base.reset();
  if (group.expected.empty()) aggregate_group(g, "complete");
  return Status();
}

void FedCompass::on_task_lost(ClientId id, ModelVersion /*version*/) {
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second.phase != Phase::kTraining) return;
  ClientSlot& c = it->second;
  const int64_t g = c.group;
  c.phase = Phase::kFree;
  c.group = -1;
  c.base.reset();
  // Re-assigned by on_client_idle when the client is back, like a fresh arrival.
  if (g >= 0) drop_from_group(id, g);
}

void FedCompass::on_timer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;  // cancelled or already handled
  const int64_t g = it->second;
  timers_.erase(it);
  auto git = groups_.find(g);
  if (git == groups_.end()) return;
  git->second.timer_active = false;
  // Nobody on time: nothing to aggregate; the remaining members will arrive late.
  aggregate_group(g, "timer");
}

void FedCompass::drop_from_group(ClientId id, int64_t g) {
  auto it = groups_.find(g);
  if (it == groups_.end()) return;
  Group& group = it->second;
  std::erase(group.expected, id);
  if (!group.expected.empty()) return;
  if (!group.closed && !group.arrived.empty()) {
    aggregate_group(g, "lost");
  } else {
    erase_group(g);
  }
}

void FedCompass::erase_group(int64_t g) {
  auto it = groups_.find(g);
  if (it == groups_.end()) return;
  if (it->second.timer_active) {
    host_->cancel_timer(it->second.timer);
    timers_.erase(it->second.timer);
  }
  groups_.erase(it);
}

// ---------------------------------------------------------------------------------------
// Aggregation (docs/strategies.md, FedCompass "Aggregation")

void FedCompass::single_update(const Update& u, ClientSlot& c) {
  const int64_t staleness = version_ - c.timestamp;
  const double a = options_.alpha * options_.staleness(staleness) * client_weight(u);
  ArrayRecord next = model_->clone();
  ops::axpy(static_cast<float>(-a), u.delta.flat(), next.flat());
  // Non-trainable arrays take the client's values.
  if (buffer_numel_ > 0 && c.base) {
    const float* base = c.base->data();
    const float* d = u.delta.data();
    float* out = next.data();
    for (const auto& [off, n] : buffer_ranges_) {
      for (int64_t k = off; k < off + n; ++k) out[k] = base[k] - d[k];
    }
  }
  host_->emit({{"event", "update"},
               {"strategy", name()},
               {"client", u.client},
               {"staleness", staleness},
               {"alpha", a},
               {"version", version_ + 1}});
  commit(std::move(next));
}

void FedCompass::fold(Pending& p, const Update& u, const ClientSlot& c) {
  auto [it, inserted] = p.by_version.try_emplace(c.timestamp);
  if (inserted) it->second.sum = ArrayRecord(model_->layout());
  ops::axpy(static_cast<float>(client_weight(u)), u.delta.flat(), it->second.sum.flat());
  ++it->second.count;
  if (buffer_numel_ > 0 && c.base) {
    if (p.buffer_values.empty()) p.buffer_values.assign(static_cast<size_t>(buffer_numel_), 0.0);
    const float* base = c.base->data();
    const float* d = u.delta.data();
    size_t i = 0;
    for (const auto& [off, n] : buffer_ranges_) {
      for (int64_t k = off; k < off + n; ++k) p.buffer_values[i++] += base[k] - d[k];
    }
  }
  ++p.count;
}

void FedCompass::aggregate_group(int64_t g, const char* trigger) {
  auto it = groups_.find(g);
  if (it == groups_.end()) return;
  Group& group = it->second;
  if (group.closed || group.arrived.empty()) return;
  if (group.timer_active) {
    host_->cancel_timer(group.timer);
    timers_.erase(group.timer);
    group.timer_active = false;
  }

  // θ <- θ - Σ_v α s(version - v) S_v, with τ taken now (see the header).
  ArrayRecord next = model_->clone();
  double staleness_sum = 0;
  int64_t updates = 0;
  for (const Pending* p : {&group.pending, &general_}) {
    for (const auto& [base_version, bucket] : p->by_version) {
      const int64_t tau = version_ - base_version;
      const double coeff = options_.alpha * options_.staleness(tau);
      ops::axpy(static_cast<float>(-coeff), bucket.sum.flat(), next.flat());
      staleness_sum += static_cast<double>(tau) * static_cast<double>(bucket.count);
      updates += bucket.count;
    }
  }
  if (buffer_numel_ > 0 && updates > 0) {
    std::vector<double> mean(static_cast<size_t>(buffer_numel_), 0.0);
    for (const Pending* p : {&group.pending, &general_}) {
      for (size_t i = 0; i < p->buffer_values.size(); ++i) mean[i] += p->buffer_values[i];
    }
    float* out = next.data();
    size_t i = 0;
    for (const auto& [off, n] : buffer_ranges_) {
      for (int64_t k = off; k < off + n; ++k) {
        out[k] = static_cast<float>(mean[i++] / static_cast<double>(updates));
      }
    }
  }
  const auto on_time = static_cast<int64_t>(group.arrived.size());
  host_->emit({{"event", "group"},
               {"strategy", name()},
               {"group", g},
               {"size", on_time},
               {"late", general_.count},
               {"updates", updates},
               {"mean_staleness", updates > 0 ? staleness_sum / static_cast<double>(updates) : 0.0},
               {"waiting", group.expected.size()},
               {"trigger", trigger},
               {"version", version_ + 1}});
  general_ = Pending{};
  group.pending = Pending{};
  std::vector<ClientId> arrived = std::move(group.arrived);
  group.arrived.clear();
  // Any member still expected will now take the late path.
  group.closed = true;
  group.expected_arrival = 0.0;
  group.latest_arrival = 0.0;
  commit(std::move(next));

  // Fastest first, so slower members can join the groups the faster ones create.
  std::stable_sort(arrived.begin(), arrived.end(), [this](ClientId a, ClientId b) {
    return clients_.at(a).speed < clients_.at(b).speed;
  });
  for (ClientId j : arrived) {
    ClientSlot& c = slot(j);
    c.phase = Phase::kFree;
    c.group = -1;
    if (host_idle(j)) start_client(j);
  }
  auto after = groups_.find(g);
  if (after != groups_.end() && after->second.expected.empty()) erase_group(g);
}

// ---------------------------------------------------------------------------------------
// Checkpoints

void FedCompass::io_pending(StateIO& io, const std::string& prefix, Pending& p) {
  std::vector<std::pair<ModelVersion, int64_t>> buckets;
  for (const auto& [v, b] : p.by_version) buckets.emplace_back(v, b.count);
  io.value(prefix + ".buckets", buckets);
  io.value(prefix + ".buffer_values", p.buffer_values);
  io.value(prefix + ".count", p.count);
  if (io.loading()) p.by_version.clear();
  for (const auto& [v, count] : buckets) {
    Pending::Bucket& b = p.by_version[v];
    if (io.loading()) {
      b.sum = ArrayRecord(model_->layout());
      b.count = count;
    }
    io.array(prefix + ".sum." + std::to_string(v), b.sum);
  }
}

Status FedCompass::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(io_base_state(io));
  io.value("origin", origin_);
  io.value("next_group", next_group_);
  Json clients = Json::array();
  for (const auto& [id, c] : clients_) {
    clients.push_back({id, static_cast<int>(c.phase), c.has_speed, c.speed, c.timestamp,
                       c.local_steps, c.start_time, c.group});
  }
  io.value("clients", clients);
  Json groups = Json::array();
  for (const auto& [g, group] : groups_) {
    groups.push_back({g, group.expected, group.arrived, group.expected_arrival,
                      group.latest_arrival, group.closed, group.timer_active, group.timer});
  }
  io.value("groups", groups);
  if (io.loading() && io.status().ok()) {
    try {
      clients_.clear();
      for (const Json& j : clients) {
        ClientSlot& c = clients_[j.at(0).get<ClientId>()];
        const int phase = j.at(1).get<int>();
        if (phase < 0 || phase > static_cast<int>(Phase::kFree)) {
          throw std::out_of_range("client phase " + std::to_string(phase));
        }
        c.phase = static_cast<Phase>(phase);
        c.has_speed = j.at(2).get<bool>();
        c.speed = j.at(3).get<double>();
        c.timestamp = j.at(4).get<ModelVersion>();
        c.local_steps = j.at(5).get<int64_t>();
        c.start_time = j.at(6).get<double>();
        c.group = j.at(7).get<int64_t>();
      }
      groups_.clear();
      timers_.clear();
      for (const Json& j : groups) {
        const auto g = j.at(0).get<int64_t>();
        Group& group = groups_[g];
        group.expected = j.at(1).get<std::vector<ClientId>>();
        group.arrived = j.at(2).get<std::vector<ClientId>>();
        group.expected_arrival = j.at(3).get<double>();
        group.latest_arrival = j.at(4).get<double>();
        group.closed = j.at(5).get<bool>();
        group.timer_active = j.at(6).get<bool>();
        group.timer = j.at(7).get<TimerId>();
        if (group.timer_active) timers_[group.timer] = g;
      }
    } catch (const std::exception& e) {
      io.fail(Status::data_loss(name() + ": checkpointed clients or groups: " + e.what()));
      return io.status();
    }
  }
  io_pending(io, "general", general_);
  for (auto& [g, group] : groups_) io_pending(io, "group." + std::to_string(g), group.pending);
  return io.status();
}

// ---------------------------------------------------------------------------------------
// Introspection

std::vector<FedCompass::GroupState> FedCompass::groups() const {
  std::vector<GroupState> out;
  for (const auto& [g, group] : groups_) {
    out.push_back(GroupState{g, group.expected, group.arrived, group.expected_arrival,
                             group.latest_arrival, group.closed});
  }
  return out;
}

std::optional<double> FedCompass::seconds_per_step(ClientId id) const {
  auto it = clients_.find(id);
  if (it == clients_.end() || !it->second.has_speed) return std::nullopt;
  return it->second.speed;
}

bool FedCompass::waiting(ClientId id) const {
  auto it = clients_.find(id);
  return it != clients_.end() && it->second.phase == Phase::kWaiting;
}

}  // namespace cohort
