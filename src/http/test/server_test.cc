#include "http/server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testing/status_matchers.h"

namespace kiln::http {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Sends `request` raw and returns everything the server answers until it closes.
std::string RoundTrip(uint16_t port, std::string_view request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Get("/health", [](const Request& r) {
      std::string q = r.query.count("x") ? r.query.at("x") : "";
      return Response{200, "application/json", "{\"status\":\"ok\",\"x\":\"" + q + "\"}"};
    });
    ASSERT_THAT(server_.Start("127.0.0.1:0"), IsOk());
    ASSERT_GT(server_.port(), 0);
  }
  HttpServer server_;
};

TEST_F(HttpServerTest, ServesRegisteredRouteWithDecodedQuery) {
  const std::string r =
      RoundTrip(server_.port(), "GET /health?x=a%20b&y HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 25\r\n"));
  EXPECT_THAT(r, EndsWith("\r\n\r\n{\"status\":\"ok\",\"x\":\"a b\"}"));
}

TEST_F(HttpServerTest, UnknownPathIs404AndOtherMethods405) {
  EXPECT_THAT(RoundTrip(server_.port(), "GET /nope HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(RoundTrip(server_.port(), "POST /health HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 405"));
}

TEST_F(HttpServerTest, HeadHasHeadersButNoBody) {
  const std::string r = RoundTrip(server_.port(), "HEAD /health HTTP/1.1\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 22\r\n"));
  EXPECT_THAT(r, EndsWith("\r\n\r\n"));
}

TEST_F(HttpServerTest, GarbageGetsBadRequestAndServerKeepsServing) {
  EXPECT_THAT(RoundTrip(server_.port(), "garbage\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(RoundTrip(server_.port(), std::string(70000, 'a')), StartsWith("HTTP/1.1 413"));
  EXPECT_THAT(RoundTrip(server_.port(), "GET /health HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 200"));
}

TEST(HttpServerStartTest, RejectsBadAddressesAndBusyPorts) {
  HttpServer a;
  EXPECT_THAT(a.Start("nonsense"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseListenAddress("127.0.0.1:99999"), StatusIs(StatusCode::kInvalidArgument));
  HttpServer b;
  ASSERT_THAT(b.Start("127.0.0.1:0"), IsOk());
  HttpServer c;
  EXPECT_THAT(c.Start("127.0.0.1:" + std::to_string(b.port())), StatusIs(StatusCode::kUnavailable));
}

}  // namespace
}  // namespace kiln::http
