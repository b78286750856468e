#include "core/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/status_matchers.h"

namespace kiln {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::unique_ptr<ConfigDocument> ParseOrDie(std::string_view text) {
  auto doc = ConfigDocument::Parse(text, "test.toml");
  EXPECT_THAT(doc, IsOk());
  return std::move(doc).value();
}

TEST(ConfigTest, ReadsTypedValues) {
  auto doc = ParseOrDie(R"(
[node]
name = "gw"
count = 3
ratio = 2
on = true
)");
  auto node = doc->root().GetTable("node");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->GetString("name", ""), "gw");
  EXPECT_EQ(node->GetInt("count", 0, 0, 10), 3);
  EXPECT_DOUBLE_EQ(node->GetDouble("ratio", 0), 2.0);
  EXPECT_TRUE(node->GetBool("on", false));
  EXPECT_THAT(doc->ToStatus(), IsOk());
}

TEST(ConfigTest, WrongTypeNamesFileLineAndKey) {
  auto doc = ParseOrDie("[node]\n\nport = \"x\"\n");
  auto node = doc->root().GetTable("node");
  EXPECT_EQ(node->GetInt("port", 7, 0, 100), 7);
  ASSERT_THAT(doc->errors(), SizeIs(1));
  EXPECT_EQ(doc->errors()[0].ToString(),
            "test.toml:3:8: node.port: expected an integer, found string");
}

TEST(ConfigTest, CollectsEveryError) {
  auto doc = ParseOrDie(R"(
[[devices]]
id = 5
poll_ms = -1
bogus = 1
[[devices]]
)");
  auto devices = doc->root().GetTableArray("devices");
  ASSERT_THAT(devices, SizeIs(2));
  for (auto& d : devices) {
    (void)d.RequireString("id");
    (void)d.GetInt("poll_ms", 1, 100000);
    d.RejectUnknownKeys({"id", "poll_ms"});
  }
  Status s = doc->ToStatus();
  EXPECT_THAT(s, StatusIs(StatusCode::kInvalidArgument, HasSubstr("4 errors in test.toml")));
  EXPECT_THAT(s.message(), HasSubstr("test.toml:3:6: devices[0].id: expected a string"));
  EXPECT_THAT(s.message(), HasSubstr("devices[0].poll_ms: -1 is out of range [1, 100000]"));
  EXPECT_THAT(s.message(), HasSubstr("test.toml:5:9: devices[0].bogus: unknown key"));
  EXPECT_THAT(s.message(), HasSubstr("devices[1].id: missing required key"));
}

TEST(ConfigTest, SyntaxErrorHasLine) {
  auto doc = ConfigDocument::Parse("a = 1\nb = = 2\n", "bad.toml");
  EXPECT_THAT(doc, StatusIs(StatusCode::kInvalidArgument, HasSubstr("bad.toml:2:")));
}

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_THAT(ConfigDocument::Load("/nonexistent/kiln.toml"), StatusIs(StatusCode::kNotFound));
}

TEST(ConfigTest, DurationsAndSizes) {
  EXPECT_THAT(ParseDuration("500ms"), IsOkAndHolds(Eq(std::chrono::milliseconds(500))));
  EXPECT_THAT(ParseDuration("7d"), IsOkAndHolds(Eq(std::chrono::hours(24 * 7))));
  EXPECT_THAT(ParseDuration("7 weeks"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDuration("s"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseByteSize("2GiB"), IsOkAndHolds(Eq(2147483648ULL)));
  EXPECT_THAT(ParseByteSize("500MB"), IsOkAndHolds(Eq(500000000ULL)));
  EXPECT_THAT(ParseByteSize("99999999999999999999TiB"), StatusIs(StatusCode::kInvalidArgument));
  auto doc = ParseOrDie("a = \"30s\"\nb = 1500\nc = \"2GiB\"\nd = \"2 parsecs\"\n");
  auto root = doc->root();
  EXPECT_EQ(root.GetDuration("a"), std::chrono::milliseconds(30000));
  EXPECT_EQ(root.GetDuration("b"), std::chrono::milliseconds(1500));
  EXPECT_EQ(root.GetByteSize("c"), 2147483648ULL);
  EXPECT_EQ(root.GetByteSize("d"), std::nullopt);
  EXPECT_THAT(doc->errors(), SizeIs(1));
}

}  // namespace
}  // namespace kiln
