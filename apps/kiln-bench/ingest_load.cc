// kiln-bench ingest: N Sparkplug edge nodes publishing through a real broker into kiln-server.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "apps/kiln-bench/bench_tools.h"
#include "bench/historian/dataset.h"
#include "contract/sparkplug/payload.h"
#include "contract/sparkplug/topic.h"
#include "core/host_port.h"
#include "http/client.h"
#include "mqtt/client.h"

namespace kiln::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxUnwritten = 200;  // QoS 0 messages per node handed to libmosquitto, unwritten

// GET http://host:port/path; the body of a 200 answer, nullopt on anything else.
std::optional<std::string> HttpGet(const std::string& host, uint16_t port,
                                   const std::string& path) {
  http::ClientRequest req;
  req.path = path;
  auto r = http::Fetch(host, port, req);
  if (!r.ok() || r->status != 200) return std::nullopt;
  return std::move(r->body);
}

// The value of an unlabelled Prometheus sample `name` in `text`.
std::optional<double> PromValue(const std::string& text, std::string_view name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ' ') {
      return std::stod(line.substr(name.size() + 1));
    }
  }
  return std::nullopt;
}

// One simulated edge node: its own MQTT connection and its pre-encoded messages.
struct Node {
  std::string id;
  std::vector<std::pair<std::string, std::string>> messages;  // topic, payload (births first)
  std::unique_ptr<mqtt::MqttClient> client;
  std::mutex mu;
  std::condition_variable cv;
  bool connected = false;
  bool failed = false;
  std::string why;
  int unwritten = 0;  // published, not yet written to the socket (QoS 0 kPublished events)
};

std::string Encode(sparkplug::Encoder& enc, const sparkplug::Payload& p) {
  std::string out;
  Status s = enc.Encode(p, out);
  if (!s.ok()) {
    std::fprintf(stderr, "kiln-bench: encode: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  return out;
}

// NBIRTH (bdSeq), DBIRTH of device "d" with `metrics` Double metrics m000.., then `messages`
// DDATA by alias, one timestamp per message (t0 + k ms), values from the decimal-noise set.
void BuildMessages(Node& node, const std::string& group, int metrics, int64_t messages,
                   int64_t t0) {
  sparkplug::Encoder enc;
  sparkplug::Topic topic;
  topic.group_id = group;
  topic.edge_node_id = node.id;
  uint64_t seq = 0;
  sparkplug::Payload nbirth;
  nbirth.timestamp = static_cast<uint64_t>(t0);
  nbirth.seq = seq++;
  sparkplug::Metric bd;
  bd.name = "bdSeq";
  bd.datatype = sparkplug::DataType::kInt64;
  bd.value = contract::Value(int64_t{0});
  nbirth.metrics.push_back(bd);
  topic.type = sparkplug::MessageType::kNBirth;
  node.messages.emplace_back(sparkplug::BuildTopic(topic), Encode(enc, nbirth));

  // One decimal-noise series per metric, cycled if there are more messages than points.
  std::vector<std::vector<historian::bench::GenPoint>> series;
  const auto count = static_cast<size_t>(std::min<int64_t>(messages, 86400));
  for (int m = 0; m < metrics; ++m) {
    series.push_back(historian::bench::GenerateSeries(historian::bench::Dataset::kDecimalNoise, m,
                                                      std::max<size_t>(count, 1)));
  }
  sparkplug::Payload dbirth;
  dbirth.timestamp = static_cast<uint64_t>(t0);
  dbirth.seq = seq++;
  for (int m = 0; m < metrics; ++m) {
    sparkplug::Metric x;
    x.name = fmt::format("m{:03}", m);
    x.alias = static_cast<uint64_t>(m + 1);
    x.datatype = sparkplug::DataType::kDouble;
    x.timestamp = static_cast<uint64_t>(t0 - 1);
    x.value = contract::Value(series[static_cast<size_t>(m)][0].v);
    dbirth.metrics.push_back(std::move(x));
  }
  topic.type = sparkplug::MessageType::kDBirth;
  topic.device_id = "d";
  node.messages.emplace_back(sparkplug::BuildTopic(topic), Encode(enc, dbirth));

  topic.type = sparkplug::MessageType::kDData;
  const std::string ddata_topic = sparkplug::BuildTopic(topic);
  sparkplug::Payload data;
  data.metrics.resize(static_cast<size_t>(metrics));
  for (int m = 0; m < metrics; ++m) {
    data.metrics[static_cast<size_t>(m)].alias = static_cast<uint64_t>(m + 1);
    data.metrics[static_cast<size_t>(m)].datatype = sparkplug::DataType::kDouble;
  }
  for (int64_t k = 0; k < messages; ++k) {
    data.timestamp = static_cast<uint64_t>(t0 + k);
    data.seq = seq;
    seq = (seq + 1) % 256;
    for (int m = 0; m < metrics; ++m) {
      auto& x = data.metrics[static_cast<size_t>(m)];
      x.timestamp = data.timestamp;
      x.value = contract::Value(series[static_cast<size_t>(m)][static_cast<size_t>(k) % count].v);
    }
    node.messages.emplace_back(ddata_topic, Encode(enc, data));
  }
}

double OwnCpuSeconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int RunIngest(const Args& args) {
  int64_t nodes_n = 0, metrics = 0, messages = 0, rate = 0, timeout_s = 0;
  if (!args.GetInt("nodes", 10, nodes_n) || !args.GetInt("metrics", 100, metrics) ||
      !args.GetInt("messages", 1000, messages) || !args.GetInt("rate", 0, rate) ||
      !args.GetInt("timeout", 120, timeout_s)) {
    return 2;
  }
  auto broker = mqtt::ParseBrokerUrl(args.Get("broker", "mqtt://127.0.0.1:1883"));
  std::string server_url = args.Get("server", "http://127.0.0.1:8080");
  if (!broker.ok() || !server_url.starts_with("http://")) {
    std::fprintf(stderr, "kiln-bench: --broker mqtt://host:port and --server http://host:port\n");
    return 2;
  }
  auto server = ParseHostPort(server_url.substr(7), HostPortOptions{.default_port = 80});
  if (!server.ok() || nodes_n < 1 || metrics < 1 || messages < 1) {
    std::fprintf(stderr, "kiln-bench: bad --server, --nodes, --metrics or --messages\n");
    return 2;
  }
  const std::string group = args.Get("group", "Bench");
  std::vector<int> pids;
  {
    std::istringstream in(args.Get("pids", ""));
    std::string p;
    while (std::getline(in, p, ',')) {
      if (!p.empty()) pids.push_back(std::stoi(p));
    }
  }
  auto metrics_text = HttpGet(server->host, server->port, "/metrics");
  if (!metrics_text) {
    std::fprintf(stderr, "kiln-bench: no /metrics at %s\n", server_url.c_str());
    return 1;
  }
  const double stored0 = PromValue(*metrics_text, "kiln_server_points_stored_total").value_or(0);
  const auto expected = static_cast<double>(nodes_n * (1 + metrics + messages * metrics));

  const int64_t t0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() -
                     messages - 1000;
  const std::string run = std::to_string(t0 % 100000);
  std::vector<std::unique_ptr<Node>> nodes;
  size_t bytes = 0;
  for (int64_t i = 0; i < nodes_n; ++i) {
    auto node = std::make_unique<Node>();
    node->id = fmt::format("n{:04}-{}", i, run);
    BuildMessages(*node, group, static_cast<int>(metrics), messages, t0);
    for (const auto& [t, p] : node->messages) bytes += p.size();
    nodes.push_back(std::move(node));
  }
  std::printf(
      "kiln-bench ingest: %lld nodes x %lld DDATA x %lld metrics = %.0f points "
      "(%.1f MB of payloads, %.0f bytes/message)\n",
      static_cast<long long>(nodes_n), static_cast<long long>(messages),
      static_cast<long long>(metrics), expected, static_cast<double>(bytes) / 1e6,
      static_cast<double>(bytes) / static_cast<double>(nodes_n * (messages + 2)));

  for (auto& node : nodes) {
    Node* n = node.get();
    mqtt::ClientOptions options;
    options.broker = *broker;
    options.client_id = "kiln-bench-" + n->id;
    auto client = mqtt::MqttClient::Connect(options, std::nullopt, [n](mqtt::Event e) {
      std::lock_guard lock(n->mu);
      switch (e.kind) {
        case mqtt::Event::Kind::kConnected:
          n->connected = true;
          break;
        case mqtt::Event::Kind::kPublished:
          --n->unwritten;
          break;
        case mqtt::Event::Kind::kConnectFailed:
        case mqtt::Event::Kind::kDisconnected:
          n->failed = true;
          n->why = e.detail;
          break;
        default:
          break;
      }
      n->cv.notify_all();
    });
    if (!client.ok()) {
      std::fprintf(stderr, "kiln-bench: %s\n", client.status().ToString().c_str());
      return 1;
    }
    n->client = std::move(*client);
  }
  for (auto& n : nodes) {
    std::unique_lock lock(n->mu);
    if (!n->cv.wait_for(lock, std::chrono::seconds(10),
                        [&] { return n->connected || n->failed; }) ||
        n->failed) {
      std::fprintf(stderr, "kiln-bench: node %s cannot connect: %s\n", n->id.c_str(),
                   n->why.c_str());
      return 1;
    }
  }

  std::vector<double> cpu0;
  for (int pid : pids) cpu0.push_back(ProcessCpuSeconds(pid));
  const double own0 = OwnCpuSeconds();
  const auto start = Clock::now();
  // One publisher thread per node, each pacing itself to its share of --rate.
  std::atomic<bool> failed{false};
  std::vector<std::thread> publishers;
  for (auto& node : nodes) {
    Node* n = node.get();
    publishers.emplace_back([n, rate, metrics, nodes_n, start, &failed] {
      const double per_message_s =
          rate > 0 ? static_cast<double>(metrics * nodes_n) / static_cast<double>(rate) : 0;
      for (size_t k = 0; k < n->messages.size(); ++k) {
        if (per_message_s > 0) {
          std::this_thread::sleep_until(
              start + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(per_message_s * static_cast<double>(k))));
        }
        {
          std::unique_lock lock(n->mu);
          n->cv.wait(lock, [&] { return n->unwritten < kMaxUnwritten || n->failed; });
          if (n->failed) {
            failed = true;
            return;
          }
          ++n->unwritten;
        }
        const auto& [topic, payload] = n->messages[k];
        // Births at QoS 1 so they are in before the data; data at QoS 0 as Sparkplug asks.
        auto r = n->client->Publish(topic, payload, k < 2 ? 1 : 0, false);
        if (!r.ok()) {
          std::fprintf(stderr, "kiln-bench: %s\n", r.status().ToString().c_str());
          failed = true;
          return;
        }
      }
      std::unique_lock lock(n->mu);
      n->cv.wait(lock, [&] { return n->unwritten <= 0 || n->failed; });
    });
  }
  for (auto& t : publishers) t.join();
  const auto published = Clock::now();
  if (failed) {
    std::fprintf(stderr, "kiln-bench: publishing failed\n");
    return 1;
  }
  const double own1 = OwnCpuSeconds();
  double stored = stored0;
  const auto deadline = start + std::chrono::seconds(timeout_s);
  while (Clock::now() < deadline) {
    if (auto text = HttpGet(server->host, server->port, "/metrics")) {
      stored = PromValue(*text, "kiln_server_points_stored_total").value_or(stored);
      if (stored - stored0 >= expected) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto done = Clock::now();
  std::vector<double> cpu1;
  for (int pid : pids) cpu1.push_back(ProcessCpuSeconds(pid));
  const double pub_s = std::chrono::duration<double>(published - start).count();
  const double all_s = std::chrono::duration<double>(done - start).count();
  std::printf("published %.0f points in %.3f s: %.0f points/s (%.0f messages/s)\n", expected, pub_s,
              expected / pub_s, static_cast<double>(nodes_n * (messages + 2)) / pub_s);
  std::printf("stored    %.0f of %.0f points in %.3f s: %.0f points/s end to end\n",
              stored - stored0, expected, all_s, (stored - stored0) / all_s);
  std::printf("cpu: kiln-bench %.2f s", own1 - own0);
  for (size_t i = 0; i < pids.size(); ++i) {
    std::printf(", pid %d %.2f s (%.0f%% of one core)", pids[i], cpu1[i] - cpu0[i],
                100 * (cpu1[i] - cpu0[i]) / all_s);
  }
  std::printf("\n");
  for (auto& n : nodes) n->client->Disconnect().IgnoreError();
  if (stored - stored0 < expected) {
    std::fprintf(stderr, "FAIL: %.0f points not stored within %lld s\n",
                 expected - (stored - stored0), static_cast<long long>(timeout_s));
    return 1;
  }
  // Verify over REST: every node's first metric has every point (the birth's and the data's).
  int bad = 0;
  for (auto& n : nodes) {
    const std::string path =
        fmt::format("/api/v1/query?metric={}/{}/d/m000&from={}&to={}&step={}&agg=count", group,
                    n->id, t0 - 1, t0 + messages, messages + 1);
    auto body = HttpGet(server->host, server->port, path);
    int64_t count = 0;
    if (body) {
      // {"metric":..,"step":..,"agg":"count","points":[{"t":..,"v":..,"count":N},...]}
      for (size_t at = body->find("\"count\":"); at != std::string::npos;
           at = body->find("\"count\":", at + 1)) {
        count += std::stoll(body->substr(at + 8));
      }
    }
    if (count != messages + 1) {
      ++bad;
      std::fprintf(stderr, "FAIL: %s/%s/d/m000 has %lld points stored, expected %lld\n",
                   group.c_str(), n->id.c_str(), static_cast<long long>(count),
                   static_cast<long long>(messages + 1));
    }
  }
  if (bad > 0) return 1;
  std::printf("verified: every node's m000 has %lld points over REST\n",
              static_cast<long long>(messages + 1));
  return 0;
}

}  // namespace kiln::bench
