// SCAFFOLD (Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for Federated
// Learning", ICML 2020, arXiv:1910.06378; docs/strategies.md, "scaffold" and its
// "Client-state rule"): FedAvg with control variates that correct client drift on
// heterogeneous data.
//
// The server keeps the global model x and a control variate c (zero at start, the model's
// layout); every client i keeps its own c_i (zero before its first task). A round samples
// clients S like FedAvg; each task carries x, Task::server_state = c (one shared record,
// never copied per task) and config["client_state"] = "scaffold", so the client's runtime
// trains with every step w <- w - lr (g(w) - c_i + c) and sends back, besides
// Delta_i = x - y_i, the control change Delta c_i = c_i+ - c_i of option II
// (cohort/trainer/control_variates.h). As updates arrive they are folded into two running
// sums (server memory: two model-sized accumulators, whatever |S|). At round close, over the
// received updates R:
//     x <- x - server_lr * mean_{i in R} Delta_i
//     c <- c + (1 / N) * sum_{i in R} Delta c_i   =  c + (|R| / N) mean_{i in R} Delta c_i
// with N = host->num_clients(), every client the runtime knows, participating or not (the
// paper divides by the total number of clients, so c tracks mean_i c_i over all of them).
//
// Weighting of the model mean: `weighting: uniform` (default) is the paper's
// x + eta_g (1/|S|) sum Delta y_i: SCAFFOLD's analysis and its control-variate algebra
// (c = mean c_i) are for the uniform mean, so it is the default. `weighting: examples`
// weighs Delta_i by n_i / sum n as FedAvg and the NIID-Bench code do (equal to eta_g = 1 with
// example weights); the c update is uniform either way, as in both the paper and NIID-Bench.
//
// Parameters: fraction, min_clients, round_deadline_s (RoundOptions); server_lr (eta_g > 0,
// default 1.0); weighting ("uniform" | "examples", default "uniform").
// Updates must carry a state_delta with the model's layout and finite values; otherwise they
// are rejected (InvalidArgument naming the client) and leave the strategy unchanged.
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <memory>
#include <string>

#include "cohort/strategy/registry.h"
#include "cohort/strategy/round_strategy.h"

namespace cohort {

struct ScaffoldOptions {
  RoundOptions round;
  // Global learning rate eta_g on the mean model delta.
  double server_lr = 1.0;
  // Weigh the mean model delta by the clients' example counts (else uniformly).
  bool weight_by_examples = false;
};

class Scaffold : public RoundStrategy {
 public:
  explicit Scaffold(ScaffoldOptions options = {});
  // Reads the parameters listed above; InvalidArgument naming the key for a bad value.
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "scaffold"; }

  // The server control variate c (null before start()). Replaced, never modified in place, at
  // each round close, so tasks of earlier rounds keep the c they were sent.
  std::shared_ptr<const ArrayRecord> control_variate() const { return c_; }

 protected:
  Status on_start() override;
  // Checkpoints: the round state, the control variate "c" and the round's sums.
  Status io_state(StateIO& io) override;
  // RoundStrategy's sampling, plus server_state = c and the scaffold client-state rule.
  std::vector<Task> configure_train(int64_t round, const IdleClients& idle) override;
  void begin_round(int64_t round) override;
  Status accumulate(const Update& update) override;
  Result<std::optional<ArrayRecord>> aggregate_train(const RoundReport& report) override;

 private:
  ScaffoldOptions options_;
  std::shared_ptr<const ArrayRecord> c_;
  ArrayRecord sum_delta_;  // running sum of w_i * Delta_i (w_i = 1, or n_i)
  ArrayRecord sum_dc_;     // running sum of Delta c_i
  double weight_sum_ = 0;  // running sum of w_i
  int64_t received_ = 0;   // updates folded in this round
};

}  // namespace cohort
