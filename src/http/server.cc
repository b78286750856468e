#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "core/host_port.h"

namespace kiln::http {

namespace {

constexpr size_t kMaxRequestBytes = 64 * 1024;
constexpr auto kRequestTimeout = std::chrono::seconds(3);

std::string_view StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 &&
               HexDigit(s[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

using Deadline = std::chrono::steady_clock::time_point;

// Waits until `fd` is ready for `events`; false once `deadline` has passed. One deadline
// covers a whole request, so a slow client cannot hold the (single) server thread.
bool WaitFd(int fd, short events, Deadline deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) == 1;
}

bool SendAll(int fd, std::string_view data, Deadline deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN && WaitFd(fd, POLLOUT, deadline)) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void Reply(int fd, const Response& r, Deadline deadline, bool head_only = false) {
  std::string head = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
      r.status, StatusText(r.status), r.content_type, r.body.size());
  if (SendAll(fd, head, deadline) && !head_only) SendAll(fd, r.body, deadline);
}

}  // namespace

Result<std::pair<std::string, uint16_t>> ParseListenAddress(std::string_view listen) {
  KILN_ASSIGN_OR_RETURN(
      HostPort hp, ParseHostPort(listen, {.default_port = std::nullopt, .allow_port_zero = true}));
  return std::make_pair(std::move(hp.host), hp.port);
}

HttpServer::HttpServer() = default;

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Get(std::string path, Handler handler) {
  routes_[std::move(path)] = std::move(handler);
}

Status HttpServer::Start(std::string_view listen) {
  KILN_ASSIGN_OR_RETURN(auto addr, ParseListenAddress(listen));
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(addr.second);
  if (int rc = ::getaddrinfo(addr.first.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return InvalidArgumentError(fmt::format("{}: {}", listen, gai_strerror(rc)));
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int rc = ::bind(fd, res->ai_addr, res->ai_addrlen);
  const int bind_errno = errno;
  ::freeaddrinfo(res);
  if (rc != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    return UnavailableError(fmt::format("cannot listen on {}: {}", listen,
                                        std::strerror(rc != 0 ? bind_errno : errno)));
  }
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.sin_port);
  if (::pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fd);
    return UnavailableError(fmt::format("pipe: {}", std::strerror(errno)));
  }
  listen_fd_ = fd;
  thread_ = std::jthread([this](std::stop_token stop) { Serve(stop); });
  return OkStatus();
}

void HttpServer::Stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    const char b = 1;
    (void)!::write(wake_fds_[1], &b, 1);
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &wake_fds_[0], &wake_fds_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void HttpServer::Serve(std::stop_token stop) {
  while (!stop.stop_requested()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      // Out of descriptors: the pending connection stays, so wait instead of spinning.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        pollfd wake{wake_fds_[0], POLLIN, 0};
        ::poll(&wake, 1, 100);
      }
      continue;
    }
    HandleConnection(fd);
    ::close(fd);
  }
}

void HttpServer::HandleConnection(int fd) {
  const Deadline deadline = std::chrono::steady_clock::now() + kRequestTimeout;
  std::string data;
  char buf[4096];
  size_t header_end = std::string::npos;
  while (header_end == std::string::npos) {
    if (data.size() > kMaxRequestBytes) {
      return Reply(fd, {413, "text/plain", "too large\n"}, deadline);
    }
    if (!WaitFd(fd, POLLIN, deadline)) return;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      return;
    }
    data.append(buf, static_cast<size_t>(n));
    header_end = data.find("\r\n\r\n");
  }
  const std::string_view head(data.data(), header_end);
  const size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 <= sp1) {
    return Reply(fd, {400, "text/plain", "bad request line\n"}, deadline);
  }
  Request req;
  req.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const size_t q = target.find('?');
  req.path = UrlDecode(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      const size_t eq = pair.find('=');
      req.query[UrlDecode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? std::string() : UrlDecode(pair.substr(eq + 1));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  const auto it = routes_.find(req.path);
  if (it == routes_.end()) return Reply(fd, {404, "text/plain", "not found\n"}, deadline);
  if (req.method != "GET" && req.method != "HEAD") {
    return Reply(fd, {405, "text/plain", "method not allowed\n"}, deadline);
  }
  Reply(fd, it->second(req), deadline, /*head_only=*/req.method == "HEAD");
}

}  // namespace kiln::http
