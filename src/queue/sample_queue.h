#pragma once
// SampleQueue: the hand-over between the device loops (producers) and the Sparkplug
// publisher (the one consumer). Samples get consecutive ids; the consumer reads ahead
// with Read() and releases with Ack() once they are delivered, so a durable
// implementation can keep unacknowledged samples across a restart. Thread-safe.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "contract/sample.h"
#include "core/clock.h"
#include "core/mutex.h"
#include "core/status.h"

namespace kiln::queue {

struct SampleBatch {
  uint64_t first_id = 0;  // id of samples[0]; the rest follow consecutively
  std::vector<contract::Sample> samples;
};

struct QueueStats {
  uint64_t depth = 0;     // samples held (read or not) that are not acknowledged
  uint64_t appended = 0;  // samples accepted since start
  uint64_t acked = 0;     // samples acknowledged since start
  uint64_t dropped = 0;   // samples discarded by the overflow policy since start
};

class SampleQueue {
 public:
  virtual ~SampleQueue() = default;

  // Appends samples in order. When the queue is full the oldest samples are dropped and
  // counted (drop-oldest), so producers never block. Errors: Unavailable when the
  // storage cannot take them.
  virtual Status Push(std::span<const contract::Sample> samples) = 0;

  // Returns up to `max` samples after the read cursor, waiting until `deadline` for at least
  // one (an empty batch on timeout or after Wake()), and moves the cursor past them.
  virtual SampleBatch Read(size_t max, MonoTime deadline) = 0;

  // Releases every sample with id <= `id`.
  virtual void Ack(uint64_t id) = 0;

  // Moves the read cursor back to the oldest unacknowledged sample (after a lost
  // connection, to send again what may not have arrived).
  virtual void Rewind() = 0;

  // Makes a waiting Read() return now.
  virtual void Wake() = 0;

  virtual QueueStats stats() const = 0;
};

// A bounded in-memory SampleQueue: nothing survives a restart.
class MemorySampleQueue final : public SampleQueue {
 public:
  explicit MemorySampleQueue(size_t max_samples);

  Status Push(std::span<const contract::Sample> samples) override;
  SampleBatch Read(size_t max, MonoTime deadline) override;
  void Ack(uint64_t id) override;
  void Rewind() override;
  void Wake() override;
  QueueStats stats() const override;

 private:
  const size_t max_samples_;
  mutable Mutex mu_;
  CondVar cv_;
  // Samples with ids [head_id_, head_id_ + samples_.size()); read cursor at read_id_. A
  // deque, so memory follows the backlog instead of the bound.
  std::deque<contract::Sample> samples_ KILN_GUARDED_BY(mu_);
  uint64_t head_id_ KILN_GUARDED_BY(mu_) = 1;
  uint64_t read_id_ KILN_GUARDED_BY(mu_) = 1;
  bool woken_ KILN_GUARDED_BY(mu_) = false;
  QueueStats stats_ KILN_GUARDED_BY(mu_);
};

}  // namespace kiln::queue
