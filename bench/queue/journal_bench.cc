// Benchmarks of the journal (queue/journal.h), each next to the reference it is judged
// against, measured in the same run:
//   BM_JournalAppend     vs BM_PlainWrite      group commit (fdatasync every 100 ms) against a
//                                              plain sequential write of the same bytes in the
//                                              same chunks with the same syncs; target >= 70 %
//   BM_JournalAlways     vs BM_SqliteAlways    every record durable before the next, against
//                                              SQLite (WAL, synchronous=FULL); target: faster;
//                        and BM_PlainAlways    and against pwrite + fdatasync of the same bytes
//   BM_JournalOutage                           bytes written per sample during an outage at a
//                                              steady rate (zero-filled spares included)
//   BM_EncodeAndSeal                           the CPU part of a Push: encoding and CRC32C
//   BM_JournalRoundTrip  vs BM_MemoryQueueRoundTrip   Push + ReadLive + Ack on a tmpfs: the
//                                              journal's encode/decode cost
//   BM_JournalBacklog                          ReadBacklog after a restart: the disk side of
//                                              replay (page cache warm or cold, zstd or not)
// Scratch directories go under $KILN_BENCH_DIR (default /var/tmp, the real disk) and are
// removed afterwards. Figures: docs/PERFORMANCE.md, "Store and forward".
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "core/clock.h"
#include "core/log.h"
#include "queue/internal/record_codec.h"
#include "queue/journal.h"
#include "queue/sample_queue.h"

namespace kiln::queue {
namespace {

using bench::Die;
using bench::FloatSignals;
using bench::IoCounters;
using bench::ReadIo;
using bench::ScratchDir;
using contract::Sample;
using Steady = std::chrono::steady_clock;

constexpr uint32_t kTags = 10'000;
constexpr size_t kBatch = 1'000;                        // samples per Push in the bulk benchmarks
constexpr uint64_t kSegmentBytes = uint64_t{64} << 20;  // what the default budget (2 GiB) derives
constexpr uint64_t kMaxBytes = uint64_t{2} << 30;
constexpr auto kSyncInterval = std::chrono::milliseconds(100);

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

// `total` samples of FloatSignals(kTags) in Push-sized batches, generated once per size so
// that generating them is never timed.
const std::vector<std::vector<Sample>>& Batches(size_t total) {
  static std::map<size_t, std::vector<std::vector<Sample>>> cache;
  auto& batches = cache[total];
  if (batches.empty()) {
    FloatSignals signals(kTags);
    for (size_t done = 0; done < total; done += kBatch) {
      batches.emplace_back();
      signals.Fill(std::min(kBatch, total - done), batches.back());
    }
  }
  return batches;
}

JournalOptions Options(const std::filesystem::path& dir, SyncPolicy sync) {
  JournalOptions o;
  o.dir = dir;
  o.max_bytes = kMaxBytes;
  o.segment_bytes = kSegmentBytes;
  o.sync = sync;
  o.sync_interval = kSyncInterval;
  return o;
}

std::unique_ptr<Journal> OpenJournal(JournalOptions options) {
  static SystemClock clock;
  static StderrSink sink(clock);
  const std::string dir = options.dir.string();
  auto journal =
      Journal::Open(std::move(options), clock, Logger(sink, "journal", LogLevel::kWarning));
  if (!journal.ok()) Die("Journal::Open " + dir + ": " + journal.status().ToString());
  return std::move(journal).value();
}

Status PushAll(Journal& journal, const std::vector<std::vector<Sample>>& batches) {
  for (const auto& b : batches) {
    Status s = journal.Push(b);
    if (!s.ok()) return s;
  }
  return OkStatus();
}

// Acknowledges everything appended so far, so the journal retires (and recycles) segments.
void AckAll(Journal& journal, uint64_t& acked_end) {
  const uint64_t end = journal.next_id();
  if (end > acked_end) {
    const IdRange r{acked_end, end - acked_end};
    journal.Ack(std::span<const IdRange>(&r, 1));
  }
  acked_end = end;
}

// Writes and acknowledges `bytes` worth of records, so later appends go to segments that
// were retired and recycled (or pre-written as spares) rather than to files that grow.
void WriteThroughSegments(Journal& journal, uint64_t bytes, uint64_t& acked_end) {
  const auto& batches = Batches(1'000'000);
  const uint64_t w0 = ReadIo().wchar;
  while (ReadIo().wchar - w0 < bytes) {
    if (!PushAll(journal, batches).ok()) Die("preconditioning push failed");
    AckAll(journal, acked_end);
  }
  if (!journal.WaitDurable(journal.next_id()).ok()) Die("preconditioning sync failed");
  AckAll(journal, acked_end);
}

void SetIoCounters(benchmark::State& state, const IoCounters& io, uint64_t samples) {
  const double n = static_cast<double>(samples);
  state.counters["wchar_B_per_sample"] = static_cast<double>(io.wchar) / n;
  state.counters["disk_B_per_sample"] = static_cast<double>(io.write_bytes) / n;
}

// The bytes the journal writes for Batches(samples): the write-call bytes of a new journal
// without background work (so no spare is being prepared meanwhile) appending them: the
// records plus one 4 KiB segment header. Measured once; BM_PlainWrite writes exactly this.
uint64_t JournalWriteBytes(size_t samples) {
  static std::map<size_t, uint64_t> cache;
  auto it = cache.find(samples);
  if (it != cache.end()) return it->second;
  ScratchDir dir;
  JournalOptions options = Options(dir.path() / "journal", SyncPolicy::kInterval);
  options.background = false;
  auto journal = OpenJournal(options);
  const uint64_t w0 = ReadIo().wchar;
  if (!PushAll(*journal, Batches(samples)).ok()) Die("push failed");
  const uint64_t bytes = ReadIo().wchar - w0;
  journal.reset();
  return cache[samples] = bytes;
}

// --- a. Append throughput with group commit --------------------------------------------------

constexpr size_t kPoolSamples = 4'000'000;  // 32 MB of records; pushed `passes` times

// Pushes the pool of 4 M samples range(0) times in batches of 1,000 (the encoding does not
// depend on earlier records, so repeating the pool costs what new samples would), then waits
// until everything is durable. range(1):
//   0 = a new journal every iteration and no acknowledgements, as during an outage that
//       starts with an empty journal: new segment files grow, spares are prepared meanwhile;
//   1 = one journal, everything acknowledged after each pass, as when the uplink keeps up:
//       retired segments are recycled (timing starts once no spare is being prepared).
//   range(2): samples in the pool; 0 = kPoolSamples (256 MB of Samples: every Push reads its
//       input from memory), else a pool that stays in the CPU caches, as the samples a device
//       loop has just produced do (and as BM_PlainWrite's 8 KB buffer does).
void BM_JournalAppend(benchmark::State& state) {
  const size_t pool = state.range(2) == 0 ? kPoolSamples : static_cast<size_t>(state.range(2));
  const int passes = static_cast<int>(state.range(0) * static_cast<int64_t>(kPoolSamples / pool));
  const bool acked = state.range(1) != 0;
  const auto& batches = Batches(pool);
  const uint64_t samples = uint64_t{pool} * static_cast<uint64_t>(passes);
  ScratchDir root;
  std::unique_ptr<Journal> journal;
  uint64_t acked_end = 1;
  int fresh = 0;
  if (acked) {
    journal = OpenJournal(Options(root.path() / "journal", SyncPolicy::kInterval));
    WriteThroughSegments(*journal, 3 * kSegmentBytes, acked_end);
    if (!bench::WaitNoSparePreparation(root.path() / "journal")) Die("spare never ready");
  }
  IoCounters io;
  uint64_t fsyncs = 0;
  double fsync_seconds = 0;
  Steady::duration max_push{};
  for (auto _ : state) {
    const auto dir = root.path() / ("journal" + std::to_string(fresh++));
    if (!acked) journal = OpenJournal(Options(dir, SyncPolicy::kInterval));
    const QueueStats stats0 = journal->stats();
    const IoCounters io0 = ReadIo();
    const auto t0 = Steady::now();
    Status s;
    for (int p = 0; p < passes && s.ok(); ++p) {
      for (const auto& b : batches) {
        const auto p0 = Steady::now();
        s = journal->Push(b);
        max_push = std::max(max_push, Steady::now() - p0);
        if (!s.ok()) break;
      }
      if (acked) AckAll(*journal, acked_end);
    }
    if (s.ok()) s = journal->WaitDurable(journal->next_id());
    const auto t1 = Steady::now();
    const IoCounters io1 = ReadIo();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    state.SetIterationTime(Seconds(t1 - t0));
    io.wchar += io1.wchar - io0.wchar;
    io.write_bytes += io1.write_bytes - io0.write_bytes;
    const QueueStats stats1 = journal->stats();
    fsyncs += stats1.fsyncs - stats0.fsyncs;
    fsync_seconds += stats1.fsync_seconds - stats0.fsync_seconds;
    if (acked) {
      AckAll(*journal, acked_end);
    } else {
      journal.reset();
      std::filesystem::remove_all(dir);
    }
  }
  const double iterations = static_cast<double>(state.iterations());
  const uint64_t total = static_cast<uint64_t>(state.iterations()) * samples;
  state.SetItemsProcessed(static_cast<int64_t>(total));
  state.SetBytesProcessed(static_cast<int64_t>(JournalWriteBytes(pool)) * passes *
                          state.iterations());
  SetIoCounters(state, io, total);
  state.counters["fsyncs_per_iter"] = static_cast<double>(fsyncs) / iterations;
  state.counters["fsync_ms_per_iter"] = fsync_seconds * 1e3 / iterations;
  state.counters["max_push_ms"] = Seconds(max_push) * 1e3;  // the slowest single Push
}
BENCHMARK(BM_JournalAppend)
    ->Args({10, 0, 0})
    ->Args({10, 1, 0})
    ->Args({10, 0, 16000})
    ->Args({10, 1, 16000})
    ->ArgNames({"passes", "acked", "pool"})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// An outage at a steady rate: range(0) samples/s in Pushes of 1,000 for 12 s into a new
// journal, nothing acknowledged (at 2 M samples/s: three 64 MiB segments). Reports the bytes
// the process wrote per sample (wchar, spares included) next to the bytes of the records
// (records_B_per_sample): their difference is the cost of zero-filled spares.
void BM_JournalOutage(benchmark::State& state) {
  const auto rate = static_cast<double>(state.range(0));
  const auto& pool = Batches(kPoolSamples);
  const auto period = std::chrono::duration_cast<Steady::duration>(
      std::chrono::duration<double>(static_cast<double>(kBatch) / rate));
  uint64_t samples = 0;
  IoCounters io;
  for (auto _ : state) {
    ScratchDir dir;
    auto journal = OpenJournal(Options(dir.path() / "journal", SyncPolicy::kInterval));
    const IoCounters io0 = ReadIo();
    auto next = Steady::now();
    const auto end = next + std::chrono::seconds(12);
    for (size_t b = 0; next < end; b = (b + 1) % pool.size()) {
      if (!journal->Push(pool[b]).ok()) Die("push failed");
      next += period;
      std::this_thread::sleep_until(next);
    }
    if (!journal->WaitDurable(journal->next_id()).ok()) Die("sync failed");
    const IoCounters io1 = ReadIo();
    samples += journal->next_id() - 1;
    io.wchar += io1.wchar - io0.wchar;
    io.write_bytes += io1.write_bytes - io0.write_bytes;
  }
  SetIoCounters(state, io, samples);
  state.counters["records_B_per_sample"] =
      static_cast<double>(JournalWriteBytes(kPoolSamples)) / static_cast<double>(kPoolSamples);
}
BENCHMARK(BM_JournalOutage)
    ->Arg(2'000'000)
    ->ArgName("samples_per_s")
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

// Background thread that fdatasyncs `fd` every interval until stopped.
class PeriodicSync {
 public:
  PeriodicSync(int fd, std::chrono::milliseconds interval)
      : thread_([this, fd, interval](std::stop_token stop) {
          std::unique_lock lock(mu_);
          while (true) {
            cv_.wait_for(lock, stop, interval, [] { return false; });
            if (stop.stop_requested()) return;
            ::fdatasync(fd);
          }
        }) {}

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::jthread thread_;  // last: stopped and joined first
};

bool WriteFully(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// The physical reference for BM_JournalAppend: range(0) times the bytes the journal writes
// for the pool (JournalWriteBytes), in as many chunks as it has Push calls (~8 KB), with an
// fdatasync every 100 ms and one at the end. range(1): 0 = into a new file (it grows, like a
// new segment), 1 = over a file written before (like a recycled segment). range(2): 0 = the
// writer syncs when 100 ms have passed; 1 = a second thread syncs every 100 ms, so the writer
// never waits for a sync (as with the journal's group commit). range(3): the bytes of this
// many Pushes per write call: 1 (~8 KB, what a Push encodes) or 32 (~256 KB, about what the
// journal's writer thread gathers per write when it keeps up; larger writes cost far less
// CPU per byte here, so this is the reference to beat).
void BM_PlainWrite(benchmark::State& state) {
  const int passes = static_cast<int>(state.range(0));
  const bool overwrite = state.range(1) != 0;
  const bool sync_thread = state.range(2) != 0;
  const uint64_t pass_bytes = JournalWriteBytes(kPoolSamples);
  const size_t chunks = Batches(kPoolSamples).size() / static_cast<size_t>(state.range(3));
  const size_t chunk = static_cast<size_t>(pass_bytes / chunks);
  const size_t last_chunk = static_cast<size_t>(pass_bytes - chunk * (chunks - 1));
  std::vector<char> buf(last_chunk);
  std::mt19937 rng(7);
  for (char& c : buf) c = static_cast<char>(rng());
  ScratchDir dir;
  const auto path = dir.path() / "plain";
  auto write_all = [&](int fd, auto&& after_chunk) {
    for (int p = 0; p < passes; ++p) {
      for (size_t i = 0; i < chunks; ++i) {
        if (!WriteFully(fd, buf.data(), i + 1 == chunks ? last_chunk : chunk)) return false;
        if (!after_chunk()) return false;
      }
    }
    return true;
  };
  if (overwrite) {  // write the file once so that the iterations overwrite it
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || !write_all(fd, [] { return true; }) || ::fdatasync(fd) != 0) Die("write");
    ::close(fd);
  }
  for (auto _ : state) {
    if (!overwrite) std::filesystem::remove(path);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
    if (fd < 0) Die("open " + path.string());
    const auto t0 = Steady::now();
    bool ok;
    {
      std::unique_ptr<PeriodicSync> syncer;
      if (sync_thread) syncer = std::make_unique<PeriodicSync>(fd, kSyncInterval);
      auto last_sync = t0;
      ok = write_all(fd, [&] {
        if (sync_thread || Steady::now() - last_sync < kSyncInterval) return true;
        last_sync = Steady::now();
        return ::fdatasync(fd) == 0;
      });
    }
    ok = ok && ::fdatasync(fd) == 0;
    const auto t1 = Steady::now();
    ::close(fd);
    if (!ok) {
      state.SkipWithError(std::strerror(errno));
      break;
    }
    state.SetIterationTime(Seconds(t1 - t0));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * passes * kPoolSamples));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * passes * pass_bytes));
}
BENCHMARK(BM_PlainWrite)
    ->ArgsProduct({{10}, {0, 1}, {0, 1}, {1, 32}})
    ->ArgNames({"passes", "overwrite", "sync_thread", "pushes_per_write"})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// --- b. Every record durable before the next -------------------------------------------------

// SyncPolicy::kAlways: each Push of range(0) samples returns once they are on disk.
// range(1): 0 = the first 2,000 records of a new journal (its first segment, a file that
// grows); 1 = steady state: after writing through 3 segments (and once no spare is being
// prepared), appends go to a recycled segment file (counter prewritten_segment = 1).
void BM_JournalAlways(benchmark::State& state) {
  const size_t per_record = static_cast<size_t>(state.range(0));
  const bool recycled = state.range(1) != 0;
  const auto& pool = Batches(1'000'000);
  ScratchDir dir;
  uint64_t acked_end = 1;
  if (recycled) {
    auto warm = OpenJournal(Options(dir.path() / "journal", SyncPolicy::kInterval));
    WriteThroughSegments(*warm, 3 * kSegmentBytes, acked_end);
  }
  auto journal = OpenJournal(Options(dir.path() / "journal", SyncPolicy::kAlways));
  if (recycled && !bench::WaitNoSparePreparation(dir.path() / "journal")) {
    Die("spare never ready");
  }
  state.counters["prewritten_segment"] =
      bench::ActiveSegmentPrewritten(dir.path() / "journal", kSegmentBytes) ? 1 : 0;
  size_t b = 0, offset = 0;
  const uint64_t fsyncs0 = journal->stats().fsyncs;
  const IoCounters io0 = ReadIo();
  for (auto _ : state) {
    if (offset + per_record > pool[b].size()) {
      offset = 0;
      b = (b + 1) % pool.size();
    }
    Status s = journal->Push(std::span<const Sample>(pool[b]).subspan(offset, per_record));
    offset += per_record;
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  const IoCounters io1 = ReadIo();
  const uint64_t records = static_cast<uint64_t>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(records * per_record), benchmark::Counter::kIsRate);
  state.counters["fsyncs_per_record"] = static_cast<double>(journal->stats().fsyncs - fsyncs0) /
                                        static_cast<double>(std::max<uint64_t>(records, 1));
  state.counters["wchar_B_per_record"] = static_cast<double>(io1.wchar - io0.wchar) /
                                         static_cast<double>(std::max<uint64_t>(records, 1));
}
BENCHMARK(BM_JournalAlways)
    ->ArgsProduct({{1, 100}, {0}})
    ->ArgNames({"samples", "recycled"})
    ->Iterations(2000)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_JournalAlways)
    ->ArgsProduct({{1, 100}, {1}})
    ->ArgNames({"samples", "recycled"})
    ->MinTime(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The physical reference for BM_JournalAlways: pwrite of range(0) bytes (a journal record of
// 1 or 100 samples: 32 + 8 per sample) at the next offset of a 64 MiB file written before,
// then fdatasync, again and again.
void BM_PlainAlways(benchmark::State& state) {
  const size_t record = static_cast<size_t>(state.range(0));
  ScratchDir dir;
  const auto path = dir.path() / "plain";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) Die("open " + path.string());
  std::vector<char> buf(1 << 20, 1);
  for (uint64_t off = 0; off < kSegmentBytes; off += buf.size()) {
    if (!WriteFully(fd, buf.data(), buf.size())) Die("write");
  }
  if (::fdatasync(fd) != 0) Die("fdatasync");
  uint64_t offset = 0;
  for (auto _ : state) {
    if (offset + record > kSegmentBytes) offset = 0;
    if (::pwrite(fd, buf.data(), record, static_cast<off_t>(offset)) !=
            static_cast<ssize_t>(record) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError(std::strerror(errno));
      break;
    }
    offset += record;
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PlainAlways)
    ->Arg(40)
    ->Arg(832)
    ->ArgName("bytes")
    ->MinTime(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

class Sqlite {
 public:
  explicit Sqlite(const std::filesystem::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      Die("sqlite3_open_v2 " + path.string());
    }
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=FULL");
    Exec("CREATE TABLE samples (tag INTEGER, t INTEGER, v REAL, q INTEGER)");
    begin_ = Prepare("BEGIN");
    commit_ = Prepare("COMMIT");
    insert_ = Prepare("INSERT INTO samples (tag, t, v, q) VALUES (?, ?, ?, ?)");
  }
  ~Sqlite() {
    for (sqlite3_stmt* s : {begin_, commit_, insert_}) sqlite3_finalize(s);
    sqlite3_close(db_);
  }

  // One transaction inserting `samples`.
  bool Insert(std::span<const Sample> samples) {
    if (!Step(begin_)) return false;
    for (const Sample& s : samples) {
      sqlite3_bind_int64(insert_, 1, s.tag);
      sqlite3_bind_int64(insert_, 2, s.source_time.time_since_epoch().count());
      sqlite3_bind_double(insert_, 3, s.value.AsDouble().value_or(0));
      sqlite3_bind_int64(insert_, 4, s.quality.code());
      if (!Step(insert_)) return false;
    }
    return Step(commit_);
  }
  const char* error() const { return sqlite3_errmsg(db_); }

 private:
  void Exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      Die(std::string(sql) + ": " + sqlite3_errmsg(db_));
    }
  }
  sqlite3_stmt* Prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) Die(sqlite3_errmsg(db_));
    return s;
  }
  static bool Step(sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE;
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

// The reference for BM_JournalAlways: SQLite in WAL mode with synchronous=FULL, one
// transaction per record of range(0) samples. range(1): 0 = the first 2,000 transactions of
// a new database; 1 = after 3,000 transactions, so the WAL has been checkpointed and is
// being overwritten, not grown.
void BM_SqliteAlways(benchmark::State& state) {
  const size_t per_record = static_cast<size_t>(state.range(0));
  const bool recycled = state.range(1) != 0;
  const auto& pool = Batches(1'000'000);
  ScratchDir dir;
  Sqlite db(dir.path() / "samples.db");
  size_t b = 0, offset = 0;
  auto next = [&] {
    if (offset + per_record > pool[b].size()) {
      offset = 0;
      b = (b + 1) % pool.size();
    }
    offset += per_record;
    return std::span<const Sample>(pool[b]).subspan(offset - per_record, per_record);
  };
  if (recycled) {
    for (int i = 0; i < 3000; ++i) {
      if (!db.Insert(next())) Die(db.error());
    }
  }
  const IoCounters io0 = ReadIo();
  for (auto _ : state) {
    if (!db.Insert(next())) {
      state.SkipWithError(db.error());
      break;
    }
  }
  const IoCounters io1 = ReadIo();
  const uint64_t records = static_cast<uint64_t>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(records * per_record), benchmark::Counter::kIsRate);
  state.counters["wchar_B_per_record"] = static_cast<double>(io1.wchar - io0.wchar) /
                                         static_cast<double>(std::max<uint64_t>(records, 1));
}
BENCHMARK(BM_SqliteAlways)
    ->ArgsProduct({{1, 100}, {0}})
    ->ArgNames({"samples", "recycled"})
    ->Iterations(2000)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SqliteAlways)
    ->ArgsProduct({{1, 100}, {1}})
    ->ArgNames({"samples", "recycled"})
    ->MinTime(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// --- c. Encode / decode ------------------------------------------------------------------------

// The CPU part of a Push alone: encoding 1,000 samples into frames and sealing them (CRC32C),
// as the journal does on the caller's thread before its write.
void BM_EncodeAndSeal(benchmark::State& state) {
  const auto& pool = Batches(static_cast<size_t>(state.range(0)));
  internal::RecordEncoder enc(1 << 20);
  size_t b = 0;
  uint64_t id = 1;
  for (auto _ : state) {
    enc.Encode(pool[b]);
    for (const internal::EncodedRecord& r : enc.records()) {
      internal::SealFrame(enc.bytes().data() + r.offset, 1, id, r.payload_crc);
      id += r.count;
    }
    benchmark::DoNotOptimize(enc.bytes().data());
    b = (b + 1) % pool.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}
BENCHMARK(BM_EncodeAndSeal)->Arg(1000)->Arg(16000)->ArgName("pool");

// Push of 1,000 samples, ReadLive of them and Ack, with the journal on a tmpfs (/dev/shm):
// the CPU cost of encoding, framing and decoding, without a disk.
void BM_JournalRoundTrip(benchmark::State& state) {
  const auto& pool = Batches(1'000'000);
  ScratchDir dir(std::filesystem::exists("/dev/shm") ? "/dev/shm" : bench::ScratchRoot());
  auto journal = OpenJournal(Options(dir.path() / "journal", SyncPolicy::kInterval));
  journal->StartDelivery();
  size_t b = 0, read = 0;
  for (auto _ : state) {
    Status s = journal->Push(pool[b]);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    for (size_t got = 0; got < pool[b].size();) {
      SampleBatch batch = journal->ReadLive(kBatch, Steady::now());
      if (batch.empty()) {
        state.SkipWithError("ReadLive returned nothing after a Push");
        return;
      }
      got += batch.samples.size();
      read += batch.samples.size();
      journal->Ack(batch.ids);
      benchmark::DoNotOptimize(batch.samples.data());
    }
    b = (b + 1) % pool.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(read));
}
BENCHMARK(BM_JournalRoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The same with MemorySampleQueue: what a queue costs that neither encodes nor decodes.
void BM_MemoryQueueRoundTrip(benchmark::State& state) {
  const auto& pool = Batches(1'000'000);
  MemorySampleQueue queue(100'000);
  queue.StartDelivery();
  size_t b = 0, read = 0;
  for (auto _ : state) {
    (void)queue.Push(pool[b]).ok();
    for (size_t got = 0; got < pool[b].size();) {
      SampleBatch batch = queue.ReadLive(kBatch, Steady::now());
      if (batch.empty()) {
        state.SkipWithError("ReadLive returned nothing after a Push");
        return;
      }
      got += batch.samples.size();
      read += batch.samples.size();
      queue.Ack(batch.ids);
      benchmark::DoNotOptimize(batch.samples.data());
    }
    b = (b + 1) % pool.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(read));
}
BENCHMARK(BM_MemoryQueueRoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Drops the page cache of every file under `dir` (they are synced first, so all pages are
// clean and can go).
void EvictPageCache(const std::filesystem::path& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

bool HasSealedLogSegments(const std::filesystem::path& dir) {
  std::vector<std::string> logs;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("seg-", 0) == 0 && e.path().extension() == ".log") logs.push_back(name);
  }
  return logs.size() > 1;  // the newest is being written
}

// A journal holding range(0) unacknowledged samples, closed and opened again (a restart after
// an outage); then StartDelivery and ReadBacklog(5,000) (the uplink's batch) until the backlog
// is read, again and again (a new StartDelivery). range(1): zstd-compressed sealed segments;
// range(2): the page cache of the journal's files is dropped before each pass (cold).
void BM_JournalBacklog(benchmark::State& state) {
  const uint64_t samples = static_cast<uint64_t>(state.range(0));
  const bool compress = state.range(1) != 0;
  const bool cold = state.range(2) != 0;
  ScratchDir root;
  const auto dir = root.path() / "journal";
  auto options = Options(dir, SyncPolicy::kInterval);
  options.compress = compress;
  options.segment_bytes = 16 << 20;  // several sealed segments even for a few million samples
  {
    auto journal = OpenJournal(options);
    FloatSignals signals(kTags);
    std::vector<Sample> batch;
    while (journal->next_id() <= samples) {
      signals.Fill(kBatch, batch);
      if (!journal->Push(batch).ok()) Die("push failed");
    }
    if (!journal->WaitDurable(journal->next_id()).ok()) Die("sync failed");
    // Compression runs in the background: wait until only the newest segment is a .log.
    const auto deadline = Steady::now() + std::chrono::minutes(5);
    while (compress && HasSealedLogSegments(dir) && Steady::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (compress && HasSealedLogSegments(dir)) Die("sealed segments still uncompressed");
  }
  auto journal = OpenJournal(options);
  const uint64_t boundary = journal->StartDelivery();
  uint64_t read = 0;
  if (cold) EvictPageCache(dir);
  for (auto _ : state) {
    SampleBatch batch = journal->ReadBacklog(5000);
    read += batch.samples.size();
    benchmark::DoNotOptimize(batch.samples.data());
    if (batch.empty()) {
      state.PauseTiming();
      journal->StartDelivery();  // no new samples: the same backlog again
      if (cold) EvictPageCache(dir);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(read));
  state.counters["backlog"] = static_cast<double>(boundary - 1);
  state.counters["MiB_on_disk"] = static_cast<double>(bench::FileBytes(dir)) / (1 << 20);
}
BENCHMARK(BM_JournalBacklog)
    ->ArgsProduct({{5'000'000}, {0, 1}, {0, 1}})
    ->ArgNames({"samples", "zstd", "cold"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kiln::queue

BENCHMARK_MAIN();
