#include "simulate_mpi.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "commands.h"
#include "common.h"

#ifdef COHORT_WITH_MPI
#include "cohort/mpi/mpi.h"
#endif

namespace cohort::cli {

int MpiRun::launched_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    if (const char* v = std::getenv(var)) return std::max(1, std::atoi(v));
  }
  return 1;
}

#ifndef COHORT_WITH_MPI

struct MpiRun::State {};
MpiRun::MpiRun() = default;
MpiRun::~MpiRun() = default;

Status MpiRun::init(double /*timeout_s*/) {
  return Status::failed_precondition(
      "this cohort was built without MPI (CMake found no MPI; install libopenmpi-dev, e.g. with "
      "scripts/install-deps.sh, and rebuild), so `cohort simulate` cannot spread a run over the " +
      std::to_string(launched_size()) + " processes mpirun started; run it without mpirun");
}
int MpiRun::serve(const Result<SimulationConfig>& /*config*/) { return kExitError; }
Result<std::shared_ptr<sim::RemoteTraining>> MpiRun::start(const SimulationConfig&,
                                                           const Scenario&) {
  return Status::internal("MPI is not built in");
}
Status MpiRun::finish(const std::string&) { return Status(); }

#else

namespace {

// mpirun ends the job with SIGTERM when a rank dies: rank 0 says so before it goes (mpirun's own
// message names the process that died: "Process name: [[job,1],RANK]").
void on_sigterm(int) {
  static const char kMsg[] =
      "cohort: error: rank 0 got SIGTERM: mpirun is ending the job (a rank died or the job was "
      "killed; mpirun's message names the process, as [[job,1],RANK])\n";
  ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  (void)ignored;
  _exit(kExitError);
}

std::vector<const Shard*> shards_of(const Scenario& s) {
  std::vector<const Shard*> shards;
  for (const sim::SimClient& c : *s.clients) shards.push_back(&c.shard);
  return shards;
}

uint64_t fingerprint(const SimulationConfig& config, const Scenario& s) {
  return mpi::scenario_fingerprint(to_json(config).dump(), shards_of(s));
}

}  // namespace

struct MpiRun::State {
  std::unique_ptr<mpi::Session> session;
  std::shared_ptr<mpi::Coordinator> coordinator;
  bool workers_stopped = false;
  bool abort = false;  // a worker did not acknowledge the stop
};

MpiRun::MpiRun() : state_(std::make_unique<State>()) {}

MpiRun::~MpiRun() {
  if (!state_->session) return;
  if (state_->abort) {
    std::fprintf(stderr, "cohort: error: aborting the MPI job\n");
    std::fflush(stderr);
    state_->session->abort(exit_code() != 0 ? exit_code() : kExitError);
  }
  if (rank_ == 0 && !state_->workers_stopped) {
    Status s = state_->coordinator ? state_->coordinator->shutdown()
                                   : mpi::stop_workers(*state_->session, timeout_s_);
    if (!s.ok()) {
      std::fprintf(stderr, "cohort: error: %s; aborting the MPI job\n", s.message().c_str());
      std::fflush(stderr);
      state_->session->abort(exit_code() != 0 ? exit_code() : kExitError);
    }
  }
  state_->coordinator.reset();
  state_->session.reset();  // MPI_Finalize
}

Status MpiRun::init(double timeout_s) {
  timeout_s_ = timeout_s;
  COHORT_RETURN_IF_ERROR((mpi::MpiOptions{.timeout_s = timeout_s}.validate()));
  COHORT_ASSIGN_OR_RETURN(state_->session, mpi::Session::init());
  rank_ = state_->session->rank();
  size_ = state_->session->size();
  if (rank_ == 0) std::signal(SIGTERM, on_sigterm);
  return Status();
}

int MpiRun::serve(const Result<SimulationConfig>& config) {
  Result<mpi::WorkerSetup> setup = config.status();
  Result<Scenario> scenario = Status::internal("no scenario");
  if (config.ok()) {
    scenario = build_scenario(*config);
    if (!scenario.ok()) {
      setup = scenario.error();
    } else {
      setup = mpi::WorkerSetup{.factory = scenario->factory,
                               .shards = shards_of(*scenario),
                               .training = config->training,
                               .fingerprint = fingerprint(*config, *scenario)};
    }
  }
  Status s = mpi::run_worker(*state_->session, setup, mpi::MpiOptions{.timeout_s = timeout_s_});
  if (s.ok()) return kExitOk;
  std::fprintf(stderr, "cohort: error: MPI rank %d: %s\n", rank_, s.message().c_str());
  return kExitError;
}

Result<std::shared_ptr<sim::RemoteTraining>> MpiRun::start(const SimulationConfig& config,
                                                           const Scenario& scenario) {
  COHORT_ASSIGN_OR_RETURN(
      state_->coordinator,
      mpi::Coordinator::start(*state_->session, mpi::MpiOptions{.timeout_s = timeout_s_},
                              fingerprint(config, scenario)));
  return std::shared_ptr<sim::RemoteTraining>(state_->coordinator);
}

Status MpiRun::finish(const std::string& out_dir) {
  if (!state_->coordinator) return Status();
  state_->workers_stopped = true;
  Status stopped = state_->coordinator->shutdown();
  if (!stopped.ok()) {
    state_->abort = true;  // the destructor aborts the job
    return stopped;
  }
  const Json t = state_->coordinator->traffic();
  if (!out_dir.empty()) COHORT_RETURN_IF_ERROR(write_json_file(out_dir + "/mpi.json", t));
  const auto mb = [](const Json& v) {
    return v.get<double>() / 1e6;
  };
  std::printf(
      "mpi: %d ranks, %lld tasks trained on ranks 1..%d; models %.2f MB for %lld versions "
      "(%.3f MB per version, at most %lld sends each), tasks %.2f MB, results %.2f MB\n",
      size_, static_cast<long long>(t["tasks"].get<int64_t>()), size_ - 1, mb(t["model_bytes"]),
      static_cast<long long>(t["versions_sent"].get<int64_t>()), mb(t["model_bytes_per_version"]),
      static_cast<long long>(t["max_sends_per_version"].get<int64_t>()), mb(t["task_bytes"]),
      mb(t["result_bytes"]));
  return Status();
}

#endif

}  // namespace cohort::cli
