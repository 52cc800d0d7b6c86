// The few MPI calls Cohort makes, returning Status (the world communicator has
// MPI_ERRORS_RETURN, set by Session::init). Only src/mpi/*.cc include this (and so mpi.h).
#pragma once

#include <mpi.h>

#include <chrono>
#include <optional>
#include <string>

#include "cohort/core/status.h"

namespace cohort::mpi {

// Internal "MPI: <what>: <MPI's error string>" for a failed call; OK for MPI_SUCCESS.
Status mpi_status(int rc, const std::string& what);

// Blocking send of a whole message (returns once the buffer may be reused).
Status send_bytes(int dest, int tag, const std::string& bytes);

struct Incoming {
  int source = 0;
  int tag = 0;
  std::string bytes;
};
// A message from `source` (MPI_ANY_SOURCE: anyone) if one has arrived; never blocks waiting.
Result<std::optional<Incoming>> poll(int source);

// Sleeps between polls: from 20 us, doubling up to 1 ms while nothing happens (ranks
// oversubscribe cores, so nobody spins), back to 20 us after something did.
class Backoff {
 public:
  void reset() { us_ = 20; }
  std::chrono::microseconds next() {
    const auto d = std::chrono::microseconds(us_);
    us_ = us_ * 2 > 1000 ? 1000 : us_ * 2;
    return d;
  }

 private:
  int us_ = 20;
};

}  // namespace cohort::mpi
