// A simulated population over one dataset for the simulator's tests: `count` clients with
// `per` examples each, interleaved (client k holds k, k + count, ...: on the line dataset,
// targets close to each other, a nearly IID population), client k computing at
// 1 + speed_step x k local steps per virtual second on ideal links.
#pragma once

#include <memory>
#include <vector>

#include "cohort/sim/simulator.h"

namespace cohort::testing {

inline std::vector<sim::SimClient> interleaved_population(std::shared_ptr<const Dataset> d,
                                                          int64_t count, int64_t per,
                                                          double speed_step = 0.0) {
  std::vector<sim::SimClient> out;
  for (int64_t k = 0; k < count; ++k) {
    sim::SimClient c;
    c.shard.data = d;
    for (int64_t i = 0; i < per; ++i) c.shard.indices.push_back(i * count + k);
    c.device = sim::DeviceProfile{1.0 + speed_step * static_cast<double>(k), 1e9, 1e9, 0.0};
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace cohort::testing
