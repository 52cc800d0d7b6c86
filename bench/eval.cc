// `cohort bench eval`: evaluating the global model, the runtime core's job after commits.
//
//   cohort bench eval [--model mlp] [--threads T] [--repeats R] [--json]
//     Evaluates a freshly initialised model on the Fashion-MNIST test split (10,000 images)
//     and reports the median seconds of R repeats of:
//       pool     how both runtimes evaluate (runtime/evaluator.h): the test set in chunks of
//                1,000 spread over a pool of T trainers with one intra-op thread each;
//       single   one trainer with T intra-op threads over the whole split (how `cohort serve`
//                evaluated before it used the Evaluator), for reference.
//     bench/run.sh (bench_eval) runs bench/eval_pytorch_baseline.py, a plain PyTorch
//     evaluation loop over the same split, in the same run and prints the ratios.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench.h"
#include "bench_util.h"
#include "cohort/core/metrics.h"
#include "cohort/core/parallel.h"
#include "cohort/data/data_config.h"
#include "cohort/runtime/evaluator.h"
#include "cohort/torch/torch_trainer.h"

namespace cohort::bench {

namespace {

struct EvalArgs {
  std::string model = "mlp";
  int64_t threads = 0;
  int64_t repeats = 5;
  std::string data = "/usr/share/datasets/fashion-mnist";
  bool json = false;
};

Status run_eval(const EvalArgs& a) {
  COHORT_RETURN_IF_ERROR(check_positive("--repeats", a.repeats, 1));
  const int64_t threads =
      a.threads > 0 ? a.threads : std::max<int64_t>(1, std::thread::hardware_concurrency());
  DataConfig dc;
  dc.path = a.data;
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const Dataset> test, load_split(dc, "test", 1));
  libtorch::ModelSpec spec;
  spec.name = a.model;
  spec.input_shape = test->sample_shape;
  spec.num_classes = test->num_classes;
  COHORT_ASSIGN_OR_RETURN(TrainerFactory factory, libtorch::make_trainer_factory(spec));

  // The runtimes' way: chunks of 1,000 over a pool of single-threaded trainers.
  libtorch::set_torch_threads(1);
  std::vector<std::unique_ptr<Trainer>> trainers;
  for (int64_t i = 0; i < threads; ++i) {
    COHORT_ASSIGN_OR_RETURN(auto t, factory());
    trainers.push_back(std::move(t));
  }
  COHORT_ASSIGN_OR_RETURN(ArrayRecord params, trainers[0]->init_params(1));
  ThreadPool pool(static_cast<size_t>(threads));
  std::vector<Trainer*> workers;
  for (auto& t : trainers) workers.push_back(t.get());
  Evaluator evaluator(&pool, std::move(workers), Shard::all(test));
  std::vector<double> pool_s;
  double accuracy = 0;
  for (int64_t r = 0; r <= a.repeats; ++r) {  // the first run warms up
    const auto t0 = Clock::now();
    COHORT_ASSIGN_OR_RETURN(Evaluation e, evaluator.evaluate(params));
    accuracy = e.central.accuracy;
    if (r > 0) pool_s.push_back(seconds_since(t0));
  }

  // One trainer, all threads.
  libtorch::set_torch_threads(static_cast<int>(threads));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> single, factory());
  const Shard all = Shard::all(test);
  std::vector<double> single_s;
  for (int64_t r = 0; r <= a.repeats; ++r) {
    const auto t0 = Clock::now();
    COHORT_ASSIGN_OR_RETURN(EvalResult e, single->evaluate(params, all));
    if (r > 0) single_s.push_back(seconds_since(t0));
    accuracy = e.accuracy;
  }
  const Json out = {{"model", a.model},
                    {"examples", test->size()},
                    {"threads", threads},
                    {"repeats", a.repeats},
                    {"pool_seconds", median(pool_s)},
                    {"single_seconds", median(single_s)},
                    {"accuracy", accuracy},
                    {"blas", libtorch::blas_library()}};
  if (a.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("evaluate %s on %lld test images, %lld threads (median of %lld):\n",
                a.model.c_str(), static_cast<long long>(test->size()),
                static_cast<long long>(threads), static_cast<long long>(a.repeats));
    std::printf("  Evaluator: pool of single-threaded trainers: %.4f s\n", median(pool_s));
    std::printf("  one trainer, %lld threads:                    %.4f s\n",
                static_cast<long long>(threads), median(single_s));
  }
  return Status();
}

}  // namespace

void add_eval_benchmark(CLI::App* bench, const Guard& guard) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* e = bench->add_subcommand(
      "eval", "Evaluation of the global model on the Fashion-MNIST test split");
  e->add_option("--model", args->model, "logreg | mlp | cnn")->capture_default_str();
  e->add_option("--threads", args->threads, "Threads (0 = all cores)")->capture_default_str();
  e->add_option("--repeats", args->repeats, "Timed repeats; the median is reported")
      ->capture_default_str();
  e->add_option("--data", args->data, "Fashion-MNIST directory")->capture_default_str();
  e->add_flag("--json", args->json, "Print one JSON object");
  e->callback([args, guard] {
    guard("bench eval", [&] {
      return run_eval(*args);
    });
  });
}

}  // namespace cohort::bench
