#include "cohort/runtime/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "cohort/core/hash.h"

namespace cohort {

namespace {

constexpr char kMagic[8] = {'C', 'O', 'H', 'O', 'R', 'T', 'C', '1'};
static_assert(std::endian::native == std::endian::little,
              "checkpoints store little-endian float32; big-endian hosts need byte swapping");

Status write_all(int fd, const void* p, size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::internal(path + ": write failed: " + std::strerror(errno));
    }
    c += w;
    n -= static_cast<size_t>(w);
  }
  return Status();
}

Json layout_json(const ArrayLayout& l) {
  Json a = Json::array();
  for (const ArraySpec& s : l.specs()) {
    a.push_back({{"name", s.name}, {"shape", s.shape}, {"trainable", s.trainable}});
  }
  return a;
}

}  // namespace

namespace {

std::string numbered(const std::string& final_path, int64_t n) {
  return n == 0 ? final_path : final_path + "." + std::to_string(n);
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Makes room for a new newest file: .1 .. .keep-1 end up holding the previous ones, and the
// current newest stays in place (hard-linked as .1) until the rename replaces it, so there is
// always a complete checkpoint under the newest name or, at worst, under .1.
Status rotate(const std::string& final_path, int64_t keep) {
  std::error_code ec;
  // Files beyond the number kept (keep was lowered since they were written).
  for (int64_t n = std::max<int64_t>(keep, 1);; ++n) {
    const std::string p = numbered(final_path, n);
    if (!exists(p)) break;
    std::filesystem::remove(p, ec);
  }
  if (keep <= 1 || !exists(final_path)) return Status();
  for (int64_t n = keep - 1; n >= 2; --n) {
    const std::string from = numbered(final_path, n - 1);
    if (exists(from) && ::rename(from.c_str(), numbered(final_path, n).c_str()) != 0) {
      return Status::internal(from + ": rename failed: " + std::strerror(errno));
    }
  }
  const std::string first = numbered(final_path, 1);
  ::unlink(first.c_str());
  if (::link(final_path.c_str(), first.c_str()) != 0 &&
      ::rename(final_path.c_str(), first.c_str()) != 0) {
    return Status::internal(final_path + ": cannot keep as " + first + ": " +
                            std::strerror(errno));
  }
  return Status();
}

}  // namespace

namespace {

// Writes `ckpt` to `tmp_path` and fsyncs it (the file is complete once this returns OK).
Status write_temporary(const std::string& tmp_path, const Checkpoint& ckpt) {
  Json m = {{"format", "cohort-checkpoint"},
            {"format_version", kCheckpointFormatVersion},
            {"strategy", ckpt.strategy},
            {"version", ckpt.version},
            {"epoch", ckpt.epoch}};
  m["rng_state"] = ckpt.rng_state;
  m["runtime"] = ckpt.runtime;
  m["strategy_state"] = ckpt.state.scalars;
  Json arrays = Json::array();
  int64_t offset = 0;
  for (const auto& [name, rec] : ckpt.state.arrays) {
    arrays.push_back({{"name", name},
                      {"layout", layout_json(*rec.layout())},
                      {"offset", offset},
                      {"bytes", rec.num_bytes()},
                      {"hash", rec.hash_hex()}});
    offset += rec.num_bytes();
  }
  m["arrays"] = arrays;
  const std::string manifest = m.dump();
  const uint64_t manifest_hash = fnv1a64(manifest.data(), manifest.size());

  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::internal(tmp_path + ": cannot open: " + std::strerror(errno));
  Status s = write_all(fd, kMagic, sizeof(kMagic), tmp_path);
  const uint64_t len = manifest.size();
  if (s.ok()) s = write_all(fd, &len, sizeof(len), tmp_path);
  if (s.ok()) s = write_all(fd, manifest.data(), manifest.size(), tmp_path);
  if (s.ok()) s = write_all(fd, &manifest_hash, sizeof(manifest_hash), tmp_path);
  for (const auto& [name, rec] : ckpt.state.arrays) {
    if (!s.ok()) break;
    s = write_all(fd, rec.data(), static_cast<size_t>(rec.num_bytes()), tmp_path);
  }
  if (s.ok() && ::fsync(fd) != 0)
    s = Status::internal(tmp_path + ": fsync failed: " + std::strerror(errno));
  ::close(fd);
  if (!s.ok()) ::unlink(tmp_path.c_str());
  return s;
}

// Renames the complete temporary file over `final_path` and makes the rename durable.
Status commit_temporary(const std::string& tmp_path, const std::string& final_path) {
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    return Status::internal(final_path + ": rename failed: " + std::strerror(errno));
  }
  // The renames are durable only once the directory entry is.
  std::string dir = std::filesystem::path(final_path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status();
}

}  // namespace

Status write_checkpoint(const std::string& dir, const Checkpoint& ckpt, int64_t keep) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::internal(dir + ": cannot create checkpoint directory: " + ec.message());
  const std::string final_path = dir + "/" + kCheckpointFile;
  const std::string tmp_path = final_path + ".tmp";
  COHORT_RETURN_IF_ERROR(write_temporary(tmp_path, ckpt));
  if (Status s = rotate(final_path, keep); !s.ok()) {
    ::unlink(tmp_path.c_str());
    return s;
  }
  return commit_temporary(tmp_path, final_path);
}

Status write_checkpoint_file(const std::string& path, const Checkpoint& ckpt) {
  const std::string tmp_path = path + ".tmp";
  COHORT_RETURN_IF_ERROR(write_temporary(tmp_path, ckpt));
  return commit_temporary(tmp_path, path);
}

Result<Checkpoint> read_checkpoint_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(path + ": no checkpoint (cannot open)");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  constexpr size_t kHeader = 16, kChecksum = 8;
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::data_loss(path + ": not a Cohort checkpoint (bad magic)");
  }
  if (bytes.size() < kHeader + kChecksum) {
    return Status::data_loss(path + ": truncated (" + std::to_string(bytes.size()) + " bytes)");
  }
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + 8, sizeof(len));
  if (len > bytes.size() - kHeader - kChecksum) {
    return Status::data_loss(path + ": manifest length " + std::to_string(len) +
                             " exceeds the file size " + std::to_string(bytes.size()));
  }
  uint64_t stored_hash = 0;
  std::memcpy(&stored_hash, bytes.data() + kHeader + len, sizeof(stored_hash));
  if (fnv1a64(bytes.data() + kHeader, len) != stored_hash) {
    return Status::data_loss(path + ": manifest checksum mismatch (corrupt file)");
  }
  Json m = Json::parse(bytes.begin() + kHeader, bytes.begin() + static_cast<int64_t>(kHeader + len),
                       nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object())
    return Status::data_loss(path + ": manifest is not a valid JSON object");
  const size_t data_start = kHeader + len + kChecksum;
  const size_t data_bytes = bytes.size() - data_start;
  Checkpoint c;
  try {
    if (!m.contains("format_version") || m["format_version"] != kCheckpointFormatVersion) {
      return Status::data_loss(path + ": unsupported format_version " +
                               (m.contains("format_version") ? m["format_version"].dump()
                                                             : std::string("(none)")) +
                               " (this build reads " + std::to_string(kCheckpointFormatVersion) +
                               ")");
    }
    c.strategy = m.at("strategy").get<std::string>();
    c.version = m.at("version").get<int64_t>();
    c.epoch = m.at("epoch").get<int64_t>();
    c.rng_state = m.at("rng_state").get<std::vector<uint64_t>>();
    c.runtime = m.at("runtime");
    c.state.scalars = m.at("strategy_state");
    for (const Json& a : m.at("arrays")) {
      const std::string name = a.at("name").get<std::string>();
      std::vector<ArraySpec> specs;
      for (const Json& s : a.at("layout")) {
        specs.push_back({s.at("name").get<std::string>(), s.at("shape").get<std::vector<int64_t>>(),
                         s.at("trainable").get<bool>()});
      }
      Result<std::shared_ptr<const ArrayLayout>> layout = ArrayLayout::create(std::move(specs));
      if (!layout.ok())
        return Status::data_loss(path + ": array " + name + ": " + layout.error().to_string());
      const auto off = a.at("offset").get<int64_t>();
      const auto nb = a.at("bytes").get<int64_t>();
      if (nb != (*layout)->num_bytes() || off < 0 || static_cast<size_t>(off) > data_bytes ||
          static_cast<size_t>(nb) > data_bytes - static_cast<size_t>(off)) {
        return Status::data_loss(path + ": array " + name + " (" + std::to_string(nb) +
                                 " bytes at offset " + std::to_string(off) +
                                 ") does not fit its layout or the file (truncated?)");
      }
      ArrayRecord rec(*layout);
      std::memcpy(rec.data(), bytes.data() + data_start + off, static_cast<size_t>(nb));
      if (rec.hash_hex() != a.at("hash").get<std::string>()) {
        return Status::data_loss(path + ": array " + name + ": hash mismatch (corrupt file)");
      }
      c.state.arrays.insert_or_assign(name, std::move(rec));
    }
  } catch (const std::exception& e) {
    return Status::data_loss(path + ": bad manifest: " + e.what());
  }
  return c;
}

Result<Checkpoint> read_checkpoint(const std::string& dir, std::vector<std::string>* skipped) {
  const std::string final_path = dir + "/" + kCheckpointFile;
  std::optional<Status> first_error;
  // The newest name may be missing for a moment during a rotation: .1 is then the newest.
  for (int64_t n = 0;; ++n) {
    const std::string path = numbered(final_path, n);
    if (!exists(path)) {
      if (n == 0) continue;
      break;
    }
    Result<Checkpoint> c = read_checkpoint_file(path);
    if (c.ok()) return c;
    if (skipped != nullptr) skipped->push_back(c.error().to_string());
    if (!first_error) first_error = c.error();
  }
  if (first_error) return *first_error;
  return Status::not_found(final_path + ": no checkpoint (cannot open)");
}

}  // namespace cohort
