// Client-level differential privacy: the mechanism's pieces, free of any runtime.
//
// DP-FedAvg (McMahan et al., ICLR 2018) with the fixed-denominator estimator: every update in
// an aggregation group is clipped to L2 norm S, the clipped updates are summed with equal
// weight, Gaussian noise of standard deviation z * S is added to the sum, and the sum is
// divided by the expected group size C (not the number that arrived, so that one client's
// presence changes the result by at most S / C). Adaptive clipping (Andrew et al., NeurIPS
// 2021) moves S toward a target quantile of the update norms from a noised count of the
// unclipped updates. docs/privacy.md states the rules, their defaults and what they protect.
//
// Noise comes from libsodium's ChaCha20 stream keyed by a 32-byte seed (never from the
// simulation's xoshiro generator): the simulator derives the seed from the run seed so that
// runs repeat, a deployment draws it from the operating system (randombytes_buf).
//
// Thread safety: the functions are pure; add_gaussian_noise splits long vectors over the
// kernel pool in fixed chunks, so the result does not depend on the thread count.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cohort/core/status.h"

namespace cohort::privacy {

using NoiseSeed = std::array<uint8_t, 32>;

struct DpOptions {
  // z: noise standard deviation in units of the clip norm. 0 with target_epsilon set: derived
  // from the budget and the run's planned commits (docs/privacy.md).
  double noise_multiplier = 0.0;
  // S: the L2 bound of one client's update (the initial bound with adaptive clipping).
  double clip_norm = 1.0;
  // The delta of the reported (epsilon, delta) guarantee.
  double delta = 1e-5;
  // Stop the run before the commit that would spend more than this (nullopt: no budget).
  std::optional<double> target_epsilon;
  // server: the server clips each update and adds the noise. client: each client clips its
  // own update before it leaves (and, under secure aggregation, adds its share of the noise).
  std::string side = "server";
  // Quantile-based adaptive clipping (Andrew et al.): S <- S exp(-lr (b - quantile)), b the
  // noised fraction of updates no larger than S.
  bool adaptive_clipping = false;
  double target_quantile = 0.5;
  double clip_learning_rate = 0.2;
  // Standard deviation of the noise on the unclipped count; 0 = 0.05 x the group size.
  double clipped_count_stddev = 0.0;
  // RDP -> (epsilon, delta): "improved" (Balle et al. 2020) or "classic" (Mironov 2017).
  std::string conversion = "improved";

  bool enabled() const { return noise_multiplier > 0 || target_epsilon.has_value(); }
  // InvalidArgument naming privacy.dp.<key>.
  Status validate() const;
};

// Scales `v` so that its L2 norm is at most `clip_norm`; returns the norm before clipping.
double clip_l2(std::span<float> v, double clip_norm);

// Adds independent N(0, stddev^2) noise to every element. `stream` separates the draws of
// different groups made with one seed (e.g. the group's number). Deterministic in (seed,
// stream, v.size()).
void add_gaussian_noise(std::span<float> v, double stddev, const NoiseSeed& seed,
                        uint64_t stream);
// One N(0, 1) draw from (seed, stream, index): the scalar queries (the unclipped count).
double gaussian(const NoiseSeed& seed, uint64_t stream, uint64_t index);

// A seed for the simulator: a hash of (run seed, label); and a fresh one for a deployment.
NoiseSeed derive_seed(uint64_t run_seed, std::string_view label);
NoiseSeed random_seed();

// The noise multiplier left for the updates when the unclipped count takes its share of the
// privacy budget: (z^-2 - (2 sigma_b)^-2)^(-1/2) (Andrew et al., Sec. 3). InvalidArgument
// naming clipped_count_stddev when 2 sigma_b <= z (the count would take the whole budget).
Result<double> update_noise_multiplier(double z, double count_stddev);

// One adaptive clipping step: the bound after a group of `count` updates (`expected` planned)
// of which `unclipped` were no larger than the bound. As in Andrew et al. and TFF, the count
// query sums b_k - 1/2 (sensitivity 1/2, which the 2 sigma_b of update_noise_multiplier
// assumes), noised by `count_noise` (already scaled): b = (unclipped - count/2 + noise) /
// expected + 1/2, and S <- S exp(-lr (b - quantile)).
double next_clip_norm(double clip_norm, double unclipped, double count, double count_noise,
                      double expected, double target_quantile, double learning_rate);

}  // namespace cohort::privacy
