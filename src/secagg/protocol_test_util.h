// RoundDriver: runs a secure-aggregation round between one ServerSession and n ClientSessions
// in memory, stage by stage, with hooks to drop clients at any stage and to tamper with the
// bytes on the way (client -> server and server -> client). Shared by the protocol tests.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/core/rng.h"
#include "cohort/secagg/protocol.h"

namespace cohort::secagg::testing {

// Clients that stop before sending the given stage's message.
struct Drops {
  std::set<ClientId> advertise, share, mask, unmask;
};

// Edits a message in flight: (client, stage the message belongs to, bytes).
using Tamper = std::function<void(ClientId, Stage, std::vector<uint8_t>*)>;

class RoundDriver {
 public:
  RoundDriver(const Params& params, std::vector<ClientId> ids, ThreadPool* pool = nullptr,
              uint64_t input_seed = 1)
      : params_(params), ids_(std::move(ids)) {
    server_.emplace(*ServerSession::create(params, ids_, {.keep_transcript = true, .pool = pool}));
    for (ClientId id : ids_) {
      clients_.emplace(id, *ClientSession::create(id, params, pool));
      Rng rng = Rng::derive(input_seed, "secagg_test_input", static_cast<uint64_t>(id));
      std::vector<uint32_t> x(static_cast<size_t>(params.length));
      for (uint32_t& w : x) w = static_cast<uint32_t>(rng.next_u64()) & params.word_mask();
      inputs_.emplace(id, std::move(x));
    }
  }

  Drops drops;
  Tamper to_server;  // client -> server
  Tamper to_client;  // server -> client

  // Stage 0 and the server's advance(); the same for the later stages.
  Status advertise() {
    for (ClientId id : ids_) {
      if (drops.advertise.count(id)) continue;
      deliver(id, Stage::kAdvertiseKeys, client(id).advertise_keys());
    }
    return advance();
  }
  Status share() {
    return respond(Stage::kShareKeys, drops.share,
                   [&](ClientSession& c, std::span<const uint8_t> b) {
                     return c.share_keys(b);
                   });
  }
  Status mask() {
    return respond(Stage::kMaskedInput, drops.mask,
                   [&](ClientSession& c, std::span<const uint8_t> b) {
                     return c.masked_input(b, inputs_.at(c.id()));
                   });
  }
  // Stage 3 and finish().
  Result<Aggregate> unmask() {
    for (auto& [id, bytes] : pending_) {
      if (drops.unmask.count(id)) continue;
      if (to_client) to_client(id, Stage::kUnmask, &bytes);
      deliver(id, Stage::kUnmask, client(id).unmask(bytes));
    }
    pending_.clear();
    return server_->finish();
  }
  // The whole round; the first failing step's status.
  Result<Aggregate> run() {
    COHORT_RETURN_IF_ERROR(advertise());
    COHORT_RETURN_IF_ERROR(share());
    COHORT_RETURN_IF_ERROR(mask());
    return unmask();
  }

  ServerSession& server() { return *server_; }
  ClientSession& client(ClientId id) { return clients_.at(id); }
  const std::vector<uint32_t>& input(ClientId id) const { return inputs_.at(id); }
  // The server's messages of the stage about to run, by recipient.
  std::map<ClientId, std::vector<uint8_t>>& pending() { return pending_; }
  // receive() errors and client-side errors, by client.
  const std::map<ClientId, Status>& rejected() const { return rejected_; }
  const std::map<ClientId, Status>& client_errors() const { return client_errors_; }

  // The plain sum of the inputs of `ids`, mod 2^bits.
  std::vector<uint32_t> plain_sum(const std::vector<ClientId>& ids) const {
    std::vector<uint32_t> sum(static_cast<size_t>(params_.length), 0);
    for (ClientId id : ids) {
      const std::vector<uint32_t>& x = inputs_.at(id);
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += x[i];
    }
    for (uint32_t& w : sum) w &= params_.word_mask();
    return sum;
  }

 private:
  void deliver(ClientId id, Stage stage, Result<std::vector<uint8_t>> msg) {
    if (!msg.ok()) {
      client_errors_.emplace(id, msg.error());
      return;
    }
    if (to_server) to_server(id, stage, &*msg);
    if (Status s = server_->receive(id, *msg); !s.ok()) rejected_.emplace(id, s);
  }
  Status advance() {
    COHORT_ASSIGN_OR_RETURN(std::vector<Outgoing> out, server_->advance());
    pending_.clear();
    for (Outgoing& o : out) pending_[o.to] = std::move(o.bytes);
    return Status();
  }
  template <typename F>
  Status respond(Stage stage, const std::set<ClientId>& dropped, F&& step) {
    for (auto& [id, bytes] : pending_) {
      if (dropped.count(id)) continue;
      if (to_client) to_client(id, stage, &bytes);
      deliver(id, stage, step(client(id), bytes));
    }
    return advance();
  }

  Params params_;
  std::vector<ClientId> ids_;
  std::optional<ServerSession> server_;
  std::map<ClientId, ClientSession> clients_;
  std::map<ClientId, std::vector<uint32_t>> inputs_;
  std::map<ClientId, std::vector<uint8_t>> pending_;
  std::map<ClientId, Status> rejected_;
  std::map<ClientId, Status> client_errors_;
};

// Ids that are not 0..n-1, so positions and ids differ: 3, 10, 17, ... (and one negative).
inline std::vector<ClientId> spread_ids(int n) {
  std::vector<ClientId> ids;
  for (int i = 0; i < n; ++i) ids.push_back(i == 0 ? -42 : 3 + 7 * i);
  return ids;
}

}  // namespace cohort::secagg::testing
