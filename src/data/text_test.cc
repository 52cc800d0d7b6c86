// The character-level text corpus (cohort/data/text.h) on files the test writes: fortune
// separators dropped, the alphabet, windows and labels by hand, the held-out tail of every
// source, short sources skipped, the natural partition by source, and the errors.
#include "cohort/data/text.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cohort/data/data_config.h"
#include "cohort/data/partition.h"

namespace cohort {
namespace {

namespace fs = std::filesystem;

class TextDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cohort_text_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "de");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  fs::path dir_;
};

TEST_F(TextDir, SourcesAreFilesWithoutSeparatorsOrIndexes) {
  write("b", "one\n%\ntwo\n");
  write("a", "x");
  write("a.dat", "index");
  write("de/c", "drei\n");
  write("de/c.u8", "twin");
  Result<std::vector<TextSource>> s = read_text_sources(dir_.string());
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].name, "a");
  EXPECT_EQ((*s)[1].name, "b");
  EXPECT_EQ((*s)[1].text, "one\n\ntwo\n");
  EXPECT_EQ((*s)[2].name, "de/c");
  EXPECT_EQ(read_text_sources((dir_ / "missing").string()).error().code(), StatusCode::kNotFound);
}

TEST(TextCorpusTest, WindowsLabelsAlphabetAndHeldOutTails) {
  // Source 0: "abcabcabca" (10 chars), source 1: "cccccbbbbb" (10), source 2 too short.
  const std::vector<TextSource> src = {
      {"s0", "abcabcabca"}, {"s1", "cccccbbbbb"}, {"tiny", "zz"}};
  TextOptions o;
  o.seq_len = 3;
  o.stride = 2;
  o.val_fraction = 0.4;  // the last 4 characters of each source
  o.min_chars = 5;
  Result<TextCorpus> c = build_text_corpus(src, o);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->alphabet, "abc");  // 'z' only in the skipped source
  EXPECT_EQ(c->sources, (std::vector<std::string>{"s0", "s1"}));
  const Dataset& tr = *c->train;
  EXPECT_EQ(tr.sample_shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(tr.num_classes, 3);
  // s0's training part "abcabc" (6 chars): windows at 0 and 2 -> "abc"->a, "cab"->c.
  // s1's "cccccb": windows at 0, 2 -> "ccc"->c, "ccc"->b.
  ASSERT_EQ(tr.size(), 4);
  EXPECT_EQ(std::vector<float>(tr.features.begin(), tr.features.begin() + 6),
            (std::vector<float>{0, 1, 2, 2, 0, 1}));
  EXPECT_EQ(tr.labels, (std::vector<int32_t>{0, 2, 2, 1}));
  EXPECT_EQ(tr.groups, (std::vector<int32_t>{0, 0, 1, 1}));
  // Held out: s0 "abca" -> "abc"->a; s1 "bbbb" -> "bbb"->b.
  const Dataset& va = *c->validation;
  ASSERT_EQ(va.size(), 2);
  EXPECT_EQ(va.labels, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(va.groups, (std::vector<int32_t>{0, 1}));
  // No training window reads a held-out character: the tail is separate text.
  TextOptions bad = o;
  bad.val_fraction = 0.1;  // one held-out character: no window of 3 fits
  EXPECT_NE(build_text_corpus(src, bad).error().message().find("no validation window"),
            std::string::npos);
  bad = o;
  bad.min_chars = 100;
  EXPECT_NE(build_text_corpus(src, bad).error().message().find("data.text.min_chars"),
            std::string::npos);
  bad = o;
  bad.seq_len = 0;
  EXPECT_NE(build_text_corpus(src, bad).error().message().find("data.text.seq_len"),
            std::string::npos);
}

TEST(TextCorpusTest, NaturalPartitionKeepsSources) {
  std::vector<TextSource> src;
  for (int k = 0; k < 5; ++k) src.push_back({"s" + std::to_string(k), std::string(60, 'a' + k)});
  TextOptions o;
  o.seq_len = 4;
  o.min_chars = 10;
  Result<TextCorpus> c = build_text_corpus(src, o);
  ASSERT_TRUE(c.ok());
  PartitionOptions po;
  po.kind = "natural";
  const Dataset& d = *c->train;
  auto parts = partition_dataset(d.labels, d.num_classes, 2, po, d.groups, 5);
  ASSERT_TRUE(parts.ok()) << parts.error().to_string();
  // Client 0: sources 0, 2, 4; client 1: sources 1, 3.
  for (int64_t i : (*parts)[0]) EXPECT_EQ(d.groups[i] % 2, 0);
  for (int64_t i : (*parts)[1]) EXPECT_EQ(d.groups[i] % 2, 1);
  EXPECT_EQ((*parts)[0].size() + (*parts)[1].size(), static_cast<size_t>(d.size()));
  EXPECT_NE(partition_dataset(d.labels, d.num_classes, 6, po, d.groups, 5).error().message()
                .find("5 sources"),
            std::string::npos);
  EXPECT_NE(partition_dataset(d.labels, d.num_classes, 2, po).error().message().find("natural"),
            std::string::npos);
}

TEST_F(TextDir, LoadSplitReadsTheConfiguredDirectory) {
  write("a", std::string(300, 'x') + std::string(300, 'y'));
  write("b", std::string(600, 'z'));
  DataConfig d;
  d.dataset = "text";
  d.path = dir_.string();
  d.text.seq_len = 8;
  d.text.min_chars = 100;
  auto train = load_split(d, "train", 1);
  auto val = load_split(d, "test", 1);
  ASSERT_TRUE(train.ok()) << train.error().to_string();
  ASSERT_TRUE(val.ok());
  EXPECT_EQ((*train)->num_classes, 4);  // x, y, z and the newline each file ends with
  EXPECT_EQ((*train)->group_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_GT((*train)->size(), 5 * (*val)->size());
  DataConfig fortunes;
  fortunes.dataset = "text";
  EXPECT_EQ(fortunes.resolved_path(), "/usr/share/games/fortunes");
}

}  // namespace
}  // namespace cohort
