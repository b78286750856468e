#include "historian/internal/sqlite.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include "core/check.h"

namespace kiln::historian::internal {

namespace {
constexpr int kBusyTimeoutMs = 10000;
}  // namespace

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, Mode mode) {
  sqlite3* db = nullptr;
  const int flags = (mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY
                                             : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                    SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::unique_ptr<SqliteDb> tmp(new SqliteDb(db, path));
    return tmp->Error(rc, "open");
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  return std::unique_ptr<SqliteDb>(new SqliteDb(db, path));
}

SqliteDb::~SqliteDb() {
  // Statements are owned by the caller and must be gone; v2 defers the close otherwise.
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Status SqliteDb::Error(int rc, std::string_view what) const {
  const char* msg = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  std::string text = fmt::format("{}: {}: {} ({})", path_, what, msg, sqlite3_errstr(rc));
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return UnavailableError(std::move(text));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(std::move(text));
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return ResourceExhaustedError(std::move(text));
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return PermissionDeniedError(std::move(text));
    default:
      return InternalError(std::move(text));
  }
}

Status SqliteDb::Exec(std::string_view sql) {
  const std::string s(sql);
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, fmt::format("\"{}\"", sql.substr(0, 60)));
  return OkStatus();
}

Result<std::unique_ptr<SqliteStmt>> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, fmt::format("prepare \"{}\"", sql.substr(0, 60)));
  return std::unique_ptr<SqliteStmt>(new SqliteStmt(*this, stmt));
}

int64_t SqliteDb::changes() const { return sqlite3_changes64(db_); }

SqliteStmt::~SqliteStmt() { sqlite3_finalize(stmt_); }

void SqliteStmt::BindInt64(int index, int64_t v) {
  const int rc = sqlite3_bind_int64(stmt_, index, v);
  KILN_DCHECK(rc == SQLITE_OK) << sqlite3_errstr(rc);
}

void SqliteStmt::BindBlob(int index, std::span<const char> data) {
  const int rc = sqlite3_bind_blob64(stmt_, index, data.data(), data.size(), SQLITE_STATIC);
  KILN_DCHECK(rc == SQLITE_OK) << sqlite3_errstr(rc);
}

void SqliteStmt::BindText(int index, std::string_view text) {
  const int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
  KILN_DCHECK(rc == SQLITE_OK) << sqlite3_errstr(rc);
}

Result<bool> SqliteStmt::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const char* sql = sqlite3_sql(stmt_);
  return db_.Error(
      rc, fmt::format("\"{}\"", std::string_view(sql != nullptr ? sql : "").substr(0, 60)));
}

Status SqliteStmt::Run() {
  Result<bool> r = Step();
  while (r.ok() && *r) r = Step();
  Reset();
  return r.status();
}

int64_t SqliteStmt::ColumnInt64(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string_view SqliteStmt::ColumnBlob(int index) const {
  const void* p = sqlite3_column_blob(stmt_, index);
  const int n = sqlite3_column_bytes(stmt_, index);
  return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
}

std::string_view SqliteStmt::ColumnText(int index) const {
  const unsigned char* p = sqlite3_column_text(stmt_, index);
  const int n = sqlite3_column_bytes(stmt_, index);
  return p == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(p), n);
}

bool SqliteStmt::ColumnIsNull(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

void SqliteStmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

}  // namespace kiln::historian::internal
