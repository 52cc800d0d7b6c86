// The client table: registration, availability, the StrategyHost queries about clients, and
// the live view of it (metrics.h) for sinks that ask.
#include <algorithm>
#include <tuple>

#include "cohort/runtime/runtime.h"

namespace cohort::runtime {

// ---- clients ------------------------------------------------------------------------------

Runtime::Entry Runtime::population_entry(ClientId id) const {
  Entry e;
  e.info.id = id;
  e.info.num_examples = population_examples_[static_cast<size_t>(id)];
  e.available = population_available_;
  return e;
}

Runtime::Entry* Runtime::find(ClientId id) {
  if (has_population()) {
    if (!in_population(id)) return nullptr;
    return &population_.get(static_cast<size_t>(id), [&] {
      return population_entry(id);
    });
  }
  return const_cast<Entry*>(static_cast<const Runtime*>(this)->peek(id));
}

const Runtime::Entry* Runtime::peek(ClientId id) const {
  if (has_population()) {
    if (!in_population(id)) return nullptr;
    if (const Entry* e = population_.find(static_cast<size_t>(id))) return e;
    peeked_ = population_entry(id);
    return &peeked_;
  }
  // Dense ids sit at their own index.
  if (id >= 0 && static_cast<size_t>(id) < entries_.size() &&
      entries_[static_cast<size_t>(id)].info.id == id) {
    return &entries_[static_cast<size_t>(id)];
  }
  auto it = std::lower_bound(entries_.begin(), entries_.end(), id, [](const Entry& e, ClientId v) {
    return e.info.id < v;
  });
  return it != entries_.end() && it->info.id == id ? &*it : nullptr;
}

void Runtime::add_population(std::span<const int64_t> num_examples, bool available) {
  typical_dirty_ = true;
  idle_index_valid_ = false;
  population_examples_ = num_examples;
  population_available_ = available;
  population_.reset(num_examples.size());
}

std::vector<const Runtime::Entry*> Runtime::records() const {
  std::vector<const Entry*> out;
  if (!has_population()) {
    out.reserve(entries_.size());
    for (const Entry& e : entries_) out.push_back(&e);
    return out;
  }
  const std::vector<size_t> at = population_.created_positions();
  out.reserve(at.size());
  for (size_t i : at) out.push_back(population_.find(i));
  return out;
}

std::vector<Runtime::Entry*> Runtime::records() {
  std::vector<Entry*> out;
  for (const Entry* e : static_cast<const Runtime*>(this)->records()) {
    out.push_back(const_cast<Entry*>(e));
  }
  return out;
}

void Runtime::add_client(ClientId id, int64_t num_examples) {
  typical_dirty_ = true;
  if (has_population()) {
    Entry* e = find(id);  // REQUIRES: within the population
    if (e != nullptr) {
      e->info.num_examples = num_examples;
      mark(*e);
    }
    return;
  }
  // Ascending registration (a tokens file in id order) appends without a search.
  const bool append = entries_.empty() || id > entries_.back().info.id;
  if (!append) {
    if (Entry* e = find(id)) {
      e->info.num_examples = num_examples;
      mark(*e);
      return;
    }
  }
  Entry e;
  e.info.id = id;
  e.info.num_examples = num_examples;
  auto it = append ? entries_.end()
                   : std::lower_bound(entries_.begin(), entries_.end(), id,
                                      [](const Entry& x, ClientId v) {
                                        return x.info.id < v;
                                      });
  idle_index_valid_ = false;  // the table changed shape
  mark(*entries_.insert(it, std::move(e)));
}

bool Runtime::has_client(ClientId id) const { return peek(id) != nullptr; }

void Runtime::set_available(ClientId id, bool available) {
  const Entry* now = peek(id);
  if (now == nullptr || now->available == available) return;
  Entry* e = find(id);
  e->available = available;
  mark(*e);
}

bool Runtime::available(ClientId id) const {
  const Entry* e = peek(id);
  return e != nullptr && e->available;
}

bool Runtime::idle(const Entry& e) const {
  return e.available && e.task < 0 && host_.reachable(e.info.id);
}

void Runtime::offer(ClientId id) {
  const Entry* e = peek(id);
  if (e != nullptr && idle(*e) && !stopping_ && !failure_) strategy_.on_client_idle(id);
}

void Runtime::offer_all() {
  const size_t n = num_clients();
  for (size_t i = 0; i < n && !stopping_ && !failure_ && strategy_.wants_idle_clients(); ++i) {
    offer(id_at(i));
  }
}

const TaskRecord* Runtime::task_of(ClientId id) const {
  const Entry* e = peek(id);
  return e == nullptr || e->task < 0 ? nullptr : task(e->task);
}

const TaskRecord* Runtime::task(int64_t task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}

ClientStats& Runtime::stats(ClientId id) { return act(*find(id)).stats; }

Runtime::Activity& Runtime::act(Entry& e) {
  if (!e.activity) {
    e.activity = std::make_unique<Activity>();
    e.activity->stats.id = e.info.id;
  }
  return *e.activity;
}

const Runtime::Activity& Runtime::act_or_zero(const Entry& e) {
  static const Activity kNone;
  return e.activity ? *e.activity : kNone;
}

AdmissionContext Runtime::admission_context(ClientId id) {
  AdmissionContext ctx;
  if (const Entry* e = peek(id)) ctx.registered_examples = e->info.num_examples;
  // The median is the basis only for a client that registered no count (admission.h), so it
  // is computed then: with a million clients it costs a copy of their counts and a selection.
  if (ctx.registered_examples > 0) return ctx;
  if (typical_dirty_) {
    std::vector<int64_t> counts;
    counts.reserve(num_clients());
    for_each_client([&](const Entry& e) {
      if (e.info.num_examples > 0) counts.push_back(e.info.num_examples);
    });
    typical_examples_ = 0;
    if (!counts.empty()) {
      auto mid = counts.begin() + static_cast<std::ptrdiff_t>(counts.size() / 2);
      std::nth_element(counts.begin(), mid, counts.end());
      typical_examples_ = *mid;
    }
    typical_dirty_ = false;
  }
  ctx.typical_examples = typical_examples_;
  return ctx;
}

std::vector<ClientId> Runtime::client_ids() const {
  std::vector<ClientId> out(num_clients());
  for (size_t i = 0; i < out.size(); ++i) out[i] = id_at(i);
  return out;
}

IdleClients Runtime::idle_view() const {
  if (!host_.always_reachable()) return IdleClients(idle_clients());
  if (!idle_index_valid_) {
    if (has_population()) {
      // Everyone as registered (always reachable, no task), then the records that changed.
      idle_index_.reset(population_.size(), population_available_);
      for (const Entry* e : records()) {
        idle_index_.set(static_cast<size_t>(e->info.id), idle(*e));
      }
    } else {
      std::vector<bool> in(entries_.size());
      for (size_t i = 0; i < entries_.size(); ++i) in[i] = idle(entries_[i]);
      idle_index_.assign(in);
    }
    idle_index_valid_ = true;
  }
  if (has_population()) {
    // Positions are ids.
    return IdleClients(
        idle_index_.count(),
        [this](int64_t i) {
          return static_cast<ClientId>(idle_index_.select(i));
        },
        [this](std::span<const uint64_t> pos, std::span<ClientId> out) {
          select_positions(pos, out);
          // A sample's clients are asked about next (their example counts, their records):
          // requested now, so that the memory fetches overlap.
          for (ClientId id : out) {
            __builtin_prefetch(&population_examples_[static_cast<size_t>(id)]);
            population_.prefetch(static_cast<size_t>(id));
          }
        });
  }
  return IdleClients(
      idle_index_.count(),
      [this](int64_t i) {
        return entries_[idle_index_.select(i)].info.id;
      },
      [this](std::span<const uint64_t> pos, std::span<ClientId> out) {
        // Positions first (the index is small enough to stay in cache), then the client
        // records, each requested before any is read so the memory fetches overlap.
        select_positions(pos, out);
        for (ClientId at : out) __builtin_prefetch(&entries_[static_cast<size_t>(at)]);
        for (ClientId& id : out) id = entries_[static_cast<size_t>(id)].info.id;
      });
}

void Runtime::select_positions(std::span<const uint64_t> ks, std::span<ClientId> out) const {
  std::vector<size_t> at(ks.size());
  if (std::is_sorted(ks.begin(), ks.end())) {
    idle_index_.select_sorted(ks, at);  // a round's sample: one pass over the index
  } else {
    for (size_t j = 0; j < ks.size(); ++j) at[j] = idle_index_.select(static_cast<int64_t>(ks[j]));
  }
  for (size_t j = 0; j < ks.size(); ++j) out[j] = static_cast<ClientId>(at[j]);
}

bool Runtime::is_idle(ClientId id) const {
  const Entry* e = peek(id);
  return e != nullptr && idle(*e);
}

void Runtime::index_idle(const Entry& e) {
  if (idle_index_valid_) idle_index_.set(position_of(e), idle(e));
}

std::vector<ClientId> Runtime::idle_clients() const {
  std::vector<ClientId> out;
  for_each_client([&](const Entry& e) {
    if (idle(e)) out.push_back(e.info.id);
  });
  return out;
}

ClientInfo Runtime::client_info(ClientId id) const {
  if (in_population(id) && population_.find(static_cast<size_t>(id)) == nullptr) {
    // As registered.
    return ClientInfo{.id = id, .num_examples = population_examples_[static_cast<size_t>(id)]};
  }
  const Entry* e = peek(id);
  // REQUIRES of StrategyHost: a strategy asking about an unknown client is a bug.
  return e == nullptr ? ClientInfo{.id = -1} : e->info;
}

// ---- live view ----------------------------------------------------------------------------

void Runtime::mark(Entry& e) {
  index_idle(e);
  if (!live_) return;
  e.changed_at = now();
  if (e.live_dirty) return;
  e.live_dirty = true;
  live_dirty_.push_back(e.info.id);
}

LiveClient Runtime::live_row(const Entry& e) const {
  LiveClient r;
  r.id = e.info.id;
  if (e.task >= 0 && !stopping_) {
    r.state = LiveClientState::kTraining;
  } else if (e.outcome == Outcome::kLost) {
    r.state = LiveClientState::kLost;
  } else if (e.outcome == Outcome::kRejected) {
    r.state = LiveClientState::kRejected;
  } else {
    // (A task still out when the run stopped is abandoned: its client counts as idle.)
    r.state = e.available && host_.reachable(e.info.id) ? LiveClientState::kIdle
                                                         : LiveClientState::kOffline;
  }
  r.examples = e.info.num_examples;
  const Activity& a = act_or_zero(e);
  r.tasks = a.stats.tasks;
  r.accepted = a.stats.updates_accepted;
  r.rejected = a.stats.rejected;
  r.lost = a.stats.lost;
  r.speed = e.info.measured_speed;
  r.mean_staleness = a.mean_staleness();
  r.last_staleness = a.last_staleness;
  r.changed_at = e.changed_at;
  return r;
}

void Runtime::publish_live() {
  if (!live_) return;
  LiveTotals t;
  t.version = strategy_.version();
  t.updates = summary_.updates;
  t.rejected = summary_.rejected;
  t.lost = summary_.lost;
  t.bytes_up = summary_.bytes_up;
  t.bytes_down = summary_.bytes_down;
  t.in_flight = stopping_ ? 0 : static_cast<int64_t>(tasks_.size());  // abandoned once stopped
  t.now = now();
  // The counters, without the clocks (which always move).
  auto counters = [](const LiveTotals& x) {
    return std::tie(x.version, x.updates, x.rejected, x.lost, x.bytes_up, x.bytes_down,
                    x.in_flight);
  };
  if (counters(t) == counters(live_totals_) && live_dirty_.empty() && live_published_) return;
  t.wall_s = host_.wall_seconds();
  std::vector<LiveClient> rows;
  rows.reserve(live_dirty_.size());
  for (ClientId id : live_dirty_) {
    Entry* e = find(id);
    if (e == nullptr) continue;
    e->live_dirty = false;
    rows.push_back(live_row(*e));
  }
  live_dirty_.clear();
  live_totals_ = t;
  live_published_ = true;
  metrics_->publish_live(t, rows);
}

}  // namespace cohort::runtime
