#pragma once
// A thin RAII layer over the sqlite3 C API for the historian: a connection and prepared
// statements, with every failure turned into a Status naming the database file and carrying
// SQLite's message. Private to kiln::historian; keeps <sqlite3.h> out of the other headers.
// A connection (and its statements) is used by one thread at a time.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace kiln::historian::internal {

class SqliteStmt;

class SqliteDb {
 public:
  // Opens (kReadWrite: creating when missing) the database at `path`, in SQLite's
  // multi-thread mode (the caller serializes use of the connection), with a busy timeout.
  enum class Mode { kReadWrite, kReadOnly };
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, Mode mode);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that return no rows the caller needs.
  Status Exec(std::string_view sql);
  Result<std::unique_ptr<SqliteStmt>> Prepare(std::string_view sql);
  // The Status for SQLite result code `rc` of operation `what`: "<path>: <what>: <message>".
  // Codes: BUSY/LOCKED/IOERR/CANTOPEN -> Unavailable, CORRUPT/NOTADB -> DataLoss, FULL ->
  // ResourceExhausted, PERM/READONLY/AUTH -> PermissionDenied, others -> Internal.
  Status Error(int rc, std::string_view what) const;
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t changes() const;
  sqlite3* handle() { return db_; }
  const std::string& path() const { return path_; }

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// A prepared statement. Bind, Step until it returns false, Reset (which also clears the
// bindings) before the next use.
class SqliteStmt {
 public:
  ~SqliteStmt();
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;

  void BindInt64(int index, int64_t v);                  // 1-based, as in SQLite
  void BindBlob(int index, std::span<const char> data);  // not copied: keep it alive
  void BindText(int index, std::string_view text);       // not copied: keep it alive
  // True when a row is available, false when the statement is done.
  Result<bool> Step();
  // Steps to the end, expecting no rows, and resets.
  Status Run();
  int64_t ColumnInt64(int index) const;  // 0-based, as in SQLite
  std::string_view ColumnBlob(int index) const;
  std::string_view ColumnText(int index) const;
  bool ColumnIsNull(int index) const;
  void Reset();

 private:
  friend class SqliteDb;
  SqliteStmt(SqliteDb& db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteDb& db_;
  sqlite3_stmt* stmt_;
};

}  // namespace kiln::historian::internal
