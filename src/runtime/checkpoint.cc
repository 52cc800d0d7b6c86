#include "cohort/runtime/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

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

Status write_checkpoint(const std::string& dir, const Checkpoint& ckpt) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::internal(dir + ": cannot create checkpoint directory: " + ec.message());
  Json m = {{"format", "cohort-checkpoint"},
            {"format_version", 1},
            {"strategy", ckpt.strategy},
            {"version", ckpt.version},
            {"epoch", ckpt.epoch}};
  Json clients = Json::array();
  for (const CheckpointClient& c : ckpt.clients) {
    clients.push_back(
        {{"id", c.id}, {"num_examples", c.num_examples}, {"tasks_done", c.tasks_done}});
  }
  m["clients"] = clients;
  m["rng_state"] = ckpt.rng_state;
  m["counters"] = ckpt.counters;
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

  const std::string final_path = dir + "/" + kCheckpointFile;
  const std::string tmp_path = final_path + ".tmp";
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::internal(tmp_path + ": cannot open: " + std::strerror(errno));
  Status s = write_all(fd, kMagic, sizeof(kMagic), tmp_path);
  const uint64_t len = manifest.size();
  if (s.ok()) s = write_all(fd, &len, sizeof(len), tmp_path);
  if (s.ok()) s = write_all(fd, manifest.data(), manifest.size(), tmp_path);
  for (const auto& [name, rec] : ckpt.state.arrays) {
    if (!s.ok()) break;
    s = write_all(fd, rec.data(), static_cast<size_t>(rec.num_bytes()), tmp_path);
  }
  if (s.ok() && ::fsync(fd) != 0)
    s = Status::internal(tmp_path + ": fsync failed: " + std::strerror(errno));
  ::close(fd);
  if (!s.ok()) {
    ::unlink(tmp_path.c_str());
    return s;
  }
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    return Status::internal(final_path + ": rename failed: " + std::strerror(errno));
  }
  // The rename is durable only once the directory entry is.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status();
}

Result<Checkpoint> read_checkpoint(const std::string& dir) {
  const std::string path = dir + "/" + kCheckpointFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(path + ": no checkpoint (cannot open)");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  if (bytes.size() < 16 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::data_loss(path + ": not a Cohort checkpoint (bad magic)");
  }
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + 8, sizeof(len));
  if (len > bytes.size() - 16) {
    return Status::data_loss(path + ": manifest length " + std::to_string(len) +
                             " exceeds the file size " + std::to_string(bytes.size()));
  }
  Json m = Json::parse(bytes.begin() + 16, bytes.begin() + 16 + static_cast<int64_t>(len), nullptr,
                       /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object())
    return Status::data_loss(path + ": manifest is not valid JSON");
  const size_t data_start = 16 + len;
  const size_t data_bytes = bytes.size() - data_start;
  Checkpoint c;
  try {
    if (m.at("format_version").get<int64_t>() != 1) {
      return Status::data_loss(path + ": unsupported format_version " +
                               m.at("format_version").dump());
    }
    c.strategy = m.at("strategy").get<std::string>();
    c.version = m.at("version").get<int64_t>();
    c.epoch = m.at("epoch").get<int64_t>();
    for (const Json& j : m.at("clients")) {
      c.clients.push_back({j.at("id").get<int64_t>(), j.at("num_examples").get<int64_t>(),
                           j.at("tasks_done").get<int64_t>()});
    }
    c.rng_state = m.at("rng_state").get<std::vector<uint64_t>>();
    c.counters = m.at("counters");
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
      ArrayRecord rec(*layout);
      const auto off = a.at("offset").get<int64_t>();
      const auto nb = a.at("bytes").get<int64_t>();
      if (nb != rec.num_bytes() || off < 0 || static_cast<size_t>(off + nb) > data_bytes) {
        return Status::data_loss(path + ": array " + name + " (" + std::to_string(nb) +
                                 " bytes at offset " + std::to_string(off) +
                                 ") does not fit its layout or the file (truncated?)");
      }
      std::memcpy(rec.data(), bytes.data() + data_start + off, static_cast<size_t>(nb));
      if (rec.hash_hex() != a.at("hash").get<std::string>()) {
        return Status::data_loss(path + ": array " + name + ": hash mismatch (corrupt file)");
      }
      c.state.arrays.emplace(name, std::move(rec));
    }
  } catch (const std::exception& e) {
    return Status::data_loss(path + ": bad manifest: " + e.what());
  }
  return c;
}

}  // namespace cohort
