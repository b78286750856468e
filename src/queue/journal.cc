#include "queue/journal.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/mutex.h"
#include "core/time_format.h"
#include "fmt/format.h"
#include "queue/internal/format.h"
#include "queue/internal/record_codec.h"
#include "queue/internal/segment.h"

namespace kiln::queue {
namespace {

using internal::DecodeHeaderBlock;
using internal::EncodeHeaderBlock;
using internal::HeaderCheck;
using internal::IndexBuilder;
using internal::IndexEntry;
using internal::kFrameHeaderBytes;
using internal::kHeaderBytes;
using internal::kSealOffset;
using internal::ReadOutcome;
using internal::ReadOutcomeName;
using internal::RecordReader;
using internal::RecordView;
using internal::SampleDecoder;
using internal::SegmentHeader;
using internal::SegmentSource;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kMinSegmentBytes = 16 * kKiB;
constexpr uint64_t kMaxSegmentBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxRecordPayload = 64 * kKiB;
constexpr size_t kMaxSpares = 2;              // retired files kept for reuse
constexpr uint64_t kAcksCompactBytes = kMiB;  // rewrite acks.log beyond this
constexpr int kZstdLevel = 3;
constexpr std::chrono::seconds kMaintenancePeriod{1};
constexpr const char* kAcksName = "acks.log";
constexpr const char* kQuarantineDir = "quarantine";
// The writer thread's queue: a Push waits while this much is queued, until half of it is
// written, so that it sleeps once per half queue rather than once per Push.
constexpr uint64_t kMaxQueuedBytes = 256 * kKiB;
constexpr size_t kMaxQueuedPushes = 256;
// A writer thread that ran out of work polls this long for the next Push before it sleeps.
// Waking a sleeping thread costs the Push a system call, and on a VM the sleeping CPU an
// interrupt and a wake-up of tens to hundreds of microseconds: at a Push every few
// microseconds that costs more than the write it hands over. (Measured: napping for 1 ms
// until 64 KiB were queued instead was 10-20 % slower.) At low rates the poll costs at most
// this much CPU per Push.
constexpr std::chrono::microseconds kWriterPoll{50};
// The writer thread starts writeback of each segment's data in chunks of this much.
constexpr uint64_t kWritebackChunk = 4 * kMiB;

// Polls `done` until it is true, for up to kWriterPoll of real time (whatever the journal's
// clock is: this is about CPUs), before the caller sleeps on a condition variable.
template <typename Done>
void PollFor(Done done) {
  const auto until = std::chrono::steady_clock::now() + kWriterPoll;
  while (!done()) {
    for (int i = 0; i < 64; ++i) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      asm volatile("yield");
#endif
    }
    if (std::chrono::steady_clock::now() >= until) return;
  }
}

// Encoders kept for reuse hold at most this much buffer in all (a returned one beyond it is
// freed): a burst of huge Pushes must not leave its buffers behind.
constexpr size_t kMaxPooledEncoderBytes = 4 * kMiB;

std::string FormatTime(int64_t ns) {
  return FormatRfc3339Millis(Timestamp(std::chrono::nanoseconds(ns)));
}

uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

// The smallest id of [a, limit) in `set`, or `limit`.
uint64_t NextPresent(const IdSet& set, uint64_t a, uint64_t limit) {
  if (a >= limit || set.CountIn(a, limit) == 0) return limit;
  // Galloping search for the first m with ids in [a, m), then bisection.
  uint64_t lo = a;  // [a, lo) holds none
  uint64_t hi = limit;
  for (uint64_t step = 1;; step *= 2) {
    const uint64_t m = std::min(limit, a + step);
    if (set.CountIn(a, m) > 0) {
      hi = m;
      break;
    }
    lo = m;
  }
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (set.CountIn(a, mid) > 0) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return hi - 1;
}

// The ids of [from, to) that are not in `set`, as ranges, at most `max` ids in all.
std::vector<IdRange> AbsentRuns(const IdSet& set, uint64_t from, uint64_t to, uint64_t max) {
  std::vector<IdRange> out;
  uint64_t total = 0;
  uint64_t x = from;
  while (x < to && total < max) {
    const uint64_t a = set.NextAbsent(x);
    if (a >= to) break;
    const uint64_t b = NextPresent(set, a, std::min(to, a + (max - total)));
    out.push_back(IdRange{a, b - a});
    total += b - a;
    x = b;
  }
  return out;
}

// One segment file. Fields other than the identity are guarded by the journal's mu_ for
// readers; every writer holds both write_mu_ and mu_, so code holding write_mu_ may read them
// without mu_ (the append path does). -Wthread-safety does not check this struct.
struct Segment {
  uint64_t first_id = 0;
  uint64_t seq = 0;
  uint64_t fingerprint = 0;
  int64_t created_ns = 0;
  uint64_t header_segment_bytes = 0;
  std::string name;            // relative to the journal directory
  std::shared_ptr<File> file;  // the segment being written only
  uint64_t end_id = 0;         // one past the last id held
  uint64_t data_end = kHeaderBytes;
  uint64_t disk_bytes = 0;
  int64_t min_time = 0;
  int64_t max_time = 0;
  bool sealed = false;
  bool compressed = false;
  bool quarantined = false;  // the file is in quarantine/; only a valid prefix remains
  bool gone = false;         // dropped or retired: readers holding it must let go
  uint64_t compressed_bytes = 0;
  uint64_t file_gen = 0;                   // bumped when `name` points to a new file (compression)
  uint64_t writeback_from = kHeaderBytes;  // the writer: data not yet sent to storage from here
  IndexBuilder index;

  bool empty() const { return end_id == first_id; }
  SegmentHeader Header() const {
    SegmentHeader h;
    h.seq = seq;
    h.first_id = first_id;
    h.tag_fingerprint = fingerprint;
    h.segment_bytes = header_segment_bytes;
    h.created_ns = created_ns;
    h.sealed = sealed;
    h.compressed = compressed;
    h.count = end_id - first_id;
    h.data_end = data_end;
    h.min_time = min_time;
    h.max_time = max_time;
    h.compressed_bytes = compressed_bytes;
    h.index = index.entries();
    return h;
  }
};

// A read position: the next id to deliver, and a frame boundary at or before its record in
// `seg` to scan from.
struct Cursor {
  uint64_t next_id = 1;
  std::shared_ptr<Segment> seg;  // null: find the segment again
  uint64_t offset = kHeaderBytes;
  uint64_t offset_id = 0;
  uint64_t gen = 0;  // bumped whenever someone other than the lane's reader moves it
};

// What a reader of one lane keeps between calls.
struct Lane {
  Mutex mu;  // one reader of the lane at a time
  std::vector<uint8_t> buffer KILN_GUARDED_BY(mu);
  std::shared_ptr<Segment> file_seg KILN_GUARDED_BY(mu);  // the segment `file` belongs to
  uint64_t file_gen KILN_GUARDED_BY(mu) = 0;
  std::shared_ptr<File> file KILN_GUARDED_BY(mu);
};

struct Spare {
  uint64_t n = 0;
  uint64_t bytes = 0;
};

}  // namespace

struct Journal::Impl {
  Impl(JournalOptions o, const Clock& c, Logger l, uint64_t seg_bytes)
      : opts(std::move(o)),
        env(opts.env != nullptr ? *opts.env : Env::Default()),
        clock(c),
        log(std::move(l)),
        limiter(c),
        dir(opts.dir.string()),
        segment_bytes(seg_bytes),
        max_payload(static_cast<size_t>(std::min<uint64_t>(
            kMaxRecordPayload, (seg_bytes - kHeaderBytes) / 4 - kFrameHeaderBytes))) {}

  std::string Path(std::string_view name) const { return dir + "/" + std::string(name); }

  // --- Open.
  Status Recover();
  Result<std::shared_ptr<Segment>> LoadSegment(const std::string& name, uint64_t id,
                                               bool compressed, bool last, uint64_t& max_seq,
                                               std::vector<std::string>& leftovers);
  void QuarantineFileAtOpen(const std::string& name, std::string_view why);
  void StartThreads();
  void Shutdown();

  // --- Writing.
  // With background threads and group commit, Push encodes on the caller's thread and queues
  // the records for the writer thread, which appends them: the encoding of one Push overlaps
  // the write of the one before (the two take about the same time). Otherwise Push appends
  // the records itself.
  bool WritesInBackground() const { return opts.background && opts.sync != SyncPolicy::kAlways; }
  Status Push(std::span<const contract::Sample> samples);
  std::unique_ptr<internal::RecordEncoder> TakeEncoder();
  void ReturnEncoderLocked(std::unique_ptr<internal::RecordEncoder> enc) KILN_REQUIRES(q_mu_);
  // Queues `enc` for the writer thread, waiting while the queue is full. Returns the error of
  // a queued append that failed since the last call (those samples are counted as dropped).
  Status Enqueue(std::unique_ptr<internal::RecordEncoder> enc);
  void WriterLoop();
  bool QueueHalfEmptyLocked() const KILN_REQUIRES(q_mu_) {
    return queued_count_ == 0 ||
           (queued_bytes_ <= kMaxQueuedBytes / 2 && queued_count_ <= kMaxQueuedPushes / 2);
  }
  // Waits until the writer thread has appended everything queued before the call.
  void Flush();
  // After records were appended: wakes readers and, when due, the sync thread. Returns
  // written_end_.
  uint64_t NotifyAppended();
  // A frame to append and its record.
  struct RecordRef {
    uint8_t* frame;
    const internal::EncodedRecord* rec;
    size_t push;  // which Push (encoder) of the batch it belongs to
  };
  // Appends the records of `enc`, the batch's Push number `push`, to `out`.
  static void AddRecords(internal::RecordEncoder& enc, size_t push, std::vector<RecordRef>& out);
  // Appends the records in order, each write taking as many as fit in the segment. A failed
  // write drops the Pushes it held, whole (counted, logged), and later Pushes go on in a new
  // segment; when no new segment can be opened, the rest are dropped too. Returns the first
  // error.
  Status AppendLocked(std::span<const RecordRef> recs) KILN_REQUIRES(write_mu_);
  void FailRecords(std::span<const RecordRef> recs, const Status& st);
  Status RollLocked(bool seal_short) KILN_REQUIRES(write_mu_);
  Status SealLocked(const std::shared_ptr<Segment>& seg, bool seal_short) KILN_REQUIRES(write_mu_);
  Status OpenNewSegmentLocked() KILN_REQUIRES(write_mu_);
  Status MakeRoomLocked() KILN_REQUIRES(write_mu_);
  bool FreeSpaceLocked() KILN_REQUIRES(write_mu_);
  Status TimedSync(File& f);
  Status SyncTo(uint64_t end);

  // --- Segment lifecycle.
  enum class Removal { kRetired, kBudget, kAge, kDiskFull };
  // Forgets `seg` (counting and logging its unacknowledged samples unless kRetired) and
  // recycles or removes its file.
  void RemoveSegmentLocked(const std::shared_ptr<Segment>& seg, Removal why)
      KILN_REQUIRES(write_mu_);
  // Renames a full-size segment file to a spare while fewer than `max_spares` exist,
  // else removes it.
  void RecycleOrRemoveFileLocked(const std::string& name, uint64_t bytes, size_t max_spares)
      KILN_REQUIRES(write_mu_);
  void RemoveSparesLocked(size_t keep) KILN_REQUIRES(write_mu_);
  // Checks `seg` from the start; when a record is bad, moves the file to quarantine/ and
  // drops what follows the last good record. Returns true when it quarantined.
  bool HandleCorruption(const std::shared_ptr<Segment>& seg, std::string_view found);

  // --- Acknowledgements.
  Status FlushAcks();
  Status CompactAcksLocked() KILN_REQUIRES(ack_file_mu_);

  // --- Reading.
  SampleBatch ReadLane(Lane& lane, bool backlog, size_t max) KILN_REQUIRES(lane.mu);
  Cursor& CursorLocked(bool backlog) KILN_REQUIRES(mu_) { return backlog ? backlog_ : live_; }
  void ResolveLocked(Cursor& c, bool backlog) KILN_REQUIRES(mu_);
  void PlaceLocked(Cursor& c, const std::shared_ptr<Segment>& seg) KILN_REQUIRES(mu_);
  void ResetBacklogLocked() KILN_REQUIRES(mu_);

  // --- Maintenance.
  Status RunOnce();
  Status MaintenancePass();
  Status DropByAge();
  void RetireDone();
  bool CompressOne();
  void PrepareSpare();
  // Makes the decompression cache and both lane cursors let go of `seg` (gone or moved).
  void ForgetReadersLocked(const Segment& seg) KILN_REQUIRES(mu_) {
    if (cache_seg_.get() == &seg) {
      cache_seg_.reset();
      cache_data_.reset();
    }
    for (Cursor* c : {&live_, &backlog_}) {
      if (c->seg.get() == &seg) {
        c->seg.reset();
        ++c->gen;
      }
    }
  }
  void RequestMaintenanceLocked() KILN_REQUIRES(mu_) {
    maint_requested_ = true;
    maint_cv_.NotifyOne();
  }
  void SyncLoop();
  void MaintenanceLoop();

  // --- Accounting.
  uint64_t OldestIdLocked() const KILN_REQUIRES(mu_) {
    return segments_.empty() ? written_end_ : segments_.begin()->first;
  }
  uint64_t ChargedBytesLocked() const KILN_REQUIRES(mu_);
  uint64_t DiskBytesLocked() const KILN_REQUIRES(mu_);
  uint64_t UnackedLocked(uint64_t first, uint64_t end) const KILN_REQUIRES(mu_) {
    return first >= end ? 0 : (end - first) - done_.CountIn(first, end);
  }
  void CountWriteErrorLocked() KILN_REQUIRES(mu_) { ++stats_.write_errors; }
  QueueStats Stats() const;

  const JournalOptions opts;
  Env& env;
  const Clock& clock;
  const Logger log;
  mutable LogRateLimiter limiter;
  const std::string dir;
  const uint64_t segment_bytes;
  const size_t max_payload;
  std::unique_ptr<FileLock> dir_lock;

  // Lock order: a lane's mu -> write_mu_ -> ack_file_mu_ -> mu_; q_mu_ is never held while
  // taking another.
  // write_mu_ serializes appends and every change to the set of files.
  Mutex write_mu_;
  std::vector<std::span<const std::byte>> write_parts_ KILN_GUARDED_BY(write_mu_);
  Mutex ack_file_mu_;
  mutable Mutex mu_;
  CondVar data_cv_;  // ReadLive: new samples or Wake
  CondVar sync_cv_;  // a sync round ended
  CondVar work_cv_;  // the sync thread: something to sync
  // The sync thread waits for work (not within an interval): only then do appends and
  // acknowledgements need to wake it, so a busy journal does not pay a wake-up per Push.
  bool sync_idle_ KILN_GUARDED_BY(mu_) = false;
  CondVar maint_cv_;  // the maintenance thread

  std::unique_ptr<File> acks_file_ KILN_GUARDED_BY(ack_file_mu_);
  uint64_t acks_size_ KILN_GUARDED_BY(ack_file_mu_) = 0;
  uint64_t acks_compacted_ KILN_GUARDED_BY(ack_file_mu_) = 0;  // size after the last rewrite
  bool acks_rewrite_ KILN_GUARDED_BY(ack_file_mu_) = false;

  std::map<uint64_t, std::shared_ptr<Segment>> segments_ KILN_GUARDED_BY(mu_);
  std::shared_ptr<Segment> active_ KILN_GUARDED_BY(mu_);
  // New segment names (OpenNewSegmentLocked) and how many of them a directory sync has made
  // durable: a writer thread leaves that to the next sync round, and nothing in a segment may
  // be reported durable before its name is.
  uint64_t dir_gen_ KILN_GUARDED_BY(mu_) = 0;
  uint64_t dir_synced_gen_ KILN_GUARDED_BY(mu_) = 0;
  bool poisoned_ KILN_GUARDED_BY(mu_) = false;  // a write failed: roll before the next
  std::vector<Spare> spares_ KILN_GUARDED_BY(mu_);
  uint64_t next_spare_ KILN_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ KILN_GUARDED_BY(mu_) = 1;
  uint64_t acks_bytes_ KILN_GUARDED_BY(mu_) = 0;
  uint64_t written_end_ KILN_GUARDED_BY(mu_) = 1;
  uint64_t durable_end_ KILN_GUARDED_BY(mu_) = 1;
  IdSet done_ KILN_GUARDED_BY(mu_);          // acknowledged or dropped
  IdSet durable_done_ KILN_GUARDED_BY(mu_);  // the part of done_ on disk in acks.log
  std::vector<IdRange> pending_acks_ KILN_GUARDED_BY(mu_);
  Cursor live_ KILN_GUARDED_BY(mu_);
  Cursor backlog_ KILN_GUARDED_BY(mu_);
  uint64_t boundary_ KILN_GUARDED_BY(mu_) = 0;
  bool woken_ KILN_GUARDED_BY(mu_) = false;
  bool sync_running_ KILN_GUARDED_BY(mu_) = false;
  uint64_t sync_round_ KILN_GUARDED_BY(mu_) = 0;
  Status last_sync_ KILN_GUARDED_BY(mu_);
  uint64_t last_sync_target_ KILN_GUARDED_BY(mu_) = 0;
  uint64_t pending_records_ KILN_GUARDED_BY(mu_) = 0;
  QueueStats stats_ KILN_GUARDED_BY(mu_);
  bool stop_ KILN_GUARDED_BY(mu_) = false;
  bool maint_requested_ KILN_GUARDED_BY(mu_) = false;
  // The decompressed data of one compressed segment, shared by the lanes.
  std::shared_ptr<Segment> cache_seg_ KILN_GUARDED_BY(mu_);
  std::shared_ptr<const std::vector<uint8_t>> cache_data_ KILN_GUARDED_BY(mu_);

  // The writer thread's queue (WritesInBackground()), and the pool of encoders.
  Mutex q_mu_;
  CondVar q_cv_;          // the writer: something queued, or stop
  CondVar q_space_cv_;    // a Push waiting for room in the queue
  CondVar q_flushed_cv_;  // Flush: the writer appended something
  std::vector<std::unique_ptr<internal::RecordEncoder>> queued_ KILN_GUARDED_BY(q_mu_);
  // Taken oldest first: the writer thread read the newest last (pwritev), and writing into a
  // buffer whose cache lines sit in the other CPU's cache costs the Push a transfer per line
  // (measured: 5-10 % of the append rate).
  std::deque<std::unique_ptr<internal::RecordEncoder>> free_encoders_ KILN_GUARDED_BY(q_mu_);
  size_t pooled_bytes_ KILN_GUARDED_BY(q_mu_) = 0;    // capacity of free_encoders_
  uint64_t queued_bytes_ KILN_GUARDED_BY(q_mu_) = 0;  // queued or being appended
  size_t queued_count_ KILN_GUARDED_BY(q_mu_) = 0;
  uint64_t pushes_queued_ KILN_GUARDED_BY(q_mu_) = 0;  // since open
  uint64_t pushes_appended_ KILN_GUARDED_BY(q_mu_) = 0;
  Status deferred_error_ KILN_GUARDED_BY(q_mu_);
  bool writer_sleeping_ KILN_GUARDED_BY(q_mu_) = false;  // waiting on q_cv_
  std::atomic<uint64_t> pushes_queued_polled_{0};        // pushes_queued_, for the writer's poll
  std::atomic<uint64_t> pushes_appended_polled_{0};      // pushes_appended_, for Flush
  bool q_stop_ KILN_GUARDED_BY(q_mu_) = false;
  int space_waiters_ KILN_GUARDED_BY(q_mu_) = 0;
  int flush_waiters_ KILN_GUARDED_BY(q_mu_) = 0;

  Lane live_lane_;
  Lane backlog_lane_;
  std::jthread writer_thread_;
  std::jthread sync_thread_;
  std::jthread maint_thread_;
};

// ---------------------------------------------------------------------------------------
// Open and recovery.

void Journal::Impl::QuarantineFileAtOpen(const std::string& name, std::string_view why) {
  Status st = env.CreateDir(Path(kQuarantineDir));
  if (st.ok()) st = env.Rename(Path(name), Path(std::string(kQuarantineDir) + "/" + name));
  if (st.ok()) {
    log.Error("{}: {}; moved to {}/", Path(name), why, kQuarantineDir);
  } else {
    log.Error("{}: {}; left in place, could not move it to {}/: {}", Path(name), why,
              kQuarantineDir, st.ToString());
  }
}

Result<std::shared_ptr<Segment>> Journal::Impl::LoadSegment(const std::string& name, uint64_t id,
                                                            bool compressed, bool last,
                                                            uint64_t& max_seq,
                                                            std::vector<std::string>& leftovers) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<File> file, env.Open(Path(name), OpenMode::kRead));
  KILN_ASSIGN_OR_RETURN(const uint64_t size, file->Size());
  std::vector<uint8_t> block(kHeaderBytes);
  auto got = file->ReadAt(0, std::as_writable_bytes(std::span(block)));
  if (!got.ok()) {
    QuarantineFileAtOpen(name, "header unreadable: " + got.status().ToString());
    return std::shared_ptr<Segment>();
  }
  SegmentHeader h;
  const HeaderCheck check =
      DecodeHeaderBlock(std::span<const uint8_t>(block.data(), static_cast<size_t>(*got)), h);
  if (check == HeaderCheck::kUnknownVersion) {
    return FailedPreconditionError(
        fmt::format("{}: written with journal format version {}; this build reads version {} "
                    "(nothing was changed)",
                    Path(name), h.version, internal::kFormatVersion));
  }
  if (check != HeaderCheck::kOk || h.first_id != id) {
    const char* why = check == HeaderCheck::kNotASegment ? "no segment header"
                      : check == HeaderCheck::kCorrupt   ? "header crc mismatch"
                                                         : "header names another first id";
    if (last && !compressed) {
      // The newest segment: its header becomes durable with its first record, so nothing of
      // it was durable. It was being created when the process stopped. Removed, not
      // recycled: records in it may carry a sequence number no header remembers.
      log.Warn("{}: {}; an empty segment whose creation was cut short, removed", Path(name), why);
      Status st = env.Remove(Path(name));
      if (!st.ok()) return st;
    } else {
      QuarantineFileAtOpen(name, why);
    }
    return std::shared_ptr<Segment>();
  }
  max_seq = std::max(max_seq, h.seq);
  auto seg = std::make_shared<Segment>();
  seg->first_id = h.first_id;
  seg->seq = h.seq;
  seg->fingerprint = h.tag_fingerprint;
  seg->created_ns = h.created_ns;
  seg->header_segment_bytes = h.segment_bytes;
  seg->name = name;
  seg->disk_bytes = size;
  seg->end_id = h.first_id;
  if (compressed) {
    if (!h.sealed || !h.compressed || h.count == 0 || h.data_end <= kHeaderBytes ||
        kHeaderBytes + h.compressed_bytes > size) {
      QuarantineFileAtOpen(name, "compressed segment without a valid seal");
      return std::shared_ptr<Segment>();
    }
  }
  // Every size from disk is bounded before it is used (a header can pass its CRC and still
  // be wrong, e.g. written by a bug): data within the segment, the segment within limits.
  const bool seal_ok = h.sealed && h.count > 0 && h.data_end > kHeaderBytes &&
                       h.segment_bytes <= kMaxSegmentBytes && h.data_end <= h.segment_bytes &&
                       (compressed || h.data_end <= size) && h.first_id + h.count > h.first_id;
  if (compressed && !seal_ok) {
    QuarantineFileAtOpen(name, "compressed segment with an impossible size");
    return std::shared_ptr<Segment>();
  }
  if (seal_ok) {
    // An index whose entries are not increasing and inside the segment is only a hint lost.
    uint64_t prev_id = h.first_id, prev_offset = kHeaderBytes;
    for (const IndexEntry& e : h.index) {
      if (e.first_id < prev_id || e.first_id >= h.first_id + h.count || e.offset < prev_offset ||
          e.offset >= h.data_end) {
        h.index.clear();
        break;
      }
      prev_id = e.first_id;
      prev_offset = e.offset;
    }
    seg->sealed = true;
    seg->compressed = compressed;
    seg->end_id = h.first_id + h.count;
    seg->data_end = h.data_end;
    seg->min_time = h.min_time;
    seg->max_time = h.max_time;
    seg->compressed_bytes = h.compressed_bytes;
    seg->index.Reset(std::move(h.index));
    return seg;
  }
  // No valid seal: the segment being written when the process stopped. Scan for its tail.
  std::vector<uint8_t> buffer;
  SegmentSource source{file, nullptr};
  auto scan = internal::ScanSegment(source, h, size, buffer);
  if (!scan.ok()) {
    QuarantineFileAtOpen(name, "unreadable: " + scan.status().ToString());
    return std::shared_ptr<Segment>();
  }
  if (scan->stop == ReadOutcome::kTorn || scan->stop == ReadOutcome::kBadCrc ||
      scan->stop == ReadOutcome::kBadRecord) {
    log.Warn(
        "{}: torn tail at offset {}: {} bytes cut off ({}); the {} samples before it are "
        "intact",
        Path(name), scan->data_end, scan->bad_bytes, ReadOutcomeName(scan->stop),
        scan->end_id - h.first_id);
  }
  if (scan->end_id == h.first_id) {
    leftovers.push_back(name);  // no records: reuse the file
    return std::shared_ptr<Segment>();
  }
  seg->end_id = scan->end_id;
  seg->data_end = scan->data_end;
  seg->min_time = scan->min_time;
  seg->max_time = scan->max_time;
  seg->index = std::move(scan->index);
  return seg;
}

Status Journal::Impl::Recover() {
  KILN_RETURN_IF_ERROR(env.CreateDir(dir));
  KILN_ASSIGN_OR_RETURN(dir_lock, env.LockFile(Path("LOCK")));
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, env.ListDir(dir));
  struct Found {
    bool log = false;
    bool zst = false;
  };
  std::map<uint64_t, Found> found;
  std::vector<uint64_t> spare_ns;
  bool has_acks = false;
  for (const std::string& name : names) {
    uint64_t id = 0;
    bool compressed = false;
    if (internal::ParseSegmentFileName(name, id, compressed)) {
      (compressed ? found[id].zst : found[id].log) = true;
    } else if (internal::ParseSpareFileName(name, id)) {
      spare_ns.push_back(id);
    } else if (name == kAcksName) {
      has_acks = true;
    } else if (name.size() > 4 && name.ends_with(".tmp")) {
      env.Remove(Path(name)).IgnoreError();  // an unfinished rewrite, spare or compression
    }
  }

  uint64_t max_seq = 0;
  uint64_t next_id = 1;
  std::vector<std::string> leftovers;  // files to reuse as spares or remove
  std::map<uint64_t, std::shared_ptr<Segment>> loaded;
  const uint64_t last_id = found.empty() ? 0 : found.rbegin()->first;
  for (const auto& [id, f] : found) {
    next_id = std::max(next_id, id);
    std::shared_ptr<Segment> seg;
    if (f.zst) {
      KILN_ASSIGN_OR_RETURN(seg, LoadSegment(internal::SegmentFileName(id, true), id, true,
                                             id == last_id, max_seq, leftovers));
      // Compression finished (the .zst is complete before it gets its name), but the
      // original was not retired yet.
      if (seg && f.log) leftovers.push_back(internal::SegmentFileName(id, false));
    }
    if (!seg && f.log) {
      KILN_ASSIGN_OR_RETURN(seg, LoadSegment(internal::SegmentFileName(id, false), id, false,
                                             id == last_id, max_seq, leftovers));
    }
    if (!seg) continue;
    if (!loaded.empty()) {
      const auto& prev = loaded.rbegin()->second;
      if (seg->first_id < prev->end_id) {
        QuarantineFileAtOpen(seg->name, fmt::format("its ids start at {}, inside {} (ids up to {})",
                                                    seg->first_id, prev->name, prev->end_id - 1));
        continue;
      }
    }
    next_id = std::max(next_id, seg->end_id);
    loaded.emplace(id, seg);
  }
  // Spares keep the sequence number of their last use: new segments must not reuse it, or
  // the spare's old records would look current.
  for (uint64_t n : spare_ns) {
    if (auto f = env.Open(Path(internal::SpareFileName(n)), OpenMode::kRead); f.ok()) {
      std::vector<uint8_t> block(kHeaderBytes);
      if (auto got = (*f)->ReadAt(0, std::as_writable_bytes(std::span(block))); got.ok()) {
        SegmentHeader h;
        if (DecodeHeaderBlock(std::span<const uint8_t>(block.data(), *got), h) ==
            HeaderCheck::kOk) {
          max_seq = std::max(max_seq, h.seq);
        }
      }
    }
  }

  // Seal what was being written: it is never appended to again (new records go to a new
  // segment), so whatever a crash left after its last good record is never read.
  for (auto& [id, seg] : loaded) {
    if (seg->sealed) continue;
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<File> file,
                          env.Open(Path(seg->name), OpenMode::kReadWrite));
    seg->file = std::move(file);
    MutexLock wl(write_mu_);
    KILN_RETURN_IF_ERROR(SealLocked(seg, /*seal_short=*/true));
  }

  {
    MutexLock l(mu_);
    segments_ = std::move(loaded);
    next_seq_ = max_seq + 1;
    written_end_ = durable_end_ = next_id;
    for (uint64_t n : spare_ns) {
      auto size = env.FileSize(Path(internal::SpareFileName(n)));
      spares_.push_back(Spare{n, size.value_or(0)});
      next_spare_ = std::max(next_spare_, n + 1);
    }
  }

  // Acknowledged ranges, clamped to the ids recovered: an acknowledgement may be durable
  // while the samples it names were not.
  uint64_t acks_torn = 0;
  bool acks_bad = false;
  if (has_acks) {
    KILN_ASSIGN_OR_RETURN(auto f, env.Open(Path(kAcksName), OpenMode::kRead));
    KILN_ASSIGN_OR_RETURN(const uint64_t size, f->Size());
    std::vector<uint8_t> bytes(size);
    KILN_ASSIGN_OR_RETURN(const size_t got, f->ReadAt(0, std::as_writable_bytes(std::span(bytes))));
    bytes.resize(got);
    internal::AcksParse parsed = internal::ParseAcks(bytes);
    acks_bad = !parsed.header_ok && !bytes.empty();
    acks_torn = parsed.header_ok ? parsed.torn_bytes : 0;
    MutexLock l(mu_);
    for (const IdRange& r : parsed.ranges) done_.Add(r);
  }
  if (acks_bad) {
    log.Error("{}: not an acknowledgement log; every stored sample will be delivered again",
              Path(kAcksName));
  } else if (acks_torn > 0) {
    log.Info("{}: {} bytes of an unfinished entry ignored", Path(kAcksName), acks_torn);
  }
  {
    MutexLock l(mu_);
    const uint64_t oldest = OldestIdLocked();
    done_.EraseBelow(oldest);
    done_.EraseFrom(written_end_);
    // Ids between segments that no file holds (a segment quarantined or deleted).
    uint64_t prev_end = 0;
    for (const auto& [id, seg] : segments_) {
      if (prev_end != 0 && prev_end < seg->first_id) {
        const uint64_t lost = UnackedLocked(prev_end, seg->first_id);
        if (lost > 0) {
          stats_.dropped += lost;
          log.Error(
              "ids {}..{} are in no segment (quarantined or removed): {} unacknowledged "
              "samples lost",
              prev_end, seg->first_id - 1, lost);
        }
        done_.Add(prev_end, seg->first_id);
      }
      prev_end = seg->end_id;
    }
    // Segments written with another tag table.
    for (const auto& [id, seg] : segments_) {
      if (seg->fingerprint == opts.tag_fingerprint) continue;
      const uint64_t lost = UnackedLocked(seg->first_id, seg->end_id);
      if (lost > 0) {
        stats_.dropped += lost;
        log.Warn(
            "{}: written with tag table {:#018x}, the tag table is now {:#018x}: its {} "
            "unacknowledged samples ({} to {}) are dropped, their tag ids may name other "
            "tags now",
            Path(seg->name), seg->fingerprint, opts.tag_fingerprint, lost,
            FormatTime(seg->min_time), FormatTime(seg->max_time));
      }
      done_.Add(seg->first_id, seg->end_id);
    }
  }
  {
    MutexLock al(ack_file_mu_);
    KILN_RETURN_IF_ERROR(CompactAcksLocked());
  }

  {
    MutexLock wl(write_mu_);
    // Leftovers become spares (or go), surplus spares go.
    for (const std::string& name : leftovers) {
      auto size = env.FileSize(Path(name));
      RecycleOrRemoveFileLocked(name, size.value_or(0), kMaxSpares);
    }
    RemoveSparesLocked(kMaxSpares);
    // Fully acknowledged segments.
    std::vector<std::shared_ptr<Segment>> done;
    {
      MutexLock l(mu_);
      for (const auto& [id, seg] : segments_) {
        if (UnackedLocked(seg->first_id, seg->end_id) == 0) done.push_back(seg);
      }
    }
    for (const auto& seg : done) RemoveSegmentLocked(seg, Removal::kRetired);
    KILN_RETURN_IF_ERROR(MakeRoomLocked());
    KILN_RETURN_IF_ERROR(OpenNewSegmentLocked());
  }
  MutexLock l(mu_);
  live_.next_id = written_end_;
  backlog_.next_id = OldestIdLocked();
  ResolveLocked(live_, false);
  uint64_t samples = 0;
  for (const auto& [id, seg] : segments_) samples += seg->end_id - seg->first_id;
  log.Info("{}: {} segments, {} samples ({} unacknowledged), next id {}", dir, segments_.size(),
           samples, samples - done_.CountIn(OldestIdLocked(), written_end_), written_end_);
  return OkStatus();
}

void Journal::Impl::StartThreads() {
  if (!opts.background) return;
  if (WritesInBackground()) writer_thread_ = std::jthread([this] { WriterLoop(); });
  sync_thread_ = std::jthread([this] { SyncLoop(); });
  maint_thread_ = std::jthread([this] { MaintenanceLoop(); });
}

void Journal::Impl::Shutdown() {
  {
    MutexLock l(q_mu_);
    q_stop_ = true;
  }
  q_cv_.NotifyAll();
  if (writer_thread_.joinable()) writer_thread_.join();  // it appends what is queued first
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  work_cv_.NotifyAll();
  maint_cv_.NotifyAll();
  data_cv_.NotifyAll();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (maint_thread_.joinable()) maint_thread_.join();
  uint64_t end;
  {
    MutexLock l(mu_);
    end = written_end_;
  }
  SyncTo(end).IgnoreError();
  FlushAcks().IgnoreError();
  MutexLock wl(write_mu_);
  std::shared_ptr<Segment> active;
  {
    MutexLock l(mu_);
    active = active_;
  }
  if (active && !active->empty()) SealLocked(active, /*seal_short=*/true).IgnoreError();
}

// ---------------------------------------------------------------------------------------
// Writing.

Status Journal::Impl::Push(std::span<const contract::Sample> samples) {
  if (samples.empty()) return OkStatus();
  // Encoding happens on the caller's thread, outside every lock, into a pooled encoder (its
  // buffer is reused, not allocated and zeroed for every Push).
  std::unique_ptr<internal::RecordEncoder> enc = TakeEncoder();
  enc->set_max_payload(max_payload);
  const uint64_t too_large = enc->Encode(samples);
  if (too_large > 0) {
    {
      MutexLock l(mu_);
      stats_.dropped += too_large;
    }
    KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "too-large",
                          "{} samples dropped: each encodes to more than {} bytes", too_large,
                          max_payload);
  }
  Status st;
  if (enc->records().empty()) {
    MutexLock l(q_mu_);
    ReturnEncoderLocked(std::move(enc));
  } else if (WritesInBackground()) {
    st = Enqueue(std::move(enc));
  } else {
    std::vector<RecordRef> recs;
    AddRecords(*enc, 0, recs);
    {
      MutexLock wl(write_mu_);
      st = AppendLocked(recs);
    }
    {
      MutexLock l(q_mu_);
      ReturnEncoderLocked(std::move(enc));
    }
    // Even after a failure: the records before the failed one were appended.
    const uint64_t end = NotifyAppended();
    if (st.ok() && opts.sync == SyncPolicy::kAlways) st = SyncTo(end);
  }
  if (!st.ok()) return st;
  if (too_large > 0) {
    return InvalidArgumentError(
        fmt::format("{} of {} samples dropped: larger than a record ({} bytes)", too_large,
                    samples.size(), max_payload));
  }
  return OkStatus();
}

uint64_t Journal::Impl::NotifyAppended() {
  uint64_t end;
  {
    MutexLock l(mu_);
    end = written_end_;
    if (opts.sync != SyncPolicy::kAlways &&
        (sync_idle_ || (opts.sync == SyncPolicy::kBatch && pending_records_ >= opts.sync_batch))) {
      work_cv_.NotifyOne();
    }
  }
  data_cv_.NotifyAll();
  return end;
}

std::unique_ptr<internal::RecordEncoder> Journal::Impl::TakeEncoder() {
  {
    MutexLock l(q_mu_);
    if (!free_encoders_.empty()) {
      std::unique_ptr<internal::RecordEncoder> enc = std::move(free_encoders_.front());
      free_encoders_.pop_front();
      pooled_bytes_ -= enc->capacity();
      return enc;
    }
  }
  return std::make_unique<internal::RecordEncoder>(max_payload);
}

void Journal::Impl::ReturnEncoderLocked(std::unique_ptr<internal::RecordEncoder> enc) {
  if (pooled_bytes_ + enc->capacity() > kMaxPooledEncoderBytes) return;
  pooled_bytes_ += enc->capacity();
  free_encoders_.push_back(std::move(enc));
}

Status Journal::Impl::Enqueue(std::unique_ptr<internal::RecordEncoder> enc) {
  const uint64_t bytes = enc->bytes().size();
  MutexLock l(q_mu_);
  if (queued_count_ > 0 &&
      (queued_bytes_ + bytes > kMaxQueuedBytes || queued_count_ >= kMaxQueuedPushes)) {
    ++space_waiters_;
    q_space_cv_.Wait(l, [&]() KILN_REQUIRES(q_mu_) { return QueueHalfEmptyLocked(); });
    --space_waiters_;
  }
  queued_.push_back(std::move(enc));
  queued_bytes_ += bytes;
  ++queued_count_;
  ++pushes_queued_;
  pushes_queued_polled_.store(pushes_queued_, std::memory_order_release);
  if (writer_sleeping_) q_cv_.NotifyOne();
  return std::exchange(deferred_error_, OkStatus());
}

void Journal::Impl::WriterLoop() {
  std::vector<std::unique_ptr<internal::RecordEncoder>> batch;
  std::vector<RecordRef> recs;
  uint64_t seen = 0;  // pushes_queued_ when the writer last looked
  while (true) {
    PollFor([&] { return pushes_queued_polled_.load(std::memory_order_acquire) != seen; });
    {
      MutexLock l(q_mu_);
      writer_sleeping_ = true;
      q_cv_.Wait(l, [&]() KILN_REQUIRES(q_mu_) { return q_stop_ || !queued_.empty(); });
      writer_sleeping_ = false;
      if (queued_.empty()) return;  // stopped, and everything queued is appended
      batch.swap(queued_);
      seen = pushes_queued_;
    }
    // Everything queued in as few writes as the segments allow: one system call per batch
    // rather than per Push (a write of 256 KiB moves 2 to 3 times the bytes per second of
    // one of 8 KiB here).
    recs.clear();
    uint64_t bytes = 0;
    for (size_t k = 0; k < batch.size(); ++k) {
      AddRecords(*batch[k], k, recs);
      bytes += batch[k]->bytes().size();
    }
    Status st;
    {
      MutexLock wl(write_mu_);
      st = AppendLocked(recs);  // a failure is counted and logged inside
    }
    NotifyAppended();  // even after a failure: records before the failed one were appended
    MutexLock l(q_mu_);
    queued_bytes_ -= bytes;
    queued_count_ -= batch.size();
    pushes_appended_ += batch.size();
    pushes_appended_polled_.store(pushes_appended_, std::memory_order_release);
    if (!st.ok() && deferred_error_.ok()) deferred_error_ = st;
    for (std::unique_ptr<internal::RecordEncoder>& enc : batch) ReturnEncoderLocked(std::move(enc));
    batch.clear();
    if (space_waiters_ > 0 && QueueHalfEmptyLocked()) q_space_cv_.NotifyAll();
    if (flush_waiters_ > 0) q_flushed_cv_.NotifyAll();
  }
}

void Journal::Impl::Flush() {
  if (!WritesInBackground()) return;
  uint64_t target;
  {
    MutexLock l(q_mu_);
    target = pushes_queued_;
    if (pushes_appended_ >= target) return;
  }
  // The writer is at most a write behind: poll before sleeping, as it does (a reader that
  // sleeps costs the writer a wake-up, and itself the VM's wake-up latency).
  PollFor([&] { return pushes_appended_polled_.load(std::memory_order_acquire) >= target; });
  MutexLock l(q_mu_);
  if (pushes_appended_ >= target) return;
  ++flush_waiters_;
  q_flushed_cv_.Wait(l, [&]() KILN_REQUIRES(q_mu_) { return pushes_appended_ >= target; });
  --flush_waiters_;
}

void Journal::Impl::FailRecords(std::span<const RecordRef> recs, const Status& st) {
  uint64_t lost = 0;
  for (const RecordRef& r : recs) lost += r.rec->count;
  {
    MutexLock l(mu_);
    stats_.dropped += lost;
    CountWriteErrorLocked();
  }
  KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "append",
                        "append failed, {} samples dropped: {}", lost, st.ToString());
}

void Journal::Impl::AddRecords(internal::RecordEncoder& enc, size_t push,
                               std::vector<RecordRef>& out) {
  uint8_t* bytes = enc.bytes().data();
  for (const internal::EncodedRecord& r : enc.records()) {
    out.push_back(RecordRef{bytes + r.offset, &r, push});
  }
}

Status Journal::Impl::AppendLocked(std::span<const RecordRef> recs) {
  size_t i = 0;
  bool retried_space = false;
  Status first_error;
  std::vector<std::span<const std::byte>>& parts = write_parts_;
  while (i < recs.size()) {
    std::shared_ptr<Segment> seg;
    bool poisoned;
    uint64_t first;
    {
      MutexLock l(mu_);
      seg = active_;
      poisoned = poisoned_;
      first = written_end_;
    }
    // Only writers change the active segment's tail, and we are the writer.
    if (!seg || poisoned || seg->data_end + recs[i].rec->size > segment_bytes) {
      Status st = RollLocked(/*seal_short=*/false);
      if (!st.ok() && st.code() == StatusCode::kResourceExhausted && !retried_space) {
        retried_space = true;
        if (FreeSpaceLocked()) st = RollLocked(/*seal_short=*/false);
      }
      if (!st.ok()) {
        FailRecords(recs.subspan(i), st);
        return first_error.ok() ? st : first_error;
      }
      continue;
    }
    const uint64_t tail = seg->data_end;
    // As many whole frames as fit, in one write (frames of one Push lie back to back).
    size_t j = i;
    uint64_t len = 0;
    uint64_t id = first;
    parts.clear();
    while (j < recs.size() && tail + len + recs[j].rec->size <= segment_bytes) {
      const internal::EncodedRecord& r = *recs[j].rec;
      internal::SealFrame(recs[j].frame, static_cast<uint32_t>(seg->seq), id, r.payload_crc);
      const auto* frame = reinterpret_cast<const std::byte*>(recs[j].frame);
      if (!parts.empty() && parts.back().data() + parts.back().size() == frame) {
        parts.back() = std::span(parts.back().data(), parts.back().size() + r.size);
      } else {
        parts.emplace_back(frame, r.size);
      }
      id += r.count;
      len += r.size;
      ++j;
    }
    Status st = seg->file->WriteAtV(tail, parts);
    if (!st.ok() && st.code() == StatusCode::kResourceExhausted && !retried_space) {
      retried_space = true;
      // Disk full: try once to make room, then write the same bytes at the same place.
      if (FreeSpaceLocked()) st = seg->file->WriteAtV(tail, parts);
    }
    if (!st.ok()) {
      // Part of the frames may be on disk after the tail; the next append rolls, and the
      // seal ends the segment before them. Until then a restart would scan the segment and
      // find them, samples already counted as dropped: zero the first frame header (its
      // block was written, so this needs no new space) to end the data at the tail.
      const std::array<std::byte, kFrameHeaderBytes> zeros{};
      seg->file->WriteAt(tail, zeros).IgnoreError();
      {
        MutexLock l(mu_);
        poisoned_ = true;
      }
      // The Pushes this write held are lost, whole; later ones (a writer thread writes many
      // at once) go on in a new segment, if storage lets them.
      size_t e = j;
      while (e < recs.size() && recs[e].push == recs[j - 1].push) ++e;
      FailRecords(recs.subspan(i, e - i), st);
      if (first_error.ok()) first_error = st;
      i = e;
      continue;
    }
    // Written data goes to storage in the background as the segment fills, so that the
    // fdatasync that seals it (on this thread) waits for little more than its last chunk.
    const uint64_t new_end = tail + len;
    if (WritesInBackground() && new_end - seg->writeback_from >= kWritebackChunk) {
      seg->file->StartWriteback(seg->writeback_from, new_end - seg->writeback_from);
      seg->writeback_from = new_end;
    }
    MutexLock l(mu_);
    uint64_t offset = tail;
    for (size_t k = i; k < j; ++k) {
      const internal::EncodedRecord& r = *recs[k].rec;
      if (seg->empty()) {
        seg->min_time = r.min_time;
        seg->max_time = r.max_time;
      } else {
        seg->min_time = std::min(seg->min_time, r.min_time);
        seg->max_time = std::max(seg->max_time, r.max_time);
      }
      seg->index.Add(IndexEntry{seg->end_id, offset, r.min_time});
      seg->end_id += r.count;
      offset += r.size;
      stats_.appended += r.count;
    }
    seg->data_end = tail + len;
    seg->disk_bytes = std::max(seg->disk_bytes, seg->data_end);
    written_end_ = seg->end_id;
    pending_records_ += j - i;
    i = j;
  }
  return first_error;
}

Status Journal::Impl::TimedSync(File& f) {
  const MonoTime start = clock.Monotonic();
  Status st = f.Sync();
  const double secs = std::chrono::duration<double>(clock.Monotonic() - start).count();
  MutexLock l(mu_);
  ++stats_.fsyncs;
  stats_.fsync_seconds += secs;
  stats_.fsync_seconds_max = std::max(stats_.fsync_seconds_max, secs);
  return st;
}

Status Journal::Impl::SyncTo(uint64_t end) {
  while (true) {
    std::shared_ptr<File> file;
    bool sync_dir;
    uint64_t dir_gen;
    uint64_t target;
    {
      MutexLock l(mu_);
      while (true) {
        end = std::min(end, written_end_);
        if (durable_end_ >= end) return OkStatus();
        if (!sync_running_) break;
        // Someone is syncing: wait for the end of that round (group commit).
        const uint64_t round = sync_round_;
        sync_cv_.Wait(l, [&]() KILN_REQUIRES(mu_) { return sync_round_ != round; });
        if (!last_sync_.ok() && last_sync_target_ >= end) return last_sync_;
      }
      sync_running_ = true;
      target = written_end_;
      pending_records_ = 0;
      // Everything below `target` is in the active segment or in sealed (synced) ones, under
      // names made durable by now or by the directory sync below.
      if (active_) file = active_->file;
      dir_gen = dir_gen_;
      sync_dir = dir_gen != dir_synced_gen_;
    }
    Status st = sync_dir ? env.SyncDir(dir) : OkStatus();
    if (st.ok() && sync_dir) {
      MutexLock l(mu_);
      dir_synced_gen_ = std::max(dir_synced_gen_, dir_gen);
    }
    if (st.ok() && file) st = TimedSync(*file);
    {
      MutexLock l(mu_);
      sync_running_ = false;
      ++sync_round_;
      last_sync_ = st;
      last_sync_target_ = target;
      if (st.ok()) {
        durable_end_ = std::max(durable_end_, target);
      } else {
        // After a failed fdatasync the kernel may have dropped the dirty pages: write into a
        // new segment from now on.
        poisoned_ = true;
        CountWriteErrorLocked();
      }
    }
    sync_cv_.NotifyAll();
    if (!st.ok()) {
      KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "sync", "sync failed: {}",
                            st.ToString());
      return st;
    }
  }
}

Status Journal::Impl::RollLocked(bool seal_short) {
  std::shared_ptr<Segment> old;
  {
    MutexLock l(mu_);
    old = active_;
  }
  if (old && old->empty()) {
    // Nothing was stored in it: start it over with a new sequence number, which turns
    // whatever a failed write left in it into stale data.
    SegmentHeader h;
    {
      MutexLock l(mu_);
      h = old->Header();
      h.seq = next_seq_++;
    }
    std::vector<uint8_t> block(kHeaderBytes);
    EncodeHeaderBlock(h, std::span<uint8_t, kHeaderBytes>(block.data(), kHeaderBytes));
    KILN_RETURN_IF_ERROR(old->file->WriteAt(0, std::as_bytes(std::span(block))));
    MutexLock l(mu_);
    old->seq = h.seq;
    poisoned_ = false;
    return OkStatus();
  }
  if (old) KILN_RETURN_IF_ERROR(SealLocked(old, seal_short));
  KILN_RETURN_IF_ERROR(MakeRoomLocked());
  return OpenNewSegmentLocked();
}

Status Journal::Impl::SealLocked(const std::shared_ptr<Segment>& seg, bool seal_short) {
  SegmentHeader h;
  std::shared_ptr<File> file;
  {
    MutexLock l(mu_);
    h = seg->Header();
    file = seg->file;
  }
  h.sealed = true;
  if (!file) {
    KILN_ASSIGN_OR_RETURN(file, env.Open(Path(seg->name), OpenMode::kReadWrite));
  }
  std::vector<uint8_t> block(kHeaderBytes);
  EncodeHeaderBlock(h, std::span<uint8_t, kHeaderBytes>(block.data(), kHeaderBytes));
  Status st = file->WriteAt(kSealOffset, std::as_bytes(std::span(block).subspan(kSealOffset)));
  uint64_t new_size = 0;
  if (st.ok() && seal_short) {
    // A segment sealed before it filled up (at open or close) keeps only what it uses.
    auto size = file->Size();
    const uint64_t want = RoundUp(h.data_end, 4096);
    if (size.ok() && *size > want) {
      st = file->Truncate(want);
      new_size = want;
    }
  }
  if (st.ok()) st = TimedSync(*file);
  if (!st.ok()) {
    {
      MutexLock l(mu_);
      if (active_ == seg) poisoned_ = true;
    }
    KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "seal", "sealing {} failed: {}",
                          Path(seg->name), st.ToString());
    return st;
  }
  {
    MutexLock l(mu_);
    seg->sealed = true;
    seg->file = nullptr;
    if (new_size != 0) seg->disk_bytes = new_size;
    // Durable once its name is too (a writer thread leaves new names to the sync round).
    if (dir_synced_gen_ == dir_gen_) durable_end_ = std::max(durable_end_, seg->end_id);
    if (active_ == seg) active_ = nullptr;
    RequestMaintenanceLocked();
  }
  sync_cv_.NotifyAll();
  return OkStatus();
}

Status Journal::Impl::OpenNewSegmentLocked() {
  uint64_t first, seq;
  std::optional<Spare> spare;
  {
    MutexLock l(mu_);
    first = written_end_;
    seq = next_seq_++;
    if (!spares_.empty()) {
      spare = spares_.back();
      spares_.pop_back();
    }
  }
  const std::string name = internal::SegmentFileName(first, false);
  const std::string path = Path(name);
  bool recycled = false;
  if (spare) {
    const std::string spare_path = Path(internal::SpareFileName(spare->n));
    Status st = env.Rename(spare_path, path);
    if (st.ok()) {
      recycled = true;
    } else {
      log.Warn("could not reuse {}: {}", spare_path, st.ToString());
      env.Remove(spare_path).IgnoreError();
    }
  }
  // kCreate: a file of this name left by an earlier failed attempt is reused.
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<File> file, env.Open(path, OpenMode::kCreate));
  auto seg = std::make_shared<Segment>();
  seg->first_id = first;
  seg->seq = seq;
  seg->fingerprint = opts.tag_fingerprint;
  seg->created_ns = clock.Now().time_since_epoch().count();
  seg->header_segment_bytes = segment_bytes;
  seg->name = name;
  seg->end_id = first;
  Status st;
  // A new file gets its full size at once, so that it can be recycled as a spare later.
  const uint64_t size = file->Size().value_or(0);
  if (size < segment_bytes) st = file->Truncate(segment_bytes);
  seg->disk_bytes = std::max(size, segment_bytes);
  std::vector<uint8_t> block(kHeaderBytes);
  EncodeHeaderBlock(seg->Header(), std::span<uint8_t, kHeaderBytes>(block.data(), kHeaderBytes));
  if (st.ok()) st = file->WriteAt(0, std::as_bytes(std::span(block)));
  // The new name must be durable before anything in the file is reported durable. With a
  // writer thread the next sync round syncs the directory (SyncTo), so that the writer does
  // not wait for it.
  const bool defer_dir_sync = WritesInBackground();
  if (st.ok() && !defer_dir_sync) st = env.SyncDir(dir);
  if (!st.ok()) return st;
  if (!recycled) log.Debug("created {}", path);
  seg->file = std::move(file);
  MutexLock l(mu_);
  ++dir_gen_;
  if (!defer_dir_sync) dir_synced_gen_ = dir_gen_;
  segments_[first] = seg;
  active_ = seg;
  poisoned_ = false;
  RequestMaintenanceLocked();  // a spare to prepare, a segment to compress, ages to check
  return OkStatus();
}

uint64_t Journal::Impl::ChargedBytesLocked() const {
  uint64_t total = acks_bytes_;
  for (const auto& [id, seg] : segments_) {
    if (seg->quarantined) continue;
    total += seg == active_ ? std::max(seg->disk_bytes, segment_bytes) : seg->disk_bytes;
  }
  for (const Spare& s : spares_) total += s.bytes;
  return total;
}

uint64_t Journal::Impl::DiskBytesLocked() const {
  uint64_t total = acks_bytes_;
  for (const auto& [id, seg] : segments_) {
    if (!seg->quarantined) total += seg->disk_bytes;
  }
  for (const Spare& s : spares_) total += s.bytes;
  return total;
}

Status Journal::Impl::MakeRoomLocked() {
  while (true) {
    std::shared_ptr<Segment> oldest;
    size_t spares;
    {
      MutexLock l(mu_);
      spares = spares_.size();
      const uint64_t need = ChargedBytesLocked() + (spares == 0 ? segment_bytes : 0);
      if (need <= opts.max_bytes) return OkStatus();
      // Candidates: sealed segments, never the newest one (it holds the latest samples).
      size_t sealed = 0;
      for (const auto& [id, seg] : segments_) {
        if (seg != active_ && !seg->quarantined) ++sealed;
      }
      if (spares <= 1 && sealed > 1) {
        for (const auto& [id, seg] : segments_) {
          if (seg != active_ && !seg->quarantined) {
            oldest = seg;
            break;
          }
        }
      }
    }
    if (spares > 1) {
      RemoveSparesLocked(spares - 1);
    } else if (oldest) {
      RemoveSegmentLocked(oldest, Removal::kBudget);
    } else {
      return OkStatus();  // nothing left to drop: the budget admits 3 segments
    }
  }
}

bool Journal::Impl::FreeSpaceLocked() {
  std::shared_ptr<Segment> oldest;
  size_t spares;
  {
    MutexLock l(mu_);
    spares = spares_.size();
    for (const auto& [id, seg] : segments_) {
      if (seg != active_ && !seg->quarantined) {
        oldest = seg;
        break;
      }
    }
  }
  if (spares > 0) {
    RemoveSparesLocked(0);
    return true;
  }
  if (!oldest) return false;
  RemoveSegmentLocked(oldest, Removal::kDiskFull);
  return true;
}

// ---------------------------------------------------------------------------------------
// Segment lifecycle.

void Journal::Impl::RecycleOrRemoveFileLocked(const std::string& name, uint64_t bytes,
                                              size_t max_spares) {
  uint64_t n = 0;
  bool recycle = false;
  {
    MutexLock l(mu_);
    uint64_t id;
    bool compressed = true;
    internal::ParseSegmentFileName(name, id, compressed);
    recycle = !compressed && bytes == segment_bytes && spares_.size() < max_spares;
    if (recycle) n = next_spare_++;
  }
  if (recycle) {
    Status st = env.Rename(Path(name), Path(internal::SpareFileName(n)));
    if (st.ok()) {
      // Durable at once: a dropped segment must not come back after a power cut.
      env.SyncDir(dir).IgnoreError();
      MutexLock l(mu_);
      spares_.push_back(Spare{n, bytes});
      return;
    }
    log.Warn("could not keep {} as a spare: {}", Path(name), st.ToString());
  }
  Status st = env.Remove(Path(name));
  if (!st.ok() && st.code() != StatusCode::kNotFound) {
    KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kWarning, "remove", "{}", st.ToString());
  }
  env.SyncDir(dir).IgnoreError();
}

void Journal::Impl::RemoveSparesLocked(size_t keep) {
  while (true) {
    Spare s;
    {
      MutexLock l(mu_);
      // Wrong-sized spares (an older segment_bytes) go first.
      std::stable_partition(spares_.begin(), spares_.end(),
                            [&](const Spare& x) { return x.bytes == segment_bytes; });
      if (spares_.size() <= keep) return;
      s = spares_.back();
      spares_.pop_back();
    }
    Status st = env.Remove(Path(internal::SpareFileName(s.n)));
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kWarning, "remove", "{}", st.ToString());
    }
  }
}

void Journal::Impl::RemoveSegmentLocked(const std::shared_ptr<Segment>& seg, Removal why) {
  uint64_t lost = 0;
  std::string name;
  uint64_t bytes = 0;
  bool quarantined = false;
  int64_t min_time = 0, max_time = 0;
  {
    MutexLock l(mu_);
    if (seg->gone) return;
    lost = UnackedLocked(seg->first_id, seg->end_id);
    const bool oldest = !segments_.empty() && segments_.begin()->second == seg;
    if (lost > 0 && why != Removal::kRetired) {
      stats_.dropped += lost;
      done_.Add(seg->first_id, seg->end_id);
      // A gap in the middle must be remembered, or the next open would report it missing.
      if (!oldest) pending_acks_.push_back(IdRange{seg->first_id, seg->end_id - seg->first_id});
    }
    seg->gone = true;
    segments_.erase(seg->first_id);
    ForgetReadersLocked(*seg);
    const uint64_t oldest_id = OldestIdLocked();
    done_.EraseBelow(oldest_id);
    durable_done_.EraseBelow(oldest_id);
    name = seg->name;
    bytes = seg->disk_bytes;
    quarantined = seg->quarantined;
    min_time = seg->min_time;
    max_time = seg->max_time;
  }
  if (lost > 0 && why != Removal::kRetired) {
    const char* reason = why == Removal::kBudget ? "the disk budget (max_bytes) is used up"
                         : why == Removal::kAge  ? "its samples are older than max_age"
                                                 : "the disk is full";
    log.Warn("dropped {}: {}; {} unacknowledged samples lost, source times {} to {}", Path(name),
             reason, lost, FormatTime(min_time), FormatTime(max_time));
  }
  if (quarantined) return;  // its file lives in quarantine/
  const size_t max_spares = why == Removal::kRetired    ? kMaxSpares
                            : why == Removal::kDiskFull ? 0
                                                        : 1;
  RecycleOrRemoveFileLocked(name, bytes, max_spares);
}

bool Journal::Impl::HandleCorruption(const std::shared_ptr<Segment>& seg, std::string_view found) {
  MutexLock wl(write_mu_);
  bool active;
  SegmentHeader h;
  std::string name;
  {
    MutexLock l(mu_);
    if (seg->gone || seg->quarantined) return false;
    active = active_ == seg;
    h = seg->Header();  // stable: only holders of write_mu_ change it
    name = seg->name;
  }
  // Check it again from the start with a fresh handle: a reader may have held a file that
  // was replaced meanwhile.
  uint64_t bad_offset = kHeaderBytes;
  uint64_t bad_id = h.first_id;
  std::string why;
  bool transient = false;  // an I/O error (EIO, EMFILE...), not bad data: retry later
  SegmentSource source;
  if (h.compressed) {
    auto file = env.Open(Path(name), OpenMode::kRead);
    Result<std::shared_ptr<const std::vector<uint8_t>>> data =
        file.ok() ? internal::DecompressSegment(**file, h)
                  : Result<std::shared_ptr<const std::vector<uint8_t>>>(file.status());
    if (!data.ok()) {
      why = data.status().ToString();
      transient = data.status().code() != StatusCode::kDataLoss;
    } else {
      source.memory = *data;
    }
  } else {
    auto file = env.Open(Path(name), OpenMode::kRead);
    if (!file.ok()) {
      why = file.status().ToString();
      transient = true;
    } else {
      source.file = std::move(file).value();
    }
  }
  if (why.empty()) {
    std::vector<uint8_t> buffer;
    RecordReader reader(source, h.seq, kHeaderBytes, h.first_id, h.data_end, buffer);
    RecordView rec;
    while (true) {
      const uint64_t offset = reader.offset();
      const uint64_t id = reader.next_id();
      const ReadOutcome o = reader.Next(rec);
      if (o == ReadOutcome::kEnd) {
        if (id != h.first_id + h.count) {
          bad_offset = offset;
          bad_id = id;
          why = fmt::format("records end at id {} before the sealed count", id);
        }
        break;
      }
      bool ok = o == ReadOutcome::kRecord;
      if (ok) {
        SampleDecoder d(rec.payload, rec.header.base_time);
        uint32_t n = 0;
        while (!d.AtEnd() && d.Skip()) ++n;
        ok = n == rec.header.count && d.AtEnd();
      }
      if (!ok) {
        bad_offset = offset;
        bad_id = id;
        why = o == ReadOutcome::kIoError  ? reader.io_status().ToString()
              : o == ReadOutcome::kRecord ? std::string("undecodable samples")
                                          : std::string(ReadOutcomeName(o));
        transient = o == ReadOutcome::kIoError;
        break;
      }
    }
  }
  if (why.empty()) return false;  // intact after all
  if (transient) {
    // Not evidence of bad data: never quarantine (and lose) a segment for it.
    KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "read", "cannot read {}: {}; retrying",
                          Path(name), why);
    return false;
  }
  if (active && !RollLocked(/*seal_short=*/false).ok()) return false;  // end it where it is

  const std::string qname = std::string(kQuarantineDir) + "/" + name;
  Status st = env.CreateDir(Path(kQuarantineDir));
  if (st.ok()) st = env.Rename(Path(name), Path(qname));
  if (st.ok()) env.SyncDir(dir).IgnoreError();
  uint64_t lost = 0;
  const uint64_t end = h.first_id + h.count;
  {
    MutexLock l(mu_);
    if (seg->gone) return false;
    lost = UnackedLocked(bad_id, end);
    stats_.dropped += lost;
    if (bad_id < end) {
      done_.Add(bad_id, end);
      pending_acks_.push_back(IdRange{bad_id, end - bad_id});
    }
    // The valid prefix stays readable (from quarantine/) until it is acknowledged.
    seg->quarantined = true;
    seg->sealed = true;
    seg->end_id = bad_id;
    seg->data_end = bad_offset;
    if (st.ok()) {
      seg->name = qname;
      ++seg->file_gen;
    }
    ForgetReadersLocked(*seg);
    RequestMaintenanceLocked();
  }
  log.Error("{}: {} ({}) at offset {}; {}; {} unacknowledged samples (ids {}..{}) lost", Path(name),
            found, why, bad_offset,
            st.ok() ? fmt::format("moved to {}/", kQuarantineDir)
                    : "could not move it to quarantine/: " + st.ToString(),
            lost, bad_id, end - 1);
  return true;
}

// ---------------------------------------------------------------------------------------
// Acknowledgements.

Status Journal::Impl::FlushAcks() {
  MutexLock al(ack_file_mu_);
  std::vector<IdRange> todo;
  {
    MutexLock l(mu_);
    todo.swap(pending_acks_);
  }
  if (todo.empty() && !acks_rewrite_) return OkStatus();
  Status st;
  if (!acks_rewrite_ && acks_file_) {
    std::vector<uint8_t> buf;
    for (size_t i = 0; i < todo.size(); i += internal::kMaxRangesPerAcksEntry) {
      const size_t n = std::min(todo.size() - i, internal::kMaxRangesPerAcksEntry);
      internal::EncodeAcksEntry(std::span(todo).subspan(i, n), buf);
    }
    st = acks_file_->WriteAt(acks_size_, std::as_bytes(std::span(buf)));
    if (st.ok()) st = TimedSync(*acks_file_);
    if (st.ok()) {
      acks_size_ += buf.size();
      MutexLock l(mu_);
      for (const IdRange& r : todo) durable_done_.Add(r);
      durable_done_.EraseBelow(OldestIdLocked());
      acks_bytes_ = acks_size_;
    } else {
      // The in-memory set is complete; rewrite the file from it (below, or next time).
      acks_rewrite_ = true;
    }
  } else {
    acks_rewrite_ = true;
  }
  // Rewrite when it grew well beyond what it holds.
  if (acks_rewrite_ || acks_size_ > std::max(kAcksCompactBytes, 2 * acks_compacted_)) {
    st = CompactAcksLocked();
  }
  if (!st.ok()) {
    {
      MutexLock l(mu_);
      CountWriteErrorLocked();
    }
    KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kError, "acks",
                          "writing acknowledgements failed (they are kept in memory): {}",
                          st.ToString());
  }
  return st;
}

Status Journal::Impl::CompactAcksLocked() {
  std::vector<IdRange> ranges;
  {
    MutexLock l(mu_);
    IdSet live = done_;
    live.EraseBelow(OldestIdLocked());
    live.EraseFrom(written_end_);
    ranges = live.ranges();
  }
  std::vector<uint8_t> buf;
  internal::EncodeAcksHeader(buf);
  for (size_t i = 0; i < ranges.size(); i += internal::kMaxRangesPerAcksEntry) {
    const size_t n = std::min(ranges.size() - i, internal::kMaxRangesPerAcksEntry);
    internal::EncodeAcksEntry(std::span(ranges).subspan(i, n), buf);
  }
  const std::string tmp = Path(std::string(kAcksName) + ".tmp");
  Status st;
  {
    auto f = env.Open(tmp, OpenMode::kCreate);
    st = f.status();
    if (st.ok()) st = (*f)->Truncate(0);
    if (st.ok()) st = (*f)->WriteAt(0, std::as_bytes(std::span(buf)));
    if (st.ok()) st = TimedSync(**f);
  }
  if (st.ok()) st = env.Rename(tmp, Path(kAcksName));
  if (st.ok()) st = env.SyncDir(dir);
  if (st.ok()) {
    auto f = env.Open(Path(kAcksName), OpenMode::kReadWrite);
    st = f.status();
    if (st.ok()) acks_file_ = std::move(f).value();
  }
  if (!st.ok()) {
    acks_rewrite_ = true;
    return st.WithContext("rewriting acks.log");
  }
  acks_rewrite_ = false;
  acks_size_ = acks_compacted_ = buf.size();
  MutexLock l(mu_);
  acks_bytes_ = acks_size_;
  for (const IdRange& r : ranges) durable_done_.Add(r);
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// Reading.

void Journal::Impl::PlaceLocked(Cursor& c, const std::shared_ptr<Segment>& seg) {
  c.seg = seg;
  c.offset = kHeaderBytes;
  c.offset_id = seg->first_id;
  // Jump to the last indexed record at or before next_id.
  const auto& idx = seg->index.entries();
  auto it = std::upper_bound(idx.begin(), idx.end(), c.next_id,
                             [](uint64_t id, const IndexEntry& e) { return id < e.first_id; });
  if (it != idx.begin()) {
    --it;
    c.offset = it->offset;
    c.offset_id = it->first_id;
  }
}

void Journal::Impl::ResolveLocked(Cursor& c, bool backlog) {
  while (true) {
    if (backlog) c.next_id = done_.NextAbsent(c.next_id);
    if (segments_.empty()) {
      c.seg.reset();
      return;
    }
    // Stay in the current segment while next_id is in it, or at the tail of the newest.
    if (c.seg && !c.seg->gone && c.next_id >= c.seg->first_id &&
        (c.next_id < c.seg->end_id || segments_.rbegin()->second == c.seg)) {
      // Skip ahead through the index when far behind (backlog ids skipped as acknowledged).
      const auto& idx = c.seg->index.entries();
      auto it = std::upper_bound(idx.begin(), idx.end(), c.next_id,
                                 [](uint64_t id, const IndexEntry& e) { return id < e.first_id; });
      if (it != idx.begin() && std::prev(it)->first_id > c.offset_id) {
        c.offset = std::prev(it)->offset;
        c.offset_id = std::prev(it)->first_id;
      }
      return;
    }
    auto it = segments_.upper_bound(c.next_id);  // the first segment starting after next_id
    if (it != segments_.begin()) {
      const std::shared_ptr<Segment>& prev = std::prev(it)->second;
      if (c.next_id < prev->end_id || it == segments_.end()) {
        PlaceLocked(c, prev);  // holds next_id, or next_id is at the tail
        return;
      }
    }
    // In a gap or before the oldest segment: those ids are gone; go to the next segment.
    c.next_id = it->first;
    PlaceLocked(c, it->second);
  }
}

void Journal::Impl::ResetBacklogLocked() {
  backlog_.next_id = done_.NextAbsent(OldestIdLocked());
  backlog_.seg.reset();
  ++backlog_.gen;
}

SampleBatch Journal::Impl::ReadLane(Lane& lane, bool backlog, size_t max) {
  SampleBatch out;
  int discarded = 0;
  // A handle on a removed file would keep its space allocated.
  auto release_gone = [&]() KILN_REQUIRES(lane.mu) {
    bool gone = false;
    if (lane.file_seg) {
      MutexLock l(mu_);
      gone = lane.file_seg->gone;
    }
    if (gone) {
      lane.file.reset();
      lane.file_seg.reset();
    }
  };
  release_gone();
  while (out.samples.size() < max) {
    // 1. Where to read, under the lock.
    std::shared_ptr<Segment> seg;
    std::shared_ptr<File> active_file;
    SegmentHeader h;
    std::string name;
    uint64_t gen, file_gen, offset, offset_id;
    std::vector<IdRange> runs;
    {
      MutexLock l(mu_);
      Cursor& c = CursorLocked(backlog);
      ResolveLocked(c, backlog);
      const uint64_t stop = backlog ? boundary_ : written_end_;
      if (!c.seg || c.next_id >= stop) break;
      seg = c.seg;
      const uint64_t window_end = std::min(stop, seg->end_id);
      if (c.next_id >= window_end) break;  // at the tail of the newest segment
      const uint64_t want = max - out.samples.size();
      if (backlog) {
        runs = AbsentRuns(done_, c.next_id, window_end, want);
      } else {
        runs.push_back(IdRange{c.next_id, std::min<uint64_t>(window_end - c.next_id, want)});
      }
      if (runs.empty()) {
        c.next_id = window_end;
        continue;
      }
      gen = c.gen;
      offset = c.offset;
      offset_id = c.offset_id;
      h = seg->Header();
      name = seg->name;
      file_gen = seg->file_gen;
      if (seg == active_) active_file = seg->file;
    }

    // 2. The source: the active file, this lane's handle, or the shared decompressed data.
    SegmentSource source;
    std::string source_error;
    if (active_file) {
      source.file = active_file;
    } else if (h.compressed) {
      {
        MutexLock l(mu_);
        if (cache_seg_ == seg) source.memory = cache_data_;
      }
      if (!source.memory) {
        auto file = env.Open(Path(name), OpenMode::kRead);
        auto data = file.ok() ? internal::DecompressSegment(**file, h)
                              : Result<std::shared_ptr<const std::vector<uint8_t>>>(file.status());
        if (data.ok()) {
          source.memory = *data;
          MutexLock l(mu_);
          if (!seg->gone) {
            cache_seg_ = seg;
            cache_data_ = *data;
          }
        } else {
          source_error = data.status().ToString();
        }
      }
    } else {
      if (lane.file_seg != seg || lane.file_gen != file_gen || !lane.file) {
        lane.file.reset();
        auto file = env.Open(Path(name), OpenMode::kRead);
        if (file.ok()) {
          lane.file = std::move(file).value();
          lane.file_seg = seg;
          lane.file_gen = file_gen;
        } else {
          source_error = file.status().ToString();
        }
      }
      source.file = lane.file;
    }

    // 3. Read and decode, outside the lock.
    const size_t base = out.samples.size();
    std::vector<IdRange> ids;
    uint64_t pos_offset = offset, pos_id = offset_id, next_id = runs.front().first;
    std::string bad;
    if (!source_error.empty()) {
      bad = source_error;
    } else {
      RecordReader reader(source, h.seq, offset, offset_id, h.data_end, lane.buffer);
      RecordView rec;
      size_t r = 0;
      while (r < runs.size()) {
        const uint64_t rec_offset = reader.offset();
        const uint64_t rec_id = reader.next_id();
        const ReadOutcome o = reader.Next(rec);
        if (o != ReadOutcome::kRecord) {
          bad = o == ReadOutcome::kIoError ? reader.io_status().ToString()
                : o == ReadOutcome::kEnd   ? std::string("records end before the ids do")
                                           : std::string(ReadOutcomeName(o));
          break;
        }
        if (rec.end_id() <= runs[r].first) {  // nothing wanted in this record
          pos_offset = reader.offset();
          pos_id = reader.next_id();
          continue;
        }
        SampleDecoder d(rec.payload, rec.header.base_time);
        bool whole = true;
        for (uint64_t id = rec_id; id < rec.end_id(); ++id) {
          while (r < runs.size() && id >= runs[r].end()) ++r;
          if (r == runs.size()) {
            whole = false;
            break;
          }
          bool ok;
          if (id < runs[r].first) {
            ok = d.Skip();
          } else {
            ok = d.Next(out.samples.emplace_back());
            if (ok) AppendId(ids, id);
          }
          if (!ok) {
            bad = "undecodable samples";
            break;
          }
        }
        if (!bad.empty()) break;
        while (r < runs.size() && runs[r].end() <= rec.end_id()) ++r;
        if (whole) {
          pos_offset = reader.offset();
          pos_id = reader.next_id();
        } else {
          pos_offset = rec_offset;
          pos_id = rec_id;
        }
      }
      if (bad.empty()) next_id = runs.back().end();
    }

    // 4. Commit the new position, unless someone moved the cursor or the segment went.
    bool retry = false;
    {
      MutexLock l(mu_);
      Cursor& c = CursorLocked(backlog);
      if (c.gen != gen || seg->gone || c.seg != seg) {
        retry = true;
      } else if (bad.empty()) {
        c.next_id = next_id;
        c.offset = pos_offset;
        c.offset_id = pos_id;
        for (const IdRange& r : ids) {
          if (!out.ids.empty() && out.ids.back().end() == r.first) {
            out.ids.back().count += r.count;
          } else {
            out.ids.push_back(r);
          }
        }
      }
    }
    if (retry || !bad.empty()) out.samples.resize(base);
    if (retry) {
      if (++discarded > 100) break;  // should never happen; do not spin
      continue;
    }
    if (!bad.empty()) {
      // Corrupt or unreadable: quarantine (after checking again) and carry on after it.
      lane.file.reset();
      if (!HandleCorruption(seg, "bad record") && ++discarded > 100) break;
      continue;
    }
  }
  release_gone();
  return out;
}

// ---------------------------------------------------------------------------------------
// Background work.

void Journal::Impl::SyncLoop() {
  while (true) {
    uint64_t end;
    {
      MutexLock l(mu_);
      sync_idle_ = true;
      work_cv_.Wait(l, [&]() KILN_REQUIRES(mu_) {
        return stop_ || written_end_ > durable_end_ || !pending_acks_.empty();
      });
      sync_idle_ = false;
      if (stop_) return;
      // Gather for one interval (kBatch: or until enough records are pending), then sync
      // everything at once.
      work_cv_.WaitFor(l, opts.sync_interval, [&]() KILN_REQUIRES(mu_) {
        return stop_ || (opts.sync == SyncPolicy::kBatch && pending_records_ >= opts.sync_batch);
      });
      if (stop_) return;
      end = written_end_;
    }
    SyncTo(end).IgnoreError();  // counted and logged inside
    bool acks;
    {
      MutexLock l(mu_);
      acks = !pending_acks_.empty();
    }
    if (acks && FlushAcks().ok()) {
      MutexLock l(mu_);
      RequestMaintenanceLocked();  // segments may be fully acknowledged now
    }
    // Do not spin on a storage that keeps failing.
    MutexLock l(mu_);
    if (durable_end_ < end) {
      work_cv_.WaitFor(l, opts.sync_interval, [&]() KILN_REQUIRES(mu_) { return stop_; });
    }
  }
}

void Journal::Impl::MaintenanceLoop() {
  while (true) {
    {
      MutexLock l(mu_);
      maint_cv_.WaitFor(l, kMaintenancePeriod,
                        [&]() KILN_REQUIRES(mu_) { return stop_ || maint_requested_; });
      if (stop_) return;
      maint_requested_ = false;
    }
    MaintenancePass().IgnoreError();  // logged inside
  }
}

Status Journal::Impl::RunOnce() {
  uint64_t end;
  {
    MutexLock l(mu_);
    end = written_end_;
  }
  Status first = SyncTo(end);
  Status st = FlushAcks();
  if (first.ok()) first = st;
  st = MaintenancePass();
  if (first.ok()) first = st;
  return first;
}

Status Journal::Impl::MaintenancePass() {
  Status first;
  if (opts.max_age.count() > 0) first = DropByAge();
  RetireDone();
  if (opts.compress && CompressOne()) {
    MutexLock l(mu_);
    RequestMaintenanceLocked();  // maybe more to compress
  }
  PrepareSpare();
  return first;
}

Status Journal::Impl::DropByAge() {
  const int64_t cutoff = clock.Now().time_since_epoch().count() -
                         std::chrono::duration_cast<std::chrono::nanoseconds>(opts.max_age).count();
  MutexLock wl(write_mu_);
  std::vector<std::shared_ptr<Segment>> old;
  bool middle = false;
  {
    MutexLock l(mu_);
    bool prefix = true;
    for (const auto& [id, seg] : segments_) {
      if (seg == active_ || seg->empty() || seg->max_time >= cutoff) {
        prefix = false;
        continue;
      }
      old.push_back(seg);
      if (!prefix) middle = true;
    }
  }
  if (old.empty()) return OkStatus();
  for (const auto& seg : old) RemoveSegmentLocked(seg, Removal::kAge);
  // Dropped ranges in the middle go to acks.log, so a restart does not report them missing.
  if (middle) return FlushAcks();
  return OkStatus();
}

void Journal::Impl::RetireDone() {
  // Only what acks.log holds durably counts: a retired segment whose acknowledgements were
  // lost would look like missing ids after a crash.
  FlushAcks().IgnoreError();
  MutexLock wl(write_mu_);
  std::vector<std::shared_ptr<Segment>> done;
  {
    MutexLock l(mu_);
    for (const auto& [id, seg] : segments_) {
      if (seg == active_ || !seg->sealed) continue;
      const uint64_t n = seg->end_id - seg->first_id;
      if (durable_done_.CountIn(seg->first_id, seg->end_id) == n) done.push_back(seg);
    }
  }
  for (const auto& seg : done) RemoveSegmentLocked(seg, Removal::kRetired);
}

bool Journal::Impl::CompressOne() {
  std::shared_ptr<Segment> seg;
  SegmentHeader h;
  std::string name;
  uint64_t file_gen;
  {
    MutexLock l(mu_);
    for (const auto& [id, s] : segments_) {
      if (s == active_ || !s->sealed || s->compressed || s->quarantined || s->empty()) continue;
      if (UnackedLocked(s->first_id, s->end_id) == 0) continue;  // about to be retired
      seg = s;
      break;
    }
    if (!seg) return false;
    h = seg->Header();
    name = seg->name;
    file_gen = seg->file_gen;
  }
  const std::string zname = internal::SegmentFileName(h.first_id, true);
  const std::string tmp = Path(zname + ".tmp");
  uint64_t compressed_bytes = 0;
  Status st;
  {
    auto in = env.Open(Path(name), OpenMode::kRead);
    auto out = env.Open(tmp, OpenMode::kCreate);
    st = in.ok() ? out.status() : in.status();
    if (st.ok()) st = (*out)->Truncate(0);
    if (st.ok()) {
      std::vector<uint8_t> buffer;
      SegmentSource source{std::move(in).value(), nullptr};
      st = internal::CompressSegment(source, h, **out, kZstdLevel, buffer, compressed_bytes);
    }
    if (st.ok()) st = TimedSync(**out);
  }
  if (!st.ok()) {
    env.Remove(tmp).IgnoreError();
    if (st.code() == StatusCode::kDataLoss) {
      HandleCorruption(seg, "found while compressing");
    } else {
      KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kWarning, "compress",
                            "compressing {} failed: {}", Path(name), st.ToString());
    }
    return false;
  }
  MutexLock wl(write_mu_);
  {
    MutexLock l(mu_);
    if (seg->gone || seg->quarantined || seg->file_gen != file_gen) {
      env.Remove(tmp).IgnoreError();
      return true;
    }
  }
  // The .zst is complete and durable before it gets its name; the original goes after.
  st = env.Rename(tmp, Path(zname));
  if (st.ok()) st = env.SyncDir(dir);
  if (!st.ok()) {
    env.Remove(tmp).IgnoreError();
    KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kWarning, "compress", "compressing {} failed: {}",
                          Path(name), st.ToString());
    return false;
  }
  uint64_t old_bytes;
  {
    MutexLock l(mu_);
    old_bytes = seg->disk_bytes;
    seg->name = zname;
    seg->compressed = true;
    seg->compressed_bytes = compressed_bytes;
    seg->disk_bytes = kHeaderBytes + compressed_bytes;
    ++seg->file_gen;
  }
  log.Debug("compressed {}: {} -> {} bytes", Path(name), old_bytes,
            kHeaderBytes + compressed_bytes);
  RecycleOrRemoveFileLocked(name, old_bytes, kMaxSpares);
  return true;
}

void Journal::Impl::PrepareSpare() {
  uint64_t n;
  {
    MutexLock l(mu_);
    if (!spares_.empty() || ChargedBytesLocked() + segment_bytes > opts.max_bytes) return;
    // Zeros cost a second write of every byte during an outage (no segment is retired then)
    // and flash wear; they pay off only where each append waits for its sync (kAlways: a sync
    // into written space is ~1.5x faster than one that allocates). Group commit amortises
    // its syncs, so it recycles retired segments only. And only once the segment being
    // written is half full: an idle or small installation never writes zeros it may not need.
    if (opts.sync != SyncPolicy::kAlways) return;
    if (!active_ || active_->data_end < segment_bytes / 2) return;
    n = next_spare_++;
  }
  // Written without any lock held: this takes a while.
  const std::string name = internal::SpareFileName(n);
  const std::string tmp = Path(name + ".tmp");
  Status st;
  {
    auto f = env.Open(tmp, OpenMode::kCreate);
    st = f.status();
    if (st.ok()) st = (*f)->Truncate(0);
    const std::vector<std::byte> zeros(std::min<uint64_t>(segment_bytes, kMiB));
    for (uint64_t off = 0; st.ok() && off < segment_bytes; off += zeros.size()) {
      const uint64_t n_bytes = std::min<uint64_t>(zeros.size(), segment_bytes - off);
      st = (*f)->WriteAt(off, std::span(zeros).first(n_bytes));
    }
    if (st.ok()) st = TimedSync(**f);
  }
  MutexLock wl(write_mu_);
  bool keep = false;
  if (st.ok()) {
    MutexLock l(mu_);
    keep = spares_.empty() && ChargedBytesLocked() + segment_bytes <= opts.max_bytes;
  }
  if (keep) st = env.Rename(tmp, Path(name));
  if (!keep || !st.ok()) {
    env.Remove(tmp).IgnoreError();
    if (!st.ok()) {
      KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kWarning, "spare",
                            "preparing a spare segment failed: {}", st.ToString());
    }
    return;
  }
  MutexLock l(mu_);
  spares_.push_back(Spare{n, segment_bytes});
}

QueueStats Journal::Impl::Stats() const {
  MutexLock l(mu_);
  QueueStats s = stats_;
  s.bytes = DiskBytesLocked();
  s.depth = 0;
  s.oldest_unacked_ns = 0;
  for (const auto& [first, seg] : segments_) s.depth += UnackedLocked(seg->first_id, seg->end_id);
  for (const auto& [first, seg] : segments_) {
    const uint64_t oldest = done_.NextAbsent(seg->first_id);
    if (oldest >= seg->end_id) continue;
    s.oldest_unacked_ns = seg->min_time;
    const auto& idx = seg->index.entries();
    auto it = std::upper_bound(idx.begin(), idx.end(), oldest,
                               [](uint64_t id, const IndexEntry& e) { return id < e.first_id; });
    if (it != idx.begin()) s.oldest_unacked_ns = std::prev(it)->min_time;
    break;
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// Journal.

Result<std::unique_ptr<Journal>> Journal::Open(JournalOptions options, const Clock& clock,
                                               Logger log) {
  if (options.dir.empty()) return InvalidArgumentError("journal: no directory");
  uint64_t seg = options.segment_bytes;
  if (seg == 0) {
    seg = std::clamp<uint64_t>(options.max_bytes / 16, 64 * kKiB, 64 * kMiB) / 4096 * 4096;
  }
  if (seg < kMinSegmentBytes || seg > kMaxSegmentBytes || seg % 4096 != 0) {
    return InvalidArgumentError(
        fmt::format("journal: segment_bytes {} must be a multiple of 4096 between {} and {}", seg,
                    kMinSegmentBytes, kMaxSegmentBytes));
  }
  if (options.max_bytes < 3 * seg) {
    return InvalidArgumentError(fmt::format(
        "journal: max_bytes {} must hold at least 3 segments of {} bytes", options.max_bytes, seg));
  }
  if (options.sync_interval.count() <= 0) {
    return InvalidArgumentError("journal: sync_interval must be positive");
  }
  if (options.sync_batch == 0) options.sync_batch = 1;
  auto impl = std::make_unique<Impl>(std::move(options), clock, std::move(log), seg);
  Status st = impl->Recover();
  if (!st.ok()) return st.WithContext(fmt::format("journal {}", impl->dir));
  impl->StartThreads();
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Journal::~Journal() { impl_->Shutdown(); }

Status Journal::Push(std::span<const contract::Sample> samples) { return impl_->Push(samples); }

uint64_t Journal::StartDelivery() {
  MutexLock l(impl_->mu_);
  impl_->ResolveLocked(impl_->live_, /*backlog=*/false);  // past what was dropped
  impl_->boundary_ = impl_->live_.next_id;
  impl_->ResetBacklogLocked();
  return impl_->boundary_;
}

SampleBatch Journal::ReadLive(size_t max, MonoTime deadline) {
  Impl& m = *impl_;
  m.Flush();  // what Pushes that returned queued is readable
  MutexLock lane(m.live_lane_.mu);
  bool woken;
  {
    MutexLock l(m.mu_);
    m.data_cv_.WaitUntil(l, deadline, [&]() KILN_REQUIRES(m.mu_) {
      return m.woken_ || m.stop_ || m.live_.next_id < m.written_end_;
    });
    woken = m.woken_ || m.stop_;
    m.woken_ = false;
  }
  SampleBatch batch = m.ReadLane(m.live_lane_, /*backlog=*/false, max);
  if (batch.empty() && !woken) {
    // Samples may be there but unreadable (an I/O error): wait as if there were none, rather
    // than have the caller spin. (Without samples the deadline has passed: no wait.)
    MutexLock l(m.mu_);
    m.data_cv_.WaitUntil(l, deadline, [&]() KILN_REQUIRES(m.mu_) { return m.woken_ || m.stop_; });
  }
  return batch;
}

SampleBatch Journal::ReadBacklog(size_t max) {
  MutexLock lane(impl_->backlog_lane_.mu);
  return impl_->ReadLane(impl_->backlog_lane_, /*backlog=*/true, max);
}

void Journal::Ack(std::span<const IdRange> ids) {
  Impl& m = *impl_;
  MutexLock l(m.mu_);
  const uint64_t lo = m.OldestIdLocked();
  const uint64_t hi = m.written_end_;
  bool any = false;
  for (const IdRange& r : ids) {
    const uint64_t first = std::max(r.first, lo);
    const uint64_t end = std::min(r.end(), hi);
    if (first >= end) continue;
    const uint64_t added = m.done_.Add(first, end);
    if (added == 0) continue;
    m.stats_.acked += added;
    any = true;
    if (!m.pending_acks_.empty() && m.pending_acks_.back().end() == first) {
      m.pending_acks_.back().count += end - first;
    } else {
      m.pending_acks_.push_back(IdRange{first, end - first});
    }
  }
  if (any && m.sync_idle_) m.work_cv_.NotifyOne();
}

void Journal::Wake() {
  {
    MutexLock l(impl_->mu_);
    impl_->woken_ = true;
  }
  impl_->data_cv_.NotifyAll();
}

QueueStats Journal::stats() const { return impl_->Stats(); }

Status Journal::WaitDurable(uint64_t end) {
  impl_->Flush();
  Status st = impl_->SyncTo(end);
  MutexLock l(impl_->q_mu_);
  Status failed_append = std::exchange(impl_->deferred_error_, OkStatus());
  return failed_append.ok() ? st : failed_append;
}

uint64_t Journal::next_id() const {
  impl_->Flush();
  MutexLock l(impl_->mu_);
  return impl_->written_end_;
}

Status Journal::RunOnce() { return impl_->RunOnce(); }

}  // namespace kiln::queue
