// Fuzz target: a codec payload as a receiver takes it (docs/wire_format.md, "Codec payload").
// The first byte picks the chain (every codec appears in one), the rest is the payload,
// decoded two ways: whole (Chain::decode, frames in parallel) and streamed in two pieces split
// where the second byte says (StreamDecoder, as the server and the client read it). Both must
// agree: the same verdict, and on success the same values, all finite. A crash, a hang, a
// disagreement or a non-finite value is a finding.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cohort/codec/codec.h"

namespace {

using cohort::codec::Chain;

const char* const kChains[] = {
    "f32",         "fp16",          "bf16 -> zstd",     "int8",
    "int4:64",     "int2:8",        "topk:0.1",         "topk:0.05 -> int8 -> zstd",
    "randk:20 -> fp16", "terngrad", "terngrad:0",      "kmeans:4",
    "zstd",        "fedzip",        "topk:30:noef -> kmeans:16"};
constexpr size_t kNumChains = sizeof(kChains) / sizeof(kChains[0]);

// The receiver's model: three arrays (one smaller than a block), 700 elements.
const std::vector<int64_t> kOffsets = {0, 300, 303, 700};

const std::shared_ptr<const Chain>& chain(size_t i) {
  static const std::vector<std::shared_ptr<const Chain>> chains = [] {
    std::vector<std::shared_ptr<const Chain>> v;
    for (const char* c : kChains) v.push_back(*Chain::parse(c));
    return v;
  }();
  return chains[i];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::shared_ptr<const Chain>& c = chain(data[0] % kNumChains);
  const size_t split = data[1];
  const std::string_view payload(reinterpret_cast<const char*>(data + 2), size - 2);
  std::vector<float> whole(700, -1.0f), streamed(700, -2.0f);
  const cohort::Status a = c->decode(payload, kOffsets, whole);
  cohort::codec::StreamDecoder d(c, kOffsets, "fuzz");
  auto sink = [&](int64_t first, std::span<const float> v) {
    if (first < 0 || first + static_cast<int64_t>(v.size()) > 700) __builtin_trap();
    std::memcpy(streamed.data() + first, v.data(), v.size() * sizeof(float));
    return cohort::Status();
  };
  const size_t cut = std::min(split, payload.size());
  cohort::Status b = d.feed(payload.substr(0, cut), sink);
  if (b.ok()) b = d.feed(payload.substr(cut), sink);
  if (b.ok()) b = d.finish();
  // COHORT_FUZZ_VERBOSE=1: say what each input decoded to (for checking seeds).
  if (std::getenv("COHORT_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "%s: %s\n", c->spec().c_str(), a.to_string().c_str());
  }
  if (a.ok() != b.ok()) __builtin_trap();
  if (a.ok()) {
    for (size_t i = 0; i < whole.size(); ++i) {
      if (!std::isfinite(whole[i])) __builtin_trap();
      if (std::memcmp(&whole[i], &streamed[i], sizeof(float)) != 0) __builtin_trap();
    }
  }
  return 0;
}
