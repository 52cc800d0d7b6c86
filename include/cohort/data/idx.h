// IDX files (the MNIST / Fashion-MNIST format) and the Fashion-MNIST loader.
//
// IDX layout (big-endian): two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte,
// 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then one
// uint32 size per dimension, then the values. Files may be gzip-compressed (detected from the
// magic bytes, not the name). See docs/formats.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/data/dataset.h"

namespace cohort {

struct IdxArray {
  uint8_t type_code = 0;
  std::vector<int64_t> dims;
  std::vector<double> values;  // every element converted to double, row-major
  int64_t numel() const { return static_cast<int64_t>(values.size()); }
};

// Reads an IDX file, gzipped or not. Errors (all naming the file):
//   NotFound        the file does not exist;
//   DataLoss        bad magic, unknown type code, truncated data, trailing bytes, corrupt gzip;
//   InvalidArgument a header declaring an absurd size (> 2^31 elements).
Result<IdxArray> read_idx(const std::string& path);

// Default directory of Debian's dataset-fashion-mnist package.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Loads the "train" (60000) or "test" (10000) split from `dir`, looking for
// {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. Pixels are scaled to [0,1];
// sample_shape {1,28,28}; 10 classes. NotFound naming the missing file and the Debian package
// to install; DataLoss / InvalidArgument for malformed or inconsistent files.
// `limit` > 0 keeps only the first `limit` examples (fast tests).
Result<Dataset> load_fashion_mnist(const std::string& dir, const std::string& split,
                                   int64_t limit = 0);

}  // namespace cohort
