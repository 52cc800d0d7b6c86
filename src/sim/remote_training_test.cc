// The RemoteTraining seam (cohort/sim/remote_training.h): a run whose tasks train elsewhere --
// here on threads of a fake remote with a fresh trainer per job, as a worker process would --
// ends with the same model as the simulator's own pool, and options the remote path cannot
// honour are refused naming them.
#include "cohort/sim/remote_training.h"

#include <atomic>
#include <future>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/sim/simulator.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/fedbuff.h"
#include "testing/fake_trainer.h"

namespace cohort::sim {
namespace {

using testing::line_dataset;
using testing::quadratic_factory;

// Trains every job on its own thread with its own trainer over the same clients' shards.
class ThreadRemote final : public RemoteTraining {
 public:
  ThreadRemote(TrainerFactory factory, std::vector<SimClient> clients, TrainConfig training,
               Status fail_with = Status())
      : factory_(std::move(factory)),
        clients_(std::move(clients)),
        training_(std::move(training)),
        fail_with_(std::move(fail_with)) {}
  std::string name() const override { return "test ranks"; }
  std::future<Result<RemoteResult>> submit(RemoteJob job) override {
    ++jobs;
    return std::async(std::launch::async,
                      [this, job = std::move(job)]() mutable -> Result<RemoteResult> {
                        if (!fail_with_.ok()) return fail_with_;
                        COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> t, factory_());
                        return train_job(*t, clients_[static_cast<size_t>(job.client)].shard,
                                         training_, std::move(job));
                      });
  }
  std::atomic<int> jobs{0};

 private:
  TrainerFactory factory_;
  std::vector<SimClient> clients_;
  TrainConfig training_;
  Status fail_with_;
};

std::vector<SimClient> clients(std::shared_ptr<const Dataset> d) {
  std::vector<SimClient> out;
  for (int64_t k = 0; k < 6; ++k) {
    SimClient c;
    c.shard.data = d;
    for (int64_t i = 0; i <= k; ++i) c.shard.indices.push_back(k * 6 + i);
    c.device = DeviceProfile{5.0 + static_cast<double>(k), 1e6, 1e6, 0.01 * static_cast<double>(k)};
    out.push_back(std::move(c));
  }
  return out;
}

SimOptions options() {
  SimOptions o;
  o.admission.warmup_bound = "none";
  o.run.rounds = 6;
  o.run.threads = 2;
  o.run.seed = 11;
  o.training.lr = 0.3;
  o.training.local_steps = 3;
  return o;
}

template <typename MakeStrategy>
void expect_same_model(MakeStrategy make) {
  auto d = line_dataset(36);
  const TrainerFactory factory = quadratic_factory(2, /*noise=*/0.5);  // noise: seeded per task
  Simulator local(options(), factory, clients(d), Shard::all(d), nullptr);
  auto s1 = make();
  Result<SimSummary> a = local.run(*s1);
  ASSERT_TRUE(a.ok()) << a.error().to_string();

  auto remote = std::make_shared<ThreadRemote>(factory, clients(d), options().training);
  SimOptions o = options();
  o.remote_training = remote;
  Simulator far(o, factory, clients(d), Shard::all(d), nullptr);
  auto s2 = make();
  Result<SimSummary> b = far.run(*s2);
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  EXPECT_EQ(a->model_hash, b->model_hash);
  EXPECT_EQ(a->updates, b->updates);
  EXPECT_EQ(a->rounds, b->rounds);
  EXPECT_GE(remote->jobs.load(), b->updates);
  EXPECT_GT(b->updates, 0);
}

TEST(RemoteTrainingTest, FedAvgEndsWithTheModelOfTheLocalPool) {
  expect_same_model([] {
    return std::make_unique<FedAvg>(FedAvgOptions{.round = {.fraction = 0.5, .min_clients = 2}});
  });
}

TEST(RemoteTrainingTest, FedBuffEndsWithTheModelOfTheLocalPool) {
  expect_same_model([] {
    return std::make_unique<FedBuff>(FedBuffOptions{.buffer_size = 2});
  });
}

Status run_with(SimOptions o, Status fail_with = Status()) {
  auto d = line_dataset(36);
  o.remote_training = std::make_shared<ThreadRemote>(quadratic_factory(2), clients(d), o.training,
                                                     std::move(fail_with));
  Simulator sim(o, quadratic_factory(2), clients(d), Shard::all(d), nullptr);
  FedAvg fedavg;
  return sim.run(fedavg).status();
}

TEST(RemoteTrainingTest, RefusesWhatItCannotDoNamingTheOption) {
  SimOptions o = options();
  o.compression.uplink = "int8";
  Status s = run_with(o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("compression.uplink: 'int8' is not supported when training runs on "
                             "test ranks"),
            std::string::npos)
      << s.message();
  o = options();
  o.compression.downlink = "fp16";
  EXPECT_NE(run_with(o).message().find("compression.downlink"), std::string::npos);
  o = options();
  o.attack.kind = "sign_flip";
  o.attack.fraction = 0.5;
  s = run_with(o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("attack.kind"), std::string::npos) << s.message();
}

TEST(RemoteTrainingTest, ARemoteFailureEndsTheRunNamingTheClient) {
  Status s = run_with(options(), Status::internal("on MPI rank 2: disk on fire"));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("training client"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("on MPI rank 2: disk on fire"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace cohort::sim
