// Fuzz target: the YAML configuration loader, for both files it reads (the simulation /
// training config, for simulation and deployment use, and the deploy file). Errors are fine;
// crashes, hangs and exceptions escaping the loader are findings.
#include <cstdint>
#include <string>

#include "cohort/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto sim = cohort::parse_simulation_config(text, "fuzz.yaml");
  if (sim.ok()) (void)cohort::to_json(*sim);
  (void)cohort::parse_simulation_config(text, "fuzz.yaml", {}, cohort::ConfigUse::kDeployment);
  auto deploy = cohort::parse_deploy_config(text, "fuzz.deploy.yaml");
  if (deploy.ok()) (void)cohort::to_json(*deploy);
  return 0;
}
