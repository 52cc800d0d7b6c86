#include "cohort/privacy/dp.h"

#include <sodium.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <sstream>
#include <vector>

#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"

namespace cohort::privacy {

namespace {

Status bad(const std::string& key, const std::string& what, double got) {
  std::ostringstream s;
  s << "privacy.dp." << key << ": " << what << ", got " << got;
  return Status::invalid_argument(s.str());
}

void ensure_sodium() {
  // sodium_init is idempotent and thread-safe; it returns 1 when already initialised.
  static const int once = sodium_init();
  (void)once;
}

// Pairs of normals per chunk; a chunk's stream starts at a fixed ChaCha20 block, so chunks
// are independent and the result does not depend on how they are spread over threads.
constexpr int64_t kChunk = 8192;                           // floats per chunk
constexpr uint32_t kBlocksPerChunk = kChunk * 8 / 64;      // two u64 per pair of floats

// The 12-byte ChaCha20-IETF nonce for one stream.
std::array<uint8_t, crypto_stream_chacha20_ietf_NONCEBYTES> nonce_for(uint64_t stream) {
  std::array<uint8_t, crypto_stream_chacha20_ietf_NONCEBYTES> n{};
  std::memcpy(n.data(), &stream, sizeof stream);
  n[8] = 'd';
  n[9] = 'p';
  return n;
}

// Uniform in (0, 1] from 64 random bits (53 of them).
inline double unit(uint64_t bits) {
  return (static_cast<double>(bits >> 11) + 1.0) * 0x1.0p-53;
}

// Box-Muller on two uniforms.
inline void box_muller(uint64_t a, uint64_t b, double* z0, double* z1) {
  const double r = std::sqrt(-2.0 * std::log(unit(a)));
  const double t = 2.0 * std::numbers::pi * unit(b);
  *z0 = r * std::cos(t);
  *z1 = r * std::sin(t);
}

void keystream(const NoiseSeed& seed, uint64_t stream, uint32_t first_block, uint64_t* out,
               size_t words) {
  const auto nonce = nonce_for(stream);
  auto* bytes = reinterpret_cast<unsigned char*>(out);
  std::memset(bytes, 0, words * sizeof(uint64_t));
  crypto_stream_chacha20_ietf_xor_ic(bytes, bytes, words * sizeof(uint64_t), nonce.data(),
                                     first_block, seed.data());
}

}  // namespace

Status DpOptions::validate() const {
  if (!(noise_multiplier >= 0 && std::isfinite(noise_multiplier))) {
    return bad("noise_multiplier", "must be a finite number >= 0", noise_multiplier);
  }
  if (!(clip_norm > 0 && std::isfinite(clip_norm))) {
    return bad("clip_norm", "must be a finite number > 0", clip_norm);
  }
  if (!(delta > 0 && delta < 1)) return bad("delta", "must be in (0, 1)", delta);
  if (target_epsilon && !(*target_epsilon > 0 && std::isfinite(*target_epsilon))) {
    return bad("target_epsilon", "must be a finite number > 0", *target_epsilon);
  }
  if (side != "server" && side != "client") {
    return Status::invalid_argument("privacy.dp.side: must be server or client, got '" + side +
                                    "'");
  }
  if (!(target_quantile > 0 && target_quantile < 1)) {
    return bad("target_quantile", "must be in (0, 1)", target_quantile);
  }
  if (!(clip_learning_rate > 0 && std::isfinite(clip_learning_rate))) {
    return bad("clip_learning_rate", "must be > 0", clip_learning_rate);
  }
  if (!(clipped_count_stddev >= 0 && std::isfinite(clipped_count_stddev))) {
    return bad("clipped_count_stddev", "must be >= 0 (0 = 0.05 x the group size)",
               clipped_count_stddev);
  }
  if (conversion != "improved" && conversion != "classic") {
    return Status::invalid_argument(
        "privacy.dp.conversion: must be improved or classic, got '" + conversion + "'");
  }
  return Status();
}

double clip_l2(std::span<float> v, double clip_norm) {
  const double norm = ops::l2_norm(v);
  if (norm > clip_norm) ops::scale(v, static_cast<float>(clip_norm / norm));
  return norm;
}

void add_gaussian_noise(std::span<float> v, double stddev, const NoiseSeed& seed,
                        uint64_t stream) {
  ensure_sodium();
  const auto n = static_cast<int64_t>(v.size());
  kernel_pool().parallel_for(0, (n + kChunk - 1) / kChunk, 1, [&](int64_t lo, int64_t hi) {
    std::vector<uint64_t> bits(kChunk);
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t begin = c * kChunk;
      const int64_t len = std::min(kChunk, n - begin);
      const size_t words = static_cast<size_t>((len + 1) / 2 * 2);
      keystream(seed, stream, static_cast<uint32_t>(c) * kBlocksPerChunk, bits.data(), words);
      for (int64_t i = 0; i < len; i += 2) {
        double z0 = 0, z1 = 0;
        box_muller(bits[i], bits[i + 1], &z0, &z1);
        v[begin + i] += static_cast<float>(stddev * z0);
        if (i + 1 < len) v[begin + i + 1] += static_cast<float>(stddev * z1);
      }
    }
  });
}

double gaussian(const NoiseSeed& seed, uint64_t stream, uint64_t index) {
  ensure_sodium();
  // Scalar draws use their own nonce space (the top bit of the stream id) so that they never
  // share a key stream with vector noise.
  uint64_t bits[2];
  const uint64_t s = stream | (uint64_t{1} << 63);
  keystream(seed, s, static_cast<uint32_t>(index), bits, 2);
  double z0 = 0, z1 = 0;
  box_muller(bits[0], bits[1], &z0, &z1);
  return z0;
}

NoiseSeed derive_seed(uint64_t run_seed, std::string_view label) {
  ensure_sodium();
  NoiseSeed out{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, out.size());
  const char tag[] = "cohort dp noise";
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(tag), sizeof tag);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(&run_seed),
                            sizeof run_seed);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(label.data()),
                            label.size());
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

NoiseSeed random_seed() {
  ensure_sodium();
  NoiseSeed out{};
  randombytes_buf(out.data(), out.size());
  return out;
}

Result<double> update_noise_multiplier(double z, double count_stddev) {
  if (!(2 * count_stddev > z)) {
    std::ostringstream s;
    s << "privacy.dp.clipped_count_stddev: adaptive clipping needs 2 x clipped_count_stddev > "
         "noise_multiplier (the count's noise takes a share of the budget), got "
      << count_stddev << " with noise_multiplier " << z;
    return Status::invalid_argument(s.str());
  }
  return 1.0 / std::sqrt(1.0 / (z * z) - 1.0 / (4.0 * count_stddev * count_stddev));
}

double next_clip_norm(double clip_norm, double unclipped, double count, double count_noise,
                      double expected, double target_quantile, double learning_rate) {
  const double b = (unclipped - count / 2 + count_noise) / expected + 0.5;
  return clip_norm * std::exp(-learning_rate * (b - target_quantile));
}

}  // namespace cohort::privacy
