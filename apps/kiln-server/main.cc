// kiln-server: the platform server. A Sparkplug B primary host that stores history and
// serves the REST API, live events and the dashboard. Wiring only; the behaviour lives in
// src/server.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/log.h"
#include "server/config.h"
#include "server/server.h"

namespace {

using namespace kiln;

constexpr int kExitConfig = 2;
constexpr int kExitRuntime = 1;

constexpr char kUsage[] =
    "kiln-server: Sparkplug B primary host, historian, REST API and dashboard\n"
    "\n"
    "Usage:\n"
    "  kiln-server --config FILE [--log-level LEVEL]   run the server\n"
    "  kiln-server check --config FILE                 validate a configuration and exit\n"
    "  kiln-server --help | --version\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     server configuration (TOML, see docs/CONFIGURATION.md)\n"
    "  --log-level LEVEL     debug | info | warning | error (overrides [log] level)\n"
    "  -h, --help            print this help and exit\n"
    "  --version             print the version and exit\n"
    "\n"
    "Exit codes: 0 clean stop or valid config, 1 runtime failure, 2 bad config or usage.\n";

struct Args {
  bool check = false;
  std::string config;
  std::string log_level;
};

std::optional<Args> ParseArgs(int argc, char** argv, int& exit_code) {
  Args args;
  exit_code = kExitConfig;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&](std::string& out) {
      if (const size_t eq = a.find('='); eq != std::string_view::npos) {
        out = std::string(a.substr(eq + 1));
        return true;
      }
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kiln-server: %s needs a value (see --help)\n", argv[i]);
        return false;
      }
      out = argv[++i];
      return true;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      exit_code = 0;
      return std::nullopt;
    }
    if (a == "--version") {
      std::printf("kiln-server %s\n", KILN_VERSION);
      exit_code = 0;
      return std::nullopt;
    }
    if (a == "check" && i == 1) {
      args.check = true;
    } else if (a == "-c" || a == "--config" || a.starts_with("--config=")) {
      if (!value(args.config)) return std::nullopt;
    } else if (a == "--log-level" || a.starts_with("--log-level=")) {
      if (!value(args.log_level)) return std::nullopt;
    } else {
      std::fprintf(stderr, "kiln-server: unknown argument '%s' (see --help)\n", argv[i]);
      return std::nullopt;
    }
  }
  if (args.config.empty()) {
    std::fprintf(stderr, "kiln-server: --config FILE is required (see --help)\n");
    return std::nullopt;
  }
  return args;
}

int Run(const Args& args) {
  auto cfg = server::LoadServerConfig(args.config);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
    return kExitConfig;
  }
  if (args.check) {
    std::printf("%s: OK (host %s, storage %s)\n", args.config.c_str(), cfg->host_id.c_str(),
                cfg->storage_path.c_str());
    return 0;
  }
  if (!args.log_level.empty() && !ParseLogLevel(args.log_level, cfg->log_level)) {
    std::fprintf(stderr, "kiln-server: --log-level %s: not one of debug, info, warning, error\n",
                 args.log_level.c_str());
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
  Logger log(sink, "server", cfg->log_level);
  auto srv = server::Server::Create(*cfg, sink, clock);
  if (!srv.ok()) {
    log.Error("cannot start: {}", srv.status().ToString());
    return kExitRuntime;
  }
  log.Info("kiln-server {}", KILN_VERSION);
  (*srv)->Start();
  int sig = 0;
  sigwait(&signals, &sig);
  log.Info("signal {}: stopping", sig);
  (*srv)->Stop();
  log.Info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto args = ParseArgs(argc, argv, exit_code);
  if (!args) return exit_code;
  return Run(*args);
}
