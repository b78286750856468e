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
        // Drop the oldest sample; the read cursor cannot point before the head.
        samples_.pop_front();
        ++head_id_;
        ++stats_.dropped;
        if (read_id_ < head_id_) read_id_ = head_id_;
      }
      samples_.push_back(s);
      ++stats_.appended;
    }
    stats_.depth = samples_.size();
  }
  cv_.NotifyOne();
  return OkStatus();
}

SampleBatch MemorySampleQueue::Read(size_t max, MonoTime deadline) {
  MutexLock lock(mu_);
  cv_.WaitUntil(lock, deadline, [&]() KILN_REQUIRES(mu_) {
    return woken_ || read_id_ < head_id_ + samples_.size();
  });
  woken_ = false;
  SampleBatch batch;
  batch.first_id = read_id_;
  const uint64_t available = head_id_ + samples_.size() - read_id_;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(available, max));
  const auto first = samples_.begin() + static_cast<std::ptrdiff_t>(read_id_ - head_id_);
  batch.samples.assign(first, first + static_cast<std::ptrdiff_t>(n));
  read_id_ += n;
  return batch;
}

void MemorySampleQueue::Ack(uint64_t id) {
  MutexLock lock(mu_);
  while (!samples_.empty() && head_id_ <= id && head_id_ < read_id_) {
    samples_.pop_front();
    ++head_id_;
    ++stats_.acked;
  }
  stats_.depth = samples_.size();
}

void MemorySampleQueue::Rewind() {
  MutexLock lock(mu_);
  read_id_ = head_id_;
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
  return stats_;
}

}  // namespace kiln::queue
