// kiln-edge: the edge gateway. Reads field devices, applies report-by-exception and
// publishes Sparkplug B 3.0 over MQTT. Wiring only; the behaviour lives in src/edge.
#include <fcntl.h>
#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/stop.h"
#include "drivers/modbus/modbus_driver.h"
#include "drivers/opcua/discover.h"
#include "drivers/opcua/opcua_driver.h"
#include "edge/config.h"
#include "edge/device_runner.h"
#include "edge/edge_node.h"
#include "edge/scan_engine.h"
#include "edge/uplink.h"
#include "http/server.h"
#include "queue/journal.h"
#include "queue/sample_queue.h"

namespace {

using namespace kiln;

constexpr int kExitConfig = 2;
constexpr int kExitRuntime = 1;

// bdSeq survives restarts so a late Will of an earlier process never matches a new NBIRTH.
uint64_t ReadBdSeq(const std::string& dir) {
  if (dir.empty()) return 0;
  std::ifstream in(std::filesystem::path(dir) / "bdseq");
  uint64_t v = 0;
  if (in >> v) return (v + 1) % 256;  // the next session uses the next value
  return 0;
}

// Persists bdSeq atomically and durably: written to a temporary file, fsynced, renamed, and
// the directory fsynced, so a power cut leaves the old or the new value, never an empty file.
void WriteBdSeq(const std::string& dir, uint64_t value, const Logger& log) {
  if (dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = (std::filesystem::path(dir) / "bdseq").string();
  const std::string tmp = path + ".tmp";
  const std::string text = std::to_string(value) + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  ok = ok && ::rename(tmp.c_str(), path.c_str()) == 0;
  if (ok) {
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  } else {
    log.Warn("cannot write {}: {}; bdSeq restarts at 0 after a restart", path,
             std::strerror(errno));
  }
}

// A JSON string literal of `s`.
std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::vector<edge::NodeDevice> NodeDevices(const edge::EdgeConfig& cfg) {
  std::vector<edge::NodeDevice> out;
  for (const auto& d : cfg.devices) {
    edge::NodeDevice nd{d.id, {}};
    for (const auto& t : d.tags) nd.tags.push_back({t.id, t.name, t.type, t.unit});
    out.push_back(std::move(nd));
  }
  return out;
}

int Check(const std::string& path) {
  auto cfg = edge::LoadEdgeConfig(path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
    return kExitConfig;
  }
  size_t tags = 0;
  for (const auto& d : cfg->devices) tags += d.tags.size();
  for (const auto& w : cfg->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::printf("%s: OK (%zu devices, %zu tags)\n", path.c_str(), cfg->devices.size(), tags);
  return 0;
}

void RegisterQueueMetrics(const queue::SampleQueue& queue, const Clock& clock,
                          MetricsRegistry& metrics) {
  auto gauge = [&](std::string_view name, std::string_view help, auto field) {
    metrics.AddGaugeCallback(name, help, {},
                             [&queue, field] { return static_cast<double>(field(queue.stats())); });
  };
  using queue::QueueStats;
  gauge("kiln_edge_queue_depth", "Samples stored and not yet confirmed by the broker",
        [](const QueueStats& s) { return s.depth; });
  gauge("kiln_edge_queue_bytes", "Bytes the store holds (on disk with [store] path)",
        [](const QueueStats& s) { return s.bytes; });
  gauge("kiln_edge_queue_appended_total", "Samples stored",
        [](const QueueStats& s) { return s.appended; });
  gauge("kiln_edge_queue_sent_total", "Samples the broker confirmed (barrier PUBACK)",
        [](const QueueStats& s) { return s.acked; });
  gauge("kiln_edge_queue_dropped_total",
        "Samples discarded unsent: budget, max_age, failed writes, corruption",
        [](const QueueStats& s) { return s.dropped; });
  gauge("kiln_edge_queue_write_errors_total", "Failed store writes or syncs (disk full, read-only)",
        [](const QueueStats& s) { return s.write_errors; });
  gauge("kiln_edge_queue_fsync_seconds_sum", "Time spent in data syncs",
        [](const QueueStats& s) { return s.fsync_seconds; });
  gauge("kiln_edge_queue_fsync_seconds_count", "Data syncs",
        [](const QueueStats& s) { return s.fsyncs; });
  gauge("kiln_edge_queue_fsync_seconds_max", "Slowest data sync since start",
        [](const QueueStats& s) { return s.fsync_seconds_max; });
  metrics.AddGaugeCallback(
      "kiln_edge_queue_oldest_unsent_age_seconds",
      "Age (by source time) of the oldest sample not yet confirmed; 0 when none", {},
      [&queue, &clock] {
        const int64_t oldest = queue.stats().oldest_unacked_ns;
        if (oldest == 0) return 0.0;
        const int64_t now = clock.Now().time_since_epoch().count();
        return std::max(0.0, static_cast<double>(now - oldest) / 1e9);
      });
}

Result<std::unique_ptr<drivers::Driver>> MakeDriver(const edge::DeviceConfig& d, const Clock& clock,
                                                    Logger log) {
  if (d.driver == "opcua") {
    drivers::opcua::OpcUaDriverOptions options;
    options.device_id = d.id;
    KILN_ASSIGN_OR_RETURN(auto driver,
                          drivers::opcua::OpcUaDriver::Create(d.opcua, options, clock, log));
    return std::unique_ptr<drivers::Driver>(std::move(driver));
  }
  KILN_ASSIGN_OR_RETURN(auto driver, drivers::modbus::ModbusDriver::Create(d.modbus, clock, log));
  return std::unique_ptr<drivers::Driver>(std::move(driver));
}

// `kiln-edge discover ENDPOINT`: browses an OPC UA server and prints a [[devices]] table.
int Discover(const std::string& endpoint, const std::string& username,
             const std::string& password) {
  SystemClock clock;
  StderrSink sink(clock);
  Logger log(sink, "discover", LogLevel::kWarning);
  drivers::opcua::ClientOptions options;
  options.endpoint = endpoint;
  if (!username.empty()) options.username = username;
  if (!password.empty()) {
    options.password = password;
  } else if (const char* env = std::getenv("KILN_OPCUA_PASSWORD"); env != nullptr) {
    options.password = env;  // kept out of `ps`
  }
  auto client = drivers::opcua::Client::Create(options, clock, log);
  if (!client.ok()) {
    std::fprintf(stderr, "kiln-edge discover: %s\n", client.status().ToString().c_str());
    return kExitConfig;
  }
  Status connected = (*client)->Connect();
  if (!connected.ok()) {
    std::fprintf(stderr, "kiln-edge discover: %s\n", connected.ToString().c_str());
    return kExitRuntime;
  }
  auto found = drivers::opcua::Discover(**client, drivers::opcua::DiscoverOptions());
  if (!found.ok()) {
    std::fprintf(stderr, "kiln-edge discover: browsing %s: %s\n", endpoint.c_str(),
                 found.status().ToString().c_str());
    return kExitRuntime;
  }
  (*client)->Close().IgnoreError();
  std::fputs(drivers::opcua::FormatDeviceToml(*found, "opcua-1", endpoint).c_str(), stdout);
  return 0;
}

int Run(const std::string& path, const std::string& log_level_flag) {
  auto loaded = edge::LoadEdgeConfig(path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().message().c_str());
    return kExitConfig;
  }
  const edge::EdgeConfig& cfg = *loaded;
  LogLevel level = cfg.log_level;
  if (!log_level_flag.empty() && !ParseLogLevel(log_level_flag, level)) {
    std::fprintf(stderr, "--log-level: '%s' is not debug, info, warning or error\n",
                 log_level_flag.c_str());
    return kExitConfig;
  }

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  SystemClock clock;
  StderrSink sink(clock);
  Logger log(sink, "edge", level);
  for (const auto& w : cfg.warnings) log.Warn("{}", w);
  // The queue outlives the registry whose callbacks read it.
  std::unique_ptr<queue::SampleQueue> queue;
  if (cfg.state_dir.empty()) {
    log.Warn("no [store] path: samples wait in memory only (at most {}) and are lost on exit",
             cfg.queue_max_samples);
    queue = std::make_unique<queue::MemorySampleQueue>(cfg.queue_max_samples);
  } else {
    queue::JournalOptions jo = cfg.journal;
    jo.dir = std::filesystem::path(cfg.state_dir) / "queue";
    jo.tag_fingerprint = edge::TagFingerprint(cfg);
    auto journal = queue::Journal::Open(jo, clock, log.Child("store"));
    if (!journal.ok()) {
      log.Error("[store] path {}: {}", cfg.state_dir, journal.status().ToString());
      return kExitRuntime;
    }
    queue = std::move(journal).value();
  }
  MetricsRegistry metrics;
  RegisterQueueMetrics(*queue, clock, metrics);

  edge::EdgeNode node({cfg.group_id, cfg.edge_node_id, cfg.max_metrics_per_message},
                      NodeDevices(cfg), clock, ReadBdSeq(cfg.state_dir));

  edge::UplinkOptions uplink_options;
  uplink_options.mqtt = cfg.mqtt;
  uplink_options.primary_host_id = cfg.primary_host_id;
  uplink_options.replay_rate = cfg.replay_rate;
  uplink_options.seed = static_cast<uint64_t>(clock.Now().time_since_epoch().count());
  // Written when it changes (not on every reconnect attempt: flash wears).
  uplink_options.on_new_session = [&cfg, &log,
                                   last = std::optional<uint64_t>()](uint64_t bd_seq) mutable {
    if (last == bd_seq) return;
    WriteBdSeq(cfg.state_dir, bd_seq, log);
    last = bd_seq;
  };
  // Writes of DCMDs go to the device's runner (its gate and driver, on its thread); the
  // result goes back through the uplink.
  std::vector<std::unique_ptr<edge::DeviceRunner>> runners;
  edge::Uplink* uplink_ptr = nullptr;
  uplink_options.on_write = [&runners, &uplink_ptr](edge::EdgeNode::WriteCommand w) {
    runners[w.device]->SubmitWrite(
        std::move(w.command_id), std::move(w.request),
        [&uplink_ptr](edge::CommandResult r) { uplink_ptr->PublishCommandResult(r); });
  };
  edge::Uplink uplink(uplink_options, node, *queue, clock, log.Child("mqtt"), metrics);
  uplink_ptr = &uplink;

  for (size_t i = 0; i < cfg.devices.size(); ++i) {
    const auto& d = cfg.devices[i];
    auto driver = MakeDriver(d, clock, log.Child(d.id));
    if (!driver.ok()) {
      log.Error("device {}: {}", d.id, driver.status().ToString());
      return kExitConfig;
    }
    std::vector<edge::ScanTag> scan;
    for (const auto& t : d.tags) scan.push_back({t.id, t.deadband, t.heartbeat});
    edge::DeviceRunnerOptions ro;
    ro.device_id = d.id;
    ro.device_index = i;
    ro.poll = d.poll;
    ro.backoff_initial = std::max(d.poll, std::chrono::milliseconds(200));
    ro.seed = uplink_options.seed + i;
    runners.push_back(std::make_unique<edge::DeviceRunner>(
        ro, std::move(driver).value(), edge::ScanEngine(std::move(scan)), *queue, uplink, clock,
        log.Child(d.id), metrics));
    runners.back()->EnableWrites(std::make_unique<edge::CommandGate>(d, clock));
  }

  http::HttpServer http;
  http.Get("/metrics", [&metrics](const http::Request&) {
    return http::Response{200, "text/plain; version=0.0.4; charset=utf-8",
                          metrics.RenderPrometheus()};
  });
  http.Get("/health", [&uplink, &runners, &cfg](const http::Request&) {
    std::string devices;
    bool all_online = true;
    for (size_t i = 0; i < runners.size(); ++i) {
      const bool online = runners[i]->online();
      all_online = all_online && online;
      devices += fmt::format("{}{}:\"{}\"", i ? "," : "", JsonString(cfg.devices[i].id),
                             online ? "online" : "offline");
    }
    const bool mqtt = uplink.connected();
    return http::Response{
        200, "application/json",
        fmt::format("{{\"status\":\"{}\",\"mqtt_connected\":{},\"devices\":{{{}}}}}",
                    mqtt && all_online ? "ok" : "degraded", mqtt, devices)};
  });
  if (Status s = http.Start(cfg.http_listen); !s.ok()) {
    log.Error("http: {}", s.ToString());
    return kExitRuntime;
  }
  log.Info("kiln-edge {} node {}/{}: {} devices, /health and /metrics on {}:{}", KILN_VERSION,
           cfg.group_id, cfg.edge_node_id, cfg.devices.size(),
           cfg.http_listen.substr(0, cfg.http_listen.rfind(':')), http.port());

  uplink.Start();
  for (auto& r : runners) r->Start();

  // Watchdog: values not refreshed for 3 poll periods turn Uncertain.
  std::chrono::milliseconds tick(1000);
  for (const auto& d : cfg.devices) tick = std::min(tick, d.poll);
  std::jthread watchdog([&runners, &clock, tick](std::stop_token stop) {
    do {
      for (auto& r : runners) r->CheckStale();
    } while (SleepUntil(stop, clock.Monotonic() + tick));
  });

  int sig = 0;
  sigwait(&signals, &sig);
  log.Info("signal {}: stopping", sig);
  watchdog.request_stop();
  watchdog.join();
  for (auto& r : runners) r->Stop();
  uplink.Stop();
  http.Stop();
  return 0;
}

constexpr char kUsage[] =
    "kiln-edge: reads Modbus and OPC UA devices and publishes Sparkplug B 3.0 over MQTT\n"
    "\n"
    "Usage:\n"
    "  kiln-edge --config FILE [--log-level LEVEL]   run the gateway\n"
    "  kiln-edge check --config FILE                 validate a configuration and exit\n"
    "  kiln-edge discover ENDPOINT [--username U [--password P]]\n"
    "                                  browse an OPC UA server (opc.tcp://host:port) and print\n"
    "                                  its variables as a [[devices]] table (the password may\n"
    "                                  also come from KILN_OPCUA_PASSWORD)\n"
    "  kiln-edge --help | --version\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     edge configuration (TOML, see docs/CONFIGURATION.md)\n"
    "  --log-level LEVEL     debug | info | warning | error (overrides [log] level)\n"
    "  -h, --help            print this help and exit\n"
    "  --version             print the version and exit\n"
    "\n"
    "Exit codes: 0 clean stop or valid config, 1 runtime failure, 2 bad config or usage.\n";

struct Args {
  bool check = false;
  std::string discover;  // the endpoint of `discover`
  std::string username;
  std::string password;
  std::string config;
  std::string log_level;
};

// A hand-written parser: the gateway takes four options, and a CLI library would add a
// quarter of its code to every resident page count (docs/PERFORMANCE.md).
std::optional<Args> ParseArgs(int argc, char** argv, int& exit_code) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&](std::string_view name, std::string& out) {
      if (const size_t eq = a.find('='); eq != std::string_view::npos) {
        out = std::string(a.substr(eq + 1));
        return true;
      }
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kiln-edge: %.*s needs a value (see --help)\n",
                     static_cast<int>(name.size()), name.data());
        return false;
      }
      out = argv[++i];
      return true;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      exit_code = 0;
      return std::nullopt;
    } else if (a == "--version") {
      std::printf("kiln-edge %s\n", KILN_VERSION);
      exit_code = 0;
      return std::nullopt;
    } else if (a == "check" && i == 1) {
      args.check = true;
    } else if (a == "discover" && i == 1) {
      if (i + 1 >= argc || std::string_view(argv[i + 1]).starts_with("-")) {
        std::fprintf(stderr, "kiln-edge: discover needs an endpoint first (see --help)\n");
        exit_code = kExitConfig;
        return std::nullopt;
      }
      args.discover = argv[++i];
    } else if (!args.discover.empty() && (a == "--username" || a.starts_with("--username="))) {
      if (!value("--username", args.username)) {
        exit_code = kExitConfig;
        return std::nullopt;
      }
    } else if (!args.discover.empty() && (a == "--password" || a.starts_with("--password="))) {
      if (!value("--password", args.password)) {
        exit_code = kExitConfig;
        return std::nullopt;
      }
    } else if (a == "-c" || a == "--config" || a.starts_with("--config=")) {
      if (!value("--config", args.config)) {
        exit_code = kExitConfig;
        return std::nullopt;
      }
    } else if (a == "--log-level" || a.starts_with("--log-level=")) {
      if (!value("--log-level", args.log_level)) {
        exit_code = kExitConfig;
        return std::nullopt;
      }
    } else {
      std::fprintf(stderr, "kiln-edge: unknown argument '%s' (see --help)\n", argv[i]);
      exit_code = kExitConfig;
      return std::nullopt;
    }
  }
  if (args.config.empty() && args.discover.empty()) {
    std::fprintf(stderr, "kiln-edge: --config FILE is required (see --help)\n");
    exit_code = kExitConfig;
    return std::nullopt;
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives every thread its own malloc arena, and each keeps freed memory resident
  // (about 5 MiB more with 10,000 tags). A gateway's few threads allocate little and rarely
  // at once, so one arena costs no measurable throughput (docs/PERFORMANCE.md).
  mallopt(M_ARENA_MAX, 1);
  int exit_code = 0;
  const auto args = ParseArgs(argc, argv, exit_code);
  if (!args) return exit_code;
  if (!args->discover.empty()) return Discover(args->discover, args->username, args->password);
  if (args->check) return Check(args->config);
  return Run(args->config, args->log_level);
}
