#include "http/client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include "core/host_port.h"

namespace kiln::http {

namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits until `fd` is ready for `events` or the deadline passes.
Status WaitFor(int fd, short events, Clock::time_point deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return DeadlineExceededError("HTTP request timed out");
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(left));
    if (n > 0) return OkStatus();
    if (n < 0 && errno != EINTR) return UnavailableError(std::strerror(errno));
  }
}

}  // namespace

Result<std::pair<std::string, uint16_t>> ParseHttpUrl(std::string_view url) {
  if (!url.starts_with("http://")) {
    return InvalidArgumentError(fmt::format("'{}': expected http://host[:port]", url));
  }
  url.remove_prefix(7);
  if (!url.empty() && url.back() == '/') url.remove_suffix(1);
  KILN_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(url, HostPortOptions{.default_port = 80}));
  return std::make_pair(hp.host, hp.port);
}

Result<ClientResponse> Fetch(std::string_view host, uint16_t port, const ClientRequest& request) {
  const auto deadline = Clock::now() + request.timeout;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string host_str(host);
  if (getaddrinfo(host_str.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) {
    return UnavailableError(fmt::format("{}: cannot resolve", host));
  }
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int rc = fd.get() < 0 ? -1 : connect(fd.get(), res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  const std::string where = fmt::format("http://{}:{}", host, port);
  if (rc != 0 && errno != EINPROGRESS) {
    return UnavailableError(fmt::format("{}: {}", where, std::strerror(errno)));
  }
  KILN_RETURN_IF_ERROR(WaitFor(fd.get(), POLLOUT, deadline));
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return UnavailableError(fmt::format("{}: {}", where, std::strerror(err)));

  std::string out = fmt::format("{} {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n",
                                request.method, request.path, host, port);
  for (const auto& [k, v] : request.headers) out += fmt::format("{}: {}\r\n", k, v);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    out += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n", request.content_type,
                       request.body.size());
  }
  out += "\r\n";
  out += request.body;
  for (size_t sent = 0; sent < out.size();) {
    KILN_RETURN_IF_ERROR(WaitFor(fd.get(), POLLOUT, deadline));
    const ssize_t n = send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return UnavailableError(fmt::format("{}: {}", where, std::strerror(errno)));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string in;
  char buf[65536];
  while (true) {
    KILN_RETURN_IF_ERROR(WaitFor(fd.get(), POLLIN, deadline));
    const ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return UnavailableError(fmt::format("{}: {}", where, std::strerror(errno)));
    }
    in.append(buf, static_cast<size_t>(n));
  }
  const size_t head_end = in.find("\r\n\r\n");
  if (!in.starts_with("HTTP/1.") || head_end == std::string::npos || in.size() < 12) {
    return DataLossError(fmt::format("{}: not an HTTP answer", where));
  }
  ClientResponse r;
  auto [p, ec] = std::from_chars(in.data() + 9, in.data() + 12, r.status);
  if (ec != std::errc()) return DataLossError(fmt::format("{}: bad status line", where));
  size_t pos = in.find("\r\n") + 2;
  while (pos < head_end) {
    const size_t eol = in.find("\r\n", pos);
    const std::string_view line(in.data() + pos, eol - pos);
    if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
      std::string name(line.substr(0, colon));
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      r.headers[name] = std::string(value);
    }
    pos = eol + 2;
  }
  r.body = in.substr(head_end + 4);
  return r;
}

}  // namespace kiln::http
