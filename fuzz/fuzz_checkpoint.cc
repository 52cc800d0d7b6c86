// Fuzz target: the checkpoint reader (read_checkpoint_file). It must return a Checkpoint or a
// DataLoss naming the fault: never crash, hang, or allocate what the file merely claims.
// The first input byte picks the mode: even = the bytes are the file; odd = the bytes after
// a 2-byte manifest length are a manifest and array data, and the target writes the magic,
// the length and a correct manifest checksum around them, so the fuzzer reaches the manifest
// and array checks behind the checksum.
#include <cstdint>
#include <cstring>
#include <string>

#include "cohort/core/hash.h"
#include "cohort/runtime/checkpoint.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string file;
  if ((data[0] & 1) == 0 || size < 3) {
    file.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  } else {
    const size_t want = static_cast<size_t>(data[1]) | (static_cast<size_t>(data[2]) << 8);
    const size_t len = std::min(want, size - 3);
    const char* manifest = reinterpret_cast<const char*>(data + 3);
    const uint64_t n = len;
    const uint64_t hash = cohort::fnv1a64(manifest, len);
    file.append("COHORTC1", 8);
    file.append(reinterpret_cast<const char*>(&n), sizeof(n));
    file.append(manifest, len);
    file.append(reinterpret_cast<const char*>(&hash), sizeof(hash));
    file.append(manifest + len, size - 3 - len);
  }
  const std::string& path = cohort::fuzz::write_input_file(
      reinterpret_cast<const uint8_t*>(file.data()), file.size(), ".cohort");
  cohort::Result<cohort::Checkpoint> c = cohort::read_checkpoint_file(path);
  (void)c;
  return 0;
}
