#include "server/ingest.h"

#include <fmt/format.h>

#include <cmath>

#include "core/json.h"

namespace kiln::server {

namespace {

using historian::SeriesKind;
using sparkplug::DataType;

// MetricInfo::user_data: the series id in the low 32 bits and its kind above, or one of:
constexpr auto kEnqueueWait = std::chrono::milliseconds(2000);

constexpr uint64_t kNoSeries = UINT64_MAX;       // not resolved since the last birth
constexpr uint64_t kNotStored = UINT64_MAX - 1;  // a type the historian does not keep

uint64_t SeriesData(historian::SeriesId id, SeriesKind kind) {
  return (static_cast<uint64_t>(kind) << 32) | id;
}
SeriesKind KindOf(uint64_t user_data) { return static_cast<SeriesKind>(user_data >> 32); }

// The series kind for a Sparkplug datatype; nullopt for types that are not stored.
std::optional<SeriesKind> KindFor(DataType type, const contract::Value& value) {
  switch (type) {
    case DataType::kString:
    case DataType::kText:
    case DataType::kUUID:
      return SeriesKind::kText;
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
    case DataType::kInt64:
    case DataType::kUInt8:
    case DataType::kUInt16:
    case DataType::kUInt32:
    case DataType::kUInt64:
    case DataType::kFloat:
    case DataType::kDouble:
    case DataType::kBoolean:
    case DataType::kDateTime:
      return SeriesKind::kNumeric;
    case DataType::kUnknown:
      // No datatype in the birth: go by the value.
      if (value.type() == contract::ValueType::kString) return SeriesKind::kText;
      if (value.is_numeric()) return SeriesKind::kNumeric;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

void WriteValueEvent(std::string& out, std::string_view path, int64_t t, uint32_t q,
                     const contract::Value& v) {
  json::Writer w(out);
  w.BeginObject().Key("metric").String(path).Key("t").Int(t).Key("v");
  if (auto d = v.AsDouble()) {
    w.Number(*d);
  } else if (const auto* s = v.get_if<std::string>()) {
    w.String(*s);
  } else {
    w.Null();
  }
  w.Key("q").Uint(q).EndObject();
}

}  // namespace

Ingest::Ingest(historian::Historian& historian, Registry& registry, LiveHub& live,
               const Clock& clock, Logger log, HostOptions host_options, PublishFn publish,
               size_t max_queue)
    : historian_(historian),
      registry_(registry),
      live_(live),
      clock_(clock),
      log_(std::move(log)),
      publish_(std::move(publish)),
      max_queue_(max_queue),
      host_(*this, clock, log_.Child("host"), host_options),
      limiter_(clock, std::chrono::seconds(10), 1) {}

Ingest::~Ingest() { Stop(); }

void Ingest::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    running_ = true;
  }
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void Ingest::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  cv_.notify_all();
  thread_.join();
  {
    std::lock_guard lock(mu_);
    running_ = false;
  }
  space_cv_.notify_all();
}

void Ingest::Enqueue(std::string topic, std::string payload) {
  std::unique_lock lock(mu_);
  // Called on the MQTT network thread: wait a little for room (back-pressure), but not so
  // long that the connection's keep-alive suffers; then the message is dropped and counted.
  if (!space_cv_.wait_for(lock, kEnqueueWait,
                          [&] { return queue_.size() < max_queue_ || !running_; })) {
    ++stats_.dropped;
    lock.unlock();
    KILN_LOG_RATE_LIMITED(log_, limiter_, LogLevel::kError, "queue",
                          "ingest queue full ({} messages) for {} ms: a message on {} dropped",
                          max_queue_, kEnqueueWait.count(), topic);
    return;
  }
  queue_.push_back({Message::Kind::kData, std::move(topic), std::move(payload), 0});
  const bool was_empty = queue_.size() == 1;
  lock.unlock();
  if (was_empty) cv_.notify_one();
}

void Ingest::ResetSessions() {
  {
    std::lock_guard lock(mu_);
    queue_.push_back({Message::Kind::kReset, {}, {}, 0});
  }
  cv_.notify_one();
}

void Ingest::Sync() {
  std::unique_lock lock(mu_);
  const uint64_t ticket = ++next_ticket_;
  queue_.push_back({Message::Kind::kSync, {}, {}, ticket});
  cv_.notify_one();
  space_cv_.wait(lock, [&] { return done_ticket_ >= ticket || !running_; });
}

HostStats Ingest::host_stats() const {
  std::lock_guard lock(mu_);
  return host_stats_;
}

IngestStats Ingest::stats() const {
  std::lock_guard lock(mu_);
  IngestStats s = stats_;
  s.queued = queue_.size();
  return s;
}

void Ingest::Run(std::stop_token stop) {
  stop_ = stop;
  std::deque<Message> work;
  while (true) {
    {
      std::unique_lock lock(mu_);
      auto deadline = host_.NextDeadline();
      auto has_work = [&] { return !queue_.empty(); };
      if (deadline) {
        // Sleep until the earliest reorder deadline at most (steady clock).
        const auto wait = std::max(std::chrono::nanoseconds(0), *deadline - clock_.Monotonic());
        cv_.wait_for(lock, stop, wait, has_work);
      } else {
        cv_.wait(lock, stop, has_work);
      }
      if (queue_.empty() && stop.stop_requested()) return;
      work.swap(queue_);
    }
    space_cv_.notify_all();
    uint64_t synced = 0;
    for (Message& m : work) {
      switch (m.kind) {
        case Message::Kind::kData:
          host_.OnMessage(m.topic, m.payload);
          break;
        case Message::Kind::kReset:
          FlushPoints();
          host_.ResetSessions();
          break;
        case Message::Kind::kSync:
          synced = m.ticket;
          break;
      }
    }
    work.clear();
    host_.Tick();
    FlushPoints();
    {
      std::lock_guard lock(mu_);
      host_stats_ = host_.stats();
      if (synced > done_ticket_) done_ticket_ = synced;
    }
    if (synced > 0) space_cv_.notify_all();
  }
}

bool Ingest::AppendWithRetry() {
  Status s = historian_.Append(batch_);
  // Unavailable and ResourceExhausted (a WAL write failed: disk full, an I/O error) are
  // retried with backoff, so nothing received is dropped while storage recovers; ingestion
  // stalls meanwhile and the queue fills (back-pressure), which /metrics shows.
  auto delay = std::chrono::milliseconds(100);
  while (!s.ok() &&
         (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted) &&
         !stop_.stop_requested()) {
    KILN_LOG_RATE_LIMITED(log_, limiter_, LogLevel::kError, "append",
                          "cannot store {} values, retrying in {} ms: {}", batch_.size(),
                          delay.count(), s.ToString());
    {
      std::unique_lock lock(mu_);
      ++stats_.store_errors;
      cv_.wait_for(lock, stop_, delay, [] { return false; });
    }
    delay = std::min(delay * 2, std::chrono::milliseconds(5000));
    s = historian_.Append(batch_);
  }
  std::lock_guard lock(mu_);
  if (s.ok()) {
    stats_.points += batch_.size();
    return true;
  }
  stats_.store_errors += 1;
  stats_.lost += batch_.size();
  log_.Error("{} values lost: {}", batch_.size(), s.ToString());
  return false;
}

void Ingest::FlushPoints() {
  if (!batch_.empty()) {
    AppendWithRetry();
    batch_.clear();
  }
  if (!events_.empty()) {
    live_.Publish(events_);
    events_.clear();
  }
}

void Ingest::OnValue(MetricInfo& metric, const sparkplug::Metric& m, int64_t t_ms,
                     contract::Quality quality) {
  const std::optional<SeriesKind> kind = KindFor(metric.datatype, m.value);
  if (!kind) {
    if (metric.user_data != kNotStored) {
      log_.Info("{}: {} values are not stored", metric.path, DataTypeName(metric.datatype));
      metric.user_data = kNotStored;  // until its next birth
    }
    std::lock_guard lock(mu_);
    ++stats_.unsupported;
    return;
  }
  if (metric.user_data == kNoSeries || metric.user_data == kNotStored ||
      KindOf(metric.user_data) != *kind) {
    auto id = historian_.Series(metric.path, *kind);
    if (!id.ok()) {
      // The series exists with the other kind: the birth changed the metric's type from
      // text to number or back. Its values are refused loudly, never coerced (a contract
      // change needs a new metric name).
      KILN_LOG_RATE_LIMITED(log_, limiter_, LogLevel::kError, metric.path,
                            "{}: {} values not stored: {}", metric.path,
                            DataTypeName(metric.datatype), id.status().ToString());
      metric.user_data = kNoSeries;
      std::lock_guard lock(mu_);
      ++stats_.rejected;
      return;
    }
    metric.user_data = SeriesData(*id, *kind);
  }
  const auto series = static_cast<historian::SeriesId>(metric.user_data & 0xffffffffu);
  const bool is_null = m.is_null || m.value.is_null();
  if (*kind == SeriesKind::kText) {
    historian::TextPoint p{t_ms, {}, quality.code(), is_null};
    if (!is_null) {
      const auto* str = m.value.get_if<std::string>();
      p.v = str ? *str : m.value.ToString();
    }
    Status s = historian_.AppendText(series, p);
    std::lock_guard lock(mu_);
    if (s.ok()) {
      ++stats_.points;
    } else {
      ++stats_.store_errors;
      ++stats_.lost;
      KILN_LOG_RATE_LIMITED(log_, limiter_, LogLevel::kError, metric.path, "{}: {}", metric.path,
                            s.ToString());
    }
  } else {
    historian::Point p{t_ms, 0, quality.code(), is_null};
    if (!is_null) {
      if (auto d = m.value.AsDouble()) {
        p.v = *d;
      } else {
        p.is_null = true;  // a string in a numeric series: kept as a null, not coerced
      }
    }
    batch_.push_back({series, p});
  }
  if (!m.is_historical && live_.HasSubscribers()) {
    LiveEvent e{"value", metric.path, {}};
    WriteValueEvent(e.data, metric.path, t_ms, quality.code(),
                    is_null ? contract::Value() : m.value);
    events_.push_back(std::move(e));
  }
}

void Ingest::OnBirth(const NodeKey& node, std::string_view device, uint64_t bdseq,
                     std::span<MetricInfo* const> metrics, int64_t t_ms) {
  // The birth may declare other types than the last one: resolve the series again.
  for (MetricInfo* m : metrics) m->user_data = kNoSeries;
  Status s = registry_.Birth(node, device, bdseq, metrics, t_ms);
  if (!s.ok()) {
    log_.Error("registry: {}", s.ToString());
    std::lock_guard lock(mu_);
    ++stats_.store_errors;
  }
  PublishStatus(node, device, true, t_ms);
}

void Ingest::PublishStatus(const NodeKey& node, std::string_view device, bool online,
                           int64_t t_ms) {
  if (!live_.HasSubscribers()) return;
  LiveEvent e{"status", device.empty() ? node.Name() : node.Name() + "/" + std::string(device), {}};
  json::Writer w(e.data);
  w.BeginObject().Key("group").String(node.group).Key("node").String(node.node);
  if (!device.empty()) w.Key("device").String(device);
  w.Key("online").Bool(online).Key("t").Int(t_ms).EndObject();
  events_.push_back(std::move(e));
}

void Ingest::OnDeath(const NodeKey& node, std::string_view device,
                     std::span<MetricInfo* const> metrics, int64_t t_ms) {
  FlushPoints();  // the last values must be visible to Latest below
  Status s = registry_.Death(node, device, t_ms);
  if (!s.ok()) {
    log_.Error("registry: {}", s.ToString());
    std::lock_guard lock(mu_);
    ++stats_.store_errors;
  }
  // Each metric gets one more point: its last value, marked as no longer refreshed (a Bad
  // value stays Bad). At the death time, or just after the last value when that is later
  // (an edge clock ahead of the host's), so that it is the latest value either way.
  const uint32_t stale = contract::status::kUncertainNoCommunicationLastUsableValue.code();
  auto stale_quality = [&](uint32_t q) { return contract::Quality(q).IsBad() ? q : stale; };
  for (MetricInfo* m : metrics) {
    if (m->user_data >= kNotStored) continue;
    const auto series = static_cast<historian::SeriesId>(m->user_data & 0xffffffffu);
    contract::Value value;
    uint32_t q = 0;
    int64_t t = t_ms;
    if (KindOf(m->user_data) == SeriesKind::kText) {
      auto last = historian_.LatestText(series);
      if (!last) continue;
      t = std::max(t_ms, last->t + 1);
      q = stale_quality(last->q);
      historian::TextPoint p{t, last->v, q, last->is_null};
      Status st = historian_.AppendText(series, p);
      std::lock_guard lock(mu_);
      st.ok() ? ++stats_.points : ++stats_.store_errors;
      if (!last->is_null) value = contract::Value(last->v);
    } else {
      auto last = historian_.Latest(series);
      if (!last) continue;
      t = std::max(t_ms, last->t + 1);
      q = stale_quality(last->q);
      batch_.push_back({series, {t, last->v, q, last->is_null}});
      if (!last->is_null) value = contract::Value(last->v);
    }
    if (live_.HasSubscribers()) {
      LiveEvent e{"value", m->path, {}};
      WriteValueEvent(e.data, m->path, t, q, value);
      events_.push_back(std::move(e));
    }
  }
  PublishStatus(node, device, false, t_ms);
}

void Ingest::PublishCommand(const std::string& topic, const std::string& payload) {
  publish_(topic, payload);
}

void Ingest::ExportMetrics(MetricsRegistry& metrics) {
  struct Field {
    const char* name;
    const char* help;
    uint64_t HostStats::*member;
  };
  static constexpr Field kHostFields[] = {
      {"kiln_server_messages_total", "Sparkplug messages received", &HostStats::messages},
      {"kiln_server_malformed_total", "messages with a bad topic or payload (dropped)",
       &HostStats::malformed},
      {"kiln_server_values_total", "metric values received", &HostStats::values},
      {"kiln_server_births_total", "NBIRTH and DBIRTH messages", &HostStats::births},
      {"kiln_server_deaths_total", "NDEATH (matching bdSeq) and DDEATH messages",
       &HostStats::deaths},
      {"kiln_server_stale_deaths_total", "NDEATH ignored: another bdSeq or no session",
       &HostStats::stale_deaths},
      {"kiln_server_seq_reorders_total", "messages with an unexpected seq",
       &HostStats::seq_reorders},
      {"kiln_server_seq_gaps_total", "seq numbers that never arrived within the reorder timeout",
       &HostStats::seq_gaps},
      {"kiln_server_data_before_birth_total", "messages dropped: no birth in the session",
       &HostStats::data_before_birth},
      {"kiln_server_unknown_metrics_total", "metrics not declared by the birth (dropped)",
       &HostStats::unknown_metrics},
      {"kiln_server_rebirth_requests_total", "Node Control/Rebirth commands sent",
       &HostStats::rebirth_requests},
      {"kiln_server_rebirths_debounced_total", "rebirth requests held back by the debounce",
       &HostStats::rebirths_debounced},
  };
  for (const Field& f : kHostFields) {
    // Every host field is a total.
    metrics.AddCounterCallback(f.name, f.help, {}, [this, member = f.member] {
      return static_cast<double>(host_stats().*member);
    });
  }
  metrics.AddGaugeCallback("kiln_server_ingest_queue", "messages waiting to be processed", {},
                           [this] { return static_cast<double>(stats().queued); });
  metrics.AddCounterCallback("kiln_server_points_stored_total", "values written to the historian",
                             {}, [this] { return static_cast<double>(stats().points); });
  metrics.AddCounterCallback("kiln_server_unsupported_values_total",
                             "values of types that are not stored", {},
                             [this] { return static_cast<double>(stats().unsupported); });
  metrics.AddCounterCallback("kiln_server_store_errors_total",
                             "historian or registry writes that failed (retries included)", {},
                             [this] { return static_cast<double>(stats().store_errors); });
  metrics.AddCounterCallback("kiln_server_ingest_dropped_total",
                             "messages dropped because the ingest queue stayed full", {},
                             [this] { return static_cast<double>(stats().dropped); });
  metrics.AddCounterCallback("kiln_server_rejected_values_total",
                             "values refused: their birth changed the metric between text and "
                             "number",
                             {}, [this] { return static_cast<double>(stats().rejected); });
  metrics.AddCounterCallback("kiln_server_lost_values_total",
                             "values not stored after a write failed for good", {},
                             [this] { return static_cast<double>(stats().lost); });
}

}  // namespace kiln::server
