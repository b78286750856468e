#include "http/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>

#include "core/json.h"
#include "core/testing/capturing_sink.h"
#include "http/testing/http_client.h"
#include "testing/status_matchers.h"

namespace kiln::http {
namespace {

using ::kiln::http::testing::HttpClient;
using ::kiln::http::testing::kClientTimeout;
using ::kiln::testing::CapturingSink;
using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using SteadyClock = std::chrono::steady_clock;

// One request on a fresh connection with "Connection: close"; the whole answer.
std::string RoundTrip(uint16_t port, std::string_view request) {
  HttpClient c(port);
  c.Send(request);
  return c.ReadAll();
}

std::string BodyOf(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// Echoes the method, params, query and body as JSON.
Response Echo(const Request& r) {
  std::string out;
  json::Writer w(out);
  w.BeginObject().Key("method").String(r.method).Key("path").String(r.path).Key("params");
  w.BeginObject();
  for (const auto& [k, v] : r.params) w.Key(k).String(v);
  w.EndObject().Key("query").BeginObject();
  for (const auto& [k, v] : r.query) w.Key(k).String(v);
  w.EndObject().Key("body").String(r.body).EndObject();
  return Response{200, "application/json", out};
}

// The echoed JSON of a response, parsed.
json::Value EchoOf(const std::string& response) {
  Result<json::Value> v = json::Parse(BodyOf(response));
  EXPECT_THAT(v, IsOk()) << response;
  return v.ok() ? *v : json::Value();
}

std::string Str(const json::Value& v, std::string_view object, std::string_view key) {
  const json::Value* o = v.Find(object);
  const json::Value* x = o == nullptr ? nullptr : o->Find(key);
  return x == nullptr ? "<absent>" : std::string(x->AsString().value_or("<not a string>"));
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Get("/health", [](const Request& r) {
      std::string q = r.query.count("x") ? r.query.at("x") : "";
      return Response{200, "application/json", "{\"status\":\"ok\",\"x\":\"" + q + "\"}"};
    });
    server_.Route("GET", "/api/v1/nodes/{group}/{node}", Echo);
    server_.Route("GET", "/api/v1/nodes/special/{node}", Echo);
    server_.Route("POST", "/api/v1/nodes/{group}/{node}", Echo);
    server_.Route("GET", "/files/{path...}", Echo);
    server_.Route("GET", "/a/{x}/c", Echo);
    server_.Route("GET", "/a/b/{y}", Echo);
    server_.Route("POST", "/echo", Echo);
    server_.Route("PUT", "/echo", Echo);
    server_.Get("/throws", [](const Request&) -> Response { throw std::runtime_error("boom"); });
    server_.Get("/no-content", [](const Request&) { return Response{204, "text/plain", "x"}; });
    server_.Get("/headers", [](const Request&) {
      Response r{200, "text/plain", "h"};
      r.headers = {{"Cache-Control", "no-store"},
                   {"Content-Length", "999"},
                   {"X-Evil", "a\r\nSet-Cookie: x=1"},
                   {"Bad Name", "v"}};
      return r;
    });
    ASSERT_THAT(server_.Start("127.0.0.1:0"), IsOk());
    ASSERT_GT(server_.port(), 0);
  }

  CapturingSink sink_{CapturingSink::Format::kComponent};
  HttpServer server_{ServerOptions{.logger = Logger(sink_, "http")}};
};

TEST_F(HttpServerTest, ServesRegisteredRouteWithDecodedQuery) {
  const std::string r = RoundTrip(server_.port(),
                                  "GET /health?x=a%20b+c&y HTTP/1.1\r\nHost: x\r\n"
                                  "Connection: close\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 27\r\n"));
  EXPECT_THAT(r, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(r, EndsWith("\r\n\r\n{\"status\":\"ok\",\"x\":\"a b c\"}"));
}

TEST_F(HttpServerTest, RoutesParamsPercentDecodedAfterSplitting) {
  HttpClient c(server_.port());
  c.Send("GET /api/v1/nodes/Plant%2F1/press%203?q=a+b%2Bc&flag HTTP/1.1\r\n\r\n");
  const json::Value v = EchoOf(c.ReadResponse());
  EXPECT_EQ(Str(v, "params", "group"), "Plant/1");
  EXPECT_EQ(Str(v, "params", "node"), "press 3");
  EXPECT_EQ(Str(v, "query", "q"), "a b+c");
  EXPECT_EQ(Str(v, "query", "flag"), "");
  EXPECT_EQ(v.Find("path")->AsString(), "/api/v1/nodes/Plant/1/press 3");

  // '+' is a plain character in paths.
  c.Send("GET /api/v1/nodes/a+b/c HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Str(EchoOf(c.ReadResponse()), "params", "group"), "a+b");

  // {name} needs one non-empty segment.
  c.Send("GET /api/v1/nodes//n HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), StartsWith("HTTP/1.1 404 "));
  c.Send("GET /api/v1/nodes/g/n/extra HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), StartsWith("HTTP/1.1 404 "));
  c.Send("GET /api/v1/nodes/g/n/ HTTP/1.1\r\n\r\n");  // A trailing slash is a segment.
  EXPECT_THAT(c.ReadResponse(), StartsWith("HTTP/1.1 404 "));
}

TEST_F(HttpServerTest, CatchAllTakesTheRestOfThePath) {
  HttpClient c(server_.port());
  c.Send("GET /files/css/site%2Fmain.css HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Str(EchoOf(c.ReadResponse()), "params", "path"), "css/site/main.css");
  c.Send("GET /files/ HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Str(EchoOf(c.ReadResponse()), "params", "path"), "");
  c.Send("GET /files HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Str(EchoOf(c.ReadResponse()), "params", "path"), "");
  c.Send("GET /filesx HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), StartsWith("HTTP/1.1 404 "));
}

TEST_F(HttpServerTest, MoreSpecificRouteWins) {
  HttpClient c(server_.port());
  // More literal segments: /api/v1/nodes/special/{node} over /api/v1/nodes/{group}/{node}.
  c.Send("GET /api/v1/nodes/special/n1 HTTP/1.1\r\n\r\n");
  json::Value v = EchoOf(c.ReadResponse());
  EXPECT_EQ(Str(v, "params", "node"), "n1");
  EXPECT_EQ(Str(v, "params", "group"), "<absent>");
  // Same number of literals: the earlier literal wins (/a/b/{y} over /a/{x}/c).
  c.Send("GET /a/b/c HTTP/1.1\r\n\r\n");
  v = EchoOf(c.ReadResponse());
  EXPECT_EQ(Str(v, "params", "y"), "c");
  c.Send("GET /a/z/c HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Str(EchoOf(c.ReadResponse()), "params", "x"), "z");
}

TEST(HttpServerRoutingTest, LiteralsBeatParamsBeatCatchAll) {
  HttpServer server;
  const auto tag = [](std::string name) {
    return [name](const Request&) { return Response{200, "text/plain", name}; };
  };
  server.Get("/{rest...}", tag("catch-all"));
  server.Get("/api/{rest...}", tag("api catch-all"));
  server.Get("/api/{x}", tag("api param"));
  server.Get("/api/status", tag("api status"));
  server.Get("/", tag("root"));
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  const auto body = [&](std::string_view path) {
    return BodyOf(RoundTrip(server.port(),
                            "GET " + std::string(path) + " HTTP/1.1\r\nConnection: close\r\n\r\n"));
  };
  EXPECT_EQ(body("/"), "root");
  EXPECT_EQ(body("/index.html"), "catch-all");
  EXPECT_EQ(body("/api/status"), "api status");
  EXPECT_EQ(body("/api/other"), "api param");
  EXPECT_EQ(body("/api/a/b"), "api catch-all");
  EXPECT_EQ(body("/api"), "api catch-all");
}

TEST_F(HttpServerTest, UnknownPathIs404AndOtherMethods405WithAllow) {
  HttpClient c(server_.port());
  c.Send("GET /nope HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), StartsWith("HTTP/1.1 404 Not Found\r\n"));
  c.Send("POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  std::string r = c.ReadResponse();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nAllow: GET, HEAD\r\n"));
  c.Send("DELETE /echo HTTP/1.1\r\n\r\n");
  r = c.ReadResponse();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(r, HasSubstr("\r\nAllow: POST, PUT\r\n"));
  c.Send("DELETE /api/v1/nodes/g/n HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), HasSubstr("\r\nAllow: GET, HEAD, POST\r\n"));
  // The connection survives these answers.
  c.Send("GET /health HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), StartsWith("HTTP/1.1 200 "));
}

TEST(HttpServerErrorHandlerTest, AnswersServerErrorsWithTheOwnersFormat) {
  HttpServer server;
  server.Route("POST", "/api/v1/things", [](const Request&) { return Response{201, "", ""}; });
  server.SetErrorHandler([](int status, std::string_view message) {
    std::string body;
    json::Writer(body)
        .BeginObject()
        .Key("error")
        .BeginObject()
        .Key("code")
        .Int(status)
        .Key("message")
        .String(message)
        .EndObject()
        .EndObject();
    return Response{0, "application/json", body};
  });
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  HttpClient c(server.port());
  c.Send("GET /api/v1/nope HTTP/1.1\r\n\r\n");
  std::string r = c.ReadResponse();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(r, HasSubstr("Content-Type: application/json\r\n"));
  Result<json::Value> v = json::Parse(BodyOf(r));
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->Find("error")->Find("code")->AsInt64(), 404);
  EXPECT_THAT(std::string(*v->Find("error")->Find("message")->AsString()),
              HasSubstr("/api/v1/nope"));

  c.Send("GET /api/v1/things HTTP/1.1\r\n\r\n");
  r = c.ReadResponse();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(r, HasSubstr("\r\nAllow: POST\r\n"));
  EXPECT_THAT(BodyOf(r), HasSubstr("\"code\":405"));

  c.Send("POST /api/v1/things HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n");
  r = c.ReadResponse();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 413 "));
  EXPECT_THAT(BodyOf(r), HasSubstr("\"code\":413"));
  EXPECT_TRUE(c.Closed());

  EXPECT_THAT(BodyOf(RoundTrip(server.port(), "BAD REQUEST LINE HERE\r\n\r\n")),
              HasSubstr("{\"error\":{\"code\":400,\"message\":\"malformed request line\"}}"));
}

TEST_F(HttpServerTest, HeadHasHeadersButNoBodyAndKeepsTheConnectionUsable) {
  HttpClient c(server_.port());
  c.Send("HEAD /health HTTP/1.1\r\n\r\n");
  const std::string r = c.ReadResponse(/*head_request=*/true);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 22\r\n"));
  EXPECT_THAT(r, EndsWith("\r\n\r\n"));
  c.Send("GET /health HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), EndsWith("\r\n\r\n{\"status\":\"ok\",\"x\":\"\"}"));
  c.Send("HEAD /nope HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(true), StartsWith("HTTP/1.1 404 "));
  c.Send("GET /health HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), StartsWith("HTTP/1.1 200 "));
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  HttpClient c(server_.port());
  for (int i = 0; i < 3; ++i) {
    c.Send("GET /health?x=" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string r = c.ReadResponse();
    EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(r, HasSubstr("Connection: keep-alive\r\n"));
    EXPECT_THAT(r, HasSubstr("Keep-Alive: timeout=30\r\n"));
    EXPECT_THAT(r, EndsWith("\"x\":\"" + std::to_string(i) + "\"}"));
  }
  // Pipelined: two requests in one write, answered in order.
  c.Send(
      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nonePOST /echo HTTP/1.1\r\n"
      "Content-Length: 3\r\n\r\ntwo");
  EXPECT_EQ(EchoOf(c.ReadResponse()).Find("body")->AsString(), "one");
  EXPECT_EQ(EchoOf(c.ReadResponse()).Find("body")->AsString(), "two");
  // Connection: close is honoured.
  c.Send("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(c.Closed());
  EXPECT_EQ(server_.stats().requests, 6u);
}

TEST_F(HttpServerTest, Http10ClosesUnlessKeepAliveIsAsked) {
  const std::string r = RoundTrip(server_.port(), "GET /health HTTP/1.0\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Connection: close\r\n"));

  HttpClient c(server_.port());
  c.Send("GET /health HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), HasSubstr("Connection: keep-alive\r\n"));
  c.Send("GET /health HTTP/1.0\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(c.Closed());
}

TEST_F(HttpServerTest, ReadsPostBodiesByContentLength) {
  HttpClient c(server_.port());
  // Split across writes, with headers in mixed case.
  c.Send("POST /api/v1/nodes/g/n HTTP/1.1\r\nconTent-LENGTH: 11\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello");
  c.Send(" world");
  json::Value v = EchoOf(c.ReadResponse());
  EXPECT_EQ(v.Find("method")->AsString(), "POST");
  EXPECT_EQ(v.Find("body")->AsString(), "hello world");
  c.Send("POST /echo HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(EchoOf(c.ReadResponse()).Find("body")->AsString(), "");
  c.Send("POST /echo HTTP/1.1\r\n\r\n");  // No Content-Length: no body.
  EXPECT_EQ(EchoOf(c.ReadResponse()).Find("body")->AsString(), "");
  // Binary bytes pass through (the echo escapes them as JSON).
  c.Send("PUT /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\n" + std::string("a\0b", 3));
  EXPECT_EQ(*EchoOf(c.ReadResponse()).Find("body")->AsString(), std::string_view("a\0b", 3));
}

TEST_F(HttpServerTest, AnswersExpectContinueBeforeTheBody) {
  HttpClient c(server_.port());
  c.Send("POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(c.ReadUntil("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send("data");
  EXPECT_EQ(EchoOf(c.ReadResponse()).Find("body")->AsString(), "data");
}

TEST(HttpServerLimitsTest, BodyTooLargeIs413AndHeadTooLargeIs431) {
  HttpServer server(ServerOptions{.max_header_bytes = 1024, .max_body_bytes = 10});
  server.Route("POST", "/echo", Echo);
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  const std::string ok =
      RoundTrip(server.port(),
                "POST /echo HTTP/1.1\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789");
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200 "));
  // Rejected on the header alone; the body that follows is drained, not read as a request.
  EXPECT_THAT(RoundTrip(server.port(),
                        "POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\n" + std::string(11, 'x')),
              StartsWith("HTTP/1.1 413 Content Too Large\r\n"));
  EXPECT_THAT(RoundTrip(server.port(),
                        "POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
              StartsWith("HTTP/1.1 413 "));
  EXPECT_THAT(RoundTrip(server.port(),
                        "GET /echo HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"),
              StartsWith("HTTP/1.1 431 "));
  // Never-ending garbage without a line end.
  EXPECT_THAT(RoundTrip(server.port(), std::string(70000, 'a')), StartsWith("HTTP/1.1 431 "));
  EXPECT_THAT(RoundTrip(server.port(), "POST /echo HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi"),
              StartsWith("HTTP/1.1 200 "));
}

TEST_F(HttpServerTest, ChunkedRequestBodiesAreRefusedClearly) {
  std::string r = RoundTrip(server_.port(),
                            "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n0\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 411 Length Required\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length"));
  EXPECT_THAT(RoundTrip(server_.port(), "POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
              StartsWith("HTTP/1.1 501 "));
}

TEST_F(HttpServerTest, MalformedRequestsGet400AndTheServerKeepsServing) {
  for (std::string_view bad : {
           "garbage\r\n\r\n",
           "GET /health\r\n\r\n",
           "GET  /health HTTP/1.1\r\n\r\n",
           "GET /health HTTP/1.1 extra\r\n\r\n",
           "GET health HTTP/1.1\r\n\r\n",
           "GET /health HTTX/1.1\r\n\r\n",
           "G(T /health HTTP/1.1\r\n\r\n",
           "GET /health HTTP/1.1\r\nNo colon here\r\n\r\n",
           "GET /health HTTP/1.1\r\nBad Name: x\r\n\r\n",
           "GET /health HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
           "GET /health HTTP/1.1\r\nX: a\rb\r\n\r\n",
           "GET /health HTTP/1.1\r\nX: a\x01\r\n\r\n",
           "POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
           "POST /echo HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
           "POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
       }) {
    EXPECT_THAT(RoundTrip(server_.port(), bad), StartsWith("HTTP/1.1 400 Bad Request\r\n")) << bad;
  }
  EXPECT_THAT(RoundTrip(server_.port(), "GET /health HTTP/2.0\r\n\r\n"),
              StartsWith("HTTP/1.1 505 "));
  // Lenient where RFC 9112 allows: bare LF line ends and empty lines before a request.
  EXPECT_THAT(RoundTrip(server_.port(), "\r\n\r\nGET /health HTTP/1.0\n\n"),
              StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(RoundTrip(server_.port(), "GET http://example.com/health?x=1 HTTP/1.0\r\n\r\n"),
              HasSubstr("\"x\":\"1\""));
  EXPECT_THAT(RoundTrip(server_.port(), "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"),
              StartsWith("HTTP/1.1 200 "));
}

TEST_F(HttpServerTest, HandlerExceptionIs500AndLogged) {
  HttpClient c(server_.port());
  c.Send("GET /throws HTTP/1.1\r\n\r\n");
  const std::string r = c.ReadResponse();
  EXPECT_THAT(r, StartsWith("HTTP/1.1 500 Internal Server Error\r\n"));
  EXPECT_THAT(r, Not(HasSubstr("boom")));  // Details go to the log, not to the client.
  c.Send("GET /health HTTP/1.1\r\n\r\n");
  EXPECT_THAT(c.ReadResponse(), StartsWith("HTTP/1.1 200 "));
  EXPECT_EQ(server_.stats().handler_exceptions, 1u);
  EXPECT_THAT(sink_.lines(), ElementsAre("http: GET /throws: handler threw: boom"));
}

TEST_F(HttpServerTest, WritesExtraHeadersButNotFramingOrInjectedOnes) {
  const std::string r =
      RoundTrip(server_.port(), "GET /headers HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(r, HasSubstr("\r\nCache-Control: no-store\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nContent-Length: 1\r\n"));
  EXPECT_THAT(r, Not(HasSubstr("999")));
  EXPECT_THAT(r, Not(HasSubstr("Set-Cookie")));
  EXPECT_THAT(r, Not(HasSubstr("Bad Name")));
  const std::string nc =
      RoundTrip(server_.port(), "GET /no-content HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(nc, StartsWith("HTTP/1.1 204 No Content\r\n"));
  EXPECT_THAT(nc, Not(HasSubstr("Content-Length")));
  EXPECT_THAT(nc, EndsWith("\r\n\r\n"));
}

TEST_F(HttpServerTest, CountsRequestsAndResponsesByClass) {
  HttpClient c(server_.port());
  for (std::string_view path : {"/health", "/nope", "/throws", "/health"}) {
    c.Send("GET " + std::string(path) + " HTTP/1.1\r\n\r\n");
    c.ReadResponse();
  }
  const ServerStats s = server_.stats();
  EXPECT_EQ(s.requests, 4u);
  EXPECT_EQ(s.responses_by_class[2], 2u);
  EXPECT_EQ(s.responses_by_class[4], 1u);
  EXPECT_EQ(s.responses_by_class[5], 1u);
  EXPECT_EQ(s.open_connections, 1u);
  EXPECT_EQ(s.connections_accepted, 1u);
}

// A stream that tells the test what happened.
struct StreamProbe {
  std::mutex mu;
  std::condition_variable_any cv;
  bool started = false;
  bool finished = false;
  bool write_failed = false;
  bool stop_requested = false;
  int written = 0;

  void Started() {
    std::lock_guard<std::mutex> lock(mu);
    started = true;
    cv.notify_all();
  }
  void Finished(bool failed, bool stopped) {
    std::lock_guard<std::mutex> lock(mu);
    finished = true;
    write_failed = failed;
    stop_requested = stopped;
    cv.notify_all();
  }
  bool WaitStarted() {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kClientTimeout, [&] { return started; });
  }
  bool WaitFinished() {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kClientTimeout, [&] { return finished; });
  }
};

TEST(HttpServerStreamTest, ClientReadsEventsIncrementallyThenDisconnects) {
  StreamProbe probe;
  HttpServer server;
  server.Get("/events", [&probe](const Request&) {
    Response r;
    r.content_type = "text/event-stream";
    r.headers = {{"Cache-Control", "no-cache"}};
    r.stream = [&probe](StreamWriter& w, std::stop_token stop) {
      // Writes an event every 2 ms until the client has gone (ignores `stop` on purpose, so
      // the test sees Write() fail; Write() may also fail because hang-up requested stop).
      int n = 0;
      bool ok = true;
      while (ok) {
        ok = w.Write("data: " + std::to_string(n++) + "\n\n");
        std::unique_lock<std::mutex> lock(probe.mu);
        probe.written = n;
        probe.cv.wait_for(lock, std::chrono::milliseconds(2), [] { return false; });
      }
      probe.Finished(!ok, stop.stop_requested());
    };
    return r;
  });
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  {
    HttpClient c(server.port());
    c.Send("GET /events HTTP/1.1\r\n\r\n");
    const std::string head = c.ReadUntil("\r\n\r\n");
    EXPECT_THAT(head, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(head, HasSubstr("Content-Type: text/event-stream\r\n"));
    EXPECT_THAT(head, HasSubstr("Cache-Control: no-cache\r\n"));
    EXPECT_THAT(head, HasSubstr("Connection: close\r\n"));
    EXPECT_THAT(head, Not(HasSubstr("Content-Length")));
    EXPECT_EQ(c.ReadUntil("\n\n"), "data: 0\n\n");
    EXPECT_EQ(c.ReadUntil("\n\n"), "data: 1\n\n");
    EXPECT_EQ(c.ReadUntil("\n\n"), "data: 2\n\n");
    EXPECT_EQ(server.stats().streams, 1u);
  }  // Disconnects.
  ASSERT_TRUE(probe.WaitFinished());
  EXPECT_TRUE(probe.write_failed);
  EXPECT_GE(probe.written, 3);
}

TEST(HttpServerStreamTest, ClientHangUpRequestsStopOfAnIdleStream) {
  StreamProbe probe;
  HttpServer server;
  server.Get("/events", [&probe](const Request&) {
    Response r;
    r.content_type = "text/event-stream";
    r.stream = [&probe](StreamWriter& w, std::stop_token stop) {
      const bool ok = w.Write(": hello\n\n");
      probe.Started();
      // Waits for events that never come; only `stop` ends it.
      std::unique_lock<std::mutex> lock(probe.mu);
      probe.cv.wait(lock, stop, [] { return false; });
      lock.unlock();
      probe.Finished(!ok, stop.stop_requested());
    };
    return r;
  });
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  {
    HttpClient c(server.port());
    c.Send("GET /events HTTP/1.1\r\n\r\n");
    EXPECT_THAT(c.ReadUntil(": hello\n\n"), EndsWith("\r\n\r\n: hello\n\n"));
    ASSERT_TRUE(probe.WaitStarted());
  }
  ASSERT_TRUE(probe.WaitFinished());
  EXPECT_TRUE(probe.stop_requested);
  EXPECT_FALSE(probe.write_failed);
}

TEST(HttpServerStreamTest, StreamThatThrowsClosesTheConnection) {
  HttpServer server;
  server.Get("/events", [](const Request&) {
    Response r;
    r.stream = [](StreamWriter& w, std::stop_token) {
      w.Write("partial");
      throw std::runtime_error("stream failed");
    };
    return r;
  });
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  EXPECT_THAT(RoundTrip(server.port(), "GET /events HTTP/1.1\r\n\r\n"),
              EndsWith("\r\n\r\npartial"));
  EXPECT_EQ(server.stats().handler_exceptions, 1u);
  EXPECT_THAT(RoundTrip(server.port(), "HEAD /events HTTP/1.1\r\n\r\n"),
              EndsWith("Connection: close\r\n\r\n"));
}

TEST(HttpServerStopTest, StopReturnsPromptlyWithAnOpenStreamAndAnIdleKeepAlive) {
  StreamProbe probe;
  HttpServer server;
  server.Get("/health", [](const Request&) { return Response{200, "text/plain", "ok"}; });
  server.Get("/events", [&probe](const Request&) {
    Response r;
    r.content_type = "text/event-stream";
    r.stream = [&probe](StreamWriter& w, std::stop_token stop) {
      w.Write("data: first\n\n");
      probe.Started();
      std::unique_lock<std::mutex> lock(probe.mu);
      probe.cv.wait(lock, stop, [] { return false; });
      lock.unlock();
      probe.Finished(false, stop.stop_requested());
    };
    return r;
  });
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  HttpClient idle(server.port());
  idle.Send("GET /health HTTP/1.1\r\n\r\n");
  EXPECT_THAT(idle.ReadResponse(), EndsWith("\r\n\r\nok"));
  HttpClient stream(server.port());
  stream.Send("GET /events HTTP/1.1\r\n\r\n");
  EXPECT_THAT(stream.ReadUntil("data: first\n\n"), EndsWith("data: first\n\n"));
  ASSERT_TRUE(probe.WaitStarted());
  HttpClient silent(server.port());  // Connected, never sends anything.

  const auto start = SteadyClock::now();
  server.Stop();
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(probe.finished);
  EXPECT_TRUE(probe.stop_requested);
  EXPECT_TRUE(idle.Closed());
  EXPECT_TRUE(stream.Closed());
  EXPECT_TRUE(silent.Closed());
  server.Stop();  // Idempotent.
}

TEST(HttpServerLimitsTest, ConnectionsBeyondTheLimitGet503) {
  HttpServer server(ServerOptions{.max_connections = 2});
  server.Get("/health", [](const Request&) { return Response{200, "text/plain", "ok"}; });
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  HttpClient a(server.port());
  HttpClient b(server.port());
  for (HttpClient* c : {&a, &b}) {  // Served, and kept open by keep-alive.
    c->Send("GET /health HTTP/1.1\r\n\r\n");
    EXPECT_THAT(c->ReadResponse(), StartsWith("HTTP/1.1 200 "));
  }
  const std::string r = RoundTrip(server.port(), "GET /health HTTP/1.1\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_THAT(r, HasSubstr("Connection: close\r\n"));
  // The open ones still work.
  a.Send("GET /health HTTP/1.1\r\n\r\n");
  EXPECT_THAT(a.ReadResponse(), StartsWith("HTTP/1.1 200 "));
  const ServerStats s = server.stats();
  EXPECT_EQ(s.connections_rejected, 1u);
  EXPECT_EQ(s.open_connections, 2u);
  EXPECT_EQ(s.responses_by_class[5], 1u);
}

TEST(HttpServerTimeoutTest, SlowRequestGets408AndIdleConnectionIsClosed) {
  HttpServer server(ServerOptions{.idle_timeout = std::chrono::milliseconds(100),
                                  .request_timeout = std::chrono::milliseconds(200)});
  server.Get("/health", [](const Request&) { return Response{200, "text/plain", "ok"}; });
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());

  HttpClient slow(server.port());
  slow.Send("GET /health HTTP/1.1\r\nHost: x\r\n");  // And never the blank line.
  EXPECT_THAT(slow.ReadAll(), StartsWith("HTTP/1.1 408 Request Timeout\r\n"));

  HttpClient idle(server.port());
  idle.Send("GET /health HTTP/1.1\r\n\r\n");
  EXPECT_THAT(idle.ReadResponse(), HasSubstr("Keep-Alive: timeout=1\r\n"));
  EXPECT_TRUE(idle.Closed());  // After the idle timeout, without a response.

  HttpClient silent(server.port());  // Never sends: closed after the request timeout.
  EXPECT_TRUE(silent.Closed());
}

TEST(HttpServerStartTest, RejectsBadAddressesAndBusyPorts) {
  HttpServer a;
  EXPECT_THAT(a.Start("nonsense"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseListenAddress("127.0.0.1:99999"), StatusIs(StatusCode::kInvalidArgument));
  HttpServer b;
  ASSERT_THAT(b.Start("127.0.0.1:0"), IsOk());
  EXPECT_THAT(b.Start("127.0.0.1:0"), StatusIs(StatusCode::kFailedPrecondition));
  HttpServer c;
  EXPECT_THAT(c.Start("127.0.0.1:" + std::to_string(b.port())), StatusIs(StatusCode::kUnavailable));
}

TEST(HttpServerStartTest, CanStartAgainAfterStop) {
  HttpServer server;
  server.Get("/health", [](const Request&) { return Response{200, "text/plain", "ok"}; });
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  server.Stop();
  ASSERT_THAT(server.Start("127.0.0.1:0"), IsOk());
  EXPECT_THAT(RoundTrip(server.port(), "GET /health HTTP/1.0\r\n\r\n"), EndsWith("\r\n\r\nok"));
}

}  // namespace
}  // namespace kiln::http
