#pragma once
// MetricsRegistry: counters and gauges with labels, exposed in the Prometheus text
// format (version 0.0.4). Thread-safe; updating a Counter or Gauge is lock-free.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/mutex.h"

namespace kiln {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class MetricsRegistry {
 public:
  // Returns the counter for (name, labels), creating it on first use. The reference stays
  // valid as long as the registry. REQUIRES: `name` is a valid Prometheus metric name and
  // is not used with another metric type.
  Counter& GetCounter(std::string_view name, std::string_view help,
                      const MetricLabels& labels = {});
  Gauge& GetGauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  // A counter whose value is computed at scrape time (a total kept elsewhere, which only
  // grows); the same rules as AddGaugeCallback.
  void AddCounterCallback(std::string_view name, std::string_view help, const MetricLabels& labels,
                          std::function<double()> fn);
  // A gauge whose value is computed at scrape time. `fn` must be thread-safe and must
  // outlive the registry or be removed by destroying the registry first.
  void AddGaugeCallback(std::string_view name, std::string_view help, const MetricLabels& labels,
                        std::function<double()> fn);

  // The whole registry in Prometheus text exposition format.
  std::string RenderPrometheus() const;

 private:
  enum class Type { kCounter, kGauge };
  struct Series {
    MetricLabels labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    std::function<double()> fn;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<Series> series;
  };
  Family& FamilyFor(std::string_view name, std::string_view help, Type type) KILN_REQUIRES(mu_);
  static Series* Find(Family& f, const MetricLabels& labels);

  mutable Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ KILN_GUARDED_BY(mu_);
  std::deque<Counter> counters_ KILN_GUARDED_BY(mu_);
  std::deque<Gauge> gauges_ KILN_GUARDED_BY(mu_);
};

}  // namespace kiln
