#pragma once
// Helpers shared by the kiln-server unit tests: a temporary directory per test, a log sink
// that keeps lines, a historian opened for tests (no background threads) and a small
// blocking HTTP client.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mutex.h"
#include "historian/historian.h"
#include "testing/status_matchers.h"

namespace kiln::server::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with the object.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kiln-server-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Keeps every log line as "component: message"; thread-safe.
class CapturingSink final : public LogSink {
 public:
  void Write(LogLevel, std::string_view component, std::string_view message) override {
    MutexLock lock(mu_);
    lines_.push_back(std::string(component) + ": " + std::string(message));
  }
  std::vector<std::string> Matching(std::string_view part) const {
    MutexLock lock(mu_);
    std::vector<std::string> out;
    for (const auto& l : lines_) {
      if (l.find(part) != std::string::npos) out.push_back(l);
    }
    return out;
  }

 private:
  mutable Mutex mu_;
  std::vector<std::string> lines_ KILN_GUARDED_BY(mu_);
};

// A historian in `dir`/historian without background threads or syncs.
inline std::unique_ptr<historian::Historian> OpenTestHistorian(const std::string& dir, Clock& clock,
                                                               LogSink& log) {
  historian::HistorianOptions o;
  o.dir = dir + "/historian";
  o.clock = &clock;
  o.log = &log;
  o.background = false;
  o.wal_sync = historian::WalSync::kNever;
  auto h = historian::Historian::Open(o);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  return h.ok() ? std::move(*h) : nullptr;
}

// Bounds every blocking step of the client so that a server bug fails a test instead of
// hanging it. Nothing waits for it when the server is right.
inline constexpr auto kClientTimeout = std::chrono::seconds(5);

// A raw HTTP client on a loopback socket (as in src/http/test/server_test.cc).
class HttpClient {
 public:
  explicit HttpClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ~HttpClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Reads until `needle` has been received (returns everything up to and including it,
  // keeping the rest buffered), or until EOF/timeout (returns what there is).
  std::string ReadUntil(std::string_view needle) {
    while (buf_.find(needle) == std::string::npos && Fill()) {
    }
    const size_t at = buf_.find(needle);
    const size_t n = at == std::string::npos ? buf_.size() : at + needle.size();
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }

  // Reads everything until the server closes the connection.
  std::string ReadAll() {
    while (Fill()) {
    }
    EXPECT_FALSE(timed_out_) << "the server did not close the connection";
    return std::exchange(buf_, "");
  }

 private:
  bool Fill() {
    pollfd p{fd_, POLLIN, 0};
    timed_out_ = false;
    if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kClientTimeout).count())) != 1) {
      timed_out_ = true;
      return false;
    }
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  std::string buf_;
  bool timed_out_ = false;
};

struct HttpAnswer {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
  // The value of header `name` (case-insensitive), or "<absent>".
  std::string Header(std::string_view name) const {
    std::string lower_head = head;
    for (char& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string key = "\r\n" + std::string(name) + ": ";
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const size_t at = lower_head.find(key);
    if (at == std::string::npos) return "<absent>";
    const size_t start = at + key.size();
    return head.substr(start, head.find("\r\n", start) - start);
  }
  // The body parsed as JSON (a null value, and a failure, if it is not JSON).
  json::Value Json() const {
    auto v = json::Parse(body);
    EXPECT_THAT(v, ::kiln::testing::IsOk()) << body;
    return v.ok() ? *v : json::Value();
  }
};

inline HttpAnswer ParseHttp(const std::string& response) {
  HttpAnswer a;
  const size_t end = response.find("\r\n\r\n");
  a.head = response.substr(0, end);
  if (end != std::string::npos) a.body = response.substr(end + 4);
  if (a.head.size() > 12 && a.head.compare(0, 9, "HTTP/1.1 ") == 0) {
    a.status = std::stoi(a.head.substr(9, 3));
  }
  return a;
}

// One request on a fresh connection with "Connection: close"; the parsed answer.
inline HttpAnswer HttpRequest(uint16_t port, std::string_view method, std::string_view target) {
  HttpClient c(port);
  c.Send(std::string(method) + " " + std::string(target) +
         " HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n");
  return ParseHttp(c.ReadAll());
}

}  // namespace kiln::server::testing
