#include "deploy/client_secagg.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "cohort/core/parallel.h"
#include "cohort/privacy/dp.h"
#include "cohort/runtime/secagg.h"
#include "deploy/wire.h"

namespace cohort::deploy {

namespace pb = ::cohort::v1;

namespace {

Result<runtime::SecAggGroup> group_of(const pb::SecAggSetup& s) {
  runtime::SecAggGroup g;
  g.params.round = s.round();
  g.params.threshold = s.threshold();
  g.params.neighbours = s.neighbours();
  g.params.bits = s.bits();
  g.params.length = s.length();
  if (s.graph_seed().size() != g.params.graph_seed.size()) {
    return Status::invalid_argument("SecAggSetup: graph_seed must be 32 bytes, got " +
                                    std::to_string(s.graph_seed().size()));
  }
  std::memcpy(g.params.graph_seed.data(), s.graph_seed().data(), g.params.graph_seed.size());
  COHORT_RETURN_IF_ERROR(g.params.validate().with_context("SecAggSetup"));
  g.fixed_point.range = s.range();
  g.fixed_point.input_bits = s.input_bits();
  if (!(s.input_scale() > 0 && s.input_scale() <= 1) || s.members() < 1) {
    return Status::invalid_argument("SecAggSetup: input_scale must be in (0, 1] and members >= 1");
  }
  COHORT_RETURN_IF_ERROR(
      g.fixed_point.validate(g.params.bits, s.members()).with_context("SecAggSetup"));
  return g;  // members stays empty: the setup says only how many there are
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

Result<SecAggOutcome> take_part_in_secagg(pb::Fleet::StubInterface& stub,
                                          const std::function<void(grpc::ClientContext*)>& prepare,
                                          SecAggParticipant p, const std::function<bool()>& stop) {
  std::optional<secagg::ClientSession> session;
  std::vector<uint32_t> words;
  std::string to_send;
  auto dropped = [](std::string why) -> Result<SecAggOutcome> {
    return SecAggOutcome{false, std::move(why)};
  };
  while (true) {
    if (stop && stop()) return Status::cancelled("client stopped");
    pb::SecAggRequest req;
    req.set_task_id(p.task_id);
    req.set_message(std::move(to_send));
    to_send.clear();
    pb::SecAggReply rep;
    grpc::ClientContext ctx;
    prepare(&ctx);
    grpc::Status st = stub.SecAgg(&ctx, req, &rep);
    if (!st.ok()) {
      // The connection's or the token's trouble ends the session; anything else is the
      // server refusing this client's part (a message the protocol rejected, ...).
      if (wire::is_transient(st.error_code()) ||
          st.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
        return wire::from_grpc(st, "SecAgg");
      }
      return dropped("the server refused: " + st.error_message());
    }
    // The stage this reply opens (what the client sends next).
    std::optional<secagg::Stage> next;
    switch (rep.kind()) {
      case pb::SecAggReply::WAIT:
        std::this_thread::sleep_for(
            std::chrono::duration<double>(std::clamp(rep.retry_after_s(), 0.01, 1.0)));
        continue;
      case pb::SecAggReply::DONE:
        return SecAggOutcome{rep.included(), rep.reason()};
      case pb::SecAggReply::DROPPED:
        return dropped(rep.reason());
      case pb::SecAggReply::SETUP: {
        Result<runtime::SecAggGroup> g = group_of(rep.setup());
        if (!g.ok()) return dropped(g.error().message());
        Result<secagg::ClientSession> c =
            secagg::ClientSession::create(p.id, g->params, &kernel_pool());
        if (!c.ok()) return dropped(c.error().message());
        session.emplace(std::move(*c));
        // The rounding's randomness is this client's own.
        const privacy::NoiseSeed r = privacy::random_seed();
        uint64_t seed = 0;
        std::memcpy(&seed, r.data(), sizeof seed);
        Result<secagg::FixedPoint::Encoded> e = runtime::encode_secagg_input(
            g->params, g->fixed_point, rep.setup().members(), p.update,
            rep.setup().input_scale(), p.unclipped, seed);
        if (!e.ok()) return dropped(e.error().message());
        words = std::move(e->words);
        next = secagg::Stage::kAdvertiseKeys;
        break;
      }
      case pb::SecAggReply::MESSAGE:
        if (!session) return dropped("a protocol message before the round's SETUP");
        next = session->stage();
        break;
      default:
        return dropped("unknown SecAgg reply kind " + std::to_string(rep.kind()));
    }
    if (p.vanish_at_stage >= 0 && static_cast<int>(*next) >= p.vanish_at_stage) {
      return dropped("vanished (test)");
    }
    Result<std::vector<uint8_t>> out = Status::internal("no message");
    const std::vector<uint8_t> in = bytes(rep.message());
    switch (*next) {
      case secagg::Stage::kAdvertiseKeys:
        out = session->advertise_keys();
        break;
      case secagg::Stage::kShareKeys:
        out = session->share_keys(in);
        break;
      case secagg::Stage::kMaskedInput:
        out = session->masked_input(in, words);
        break;
      case secagg::Stage::kUnmask:
        out = session->unmask(in);
        break;
      default:
        return dropped("the protocol is over on this side");
    }
    if (!out.ok()) return dropped("secure aggregation: " + out.error().message());
    to_send.assign(out->begin(), out->end());
    if (p.tamper) p.tamper(*next, to_send);
  }
}

Result<SecAggOutcome> push_withheld(pb::Fleet::StubInterface& stub,
                                    const std::function<void(grpc::ClientContext*)>& prepare,
                                    pb::UpdateHeader header, SecAggParticipant participant,
                                    const std::function<bool()>& stop) {
  header.set_secagg(true);
  header.set_codec("");
  header.set_delta_bytes(0);
  pb::PushReply reply;
  grpc::Status st;
  {
    grpc::ClientContext ctx;
    prepare(&ctx);
    std::unique_ptr<grpc::ClientWriterInterface<pb::UpdateChunk>> writer =
        stub.PushUpdate(&ctx, &reply);
    pb::UpdateChunk m;
    *m.mutable_header() = std::move(header);
    writer->Write(m);
    writer->WritesDone();
    st = writer->Finish();
  }
  if (!st.ok()) {
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
        st.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      return wire::from_grpc(st, "PushUpdate (secagg)");
    }
    return SecAggOutcome{false, "the push was refused: " + st.error_message()};
  }
  if (!reply.accepted()) return SecAggOutcome{false, "the push was refused: " + reply.reason()};
  return take_part_in_secagg(stub, prepare, std::move(participant), stop);
}

}  // namespace cohort::deploy
