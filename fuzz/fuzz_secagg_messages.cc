// Fuzz target: the secure-aggregation message decoders (secagg/messages.h) on arbitrary bytes.
// Every decoder gets the input (so a message of one kind is also fed to the others' checks);
// a message that decodes must encode back to exactly the same bytes.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "cohort/secagg/messages.h"

namespace {

template <typename M>
void roundtrip(std::span<const uint8_t> in) {
  cohort::Result<M> m = M::decode(in);
  if (!m.ok()) return;
  const std::vector<uint8_t> out = m->encode();
  if (out.size() != in.size() || !std::equal(out.begin(), out.end(), in.begin())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  (void)cohort::secagg::peek_kind(in);
  roundtrip<cohort::secagg::AdvertiseKeys>(in);
  roundtrip<cohort::secagg::Roster>(in);
  roundtrip<cohort::secagg::ShareKeys>(in);
  roundtrip<cohort::secagg::ShareBundle>(in);
  roundtrip<cohort::secagg::MaskedInput>(in);
  roundtrip<cohort::secagg::UnmaskRequest>(in);
  roundtrip<cohort::secagg::UnmaskResponse>(in);
  return 0;
}
