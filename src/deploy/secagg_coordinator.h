// Secure aggregation over gRPC, the server's side (docs/privacy.md, "Secure aggregation in a
// deployment"; docs/wire_format.md, "Secure aggregation"). A client whose task asks for secure
// aggregation pushes its update's header alone and keeps the update; the group's privacy stage
// (runtime/privacy.h) then asks this transport to run the group's round, and the clients, who
// call SecAgg in a loop, get the round's messages from it:
//
//   client                          SecAgg handler (any thread)     run() (the loop thread)
//   push header (secagg) ---------> withheld(): waiting
//   SecAgg(empty) <---------------- WAIT ...                        run(group): SETUP to all
//   SecAgg(empty) <---------------- SETUP
//   SecAgg(AdvertiseKeys) --------> session.receive() ------------> all in, or stage timeout:
//                 <---------------- Roster                          advance(): Rosters
//   SecAgg(ShareKeys) ... MaskedInput ... UnmaskResponse            ... finish(): the sum
//                 <---------------- DONE (included or not)
//
// The ServerSession (secagg/protocol.h) lives here for the length of one round; the server
// never receives a client's update, only the protocol's messages. A message the session
// refuses drops its sender (INVALID_ARGUMENT to it) and the round goes on; a member silent
// for privacy.secagg.stage_timeout_s at a stage is dropped the same way. run() waits on the
// loop thread's lock, so handlers and the checkpoint writer go on while the round runs (the
// strategy's other events queue behind it). Internal to cohort_deploy.
//
// Thread safety: every member function is called with the loop's `mu` held.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cohort/runtime/secagg.h"
#include "cohort/secagg/protocol.h"
#include "cohort/strategy/strategy.h"
#include "cohort/v1/fleet.pb.h"

namespace cohort::deploy {

class ServerLoop;

// The delta of a withheld update as the strategy sees it: zeros (the privacy stage replaces
// the group's mean by the round's sum).
class WithheldDelta final : public DeltaSource {
 public:
  explicit WithheldDelta(int64_t numel) : numel_(numel) {}
  int64_t numel() const override { return numel_; }
  double l2_norm() const override { return 0.0; }
  float max_abs() const override { return 0.0f; }
  void scale(float) override {}
  Status replay(const std::function<Status(int64_t, std::span<const float>)>&) const override {
    return Status();
  }

 private:
  int64_t numel_;
};

class SecAggCoordinator final : public runtime::SecAggTransport {
 public:
  struct Options {
    double stage_timeout_s = 30.0;  // a member silent this long at a stage is dropped
    double poll_wait_s = 0.5;       // how long a SecAgg call waits for its next step
    bool keep_transcript = false;   // keep every message of the last round (audits, tests)
  };
  SecAggCoordinator(ServerLoop& loop, Options options);

  // ---- runtime::SecAggTransport (the loop thread, inside a strategy event) -------------
  Result<runtime::SecAggRoundResult> run(const runtime::SecAggGroup& group) override;
  void release(std::span<const ClientId> clients) override;

  // ---- the Fleet handlers ----------------------------------------------------------------
  // Client `c` pushed a withheld update for `task_id`: it waits for its group.
  // FailedPrecondition while it is in a round already.
  Status withheld(ClientId c, int64_t task_id);
  // Its update did not reach the strategy (admission or the round refused it).
  void refused(ClientId c, const std::string& reason);
  // One SecAgg call: hands `message` (if any) to the round, then waits up to poll_wait_s for
  // the client's next step (`lk` holds the loop's mu). An error is the call's status.
  Status handle(ClientId c, int64_t task_id, const std::string& message,
                std::unique_lock<std::mutex>& lk, v1::SecAggReply* reply);

  // Every message the server side received in the last round (keep_transcript).
  const std::vector<secagg::TranscriptEntry>& last_transcript() const { return transcript_; }

 private:
  enum class State { kWaiting, kInRound, kDone, kDropped };
  struct Member {
    int64_t task_id = 0;  // 0: not known (a group restored from a checkpoint)
    State state = State::kWaiting;
    bool included = false;
    std::string reason;
    std::deque<v1::SecAggReply> outbox;  // the client's next steps
    int stage_sent = -1;                 // the last stage it sent a message for
    int stage_open = -1;                 // the last stage whose opening it was sent
    bool out = false;                    // no longer in the current round
  };
  // Waits on the loop thread's lock until `done` or `deadline` (host seconds); false when
  // the server is stopping.
  bool wait_round(double deadline, const std::function<bool()>& done);
  // Ends the round: every member learns the outcome.
  void end_round(const std::vector<ClientId>& included, const std::string& reason);

  ServerLoop& loop_;
  Options opts_;
  std::condition_variable cv_;
  std::map<ClientId, Member> members_;
  std::optional<secagg::ServerSession> session_;
  std::vector<ClientId> round_;  // the current round's members
  std::string stage_name_;
  std::vector<secagg::TranscriptEntry> transcript_;
};

}  // namespace cohort::deploy
