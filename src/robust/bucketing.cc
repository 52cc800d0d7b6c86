// Bucketing (Karimireddy, He, Jaggi, "Byzantine-Robust Learning on Heterogeneous Datasets via
// Bucketing", ICLR 2022): a random permutation of the n inputs (Rng derived from
// Inputs::seed) is cut into ceil(n / s) buckets of s consecutive inputs (the last may be
// smaller); each bucket's weighted mean, with the sum of its weights as its weight, is an
// input of the inner rule. Averaging first shrinks the spread of honest inputs on
// heterogeneous data, which robust rules otherwise mistake for attacks. Each input gets its
// bucket's influence; `previous` and the seed pass through to the inner rule.
#include <algorithm>
#include <memory>
#include <numeric>
#include <vector>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/core/rng.h"
#include "rules.h"

namespace cohort::robust {
namespace {

class BucketingRule final : public Rule {
 public:
  BucketingRule(int64_t s, std::unique_ptr<Rule> inner) : s_(s), inner_(std::move(inner)) {}

  std::string describe() const override {
    return "bucketing(s=" + std::to_string(s_) + ") -> " + inner_->describe();
  }

  Status check(size_t n) const override {
    if (n == 0) return Status::invalid_argument("bucketing: no updates to aggregate");
    const size_t buckets = num_buckets(n);
    return inner_->check(buckets).with_context(
        strformat("bucketing(s=%lld) of %zu updates into %zu buckets", static_cast<long long>(s_),
                  n, buckets));
  }

  Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const override {
    COHORT_RETURN_IF_ERROR(check_inputs("bucketing", in, out));
    const size_t n = in.vectors.size();
    COHORT_RETURN_IF_ERROR(check(n));
    const size_t buckets = num_buckets(n);
    const auto s = static_cast<size_t>(s_);

    std::vector<size_t> perm(n);
    std::iota(perm.begin(), perm.end(), size_t{0});
    Rng rng = Rng::derive(in.seed, "robust.bucketing");
    rng.shuffle(perm);

    // Bucket b holds perm[b * s, min(n, (b + 1) * s)). A bucket of one input is that input.
    Inputs inner;
    inner.previous = in.previous;
    inner.seed = in.seed;
    inner.vectors.resize(buckets);
    inner.weights.resize(buckets);
    size_t multi = 0;
    for (size_t b = 0; b < buckets; ++b) multi += std::min(n, (b + 1) * s) - b * s > 1 ? 1 : 0;
    std::vector<float> means(multi * out.size());
    std::vector<const float*> ptrs;
    std::vector<float> w;
    size_t next = 0;
    for (size_t b = 0; b < buckets; ++b) {
      const size_t first = b * s, last = std::min(n, first + s);
      double total = 0;
      for (size_t p = first; p < last; ++p) total += in.weights[perm[p]];
      inner.weights[b] = total;
      if (last - first == 1) {
        inner.vectors[b] = in.vectors[perm[first]];
        continue;
      }
      ptrs.clear();
      w.clear();
      for (size_t p = first; p < last; ++p) {
        ptrs.push_back(in.vectors[perm[p]].data());
        w.push_back(static_cast<float>(in.weights[perm[p]] / total));
      }
      const std::span<float> mean(means.data() + next * out.size(), out.size());
      ops::weighted_sum(ptrs, w, mean);
      inner.vectors[b] = mean;
      ++next;
    }

    Outcome inner_outcome;
    COHORT_RETURN_IF_ERROR(inner_->aggregate(inner, out, outcome ? &inner_outcome : nullptr));
    if (outcome != nullptr) {
      outcome->influence.assign(n, 1.0);
      for (size_t p = 0; p < n; ++p) {
        const size_t b = p / s;
        if (b < inner_outcome.influence.size())
          outcome->influence[perm[p]] = inner_outcome.influence[b];
      }
      outcome->stats = std::move(inner_outcome.stats);
      outcome->stats.emplace_back("buckets", static_cast<double>(buckets));
    }
    return Status();
  }

 private:
  size_t num_buckets(size_t n) const {
    const auto s = static_cast<size_t>(s_);
    return (n + s - 1) / s;
  }

  int64_t s_;
  std::unique_ptr<Rule> inner_;
};

}  // namespace

Result<std::unique_ptr<Rule>> make_bucketing(int64_t s, std::unique_ptr<Rule> inner) {
  if (s < 1) {
    return Status::invalid_argument("robust.bucketing: must be >= 1, got " + std::to_string(s));
  }
  if (inner == nullptr) return Status::invalid_argument("bucketing: no inner rule");
  return std::unique_ptr<Rule>(std::make_unique<BucketingRule>(s, std::move(inner)));
}

}  // namespace cohort::robust
