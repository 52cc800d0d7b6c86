#include "deploy/secagg_coordinator.h"

#include <algorithm>
#include <chrono>

#include "cohort/core/format.h"
#include "cohort/core/parallel.h"
#include "deploy/server_loop.h"

namespace cohort::deploy {

namespace pb = ::cohort::v1;

SecAggCoordinator::SecAggCoordinator(ServerLoop& loop, Options options)
    : loop_(loop), opts_(options) {}

bool SecAggCoordinator::wait_round(double deadline, const std::function<bool()>& done) {
  std::unique_lock<std::mutex>* lk = loop_.event_lock();
  while (!done()) {
    if (loop_.stop || loop_.loop_exited || lk == nullptr) return false;
    const double left = deadline - loop_.now();
    if (left <= 0) return true;
    // In slices, so a shutdown (which does not know this condition variable) is seen.
    cv_.wait_for(*lk, std::chrono::duration<double>(std::min(left, 0.1)));
  }
  return true;
}

void SecAggCoordinator::end_round(const std::vector<ClientId>& included,
                                  const std::string& reason) {
  for (ClientId id : round_) {
    Member& m = members_[id];
    m.state = State::kDone;
    m.included = std::binary_search(included.begin(), included.end(), id);
    if (m.included) {
      m.reason.clear();
    } else if (m.reason.empty()) {
      m.reason = reason;
    }
    m.outbox.clear();
  }
  if (session_ && opts_.keep_transcript) transcript_ = session_->transcript();
  session_.reset();
  round_.clear();
  cv_.notify_all();
}

Result<runtime::SecAggRoundResult> SecAggCoordinator::run(const runtime::SecAggGroup& group) {
  std::vector<ClientId> ids;
  for (const runtime::SecAggGroup::Member& m : group.members) ids.push_back(m.client);
  secagg::ServerOptions so;
  so.keep_transcript = opts_.keep_transcript;
  so.pool = &kernel_pool();
  COHORT_ASSIGN_OR_RETURN(secagg::ServerSession session,
                          secagg::ServerSession::create(group.params, ids, so));
  session_.emplace(std::move(session));
  round_ = ids;
  std::sort(round_.begin(), round_.end());
  const std::string where = "secure aggregation round " + std::to_string(group.params.round);
  for (const runtime::SecAggGroup::Member& gm : group.members) {
    Member& m = members_[gm.client];
    m.state = State::kInRound;
    m.included = false;
    m.reason.clear();
    m.outbox.clear();
    m.stage_sent = -1;
    m.stage_open = 0;
    m.out = false;
    pb::SecAggReply r;
    r.set_kind(pb::SecAggReply::SETUP);
    pb::SecAggSetup* s = r.mutable_setup();
    s->set_round(group.params.round);
    s->set_threshold(group.params.threshold);
    s->set_neighbours(group.params.neighbours);
    s->set_bits(group.params.bits);
    s->set_length(group.params.length);
    s->set_graph_seed(std::string(group.params.graph_seed.begin(), group.params.graph_seed.end()));
    s->set_range(group.fixed_point.range);
    s->set_input_bits(group.fixed_point.input_bits);
    s->set_input_scale(gm.scale);
    s->set_members(static_cast<int64_t>(group.members.size()));
    m.outbox.push_back(std::move(r));
  }
  cv_.notify_all();
  log_line(where + ": " + std::to_string(ids.size()) + " members");

  for (int stage = 0; stage <= 3; ++stage) {
    stage_name_ = std::string(secagg::stage_name(static_cast<secagg::Stage>(stage)));
    const double deadline = loop_.now() + opts_.stage_timeout_s;
    const bool serving = wait_round(deadline, [&] {
      return std::all_of(round_.begin(), round_.end(), [&](ClientId id) {
        const Member& m = members_[id];
        return m.out || m.stage_sent >= stage;
      });
    });
    if (!serving) {
      end_round({}, "the server is shutting down");
      return Status::unavailable(where + ": the server is shutting down");
    }
    // Who stayed silent is out of the round from now on.
    for (ClientId id : round_) {
      Member& m = members_[id];
      if (!m.out && m.stage_sent < stage) {
        m.out = true;
        m.reason = "no " + stage_name_ + " message within " +
                   format_number(opts_.stage_timeout_s) + " s (privacy.secagg.stage_timeout_s)";
        log_line(where + ": client " + std::to_string(id) + " dropped: " + m.reason);
      }
    }
    if (stage == 3) break;
    Result<std::vector<secagg::Outgoing>> next = session_->advance();
    if (!next.ok()) {
      end_round({}, next.error().message());
      return next.error();
    }
    for (secagg::Outgoing& o : *next) {
      Member& m = members_[o.to];
      pb::SecAggReply r;
      r.set_kind(pb::SecAggReply::MESSAGE);
      r.set_message(std::string(o.bytes.begin(), o.bytes.end()));
      m.outbox.push_back(std::move(r));
      m.stage_open = stage + 1;
    }
    for (ClientId id : round_) {
      Member& m = members_[id];
      if (!m.out && m.stage_open <= stage) {
        m.out = true;
        m.reason = "left out of the round after " + stage_name_ + " (the protocol dropped it)";
      }
    }
    cv_.notify_all();
  }
  Result<secagg::Aggregate> agg = session_->finish();
  if (!agg.ok()) {
    end_round({}, agg.error().message());
    return agg.error();
  }
  runtime::SecAggRoundResult r;
  r.sum = std::move(agg->sum);
  r.included = agg->included;
  for (ClientId id : round_) {
    if (!std::binary_search(r.included.begin(), r.included.end(), id)) {
      r.dropped.push_back(id);
    } else if (members_[id].stage_sent < 3) {
      r.silent.push_back(id);
    }
  }
  const secagg::Traffic& t = session_->total_traffic();
  r.bytes_to_server = t.total_received();
  r.bytes_from_server = t.total_sent();
  r.masked_input_bytes = t.received[static_cast<size_t>(secagg::MessageKind::kMaskedInput)];
  r.rejections = static_cast<int64_t>(session_->rejections().size());
  end_round(agg->included, "not in the sum");
  log_line(where + ": sum of " + std::to_string(r.included.size()) + " of " +
           std::to_string(ids.size()) + " members released");
  return r;
}

void SecAggCoordinator::release(std::span<const ClientId> clients) {
  for (ClientId id : clients) {
    auto it = members_.find(id);
    if (it == members_.end() || it->second.state != State::kWaiting) continue;
    it->second.state = State::kDropped;
    it->second.reason = "its group was dropped before secure aggregation ran (a new round began)";
  }
  cv_.notify_all();
}

Status SecAggCoordinator::withheld(ClientId c, int64_t task_id) {
  auto it = members_.find(c);
  if (it != members_.end() && it->second.state == State::kInRound) {
    return Status::failed_precondition("client " + std::to_string(c) +
                                       " is in a secure aggregation round; finish it first");
  }
  Member m;
  m.task_id = task_id;
  members_[c] = std::move(m);
  return Status();
}

void SecAggCoordinator::refused(ClientId c, const std::string& reason) {
  auto it = members_.find(c);
  if (it == members_.end() || it->second.state != State::kWaiting) return;
  it->second.state = State::kDropped;
  it->second.reason = reason;
  cv_.notify_all();
}

Status SecAggCoordinator::handle(ClientId c, int64_t task_id, const std::string& message,
                                 std::unique_lock<std::mutex>& lk, pb::SecAggReply* reply) {
  auto it = members_.find(c);
  if (it == members_.end()) {
    return Status::failed_precondition(
        "client " + std::to_string(c) +
        " holds no update awaiting secure aggregation (push the task's header first)");
  }
  if (it->second.task_id != 0 && task_id != it->second.task_id) {
    return Status::failed_precondition("SecAgg for task " + std::to_string(task_id) +
                                       ", but client " + std::to_string(c) +
                                       "'s withheld update is task " +
                                       std::to_string(it->second.task_id));
  }
  if (!message.empty()) {
    Member& m = it->second;
    if (m.state != State::kInRound || m.out || !session_) {
      return Status::failed_precondition(
          "no secure aggregation round expects a message from client " + std::to_string(c) +
          (m.out ? " (" + m.reason + ")" : std::string()));
    }
    const int stage = static_cast<int>(session_->stage());
    const auto* p = reinterpret_cast<const uint8_t*>(message.data());
    Status s = session_->receive(c, std::span<const uint8_t>(p, message.size()));
    if (!s.ok()) {
      m.out = true;
      m.reason = "its " + stage_name_ + " message was refused: " + s.message();
      log_line("secure aggregation: client " + std::to_string(c) + " dropped: " + s.message());
      cv_.notify_all();
      return s;
    }
    m.stage_sent = stage;
    cv_.notify_all();
  }
  auto step_ready = [&] {
    auto i = members_.find(c);
    return i == members_.end() || !i->second.outbox.empty() ||
           i->second.state == State::kDone || i->second.state == State::kDropped || loop_.stop;
  };
  cv_.wait_for(lk, std::chrono::duration<double>(opts_.poll_wait_s), step_ready);
  it = members_.find(c);
  if (it == members_.end()) {
    reply->set_kind(pb::SecAggReply::DROPPED);
    reply->set_reason("no longer held");
    return Status();
  }
  Member& m = it->second;
  if (!m.outbox.empty()) {
    *reply = std::move(m.outbox.front());
    m.outbox.pop_front();
  } else if (m.state == State::kDone) {
    reply->set_kind(pb::SecAggReply::DONE);
    reply->set_included(m.included);
    reply->set_reason(m.reason);
    members_.erase(it);
  } else if (m.state == State::kDropped) {
    reply->set_kind(pb::SecAggReply::DROPPED);
    reply->set_reason(m.reason);
    members_.erase(it);
  } else {
    reply->set_kind(pb::SecAggReply::WAIT);
    reply->set_retry_after_s(0.05);
  }
  return Status();
}

}  // namespace cohort::deploy
