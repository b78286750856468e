#include "http/server.h"

#include <atomic>
#include <charconv>

#include <fmt/format.h>
#include <httplib.h>

namespace kiln::http {

Result<std::pair<std::string, uint16_t>> ParseListenAddress(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return InvalidArgumentError(fmt::format("'{}' is not host:port", listen));
  }
  std::string_view port = listen.substr(colon + 1);
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || p != port.data() + port.size() || value > 65535) {
    return InvalidArgumentError(fmt::format("'{}': bad port '{}'", listen, port));
  }
  std::string host(listen.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, static_cast<uint16_t>(value));
}

struct HttpServer::Impl {
  httplib::Server server;
  std::atomic<bool> finished{false};
};

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Get(std::string path, Handler handler) {
  impl_->server.Get(path, [handler = std::move(handler)](const httplib::Request& req,
                                                        httplib::Response& res) {
    Request r{req.method, req.path, {}, req.body};
    for (const auto& [k, v] : req.params) r.query.emplace(k, v);
    Response out = handler(r);
    res.status = out.status;
    res.set_content(out.body, out.content_type.c_str());
  });
}

Status HttpServer::Start(std::string_view listen) {
  KILN_ASSIGN_OR_RETURN(auto addr, ParseListenAddress(listen));
  int port = 0;
  if (addr.second == 0) {
    port = impl_->server.bind_to_any_port(addr.first);
  } else {
    port = impl_->server.bind_to_port(addr.first, addr.second) ? addr.second : -1;
  }
  if (port <= 0) {
    return UnavailableError(fmt::format("cannot listen on {}: address in use or not local", listen));
  }
  port_ = static_cast<uint16_t>(port);
  thread_ = std::jthread([this] {
    impl_->server.listen_after_bind();
    impl_->finished = true;
  });
  return OkStatus();
}

void HttpServer::Stop() {
  if (thread_.joinable()) {
    // stop() is a no-op until the server thread runs its accept loop.
    while (!impl_->server.is_running() && !impl_->finished) std::this_thread::yield();
    impl_->server.stop();
    thread_.join();
  }
}

}  // namespace kiln::http
