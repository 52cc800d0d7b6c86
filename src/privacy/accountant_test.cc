// The RDP accountant of the sampled Gaussian mechanism: published epsilons (Opacus's MNIST
// example, TensorFlow Privacy's compute_dp_sgd_privacy tests), closed forms (q = 0, q = 1,
// alpha = 2 and 3), agreement of the integer and fractional evaluations, log erfc against an
// independent continued fraction, monotonicity, composition, checkpoints, noise calibration
// and the errors, each naming its parameter.
#include "cohort/privacy/accountant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace cohort::privacy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The orders of Opacus's RDP accountant (DEFAULT_ALPHAS): 1.1 .. 10.9 and 12 .. 63.
std::vector<double> opacus_orders() {
  std::vector<double> o;
  for (int x = 1; x < 100; ++x) o.push_back(1 + x / 10.0);
  for (int a = 12; a < 64; ++a) o.push_back(a);
  return o;
}

// The orders of TensorFlow Privacy's compute_dp_sgd_privacy_lib.compute_dp_sgd_privacy.
std::vector<double> tf_orders() {
  std::vector<double> o = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
  for (int a = 5; a < 64; ++a) o.push_back(a);
  for (double a : {128.0, 256.0, 512.0}) o.push_back(a);
  return o;
}

double rdp_of(double q, double z, double alpha) {
  Result<double> r = sampled_gaussian_rdp(q, z, alpha);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : std::nan("");
}

EpsilonResult eps_of(double q, double z, int64_t steps, double delta, Conversion c,
                     const std::vector<double>& orders = {}) {
  Result<EpsilonResult> r = compute_epsilon(q, z, steps, delta, c, orders);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : EpsilonResult{std::nan(""), 0};
}

// erfc(x) exp(x^2) sqrt(pi) = 1 / (x + (1/2) / (x + 1 / (x + (3/2) / (x + 2 / (x + ...)))))
// (Abramowitz & Stegun 7.1.14), by the modified Lentz method; an evaluation independent of
// both std::erfc and the asymptotic series, accurate for x >= 3.
double log_erfc_by_continued_fraction(double x) {
  const double tiny = 1e-300;
  double f = x, c = x, d = 0;
  for (int n = 1; n < 5000; ++n) {
    const double a = n / 2.0;
    d = x + a * d;
    d = d == 0 ? 1 / tiny : 1 / d;
    c = x + a / c;
    if (c == 0) c = tiny;
    const double delta = c * d;
    f *= delta;
    if (std::fabs(delta - 1) < 1e-17) break;
  }
  return -x * x - 0.5 * std::log(std::numbers::pi) - std::log(f);
}

TEST(AccountantTest, ConversionNames) {
  EXPECT_EQ(to_string(Conversion::kClassic), "classic");
  EXPECT_EQ(to_string(Conversion::kImproved), "improved");
  EXPECT_EQ(*parse_conversion("classic"), Conversion::kClassic);
  EXPECT_EQ(*parse_conversion("improved"), Conversion::kImproved);
  const Result<Conversion> bad = parse_conversion("Improved");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "conversion: unknown 'Improved' (known: classic, improved)");
}

TEST(AccountantTest, DefaultOrders) {
  const std::vector<double> o = default_orders();
  // 10 listed + 59 integers 5..63 + 99 grid points + 4 large, less 7 listed and 6 integers
  // (5..10) that are also grid points.
  EXPECT_EQ(o.size(), 159u);
  for (size_t k = 1; k < o.size(); ++k) EXPECT_LT(o[k - 1], o[k]) << k;
  EXPECT_EQ(o.front(), 1.1);
  EXPECT_EQ(o.back(), 512);
  for (double a : {1.25, 1.75, 2.25, 10.9, 11.0, 19.0, 63.0, 64.0, 128.0, 256.0}) {
    EXPECT_TRUE(std::count(o.begin(), o.end(), a) == 1) << a;
  }
}

TEST(AccountantTest, NoSamplingAndFullBatchClosedForms) {
  for (double alpha : {1.1, 1.5, 2.0, 2.5, 32.0, 512.0}) {
    for (double z : {0.3, 1.0, 7.5}) {
      EXPECT_EQ(rdp_of(0, z, alpha), 0.0);
      EXPECT_EQ(rdp_of(1, z, alpha), alpha / (2 * z * z)) << alpha << " " << z;
    }
  }
}

// A_2 = (1-q)^2 + 2q(1-q) + q^2 e^{1/z^2} = 1 + q^2 (e^{1/z^2} - 1) exactly, and A_3 by its
// four binomial terms; the integer expansion keeps full relative precision down to q = 1e-6.
TEST(AccountantTest, OrderTwoAndThreeByHand) {
  for (double q : {1e-6, 0.004, 0.1, 0.5, 0.9}) {
    for (double z : {0.5, 1.0, 4.0}) {
      const double want2 = std::log1p(q * q * std::expm1(1 / (z * z)));
      EXPECT_NEAR(rdp_of(q, z, 2), want2, 1e-14 * want2) << q << " " << z;
      if (q < 0.01) continue;  // the plain sum below loses precision when A_3 is close to 1
      const double p = 1 - q;
      const double a3 = p * p * p + 3 * q * p * p + 3 * q * q * p * std::exp(1 / (z * z)) +
                        q * q * q * std::exp(3 / (z * z));
      EXPECT_NEAR(rdp_of(q, z, 3), std::log(a3) / 2, 1e-13 * std::log(a3)) << q << " " << z;
    }
  }
}

// At an integer order the two series of the fractional formula add up to the binomial
// expansion; the public function picks the integer path there, and its neighbours (and the
// whole default grid) join continuously and increase with the order.
TEST(AccountantTest, IntegerAndFractionalPathsAgree) {
  for (double q : {0.01, 0.1, 0.5, 0.9}) {
    for (double z : {0.5, 1.0, 2.0, 5.0}) {
      for (int64_t alpha : {2, 3, 5, 8, 16, 32}) {
        const double li = internal::log_a_integer(q, z, alpha);
        const double ls = internal::log_a_series(q, z, static_cast<double>(alpha));
        EXPECT_NEAR(ls, li, 1e-9 * li) << q << " " << z << " " << alpha;
      }
      const double at3 = rdp_of(q, z, 3);
      const double above = rdp_of(q, z, 3.0000001);
      const double below = rdp_of(q, z, 2.9999999);
      EXPECT_LE(below, at3 * (1 + 1e-12));
      EXPECT_GE(above, at3 * (1 - 1e-12));
      EXPECT_NEAR(above, at3, 1e-6 * at3) << q << " " << z;
      EXPECT_NEAR(below, at3, 1e-6 * at3) << q << " " << z;
      double prev = 0;
      for (double a : default_orders()) {
        const double r = rdp_of(q, z, a);
        EXPECT_GE(r, prev * (1 - 1e-12)) << q << " " << z << " " << a;
        prev = r;
      }
    }
  }
}

TEST(AccountantTest, LogErfcAgreesWithContinuedFraction) {
  // Both sides of the switch to the asymptotic series (25) and far beyond underflow.
  for (double x : {3.0, 5.0, 10.0, 20.0, 24.999, 25.0, 25.001, 26.0, 30.0, 100.0, 1e4, 1e8}) {
    const double want = log_erfc_by_continued_fraction(x);
    EXPECT_NEAR(internal::log_erfc(x), want, 1e-14 * std::fabs(want)) << x;
  }
  for (double x : {-40.0, -5.0, -1.0, 0.0, 0.5, 2.0}) {
    EXPECT_NEAR(internal::log_erfc(x), std::log(std::erfc(x)), 1e-15) << x;
  }
  EXPECT_EQ(internal::log_erfc(-40), std::log(2.0));
}

// Opacus's MNIST example (examples/mnist_README.md, "Sample parameter sets"): batch 256 of the
// 60,000 MNIST examples, so q = 256/60000, delta = 1e-5, Opacus's orders; published (3.01,
// 1e-5) for z = 1.1 over 60 epochs, (1.19, 1e-5) for z = 1.3 over 15, (7.10, 1e-5) for z = 0.7
// over 45.
//
// Finding: the CLASSIC conversion reproduces all three with floor(60000/256) = 234 steps per
// epoch (3.0059, 1.1915, 7.0957); round(epochs * 60000/256) total steps also does (3.0083,
// 1.1921, 7.1003), three digits cannot tell these apart. ceil(60000/256) = 235 (a DataLoader
// without drop_last) gives 7.1085, which is not 7.10, and the improved conversion gives 2.59,
// 0.95 and 6.31, far from all three.
TEST(AccountantTest, OpacusMnistReadme) {
  const std::vector<double> orders = opacus_orders();
  const double q = 256.0 / 60000.0;
  struct Case {
    double z;
    int64_t epochs;
    double published;
    double computed;  // ours with 234 steps per epoch, classic
  };
  for (const Case& c : {Case{1.1, 60, 3.01, 3.005875}, Case{1.3, 15, 1.19, 1.191458},
                        Case{0.7, 45, 7.10, 7.095681}}) {
    const EpsilonResult e = eps_of(q, c.z, c.epochs * 234, 1e-5, Conversion::kClassic, orders);
    std::printf("opacus z=%.1f epochs=%lld: epsilon %.6f at order %g (published %.2f)\n", c.z,
                static_cast<long long>(c.epochs), e.epsilon, e.order, c.published);
    EXPECT_NEAR(e.epsilon, c.published, 0.005);  // the published value's rounding
    EXPECT_NEAR(e.epsilon, c.computed, 1e-6);
    const int64_t rounded = std::llround(static_cast<double>(c.epochs) * 60000.0 / 256.0);
    EXPECT_NEAR(eps_of(q, c.z, rounded, 1e-5, Conversion::kClassic, orders).epsilon, c.published,
                0.005);
    const double improved =
        eps_of(q, c.z, c.epochs * 234, 1e-5, Conversion::kImproved, orders).epsilon;
    EXPECT_GT(std::fabs(improved - c.published), 0.2);
  }
  EXPECT_GT(eps_of(q, 0.7, 45 * 235, 1e-5, Conversion::kClassic, orders).epsilon, 7.105);
}

// A later version of the same README (sampling rate -sr=0.004, so 250 steps per epoch)
// publishes (2.91, 1e-5), (1.16, 1e-5) and (6.86, 1e-5) for the same three runs; the classic
// conversion reproduces them too.
TEST(AccountantTest, OpacusMnistReadmeSampleRate) {
  const std::vector<double> orders = opacus_orders();
  struct Case {
    double z;
    int64_t epochs;
    double published;
    double computed;
  };
  for (const Case& c : {Case{1.1, 60, 2.91, 2.905045}, Case{1.3, 15, 1.16, 1.159749},
                        Case{0.7, 45, 6.86, 6.858866}}) {
    const EpsilonResult e = eps_of(0.004, c.z, c.epochs * 250, 1e-5, Conversion::kClassic, orders);
    std::printf("opacus sr=0.004 z=%.1f: epsilon %.6f at order %g (published %.2f)\n", c.z,
                e.epsilon, e.order, c.published);
    EXPECT_NEAR(e.epsilon, c.published, 0.005);
    EXPECT_NEAR(e.epsilon, c.computed, 1e-6);
  }
}

// TensorFlow Privacy, compute_dp_sgd_privacy_test.py (test_compute_dp_sgd_privacy): n, batch,
// noise, epochs, delta -> epsilon, order, with q = batch / n, steps = ceil(epochs * n / batch),
// the library's orders and the improved conversion (dp_accounting's RdpAccountant).
TEST(AccountantTest, TensorFlowPrivacyComputeDpSgdPrivacy) {
  struct Case {
    double n, batch, z, epochs, delta, eps, order;
  };
  for (const Case& c : {Case{60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19.0},
                        Case{100000, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13.0},
                        Case{1e8, 1024, 0.1, 10, 1e-7, 5907982.3113978775, 1.25}}) {
    const int64_t steps = static_cast<int64_t>(std::ceil(c.epochs * c.n / c.batch));
    const EpsilonResult e =
        eps_of(c.batch / c.n, c.z, steps, c.delta, Conversion::kImproved, tf_orders());
    std::printf("tf n=%g batch=%g z=%g: epsilon %.13g at order %g (published %.13g at %g)\n", c.n,
                c.batch, c.z, e.epsilon, e.order, c.eps, c.order);
    EXPECT_NEAR(e.epsilon, c.eps, 1e-11 * c.eps);  // reached: 3e-12 relative or better
    EXPECT_EQ(e.order, c.order);
  }
  // 6000 steps: the default orders include every integer, so they find order 19 as well.
  const EpsilonResult d = eps_of(0.0025, 1.3, 6000, 1e-5, Conversion::kImproved);
  EXPECT_NEAR(d.epsilon, 0.7242234026109595, 1e-11);
  EXPECT_EQ(d.order, 19.0);
  // The classic conversion is looser.
  EXPECT_GT(eps_of(0.0025, 1.3, 6000, 1e-5, Conversion::kClassic).epsilon, 0.9);
}

TEST(AccountantTest, ConversionFormulas) {
  const std::vector<double> orders = {2, 3};
  const std::vector<double> rdp = {0.5, 0.6};
  const double ld = std::log(1e-5);
  // Classic: 0.5 - ld = 12.01 at 2, 0.6 - ld / 2 = 6.36 at 3.
  const EpsilonResult c = *epsilon_from_rdp(orders, rdp, 1e-5, Conversion::kClassic);
  EXPECT_DOUBLE_EQ(c.epsilon, 0.6 - ld / 2);
  EXPECT_EQ(c.order, 3);
  const EpsilonResult i = *epsilon_from_rdp(orders, rdp, 1e-5, Conversion::kImproved);
  EXPECT_DOUBLE_EQ(i.epsilon, 0.6 + std::log(2.0 / 3.0) - (ld + std::log(3.0)) / 2);
  EXPECT_EQ(i.order, 3);
  // The improved bound is clamped at 0; +inf RDP just loses that order.
  const std::vector<double> zero = {0, 0};
  EXPECT_EQ(epsilon_from_rdp(orders, zero, 0.9, Conversion::kImproved)->epsilon, 0.0);
  const std::vector<double> inf_first = {kInf, 0.6};
  EXPECT_EQ(epsilon_from_rdp(orders, inf_first, 1e-5, Conversion::kClassic)->order, 3);
}

TEST(AccountantTest, EpsilonIsMonotone) {
  const double q = 0.01;
  double prev = kInf;
  for (double z : {0.6, 0.8, 1.0, 1.5, 2.0, 4.0}) {
    const double e = eps_of(q, z, 1000, 1e-5, Conversion::kImproved).epsilon;
    EXPECT_LT(e, prev) << z;
    prev = e;
  }
  prev = 0;
  for (int64_t steps : {1, 10, 100, 1000, 10000}) {
    const double e = eps_of(q, 1.0, steps, 1e-5, Conversion::kClassic).epsilon;
    EXPECT_GT(e, prev) << steps;
    prev = e;
  }
  prev = 0;
  for (double qq : {1e-4, 1e-3, 0.01, 0.1, 0.5, 1.0}) {
    const double e = eps_of(qq, 1.0, 100, 1e-5, Conversion::kImproved).epsilon;
    EXPECT_GT(e, prev) << qq;
    prev = e;
  }
}

TEST(AccountantTest, ComposesStepsAndMixedParameters) {
  RdpAccountant ten, one_by_one;
  ASSERT_TRUE(ten.step(0.01, 1.1, 10).ok());
  for (int k = 0; k < 10; ++k) ASSERT_TRUE(one_by_one.step(0.01, 1.1).ok());
  EXPECT_EQ(ten.steps(), 10);
  EXPECT_EQ(one_by_one.steps(), 10);
  ASSERT_EQ(ten.rdp().size(), default_orders().size());
  for (size_t k = 0; k < ten.rdp().size(); ++k) {
    EXPECT_NEAR(one_by_one.rdp()[k], ten.rdp()[k], 1e-13 * ten.rdp()[k]) << k;
  }
  EXPECT_NEAR(ten.epsilon(1e-5)->epsilon,
              eps_of(0.01, 1.1, 10, 1e-5, Conversion::kImproved).epsilon, 1e-12);

  // Two phases with different (q, z) add their RDP per order.
  RdpAccountant mixed;
  ASSERT_TRUE(mixed.step(0.01, 1.1, 300).ok());
  ASSERT_TRUE(mixed.step(0.02, 0.9, 200).ok());
  ASSERT_TRUE(mixed.step(0.5, 3.0, 0).ok());  // no steps: no change
  EXPECT_EQ(mixed.steps(), 500);
  std::vector<double> want;
  for (double a : default_orders()) {
    want.push_back(300 * rdp_of(0.01, 1.1, a) + 200 * rdp_of(0.02, 0.9, a));
  }
  const EpsilonResult e = *mixed.epsilon(1e-5, Conversion::kClassic);
  const EpsilonResult w = *epsilon_from_rdp(default_orders(), want, 1e-5, Conversion::kClassic);
  EXPECT_NEAR(e.epsilon, w.epsilon, 1e-12);
  EXPECT_EQ(e.order, w.order);
  EXPECT_GT(e.epsilon, eps_of(0.01, 1.1, 300, 1e-5, Conversion::kClassic).epsilon);
}

TEST(AccountantTest, EpsilonAfterLooksAheadWithoutStepping) {
  RdpAccountant acc;
  ASSERT_TRUE(acc.step(0.01, 1.0, 100).ok());
  const std::vector<double> before = acc.rdp();
  const EpsilonResult ahead = *acc.epsilon_after(0.01, 1.0, 50, 1e-5, Conversion::kImproved);
  EXPECT_EQ(acc.rdp(), before);
  EXPECT_EQ(acc.steps(), 100);
  RdpAccountant stepped = acc;
  ASSERT_TRUE(stepped.step(0.01, 1.0, 50).ok());
  EXPECT_NEAR(ahead.epsilon, stepped.epsilon(1e-5)->epsilon, 1e-12);
  // With other parameters than the last step (not the cached per-step RDP).
  const EpsilonResult other = *acc.epsilon_after(0.05, 2.0, 10, 1e-5, Conversion::kClassic);
  RdpAccountant stepped2 = acc;
  ASSERT_TRUE(stepped2.step(0.05, 2.0, 10).ok());
  EXPECT_NEAR(other.epsilon, stepped2.epsilon(1e-5, Conversion::kClassic)->epsilon, 1e-12);
  EXPECT_EQ(acc.epsilon_after(0.01, 1.0, 0, 1e-5, Conversion::kImproved)->epsilon,
            acc.epsilon(1e-5)->epsilon);
}

TEST(AccountantTest, RestoreRoundTrips) {
  RdpAccountant acc;
  ASSERT_TRUE(acc.step(0.004, 1.1, 1234).ok());
  RdpAccountant back(std::vector<double>{2, 3});
  ASSERT_TRUE(back.restore(acc.orders(), acc.rdp(), acc.steps()).ok());
  EXPECT_EQ(back.orders(), acc.orders());
  EXPECT_EQ(back.rdp(), acc.rdp());
  EXPECT_EQ(back.steps(), 1234);
  EXPECT_EQ(back.epsilon(1e-5)->epsilon, acc.epsilon(1e-5)->epsilon);
  ASSERT_TRUE(acc.step(0.004, 1.1, 10).ok());
  ASSERT_TRUE(back.step(0.004, 1.1, 10).ok());
  EXPECT_EQ(back.rdp(), acc.rdp());

  // A bad checkpoint leaves the state as it was.
  const std::vector<double> o = {2, 3};
  auto expect_rejected = [&](std::vector<double> orders, std::vector<double> rdp, int64_t steps,
                             const std::string& message) {
    const Status s = back.restore(std::move(orders), std::move(rdp), steps);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), message);
    EXPECT_EQ(back.rdp(), acc.rdp());
    EXPECT_EQ(back.steps(), acc.steps());
  };
  expect_rejected(o, {1}, 1, "rdp: has 1 values, orders has 2");
  expect_rejected({}, {}, 1, "orders: must not be empty");
  expect_rejected({2, 1}, {1, 1}, 1, "orders[1]: must be in (1, 1e+05], got 1");
  expect_rejected(o, {1, std::nan("")}, 1, "rdp[1]: must be finite and >= 0, got nan");
  expect_rejected(o, {kInf, 1}, 1, "rdp[0]: must be finite and >= 0, got inf");
  expect_rejected(o, {1, -0.5}, 1, "rdp[1]: must be finite and >= 0, got -0.5");
  expect_rejected(o, {1, 1}, -1, "steps: must be >= 0, got -1");
}

TEST(AccountantTest, InvalidArgumentsNameTheParameter) {
  auto message = [](const Status& s) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    return s.message();
  };
  EXPECT_EQ(message(sampled_gaussian_rdp(-0.1, 1, 2).status()), "q: must be in [0, 1], got -0.1");
  EXPECT_EQ(message(sampled_gaussian_rdp(1.5, 1, 2).status()), "q: must be in [0, 1], got 1.5");
  EXPECT_EQ(message(sampled_gaussian_rdp(0.1, 0, 2).status()), "z: must be > 0, got 0");
  EXPECT_EQ(message(sampled_gaussian_rdp(0.1, kInf, 2).status()), "z: must be > 0, got inf");
  EXPECT_EQ(message(sampled_gaussian_rdp(0.1, std::nan(""), 2).status()),
            "z: must be > 0, got nan");
  EXPECT_EQ(message(sampled_gaussian_rdp(0.1, 1, 1).status()),
            "alpha: must be in (1, 1e+05], got 1");
  EXPECT_EQ(message(sampled_gaussian_rdp(0.1, 1, 1e6).status()),
            "alpha: must be in (1, 1e+05], got 1e+06");
  EXPECT_EQ(message(compute_epsilon(0.1, 1, 10, 0, Conversion::kClassic).status()),
            "delta: must be in (0, 1), got 0");
  EXPECT_EQ(message(compute_epsilon(0.1, 1, 10, 1, Conversion::kClassic).status()),
            "delta: must be in (0, 1), got 1");
  EXPECT_EQ(message(compute_epsilon(0.1, 1, -1, 1e-5, Conversion::kClassic).status()),
            "steps: must be >= 0, got -1");
  const std::vector<double> two = {2, 3};
  const std::vector<double> one = {0.1};
  EXPECT_EQ(message(epsilon_from_rdp(two, one, 1e-5, Conversion::kClassic).status()),
            "rdp: has 1 values, orders has 2");
  const std::vector<double> negative = {0.1, -1};
  EXPECT_EQ(message(epsilon_from_rdp(two, negative, 1e-5, Conversion::kClassic).status()),
            "rdp[1]: must be >= 0, got -1");
  EXPECT_EQ(message(noise_multiplier_for(0, 0.01, 100, 1e-5, Conversion::kClassic).status()),
            "target_epsilon: must be > 0, got 0");
  EXPECT_EQ(message(noise_multiplier_for(1, 0, 100, 1e-5, Conversion::kClassic).status()),
            "q: must be in (0, 1], got 0");
  EXPECT_EQ(message(noise_multiplier_for(1, 0.01, 0, 1e-5, Conversion::kClassic).status()),
            "steps: must be >= 1, got 0");
  EXPECT_EQ(message(noise_multiplier_for(1, 0.01, 10, 1e-5, Conversion::kClassic, 1).status()),
            "tolerance: must be in (0, 1), got 1");

  // The accountant: errors name the value and leave the state unchanged.
  RdpAccountant acc;
  ASSERT_TRUE(acc.step(0.01, 1.0, 5).ok());
  const std::vector<double> rdp = acc.rdp();
  EXPECT_EQ(message(acc.step(0.01, -1.0)), "z: must be > 0, got -1");
  EXPECT_EQ(message(acc.step(2, 1.0)), "q: must be in [0, 1], got 2");
  EXPECT_EQ(message(acc.step(0.01, 1.0, -3)), "steps: must be >= 0, got -3");
  EXPECT_EQ(message(acc.epsilon(0).status()), "delta: must be in (0, 1), got 0");
  EXPECT_EQ(message(acc.epsilon_after(0.01, 1, -1, 1e-5, Conversion::kClassic).status()),
            "steps: must be >= 0, got -1");
  EXPECT_EQ(acc.rdp(), rdp);
  EXPECT_EQ(acc.steps(), 5);

  // Bad orders make every call fail until a restore.
  RdpAccountant bad(std::vector<double>{2, 0.5});
  EXPECT_EQ(message(bad.step(0.01, 1.0)), "orders[1]: must be in (1, 1e+05], got 0.5");
  EXPECT_EQ(message(bad.epsilon(1e-5).status()), "orders[1]: must be in (1, 1e+05], got 0.5");
  EXPECT_EQ(message(RdpAccountant(std::vector<double>{}).step(0.01, 1)),
            "orders: must not be empty");
  ASSERT_TRUE(bad.restore({2, 3}, {0, 0}, 0).ok());
  EXPECT_TRUE(bad.step(0.01, 1.0).ok());
}

// noise_multiplier_for inverts compute_epsilon: the returned z meets the target, a z smaller
// by the tolerance does not, and the epsilon reached is close to the target.
TEST(AccountantTest, NoiseMultiplierInvertsEpsilon) {
  struct Case {
    double target, q;
    int64_t steps;
    Conversion c;
  };
  for (const Case& k :
       {Case{1.0, 0.01, 1000, Conversion::kImproved},
        Case{3.0, 256.0 / 60000, 14040, Conversion::kClassic},
        Case{0.5, 0.004, 10000, Conversion::kImproved}, Case{8.0, 0.1, 100, Conversion::kClassic},
        Case{50.0, 0.001, 100, Conversion::kImproved}}) {
    for (double tol : {0.01, 0.001}) {
      const Result<double> z = noise_multiplier_for(k.target, k.q, k.steps, 1e-5, k.c, tol);
      ASSERT_TRUE(z.ok()) << z.status().to_string();
      const double at = eps_of(k.q, *z, k.steps, 1e-5, k.c).epsilon;
      const double below = eps_of(k.q, *z * (1 - tol), k.steps, 1e-5, k.c).epsilon;
      std::printf("target %g q=%g steps=%lld tol=%g: z=%.6f epsilon %.6f\n", k.target, k.q,
                  static_cast<long long>(k.steps), tol, *z, at);
      EXPECT_LE(at, k.target);
      EXPECT_GT(below, k.target);
      EXPECT_GT(at, k.target * (1 - 4 * tol));  // epsilon moves at most ~2x as fast as z
    }
  }
  // Opacus's first MNIST run backwards: 3.01 after 60 epochs (classic) needs z = 1.1.
  const double z =
      *noise_multiplier_for(3.01, 256.0 / 60000, 60 * 234, 1e-5, Conversion::kClassic, 0.001);
  EXPECT_NEAR(z, 1.1, 0.002);
  // Below the conversion's floor no noise suffices; a huge target is met by the smallest z.
  const Result<double> floor = noise_multiplier_for(1e-3, 0.01, 100, 1e-5, Conversion::kClassic);
  ASSERT_FALSE(floor.ok());
  EXPECT_EQ(floor.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(floor.error().message().rfind(
                "target_epsilon: no noise multiplier up to 1e+06 reaches 0.001", 0),
            0u)
      << floor.error().message();
  EXPECT_EQ(*noise_multiplier_for(1e6, 1e-4, 1, 1e-5, Conversion::kImproved), 1e-3);
}

TEST(AccountantTest, ExtremeInputsStayFinite) {
  // Tiny q, tiny and huge z, large orders: log space keeps them finite (or +inf for a z so
  // small that the RDP overflows a double) and never NaN.
  EXPECT_GT(rdp_of(1e-300, 0.01, 1.5), 0);
  EXPECT_EQ(rdp_of(0.3, 1e-160, 3), kInf);
  EXPECT_EQ(rdp_of(0.5, 1e160, 2.5), 0);
  EXPECT_GE(rdp_of(0.5, 1e150, 2.5), 0);
  EXPECT_TRUE(std::isfinite(rdp_of(0.99, 0.05, 512)));
  EXPECT_TRUE(std::isfinite(rdp_of(0.5, 1e5, 1.1)));
  const double big = rdp_of(1e-3, 1.0, 1e5);
  EXPECT_TRUE(std::isfinite(big));
  EXPECT_GT(big, rdp_of(1e-3, 1.0, 512));
}

}  // namespace
}  // namespace cohort::privacy
