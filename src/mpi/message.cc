#include "mpi/message.h"

#include <cstring>
#include <utility>

namespace cohort::mpi {

namespace {

Json specs_json(const ArrayLayout& layout) {
  Json specs = Json::array();
  for (const ArraySpec& s : layout.specs()) {
    specs.push_back({{"name", s.name}, {"shape", s.shape}, {"trainable", s.trainable}});
  }
  return specs;
}

Status malformed(const std::string& what) { return Status::data_loss("MPI message: " + what); }

}  // namespace

void MessageWriter::add_record(const std::string& key, const ArrayRecord& record) {
  const size_t bytes = static_cast<size_t>(record.num_bytes());
  blobs_[key] = {{"offset", offset_},
                 {"bytes", bytes},
                 {"specs", record.empty() ? Json() : specs_json(*record.layout())}};
  if (bytes > 0) parts_.push_back({record.data(), bytes});
  offset_ += bytes;
}

void MessageWriter::add_doubles(const std::string& key, std::vector<double> values) {
  const size_t bytes = values.size() * sizeof(double);
  blobs_[key] = {{"offset", offset_}, {"bytes", bytes}};
  doubles_.push_back(std::move(values));
  if (bytes > 0) parts_.push_back({doubles_.back().data(), bytes});
  offset_ += bytes;
}

std::string MessageWriter::finish() {
  header_["blobs"] = blobs_;
  const std::string head = header_.dump();
  std::string out;
  out.resize(sizeof(uint64_t) + head.size() + offset_);
  const uint64_t n = head.size();
  std::memcpy(out.data(), &n, sizeof n);  // x86-64 and every MPI host we know: little endian
  std::memcpy(out.data() + sizeof n, head.data(), head.size());
  size_t at = sizeof n + head.size();
  for (const Blob& b : parts_) {
    std::memcpy(out.data() + at, b.data, b.bytes);
    at += b.bytes;
  }
  return out;
}

Result<MessageReader> MessageReader::parse(std::string bytes) {
  MessageReader r;
  uint64_t n = 0;
  if (bytes.size() < sizeof n) return malformed("shorter than its header length");
  std::memcpy(&n, bytes.data(), sizeof n);
  if (n > bytes.size() - sizeof n) return malformed("header length beyond the message");
  r.header_ = Json::parse(bytes.begin() + sizeof n,
                          bytes.begin() + static_cast<std::ptrdiff_t>(sizeof n + n), nullptr,
                          /*allow_exceptions=*/false);
  if (r.header_.is_discarded() || !r.header_.is_object()) return malformed("header is not JSON");
  r.body_ = sizeof n + n;
  r.bytes_ = std::move(bytes);
  return r;
}

bool MessageReader::has(const std::string& key) const {
  return header_.contains("blobs") && header_["blobs"].contains(key);
}

Result<std::string_view> MessageReader::blob(const std::string& key) const {
  if (!has(key)) return malformed("no blob '" + key + "'");
  const Json& b = header_["blobs"][key];
  if (!b.contains("offset") || !b.contains("bytes") || !b["offset"].is_number_unsigned() ||
      !b["bytes"].is_number_unsigned()) {
    return malformed("blob '" + key + "' has no offset and size");
  }
  const auto offset = b["offset"].get<uint64_t>();
  const auto size = b["bytes"].get<uint64_t>();
  const uint64_t body = bytes_.size() - body_;
  if (offset > body || size > body - offset) return malformed("blob '" + key + "' out of range");
  return std::string_view(bytes_).substr(body_ + offset, size);
}

Result<ArrayRecord> MessageReader::record(const std::string& key) const {
  COHORT_ASSIGN_OR_RETURN(std::string_view bytes, blob(key));
  const Json& specs = header_["blobs"][key]["specs"];
  if (specs.is_null()) {
    if (!bytes.empty()) return malformed("empty record '" + key + "' with bytes");
    return ArrayRecord();
  }
  std::vector<ArraySpec> list;
  try {
    for (const Json& s : specs) {
      list.push_back({.name = s.at("name").get<std::string>(),
                      .shape = s.at("shape").get<std::vector<int64_t>>(),
                      .trainable = s.at("trainable").get<bool>()});
    }
  } catch (const Json::exception& e) {
    return malformed("record '" + key + "': bad layout: " + e.what());
  }
  COHORT_ASSIGN_OR_RETURN(auto layout, ArrayLayout::create(std::move(list)));
  ArrayRecord r(layout);
  if (static_cast<size_t>(r.num_bytes()) != bytes.size()) {
    return malformed("record '" + key + "': " + std::to_string(bytes.size()) +
                     " bytes for a layout of " + std::to_string(r.num_bytes()));
  }
  if (!bytes.empty()) std::memcpy(r.data(), bytes.data(), bytes.size());
  return r;
}

Result<std::vector<double>> MessageReader::doubles(const std::string& key) const {
  COHORT_ASSIGN_OR_RETURN(std::string_view bytes, blob(key));
  if (bytes.size() % sizeof(double) != 0) return malformed("blob '" + key + "' is not doubles");
  std::vector<double> v(bytes.size() / sizeof(double));
  if (!bytes.empty()) std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

void write_metrics(MessageWriter& w, const std::string& key, const MetricRecord& metrics) {
  Json names = Json::array();
  std::vector<double> values;
  for (const auto& [name, value] : metrics) {
    names.push_back(name);
    values.push_back(value);
  }
  w.header()[key + "_names"] = std::move(names);
  w.add_doubles(key, std::move(values));
}

Result<MetricRecord> read_metrics(const MessageReader& r, const std::string& key) {
  COHORT_ASSIGN_OR_RETURN(std::vector<double> values, r.doubles(key));
  const Json& names = r.header().value(key + "_names", Json::array());
  if (!names.is_array() || names.size() != values.size()) {
    return malformed("metrics '" + key + "': names and values differ in number");
  }
  MetricRecord m;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!names[i].is_string()) return malformed("metrics '" + key + "': a name is not a string");
    m[names[i].get<std::string>()] = values[i];
  }
  return m;
}

void write_status(Json& header, const Status& status) {
  if (status.ok()) return;
  header["code"] = static_cast<int>(status.code());
  header["message"] = status.message();
}

Status read_status(const Json& header) {
  if (!header.contains("code")) return Status();
  const Json& code = header["code"];
  const Json& message = header.value("message", Json(""));
  if (!code.is_number_integer() || !message.is_string()) {
    return malformed("a status without an integer code and a message");
  }
  return Status(static_cast<StatusCode>(code.get<int>()), message.get<std::string>());
}

}  // namespace cohort::mpi
