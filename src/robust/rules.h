// The factories behind make_rule (rule.cc), one per rule file. Each validates the options it
// reads (InvalidArgument naming `robust.<key>`) and returns the rule. Internal to cohort_robust.
#pragma once

#include <memory>

#include "cohort/robust/rule.h"

namespace cohort::robust {

Result<std::unique_ptr<Rule>> make_mean(const RuleOptions& o);               // mean.cc
Result<std::unique_ptr<Rule>> make_krum(const RuleOptions& o, bool multi);   // krum.cc
Result<std::unique_ptr<Rule>> make_median(const RuleOptions& o);             // median.cc
Result<std::unique_ptr<Rule>> make_trimmed_mean(const RuleOptions& o);       // trimmed_mean.cc
Result<std::unique_ptr<Rule>> make_geometric_median(const RuleOptions& o);   // geometric_median.cc
Result<std::unique_ptr<Rule>> make_centered_clipping(const RuleOptions& o);  // centered_clipping.cc
Result<std::unique_ptr<Rule>> make_norm_clip(const RuleOptions& o);          // norm_clip.cc
Result<std::unique_ptr<Rule>> make_flag(const RuleOptions& o);               // flag.cc
// Bucketing (bucketing.cc): permutes the inputs with Inputs::seed, averages consecutive
// buckets of `s` (weighted by the inputs' weights; a bucket's weight is their sum), runs
// `inner` on the bucket means, and gives each input its bucket's influence.
Result<std::unique_ptr<Rule>> make_bucketing(int64_t s, std::unique_ptr<Rule> inner);

// Shared checks for aggregate(): n >= 1 inputs of equal length == out.size() >= 1, weights
// positive and finite, `previous` empty or of that length. InvalidArgument naming `rule`.
Status check_inputs(const char* rule, const Inputs& in, std::span<const float> out);

// The L2 distance from every input to `point` (its length), in double, summed per fixed chunk
// in chunk order: the same bits for any number of kernel threads.
std::vector<double> distances_to(const Inputs& in, std::span<const float> point);
// Influence from distances to the aggregate: min(1, median(dist) / dist_i) (1 when dist_i is
// 0). Used by median and geometric median.
std::vector<double> influence_from_distances(const std::vector<double>& dist);
std::vector<double> distance_influence(const Inputs& in, std::span<const float> aggregate);

}  // namespace cohort::robust
