// The bytes that travel between MPI ranks (docs/design/mpi.md): a JSON header and binary blobs.
//
//   message := u64 header length (little endian) | header (JSON) | blob bytes
//
// The header's "blobs" object maps each blob's key to its byte range and, for an ArrayRecord,
// its layout ("specs": [{"name", "shape", "trainable"}], null for an empty record). Floats and
// doubles travel as their bits, so a model arrives bit-identical. No MPI here: the codec is
// tested on its own (message_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"

namespace cohort::mpi {

// Message tags.
enum Tag : int { kHello = 1, kTask = 2, kResult = 3, kStop = 4, kStopped = 5 };

class MessageWriter {
 public:
  Json& header() { return header_; }
  // `record` must outlive finish().
  void add_record(const std::string& key, const ArrayRecord& record);
  void add_doubles(const std::string& key, std::vector<double> values);
  std::string finish();

 private:
  struct Blob {
    const void* data;
    size_t bytes;
  };
  Json header_ = Json::object();
  Json blobs_ = Json::object();
  std::vector<Blob> parts_;
  std::vector<std::vector<double>> doubles_;
  size_t offset_ = 0;
};

class MessageReader {
 public:
  // DataLoss naming what is wrong for a truncated or malformed message.
  static Result<MessageReader> parse(std::string bytes);
  const Json& header() const { return header_; }
  bool has(const std::string& key) const;
  Result<ArrayRecord> record(const std::string& key) const;
  Result<std::vector<double>> doubles(const std::string& key) const;

 private:
  Result<std::string_view> blob(const std::string& key) const;
  std::string bytes_;
  Json header_;
  size_t body_ = 0;
};

// MetricRecord as names in the header and values as a doubles blob (NaN and infinities intact).
void write_metrics(MessageWriter& w, const std::string& key, const MetricRecord& metrics);
Result<MetricRecord> read_metrics(const MessageReader& r, const std::string& key);

// A Status as header fields "code" / "message" (absent code: OK).
void write_status(Json& header, const Status& status);
Status read_status(const Json& header);

}  // namespace cohort::mpi
