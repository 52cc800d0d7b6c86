// Device models: how fast each simulated client computes, how fast its link is, and how
// reliably it is there.
//
// Heterogeneity lives here, never in strategies. Every client's profile is drawn once from
// the configured distributions with a seeded Rng (Rng::derive(seed, "population")), or read
// from a trace file (one measured row per client), so the same seed gives the same population
// for every strategy compared on it.
//
// ClientDynamics describes what happens over time: per-task compute-time jitter, dropouts
// (tasks that never return) and availability (alternating online / offline periods). The
// simulator applies it (simulator.h), drawing every random value from
// Rng::derive(run seed, purpose, client[, task number]), so enabling one of them does not
// change the draws of another.
//
// Units: speed in local optimiser steps per virtual second; bandwidth in megabits per second
// (1 Mbit/s = 125000 bytes/s); latency in milliseconds (one way).
//
// Thread safety: plain values and free functions; nothing is shared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/rng.h"
#include "cohort/core/status.h"

namespace cohort::sim {

// A scalar distribution, drawn from then clamped to [min, max].
struct Distribution {
  // constant: `mean`; normal: N(mean, std) truncated by clamping; exponential: mean `mean`;
  // uniform: U[low, high]; lognormal: exp(N(ln(mean) - sigma^2/2, sigma)) (so its mean is
  // `mean`).
  std::string kind = "constant";
  double mean = 1.0;
  double std = 0.0;
  double low = 0.0;
  double high = 1.0;
  double sigma = 0.5;
  double min = 1e-6;
  double max = 1e300;

  double sample(Rng& rng) const;
  // InvalidArgument naming `path` and the field ("clients.speed.mean: must be > 0").
  Status validate(const std::string& path) const;

  static Distribution constant(double v) {
    Distribution d;
    d.mean = v;
    return d;
  }
};

// Alternating online / offline periods of every client (config: clients.availability).
// Each client starts online; its period lengths are drawn in turn (online, offline, online,
// ...) from Rng::derive(run seed, "availability", client).
struct Availability {
  // Mean length of an online period in virtual seconds; 0 = always online (the default).
  double mean_online_s = 0.0;
  // Mean length of an offline period in virtual seconds (> 0).
  double mean_offline_s = 60.0;
  // "exponential" (memoryless periods with these means) or "constant" (exactly these).
  std::string distribution = "exponential";

  bool enabled() const { return mean_online_s > 0; }
  // Length of the next period (online or offline) drawn from `rng`.
  double sample(Rng& rng, bool online) const;
};

// How clients behave over time (config: clients.jitter, dropout, task_timeout_factor,
// availability). The defaults are a perfectly reliable population.
struct ClientDynamics {
  // Per-task multiplicative noise on the compute time: factor max(0.05, N(1, jitter)), drawn
  // from Rng::derive(run seed, "jitter", client, task number). 0 = none.
  double jitter = 0.0;
  // Probability in [0, 1) that a dispatched task never returns, drawn from
  // Rng::derive(run seed, "dropout", client, task number).
  double dropout = 0.0;
  // The runtime learns of a dropout at dispatch time + this factor (>= 1) x the task's
  // expected duration (transfers and compute at the client's nominal profile, no jitter): the
  // deadline a deployment would give up at.
  double task_timeout_factor = 3.0;
  Availability availability;

  // InvalidArgument naming the config key ("clients.dropout: must be in [0, 1), got 1").
  Status validate() const;
};

struct PopulationOptions {
  // Number of clients. With a trace, 0 means as many as the trace has rows.
  int64_t num_clients = 20;
  Distribution speed = Distribution::constant(100.0);      // steps / virtual second
  Distribution up_mbps = Distribution::constant(20.0);     // uplink
  Distribution down_mbps = Distribution::constant(100.0);  // downlink
  Distribution latency_ms = Distribution::constant(20.0);  // one way, per transfer
  // Optional device trace (CSV, see read_device_trace); when set it replaces the four
  // distributions above. Relative paths are relative to the working directory.
  std::string trace;
  ClientDynamics dynamics;
  Status validate() const;
};

struct DeviceProfile {
  double speed = 1.0;  // steps per virtual second
  double up_bytes_per_s = 1.0;
  double down_bytes_per_s = 1.0;
  double latency_s = 0.0;
};

// One profile per client, drawn in client order from Rng::derive(seed, "population"), or read
// from options.trace when it is set (read_device_trace with options.num_clients).
// Errors: InvalidArgument for invalid options (naming the config key) or a malformed trace;
// NotFound for a trace file that cannot be read.
Result<std::vector<DeviceProfile>> draw_population(const PopulationOptions& options, uint64_t seed);

// Device trace: CSV text whose first line is the header
//     client,steps_per_s,up_mbps,down_mbps,latency_ms
// (these five column names, in any order) followed by one row per client, in any order.
// Blank lines and lines starting with '#' are skipped; fields may be padded with spaces; CRLF
// line ends are accepted. `client` is a non-negative integer id; steps_per_s, up_mbps and
// down_mbps are finite numbers > 0; latency_ms is a finite number >= 0.
//
// With num_clients > 0 the trace must have a row for each client 0..num_clients-1 (rows of
// higher ids are checked, then ignored); with num_clients == 0 the population is as large as
// the trace and its ids must be exactly 0..rows-1.
//
// Errors: InvalidArgument "SOURCE:LINE: what" for a bad header, a wrong number of fields, a
// field that is not a number or out of range, or a duplicate client id; "SOURCE: no row for
// client N ..." for a missing one. parse_ reads `text`, naming it `source`; read_ reads the
// file at `path` (NotFound naming it if it cannot be read).
Result<std::vector<DeviceProfile>> parse_device_trace(const std::string& text,
                                                      const std::string& source,
                                                      int64_t num_clients);
Result<std::vector<DeviceProfile>> read_device_trace(const std::string& path, int64_t num_clients);

}  // namespace cohort::sim
