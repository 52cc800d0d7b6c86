// Peak bandwidth: the bytes moved in the busiest second of a run's clock (the simulator's
// virtual clock), over every transfer between the server and its clients, up and down. A
// transfer's bytes are spread evenly over its duration; one that takes no time counts in the
// second it happens. Low-communication methods are judged on it as much as on total bytes
// (Streaming DiLoCo's point is a lower peak at the same total). The synchronisation peak leaves
// out the transfers marked initial (each client's first download of the model, the one-time
// distribution every strategy pays alike), so it measures the steady state of a method.
//
// Thread safety: none; used from the runtime's thread.
#pragma once

#include <cstdint>
#include <map>

namespace cohort::runtime {

class BandwidthMeter {
 public:
  // A transfer of `bytes` over [start, end) seconds; `initial`: a client's first download of the
  // model (counted in peak() but not in sync_peak()).
  void add(double start, double end, int64_t bytes, bool initial = false);
  // Bytes in the busiest whole second [k, k + 1) so far (0 before any transfer).
  double peak() const { return peak_; }
  // The same without the initial transfers.
  double sync_peak() const { return sync_peak_; }
  double total() const { return total_; }

 private:
  std::map<int64_t, double> per_second_;
  std::map<int64_t, double> sync_per_second_;
  double peak_ = 0.0;
  double sync_peak_ = 0.0;
  double total_ = 0.0;
};

}  // namespace cohort::runtime
