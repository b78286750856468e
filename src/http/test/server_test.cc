#include "http/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "testing/status_matchers.h"

namespace kiln::http {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;

TEST(HttpServerTest, ServesRegisteredRoutesOnAnEphemeralPort) {
  HttpServer server;
  server.Get("/health", [](const Request& r) {
    return Response{200, "application/json", "{\"status\":\"ok\",\"q\":\"" + r.query.at("x") + "\"}"};
  });
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  ASSERT_GT(server.port(), 0);
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/health?x=1");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "{\"status\":\"ok\",\"q\":\"1\"}");
  EXPECT_EQ(client.Get("/nope")->status, 404);
  server.Stop();
}

TEST(HttpServerTest, RejectsBadListenAddress) {
  HttpServer server;
  EXPECT_THAT(server.Start("nonsense"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseListenAddress("127.0.0.1:99999"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kiln::http
