#include "core/check.h"
#include "queue/sample_queue.h"

namespace kiln::queue {

MemorySampleQueue::MemorySampleQueue(size_t max_samples) : max_samples_(max_samples) {
  KILN_CHECK(max_samples > 0);
}

Status MemorySampleQueue::Push(std::span<const contract::Sample> samples) {
  {
    MutexLock lock(mu_);
    for (const auto& s : samples) {
      if (samples_.size() == max_samples_) {
        // Drop the oldest sample; no cursor may point before the head.
        if (!acked_.Contains(head_id_)) ++stats_.dropped;
        samples_.pop_front();
        ++head_id_;
        acked_.EraseBelow(head_id_);
        live_id_ = std::max(live_id_, head_id_);
        backlog_id_ = std::max(backlog_id_, head_id_);
      }
      samples_.push_back(s);
      ++stats_.appended;
    }
    TrimLocked();
  }
  cv_.NotifyAll();
  return OkStatus();
}

void MemorySampleQueue::TrimLocked() {
  while (!samples_.empty() && acked_.Contains(head_id_)) {
    samples_.pop_front();
    ++head_id_;
  }
  acked_.EraseBelow(head_id_);
  stats_.depth = samples_.size() - acked_.size();
  stats_.oldest_unacked_ns = 0;
  if (!samples_.empty()) {
    stats_.oldest_unacked_ns = samples_.front().source_time.time_since_epoch().count();
  }
}

uint64_t MemorySampleQueue::StartDelivery() {
  MutexLock lock(mu_);
  boundary_ = live_id_;
  backlog_id_ = head_id_;
  return boundary_;
}

SampleBatch MemorySampleQueue::ReadLive(size_t max, MonoTime deadline) {
  MutexLock lock(mu_);
  cv_.WaitUntil(lock, deadline, [&]() KILN_REQUIRES(mu_) {
    return woken_ || live_id_ < head_id_ + samples_.size();
  });
  woken_ = false;
  SampleBatch batch;
  const uint64_t end = head_id_ + samples_.size();
  const size_t n = static_cast<size_t>(std::min<uint64_t>(end - live_id_, max));
  if (n == 0) return batch;
  const auto first = samples_.begin() + static_cast<std::ptrdiff_t>(live_id_ - head_id_);
  batch.samples.assign(first, first + static_cast<std::ptrdiff_t>(n));
  batch.ids.push_back(IdRange{live_id_, n});
  live_id_ += n;
  return batch;
}

SampleBatch MemorySampleQueue::ReadBacklog(size_t max) {
  MutexLock lock(mu_);
  SampleBatch batch;
  while (batch.samples.size() < max) {
    backlog_id_ = acked_.NextAbsent(std::max(backlog_id_, head_id_));
    if (backlog_id_ >= boundary_) break;
    batch.samples.push_back(samples_[static_cast<size_t>(backlog_id_ - head_id_)]);
    AppendId(batch.ids, backlog_id_);
    ++backlog_id_;
  }
  return batch;
}

void MemorySampleQueue::Ack(std::span<const IdRange> ids) {
  MutexLock lock(mu_);
  const uint64_t end = head_id_ + samples_.size();
  for (const IdRange& r : ids) {
    // Ids already dropped or never appended are ignored.
    const uint64_t first = std::max(r.first, head_id_);
    const uint64_t last = std::min(r.end(), end);
    if (first < last) stats_.acked += acked_.Add(first, last);
  }
  TrimLocked();
}

void MemorySampleQueue::Wake() {
  {
    MutexLock lock(mu_);
    woken_ = true;
  }
  cv_.NotifyAll();
}

QueueStats MemorySampleQueue::stats() const {
  MutexLock lock(mu_);
  QueueStats s = stats_;
  s.bytes = samples_.size() * sizeof(contract::Sample);
  return s;
}

}  // namespace kiln::queue
