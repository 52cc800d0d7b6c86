#include "cohort/core/config_record_json.h"

#include <gtest/gtest.h>

namespace cohort {
namespace {

TEST(ConfigRecordJsonTest, RoundTripKeepsEveryType) {
  const ConfigRecord c = {{"lr", 0.5}, {"steps", int64_t{7}}, {"keep", true}, {"rule", std::string("x")}};
  const Json j = to_json(c);
  EXPECT_TRUE(j["steps"].is_number_integer());
  EXPECT_TRUE(j["lr"].is_number_float());
  EXPECT_EQ(config_record_from_json(j), c);
  // Members of other types are left out.
  EXPECT_EQ(config_record_from_json(Json{{"a", nullptr}, {"b", Json::array()}}), ConfigRecord{});
}

}  // namespace
}  // namespace cohort
