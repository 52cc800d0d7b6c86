// Wire conversions of the Fleet protocol (proto/cohort/v1/fleet.proto, docs/wire_format.md),
// written once for the server, the client and the deployment benchmarks: layouts, task
// configs, the chunked streams of flat float32 buffers, bearer tokens and the mapping between
// cohort::Status and gRPC status codes.
//
// Internal to the deployment stack (it includes the generated protobuf code): the server, the
// client and bench/ include it as "deploy/wire.h"; nothing in include/ does.
//
// Thread safety: free functions; a ChunkAssembler belongs to one stream.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/v1/fleet.grpc.pb.h"

namespace cohort::wire {

namespace pb = ::cohort::v1;

// ---- status --------------------------------------------------------------------------------
// cohort::StatusCode uses gRPC's numbering (core/status.h), so codes map one to one.
grpc::Status to_grpc(const Status& s);
Status from_grpc(const grpc::Status& s, const std::string& what);
// "UNAVAILABLE", "DATA_LOSS", ...
const char* code_name(grpc::StatusCode c);
// Connection-level failures (the server restarted, the network dropped, a deadline passed
// while the peer was gone): the client reconnects rather than giving up.
bool is_transient(grpc::StatusCode c);

// ---- authentication --------------------------------------------------------------------------
inline constexpr char kAuthorizationKey[] = "authorization";
// Adds "authorization: Bearer <token>" and a deadline `timeout_s` from now.
void prepare_context(grpc::ClientContext* ctx, const std::string& token, double timeout_s);
// The token of a "Bearer <token>" value, or Unauthenticated naming what was wrong.
Result<std::string> bearer_token(const grpc::ServerContextBase& ctx);

// ---- layouts and task configs ----------------------------------------------------------------
void to_pb(const ArrayLayout& layout, pb::Layout* out);
// "[2,3]"
std::string shape_string(const google::protobuf::RepeatedField<int64_t>& shape);

// The first difference between a layout received on the wire and the expected one.
struct LayoutDifference {
  enum class Kind { kName, kShape, kCount } kind = Kind::kName;
  int index = 0;           // the first differing array (kCount: the first missing or extra)
  std::string got;         // kName / kShape: "name[2,3]" as received; kCount: the extra name
  std::string expected;    // the same for the expected layout; kCount: the missing name
  int got_count = 0;       // arrays received
  int expected_count = 0;  // arrays expected
};
std::optional<LayoutDifference> layout_difference(const pb::Layout& got, const ArrayLayout& want);
// A client's check of the server's layout against its trainer's: FailedPrecondition naming the
// first difference (names and shapes; trainable flags are informational).
Status check_layout(const pb::Layout& server, const ArrayLayout& mine);

void to_pb(const ConfigRecord& config, google::protobuf::Map<std::string, pb::Scalar>* out);
ConfigRecord from_pb(const google::protobuf::Map<std::string, pb::Scalar>& config);

// ---- chunked streams ---------------------------------------------------------------------------
// A flat byte range to stream.
struct ByteRange {
  const char* data = nullptr;
  int64_t size = 0;
};
inline ByteRange bytes_of(const ArrayRecord& r) {
  return {reinterpret_cast<const char*>(r.data()), r.num_bytes()};
}
// The stream CRC-32 the last chunk carries: computed while cutting, known beforehand (a
// model version sent to many clients), or none (a codec payload, which checks itself).
struct StreamCrc {
  enum class Mode { kCompute, kGiven, kOmit } mode = Mode::kCompute;
  uint32_t value = 0;
  static StreamCrc given(uint32_t v) { return {Mode::kGiven, v}; }
  static StreamCrc omit() { return {Mode::kOmit, 0}; }
};
// The zlib CRC-32 of the concatenation of `parts`.
uint32_t crc32_of(std::span<const ByteRange> parts);

// One chunk of a stream, pointing into the sender's bytes: a TensorChunk without its copy.
struct ChunkView {
  int64_t offset = 0;
  int64_t total_bytes = 0;
  ByteRange data;
  std::optional<uint32_t> crc32;  // the last chunk's, as the StreamCrc says
};
// Cuts the concatenation of `parts` into chunks of at most `chunk_bytes` bytes (an empty
// payload is one empty chunk; a chunk never spans two parts) and hands each to `emit`,
// stopping when it returns false. The last chunk carries the zlib CRC-32 of the whole payload,
// as `crc` says. Returns false when `emit` did.
bool for_each_chunk_view(std::span<const ByteRange> parts, int64_t chunk_bytes,
                         const std::function<bool(const ChunkView&)>& emit, StreamCrc crc = {});
// The same chunks as TensorChunk messages (their data copied in). `emit` may take the chunk's
// contents (e.g. Swap it into an enclosing message, saving a copy of its data): every field is
// set again before the next call.
bool for_each_chunk(std::span<const ByteRange> parts, int64_t chunk_bytes,
                    const std::function<bool(pb::TensorChunk&)>& emit, StreamCrc crc = {});
// The serialized TensorChunk of `view` as a gRPC byte buffer that references the data instead
// of copying it: a small slice with the other fields and the data's tag and length, then the
// data itself. `keep` owns the memory the view points into; the buffer's slices hold it until
// gRPC has sent them (possibly after the call that wrote them has finished). Parses as the
// message for_each_chunk would have built.
grpc::ByteBuffer chunk_buffer(const ChunkView& view, const std::shared_ptr<const void>& keep);

// Reassembles a chunked stream into destinations laid end to end (e.g. an update's
// delta, then its state delta), checking every chunk: total_bytes must equal the buffers'
// size (InvalidArgument), chunks must be contiguous and in order (InvalidArgument), and no
// chunk may run past the end (ResourceExhausted); a crc32 is allowed on the last chunk only
// (InvalidArgument). finish() is DataLoss for a truncated stream or a CRC-32 that does not
// match the bytes received (a sender may omit it).
// Messages start with `what` ("update stream", "Download MODEL of task 3").
class ChunkAssembler {
 public:
  // A destination: memory to copy into, or (when `sink` is set) a consumer handed the bytes
  // as they arrive, in order (a codec's stream decoder, a spool). A sink's error fails add().
  struct Buffer {
    char* data = nullptr;
    int64_t size = 0;
    std::function<Status(std::string_view)> sink;
  };
  ChunkAssembler(std::string what, std::vector<Buffer> buffers);
  // A stream of a size the receiver learns from its first chunk (a codec payload), at most
  // `max_total` bytes (ResourceExhausted beyond), handed to `sink`.
  ChunkAssembler(std::string what, int64_t max_total, std::function<Status(std::string_view)> sink);
  Status add(const pb::TensorChunk& chunk);
  // The bytes check themselves (a codec payload: a CRC-32 per frame and on its header): the
  // stream's CRC-32 is neither computed nor, if the sender sent one, compared.
  void skip_stream_crc() { skip_crc_ = true; }
  Status finish() const;
  int64_t received() const { return received_; }
  int64_t expected() const { return expected_; }

 private:
  std::string what_;
  std::vector<Buffer> buffers_;
  int64_t expected_ = 0;
  int64_t received_ = 0;
  int64_t adopt_max_ = 0;
  bool skip_crc_ = false;  // > 0: expected_ comes from the first chunk, at most this
  uint32_t crc_;           // CRC-32 of the bytes received so far (core/crc32.h)
  std::optional<uint32_t> claimed_crc_;  // the sender's, from the last chunk
};

}  // namespace cohort::wire
