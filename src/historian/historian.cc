// The historian's store: WAL + in-memory heads + chunks in SQLite. Formats and recovery
// rules: docs/formats/historian.md.
//
// Writes: Append encodes its batch into WAL records (outside every lock), then under write_mu_
// validates the series, writes the records and adds the points to the heads (under mu_). A
// head is a vector in arrival order; `sorted` stays true while points arrive in time order
// (the usual case), and a point with the time of the head's last point replaces it.
//
// Sealing (one round at a time, under db_mu_): the chosen heads become immutable "sealing"
// snapshots that queries keep reading, fresh heads take new points, and outside mu_ the
// round sorts and dedupes each snapshot (last write wins), merges it into the chunks it
// overlaps (rewriting them), writes the rest as new chunks, and commits one SQLite
// transaction with synchronous=FULL. Only then are the snapshots dropped and the WAL
// segments that no head still needs (every head remembers the segment of its first point:
// its pin) deleted. Replaying any suffix of the WAL over the database gives the same
// store (last write wins per timestamp), so a crash anywhere in between loses nothing.
//
// Reads: under mu_ a query copies the head and sealing points of its range, then reads the
// chunks through a connection of the reader pool, in that order, so a round that commits in
// between is seen twice (harmless: memory wins on equal t) but never not at all.
//
// Lock order: db_mu_ -> write_mu_ -> mu_ -> (WalWriter's and the reader pool's own).
#include "historian/historian.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <limits>
#include <map>
#include <thread>
#include <utility>

#include "core/log.h"
#include "core/mutex.h"
#include "historian/internal/chunk_codec.h"
#include "historian/internal/sqlite.h"
#include "historian/internal/wal.h"

namespace kiln::historian {

namespace {

using internal::SqliteDb;
using internal::SqliteStmt;
using internal::WalRecordBuilder;
using internal::WalRecordType;
using internal::WalWriter;

constexpr int64_t kFormatVersion = 1;
// 1 KiB pages: a 1-day 1 Hz series of 2-decimal readings takes 0.98 bytes/point in the
// database, against 1.33 with 4 KiB pages (the fixed tables and the unused tail of each
// chunk's last overflow page weigh less); see docs/formats/historian.md.
constexpr int kPageSize = 1024;
constexpr int32_t kApplicationId = 0x4B4C4E48;  // "KLNH"
constexpr size_t kMaxReaders = 8;
constexpr auto kRetentionPeriod = std::chrono::minutes(1);
constexpr int8_t kNoSeries = -1;
// Ids are dense (1, 2, 3...); a larger one in the database or the WAL is damage.
constexpr uint64_t kMaxSeriesId = uint64_t{1} << 26;

constexpr const char* kSchemaSql =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL,"
    " kind INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS chunks(series INTEGER NOT NULL, t_min INTEGER NOT NULL,"
    " t_max INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL,"
    " UNIQUE(series, t_min));"  // a rowid table: its overflow pages are filled up
    "INSERT OR IGNORE INTO meta(key, value) VALUES('format_version', 1);";
// The chunks a query of [?2, ?3) needs: the one starting at or before ?2 (it may reach into
// the range; chunks of a series never overlap, so no earlier one can) and those starting in
// the range. Both parts are ranges of the (series, t_min) index.
constexpr const char* kRangeSql =
    "SELECT t_max, data FROM chunks WHERE series = ?1 AND t_min < ?3 AND t_min >= "
    "coalesce((SELECT t_min FROM chunks WHERE series = ?1 AND t_min <= ?2 ORDER BY t_min DESC "
    "LIMIT 1), ?2) ORDER BY t_min";
constexpr const char* kDescSql =
    "SELECT t_max, data FROM chunks WHERE series = ?1 ORDER BY t_min DESC";
// Sealing [?2, ?3]: the chunk before (a candidate for merging when small) and the overlapping.
constexpr const char* kMergeSelectSql =
    "SELECT t_min, t_max, count, data FROM chunks WHERE series = ?1 AND t_min <= ?3 AND t_min >= "
    "coalesce((SELECT t_min FROM chunks WHERE series = ?1 AND t_min <= ?2 ORDER BY t_min DESC "
    "LIMIT 1), ?2) ORDER BY t_min";
constexpr const char* kInsertChunkSql =
    "INSERT INTO chunks(series, t_min, t_max, count, data) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kDeleteChunkSql = "DELETE FROM chunks WHERE series = ?1 AND t_min = ?2";
constexpr const char* kQuarantineChunkSql =
    "INSERT OR REPLACE INTO corrupt_chunks SELECT * FROM chunks WHERE series = ?1 AND t_min = ?2";
constexpr const char* kInsertSeriesSql =
    "INSERT OR IGNORE INTO series(id, path, kind) VALUES (?1, ?2, ?3)";
constexpr const char* kRetireSql =
    "DELETE FROM chunks WHERE series = ?1 AND t_min < ?2 AND t_max < ?2 RETURNING count";

bool IsGood(uint32_t q) { return (q >> 30) == 0; }

template <typename T>
bool Passes(const T& p, bool good_only) {
  return !good_only || (IsGood(p.q) && !p.is_null);
}

bool Same(const Point& a, const Point& b) {
  return a.t == b.t && std::bit_cast<uint64_t>(a.v) == std::bit_cast<uint64_t>(b.v) && a.q == b.q &&
         a.is_null == b.is_null;
}
bool Same(const TextPoint& a, const TextPoint& b) { return a == b; }

// A null point's value is 0 (text: empty).
bool IsCanonicalNull(const Point& p) { return std::bit_cast<uint64_t>(p.v) == 0; }
bool IsCanonicalNull(const TextPoint& p) { return p.v.empty(); }
Point Canonical(const Point& p) {
  if (!p.is_null) return p;
  Point c = p;
  c.v = 0;
  return c;
}
TextPoint Canonical(TextPoint p) {
  if (p.is_null) p.v.clear();
  return p;
}

void Encode(std::span<const Point> p, std::string& out) { internal::EncodeChunk(p, out); }
void Encode(std::span<const TextPoint> p, std::string& out) { internal::EncodeTextChunk(p, out); }
Status Decode(std::string_view blob, std::vector<Point>& out) {
  return internal::DecodeChunk(blob, out);
}
Status Decode(std::string_view blob, std::vector<TextPoint>& out) {
  return internal::DecodeTextChunk(blob, out);
}

template <typename T>
bool SortedUnique(const std::vector<T>& v) {
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i - 1].t >= v[i].t) return false;
  }
  return true;
}

// Sorts by time (stable: arrival order within a timestamp) and keeps the last point of each
// timestamp. Returns how many dropped points were identical to their successor.
template <typename T>
uint64_t SortDedupe(std::vector<T>& v, bool sorted) {
  if (sorted) return 0;
  std::stable_sort(v.begin(), v.end(), [](const T& a, const T& b) { return a.t < b.t; });
  size_t out = 0;
  uint64_t dups = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i + 1 < v.size() && v[i + 1].t == v[i].t) {
      if (Same(v[i], v[i + 1])) ++dups;
      continue;
    }
    if (out != i) v[out] = std::move(v[i]);
    ++out;
  }
  v.resize(out);
  return dups;
}

// Merges two sorted unique-time vectors into `out`; `winner`'s point wins on equal time.
// Returns how many of the losing points were identical to the winning ones.
template <typename T>
uint64_t MergeInto(const std::vector<T>& loser, const std::vector<T>& winner, std::vector<T>& out) {
  out.clear();
  out.reserve(loser.size() + winner.size());
  uint64_t dups = 0;
  size_t i = 0, j = 0;
  while (i < loser.size() && j < winner.size()) {
    if (loser[i].t < winner[j].t) {
      out.push_back(loser[i++]);
    } else if (winner[j].t < loser[i].t) {
      out.push_back(winner[j++]);
    } else {
      if (Same(loser[i], winner[j])) ++dups;
      out.push_back(winner[j++]);
      ++i;
    }
  }
  out.insert(out.end(), loser.begin() + static_cast<ptrdiff_t>(i), loser.end());
  out.insert(out.end(), winner.begin() + static_cast<ptrdiff_t>(j), winner.end());
  return dups;
}

// Appends the points of `v` with from <= t < to (sorted: binary search; else a scan).
template <typename T>
void CopyRange(const std::vector<T>& v, bool sorted, int64_t from, int64_t to,
               std::vector<T>& out) {
  if (sorted) {
    auto lo =
        std::lower_bound(v.begin(), v.end(), from, [](const T& p, int64_t t) { return p.t < t; });
    auto hi = std::lower_bound(lo, v.end(), to, [](const T& p, int64_t t) { return p.t < t; });
    out.insert(out.end(), lo, hi);
    return;
  }
  for (const T& p : v) {
    if (p.t >= from && p.t < to) out.push_back(p);
  }
}

// floor(t / step) * step, clamped to the int64 range.
int64_t BucketStart(int64_t t, int64_t step) {
  int64_t q = t / step;
  if (t % step != 0 && t < 0) --q;
  int64_t s;
  if (__builtin_mul_overflow(q, step, &s)) return std::numeric_limits<int64_t>::min();
  return s;
}
int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::numeric_limits<int64_t>::max();
  return r;
}

// Points of one kind in memory for one series.
template <typename T>
struct Mem {
  // Touched by every write (kept together, first).
  std::vector<T> head;
  std::optional<T> latest;
  std::optional<T> latest_good;
  bool sorted = true;  // head in increasing time, unique
  // False when the latest good point was overwritten by a non-good one at the same time: the
  // next Latest(good_only) looks it up again.
  bool latest_good_valid = true;
  uint64_t pin = 0;  // WAL segment of the head's first point (0: empty head)
  MonoTime since{};  // arrival of the head's first point
  // Being sealed by the current round; read by queries until its chunks are committed.
  std::shared_ptr<const std::vector<T>> sealing;
  bool sealing_sorted = true;
  uint64_t sealing_pin = 0;
};

// Ordered so that a numeric write touches the first two cache lines only.
struct alignas(64) SeriesState {
  SeriesId id = 0;
  SeriesKind kind = SeriesKind::kNumeric;
  bool queued_full = false;
  uint64_t epoch = 0;  // counts points written; for Latest(good_only)'s lookup
  Mem<Point> num;
  std::string path;
  Mem<TextPoint> text;
};

template <typename T>
Mem<T>& MemOf(SeriesState& s);
template <>
Mem<Point>& MemOf<Point>(SeriesState& s) {
  return s.num;
}
template <>
Mem<TextPoint>& MemOf<TextPoint>(SeriesState& s) {
  return s.text;
}
template <typename T>
constexpr SeriesKind KindOf() {
  return std::is_same_v<T, Point> ? SeriesKind::kNumeric : SeriesKind::kText;
}

// A reader connection with its statements and scratch space.
struct Reader {
  std::unique_ptr<SqliteDb> db;
  std::unique_ptr<SqliteStmt> range;
  std::unique_ptr<SqliteStmt> desc;
  std::vector<Point> buf;
  std::vector<Point> mem;
  std::vector<Point> mem2;
  std::vector<TextPoint> tbuf;
  std::vector<TextPoint> tmem;
  std::vector<TextPoint> tmem2;
  template <typename T>
  std::vector<T>& Buf() {
    if constexpr (std::is_same_v<T, Point>) {
      return buf;
    } else {
      return tbuf;
    }
  }
  template <typename T>
  std::vector<T>& MemBuf() {
    if constexpr (std::is_same_v<T, Point>) {
      return mem;
    } else {
      return tmem;
    }
  }
  template <typename T>
  std::vector<T>& MemBuf2() {
    if constexpr (std::is_same_v<T, Point>) {
      return mem2;
    } else {
      return tmem2;
    }
  }
};

// Resets a statement when leaving a scope, so no read transaction outlives a query.
class ResetOnExit {
 public:
  explicit ResetOnExit(SqliteStmt& s) : s_(s) {}
  ~ResetOnExit() { s_.Reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  SqliteStmt& s_;
};

// Visits, oldest first, the points with from <= t < to of the union of the chunks of
// `series` (read with `r.range`) and `mem` (sorted, unique; it wins on equal time), in runs:
// `visit(std::span<const T>)` gets consecutive points (a piece of a chunk, or of `mem`) and
// returns false to stop.
template <typename T, typename Visit>
Status ScanMerged(Reader& r, SeriesId series, int64_t from, int64_t to, const std::vector<T>& mem,
                  Visit&& visit) {
  auto before = [](const T& p, int64_t t) { return p.t < t; };
  const T* m = mem.data();
  const T* const m_end = m + mem.size();
  SqliteStmt& st = *r.range;
  ResetOnExit reset(st);
  st.BindInt64(1, series);
  st.BindInt64(2, from);
  st.BindInt64(3, to);
  std::vector<T>& buf = r.Buf<T>();
  while (true) {
    KILN_ASSIGN_OR_RETURN(const bool row, st.Step());
    if (!row) break;
    if (st.ColumnInt64(0) < from) continue;
    buf.clear();
    Status s = Decode(st.ColumnBlob(1), buf);
    if (!s.ok()) return s.WithContext(fmt::format("{}: series {}: chunk", r.db->path(), series));
    const T* const b_end = buf.data() + buf.size();
    const T* c = std::lower_bound(static_cast<const T*>(buf.data()), b_end, from, before);
    const T* const c_end = std::lower_bound(c, b_end, to, before);
    while (c < c_end) {
      // Memory points before the next chunk point, then chunk points before the next memory
      // point; a chunk point with a memory point's time is skipped.
      if (m < m_end && m->t <= c->t) {
        const T* m_run = std::lower_bound(m, m_end, c->t, before);
        if (m_run < m_end && m_run->t == c->t) ++m_run;
        if (!visit(std::span<const T>(m, m_run))) return OkStatus();
        if (m_run[-1].t == c->t) ++c;
        m = m_run;
        continue;
      }
      const T* c_run = m < m_end ? std::lower_bound(c, c_end, m->t, before) : c_end;
      if (!visit(std::span<const T>(c, c_run))) return OkStatus();
      c = c_run;
    }
  }
  if (m < m_end) visit(std::span<const T>(m, m_end));
  return OkStatus();
}

// The newest point of `series` (passing good_only) in the union of its chunks (walked
// newest first with `desc`) and `mem` (sorted, unique; it wins on equal time).
template <typename T>
Result<std::optional<T>> LatestOf(SqliteStmt& desc, std::vector<T>& buf, SeriesId series,
                                  bool good_only, const std::vector<T>& mem) {
  std::optional<T> cand;
  for (auto it = mem.rbegin(); it != mem.rend(); ++it) {
    if (Passes(*it, good_only)) {
      cand = *it;
      break;
    }
  }
  ResetOnExit reset(desc);
  desc.BindInt64(1, series);
  while (true) {
    KILN_ASSIGN_OR_RETURN(const bool row, desc.Step());
    if (!row) break;
    if (cand && desc.ColumnInt64(0) <= cand->t) break;
    buf.clear();
    KILN_RETURN_IF_ERROR(Decode(desc.ColumnBlob(1), buf));
    for (auto it = buf.rbegin(); it != buf.rend(); ++it) {
      if (cand && it->t <= cand->t) return cand;
      if (!Passes(*it, good_only)) continue;
      // A point in memory with this time overrides the chunk's (and did not pass).
      if (std::binary_search(mem.begin(), mem.end(), *it,
                             [](const T& a, const T& b) { return a.t < b.t; })) {
        continue;
      }
      return std::optional<T>(*it);
    }
  }
  return cand;
}

// Appends the points of `run` that pass the options; false once `limit` is reached.
template <typename T>
bool CollectRun(std::span<const T> run, const QueryOptions& options, std::vector<T>& out) {
  if (!options.good_only && options.limit == 0) {
    out.insert(out.end(), run.begin(), run.end());
    return true;
  }
  for (const T& p : run) {
    if (!Passes(p, options.good_only)) continue;
    out.push_back(p);
    if (options.limit != 0 && out.size() >= options.limit) return false;
  }
  return true;
}

// Aggregates runs of points (in time order) into buckets aligned to multiples of `step`.
class BucketBuilder {
 public:
  BucketBuilder(int64_t step, Aggregate agg, bool good_only)
      : step_(step), agg_(agg), good_only_(good_only) {}

  bool Add(std::span<const Point> run) {
    // The state lives in locals for the loop (the hot path of a dashboard query).
    int64_t end = end_;
    double sum = sum_, lo = lo_, hi = hi_, first = first_, last = last_;
    uint64_t count = count_;
    const bool good_only = good_only_;
    for (const Point& p : run) {
      if (p.is_null || (good_only && !IsGood(p.q))) continue;
      const double v = p.v;
      if (p.t >= end || count == 0) {
        if (count > 0) Close(sum, lo, hi, first, last, count);
        const int64_t start = BucketStart(p.t, step_);
        end = SaturatingAdd(start, step_);
        out_.push_back(Bucket{start, 0, 0});
        sum = lo = hi = first = last = v;
        count = 1;
        continue;
      }
      sum += v;
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
      last = v;
      ++count;
    }
    end_ = end;
    sum_ = sum;
    lo_ = lo;
    hi_ = hi;
    first_ = first;
    last_ = last;
    count_ = count;
    return true;
  }

  std::vector<Bucket> Finish() {
    if (count_ > 0) Close(sum_, lo_, hi_, first_, last_, count_);
    return std::move(out_);
  }

 private:
  void Close(double sum, double lo, double hi, double first, double last, uint64_t count) {
    Bucket& b = out_.back();
    b.count = count;
    switch (agg_) {
      case Aggregate::kAvg:
        b.value = sum / static_cast<double>(count);
        break;
      case Aggregate::kMin:
        b.value = lo;
        break;
      case Aggregate::kMax:
        b.value = hi;
        break;
      case Aggregate::kFirst:
        b.value = first;
        break;
      case Aggregate::kLast:
        b.value = last;
        break;
      case Aggregate::kCount:
        b.value = static_cast<double>(count);
        break;
    }
  }

  const int64_t step_;
  const Aggregate agg_;
  const bool good_only_;
  std::vector<Bucket> out_;
  int64_t end_ = 0;
  double sum_ = 0, lo_ = 0, hi_ = 0, first_ = 0, last_ = 0;
  uint64_t count_ = 0;  // points in the open bucket (0: none open)
};

}  // namespace

std::optional<Aggregate> ParseAggregate(std::string_view name) {
  if (name == "avg") return Aggregate::kAvg;
  if (name == "min") return Aggregate::kMin;
  if (name == "max") return Aggregate::kMax;
  if (name == "first") return Aggregate::kFirst;
  if (name == "last") return Aggregate::kLast;
  if (name == "count") return Aggregate::kCount;
  return std::nullopt;
}

std::string_view AggregateName(Aggregate agg) {
  switch (agg) {
    case Aggregate::kAvg:
      return "avg";
    case Aggregate::kMin:
      return "min";
    case Aggregate::kMax:
      return "max";
    case Aggregate::kFirst:
      return "first";
    case Aggregate::kLast:
      return "last";
    case Aggregate::kCount:
      return "count";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------

struct Historian::Impl {
  Impl(const HistorianOptions& o, Env& e, const Clock& c, LogSink& sink)
      : opts(o),
        env(e),
        clock(c),
        log(sink, "historian"),
        limiter(c),
        dir(o.dir.string()),
        db_path(dir + "/historian.db"),
        wal_dir(dir + "/wal") {}

  // --- Open.
  Status OpenDatabase();
  Status LoadSeries();
  Status Replay();
  // A series record of the WAL: adds the series unless known. True when it was new.
  bool AddSeriesFromWalLocked(SeriesId id, SeriesKind kind, const std::string& path, uint64_t seq)
      KILN_REQUIRES(write_mu_, mu_);
  Status InitLatest();
  template <typename T>
  Status InitLatestOf(SeriesState& s, std::vector<T>& mem, std::vector<T>& buf)
      KILN_REQUIRES(db_mu_, mu_);
  void StartThreads();
  void Shutdown();

  // --- Writing.
  Result<SeriesId> GetOrCreateSeries(std::string_view path, SeriesKind kind);
  Status AppendPoints(std::span<const PointWrite> points);
  Status AppendTextPoint(SeriesId series, const TextPoint& point);
  template <typename T>
  void InsertLocked(SeriesState& s, const T& p, uint64_t seq, MonoTime now, bool count_dups)
      KILN_REQUIRES(mu_);
  Status ValidateLocked(SeriesId id, SeriesKind kind) const KILN_REQUIRES(write_mu_);
  void AfterWrite(uint64_t lsn, bool want_seal, Status& st);

  // --- Sealing and retention.
  enum class SealMode {
    kFull,  // heads with chunk_points points
    kDue,   // full, aged (seal_age) and those pinning WAL segments beyond wal_max_bytes
    kAll,   // every head (Flush)
  };
  Status SealRound(SealMode mode);
  struct Job {
    SeriesId id = 0;
    SeriesKind kind = SeriesKind::kNumeric;
    std::shared_ptr<const std::vector<Point>> num;
    std::shared_ptr<const std::vector<TextPoint>> text;
    bool sorted = true;
  };
  struct PendingRow {
    SeriesId id = 0;
    uint64_t pin = 0;
  };
  struct Delta {
    int64_t chunks = 0;
    int64_t chunk_points = 0;
    uint64_t duplicates = 0;
    uint64_t merged = 0;
    uint64_t expired = 0;
    uint64_t corrupt = 0;
  };
  template <typename T>
  void PickLocked(SeriesState& s, std::vector<Job>& jobs) KILN_REQUIRES(mu_);
  template <typename T>
  void RestoreLocked(SeriesState& s) KILN_REQUIRES(mu_);
  Status CommitRound(const std::vector<Job>& jobs, const std::vector<PendingRow>& rows,
                     Delta& delta) KILN_REQUIRES(db_mu_);
  template <typename T>
  Status SealJob(SeriesId id, const std::vector<T>& snapshot, bool sorted, Delta& delta)
      KILN_REQUIRES(db_mu_);
  template <typename T>
  Status WritePieces(SeriesId id, const std::vector<T>& pts, Delta& delta) KILN_REQUIRES(db_mu_);
  uint64_t MinPinLocked() const KILN_REQUIRES(mu_);
  Status Retention();

  // --- Reading.
  class Lease;
  Result<Lease> AcquireReader() const;
  void ReleaseReader(std::unique_ptr<Reader> r) const;
  Result<std::unique_ptr<Reader>> OpenReader() const;
  // Copies the head and sealing points with from <= t < to (all: every one) into
  // r.MemBuf<T>(), sorted, unique, the newest write winning.
  template <typename T>
  void CopyMemLocked(SeriesState& s, int64_t from, int64_t to, bool all, Reader& r) const
      KILN_REQUIRES(mu_);
  template <typename T>
  Result<SeriesState*> CheckSeriesLocked(SeriesId id) const KILN_REQUIRES(mu_);
  template <typename T, typename Visit>
  Status Scan(SeriesId id, int64_t from, int64_t to, Visit&& visit) const;
  template <typename T>
  std::optional<T> LatestPoint(SeriesId id, bool good_only) const;

  void RequestMaintenanceLocked() KILN_REQUIRES(mu_) {
    maint_requested_ = true;
    maint_cv_.NotifyOne();
  }
  void SyncLoop();
  void MaintenanceLoop();
  HistorianStats Stats() const;

  const HistorianOptions opts;
  Env& env;
  const Clock& clock;
  const Logger log;
  mutable LogRateLimiter limiter;
  const std::string dir;
  const std::string db_path;
  const std::string wal_dir;
  std::unique_ptr<FileLock> dir_lock;
  std::unique_ptr<WalWriter> wal;  // Append/Rotate under write_mu_

  // The writing connection: sealing, retention, open. Synchronous=FULL: every commit is durable.
  Mutex db_mu_;
  std::unique_ptr<SqliteDb> db_ KILN_GUARDED_BY(db_mu_);
  std::unique_ptr<SqliteStmt> merge_select_ KILN_GUARDED_BY(db_mu_);
  std::unique_ptr<SqliteStmt> insert_chunk_ KILN_GUARDED_BY(db_mu_);
  std::unique_ptr<SqliteStmt> delete_chunk_ KILN_GUARDED_BY(db_mu_);
  std::unique_ptr<SqliteStmt> insert_series_ KILN_GUARDED_BY(db_mu_);
  std::unique_ptr<SqliteStmt> retire_ KILN_GUARDED_BY(db_mu_);
  std::unique_ptr<SqliteStmt> desc_ KILN_GUARDED_BY(db_mu_);
  bool quarantine_ready_ KILN_GUARDED_BY(db_mu_) = false;
  // Scratch of the sealing round.
  std::vector<Point> s_pts_ KILN_GUARDED_BY(db_mu_);
  std::vector<Point> s_old_ KILN_GUARDED_BY(db_mu_);
  std::vector<Point> s_merged_ KILN_GUARDED_BY(db_mu_);
  std::vector<TextPoint> s_tpts_ KILN_GUARDED_BY(db_mu_);
  std::vector<TextPoint> s_told_ KILN_GUARDED_BY(db_mu_);
  std::vector<TextPoint> s_tmerged_ KILN_GUARDED_BY(db_mu_);
  std::string s_blob_ KILN_GUARDED_BY(db_mu_);
  MonoTime next_retention_ KILN_GUARDED_BY(db_mu_){};

  // Serializes writers: WAL order is head order.
  Mutex write_mu_;
  std::vector<int8_t> kinds_ KILN_GUARDED_BY(write_mu_);  // by id; kNoSeries for gaps

  mutable Mutex mu_;
  std::vector<std::unique_ptr<SeriesState>> series_ KILN_GUARDED_BY(mu_);  // by id
  std::map<std::string, SeriesId, std::less<>> by_path_ KILN_GUARDED_BY(mu_);
  std::vector<PendingRow> pending_rows_ KILN_GUARDED_BY(mu_);  // not yet in the database
  std::vector<SeriesId> full_ KILN_GUARDED_BY(mu_);
  HistorianStats stats_ KILN_GUARDED_BY(mu_);
  bool stop_ KILN_GUARDED_BY(mu_) = false;
  bool maint_requested_ KILN_GUARDED_BY(mu_) = false;
  CondVar maint_cv_;
  CondVar stop_cv_;

  // Reader connections not in use.
  mutable Mutex pool_mu_;
  mutable CondVar pool_cv_;
  mutable std::vector<std::unique_ptr<Reader>> pool_ KILN_GUARDED_BY(pool_mu_);
  mutable size_t readers_open_ KILN_GUARDED_BY(pool_mu_) = 0;

  std::unique_ptr<SystemClock> own_clock;
  std::unique_ptr<StderrSink> own_sink;
  std::jthread sync_thread_;
  std::jthread maint_thread_;
};

// ---------------------------------------------------------------------------------------
// Reader pool.

class Historian::Impl::Lease {
 public:
  Lease(const Impl& impl, std::unique_ptr<Reader> r) : impl_(&impl), r_(std::move(r)) {}
  Lease(Lease&& o) noexcept : impl_(o.impl_), r_(std::move(o.r_)) {}
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (r_) impl_->ReleaseReader(std::move(r_));
  }
  Reader& operator*() const { return *r_; }
  Reader* operator->() const { return r_.get(); }

 private:
  const Impl* impl_;
  std::unique_ptr<Reader> r_;
};

Result<std::unique_ptr<Reader>> Historian::Impl::OpenReader() const {
  auto r = std::make_unique<Reader>();
  KILN_ASSIGN_OR_RETURN(r->db, SqliteDb::Open(db_path, SqliteDb::Mode::kReadOnly));
  KILN_ASSIGN_OR_RETURN(r->range, r->db->Prepare(kRangeSql));
  KILN_ASSIGN_OR_RETURN(r->desc, r->db->Prepare(kDescSql));
  return r;
}

Result<Historian::Impl::Lease> Historian::Impl::AcquireReader() const {
  {
    MutexLock l(pool_mu_);
    while (pool_.empty() && readers_open_ >= kMaxReaders) pool_cv_.Wait(l);
    if (!pool_.empty()) {
      std::unique_ptr<Reader> r = std::move(pool_.back());
      pool_.pop_back();
      return Lease(*this, std::move(r));
    }
    ++readers_open_;
  }
  Result<std::unique_ptr<Reader>> r = OpenReader();
  if (!r.ok()) {
    MutexLock l(pool_mu_);
    --readers_open_;
    pool_cv_.NotifyOne();
    return r.status();
  }
  return Lease(*this, std::move(*r));
}

void Historian::Impl::ReleaseReader(std::unique_ptr<Reader> r) const {
  // Large scratch from a big query is not kept.
  if (r->buf.capacity() > (size_t{1} << 20)) r->buf = {};
  if (r->mem.capacity() > (size_t{1} << 20)) r->mem = {};
  if (r->mem2.capacity() > (size_t{1} << 20)) r->mem2 = {};
  r->tbuf.clear();
  r->tmem.clear();
  r->tmem2.clear();
  MutexLock l(pool_mu_);
  pool_.push_back(std::move(r));
  pool_cv_.NotifyOne();
}

// ---------------------------------------------------------------------------------------
// Open.

Status Historian::Impl::OpenDatabase() {
  MutexLock dl(db_mu_);
  KILN_ASSIGN_OR_RETURN(db_, SqliteDb::Open(db_path, SqliteDb::Mode::kReadWrite));
  // page_size only matters for a new database; it must precede journal_mode=WAL.
  KILN_RETURN_IF_ERROR(db_->Exec(fmt::format("PRAGMA page_size = {}", kPageSize)));
  KILN_RETURN_IF_ERROR(db_->Exec("PRAGMA journal_mode = WAL"));
  // Every commit of this connection is a sealing round (or retention, or open) and must be
  // durable before WAL segments are deleted.
  KILN_RETURN_IF_ERROR(db_->Exec("PRAGMA synchronous = FULL"));
  // A large sealing round grows SQLite's log; cut it back after each checkpoint.
  KILN_RETURN_IF_ERROR(db_->Exec("PRAGMA journal_size_limit = 4194304"));
  {
    KILN_ASSIGN_OR_RETURN(auto app, db_->Prepare("PRAGMA application_id"));
    KILN_ASSIGN_OR_RETURN(const bool row, app->Step());
    const int64_t id = row ? app->ColumnInt64(0) : 0;
    if (id != 0 && id != kApplicationId) {
      return FailedPreconditionError(
          fmt::format("{}: not a historian database (application_id {:#x})", db_path, id));
    }
  }
  KILN_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  Status st = db_->Exec(kSchemaSql);
  if (st.ok()) st = db_->Exec(fmt::format("PRAGMA application_id = {}", kApplicationId));
  if (st.ok()) st = db_->Exec("COMMIT");
  if (!st.ok()) {
    db_->Exec("ROLLBACK").IgnoreError();
    return st;
  }
  KILN_ASSIGN_OR_RETURN(auto ver,
                        db_->Prepare("SELECT value FROM meta WHERE key = 'format_version'"));
  KILN_ASSIGN_OR_RETURN(const bool row, ver->Step());
  const int64_t version = row ? ver->ColumnInt64(0) : 0;
  if (version != kFormatVersion) {
    return FailedPreconditionError(fmt::format("{}: format version {}; this build reads version {}",
                                               db_path, version, kFormatVersion));
  }
  ver.reset();
  KILN_ASSIGN_OR_RETURN(merge_select_, db_->Prepare(kMergeSelectSql));
  KILN_ASSIGN_OR_RETURN(insert_chunk_, db_->Prepare(kInsertChunkSql));
  KILN_ASSIGN_OR_RETURN(delete_chunk_, db_->Prepare(kDeleteChunkSql));
  KILN_ASSIGN_OR_RETURN(insert_series_, db_->Prepare(kInsertSeriesSql));
  KILN_ASSIGN_OR_RETURN(retire_, db_->Prepare(kRetireSql));
  KILN_ASSIGN_OR_RETURN(desc_, db_->Prepare(kDescSql));
  KILN_ASSIGN_OR_RETURN(auto counts,
                        db_->Prepare("SELECT count(*), coalesce(sum(count), 0) FROM chunks"));
  KILN_ASSIGN_OR_RETURN(const bool crow, counts->Step());
  MutexLock l(mu_);
  if (crow) {
    stats_.chunks = static_cast<uint64_t>(counts->ColumnInt64(0));
    stats_.chunk_points = static_cast<uint64_t>(counts->ColumnInt64(1));
  }
  return OkStatus();
}

Status Historian::Impl::LoadSeries() {
  MutexLock dl(db_mu_);
  KILN_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT id, path, kind FROM series ORDER BY id"));
  MutexLock wl(write_mu_);
  MutexLock l(mu_);
  series_.resize(1);
  kinds_.assign(1, kNoSeries);
  while (true) {
    KILN_ASSIGN_OR_RETURN(const bool row, q->Step());
    if (!row) break;
    const int64_t id = q->ColumnInt64(0);
    const int64_t kind = q->ColumnInt64(2);
    if (id <= 0 || static_cast<uint64_t>(id) > kMaxSeriesId || kind < 0 || kind > 1) {
      return DataLossError(fmt::format("{}: bad series row (id {}, kind {})", db_path, id, kind));
    }
    auto s = std::make_unique<SeriesState>();
    s->id = static_cast<SeriesId>(id);
    s->path = std::string(q->ColumnText(1));
    s->kind = static_cast<SeriesKind>(kind);
    if (series_.size() <= static_cast<size_t>(id)) {
      series_.resize(static_cast<size_t>(id) + 1);
      kinds_.resize(static_cast<size_t>(id) + 1, kNoSeries);
    }
    kinds_[static_cast<size_t>(id)] = static_cast<int8_t>(kind);
    by_path_[s->path] = s->id;
    series_[static_cast<size_t>(id)] = std::move(s);
  }
  return OkStatus();
}

bool Historian::Impl::AddSeriesFromWalLocked(SeriesId id, SeriesKind kind, const std::string& path,
                                             uint64_t seq) {
  if (id < series_.size() && series_[id]) {
    if (series_[id]->path != path || series_[id]->kind != kind) {
      log.Error("WAL segment {}: series {} is \"{}\" there but \"{}\" in the database; ignored",
                seq, id, path, series_[id]->path);
    }
    return false;
  }
  if (auto it = by_path_.find(path); it != by_path_.end()) {
    log.Error("WAL segment {}: series \"{}\" has id {} there but {} in the database; ignored", seq,
              path, id, it->second);
    return false;
  }
  if (id > kMaxSeriesId) {
    log.Error("WAL segment {}: series \"{}\" has an implausible id {}; ignored", seq, path, id);
    return false;
  }
  if (series_.size() <= id) {
    series_.resize(size_t{id} + 1);
    kinds_.resize(size_t{id} + 1, kNoSeries);
  }
  auto s = std::make_unique<SeriesState>();
  s->id = id;
  s->path = path;
  s->kind = kind;
  series_[id] = std::move(s);
  kinds_[id] = static_cast<int8_t>(kind);
  by_path_[path] = id;
  return true;
}

Status Historian::Impl::Replay() {
  KILN_RETURN_IF_ERROR(env.CreateDir(wal_dir));
  const MonoTime now = clock.Monotonic();
  std::vector<PendingRow> rows;
  std::map<SeriesId, uint64_t> skipped;  // unknown or wrong-kind series -> points
  uint64_t replayed = 0;
  MutexLock wl(write_mu_);
  auto on_record = [&](uint64_t seq, WalRecordType type, std::span<const uint8_t> payload)
                       KILN_REQUIRES(write_mu_) -> Status {
    switch (type) {
      case WalRecordType::kSeries: {
        SeriesId id;
        SeriesKind kind;
        std::string path;
        if (!internal::ParseSeriesRecord(payload, id, kind, path)) {
          log.Error("WAL segment {}: malformed series record skipped", seq);
          return OkStatus();
        }
        MutexLock l(mu_);
        if (AddSeriesFromWalLocked(id, kind, path, seq)) rows.push_back(PendingRow{id, seq});
        return OkStatus();
      }
      case WalRecordType::kPoints: {
        internal::WalPointReader reader(payload);
        PointWrite w;
        MutexLock l(mu_);
        SeriesState* s = nullptr;
        while (reader.Next(w)) {
          if (s == nullptr || s->id != w.series) {
            s = w.series < series_.size() ? series_[w.series].get() : nullptr;
            if (s != nullptr && s->kind != SeriesKind::kNumeric) s = nullptr;
          }
          if (s == nullptr) {
            ++skipped[w.series];
            continue;
          }
          InsertLocked(*s, w.point, seq, now, /*count_dups=*/false);
          ++replayed;
        }
        if (!reader.ok() || reader.malformed()) {
          log.Error(
              "WAL segment {}: malformed points record (intact checksum); the rest of "
              "it is skipped",
              seq);
          stats_.wal_corrupt_bytes += payload.size();
        }
        return OkStatus();
      }
      case WalRecordType::kText: {
        SeriesId id;
        TextPoint p;
        if (!internal::ParseTextRecord(payload, id, p)) {
          log.Error("WAL segment {}: malformed text record skipped", seq);
          return OkStatus();
        }
        MutexLock l(mu_);
        SeriesState* s = id < series_.size() ? series_[id].get() : nullptr;
        if (s == nullptr || s->kind != SeriesKind::kText) {
          ++skipped[id];
          return OkStatus();
        }
        InsertLocked(*s, p, seq, now, /*count_dups=*/false);
        ++replayed;
        return OkStatus();
      }
    }
    return OkStatus();
  };
  KILN_ASSIGN_OR_RETURN(internal::WalReplayResult rr,
                        internal::ReplayWal(env, wal_dir, log, on_record));
  uint64_t skipped_points = 0;
  for (const auto& [id, n] : skipped) {
    log.Error("WAL: {} points of unknown series {} (or of the wrong kind) skipped", n, id);
    skipped_points += n;
  }
  if (rr.records > 0) {
    log.Info("{}: replayed {} WAL records ({} points) from {} segments", wal_dir, rr.records,
             replayed, rr.segments.size());
  }
  KILN_ASSIGN_OR_RETURN(wal, WalWriter::Create(env, wal_dir, rr.max_seq + 1, rr.segments,
                                               opts.wal_segment_bytes, log));
  MutexLock l(mu_);
  stats_.replayed_points = replayed;
  stats_.wal_corrupt_bytes += rr.corrupt_bytes;
  stats_.wal_skipped_points = skipped_points;
  // Series found only in the WAL get their rows at the next sealing round.
  pending_rows_ = std::move(rows);
  // Segments below every pin hold nothing a head or a pending row needs (an empty segment
  // of the last run, typically).
  Status rm = wal->RemoveBelow(MinPinLocked());
  if (!rm.ok()) log.Warn("removing old WAL segments: {}", rm.ToString());
  return OkStatus();
}

template <typename T>
Status Historian::Impl::InitLatestOf(SeriesState& s, std::vector<T>& mem, std::vector<T>& buf) {
  Mem<T>& m = MemOf<T>(s);
  mem = m.head;
  SortDedupe(mem, m.sorted);
  for (const bool good : {false, true}) {
    std::optional<T>& latest = good ? m.latest_good : m.latest;
    Result<std::optional<T>> r = LatestOf(*desc_, buf, s.id, good, mem);
    if (r.ok()) {
      latest = std::move(*r);
      continue;
    }
    if (r.status().code() != StatusCode::kDataLoss) return r.status();
    // A damaged chunk: the series stays usable; its latest point comes from memory.
    log.Error("series {} (\"{}\"): looking up its latest point: {}; using the points in memory",
              s.id, s.path, r.status().ToString());
    latest.reset();
    for (auto it = mem.rbegin(); it != mem.rend(); ++it) {
      if (Passes(*it, good)) {
        latest = *it;
        break;
      }
    }
  }
  return OkStatus();
}

Status Historian::Impl::InitLatest() {
  MutexLock dl(db_mu_);
  std::vector<Point> mem, buf;
  std::vector<TextPoint> tmem, tbuf;
  MutexLock l(mu_);
  for (auto& sp : series_) {
    if (!sp) continue;
    if (sp->kind == SeriesKind::kNumeric) {
      KILN_RETURN_IF_ERROR(InitLatestOf(*sp, mem, buf));
    } else {
      KILN_RETURN_IF_ERROR(InitLatestOf(*sp, tmem, tbuf));
    }
  }
  return OkStatus();
}

void Historian::Impl::StartThreads() {
  {
    MutexLock l(mu_);
    if (!full_.empty()) RequestMaintenanceLocked();
  }
  if (!opts.background) return;
  if (opts.wal_sync == WalSync::kInterval) sync_thread_ = std::jthread([this] { SyncLoop(); });
  maint_thread_ = std::jthread([this] { MaintenanceLoop(); });
}

void Historian::Impl::Shutdown() {
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  stop_cv_.NotifyAll();
  maint_cv_.NotifyAll();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (maint_thread_.joinable()) maint_thread_.join();
  if (wal && opts.wal_sync != WalSync::kNever) {
    Status st = wal->SyncAll();
    if (!st.ok()) log.Error("WAL sync at close failed: {}", st.ToString());
  }
  {
    MutexLock l(pool_mu_);
    pool_.clear();
  }
  MutexLock dl(db_mu_);
  merge_select_.reset();
  insert_chunk_.reset();
  delete_chunk_.reset();
  insert_series_.reset();
  retire_.reset();
  desc_.reset();
  db_.reset();
}

// ---------------------------------------------------------------------------------------
// Writing.

Result<SeriesId> Historian::Impl::GetOrCreateSeries(std::string_view path, SeriesKind kind) {
  if (path.empty()) return InvalidArgumentError("series path is empty");
  if (kind != SeriesKind::kNumeric && kind != SeriesKind::kText) {
    return InvalidArgumentError(
        fmt::format("series \"{}\": bad kind {}", path, static_cast<int>(kind)));
  }
  auto found = [&]() KILN_REQUIRES(mu_) -> std::optional<Result<SeriesId>> {
    auto it = by_path_.find(path);
    if (it == by_path_.end()) return std::nullopt;
    const SeriesState& s = *series_[it->second];
    if (s.kind != kind) {
      return Result<SeriesId>(FailedPreconditionError(fmt::format(
          "series \"{}\" is {}, not {}", path, s.kind == SeriesKind::kText ? "text" : "numeric",
          kind == SeriesKind::kText ? "text" : "numeric")));
    }
    return Result<SeriesId>(s.id);
  };
  {
    MutexLock l(mu_);
    if (auto r = found()) return *r;
  }
  MutexLock wl(write_mu_);
  {
    MutexLock l(mu_);
    if (auto r = found()) return *r;
  }
  if (kinds_.size() > std::numeric_limits<SeriesId>::max()) {
    return ResourceExhaustedError("no series id left");
  }
  const SeriesId id = static_cast<SeriesId>(kinds_.size());
  thread_local WalRecordBuilder b;
  b.Clear();
  b.AddSeries(id, kind, path);
  Status st = wal->Append(b.bytes());
  if (!st.ok()) {
    MutexLock l(mu_);
    ++stats_.write_errors;
    return st.WithContext(fmt::format("creating series \"{}\"", path));
  }
  const uint64_t seq = wal->current_seq();
  kinds_.push_back(static_cast<int8_t>(kind));
  MutexLock l(mu_);
  auto s = std::make_unique<SeriesState>();
  s->id = id;
  s->path = std::string(path);
  s->kind = kind;
  by_path_[s->path] = id;
  series_.resize(size_t{id} + 1);
  series_[id] = std::move(s);
  pending_rows_.push_back(PendingRow{id, seq});
  ++stats_.series;
  return id;
}

Status Historian::Impl::ValidateLocked(SeriesId id, SeriesKind kind) const {
  if (id == 0 || id >= kinds_.size() || kinds_[id] == kNoSeries) {
    return NotFoundError(fmt::format("unknown series id {}", id));
  }
  if (kinds_[id] != static_cast<int8_t>(kind)) {
    return FailedPreconditionError(
        fmt::format("series {} is {}", id,
                    kind == SeriesKind::kText ? "numeric, not text" : "text, not numeric"));
  }
  return OkStatus();
}

template <typename T>
void Historian::Impl::InsertLocked(SeriesState& s, const T& p, uint64_t seq, MonoTime now,
                                   bool count_dups) {
  if (p.is_null && !IsCanonicalNull(p)) {
    InsertLocked(s, Canonical(p), seq, now, count_dups);
    return;
  }
  Mem<T>& m = MemOf<T>(s);
  ++s.epoch;
  // Latest: the greatest time; a point with the same time replaces it.
  if (!m.latest || p.t >= m.latest->t) m.latest = p;
  if (Passes(p, true)) {
    if (m.latest_good_valid && (!m.latest_good || p.t >= m.latest_good->t)) m.latest_good = p;
  } else if (m.latest_good && p.t == m.latest_good->t) {
    m.latest_good_valid = false;
  }
  if (m.head.empty()) {
    m.pin = seq;
    m.since = now;
    m.sorted = true;
    m.head.push_back(p);
    ++stats_.head_points;
  } else if (T& back = m.head.back(); p.t > back.t) {
    m.head.push_back(p);
    ++stats_.head_points;
  } else if (p.t == back.t) {
    if (count_dups && Same(p, back)) ++stats_.duplicates;
    back = p;
  } else {
    m.head.push_back(p);
    m.sorted = false;
    ++stats_.head_points;
  }
  if (m.head.size() >= opts.chunk_points && !s.queued_full) {
    s.queued_full = true;
    full_.push_back(s.id);
  }
}

void Historian::Impl::AfterWrite(uint64_t lsn, bool want_seal, Status& st) {
  if (opts.wal_sync == WalSync::kAlways) {
    Status s = wal->SyncTo(lsn);
    if (!s.ok()) {
      {
        MutexLock l(mu_);
        ++stats_.write_errors;
      }
      KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "sync", "WAL sync failed: {}",
                            s.ToString());
      st = s;
    }
  }
  if (!want_seal) return;
  if (opts.background) {
    MutexLock l(mu_);
    RequestMaintenanceLocked();
  } else {
    // The points are stored either way: a failed round is counted, logged and retried, not
    // an error of this Append.
    SealRound(SealMode::kFull).IgnoreError();
  }
}

Status Historian::Impl::AppendPoints(std::span<const PointWrite> points) {
  if (points.empty()) return OkStatus();
  // Encoding needs no lock; one builder per thread keeps its buffer.
  thread_local WalRecordBuilder b;
  b.Clear();
  b.AddPoints(points);
  uint64_t lsn;
  bool want_seal;
  {
    MutexLock wl(write_mu_);
    for (const PointWrite& w : points) {
      if (w.series >= kinds_.size() || kinds_[w.series] != 0) {
        KILN_RETURN_IF_ERROR(ValidateLocked(w.series, SeriesKind::kNumeric));
      }
    }
    Status st = wal->Append(b.bytes());
    if (!st.ok()) {
      {
        MutexLock l(mu_);
        ++stats_.write_errors;
      }
      KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "append",
                            "WAL append of {} points failed: {}", points.size(), st.ToString());
      return st;
    }
    lsn = wal->written_lsn();
    const uint64_t seq = wal->current_seq();
    const MonoTime now = clock.Monotonic();
    MutexLock l(mu_);
    SeriesState* s = nullptr;
    for (const PointWrite& w : points) {
      if (s == nullptr || s->id != w.series) s = series_[w.series].get();
      InsertLocked(*s, w.point, seq, now, /*count_dups=*/true);
    }
    stats_.points_written += points.size();
    want_seal = !full_.empty();
  }
  Status st;
  AfterWrite(lsn, want_seal, st);
  return st;
}

Status Historian::Impl::AppendTextPoint(SeriesId series, const TextPoint& point) {
  thread_local WalRecordBuilder b;
  b.Clear();
  b.AddText(series, point);
  uint64_t lsn;
  bool want_seal;
  {
    MutexLock wl(write_mu_);
    KILN_RETURN_IF_ERROR(ValidateLocked(series, SeriesKind::kText));
    Status st = wal->Append(b.bytes());
    if (!st.ok()) {
      {
        MutexLock l(mu_);
        ++stats_.write_errors;
      }
      KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "append",
                            "WAL append of a text point failed: {}", st.ToString());
      return st;
    }
    lsn = wal->written_lsn();
    const uint64_t seq = wal->current_seq();
    MutexLock l(mu_);
    InsertLocked(*series_[series], point, seq, clock.Monotonic(), /*count_dups=*/true);
    ++stats_.points_written;
    want_seal = !full_.empty();
  }
  Status st;
  AfterWrite(lsn, want_seal, st);
  return st;
}

// ---------------------------------------------------------------------------------------
// Sealing.

template <typename T>
void Historian::Impl::PickLocked(SeriesState& s, std::vector<Job>& jobs) {
  Mem<T>& m = MemOf<T>(s);
  Job job;
  job.id = s.id;
  job.kind = s.kind;
  job.sorted = m.sorted;
  auto snap = std::make_shared<const std::vector<T>>(std::move(m.head));
  m.head = {};
  if constexpr (std::is_same_v<T, Point>) {
    job.num = snap;
  } else {
    job.text = snap;
  }
  m.sealing = std::move(snap);
  m.sealing_sorted = m.sorted;
  m.sealing_pin = m.pin;
  m.pin = 0;
  m.sorted = true;
  jobs.push_back(std::move(job));
}

template <typename T>
void Historian::Impl::RestoreLocked(SeriesState& s) {
  Mem<T>& m = MemOf<T>(s);
  if (!m.sealing) return;
  // The snapshot is older than whatever the head received since.
  std::vector<T> head(m.sealing->begin(), m.sealing->end());
  const bool sorted = m.sealing_sorted && m.sorted &&
                      (m.head.empty() || head.empty() || head.back().t < m.head.front().t);
  head.insert(head.end(), std::make_move_iterator(m.head.begin()),
              std::make_move_iterator(m.head.end()));
  m.head = std::move(head);
  m.sorted = sorted;
  m.pin = m.pin == 0 ? m.sealing_pin : std::min(m.pin, m.sealing_pin);
  m.sealing.reset();
  m.sealing_pin = 0;
}

uint64_t Historian::Impl::MinPinLocked() const {
  uint64_t pin = wal->current_seq();
  for (const auto& sp : series_) {
    if (!sp) continue;
    for (uint64_t p : {sp->num.pin, sp->num.sealing_pin, sp->text.pin, sp->text.sealing_pin}) {
      if (p != 0) pin = std::min(pin, p);
    }
  }
  for (const PendingRow& r : pending_rows_) pin = std::min(pin, r.pin);
  return pin;
}

Status Historian::Impl::SealRound(SealMode mode) {
  MutexLock dl(db_mu_);
  if (!db_) return FailedPreconditionError("historian is closed");
  if (mode == SealMode::kAll) {
    // A new segment, so that every older one can go once the heads are sealed.
    MutexLock wl(write_mu_);
    if (!wal->current_empty()) {
      Result<uint64_t> r = wal->Rotate();
      if (!r.ok()) {
        MutexLock l(mu_);
        ++stats_.write_errors;
        return r.status();
      }
    }
  }
  // With too much WAL, heads pinning the oldest segments go early (down to half the budget).
  uint64_t pressure_below = 0;
  if (mode == SealMode::kDue && wal->total_bytes() > opts.wal_max_bytes) {
    pressure_below = wal->SeqWithin(opts.wal_max_bytes / 2);
  }
  const MonoTime now = clock.Monotonic();
  std::vector<Job> jobs;
  std::vector<PendingRow> rows;
  bool removable;
  {
    MutexLock l(mu_);
    rows.swap(pending_rows_);
    auto consider = [&](SeriesState& s) KILN_REQUIRES(mu_) {
      auto due = [&](const auto& m) {
        if (m.head.empty() || m.sealing) return false;
        return mode == SealMode::kAll || m.head.size() >= opts.chunk_points ||
               (mode == SealMode::kDue && (now - m.since >= opts.seal_age ||
                                           (pressure_below != 0 && m.pin < pressure_below)));
      };
      if (s.kind == SeriesKind::kNumeric) {
        if (due(s.num)) PickLocked<Point>(s, jobs);
      } else {
        if (due(s.text)) PickLocked<TextPoint>(s, jobs);
      }
      s.queued_full = false;
    };
    if (mode == SealMode::kFull) {
      for (SeriesId id : full_) consider(*series_[id]);
    } else {
      for (auto& sp : series_) {
        if (sp) consider(*sp);
      }
    }
    full_.clear();
    removable = MinPinLocked() > wal->oldest_seq();
  }
  if (jobs.empty() && rows.empty() && !removable) return OkStatus();

  Delta delta;
  Status st = CommitRound(jobs, rows, delta);
  uint64_t min_pin;
  {
    MutexLock l(mu_);
    for (const Job& job : jobs) {
      SeriesState& s = *series_[job.id];
      if (st.ok()) {
        const size_t n = job.num ? job.num->size() : job.text->size();
        stats_.head_points -= std::min<uint64_t>(stats_.head_points, n);
        if (job.num) {
          s.num.sealing.reset();
          s.num.sealing_pin = 0;
        } else {
          s.text.sealing.reset();
          s.text.sealing_pin = 0;
        }
      } else if (job.num) {
        RestoreLocked<Point>(s);
      } else {
        RestoreLocked<TextPoint>(s);
      }
    }
    if (st.ok()) {
      stats_.chunks = static_cast<uint64_t>(static_cast<int64_t>(stats_.chunks) + delta.chunks);
      stats_.chunk_points =
          static_cast<uint64_t>(static_cast<int64_t>(stats_.chunk_points) + delta.chunk_points);
      stats_.duplicates += delta.duplicates;
      stats_.merged_chunks += delta.merged;
      stats_.expired_points += delta.expired;
      stats_.corrupt_chunks += delta.corrupt;
      ++stats_.seal_rounds;
    } else {
      ++stats_.write_errors;
      pending_rows_.insert(pending_rows_.begin(), rows.begin(), rows.end());
    }
    min_pin = MinPinLocked();
  }
  if (!st.ok()) {
    KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "seal",
                          "sealing {} heads failed (they stay in memory and the WAL): {}",
                          jobs.size(), st.ToString());
    return st;
  }
  // The commit is durable: the WAL segments no head needs any more can go.
  Status rm = wal->RemoveBelow(min_pin);
  if (!rm.ok()) log.Warn("removing old WAL segments: {}", rm.ToString());
  return OkStatus();
}

Status Historian::Impl::CommitRound(const std::vector<Job>& jobs,
                                    const std::vector<PendingRow>& rows, Delta& delta) {
  KILN_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  Status st;
  for (const PendingRow& row : rows) {
    std::string path;
    SeriesKind kind;
    {
      MutexLock l(mu_);
      path = series_[row.id]->path;
      kind = series_[row.id]->kind;
    }
    insert_series_->BindInt64(1, row.id);
    insert_series_->BindText(2, path);
    insert_series_->BindInt64(3, static_cast<int64_t>(kind));
    st = insert_series_->Run();
    if (!st.ok()) break;
  }
  for (size_t i = 0; st.ok() && i < jobs.size(); ++i) {
    const Job& job = jobs[i];
    st = job.num ? SealJob<Point>(job.id, *job.num, job.sorted, delta)
                 : SealJob<TextPoint>(job.id, *job.text, job.sorted, delta);
  }
  // Also makes earlier commits of this connection durable (those at open).
  if (st.ok()) st = db_->Exec("COMMIT");
  if (!st.ok()) {
    db_->Exec("ROLLBACK").IgnoreError();
    delta = Delta();
  }
  return st;
}

template <typename T>
Status Historian::Impl::SealJob(SeriesId id, const std::vector<T>& snapshot, bool sorted,
                                Delta& delta) {
  std::vector<T>* pts_p;
  std::vector<T>* old_p;
  std::vector<T>* merged_p;
  if constexpr (std::is_same_v<T, Point>) {
    pts_p = &s_pts_;
    old_p = &s_old_;
    merged_p = &s_merged_;
  } else {
    pts_p = &s_tpts_;
    old_p = &s_told_;
    merged_p = &s_tmerged_;
  }
  std::vector<T>& pts = *pts_p;
  std::vector<T>& old = *old_p;
  std::vector<T>& merged = *merged_p;
  pts.assign(snapshot.begin(), snapshot.end());
  delta.duplicates += SortDedupe(pts, sorted);
  if (opts.retention.count() > 0) {
    const int64_t cutoff = ToEpochMillis(clock.Now()) - opts.retention.count();
    auto keep = std::lower_bound(pts.begin(), pts.end(), cutoff,
                                 [](const T& p, int64_t t) { return p.t < t; });
    delta.expired += static_cast<uint64_t>(keep - pts.begin());
    pts.erase(pts.begin(), keep);
  }
  if (pts.empty()) return OkStatus();
  const int64_t a = pts.front().t;
  const int64_t b = pts.back().t;

  // The chunks to rewrite: those overlapping [a, b], and the one just before when it is small
  // (so that a slowly written series does not end up as many tiny chunks).
  struct Old {
    int64_t t_min;
    int64_t count;
  };
  std::vector<Old> rewrite;
  std::vector<Old> corrupt;
  old.clear();
  {
    SqliteStmt& sel = *merge_select_;
    ResetOnExit reset(sel);
    sel.BindInt64(1, id);
    sel.BindInt64(2, a);
    sel.BindInt64(3, b);
    while (true) {
      KILN_ASSIGN_OR_RETURN(const bool row, sel.Step());
      if (!row) break;
      const int64_t t_min = sel.ColumnInt64(0);
      const int64_t t_max = sel.ColumnInt64(1);
      const int64_t count = sel.ColumnInt64(2);
      if (t_max < a && (static_cast<uint64_t>(count) >= opts.chunk_points / 2 ||
                        (opts.retention.count() > 0 && b - t_min > opts.retention.count() / 8))) {
        // Not overlapping, and large enough (or extending it would keep its old points much
        // longer than the retention).
        continue;
      }
      const size_t before = old.size();
      Status s = Decode(sel.ColumnBlob(3), old);
      if (!s.ok()) {
        old.resize(before);
        log.Error(
            "{}: series {}: chunk at t_min {} ({} points) does not decode ({}); moved to "
            "table corrupt_chunks",
            db_path, id, t_min, count, s.ToString());
        corrupt.push_back(Old{t_min, count});
        continue;
      }
      rewrite.push_back(Old{t_min, count});
    }
  }
  if (!corrupt.empty() && !quarantine_ready_) {
    KILN_RETURN_IF_ERROR(db_->Exec(
        "CREATE TABLE IF NOT EXISTS corrupt_chunks(series INTEGER NOT NULL, t_min INTEGER NOT "
        "NULL, t_max INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY "
        "KEY(series, t_min)) WITHOUT ROWID"));
    quarantine_ready_ = true;
  }
  for (const Old& o : corrupt) {
    KILN_ASSIGN_OR_RETURN(auto q, db_->Prepare(kQuarantineChunkSql));
    q->BindInt64(1, id);
    q->BindInt64(2, o.t_min);
    KILN_RETURN_IF_ERROR(q->Run());
    delete_chunk_->BindInt64(1, id);
    delete_chunk_->BindInt64(2, o.t_min);
    KILN_RETURN_IF_ERROR(delete_chunk_->Run());
    --delta.chunks;
    delta.chunk_points -= o.count;
    ++delta.corrupt;
  }
  if (rewrite.empty()) return WritePieces(id, pts, delta);
  for (const Old& o : rewrite) {
    delete_chunk_->BindInt64(1, id);
    delete_chunk_->BindInt64(2, o.t_min);
    KILN_RETURN_IF_ERROR(delete_chunk_->Run());
    --delta.chunks;
    delta.chunk_points -= o.count;
    ++delta.merged;
  }
  // Chunks never overlap and come in order, so `old` is sorted unless the file was damaged.
  if (!SortedUnique(old)) SortDedupe(old, false);
  delta.duplicates += MergeInto(old, pts, merged);
  return WritePieces(id, merged, delta);
}

template <typename T>
Status Historian::Impl::WritePieces(SeriesId id, const std::vector<T>& pts, Delta& delta) {
  const size_t n = pts.size();
  const size_t cp = std::max<size_t>(opts.chunk_points, 1);
  // Up to a quarter over chunk_points stays one chunk; larger runs split evenly.
  const size_t pieces = n <= cp + cp / 4 ? 1 : (n + cp - 1) / cp;
  for (size_t k = 0; k < pieces; ++k) {
    const size_t begin = n * k / pieces;
    const size_t end = n * (k + 1) / pieces;
    const std::span<const T> piece(pts.data() + begin, end - begin);
    Encode(piece, s_blob_);
    insert_chunk_->BindInt64(1, id);
    insert_chunk_->BindInt64(2, piece.front().t);
    insert_chunk_->BindInt64(3, piece.back().t);
    insert_chunk_->BindInt64(4, static_cast<int64_t>(piece.size()));
    insert_chunk_->BindBlob(5, s_blob_);
    KILN_RETURN_IF_ERROR(insert_chunk_->Run());
    ++delta.chunks;
    delta.chunk_points += static_cast<int64_t>(piece.size());
  }
  return OkStatus();
}

Status Historian::Impl::Retention() {
  if (opts.retention.count() <= 0) return OkStatus();
  const int64_t cutoff = ToEpochMillis(clock.Now()) - opts.retention.count();
  std::vector<SeriesId> ids;
  {
    MutexLock l(mu_);
    for (const auto& sp : series_) {
      if (sp) ids.push_back(sp->id);
    }
  }
  MutexLock dl(db_mu_);
  if (!db_) return FailedPreconditionError("historian is closed");
  uint64_t chunks = 0, points = 0;
  Status st = db_->Exec("BEGIN IMMEDIATE");
  for (size_t i = 0; st.ok() && i < ids.size(); ++i) {
    ResetOnExit reset(*retire_);
    retire_->BindInt64(1, ids[i]);
    retire_->BindInt64(2, cutoff);
    while (true) {
      Result<bool> row = retire_->Step();
      if (!row.ok()) {
        st = row.status();
        break;
      }
      if (!*row) break;
      ++chunks;
      points += static_cast<uint64_t>(retire_->ColumnInt64(0));
    }
  }
  if (st.ok()) st = db_->Exec("COMMIT");
  if (!st.ok()) db_->Exec("ROLLBACK").IgnoreError();
  MutexLock l(mu_);
  if (!st.ok()) {
    ++stats_.write_errors;
    KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "retention", "retention failed: {}",
                          st.ToString());
    return st;
  }
  stats_.chunks -= std::min(stats_.chunks, chunks);
  stats_.chunk_points -= std::min(stats_.chunk_points, points);
  stats_.retired_chunks += chunks;
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// Reading.

template <typename T>
Result<SeriesState*> Historian::Impl::CheckSeriesLocked(SeriesId id) const {
  if (id == 0 || id >= series_.size() || !series_[id]) {
    return NotFoundError(fmt::format("unknown series id {}", id));
  }
  SeriesState* s = series_[id].get();
  if (s->kind != KindOf<T>()) {
    return FailedPreconditionError(fmt::format("series {} (\"{}\") is {}", id, s->path,
                                               s->kind == SeriesKind::kText ? "text" : "numeric"));
  }
  return s;
}

template <typename T>
void Historian::Impl::CopyMemLocked(SeriesState& s, int64_t from, int64_t to, bool all,
                                    Reader& r) const {
  const Mem<T>& m = MemOf<T>(s);
  auto copy = [&](const std::vector<T>& v, bool sorted, std::vector<T>& out) {
    if (all) {
      out.insert(out.end(), v.begin(), v.end());
    } else {
      CopyRange(v, sorted, from, to, out);
    }
    SortDedupe(out, sorted);
  };
  std::vector<T>& out = r.MemBuf<T>();
  out.clear();
  if (m.sealing) copy(*m.sealing, m.sealing_sorted, out);
  if (out.empty()) {
    copy(m.head, m.sorted, out);
    return;
  }
  std::vector<T>& head = r.MemBuf2<T>();
  head.clear();
  copy(m.head, m.sorted, head);
  if (head.empty()) return;
  std::vector<T> merged;
  MergeInto(out, head, merged);
  out.swap(merged);
}

template <typename T, typename Visit>
Status Historian::Impl::Scan(SeriesId id, int64_t from, int64_t to, Visit&& visit) const {
  KILN_ASSIGN_OR_RETURN(Lease r, AcquireReader());
  {
    MutexLock l(mu_);
    KILN_ASSIGN_OR_RETURN(SeriesState * s, CheckSeriesLocked<T>(id));
    if (from >= to) return OkStatus();
    CopyMemLocked<T>(*s, from, to, /*all=*/false, *r);
  }
  // After the copy: a round committing now is seen in the chunks.
  return ScanMerged<T>(*r, id, from, to, r->MemBuf<T>(), visit);
}

template <typename T>
std::optional<T> Historian::Impl::LatestPoint(SeriesId id, bool good_only) const {
  {
    MutexLock l(mu_);
    if (!CheckSeriesLocked<T>(id).ok()) return std::nullopt;
    const Mem<T>& m = MemOf<T>(*series_[id]);
    if (!good_only) return m.latest;
    if (m.latest_good_valid) return m.latest_good;
  }
  // The latest good point was overwritten: look it up (rare). Cached unless a write came in.
  std::optional<T> found;
  for (int attempt = 0; attempt < 3; ++attempt) {
    Result<Lease> r = AcquireReader();
    if (!r.ok()) return std::nullopt;
    uint64_t epoch;
    {
      MutexLock l(mu_);
      SeriesState& s = *series_[id];
      if (MemOf<T>(s).latest_good_valid) return MemOf<T>(s).latest_good;
      epoch = s.epoch;
      CopyMemLocked<T>(s, std::numeric_limits<int64_t>::min(), 0, /*all=*/true, **r);
    }
    Result<std::optional<T>> res =
        LatestOf<T>(*(*r)->desc, (*r)->template Buf<T>(), id, true, (*r)->template MemBuf<T>());
    if (!res.ok()) {
      KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "latest",
                            "series {}: latest good point: {}", id, res.status().ToString());
      return std::nullopt;
    }
    found = *res;
    MutexLock l(mu_);
    SeriesState& s = *series_[id];
    if (s.epoch == epoch) {
      MemOf<T>(s).latest_good = found;
      MemOf<T>(s).latest_good_valid = true;
      return found;
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------
// Background.

void Historian::Impl::SyncLoop() {
  while (true) {
    {
      MutexLock l(mu_);
      stop_cv_.WaitFor(l, opts.wal_sync_interval, [&]() KILN_REQUIRES(mu_) { return stop_; });
      if (stop_) return;
    }
    if (!wal->has_unsynced()) continue;
    Status st = wal->SyncAll();
    if (!st.ok()) {
      {
        MutexLock l(mu_);
        ++stats_.write_errors;
      }
      KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "sync", "WAL sync failed: {}",
                            st.ToString());
    }
  }
}

void Historian::Impl::MaintenanceLoop() {
  // Aged heads are looked for a few times per seal_age (at least once a second).
  const auto period = std::clamp<std::chrono::milliseconds>(
      opts.seal_age / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  MonoTime next_retention = clock.Monotonic();
  while (true) {
    {
      MutexLock l(mu_);
      maint_cv_.WaitFor(l, period, [&]() KILN_REQUIRES(mu_) { return stop_ || maint_requested_; });
      if (stop_) return;
      maint_requested_ = false;
    }
    SealRound(SealMode::kDue).IgnoreError();  // counted and logged inside
    const MonoTime now = clock.Monotonic();
    if (now >= next_retention) {
      Retention().IgnoreError();  // counted and logged inside
      next_retention = now + kRetentionPeriod;
    }
  }
}

HistorianStats Historian::Impl::Stats() const {
  HistorianStats s;
  {
    MutexLock l(mu_);
    s = stats_;
    s.series = by_path_.size();
  }
  s.wal_bytes = wal->total_bytes();
  s.wal_syncs = wal->syncs();
  uint64_t db_bytes = 0;
  for (const std::string& p : {db_path, db_path + "-wal"}) {
    Result<uint64_t> n = env.FileSize(p);
    if (n.ok()) db_bytes += *n;
  }
  s.disk_bytes = db_bytes + s.wal_bytes;
  return s;
}

// ---------------------------------------------------------------------------------------
// Historian.

Historian::Historian(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Historian::~Historian() {
  if (impl_) impl_->Shutdown();
}

Result<std::unique_ptr<Historian>> Historian::Open(const HistorianOptions& options) {
  if (options.dir.empty()) return InvalidArgumentError("historian: dir is empty");
  if (options.chunk_points < 2 || options.chunk_points > (size_t{1} << 20)) {
    return InvalidArgumentError("historian: chunk_points must be in 2..1048576");
  }
  if (options.seal_age.count() <= 0) {
    return InvalidArgumentError("historian: seal_age must be positive");
  }
  if (options.wal_sync == WalSync::kInterval && options.wal_sync_interval.count() <= 0) {
    return InvalidArgumentError("historian: wal_sync_interval must be positive");
  }
  Env& env = options.env != nullptr ? *options.env : Env::Default();
  std::unique_ptr<SystemClock> own_clock;
  const Clock* clock = options.clock;
  if (clock == nullptr) {
    own_clock = std::make_unique<SystemClock>();
    clock = own_clock.get();
  }
  std::unique_ptr<StderrSink> own_sink;
  LogSink* sink = options.log;
  if (sink == nullptr) {
    own_sink = std::make_unique<StderrSink>(*clock);
    sink = own_sink.get();
  }
  auto impl = std::make_unique<Impl>(options, env, *clock, *sink);
  impl->own_clock = std::move(own_clock);
  impl->own_sink = std::move(own_sink);
  KILN_RETURN_IF_ERROR(env.CreateDir(impl->dir));
  KILN_ASSIGN_OR_RETURN(impl->dir_lock, env.LockFile(impl->dir + "/LOCK"));
  KILN_RETURN_IF_ERROR(impl->OpenDatabase());
  KILN_RETURN_IF_ERROR(impl->LoadSeries());
  KILN_RETURN_IF_ERROR(impl->Replay());
  KILN_RETURN_IF_ERROR(impl->InitLatest());
  {
    MutexLock l(impl->mu_);
    impl->stats_.series = impl->by_path_.size();
  }
  impl->StartThreads();
  return std::unique_ptr<Historian>(new Historian(std::move(impl)));
}

Result<SeriesId> Historian::Series(std::string_view path, SeriesKind kind) {
  return impl_->GetOrCreateSeries(path, kind);
}

std::optional<SeriesInfo> Historian::Find(std::string_view path) const {
  MutexLock l(impl_->mu_);
  auto it = impl_->by_path_.find(path);
  if (it == impl_->by_path_.end()) return std::nullopt;
  const SeriesState& s = *impl_->series_[it->second];
  return SeriesInfo{s.id, s.path, s.kind};
}

std::vector<SeriesInfo> Historian::List(std::string_view prefix) const {
  std::vector<SeriesInfo> out;
  MutexLock l(impl_->mu_);
  for (auto it = impl_->by_path_.lower_bound(prefix);
       it != impl_->by_path_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
    const SeriesState& s = *impl_->series_[it->second];
    out.push_back(SeriesInfo{s.id, s.path, s.kind});
  }
  return out;
}

Status Historian::Append(std::span<const PointWrite> points) { return impl_->AppendPoints(points); }

Status Historian::AppendText(SeriesId series, const TextPoint& point) {
  return impl_->AppendTextPoint(series, point);
}

Result<std::vector<Point>> Historian::QueryRaw(SeriesId series, int64_t from, int64_t to,
                                               const QueryOptions& options) const {
  std::vector<Point> out;
  KILN_RETURN_IF_ERROR(impl_->Scan<Point>(
      series, from, to, [&](std::span<const Point> run) { return CollectRun(run, options, out); }));
  return out;
}

Result<std::vector<TextPoint>> Historian::QueryText(SeriesId series, int64_t from, int64_t to,
                                                    const QueryOptions& options) const {
  std::vector<TextPoint> out;
  KILN_RETURN_IF_ERROR(impl_->Scan<TextPoint>(
      series, from, to,
      [&](std::span<const TextPoint> run) { return CollectRun(run, options, out); }));
  return out;
}

Result<std::vector<Bucket>> Historian::QueryBuckets(SeriesId series, int64_t from, int64_t to,
                                                    int64_t step, Aggregate agg,
                                                    const QueryOptions& options) const {
  if (step <= 0) return InvalidArgumentError(fmt::format("bucket step {} is not positive", step));
  {
    MutexLock l(impl_->mu_);
    if (series != 0 && series < impl_->series_.size() && impl_->series_[series] &&
        impl_->series_[series]->kind == SeriesKind::kText) {
      return InvalidArgumentError(fmt::format("series {} is text: no aggregates", series));
    }
  }
  BucketBuilder b(step, agg, options.good_only);
  KILN_RETURN_IF_ERROR(
      impl_->Scan<Point>(series, from, to, [&](std::span<const Point> run) { return b.Add(run); }));
  return b.Finish();
}

std::optional<Point> Historian::Latest(SeriesId series, bool good_only) const {
  return impl_->LatestPoint<Point>(series, good_only);
}

std::optional<TextPoint> Historian::LatestText(SeriesId series, bool good_only) const {
  return impl_->LatestPoint<TextPoint>(series, good_only);
}

Status Historian::Flush() {
  KILN_RETURN_IF_ERROR(impl_->SealRound(Impl::SealMode::kAll));
  // Fold SQLite's own WAL into the database and truncate it (best effort: a reader may be
  // holding an old snapshot).
  MutexLock dl(impl_->db_mu_);
  if (impl_->db_) impl_->db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)").IgnoreError();
  return OkStatus();
}

Status Historian::EnforceRetention() { return impl_->Retention(); }

Status Historian::RunOnce() {
  Status first;
  if (impl_->wal->has_unsynced()) {
    Status st = impl_->wal->SyncAll();
    if (!st.ok()) {
      MutexLock l(impl_->mu_);
      ++impl_->stats_.write_errors;
      first = st;
    }
  }
  Status st = impl_->SealRound(Impl::SealMode::kDue);
  if (first.ok()) first = st;
  st = impl_->Retention();
  if (first.ok()) first = st;
  return first;
}

HistorianStats Historian::stats() const { return impl_->Stats(); }

}  // namespace kiln::historian
