#pragma once
// Timestamps as text: RFC 3339 in UTC for logs and APIs, and the time arguments a user types
// (RFC 3339, epoch milliseconds, or relative to now such as "-1h").
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace kiln {

// "2026-11-27T02:00:00.123Z": UTC, millisecond precision (truncated towards the past).
std::string FormatRfc3339Millis(Timestamp t);

// Parses RFC 3339: "2026-11-27T02:00:00Z", with optional fractional seconds (up to
// nanoseconds) and a "Z" or "+hh:mm"/"-hh:mm" offset; "t" and "z" and a space for "T" are
// accepted too. Errors: InvalidArgument naming what is wrong.
Result<Timestamp> ParseRfc3339(std::string_view text);

// A time argument: RFC 3339, epoch milliseconds ("1764208800000"), "now", or a duration
// relative to `now` ("-1h", "-15m", "+30s", "now-7d"; units as in ParseDuration).
// Errors: InvalidArgument naming the accepted forms.
Result<Timestamp> ParseTimeArg(std::string_view text, Timestamp now);

}  // namespace kiln
