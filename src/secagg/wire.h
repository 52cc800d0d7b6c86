// Byte writer and bounds-checked reader for the secagg messages (private to the module).
//
// Reader never reads past its span: every field read checks the bytes left first and fails
// with DataLoss "secagg <Message>: truncated in field '<field>' (needs N bytes at offset O,
// L left)"; count() checks that count x entry size bytes are left before the caller allocates,
// so a forged count cannot make decode allocate more than the input's size.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/secagg/messages.h"

namespace cohort::secagg::wire {

class Writer {
 public:
  Writer(MessageKind kind, uint64_t round, size_t reserve) {
    out_.reserve(reserve);
    u8(kWireVersion);
    u8(static_cast<uint8_t>(kind));
    u64(round);
  }
  void u8(uint8_t v) { out_.push_back(v); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void bytes(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  std::vector<uint8_t>& out() { return out_; }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, MessageKind kind) : bytes_(bytes), kind_(kind) {}

  // Reads and checks the header (version, kind); the round goes to *round.
  Status header(uint64_t* round) {
    uint8_t version = 0;
    uint8_t kind = 0;
    COHORT_RETURN_IF_ERROR(u8("version", &version));
    if (version != kWireVersion) {
      return invalid("version", "unsupported " + std::to_string(version) + ", expected " +
                                    std::to_string(kWireVersion));
    }
    COHORT_RETURN_IF_ERROR(u8("kind", &kind));
    if (kind != static_cast<uint8_t>(kind_)) {
      return invalid("kind", "expected " + std::string(message_kind_name(kind_)) + " (" +
                                 std::to_string(static_cast<int>(kind_)) + "), got " +
                                 std::string(message_kind_name(static_cast<MessageKind>(kind))) +
                                 " (" + std::to_string(kind) + ")");
    }
    return u64("round", round);
  }

  Status u8(std::string_view field, uint8_t* v) {
    COHORT_RETURN_IF_ERROR(need(field, 1));
    *v = bytes_[pos_++];
    return Status();
  }
  Status u32(std::string_view field, uint32_t* v) {
    COHORT_RETURN_IF_ERROR(need(field, 4));
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) r |= static_cast<uint32_t>(bytes_[pos_ + i]) << (8 * i);
    pos_ += 4;
    *v = r;
    return Status();
  }
  Status u64(std::string_view field, uint64_t* v) {
    COHORT_RETURN_IF_ERROR(need(field, 8));
    uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r |= static_cast<uint64_t>(bytes_[pos_ + i]) << (8 * i);
    pos_ += 8;
    *v = r;
    return Status();
  }
  Status i32(std::string_view field, int32_t* v) {
    uint32_t u = 0;
    COHORT_RETURN_IF_ERROR(u32(field, &u));
    *v = static_cast<int32_t>(u);
    return Status();
  }
  Status i64(std::string_view field, int64_t* v) {
    uint64_t u = 0;
    COHORT_RETURN_IF_ERROR(u64(field, &u));
    *v = static_cast<int64_t>(u);
    return Status();
  }
  Status bytes(std::string_view field, std::span<uint8_t> out) {
    COHORT_RETURN_IF_ERROR(need(field, out.size()));
    std::memcpy(out.data(), bytes_.data() + pos_, out.size());
    pos_ += out.size();
    return Status();
  }
  // A u32 count of entries of entry_size bytes each, checked against the bytes left.
  Status count(std::string_view field, size_t entry_size, uint32_t* n) {
    const std::string name = std::string(field) + ".count";
    COHORT_RETURN_IF_ERROR(u32(name, n));
    const uint64_t needed = static_cast<uint64_t>(*n) * entry_size;
    if (needed > left()) {
      return Status::data_loss(prefix() + "truncated in field '" + std::string(field) + "' (" +
                               std::to_string(*n) + " entries need " + std::to_string(needed) +
                               " bytes at offset " + std::to_string(pos_) + ", " +
                               std::to_string(left()) + " left)");
    }
    return Status();
  }
  // A view of the next n bytes (checked).
  Status view(std::string_view field, size_t n, std::span<const uint8_t>* out) {
    COHORT_RETURN_IF_ERROR(need(field, n));
    *out = bytes_.subspan(pos_, n);
    pos_ += n;
    return Status();
  }
  // DataLoss when bytes are left after the last field.
  Status finish() const {
    if (left() == 0) return Status();
    return Status::data_loss(prefix() + std::to_string(left()) +
                             " trailing bytes after the last field");
  }

  size_t left() const { return bytes_.size() - pos_; }
  size_t offset() const { return pos_; }

  // The same status with "secagg <Message>: " in front of its message.
  Status wrap(const Status& s) const {
    return s.ok() ? s : Status(s.code(), prefix() + s.message());
  }
  // InvalidArgument "secagg <Message>: <field>: <what>".
  Status invalid(std::string_view field, std::string_view what) const {
    return Status::invalid_argument(prefix() + std::string(field) + ": " + std::string(what));
  }

 private:
  std::string prefix() const { return "secagg " + std::string(message_kind_name(kind_)) + ": "; }
  Status need(std::string_view field, size_t n) const {
    if (n <= left()) return Status();
    return Status::data_loss(prefix() + "truncated in field '" + std::string(field) + "' (needs " +
                             std::to_string(n) + " bytes at offset " + std::to_string(pos_) + ", " +
                             std::to_string(left()) + " left)");
  }

  std::span<const uint8_t> bytes_;
  MessageKind kind_;
  size_t pos_ = 0;
};

}  // namespace cohort::secagg::wire
