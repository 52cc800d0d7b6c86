// Dataset and Shard: labelled examples in memory, and one client's share of them.
//
// A Dataset stores n examples as one contiguous float32 block (n x sample_numel, already
// scaled, e.g. pixels in [0,1]) plus int32 labels in [0, num_classes). A Shard is a
// client's view: the shared dataset plus the indices the client owns. Shards never copy
// features, so thousands of simulated clients cost one dataset's memory.
//
// Thread safety: immutable after construction; share freely across threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/status.h"

namespace cohort {

struct Dataset {
  std::string name;
  // Shape of one example, e.g. {1, 28, 28} for Fashion-MNIST images, {d} for tables.
  std::vector<int64_t> sample_shape;
  int64_t num_classes = 0;
  std::vector<float> features;  // size() * sample_numel() values, example-major
  std::vector<int32_t> labels;  // size() values
  // Where each example comes from, for natural partitions (a text corpus's source, a writer):
  // empty, or size() values in [0, group_names.size()).
  std::vector<int32_t> groups;
  std::vector<std::string> group_names;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t sample_numel() const {
    int64_t n = 1;
    for (int64_t d : sample_shape) n *= d;
    return n;
  }
  const float* example(int64_t i) const { return features.data() + i * sample_numel(); }
  // InvalidArgument if sizes disagree or a label is out of range.
  Status validate() const;
};

struct Shard {
  std::shared_ptr<const Dataset> data;
  std::vector<int64_t> indices;  // into data; may be empty

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
  // A shard over every example of `data`.
  static Shard all(std::shared_ptr<const Dataset> data);
  // One all-zero example of one feature: for a deployment client that trains on no data of
  // its own (an aggregator's upstream side, benchmark clients with a synthetic trainer).
  static Shard blank();
};

}  // namespace cohort
