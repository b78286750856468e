#include "server/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/json.h"
#include "core/testing/capturing_sink.h"
#include "core/testing/temp_dir.h"
#include "server/test/server_test_util.h"
#include "testing/status_matchers.h"

namespace kiln::server {
namespace {

using ::kiln::testing::CapturingSink;
using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::kiln::testing::TempDir;
using ::testing::HasSubstr;
using testing::HttpAnswer;
using testing::HttpRequest;
using ::testing::StartsWith;

// A loopback TCP port that is bound but not listening: connections to it are refused.
class RefusingPort {
 public:
  RefusingPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_ = 0;
};

class ServerTest : public ::testing::Test {
 protected:
  ServerConfig Config() {
    ServerConfig c;
    c.mqtt_url = "mqtt://127.0.0.1:" + std::to_string(broker_.port());
    c.mqtt.broker.host = "127.0.0.1";
    c.mqtt.broker.port = broker_.port();
    c.mqtt.client_id = "kiln-server:test";
    c.host_id = "test";
    c.storage_path = dir_.path() + "/state/server";
    c.wal_sync = historian::WalSync::kNever;
    c.http_listen = "127.0.0.1:0";
    return c;
  }

  TempDir dir_;
  RefusingPort broker_;
  CapturingSink sink_{CapturingSink::Format::kComponent};
  FakeClock clock_;
};

TEST_F(ServerTest, CreateOpensStorageAndServesTheApi) {
  auto server = Server::Create(Config(), sink_, clock_);
  ASSERT_THAT(server, IsOk());
  EXPECT_TRUE(std::filesystem::is_directory(dir_.path() + "/state/server/historian"));
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/state/server/registry.db"));
  const uint16_t port = (*server)->http_port();
  ASSERT_GT(port, 0);

  HttpAnswer health = HttpRequest(port, "GET", "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.Json().ToJson(),
            R"({"status":"degraded","host_id":"test","mqtt":"disconnected","nodes":0,)"
            R"("nodes_online":0,"series":0})");
  HttpAnswer metrics = HttpRequest(port, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("\nkiln_server_mqtt_connected 0\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nkiln_server_mqtt_connects_total 0\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nkiln_server_points_stored_total 0\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nkiln_server_stream_dropped_total 0\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nkiln_historian_series 0\n"));
  EXPECT_EQ(HttpRequest(port, "GET", "/api/v1/nodes").Json().ToJson(), R"({"nodes":[]})");
  EXPECT_THAT(HttpRequest(port, "GET", "/").body, StartsWith("<!doctype html>"));
  (*server)->Stop();
  (*server)->Stop();  // idempotent
}

TEST_F(ServerTest, CreateFailsWhenTheStoragePathIsAFile) {
  ServerConfig c = Config();
  c.storage_path = dir_.path() + "/file";
  std::ofstream(c.storage_path) << "x";
  c.storage_path += "/sub";
  EXPECT_THAT(Server::Create(c, sink_, clock_),
              StatusIs(StatusCode::kUnavailable, HasSubstr("[storage] path " + c.storage_path)));
}

TEST_F(ServerTest, CreateFailsForABadListenAddress) {
  ServerConfig c = Config();
  c.http_listen = "127.0.0.1:http";
  EXPECT_THAT(Server::Create(c, sink_, clock_), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(ServerTest, ASecondServerOnTheSameStorageIsRefused) {
  auto first = Server::Create(Config(), sink_, clock_);
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(Server::Create(Config(), sink_, clock_), StatusIs(StatusCode::kUnavailable));
}

TEST_F(ServerTest, StopsPromptlyWhileTheBrokerIsUnreachable) {
  auto server = Server::Create(Config(), sink_, clock_);
  ASSERT_THAT(server, IsOk());
  (*server)->Start();
  // The connection attempt fails in the background; wait for it (bounded).
  const std::string failed = "MQTT mqtt://127.0.0.1:" + std::to_string(broker_.port());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sink_.Matching(failed).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_FALSE(sink_.Matching(failed).empty());
  EXPECT_EQ(HttpRequest((*server)->http_port(), "GET", "/health").status, 503);
  const auto start = std::chrono::steady_clock::now();
  (*server)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5))
      << "Stop must not wait out the reconnect backoff";
}

}  // namespace
}  // namespace kiln::server
