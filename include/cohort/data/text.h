// Character-level text corpora for language modelling: each source (a file, e.g. one of the
// fortune files Debian ships in /usr/share/games/fortunes, one per topic and language) becomes
// a group of examples, so that a "natural" partition gives each client the text of its own
// sources (a non-IID split: topics and languages differ). An example is a window of seq_len
// characters (byte values mapped to ids of the corpus's alphabet, stored as floats in the
// Dataset's features) and its label is the character that follows, so a model may train on
// every next-character prediction inside the window (the char_lstm does).
//
// The last val_fraction of every source's text (by characters) is held out: its windows form
// the validation split, so the validation loss measures each source on text its client never
// trained on. Fortune files hold sayings separated by lines of "%"; those lines are dropped and
// the sayings kept, separated by a blank line.
//
// Thread safety: plain values and functions.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/data/dataset.h"

namespace cohort {

struct TextSource {
  std::string name;  // e.g. "de/computer"
  std::string text;
};

struct TextOptions {
  int64_t seq_len = 64;       // characters of context per example, >= 1
  int64_t stride = 0;         // characters between consecutive windows; 0 = seq_len
  double val_fraction = 0.1;  // share of every source held out for validation, in [0, 1)
  int64_t min_chars = 2000;   // sources shorter than this are skipped (too little to split)
  // InvalidArgument naming data.text.<key>.
  Status validate() const;
};

struct TextCorpus {
  // Windows of every source's training part, then of its held-out part; groups = the source.
  std::shared_ptr<Dataset> train;
  std::shared_ptr<Dataset> validation;
  std::vector<std::string> sources;  // group id -> source name
  std::string alphabet;              // id -> byte value (sorted)
};

// Reads every regular file under `path` (a file, or a directory searched recursively; files
// ending in ".dat" or ".u8" -- the fortune indices and their UTF-8 twins -- are skipped) as one
// source named by its path relative to `path`, in sorted order. Lines consisting of "%" are
// dropped. NotFound naming the path when it does not exist or holds no file.
Result<std::vector<TextSource>> read_text_sources(const std::string& path);

// Builds the corpus (see the file comment). Sources shorter than min_chars are skipped;
// InvalidArgument when none is left or a source yields no validation window.
Result<TextCorpus> build_text_corpus(std::span<const TextSource> sources,
                                     const TextOptions& options);

}  // namespace cohort
