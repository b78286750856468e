// sparkplug_counter: subscribes to spBv1.0/# on a broker and counts the metrics of
// NDATA/DDATA messages, decoding every payload (the consumer side of the end-to-end edge
// benchmark, see e2e.sh). Prints one JSON line when done:
//   sparkplug_counter mqtt://127.0.0.1:1883 <warmup_s> <measure_s>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "contract/sparkplug/payload.h"
#include "contract/sparkplug/topic.h"
#include "mqtt/client.h"

int main(int argc, char** argv) {
  using namespace kiln;
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s mqtt://host:port warmup_s measure_s\n", argv[0]);
    return 2;
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
  sparkplug::Decoder decoder;  // used only on the client's network thread
  mqtt::ClientOptions opts;
  opts.broker = *broker;
  opts.client_id = "kiln-sparkplug-counter";
  auto client = mqtt::MqttClient::Connect(opts, std::nullopt, [&](mqtt::Event e) {
    if (e.kind == mqtt::Event::Kind::kConnected) connected = true;
    if (e.kind != mqtt::Event::Kind::kMessage) return;
    auto t = sparkplug::ParseTopic(e.topic);
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
  });
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  while (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!(*client)->Subscribe("spBv1.0/#", 0).ok()) return 1;
  std::this_thread::sleep_for(std::chrono::seconds(warmup_s));
  const uint64_t m0 = metrics, n0 = messages;
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(measure_s));
  const uint64_t m1 = metrics, n1 = messages;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "{\"points_per_s\": %.0f, \"messages_per_s\": %.1f, \"points\": %llu, "
      "\"decode_errors\": %llu}\n",
      (m1 - m0) / secs, (n1 - n0) / secs, static_cast<unsigned long long>(m1 - m0),
      static_cast<unsigned long long>(errors.load()));
  (void)(*client)->Disconnect();
  return 0;
}
