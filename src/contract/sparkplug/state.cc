#include "contract/sparkplug/state.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <optional>

namespace kiln::sparkplug {

namespace {

// A small scanner for the flat JSON object of a STATE payload: string keys whose values are
// literals, numbers or strings. Nested values are rejected (STATE has none).
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  Status Parse(HostState& out) {
    std::optional<bool> online;
    std::optional<uint64_t> timestamp;
    Skip();
    if (!Eat('{')) return Bad("expected '{'");
    Skip();
    if (Eat('}')) return Bad("empty object");
    while (true) {
      Skip();
      KILN_ASSIGN_OR_RETURN(std::string_view key, String());
      Skip();
      if (!Eat(':')) return Bad("expected ':'");
      Skip();
      if (key == "online") {
        if (Word("true")) {
          online = true;
        } else if (Word("false")) {
          online = false;
        } else {
          return Bad("\"online\" must be true or false");
        }
      } else if (key == "timestamp") {
        const size_t start = pos_;
        while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
        uint64_t v = 0;
        const auto [p, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, v);
        if (start == pos_ || ec != std::errc()) {
          return Bad("\"timestamp\" must be a non-negative integer");
        }
        timestamp = v;
      } else {
        KILN_RETURN_IF_ERROR(SkipScalar());
      }
      Skip();
      if (Eat(',')) continue;
      if (Eat('}')) break;
      return Bad("expected ',' or '}'");
    }
    Skip();
    if (pos_ != s_.size()) return Bad("trailing characters");
    if (!online) return Bad("missing \"online\"");
    if (!timestamp) return Bad("missing \"timestamp\"");
    out = HostState{*online, *timestamp};
    return OkStatus();
  }

 private:
  Status Bad(std::string_view why) const {
    return InvalidArgumentError(fmt::format("STATE payload: {} at offset {}", why, pos_));
  }
  void Skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  Result<std::string_view> String() {
    if (!Eat('"')) return Bad("expected a string");
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      if (s_[pos_] == '\\') ++pos_;  // skip the escaped character
      ++pos_;
    }
    if (pos_ >= s_.size()) return Bad("unterminated string");
    return s_.substr(start, pos_++ - start);
  }
  Status SkipScalar() {
    if (pos_ < s_.size() && s_[pos_] == '"') return String().status();
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != '}' &&
           !std::isspace(static_cast<unsigned char>(s_[pos_]))) {
      if (s_[pos_] == '{' || s_[pos_] == '[') return Bad("nested values are not expected");
      ++pos_;
    }
    if (start == pos_) return Bad("expected a value");
    return OkStatus();
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

Result<HostState> ParseHostState(std::string_view json) {
  HostState out;
  KILN_RETURN_IF_ERROR(Scanner(json).Parse(out));
  return out;
}

std::string BuildHostState(const HostState& state) {
  return fmt::format("{{\"online\":{},\"timestamp\":{}}}", state.online, state.timestamp);
}

}  // namespace kiln::sparkplug
