#pragma once
// SampleQueue: where device runners put samples and the uplink takes them, with explicit
// acknowledgement. Every sample gets the next id (1, 2, ...). Delivery has two lanes:
//   live     ids from the live cursor on, read as they arrive (ReadLive);
//   backlog  unacknowledged ids below the boundary set by StartDelivery (ReadBacklog),
//            replayed oldest first as history.
// A sample leaves the queue only when acknowledged (Ack): anything read and not acknowledged
// when a session ends is read again after the next StartDelivery, as backlog.
// Implementations: MemorySampleQueue (bounded, lost on exit) and Journal (queue/journal.h:
// durable on disk). Thread-safe.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "contract/sample.h"
#include "core/clock.h"
#include "core/mutex.h"
#include "core/status.h"
#include "queue/id_set.h"

namespace kiln::queue {

struct SampleBatch {
  std::vector<contract::Sample> samples;
  // The ids of `samples`, in order: the counts add up to samples.size().
  std::vector<IdRange> ids;
  bool empty() const { return samples.empty(); }
};

struct QueueStats {
  uint64_t appended = 0;  // samples accepted by Push
  uint64_t acked = 0;     // samples acknowledged as delivered
  uint64_t dropped = 0;   // samples discarded unsent (budget, age, failed writes, corruption)
  uint64_t depth = 0;     // samples held and not acknowledged
  uint64_t bytes = 0;     // bytes held (on disk for the journal, including spare segments)
  int64_t oldest_unacked_ns =
      0;                      // source time (ns since epoch) of the oldest unacked sample; 0: none
  uint64_t write_errors = 0;  // failed appends or syncs (e.g. ENOSPC, read-only storage)
  uint64_t fsyncs = 0;        // data syncs and the time they took
  double fsync_seconds = 0;
  double fsync_seconds_max = 0;  // slowest sync since open
};

class SampleQueue {
 public:
  virtual ~SampleQueue() = default;

  // Appends samples in order. Returns once they are as durable as the implementation's
  // policy promises. Errors: samples could not be stored (they are counted as dropped):
  // ResourceExhausted (disk full), Unavailable (storage failure). An implementation that
  // writes in the background (Journal) reports such a failure with a later call.
  virtual Status Push(std::span<const contract::Sample> samples) = 0;

  // Starts a delivery pass (one MQTT session): the live cursor becomes the boundary, so every
  // unacknowledged id below it is backlog, and the backlog cursor restarts at the oldest
  // unacknowledged id. Returns the boundary. Before the first call the live cursor is at
  // the end of what was stored at open.
  virtual uint64_t StartDelivery() = 0;
  // Samples from the live cursor on, waiting until `deadline` for at least one (or Wake()).
  virtual SampleBatch ReadLive(size_t max, MonoTime deadline) = 0;
  // The next unacknowledged backlog samples, oldest first; empty when the backlog cursor
  // reached the boundary. Never waits for new samples.
  virtual SampleBatch ReadBacklog(size_t max) = 0;
  // Marks ids as delivered: they are never read again and their space is reclaimed.
  virtual void Ack(std::span<const IdRange> ids) = 0;
  // Makes a waiting ReadLive return (possibly empty).
  virtual void Wake() = 0;
  virtual QueueStats stats() const = 0;
};

// Bounded, in-memory SampleQueue: when full it drops the oldest samples, acknowledged or not,
// and counts the unacknowledged ones as dropped. Push never fails.
class MemorySampleQueue final : public SampleQueue {
 public:
  explicit MemorySampleQueue(size_t max_samples);

  Status Push(std::span<const contract::Sample> samples) override;
  uint64_t StartDelivery() override;
  SampleBatch ReadLive(size_t max, MonoTime deadline) override;
  SampleBatch ReadBacklog(size_t max) override;
  void Ack(std::span<const IdRange> ids) override;
  void Wake() override;
  QueueStats stats() const override;

 private:
  // Drops acknowledged samples at the head.
  void TrimLocked() KILN_REQUIRES(mu_);

  const size_t max_samples_;
  mutable Mutex mu_;
  CondVar cv_;
  std::deque<contract::Sample> samples_ KILN_GUARDED_BY(mu_);
  uint64_t head_id_ KILN_GUARDED_BY(mu_) = 1;  // id of samples_.front()
  uint64_t live_id_ KILN_GUARDED_BY(mu_) = 1;
  uint64_t boundary_ KILN_GUARDED_BY(mu_) = 1;
  uint64_t backlog_id_ KILN_GUARDED_BY(mu_) = 1;
  IdSet acked_ KILN_GUARDED_BY(mu_);
  bool woken_ KILN_GUARDED_BY(mu_) = false;
  QueueStats stats_ KILN_GUARDED_BY(mu_);
};

}  // namespace kiln::queue
