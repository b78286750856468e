#pragma once
// Helpers shared by the kiln-server unit tests: a historian opened for tests (no background
// threads) and HTTP requests with parsed answers (over http/testing/http_client.h).
// (Temporary directories and log capture: core/testing.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "historian/historian.h"
#include "http/testing/http_client.h"
#include "testing/status_matchers.h"

namespace kiln::server::testing {

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
  http::testing::HttpClient c(port);
  c.Send(std::string(method) + " " + std::string(target) +
         " HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n");
  return ParseHttp(c.ReadAll());
}

}  // namespace kiln::server::testing
