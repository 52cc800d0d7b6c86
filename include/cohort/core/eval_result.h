// EvalResult: what evaluating a model on a test set found (a trainer's evaluate(), the
// runtime's "eval" events, Strategy::on_evaluation). Plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cohort {

// One model's figures when a run trains several at once (multi_trainer.h, `models:`).
struct PartEval {
  std::string name;
  double loss = 0.0;
  double accuracy = 0.0;
  bool reached_target = false;  // set by the runtime: this model has reached its target
};

struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;
  int64_t num_examples = 0;
  // Several models at once: each model's figures (loss and accuracy above are their means).
  std::vector<PartEval> parts;
};

}  // namespace cohort
