// FixedPoint: clipping, unbiased stochastic rounding to [-Q, Q] and two's complement words
// mod 2^bits, and the signed decoding of a sum of n such words (rules in params.h).
#include <algorithm>
#include <cmath>
#include <string>

#include "cohort/core/rng.h"
#include "cohort/core/validate.h"
#include "cohort/secagg/params.h"

namespace cohort::secagg {
namespace {

uint32_t mask_of(int32_t bits) { return bits >= 32 ? 0xFFFFFFFFu : (uint32_t{1} << bits) - 1; }

}  // namespace

int32_t FixedPoint::required_bits(int32_t input_bits, int64_t n) {
  int32_t log2_ceil = 0;
  while (log2_ceil < 62 && (int64_t{1} << log2_ceil) < n) ++log2_ceil;
  return input_bits + log2_ceil;
}

int64_t FixedPoint::max_magnitude() const { return (int64_t{1} << (input_bits - 1)) - 1; }

Status FixedPoint::validate(int32_t bits, int64_t n) const {
  COHORT_RETURN_IF_ERROR(check_field("secagg.range", range, Range::above(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("secagg.input_bits", int64_t{input_bits}, Range::closed(2, 32)));
  COHORT_RETURN_IF_ERROR(check_field("secagg.clients", n, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("secagg.bits", int64_t{bits}, Range::closed(1, 32)));
  const int32_t need = required_bits(input_bits, n);
  if (bits < need) {
    return field_error("secagg.bits", "must be >= " + std::to_string(need) + " to sum " +
                                          std::to_string(n) + " values of " +
                                          std::to_string(input_bits) + " bits, got " +
                                          std::to_string(bits));
  }
  return Status();
}

Result<FixedPoint::Encoded> FixedPoint::encode(std::span<const float> x, int32_t bits, int64_t n,
                                               uint64_t seed) const {
  COHORT_RETURN_IF_ERROR(validate(bits, n));
  const int64_t q = max_magnitude();
  const double qd = static_cast<double>(q);
  const uint32_t mask = mask_of(bits);
  Rng rng(seed);
  Encoded out;
  out.words.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double v = x[i];
    if (std::isnan(v)) {
      return Status::invalid_argument("secagg: value " + std::to_string(i) + " is NaN");
    }
    if (v > range) {
      v = range;
      ++out.clipped;
    } else if (v < -range) {
      v = -range;
      ++out.clipped;
    }
    // v / range is exactly +-1 at the clip bounds, so the bounds map to +-Q exactly.
    const double scaled = v / range * qd;
    const double floor = std::floor(scaled);
    const double frac = scaled - floor;
    int64_t r = static_cast<int64_t>(floor) + (rng.uniform() < frac ? 1 : 0);
    r = std::min(std::max(r, -q), q);
    out.words[i] = static_cast<uint32_t>(static_cast<uint64_t>(r)) & mask;
  }
  return out;
}

Result<std::vector<float>> FixedPoint::decode(std::span<const uint32_t> sum, int32_t bits,
                                              int64_t n) const {
  COHORT_RETURN_IF_ERROR(validate(bits, n));
  const uint32_t mask = mask_of(bits);
  const int64_t modulus = int64_t{1} << bits;
  const int64_t half = modulus / 2;
  const int64_t bound = n * max_magnitude();  // < 2^(bits - 1) by validate()
  const double scale = range / static_cast<double>(max_magnitude());
  std::vector<float> out(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) {
    if ((sum[i] & ~mask) != 0) {
      return Status::invalid_argument("secagg: sum word " + std::to_string(i) + " = " +
                                      std::to_string(sum[i]) + " is not below 2^" +
                                      std::to_string(bits));
    }
    int64_t s = sum[i];
    if (s >= half) s -= modulus;
    if (s > bound || s < -bound) {
      return Status::data_loss("secagg: sum word " + std::to_string(i) + " decodes to " +
                               std::to_string(s) + ", outside [-" + std::to_string(bound) + ", " +
                               std::to_string(bound) + "] for " + std::to_string(n) +
                               " values of " + std::to_string(input_bits) + " bits");
    }
    out[i] = static_cast<float>(static_cast<double>(s) * scale);
  }
  return out;
}

}  // namespace cohort::secagg
