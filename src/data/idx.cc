#include "cohort/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace cohort {
namespace {

constexpr int64_t kMaxIdxElements = int64_t{1} << 31;
// Payload is read in blocks of this size; the vector grows as data arrives, so a header
// that lies about its size cannot make us allocate far more than the file really holds.
constexpr size_t kReadBlock = size_t{1} << 26;

const char* type_name(uint8_t code) {
  switch (code) {
    case kIdxUByte:
      return "ubyte";
    case kIdxSByte:
      return "sbyte";
    case kIdxInt16:
      return "int16";
    case kIdxInt32:
      return "int32";
    case kIdxFloat32:
      return "float32";
    case kIdxFloat64:
      return "float64";
    default:
      return "unknown";
  }
}

std::string hex_byte(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02X", v & 0xFFu);
  return buf;
}

std::string dims_string(const std::vector<int64_t>& dims) {
  if (dims.empty()) return "(scalar)";
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += " x ";
    s += std::to_string(dims[i]);
  }
  return s;
}

// A byte stream over a raw or gzip-compressed file. read() returns the number of bytes
// read, fewer than asked only at the end of the data.
class Source {
 public:
  virtual ~Source() = default;
  virtual Result<size_t> read(void* buf, size_t n) = 0;
};

class RawSource final : public Source {
 public:
  RawSource(std::FILE* f, std::string path) : f_(f), path_(std::move(path)) {}
  ~RawSource() override { std::fclose(f_); }
  Result<size_t> read(void* buf, size_t n) override {
    const size_t got = std::fread(buf, 1, n, f_);
    if (got < n && std::ferror(f_)) {
      return Status::data_loss(path_ + ": read error: " + std::strerror(errno));
    }
    return got;
  }

 private:
  std::FILE* f_;
  std::string path_;
};

class GzSource final : public Source {
 public:
  GzSource(gzFile f, std::string path) : f_(f), path_(std::move(path)) {}
  ~GzSource() override { gzclose(f_); }
  Result<size_t> read(void* buf, size_t n) override {
    size_t total = 0;
    auto* out = static_cast<unsigned char*>(buf);
    while (total < n) {
      // gzread takes an unsigned int and returns an int.
      const unsigned want = static_cast<unsigned>(std::min<size_t>(n - total, INT_MAX / 2));
      const int got = gzread(f_, out + total, want);
      if (got < 0) return corrupt();
      total += static_cast<size_t>(got);
      if (static_cast<unsigned>(got) < want) break;
    }
    if (total < n) {
      // A short read is either the clean end of the stream or a truncated / damaged one;
      // zlib reports the latter only through gzerror.
      int errnum = Z_OK;
      gzerror(f_, &errnum);
      if (errnum != Z_OK && errnum != Z_STREAM_END) return corrupt();
    }
    return total;
  }

 private:
  Status corrupt() {
    int errnum = Z_OK;
    const char* msg = gzerror(f_, &errnum);
    return Status::data_loss(path_ + ": corrupt or truncated gzip data (zlib: " +
                             (msg && *msg ? msg : "unknown error") + ")");
  }

  gzFile f_;
  std::string path_;
};

Result<std::unique_ptr<Source>> open_source(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status::invalid_argument(path + ": is a directory, expected an IDX file");
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return Status::not_found(path + ": no such file");
    if (err == EACCES) return Status::permission_denied(path + ": " + std::strerror(err));
    return Status::unavailable(path + ": cannot open: " + std::strerror(err));
  }
  unsigned char magic[2] = {0, 0};
  const size_t got = std::fread(magic, 1, 2, f);
  if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    std::fclose(f);
    gzFile gz = gzopen(path.c_str(), "rb");
    if (gz == nullptr) return Status::unavailable(path + ": gzopen failed");
    gzbuffer(gz, 1u << 20);
    return std::unique_ptr<Source>(std::make_unique<GzSource>(gz, path));
  }
  std::rewind(f);
  return std::unique_ptr<Source>(std::make_unique<RawSource>(f, path));
}

uint32_t load_be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void to_host_order(std::vector<uint8_t>& bytes, int esize) {
  if constexpr (std::endian::native == std::endian::big) return;
  if (esize == 1) return;
  for (size_t i = 0; i + esize <= bytes.size(); i += esize) {
    std::reverse(bytes.begin() + i, bytes.begin() + i + esize);
  }
}

// Reads an IDX file. With max_leading > 0, reads only the first max_leading entries of the
// first dimension (no trailing-bytes check then) and reports the declared first dimension
// in *declared_leading, so a loader can cross-check files without decoding all of them.
Result<IdxArray> read_idx_prefix(const std::string& path, int64_t max_leading,
                                 int64_t* declared_leading) {
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Source> src, open_source(path));

  std::array<unsigned char, 4> magic{};
  COHORT_ASSIGN_OR_RETURN(size_t got, src->read(magic.data(), magic.size()));
  if (got < magic.size()) {
    return Status::data_loss(path + ": truncated: " + std::to_string(got) +
                             " bytes, shorter than the 4-byte IDX magic");
  }
  if (magic[0] != 0 || magic[1] != 0) {
    return Status::data_loss(path + ": bad IDX magic " + hex_byte(magic[0]) + " " +
                             hex_byte(magic[1]) + " (expected two zero bytes)");
  }
  IdxArray out;
  out.type_code = magic[2];
  const int esize = IdxArray::element_size(out.type_code);
  if (esize == 0) {
    return Status::data_loss(path + ": unknown IDX type code " + hex_byte(out.type_code) +
                             " (known: 0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, "
                             "0x0D float32, 0x0E float64)");
  }
  const int ndims = magic[3];
  std::vector<unsigned char> dim_bytes(static_cast<size_t>(ndims) * 4);
  COHORT_ASSIGN_OR_RETURN(got, src->read(dim_bytes.data(), dim_bytes.size()));
  if (got < dim_bytes.size()) {
    return Status::data_loss(path + ": truncated header: " + std::to_string(ndims) +
                             " dimensions declared but the file ends after " +
                             std::to_string(got / 4) + " of their sizes");
  }
  int64_t numel = 1;
  bool absurd = false;
  for (int d = 0; d < ndims; ++d) {
    const int64_t n = load_be32(&dim_bytes[static_cast<size_t>(d) * 4]);
    out.dims.push_back(n);
    // Saturate instead of overflowing: up to 255 dimensions of up to 2^32-1 each.
    if (!absurd) {
      numel *= n;
      if (numel > kMaxIdxElements) absurd = true;
    }
  }
  if (absurd) {
    return Status::invalid_argument(path + ": header declares " + dims_string(out.dims) +
                                    " elements, more than the 2^31 limit");
  }

  if (declared_leading) *declared_leading = out.dims.empty() ? 1 : out.dims[0];
  bool partial = false;
  if (max_leading > 0 && !out.dims.empty() && out.dims[0] > max_leading) {
    numel = numel / out.dims[0] * max_leading;
    out.dims[0] = max_leading;
    partial = true;
  }

  const size_t total = static_cast<size_t>(numel) * static_cast<size_t>(esize);
  size_t have = 0;
  while (have < total) {
    const size_t want = std::min(kReadBlock, total - have);
    out.bytes.resize(have + want);
    COHORT_ASSIGN_OR_RETURN(got, src->read(out.bytes.data() + have, want));
    have += got;
    if (got < want) {
      return Status::data_loss(path + ": truncated: header declares " + dims_string(out.dims) +
                               " " + type_name(out.type_code) + " values (" +
                               std::to_string(total) + " bytes of data) but the file holds only " +
                               std::to_string(have));
    }
  }

  if (!partial) {
    std::vector<unsigned char> extra(1 << 16);
    size_t trailing = 0;
    for (;;) {
      COHORT_ASSIGN_OR_RETURN(got, src->read(extra.data(), extra.size()));
      trailing += got;
      if (got < extra.size()) break;
    }
    if (trailing > 0) {
      return Status::data_loss(path + ": " + std::to_string(trailing) +
                               " trailing bytes after the " + dims_string(out.dims) + " " +
                               type_name(out.type_code) + " values the header declares");
    }
  }
  to_host_order(out.bytes, esize);
  return out;
}

}  // namespace

int IdxArray::element_size(uint8_t type_code) {
  switch (type_code) {
    case kIdxUByte:
    case kIdxSByte:
      return 1;
    case kIdxInt16:
      return 2;
    case kIdxInt32:
    case kIdxFloat32:
      return 4;
    case kIdxFloat64:
      return 8;
    default:
      return 0;
  }
}

int64_t IdxArray::numel() const {
  const int esize = element_size(type_code);
  return esize == 0 ? 0 : static_cast<int64_t>(bytes.size()) / esize;
}

double IdxArray::value(int64_t i) const {
  const uint8_t* p = bytes.data() + i * element_size(type_code);
  switch (type_code) {
    case kIdxUByte:
      return *p;
    case kIdxSByte:
      return static_cast<int8_t>(*p);
    case kIdxInt16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case kIdxInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case kIdxFloat32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case kIdxFloat64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    default:
      return 0.0;
  }
}

std::vector<double> IdxArray::to_doubles() const {
  std::vector<double> out(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) out[static_cast<size_t>(i)] = value(i);
  return out;
}

Result<IdxArray> read_idx(const std::string& path) { return read_idx_prefix(path, 0, nullptr); }

namespace {

// Debian ships the files gzipped; accept uncompressed copies too.
Result<std::string> find_fashion_file(const std::string& dir, const std::string& stem,
                                      const std::string& what) {
  const std::string gz = (std::filesystem::path(dir) / (stem + ".gz")).string();
  const std::string raw = (std::filesystem::path(dir) / stem).string();
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  if (std::filesystem::exists(raw, ec)) return raw;
  return Status::not_found("fashion-mnist " + what + ": " + gz + " not found (nor " + raw +
                           "); install Debian package dataset-fashion-mnist "
                           "(apt-get install dataset-fashion-mnist) or point data.path at a "
                           "directory holding the IDX files");
}

}  // namespace

Result<Dataset> load_fashion_mnist(const std::string& dir, const std::string& split,
                                   int64_t limit) {
  std::string prefix;
  if (split == "train") {
    prefix = "train";
  } else if (split == "test") {
    prefix = "t10k";
  } else {
    return Status::invalid_argument("fashion-mnist: split must be \"train\" or \"test\", got \"" +
                                    split + "\"");
  }
  if (limit < 0) {
    return Status::invalid_argument("fashion-mnist: limit must be >= 0, got " +
                                    std::to_string(limit));
  }
  COHORT_ASSIGN_OR_RETURN(const std::string images_path,
                          find_fashion_file(dir, prefix + "-images-idx3-ubyte", split + " images"));
  COHORT_ASSIGN_OR_RETURN(const std::string labels_path,
                          find_fashion_file(dir, prefix + "-labels-idx1-ubyte", split + " labels"));

  int64_t declared_labels = 0, declared_images = 0;
  COHORT_ASSIGN_OR_RETURN(IdxArray labels, read_idx_prefix(labels_path, limit, &declared_labels));
  if (labels.type_code != kIdxUByte || labels.dims.size() != 1) {
    return Status::data_loss(labels_path + ": expected a 1-D ubyte label array, got " +
                             dims_string(labels.dims) + " " + type_name(labels.type_code));
  }
  COHORT_ASSIGN_OR_RETURN(IdxArray images, read_idx_prefix(images_path, limit, &declared_images));
  if (images.type_code != kIdxUByte || images.dims.size() != 3 || images.dims[1] != 28 ||
      images.dims[2] != 28) {
    return Status::data_loss(images_path + ": expected N x 28 x 28 ubyte images, got " +
                             dims_string(images.dims) + " " + type_name(images.type_code));
  }
  if (declared_images != declared_labels) {
    return Status::data_loss("fashion-mnist " + split + ": " + images_path + " holds " +
                             std::to_string(declared_images) + " images but " + labels_path +
                             " holds " + std::to_string(declared_labels) + " labels");
  }

  Dataset ds;
  ds.name = "fashion-mnist";
  ds.sample_shape = {1, 28, 28};
  ds.num_classes = 10;
  ds.labels.resize(labels.bytes.size());
  for (size_t i = 0; i < labels.bytes.size(); ++i) {
    const uint8_t y = labels.bytes[i];
    if (y >= 10) {
      return Status::data_loss(labels_path + ": label " + std::to_string(i) + " is " +
                               std::to_string(y) + ", outside [0, 10)");
    }
    ds.labels[i] = y;
  }
  std::array<float, 256> scale{};
  for (int v = 0; v < 256; ++v) scale[static_cast<size_t>(v)] = static_cast<float>(v) / 255.0f;
  ds.features.resize(images.bytes.size());
  for (size_t i = 0; i < images.bytes.size(); ++i) ds.features[i] = scale[images.bytes[i]];
  return ds;
}

}  // namespace cohort
