#include "core/check.h"
#include "queue/sample_queue.h"

namespace kiln::queue {

MemorySampleQueue::MemorySampleQueue(size_t max_samples) : max_samples_(max_samples) {
  KILN_CHECK(max_samples > 0);
  ring_.resize(max_samples);
}

Status MemorySampleQueue::Push(std::span<const contract::Sample> samples) {
  {
    MutexLock lock(mu_);
    for (const auto& s : samples) {
      if (size_ == max_samples_) {
        // Drop the oldest sample; the read cursor cannot point before the head.
        head_ = (head_ + 1) % max_samples_;
        ++head_id_;
        --size_;
        ++stats_.dropped;
        if (read_id_ < head_id_) read_id_ = head_id_;
      }
      ring_[(head_ + size_) % max_samples_] = s;
      ++size_;
      ++stats_.appended;
    }
    stats_.depth = size_;
  }
  cv_.NotifyOne();
  return OkStatus();
}

SampleBatch MemorySampleQueue::Read(size_t max, MonoTime deadline) {
  MutexLock lock(mu_);
  cv_.WaitUntil(lock, deadline, [&]() KILN_REQUIRES(mu_) {
    return woken_ || read_id_ < head_id_ + size_;
  });
  woken_ = false;
  SampleBatch batch;
  batch.first_id = read_id_;
  const uint64_t available = head_id_ + size_ - read_id_;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(available, max));
  batch.samples.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t offset = static_cast<size_t>(read_id_ - head_id_);
    batch.samples.push_back(ring_[(head_ + offset) % max_samples_]);
    ++read_id_;
  }
  return batch;
}

void MemorySampleQueue::Ack(uint64_t id) {
  MutexLock lock(mu_);
  while (size_ > 0 && head_id_ <= id && head_id_ < read_id_) {
    ring_[head_] = contract::Sample{};
    head_ = (head_ + 1) % max_samples_;
    ++head_id_;
    --size_;
    ++stats_.acked;
  }
  stats_.depth = size_;
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
