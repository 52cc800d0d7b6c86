#include "cohort/attack/attack.h"

#include <cmath>
#include <numeric>

#include <gtest/gtest.h>

namespace cohort::attack {
namespace {

AttackOptions with_kind(const std::string& kind) {
  AttackOptions o;
  o.kind = kind;
  return o;
}

std::vector<ClientId> population(int64_t n) {
  std::vector<ClientId> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

double norm_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

// ---------------------------------------------------------------- kinds and options

TEST(AttackKind, ParsesEveryNameAndBack) {
  for (const char* name :
       {"none", "sign_flip", "scaling", "gaussian", "label_flip", "alie", "ipm", "free_rider"}) {
    Result<Kind> k = parse_kind(name);
    ASSERT_TRUE(k.ok()) << name;
    EXPECT_EQ(kind_name(*k), name);
  }
}

TEST(AttackKind, UnknownNameListsTheKnownOnes) {
  Result<Kind> k = parse_kind("flip");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(k.error().message(),
            "attack.kind: unknown 'flip' (known: none, sign_flip, scaling, gaussian, label_flip, "
            "alie, ipm, free_rider)");
  AttackOptions o = with_kind("flip");
  EXPECT_EQ(check_options(o).message(), k.error().message());
}

TEST(AttackKind, LocalAndColluding) {
  for (Kind k : {Kind::kSignFlip, Kind::kScaling, Kind::kGaussian, Kind::kFreeRider}) {
    EXPECT_TRUE(is_local(k)) << kind_name(k);
    EXPECT_FALSE(is_colluding(k)) << kind_name(k);
  }
  for (Kind k : {Kind::kAlie, Kind::kIpm}) {
    EXPECT_FALSE(is_local(k)) << kind_name(k);
    EXPECT_TRUE(is_colluding(k)) << kind_name(k);
  }
  for (Kind k : {Kind::kNone, Kind::kLabelFlip}) {
    EXPECT_FALSE(is_local(k)) << kind_name(k);
    EXPECT_FALSE(is_colluding(k)) << kind_name(k);
  }
}

TEST(AttackOptions, DefaultsAreValid) {
  EXPECT_TRUE(check_options(AttackOptions()).ok());
  AttackOptions o = with_kind("alie");
  o.fraction = 1;
  o.clients = {3, 1, 2};
  o.free_rider = "noise";
  EXPECT_TRUE(check_options(o).ok());
}

TEST(AttackOptions, ErrorsNameTheKey) {
  const double nan = std::nan("");
  const double inf = HUGE_VAL;
  struct Case {
    void (*set)(AttackOptions&, double);
    double value;
    const char* message;
  };
  const Case cases[] = {
      {[](AttackOptions& o, double v) {
         o.fraction = v;
       },
       1.5, "attack.fraction: must be in [0, 1], got 1.5"},
      {[](AttackOptions& o, double v) {
         o.fraction = v;
       },
       -0.1, "attack.fraction: must be in [0, 1], got -0.1"},
      {[](AttackOptions& o, double v) {
         o.fraction = v;
       },
       nan, "attack.fraction: must be in [0, 1], got nan"},
      {[](AttackOptions& o, double v) {
         o.start = v;
       },
       -1, "attack.start: must be >= 0, got -1"},
      {[](AttackOptions& o, double v) {
         o.start = v;
       },
       inf, "attack.start: must be >= 0, got inf"},
      {[](AttackOptions& o, double v) {
         o.scale = v;
       },
       -2, "attack.scale: must be >= 0, got -2"},
      {[](AttackOptions& o, double v) {
         o.scale = v;
       },
       inf, "attack.scale: must be >= 0, got inf"},
      {[](AttackOptions& o, double v) {
         o.sigma = v;
       },
       0, "attack.sigma: must be > 0, got 0"},
      {[](AttackOptions& o, double v) {
         o.sigma = v;
       },
       nan, "attack.sigma: must be > 0, got nan"},
      {[](AttackOptions& o, double v) {
         o.z = v;
       },
       -0.5, "attack.z: must be >= 0, got -0.5"},
      {[](AttackOptions& o, double v) {
         o.z = v;
       },
       inf, "attack.z: must be >= 0, got inf"},
      {[](AttackOptions& o, double v) {
         o.epsilon = v;
       },
       0, "attack.epsilon: must be > 0, got 0"},
      {[](AttackOptions& o, double v) {
         o.epsilon = v;
       },
       -inf, "attack.epsilon: must be > 0, got -inf"},
  };
  for (const Case& c : cases) {
    AttackOptions o = with_kind("sign_flip");
    c.set(o, c.value);
    Status s = check_options(o);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(s.message(), c.message);
  }
}

TEST(AttackOptions, DuplicateClientAndFreeRiderMode) {
  AttackOptions o = with_kind("scaling");
  o.clients = {5, 3, 1, 3};
  EXPECT_EQ(check_options(o).message(), "attack.clients: client 3 listed twice");
  o.clients = {};
  o.free_rider = "copy";
  EXPECT_EQ(check_options(o).message(),
            "attack.free_rider: unknown value 'copy' (known: zero, noise)");
}

// ---------------------------------------------------------------- choosing attackers

TEST(ChooseAttackers, NoneChoosesNobody) {
  AttackOptions o;
  o.fraction = 0.5;
  Result<std::vector<ClientId>> a = choose_attackers(o, population(10), 1);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->empty());
}

TEST(ChooseAttackers, FractionRoundsAndIsAscendingDistinctMembers) {
  const std::vector<ClientId> ids = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  AttackOptions o = with_kind("sign_flip");
  // 0.25 * 10 = 2.5 rounds (half away from zero) to 3; 0.24 * 10 = 2.4 to 2; 0.26 to 3.
  for (const auto& [fraction, expected] : std::vector<std::pair<double, size_t>>{
           {0.0, 0}, {0.04, 0}, {0.05, 1}, {0.24, 2}, {0.25, 3}, {0.26, 3}, {1.0, 10}}) {
    o.fraction = fraction;
    Result<std::vector<ClientId>> a = choose_attackers(o, ids, 7);
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    EXPECT_EQ(a->size(), expected) << fraction;
    EXPECT_TRUE(std::is_sorted(a->begin(), a->end()));
    EXPECT_EQ(std::adjacent_find(a->begin(), a->end()), a->end());
    for (ClientId c : *a) EXPECT_TRUE(c >= 10 && c <= 19) << c;
  }
}

TEST(ChooseAttackers, DeterministicForASeedAndVariesWithIt) {
  AttackOptions o = with_kind("gaussian");
  o.fraction = 0.2;
  const std::vector<ClientId> ids = population(100);
  Result<std::vector<ClientId>> a = choose_attackers(o, ids, 42);
  Result<std::vector<ClientId>> b = choose_attackers(o, ids, 42);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 20u);
  EXPECT_EQ(*a, *b);
  int differing = 0;
  for (uint64_t seed = 43; seed < 53; ++seed) {
    Result<std::vector<ClientId>> c = choose_attackers(o, ids, seed);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->size(), 20u);
    differing += *c != *a;
  }
  EXPECT_EQ(differing, 10);  // C(100, 20) sets: a collision would be astronomically unlikely
}

TEST(ChooseAttackers, ExplicitListIsSortedAndChecked) {
  AttackOptions o = with_kind("alie");
  o.clients = {4, 0, 2};
  o.fraction = 0.9;  // ignored: the list wins
  Result<std::vector<ClientId>> a = choose_attackers(o, population(5), 1);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<ClientId>{0, 2, 4}));

  o.clients = {1, 7};
  a = choose_attackers(o, population(5), 1);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.error().message(), "attack.clients: client 7 is not in the population");

  o.clients = {1, 1};
  a = choose_attackers(o, population(5), 1);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().message(), "attack.clients: client 1 listed twice");
}

TEST(ChooseAttackers, InvalidOptionsAreErrors) {
  AttackOptions o = with_kind("ipm");
  o.fraction = 2;
  Result<std::vector<ClientId>> a = choose_attackers(o, population(5), 1);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().message(), "attack.fraction: must be in [0, 1], got 2");
}

TEST(ChooseAttackers, EmptyPopulation) {
  AttackOptions o = with_kind("ipm");
  o.fraction = 0.5;
  Result<std::vector<ClientId>> a = choose_attackers(o, {}, 1);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->empty());
}

// ---------------------------------------------------------------- local attacks

TEST(ApplyLocal, SignFlipDefaultAndScaled) {
  AttackOptions o = with_kind("sign_flip");
  std::vector<float> v = {1.0f, -2.0f, 0.5f, 0.0f};
  ASSERT_TRUE(apply_local(o, Kind::kSignFlip, v, 1).ok());
  EXPECT_EQ(v, (std::vector<float>{-1.0f, 2.0f, -0.5f, 0.0f}));
  o.scale = 3;
  ASSERT_TRUE(apply_local(o, Kind::kSignFlip, v, 1).ok());
  EXPECT_EQ(v, (std::vector<float>{3.0f, -6.0f, 1.5f, 0.0f}));
}

TEST(ApplyLocal, ScalingDefaultAndScaled) {
  AttackOptions o = with_kind("scaling");
  std::vector<float> v = {1.0f, -2.0f, 0.25f};
  ASSERT_TRUE(apply_local(o, Kind::kScaling, v, 1).ok());
  EXPECT_EQ(v, (std::vector<float>{10.0f, -20.0f, 2.5f}));
  o.scale = 0.5;
  ASSERT_TRUE(apply_local(o, Kind::kScaling, v, 1).ok());
  EXPECT_EQ(v, (std::vector<float>{5.0f, -10.0f, 1.25f}));
}

TEST(ApplyLocal, GaussianIsSeededAndHasTheRightMoments) {
  AttackOptions o = with_kind("gaussian");
  o.sigma = 2.0;
  const size_t n = 200000;
  std::vector<float> a(n, 5.0f), b(n, -1.0f), c(n, 0.0f);
  ASSERT_TRUE(apply_local(o, Kind::kGaussian, a, 123).ok());
  ASSERT_TRUE(apply_local(o, Kind::kGaussian, b, 123).ok());
  ASSERT_TRUE(apply_local(o, Kind::kGaussian, c, 124).ok());
  EXPECT_EQ(a, b);  // the input does not matter, the seed does
  EXPECT_NE(a, c);
  double sum = 0, sq = 0;
  for (float x : a) {
    sum += x;
    sq += static_cast<double>(x) * x;
  }
  const double mean = sum / n;
  const double sd = std::sqrt(sq / n - mean * mean);
  // Standard errors: sigma / sqrt(n) = 0.0045 for the mean, about 0.0032 for the std.
  EXPECT_NEAR(mean, 0.0, 0.025);
  EXPECT_NEAR(sd, 2.0, 0.02);
}

TEST(ApplyLocal, FreeRiderZero) {
  AttackOptions o = with_kind("free_rider");
  std::vector<float> v = {1.0f, -2.0f, 3.0f};
  ASSERT_TRUE(apply_local(o, Kind::kFreeRider, v, 9).ok());
  EXPECT_EQ(v, (std::vector<float>{0.0f, 0.0f, 0.0f}));
}

TEST(ApplyLocal, FreeRiderNoiseKeepsTheNorm) {
  AttackOptions o = with_kind("free_rider");
  o.free_rider = "noise";
  std::vector<float> v(10001);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::sin(0.1 * i)) * 0.01f;
  const std::vector<float> original = v;
  const double before = norm_of(v);
  ASSERT_TRUE(apply_local(o, Kind::kFreeRider, v, 5).ok());
  EXPECT_NEAR(norm_of(v), before, 1e-5 * before);
  // Noise, not the update: nearly orthogonal to it.
  double dot = 0;
  for (size_t i = 0; i < v.size(); ++i) dot += static_cast<double>(v[i]) * original[i];
  EXPECT_LT(std::fabs(dot) / (before * before), 0.1);
  // Deterministic for the seed.
  std::vector<float> w = original;
  ASSERT_TRUE(apply_local(o, Kind::kFreeRider, w, 5).ok());
  EXPECT_EQ(v, w);
  // A zero update stays zero.
  std::vector<float> z(7, 0.0f);
  ASSERT_TRUE(apply_local(o, Kind::kFreeRider, z, 5).ok());
  EXPECT_EQ(z, std::vector<float>(7, 0.0f));
}

TEST(ApplyLocal, NonLocalKindsAreErrors) {
  std::vector<float> v = {1.0f};
  for (Kind k : {Kind::kNone, Kind::kLabelFlip, Kind::kAlie, Kind::kIpm}) {
    Status s = apply_local(AttackOptions(), k, v, 1);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << kind_name(k);
    EXPECT_EQ(s.message(), "attack.kind: '" + kind_name(k) + "' is not a per-update attack");
  }
  EXPECT_EQ(v[0], 1.0f);
}

TEST(ApplyLocal, InvalidParameterIsAnError) {
  AttackOptions o = with_kind("gaussian");
  o.sigma = -1;
  std::vector<float> v = {1.0f};
  EXPECT_EQ(apply_local(o, Kind::kGaussian, v, 1).message(), "attack.sigma: must be > 0, got -1");
}

TEST(FlipLabel, Mirrors) {
  EXPECT_EQ(flip_label(0, 10), 9);
  EXPECT_EQ(flip_label(9, 10), 0);
  EXPECT_EQ(flip_label(3, 10), 6);
}

// ---------------------------------------------------------------- colluding attacks

TEST(Alie, MeanPlusZStd) {
  const std::vector<float> h0 = {1.0f, 0.0f, 2.0f, -1.0f};
  const std::vector<float> h1 = {3.0f, 0.0f, 2.0f, 1.0f};
  const std::vector<float> h2 = {5.0f, 0.0f, 2.0f, 3.0f};
  const std::vector<std::span<const float>> honest = {h0, h1, h2};
  std::vector<float> out(4);
  // Column 0: mean 3, population std sqrt(8/3); column 3: mean 1, std sqrt(8/3).
  ASSERT_TRUE(alie(honest, 1.5, out).ok());
  const double sd = std::sqrt(8.0 / 3.0);
  EXPECT_FLOAT_EQ(out[0], static_cast<float>(3.0 + 1.5 * sd));
  EXPECT_FLOAT_EQ(out[1], 0.0f);
  EXPECT_FLOAT_EQ(out[2], 2.0f);
  EXPECT_FLOAT_EQ(out[3], static_cast<float>(1.0 + 1.5 * sd));
  // z = 0 sends the mean.
  ASSERT_TRUE(alie(honest, 0.0, out).ok());
  EXPECT_EQ(out, (std::vector<float>{3.0f, 0.0f, 2.0f, 1.0f}));
}

TEST(Alie, LargeVectorAcrossBlocksAndOffsetMean) {
  // Spans several reduction blocks; a big common offset must not eat the std (two passes).
  const size_t d = 5000;
  std::vector<std::vector<float>> vs(4, std::vector<float>(d));
  for (size_t i = 0; i < d; ++i) {
    vs[0][i] = 1000.0f + 1.0f;
    vs[1][i] = 1000.0f - 1.0f;
    vs[2][i] = 1000.0f + 1.0f;
    vs[3][i] = 1000.0f - 1.0f;
  }
  const std::vector<std::span<const float>> honest(vs.begin(), vs.end());
  std::vector<float> out(d);
  ASSERT_TRUE(alie(honest, 2.0, out).ok());
  for (size_t i = 0; i < d; ++i) ASSERT_EQ(out[i], 1002.0f) << i;
}

TEST(Alie, SingleHonestUpdateHasZeroStd) {
  const std::vector<float> h = {1.5f, -2.0f};
  const std::vector<std::span<const float>> honest = {h};
  std::vector<float> out(2);
  ASSERT_TRUE(alie(honest, 3.0, out).ok());
  EXPECT_EQ(out, h);
}

TEST(Ipm, MinusEpsilonMean) {
  const std::vector<float> h0 = {1.0f, -4.0f, 0.0f};
  const std::vector<float> h1 = {3.0f, 2.0f, 0.5f};
  const std::vector<std::span<const float>> honest = {h0, h1};
  std::vector<float> out(3);
  ASSERT_TRUE(ipm(honest, 0.5, out).ok());
  EXPECT_FLOAT_EQ(out[0], -1.0f);
  EXPECT_FLOAT_EQ(out[1], 0.5f);
  EXPECT_FLOAT_EQ(out[2], -0.125f);
}

TEST(Colluding, EmptyAndMismatchedAreErrors) {
  std::vector<float> out(3);
  Status s = alie({}, 1.0, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "alie: no honest updates");
  EXPECT_EQ(ipm({}, 0.1, out).message(), "ipm: no honest updates");

  const std::vector<float> a = {1, 2, 3};
  const std::vector<float> b = {1, 2};
  const std::vector<std::span<const float>> honest = {a, b};
  EXPECT_EQ(alie(honest, 1.0, out).message(), "alie: honest update 1 has 2 values, the output 3");
  EXPECT_EQ(ipm(honest, 0.1, out).message(), "ipm: honest update 1 has 2 values, the output 3");
  EXPECT_EQ(alie(std::vector<std::span<const float>>{a}, std::nan(""), out).message(),
            "alie: z must be finite");
}

// ---------------------------------------------------------------- ALIE's z_max

TEST(AlieZ, KnownQuantiles) {
  // (n - s) / n with s = floor(n / 2 + 1) - f.
  EXPECT_NEAR(alie_z(40, 20), 1.959963985, 1e-9);     // s = 1: Phi^{-1}(0.975)
  EXPECT_NEAR(alie_z(10, 4), 0.841621234, 1e-9);      // s = 2: Phi^{-1}(0.8)
  EXPECT_NEAR(alie_z(10, 1), 0.0, 1e-12);             // s = 5: Phi^{-1}(0.5)
  EXPECT_NEAR(alie_z(1000, 500), 3.090232306, 1e-9);  // s = 1: Phi^{-1}(0.999), the tail branch
  EXPECT_NEAR(alie_z(4, 0), -0.674489750, 1e-9);      // s = 3: Phi^{-1}(0.25)
  EXPECT_NEAR(alie_z(25, 5), 0.467698799, 1e-9);      // s = 8: Phi^{-1}(0.68)
  EXPECT_NEAR(alie_z(50, 12), 0.582841507, 1e-9);     // s = 14: Phi^{-1}(0.72)
}

TEST(AlieZ, Symmetric) {
  // Phi^{-1}(1 - p) = -Phi^{-1}(p): n = 40, s = 39 needs f < 0, so use n = 3, f = 0 (s = 2)
  // against n = 3, f = 1 (s = 1).
  EXPECT_NEAR(alie_z(3, 0), -alie_z(3, 1), 1e-12);
  EXPECT_NEAR(alie_z(3, 1), 0.430727299, 1e-9);
}

TEST(AlieZ, ClampedOutsideTheFormula) {
  // Attackers a majority on their own (s <= 0): s clamps to 1.
  EXPECT_NEAR(alie_z(25, 13), 1.750686071, 1e-9);
  EXPECT_EQ(alie_z(25, 20), alie_z(25, 13));
  EXPECT_EQ(alie_z(25, 30), alie_z(25, 13));
  // s >= n, and degenerate arguments: no shift.
  EXPECT_EQ(alie_z(2, 0), 0.0);
  EXPECT_EQ(alie_z(1, 0), 0.0);
  EXPECT_EQ(alie_z(1, 1), 0.0);
  EXPECT_EQ(alie_z(0, 0), 0.0);
  EXPECT_EQ(alie_z(10, -1), 0.0);
  for (int64_t n = 1; n <= 200; ++n) {
    for (int64_t f = 0; f <= n; ++f) ASSERT_TRUE(std::isfinite(alie_z(n, f))) << n << " " << f;
  }
}

}  // namespace
}  // namespace cohort::attack
