// `cohort privacy`: plans a differentially private run with the RDP accountant
// (privacy/accountant.h). Given the sampling rate, the noise multiplier and the number of
// steps (commits, or DP-SGD steps) it prints the epsilon spent at delta and the optimal RDP
// order; given --target-epsilon instead of --noise-multiplier it prints the smallest noise
// multiplier that stays within the budget. --json prints one JSON line.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "cohort/core/metrics.h"
#include "cohort/privacy/accountant.h"
#include "commands.h"

namespace cohort::cli {

namespace {

struct PrivacyArgs {
  double sampling_rate = -1;
  double noise_multiplier = 0;
  double target_epsilon = 0;
  int64_t steps = -1;
  double epochs = 0;
  double delta = 1e-5;
  std::string conversion = "improved";
  bool json = false;
};

Status run_privacy(const PrivacyArgs& a) {
  if (!(a.sampling_rate > 0 && a.sampling_rate <= 1)) {
    return Status::invalid_argument("--sampling-rate: must be in (0, 1] (clients or examples "
                                    "per step / population), got " +
                                    std::to_string(a.sampling_rate));
  }
  int64_t steps = a.steps;
  if (a.epochs > 0) {
    if (steps >= 0) return Status::invalid_argument("--steps and --epochs: give one of them");
    // One epoch is 1/q steps (Opacus and TF Privacy count floor(N / batch) steps per epoch:
    // pass --steps for that).
    steps = static_cast<int64_t>(std::llround(a.epochs / a.sampling_rate));
  }
  if (steps < 0) return Status::invalid_argument("--steps (or --epochs): required");
  const bool inverse = a.target_epsilon > 0;
  if (inverse == (a.noise_multiplier > 0)) {
    return Status::invalid_argument(
        "give exactly one of --noise-multiplier (prints epsilon) and --target-epsilon (prints "
        "the noise multiplier)");
  }
  COHORT_ASSIGN_OR_RETURN(privacy::Conversion conv, privacy::parse_conversion(a.conversion));
  double z = a.noise_multiplier;
  if (inverse) {
    COHORT_ASSIGN_OR_RETURN(z, privacy::noise_multiplier_for(a.target_epsilon, a.sampling_rate,
                                                            steps, a.delta, conv));
  }
  COHORT_ASSIGN_OR_RETURN(privacy::EpsilonResult e,
                          privacy::compute_epsilon(a.sampling_rate, z, steps, a.delta, conv));
  if (a.json) {
    Json j = {{"epsilon", e.epsilon},
              {"order", e.order},
              {"delta", a.delta},
              {"noise_multiplier", z},
              {"sampling_rate", a.sampling_rate},
              {"steps", steps},
              {"conversion", a.conversion}};
    if (inverse) j["target_epsilon"] = a.target_epsilon;
    std::printf("%s\n", j.dump().c_str());
    return Status();
  }
  if (inverse) {
    std::printf("noise multiplier %.4g reaches epsilon %.4g <= %.4g\n", z, e.epsilon,
                a.target_epsilon);
  }
  std::printf(
      "epsilon %.4g at delta %g (RDP order %g, %s conversion) after %lld steps of the "
      "subsampled Gaussian mechanism with sampling rate %g and noise multiplier %.4g\n",
      e.epsilon, a.delta, e.order, a.conversion.c_str(), static_cast<long long>(steps),
      a.sampling_rate, z);
  return Status();
}

}  // namespace

void add_privacy_command(CLI::App& app) {
  auto args = std::make_shared<PrivacyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "privacy", "Epsilon of a DP run (RDP accountant), or the noise a target epsilon needs");
  cmd->add_option("--sampling-rate,-q", args->sampling_rate,
                  "Probability a client (example) takes part in a step: per-round clients / "
                  "population")
      ->required();
  cmd->add_option("--noise-multiplier,-z", args->noise_multiplier,
                  "Noise standard deviation / clip norm");
  cmd->add_option("--target-epsilon", args->target_epsilon,
                  "Print the smallest noise multiplier that spends at most this");
  cmd->add_option("--steps,-T", args->steps, "Steps (commits / rounds)");
  cmd->add_option("--epochs", args->epochs, "Or: epochs, i.e. epochs / q steps");
  cmd->add_option("--delta,-d", args->delta, "Delta of the (epsilon, delta) guarantee");
  cmd->add_option("--conversion", args->conversion, "RDP to (epsilon, delta): improved | classic");
  cmd->add_flag("--json", args->json, "One JSON line: epsilon, order, noise_multiplier, ...");
  cmd->callback([args] { run_guarded("privacy", [&] { return run_privacy(*args); }); });
}

}  // namespace cohort::cli
