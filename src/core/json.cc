#include "core/json.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

#include "core/check.h"

namespace kiln::json {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8.

// Length of the well-formed UTF-8 sequence at s[i] (1..4), or 0 when it is ill-formed; then
// `bad_len` is the length of its maximal invalid subpart (>= 1), which the Unicode standard
// recommends replacing by one U+FFFD. Rejects overlong forms, surrogates and > U+10FFFF.
size_t Utf8SequenceLength(std::string_view s, size_t i, size_t& bad_len) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c == 0xE0) {
    need = 2;
    lo = 0xA0;
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    need = 2;
  } else if (c == 0xED) {
    need = 2;
    hi = 0x9F;
  } else if (c == 0xF0) {
    need = 3;
    lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3) {
    need = 3;
  } else if (c == 0xF4) {
    need = 3;
    hi = 0x8F;
  } else {
    bad_len = 1;
    return 0;
  }
  for (size_t k = 0; k < need; ++k) {
    const size_t j = i + 1 + k;
    const unsigned char l = k == 0 ? lo : 0x80;
    const unsigned char h = k == 0 ? hi : 0xBF;
    if (j >= s.size() || static_cast<unsigned char>(s[j]) < l ||
        static_cast<unsigned char>(s[j]) > h) {
      bad_len = 1 + k;
      return 0;
    }
  }
  return need + 1;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// How a byte is named in an error message.
std::string Describe(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02X}", u);
}

const std::vector<Value>& EmptyArray() {
  static const std::vector<Value> empty;
  return empty;
}

const std::vector<Value::Member>& EmptyObject() {
  static const std::vector<Value::Member> empty;
  return empty;
}

const Value& NullValue() {
  static const Value null;
  return null;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Writer

void AppendQuoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    // Copy the run of bytes that need no attention in one go.
    size_t run = i;
    while (run < s.size()) {
      const auto c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++run;
    }
    out.append(s.data() + i, run - i);
    i = run;
    if (i >= s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t bad_len = 0;
      const size_t len = Utf8SequenceLength(s, i, bad_len);
      if (len > 0) {
        out.append(s.data() + i, len);
        i += len;
      } else {
        out += kReplacement;
        i += bad_len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
    ++i;
  }
  out += '"';
}

Writer::Writer(std::string& out) : out_(out) {}

void Writer::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (stack_.empty()) return;
  KILN_DCHECK(!stack_.back().is_object) << "json::Writer: a value inside an object needs a Key()";
  if (!stack_.back().empty) out_ += ',';
  stack_.back().empty = false;
}

Writer& Writer::Begin(char open, bool is_object) {
  BeforeValue();
  out_ += open;
  stack_.push_back({is_object, true});
  return *this;
}

Writer& Writer::End(char close, bool is_object) {
  KILN_DCHECK(!stack_.empty() && stack_.back().is_object == is_object && !after_key_)
      << "json::Writer: unbalanced End" << (is_object ? "Object" : "Array");
  if (!stack_.empty()) stack_.pop_back();
  out_ += close;
  return *this;
}

Writer& Writer::BeginObject() { return Begin('{', true); }
Writer& Writer::EndObject() { return End('}', true); }
Writer& Writer::BeginArray() { return Begin('[', false); }
Writer& Writer::EndArray() { return End(']', false); }

Writer& Writer::Key(std::string_view key) {
  KILN_DCHECK(!stack_.empty() && stack_.back().is_object && !after_key_)
      << "json::Writer: Key() outside an object";
  if (!stack_.empty()) {
    if (!stack_.back().empty) out_ += ',';
    stack_.back().empty = false;
  }
  AppendQuoted(out_, key);
  out_ += ':';
  after_key_ = true;
  return *this;
}

Writer& Writer::String(std::string_view s) {
  BeforeValue();
  AppendQuoted(out_, s);
  return *this;
}

Writer& Writer::Number(double v) {
  if (!std::isfinite(v)) return Null();
  BeforeValue();
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, r.ptr);
  return *this;
}

Writer& Writer::Int(int64_t v) {
  BeforeValue();
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, r.ptr);
  return *this;
}

Writer& Writer::Uint(uint64_t v) {
  BeforeValue();
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, r.ptr);
  return *this;
}

Writer& Writer::Bool(bool v) {
  BeforeValue();
  out_ += v ? "true" : "false";
  return *this;
}

Writer& Writer::Null() {
  BeforeValue();
  out_ += "null";
  return *this;
}

Writer& Writer::Raw(std::string_view json) {
  BeforeValue();
  out_ += json;
  return *this;
}

// ---------------------------------------------------------------------------------------
// Value

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "bool";
    case Kind::kNumber:
      return "number";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return "array";
    case Kind::kObject:
      return "object";
  }
  return "unknown";
}

std::optional<bool> Value::AsBool() const {
  if (const bool* b = std::get_if<bool>(&data_)) return *b;
  return std::nullopt;
}

std::optional<double> Value::AsDouble() const {
  if (const Number* n = std::get_if<Number>(&data_)) return n->value;
  return std::nullopt;
}

std::optional<int64_t> Value::AsInt64() const {
  if (const Number* n = std::get_if<Number>(&data_); n != nullptr && n->exact) return n->integer;
  return std::nullopt;
}

std::optional<std::string_view> Value::AsString() const {
  if (const std::string* s = std::get_if<std::string>(&data_)) return std::string_view(*s);
  return std::nullopt;
}

const std::vector<Value>& Value::elements() const {
  if (const auto* a = std::get_if<std::vector<Value>>(&data_)) return *a;
  return EmptyArray();
}

const std::vector<Value::Member>& Value::items() const {
  if (const auto* o = std::get_if<std::vector<Member>>(&data_)) return *o;
  return EmptyObject();
}

size_t Value::size() const { return is_array() ? elements().size() : items().size(); }

const Value& Value::operator[](size_t i) const {
  const std::vector<Value>& a = elements();
  return i < a.size() ? a[i] : NullValue();
}

const Value* Value::Find(std::string_view key) const {
  const std::vector<Member>& members = items();
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    if (it->first == key) return &it->second;
  }
  return nullptr;
}

void Value::WriteTo(Writer& writer) const {
  switch (kind()) {
    case Kind::kNull:
      writer.Null();
      break;
    case Kind::kBool:
      writer.Bool(std::get<bool>(data_));
      break;
    case Kind::kNumber: {
      const Number& n = std::get<Number>(data_);
      if (n.exact) {
        writer.Int(n.integer);
      } else {
        writer.Number(n.value);
      }
      break;
    }
    case Kind::kString:
      writer.String(std::get<std::string>(data_));
      break;
    case Kind::kArray:
      writer.BeginArray();
      for (const Value& v : elements()) v.WriteTo(writer);
      writer.EndArray();
      break;
    case Kind::kObject:
      writer.BeginObject();
      for (const Member& m : items()) {
        writer.Key(m.first);
        m.second.WriteTo(writer);
      }
      writer.EndObject();
      break;
  }
}

std::string Value::ToJson() const {
  std::string out;
  Writer w(out);
  WriteTo(w);
  return out;
}

// ---------------------------------------------------------------------------------------
// Parser: recursive descent over the bytes; the recursion is bounded by max_depth. Not in
// the anonymous namespace because Value befriends it.

class Parser {
 public:
  Parser(std::string_view text, const ParseOptions& options) : text_(text), options_(options) {}

  Result<Value> Run() {
    Value root;
    SkipWhitespace();
    KILN_RETURN_IF_ERROR(ParseValue(root, 0));
    SkipWhitespace();
    if (pos_ < text_.size()) {
      return Error(pos_, fmt::format("unexpected {} after the value", Describe(text_[pos_])));
    }
    return root;
  }

 private:
  static Status Error(size_t offset, std::string_view what) {
    return InvalidArgumentError(fmt::format("offset {}: {}", offset, what));
  }
  Status EndOfInput() const { return Error(text_.size(), "unexpected end of input"); }

  bool AtEnd() const { return pos_ >= text_.size(); }

  void SkipWhitespace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  Status ParseValue(Value& out, int depth) {
    if (AtEnd()) return EndOfInput();
    const char c = text_[pos_];
    switch (c) {
      case '{':
      case '[': {
        if (depth >= options_.max_depth) {
          return Error(pos_, fmt::format("nesting deeper than {}", options_.max_depth));
        }
        return c == '{' ? ParseObject(out, depth + 1) : ParseArray(out, depth + 1);
      }
      case '"': {
        std::string s;
        KILN_RETURN_IF_ERROR(ParseString(s));
        out.data_ = std::move(s);
        return OkStatus();
      }
      case 't':
        return ParseLiteral("true", out, true);
      case 'f':
        return ParseLiteral("false", out, false);
      case 'n':
        return ParseLiteral("null", out, std::monostate());
      default:
        if (c == '-' || IsDigit(c)) return ParseNumber(out);
        return Error(pos_, fmt::format("expected a value, found {}", Describe(c)));
    }
  }

  template <typename T>
  Status ParseLiteral(std::string_view word, Value& out, T value) {
    for (size_t i = 0; i < word.size(); ++i) {
      if (pos_ + i >= text_.size()) return EndOfInput();
      if (text_[pos_ + i] != word[i]) {
        return Error(pos_ + i, fmt::format("invalid literal, expected '{}'", word));
      }
    }
    pos_ += word.size();
    out.data_ = value;
    return OkStatus();
  }

  Status ParseArray(Value& out, int depth) {
    ++pos_;  // '['
    std::vector<Value> elements;
    SkipWhitespace();
    if (!AtEnd() && text_[pos_] == ']') {
      ++pos_;
      out.data_ = std::move(elements);
      return OkStatus();
    }
    while (true) {
      SkipWhitespace();
      KILN_RETURN_IF_ERROR(ParseValue(elements.emplace_back(), depth));
      SkipWhitespace();
      if (AtEnd()) return EndOfInput();
      const char c = text_[pos_];
      if (c == ']') {
        ++pos_;
        break;
      }
      if (c != ',') return Error(pos_, fmt::format("expected ',' or ']', found {}", Describe(c)));
      ++pos_;
    }
    out.data_ = std::move(elements);
    return OkStatus();
  }

  Status ParseObject(Value& out, int depth) {
    ++pos_;  // '{'
    std::vector<Value::Member> members;
    SkipWhitespace();
    if (!AtEnd() && text_[pos_] == '}') {
      ++pos_;
      out.data_ = std::move(members);
      return OkStatus();
    }
    while (true) {
      SkipWhitespace();
      if (AtEnd()) return EndOfInput();
      if (text_[pos_] != '"') {
        return Error(pos_, fmt::format("expected a string key, found {}", Describe(text_[pos_])));
      }
      Value::Member& member = members.emplace_back();
      KILN_RETURN_IF_ERROR(ParseString(member.first));
      SkipWhitespace();
      if (AtEnd()) return EndOfInput();
      if (text_[pos_] != ':') {
        return Error(pos_,
                     fmt::format("expected ':' after object key, found {}", Describe(text_[pos_])));
      }
      ++pos_;
      SkipWhitespace();
      KILN_RETURN_IF_ERROR(ParseValue(member.second, depth));
      SkipWhitespace();
      if (AtEnd()) return EndOfInput();
      const char c = text_[pos_];
      if (c == '}') {
        ++pos_;
        break;
      }
      if (c != ',') return Error(pos_, fmt::format("expected ',' or '}}', found {}", Describe(c)));
      ++pos_;
    }
    out.data_ = std::move(members);
    return OkStatus();
  }

  // Reads 4 hex digits at pos_; -1 when they are not.
  int32_t ReadHex4() {
    if (pos_ + 4 > text_.size()) return -1;
    int32_t v = 0;
    for (size_t i = 0; i < 4; ++i) {
      const int h = HexValue(text_[pos_ + i]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    pos_ += 4;
    return v;
  }

  Status ParseString(std::string& out) {
    ++pos_;  // '"'
    while (true) {
      // Copy the run of plain bytes in one go.
      size_t run = pos_;
      while (run < text_.size()) {
        const auto c = static_cast<unsigned char>(text_[run]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++run;
      }
      out.append(text_.data() + pos_, run - pos_);
      pos_ = run;
      if (AtEnd()) return EndOfInput();
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return OkStatus();
      }
      if (c < 0x20) {
        return Error(pos_, fmt::format("control character 0x{:02X} in string (must be escaped)",
                                       static_cast<unsigned>(c)));
      }
      if (c >= 0x80) {
        size_t bad_len = 0;
        const size_t len = Utf8SequenceLength(text_, pos_, bad_len);
        if (len == 0) return Error(pos_, "invalid UTF-8 in string");
        out.append(text_.data() + pos_, len);
        pos_ += len;
        continue;
      }
      // A backslash escape.
      const size_t escape_at = pos_;
      ++pos_;
      if (AtEnd()) return EndOfInput();
      const char e = text_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          int32_t cp = ReadHex4();
          if (cp < 0) return Error(escape_at, "invalid \\u escape (expected 4 hex digits)");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            // A high surrogate: combine with a following low surrogate escape, if any.
            const size_t save = pos_;
            if (pos_ + 1 < text_.size() && text_[pos_] == '\\' && text_[pos_ + 1] == 'u') {
              pos_ += 2;
              const int32_t low = ReadHex4();
              if (low >= 0xDC00 && low <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
              } else {
                pos_ = save;  // Not a pair: the high surrogate stands alone.
                cp = -1;
              }
            } else {
              cp = -1;
            }
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = -1;  // A lone low surrogate.
          }
          if (cp < 0) {
            out += kReplacement;
          } else {
            AppendUtf8(out, static_cast<uint32_t>(cp));
          }
          break;
        }
        default:
          return Error(escape_at,
                       fmt::format("invalid escape in string: '\\' followed by {}", Describe(e)));
      }
    }
  }

  Status ParseNumber(Value& out) {
    const size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    if (AtEnd()) return EndOfInput();
    if (text_[pos_] == '0') {
      ++pos_;
      if (!AtEnd() && IsDigit(text_[pos_])) {
        return Error(start, "invalid number (leading zero)");
      }
    } else if (IsDigit(text_[pos_])) {
      while (!AtEnd() && IsDigit(text_[pos_])) ++pos_;
    } else {
      return Error(
          pos_, fmt::format("invalid number, expected a digit, found {}", Describe(text_[pos_])));
    }
    bool integer_literal = true;
    if (!AtEnd() && text_[pos_] == '.') {
      integer_literal = false;
      ++pos_;
      if (AtEnd()) return EndOfInput();
      if (!IsDigit(text_[pos_])) {
        return Error(pos_, fmt::format("invalid number, expected a digit after '.', found {}",
                                       Describe(text_[pos_])));
      }
      while (!AtEnd() && IsDigit(text_[pos_])) ++pos_;
    }
    if (!AtEnd() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integer_literal = false;
      ++pos_;
      if (!AtEnd() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (AtEnd()) return EndOfInput();
      if (!IsDigit(text_[pos_])) {
        return Error(pos_, fmt::format("invalid number, expected a digit in the exponent, found {}",
                                       Describe(text_[pos_])));
      }
      while (!AtEnd() && IsDigit(text_[pos_])) ++pos_;
    }
    const std::string_view token = text_.substr(start, pos_ - start);
    Value::Number n;
    const auto r = std::from_chars(token.data(), token.data() + token.size(), n.value);
    if (r.ec == std::errc::result_out_of_range) {
      if (Overflows(token)) return Error(start, "number out of range");
      n.value = token[0] == '-' ? -0.0 : 0.0;  // Underflow: as close to zero as it gets.
    } else if (r.ec != std::errc() || r.ptr != token.data() + token.size()) {
      return Error(start, "invalid number");  // Not reached for grammar-checked tokens.
    }
    if (integer_literal) {
      int64_t i = 0;
      const auto ri = std::from_chars(token.data(), token.data() + token.size(), i);
      if (ri.ec == std::errc() && ri.ptr == token.data() + token.size()) {
        n.exact = true;
        n.integer = i;
      }
    }
    // -2^63 <= v < 2^63, both bounds exactly representable as doubles.
    if (!n.exact && std::trunc(n.value) == n.value && n.value >= -9223372036854775808.0 &&
        n.value < 9223372036854775808.0) {
      n.exact = true;
      n.integer = static_cast<int64_t>(n.value);
    }
    out.data_ = n;
    return OkStatus();
  }

  // For a grammar-checked number token that std::from_chars found out of range: true when
  // its magnitude is too large (rather than too small) for a double.
  static bool Overflows(std::string_view token) {
    size_t i = token[0] == '-' ? 1 : 0;
    // Decimal exponent of the first non-zero digit, before the explicit exponent.
    int64_t magnitude = 0;
    bool found = false;
    int64_t int_digits = 0;
    for (; i < token.size() && IsDigit(token[i]); ++i) {
      if (!found && token[i] != '0') found = true;
      if (found) ++int_digits;
    }
    if (found) {
      magnitude = int_digits - 1;
    } else if (i < token.size() && token[i] == '.') {
      int64_t k = 0;
      for (++i; i < token.size() && IsDigit(token[i]); ++i, ++k) {
        if (!found && token[i] != '0') {
          found = true;
          magnitude = -(k + 1);
        }
      }
    }
    while (i < token.size() && token[i] != 'e' && token[i] != 'E') ++i;
    int64_t exponent = 0;
    if (i < token.size()) {
      ++i;
      bool negative = false;
      if (token[i] == '+' || token[i] == '-') negative = token[i++] == '-';
      for (; i < token.size(); ++i) {
        exponent = std::min<int64_t>(exponent * 10 + (token[i] - '0'), int64_t{1} << 40);
      }
      if (negative) exponent = -exponent;
    }
    return found && magnitude + exponent > 0;
  }

  std::string_view text_;
  const ParseOptions& options_;
  size_t pos_ = 0;
};

Result<Value> Parse(std::string_view text, const ParseOptions& options) {
  return Parser(text, options).Run();
}

}  // namespace kiln::json
