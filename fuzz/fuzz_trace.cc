// Fuzz target: the device trace reader (parse_device_trace), with a population as large as the
// trace and with a fixed one.
#include <cstdint>
#include <string>

#include "cohort/sim/device_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)cohort::sim::parse_device_trace(text, "fuzz.csv", 0);
  (void)cohort::sim::parse_device_trace(text, "fuzz.csv", 3);
  return 0;
}
