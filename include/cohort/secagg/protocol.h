// The secure-aggregation protocol (Bonawitz et al., CCS 2017, semi-honest variant; SecAgg+
// neighbourhoods of Bell et al. 2020 when Params::neighbours > 0) as two pure state machines:
// ClientSession turns the server's messages into the client's next message, ServerSession
// collects the clients' messages and returns the messages of the next stage and, at the end,
// the sum of the surviving clients' vectors mod 2^bits. No I/O, no clocks, no threads of their
// own (long vectors may be split on a caller's ThreadPool); the transport and the deadlines of
// each stage are the caller's.
//
// Stages and messages (formats in messages.h):
//   0 AdvertiseKeys  every client sends two fresh X25519 public keys (c: channel, s: masking).
//                    advance(): U1 = the clients whose keys arrived (>= t); each gets a Roster
//                    (U1's ids, the params, the keys of its neighbours).
//   1 ShareKeys      each client draws its self-mask seed b_u, Shamir-shares b_u and s_sk_u
//                    t-of-k among its neighbours (x = 1-based position in U1), encrypts each
//                    neighbour's pair of shares (ChaCha20-Poly1305 under a key derived from
//                    X25519 of the channel keys, round and both ids) and commits to b_u.
//                    advance(): U2 = the clients whose shares arrived, less any with fewer than
//                    t neighbours in U2 (repeated until stable); each gets a ShareBundle with
//                    the ciphertexts its neighbours in U2 addressed to it.
//   2 MaskedInput    y_u = x_u + PRG(b_u) + sum over neighbours v in U2 of +PRG(s_uv) if u < v,
//                    -PRG(s_uv) if u > v (mod 2^bits), so pairwise masks cancel in the sum.
//                    The server adds each accepted y_u into a running sum at once (it keeps no
//                    individual vector). advance(): U3 = the clients whose y_u arrived; each gets
//                    an UnmaskRequest (U3, U2 \ U3).
//   3 Unmask         each client returns, for each neighbour v in U2, its share of b_v if v is in
//                    U3 or of s_sk_v if v dropped; never both for one v, and a request with
//                    |U3| < t, naming a client in both sets, or not naming the client itself as
//                    a survivor is refused (FailedPrecondition).
//                    finish(): for every secret it needs, the server interpolates the shares of
//                    the responding neighbours (>= t), checks b_v against its commitment and
//                    s_sk_v against s_pk_v; on a mismatch with more than t shares it leaves one
//                    share out at a time, and discards every share of a responder whose share
//                    was wrong (rejections() names it; its own input stays in the sum, its mask
//                    being removable), then starts over. One wrong share per secret is found
//                    this way; two wrong shares of one secret make it unrecoverable. Then sum = sum
//                    of U3's y_u - PRG(b_u) -/+ the pairwise masks between U3 and U2 \ U3.
//
// Failures: a message that is malformed, for the wrong round or stage, from a client not
// expected at this stage, a duplicate, or inconsistent with the roster makes receive() return
// an error naming the round, the client, the stage and the field; the client is dropped from
// then on (the round goes on for the others; a client whose y_u was already added stays in U3,
// as its mask is removed through b_u). When fewer than t clients remain at a stage, or a needed
// secret cannot be reconstructed, advance() or finish() returns FailedPrecondition
// ("secure aggregation round 3: only 4 of the needed 5 clients sent ShareKeys") and the
// session fails: nothing partial is ever returned.
//
// Not covered (semi-honest model): the ConsistencyCheck round and signatures of the malicious
// variant, so a server that lies about U3 to different clients is not detected.
//
// Thread safety: a session is used by one thread at a time; different sessions are independent.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "cohort/core/parallel.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/secagg/messages.h"
#include "cohort/secagg/params.h"

namespace cohort::secagg {

enum class Stage : uint8_t {
  kAdvertiseKeys = 0,
  kShareKeys = 1,
  kMaskedInput = 2,
  kUnmask = 3,
  kDone = 4,
  kFailed = 5,
};
// "AdvertiseKeys", "ShareKeys", "MaskedInput", "Unmask", "Done", "Failed".
std::string_view stage_name(Stage stage);

class ClientSession {
 public:
  // InvalidArgument from params.validate(); Internal when libsodium cannot start. `pool` (may
  // be null) must outlive the session.
  static Result<ClientSession> create(ClientId id, const Params& params,
                                      ThreadPool* pool = nullptr);
  ClientSession(ClientSession&&) noexcept;
  ClientSession& operator=(ClientSession&&) noexcept;
  ~ClientSession();  // wipes the secrets

  ClientId id() const;
  // The stage whose message the client produces next; kFailed after any error.
  Stage stage() const;

  // Stage 0: a fresh AdvertiseKeys.
  Result<std::vector<uint8_t>> advertise_keys();
  // Stage 1: checks the Roster (round, recipient, params equal to this client's, U1 sorted and
  // holding this client, keys exactly for its neighbours and usable) and returns ShareKeys.
  Result<std::vector<uint8_t>> share_keys(std::span<const uint8_t> roster);
  // Stage 2: opens the ShareBundle (a ciphertext that fails is recorded in unusable_shares())
  // and returns the MaskedInput of `input` (params.length words, each < 2^bits).
  Result<std::vector<uint8_t>> masked_input(std::span<const uint8_t> bundle,
                                            std::span<const uint32_t> input);
  // Stage 3: the UnmaskResponse to an UnmaskRequest.
  Result<std::vector<uint8_t>> unmask(std::span<const uint8_t> request);

  // Neighbours whose ciphertext to this client failed to decrypt or named the wrong round or
  // clients, increasing.
  const std::vector<ClientId>& unusable_shares() const;

 private:
  struct State;
  explicit ClientSession(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

struct ServerOptions {
  // Keep a copy of every message received (transcript()); costs their total size in memory.
  bool keep_transcript = false;
  // Splits long vectors into fixed chunks on this pool (null: the calling thread). Must
  // outlive the session.
  ThreadPool* pool = nullptr;
};

// A message from the server to one client.
struct Outgoing {
  ClientId to = 0;
  std::vector<uint8_t> bytes;
};

// A rejected message or response, and why.
struct Rejection {
  ClientId client = 0;
  Stage stage = Stage::kAdvertiseKeys;
  Status status;
};

// Bytes exchanged with one client (or in all), by message kind (index = MessageKind).
struct Traffic {
  std::array<uint64_t, kNumMessageKinds> sent{};      // server -> client
  std::array<uint64_t, kNumMessageKinds> received{};  // client -> server
  uint64_t total_sent() const;
  uint64_t total_received() const;
};

struct TranscriptEntry {
  ClientId client = 0;
  Stage stage = Stage::kAdvertiseKeys;  // the stage the server was in
  std::vector<uint8_t> bytes;
};

struct Aggregate {
  // Sum of the included clients' input words, mod 2^bits.
  std::vector<uint32_t> sum;
  // U3: the clients whose inputs are in the sum, increasing.
  std::vector<ClientId> included;
  // U2 \ U3: clients that shared keys but whose masked input is not in the sum.
  std::vector<ClientId> dropped;
};

class ServerSession {
 public:
  // `clients` are the invited ids (distinct). InvalidArgument from
  // params.validate_roster(clients.size()) or a repeated id; Internal when libsodium cannot
  // start.
  static Result<ServerSession> create(const Params& params, std::span<const ClientId> clients,
                                      const ServerOptions& options = {});
  ServerSession(ServerSession&&) noexcept;
  ServerSession& operator=(ServerSession&&) noexcept;
  ~ServerSession();

  const Params& params() const;
  Stage stage() const;

  // A message from client `from` (the transport's authenticated identity) for the current
  // stage. An error rejects the message and drops the client (see the file comment).
  Status receive(ClientId from, std::span<const uint8_t> bytes);
  // Closes the current stage (0, 1 or 2) and returns the next stage's messages.
  // FailedPrecondition when too few clients remain; the session is then failed.
  Result<std::vector<Outgoing>> advance();
  // Closes stage 3 and returns the sum. FailedPrecondition when a secret cannot be
  // reconstructed; the session is then failed.
  Result<Aggregate> finish();

  // The sets so far, increasing: U1 (keys advertised), U2 (shares sent), U3 (masked input).
  const std::vector<ClientId>& advertised() const;
  const std::vector<ClientId>& shared() const;
  const std::vector<ClientId>& masked() const;
  const std::vector<Rejection>& rejections() const;
  // (owner of the unusable share, reporting client) pairs from the UnmaskResponses.
  const std::vector<std::pair<ClientId, ClientId>>& complaints() const;
  // Every message received, in arrival order (empty unless options.keep_transcript).
  const std::vector<TranscriptEntry>& transcript() const;
  // Per invited client, and in all (messages from unknown clients count only in all).
  const std::map<ClientId, Traffic>& traffic() const;
  const Traffic& total_traffic() const;

 private:
  struct State;
  explicit ServerSession(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace cohort::secagg
