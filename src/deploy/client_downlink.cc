#include "deploy/client_downlink.h"

#include <string>

#include "cohort/codec/codec.h"
#include "cohort/runtime/downlink.h"

namespace cohort::deploy {

void HeldModel::describe(v1::PullTaskRequest* req) const {
  if (!model_) return;
  req->set_held_version(version_);
  req->set_held_hash(hash_);
}

Result<ArrayRecord> HeldModel::receive(const v1::PullTaskReply& t, std::string_view payloads,
                                       ArrayRecord whole) {
  const std::string where = "model of version " + std::to_string(t.version());
  auto fail = [&](const std::string& why) -> Status {
    model_.reset();
    return Status::data_loss(where + ": " + why);
  };
  if (t.has_model_delta_from()) {
    if (!model_ || version_ != t.model_delta_from()) {
      return fail("the server sent the changes since version " +
                  std::to_string(t.model_delta_from()) + ", but this client holds " +
                  (model_ ? "version " + std::to_string(version_) : std::string("no model")));
    }
    Result<std::shared_ptr<const codec::Chain>> chain = codec::Chain::parse(t.model_codec());
    if (!chain.ok()) return fail("model_codec: " + chain.error().message());
    const int n = t.model_delta_bytes_size();
    size_t at = 0;
    for (int k = 0; k < n; ++k) {
      const int64_t size = t.model_delta_bytes(k);
      if (size < 0 || static_cast<uint64_t>(size) > payloads.size() - at) {
        return fail("payload " + std::to_string(k + 1) + " of " + std::to_string(n) +
                    " announced " + std::to_string(size) + " bytes, " +
                    std::to_string(payloads.size() - at) + " arrived");
      }
      Status s = runtime::DownlinkDeltas::apply(
          **chain, payloads.substr(at, static_cast<size_t>(size)), *model_,
          "payload " + std::to_string(k + 1) + " of " + std::to_string(n));
      if (!s.ok()) return fail(s.message());
      at += static_cast<size_t>(size);
    }
    if (at != payloads.size()) {
      return fail(std::to_string(payloads.size() - at) + " bytes beyond the announced payloads");
    }
    whole = model_->clone();
  }
  const uint64_t hash = whole.hash();
  if (t.model_hash() != 0 && hash != t.model_hash()) {
    return fail("hash " + std::to_string(hash) + " where the server's is " +
                std::to_string(t.model_hash()));
  }
  if (t.model_delta()) {
    if (!t.has_model_delta_from()) model_ = whole.clone();
    version_ = t.version();
    hash_ = hash;
  } else {
    model_.reset();
  }
  return whole;
}

}  // namespace cohort::deploy
