// Helpers shared by the LibTorch backend's tests: trainers, specs and small datasets.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/core/rng.h"
#include "cohort/torch/torch_trainer.h"

namespace cohort::libtorch::torch_testing {

using ::testing::HasSubstr;

inline std::unique_ptr<Trainer> make(const ModelSpec& spec) {
  auto factory = make_trainer_factory(spec);
  EXPECT_TRUE(factory.ok()) << factory.status().to_string();
  auto trainer = (*factory)();
  EXPECT_TRUE(trainer.ok()) << trainer.status().to_string();
  return std::move(*trainer);
}

inline ModelSpec spec_of(std::string name, std::vector<int64_t> input_shape, int64_t classes,
                         std::vector<int64_t> hidden = {200, 200}) {
  ModelSpec s;
  s.name = std::move(name);
  s.input_shape = std::move(input_shape);
  s.num_classes = classes;
  s.hidden = std::move(hidden);
  return s;
}

// `n` examples of `classes` Gaussian blobs in `dim` dimensions: class k is centred at
// `sep` * e_k, with unit noise, so the classes are (almost surely) linearly separable.
inline std::shared_ptr<Dataset> blobs(int64_t n, int64_t dim, int64_t classes, double sep,
                                      uint64_t seed) {
  auto d = std::make_shared<Dataset>();
  d->name = "blobs";
  d->sample_shape = {dim};
  d->num_classes = classes;
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t y = static_cast<int32_t>(i % classes);
    for (int64_t j = 0; j < dim; ++j) {
      d->features.push_back(static_cast<float>(rng.normal() + (j == y ? sep : 0.0)));
    }
    d->labels.push_back(y);
  }
  return d;
}

// Tiny 1 x h x w images: class 0 is bright in the top half, class 1 in the bottom half.
inline std::shared_ptr<Dataset> half_images(int64_t n, int64_t h, int64_t w, uint64_t seed) {
  auto d = std::make_shared<Dataset>();
  d->name = "halves";
  d->sample_shape = {1, h, w};
  d->num_classes = 2;
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t y = static_cast<int32_t>(i % 2);
    for (int64_t r = 0; r < h; ++r) {
      const bool bright = (r < h / 2) == (y == 0);
      for (int64_t c = 0; c < w; ++c) {
        d->features.push_back(static_cast<float>((bright ? 0.8 : 0.1) + 0.1 * rng.uniform()));
      }
    }
    d->labels.push_back(y);
  }
  return d;
}

inline std::vector<std::pair<std::string, std::vector<int64_t>>> names_and_shapes(
    const ArrayRecord& r) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& s : r.layout()->specs()) out.emplace_back(s.name, s.shape);
  return out;
}

}  // namespace cohort::libtorch::torch_testing
