#include "core/time_format.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <chrono>

#include "core/config.h"

namespace kiln {

namespace {

// Reads exactly `n` digits at `pos`.
bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

Status Bad(std::string_view text, std::string_view why) {
  return InvalidArgumentError(fmt::format("'{}' is not an RFC 3339 time: {}", text, why));
}

}  // namespace

std::string FormatRfc3339Millis(Timestamp t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd(day);
  const hh_mm_ss hms(ms - day);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     hms.hours().count(), hms.minutes().count(), hms.seconds().count(),
                     hms.subseconds().count());
}

Result<Timestamp> ParseRfc3339(std::string_view s) {
  using namespace std::chrono;
  int y, mo, d, h, mi, sec;
  if (!Digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !Digits(s, 5, 2, mo) || s[7] != '-' ||
      !Digits(s, 8, 2, d)) {
    return Bad(s, "expected YYYY-MM-DD at the start");
  }
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return Bad(s, "expected 'T' after the date");
  if (!Digits(s, 11, 2, h) || s[13] != ':' || !Digits(s, 14, 2, mi) || s[16] != ':' ||
      !Digits(s, 17, 2, sec)) {
    return Bad(s, "expected hh:mm:ss after the date");
  }
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)),
                           day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return Bad(s, "no such date");
  // A Timestamp counts nanoseconds in an int64: about 1678..2261.
  if (y < 1700 || y > 2250) return Bad(s, "the year must be within 1700..2250");
  if (h > 23 || mi > 59 || sec > 59) return Bad(s, "hour, minute or second out of range");
  size_t pos = 19;
  nanoseconds frac{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t ns = 0;
    size_t n = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (n < 9) ns = ns * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return Bad(s, "no digits after '.'");
    for (size_t i = n; i < 9; ++i) ns *= 10;
    frac = nanoseconds(ns);
  }
  minutes offset{0};
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!Digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !Digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return Bad(s, "expected a +hh:mm or -hh:mm offset");
    }
    offset = hours(oh) + minutes(om);
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return Bad(s, "expected 'Z' or an offset such as +01:00");
  }
  if (pos != s.size()) return Bad(s, "unexpected text after the offset");
  const sys_days date(ymd);
  return Timestamp(date.time_since_epoch() + hours(h) + minutes(mi) + seconds(sec) + frac - offset);
}

namespace {

// Times beyond this many ms from the epoch (about the year 2255) are refused: a Timestamp
// counts nanoseconds in an int64.
constexpr int64_t kMaxAbsEpochMs = 9'000'000'000'000;

Status OutOfRange(std::string_view text) {
  return InvalidArgumentError(
      fmt::format("'{}' is out of range (years 1685..2255 are supported)", text));
}

}  // namespace

Result<Timestamp> ParseTimeArg(std::string_view text, Timestamp now) {
  if (text.empty()) return InvalidArgumentError("empty time");
  if (text == "now") return now;
  std::string_view rel = text;
  if (rel.substr(0, 3) == "now") rel.remove_prefix(3);
  if (rel.size() > 1 && (rel[0] == '-' || rel[0] == '+') &&
      !std::isdigit(static_cast<unsigned char>(rel.back()))) {
    auto d = ParseDuration(rel.substr(1));
    if (!d.ok()) {
      return InvalidArgumentError(fmt::format("'{}': {}", text, d.status().message()));
    }
    // In ms, checked: a Timestamp (int64 ns) holds only about 1678..2261.
    const int64_t now_ms = ToEpochMillis(now);
    if (d->count() > kMaxAbsEpochMs) return OutOfRange(text);
    const int64_t ms = rel[0] == '-' ? now_ms - d->count() : now_ms + d->count();
    if (ms > kMaxAbsEpochMs || ms < -kMaxAbsEpochMs) return OutOfRange(text);
    return FromEpochMillis(ms);
  }
  int64_t ms = 0;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, ms);
  if (ec == std::errc() && p == end) {
    if (ms > kMaxAbsEpochMs || ms < -kMaxAbsEpochMs) return OutOfRange(text);
    return FromEpochMillis(ms);
  }
  auto t = ParseRfc3339(text);
  if (t.ok()) return t;
  return InvalidArgumentError(fmt::format(
      "'{}' is not a time: use RFC 3339 (2026-11-27T02:00:00Z), epoch milliseconds, now, or "
      "a relative time such as -1h ({})",
      text, t.status().message()));
}

}  // namespace kiln
