#pragma once
// gMock matchers for kiln::Status and kiln::Result<T>:
//   EXPECT_THAT(s, IsOk());
//   EXPECT_THAT(s, StatusIs(StatusCode::kDataLoss));
//   EXPECT_THAT(s, StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 3")));
//   EXPECT_THAT(r, IsOkAndHolds(Eq(3)));
#include <gmock/gmock.h>

#include "core/status.h"

namespace kiln::testing {

inline const Status& GetStatusForTest(const Status& s) { return s; }
template <typename T>
const Status& GetStatusForTest(const Result<T>& r) {
  return r.status();
}

MATCHER(IsOk, "is OK") {
  const Status& s = GetStatusForTest(arg);
  *result_listener << "status is " << s.ToString();
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + std::string(StatusCodeName(code))) {
  const Status& s = GetStatusForTest(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + std::string(StatusCodeName(code))) {
  const Status& s = GetStatusForTest(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, s.message(), result_listener);
}

MATCHER_P(IsOkAndHolds, matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status().ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

}  // namespace kiln::testing
