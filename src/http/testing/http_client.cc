#include "http/testing/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <utility>

namespace kiln::http::testing {

HttpClient::HttpClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
}

HttpClient::~HttpClient() { Close(); }

void HttpClient::Send(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string HttpClient::ReadUntil(std::string_view needle) {
  while (buf_.find(needle) == std::string::npos && Fill()) {
  }
  const size_t at = buf_.find(needle);
  const size_t n = at == std::string::npos ? buf_.size() : at + needle.size();
  std::string out = buf_.substr(0, n);
  buf_.erase(0, n);
  return out;
}

std::string HttpClient::ReadResponse(bool head_request) {
  std::string head = ReadUntil("\r\n\r\n");
  size_t length = 0;
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (const size_t at = lower.find("\r\ncontent-length: "); at != std::string::npos) {
    length = std::stoul(head.substr(at + 18));
  }
  if (head_request) return head;
  while (buf_.size() < length && Fill()) {
  }
  const size_t n = std::min(length, buf_.size());
  head += buf_.substr(0, n);
  buf_.erase(0, n);
  return head;
}

std::string HttpClient::ReadAll() {
  while (Fill()) {
  }
  EXPECT_FALSE(timed_out_) << "the server did not close the connection";
  return std::exchange(buf_, "");
}

bool HttpClient::Closed() {
  const bool more = Fill();
  return !more && buf_.empty() && !timed_out_;
}

void HttpClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool HttpClient::Fill() {
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

}  // namespace kiln::http::testing
