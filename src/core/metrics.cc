#include "core/metrics.h"

#include <fmt/format.h>

#include <cmath>

#include "core/check.h"

namespace kiln {

void Gauge::Add(double d) {
  double cur = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
  }
}

MetricsRegistry::Family& MetricsRegistry::FamilyFor(std::string_view name, std::string_view help,
                                                    Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}}).first;
  }
  KILN_CHECK(it->second.type == type) << "metric " << name << " registered with two types";
  return it->second;
}

MetricsRegistry::Series* MetricsRegistry::Find(Family& f, const MetricLabels& labels) {
  for (auto& s : f.series) {
    if (s.labels == labels) return &s;
  }
  return nullptr;
}

Counter& MetricsRegistry::GetCounter(std::string_view name, std::string_view help,
                                     const MetricLabels& labels) {
  MutexLock lock(mu_);
  Family& f = FamilyFor(name, help, Type::kCounter);
  if (Series* s = Find(f, labels); s && s->counter) return *s->counter;
  Counter& c = counters_.emplace_back();
  f.series.push_back(Series{labels, &c, nullptr, {}});
  return c;
}

Gauge& MetricsRegistry::GetGauge(std::string_view name, std::string_view help,
                                 const MetricLabels& labels) {
  MutexLock lock(mu_);
  Family& f = FamilyFor(name, help, Type::kGauge);
  if (Series* s = Find(f, labels); s && s->gauge) return *s->gauge;
  Gauge& g = gauges_.emplace_back();
  f.series.push_back(Series{labels, nullptr, &g, {}});
  return g;
}

void MetricsRegistry::AddGaugeCallback(std::string_view name, std::string_view help,
                                       const MetricLabels& labels, std::function<double()> fn) {
  MutexLock lock(mu_);
  Family& f = FamilyFor(name, help, Type::kGauge);
  f.series.push_back(Series{labels, nullptr, nullptr, std::move(fn)});
}

void MetricsRegistry::AddCounterCallback(std::string_view name, std::string_view help,
                                         const MetricLabels& labels, std::function<double()> fn) {
  MutexLock lock(mu_);
  Family& f = FamilyFor(name, help, Type::kCounter);
  f.series.push_back(Series{labels, nullptr, nullptr, std::move(fn)});
}

namespace {

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

}  // namespace

std::string MetricsRegistry::RenderPrometheus() const {
  MutexLock lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, family.help, name,
                       family.type == Type::kCounter ? "counter" : "gauge");
    for (const auto& s : family.series) {
      out += name;
      if (!s.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < s.labels.size(); ++i) {
          if (i) out += ',';
          out += fmt::format("{}=\"{}\"", s.labels[i].first, EscapeLabelValue(s.labels[i].second));
        }
        out += '}';
      }
      out += ' ';
      if (s.counter)
        out += std::to_string(s.counter->value());
      else if (s.gauge)
        out += FormatDouble(s.gauge->value());
      else
        out += FormatDouble(s.fn());
      out += '\n';
    }
  }
  return out;
}

}  // namespace kiln
