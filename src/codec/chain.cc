// Chain parsing: the text of a chain to its stages, with every default spelled out.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "cohort/codec/bf16.h"
#include "cohort/codec/codec.h"
#include "cohort/codec/fp16.h"
#include "cohort/codec/kmeans.h"
#include "cohort/codec/quantize.h"
#include "cohort/codec/raw.h"
#include "cohort/codec/terngrad.h"
#include "cohort/codec/zstd.h"

namespace cohort::codec {
namespace {

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  out.push_back(cur);
  return out;
}

Result<double> parse_number(const std::string& stage, const std::string& text) {
  if (text.empty()) return Status::invalid_argument(stage + ": missing number");
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(v)) {
    return Status::invalid_argument(stage + ": '" + text + "' is not a number");
  }
  return v;
}

Result<int64_t> parse_int(const std::string& stage, const std::string& text, int64_t lo,
                          int64_t hi, const std::string& what) {
  COHORT_ASSIGN_OR_RETURN(double v, parse_number(stage, text));
  if (v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi)) {
    return Status::invalid_argument(stage + ": " + what + " must be an integer in [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                    text);
  }
  return static_cast<int64_t>(v);
}

}  // namespace

std::vector<int64_t> segment_offsets(const ArrayLayout& layout) {
  std::vector<int64_t> out;
  out.reserve(layout.num_arrays() + 1);
  for (const ArraySpec& s : layout.specs()) out.push_back(s.offset);
  out.push_back(layout.numel());
  return out;
}

Chain::~Chain() = default;

bool Chain::lossless() const { return !sparsify_ && value_->lossless(); }

Result<std::shared_ptr<const Chain>> Chain::parse(std::string_view text) {
  std::vector<std::string> stages;
  std::string s(text);
  size_t pos = 0;
  while (true) {
    const size_t arrow = s.find("->", pos);
    stages.push_back(trim(std::string_view(s).substr(pos, arrow == std::string::npos
                                                               ? std::string::npos
                                                               : arrow - pos)));
    if (arrow == std::string::npos) break;
    pos = arrow + 2;
  }
  return parse(stages);
}

Result<std::shared_ptr<const Chain>> Chain::parse(const std::vector<std::string>& raw_stages) {
  std::vector<std::string> stages;
  for (const std::string& r : raw_stages) stages.push_back(trim(r));
  std::string joined;
  for (size_t i = 0; i < stages.size(); ++i) joined += (i ? " -> " : "") + stages[i];
  auto fail = [&](const std::string& why) -> Status {
    return Status::invalid_argument("compression chain '" + joined + "': " + why);
  };
  if (stages.empty() || (stages.size() == 1 && stages[0].empty())) {
    return fail("empty (write none for no compression)");
  }
  if (stages.size() == 1 && (stages[0] == "fedzip")) {
    stages = {"topk:0.2", "kmeans:3", "zstd"};
  }
  std::shared_ptr<Chain> c(new Chain());
  int last_rank = -1;  // 0 sparsifier, 1 value codec, 2 byte codec
  for (size_t i = 0; i < stages.size(); ++i) {
    const std::string& st = stages[i];
    if (st.empty()) return fail("stage " + std::to_string(i + 1) + " is empty");
    std::vector<std::string> parts = split(st, ':');
    for (std::string& p : parts) p = trim(p);
    const std::string& name = parts[0];
    std::vector<std::string> args(parts.begin() + 1, parts.end());
    auto max_args = [&](size_t n) -> Status {
      if (args.size() > n) {
        return fail(name + " takes at most " + std::to_string(n) + " argument" +
                    (n == 1 ? "" : "s") + ", got '" + st + "'");
      }
      return Status();
    };
    int rank = -1;
    if (name == "none") {
      if (stages.size() != 1) return fail("none cannot be combined with other codecs");
      COHORT_RETURN_IF_ERROR(max_args(0));
      c->value_ = make_f32();
      c->spec_ = "none";
      return std::shared_ptr<const Chain>(std::move(c));
    } else if (name == "fedzip") {
      return fail("fedzip is a whole chain (topk:0.2 -> kmeans:3 -> zstd); write its stages "
                  "to combine them with others");
    } else if (name == "topk" || name == "randk") {
      rank = 0;
      COHORT_RETURN_IF_ERROR(max_args(2));
      if (args.empty()) {
        return fail(name + " needs a fraction (" + name + ":0.01) or a count (" + name +
                    ":1000)");
      }
      SparsifyOptions o;
      o.kind = name == "topk" ? SparsifyOptions::Kind::kTopK : SparsifyOptions::Kind::kRandK;
      const std::string& a = args[0];
      const bool is_fraction = a.find_first_of(".eE") != std::string::npos;
      if (is_fraction) {
        Result<double> f = parse_number(name, a);
        if (!f.ok()) return fail(f.error().message());
        if (!(*f > 0.0 && *f <= 1.0)) {
          return fail(name + ": fraction must be in (0, 1], got " + a);
        }
        o.fraction = *f;
      } else {
        Result<int64_t> n = parse_int(name, a, 1, int64_t{1} << 32, "count");
        if (!n.ok()) return fail(n.error().message());
        o.count = *n;
      }
      if (args.size() == 2) {
        if (args[1] == "noef") {
          o.error_feedback = false;
        } else if (args[1] != "ef") {
          return fail(name + ": the second argument is ef or noef, got '" + args[1] + "'");
        }
      }
      c->sparsify_ = o;
    } else if (name == "f32" || name == "fp16" || name == "bf16") {
      rank = 1;
      COHORT_RETURN_IF_ERROR(max_args(0));
      c->value_ = name == "f32" ? make_f32() : name == "fp16" ? make_fp16() : make_bf16();
    } else if (name == "int8" || name == "int4" || name == "int2") {
      rank = 1;
      COHORT_RETURN_IF_ERROR(max_args(1));
      int64_t block = kDefaultBlock;
      if (!args.empty()) {
        Result<int64_t> b = parse_int(name, args[0], 8, 65536, "block size");
        if (!b.ok()) return fail(b.error().message());
        if (*b % 8 != 0) return fail(name + ": block size must be a multiple of 8, got " + args[0]);
        block = *b;
      }
      c->value_ = make_quantizer(name[3] - '0', block);
      c->frame_elems_ = block * std::max<int64_t>(1, kDefaultFrameElems / block);
    } else if (name == "terngrad") {
      rank = 1;
      COHORT_RETURN_IF_ERROR(max_args(1));
      double clip = kTernGradDefaultClip;
      if (!args.empty()) {
        Result<double> v = parse_number(name, args[0]);
        if (!v.ok()) return fail(v.error().message());
        if (*v < 0) return fail("terngrad: clip factor must be >= 0 (0 = no clipping), got " + args[0]);
        clip = *v;
      }
      c->value_ = make_terngrad(clip);
    } else if (name == "kmeans") {
      rank = 1;
      COHORT_RETURN_IF_ERROR(max_args(1));
      int64_t k = kKMeansDefaultK;
      if (!args.empty()) {
        Result<int64_t> v = parse_int(name, args[0], 2, 16, "k");
        if (!v.ok()) return fail(v.error().message());
        k = *v;
      }
      c->value_ = make_kmeans(static_cast<int>(k));
    } else if (name == "zstd") {
      rank = 2;
      COHORT_RETURN_IF_ERROR(max_args(1));
      int64_t level = kZstdDefaultLevel;
      if (!args.empty()) {
        Result<int64_t> v = parse_int(name, args[0], 1, 19, "level");
        if (!v.ok()) return fail(v.error().message());
        level = *v;
      }
      c->bytes_ = make_zstd(static_cast<int>(level));
    } else {
      return fail("unknown codec '" + name +
                  "' (known: none, topk, randk, f32, fp16, bf16, int8, int4, int2, terngrad, "
                  "kmeans, zstd, fedzip)");
    }
    if (rank <= last_rank) {
      static const char* kWhat[] = {"a sparsifier (topk, randk)",
                                    "a value codec (f32, fp16, bf16, int8/4/2, terngrad, kmeans)",
                                    "a byte codec (zstd)"};
      if (rank == last_rank) return fail("more than one " + std::string(kWhat[rank]));
      return fail(std::string(kWhat[rank]) + " must come before " + kWhat[last_rank] +
                  " (order: sparsifier -> value codec -> byte codec)");
    }
    if (rank == 1) c->value_named_ = true;
    last_rank = rank;
  }
  if (!c->value_) c->value_ = make_f32();
  std::vector<std::string> parts;
  if (c->sparsify_) parts.push_back(c->sparsify_->spec());
  if (c->value_named_) parts.push_back(c->value_->spec());
  if (c->bytes_) parts.push_back(c->bytes_->spec());
  for (size_t i = 0; i < parts.size(); ++i) c->spec_ += (i ? " -> " : "") + parts[i];
  return std::shared_ptr<const Chain>(std::move(c));
}

}  // namespace cohort::codec
