#pragma once
// Historian: Kiln's embedded time-series store. Every metric path ("G/N/D/M") is a series;
// a series holds points (source time in ms, value, OPC UA StatusCode), at most one per
// timestamp. Incoming points go to an in-memory head per series, made durable by a
// write-ahead log; full or old heads are sealed into compressed chunks kept in SQLite
// (design and reasoning: docs/ARCHITECTURE.md "Historian"; formats: docs/formats/historian.md).
//
// Semantics that ingestion relies on:
// - Points may arrive late and out of order (Sparkplug historical backfill); each lands at
//   its own time.
// - A second point with the timestamp of a stored one replaces it (the identical point
//   that an at-least-once edge sends twice is therefore stored once); counted in
//   HistorianStats::duplicates when value and quality are equal.
// - Latest() is the point with the greatest timestamp, so late history never replaces it.
//
// Thread-safe: one writer (ingest) and any number of readers (REST) at once. Runs two
// background threads (WAL sync; sealing and retention) unless options.background is false.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/env.h"
#include "core/status.h"

namespace kiln {
class LogSink;  // core/log.h
}  // namespace kiln

namespace kiln::historian {

using SeriesId = uint32_t;

// Numeric series store every number (bool as 0/1, integers exactly up to 2^53) as a double;
// text series store strings. The kind of a series is fixed when it is created.
enum class SeriesKind : uint8_t { kNumeric = 0, kText = 1 };

// One stored point. A null value (Sparkplug is_null, e.g. a Bad sample with no reading) is
// is_null with v = 0 / text empty.
struct Point {
  int64_t t = 0;   // source time, ms since the Unix epoch
  double v = 0;    // numeric series
  uint32_t q = 0;  // OPC UA StatusCode (0 = Good)
  bool is_null = false;
  friend bool operator==(const Point&, const Point&) = default;
};

struct TextPoint {
  int64_t t = 0;
  std::string v;
  uint32_t q = 0;
  bool is_null = false;
  friend bool operator==(const TextPoint&, const TextPoint&) = default;
};

// One numeric point to write: the hot path of ingestion.
struct PointWrite {
  SeriesId series = 0;
  Point point;
};

struct SeriesInfo {
  SeriesId id = 0;
  std::string path;
  SeriesKind kind = SeriesKind::kNumeric;
};

enum class Aggregate : uint8_t { kAvg, kMin, kMax, kFirst, kLast, kCount };
// "avg", "min", "max", "first", "last", "count".
std::optional<Aggregate> ParseAggregate(std::string_view name);
std::string_view AggregateName(Aggregate agg);

struct QueryOptions {
  bool good_only = false;  // ignore points whose StatusCode is not Good (and nulls)
  size_t limit = 0;        // raw queries: at most this many points, oldest first; 0 = all
};

// One time bucket [start, start + step) with at least one point. Buckets are aligned to
// multiples of step since the Unix epoch; empty buckets are not returned. Nulls are not
// counted by any aggregate; `value` of kCount is `count`.
struct Bucket {
  int64_t start = 0;
  double value = 0;
  uint64_t count = 0;
};

enum class WalSync {
  kInterval,  // fdatasync at most wal_sync_interval after a write (group commit)
  kAlways,    // Append returns once its points are durable
  kNever,     // leave it to the OS (benchmarks)
};

struct HistorianOptions {
  std::filesystem::path dir;  // created (with parents) when missing
  // Chunks whose newest point is older than now - retention are deleted; 0 = keep forever.
  std::chrono::milliseconds retention{0};
  // A head is sealed into a chunk once it holds this many points...
  size_t chunk_points = 8192;
  // ...or once its oldest point arrived this long ago, so that the WAL stays short.
  std::chrono::milliseconds seal_age{std::chrono::minutes(10)};
  WalSync wal_sync = WalSync::kInterval;
  std::chrono::milliseconds wal_sync_interval{1000};
  // The WAL starts a new segment file beyond this size.
  uint64_t wal_segment_bytes = uint64_t{16} << 20;
  // When the WAL outgrows this, the heads holding its oldest points are sealed early (into
  // smaller chunks) so that old segments can be deleted: bounds the WAL (and replay time)
  // when a high ingest rate meets slowly written series.
  uint64_t wal_max_bytes = uint64_t{512} << 20;
  Env* env = nullptr;      // nullptr: Env::Default(); must outlive the historian
  Clock* clock = nullptr;  // nullptr: the system clock; must outlive the historian
  LogSink* log = nullptr;  // nullptr: stderr; must outlive the historian
  // false: no background threads; nothing is synced (except kAlways), sealed by age or
  // retired unless the owner calls RunOnce() (tests). Full heads are then sealed by the
  // Append that fills them.
  bool background = true;
};

struct HistorianStats {
  uint64_t series = 0;
  uint64_t points_written = 0;  // accepted by Append/AppendText since open
  uint64_t duplicates = 0;      // writes identical to a stored point (same t, v, q)
  uint64_t head_points = 0;     // in memory, not yet in a chunk
  uint64_t chunks = 0;
  uint64_t chunk_points = 0;  // points stored in chunks
  uint64_t disk_bytes = 0;    // historian.db (+ its -wal) and our WAL files
  uint64_t wal_bytes = 0;
  uint64_t retired_chunks = 0;  // deleted by retention since open
  uint64_t wal_syncs = 0;
  uint64_t write_errors = 0;     // failed WAL writes and syncs, seal rounds, retention passes
  uint64_t seal_rounds = 0;      // committed sealing transactions since open
  uint64_t merged_chunks = 0;    // existing chunks rewritten to take late points
  uint64_t expired_points = 0;   // head points already past retention when sealed, dropped
  uint64_t replayed_points = 0;  // WAL points replayed into the heads at open
  // Found at open and skipped, each logged: bytes of torn or corrupt WAL data, and WAL
  // points of an unknown series (or of the wrong kind).
  uint64_t wal_corrupt_bytes = 0;
  uint64_t wal_skipped_points = 0;
  uint64_t corrupt_chunks = 0;  // chunks that failed to decode while merging (kept aside)
};

class Historian {
 public:
  // Opens or creates the store in options.dir and replays the WAL into the heads. Errors:
  // Unavailable when another process has the directory (LOCK), DataLoss when the database
  // cannot be read (a torn WAL tail is cut off and logged, not an error), FailedPrecondition
  // for a database or WAL of another format version, InvalidArgument for bad options, others
  // from Env and SQLite with the file named.
  static Result<std::unique_ptr<Historian>> Open(const HistorianOptions& options);
  ~Historian();  // seals nothing; the WAL keeps the heads
  Historian(const Historian&) = delete;
  Historian& operator=(const Historian&) = delete;

  // The id of the series `path`, created when new (ids are 1, 2, 3...; never 0). Errors:
  // InvalidArgument for an empty path, FailedPrecondition when the series exists with
  // another kind, I/O errors of the WAL (the creation is logged there).
  Result<SeriesId> Series(std::string_view path, SeriesKind kind);
  std::optional<SeriesInfo> Find(std::string_view path) const;
  // Every series whose path starts with `prefix`, sorted by path.
  std::vector<SeriesInfo> List(std::string_view prefix) const;

  // Writes numeric points (any order, any series). Durable per options.wal_sync when it
  // returns OK. Errors: NotFound for an unknown series id, FailedPrecondition for a text
  // series (then nothing of the batch is stored); I/O errors of the WAL write (nothing of the
  // batch is stored) or, with WalSync::kAlways, of its sync (the points are stored and
  // visible but may not survive a crash).
  // A null point is stored with value 0 (text: empty).
  Status Append(std::span<const PointWrite> points);
  Status AppendText(SeriesId series, const TextPoint& point);

  // Points with from <= t < to, oldest first. Errors: NotFound for an unknown series,
  // FailedPrecondition for a series of the other kind, DataLoss for a chunk that does not
  // decode, SQLite errors naming the file.
  Result<std::vector<Point>> QueryRaw(SeriesId series, int64_t from, int64_t to,
                                      const QueryOptions& options = {}) const;
  Result<std::vector<TextPoint>> QueryText(SeriesId series, int64_t from, int64_t to,
                                           const QueryOptions& options = {}) const;
  // Aggregates of numeric points with from <= t < to in buckets of `step` (> 0) ms. A
  // bucket that starts before `from` holds only the points from `from` on. Errors:
  // InvalidArgument for step <= 0 or a text series; else as QueryRaw.
  Result<std::vector<Bucket>> QueryBuckets(SeriesId series, int64_t from, int64_t to, int64_t step,
                                           Aggregate agg, const QueryOptions& options = {}) const;
  // The point with the greatest timestamp (with good_only: the greatest Good one, not
  // null). nullopt for an unknown series or one of the other kind.
  std::optional<Point> Latest(SeriesId series, bool good_only = false) const;
  std::optional<TextPoint> LatestText(SeriesId series, bool good_only = false) const;

  // Seals every head into chunks and truncates the WAL (shutdown, tests). Errors: those of
  // the WAL rotation and of the SQLite transaction (then the heads stay in memory and the
  // WAL, and a later round retries).
  Status Flush();
  // Deletes chunks older than the retention. Runs in the background once a minute.
  Status EnforceRetention();
  // One round of the background work (sync, seal full and aged heads, retention). Tests.
  // Errors: the first failure (the round goes on after it).
  Status RunOnce();
  HistorianStats stats() const;

 private:
  struct Impl;
  explicit Historian(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::historian
