// `cohort bench secagg`: what one secure-aggregation round costs (include/cohort/secagg/,
// docs/privacy.md), clients and server run in this process as src/runtime/secagg_round.cc runs
// them, but each side timed on its own.
//
//   cohort bench secagg [--clients N] [--params M] [--input-bits B] [--neighbours K]
//                       [--threshold T] [--dropout P] [--dropout-after-masking P2]
//                       [--repeats R] [--threads T] [--seed S] [--json]
//     N ClientSessions and one ServerSession run a full round (AdvertiseKeys, ShareKeys,
//     MaskedInput, Unmask) over M words: each client's input is M floats uniform in [-1, 1],
//     encoded with FixedPoint{range 1, B} into words of bits = FixedPoint::required_bits(B, N).
//     K is the SecAgg+ neighbourhood (0 = complete graph); T the Shamir threshold, a fraction of
//     each client's neighbours (rounded up, at least 2) when < 1, else a count. round(P x N)
//     clients, drawn with a seeded Rng, drop after ShareKeys (no masked input), and round(P2 x N)
//     of the others after their masked input (no unmask response).
//   Measured (times are medians over the R rounds, each round with fresh keys and dropouts):
//     client_s_median/max  a client's compute over all its stages (session creation and the
//                          four messages; encoding its floats is not counted), median and max
//                          over the clients that went through all four stages;
//     server_s             ServerSession::receive + advance + finish, summed over the round;
//     bytes_*_per_client   ServerSession::traffic() of a client that went through all stages
//                          (median over them): sent = server -> client, received = client ->
//                          server;
//     expansion            (sent + received) / plaintext, plaintext = M x B / 8 bytes (the
//                          encoded input unmasked); upload_expansion: received / plaintext.
//   Every round checks that the protocol's sum equals, word for word, the plain sum mod 2^bits
//   of the included clients' encoded inputs, and that it decodes (FixedPoint::decode); a
//   mismatch is an error. max_abs_error is the decoded sum against the floats' exact sum (the
//   fixed-point rounding). The kernel pool (--threads) splits long vectors for both sides.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bench.h"
#include "bench_util.h"
#include "cohort/core/metrics.h"
#include "cohort/core/parallel.h"
#include "cohort/core/rng.h"
#include "cohort/secagg/params.h"
#include "cohort/secagg/protocol.h"

namespace cohort::bench {
namespace {

struct SecAggArgs {
  int64_t clients = 100;
  int64_t params = 1000000;
  int32_t input_bits = 16;
  int32_t neighbours = 0;
  double threshold = 0.67;
  double dropout = 0.0;
  double dropout_after_masking = 0.0;
  int64_t repeats = 1;
  int64_t threads = 0;
  uint64_t seed = 1;
  bool json = false;
};

// What one round measured.
struct RoundStats {
  double client_s_median = 0;
  double client_s_max = 0;
  double server_s = 0;
  // The baseline in the same run: what a server without secure aggregation does with the same
  // inputs, summing the encoded vectors as they arrive.
  double plain_sum_s = 0;
  double bytes_sent = 0;      // server -> client, per full participant (median)
  double bytes_received = 0;  // client -> server, per full participant (median)
  int64_t included = 0;
  double max_abs_error = 0;
};

// The Shamir threshold for n clients: a fraction of each client's neighbours (rounded up,
// clamped to [2, k], as privacy.secagg.threshold) or a count.
int32_t threshold_count(double t, const secagg::Params& p, int64_t n) {
  const int64_t k = p.neighbour_count(n);
  if (t >= 1) return static_cast<int32_t>(t);
  const auto count = static_cast<int64_t>(std::ceil(t * static_cast<double>(k)));
  return static_cast<int32_t>(std::clamp<int64_t>(count, 2, std::max<int64_t>(k, 2)));
}

Status check_args(const SecAggArgs& a) {
  COHORT_RETURN_IF_ERROR(check_positive("--clients", a.clients, 3));
  COHORT_RETURN_IF_ERROR(check_positive("--params", a.params, 1));
  COHORT_RETURN_IF_ERROR(check_positive("--repeats", a.repeats, 1));
  COHORT_RETURN_IF_ERROR(check_positive("--threads", a.threads, 0));
  if (!(a.threshold > 0) || (a.threshold >= 1 && a.threshold != std::floor(a.threshold))) {
    return Status::invalid_argument(
        "--threshold must be a fraction in (0, 1) or a whole count, got " +
        std::to_string(a.threshold));
  }
  if (!(a.dropout >= 0 && a.dropout_after_masking >= 0 &&
        a.dropout + a.dropout_after_masking <= 1)) {
    return Status::invalid_argument(
        "--dropout and --dropout-after-masking must be >= 0 and sum to at most 1");
  }
  return Status();
}

// One round with fresh keys: repeat `r` (its round number and the seed of its draws).
Result<RoundStats> run_round(const SecAggArgs& a, const secagg::Params& params,
                             const secagg::FixedPoint& fp, int64_t r) {
  const int64_t n = a.clients;
  const auto m = static_cast<size_t>(a.params);
  std::vector<ClientId> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i + 1;
  auto slot = [](ClientId id) {
    return static_cast<size_t>(id - 1);
  };

  // Who drops when: exact counts, drawn without replacement.
  Rng rng = Rng::derive(a.seed, "bench_secagg_dropout", static_cast<uint64_t>(r));
  const auto n_before = static_cast<uint64_t>(std::llround(a.dropout * static_cast<double>(n)));
  const auto n_after =
      static_cast<uint64_t>(std::llround(a.dropout_after_masking * static_cast<double>(n)));
  const std::vector<uint64_t> order = rng.sample_without_replacement(
      static_cast<uint64_t>(n), std::min<uint64_t>(n_before + n_after, static_cast<uint64_t>(n)));
  std::set<ClientId> before, after;
  for (size_t i = 0; i < order.size(); ++i) {
    (i < n_before ? before : after).insert(static_cast<ClientId>(order[i]) + 1);
  }

  secagg::ServerOptions so;
  so.pool = &kernel_pool();
  COHORT_ASSIGN_OR_RETURN(secagg::ServerSession server,
                          secagg::ServerSession::create(params, ids, so));
  std::vector<double> client_s(ids.size(), 0.0);
  double server_s = 0;
  std::vector<secagg::ClientSession> clients;
  clients.reserve(ids.size());
  for (ClientId id : ids) {
    const auto t0 = Clock::now();
    COHORT_ASSIGN_OR_RETURN(secagg::ClientSession c,
                            secagg::ClientSession::create(id, params, &kernel_pool()));
    client_s[slot(id)] += seconds_since(t0);
    clients.push_back(std::move(c));
  }
  // Every message must be produced and accepted: a refusal here is a bug, not a dropout. The
  // client's time runs from `start` until its message exists (the argument is evaluated first).
  auto deliver = [&](ClientId id, Clock::time_point start,
                     Result<std::vector<uint8_t>> msg) -> Status {
    client_s[slot(id)] += seconds_since(start);
    if (!msg.ok()) {
      return msg.status().with_context("bench secagg: client " + std::to_string(id));
    }
    const auto t0 = Clock::now();
    Status s = server.receive(id, *msg);
    server_s += seconds_since(t0);
    return s.with_context("bench secagg: server, from client " + std::to_string(id));
  };
  auto advance = [&]() -> Result<std::vector<secagg::Outgoing>> {
    const auto t0 = Clock::now();
    Result<std::vector<secagg::Outgoing>> out = server.advance();
    server_s += seconds_since(t0);
    return out;
  };

  // Stage 0: keys.
  for (ClientId id : ids) {
    secagg::ClientSession& c = clients[slot(id)];
    const auto start = Clock::now();
    COHORT_RETURN_IF_ERROR(deliver(id, start, c.advertise_keys()));
  }
  COHORT_ASSIGN_OR_RETURN(std::vector<secagg::Outgoing> rosters, advance());
  // Stage 1: shares.
  for (const secagg::Outgoing& o : rosters) {
    secagg::ClientSession& c = clients[slot(o.to)];
    const auto start = Clock::now();
    COHORT_RETURN_IF_ERROR(deliver(o.to, start, c.share_keys(o.bytes)));
  }
  COHORT_ASSIGN_OR_RETURN(std::vector<secagg::Outgoing> bundles, advance());
  // Stage 2: masked inputs, each client's input made (untimed) just before it is masked, so
  // only one vector is alive at a time; `expected` is the plain sum of the encoded words.
  std::vector<uint32_t> expected(m, 0);
  double plain_sum_s = 0;
  std::vector<double> real_sum(m, 0.0);
  std::vector<float> x(m);
  std::vector<ClientId> included;
  for (const secagg::Outgoing& o : bundles) {
    if (before.count(o.to) > 0) continue;
    Rng in = Rng::derive(a.seed, "bench_secagg_input", static_cast<uint64_t>(o.to),
                         static_cast<uint64_t>(r));
    for (size_t i = 0; i < m; ++i) {
      x[i] = static_cast<float>(in.uniform(-1.0, 1.0));
      real_sum[i] += x[i];
    }
    const uint64_t enc_seed = Rng::mix_seed(a.seed, "bench_secagg_encode",
                                            static_cast<uint64_t>(o.to), static_cast<uint64_t>(r));
    COHORT_ASSIGN_OR_RETURN(secagg::FixedPoint::Encoded enc,
                            fp.encode(x, params.bits, n, enc_seed));
    const auto plain_start = Clock::now();
    for (size_t i = 0; i < m; ++i) expected[i] += enc.words[i];
    plain_sum_s += seconds_since(plain_start);
    included.push_back(o.to);
    secagg::ClientSession& c = clients[slot(o.to)];
    const auto start = Clock::now();
    COHORT_RETURN_IF_ERROR(deliver(o.to, start, c.masked_input(o.bytes, enc.words)));
  }
  COHORT_ASSIGN_OR_RETURN(std::vector<secagg::Outgoing> requests, advance());
  // Stage 3: unmasking.
  for (const secagg::Outgoing& o : requests) {
    if (after.count(o.to) > 0) continue;
    secagg::ClientSession& c = clients[slot(o.to)];
    const auto start = Clock::now();
    COHORT_RETURN_IF_ERROR(deliver(o.to, start, c.unmask(o.bytes)));
  }
  auto t0 = Clock::now();
  Result<secagg::Aggregate> finished = server.finish();
  server_s += seconds_since(t0);
  COHORT_ASSIGN_OR_RETURN(secagg::Aggregate agg, std::move(finished));

  // The checks: the same clients, the same words, and a sum that decodes.
  std::sort(included.begin(), included.end());
  const std::string round = "bench secagg: round " + std::to_string(r) + ": ";
  if (agg.included != included) {
    return Status::internal(round + "the server included " + std::to_string(agg.included.size()) +
                            " clients, expected the " + std::to_string(included.size()) +
                            " that sent their masked input");
  }
  const uint32_t mask = params.word_mask();
  if (agg.sum.size() != m) {
    return Status::internal(round + "sum of " + std::to_string(agg.sum.size()) +
                            " words, expected " + std::to_string(m));
  }
  for (size_t i = 0; i < m; ++i) {
    if (agg.sum[i] != (expected[i] & mask)) {
      return Status::internal(
          round + "word " + std::to_string(i) + " of the sum is " + std::to_string(agg.sum[i]) +
          ", the plain sum of the encoded inputs " + std::to_string(expected[i] & mask));
    }
  }
  const auto k = static_cast<int64_t>(included.size());
  COHORT_ASSIGN_OR_RETURN(std::vector<float> decoded, fp.decode(agg.sum, params.bits, k));
  RoundStats st;
  for (size_t i = 0; i < m; ++i) {
    st.max_abs_error = std::max(st.max_abs_error, std::abs(decoded[i] - real_sum[i]));
  }

  // Per-client figures over the clients that went through all four stages (all of them when
  // none did).
  std::vector<double> times, sent, received;
  const std::map<ClientId, secagg::Traffic>& traffic = server.traffic();
  for (int pass = 0; pass < 2 && times.empty(); ++pass) {
    for (ClientId id : ids) {
      if (pass == 0 && (before.count(id) > 0 || after.count(id) > 0)) continue;
      times.push_back(client_s[slot(id)]);
      auto it = traffic.find(id);
      sent.push_back(it == traffic.end() ? 0.0 : static_cast<double>(it->second.total_sent()));
      received.push_back(it == traffic.end() ? 0.0
                                             : static_cast<double>(it->second.total_received()));
    }
  }
  st.client_s_median = median(times);
  st.client_s_max = *std::max_element(times.begin(), times.end());
  st.server_s = server_s;
  st.plain_sum_s = plain_sum_s;
  st.bytes_sent = median(sent);
  st.bytes_received = median(received);
  st.included = k;
  return st;
}

Status run_secagg(const SecAggArgs& a) {
  COHORT_RETURN_IF_ERROR(check_args(a));
  set_kernel_threads(static_cast<size_t>(a.threads));
  const secagg::FixedPoint fp{1.0, a.input_bits};
  secagg::Params params;
  params.neighbours = a.neighbours;
  params.bits = secagg::FixedPoint::required_bits(a.input_bits, a.clients);
  params.length = a.params;
  params.threshold = threshold_count(a.threshold, params, a.clients);
  COHORT_RETURN_IF_ERROR(fp.validate(params.bits, a.clients).with_context("bench secagg"));
  COHORT_RETURN_IF_ERROR(params.validate_roster(a.clients).with_context("bench secagg"));

  std::vector<double> med, mx, srv, plain_sum;
  RoundStats last;
  double max_err = 0;
  for (int64_t r = 0; r < a.repeats; ++r) {
    params.round = static_cast<uint64_t>(r);
    Rng g = Rng::derive(a.seed, "bench_secagg_graph", static_cast<uint64_t>(r));
    for (size_t i = 0; i < params.graph_seed.size(); i += 8) {
      const uint64_t v = g.next_u64();
      for (size_t b = 0; b < 8; ++b) params.graph_seed[i + b] = static_cast<uint8_t>(v >> (8 * b));
    }
    COHORT_ASSIGN_OR_RETURN(last, run_round(a, params, fp, r));
    med.push_back(last.client_s_median);
    mx.push_back(last.client_s_max);
    srv.push_back(last.server_s);
    plain_sum.push_back(last.plain_sum_s);
    max_err = std::max(max_err, last.max_abs_error);
  }
  const double plain = static_cast<double>(a.params) * a.input_bits / 8.0;
  Json j = {{"benchmark", "secagg"},
            {"clients", a.clients},
            {"params", a.params},
            {"input_bits", a.input_bits},
            {"bits", params.bits},
            {"neighbours", a.neighbours},
            {"neighbour_count", params.neighbour_count(a.clients)},
            {"threshold", params.threshold},
            {"dropout", a.dropout},
            {"dropout_after_masking", a.dropout_after_masking},
            {"threads", kernel_threads()},
            {"repeats", a.repeats},
            {"client_s_median", median(med)},
            {"client_s_max", median(mx)},
            {"server_s", median(srv)},
            {"plain_sum_s", median(plain_sum)},
            {"server_vs_plain_sum", median(srv) / std::max(median(plain_sum), 1e-9)},
            {"bytes_sent_per_client", last.bytes_sent},
            {"bytes_received_per_client", last.bytes_received},
            {"plaintext_bytes_per_client", plain},
            {"expansion", (last.bytes_sent + last.bytes_received) / plain},
            {"upload_expansion", last.bytes_received / plain},
            {"included", last.included},
            {"max_abs_error", max_err},
            {"ok", true}};
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return Status();
  }
  std::printf(
      "secagg n=%lld m=%lld input_bits=%d bits=%d k=%lld t=%d dropout=%.2f+%.2f threads=%zu: "
      "client %.3f s median / %.3f s max, server %.3f s (%.0fx a plain sum's %.4f s); per client %.0f B up, %.0f B down, "
      "plaintext %.0f B, expansion %.3fx (upload %.3fx); %lld included, sum exact (max error "
      "vs floats %.2g)\n",
      static_cast<long long>(a.clients), static_cast<long long>(a.params), a.input_bits,
      params.bits, static_cast<long long>(params.neighbour_count(a.clients)), params.threshold,
      a.dropout, a.dropout_after_masking, kernel_threads(), median(med), median(mx), median(srv),
      median(srv) / std::max(median(plain_sum), 1e-9), median(plain_sum),
      last.bytes_received, last.bytes_sent, plain, (last.bytes_sent + last.bytes_received) / plain,
      last.bytes_received / plain, static_cast<long long>(last.included), max_err);
  return Status();
}

}  // namespace

void add_secagg_benchmark(CLI::App* bench, const Guard& guard) {
  auto sa = std::make_shared<SecAggArgs>();
  CLI::App* c = bench->add_subcommand(
      "secagg", "Client and server compute and bytes of one secure-aggregation round");
  c->add_option("--clients", sa->clients, "Clients in the round (N)")->capture_default_str();
  c->add_option("--params", sa->params, "Words per input vector (M)")->capture_default_str();
  c->add_option("--input-bits", sa->input_bits, "Bits of one encoded value, sign included")
      ->capture_default_str();
  c->add_option("--neighbours", sa->neighbours, "SecAgg+ neighbours per client (0 = all)")
      ->capture_default_str();
  c->add_option("--threshold", sa->threshold,
                "Shamir threshold: a fraction of the neighbours (< 1) or a count")
      ->capture_default_str();
  c->add_option("--dropout", sa->dropout,
                "Fraction of clients that drop after ShareKeys (no masked input)")
      ->capture_default_str();
  c->add_option("--dropout-after-masking", sa->dropout_after_masking,
                "Fraction of clients that drop after their masked input (no unmask response)")
      ->capture_default_str();
  c->add_option("--repeats", sa->repeats, "Rounds; the medians are reported")
      ->capture_default_str();
  c->add_option("--threads", sa->threads, "Kernel threads (0 = all cores)")->capture_default_str();
  c->add_option("--seed", sa->seed, "Seed of the inputs, dropouts and graph")
      ->capture_default_str();
  c->add_flag("--json", sa->json, "Print one JSON line");
  c->callback([sa, guard] {
    guard("bench secagg", [&] {
      return run_secagg(*sa);
    });
  });
}

}  // namespace cohort::bench
