#include "server/live.h"

#include <algorithm>

namespace kiln::server {

std::vector<LiveEvent> LiveHub::Subscription::Wait(std::stop_token stop,
                                                   std::chrono::milliseconds timeout,
                                                   uint64_t& dropped) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, stop, timeout, [&] { return !queue_.empty(); });
  std::vector<LiveEvent> out(std::make_move_iterator(queue_.begin()),
                             std::make_move_iterator(queue_.end()));
  queue_.clear();
  dropped = dropped_;
  dropped_ = 0;
  return out;
}

std::shared_ptr<LiveHub::Subscription> LiveHub::Subscribe(std::string prefix) {
  // The deleter keeps the subscriber count right however the stream ends.
  auto* raw = new Subscription();
  raw->prefix_ = std::move(prefix);
  raw->max_queue_ = max_queue_;
  std::shared_ptr<Subscription> sub(raw, [this](Subscription* s) {
    subscribers_.fetch_sub(1, std::memory_order_relaxed);
    delete s;
  });
  std::lock_guard lock(mu_);
  std::erase_if(subs_, [](const auto& w) { return w.expired(); });
  subs_.push_back(sub);
  subscribers_.fetch_add(1, std::memory_order_relaxed);
  return sub;
}

void LiveHub::Publish(std::span<const LiveEvent> events) {
  if (!HasSubscribers() || events.empty()) return;
  std::vector<std::shared_ptr<Subscription>> targets;
  {
    std::lock_guard lock(mu_);
    for (const auto& w : subs_) {
      if (auto s = w.lock()) targets.push_back(std::move(s));
    }
  }
  for (const auto& s : targets) {
    bool any = false;
    {
      std::lock_guard lock(s->mu_);
      for (const LiveEvent& event : events) {
        if (event.path.compare(0, s->prefix_.size(), s->prefix_) != 0) continue;
        if (s->queue_.size() >= s->max_queue_) {
          s->queue_.pop_front();
          ++s->dropped_;
          dropped_total_.fetch_add(1, std::memory_order_relaxed);
        }
        s->queue_.push_back(event);
        any = true;
      }
    }
    if (any) s->cv_.notify_one();
  }
}

}  // namespace kiln::server
