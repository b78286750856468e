#include "server/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/mutex.h"
#include "core/testing/capturing_sink.h"
#include "core/testing/temp_dir.h"
#include "http/server.h"
#include "http/testing/http_client.h"
#include "server/commands.h"
#include "server/live.h"
#include "server/registry.h"
#include "server/test/server_test_util.h"
#include "testing/status_matchers.h"

namespace kiln::server {
namespace {

using historian::Point;
using historian::PointWrite;
using historian::SeriesKind;
using historian::TextPoint;
using ::kiln::http::testing::HttpClient;
using ::kiln::testing::CapturingSink;
using ::kiln::testing::IsOk;
using ::kiln::testing::TempDir;
using sparkplug::DataType;
using ::testing::HasSubstr;
using testing::HttpAnswer;
using testing::ParseHttp;
using ::testing::StartsWith;

// Compact JSON of `v`, to compare whole answers exactly.
std::string Canonical(const json::Value& v) { return v.ToJson(); }

// Times of the fixed history, ms since the epoch.
constexpr int64_t kT0 = 1764230400000;  // 2025-11-27T08:00:00Z
constexpr uint32_t kBad = 0x80000000;
constexpr uint32_t kUncertain = 0x40000000;

constexpr const char* kTemp = "Plant1/gw-01/press-3/Temperature";
constexpr const char* kTempQ = "Plant1%2Fgw-01%2Fpress-3%2FTemperature";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    historian_ = testing::OpenTestHistorian(dir_.path(), clock_, sink_);
    ASSERT_NE(historian_, nullptr);
    auto r = Registry::Open(dir_.path() + "/registry.db");
    ASSERT_THAT(r, IsOk());
    registry_ = std::move(*r);
    FillRegistry();
    FillHistorian();
    ExportHistorianMetrics(*historian_, metrics_);
    RegisterApi(http_, ApiContext{*historian_, *registry_, live_, metrics_, clock_, "kiln",
                                  [this] { return connected_.load(); }});
    ASSERT_THAT(http_.Start("127.0.0.1:0"), IsOk());
  }
  void TearDown() override { http_.Stop(); }

  MetricInfo* Declare(const NodeKey& node, std::string device, std::string name, DataType type,
                      std::string unit = "") {
    auto m = std::make_unique<MetricInfo>();
    m->path = MetricPath(node, device, name);
    m->device = std::move(device);
    m->name = std::move(name);
    m->datatype = type;
    m->unit = std::move(unit);
    infos_.push_back(std::move(m));
    return infos_.back().get();
  }

  // Plant1/gw-01 (online, bdSeq 3): bdSeq, Node Control/Rebirth; press-3: Temperature (degC),
  // Mode, Alarm; press-4: Level (m). Plant1/gw-02 (bdSeq 1) was born and died.
  void FillRegistry() {
    const NodeKey gw1{"Plant1", "gw-01"};
    const NodeKey gw2{"Plant1", "gw-02"};
    std::vector<MetricInfo*> node = {Declare(gw1, "", "bdSeq", DataType::kInt64),
                                     Declare(gw1, "", "Node Control/Rebirth", DataType::kBoolean)};
    ASSERT_THAT(registry_->Birth(gw1, "", 3, node, kT0), IsOk());
    std::vector<MetricInfo*> press3 = {
        Declare(gw1, "press-3", "Temperature", DataType::kFloat, "degC"),
        Declare(gw1, "press-3", "Mode", DataType::kString),
        Declare(gw1, "press-3", "Alarm", DataType::kBoolean)};
    ASSERT_THAT(registry_->Birth(gw1, "press-3", 3, press3, kT0), IsOk());
    std::vector<MetricInfo*> press4 = {Declare(gw1, "press-4", "Level", DataType::kDouble, "m")};
    ASSERT_THAT(registry_->Birth(gw1, "press-4", 3, press4, kT0), IsOk());
    std::vector<MetricInfo*> node2 = {Declare(gw2, "", "bdSeq", DataType::kInt64)};
    ASSERT_THAT(registry_->Birth(gw2, "", 1, node2, kT0), IsOk());
    ASSERT_THAT(registry_->Death(gw2, "", kT0 + 1000), IsOk());
  }

  historian::SeriesId NewSeries(std::string_view path, SeriesKind kind) {
    auto id = historian_->Series(path, kind);
    EXPECT_THAT(id, IsOk()) << path;
    return id.ok() ? *id : 0;
  }
  void Write(historian::SeriesId id, std::vector<Point> points) {
    std::vector<PointWrite> w;
    for (const Point& p : points) w.push_back(PointWrite{id, p});
    ASSERT_THAT(historian_->Append(w), IsOk());
  }

  // Temperature: 12 points every 10 s from kT0, v = i, except i = 5 (null, Bad) and i = 7
  // (Uncertain). Mode: "auto" then "manual". Rebirth and bdSeq: one point each. Alarm: one
  // Bad point. Level: a series without points. Half of the history is sealed into chunks.
  void FillHistorian() {
    const auto temp = NewSeries(kTemp, SeriesKind::kNumeric);
    std::vector<Point> points;
    for (int i = 0; i < 12; ++i) {
      Point p{kT0 + i * 10000, static_cast<double>(i), 0, false};
      if (i == 5) p = Point{p.t, 0, kBad, true};
      if (i == 7) p.q = kUncertain;
      points.push_back(p);
    }
    Write(temp, std::vector<Point>(points.begin(), points.begin() + 6));
    ASSERT_THAT(historian_->Flush(), IsOk());
    Write(temp, std::vector<Point>(points.begin() + 6, points.end()));
    const auto mode = NewSeries("Plant1/gw-01/press-3/Mode", SeriesKind::kText);
    ASSERT_THAT(historian_->AppendText(mode, TextPoint{kT0, "auto", 0, false}), IsOk());
    ASSERT_THAT(historian_->AppendText(mode, TextPoint{kT0 + 20000, "manual \"M\"", 0, false}),
                IsOk());
    Write(NewSeries("Plant1/gw-01/Node Control/Rebirth", SeriesKind::kNumeric),
          {Point{kT0, 0, 0, false}});
    Write(NewSeries("Plant1/gw-01/bdSeq", SeriesKind::kNumeric), {Point{kT0, 3, 0, false}});
    Write(NewSeries("Plant1/gw-01/press-3/Alarm", SeriesKind::kNumeric),
          {Point{kT0 + 5000, 1, 0x808C0000, false}});
    NewSeries("Plant1/gw-01/press-4/Level", SeriesKind::kNumeric);
  }

  HttpAnswer Get(std::string_view target, std::string_view method = "GET") {
    return testing::HttpRequest(http_.port(), method, target);
  }
  // GET `target` and its JSON answer in compact form; checks the status.
  std::string GetJson(std::string_view target, int status = 200) {
    HttpAnswer a = Get(target);
    EXPECT_EQ(a.status, status) << target << "\n" << a.body;
    EXPECT_EQ(a.Header("Content-Type"), "application/json") << target;
    return Canonical(a.Json());
  }
  static std::string Error(std::string_view code, int id, std::string_view message) {
    std::string out;
    json::Writer w(out);
    w.BeginObject().Key("error").BeginObject().Key("code").String(code).Key("id").Int(id);
    w.Key("message").String(message).EndObject().EndObject();
    return out;
  }

  TempDir dir_;
  FakeClock clock_;
  CapturingSink sink_{CapturingSink::Format::kComponent};
  std::unique_ptr<historian::Historian> historian_;
  std::unique_ptr<Registry> registry_;
  std::vector<std::unique_ptr<MetricInfo>> infos_;
  LiveHub live_{/*max_queue=*/2};
  MetricsRegistry metrics_;
  std::atomic<bool> connected_{true};
  http::HttpServer http_;
};

// ---------------------------------------------------------------------------------------
// Nodes and metrics

TEST_F(ApiTest, NodesListsEveryNodeSorted) {
  HttpAnswer a = Get("/api/v1/nodes");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("Content-Type"), "application/json");
  EXPECT_EQ(a.Header("Cache-Control"), "no-store");
  EXPECT_EQ(Canonical(a.Json()),
            R"({"nodes":[)"
            R"({"group":"Plant1","node":"gw-01","online":true,"since":1764230400000,"bdseq":3,)"
            R"("devices":2,"devices_online":2,"metrics":6},)"
            R"({"group":"Plant1","node":"gw-02","online":false,"since":1764230401000,"bdseq":1,)"
            R"("devices":0,"devices_online":0,"metrics":1}]})");
}

TEST_F(ApiTest, NodeDetailHasMetricsWithTheirLatestValues) {
  ASSERT_THAT(registry_->Death(NodeKey{"Plant1", "gw-01"}, "press-4", kT0 + 2000), IsOk());
  EXPECT_EQ(GetJson("/api/v1/nodes/Plant1/gw-01"),
            R"({"group":"Plant1","node":"gw-01","online":true,"since":1764230400000,"bdseq":3,)"
            R"("metrics":[)"
            R"({"name":"bdSeq","path":"Plant1/gw-01/bdSeq","datatype":"Int64",)"
            R"("latest":{"t":1764230400000,"v":3,"q":0}},)"
            R"({"name":"Node Control/Rebirth","path":"Plant1/gw-01/Node Control/Rebirth",)"
            R"("datatype":"Boolean","latest":{"t":1764230400000,"v":0,"q":0}}],)"
            R"("devices":[)"
            R"({"device":"press-3","online":true,"since":1764230400000,"metrics":[)"
            R"({"name":"Temperature","path":"Plant1/gw-01/press-3/Temperature","datatype":"Float",)"
            R"("unit":"degC","latest":{"t":1764230510000,"v":11,"q":0}},)"
            R"({"name":"Mode","path":"Plant1/gw-01/press-3/Mode","datatype":"String",)"
            R"("latest":{"t":1764230420000,"v":"manual \"M\"","q":0}},)"
            R"({"name":"Alarm","path":"Plant1/gw-01/press-3/Alarm","datatype":"Boolean",)"
            R"("latest":{"t":1764230405000,"v":1,"q":2156658688}}]},)"
            R"({"device":"press-4","online":false,"since":1764230402000,"metrics":[)"
            R"({"name":"Level","path":"Plant1/gw-01/press-4/Level","datatype":"Double","unit":"m",)"
            R"("latest":null}]}]})");
}

TEST_F(ApiTest, NodeWithoutAnyHistoryHasNullLatestValues) {
  EXPECT_EQ(GetJson("/api/v1/nodes/Plant1/gw-02"),
            R"({"group":"Plant1","node":"gw-02","online":false,"since":1764230401000,"bdseq":1,)"
            R"("metrics":[{"name":"bdSeq","path":"Plant1/gw-02/bdSeq","datatype":"Int64",)"
            R"("latest":null}],"devices":[]})");
}

TEST_F(ApiTest, UnknownNodeIsA404JsonError) {
  EXPECT_EQ(GetJson("/api/v1/nodes/Plant1/gw-09", 404),
            Error("NOT_FOUND", 1002, "no edge node 'Plant1/gw-09'"));
  EXPECT_EQ(GetJson("/api/v1/nodes/Plant2/gw-01", 404),
            Error("NOT_FOUND", 1002, "no edge node 'Plant2/gw-01'"));
}

TEST_F(ApiTest, MetricsAreListedByPrefix) {
  EXPECT_EQ(GetJson("/api/v1/metrics?prefix=Plant1%2Fgw-01%2Fpress-3%2F"),
            R"({"metrics":[{"path":"Plant1/gw-01/press-3/Alarm","datatype":"Boolean"},)"
            R"({"path":"Plant1/gw-01/press-3/Mode","datatype":"String"},)"
            R"({"path":"Plant1/gw-01/press-3/Temperature","datatype":"Float","unit":"degC"}]})");
  EXPECT_EQ(
      GetJson("/api/v1/metrics?prefix=Plant1/gw-01/press-4"),
      R"({"metrics":[{"path":"Plant1/gw-01/press-4/Level","datatype":"Double","unit":"m"}]})");
  EXPECT_EQ(GetJson("/api/v1/metrics?prefix=Plant9"), R"({"metrics":[]})");
}

TEST_F(ApiTest, MetricsWithoutAPrefixListsEverything) {
  const json::Value v = json::Parse(GetJson("/api/v1/metrics")).value();
  const json::Value* metrics = v.Find("metrics");
  ASSERT_NE(metrics, nullptr);
  std::vector<std::string> paths;
  for (const auto& m : metrics->elements()) paths.emplace_back(m.Find("path")->AsString().value());
  EXPECT_THAT(paths,
              ::testing::ElementsAre("Plant1/gw-01/Node Control/Rebirth", "Plant1/gw-01/bdSeq",
                                     "Plant1/gw-01/press-3/Alarm", "Plant1/gw-01/press-3/Mode",
                                     "Plant1/gw-01/press-3/Temperature",
                                     "Plant1/gw-01/press-4/Level", "Plant1/gw-02/bdSeq"));
}

// ---------------------------------------------------------------------------------------
// Raw queries

TEST_F(ApiTest, QueryRawWithEpochMilliseconds) {
  EXPECT_EQ(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                    "&from=1764230430000&to=1764230470000"),
            R"({"metric":"Plant1/gw-01/press-3/Temperature","points":[)"
            R"({"t":1764230430000,"v":3,"q":0},{"t":1764230440000,"v":4,"q":0},)"
            R"({"t":1764230450000,"v":null,"q":2147483648},)"
            R"({"t":1764230460000,"v":6,"q":0}]})")
      << "from <= t < to, across the sealed chunk and the head, nulls as null";
}

TEST_F(ApiTest, QueryRawWithRfc3339Times) {
  const std::string expected =
      R"({"metric":"Plant1/gw-01/press-3/Temperature","points":[)"
      R"({"t":1764230500000,"v":10,"q":0},{"t":1764230510000,"v":11,"q":0}]})";
  EXPECT_EQ(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                    "&from=2025-11-27T08:01:40Z&to=2025-11-27T08:05:00Z"),
            expected);
  // An offset ('+' percent-encoded, since a '+' in a query is a space).
  EXPECT_EQ(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                    "&from=2025-11-27T09:01:40%2B01:00&to=2025-11-27T08:05:00.000Z"),
            expected);
}

TEST_F(ApiTest, QueryRawWithRelativeTimesAndDefaults) {
  // "now" is the API's clock (the fake one): this series is written around it.
  const int64_t now = ToEpochMillis(clock_.Now());
  const auto recent = NewSeries("Plant1/gw-01/press-3/Recent", SeriesKind::kNumeric);
  Write(recent, {Point{now - 90 * 60000, 1, 0, false}, Point{now - 30 * 60000, 2, 0, false},
                 Point{now - 60000, 3, 0, false}, Point{now + 3600000, 4, 0, false}});
  auto values = [&](std::string_view query) {
    HttpAnswer a =
        Get(std::string("/api/v1/query?metric=Plant1/gw-01/press-3/Recent") + std::string(query));
    EXPECT_EQ(a.status, 200) << query << ": " << a.body;
    std::vector<double> out;
    const json::Value v = a.Json();
    if (const json::Value* points = v.Find("points")) {
      for (const auto& p : points->elements()) out.push_back(p.Find("v")->AsDouble().value_or(-1));
    }
    return out;
  };
  using ::testing::ElementsAre;
  EXPECT_THAT(values(""), ElementsAre(2, 3)) << "defaults: from=-1h, to=now";
  EXPECT_THAT(values("&from=-2h"), ElementsAre(1, 2, 3));
  EXPECT_THAT(values("&from=now-7d&to=now"), ElementsAre(1, 2, 3));
  EXPECT_THAT(values("&from=-45m&to=-15m"), ElementsAre(2));
  EXPECT_THAT(values("&from=-1h&to=%2B2h"), ElementsAre(2, 3, 4));
}

TEST_F(ApiTest, QueryRawLimitMarksTruncatedAnswers) {
  EXPECT_EQ(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                    "&from=1764230400000&to=1764230500000&limit=2"),
            R"({"metric":"Plant1/gw-01/press-3/Temperature","points":[)"
            R"({"t":1764230400000,"v":0,"q":0},{"t":1764230410000,"v":1,"q":0}],)"
            R"("truncated":true})");
  // Exactly as many points as the limit: not truncated.
  EXPECT_EQ(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                    "&from=1764230400000&to=1764230420000&limit=2"),
            R"({"metric":"Plant1/gw-01/press-3/Temperature","points":[)"
            R"({"t":1764230400000,"v":0,"q":0},{"t":1764230410000,"v":1,"q":0}]})");
}

TEST_F(ApiTest, QueryGoodOnlySkipsValuesThatAreNotGood) {
  const json::Value v = json::Parse(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                                            "&from=1764230400000&to=1764230520000&good_only=true"))
                            .value();
  std::vector<int64_t> ts;
  for (const auto& p : v.Find("points")->elements()) ts.push_back(*p.Find("t")->AsInt64());
  EXPECT_THAT(ts, ::testing::ElementsAre(kT0, kT0 + 10000, kT0 + 20000, kT0 + 30000, kT0 + 40000,
                                         kT0 + 60000, kT0 + 80000, kT0 + 90000, kT0 + 100000,
                                         kT0 + 110000));
  const json::Value all = json::Parse(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                                              "&from=1764230400000&to=1764230520000&good_only=0"))
                              .value();
  EXPECT_EQ(all.Find("points")->size(), 12u);
}

TEST_F(ApiTest, QueryATextMetric) {
  EXPECT_EQ(
      GetJson("/api/v1/query?metric=Plant1/gw-01/press-3/Mode&from=1764230400000&"
              "to=1764230500000"),
      R"({"metric":"Plant1/gw-01/press-3/Mode","points":[)"
      R"({"t":1764230400000,"v":"auto","q":0},{"t":1764230420000,"v":"manual \"M\"","q":0}]})");
  EXPECT_EQ(GetJson("/api/v1/query?metric=Plant1/gw-01/press-3/Mode&from=1764230400000&"
                    "to=1764230500000&limit=1"),
            R"({"metric":"Plant1/gw-01/press-3/Mode","points":[)"
            R"({"t":1764230400000,"v":"auto","q":0}],"truncated":true})");
}

TEST_F(ApiTest, QueryAMetricWithSlashesInItsName) {
  EXPECT_EQ(GetJson("/api/v1/query?metric=Plant1%2Fgw-01%2FNode%20Control%2FRebirth&"
                    "from=1764230400000&to=1764230500000"),
            R"({"metric":"Plant1/gw-01/Node Control/Rebirth","points":[)"
            R"({"t":1764230400000,"v":0,"q":0}]})");
  EXPECT_EQ(GetJson("/api/v1/latest?metric=Plant1%2Fgw-01%2FNode+Control%2FRebirth"),
            R"({"metric":"Plant1/gw-01/Node Control/Rebirth","t":1764230400000,"v":0,"q":0})");
}

// ---------------------------------------------------------------------------------------
// Aggregates

std::string Buckets(std::string_view agg, std::string_view points) {
  return std::string(R"({"metric":"Plant1/gw-01/press-3/Temperature","step":60000,"agg":")") +
         std::string(agg) + R"(","points":[)" + std::string(points) + "]}";
}

TEST_F(ApiTest, QueryWithStepGivesEveryAggregate) {
  const std::string base = std::string("/api/v1/query?metric=") + kTempQ +
                           "&from=1764230400000&to=1764230520000&step=1m&agg=";
  // Bucket 1: 0..4 (5 is null); bucket 2: 6..11.
  EXPECT_EQ(GetJson(base + "avg"), Buckets("avg", R"({"t":1764230400000,"v":2,"count":5},)"
                                                  R"({"t":1764230460000,"v":8.5,"count":6})"));
  EXPECT_EQ(GetJson(base + "min"), Buckets("min", R"({"t":1764230400000,"v":0,"count":5},)"
                                                  R"({"t":1764230460000,"v":6,"count":6})"));
  EXPECT_EQ(GetJson(base + "max"), Buckets("max", R"({"t":1764230400000,"v":4,"count":5},)"
                                                  R"({"t":1764230460000,"v":11,"count":6})"));
  EXPECT_EQ(GetJson(base + "first"), Buckets("first", R"({"t":1764230400000,"v":0,"count":5},)"
                                                      R"({"t":1764230460000,"v":6,"count":6})"));
  EXPECT_EQ(GetJson(base + "last"), Buckets("last", R"({"t":1764230400000,"v":4,"count":5},)"
                                                    R"({"t":1764230460000,"v":11,"count":6})"));
  EXPECT_EQ(GetJson(base + "count"), Buckets("count", R"({"t":1764230400000,"v":5,"count":5},)"
                                                      R"({"t":1764230460000,"v":6,"count":6})"));
}

TEST_F(ApiTest, QueryWithStepDefaultsToAvgAndTakesMilliseconds) {
  EXPECT_EQ(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                    "&from=1764230400000&to=1764230520000&step=60000"),
            Buckets("avg", R"({"t":1764230400000,"v":2,"count":5},)"
                           R"({"t":1764230460000,"v":8.5,"count":6})"));
}

TEST_F(ApiTest, QueryWithStepAndGoodOnly) {
  EXPECT_EQ(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                    "&from=1764230400000&to=1764230520000&step=1m&agg=avg&good_only=true"),
            Buckets("avg", R"({"t":1764230400000,"v":2,"count":5},)"
                           R"({"t":1764230460000,"v":8.8,"count":5})"));
}

TEST_F(ApiTest, BucketsAreAlignedToTheEpochAndHoldOnlyPointsFromFrom) {
  // from is 08:00:30: the first bucket starts at 08:00:00 but holds 3, 4 only.
  EXPECT_EQ(GetJson(std::string("/api/v1/query?metric=") + kTempQ +
                    "&from=1764230430000&to=1764230480000&step=1m&agg=count"),
            Buckets("count", R"({"t":1764230400000,"v":2,"count":2},)"
                             R"({"t":1764230460000,"v":2,"count":2})"));
}

TEST_F(ApiTest, QueryErrorsAreInvalidArgument) {
  const std::string m = std::string("/api/v1/query?metric=") + kTempQ;
  EXPECT_EQ(GetJson(m + "&from=1764230400000&to=1764230520000&agg=max", 400),
            Error("INVALID_ARGUMENT", 1001, "agg needs a step"));
  EXPECT_EQ(
      GetJson(m + "&from=1764230400000&to=1764230520000&step=1m&agg=median", 400),
      Error("INVALID_ARGUMENT", 1001, "agg=median: expected avg, min, max, first, last or count"));
  EXPECT_EQ(GetJson(m + "&from=0&to=1764230520000&step=1000", 400),
            Error("INVALID_ARGUMENT", 1001,
                  "step=1000 makes more than 100000 buckets; use a larger step"));
  EXPECT_EQ(
      GetJson(m + "&from=1764230520000&to=1764230400000", 400),
      Error("INVALID_ARGUMENT", 1001, "to (1764230400000) must be after from (1764230520000)"));
  EXPECT_EQ(
      GetJson(m + "&from=1764230400000&to=1764230400000", 400),
      Error("INVALID_ARGUMENT", 1001, "to (1764230400000) must be after from (1764230400000)"));
  EXPECT_EQ(GetJson(m + "&from=1764230400000&to=1764230520000&step=0", 400),
            Error("INVALID_ARGUMENT", 1001, "step=0: must be positive"));
  EXPECT_EQ(GetJson(m + "&from=1764230400000&to=1764230520000&step=often", 400),
            Error("INVALID_ARGUMENT", 1001,
                  "step=often: expected milliseconds or a duration such as 1m"));
  EXPECT_EQ(GetJson(m + "&from=1764230400000&to=1764230520000&limit=0", 400),
            Error("INVALID_ARGUMENT", 1001, "limit=0: expected 1..1000000"));
  EXPECT_EQ(GetJson(m + "&from=1764230400000&to=1764230520000&limit=1000001", 400),
            Error("INVALID_ARGUMENT", 1001, "limit=1000001: expected 1..1000000"));
  EXPECT_EQ(GetJson(m + "&good_only=maybe", 400),
            Error("INVALID_ARGUMENT", 1001, "good_only=maybe: expected true or false"));
  EXPECT_EQ(GetJson("/api/v1/query?from=-1h", 400),
            Error("INVALID_ARGUMENT", 1001, "metric is required: metric=group/node/device/metric"));
}

TEST_F(ApiTest, BadTimesNameTheParameter) {
  HttpAnswer a = Get(std::string("/api/v1/query?metric=") + kTempQ + "&from=yesterday");
  EXPECT_EQ(a.status, 400);
  const json::Value v = a.Json();
  const json::Value* error = v.Find("error");
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->Find("code")->AsString(), "INVALID_ARGUMENT");
  EXPECT_EQ(error->Find("id")->AsInt64(), 1001);
  EXPECT_THAT(std::string(error->Find("message")->AsString().value_or("")),
              StartsWith("from: 'yesterday' is not a time"));
  a = Get(std::string("/api/v1/query?metric=") + kTempQ + "&from=-1h&to=-1parsec");
  EXPECT_EQ(a.status, 400);
  EXPECT_THAT(a.body, HasSubstr(R"("message":"to: )"));
}

TEST_F(ApiTest, StepOnATextMetricIsRejected) {
  HttpAnswer a = Get(
      "/api/v1/query?metric=Plant1/gw-01/press-3/Mode&from=1764230400000&to=1764230500000&step=1m");
  EXPECT_EQ(a.status, 400) << a.body;
  EXPECT_THAT(a.body, HasSubstr(R"("code":"INVALID_ARGUMENT")"));
}

TEST_F(ApiTest, UnknownMetricIsA404) {
  EXPECT_EQ(GetJson("/api/v1/query?metric=Plant1/gw-01/press-3/Nope", 404),
            Error("NOT_FOUND", 1002, "no metric 'Plant1/gw-01/press-3/Nope'"));
  EXPECT_EQ(GetJson("/api/v1/latest?metric=Plant1/gw-01/press-3/Nope", 404),
            Error("NOT_FOUND", 1002, "no metric 'Plant1/gw-01/press-3/Nope'"));
}

// ---------------------------------------------------------------------------------------
// Latest

TEST_F(ApiTest, LatestIsThePointWithTheGreatestTimestamp) {
  EXPECT_EQ(GetJson(std::string("/api/v1/latest?metric=") + kTempQ),
            R"({"metric":"Plant1/gw-01/press-3/Temperature","t":1764230510000,"v":11,"q":0})");
  // Late history does not replace it.
  Write(historian_->Find(kTemp)->id, {Point{kT0 - 60000, 99, 0, false}});
  EXPECT_EQ(GetJson(std::string("/api/v1/latest?metric=") + kTempQ),
            R"({"metric":"Plant1/gw-01/press-3/Temperature","t":1764230510000,"v":11,"q":0})");
  EXPECT_EQ(GetJson("/api/v1/latest?metric=Plant1/gw-01/press-3/Mode"),
            R"({"metric":"Plant1/gw-01/press-3/Mode","t":1764230420000,"v":"manual \"M\"","q":0})");
}

TEST_F(ApiTest, LatestGoodOnlySkipsBadValues) {
  Write(historian_->Find(kTemp)->id, {Point{kT0 + 120000, 0, kBad, true}});
  EXPECT_EQ(GetJson(std::string("/api/v1/latest?metric=") + kTempQ),
            R"({"metric":"Plant1/gw-01/press-3/Temperature","t":1764230520000,"v":null,)"
            R"("q":2147483648})");
  EXPECT_EQ(GetJson(std::string("/api/v1/latest?metric=") + kTempQ + "&good_only=true"),
            R"({"metric":"Plant1/gw-01/press-3/Temperature","t":1764230510000,"v":11,"q":0})");
}

TEST_F(ApiTest, LatestWithoutAValueIsA404) {
  EXPECT_EQ(GetJson("/api/v1/latest?metric=Plant1/gw-01/press-4/Level", 404),
            Error("NOT_FOUND", 1002, "'Plant1/gw-01/press-4/Level' has no value yet"));
  EXPECT_EQ(GetJson("/api/v1/latest?metric=Plant1/gw-01/press-3/Alarm", 200),
            R"({"metric":"Plant1/gw-01/press-3/Alarm","t":1764230405000,"v":1,"q":2156658688})");
  EXPECT_EQ(GetJson("/api/v1/latest?metric=Plant1/gw-01/press-3/Alarm&good_only=true", 404),
            Error("NOT_FOUND", 1002, "'Plant1/gw-01/press-3/Alarm' has no Good value yet"));
  EXPECT_EQ(GetJson("/api/v1/latest", 400),
            Error("INVALID_ARGUMENT", 1001, "metric is required: metric=group/node/device/metric"));
}

// ---------------------------------------------------------------------------------------
// Health, metrics, stream, dashboard, errors

TEST_F(ApiTest, HealthIsOkWhileConnected) {
  EXPECT_EQ(GetJson("/health"),
            R"({"status":"ok","host_id":"kiln","mqtt":"connected","nodes":2,"nodes_online":1,)"
            R"("series":6})");
}

TEST_F(ApiTest, HealthIsDegradedWithoutTheBroker) {
  connected_ = false;
  EXPECT_EQ(GetJson("/health", 503),
            R"({"status":"degraded","host_id":"kiln","mqtt":"disconnected","nodes":2,)"
            R"("nodes_online":1,"series":6})");
}

TEST_F(ApiTest, MetricsArePrometheusTextWithTheHistorianGauges) {
  HttpAnswer a = Get("/metrics");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(a.body, HasSubstr("# HELP kiln_historian_series series stored\n"
                                "# TYPE kiln_historian_series gauge\n"
                                "kiln_historian_series 6\n"));
  // 12 Temperature + 2 Mode + Rebirth + bdSeq + Alarm.
  EXPECT_THAT(a.body, HasSubstr("\nkiln_historian_points_written_total 17\n"));
  EXPECT_THAT(a.body, HasSubstr("\nkiln_historian_chunks 1\n"));
  EXPECT_THAT(a.body, HasSubstr("\nkiln_historian_chunk_points 6\n"));
  EXPECT_THAT(a.body, HasSubstr("\nkiln_historian_head_points 11\n"));
  EXPECT_THAT(a.body, HasSubstr("\nkiln_historian_write_errors_total 0\n"));
  EXPECT_THAT(a.body, HasSubstr("\nkiln_historian_disk_bytes "));
  EXPECT_THAT(a.body, HasSubstr("\nkiln_historian_wal_bytes "));
}

TEST_F(ApiTest, StreamSendsRetryThenPublishedEvents) {
  HttpClient c(http_.port());
  c.Send("GET /api/v1/stream HTTP/1.1\r\nHost: kiln\r\n\r\n");
  const HttpAnswer head = ParseHttp(c.ReadUntil("\r\n\r\n"));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("Content-Type"), "text/event-stream");
  EXPECT_EQ(head.Header("Cache-Control"), "no-store");
  EXPECT_EQ(c.ReadUntil("\n\n"), "retry: 2000\n: connected\n\n");
  // The subscription exists once the stream has begun.
  ASSERT_TRUE(live_.HasSubscribers());
  live_.Publish(std::vector<LiveEvent>{LiveEvent{
      "value", kTemp, R"({"metric":"Plant1/gw-01/press-3/Temperature","t":1,"v":2,"q":0})"}});
  EXPECT_EQ(c.ReadUntil("\n\n"),
            "event: value\n"
            "data: {\"metric\":\"Plant1/gw-01/press-3/Temperature\",\"t\":1,\"v\":2,\"q\":0}\n\n");
  live_.Publish(std::vector<LiveEvent>{LiveEvent{
      "status", "Plant1/gw-02", R"({"group":"Plant1","node":"gw-02","online":true,"t":3})"}});
  EXPECT_EQ(c.ReadUntil("\n\n"),
            "event: status\ndata: {\"group\":\"Plant1\",\"node\":\"gw-02\",\"online\":true,\"t\":3}"
            "\n\n");
}

TEST_F(ApiTest, StreamFiltersByPrefixAndReportsDroppedEvents) {
  HttpClient c(http_.port());
  c.Send("GET /api/v1/stream?prefix=Plant1%2Fgw-02 HTTP/1.1\r\nHost: kiln\r\n\r\n");
  EXPECT_EQ(ParseHttp(c.ReadUntil("\r\n\r\n")).status, 200);
  EXPECT_EQ(c.ReadUntil("\n\n"), "retry: 2000\n: connected\n\n");
  ASSERT_TRUE(live_.HasSubscribers());
  // One Publish fills the queue (max 2) before the stream can take anything: 3 are lost.
  std::vector<LiveEvent> events;
  events.push_back(LiveEvent{"value", kTemp, "{\"n\":0}"});  // another prefix
  for (int i = 1; i <= 5; ++i) {
    events.push_back(LiveEvent{"value", "Plant1/gw-02/bdSeq", "{\"n\":" + std::to_string(i) + "}"});
  }
  live_.Publish(events);
  EXPECT_EQ(c.ReadUntil("\n\n"), "event: dropped\ndata: {\"count\":3}\n\n");
  EXPECT_EQ(c.ReadUntil("\n\n"), "event: value\ndata: {\"n\":4}\n\n");
  EXPECT_EQ(c.ReadUntil("\n\n"), "event: value\ndata: {\"n\":5}\n\n");
}

TEST_F(ApiTest, ClosingTheStreamReleasesTheSubscription) {
  {
    HttpClient c(http_.port());
    c.Send("GET /api/v1/stream HTTP/1.1\r\nHost: kiln\r\n\r\n");
    EXPECT_EQ(ParseHttp(c.ReadUntil("\r\n\r\n")).status, 200);
    EXPECT_EQ(c.ReadUntil("\n\n"), "retry: 2000\n: connected\n\n");
    EXPECT_TRUE(live_.HasSubscribers());
  }
  // The server notices the hang-up on its own thread: wait for it, bounded.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (live_.HasSubscribers() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_FALSE(live_.HasSubscribers());
}

TEST_F(ApiTest, RootServesTheDashboard) {
  HttpAnswer a = Get("/");
  EXPECT_EQ(a.status, 200);
  EXPECT_THAT(a.Header("Content-Type"), StartsWith("text/html"));
  EXPECT_EQ(a.Header("Cache-Control"), "no-cache");
  EXPECT_THAT(a.body, StartsWith("<!doctype html>"));
  HttpAnswer index = Get("/index.html");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, a.body);
  HttpAnswer js = Get("/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_THAT(js.Header("Content-Type"), HasSubstr("javascript"));
}

TEST_F(ApiTest, UnknownPathIsA404JsonError) {
  EXPECT_EQ(GetJson("/api/v2/nodes", 404), Error("NOT_FOUND", 1002, "no page '/api/v2/nodes'"));
  EXPECT_EQ(GetJson("/api/v1/nodes/Plant1", 404),
            Error("NOT_FOUND", 1002, "no page '/api/v1/nodes/Plant1'"));
  EXPECT_EQ(GetJson("/nope.html", 404), Error("NOT_FOUND", 1002, "no page '/nope.html'"));
}

TEST_F(ApiTest, WrongMethodIsA405JsonError) {
  HttpAnswer a = Get("/api/v1/nodes", "POST");
  EXPECT_EQ(a.status, 405);
  EXPECT_EQ(a.Header("Allow"), "GET, HEAD");
  EXPECT_EQ(a.Header("Content-Type"), "application/json");
  const json::Value v = a.Json();
  ASSERT_NE(v.Find("error"), nullptr);
  EXPECT_EQ(v.Find("error")->Find("code")->AsString(), "FAILED_PRECONDITION");
  EXPECT_EQ(v.Find("error")->Find("id")->AsInt64(), 1003);
}

TEST(ErrorResponseTest, MapsCodesToStatusAndStableIds) {
  struct Case {
    Status status;
    int http;
    std::string json;
  };
  const Case cases[] = {
      {InvalidArgumentError("x"), 400,
       R"({"error":{"code":"INVALID_ARGUMENT","id":1001,"message":"x"}})"},
      {NotFoundError("y"), 404, R"({"error":{"code":"NOT_FOUND","id":1002,"message":"y"}})"},
      {UnavailableError("z"), 503, R"({"error":{"code":"UNAVAILABLE","id":3001,"message":"z"}})"},
      {DataLossError("d"), 500, R"({"error":{"code":"DATA_LOSS","id":3002,"message":"d"}})"},
  };
  for (const Case& c : cases) {
    http::Response r = ErrorResponse(c.status);
    EXPECT_EQ(r.status, c.http) << c.json;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.body, c.json);
  }
}

// ---------------------------------------------------------------------------------------
// Commands

TEST_F(ApiTest, CommandRoutesAnswer501WithoutACommandService) {
  const std::string body =
      R"({"target":"Plant1/gw-01/press-3","metric":"Temperature","value":1,"ttl_s":30})";
  HttpClient c(http_.port());
  c.Send(
      "POST /api/v1/commands HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  HttpAnswer a = ParseHttp(c.ReadAll());
  EXPECT_EQ(a.status, 501);
  EXPECT_EQ(a.Header("Content-Type"), "application/json");
  EXPECT_EQ(Canonical(a.Json()), Error("UNIMPLEMENTED", 1004, "commands are not enabled"));
  EXPECT_EQ(GetJson("/api/v1/commands", 501),
            Error("UNIMPLEMENTED", 1004, "commands are not enabled"));
  EXPECT_EQ(GetJson("/api/v1/commands/c1-1", 501),
            Error("UNIMPLEMENTED", 1004, "commands are not enabled"));
}

// The API with a CommandService over the registry of ApiTest, publishing into a recorder.
class CommandApiTest : public ApiTest {
 protected:
  void SetUp() override {
    historian_ = testing::OpenTestHistorian(dir_.path(), clock_, sink_);
    ASSERT_NE(historian_, nullptr);
    auto r = Registry::Open(dir_.path() + "/registry.db");
    ASSERT_THAT(r, IsOk());
    registry_ = std::move(*r);
    FillRegistry();
    auto s = CommandService::Open(dir_.path() + "/commands.db", *registry_, clock_,
                                  Logger(sink_, "commands"),
                                  [this](const std::string& topic, const std::string& payload) {
                                    MutexLock lock(sent_mu_);
                                    sent_.emplace_back(topic, payload);
                                    return OkStatus();
                                  });
    ASSERT_THAT(s, IsOk());
    commands_ = std::move(*s);
    ApiContext context{*historian_,
                       *registry_,
                       live_,
                       metrics_,
                       clock_,
                       "kiln",
                       [this] { return connected_.load(); }};
    context.commands = commands_.get();
    RegisterApi(http_, context);
    ASSERT_THAT(http_.Start("127.0.0.1:0"), IsOk());
  }

  // POST /api/v1/commands with `body` and extra header lines ("Name: value\r\n").
  HttpAnswer Post(std::string_view body, std::string_view headers = "") {
    HttpClient c(http_.port());
    c.Send(
        "POST /api/v1/commands HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n" + std::string(headers) + "\r\n" + std::string(body));
    return ParseHttp(c.ReadAll());
  }
  std::vector<std::string> SentTopics() {
    MutexLock lock(sent_mu_);
    std::vector<std::string> out;
    for (const auto& [topic, payload] : sent_) out.push_back(topic);
    return out;
  }
  sparkplug::Payload SentPayload(size_t i) {
    std::string bytes;
    {
      MutexLock lock(sent_mu_);
      if (i >= sent_.size()) {
        ADD_FAILURE() << "no message " << i;
        return {};
      }
      bytes = sent_[i].second;
    }
    sparkplug::Decoder decoder;
    auto p = decoder.Decode(bytes);
    EXPECT_THAT(p, IsOk());
    return p.ok() ? *p : sparkplug::Payload{};
  }
  // The "id" of a command answer.
  static std::string IdOf(const HttpAnswer& a) {
    const json::Value v = a.Json();
    const json::Value* id = v.Find("id");
    return id != nullptr && id->AsString() ? std::string(*id->AsString()) : "<none>";
  }
  // Checks a 400 INVALID_ARGUMENT answer whose message contains `part`.
  static void ExpectInvalid(const HttpAnswer& a, std::string_view part, std::string_view what) {
    EXPECT_EQ(a.status, 400) << what << "\n" << a.body;
    EXPECT_EQ(a.Header("Content-Type"), "application/json") << what;
    const json::Value v = a.Json();
    const json::Value* error = v.Find("error");
    ASSERT_NE(error, nullptr) << what << "\n" << a.body;
    EXPECT_EQ(error->Find("code")->AsString(), "INVALID_ARGUMENT") << what;
    EXPECT_EQ(error->Find("id")->AsInt64(), 1001) << what;
    EXPECT_THAT(std::string(error->Find("message")->AsString().value_or("")),
                HasSubstr(std::string(part)))
        << what;
  }

  static constexpr const char* kPress3 = R"("target":"Plant1/gw-01/press-3")";
  std::unique_ptr<CommandService> commands_;
  Mutex sent_mu_;
  std::vector<std::pair<std::string, std::string>> sent_ KILN_GUARDED_BY(sent_mu_);
};

TEST_F(CommandApiTest, PostAnswers202WithLocationAndTheCommand) {
  const int64_t now = ToEpochMillis(clock_.Now());
  HttpAnswer a = Post(R"({"target":"Plant1/gw-01/press-3","metric":"Temperature","value":72.5,)"
                      R"("ttl_s":30,"idempotency_key":"k-1"})",
                      "X-Kiln-User: alice\r\n");
  ASSERT_EQ(a.status, 202) << a.body;
  EXPECT_EQ(a.Header("Content-Type"), "application/json");
  const std::string id = IdOf(a);
  EXPECT_EQ(a.Header("Location"), "/api/v1/commands/" + id);
  const std::string t = std::to_string(now);
  EXPECT_EQ(Canonical(a.Json()),
            R"({"id":")" + id +
                R"(","state":"delivered","reason":"","target":"Plant1/gw-01/press-3",)"
                R"("metric":"Temperature","value":72.5,"read_back":null,"ttl_s":30,)"
                R"("idempotency_key":"k-1","who":"alice","created":)" +
                t + R"(,"expires":)" + std::to_string(now + 30000) + R"(,"delivered":)" + t +
                R"(,"finished":null})");
  // One DCMD to the device, in the metric's type (Float).
  ASSERT_THAT(SentTopics(), ::testing::ElementsAre("spBv1.0/Plant1/DCMD/gw-01/press-3"));
  const sparkplug::Payload p = SentPayload(0);
  ASSERT_EQ(p.metrics.size(), 1u);
  EXPECT_EQ(p.metrics[0].name, "Temperature");
  EXPECT_TRUE(p.metrics[0].value == contract::Value(72.5f));
  ASSERT_EQ(p.metrics[0].properties.size(), 2u);
  EXPECT_TRUE(p.metrics[0].properties[0].value == contract::Value(id));
  // The service knows it by the same id.
  auto c = commands_->Get(id);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->who, "alice");
  EXPECT_EQ(c->state, CommandState::kDelivered);
}

TEST_F(CommandApiTest, PostWithoutAUserHeaderRecordsTheRemoteAddress) {
  HttpAnswer a = Post(R"({"target":"Plant1/gw-01/press-3","metric":"Alarm","value":false,)"
                      R"("ttl_s":1.5})");
  ASSERT_EQ(a.status, 202) << a.body;
  const json::Value v = a.Json();
  EXPECT_EQ(v.Find("who")->AsString(), "api@127.0.0.1");
  EXPECT_EQ(v.Find("value")->AsBool(), false);
  EXPECT_EQ(v.Find("ttl_s")->AsDouble(), 1.5);
  EXPECT_EQ(v.Find("idempotency_key"), nullptr) << "absent when none was given";
  EXPECT_EQ(*v.Find("expires")->AsInt64() - *v.Find("created")->AsInt64(), 1500);
  // An empty header counts as none.
  a = Post(R"({"target":"Plant1/gw-01/press-3","metric":"Alarm","value":true,"ttl_s":1})",
           "X-Kiln-User: \r\n");
  ASSERT_EQ(a.status, 202) << a.body;
  EXPECT_EQ(a.Json().Find("who")->AsString(), "api@127.0.0.1");
}

TEST_F(CommandApiTest, PostToANodeMetricIs400) {
  HttpAnswer a = Post(R"({"target":"Plant1/gw-02","metric":"bdSeq","value":4,"ttl_s":10})");
  ASSERT_EQ(a.status, 400) << a.body;
  EXPECT_THAT(SentTopics(), ::testing::IsEmpty());
}

TEST_F(CommandApiTest, PostToAnOfflineDeviceIsPending) {
  ASSERT_THAT(registry_->Death({"Plant1", "gw-01"}, "press-4", kT0 + 1), IsOk());
  HttpAnswer a = Post(R"({"target":"Plant1/gw-01/press-4","metric":"Level","value":4,"ttl_s":10})");
  ASSERT_EQ(a.status, 202) << a.body;
  const json::Value v = a.Json();
  EXPECT_EQ(v.Find("state")->AsString(), "pending");
  EXPECT_TRUE(v.Find("delivered")->is_null());
  EXPECT_THAT(SentTopics(), ::testing::IsEmpty());
}

TEST_F(CommandApiTest, MalformedPostsAre400JsonErrors) {
  struct Case {
    std::string body;
    std::string message;
  };
  const std::string m = R"("metric":"Temperature")";
  const std::string press3 = kPress3;
  const Case cases[] = {
      {R"({"target":)", "request body"},
      {"", "request body"},
      {"[1]", "the body must be an object"},
      {R"("text")", "the body must be an object"},
      {"{" + press3 + "," + m + R"(,"value":1,"ttl_s":30,"colour":"red"})",
       "'colour': unknown key or wrong type"},
      {"{" + m + R"(,"value":1,"ttl_s":30})", "target is required"},
      {"{" + press3 + "," + m + R"(,"value":1})", "ttl_s is required"},
      {"{" + press3 + "," + m + R"(,"value":"72.5","ttl_s":30})",
       "'value': unknown key or wrong type"},
      {"{" + press3 + "," + m + R"(,"value":null,"ttl_s":30})",
       "'value': unknown key or wrong type"},
      {"{" + press3 + "," + m + R"(,"value":[1],"ttl_s":30})",
       "'value': unknown key or wrong type"},
      {R"({"target":5,)" + m + R"(,"value":1,"ttl_s":30})", "'target': unknown key or wrong type"},
      {"{" + press3 + R"(,"metric":true,"value":1,"ttl_s":30})",
       "'metric': unknown key or wrong type"},
      {"{" + press3 + "," + m + R"(,"value":1,"ttl_s":"30"})",
       "'ttl_s': unknown key or wrong type"},
      {"{" + press3 + "," + m + R"(,"value":1,"ttl_s":30,"idempotency_key":7})",
       "'idempotency_key': unknown key or wrong type"},
      {"{" + press3 + R"(,"value":1,"ttl_s":30})", "metric is required"},
      {"{" + press3 + "," + m + R"(,"ttl_s":30})", "value is required"},
      {"{" + press3 + "," + m + R"(,"value":1,"ttl_s":0})", "ttl"},
      {"{" + press3 + "," + m + R"(,"value":1,"ttl_s":-5})", "ttl"},
      {"{" + press3 + "," + m + R"(,"value":1,"ttl_s":86401})", "ttl"},
      {"{" + press3 + "," + m + R"(,"value":1,"ttl_s":1e300})", "ttl"},
      {R"({"target":"Plant1",)" + m + R"(,"value":1,"ttl_s":30})", "target"},
      {R"({"target":"Plant1/gw-01/press-3/x",)" + m + R"(,"value":1,"ttl_s":30})", "target"},
      {"{" + press3 + R"(,"metric":"Mode","value":1,"ttl_s":30})", "String"},
      {"{" + press3 + R"(,"metric":"Alarm","value":1,"ttl_s":30})", "Boolean"},
  };
  for (const Case& c : cases) ExpectInvalid(Post(c.body), c.message, c.body);
  EXPECT_THAT(SentTopics(), ::testing::IsEmpty());
  EXPECT_EQ(GetJson("/api/v1/commands"), R"({"commands":[]})");
}

TEST_F(CommandApiTest, BoolValueForAFloatMetricIs400) {
  // A bool for a numeric tag is refused (not written as 1.0).
  ExpectInvalid(Post(R"({"target":"Plant1/gw-01/press-3","metric":"Temperature","value":true,)"
                     R"("ttl_s":30})"),
                "Float", "bool for Float");
  EXPECT_THAT(SentTopics(), ::testing::IsEmpty());
}

TEST_F(CommandApiTest, UnknownTargetOrMetricIs404) {
  HttpAnswer a = Post(R"({"target":"Plant1/gw-01/press-3","metric":"Nope","value":1,"ttl_s":30})");
  EXPECT_EQ(a.status, 404) << a.body;
  EXPECT_EQ(Canonical(a.Json()),
            Error("NOT_FOUND", 1002, "'Plant1/gw-01/press-3' has no metric 'Nope'"));
  a = Post(R"({"target":"Plant1/gw-01/press-9","metric":"Temperature","value":1,"ttl_s":30})");
  EXPECT_EQ(a.status, 404) << a.body;
  EXPECT_EQ(Canonical(a.Json()), Error("NOT_FOUND", 1002, "no device 'Plant1/gw-01/press-9'"));
  a = Post(R"({"target":"Plant1/gw-09/press-3","metric":"Temperature","value":1,"ttl_s":30})");
  EXPECT_EQ(a.status, 404) << a.body;
  EXPECT_EQ(Canonical(a.Json()), Error("NOT_FOUND", 1002, "no edge node 'Plant1/gw-09'"));
  EXPECT_THAT(SentTopics(), ::testing::IsEmpty());
}

TEST_F(CommandApiTest, RepeatedIdempotencyKeyWritesOnceAndMisuseIs409) {
  const std::string body =
      R"({"target":"Plant1/gw-01/press-3","metric":"Temperature","value":72.5,"ttl_s":30,)"
      R"("idempotency_key":"op-42"})";
  HttpAnswer first = Post(body);
  ASSERT_EQ(first.status, 202) << first.body;
  clock_.Advance(std::chrono::seconds(1));
  HttpAnswer again = Post(body);
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(IdOf(again), IdOf(first));
  EXPECT_EQ(again.Header("Location"), first.Header("Location"));
  EXPECT_EQ(Canonical(again.Json()), Canonical(first.Json()));
  EXPECT_EQ(SentTopics().size(), 1u) << "one write";

  HttpAnswer misuse =
      Post(R"({"target":"Plant1/gw-01/press-3","metric":"Temperature","value":80,"ttl_s":30,)"
           R"("idempotency_key":"op-42"})");
  EXPECT_EQ(misuse.status, 409) << misuse.body;
  EXPECT_EQ(Canonical(misuse.Json()),
            Error("FAILED_PRECONDITION", 1003,
                  "idempotency_key 'op-42' was used for another command (" + IdOf(first) + ")"));
  EXPECT_EQ(SentTopics().size(), 1u);
}

TEST_F(CommandApiTest, GetByIdFollowsTheCommand) {
  HttpAnswer posted =
      Post(R"({"target":"Plant1/gw-01/press-4","metric":"Level","value":2.25,"ttl_s":30})",
           "X-Kiln-User: bob\r\n");
  ASSERT_EQ(posted.status, 202) << posted.body;
  const std::string id = IdOf(posted);
  EXPECT_EQ(GetJson(posted.Header("Location")), Canonical(posted.Json()));

  clock_.Advance(std::chrono::milliseconds(40));
  commands_->OnResult("Plant1", "gw-01",
                      R"({"id":")" + id +
                          R"(","device":"press-4","metric":"Level","state":"succeeded",)"
                          R"("reason":"","read_back":2.25,"t":1})");
  const json::Value v = json::Parse(GetJson("/api/v1/commands/" + id)).value();
  EXPECT_EQ(v.Find("state")->AsString(), "succeeded");
  EXPECT_EQ(v.Find("read_back")->AsDouble(), 2.25);
  EXPECT_EQ(v.Find("who")->AsString(), "bob");
  EXPECT_EQ(v.Find("finished")->AsInt64(), ToEpochMillis(clock_.Now()));

  EXPECT_EQ(GetJson("/api/v1/commands/nope", 404), Error("NOT_FOUND", 1002, "no command 'nope'"));
}

TEST_F(CommandApiTest, ListIsNewestFirstAndFiltersByTarget) {
  HttpAnswer a =
      Post(R"({"target":"Plant1/gw-01/press-3","metric":"Temperature","value":1,"ttl_s":30})");
  ASSERT_EQ(a.status, 202) << a.body;
  clock_.Advance(std::chrono::milliseconds(5));
  HttpAnswer b = Post(R"({"target":"Plant1/gw-01/press-4","metric":"Level","value":2,"ttl_s":30})");
  ASSERT_EQ(b.status, 202) << b.body;
  auto ids = [&](std::string_view query, int status = 200) {
    std::vector<std::string> out;
    const json::Value v =
        json::Parse(GetJson(std::string("/api/v1/commands") + std::string(query), status)).value();
    if (const json::Value* list = v.Find("commands")) {
      for (const auto& c : list->elements()) out.emplace_back(c.Find("id")->AsString().value());
    }
    return out;
  };
  using ::testing::ElementsAre;
  EXPECT_THAT(ids(""), ElementsAre(IdOf(b), IdOf(a)));
  EXPECT_THAT(ids("?target=Plant1/gw-01"), ElementsAre(IdOf(b), IdOf(a)));
  EXPECT_THAT(ids("?target=Plant1/gw-01/press-4"), ElementsAre(IdOf(b)));
  EXPECT_THAT(ids("?target=Plant1%2Fgw-01%2Fpress-3"), ElementsAre(IdOf(a)));
  EXPECT_THAT(ids("?target=Plant9"), ::testing::IsEmpty());
  EXPECT_THAT(ids("?limit=1"), ElementsAre(IdOf(b)));
  // Whole objects, as GET by id answers them.
  const json::Value v =
      json::Parse(GetJson("/api/v1/commands?target=Plant1/gw-01/press-4")).value();
  EXPECT_EQ(Canonical(v), R"({"commands":[)" + Canonical(b.Json()) + "]}");
  EXPECT_EQ(GetJson("/api/v1/commands?limit=0", 400),
            Error("INVALID_ARGUMENT", 1001, "limit=0: expected 1..10000"));
  EXPECT_EQ(GetJson("/api/v1/commands?limit=lots", 400),
            Error("INVALID_ARGUMENT", 1001, "limit=lots: expected 1..10000"));
}

}  // namespace
}  // namespace kiln::server
