#include "runtime/secagg_round.h"

#include <algorithm>
#include <set>
#include <string>

#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "cohort/core/rng.h"
#include "cohort/secagg/protocol.h"

namespace cohort::runtime {

Result<secagg::FixedPoint::Encoded> encode_secagg_input(const secagg::Params& params,
                                                        const secagg::FixedPoint& fixed_point,
                                                        int64_t members, std::span<float> values,
                                                        double scale, bool unclipped,
                                                        uint64_t seed) {
  if (static_cast<int64_t>(values.size()) + 1 != params.length) {
    return Status::invalid_argument("secure aggregation: the update has " +
                                    std::to_string(values.size()) + " values, the round expects " +
                                    std::to_string(params.length - 1));
  }
  if (scale != 1.0) ops::scale(values, static_cast<float>(scale));
  COHORT_ASSIGN_OR_RETURN(secagg::FixedPoint::Encoded e,
                          fixed_point.encode(values, params.bits, members, seed));
  e.words.push_back(unclipped ? 1u : 0u);
  return e;
}

Result<SecAggRoundResult> run_secagg_round(const SecAggRoundOptions& options,
                                           std::span<const SecAggMember> members) {
  std::vector<ClientId> ids;
  ids.reserve(members.size());
  for (const SecAggMember& m : members) ids.push_back(m.client);
  secagg::ServerOptions so;
  so.pool = &kernel_pool();
  COHORT_ASSIGN_OR_RETURN(secagg::ServerSession server,
                          secagg::ServerSession::create(options.params, ids, so));
  std::map<ClientId, secagg::ClientSession> clients;
  std::map<ClientId, const SecAggMember*> input;
  for (const SecAggMember& m : members) {
    COHORT_ASSIGN_OR_RETURN(secagg::ClientSession c,
                            secagg::ClientSession::create(m.client, options.params, &kernel_pool()));
    clients.emplace(m.client, std::move(c));
    input.emplace(m.client, &m);
  }
  // Who drops when: one seeded draw per member and stage.
  Rng rng = Rng::derive(options.seed, "secagg_dropout", options.params.round);
  std::set<ClientId> before, after;
  for (ClientId id : ids) {
    if (rng.uniform() < options.dropout_before_masking) {
      before.insert(id);
    } else if (rng.uniform() < options.dropout_after_masking) {
      after.insert(id);
    }
  }
  // A client whose session fails drops out; a message the server refuses drops its sender
  // (ServerSession records it). Either way the round goes on for the others.
  auto deliver = [&](ClientId id, const Result<std::vector<uint8_t>>& msg) {
    if (msg.ok()) (void)server.receive(id, *msg);
  };

  // Stage 0: every member advertises its keys.
  for (auto& [id, c] : clients) deliver(id, c.advertise_keys());
  COHORT_ASSIGN_OR_RETURN(std::vector<secagg::Outgoing> rosters, server.advance());
  // Stage 1: shares.
  for (const secagg::Outgoing& o : rosters) {
    deliver(o.to, clients.at(o.to).share_keys(o.bytes));
  }
  COHORT_ASSIGN_OR_RETURN(std::vector<secagg::Outgoing> bundles, server.advance());
  // Stage 2: masked inputs, except from those that drop now.
  for (const secagg::Outgoing& o : bundles) {
    if (before.count(o.to) > 0) continue;
    deliver(o.to, clients.at(o.to).masked_input(o.bytes, input.at(o.to)->words));
  }
  COHORT_ASSIGN_OR_RETURN(std::vector<secagg::Outgoing> requests, server.advance());
  // Stage 3: unmasking, except from those that drop after masking.
  for (const secagg::Outgoing& o : requests) {
    if (after.count(o.to) > 0) continue;
    deliver(o.to, clients.at(o.to).unmask(o.bytes));
  }
  COHORT_ASSIGN_OR_RETURN(secagg::Aggregate agg, server.finish());

  SecAggRoundResult r;
  r.sum = std::move(agg.sum);
  r.included = std::move(agg.included);
  for (ClientId id : ids) {
    if (!std::binary_search(r.included.begin(), r.included.end(), id)) {
      r.dropped.push_back(id);
    } else if (after.count(id) > 0) {
      r.silent.push_back(id);
    }
  }
  const secagg::Traffic& t = server.total_traffic();
  r.bytes_to_server = t.total_received();
  r.bytes_from_server = t.total_sent();
  r.masked_input_bytes =
      t.received[static_cast<size_t>(secagg::MessageKind::kMaskedInput)];
  r.rejections = static_cast<int64_t>(server.rejections().size());
  return r;
}

}  // namespace cohort::runtime
