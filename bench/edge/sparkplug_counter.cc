// sparkplug_counter: subscribes to spBv1.0/# on a broker and counts the metrics of
// NDATA/DDATA messages, decoding every payload (the consumer side of the end-to-end edge
// benchmarks, see e2e.sh and replay.sh). Prints one JSON line when done:
//   sparkplug_counter mqtt://127.0.0.1:1883 <warmup_s> <measure_s> [--historical]
// With --historical it also counts live and is_historical metrics apart, with the wall times
// (ms since the epoch) of the first Sparkplug message and of the first and last message with
// history, and the span of the history's timestamps; SIGINT or SIGTERM then end the
// measurement early (the window still counts from the end of the warm-up).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "contract/sparkplug/payload.h"
#include "contract/sparkplug/topic.h"
#include "mqtt/client.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Sleeps `s` seconds, or less once a signal arrived (when `interruptible`).
void Sleep(int s, bool interruptible) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(s);
  while (std::chrono::steady_clock::now() < end && !(interruptible && g_stop)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kiln;
  const bool historical = argc == 5 && std::strcmp(argv[4], "--historical") == 0;
  if (argc != 4 && !historical) {
    std::fprintf(stderr, "usage: %s mqtt://host:port warmup_s measure_s [--historical]\n", argv[0]);
    return 2;
  }
  if (historical) {
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
  }
  auto broker = mqtt::ParseBrokerUrl(argv[1]);
  if (!broker.ok()) {
    std::fprintf(stderr, "%s\n", broker.status().ToString().c_str());
    return 2;
  }
  const int warmup_s = std::atoi(argv[2]);
  const int measure_s = std::atoi(argv[3]);
  std::atomic<uint64_t> metrics{0}, messages{0}, errors{0};
  std::atomic<bool> connected{false};
  // --historical only; written by the client's network thread.
  std::atomic<uint64_t> hist_metrics{0}, live_metrics{0};
  std::atomic<uint64_t> first_message_ms{0}, first_hist_ms{0}, last_hist_ms{0};
  std::atomic<uint64_t> hist_min_ts{UINT64_MAX}, hist_max_ts{0};
  sparkplug::Decoder decoder;  // used only on the client's network thread
  mqtt::ClientOptions opts;
  opts.broker = *broker;
  opts.client_id = "kiln-sparkplug-counter";
  auto client = mqtt::MqttClient::Connect(opts, std::nullopt, [&](mqtt::Event e) {
    if (e.kind == mqtt::Event::Kind::kConnected) connected = true;
    if (e.kind != mqtt::Event::Kind::kMessage) return;
    auto t = sparkplug::ParseTopic(e.topic);
    if (t.ok() && first_message_ms == 0) first_message_ms = NowMs();
    if (!t.ok() ||
        (t->type != sparkplug::MessageType::kDData && t->type != sparkplug::MessageType::kNData)) {
      return;
    }
    auto p = decoder.Decode(e.payload);
    if (!p.ok()) {
      ++errors;
      return;
    }
    ++messages;
    metrics += p->metrics.size();
    if (!historical) return;
    uint64_t hist = 0;
    for (const auto& m : p->metrics) {
      if (!m.is_historical) continue;
      ++hist;
      if (m.timestamp) {
        hist_min_ts = std::min(hist_min_ts.load(), *m.timestamp);
        hist_max_ts = std::max(hist_max_ts.load(), *m.timestamp);
      }
    }
    hist_metrics += hist;
    live_metrics += p->metrics.size() - hist;
    if (hist > 0) {
      last_hist_ms = NowMs();
      if (first_hist_ms == 0) first_hist_ms = last_hist_ms.load();
    }
  });
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  while (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!(*client)->Subscribe("spBv1.0/#", 0).ok()) return 1;
  if (historical) std::fprintf(stderr, "subscribed\n");
  Sleep(warmup_s, false);
  const uint64_t m0 = metrics, n0 = messages, h0 = hist_metrics, l0 = live_metrics;
  const auto t0 = std::chrono::steady_clock::now();
  Sleep(measure_s, historical);
  const uint64_t m1 = metrics, n1 = messages, h1 = hist_metrics, l1 = live_metrics;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string extra;
  if (historical) {
    (void)(*client)->Disconnect();  // no more callbacks: the history bounds are stable
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  ", \"historical_points\": %llu, \"live_points\": %llu, "
                  "\"first_message_ms\": %llu, \"first_historical_ms\": %llu, "
                  "\"last_historical_ms\": %llu, \"historical_span_s\": %.1f",
                  static_cast<unsigned long long>(h1 - h0),
                  static_cast<unsigned long long>(l1 - l0),
                  static_cast<unsigned long long>(first_message_ms.load()),
                  static_cast<unsigned long long>(first_hist_ms.load()),
                  static_cast<unsigned long long>(last_hist_ms.load()),
                  hist_max_ts >= hist_min_ts ? (hist_max_ts - hist_min_ts) / 1000.0 : 0.0);
    extra = buf;
  }
  std::printf(
      "{\"points_per_s\": %.0f, \"messages_per_s\": %.1f, \"points\": %llu, "
      "\"decode_errors\": %llu%s}\n",
      (m1 - m0) / secs, (n1 - n0) / secs, static_cast<unsigned long long>(m1 - m0),
      static_cast<unsigned long long>(errors.load()), extra.c_str());
  if (!historical) (void)(*client)->Disconnect();
  return 0;
}
