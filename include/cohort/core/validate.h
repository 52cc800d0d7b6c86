// Field checks for the validate() of option structs.
//
// Every option struct (TrainConfig, PartitionOptions, RunOptions, ServerOptions, ...) owns a
// validate() that returns InvalidArgument "<key.path>: <what>", e.g.
//   "training.lr: must be > 0, got 0"
// naming the key as a user writes it in the YAML. The config loader adds the file name and
// the --set override in front and behind (split_field_error), so a rule lives in exactly one
// place and every caller (YAML, CLI, C++ API, Python) gets the same message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "cohort/core/status.h"

namespace cohort {

// An allowed interval; describe() gives the "must be ..." text ("> 0", "in [0, 1)").
struct Range {
  enum class Bound { kNone, kClosed, kOpen };
  Bound lo = Bound::kNone;
  double lo_v = 0.0;
  Bound hi = Bound::kNone;
  double hi_v = 0.0;

  static Range any() { return {}; }
  static Range at_least(double v) { return {Bound::kClosed, v, Bound::kNone, 0.0}; }
  static Range above(double v) { return {Bound::kOpen, v, Bound::kNone, 0.0}; }
  static Range closed(double a, double b) { return {Bound::kClosed, a, Bound::kClosed, b}; }
  static Range half_open(double a, double b) { return {Bound::kClosed, a, Bound::kOpen, b}; }

  // NaN and infinities are never contained: every option is a finite number.
  bool contains(double x) const;
  std::string describe() const;
};

// InvalidArgument "<path>: <what>".
Status field_error(std::string_view path, std::string_view what);
// OK when `range` contains v, else "<path>: must be <range>, got <v>".
Status check_field(std::string_view path, double v, const Range& range);
Status check_field(std::string_view path, int64_t v, const Range& range);

// Splits a field error's message into its key path and the rest ("training.lr", "must be > 0,
// got 0"). The path is the text before the first ": " when it looks like a key path (letters,
// digits, '_', '.', '[', ']', '-'); otherwise the path is empty and `what` the whole message.
std::pair<std::string, std::string> split_field_error(const std::string& message);

}  // namespace cohort
