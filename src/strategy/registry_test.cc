#include "cohort/strategy/registry.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "cohort/strategy/fedavg.h"

namespace cohort {
namespace {

TEST(RegistryTest, BuildsFedAvgWithParams) {
  ConfigRecord p = {{"fraction", 0.25}, {"min_clients", int64_t{3}}, {"server_lr", int64_t{1}}};
  auto s = make_strategy("fedavg", p);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ((*s)->name(), "fedavg");
  auto* f = dynamic_cast<FedAvg*>(s->get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->round_options().fraction, 0.25);
  EXPECT_EQ(f->round_options().min_clients, 3);
}

TEST(RegistryTest, UnknownStrategyListsKnownOnes) {
  auto s = make_strategy("fedfoo", {});
  ASSERT_FALSE(s.ok());
  std::string known;
  for (const auto& n : strategy_names()) known += (known.empty() ? "" : ", ") + n;
  EXPECT_EQ(s.error().message(), "strategy.name: unknown strategy 'fedfoo' (known: " + known + ")");
  // The list is sorted and holds every family.
  for (const char* name : {"fedavg", "fedprox", "fedadam", "scaffold", "fedasync", "fedbuff"}) {
    EXPECT_NE(known.find(name), std::string::npos) << name;
  }
  const std::vector<std::string> names = strategy_names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST(RegistryTest, BuildsTheSynchronousFamilyByName) {
  for (const char* name :
       {"fedadagrad", "fedadam", "fedavg", "fedavgm", "fednova", "fedprox", "fedyogi"}) {
    auto s = make_strategy(name, {{"fraction", 0.5}, {"min_clients", int64_t{2}}});
    ASSERT_TRUE(s.ok()) << name << ": " << s.error().to_string();
    EXPECT_EQ((*s)->name(), name);
    auto* r = dynamic_cast<RoundStrategy*>(s->get());
    ASSERT_NE(r, nullptr) << name;
    EXPECT_EQ(r->round_options().fraction, 0.5) << name;
    EXPECT_EQ(r->round_options().min_clients, 2) << name;
  }
}

TEST(RegistryTest, BadParamsNameTheKey) {
  auto range = make_strategy("fedavg", {{"fraction", 2.0}});
  EXPECT_EQ(range.error().message(), "strategy.fraction: must be in (0, 1], got 2");
  auto type = make_strategy("fedavg", {{"min_clients", std::string("many")}});
  EXPECT_EQ(type.error().message(), "strategy.min_clients: expected an integer, got 'many'");
  auto unknown = make_strategy("fedavg", {{"fractoin", 0.5}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message(),
            "strategy.fractoin: unknown parameter for fedavg (known: fraction, lr_decay_rounds, "
            "lr_min_factor, "
            "lr_schedule, lr_warmup_rounds, min_clients, "
            "round_deadline_s, server_lr)");
  auto neg = make_strategy("fedavg", {{"min_clients", int64_t{0}}});
  EXPECT_EQ(neg.error().message(), "strategy.min_clients: must be >= 1, got 0");
}

}  // namespace
}  // namespace cohort
