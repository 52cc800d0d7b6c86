// Fuzz target: the IDX reader (read_idx), raw and gzip-compressed, on arbitrary bytes.
#include <cstdint>

#include "cohort/data/idx.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = cohort::fuzz::write_input_file(data, size, "-idx");
  cohort::Result<cohort::IdxArray> a = cohort::read_idx(path);
  if (a.ok() && a->numel() > 0) (void)a->value(a->numel() - 1);
  return 0;
}
