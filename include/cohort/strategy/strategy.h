// The Strategy contract: how an algorithm talks to the runtime that hosts it.
//
// A Strategy owns the algorithm and nothing else: which client trains what for how many
// local steps, and how arriving updates become the next global model. It is event-driven
// (a client is idle; an update arrived; a task was lost; a timer fired) because asynchronous
// and semi-asynchronous algorithms do not fit in rounds. Synchronous algorithms derive from
// RoundStrategy (round_strategy.h), which speaks Flower's vocabulary and adapts itself to
// these events.
//
// A strategy never sleeps, opens a socket, starts a thread or reads the system time: it asks
// its StrategyHost. The simulator (virtual clock) and the gRPC server (steady clock) are both
// hosts, so one strategy object runs unchanged in either. See docs/design/architecture.md.
//
// Thread safety: a strategy is driven from one thread (the runtime's loop); it need not be
// thread-safe. Everything it is handed stays valid for the duration of the call only, except
// shared_ptrs it keeps.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/eval_result.h"
#include "cohort/core/metrics.h"
#include "cohort/core/rng.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"

namespace cohort {

class GroupAggregation;  // group_aggregation.h

// What the runtime knows about a client; the same in simulation and deployment (never the
// simulator's hidden ground truth such as a client's true speed).
struct ClientInfo {
  ClientId id = 0;
  // Training examples the client reports holding.
  int64_t num_examples = 0;
  // Local steps per second as measured by the runtime from completed tasks (0 = unknown yet).
  double measured_speed = 0.0;
  // Tasks completed so far.
  int64_t tasks_done = 0;
};

// Work sent to one client: start from `model` (global version `version`), run `local_steps`
// optimizer steps, send back the update.
struct Task {
  ClientId client = 0;
  ModelVersion version = 0;
  std::shared_ptr<const ArrayRecord> model;
  int64_t local_steps = 1;
  // Settings for the trainer, Flower's ConfigRecord. The keys Cohort defines (lr, prox_mu,
  // client_state) are set and read through the typed functions of task_config.h; a user's
  // trainer may read keys of its own.
  ConfigRecord config;
  // Optional server state the client needs besides the model, shared by every task of a
  // round without copies (SCAFFOLD: the server control variate c, with the model's layout).
  // Null for strategies that keep no such state. When set, the runtime keeps a per-client
  // state (SCAFFOLD: c_i) across that client's tasks and updates it with the rule named by
  // the task config's client_state (task_config.h); an unknown or missing rule fails the task
  // with InvalidArgument.
  std::shared_ptr<const ArrayRecord> server_state;
};

// An update's delta kept out of memory by the host that received it (the deployment server
// spools a large upload as it arrives instead of holding its decoded floats), replayed frame by
// frame. Every value was checked finite when the bytes arrived; the statistics below were
// gathered then. A strategy that folds updates linearly reads it through fold_delta() and says
// so with Strategy::accepts_streamed_delta(); for any other the runtime materialises the delta.
class DeltaSource {
 public:
  virtual ~DeltaSource() = default;
  virtual int64_t numel() const = 0;
  virtual double l2_norm() const = 0;
  virtual float max_abs() const = 0;
  // Multiplies every value replayed from now on by `s` (admission's norm clipping).
  virtual void scale(float s) = 0;
  // Calls fn(first element, values) for frames covering the vector exactly once. Frames may
  // come in any order and from several threads at once (disjoint ranges), so fn must allow
  // that (folding into disjoint parts of a sum does). Errors from reading the spool back, or
  // fn's, end the replay.
  virtual Status replay(
      const std::function<Status(int64_t first, std::span<const float> values)>& fn) const = 0;
};

// What comes back from a task.
struct Update {
  ClientId client = 0;
  // Global version the client started from; staleness = current version - base_version.
  ModelVersion base_version = 0;
  // Pseudo-gradient: start parameters minus end parameters (docs/strategies.md, "Sign
  // convention"), so a server step is w - lr * delta.
  ArrayRecord delta;
  // Set instead of `delta` (which is then empty) when the host streams the delta; see
  // DeltaSource. Read deltas through the helpers below, which handle both forms.
  std::shared_ptr<DeltaSource> delta_source;
  // Change of the client's state over this task (new minus old; SCAFFOLD: Delta c_i =
  // c_i+ - c_i), with the layout of Task::server_state. Empty when the task carried no
  // server_state.
  ArrayRecord state_delta;
  int64_t num_examples = 0;
  int64_t local_steps = 0;
  // Client-reported metrics, e.g. "train_loss".
  MetricRecord metrics;
  // Host clock times (seconds) when the task was dispatched and the update arrived.
  double dispatched_at = 0.0;
  double arrived_at = 0.0;
};

// The delta of an update in either form (in memory or streamed): y += a * delta, its L2 norm,
// its largest magnitude, scaling it, and turning a streamed delta into an in-memory one with
// `layout` (for strategies that do not fold linearly).
Status fold_delta(const Update& u, float a, std::span<float> y);
double delta_norm(const Update& u);
float delta_max_abs(const Update& u);
void scale_delta(Update& u, float s);
Status materialize_delta(Update& u, std::shared_ptr<const ArrayLayout> layout);

// The checks every update passes wherever it is looked at (the runtime's admission before the
// strategy, and StrategyBase::validate_update inside it): the delta has `model`'s layout and
// finite values, at least one example and no negative step count. InvalidArgument naming the
// client and, for a bad value, the array ("update from client 3: array 'w' element 1 is NaN").
Status check_update(const Update& update, const ArrayRecord& model);

// A strategy's state between events, for crash-safe checkpoints (docs/checkpoint_format.md):
// small values in `scalars` (a JSON object), tensors in `arrays` by name. The global model
// and version are always included (keys "model" and "version").
struct StrategyState {
  Json scalars = Json::object();
  std::map<std::string, ArrayRecord> arrays;
};

// The idle clients in ascending id order, as a sequence a strategy indexes without a list of
// every client: either a list, or a host's index answering size() and the i-th client (the
// runtime's, O(log clients) per client), so that sampling a thousand of a million clients costs
// a thousand lookups. Valid until the host's state changes (the next dispatch).
class IdleClients {
 public:
  // Fills out[j] with the client at position pos[j], for a whole sample at once.
  using BatchAt = std::function<void(std::span<const uint64_t> pos, std::span<ClientId> out)>;

  IdleClients() = default;
  explicit IdleClients(std::vector<ClientId> ids) : ids_(std::move(ids)) {}
  IdleClients(int64_t size, std::function<ClientId(int64_t)> at, BatchAt batch_at = nullptr)
      : size_(size), at_(std::move(at)), batch_at_(std::move(batch_at)) {}
  int64_t size() const { return at_ ? size_ : static_cast<int64_t>(ids_.size()); }
  bool empty() const { return size() == 0; }
  // REQUIRES: 0 <= i < size().
  ClientId operator[](int64_t i) const { return at_ ? at_(i) : ids_[static_cast<size_t>(i)]; }
  // The clients at positions `pos`, in that order (the same as operator[] on each). One call
  // for a whole sample lets a host overlap the lookups: the runtime's index fetches a
  // thousand of a million clients' records at once instead of one cache miss after another.
  // REQUIRES: every pos[j] < size().
  std::vector<ClientId> at(std::span<const uint64_t> pos) const {
    std::vector<ClientId> out(pos.size());
    if (batch_at_) {
      batch_at_(pos, out);
    } else {
      for (size_t j = 0; j < pos.size(); ++j) out[j] = (*this)[static_cast<int64_t>(pos[j])];
    }
    return out;
  }
  std::vector<ClientId> to_vector() const {
    if (!at_) return ids_;
    std::vector<ClientId> out(static_cast<size_t>(size_));
    for (int64_t i = 0; i < size_; ++i) out[static_cast<size_t>(i)] = at_(i);
    return out;
  }

 private:
  std::vector<ClientId> ids_;
  int64_t size_ = 0;
  std::function<ClientId(int64_t)> at_;
  BatchAt batch_at_;
};

// Services a runtime offers the strategy it hosts.
class StrategyHost {
 public:
  virtual ~StrategyHost() = default;
  // Seconds on the runtime's clock (virtual in the simulator, steady in deployment).
  virtual double now() const = 0;
  // Clients that are online and have no task, in ascending id order.
  virtual std::vector<ClientId> idle_clients() const = 0;
  // The same clients as a view (above). Default: the list of idle_clients().
  virtual IdleClients idle_view() const { return IdleClients(idle_clients()); }
  // Whether client `id` is among them. Default: a search of idle_clients().
  virtual bool is_idle(ClientId id) const {
    const std::vector<ClientId> idle = idle_clients();
    return std::binary_search(idle.begin(), idle.end(), id);
  }
  // Every client the runtime knows, online or not.
  virtual size_t num_clients() const = 0;
  // Their ids, ascending. Ids need not be dense (a deployment's come from its tokens file);
  // the default, for hosts with dense ids, is 0 .. num_clients() - 1.
  virtual std::vector<ClientId> client_ids() const {
    std::vector<ClientId> ids(num_clients());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<ClientId>(i);
    return ids;
  }
  // REQUIRES: id is known to the runtime.
  virtual ClientInfo client_info(ClientId id) const = 0;
  // Local steps the run's training config implies for this client (local epochs over its
  // examples at the configured batch size, or the configured fixed step count).
  virtual int64_t default_local_steps(ClientId id) const = 0;
  // Sends a task. REQUIRES: task.client is idle. The runtime later calls on_update or
  // on_task_lost for it, never both, and never from inside dispatch() (a task it cannot send
  // is reported lost on a later turn), so a strategy may dispatch while it builds a round.
  virtual void dispatch(Task task) = 0;
  // Calls Strategy::on_timer(id) `delay_s` seconds from now.
  virtual TimerId set_timer(double delay_s) = 0;
  virtual void cancel_timer(TimerId id) = 0;
  // The strategy committed global model `version`. The runtime evaluates, checkpoints and
  // decides whether the run is over.
  virtual void on_commit(ModelVersion version) = 0;
  // The sanity check of a model about to replace `current` (StrategyBase::commit): OK, or why
  // `next` must not be committed. Default: every value finite. The runtime also bounds how
  // much the model may grow (admission.max_model_growth).
  virtual Status check_commit(const ArrayRecord& current, const ArrayRecord& next) const {
    return next.check_finite();
  }
  // The strategy refused to commit a model that failed check_commit; the previous model
  // stands. The runtime rejects the update being handled, if any, with `why`.
  virtual void on_commit_refused(const Status& why) {}
  // The run's seeded random stream for strategy decisions (client sampling).
  virtual Rng& rng() = 0;
  // Adds an event to the metrics stream (the runtime adds time fields).
  virtual void emit(Json event) = 0;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  // Name used in metrics and reports, e.g. "fedavg".
  virtual std::string name() const = 0;
  // Called once before any other event, with the initial global model (version 0).
  // Returns InvalidArgument for an unusable model (e.g. empty).
  virtual Status start(StrategyHost* host, ArrayRecord initial) = 0;
  // Whether on_update reads the delta only through fold_delta (a linear fold into a running
  // sum), so a host may hand it a streamed delta (Update::delta_source) and keep server memory
  // flat however many uploads arrive at once. Default false: the runtime materialises it.
  virtual bool accepts_streamed_delta() const { return false; }
  // Robust aggregation (group_aggregation.h): puts `group` in the update path of a strategy
  // that aggregates updates in groups (rounds, FedBuff's buffer). Called after start() and
  // before restore_state(); checks that the rule can take this strategy's groups with
  // `num_clients` clients (Krum: more than 2f + 2 updates). Unimplemented (naming the
  // strategy) for one that applies each update on its own; InvalidArgument from the check.
  virtual Status set_group_aggregation(std::shared_ptr<GroupAggregation> group,
                                       size_t num_clients) {
    return Status::unimplemented(name() + ": robust aggregation is not supported");
  }
  // A client became idle: it joined, finished a task, or came back online.
  virtual void on_client_idle(ClientId id) = 0;
  // Whether on_client_idle could do anything now. False promises that it would not, for any
  // client, until the strategy is next called about something else (an update, a lost task,
  // a timer): a host offering many clients at once stops there. Default: true.
  virtual bool wants_idle_clients() const { return true; }
  // An update arrived. A non-OK Status rejects it (wrong shape, NaN, no examples, a round
  // that already closed, ...) with the strategy's state unchanged; the runtime logs and
  // counts it.
  virtual Status on_update(Update update) = 0;
  // A dispatched task will never return (dropout, timeout, client went offline).
  virtual void on_task_lost(ClientId id, ModelVersion version) = 0;
  // A timer set through StrategyHost::set_timer fired.
  virtual void on_timer(TimerId id) = 0;
  // The runtime evaluated the current global model on its test set (with several models:
  // each one's figures and whether it has reached its target). Default: nothing; a strategy
  // that adapts to it overrides it (FedAST stops training a model that reached its target).
  virtual void on_evaluation(const EvalResult& result) {}

  // Whether the strategy can make progress with `num_clients` clients at all. A runtime
  // refuses to start a run that would certainly stall: InvalidArgument naming the parameter
  // relative to the strategy's section ("min_clients: must be <= the number of clients (20),
  // got 30"). Default: OK.
  virtual Status check_population(size_t num_clients) const { return Status(); }

  // The current global model and its version.
  virtual std::shared_ptr<const ArrayRecord> global_model() const = 0;
  virtual ModelVersion version() const = 0;

  // Checkpoints. save_state copies everything the strategy holds between events: the global
  // model and version, what the algorithm carries between commits (optimizer moments,
  // control variates) and its work in progress (an open round and its running aggregate,
  // buffered updates, which clients train from which version, timer ids) -- everything but
  // the models of tasks in flight. restore_state is called after start() and before any other
  // event and replaces that state; the runtime then reports every task that was in flight at
  // save time lost (its client's connection went with the old process), so the updates an
  // open round or a buffer already holds are kept and used. Both return Unimplemented for a
  // strategy that does not support checkpoints (the default), and restore_state returns
  // InvalidArgument / DataLoss naming a missing or mismatched entry. StrategyBase implements
  // both through one description of the state (StrategyBase::io_state, state_io.h).
  virtual Status save_state(StrategyState* out) const {
    return Status::unimplemented(name() + ": checkpoints are not supported by this strategy");
  }
  virtual Status restore_state(StrategyState state) {
    return Status::unimplemented(name() +
                                 ": resuming from a checkpoint is not supported by "
                                 "this strategy");
  }
};

}  // namespace cohort
