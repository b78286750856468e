#include "core/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <charconv>
#include <cmath>
#include <exception>
#include <fstream>
#include <sstream>

namespace kiln {

namespace {

const toml::node* ToToml(const internal::ConfigNode* n) {
  return reinterpret_cast<const toml::node*>(n);
}
const internal::ConfigNode* FromToml(const toml::node* n) {
  return reinterpret_cast<const internal::ConfigNode*>(n);
}

std::string_view TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    default:
      return "none";
  }
}

}  // namespace

std::string ConfigError::ToString() const {
  std::string out = file;
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

struct ConfigDocument::Impl {
  toml::table root;
};

ConfigDocument::ConfigDocument(std::unique_ptr<Impl> impl, std::string file)
    : impl_(std::move(impl)), file_(std::move(file)) {}
ConfigDocument::~ConfigDocument() = default;

Result<std::unique_ptr<ConfigDocument>> ConfigDocument::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(fmt::format("{}: cannot read config file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

Result<std::unique_ptr<ConfigDocument>> ConfigDocument::Parse(std::string_view text,
                                                              std::string file_name) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->root = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return InvalidArgumentError(
        fmt::format("{}:{}:{}: {}", file_name, b.line, b.column, e.description()));
  }
  return std::unique_ptr<ConfigDocument>(new ConfigDocument(std::move(impl), std::move(file_name)));
}

ConfigTable ConfigDocument::root() { return ConfigTable(this, FromToml(&impl_->root), ""); }

Status ConfigDocument::ToStatus() const {
  if (errors_.empty()) return OkStatus();
  std::string msg =
      fmt::format("{} error{} in {}", errors_.size(), errors_.size() == 1 ? "" : "s", file_);
  for (const auto& e : errors_) msg += "\n  " + e.ToString();
  return InvalidArgumentError(std::move(msg));
}

std::string ConfigTable::KeyPath(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return path_ + "." + std::string(key);
}

const internal::ConfigNode* ConfigTable::Lookup(std::string_view key) const {
  const toml::table* t = ToToml(table_)->as_table();
  if (t == nullptr) return nullptr;
  return FromToml(t->get(key));
}

bool ConfigTable::Has(std::string_view key) const { return Lookup(key) != nullptr; }

void ConfigTable::ErrorAt(const internal::ConfigNode* node, std::string_view key,
                          std::string message) const {
  const toml::node* n = node ? ToToml(node) : ToToml(table_);
  const auto& src = n->source().begin;
  doc_->AddError(ConfigError{doc_->file(), static_cast<int64_t>(src.line),
                             static_cast<int64_t>(src.column), KeyPath(key), std::move(message)});
}

void ConfigTable::Error(std::string_view key, std::string message) const {
  ErrorAt(Lookup(key), key, std::move(message));
}

std::optional<std::string> ConfigTable::GetString(std::string_view key) const {
  const auto* node = Lookup(key);
  if (!node) return std::nullopt;
  if (const auto* s = ToToml(node)->as_string()) return s->get();
  ErrorAt(node, key, fmt::format("expected a string, found {}", TypeName(*ToToml(node))));
  return std::nullopt;
}

std::string ConfigTable::GetString(std::string_view key, std::string_view fallback) const {
  return GetString(key).value_or(std::string(fallback));
}

std::optional<int64_t> ConfigTable::GetInt(std::string_view key, int64_t min, int64_t max) const {
  const auto* node = Lookup(key);
  if (!node) return std::nullopt;
  const auto* i = ToToml(node)->as_integer();
  if (!i) {
    ErrorAt(node, key, fmt::format("expected an integer, found {}", TypeName(*ToToml(node))));
    return std::nullopt;
  }
  const int64_t v = i->get();
  if (v < min || v > max) {
    ErrorAt(node, key, fmt::format("{} is out of range [{}, {}]", v, min, max));
    return std::nullopt;
  }
  return v;
}

int64_t ConfigTable::GetInt(std::string_view key, int64_t fallback, int64_t min,
                            int64_t max) const {
  return GetInt(key, min, max).value_or(fallback);
}

std::optional<double> ConfigTable::GetDouble(std::string_view key) const {
  const auto* node = Lookup(key);
  if (!node) return std::nullopt;
  const toml::node* n = ToToml(node);
  if (const auto* f = n->as_floating_point()) return f->get();
  if (const auto* i = n->as_integer()) return static_cast<double>(i->get());
  ErrorAt(node, key, fmt::format("expected a number, found {}", TypeName(*n)));
  return std::nullopt;
}

double ConfigTable::GetDouble(std::string_view key, double fallback) const {
  return GetDouble(key).value_or(fallback);
}

bool ConfigTable::GetBool(std::string_view key, bool fallback) const {
  const auto* node = Lookup(key);
  if (!node) return fallback;
  if (const auto* b = ToToml(node)->as_boolean()) return b->get();
  ErrorAt(node, key, fmt::format("expected true or false, found {}", TypeName(*ToToml(node))));
  return fallback;
}

std::optional<std::chrono::milliseconds> ConfigTable::GetDuration(
    std::string_view key, std::chrono::milliseconds int_unit) const {
  const auto* node = Lookup(key);
  if (!node) return std::nullopt;
  const toml::node* n = ToToml(node);
  if (const auto* i = n->as_integer()) {
    if (i->get() < 0) {
      ErrorAt(node, key, "a duration cannot be negative");
      return std::nullopt;
    }
    return int_unit * i->get();
  }
  if (const auto* s = n->as_string()) {
    auto d = ParseDuration(s->get());
    if (d.ok()) return *d;
    ErrorAt(node, key, d.status().message());
    return std::nullopt;
  }
  ErrorAt(node, key, fmt::format("expected a duration such as \"30s\", found {}", TypeName(*n)));
  return std::nullopt;
}

std::optional<uint64_t> ConfigTable::GetByteSize(std::string_view key) const {
  const auto* node = Lookup(key);
  if (!node) return std::nullopt;
  const toml::node* n = ToToml(node);
  if (const auto* i = n->as_integer()) {
    if (i->get() < 0) {
      ErrorAt(node, key, "a size cannot be negative");
      return std::nullopt;
    }
    return static_cast<uint64_t>(i->get());
  }
  if (const auto* s = n->as_string()) {
    auto b = ParseByteSize(s->get());
    if (b.ok()) return *b;
    ErrorAt(node, key, b.status().message());
    return std::nullopt;
  }
  ErrorAt(node, key, fmt::format("expected a size such as \"2GiB\", found {}", TypeName(*n)));
  return std::nullopt;
}

std::optional<std::string> ConfigTable::RequireString(std::string_view key) const {
  if (!Has(key)) {
    ErrorAt(nullptr, key, "missing required key");
    return std::nullopt;
  }
  return GetString(key);
}

std::optional<int64_t> ConfigTable::RequireInt(std::string_view key, int64_t min,
                                               int64_t max) const {
  if (!Has(key)) {
    ErrorAt(nullptr, key, "missing required key");
    return std::nullopt;
  }
  return GetInt(key, min, max);
}

std::optional<ConfigTable> ConfigTable::GetTable(std::string_view key) const {
  const auto* node = Lookup(key);
  if (!node) return std::nullopt;
  if (ToToml(node)->is_table()) return ConfigTable(doc_, node, KeyPath(key));
  ErrorAt(node, key, fmt::format("expected a table, found {}", TypeName(*ToToml(node))));
  return std::nullopt;
}

std::vector<std::string> ConfigTable::GetStringArray(std::string_view key) const {
  std::vector<std::string> out;
  const auto* node = Lookup(key);
  if (!node) return out;
  const toml::array* arr = ToToml(node)->as_array();
  if (!arr) {
    ErrorAt(node, key,
            fmt::format("expected an array of strings, found {}", TypeName(*ToToml(node))));
    return out;
  }
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node* el = arr->get(i);
    if (const auto* str = el->as_string()) {
      out.push_back(str->get());
      continue;
    }
    const auto& src = el->source().begin;
    doc_->AddError(ConfigError{doc_->file(), static_cast<int64_t>(src.line),
                               static_cast<int64_t>(src.column),
                               fmt::format("{}[{}]", KeyPath(key), i), "expected a string"});
  }
  return out;
}

std::vector<ConfigTable> ConfigTable::GetTableArray(std::string_view key) const {
  std::vector<ConfigTable> out;
  const auto* node = Lookup(key);
  if (!node) return out;
  const toml::array* arr = ToToml(node)->as_array();
  if (!arr) {
    ErrorAt(node, key,
            fmt::format("expected an array of tables ([[{}]]), found {}", key,
                        TypeName(*ToToml(node))));
    return out;
  }
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node* el = arr->get(i);
    const std::string path = fmt::format("{}[{}]", KeyPath(key), i);
    if (!el->is_table()) {
      const auto& src = el->source().begin;
      doc_->AddError(ConfigError{doc_->file(), static_cast<int64_t>(src.line),
                                 static_cast<int64_t>(src.column), path, "expected a table"});
      continue;
    }
    out.push_back(ConfigTable(doc_, FromToml(el), path));
  }
  return out;
}

void ConfigTable::RejectUnknownKeys(std::initializer_list<std::string_view> known) const {
  RejectUnknownKeys(std::vector<std::string_view>(known));
}

void ConfigTable::RejectUnknownKeys(const std::vector<std::string_view>& known) const {
  const toml::table* t = ToToml(table_)->as_table();
  if (!t) return;
  for (const auto& [k, v] : *t) {
    bool ok = false;
    for (auto name : known) ok = ok || (name == k.str());
    if (!ok) ErrorAt(FromToml(&v), k.str(), "unknown key");
  }
}

namespace {

Result<std::pair<uint64_t, std::string_view>> SplitNumber(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return InvalidArgumentError(fmt::format("'{}' does not start with a number", text));
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + i, n);
  if (ec != std::errc()) return InvalidArgumentError(fmt::format("'{}' is too large", text));
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return std::make_pair(n, unit);
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  KILN_ASSIGN_OR_RETURN(auto parts, SplitNumber(text));
  const auto [n, unit] = parts;
  uint64_t factor = 0;
  if (unit == "ms")
    factor = 1;
  else if (unit == "s")
    factor = 1000;
  else if (unit == "m" || unit == "min")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else if (unit == "d")
    factor = 86'400'000;
  else
    return InvalidArgumentError(
        fmt::format("'{}' is not a duration (use a number with ms, s, m, h or d)", text));
  if (n > static_cast<uint64_t>(INT64_MAX) / factor)
    return InvalidArgumentError(fmt::format("'{}' is too large", text));
  return std::chrono::milliseconds(static_cast<int64_t>(n * factor));
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  KILN_ASSIGN_OR_RETURN(auto parts, SplitNumber(text));
  const auto [n, unit] = parts;
  uint64_t factor = 0;
  if (unit.empty() || unit == "B")
    factor = 1;
  else if (unit == "KB")
    factor = 1000;
  else if (unit == "MB")
    factor = 1000'000;
  else if (unit == "GB")
    factor = 1000'000'000;
  else if (unit == "TB")
    factor = 1000'000'000'000;
  else if (unit == "KiB")
    factor = 1ULL << 10;
  else if (unit == "MiB")
    factor = 1ULL << 20;
  else if (unit == "GiB")
    factor = 1ULL << 30;
  else if (unit == "TiB")
    factor = 1ULL << 40;
  else
    return InvalidArgumentError(fmt::format(
        "'{}' is not a size (use a number with B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", text));
  if (n > UINT64_MAX / factor) return InvalidArgumentError(fmt::format("'{}' is too large", text));
  return n * factor;
}

}  // namespace kiln
