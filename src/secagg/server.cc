// ServerSession: the server's side of a secure-aggregation round (protocol.h). It sees public
// keys, ciphertexts it cannot open, masked vectors (added into one running sum on arrival) and,
// at the end, the shares of exactly one secret per client, from which it removes the masks.
// Every rejection names the round, the client, the stage and the field, and drops the client.
#include <sodium.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "cohort/secagg/protocol.h"
#include "secagg/crypto.h"
#include "secagg/graph.h"
#include "secagg/shamir.h"

namespace cohort::secagg {
namespace {

using crypto::Key;

MessageKind expected_kind(Stage stage) {
  switch (stage) {
    case Stage::kAdvertiseKeys:
      return MessageKind::kAdvertiseKeys;
    case Stage::kShareKeys:
      return MessageKind::kShareKeys;
    case Stage::kMaskedInput:
      return MessageKind::kMaskedInput;
    default:
      return MessageKind::kUnmaskResponse;
  }
}

std::string secret_name(SecretKind kind) {
  return kind == SecretKind::kSelfMaskSeed ? "self-mask seed" : "mask key";
}

// What the server knows about one invited client.
struct Record {
  ClientId id = 0;
  bool rejected = false;  // a message was rejected: nothing more is accepted from it
  bool advertised = false;
  bool shared = false;
  bool masked = false;
  bool responded = false;
  int64_t position = -1;  // in U1
  PublicKey channel_key{};
  PublicKey mask_key{};
  Digest commitment{};
  std::vector<EncryptedShare> outgoing;  // its ShareKeys ciphertexts, by recipient
  std::vector<RevealedShare> revealed;   // its UnmaskResponse shares, by owner
};

}  // namespace

std::string_view stage_name(Stage stage) {
  switch (stage) {
    case Stage::kAdvertiseKeys:
      return "AdvertiseKeys";
    case Stage::kShareKeys:
      return "ShareKeys";
    case Stage::kMaskedInput:
      return "MaskedInput";
    case Stage::kUnmask:
      return "Unmask";
    case Stage::kDone:
      return "Done";
    case Stage::kFailed:
      return "Failed";
  }
  return "unknown";
}

uint64_t Traffic::total_sent() const {
  uint64_t t = 0;
  for (uint64_t b : sent) t += b;
  return t;
}

uint64_t Traffic::total_received() const {
  uint64_t t = 0;
  for (uint64_t b : received) t += b;
  return t;
}

struct ServerSession::State {
  Params params;
  ServerOptions options;
  Stage stage = Stage::kAdvertiseKeys;
  Status failure;

  std::vector<Record> records;       // invited clients, increasing id
  std::vector<ClientId> u1, u2, u3;  // increasing
  std::vector<size_t> roster;        // position in U1 -> index into records
  std::optional<Graph> graph;
  std::vector<uint32_t> sum;  // sum of the accepted masked inputs

  std::vector<Rejection> rejections;
  std::vector<std::pair<ClientId, ClientId>> complaints;
  std::vector<TranscriptEntry> transcript;
  std::map<ClientId, Traffic> traffic;
  Traffic total;

  std::string round_prefix() const {
    return "secure aggregation round " + std::to_string(params.round) + ": ";
  }
  Record* find(ClientId id) {
    const auto it =
        std::lower_bound(records.begin(), records.end(), id, [](const Record& r, ClientId x) {
          return r.id < x;
        });
    return it != records.end() && it->id == id ? &*it : nullptr;
  }
  Record& at(int64_t position) { return records[roster[static_cast<size_t>(position)]]; }
  static bool contains(const std::vector<ClientId>& set, ClientId id) {
    return std::binary_search(set.begin(), set.end(), id);
  }

  // Rejects the current message of `client` and drops it.
  Status reject(ClientId client, Record* rec, const Status& why) {
    if (rec != nullptr) rec->rejected = true;
    Status s(why.code(), round_prefix() + "client " + std::to_string(client) + ": " +
                             std::string(stage_name(stage)) + ": " + why.message());
    rejections.push_back({client, stage, s});
    return s;
  }
  // Fails the session with FailedPrecondition.
  Status fail(const std::string& what) {
    failure = Status::failed_precondition(round_prefix() + what);
    stage = Stage::kFailed;
    return failure;
  }
  void count_sent(const Outgoing& out, MessageKind kind) {
    const size_t k = static_cast<size_t>(kind);
    total.sent[k] += out.bytes.size();
    traffic[out.to].sent[k] += out.bytes.size();
  }

  Status on_advertise(Record& rec, std::span<const uint8_t> bytes);
  Status on_share_keys(Record& rec, std::span<const uint8_t> bytes);
  Status on_masked_input(Record& rec, std::span<const uint8_t> bytes);
  Status on_unmask(Record& rec, std::span<const uint8_t> bytes);

  Result<std::vector<Outgoing>> close_advertise();
  Result<std::vector<Outgoing>> close_share_keys();
  Result<std::vector<Outgoing>> close_masked_input();
  // The secret of `owner`, verified, from the responders' shares; rejects a responder whose
  // share is proven wrong (then *retry is set and nothing is returned).
  Result<Key> reconstruct(Record& owner, SecretKind kind, bool* retry);
};

// The checks every message shares: round and sender of the decoded header.
template <typename M>
Status check_header(const M& m, uint64_t round, ClientId from) {
  if (m.round != round) {
    return Status::invalid_argument("round is " + std::to_string(m.round) + ", expected " +
                                    std::to_string(round));
  }
  if (m.sender != from) {
    return Status::invalid_argument("sender is " + std::to_string(m.sender) +
                                    ", but the message came from client " + std::to_string(from));
  }
  return Status();
}

Status ServerSession::State::on_advertise(Record& rec, std::span<const uint8_t> bytes) {
  COHORT_ASSIGN_OR_RETURN(AdvertiseKeys m, AdvertiseKeys::decode(bytes));
  COHORT_RETURN_IF_ERROR(check_header(m, params.round, rec.id));
  if (!crypto::usable_public_key(m.channel_key)) {
    return Status::invalid_argument("channel_key is a low-order point");
  }
  if (!crypto::usable_public_key(m.mask_key)) {
    return Status::invalid_argument("mask_key is a low-order point");
  }
  rec.channel_key = m.channel_key;
  rec.mask_key = m.mask_key;
  rec.advertised = true;
  return Status();
}

Status ServerSession::State::on_share_keys(Record& rec, std::span<const uint8_t> bytes) {
  COHORT_ASSIGN_OR_RETURN(ShareKeys m, ShareKeys::decode(bytes));
  COHORT_RETURN_IF_ERROR(check_header(m, params.round, rec.id));
  const std::vector<int32_t> nbrs = graph->neighbours(rec.position);
  if (m.shares.size() != nbrs.size()) {
    return Status::invalid_argument("shares has " + std::to_string(m.shares.size()) +
                                    " entries, expected one per neighbour (" +
                                    std::to_string(nbrs.size()) + ")");
  }
  for (size_t i = 0; i < nbrs.size(); ++i) {
    const ClientId want = at(nbrs[i]).id;
    if (m.shares[i].peer != want) {
      return Status::invalid_argument("shares[" + std::to_string(i) + "].recipient is " +
                                      std::to_string(m.shares[i].peer) + ", expected neighbour " +
                                      std::to_string(want));
    }
  }
  rec.commitment = m.commitment;
  rec.outgoing = std::move(m.shares);
  rec.shared = true;
  return Status();
}

Status ServerSession::State::on_masked_input(Record& rec, std::span<const uint8_t> bytes) {
  COHORT_ASSIGN_OR_RETURN(MaskedInput m, MaskedInput::decode(bytes));
  COHORT_RETURN_IF_ERROR(check_header(m, params.round, rec.id));
  if (m.bits != params.bits) {
    return Status::invalid_argument("bits is " + std::to_string(m.bits) +
                                    ", expected secagg.bits = " + std::to_string(params.bits));
  }
  if (static_cast<int64_t>(m.words.size()) != params.length) {
    return Status::invalid_argument("length is " + std::to_string(m.words.size()) +
                                    ", expected secagg.length = " + std::to_string(params.length));
  }
  // Accepted: y_u joins the running sum (mod 2^32 here, reduced in finish()).
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += m.words[i];
  rec.masked = true;
  return Status();
}

Status ServerSession::State::on_unmask(Record& rec, std::span<const uint8_t> bytes) {
  COHORT_ASSIGN_OR_RETURN(UnmaskResponse m, UnmaskResponse::decode(bytes));
  COHORT_RETURN_IF_ERROR(check_header(m, params.round, rec.id));
  // Every owner must be a neighbour in U2 (so its ciphertext reached this client) and the
  // secret the one the server asked for.
  const auto check_owner = [&](ClientId owner, const std::string& field) -> Status {
    const Record* o = find(owner);
    if (o == nullptr || !contains(u2, owner) || !graph->adjacent(rec.position, o->position)) {
      return Status::invalid_argument(field + " " + std::to_string(owner) +
                                      " is not a neighbour of this client in U2");
    }
    return Status();
  };
  for (size_t i = 0; i < m.shares.size(); ++i) {
    const RevealedShare& s = m.shares[i];
    const std::string field = "shares[" + std::to_string(i) + "]";
    COHORT_RETURN_IF_ERROR(check_owner(s.owner, field + ".owner"));
    const SecretKind want =
        contains(u3, s.owner) ? SecretKind::kSelfMaskSeed : SecretKind::kMaskKey;
    if (s.secret != want) {
      return Status::invalid_argument(field + ".secret is the " + secret_name(s.secret) +
                                      " of client " + std::to_string(s.owner) +
                                      ", but the server asked for its " + secret_name(want));
    }
  }
  size_t next_share = 0;  // both lists are increasing: walk them together
  for (size_t i = 0; i < m.unusable.size(); ++i) {
    COHORT_RETURN_IF_ERROR(check_owner(m.unusable[i], "unusable[" + std::to_string(i) + "]"));
    while (next_share < m.shares.size() && m.shares[next_share].owner < m.unusable[i]) {
      ++next_share;
    }
    if (next_share < m.shares.size() && m.shares[next_share].owner == m.unusable[i]) {
      return Status::invalid_argument("unusable[" + std::to_string(i) + "] " +
                                      std::to_string(m.unusable[i]) +
                                      " also has a share in this response");
    }
  }
  for (ClientId owner : m.unusable) complaints.emplace_back(owner, rec.id);
  rec.revealed = std::move(m.shares);
  rec.responded = true;
  return Status();
}

Result<std::vector<Outgoing>> ServerSession::State::close_advertise() {
  for (const Record& r : records) {
    if (r.advertised && !r.rejected) u1.push_back(r.id);
  }
  const int64_t n = static_cast<int64_t>(u1.size());
  const int64_t needed =
      params.neighbours == 0 ? int64_t{params.threshold} + 1 : int64_t{params.neighbours} + 1;
  if (n < needed) {
    return fail("only " + std::to_string(n) + " of the needed " + std::to_string(needed) +
                " clients advertised keys (threshold " + std::to_string(params.threshold) +
                ", neighbours " + std::to_string(params.neighbours) + ")");
  }
  if (Status st = params.validate_roster(n); !st.ok()) return fail(st.message());
  Result<Graph> g = Graph::build(n, params.neighbours, params.graph_seed);
  if (!g.ok()) return fail(g.error().message());
  graph = std::move(*g);
  for (ClientId id : u1) {
    Record* r = find(id);
    r->position = static_cast<int64_t>(roster.size());
    roster.push_back(static_cast<size_t>(r - records.data()));
  }
  std::vector<Outgoing> out;
  out.reserve(u1.size());
  for (int64_t p = 0; p < n; ++p) {
    Roster m{.recipient = at(p).id, .params = params, .clients = u1, .keys = {}};
    for (int32_t q : graph->neighbours(p)) {
      const Record& v = at(q);
      m.keys.push_back({.id = v.id, .channel_key = v.channel_key, .mask_key = v.mask_key});
    }
    out.push_back({m.recipient, m.encode()});
    count_sent(out.back(), MessageKind::kRoster);
  }
  stage = Stage::kShareKeys;
  return out;
}

Result<std::vector<Outgoing>> ServerSession::State::close_share_keys() {
  // U2: the clients whose ShareKeys was accepted, less those with fewer than t neighbours in
  // U2 (their secrets could never be reconstructed), until no more leave.
  const int64_t n = graph->size();
  std::vector<uint8_t> in(static_cast<size_t>(n), 0);
  for (int64_t p = 0; p < n; ++p) in[p] = at(p).shared && !at(p).rejected;
  for (bool changed = true; changed;) {
    changed = false;
    for (int64_t p = 0; p < n; ++p) {
      if (!in[p]) continue;
      int64_t live = 0;
      for (int32_t q : graph->neighbours(p)) live += in[q];
      if (live < params.threshold) {
        in[p] = 0;
        changed = true;
      }
    }
  }
  for (int64_t p = 0; p < n; ++p) {
    if (in[p]) u2.push_back(at(p).id);
  }
  if (u2.size() < static_cast<size_t>(params.threshold)) {
    return fail("only " + std::to_string(u2.size()) + " of the needed " +
                std::to_string(params.threshold + 1) +
                " clients sent ShareKeys with enough neighbours doing the same");
  }
  std::vector<Outgoing> out;
  out.reserve(u2.size());
  for (int64_t p = 0; p < n; ++p) {
    if (!in[p]) continue;
    ShareBundle m{.round = params.round, .recipient = at(p).id, .shares = {}};
    for (int32_t q : graph->neighbours(p)) {
      if (!in[q]) continue;
      const std::vector<EncryptedShare>& sent = at(q).outgoing;
      const auto it = std::lower_bound(sent.begin(), sent.end(), m.recipient,
                                       [](const EncryptedShare& e, ClientId x) {
                                         return e.peer < x;
                                       });
      m.shares.push_back({.peer = at(q).id, .ciphertext = it->ciphertext});
    }
    out.push_back({m.recipient, m.encode()});
    count_sent(out.back(), MessageKind::kShareBundle);
  }
  for (Record& r : records) std::vector<EncryptedShare>().swap(r.outgoing);
  stage = Stage::kMaskedInput;
  return out;
}

Result<std::vector<Outgoing>> ServerSession::State::close_masked_input() {
  for (ClientId id : u2) {
    if (find(id)->masked) u3.push_back(id);
  }
  if (u3.size() < static_cast<size_t>(params.threshold)) {
    return fail("only " + std::to_string(u3.size()) + " of the needed " +
                std::to_string(params.threshold) + " clients sent MaskedInput");
  }
  // Every secret needed later must have t neighbours left to reveal it.
  for (ClientId id : u2) {
    const Record& r = *find(id);
    const bool survivor = r.masked;
    int64_t in_u3 = 0;
    int64_t can_answer = 0;
    for (int32_t q : graph->neighbours(r.position)) {
      const Record& v = at(q);
      if (v.masked) ++in_u3;
      if (v.masked && !v.rejected) ++can_answer;
    }
    if (!survivor && in_u3 == 0) continue;  // no mask of it is in the sum
    if (can_answer < params.threshold) {
      return fail("only " + std::to_string(can_answer) + " of the needed " +
                  std::to_string(params.threshold) + " neighbours of client " + std::to_string(id) +
                  " are left to reveal its " +
                  secret_name(survivor ? SecretKind::kSelfMaskSeed : SecretKind::kMaskKey));
    }
  }
  std::vector<ClientId> dropped;
  std::set_difference(u2.begin(), u2.end(), u3.begin(), u3.end(), std::back_inserter(dropped));
  std::vector<Outgoing> out;
  for (ClientId id : u3) {
    if (find(id)->rejected) continue;
    UnmaskRequest m{.round = params.round, .recipient = id, .survivors = u3, .dropped = dropped};
    out.push_back({id, m.encode()});
    count_sent(out.back(), MessageKind::kUnmaskRequest);
  }
  stage = Stage::kUnmask;
  return out;
}

Result<Key> ServerSession::State::reconstruct(Record& owner, SecretKind kind, bool* retry) {
  *retry = false;
  std::vector<shamir::Share> shares;
  std::vector<Record*> holders;
  for (int32_t q : graph->neighbours(owner.position)) {
    Record& h = at(q);
    if (!h.responded || h.rejected) continue;
    const auto it = std::lower_bound(h.revealed.begin(), h.revealed.end(), owner.id,
                                     [](const RevealedShare& s, ClientId x) {
                                       return s.owner < x;
                                     });
    if (it == h.revealed.end() || it->owner != owner.id) continue;
    Result<shamir::Share> share = shamir::from_bytes(static_cast<uint64_t>(q) + 1, it->share);
    if (!share.ok()) continue;  // decode() already refused such bytes
    shares.push_back(*share);
    holders.push_back(&h);
  }
  const std::string what = "the " + secret_name(kind) + " of client " + std::to_string(owner.id);
  const auto t = static_cast<size_t>(params.threshold);
  if (shares.size() < t) {
    return fail("only " + std::to_string(shares.size()) + " of the needed " + std::to_string(t) +
                " shares of " + what + " arrived");
  }
  const auto verified = [&](std::span<const shamir::Share> subset) -> std::optional<Key> {
    Result<Key> secret = shamir::combine(subset, params.threshold);
    if (!secret.ok()) return std::nullopt;
    bool ok = false;
    if (kind == SecretKind::kSelfMaskSeed) {
      const Digest d = crypto::commit(*secret, params.round, owner.id);
      ok = crypto_verify_32(d.data(), owner.commitment.data()) == 0;
    } else {
      const PublicKey pk = crypto::public_key_of(*secret);
      ok = crypto_verify_32(pk.data(), owner.mask_key.data()) == 0;
    }
    if (!ok) return std::nullopt;
    return *secret;
  };
  if (std::optional<Key> key = verified(shares)) return *key;
  if (shares.size() > t) {
    for (size_t leave = 0; leave < shares.size(); ++leave) {
      std::vector<shamir::Share> rest = shares;
      rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(leave));
      if (verified(rest)) {
        Record& bad = *holders[leave];
        (void)reject(bad.id, &bad,
                     Status::data_loss("its share of " + what +
                                       " is inconsistent with the others; all its shares are "
                                       "discarded"));
        *retry = true;
        return Status::aborted("retry");
      }
    }
  }
  return fail("cannot reconstruct " + what + " from " + std::to_string(shares.size()) +
              " shares: they do not match its " +
              (kind == SecretKind::kSelfMaskSeed ? "commitment" : "public key"));
}

ServerSession::ServerSession(std::unique_ptr<State> state) : s_(std::move(state)) {}
ServerSession::ServerSession(ServerSession&&) noexcept = default;
ServerSession& ServerSession::operator=(ServerSession&&) noexcept = default;
ServerSession::~ServerSession() = default;

Result<ServerSession> ServerSession::create(const Params& params, std::span<const ClientId> clients,
                                            const ServerOptions& options) {
  COHORT_RETURN_IF_ERROR(params.validate_roster(static_cast<int64_t>(clients.size())));
  COHORT_RETURN_IF_ERROR(crypto::init());
  auto s = std::make_unique<State>();
  s->params = params;
  s->options = options;
  std::vector<ClientId> ids(clients.begin(), clients.end());
  std::sort(ids.begin(), ids.end());
  for (size_t i = 1; i < ids.size(); ++i) {
    if (ids[i] == ids[i - 1]) {
      return Status::invalid_argument("secagg: client " + std::to_string(ids[i]) +
                                      " is invited twice");
    }
  }
  for (ClientId id : ids) {
    Record r;
    r.id = id;
    s->records.push_back(std::move(r));
    s->traffic[id];
  }
  s->sum.assign(static_cast<size_t>(params.length), 0);
  return ServerSession(std::move(s));
}

const Params& ServerSession::params() const { return s_->params; }
Stage ServerSession::stage() const { return s_->stage; }
const std::vector<ClientId>& ServerSession::advertised() const { return s_->u1; }
const std::vector<ClientId>& ServerSession::shared() const { return s_->u2; }
const std::vector<ClientId>& ServerSession::masked() const { return s_->u3; }
const std::vector<Rejection>& ServerSession::rejections() const { return s_->rejections; }
const std::vector<std::pair<ClientId, ClientId>>& ServerSession::complaints() const {
  return s_->complaints;
}
const std::vector<TranscriptEntry>& ServerSession::transcript() const { return s_->transcript; }
const std::map<ClientId, Traffic>& ServerSession::traffic() const { return s_->traffic; }
const Traffic& ServerSession::total_traffic() const { return s_->total; }

Status ServerSession::receive(ClientId from, std::span<const uint8_t> bytes) {
  State& s = *s_;
  const Stage stage = s.stage;
  const auto kind = static_cast<size_t>(expected_kind(stage));
  s.total.received[kind] += bytes.size();
  Record* rec = s.find(from);
  if (rec != nullptr) s.traffic[from].received[kind] += bytes.size();
  if (s.options.keep_transcript) {
    s.transcript.push_back({from, stage, std::vector<uint8_t>(bytes.begin(), bytes.end())});
  }
  if (stage == Stage::kDone || stage == Stage::kFailed) {
    return Status::failed_precondition(s.round_prefix() + "client " + std::to_string(from) +
                                       ": message after the round " +
                                       (stage == Stage::kDone ? "finished" : "failed"));
  }
  if (rec == nullptr) {
    return s.reject(from, nullptr, Status::failed_precondition("not invited to this round"));
  }
  if (rec->rejected) {
    return Status::failed_precondition(s.round_prefix() + "client " + std::to_string(from) + ": " +
                                       std::string(stage_name(stage)) +
                                       ": dropped earlier in this round");
  }
  const auto expect = [&](bool member, bool done, const char* set) -> Status {
    if (!member) {
      return Status::failed_precondition(std::string("not expected at this stage (not in ") + set +
                                         ")");
    }
    if (done) return Status::failed_precondition("a second message at this stage");
    return Status();
  };
  Status st;
  switch (stage) {
    case Stage::kAdvertiseKeys:
      st = expect(true, rec->advertised, "");
      if (st.ok()) st = s.on_advertise(*rec, bytes);
      break;
    case Stage::kShareKeys:
      st = expect(State::contains(s.u1, from), rec->shared, "U1");
      if (st.ok()) st = s.on_share_keys(*rec, bytes);
      break;
    case Stage::kMaskedInput:
      st = expect(State::contains(s.u2, from), rec->masked, "U2");
      if (st.ok()) st = s.on_masked_input(*rec, bytes);
      break;
    default:
      st = expect(State::contains(s.u3, from), rec->responded, "U3");
      if (st.ok()) st = s.on_unmask(*rec, bytes);
      break;
  }
  if (!st.ok()) {
    if (stage == Stage::kUnmask) rec->revealed.clear();
    return s.reject(from, rec, st);
  }
  return Status();
}

Result<std::vector<Outgoing>> ServerSession::advance() {
  State& s = *s_;
  switch (s.stage) {
    case Stage::kAdvertiseKeys:
      return s.close_advertise();
    case Stage::kShareKeys:
      return s.close_share_keys();
    case Stage::kMaskedInput:
      return s.close_masked_input();
    case Stage::kFailed:
      return s.failure;
    default:
      return Status::failed_precondition(s.round_prefix() + "advance() in stage " +
                                         std::string(stage_name(s.stage)) +
                                         (s.stage == Stage::kUnmask ? "; call finish()" : ""));
  }
}

Result<Aggregate> ServerSession::finish() {
  State& s = *s_;
  if (s.stage == Stage::kFailed) return s.failure;
  if (s.stage != Stage::kUnmask) {
    return Status::failed_precondition(s.round_prefix() + "finish() in stage " +
                                       std::string(stage_name(s.stage)) + ", expected Unmask");
  }
  std::vector<ClientId> dropped;
  std::set_difference(s.u2.begin(), s.u2.end(), s.u3.begin(), s.u3.end(),
                      std::back_inserter(dropped));
  std::vector<crypto::MaskTerm> terms;
  // Reconstruct every needed secret; a responder proven wrong is rejected and all secrets are
  // reconstructed again without its shares (at most once per responder).
  for (bool retry = true; retry;) {
    retry = false;
    sodium_memzero(terms.data(), terms.size() * sizeof(crypto::MaskTerm));
    terms.clear();
    for (ClientId id : s.u3) {
      Record& owner = *s.find(id);
      Result<Key> b = s.reconstruct(owner, SecretKind::kSelfMaskSeed, &retry);
      if (retry) break;
      if (!b.ok()) return b.error();
      terms.push_back({.seed = *b, .subtract = true});
    }
    for (size_t i = 0; i < dropped.size() && !retry; ++i) {
      Record& owner = *s.find(dropped[i]);
      std::vector<const Record*> survivors;
      for (int32_t q : s.graph->neighbours(owner.position)) {
        if (s.at(q).masked) survivors.push_back(&s.at(q));
      }
      if (survivors.empty()) continue;
      Result<Key> sk = s.reconstruct(owner, SecretKind::kMaskKey, &retry);
      if (retry) break;
      if (!sk.ok()) return sk.error();
      for (const Record* u : survivors) {
        // y_u holds +PRG(s_ud) when u < d and -PRG(s_ud) when u > d; remove it.
        crypto::MaskTerm term{.seed = {}, .subtract = u->id < owner.id};
        if (!crypto::pairwise_seed(*sk, u->mask_key, s.params.round, owner.id, u->id, &term.seed)) {
          return s.fail("client " + std::to_string(u->id) + " has a low-order mask key");
        }
        terms.push_back(term);
      }
      sodium_memzero(sk->data(), sk->size());
    }
  }
  Aggregate out;
  out.sum = std::move(s.sum);
  crypto::apply_masks(out.sum, terms, s.params.word_mask(), s.options.pool);
  sodium_memzero(terms.data(), terms.size() * sizeof(crypto::MaskTerm));
  out.included = s.u3;
  out.dropped = std::move(dropped);
  s.stage = Stage::kDone;
  return out;
}

}  // namespace cohort::secagg
