#include "mpi/message.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace cohort::mpi {
namespace {

ArrayRecord make_record() {
  auto layout = ArrayLayout::create(
      {{.name = "w", .shape = {2, 3}}, {.name = "bn", .shape = {2}, .trainable = false}});
  ArrayRecord r(*layout);
  for (int64_t i = 0; i < r.numel(); ++i)
    r.flat()[static_cast<size_t>(i)] = 0.1f * static_cast<float>(i) - 0.3f;
  return r;
}

TEST(MpiMessage, RecordsMetricsAndStatusRoundTripBitForBit) {
  const ArrayRecord rec = make_record();
  MessageWriter w;
  w.header()["number"] = 17;
  w.header()["seed"] = uint64_t{18446744073709551557ULL};
  w.add_record("model", rec);
  w.add_record("empty", ArrayRecord());
  write_metrics(w, "metrics",
                {{"train_loss", std::numeric_limits<double>::quiet_NaN()}, {"acc", 0.1}});
  write_status(w.header(), Status::unavailable("client raised"));
  Result<MessageReader> r = MessageReader::parse(w.finish());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->header()["number"].get<int64_t>(), 17);
  EXPECT_EQ(r->header()["seed"].get<uint64_t>(), 18446744073709551557ULL);
  Result<ArrayRecord> model = r->record("model");
  ASSERT_TRUE(model.ok()) << model.error().message();
  EXPECT_EQ(model->hash(), rec.hash());
  EXPECT_FALSE(model->layout()->specs()[1].trainable);
  Result<ArrayRecord> empty = r->record("empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(r->has("optimizer_state"));
  Result<MetricRecord> m = read_metrics(*r, "metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(std::isnan(m->at("train_loss")));
  EXPECT_EQ(m->at("acc"), 0.1);
  const Status st = read_status(r->header());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "client raised");
}

TEST(MpiMessage, TruncatedOrMalformedMessagesAreDataLoss) {
  MessageWriter w;
  const ArrayRecord rec = make_record();
  w.add_record("model", rec);
  std::string bytes = w.finish();
  EXPECT_EQ(MessageReader::parse("abc").error().code(), StatusCode::kDataLoss);
  std::string cut = bytes.substr(0, bytes.size() - 4);
  Result<MessageReader> r = MessageReader::parse(cut);
  ASSERT_TRUE(r.ok());
  Result<ArrayRecord> model = r->record("model");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(model.error().message().find("'model' out of range"), std::string::npos);
  EXPECT_EQ(r->record("other").error().code(), StatusCode::kDataLoss);
  std::string garbage(8, '\0');
  garbage[0] = 3;
  garbage += "{x:";
  EXPECT_EQ(MessageReader::parse(garbage).error().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace cohort::mpi
