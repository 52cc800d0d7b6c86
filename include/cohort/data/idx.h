// IDX files (the MNIST / Fashion-MNIST format) and the Fashion-MNIST loader.
//
// IDX layout (big-endian): two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte,
// 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then one
// uint32 size per dimension, then the values. Files may be gzip-compressed (detected from the
// magic bytes, not the name). See docs/formats.md.
//
// Thread safety: the functions are reentrant; an IdxArray is a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/data/dataset.h"

namespace cohort {

// IDX type codes.
inline constexpr uint8_t kIdxUByte = 0x08;
inline constexpr uint8_t kIdxSByte = 0x09;
inline constexpr uint8_t kIdxInt16 = 0x0B;
inline constexpr uint8_t kIdxInt32 = 0x0C;
inline constexpr uint8_t kIdxFloat32 = 0x0D;
inline constexpr uint8_t kIdxFloat64 = 0x0E;

struct IdxArray {
  uint8_t type_code = 0;
  std::vector<int64_t> dims;
  // The elements at their stored width, row-major, in host byte order (the file's big-endian
  // values already swapped): numel() * element_size(type_code) bytes. Not widened to double:
  // the Fashion-MNIST training images are 47 MB as bytes but would be 376 MB as doubles.
  // For kIdxUByte, bytes[i] is element i.
  std::vector<uint8_t> bytes;

  // Bytes per element of a type code (1, 2, 4 or 8); 0 for an unknown code.
  static int element_size(uint8_t type_code);
  int64_t numel() const;
  // Element i converted to double (exact for every IDX type). Requires 0 <= i < numel().
  double value(int64_t i) const;
  // Every element converted to double (allocates numel() doubles).
  std::vector<double> to_doubles() const;
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
