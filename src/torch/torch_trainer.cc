#include "cohort/torch/torch_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <torch/optim/sgd.h>

#include "cohort/core/rng.h"
#include "torch/models.h"
#include "torch/tensor_convert.h"

namespace cohort::libtorch {
namespace {

constexpr int64_t kEvalBatch = 1000;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// LibTorch's default init for Linear and Conv2d is kaiming_uniform_(a = sqrt(5)) for the
// weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias; both work out to
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = weight.numel() / weight.size(0).
// Returns 0 for arrays that are not such a weight or bias.
double init_bound(const ArrayLayout& layout, const ArraySpec& spec) {
  // LSTM weights and biases (weight_ih_lK [4H, in], weight_hh_lK [4H, H], bias_*_lK [4H]):
  // U(-1/sqrt(H), 1/sqrt(H)), as LibTorch initialises them.
  for (std::string_view part : {".weight_ih_l", ".weight_hh_l", ".bias_ih_l", ".bias_hh_l"}) {
    if (spec.name.find(part) != std::string::npos && !spec.shape.empty() && spec.shape[0] >= 4) {
      return 1.0 / std::sqrt(static_cast<double>(spec.shape[0] / 4));
    }
  }
  const ArraySpec* weight = nullptr;
  if (ends_with(spec.name, ".weight")) {
    weight = &spec;
  } else if (ends_with(spec.name, ".bias")) {
    const int64_t w = layout.find(spec.name.substr(0, spec.name.size() - 5) + ".weight");
    if (w >= 0) weight = &layout.specs()[static_cast<size_t>(w)];
  }
  if (weight == nullptr || weight->shape.size() < 2 || weight->shape[0] == 0 ||
      weight->numel == 0) {
    return 0.0;
  }
  const double fan_in = static_cast<double>(weight->numel / weight->shape[0]);
  return 1.0 / std::sqrt(fan_in);
}

// A preallocated [rows, *input_shape] float batch and its [rows] int64 labels, filled by
// gathering dataset rows; reused across steps so training allocates no batch storage.
class BatchBuffer {
 public:
  void reserve(int64_t rows, const std::vector<int64_t>& input_shape) {
    if (rows <= rows_) return;
    std::vector<int64_t> shape{rows};
    shape.insert(shape.end(), input_shape.begin(), input_shape.end());
    x_ = torch::empty(shape, torch::kFloat);
    y_ = torch::empty({rows}, torch::kLong);
    rows_ = rows;
  }
  // Copies the examples `rows` (dataset indices) into the first rows.size() rows.
  void gather(const Dataset& data, std::span<const int64_t> rows) {
    const int64_t d = data.sample_numel();
    float* x = x_.data_ptr<float>();
    int64_t* y = y_.data_ptr<int64_t>();
    for (size_t r = 0; r < rows.size(); ++r) {
      std::memcpy(x + static_cast<int64_t>(r) * d, data.example(rows[r]),
                  static_cast<size_t>(d) * sizeof(float));
      y[r] = data.labels[static_cast<size_t>(rows[r])];
    }
  }
  // Copies only the labels of `rows`: for a run of consecutive indices the examples are read
  // in place (see contiguous()).
  void gather_labels(const Dataset& data, std::span<const int64_t> rows) {
    int64_t* y = y_.data_ptr<int64_t>();
    for (size_t r = 0; r < rows.size(); ++r) y[r] = data.labels[static_cast<size_t>(rows[r])];
  }
  torch::Tensor x(int64_t b) const { return b == rows_ ? x_ : x_.narrow(0, 0, b); }
  torch::Tensor y(int64_t b) const { return b == rows_ ? y_ : y_.narrow(0, 0, b); }

 private:
  torch::Tensor x_, y_;
  int64_t rows_ = 0;
};

// True when `rows` are consecutive dataset indices, so their examples are one contiguous block.
bool contiguous(std::span<const int64_t> rows) {
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r] != rows[r - 1] + 1) return false;
  }
  return !rows.empty();
}

// A read-only view of dataset rows [first, first + b) as a [b, *input_shape] tensor, without a
// copy. The model's forward pass never writes to its input.
torch::Tensor rows_view(const Dataset& data, int64_t first, int64_t b,
                        const std::vector<int64_t>& input_shape) {
  std::vector<int64_t> shape{b};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  return torch::from_blob(const_cast<float*>(data.example(first)), shape, torch::kFloat);
}

// The layout of an AdamW state for a model whose first `num_params` arrays are its parameters:
// "adamw.step" [1], then "adamw.m.<name>" and "adamw.v.<name>" per parameter.
std::shared_ptr<const ArrayLayout> adamw_state_layout(const ArrayLayout& model, size_t num_params) {
  std::vector<ArraySpec> specs = {{"adamw.step", {1}, false}};
  for (size_t i = 0; i < num_params; ++i) {
    const ArraySpec& s = model.specs()[i];
    specs.push_back({"adamw.m." + s.name, s.shape, true});
    specs.push_back({"adamw.v." + s.name, s.shape, true});
  }
  return *ArrayLayout::create(std::move(specs));
}

// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019) written out
// with tensor ops as LibTorch's torch::optim::AdamW computes it (amsgrad off), so that its
// moments are ours to keep between a client's tasks (Trainer::set_optimizer_state):
//   w <- w (1 - lr wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
class AdamWSteps {
 public:
  AdamWSteps(std::span<const torch::Tensor> params, const TrainConfig& c, double lr)
      : params_(params.begin(), params.end()), c_(c), lr_(lr) {
    for (const torch::Tensor& p : params_) {
      m_.push_back(torch::zeros_like(p));
      v_.push_back(torch::zeros_like(p));
    }
  }
  // From a kept state (`layout` is adamw_state_layout's); empty: step 0 and zero moments.
  void load(const ArrayRecord& state) {
    if (state.empty()) return;
    step_ = static_cast<int64_t>(state.array(0)[0]);
    for (size_t i = 0; i < params_.size(); ++i) {
      for (auto [t, a] : {std::pair{&m_[i], 1 + 2 * i}, std::pair{&v_[i], 2 + 2 * i}}) {
        std::span<const float> src = state.array(a);
        std::memcpy(t->data_ptr<float>(), src.data(), src.size() * sizeof(float));
      }
    }
  }
  void save(ArrayRecord& state) const {
    state.array(0)[0] = static_cast<float>(step_);
    for (size_t i = 0; i < params_.size(); ++i) {
      for (auto [t, a] : {std::pair{&m_[i], 1 + 2 * i}, std::pair{&v_[i], 2 + 2 * i}}) {
        std::span<float> dst = state.array(a);
        std::memcpy(dst.data(), t->data_ptr<float>(), dst.size() * sizeof(float));
      }
    }
  }
  void zero_grad() {
    for (torch::Tensor& p : params_) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
  }
  void step() {
    torch::NoGradGuard no_grad;
    ++step_;
    const double bc1 = 1.0 - std::pow(c_.adam_beta1, static_cast<double>(step_));
    const double bc2 = 1.0 - std::pow(c_.adam_beta2, static_cast<double>(step_));
    for (size_t i = 0; i < params_.size(); ++i) {
      torch::Tensor& p = params_[i];
      if (!p.grad().defined()) continue;
      const torch::Tensor& g = p.grad();
      p.mul_(1.0 - lr_ * c_.weight_decay);
      m_[i].mul_(c_.adam_beta1).add_(g, 1.0 - c_.adam_beta1);
      v_[i].mul_(c_.adam_beta2).addcmul_(g, g, 1.0 - c_.adam_beta2);
      const torch::Tensor denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(c_.adam_eps);
      p.addcdiv_(m_[i], denom, -lr_ / bc1);
    }
  }

 private:
  std::vector<torch::Tensor> params_;
  TrainConfig c_;
  double lr_;
  int64_t step_ = 0;
  std::vector<torch::Tensor> m_, v_;
};

class TorchTrainer final : public Trainer {
 public:
  TorchTrainer(ModelSpec spec, std::shared_ptr<Net> net, std::vector<torch::Tensor> tensors,
               size_t num_params, std::shared_ptr<const ArrayLayout> layout)
      : spec_(std::move(spec)),
        net_(std::move(net)),
        tensors_(std::move(tensors)),
        params_(tensors_.begin(), tensors_.begin() + static_cast<std::ptrdiff_t>(num_params)),
        layout_(std::move(layout)) {}

  Result<ArrayRecord> init_params(uint64_t seed) override {
    try {
      ArrayRecord rec(layout_);
      // Buffers (and any array init_bound does not know) keep the module's own values.
      copy_tensors_to_record(tensors_, rec);
      // Drawn with cohort::Rng, not LibTorch's global generator: deterministic for a seed,
      // the same on every machine, and safe with trainers initialising on many threads.
      Rng rng = Rng::derive(seed, "torch.init_params");
      const auto& specs = layout_->specs();
      for (size_t i = 0; i < specs.size(); ++i) {
        if (!specs[i].trainable) continue;
        const double bound = init_bound(*layout_, specs[i]);
        if (bound <= 0) continue;
        for (float& v : rec.array(i)) v = static_cast<float>(rng.uniform(-bound, bound));
      }
      return rec;
    } catch (const c10::Error& e) {
      return Status::internal(std::string("libtorch init_params: ") + e.what_without_backtrace());
    } catch (const std::exception& e) {
      return Status::internal(std::string("libtorch init_params: ") + e.what());
    }
  }

  Result<TrainResult> train(const ArrayRecord& start, const Shard& shard, int64_t steps,
                            const TrainConfig& config, const ConfigRecord& task_config,
                            uint64_t seed, const ArrayRecord* grad_correction) override {
    COHORT_RETURN_IF_ERROR(check_layout(*layout_, start, "start params"));
    if (grad_correction != nullptr) {
      COHORT_RETURN_IF_ERROR(check_layout(*layout_, *grad_correction, "grad_correction"));
    }
    COHORT_RETURN_IF_ERROR(check_shard(shard));
    if (steps < 1) {
      return Status::invalid_argument("steps: must be >= 1, got " + std::to_string(steps));
    }
    COHORT_ASSIGN_OR_RETURN(TaskTraining task, resolve_task_training(config, task_config));
    const double lr = task.config.lr;
    const double mu = task.prox_mu;

    const bool adamw = task.config.optimizer == "adamw";
    ArrayRecord* kept = optimizer_state();
    if (adamw && kept != nullptr && !kept->empty()) {
      if (!kept->layout()->same_as(*adamw_layout())) {
        return Status::invalid_argument("optimizer state: layout " + kept->layout()->describe() +
                                        " is not this model's AdamW state (" +
                                        adamw_layout()->describe() + ")");
      }
    }

    try {
      copy_record_to_tensors(start, tensors_);
      net_->train();
      // The task's optimizer (a task may override the run's, e.g. DiLoCo's inner AdamW).
      std::optional<torch::optim::SGD> sgd;
      std::optional<AdamWSteps> adam;
      if (adamw) {
        adam.emplace(params_, task.config, lr);
        if (kept != nullptr) adam->load(*kept);
      } else {
        sgd.emplace(params_, torch::optim::SGDOptions(lr)
                                 .momentum(task.config.momentum)
                                 .weight_decay(task.config.weight_decay));
      }
      const Dataset& data = *shard.data;
      const int64_t n = shard.size();
      const int64_t batch = std::min(config.batch_size, n);
      train_batch_.reserve(batch, spec_.input_shape);

      Rng rng(seed);
      std::vector<int64_t> order;
      order.reserve(static_cast<size_t>(n));
      int64_t pos = n;  // start of the next batch within `order`; n forces a new pass
      double loss_sum = 0.0;
      for (int64_t step = 0; step < steps; ++step) {
        if (cancel_requested()) {
          return Status::cancelled("training cancelled at step " + std::to_string(step) + " of " +
                                   std::to_string(steps));
        }
        if (pos >= n) {
          // A new pass: a fresh permutation of the shard. Its last batch may be partial.
          order.assign(shard.indices.begin(), shard.indices.end());
          rng.shuffle(order);
          pos = 0;
        }
        const int64_t b = std::min(batch, n - pos);
        train_batch_.gather(data, std::span<const int64_t>(order).subspan(static_cast<size_t>(pos),
                                                                          static_cast<size_t>(b)));
        pos += b;

        if (adam) {
          adam->zero_grad();
        } else {
          sgd->zero_grad();
        }
        torch::Tensor loss = net_->loss(train_batch_.x(b), train_batch_.y(b));
        loss.backward();
        // FedProx: d/dw (mu/2)||w - w_start||^2 = mu (w - w_start), added to the data
        // gradient before the step (weight decay is added by the optimizer itself).
        if (mu > 0) add_proximal_gradient(params_, start, static_cast<float>(mu));
        // A fixed per-task correction (SCAFFOLD: c - c_i), also part of the gradient, so
        // momentum carries it like the data gradient.
        if (grad_correction != nullptr) add_to_gradients(params_, *grad_correction);
        if (adam) {
          adam->step();
        } else {
          sgd->step();
        }
        loss_sum += loss.item<double>();
      }

      if (adam && kept != nullptr) {
        if (kept->empty()) *kept = ArrayRecord(adamw_layout());
        adam->save(*kept);
      }
      TrainResult result;
      result.params = ArrayRecord(start.layout());
      copy_tensors_to_record(tensors_, result.params);
      result.num_examples = n;
      result.steps = steps;
      // The data (cross-entropy) loss; the proximal term is not included.
      result.metrics["train_loss"] = loss_sum / static_cast<double>(steps);
      return result;
    } catch (const c10::Error& e) {
      return Status::internal(std::string("libtorch train: ") + e.what_without_backtrace());
    } catch (const std::exception& e) {
      return Status::internal(std::string("libtorch train: ") + e.what());
    }
  }

  Result<EvalResult> evaluate(const ArrayRecord& params, const Shard& shard) override {
    COHORT_RETURN_IF_ERROR(check_layout(*layout_, params, "params"));
    COHORT_RETURN_IF_ERROR(check_shard(shard));
    try {
      // No autograd records at all (cheaper than NoGradGuard); the parameters are copied in
      // before the guard so they stay ordinary tensors for training.
      copy_record_to_tensors(params, tensors_);
      c10::InferenceMode inference;
      net_->eval();
      const Dataset& data = *shard.data;
      const int64_t n = shard.size();
      eval_batch_.reserve(std::min(kEvalBatch, n), spec_.input_shape);
      double loss_sum = 0.0;
      int64_t correct = 0;
      int64_t predictions = 0;
      for (int64_t pos = 0; pos < n; pos += kEvalBatch) {
        const int64_t b = std::min(kEvalBatch, n - pos);
        const auto rows = std::span<const int64_t>(shard.indices)
                              .subspan(static_cast<size_t>(pos), static_cast<size_t>(b));
        // The test set and its chunks are runs of consecutive examples: read them in place.
        const bool in_place = contiguous(rows);
        if (in_place) {
          eval_batch_.gather_labels(data, rows);
        } else {
          eval_batch_.gather(data, rows);
        }
        // One prediction per example for a classifier, one per character for char_lstm.
        const Net::EvalSums sums = net_->eval_sums(
            in_place ? rows_view(data, rows.front(), b, spec_.input_shape) : eval_batch_.x(b),
            eval_batch_.y(b));
        loss_sum += sums.loss_sum;
        correct += sums.correct;
        predictions += sums.count;
      }
      EvalResult r;
      r.loss = loss_sum / static_cast<double>(predictions);
      r.accuracy = static_cast<double>(correct) / static_cast<double>(predictions);
      r.num_examples = n;
      return r;
    } catch (const c10::Error& e) {
      return Status::internal(std::string("libtorch evaluate: ") + e.what_without_backtrace());
    } catch (const std::exception& e) {
      return Status::internal(std::string("libtorch evaluate: ") + e.what());
    }
  }

 private:
  std::shared_ptr<const ArrayLayout> adamw_layout() {
    if (!adamw_layout_) adamw_layout_ = adamw_state_layout(*layout_, params_.size());
    return adamw_layout_;
  }
  std::shared_ptr<const ArrayLayout> adamw_layout_;

  // Everything that would otherwise surface as a c10::Error deep inside LibTorch (or as an
  // out-of-bounds read) is reported here as InvalidArgument naming the culprit.
  Status check_shard(const Shard& shard) const {
    if (shard.data == nullptr) return Status::invalid_argument("shard: no dataset");
    const Dataset& d = *shard.data;
    if (shard.indices.empty()) {
      return Status::invalid_argument("shard: empty (no examples) on dataset '" + d.name + "'");
    }
    int64_t model_numel = 1;
    for (int64_t v : spec_.input_shape) model_numel *= v;
    // logreg and mlp flatten their input, so any example shape of the right size fits; the
    // cnn needs the exact [channels, height, width].
    const bool fits =
        spec_.name == "cnn" ? d.sample_shape == spec_.input_shape : d.sample_numel() == model_numel;
    if (!fits) {
      return Status::invalid_argument("shard: dataset '" + d.name + "' has examples of shape " +
                                      shape_string(d.sample_shape) + ", model " + spec_.name +
                                      " expects input_shape " + shape_string(spec_.input_shape));
    }
    if (static_cast<int64_t>(d.features.size()) != d.size() * d.sample_numel()) {
      return Status::invalid_argument("shard: dataset '" + d.name + "' has " +
                                      std::to_string(d.features.size()) + " feature values for " +
                                      std::to_string(d.size()) + " examples");
    }
    for (int64_t i : shard.indices) {
      if (i < 0 || i >= d.size()) {
        return Status::invalid_argument("shard: index " + std::to_string(i) + " outside dataset '" +
                                        d.name + "' of " + std::to_string(d.size()) + " examples");
      }
      const int32_t label = d.labels[static_cast<size_t>(i)];
      if (label < 0 || label >= spec_.num_classes) {
        return Status::invalid_argument(
            "shard: example " + std::to_string(i) + " of dataset '" + d.name + "' has label " +
            std::to_string(label) +
            ", outside model.num_classes = " + std::to_string(spec_.num_classes));
      }
    }
    return Status();
  }

  ModelSpec spec_;
  std::shared_ptr<Net> net_;
  std::vector<torch::Tensor> tensors_;  // layout order: parameters, then buffers
  std::vector<torch::Tensor> params_;   // the parameters (a prefix of tensors_)
  std::shared_ptr<const ArrayLayout> layout_;
  BatchBuffer train_batch_;
  BatchBuffer eval_batch_;
};

// Shared by every copy of one factory: trainers made by it share one ArrayLayout, so their
// records compare layouts by pointer.
struct FactoryState {
  ModelSpec spec;
  std::mutex mu;
  std::shared_ptr<const ArrayLayout> layout;
};

Result<std::unique_ptr<Trainer>> make_trainer(FactoryState& state) {
  try {
    std::shared_ptr<Net> net = make_net(state.spec);
    std::vector<NamedTensor> named;
    for (const auto& p : net->named_parameters(/*recurse=*/true)) {
      named.push_back({p.key(), p.value(), true});
    }
    const size_t num_params = named.size();
    for (const auto& b : net->named_buffers(/*recurse=*/true)) {
      named.push_back({b.key(), b.value(), false});
    }
    COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const ArrayLayout> layout, layout_of(named));
    {
      std::lock_guard<std::mutex> lock(state.mu);
      if (state.layout != nullptr && state.layout->same_as(*layout)) {
        layout = state.layout;
      } else {
        state.layout = layout;
      }
    }
    std::vector<torch::Tensor> tensors;
    tensors.reserve(named.size());
    for (NamedTensor& t : named) tensors.push_back(std::move(t.tensor));
    return std::unique_ptr<Trainer>(std::make_unique<TorchTrainer>(
        state.spec, std::move(net), std::move(tensors), num_params, std::move(layout)));
  } catch (const c10::Error& e) {
    return Status::internal("libtorch: building model '" + state.spec.name +
                            "': " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::internal("libtorch: building model '" + state.spec.name + "': " + e.what());
  }
}

}  // namespace

Result<TrainerFactory> make_trainer_factory(const ModelSpec& spec) {
  COHORT_RETURN_IF_ERROR(spec.validate());
  auto state = std::make_shared<FactoryState>();
  state->spec = spec;
  return TrainerFactory([state]() {
    return make_trainer(*state);
  });
}

}  // namespace cohort::libtorch
