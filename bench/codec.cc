// `cohort bench codec`: throughput and quality of a compression chain (docs/compression.md).
//
//   cohort bench codec --params N --codec SPEC [--threads T] [--repeats R] [--json]
//     On N float32s drawn from a normal distribution (a model delta's typical shape), times
//     (medians of R repeats, each running all three one after another):
//       encode           Chain::encode (frames in parallel on the kernel pool);
//       decode_fold      Chain::fold: decode every frame and add it into a running sum, as a
//                        server folds an update (frames in parallel, a frame-sized buffer each);
//       baseline_fold    ops::axpy of the raw float32 vector into the same sum: what folding an
//                        uncompressed update costs, measured in the same run.
//     Throughputs are GB/s of float32 input (N x 4 bytes / time); "ratio" is N x 4 / payload
//     bytes; "rel_l2_error" is ||decode(encode(x)) - x|| / ||x||; "decode_vs_baseline" is
//     decode_fold's throughput over the baseline's.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench.h"
#include "bench_util.h"
#include "cohort/codec/codec.h"
#include "cohort/core/metrics.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "cohort/core/rng.h"

namespace cohort::bench {
namespace {

struct CodecArgs {
  int64_t params = 25000000;
  std::string codec = "int8";
  int64_t threads = 0;
  int64_t repeats = 7;
  bool json = false;
};

Status run_codec(const CodecArgs& a) {
  if (a.params < 1 || a.repeats < 1) {
    return Status::invalid_argument("bench codec: --params and --repeats must be positive");
  }
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const codec::Chain> chain, codec::Chain::parse(a.codec));
  if (chain->none()) return Status::invalid_argument("bench codec: --codec none has nothing to time");
  set_kernel_threads(static_cast<size_t>(a.threads));
  const std::vector<int64_t> offsets = {0, a.params};
  std::vector<float> x(static_cast<size_t>(a.params));
  Rng rng(1);
  for (float& v : x) v = static_cast<float>(rng.normal(0.0, 0.01));
  std::vector<float> sum(x.size(), 0.0f);
  std::string payload;
  std::vector<double> enc, dec, base;
  for (int64_t r = 0; r < a.repeats; ++r) {
    auto t0 = Clock::now();
    COHORT_ASSIGN_OR_RETURN(payload, chain->encode(x, offsets, static_cast<uint64_t>(r)));
    enc.push_back(seconds_since(t0));
    t0 = Clock::now();
    COHORT_RETURN_IF_ERROR(chain->fold(payload, offsets, 0.5f, sum));
    dec.push_back(seconds_since(t0));
    t0 = Clock::now();
    ops::axpy(0.5f, x, sum);
    base.push_back(seconds_since(t0));
  }
  std::vector<float> back(x.size());
  COHORT_RETURN_IF_ERROR(chain->decode(payload, offsets, back));
  ops::axpy(-1.0f, x, back);
  const double rel = ops::l2_norm(back) / ops::l2_norm(x);
  const double bytes = 4.0 * static_cast<double>(a.params);
  const double enc_gbs = bytes / median(enc) / 1e9, dec_gbs = bytes / median(dec) / 1e9,
               base_gbs = bytes / median(base) / 1e9;
  Json j = {{"benchmark", "codec"},
            {"codec", chain->spec()},
            {"params", a.params},
            {"threads", kernel_threads()},
            {"repeats", a.repeats},
            {"payload_bytes", payload.size()},
            {"ratio", bytes / static_cast<double>(payload.size())},
            {"encode_gbytes_per_s", enc_gbs},
            {"decode_gbytes_per_s", dec_gbs},
            {"baseline_fold_gbytes_per_s", base_gbs},
            {"decode_vs_baseline", dec_gbs / base_gbs},
            {"rel_l2_error", rel}};
  std::printf("%s\n", a.json ? j.dump().c_str() : j.dump(2).c_str());
  return Status();
}

}  // namespace

void add_codec_benchmark(CLI::App* bench, const Guard& guard) {
  auto ca = std::make_shared<CodecArgs>();
  CLI::App* c = bench->add_subcommand("codec", "Encode and decode-and-fold throughput of a codec chain");
  c->add_option("--params", ca->params, "Floats per update (N)")->capture_default_str();
  c->add_option("--codec", ca->codec, "Chain, e.g. \"topk:0.01 -> int8 -> zstd\"")
      ->capture_default_str();
  c->add_option("--threads", ca->threads, "Kernel threads (0 = all cores)")->capture_default_str();
  c->add_option("--repeats", ca->repeats, "Timed repeats; the median is reported")
      ->capture_default_str();
  c->add_flag("--json", ca->json, "Print one JSON line");
  c->callback([ca, guard] {
    guard("bench codec", [&] {
      return run_codec(*ca);
    });
  });
}

}  // namespace cohort::bench
