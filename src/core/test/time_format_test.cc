#include "core/time_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/status_matchers.h"

namespace kiln {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

Timestamp At(int64_t ms) { return FromEpochMillis(ms); }

TEST(TimeFormatTest, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339Millis(At(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(At(1764208800123)), "2025-11-27T02:00:00.123Z");
  EXPECT_EQ(FormatRfc3339Millis(Timestamp(1999999ns)), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(FormatRfc3339Millis(At(-1)), "1969-12-31T23:59:59.999Z");  // floors
  EXPECT_EQ(FormatRfc3339Millis(At(951782400000)), "2000-02-29T00:00:00.000Z");
}

TEST(TimeFormatTest, ParsesRfc3339WithFractionsAndOffsets) {
  EXPECT_EQ(*ParseRfc3339("2025-11-27T02:00:00Z"), At(1764208800000));
  EXPECT_EQ(*ParseRfc3339("2025-11-27T02:00:00.123Z"), At(1764208800123));
  EXPECT_EQ(*ParseRfc3339("2025-11-27T02:00:00.000000001Z"), At(1764208800000) + 1ns);
  EXPECT_EQ(*ParseRfc3339("2025-11-27T02:00:00.1234567891Z"), At(1764208800123) + 456789ns);
  EXPECT_EQ(*ParseRfc3339("2025-11-27T03:30:00+01:30"), At(1764208800000));
  EXPECT_EQ(*ParseRfc3339("2025-11-26T21:00:00-05:00"), At(1764208800000));
  EXPECT_EQ(*ParseRfc3339("2025-11-27t02:00:00z"), At(1764208800000));
  EXPECT_EQ(*ParseRfc3339("2025-11-27 02:00:00Z"), At(1764208800000));
  EXPECT_EQ(*ParseRfc3339("1969-12-31T23:59:59.999Z"), At(-1));
}

TEST(TimeFormatTest, RoundTripsItsOwnFormat) {
  for (int64_t ms :
       {int64_t{0}, int64_t{1764208800123}, int64_t{-86400001}, int64_t{4102444799999}}) {
    EXPECT_EQ(*ParseRfc3339(FormatRfc3339Millis(At(ms))), At(ms)) << ms;
  }
}

TEST(TimeFormatTest, RejectsWhatIsNotRfc3339WithAReason) {
  EXPECT_THAT(ParseRfc3339("2025-11-27"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRfc3339("2025-02-30T00:00:00Z"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no such date")));
  EXPECT_THAT(ParseRfc3339("2025-11-27T24:00:00Z"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_THAT(ParseRfc3339("2025-11-27T02:00:00"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'Z' or an offset")));
  EXPECT_THAT(ParseRfc3339("2025-11-27T02:00:00.Z"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no digits")));
  EXPECT_THAT(ParseRfc3339("2025-11-27T02:00:00+1:00"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRfc3339("2025-11-27T02:00:00Zjunk"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("after the offset")));
}

TEST(TimeFormatTest, TimeArgumentsTakeEveryDocumentedForm) {
  const Timestamp now = At(1764208800000);
  EXPECT_EQ(*ParseTimeArg("now", now), now);
  EXPECT_EQ(*ParseTimeArg("-1h", now), now - 1h);
  EXPECT_EQ(*ParseTimeArg("now-15m", now), now - 15min);
  EXPECT_EQ(*ParseTimeArg("+30s", now), now + 30s);
  EXPECT_EQ(*ParseTimeArg("-7d", now), now - std::chrono::hours(24 * 7));
  EXPECT_EQ(*ParseTimeArg("1764208800123", now), At(1764208800123));
  EXPECT_EQ(*ParseTimeArg("-5", now), At(-5));  // epoch milliseconds, not a duration
  EXPECT_EQ(*ParseTimeArg("2025-11-27T02:00:00Z", now), At(1764208800000));
  EXPECT_THAT(ParseTimeArg("yesterday", now),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("epoch milliseconds")));
  EXPECT_THAT(ParseTimeArg("-1y", now), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseTimeArg("", now), StatusIs(StatusCode::kInvalidArgument));
}

// A Timestamp counts nanoseconds in an int64: times it cannot hold are refused, never
// wrapped (REST parameters come from anyone).
TEST(TimeFormatTest, TimesATimestampCannotHoldAreRefused) {
  const Timestamp now = At(1764208800000);
  for (const char* t : {"99999999999999999", "-99999999999999999", "9000000000001", "-200000d",
                        "now+300000d", "9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z"}) {
    EXPECT_THAT(ParseTimeArg(t, now), StatusIs(StatusCode::kInvalidArgument)) << t;
  }
  EXPECT_THAT(ParseTimeArg("9000000000000", now), IsOk());
  EXPECT_THAT(ParseTimeArg("-36500d", now), IsOk());
}

}  // namespace
}  // namespace kiln
