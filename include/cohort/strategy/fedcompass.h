// FedCompass (Li et al., "FedCompass: Efficient Cross-Silo Federated Learning on Heterogeneous
// Client Devices Using a Computing Power-Aware Scheduler", ICLR 2024, arXiv:2309.14675;
// docs/strategies.md, "Semi-asynchronous: fedcompass"): semi-asynchronous FL with a
// COMputing Power Aware Scheduler.
//
// The server measures each client's time per local step and gives it a number of local steps
// Q in [Q_min, Q_max] chosen so that several clients finish at about the same time. Clients
// expected to finish together form an arrival group with an expected arrival time T_a and a
// latest arrival time T_max = start + λ (T_a - start). A client that arrives on time waits,
// with no task, for the rest of its group; when every member has arrived, or at T_max (a
// host timer), the group is aggregated in ONE global step together with the late updates
// parked in the general buffer, and every waiting member gets the new model and a new Q. A
// member arriving after T_max is not waited for: its update goes to the general buffer and it
// is re-assigned at once. A client's first task (no group yet) has Q_max steps and its
// arrival is applied at once (FedAsync-style single update). The scheduling rules (speed
// record, single update, group update, group aggregation, and assigning, joining or creating
// a group) follow current APPFL's CompassScheduler; they are written out in
// docs/strategies.md, "Speed measurement", "Scheduling rules" and "Arrivals".
//
// Mapping onto Cohort's events:
//   - Times are host_->now() minus the time of start(). Dispatch times are recorded here;
//     speed (seconds per local step) is the EMA, with weight `speed_momentum` β on the new
//     sample, of (arrival - dispatch) / Q; the first sample initialises it. The simulator's
//     true speeds are never read.
//   - APPFL's deferred reply is a client that stays idle with no task until its group
//     aggregates; on_client_idle does nothing for it.
//   - One host timer per group at T_max; cancelled when the group aggregates early, and
//     stale timer ids are ignored.
//   - A lost task (or a rejected update, whose task is just as unusable) removes the client
//     from its group's expected members; a group left with no expected members and with
//     arrivals is aggregated at once, one with neither is deleted. When the client is idle
//     again it is assigned like a fresh arrival with its known speed (assign_group), or given
//     a Q_max first task if it never completed one.
//
// Aggregation (docs/strategies.md, "Aggregation"; APPFL's gradient_based form): with
// Δ_j = start - end and client weight
// p_j ("uniform": 1/N, N = host_->num_clients(), the default; "examples": n_j / Σ_k n_k),
//     single update:  θ <- θ - α s(τ_j) p_j Δ_j
//     group:          θ <- θ - Σ_{j in group ∪ general buffer} α s(τ_j) p_j Δ_j
// on trainable arrays; a non-trainable array (BatchNorm statistics) takes the client's value
// (base_j - Δ_j) in a single update and the mean of the clients' values in a group step.
// τ_j = version at aggregation - version the client's task started from.
//
// Streaming and staleness (design choice). τ_j must be taken at AGGREGATION time as the
// reference does: other groups may commit while a member waits, so τ_j is not known when Δ_j
// arrives. Instead of keeping every Δ_j until then (K model copies per group) or freezing τ_j
// at arrival (the paper-era code; inexact), each buffer keeps one running sum Σ p_j Δ_j per
// BASE VERSION: members with the same base version share τ at any later time, so the step
// Σ_v α s(G - v) S_v is exact, and memory is one model per distinct base version (members of
// a group mostly come from one or two earlier aggregations). Consequence: every accepted
// update is applied exactly once. Current APPFL keys its buffers by client id, so a client's
// late update is silently dropped when the same client also has an on-time update in the
// group being aggregated, or a second late update; here (as in the paper-era server) both
// count. Other deviations, all about robustness: a late arrival whose group's timer has not
// fired yet (a real clock) first aggregates that group as the timer would have; a group's
// buffer is freed after its aggregation (so a late timer cannot aggregate it twice); a
// measured speed of 0 s/step is raised to 1e-9.
//
// Parameters: min_local_steps (Q_min >= 1, default 20), max_local_steps (Q_max >= Q_min,
// default 100), latest_time_factor (λ > 1, default 1.5), speed_momentum (β in (0, 1], default
// 0.9), alpha (in (0, 1], default 0.9), weighting (uniform | examples), staleness /
// staleness_a / staleness_b (default polynomial, a = 0.5). The run's default_local_steps() is
// not used: FedCompass chooses Q itself.
//
// Metrics events: "update" per single update (client, staleness, alpha = α s(τ) p, version),
// "group" per group aggregation (group, size = on-time members, late = general-buffer updates,
// updates, mean_staleness, waiting = members still expected, trigger = complete | timer |
// lost, version) and "late" per late arrival (client, group).
//
// Thread safety: none; driven from the runtime's loop like every Strategy.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cohort/strategy/registry.h"
#include "cohort/strategy/staleness.h"
#include "cohort/strategy/strategy_base.h"

namespace cohort {

struct FedCompassOptions {
  int64_t min_local_steps = 20;     // Q_min
  int64_t max_local_steps = 100;    // Q_max
  double latest_time_factor = 1.5;  // λ
  double speed_momentum = 0.9;      // β: weight of the newest speed sample
  double alpha = 0.9;
  std::string weighting = "uniform";  // uniform | examples
  StalenessFn staleness{.kind = "polynomial", .a = 0.5};

  // The first invalid option as (parameter name, "must be ..., got <value>"), or nullopt.
  std::optional<std::pair<std::string, std::string>> first_problem() const;
};

class FedCompass : public StrategyBase {
 public:
  explicit FedCompass(FedCompassOptions options);
  // Reads the parameters listed above; errors name the key ("strategy.min_local_steps: must
  // be <= max_local_steps (20), got 50").
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedcompass"; }
  const FedCompassOptions& options() const { return options_; }

  void on_client_idle(ClientId id) override;
  // FailedPrecondition for an update from a client with no task outstanding or whose base
  // version is not its task's; InvalidArgument/FailedPrecondition from validate_update. A
  // rejected update changes no buffer or model directly, but its task counts as lost (see
  // above), which may aggregate the client's group.
  Status on_update(Update update) override;
  void on_task_lost(ClientId id, ModelVersion version) override;
  void on_timer(TimerId id) override;

  // Introspection (tests, reports). Times are seconds since start().
  struct GroupState {
    int64_t id = 0;
    std::vector<ClientId> expected;  // members still training for this group
    std::vector<ClientId> arrived;   // members that arrived on time and wait for aggregation
    double expected_arrival = 0.0;   // T_a
    double latest_arrival = 0.0;     // T_max
    bool closed = false;             // aggregated; a remaining member's arrival will be late
  };
  // Groups in creation order.
  std::vector<GroupState> groups() const;
  // Estimated seconds per local step, or nullopt before the client's first arrival.
  std::optional<double> seconds_per_step(ClientId id) const;
  // True while the client waits (no task) for its group's aggregation.
  bool waiting(ClientId id) const;
  // Late updates waiting in the general buffer.
  int64_t general_buffered() const { return general_.count; }

 protected:
  Status on_start() override;
  // Checkpoints: the base state, every client's slot (speed estimate, phase, current task),
  // the groups with their buffered updates, the general buffer and the group timers.
  Status io_state(StateIO& io) override;

 private:
  enum class Phase { kNew, kTraining, kWaiting, kFree };
  struct ClientSlot {
    Phase phase = Phase::kNew;
    bool has_speed = false;
    double speed = 0.0;                       // EMA of seconds per local step
    ModelVersion timestamp = 0;               // version of the model its current task started from
    int64_t local_steps = 0;                  // Q of the current task
    double start_time = 0.0;                  // dispatch time of the current task
    int64_t group = -1;                       // arrival group of the current task; -1 = none
    std::shared_ptr<const ArrayRecord> base;  // the task's model, kept only for buffers
  };
  // Updates waiting for a group step: Σ p_j Δ_j per base version, plus the sum of the
  // clients' values of the non-trainable arrays.
  struct Pending {
    struct Bucket {
      ArrayRecord sum;
      int64_t count = 0;
    };
    std::map<ModelVersion, Bucket> by_version;
    std::vector<double> buffer_values;
    int64_t count = 0;
  };
  struct Group {
    std::vector<ClientId> expected;
    std::vector<ClientId> arrived;
    double expected_arrival = 0.0;
    double latest_arrival = 0.0;
    bool closed = false;
    bool timer_active = false;
    TimerId timer = 0;
    Pending pending;
  };

  // One buffer's part of io_state, under keys starting with `prefix`.
  void io_pending(StateIO& io, const std::string& prefix, Pending& p);
  double now() const;
  ClientSlot& slot(ClientId id);
  bool host_idle(ClientId id) const;
  double client_weight(const Update& u) const;

  void record_speed(ClientSlot& c, double now);
  void start_client(ClientId id);
  void send_task(ClientId id, int64_t local_steps, int64_t group);
  void assign_group(ClientId id);
  bool join_group(ClientId id, double now);
  void create_group(ClientId id, double now, int64_t local_steps);
  int64_t create_group_steps(ClientId id, double now) const;

  void single_update(const Update& u, ClientSlot& c);
  void fold(Pending& p, const Update& u, const ClientSlot& c);
  void aggregate_group(int64_t g, const char* trigger);
  void drop_from_group(ClientId id, int64_t g);
  void erase_group(int64_t g);

  FedCompassOptions options_;
  double origin_ = 0.0;
  // (offset, numel) of every non-trainable array; empty for most models.
  std::vector<std::pair<int64_t, int64_t>> buffer_ranges_;
  int64_t buffer_numel_ = 0;
  std::map<ClientId, ClientSlot> clients_;
  std::map<int64_t, Group> groups_;    // ids increase, so this is creation order
  std::map<TimerId, int64_t> timers_;  // active timer -> group
  Pending general_;
  int64_t next_group_ = 0;
};

}  // namespace cohort
