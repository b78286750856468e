#pragma once
// LiveHub: fans live events (new values, births and deaths) out to the server-sent-event
// streams of GET /api/v1/stream. Each subscriber has a bounded queue: a slow client loses
// its oldest events (counted, and told so with a "dropped" event) instead of slowing
// ingestion. Publishing costs one atomic load when nobody listens. Thread-safe.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::server {

struct LiveEvent {
  std::string type;  // SSE event name: "value", "status"
  std::string path;  // what the event concerns, for prefix filters
  std::string data;  // JSON
};

class LiveHub {
 public:
  class Subscription {
   public:
    // Waits until events are queued or `stop` is requested or `timeout` passes, then takes
    // every queued event. `dropped` receives how many were lost since the last call.
    std::vector<LiveEvent> Wait(std::stop_token stop, std::chrono::milliseconds timeout,
                                uint64_t& dropped);

   private:
    friend class LiveHub;
    std::string prefix_;
    size_t max_queue_ = 0;
    std::mutex mu_;
    std::condition_variable_any cv_;
    std::deque<LiveEvent> queue_;
    uint64_t dropped_ = 0;
  };

  // Each subscriber keeps at most `max_queue` (at least 1) events.
  explicit LiveHub(size_t max_queue = 10000) : max_queue_(std::max<size_t>(max_queue, 1)) {}

  // A new subscriber to events whose path starts with `prefix`; it stays subscribed until
  // the returned pointer is released.
  std::shared_ptr<Subscription> Subscribe(std::string prefix);
  // True when someone listens (check before building events).
  bool HasSubscribers() const { return subscribers_.load(std::memory_order_relaxed) > 0; }
  void Publish(std::span<const LiveEvent> events);
  // The number of events subscribers lost because their queue was full.
  uint64_t dropped() const { return dropped_total_.load(std::memory_order_relaxed); }

 private:
  const size_t max_queue_;
  std::mutex mu_;
  std::vector<std::weak_ptr<Subscription>> subs_;
  std::atomic<int> subscribers_{0};
  std::atomic<uint64_t> dropped_total_{0};
};

}  // namespace kiln::server
