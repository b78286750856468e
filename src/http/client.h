#pragma once
// A minimal blocking HTTP/1.1 client for Kiln's own tools (kiln CLI, kiln-bench): one request
// per connection (Connection: close), IPv4, a timeout for the whole exchange. Not a general
// client: no TLS, redirects or chunked request bodies. Thread-safe (no shared state).
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln::http {

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

struct ClientRequest {
  std::string method = "GET";
  std::string path = "/";  // with the query
  std::string body;
  std::string content_type = "application/json";  // when there is a body
  std::map<std::string, std::string> headers;
  std::chrono::milliseconds timeout{10000};
};

// Sends `request` to host:port and reads the whole answer. Errors: Unavailable when the
// server cannot be reached or closes early, DeadlineExceeded on timeout, DataLoss for an
// answer that is not HTTP.
Result<ClientResponse> Fetch(std::string_view host, uint16_t port, const ClientRequest& request);

// Splits "http://host[:port]" (default port 80). Errors: InvalidArgument.
Result<std::pair<std::string, uint16_t>> ParseHttpUrl(std::string_view url);

}  // namespace kiln::http
