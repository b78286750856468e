#include "drivers/opcua/internal/tcp_socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace kiln::drivers::opcua::internal {
namespace {

std::string ErrnoText(int err) { return std::string(std::strerror(err)); }

int ToPollTimeout(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return 0;
  if (timeout.count() > INT32_MAX) return INT32_MAX;
  return static_cast<int>(timeout.count());
}

// Waits for `events` on `fd`; returns 1 when ready, 0 on timeout, -1 with errno on error.
int PollFor(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{};
  p.fd = fd;
  p.events = events;
  for (;;) {
    const int n = ::poll(&p, 1, ToPollTimeout(timeout));
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

}  // namespace

TcpSocket::~TcpSocket() { Close(); }

void TcpSocket::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

Status TcpSocket::Connect(const std::string& host, uint16_t port,
                          std::chrono::milliseconds timeout) {
  Close();
  const std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* results = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &results);
  if (rc != 0) {
    return UnavailableError("resolve " + where + ": " + ::gai_strerror(rc));
  }
  Status last = UnavailableError("connect " + where + ": no address");
  for (addrinfo* a = results; a != nullptr; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last = UnavailableError("socket for " + where + ": " + ErrnoText(errno));
      continue;
    }
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        const int ready = PollFor(fd, POLLOUT, timeout);
        if (ready == 0) {
          ::close(fd);
          last = DeadlineExceededError("connect " + where + ": no answer within " +
                                       std::to_string(timeout.count()) + " ms");
          continue;
        }
        if (ready < 0) {
          err = errno;
        } else {
          socklen_t len = sizeof(err);
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
      }
    }
    if (err != 0) {
      ::close(fd);
      last = UnavailableError("connect " + where + ": " + ErrnoText(err));
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fd_ = fd;
    ::freeaddrinfo(results);
    return Status();
  }
  ::freeaddrinfo(results);
  return last;
}

Status TcpSocket::SendAll(std::span<const uint8_t> data, std::chrono::milliseconds timeout) {
  if (fd_ < 0) return UnavailableError("send: not connected");
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int ready = PollFor(fd_, POLLOUT, timeout);
      if (ready == 0) {
        return DeadlineExceededError("send: the peer took no data within " +
                                     std::to_string(timeout.count()) + " ms");
      }
      if (ready < 0) return UnavailableError("send: " + ErrnoText(errno));
      continue;
    }
    return UnavailableError("send: " + ErrnoText(errno));
  }
  return Status();
}

Result<size_t> TcpSocket::Receive(std::span<uint8_t> buffer, std::chrono::milliseconds timeout) {
  if (fd_ < 0) return UnavailableError("receive: not connected");
  for (;;) {
    const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return UnavailableError("the server closed the connection");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return UnavailableError("receive: " + ErrnoText(errno));
    }
    const int ready = PollFor(fd_, POLLIN, timeout);
    if (ready == 0) {
      return DeadlineExceededError("no data from the server within " +
                                   std::to_string(timeout.count()) + " ms");
    }
    if (ready < 0) return UnavailableError("receive: " + ErrnoText(errno));
  }
}

}  // namespace kiln::drivers::opcua::internal
