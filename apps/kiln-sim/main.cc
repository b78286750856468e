// kiln-sim: a simulated plant of Modbus TCP and RTU devices (library kiln::sim) for the
// demo, the system tests and the benchmarks.
//
//   kiln-sim --config FILE [--log-level debug|info|warning|error]   serve the plant
//   kiln-sim check --config FILE                                    check a config, then exit
//
// Once every server listens (or its pseudo-terminal is open) it prints one line per server
// to stdout, in config order:
//   ready <id> tcp 127.0.0.1:<port>
//   ready <id> rtu <device path>
// It then reads control commands from stdin, one per line, and answers each with one line,
// "ok" or "error <message>":
//   set <id> <register> <value>              e.g. set press-3 holding:20 185.5
//   fault <id> exception <register> <code>   requests touching the address get exception <code>
//   fault <id> freeze | silent | drop        values stop changing | no answers | no connections
//   clear <id>                               removes every fault of the server
//   quit
// End of input does not stop it (the demo runs it with stdin from /dev/null); quit, SIGINT
// and SIGTERM stop it cleanly. Logs go to stderr.
//
// Exit codes: 0 after a clean stop or a good check; 1 for a bad config or a server that
// cannot start (every config error is listed as file:line:column: key: message); CLI11's
// codes for bad usage.
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "core/clock.h"
#include "core/log.h"
#include "sim/config.h"
#include "sim/simulator.h"

namespace {

using kiln::sim::SimConfig;
using kiln::sim::Simulator;

void PrintLine(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

int Check(const std::string& path) {
  auto config = kiln::sim::LoadSimConfig(path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  size_t values = 0;
  for (const auto& server : config->servers) {
    for (const auto& reg : server.registers) values += reg.count;
  }
  PrintLine(fmt::format("ok: {}: {} server(s), {} value(s)", path, config->servers.size(), values));
  return 0;
}

// Serves until quit or a signal; reads control lines from stdin while it is open.
int Serve(const std::string& path, kiln::LogLevel level) {
  auto config = kiln::sim::LoadSimConfig(path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  // Block the stop signals before any thread exists, so that only the signalfd sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a closed stdout or socket is an error, not a death
  const int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::cerr << "signalfd: " << std::strerror(errno) << "\n";
    return 1;
  }

  kiln::SystemClock clock;
  kiln::StderrSink sink(clock);
  kiln::Logger log(sink, "sim", level);
  auto sim = Simulator::Create(*config, clock, log);
  if (!sim.ok()) {
    std::cerr << sim.status().message() << "\n";
    return 1;
  }
  (*sim)->Start();
  for (const std::string& line : (*sim)->ReadyLines()) PrintLine(line);

  std::string pending;
  bool stdin_open = true;
  bool quit = false;
  auto handle = [&](const std::string& line) {
    const Simulator::Reply reply = (*sim)->HandleLine(line);
    PrintLine(reply.text);
    quit = quit || reply.quit;
  };
  while (!quit) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    if (poll(fds, stdin_open ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      log.Error("poll: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo info{};
      if (read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
        log.Info("{}: stopping", strsignal(static_cast<int>(info.ssi_signo)));
      }
      break;
    }
    if (!stdin_open || fds[1].revents == 0) continue;
    char chunk[4096];
    const ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!pending.empty()) handle(pending);  // a last line without a newline
      pending.clear();
      stdin_open = false;
      log.Info("stdin closed; serving until SIGINT or SIGTERM");
      continue;
    }
    pending.append(chunk, static_cast<size_t>(n));
    size_t newline = 0;
    while (!quit && (newline = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      handle(line);
    }
  }
  (*sim)->Stop();
  close(signal_fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln-sim: a simulated plant of Modbus TCP and RTU devices", "kiln-sim"};
  app.set_version_flag("--version", std::string(KILN_VERSION));
  std::string config_path;
  std::string log_level = "info";
  app.add_option("--config", config_path, "plant config (TOML), e.g. examples/sim.toml");
  app.add_option("--log-level", log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  std::string check_path;
  CLI::App* check = app.add_subcommand("check", "check a config and exit");
  check->add_option("--config", check_path, "plant config (TOML)")->required();
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);

  if (check->parsed()) return Check(check_path);
  if (config_path.empty()) {
    std::cerr << "--config is required\n" << app.help();
    return 2;
  }
  kiln::LogLevel level = kiln::LogLevel::kInfo;
  kiln::ParseLogLevel(log_level, level);
  return Serve(config_path, level);
}
