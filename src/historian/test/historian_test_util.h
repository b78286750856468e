#pragma once
// Helpers shared by the historian tests: readable printing of points and a look at the chunks
// table. (Temporary directories and log capture: core/testing.)
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "historian/historian.h"

namespace kiln::historian {
inline void PrintTo(const Point& p, std::ostream* os) {
  *os << "{t " << p.t << ", v " << p.v << ", q " << p.q << (p.is_null ? ", null}" : "}");
}
inline void PrintTo(const TextPoint& p, std::ostream* os) {
  *os << "{t " << p.t << ", \"" << p.v << "\", q " << p.q << (p.is_null ? ", null}" : "}");
}
inline void PrintTo(const Bucket& b, std::ostream* os) {
  *os << "{start " << b.start << ", value " << b.value << ", count " << b.count << "}";
}
inline bool operator==(const Bucket& a, const Bucket& b) {
  return a.start == b.start && a.value == b.value && a.count == b.count;
}
}  // namespace kiln::historian

namespace kiln::historian::testing {

// One row of the chunks table.
struct ChunkRow {
  int64_t t_min = 0;
  int64_t t_max = 0;
  int64_t count = 0;
  int64_t bytes = 0;
};

// The chunks of `series` in historian.db under `dir`, by t_min (read with a connection of
// our own; the historian may be open).
inline std::vector<ChunkRow> ChunksOf(const std::string& dir, SeriesId series) {
  std::vector<ChunkRow> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((dir + "/historian.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    ADD_FAILURE() << "cannot open the database";
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT t_min, t_max, count, length(data) FROM chunks WHERE series = ? "
                     "ORDER BY t_min",
                     -1, &st, nullptr);
  sqlite3_bind_int64(st, 1, series);
  while (sqlite3_step(st) == SQLITE_ROW) {
    out.push_back(ChunkRow{sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                           sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3)});
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// Runs `sql` on historian.db under `dir` (the historian must be closed).
inline void ExecSql(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir + "/historian.db").c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// Fails the test unless the chunks of `series` are ordered, disjoint and well-formed; returns
// how many points they hold.
inline int64_t CheckChunks(const std::string& dir, SeriesId series) {
  int64_t total = 0;
  const auto rows = ChunksOf(dir, series);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_LE(rows[i].t_min, rows[i].t_max) << "chunk " << i;
    EXPECT_GT(rows[i].count, 0) << "chunk " << i;
    if (i > 0) {
      EXPECT_LT(rows[i - 1].t_max, rows[i].t_min)
          << "chunks " << i - 1 << " and " << i << " overlap";
    }
    total += rows[i].count;
  }
  return total;
}

// Size of every file under `dir`, recursively.
inline uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

}  // namespace kiln::historian::testing
