// ClientSession: one client's side of a secure-aggregation round (protocol.h). Holds the two
// X25519 secret keys, the self-mask seed and the shares received from neighbours; every step
// checks the server's message against what the client already knows before using it, and any
// error fails the session (stage kFailed) so no later step can run on a half-checked state.
#include <sodium.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>

#include "cohort/secagg/protocol.h"
#include "secagg/crypto.h"
#include "secagg/graph.h"
#include "secagg/shamir.h"

namespace cohort::secagg {
namespace {

using crypto::Key;

// The AEAD plaintext: round u64, sender i64, recipient i64, mask-key share, self-mask share.
struct SharePlaintext {
  uint64_t round = 0;
  ClientId sender = 0;
  ClientId recipient = 0;
  ShareBytes mask_key_share{};
  ShareBytes self_seed_share{};
};

void put_u64(uint8_t* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_u64(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(in[i]) << (8 * i);
  return v;
}

std::array<uint8_t, kSharePlaintextSize> encode_plaintext(const SharePlaintext& p) {
  std::array<uint8_t, kSharePlaintextSize> out{};
  put_u64(out.data(), p.round);
  put_u64(out.data() + 8, static_cast<uint64_t>(p.sender));
  put_u64(out.data() + 16, static_cast<uint64_t>(p.recipient));
  std::copy(p.mask_key_share.begin(), p.mask_key_share.end(), out.begin() + 24);
  std::copy(p.self_seed_share.begin(), p.self_seed_share.end(), out.begin() + 24 + kShareSize);
  return out;
}

SharePlaintext decode_plaintext(const std::array<uint8_t, kSharePlaintextSize>& in) {
  SharePlaintext p;
  p.round = get_u64(in.data());
  p.sender = static_cast<ClientId>(get_u64(in.data() + 8));
  p.recipient = static_cast<ClientId>(get_u64(in.data() + 16));
  std::copy(in.begin() + 24, in.begin() + 24 + kShareSize, p.mask_key_share.begin());
  std::copy(in.begin() + 24 + kShareSize, in.end(), p.self_seed_share.begin());
  return p;
}

// The first field in which two Params differ, for a message naming it.
std::string params_difference(const Params& got, const Params& want) {
  const auto diff = [](const char* name, auto g, auto w) {
    return std::string("params.") + name + " is " + std::to_string(g) + ", expected " +
           std::to_string(w);
  };
  if (got.round != want.round) return diff("round", got.round, want.round);
  if (got.threshold != want.threshold) return diff("threshold", got.threshold, want.threshold);
  if (got.neighbours != want.neighbours) return diff("neighbours", got.neighbours, want.neighbours);
  if (got.bits != want.bits) return diff("bits", got.bits, want.bits);
  if (got.length != want.length) return diff("length", got.length, want.length);
  return "params.graph_seed differs from the agreed seed";
}

}  // namespace

struct ClientSession::State {
  ClientId id = 0;
  Params params;
  ThreadPool* pool = nullptr;
  Stage stage = Stage::kAdvertiseKeys;

  crypto::KeyPair channel;
  crypto::KeyPair mask;
  Key self_seed{};  // b_u

  int64_t position = 0;        // in U1; the x-coordinate of shares held is position + 1
  std::vector<KeyEntry> nbrs;  // neighbours' keys, increasing id
  // Per neighbour (index into nbrs): sent us shares (in U2), decrypted fine, and the shares.
  std::vector<uint8_t> in_u2;
  std::vector<uint8_t> usable;
  std::vector<ShareBytes> mask_key_shares;
  std::vector<ShareBytes> self_seed_shares;
  std::vector<ClientId> unusable;

  ~State() {
    sodium_memzero(channel.secret_key.data(), channel.secret_key.size());
    sodium_memzero(mask.secret_key.data(), mask.secret_key.size());
    sodium_memzero(self_seed.data(), self_seed.size());
    if (!mask_key_shares.empty()) {
      sodium_memzero(mask_key_shares.data(), mask_key_shares.size() * kShareSize);
      sodium_memzero(self_seed_shares.data(), self_seed_shares.size() * kShareSize);
    }
  }

  // The error with "secure aggregation round R: client C: " in front; fails the session.
  Status fail(const Status& s) {
    stage = Stage::kFailed;
    return Status(s.code(), "secure aggregation round " + std::to_string(params.round) +
                                ": client " + std::to_string(id) + ": " + s.message());
  }
  Status check_stage(Stage want, std::string_view step) {
    if (stage == want) return Status();
    const Stage was = stage;
    return fail(Status::failed_precondition(std::string(step) + " called in stage " +
                                            std::string(stage_name(was)) + ", expected " +
                                            std::string(stage_name(want))));
  }
  // Index of a neighbour in nbrs, or -1.
  int64_t neighbour_index(ClientId v) const {
    const auto it =
        std::lower_bound(nbrs.begin(), nbrs.end(), v, [](const KeyEntry& e, ClientId x) {
          return e.id < x;
        });
    return it != nbrs.end() && it->id == v ? it - nbrs.begin() : -1;
  }
};

ClientSession::ClientSession(std::unique_ptr<State> state) : s_(std::move(state)) {}
ClientSession::ClientSession(ClientSession&&) noexcept = default;
ClientSession& ClientSession::operator=(ClientSession&&) noexcept = default;
ClientSession::~ClientSession() = default;

Result<ClientSession> ClientSession::create(ClientId id, const Params& params, ThreadPool* pool) {
  COHORT_RETURN_IF_ERROR(params.validate());
  COHORT_RETURN_IF_ERROR(crypto::init());
  auto s = std::make_unique<State>();
  s->id = id;
  s->params = params;
  s->pool = pool;
  return ClientSession(std::move(s));
}

ClientId ClientSession::id() const { return s_->id; }
Stage ClientSession::stage() const { return s_->stage; }
const std::vector<ClientId>& ClientSession::unusable_shares() const { return s_->unusable; }

Result<std::vector<uint8_t>> ClientSession::advertise_keys() {
  State& s = *s_;
  COHORT_RETURN_IF_ERROR(s.check_stage(Stage::kAdvertiseKeys, "advertise_keys"));
  s.channel = crypto::make_key_pair();
  s.mask = crypto::make_key_pair();
  AdvertiseKeys m{.round = s.params.round,
                  .sender = s.id,
                  .channel_key = s.channel.public_key,
                  .mask_key = s.mask.public_key};
  s.stage = Stage::kShareKeys;
  return m.encode();
}

Result<std::vector<uint8_t>> ClientSession::share_keys(std::span<const uint8_t> roster_bytes) {
  State& s = *s_;
  COHORT_RETURN_IF_ERROR(s.check_stage(Stage::kShareKeys, "share_keys"));
  Result<Roster> decoded = Roster::decode(roster_bytes);
  if (!decoded.ok()) return s.fail(decoded.error());
  Roster& roster = *decoded;
  if (roster.params != s.params) {
    return s.fail(
        Status::invalid_argument("Roster: " + params_difference(roster.params, s.params)));
  }
  if (roster.recipient != s.id) {
    return s.fail(
        Status::invalid_argument("Roster: recipient is " + std::to_string(roster.recipient)));
  }
  const auto self = std::lower_bound(roster.clients.begin(), roster.clients.end(), s.id);
  if (self == roster.clients.end() || *self != s.id) {
    return s.fail(Status::invalid_argument("Roster: clients does not include this client"));
  }
  const int64_t n = static_cast<int64_t>(roster.clients.size());
  if (Status st = s.params.validate_roster(n); !st.ok()) {
    return s.fail(Status::failed_precondition("Roster of " + std::to_string(n) +
                                              " clients: " + st.message()));
  }
  s.position = self - roster.clients.begin();
  Result<Graph> graph = Graph::build(n, s.params.neighbours, s.params.graph_seed);
  if (!graph.ok()) return s.fail(graph.error());
  const std::vector<int32_t> nbr_pos = graph->neighbours(s.position);
  if (roster.keys.size() != nbr_pos.size()) {
    return s.fail(Status::invalid_argument(
        "Roster: keys has " + std::to_string(roster.keys.size()) + " entries, expected the " +
        std::to_string(nbr_pos.size()) + " neighbours of this client"));
  }
  std::vector<uint64_t> xs(nbr_pos.size());
  for (size_t i = 0; i < nbr_pos.size(); ++i) {
    const KeyEntry& e = roster.keys[i];
    const std::string field = "Roster: keys[" + std::to_string(i) + "]";
    if (e.id != roster.clients[nbr_pos[i]]) {
      return s.fail(Status::invalid_argument(field + ".id is " + std::to_string(e.id) +
                                             ", expected neighbour " +
                                             std::to_string(roster.clients[nbr_pos[i]])));
    }
    if (!crypto::usable_public_key(e.channel_key) || !crypto::usable_public_key(e.mask_key)) {
      return s.fail(Status::invalid_argument(field + ": client " + std::to_string(e.id) +
                                             " has a low-order public key"));
    }
    xs[i] = static_cast<uint64_t>(nbr_pos[i]) + 1;
  }
  s.nbrs = std::move(roster.keys);

  crypto::random_bytes(s.self_seed);
  Result<std::vector<shamir::Share>> seed_shares =
      shamir::split(s.self_seed, s.params.threshold, xs);
  Result<std::vector<shamir::Share>> key_shares =
      shamir::split(s.mask.secret_key, s.params.threshold, xs);
  if (!seed_shares.ok()) return s.fail(seed_shares.error());
  if (!key_shares.ok()) return s.fail(key_shares.error());

  ShareKeys out{.round = s.params.round,
                .sender = s.id,
                .commitment = crypto::commit(s.self_seed, s.params.round, s.id),
                .shares = {}};
  out.shares.resize(s.nbrs.size());
  for (size_t i = 0; i < s.nbrs.size(); ++i) {
    const ClientId v = s.nbrs[i].id;
    Key key{};
    if (!crypto::channel_key(s.channel.secret_key, s.nbrs[i].channel_key, s.params.round, s.id, v,
                             &key)) {
      return s.fail(Status::invalid_argument("Roster: client " + std::to_string(v) +
                                             " has a low-order channel key"));
    }
    SharePlaintext p{.round = s.params.round,
                     .sender = s.id,
                     .recipient = v,
                     .mask_key_share = shamir::to_bytes((*key_shares)[i]),
                     .self_seed_share = shamir::to_bytes((*seed_shares)[i])};
    auto plaintext = encode_plaintext(p);
    const auto ad = crypto::share_ad(s.params.round, s.id, v);
    out.shares[i] = EncryptedShare{.peer = v, .ciphertext = crypto::seal(key, plaintext, ad)};
    sodium_memzero(plaintext.data(), plaintext.size());
    sodium_memzero(&p, sizeof(p));
    sodium_memzero(key.data(), key.size());
  }
  sodium_memzero(seed_shares->data(), seed_shares->size() * sizeof(shamir::Share));
  sodium_memzero(key_shares->data(), key_shares->size() * sizeof(shamir::Share));
  s.stage = Stage::kMaskedInput;
  return out.encode();
}

Result<std::vector<uint8_t>> ClientSession::masked_input(std::span<const uint8_t> bundle_bytes,
                                                         std::span<const uint32_t> input) {
  State& s = *s_;
  COHORT_RETURN_IF_ERROR(s.check_stage(Stage::kMaskedInput, "masked_input"));
  if (static_cast<int64_t>(input.size()) != s.params.length) {
    return s.fail(Status::invalid_argument(
        "input has " + std::to_string(input.size()) +
        " words, expected secagg.length = " + std::to_string(s.params.length)));
  }
  const uint32_t word_mask = s.params.word_mask();
  for (size_t i = 0; i < input.size(); ++i) {
    if ((input[i] & ~word_mask) != 0) {
      return s.fail(Status::invalid_argument("input word " + std::to_string(i) + " = " +
                                             std::to_string(input[i]) + " is not below 2^" +
                                             std::to_string(s.params.bits)));
    }
  }
  Result<ShareBundle> decoded = ShareBundle::decode(bundle_bytes);
  if (!decoded.ok()) return s.fail(decoded.error());
  const ShareBundle& bundle = *decoded;
  if (bundle.round != s.params.round) {
    return s.fail(
        Status::invalid_argument("ShareBundle: round is " + std::to_string(bundle.round)));
  }
  if (bundle.recipient != s.id) {
    return s.fail(
        Status::invalid_argument("ShareBundle: recipient is " + std::to_string(bundle.recipient)));
  }
  if (bundle.shares.size() < static_cast<size_t>(s.params.threshold)) {
    return s.fail(Status::failed_precondition(
        "ShareBundle: only " + std::to_string(bundle.shares.size()) + " of the needed " +
        std::to_string(s.params.threshold) + " neighbours shared keys"));
  }
  const size_t k = s.nbrs.size();
  s.in_u2.assign(k, 0);
  s.usable.assign(k, 0);
  s.mask_key_shares.assign(k, ShareBytes{});
  s.self_seed_shares.assign(k, ShareBytes{});
  std::vector<crypto::MaskTerm> terms;
  terms.reserve(bundle.shares.size() + 1);
  terms.push_back({.seed = s.self_seed, .subtract = false});
  for (size_t i = 0; i < bundle.shares.size(); ++i) {
    const ClientId u = bundle.shares[i].peer;
    const int64_t idx = s.neighbour_index(u);
    if (idx < 0) {
      return s.fail(Status::invalid_argument("ShareBundle: shares[" + std::to_string(i) +
                                             "].sender " + std::to_string(u) +
                                             " is not a neighbour of this client"));
    }
    s.in_u2[idx] = 1;
    // Open the ciphertext u -> this client; any failure makes u's shares unusable.
    Key key{};
    std::array<uint8_t, kSharePlaintextSize> plaintext{};
    bool ok = crypto::channel_key(s.channel.secret_key, s.nbrs[idx].channel_key, s.params.round, u,
                                  s.id, &key) &&
              crypto::open(key, bundle.shares[i].ciphertext,
                           crypto::share_ad(s.params.round, u, s.id), plaintext);
    if (ok) {
      const SharePlaintext p = decode_plaintext(plaintext);
      ok = p.round == s.params.round && p.sender == u && p.recipient == s.id &&
           shamir::from_bytes(1, p.mask_key_share).ok() &&
           shamir::from_bytes(1, p.self_seed_share).ok();
      if (ok) {
        s.mask_key_shares[idx] = p.mask_key_share;
        s.self_seed_shares[idx] = p.self_seed_share;
      }
    }
    sodium_memzero(plaintext.data(), plaintext.size());
    sodium_memzero(key.data(), key.size());
    if (ok) {
      s.usable[idx] = 1;
    } else {
      s.unusable.push_back(u);  // bundle senders are increasing
    }
    crypto::MaskTerm term{.seed = {}, .subtract = s.id > u};
    if (!crypto::pairwise_seed(s.mask.secret_key, s.nbrs[idx].mask_key, s.params.round, s.id, u,
                               &term.seed)) {
      return s.fail(Status::invalid_argument("Roster: client " + std::to_string(u) +
                                             " has a low-order mask key"));
    }
    terms.push_back(term);
  }
  MaskedInput out{.round = s.params.round,
                  .sender = s.id,
                  .bits = s.params.bits,
                  .words = std::vector<uint32_t>(input.begin(), input.end())};
  crypto::apply_masks(out.words, terms, word_mask, s.pool);
  sodium_memzero(terms.data(), terms.size() * sizeof(crypto::MaskTerm));
  s.stage = Stage::kUnmask;
  return out.encode();
}

Result<std::vector<uint8_t>> ClientSession::unmask(std::span<const uint8_t> request_bytes) {
  State& s = *s_;
  COHORT_RETURN_IF_ERROR(s.check_stage(Stage::kUnmask, "unmask"));
  Result<UnmaskRequest> decoded = UnmaskRequest::decode(request_bytes);
  if (!decoded.ok()) return s.fail(decoded.error());
  const UnmaskRequest& req = *decoded;
  if (req.round != s.params.round) {
    return s.fail(Status::invalid_argument("UnmaskRequest: round is " + std::to_string(req.round)));
  }
  if (req.recipient != s.id) {
    return s.fail(
        Status::invalid_argument("UnmaskRequest: recipient is " + std::to_string(req.recipient)));
  }
  // Never reveal both secrets of one client.
  std::vector<ClientId> both;
  std::set_intersection(req.survivors.begin(), req.survivors.end(), req.dropped.begin(),
                        req.dropped.end(), std::back_inserter(both));
  if (!both.empty()) {
    return s.fail(Status::failed_precondition(
        "UnmaskRequest asks for both the self-mask seed and the mask key of client " +
        std::to_string(both.front()) + "; refused"));
  }
  if (req.survivors.size() < static_cast<size_t>(s.params.threshold)) {
    return s.fail(Status::failed_precondition("UnmaskRequest names " +
                                              std::to_string(req.survivors.size()) +
                                              " survivors, fewer than the threshold " +
                                              std::to_string(s.params.threshold) + "; refused"));
  }
  if (!std::binary_search(req.survivors.begin(), req.survivors.end(), s.id)) {
    return s.fail(Status::failed_precondition(
        "UnmaskRequest does not list this client as a survivor; refused"));
  }
  UnmaskResponse out{.round = s.params.round, .sender = s.id, .shares = {}, .unusable = s.unusable};
  for (size_t i = 0; i < s.nbrs.size(); ++i) {
    const ClientId v = s.nbrs[i].id;
    const bool survived = std::binary_search(req.survivors.begin(), req.survivors.end(), v);
    const bool dropped = std::binary_search(req.dropped.begin(), req.dropped.end(), v);
    if (!s.in_u2[i]) {
      if (survived || dropped) {
        return s.fail(Status::failed_precondition(
            "UnmaskRequest lists client " + std::to_string(v) + " as " +
            (survived ? "a survivor" : "dropped") + ", but it sent this client no shares"));
      }
      continue;
    }
    if (!survived && !dropped) {
      return s.fail(Status::failed_precondition("UnmaskRequest lists neighbour " +
                                                std::to_string(v) +
                                                " neither as a survivor nor as dropped"));
    }
    if (!s.usable[i]) continue;
    out.shares.push_back(
        RevealedShare{.owner = v,
                      .secret = survived ? SecretKind::kSelfMaskSeed : SecretKind::kMaskKey,
                      .share = survived ? s.self_seed_shares[i] : s.mask_key_shares[i]});
  }
  s.stage = Stage::kDone;
  return out.encode();
}

}  // namespace cohort::secagg
