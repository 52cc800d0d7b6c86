// Robust aggregation and attacks in the simulator: attackers chosen and recorded, a scaling
// attack that ruins plain FedAvg is absorbed by a robust rule while the attackers' trust
// falls below every honest client's, colluding attacks rewrite the group, label flipping
// keeps features, contributions single out a free-rider and tie duplicates, and everything
// stays deterministic for any thread count.
#include <gtest/gtest.h>

#include <algorithm>

#include "cohort/sim/simulator.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/fedbuff.h"
#include "testing/fake_trainer.h"
#include "testing/sim_population.h"

namespace cohort::sim {
namespace {

using testing::line_dataset;
using testing::quadratic_factory;

std::vector<SimClient> population(std::shared_ptr<const Dataset> d, int64_t count, int64_t per) {
  return testing::interleaved_population(d, count, per);
}

SimOptions options(int64_t rounds, size_t threads = 2) {
  SimOptions o;
  o.admission.warmup_bound = "none";
  o.admission.norm_policy = "off";  // let attacks through to the rule
  o.run.rounds = rounds;
  o.run.threads = threads;
  o.run.seed = 3;
  o.training.lr = 0.5;
  o.training.local_steps = 1;
  return o;
}

std::optional<RobustOptions> rule(const std::string& name) {
  RobustOptions r;
  r.rule.rule = name;
  r.rule.beta = 0.2;
  return r;
}

Result<SimSummary> run(SimOptions o, int64_t clients = 10, int64_t per = 4) {
  auto d = line_dataset(clients * per);
  Simulator sim(std::move(o), quadratic_factory(2), population(d, clients, per), Shard::all(d),
                nullptr);
  FedAvg fedavg;
  return sim.run(fedavg);
}

TEST(RobustnessSimTest, NoiseAttackIsAbsorbedAndAttackersLoseTrust) {
  SimOptions base = options(15);
  base.attack.kind = "gaussian";
  base.attack.sigma = 30;
  base.attack.fraction = 0.2;

  auto clean = run(options(15));
  auto attacked = run(base);
  base.robust = rule("median");
  auto defended = run(base);
  ASSERT_TRUE(clean.ok() && attacked.ok() && defended.ok()) << defended.error().to_string();

  ASSERT_EQ(attacked->attackers.size(), 2u);
  EXPECT_EQ(defended->attackers, attacked->attackers);
  // Plain FedAvg is thrown far off; the median lands near the attack-free model.
  EXPECT_GT(attacked->final_loss, 100 * clean->final_loss + 1.0);
  EXPECT_LT(defended->final_loss, clean->final_loss + 5.0);
  // Every attacker's trust is below every honest client's.
  ASSERT_EQ(defended->trust.size(), 10u);
  double worst_honest = 1.0, best_attacker = 0.0;
  for (const auto& [c, t] : defended->trust) {
    const bool bad = std::count(defended->attackers.begin(), defended->attackers.end(), c) > 0;
    (bad ? best_attacker : worst_honest) =
        bad ? std::max(best_attacker, t) : std::min(worst_honest, t);
  }
  EXPECT_LT(best_attacker, worst_honest);
  EXPECT_EQ(defended->robust_rule.rfind("median", 0), 0u) << defended->robust_rule;
}

TEST(RobustnessSimTest, AdmissionRejectionsLowerTrust) {
  // Admission's norm bound (on by default) rejects the noise before the rule sees it: the
  // attackers' trust still falls, as for updates the rule discarded.
  SimOptions o = options(12);
  o.admission.norm_policy = "reject";
  o.attack.kind = "gaussian";
  o.attack.sigma = 30;
  o.attack.clients = {3, 8};
  o.robust = rule("median");
  auto r = run(o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_GT(r->rejected, 0);
  ASSERT_EQ(r->trust.size(), 10u);
  for (const auto& [c, t] : r->trust) {
    if (c == 3 || c == 8) {
      EXPECT_LT(t, 0.25) << "attacker " << c;
    } else {
      EXPECT_GT(t, 0.5) << "client " << c;
    }
  }
}

TEST(RobustnessSimTest, AttackStartsAtItsTime) {
  SimOptions o = options(6);
  o.attack.kind = "sign_flip";
  o.attack.clients = {0, 1};
  o.attack.start = 1e9;  // never reached: nobody attacks
  auto late = run(o);
  auto clean = run(options(6));
  ASSERT_TRUE(late.ok() && clean.ok());
  EXPECT_EQ(late->model_hash, clean->model_hash);
  EXPECT_EQ(late->attackers, (std::vector<ClientId>{0, 1}));
}

TEST(RobustnessSimTest, ColludingAttacksRewriteTheGroup) {
  SimOptions o = options(8);
  o.attack.kind = "ipm";
  o.attack.epsilon = 5.0;  // -5 x the honest mean: against a plain mean it reverses progress
  o.attack.fraction = 0.3;
  auto clean = run(options(8));
  auto attacked = run(o);
  ASSERT_TRUE(clean.ok() && attacked.ok()) << attacked.error().to_string();
  EXPECT_NE(attacked->model_hash, clean->model_hash);
  EXPECT_GT(attacked->final_loss, clean->final_loss);

  o.attack.kind = "alie";
  o.robust = rule("median");
  auto alie = run(o);
  ASSERT_TRUE(alie.ok()) << alie.error().to_string();
  EXPECT_NE(alie->model_hash, clean->model_hash);
}

TEST(RobustnessSimTest, LabelFlipKeepsFeatures) {
  // The quadratic trainer ignores labels: flipped copies of the attackers' examples must train
  // exactly like the originals.
  SimOptions o = options(4);
  o.attack.kind = "label_flip";
  o.attack.fraction = 0.5;
  auto flipped = run(o);
  auto clean = run(options(4));
  ASSERT_TRUE(flipped.ok() && clean.ok()) << flipped.error().to_string();
  EXPECT_EQ(flipped->attackers.size(), 5u);
  EXPECT_EQ(flipped->model_hash, clean->model_hash);
}

TEST(RobustnessSimTest, ContributionSinglesOutAFreeRiderAndTiesDuplicates) {
  // Four clients: 0 and 1 distinct, 2 and 3 hold the same examples, 1 is a free-rider.
  auto d = line_dataset(12);
  auto clients = population(d, 4, 3);
  clients[3].shard = clients[2].shard;
  SimOptions o = options(3);
  o.attack.kind = "free_rider";
  o.attack.clients = {1};
  o.contribution.options.method = "shapley";
  o.contribution.utility = "loss";
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->contribution_method, "shapley");
  ASSERT_EQ(r->contribution.size(), 4u);
  const auto& v = r->contribution;
  EXPECT_NEAR(v.at(2), v.at(3), 1e-9 * (1 + std::abs(v.at(2))));
  EXPECT_LT(v.at(1), v.at(0));
  EXPECT_LT(v.at(1), v.at(2));
  EXPECT_TRUE(r->trust.empty());  // no robust: section, no trust scores reported
}

TEST(RobustnessSimTest, DeterministicForAnyThreadCount) {
  SimOptions o = options(6, 1);
  o.attack.kind = "alie";
  o.attack.fraction = 0.2;
  o.robust = rule("geometric_median");
  o.robust->rule.bucketing = 2;
  auto one = run(o);
  o.run.threads = 3;
  auto three = run(o);
  ASSERT_TRUE(one.ok() && three.ok()) << one.error().to_string();
  EXPECT_EQ(one->model_hash, three->model_hash);
  EXPECT_EQ(one->trust, three->trust);
}

TEST(RobustnessSimTest, RefusesWhatCannotWork) {
  SimOptions o = options(2);
  o.robust = rule("krum");
  o.robust->rule.f = 4;  // 10 clients: needs n > 10
  auto r = run(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("2f + 2"), std::string::npos) << r.error().message();

  o = options(2);
  o.robust = rule("median");
  auto d = line_dataset(8);
  Simulator sim(o, quadratic_factory(2), population(d, 4, 2), Shard::all(d), nullptr);
  FedBuffOptions fb;
  fb.buffer_size = 2;
  FedBuff fedbuff(fb);
  EXPECT_TRUE(sim.run(fedbuff).ok());  // fedbuff's buffer is a group
}

}  // namespace
}  // namespace cohort::sim
