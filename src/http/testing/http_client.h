#pragma once
// HttpClient: a raw, blocking HTTP/1.1 client on a loopback TCP socket, for tests of HTTP
// servers. It sends bytes exactly as given (so tests can send malformed requests) and reads
// with a timeout, so that a server bug fails the test (through GoogleTest) instead of hanging
// it. Single-threaded. Owns its socket.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::http::testing {

// Bounds every blocking read of the client. Generous: nothing waits for it when the server
// is right.
inline constexpr auto kClientTimeout = std::chrono::seconds(5);

class HttpClient {
 public:
  // Connects to 127.0.0.1:`port`; a failed connect fails the test.
  explicit HttpClient(uint16_t port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends all of `data`; stops early, silently, when the server has closed the connection
  // (e.g. after a 413 or 431): the test checks the answer.
  void Send(std::string_view data);

  // Reads until `needle` has been received (returns everything up to and including it,
  // keeping the rest buffered), or until EOF/timeout (returns what there is).
  std::string ReadUntil(std::string_view needle);

  // Reads one response: the head and, unless `head_request`, Content-Length bytes of body.
  std::string ReadResponse(bool head_request = false);

  // Reads everything until the server closes the connection; fails the test on a timeout.
  std::string ReadAll();

  // True when the server has closed the connection (EOF or reset) without sending more.
  bool Closed();

  // Closes the socket (idempotent).
  void Close();

 private:
  // Receives more bytes; false on EOF, error or timeout.
  bool Fill();

  int fd_;
  std::string buf_;
  bool timed_out_ = false;
};

}  // namespace kiln::http::testing
