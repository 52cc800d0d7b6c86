// Ranks 1..N-1: train what rank 0 sends (cohort/mpi/mpi.h).
#include <chrono>
#include <cstdlib>
#include <deque>
#include <thread>

#include "cohort/core/config_record_json.h"
#include "cohort/mpi/mpi.h"
#include "mpi/message.h"
#include "mpi/transport.h"

namespace cohort::mpi {

namespace {

// Test-only fault injection: COHORT_TEST_MPI_FAULT=RANK:KIND:N makes rank RANK, at its N-th
// task, exit at once without a word (KIND exit: a crash), stop answering (hang), or return an
// Internal error (error). tests/integration/mpi_test.py uses it.
struct Fault {
  int rank = -1;
  std::string kind;
  int64_t at = 0;
};

Fault read_fault() {
  Fault f;
  const char* env = std::getenv("COHORT_TEST_MPI_FAULT");
  if (env == nullptr) return f;
  const std::string s(env);
  const size_t a = s.find(':');
  const size_t b = a == std::string::npos ? a : s.find(':', a + 1);
  if (b == std::string::npos) return f;
  f.rank = std::atoi(s.substr(0, a).c_str());
  f.kind = s.substr(a + 1, b - a - 1);
  f.at = std::atoll(s.substr(b + 1).c_str());
  return f;
}

class Worker {
 public:
  Worker(const WorkerSetup& setup, Trainer& trainer, const MpiOptions& options, int rank)
      : setup_(setup), trainer_(trainer), options_(options), rank_(rank), fault_(read_fault()) {}

  // The result message for one task message.
  std::string handle(std::string bytes) {
    MessageWriter out;
    int64_t number = -1;
    Result<sim::RemoteResult> r = train(std::move(bytes), &number);
    out.header()["number"] = number;
    if (!r.ok()) {
      write_status(out.header(), r.error());
      return out.finish();
    }
    TrainResult& tr = r->result;
    out.header()["num_examples"] = tr.num_examples;
    out.header()["steps"] = tr.steps;
    out.add_record("params", tr.params);
    write_metrics(out, "metrics", tr.metrics);
    if (r->optimizer_state) out.add_record("optimizer_state", *r->optimizer_state);
    return out.finish();  // r (and so the records) outlive it
  }

 private:
  Result<sim::RemoteResult> train(std::string bytes, int64_t* number) {
    COHORT_ASSIGN_OR_RETURN(MessageReader m, MessageReader::parse(std::move(bytes)));
    const Json& h = m.header();
    sim::RemoteJob job;
    int64_t model_id = 0;
    try {
      *number = h.at("number").get<int64_t>();
      job.number = *number;
      job.client = h.at("client").get<ClientId>();
      job.version = h.at("version").get<ModelVersion>();
      job.steps = h.at("steps").get<int64_t>();
      job.seed = h.at("seed").get<uint64_t>();
      job.config = config_record_from_json(h.at("config"));
      model_id = h.at("model_id").get<int64_t>();
    } catch (const Json::exception& e) {
      return Status::data_loss(std::string("MPI task message: ") + e.what());
    }
    // The cache first: rank 0 counts the model as held from now on, whatever happens next.
    if (m.has("model")) {
      COHORT_ASSIGN_OR_RETURN(ArrayRecord model, m.record("model"));
      models_.emplace_back(model_id, std::make_shared<const ArrayRecord>(std::move(model)));
      while (models_.size() > static_cast<size_t>(options_.models_per_rank)) models_.pop_front();
    }
    ++tasks_;
    if (fault_.rank == rank_ && fault_.at == tasks_) {
      if (fault_.kind == "exit") std::_Exit(9);
      if (fault_.kind == "hang") {
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      if (fault_.kind == "error")
        return Status::internal("injected failure (COHORT_TEST_MPI_FAULT)");
    }
    if (job.client < 0 || static_cast<size_t>(job.client) >= setup_.shards.size()) {
      return Status::internal("task " + std::to_string(job.number) + " for client " +
                              std::to_string(job.client) + ", but this rank has " +
                              std::to_string(setup_.shards.size()) + " clients");
    }
    for (const auto& [id, model] : models_) {
      if (id == model_id) job.model = model;
    }
    if (!job.model) {
      return Status::internal("task " + std::to_string(job.number) + ": model " +
                              std::to_string(model_id) + " (version " +
                              std::to_string(job.version) + ") was never sent to this rank");
    }
    if (m.has("grad_correction")) {
      COHORT_ASSIGN_OR_RETURN(ArrayRecord g, m.record("grad_correction"));
      job.grad_correction = std::make_shared<const ArrayRecord>(std::move(g));
    }
    if (m.has("optimizer_state")) {
      COHORT_ASSIGN_OR_RETURN(ArrayRecord s, m.record("optimizer_state"));
      job.optimizer_state = std::move(s);
    }
    return sim::train_job(trainer_, *setup_.shards[static_cast<size_t>(job.client)],
                          setup_.training, std::move(job));
  }

  const WorkerSetup& setup_;
  Trainer& trainer_;
  const MpiOptions& options_;
  const int rank_;
  const Fault fault_;
  int64_t tasks_ = 0;
  std::deque<std::pair<int64_t, std::shared_ptr<const ArrayRecord>>> models_;
};

}  // namespace

Status run_worker(Session& session, const Result<WorkerSetup>& setup, const MpiOptions& options) {
  Status ready = setup.status();
  std::unique_ptr<Trainer> trainer;
  if (ready.ok()) {
    Result<std::unique_ptr<Trainer>> t = setup->factory();
    if (t.ok()) {
      trainer = std::move(*t);
    } else {
      ready = t.error();
    }
  }
  MessageWriter hello;
  hello.header()["fingerprint"] = setup.ok() ? setup->fingerprint : 0;
  write_status(hello.header(), ready);
  COHORT_RETURN_IF_ERROR(send_bytes(0, kHello, hello.finish()));
  std::optional<Worker> worker;
  if (ready.ok()) worker.emplace(*setup, *trainer, options, session.rank());
  Backoff backoff;
  for (;;) {
    COHORT_ASSIGN_OR_RETURN(std::optional<Incoming> in, poll(0));
    if (!in) {
      std::this_thread::sleep_for(backoff.next());
      continue;
    }
    backoff.reset();
    if (in->tag == kStop) return send_bytes(0, kStopped, std::string());
    if (in->tag != kTask) continue;
    MessageWriter refused;
    std::string reply = worker ? worker->handle(std::move(in->bytes))
                               : (write_status(refused.header(), ready), refused.finish());
    COHORT_RETURN_IF_ERROR(send_bytes(0, kResult, reply));
  }
}

}  // namespace cohort::mpi
