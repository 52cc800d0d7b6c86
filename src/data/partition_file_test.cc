#include "cohort/data/partition_file.h"

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/data/shards.h"
#include "cohort/data/synthetic.h"

namespace cohort {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = (fs::temp_directory_path() / ("cohort_pf_" + name)).string();
  std::ofstream(path) << text;
  return path;
}

TEST(PartitionFile, ReadsSortsAndChecksEachClient) {
  const std::string p = write_temp("ok.json", R"({"clients": [[4, 0, 2], [1], [3, 5]]})");
  auto r = read_partition_file(p, 6, 3, false);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(*r, (std::vector<std::vector<int64_t>>{{0, 2, 4}, {1}, {3, 5}}));
  // num_clients 0: as many clients as the file holds.
  auto any = read_partition_file(p, 6, 0, false);
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->size(), 3u);
  fs::remove(p);
}

TEST(PartitionFile, BadFilesAreErrorsNamingTheFileAndClient) {
  struct Case {
    std::string text;
    int64_t clients;
    bool shared;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"not json", 2, false, "not valid JSON"},
      {R"([[0], [1]])", 2, false, R"(expected an object {"clients")"},
      {R"({"clients": [[0], [1]]})", 3, false, "holds 2 clients, but clients.count is 3"},
      {R"({"clients": [[0], 7]})", 2, false, "client 1: expected an array"},
      {R"({"clients": [[0], []]})", 2, false, "client 1: no examples"},
      {R"({"clients": [[0, "x"], [1]]})", 2, false, R"(client 0: element 1 is "x")"},
      {R"({"clients": [[0, 1.5], [1]]})", 2, false, "client 0: element 1 is 1.5"},
      {R"({"clients": [[0], [6]]})", 2, false, "client 1: example 6 is outside [0, 6)"},
      {R"({"clients": [[0], [-1]]})", 2, false, "client 1: example -1 is outside"},
      {R"({"clients": [[0, 3, 0], [1]]})", 2, false, "client 0: lists example 0 twice"},
      {R"({"clients": [[0, 3], [1, 3]]})", 2, false, "client 1: example 3 is also client 0's"},
  };
  for (const Case& c : cases) {
    const std::string p = write_temp("bad.json", c.text);
    auto r = read_partition_file(p, 6, c.clients, c.shared);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(r.error().message(), HasSubstr(c.expect)) << c.text;
    EXPECT_THAT(r.error().message(), HasSubstr(p)) << c.text;
    fs::remove(p);
  }
  // Shared examples are fine when clients draw with replacement.
  const std::string p = write_temp("shared.json", R"({"clients": [[0, 3], [1, 3]]})");
  EXPECT_TRUE(read_partition_file(p, 6, 2, true).ok());
  fs::remove(p);
  auto missing = read_partition_file("/nonexistent/partition.json", 6, 2, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.error().message(), HasSubstr("/nonexistent/partition.json"));
}

TEST(PartitionFile, DrivesMakeClientDataExactly) {
  SyntheticOptions so{.num_examples = 12, .dim = 2, .num_classes = 3};
  auto data = make_synthetic(so);
  ASSERT_TRUE(data.ok());
  auto train = std::make_shared<const Dataset>(std::move(*data));
  const std::string p = write_temp("split.json", R"({"clients": [[11, 0], [5, 6, 7], [1]]})");
  DataConfig cfg;
  cfg.partition = {.kind = "file", .file = p};
  auto clients = make_client_data(train, 3, cfg, 1);
  ASSERT_TRUE(clients.ok()) << clients.error().to_string();
  EXPECT_EQ((*clients)[0].train.indices, (std::vector<int64_t>{0, 11}));
  EXPECT_EQ((*clients)[1].train.indices, (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ((*clients)[2].examples(), (std::vector<int64_t>{1}));
  auto wrong = make_client_data(train, 4, cfg, 1);
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.error().message(), HasSubstr("clients.count is 4"));
  fs::remove(p);
}

}  // namespace
}  // namespace cohort
