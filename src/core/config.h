#pragma once
// TOML configuration with errors that name file, line and key.
//
// ConfigDocument parses a file; ConfigTable is a view of one table in it whose typed
// getters record an error (file:line:column: key: message) instead of failing fast, so a
// loader can report every problem of a config at once. Not thread-safe: load configs on
// one thread. Views are valid while their document lives.
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kiln {

struct ConfigError {
  std::string file;
  int64_t line = 0;    // 1-based; 0 when unknown
  int64_t column = 0;  // 1-based; 0 when unknown
  std::string key;     // full key path, e.g. "devices[0].tags[2].register"
  std::string message;
  // "file:line:column: key: message"
  std::string ToString() const;
};

class ConfigDocument;

namespace internal {
struct ConfigNode;  // opaque handle of a toml++ node; never defined
}  // namespace internal

class ConfigTable {
 public:
  // The dotted key path of this table ("" for the root).
  const std::string& path() const { return path_; }
  // Full key path of `key` inside this table.
  std::string KeyPath(std::string_view key) const;
  bool Has(std::string_view key) const;

  // Getters: a missing key gives nullopt (or the fallback) silently; a key of the wrong
  // type or out of range records an error and gives nullopt (or the fallback).
  std::optional<std::string> GetString(std::string_view key) const;
  std::string GetString(std::string_view key, std::string_view fallback) const;
  std::optional<int64_t> GetInt(std::string_view key, int64_t min = INT64_MIN,
                                int64_t max = INT64_MAX) const;
  int64_t GetInt(std::string_view key, int64_t fallback, int64_t min, int64_t max) const;
  // Accepts integers too.
  std::optional<double> GetDouble(std::string_view key) const;
  double GetDouble(std::string_view key, double fallback) const;
  bool GetBool(std::string_view key, bool fallback) const;
  // A duration: an integer of `int_unit`, or a string such as "500ms", "30s", "5m", "2h", "7d".
  std::optional<std::chrono::milliseconds> GetDuration(
      std::string_view key,
      std::chrono::milliseconds int_unit = std::chrono::milliseconds(1)) const;
  // A byte count: an integer, or a string such as "64MiB", "2GiB", "500MB".
  std::optional<uint64_t> GetByteSize(std::string_view key) const;

  // Like the getters, but a missing key records "missing required key".
  std::optional<std::string> RequireString(std::string_view key) const;
  std::optional<int64_t> RequireInt(std::string_view key, int64_t min = INT64_MIN,
                                    int64_t max = INT64_MAX) const;

  // An array of strings; empty if missing; error if not an array of strings.
  std::vector<std::string> GetStringArray(std::string_view key) const;

  // A sub-table; nullopt if missing (silently) or not a table (error).
  std::optional<ConfigTable> GetTable(std::string_view key) const;
  // An array of tables ([[key]]); empty if missing; error if not an array of tables.
  std::vector<ConfigTable> GetTableArray(std::string_view key) const;

  // Records an error at `key` (at this table when the key is absent).
  void Error(std::string_view key, std::string message) const;
  // Records an error for every key of this table not listed in `known`.
  void RejectUnknownKeys(std::initializer_list<std::string_view> known) const;
  void RejectUnknownKeys(const std::vector<std::string_view>& known) const;

 private:
  friend class ConfigDocument;
  ConfigTable(ConfigDocument* doc, const internal::ConfigNode* table, std::string path)
      : doc_(doc), table_(table), path_(std::move(path)) {}
  const internal::ConfigNode* Lookup(std::string_view key) const;
  void ErrorAt(const internal::ConfigNode* node, std::string_view key, std::string message) const;

  ConfigDocument* doc_;
  const internal::ConfigNode* table_;
  std::string path_;
};

class ConfigDocument {
 public:
  // Reads and parses `path`. Errors: NotFound if it cannot be read; InvalidArgument
  // "file:line:column: message" on a TOML syntax error.
  static Result<std::unique_ptr<ConfigDocument>> Load(const std::string& path);
  // Parses `text`; `file_name` is used in error messages.
  static Result<std::unique_ptr<ConfigDocument>> Parse(std::string_view text,
                                                       std::string file_name);
  ~ConfigDocument();
  ConfigDocument(const ConfigDocument&) = delete;
  ConfigDocument& operator=(const ConfigDocument&) = delete;

  ConfigTable root();
  const std::string& file() const { return file_; }
  const std::vector<ConfigError>& errors() const { return errors_; }
  void AddError(ConfigError error) { errors_.push_back(std::move(error)); }
  // OK if no error was recorded; otherwise InvalidArgument with one error per line.
  Status ToStatus() const;

 private:
  struct Impl;
  ConfigDocument(std::unique_ptr<Impl> impl, std::string file);
  std::unique_ptr<Impl> impl_;
  std::string file_;
  std::vector<ConfigError> errors_;
};

// "500ms" | "30s" | "5m" | "2h" | "7d" (an integer and a unit).
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "1024" | "64KiB" | "2GiB" | "500MB" | "1TB" (an integer and an optional unit).
Result<uint64_t> ParseByteSize(std::string_view text);

}  // namespace kiln
