#include "deploy/wire.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "cohort/core/crc32.h"
#include "cohort/core/format.h"
#include "cohort/core/parallel.h"

namespace cohort::wire {

grpc::Status to_grpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(s.code())), s.message());
}

const char* code_name(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

bool is_transient(grpc::StatusCode c) {
  return c == grpc::StatusCode::UNAVAILABLE || c == grpc::StatusCode::DEADLINE_EXCEEDED ||
         c == grpc::StatusCode::CANCELLED || c == grpc::StatusCode::ABORTED ||
         c == grpc::StatusCode::UNKNOWN;
}

// The client's control flow uses Status codes: Unavailable = reconnect, Unauthenticated =
// give up, anything else = the code the peer sent.
Status from_grpc(const grpc::Status& st, const std::string& what) {
  if (st.ok()) return Status();
  const std::string msg = what + ": " + code_name(st.error_code()) + ": " + st.error_message();
  if (is_transient(st.error_code())) return Status::unavailable(msg);
  if (st.error_code() == grpc::StatusCode::PERMISSION_DENIED) return Status::unauthenticated(msg);
  return Status(static_cast<StatusCode>(st.error_code()), msg);
}

void prepare_context(grpc::ClientContext* ctx, const std::string& token, double timeout_s) {
  ctx->AddMetadata(kAuthorizationKey, "Bearer " + token);
  // gRPC converts only system_clock time points.
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::duration<double>(timeout_s)));
}

Result<std::string> bearer_token(const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(kAuthorizationKey);
  if (it == md.end()) {
    return Status::unauthenticated("missing \"authorization: Bearer <token>\" metadata");
  }
  const std::string v(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (v.rfind(kBearer, 0) != 0) {
    return Status::unauthenticated("authorization metadata must be \"Bearer <token>\"");
  }
  return v.substr(kBearer.size());
}

void to_pb(const ArrayLayout& l, pb::Layout* out) {
  for (const ArraySpec& s : l.specs()) {
    pb::ArraySpec* a = out->add_arrays();
    a->set_name(s.name);
    for (int64_t d : s.shape) a->add_shape(d);
    a->set_trainable(s.trainable);
  }
}

std::string shape_string(const google::protobuf::RepeatedField<int64_t>& shape) {
  return cohort::shape_string(std::vector<int64_t>(shape.begin(), shape.end()));
}

std::optional<LayoutDifference> layout_difference(const pb::Layout& got, const ArrayLayout& want) {
  const auto& specs = want.specs();
  const int n_got = got.arrays_size();
  const int n_want = static_cast<int>(specs.size());
  for (int i = 0; i < std::min(n_got, n_want); ++i) {
    const pb::ArraySpec& g = got.arrays(i);
    const ArraySpec& w = specs[static_cast<size_t>(i)];
    const bool same_shape = g.shape_size() == static_cast<int>(w.shape.size()) &&
                            std::equal(g.shape().begin(), g.shape().end(), w.shape.begin());
    if (g.name() != w.name || !same_shape) {
      LayoutDifference d;
      d.kind = g.name() != w.name ? LayoutDifference::Kind::kName : LayoutDifference::Kind::kShape;
      d.index = i;
      d.got = g.name() + shape_string(g.shape());
      d.expected = w.name + cohort::shape_string(w.shape);
      d.got_count = n_got;
      d.expected_count = n_want;
      return d;
    }
  }
  if (n_got == n_want) return std::nullopt;
  LayoutDifference d;
  d.kind = LayoutDifference::Kind::kCount;
  d.index = std::min(n_got, n_want);
  if (n_got > n_want) d.got = got.arrays(d.index).name();
  if (n_want > n_got) d.expected = specs[static_cast<size_t>(d.index)].name;
  d.got_count = n_got;
  d.expected_count = n_want;
  return d;
}

void to_pb(const ConfigRecord& config, google::protobuf::Map<std::string, pb::Scalar>* out) {
  for (const auto& [k, v] : config) {
    pb::Scalar& s = (*out)[k];
    if (const auto* i = std::get_if<int64_t>(&v))
      s.set_int_value(*i);
    else if (const auto* d = std::get_if<double>(&v))
      s.set_double_value(*d);
    else if (const auto* b = std::get_if<bool>(&v))
      s.set_bool_value(*b);
    else
      s.set_string_value(std::get<std::string>(v));
  }
}

ConfigRecord from_pb(const google::protobuf::Map<std::string, pb::Scalar>& m) {
  ConfigRecord out;
  for (const auto& [k, v] : m) {
    switch (v.value_case()) {
      case pb::Scalar::kIntValue:
        out[k] = static_cast<int64_t>(v.int_value());
        break;
      case pb::Scalar::kDoubleValue:
        out[k] = v.double_value();
        break;
      case pb::Scalar::kBoolValue:
        out[k] = v.bool_value();
        break;
      case pb::Scalar::kStringValue:
        out[k] = v.string_value();
        break;
      default:
        break;
    }
  }
  return out;
}

uint32_t crc32_of(std::span<const ByteRange> parts) {
  // Pieces of 8 MB checked in parallel on the kernel pool, their CRCs combined in order (a
  // 100 MB model's CRC is computed once per version, but every first Download waits for it).
  constexpr int64_t kPiece = int64_t{8} << 20;
  std::vector<ByteRange> pieces;
  for (const ByteRange& p : parts) {
    for (int64_t at = 0; at < p.size; at += kPiece) {
      pieces.push_back({p.data + at, std::min(kPiece, p.size - at)});
    }
  }
  std::vector<uint32_t> crcs(pieces.size());
  kernel_pool().parallel_for(
      0, static_cast<int64_t>(pieces.size()), 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          const ByteRange& p = pieces[static_cast<size_t>(i)];
          crcs[static_cast<size_t>(i)] = cohort::crc32_of(p.data, static_cast<size_t>(p.size));
        }
      });
  uint32_t crc = 0;
  for (size_t i = 0; i < pieces.size(); ++i) crc = crc32_combine(crc, crcs[i], pieces[i].size);
  return crc;
}

bool for_each_chunk_view(std::span<const ByteRange> parts, int64_t chunk_bytes,
                         const std::function<bool(const ChunkView&)>& emit, StreamCrc given) {
  int64_t total = 0;
  for (const ByteRange& p : parts) total += p.size;
  const int64_t step = std::max<int64_t>(1, chunk_bytes);
  ChunkView v;
  v.total_bytes = total;
  if (total == 0) return emit(v);
  uint32_t crc = 0;
  for (const ByteRange& p : parts) {
    for (int64_t pos = 0; pos < p.size; pos += step) {
      const int64_t n = std::min(step, p.size - pos);
      v.data = {p.data + pos, n};
      if (given.mode == StreamCrc::Mode::kCompute) {
        crc = crc32_update(crc, p.data + pos, static_cast<size_t>(n));
      }
      if (v.offset + n == total && given.mode != StreamCrc::Mode::kOmit) {  // the last chunk
        v.crc32 = given.mode == StreamCrc::Mode::kGiven ? given.value : crc;
      }
      if (!emit(v)) return false;
      v.offset += n;
    }
  }
  return true;
}

bool for_each_chunk(std::span<const ByteRange> parts, int64_t chunk_bytes,
                    const std::function<bool(pb::TensorChunk&)>& emit, StreamCrc given) {
  pb::TensorChunk msg;
  return for_each_chunk_view(
      parts, chunk_bytes,
      [&](const ChunkView& v) {
        // Every field, every time: `emit` may have taken the previous chunk's contents.
        msg.set_total_bytes(v.total_bytes);
        msg.set_offset(v.offset);
        msg.set_data(v.data.data, static_cast<size_t>(v.data.size));
        if (v.crc32) {
          msg.set_crc32(*v.crc32);
        } else {
          msg.clear_crc32();
        }
        return emit(msg);
      },
      given);
}

grpc::ByteBuffer chunk_buffer(const ChunkView& view, const std::shared_ptr<const void>& keep) {
  pb::TensorChunk head;  // every field but data; proto3 parsers accept fields in any order
  head.set_offset(view.offset);
  head.set_total_bytes(view.total_bytes);
  if (view.crc32) head.set_crc32(*view.crc32);
  std::string bytes = head.SerializeAsString();
  if (view.data.size == 0) {
    grpc::Slice only(bytes);
    return grpc::ByteBuffer(&only, 1);
  }
  // data = 2, length-delimited: tag 0x12, then the length as a varint.
  bytes.push_back(static_cast<char>((pb::TensorChunk::kDataFieldNumber << 3) | 2));
  for (auto n = static_cast<uint64_t>(view.data.size);; n >>= 7) {
    if (n < 0x80) {
      bytes.push_back(static_cast<char>(n));
      break;
    }
    bytes.push_back(static_cast<char>((n & 0x7f) | 0x80));
  }
  grpc::Slice slices[2] = {
      grpc::Slice(bytes),
      grpc::Slice(
          const_cast<char*>(view.data.data), static_cast<size_t>(view.data.size),
          [](void* p) {
            delete static_cast<std::shared_ptr<const void>*>(p);
          },
          new std::shared_ptr<const void>(keep))};
  return grpc::ByteBuffer(slices, 2);
}

namespace {
std::string hex32(uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}
}  // namespace

ChunkAssembler::ChunkAssembler(std::string what, std::vector<Buffer> buffers)
    : what_(std::move(what)), buffers_(std::move(buffers)), crc_(0) {
  for (const Buffer& b : buffers_) expected_ += b.size;
}

ChunkAssembler::ChunkAssembler(std::string what, int64_t max_total,
                               std::function<Status(std::string_view)> sink)
    : what_(std::move(what)), adopt_max_(max_total), crc_(0) {
  buffers_.push_back({nullptr, 0, std::move(sink)});
}

Status ChunkAssembler::add(const pb::TensorChunk& ch) {
  if (adopt_max_ > 0 && received_ == 0 && expected_ == 0) {
    if (ch.total_bytes() <= 0 || ch.total_bytes() > adopt_max_) {
      return Status::resource_exhausted(what_ + ": total_bytes " + std::to_string(ch.total_bytes()) +
                                        " is not in [1, " + std::to_string(adopt_max_) + "]");
    }
    expected_ = ch.total_bytes();
    buffers_[0].size = expected_;
  }
  if (ch.total_bytes() != expected_) {
    return Status::invalid_argument(what_ + ": chunk total_bytes " +
                                    std::to_string(ch.total_bytes()) + ", expected " +
                                    std::to_string(expected_));
  }
  if (ch.offset() != received_) {
    return Status::invalid_argument(what_ + ": chunk at offset " + std::to_string(ch.offset()) +
                                    ", expected " + std::to_string(received_) +
                                    ": chunks must be contiguous and in order");
  }
  const auto n = static_cast<int64_t>(ch.data().size());
  if (received_ + n > expected_) {
    return Status::resource_exhausted(what_ + " exceeds its " + std::to_string(expected_) +
                                      " bytes (chunk at " + std::to_string(received_) +
                                      " carries " + std::to_string(n) + " bytes)");
  }
  if (ch.has_crc32() && received_ + n != expected_) {
    return Status::invalid_argument(what_ + ": chunk at offset " + std::to_string(received_) +
                                    " carries a crc32 but is not the last chunk");
  }
  if (!skip_crc_) {
    crc_ = crc32_update(crc_, ch.data().data(), static_cast<size_t>(n));
  }
  if (ch.has_crc32()) claimed_crc_ = ch.crc32();
  const char* src = ch.data().data();
  int64_t pos = received_;  // position in the concatenation of the buffers
  int64_t left = n;
  int64_t start = 0;  // position of the current buffer in the concatenation
  for (const Buffer& b : buffers_) {
    if (left == 0) break;
    if (pos < start + b.size) {
      const int64_t k = std::min(left, start + b.size - pos);
      if (b.sink) {
        Status s = b.sink(std::string_view(src, static_cast<size_t>(k)));
        if (!s.ok()) return s;
      } else {
        std::memcpy(b.data + (pos - start), src, static_cast<size_t>(k));
      }
      src += k;
      pos += k;
      left -= k;
    }
    start += b.size;
  }
  received_ += n;
  return Status();
}

Status ChunkAssembler::finish() const {
  if (received_ < expected_ || (adopt_max_ > 0 && expected_ == 0)) {
    return Status::data_loss(what_ + " truncated: received " + std::to_string(received_) + " of " +
                             std::to_string(expected_) + " bytes");
  }
  if (!skip_crc_ && claimed_crc_ && *claimed_crc_ != static_cast<uint32_t>(crc_)) {
    return Status::data_loss(what_ + ": CRC-32 mismatch (sender " + hex32(*claimed_crc_) +
                             ", received bytes " + hex32(static_cast<uint32_t>(crc_)) +
                             "): corrupted on the way");
  }
  return Status();
}

// FailedPrecondition naming the first difference between the server's and the trainer's
// layouts (names and shapes; trainable flags are informational).
Status check_layout(const pb::Layout& server, const ArrayLayout& mine) {
  std::optional<LayoutDifference> d = layout_difference(server, mine);
  if (!d) return Status();
  if (d->kind == LayoutDifference::Kind::kCount) {
    return Status::failed_precondition(
        strformat("the server's model has %d arrays, the local trainer's %d (local layout: %s)",
                  d->got_count, d->expected_count, mine.describe().c_str()));
  }
  return Status::failed_precondition(strformat(
      "the server's model differs from the local trainer's at array %d: server has '%s', this "
      "client '%s' (check model: in the YAML; local layout: %s)",
      d->index, d->got.c_str(), d->expected.c_str(), mine.describe().c_str()));
}

}  // namespace cohort::wire
