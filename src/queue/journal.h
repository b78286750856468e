#pragma once
// Journal: the durable SampleQueue. An append-only, segmented log of samples on local disk,
// written so that kiln-edge loses nothing through broker outages, kill -9 or power cuts, and
// drops only by an explicit, counted policy when its disk budget runs out.
//
// Directory layout (JournalOptions::dir):
//   seg-<first id, 20 digits>.log   segments, oldest first; the last one is being written
//   seg-<first id>.zst              a sealed segment compressed with zstd (optional)
//   spare-<n>.log                   zero-filled or retired segment files kept to be
//                                   overwritten (a sync into already-written file space is
//                                   ~1.5x faster than one that grows the file)
//   acks.log                        acknowledged id ranges (framed, CRC32C), rewritten at open
//   LOCK                            held (flock) while a Journal has the directory open
//   quarantine/                     segments found corrupt, kept for inspection; not counted
//                                   in max_bytes and never deleted by the journal
// Formats and recovery rules: docs/formats/journal.md.
//
// Durability: Push encodes its samples into records and appends them (readers see them when
// Push returns) and makes them durable according to JournalOptions::sync; WaitDurable blocks
// until ids are on disk. With background threads and group commit (kInterval, kBatch) the
// append itself is done by a writer thread, so that encoding one Push overlaps writing the
// one before: Push returns once its records are queued, a reader waits for the writer to
// catch up, and a failed write is returned by the next Push or WaitDurable. Every
// acknowledged-durable sample is delivered at least once, across crashes, unless it is
// dropped by the budget, max_age, a tag table change or corruption, which are counted in
// QueueStats::dropped and logged.
// Crash safety: a torn or corrupt tail is detected by CRC, cut off and logged; a sealed
// segment whose records do not check out is moved to quarantine/ and its unread samples are
// counted as dropped and logged, never skipped silently.
// Thread-safe. Runs background threads (sync, maintenance, and the writer for kInterval and
// kBatch) unless options.background is false.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include "core/clock.h"
#include "core/env.h"
#include "core/log.h"
#include "core/status.h"
#include "queue/sample_queue.h"

namespace kiln::queue {

enum class SyncPolicy {
  kInterval,  // fdatasync at most `sync_interval` after an append (group commit)
  kBatch,     // fdatasync once `sync_batch` records are pending (and at least every interval)
  kAlways,    // every Push returns only once its records are durable (concurrent Pushes share
              // one fdatasync)
};

struct JournalOptions {
  std::filesystem::path dir;  // created (with parents) when missing
  // Budget for everything in `dir` (segments, spares, acks.log). When a new segment would
  // exceed it, spares go first, then whole oldest segments (drop-oldest), their
  // unacknowledged samples counted as dropped. Must hold at least 3 segments.
  uint64_t max_bytes = uint64_t{2} << 30;
  // Samples older than this (by source time, at segment granularity: a segment goes when its
  // newest sample is older) are dropped; 0: never.
  std::chrono::seconds max_age{0};
  // Size of one segment file, a multiple of 4 KiB in 16 KiB..1 GiB; 0 derives it from
  // max_bytes (max_bytes / 16, within 64 KiB..64 MiB).
  uint64_t segment_bytes = 0;
  SyncPolicy sync = SyncPolicy::kInterval;
  std::chrono::milliseconds sync_interval{100};
  size_t sync_batch = 1000;  // records
  bool compress = false;     // zstd-compress sealed segments in the background
  // Identifies the tag table (ids -> names) the samples were written with; stored in each
  // segment. Samples of segments written with another fingerprint are dropped, counted and
  // logged at open, since their tag ids may mean other tags now.
  uint64_t tag_fingerprint = 0;
  // The file system; nullptr: Env::Default(). Must outlive the journal.
  Env* env = nullptr;
  // false: no background threads; nothing is synced, retired, compressed or prepared unless
  // the owner calls RunOnce() (tests). kAlways and WaitDurable still sync.
  bool background = true;
};

class Journal final : public SampleQueue {
 public:
  // Opens or creates the journal in options.dir, recovering what is there: cuts off a torn
  // tail, quarantines corrupt segments, loads the acknowledged ranges. Errors:
  // InvalidArgument (options: budget below 3 segments, bad segment size, empty dir);
  // Unavailable / PermissionDenied naming the path when the directory cannot be used
  // (including when another Journal holds it); FailedPrecondition when a segment was written
  // by a newer format version (nothing is changed then).
  static Result<std::unique_ptr<Journal>> Open(JournalOptions options, const Clock& clock,
                                               Logger log);
  ~Journal() override;  // syncs what is pending and seals the segment being written

  // Errors (the samples concerned are counted as dropped, and write_errors counts the
  // failure): ResourceExhausted (disk full, after trying once to make room by dropping the
  // oldest segment), Unavailable / PermissionDenied (storage failure, read-only), each
  // naming the path. With a writer thread the error is that of an earlier Push whose
  // records could not be written: the first such failure since the last report, reported
  // once, by Push or WaitDurable (the others are counted and logged); a Push whose own
  // records fail returns OK. With kAlways, a failed sync is returned too; those samples stay
  // queued (not counted as dropped) but may not survive a crash. InvalidArgument: some samples were
  // too large for a record (see the message) and were dropped; the others were stored.
  // The journal keeps working after errors: later Pushes succeed once storage does.
  Status Push(std::span<const contract::Sample> samples) override;
  uint64_t StartDelivery() override;
  SampleBatch ReadLive(size_t max, MonoTime deadline) override;
  SampleBatch ReadBacklog(size_t max) override;
  void Ack(std::span<const IdRange> ids) override;
  void Wake() override;
  // bytes: every file in dir (quarantine/ excluded). depth: unacknowledged samples held.
  // appended and depth count samples once written (with a writer thread, shortly after
  // their Push returned).
  // oldest_unacked_ns: the smallest source time of the record holding the oldest
  // unacknowledged sample, found through each segment's sparse index (exact to within
  // 1/160 of a segment; the segment's minimum when it has no index).
  QueueStats stats() const override;

  // Blocks until every id below `end` (clamped to next_id()) is durable, starting a sync when
  // none is under way. Errors: the sync's error, or a failed write not yet reported by Push.
  Status WaitDurable(uint64_t end);
  // The id the next appended sample gets (after what earlier Pushes queued is written).
  uint64_t next_id() const;
  // One pass of the background work: sync pending data and acknowledgements, drop segments
  // past max_age, retire acknowledged segments, compress one sealed segment, prepare a
  // spare. The background threads call it; call it yourself when options.background is
  // false. Errors: the first failure (the pass goes on after it).
  Status RunOnce();

  struct Impl;

 private:
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::queue
