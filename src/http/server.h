#pragma once
// HttpServer: a small HTTP/1.1 server for /health and /metrics, REST APIs, server-sent
// events and a static dashboard. One accept thread plus one thread per connection (bounded
// by ServerOptions::max_connections), persistent connections (keep-alive) with idle and
// request timeouts, request bodies by Content-Length, and routes with {name} parameters.
//
// Thread-safety: register routes and the error handler, then Start(); Stop() (or the
// destructor) stops and joins every thread. Handlers run concurrently on the connection
// threads, so they must be thread-safe and should return promptly (Stop() waits for running
// handlers; only streams are asked to stop). stats() and port() may be called from any
// thread.
//
// Not supported: TLS, HTTP/2, chunked request bodies (answered 411/501), pipelined
// responses out of order (pipelined requests are served one after the other), Date headers
// (library code does not read the wall clock).
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/log.h"
#include "core/mutex.h"
#include "core/status.h"

namespace kiln::http {

struct Request {
  std::string method;                          // "GET", "POST", ... (case-sensitive)
  std::string path;                            // Percent-decoded path without the query.
  std::map<std::string, std::string> query;    // Percent-decoded ('+' is a space in queries);
                                               // a repeated name keeps its last value.
  std::map<std::string, std::string> params;   // Values of {name} segments of the matched route.
  std::map<std::string, std::string> headers;  // Names lower-cased; repeats joined by ", ".
  std::string body;                            // Exactly Content-Length bytes.
  std::string remote_address;                  // The peer, "127.0.0.1:54321".
};

// The open connection of a streaming response. Used only on the thread running
// Response::stream, during that call.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Writes bytes at once (no buffering). False once the client has gone, the write failed
  // or timed out (ServerOptions::write_timeout), or the stream's stop was requested; after a
  // false every later Write is false too.
  virtual bool Write(std::string_view data) = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";  // Omitted when empty.
  std::string body{};
  // Extra headers (e.g. Cache-Control, Allow, Location). The server writes Content-Length,
  // Connection, Keep-Alive and Transfer-Encoding itself and drops such names here, and it
  // drops headers whose name or value would break the framing (CR, LF, ':' in names).
  std::vector<std::pair<std::string, std::string>> headers{};
  // Set for a streaming response (server-sent events): the status line and headers go out
  // without Content-Length (and `body` is ignored), then `stream` runs on the connection's
  // thread until it returns; the connection is closed afterwards. `stop` is requested when
  // the server stops and when the client is seen to hang up (a client that half-closes its
  // side after the request counts as gone). A stream that idles should wait on `stop`
  // (e.g. std::condition_variable_any::wait_for(lock, stop, ...)) and write a heartbeat
  // comment now and then. For HEAD requests only the headers are sent and `stream` is not
  // called.
  std::function<void(StreamWriter& writer, std::stop_token stop)> stream{};
};

// Runs on a connection thread; see HttpServer for thread-safety. An exception escaping a
// handler is caught, logged and answered 500.
using Handler = std::function<Response(const Request&)>;

// Builds the response for an error the server detects itself (400 malformed request, 404
// no route, 405 wrong method, 408 request timeout, 411 chunked body, 413 body too large,
// 431 header too large, 500 handler exception, 501 unsupported transfer coding, 503
// connection limit, 505 HTTP version) from the status and a short English message. The
// server sets the status (whatever the function returns) and adds Allow to 405s.
using ErrorHandler = std::function<Response(int status, std::string_view message)>;

struct ServerOptions {
  // Connections served at once (one thread each). Beyond it a new connection is answered
  // 503 and closed.
  size_t max_connections = 64;
  // How long a keep-alive connection may stay idle between requests.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(30);
  // How long a client may take to send one request (request line, headers and body), from
  // its first byte or, for the first request of a connection, from the accept. Then 408 and
  // close, so a slow or silent client cannot hold a thread.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
  // How long one write may wait for a client that does not read; then the connection is
  // closed (for a stream: Write() returns false).
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);
  size_t max_header_bytes = 16 * 1024;  // Request line + headers; beyond: 431.
  size_t max_body_bytes = 1 << 20;      // Content-Length beyond this: 413.
  // Where handler exceptions and similar failures are logged; none = not logged.
  std::optional<Logger> logger{};
};

// Counters since construction. `responses_by_class[c]` counts status c xx (1..5).
struct ServerStats {
  uint64_t requests = 0;  // Requests read completely (or rejected as malformed).
  std::array<uint64_t, 6> responses_by_class{};
  uint64_t open_connections = 0;      // Now, including streaming ones.
  uint64_t streams = 0;               // Streaming responses running now.
  uint64_t connections_accepted = 0;  // Served by a connection thread.
  uint64_t connections_rejected = 0;  // Answered 503 at the connection limit.
  uint64_t handler_exceptions = 0;    // Handlers or streams that threw.
};

// Splits "host:port" (port 0 = any free port). Errors: InvalidArgument.
Result<std::pair<std::string, uint16_t>> ParseListenAddress(std::string_view listen);

class HttpServer {
 public:
  HttpServer();
  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves `method` requests whose path matches `pattern`. A pattern is "/"-separated
  // segments, each a literal, "{name}" (exactly one non-empty path segment; the value is
  // percent-decoded after splitting, so "%2F" stays inside it) or, as the last segment only,
  // "{name...}" (the rest of the path including slashes, possibly empty). Literals compare
  // with the percent-decoded path segment; trailing slashes matter ("/a/" is not "/a").
  //
  // When several routes match, the most specific wins: (1) more literal segments; (2) then a
  // route without a {name...} catch-all; (3) then the first segment where they differ is a
  // literal rather than a {name}; (4) then the route registered first. Routes are matched
  // for the request's method; HEAD is served by the GET route (without the body) unless a
  // HEAD route matches. A path that only matches routes of other methods gets 405 with an
  // Allow header; no matching route: 404. Registering the same method and pattern again
  // replaces the handler.
  // REQUIRES: not started; `method` is an HTTP token; `pattern` starts with "/", names are
  // non-empty and distinct, "{...}" only as a whole segment and "{name...}" only last.
  void Route(std::string_view method, std::string pattern, Handler handler);
  // Route("GET", path, handler).
  void Get(std::string path, Handler handler);
  // Replaces the default plain-text answer to errors the server produces itself (see
  // ErrorHandler). REQUIRES: not started.
  void SetErrorHandler(ErrorHandler handler);

  // Binds `listen` ("127.0.0.1:9102", an IPv4 address or a name; port 0 picks a free port)
  // and serves in the background. Errors: InvalidArgument for a bad address, Unavailable
  // when the port cannot be bound, FailedPrecondition when already started. May be called
  // again after Stop().
  Status Start(std::string_view listen);
  // The bound port (after a successful Start()).
  uint16_t port() const { return port_; }
  // Stops accepting, asks streams to stop, closes idle keep-alive connections, lets running
  // handlers finish and joins every thread. Idempotent; also done by the destructor.
  void Stop();

  // A snapshot of the counters (e.g. for /metrics). Thread-safe.
  ServerStats stats() const;

 private:
  struct RouteEntry;
  struct Connection;
  struct Counters;
  struct Lingering {
    int fd;
    std::chrono::steady_clock::time_point deadline;
  };

  void AcceptLoop();
  void Accept();
  void Reject(int fd);
  void ReapFinished();
  void Notify();
  void ServeConnection(Connection& conn, std::stop_token stop);
  // Routes `request` by its still percent-encoded `raw_path` (filling its params) and runs
  // the handler; no route, a wrong method and exceptions become the server's error responses.
  Response Dispatch(Request& request, std::string_view raw_path);
  // The response to an error the server detects itself (the error handler's or the default).
  Response MakeError(int status, std::string_view message) const;
  void CountResponse(int status);

  const ServerOptions options_;
  std::vector<std::unique_ptr<RouteEntry>> routes_;  // Read-only while started.
  ErrorHandler error_handler_;                       // Read-only while started.
  std::unique_ptr<Counters> counters_;

  int listen_fd_ = -1;
  int stop_fds_[2] = {-1, -1};    // Written once by Stop(); every poll watches the read end.
  int notify_fds_[2] = {-1, -1};  // Wakes the accept thread (a connection ended or streams).
  uint16_t port_ = 0;
  bool started_ = false;
  std::vector<Lingering> lingering_;  // Rejected connections draining; accept thread only.

  mutable Mutex mu_;
  std::list<std::unique_ptr<Connection>> connections_ KILN_GUARDED_BY(mu_);
  size_t active_ KILN_GUARDED_BY(mu_) = 0;  // Connections whose thread has not finished.
  std::jthread accept_thread_;
};

}  // namespace kiln::http
