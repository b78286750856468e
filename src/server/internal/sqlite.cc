#include "server/internal/sqlite.h"

#include <fmt/format.h>

namespace kiln::server::internal {

Result<std::unique_ptr<Sqlite>> Sqlite::Open(const std::filesystem::path& file,
                                             bool synchronous_full) {
  sqlite3* db = nullptr;
  const std::string name = file.string();
  if (sqlite3_open_v2(name.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    Status s = UnavailableError(
        fmt::format("{}: cannot open: {}", name, db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<Sqlite> out(new Sqlite(db, name));
  KILN_RETURN_IF_ERROR(out->Exec(synchronous_full
                                     ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                     : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  return out;
}

Sqlite::~Sqlite() { sqlite3_close(db_); }

Status Sqlite::Error(std::string_view what) const {
  const int rc = sqlite3_errcode(db_);
  const std::string msg = fmt::format("{}: {}: {}", file_, what, sqlite3_errmsg(db_));
  if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) return DataLossError(msg);
  if (rc == SQLITE_CONSTRAINT) return FailedPreconditionError(msg);
  if (rc == SQLITE_FULL) return ResourceExhaustedError(msg);
  return UnavailableError(msg);
}

Status Sqlite::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = UnavailableError(fmt::format("{}: {}", file_, err ? err : "error"));
    sqlite3_free(err);
    return s;
  }
  return OkStatus();
}

std::string Sqlite::Text(sqlite3_stmt* stmt, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
  return std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt, col)));
}

}  // namespace kiln::server::internal
