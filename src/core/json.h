#pragma once
// JSON (RFC 8259) without a third-party library: a streaming Writer that appends to a
// std::string, and a strict Parser into a small immutable document tree (Value) for request
// bodies, configs pushed over REST and tests.
//
// Writer: single-threaded (one per output string). Value: immutable after Parse(), so
// const-only use from several threads is safe. Parse() is thread-safe.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"

namespace kiln::json {

// Writes JSON into `out` (appending) and inserts the commas and colons itself:
//
//   std::string s;
//   json::Writer w(s);
//   w.BeginObject().Key("id").String("press-3").Key("values").BeginArray();
//   for (double v : values) w.Number(v);
//   w.EndArray().EndObject();   // {"id":"press-3","values":[1.5,2]}
//
// The output is compact (no whitespace). Nesting is the caller's responsibility: a Key()
// outside an object, an End*() without its Begin*() or a value where a key is due is a bug
// (KILN_DCHECK), not an error. Several top-level values are written without separators.
class Writer {
 public:
  // `out` must outlive the Writer; existing content is kept.
  explicit Writer(std::string& out);

  Writer& BeginObject();
  Writer& EndObject();
  Writer& BeginArray();
  Writer& EndArray();
  // An object member's name. REQUIRES: inside an object, and a value follows.
  Writer& Key(std::string_view key);

  // A string. Escapes '"', '\\' and the control characters U+0000..U+001F (as \n, \r, \t,
  // \b, \f or \u00XX); valid UTF-8 passes through unchanged (so does U+007F). Each maximal
  // invalid UTF-8 subsequence (stray continuation byte, truncated sequence, overlong form,
  // surrogate, > U+10FFFF) becomes one U+FFFD, so the output is always valid UTF-8.
  Writer& String(std::string_view s);
  // A double in the shortest form that parses back to the same value (std::to_chars), e.g.
  // 0.1, 1e+100, -0. NaN and infinities, which JSON cannot represent, are written as null.
  Writer& Number(double v);
  Writer& Int(int64_t v);    // Exact.
  Writer& Uint(uint64_t v);  // Exact.
  Writer& Bool(bool v);
  Writer& Null();
  // An already encoded JSON value, inserted verbatim (commas are still handled).
  // REQUIRES: `json` is one valid JSON value; it is not checked.
  Writer& Raw(std::string_view json);

  // True when every Begin*() has been closed (and no Key() is pending).
  bool complete() const { return stack_.empty() && !after_key_; }

 private:
  void BeforeValue();
  Writer& Begin(char open, bool is_object);
  Writer& End(char close, bool is_object);

  struct Level {
    bool is_object;
    bool empty;
  };
  std::string& out_;
  std::vector<Level> stack_;
  bool after_key_ = false;
};

// Appends `s` as a quoted JSON string to `out` (the escaping of Writer::String).
void AppendQuoted(std::string& out, std::string_view s);

enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

// "null", "bool", "number", "string", "array" or "object".
std::string_view KindName(Kind kind);

// A parsed JSON document or a part of one. Immutable once built by Parse(); a default
// constructed Value is null. Objects keep their members in document order, including
// duplicate names (Find() answers the last one, as JavaScript does).
class Value {
 public:
  using Member = std::pair<std::string, Value>;

  Value() = default;

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_number() const { return kind() == Kind::kNumber; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_object() const { return kind() == Kind::kObject; }

  // The value, or nullopt when the kind differs.
  std::optional<bool> AsBool() const;
  // Any number as the nearest double.
  std::optional<double> AsDouble() const;
  // A number with an integral value in int64 range, exactly: integer literals such as
  // 9007199254740993 are kept exactly (not via double); 2.0 and 1e3 qualify as well;
  // 2.5 and 1e19 do not.
  std::optional<int64_t> AsInt64() const;
  // The decoded (UTF-8) string; the view lives as long as this Value.
  std::optional<std::string_view> AsString() const;

  // Elements of an array or members of an object; 0 for the other kinds.
  size_t size() const;
  // The i-th array element. Out of range or not an array: a null Value (never a crash, so
  // a handler can index untrusted documents after checking is_array() and size()).
  const Value& operator[](size_t i) const;
  // The member named `key` of an object (the last one if repeated), or nullptr when absent
  // or when this is not an object. Linear in the number of members.
  const Value* Find(std::string_view key) const;
  // Array elements in order (empty unless an array).
  const std::vector<Value>& elements() const;
  // Object members in document order (empty unless an object).
  const std::vector<Member>& items() const;

  // Encodes this value with `writer` (numbers that were integer literals stay exact).
  void WriteTo(Writer& writer) const;
  // This value as compact JSON.
  std::string ToJson() const;

 private:
  friend class Parser;
  struct Number {
    double value = 0;
    bool exact = false;  // `integer` holds the exact value.
    int64_t integer = 0;
  };

  std::variant<std::monostate, bool, Number, std::string, std::vector<Value>, std::vector<Member>>
      data_;
};

struct ParseOptions {
  // Arrays and objects nested deeper than this are rejected (bounds the recursion).
  int max_depth = 64;
};

// Parses one JSON value (RFC 8259, strict: no comments, no trailing commas, no NaN, no
// leading zeros, only space/tab/CR/LF as whitespace; the whole text must be one value).
// Strings must be valid UTF-8; \u escapes are decoded, a lone surrogate escape becomes
// U+FFFD. Errors: InvalidArgument, with the byte offset of the problem, e.g.
// "offset 17: expected ':' after object key", "offset 3: unexpected end of input",
// "offset 0: nesting deeper than 64", "offset 9: number out of range".
Result<Value> Parse(std::string_view text, const ParseOptions& options = {});

}  // namespace kiln::json
