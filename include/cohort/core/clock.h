// Clock: the only source of "now" for strategies and runtimes.
//
// Strategies never read system time; they get a Clock (through StrategyHost::now()). The
// simulator's virtual clock and the server's steady clock are both Clocks, so the same
// strategy object runs unchanged in both.
//
// Thread safety: now() may be called from any thread.
#pragma once

#include <chrono>

namespace cohort {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the clock's epoch (the start of the run).
  virtual double now() const = 0;
};

// Steady (monotonic) wall clock whose epoch is its construction.
class SteadyClock final : public Clock {
 public:
  SteadyClock() : start_(std::chrono::steady_clock::now()) {}
  double now() const override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// A clock moved by hand; the simulator's virtual clock and tests use it.
class ManualClock final : public Clock {
 public:
  double now() const override { return now_; }
  void set(double t) { now_ = t; }
  void advance(double dt) { now_ += dt; }

 private:
  double now_ = 0.0;
};

}  // namespace cohort
