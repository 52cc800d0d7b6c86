#include "cohort/data/data_config.h"

#include "cohort/core/format.h"
#include "cohort/core/rng.h"
#include "cohort/core/validate.h"
#include "cohort/data/idx.h"

namespace cohort {

namespace {
constexpr char kFashionMnistPath[] = "/usr/share/datasets/fashion-mnist";
constexpr char kFortunesPath[] = "/usr/share/games/fortunes";
}  // namespace

std::string DataConfig::resolved_path() const {
  return dataset == "text" && path == kFashionMnistPath ? kFortunesPath : path;
}

Status DataConfig::validate() const {
  if (dataset != "fashion-mnist" && dataset != "synthetic" && dataset != "text") {
    return field_error("data.dataset",
                       "unknown value '" + dataset + "' (known: fashion-mnist, synthetic, text)");
  }
  if (dataset == "text") COHORT_RETURN_IF_ERROR(text.validate());
  if (path.empty()) return field_error("data.path", "must not be empty");
  COHORT_RETURN_IF_ERROR(check_field("data.train_limit", train_limit, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("data.test_limit", test_limit, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(partition.validate());
  COHORT_RETURN_IF_ERROR(
      check_field("data.holdout_fraction", holdout_fraction, Range::at_least(0)));
  if (holdout_fraction >= 1.0) {
    return field_error(
        "data.holdout_fraction",
        "must be < 1 (a client must keep training data), got " + format_number(holdout_fraction));
  }
  COHORT_RETURN_IF_ERROR(synthetic.validate());
  return check_field("data.synthetic.test_examples", synthetic_test_examples, Range::at_least(1));
}

Result<std::shared_ptr<const Dataset>> load_split(const DataConfig& d, std::string_view split,
                                                  uint64_t run_seed) {
  const bool train = split == "train";
  if (!train && split != "test") {
    return Status::invalid_argument("load_split: split must be \"train\" or \"test\", got \"" +
                                    std::string(split) + "\"");
  }
  if (d.dataset == "fashion-mnist") {
    COHORT_ASSIGN_OR_RETURN(Dataset ds, load_fashion_mnist(d.path, std::string(split),
                                                           train ? d.train_limit : d.test_limit));
    return std::make_shared<const Dataset>(std::move(ds));
  }
  if (d.dataset == "synthetic") {
    SyntheticOptions o = d.synthetic;
    o.seed = Rng::mix_seed(run_seed, "synthetic");
    if (!train) o.num_examples = d.synthetic_test_examples;
    COHORT_ASSIGN_OR_RETURN(Dataset ds, make_synthetic(o, train ? 0 : 1));
    return std::make_shared<const Dataset>(std::move(ds));
  }
  if (d.dataset == "text") {
    COHORT_ASSIGN_OR_RETURN(std::vector<TextSource> sources, read_text_sources(d.resolved_path()));
    COHORT_ASSIGN_OR_RETURN(TextCorpus corpus, build_text_corpus(sources, d.text));
    std::shared_ptr<Dataset> ds = train ? corpus.train : corpus.validation;
    const int64_t limit = train ? d.train_limit : d.test_limit;
    if (limit > 0 && limit < ds->size()) {
      ds->features.resize(static_cast<size_t>(limit * ds->sample_numel()));
      ds->labels.resize(static_cast<size_t>(limit));
      ds->groups.resize(static_cast<size_t>(limit));
    }
    return std::shared_ptr<const Dataset>(std::move(ds));
  }
  return field_error("data.dataset",
                     "unknown value '" + d.dataset + "' (known: fashion-mnist, synthetic, text)");
}

}  // namespace cohort
