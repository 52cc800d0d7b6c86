// Parameters of one secure-aggregation round (Bonawitz et al., "Practical Secure Aggregation for
// Privacy-Preserving Machine Learning", CCS 2017; the sparse neighbourhood graph of SecAgg+,
// Bell et al., CCS 2020) and the fixed-point code that turns float updates into the words the
// protocol sums.
//
// Words are uint32_t holding integers mod 2^bits (1 <= bits <= 32); the protocol returns the sum
// of the clients' words mod 2^bits and nothing else. FixedPoint maps floats into such words so
// that the modular sum of n encoded vectors decodes to the real sum (up to rounding):
//   * each value is clipped to [-range, range] (NaN is an error, +-Inf clips; clipped values are
//     counted),
//   * scaled to an integer in [-Q, Q], Q = 2^(input_bits - 1) - 1, with unbiased stochastic
//     rounding (up with probability equal to the fractional part; the randomness comes from a
//     cohort::Rng seeded by the caller: it hides nothing and is reproducible),
//   * stored in two's complement mod 2^bits.
// The sum of n such integers lies in [-nQ, nQ]; it never wraps when
// bits >= required_bits(input_bits, n) = input_bits + ceil(log2 n), which encode/decode check
// (InvalidArgument naming "secagg.bits"). decode() reads a sum word as a signed integer in
// [-2^(bits-1), 2^(bits-1)) and reports DataLoss when it lies outside [-nQ, nQ] (a sum that
// cannot come from n honest encodings).
//
// Thread safety: plain values.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "cohort/core/status.h"

namespace cohort::secagg {

// Everything both sides agree on before a round starts; the server picks graph_seed (public).
struct Params {
  // Round number; bound into every key, ciphertext and message, so nothing replays across
  // rounds.
  uint64_t round = 0;
  // Shamir threshold t: any t of a client's neighbours can reconstruct its secrets, fewer learn
  // nothing. 2 <= t <= number of neighbours (shares go to neighbours, never to oneself).
  // Security against a curious server colluding with clients needs t well above half of the
  // neighbours (Bonawitz et al. section 6; Bell et al. section 4); it is not enforced here.
  int32_t threshold = 2;
  // Neighbours k per client in the SecAgg+ ring graph: even, k < n; 0 = complete graph (every
  // client is every other client's neighbour, the original protocol).
  int32_t neighbours = 0;
  // Word width: inputs and the sum are mod 2^bits, 1 <= bits <= 32.
  int32_t bits = 32;
  // Words per vector m, 1 <= m <= kMaxLength.
  int64_t length = 1;
  // Seed of the neighbour graph's permutation (public, chosen by the server).
  std::array<uint8_t, 32> graph_seed{};

  // The longest vector a round accepts (the PRG's 32-bit block counter allows 2^36 words).
  static constexpr int64_t kMaxLength = int64_t{1} << 32;

  // The rules that do not depend on the roster: InvalidArgument "secagg.<field>: ...".
  Status validate() const;
  // validate() plus the rules for a roster of num_clients clients (k < n, t <= neighbours).
  Status validate_roster(int64_t num_clients) const;
  // Neighbours of each client in a roster of num_clients: k, or num_clients - 1 when k == 0.
  int64_t neighbour_count(int64_t num_clients) const;
  // 2^bits - 1.
  uint32_t word_mask() const;

  friend bool operator==(const Params&, const Params&) = default;
};

// Float <-> word code (see the file comment).
struct FixedPoint {
  // Values are clipped to [-range, range]; range > 0 and finite.
  double range = 1.0;
  // Bits of one encoded value including the sign, 2 <= input_bits <= 32.
  int32_t input_bits = 16;

  struct Encoded {
    std::vector<uint32_t> words;
    // How many values were clipped to +-range.
    int64_t clipped = 0;
  };

  // input_bits + ceil(log2 n): the smallest bits for which n summands never wrap (n >= 1).
  static int32_t required_bits(int32_t input_bits, int64_t n);
  // range and input_bits, and bits >= required_bits(input_bits, n):
  // InvalidArgument "secagg.bits: must be >= 23 to sum 100 values of 16 bits, got 20".
  Status validate(int32_t bits, int64_t n) const;
  // The largest encoded magnitude Q = 2^(input_bits - 1) - 1.
  int64_t max_magnitude() const;

  // Encodes x for a round with `bits`-bit words and n contributors (n only for the overflow
  // check). The same seed gives the same words. InvalidArgument for a NaN value (naming its
  // index) or a failed validate().
  Result<Encoded> encode(std::span<const float> x, int32_t bits, int64_t n, uint64_t seed) const;
  // Decodes the sum of n encodings: the real-valued sum of the n inputs (divide by n for the
  // mean). DataLoss when a word lies outside [-nQ, nQ].
  Result<std::vector<float>> decode(std::span<const uint32_t> sum, int32_t bits, int64_t n) const;
};

}  // namespace cohort::secagg
