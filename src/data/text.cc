#include "cohort/data/text.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cohort/core/format.h"
#include "cohort/core/validate.h"

namespace cohort {

namespace fs = std::filesystem;

Status TextOptions::validate() const {
  COHORT_RETURN_IF_ERROR(check_field("data.text.seq_len", seq_len, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("data.text.stride", stride, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("data.text.min_chars", min_chars, Range::at_least(0)));
  if (!(val_fraction >= 0 && val_fraction < 1)) {
    return field_error("data.text.val_fraction",
                       "must be in [0, 1), got " + format_number(val_fraction));
  }
  return Status();
}

namespace {

// The text without fortune separator lines ("%" alone).
std::string without_separators(const std::string& raw) {
  std::string out;
  out.reserve(raw.size());
  std::istringstream in(raw);
  std::string line;
  while (std::getline(in, line)) {
    if (line == "%") {
      if (!out.empty() && out.back() != '\n') out += '\n';
      if (!out.empty()) out += '\n';
      continue;
    }
    out += line;
    out += '\n';
  }
  return out;
}

bool skipped_file(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".dat" || ext == ".u8";
}

}  // namespace

Result<std::vector<TextSource>> read_text_sources(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::not_found(path + ": no such file or directory");
  std::vector<fs::path> files;
  if (fs::is_directory(path, ec)) {
    for (auto it = fs::recursive_directory_iterator(path, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec) && !skipped_file(it->path())) files.push_back(it->path());
    }
    if (ec) return Status::internal(path + ": cannot list: " + ec.message());
  } else {
    files.push_back(path);
  }
  std::sort(files.begin(), files.end());
  std::vector<TextSource> out;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return Status::internal(f.string() + ": cannot open");
    std::ostringstream s;
    s << in.rdbuf();
    TextSource src;
    src.name = fs::is_directory(path, ec) ? fs::relative(f, path, ec).string()
                                          : f.filename().string();
    src.text = without_separators(s.str());
    out.push_back(std::move(src));
  }
  if (out.empty()) return Status::not_found(path + ": holds no text file");
  return out;
}

Result<TextCorpus> build_text_corpus(std::span<const TextSource> sources,
                                     const TextOptions& options) {
  COHORT_RETURN_IF_ERROR(options.validate());
  std::vector<const TextSource*> kept;
  for (const TextSource& s : sources) {
    if (static_cast<int64_t>(s.text.size()) >= std::max<int64_t>(options.min_chars,
                                                                 options.seq_len + 1)) {
      kept.push_back(&s);
    }
  }
  if (kept.empty()) {
    return Status::invalid_argument("text corpus: no source has at least " +
                                    std::to_string(options.min_chars) +
                                    " characters (data.text.min_chars)");
  }
  // The alphabet: every byte value that occurs, in increasing order.
  std::array<bool, 256> seen{};
  for (const TextSource* s : kept) {
    for (unsigned char c : s->text) seen[c] = true;
  }
  TextCorpus corpus;
  std::array<int32_t, 256> id{};
  for (int c = 0; c < 256; ++c) {
    if (!seen[static_cast<size_t>(c)]) continue;
    id[static_cast<size_t>(c)] = static_cast<int32_t>(corpus.alphabet.size());
    corpus.alphabet += static_cast<char>(c);
  }
  const int64_t t = options.seq_len;
  const int64_t stride = options.stride > 0 ? options.stride : t;
  auto make = [&](const std::string& name) {
    auto d = std::make_shared<Dataset>();
    d->name = name;
    d->sample_shape = {t};
    d->num_classes = static_cast<int64_t>(corpus.alphabet.size());
    return d;
  };
  corpus.train = make("text");
  corpus.validation = make("text validation");
  // Windows [p, p + t) with label text[p + t], for p in [begin, end - t) by stride.
  auto add_windows = [&](Dataset& d, const std::string& text, int64_t begin, int64_t end,
                         int32_t group) {
    for (int64_t p = begin; p + t < end; p += stride) {
      for (int64_t i = 0; i < t; ++i) {
        d.features.push_back(
            static_cast<float>(id[static_cast<unsigned char>(text[static_cast<size_t>(p + i)])]));
      }
      d.labels.push_back(id[static_cast<unsigned char>(text[static_cast<size_t>(p + t)])]);
      d.groups.push_back(group);
    }
  };
  for (const TextSource* s : kept) {
    const auto group = static_cast<int32_t>(corpus.sources.size());
    const auto n = static_cast<int64_t>(s->text.size());
    const auto split = n - static_cast<int64_t>(std::floor(options.val_fraction * static_cast<double>(n)));
    const int64_t before = corpus.validation->size();
    add_windows(*corpus.train, s->text, 0, split, group);
    if (options.val_fraction > 0) {
      add_windows(*corpus.validation, s->text, split, n, group);
      if (corpus.validation->size() == before) {
        return Status::invalid_argument("text corpus: source '" + s->name + "' (" +
                                        std::to_string(n) + " characters) leaves no validation "
                                        "window of " + std::to_string(t) +
                                        " characters; raise data.text.min_chars or val_fraction");
      }
    }
    corpus.sources.push_back(s->name);
  }
  corpus.train->group_names = corpus.sources;
  corpus.validation->group_names = corpus.sources;
  COHORT_RETURN_IF_ERROR(corpus.train->validate());
  COHORT_RETURN_IF_ERROR(corpus.validation->validate());
  return corpus;
}

}  // namespace cohort
