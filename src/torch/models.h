// The built-in LibTorch models (logreg, mlp, cnn) behind cohort/torch/torch_trainer.h.
// Private to src/torch. Defined entirely in this header, which only torch_trainer.cc
// includes: LibTorch's nn headers take ~10 s to compile, so the backend keeps them in a
// single translation unit.
//
// Thread safety: a Net is used by one thread at a time (it belongs to one Trainer).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include "cohort/torch/torch_trainer.h"

namespace cohort::libtorch {

// A classifier taking a batch [b, *ModelSpec::input_shape] to logits [b, num_classes].
class Net : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // The training loss of a batch (mean): cross-entropy of forward(x) against the labels y.
  virtual torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y) {
    return at::cross_entropy_loss(forward(x), y);
  }
  // Evaluation: the summed loss, the correct predictions and how many predictions a batch
  // holds (one per example for a classifier).
  struct EvalSums {
    double loss_sum = 0;
    int64_t correct = 0;
    int64_t count = 0;
  };
  virtual EvalSums eval_sums(const torch::Tensor& x, const torch::Tensor& y) {
    const torch::Tensor logits = forward(x);
    return {at::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).item<double>(),
            logits.argmax(1).eq(y).sum().item<int64_t>(), y.size(0)};
  }
};

namespace models_internal {

inline int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

class LogRegNet final : public Net {
 public:
  LogRegNet(int64_t in, int64_t classes)
      : fc_(register_module("fc", torch::nn::Linear(in, classes))) {}
  torch::Tensor forward(const torch::Tensor& x) override { return fc_->forward(x.flatten(1)); }

 private:
  torch::nn::Linear fc_;
};

class MlpNet final : public Net {
 public:
  MlpNet(int64_t in, const std::vector<int64_t>& hidden, int64_t classes) {
    int64_t prev = in;
    for (size_t i = 0; i <= hidden.size(); ++i) {
      const int64_t out = i < hidden.size() ? hidden[i] : classes;
      layers_.push_back(
          register_module("fc" + std::to_string(i + 1), torch::nn::Linear(prev, out)));
      prev = out;
    }
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor h = x.flatten(1);
    for (size_t i = 0; i + 1 < layers_.size(); ++i) h = layers_[i]->forward(h).relu_();
    return layers_.back()->forward(h);
  }

 private:
  std::vector<torch::nn::Linear> layers_;
};

class CnnNet final : public Net {
 public:
  CnnNet(int64_t channels, int64_t height, int64_t width, int64_t classes)
      : conv1_(register_module(
            "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 32, 5).padding(2)))),
        conv2_(register_module("conv2",
                               torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 5).padding(2)))),
        // 5x5 convolutions with padding 2 keep height and width; each 2x2 max-pool halves
        // them (rounding down), as in PyTorch.
        fc1_(register_module("fc1",
                             torch::nn::Linear(64 * (height / 2 / 2) * (width / 2 / 2), 512))),
        fc2_(register_module("fc2", torch::nn::Linear(512, classes))) {}

  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor h = torch::max_pool2d(conv1_->forward(x).relu_(), {2, 2});
    h = torch::max_pool2d(conv2_->forward(h).relu_(), {2, 2});
    h = fc1_->forward(h.flatten(1)).relu_();
    return fc2_->forward(h);
  }

 private:
  torch::nn::Conv2d conv1_;
  torch::nn::Conv2d conv2_;
  torch::nn::Linear fc1_;
  torch::nn::Linear fc2_;
};

// A character-level language model: ids -> embedding -> LSTM layers -> linear read-out over
// the alphabet. An example is a window of seq_len character ids (as floats) and its label the
// next character; the model predicts every next character of the window (the window shifted
// by one, then the label), so loss and accuracy are over seq_len predictions per example.
class CharLstmNet final : public Net {
 public:
  CharLstmNet(int64_t vocab, int64_t width, int64_t layers)
      : embed_(register_module("embed", torch::nn::Embedding(vocab, width))),
        lstm_(register_module(
            "lstm",
            torch::nn::LSTM(torch::nn::LSTMOptions(width, width).num_layers(layers).batch_first(true)))),
        out_(register_module("out", torch::nn::Linear(width, vocab))) {}

  // Logits of every position, [b, seq_len, vocab].
  torch::Tensor all_logits(const torch::Tensor& x) {
    const torch::Tensor h = std::get<0>(lstm_->forward(embed_->forward(x.to(torch::kLong))));
    return out_->forward(h);
  }
  // The next character after the window.
  torch::Tensor forward(const torch::Tensor& x) override { return all_logits(x).select(1, -1); }
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y) override {
    return at::cross_entropy_loss(all_logits(x).flatten(0, 1), targets(x, y).flatten());
  }
  EvalSums eval_sums(const torch::Tensor& x, const torch::Tensor& y) override {
    const torch::Tensor logits = all_logits(x).flatten(0, 1);
    const torch::Tensor t = targets(x, y).flatten();
    return {at::cross_entropy_loss(logits, t, {}, at::Reduction::Sum).item<double>(),
            logits.argmax(1).eq(t).sum().item<int64_t>(), t.size(0)};
  }

 private:
  static torch::Tensor targets(const torch::Tensor& x, const torch::Tensor& y) {
    return torch::cat({x.slice(1, 1).to(torch::kLong), y.unsqueeze(1)}, 1);
  }
  torch::nn::Embedding embed_;
  torch::nn::LSTM lstm_;
  torch::nn::Linear out_;
};

}  // namespace models_internal

// Builds the model described by a spec that passed ModelSpec::validate(). Parameters are
// registered in forward order, so named_parameters() is
//   logreg: fc.weight fc.bias
//   mlp:    fc1.weight fc1.bias ... fc{k+1}.weight fc{k+1}.bias   (k = hidden.size())
//   cnn:    conv1.weight conv1.bias conv2.weight conv2.bias fc1.weight fc1.bias fc2.weight fc2.bias
//   char_lstm: embed.weight lstm.weight_ih_l0 lstm.weight_hh_l0 lstm.bias_ih_l0 lstm.bias_hh_l0
//           ... (per layer) out.weight out.bias
// Initial values come from LibTorch's global generator; callers overwrite them (see
// TorchTrainer::init_params), so they do not matter. Throws c10::Error on failure.
inline std::shared_ptr<Net> make_net(const ModelSpec& spec) {
  using namespace models_internal;
  const std::vector<int64_t>& in = spec.input_shape;
  if (spec.name == "logreg") return std::make_shared<LogRegNet>(numel_of(in), spec.num_classes);
  if (spec.name == "mlp") {
    return std::make_shared<MlpNet>(numel_of(in), spec.hidden, spec.num_classes);
  }
  if (spec.name == "char_lstm") {
    return std::make_shared<CharLstmNet>(spec.num_classes, spec.hidden[0],
                                         static_cast<int64_t>(spec.hidden.size()));
  }
  TORCH_CHECK(spec.name == "cnn", "make_net: unknown model '", spec.name, "'");
  return std::make_shared<CnnNet>(in[0], in[1], in[2], spec.num_classes);
}

}  // namespace cohort::libtorch
