#pragma once
// HttpServer: a small HTTP/1.1 server for /health, /metrics and simple JSON APIs. One
// thread accepts and serves connections one request at a time (Connection: close), which is
// all a gateway's monitoring endpoints need and keeps the footprint small. Register routes,
// then Start(); handlers run on the server thread. Stop() (or the destructor) joins it.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "core/status.h"

namespace kiln::http {

struct Request {
  std::string method;
  std::string path;
  std::map<std::string, std::string> query;
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using Handler = std::function<Response(const Request&)>;

// Splits "host:port" (port 0 = any free port). Errors: InvalidArgument.
Result<std::pair<std::string, uint16_t>> ParseListenAddress(std::string_view listen);

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // REQUIRES: called before Start().
  void Get(std::string path, Handler handler);
  // Binds `listen` ("127.0.0.1:9102", an IPv4 address or a name) and serves in the
  // background. Errors: InvalidArgument for a bad address, Unavailable when the port cannot
  // be bound.
  Status Start(std::string_view listen);
  uint16_t port() const { return port_; }
  void Stop();

 private:
  void Serve(std::stop_token stop);
  void HandleConnection(int fd);

  std::map<std::string, Handler, std::less<>> routes_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::jthread thread_;
};

}  // namespace kiln::http
