#pragma once
// Sqlite: the small SQLite helper of kiln-server's own tables (registry, commands): open with
// WAL, run statements with text/integer parameters, read rows. Errors name the file and carry
// SQLite's message. One thread at a time per object (callers hold their own mutex).
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln::server::internal {

class Sqlite {
 public:
  // Opens or creates `file` in WAL mode. `synchronous_full`: every commit waits for fsync
  // (data that is not derived from elsewhere, such as commands and their audit trail).
  static Result<std::unique_ptr<Sqlite>> Open(const std::filesystem::path& file,
                                              bool synchronous_full);
  ~Sqlite();
  Sqlite(const Sqlite&) = delete;
  Sqlite& operator=(const Sqlite&) = delete;

  // Runs one or more statements without parameters.
  Status Exec(const char* sql);
  // Runs one statement with its parameters bound in order (text or int64).
  template <typename... Args>
  Status Run(const char* sql, const Args&... args) {
    return Query(sql, nullptr, args...);
  }
  // Runs one statement and calls `row` for each result row.
  template <typename... Args>
  Status Query(const char* sql, const std::function<void(sqlite3_stmt*)>& row,
               const Args&... args) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) return Error("prepare");
    int i = 0;
    (Bind(stmt, ++i, args), ...);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      if (row) row(stmt);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? OkStatus() : Error("step");
  }
  // Column `col` of the current row as text ("" for NULL).
  static std::string Text(sqlite3_stmt* stmt, int col);
  int64_t changes() const { return sqlite3_changes64(db_); }
  const std::string& file() const { return file_; }

 private:
  Sqlite(sqlite3* db, std::string file) : db_(db), file_(std::move(file)) {}
  Status Error(std::string_view what) const;
  static void Bind(sqlite3_stmt* stmt, int i, std::string_view s) {
    // A null pointer would bind SQL NULL; an empty view (the device of a node metric) is ''.
    sqlite3_bind_text(stmt, i, s.data() != nullptr ? s.data() : "", static_cast<int>(s.size()),
                      SQLITE_TRANSIENT);
  }
  static void Bind(sqlite3_stmt* stmt, int i, const std::string& s) {
    Bind(stmt, i, std::string_view(s));
  }
  static void Bind(sqlite3_stmt* stmt, int i, int64_t v) { sqlite3_bind_int64(stmt, i, v); }
  // A REAL, or NULL when absent.
  static void Bind(sqlite3_stmt* stmt, int i, const std::optional<double>& v) {
    if (v) {
      sqlite3_bind_double(stmt, i, *v);
    } else {
      sqlite3_bind_null(stmt, i);
    }
  }

  sqlite3* db_;
  std::string file_;
};

}  // namespace kiln::server::internal
