#include "server/ingest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "contract/quality.h"
#include "contract/sparkplug/payload.h"
#include "contract/value.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/testing/capturing_sink.h"
#include "core/testing/temp_dir.h"
#include "server/test/server_test_util.h"
#include "testing/status_matchers.h"

namespace kiln::historian {
inline void PrintTo(const Point& p, std::ostream* os) {
  *os << "{t " << p.t << ", v " << p.v << ", q 0x" << std::hex << p.q << std::dec
      << (p.is_null ? ", null}" : "}");
}
inline void PrintTo(const TextPoint& p, std::ostream* os) {
  *os << "{t " << p.t << ", \"" << p.v << "\", q 0x" << std::hex << p.q << std::dec
      << (p.is_null ? ", null}" : "}");
}
}  // namespace kiln::historian

namespace kiln::server {
namespace {

using contract::Value;
using historian::Point;
using historian::SeriesKind;
using historian::TextPoint;
using ::kiln::testing::CapturingSink;
using ::kiln::testing::IsOk;
using ::kiln::testing::TempDir;
using sparkplug::DataType;
using sparkplug::Metric;
using sparkplug::Payload;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace std::chrono_literals;

constexpr int64_t kNowMs = 1700000000000;    // FakeClock's default start: host time
constexpr int64_t kBirthTs = 1699999990000;  // payload timestamp of the births
constexpr int64_t kDataTs = 1699999995000;   // payload timestamp of data messages
constexpr uint32_t kStale = 0x408F0000;      // UncertainNoCommunicationLastUsableValue
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

Point P(int64_t t, double v, uint32_t q = 0) { return Point{t, v, q, false}; }
Point NullP(int64_t t, uint32_t q) { return Point{t, 0, q, true}; }
TextPoint T(int64_t t, std::string v, uint32_t q = 0) {
  return TextPoint{t, std::move(v), q, false};
}

Metric Declare(std::string name, std::optional<uint64_t> alias, DataType type, Value value,
               std::optional<std::string> unit = std::nullopt) {
  Metric m;
  m.name = std::move(name);
  m.alias = alias;
  m.datatype = type;
  m.value = std::move(value);
  m.unit = std::move(unit);
  return m;
}

Metric ByAlias(uint64_t alias, DataType type, Value value) {
  Metric m;
  m.alias = alias;
  m.datatype = type;
  m.value = std::move(value);
  return m;
}

Metric NullMetric(uint64_t alias, DataType type) {
  Metric m;
  m.alias = alias;
  m.datatype = type;
  m.is_null = true;
  return m;
}

Metric BdSeq(uint64_t bdseq) {
  return Declare("bdSeq", std::nullopt, DataType::kUInt64, Value(bdseq));
}

// Records what Ingest publishes back to the broker (called on the ingest thread).
class CommandLog {
 public:
  void Add(const std::string& topic, const std::string& payload) {
    std::lock_guard lock(mu_);
    commands_.emplace_back(topic, payload);
  }
  std::vector<std::pair<std::string, std::string>> commands() const {
    std::lock_guard lock(mu_);
    return commands_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> commands_;
};

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    historian_ = testing::OpenTestHistorian(dir_.path(), clock_, sink_);
    ASSERT_NE(historian_, nullptr);
    auto r = Registry::Open(dir_.path() + "/registry.db");
    ASSERT_THAT(r, IsOk());
    registry_ = std::move(*r);
    HostOptions options;
    options.reorder_timeout = 0ms;  // a gap requests a rebirth at once (no timer thread)
    ingest_ = std::make_unique<Ingest>(
        *historian_, *registry_, live_, clock_, Logger(sink_, "ingest", LogLevel::kDebug), options,
        [this](const std::string& t, const std::string& p) { commands_.Add(t, p); });
    ingest_->Start();
  }
  void TearDown() override { ingest_.reset(); }

  static std::string Topic(std::string_view type, std::string_view device = {}) {
    std::string t = "spBv1.0/G/" + std::string(type) + "/N";
    if (!device.empty()) t += "/" + std::string(device);
    return t;
  }

  // Encodes and enqueues without waiting.
  void Enqueue(const std::string& topic, const Payload& p) {
    std::string bytes;
    ASSERT_THAT(encoder_.Encode(p, bytes), IsOk()) << topic;
    ingest_->Enqueue(topic, std::move(bytes));
  }
  // Encodes, enqueues and waits until it is stored.
  void Send(const std::string& topic, const Payload& p) {
    Enqueue(topic, p);
    ingest_->Sync();
  }
  // A payload with the next seq of the session.
  Payload Next(std::vector<Metric> metrics, std::optional<uint64_t> timestamp = kDataTs) {
    Payload p;
    p.timestamp = timestamp;
    p.seq = seq_++ % 256;
    p.metrics = std::move(metrics);
    return p;
  }

  // NBIRTH (bdSeq 3, seq 0): bdSeq; Temperature (alias 1, Double, degC) 21.5; Running
  // (alias 2, Boolean) true; Mode (alias 3, String) "auto"; Blob (alias 4, Bytes); Count
  // (alias 5, Int32) 7.
  Payload NodeBirth(uint64_t bdseq = 3) {
    seq_ = 0;
    Metric blob = Declare("Blob", 4, DataType::kBytes, Value());
    blob.bytes_value = std::string("\x01\x02\x03", 3);
    return Next({BdSeq(bdseq), Declare("Temperature", 1, DataType::kDouble, Value(21.5), "degC"),
                 Declare("Running", 2, DataType::kBoolean, Value(true)),
                 Declare("Mode", 3, DataType::kString, Value("auto")), std::move(blob),
                 Declare("Count", 5, DataType::kInt32, Value(int32_t{7}))},
                kBirthTs);
  }
  // DBIRTH of D1: Pressure (alias 10, Float, bar) 1.5; Table (alias 11, DataSet).
  Payload DeviceBirth() {
    return Next({Declare("Pressure", 10, DataType::kFloat, Value(1.5f), "bar"),
                 Declare("Table", 11, DataType::kDataSet, Value())},
                kBirthTs);
  }
  void BringOnline() {
    Send(Topic("NBIRTH"), NodeBirth());
    Send(Topic("DBIRTH", "D1"), DeviceBirth());
  }

  historian::SeriesInfo Series(std::string_view path) {
    auto info = historian_->Find(path);
    EXPECT_TRUE(info.has_value()) << path;
    return info.value_or(historian::SeriesInfo{});
  }
  std::vector<Point> Raw(std::string_view path) {
    auto r = historian_->QueryRaw(Series(path).id, kMin, kMax);
    EXPECT_THAT(r, IsOk()) << path;
    return r.ok() ? *r : std::vector<Point>{};
  }
  std::vector<TextPoint> Text(std::string_view path) {
    auto r = historian_->QueryText(Series(path).id, kMin, kMax);
    EXPECT_THAT(r, IsOk()) << path;
    return r.ok() ? *r : std::vector<TextPoint>{};
  }

  TempDir dir_;
  FakeClock clock_;
  CapturingSink sink_{CapturingSink::Format::kComponent};
  std::unique_ptr<historian::Historian> historian_;
  std::unique_ptr<Registry> registry_;
  LiveHub live_;
  CommandLog commands_;
  std::unique_ptr<Ingest> ingest_;
  sparkplug::Encoder encoder_;
  uint64_t seq_ = 0;
};

TEST_F(IngestTest, BirthValuesLandInTheHistorianUnderTheirPaths) {
  BringOnline();
  EXPECT_EQ(Series("G/N/Temperature").kind, SeriesKind::kNumeric);
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5)));
  EXPECT_THAT(Raw("G/N/bdSeq"), ElementsAre(P(kBirthTs, 3)));
  EXPECT_THAT(Raw("G/N/Running"), ElementsAre(P(kBirthTs, 1))) << "a boolean is stored as 0/1";
  EXPECT_THAT(Raw("G/N/Count"), ElementsAre(P(kBirthTs, 7)));
  EXPECT_EQ(Series("G/N/Mode").kind, SeriesKind::kText);
  EXPECT_THAT(Text("G/N/Mode"), ElementsAre(T(kBirthTs, "auto")));
  EXPECT_THAT(Raw("G/N/D1/Pressure"), ElementsAre(P(kBirthTs, 1.5)));
  EXPECT_EQ(ingest_->host_stats().births, 2u);
  EXPECT_EQ(ingest_->host_stats().values, 8u);
}

TEST_F(IngestTest, DataValuesAreStoredAtTheirTimestamps) {
  BringOnline();
  Metric late = ByAlias(1, DataType::kDouble, Value(23.0));
  late.timestamp = kDataTs + 500;
  Send(Topic("NDATA"), Next({ByAlias(1, DataType::kDouble, Value(22.0)),
                             ByAlias(2, DataType::kBoolean, Value(false)),
                             ByAlias(3, DataType::kString, Value("manual"))}));
  Send(Topic("NDATA"), Next({late, ByAlias(5, DataType::kInt32, Value(int32_t{-4}))}));
  Send(Topic("DDATA", "D1"), Next({ByAlias(10, DataType::kFloat, Value(2.25f))}));

  EXPECT_THAT(Raw("G/N/Temperature"),
              ElementsAre(P(kBirthTs, 21.5), P(kDataTs, 22), P(kDataTs + 500, 23)));
  EXPECT_THAT(Raw("G/N/Running"), ElementsAre(P(kBirthTs, 1), P(kDataTs, 0)));
  EXPECT_THAT(Text("G/N/Mode"), ElementsAre(T(kBirthTs, "auto"), T(kDataTs, "manual")));
  EXPECT_THAT(Raw("G/N/Count"), ElementsAre(P(kBirthTs, 7), P(kDataTs, -4)));
  EXPECT_THAT(Raw("G/N/D1/Pressure"), ElementsAre(P(kBirthTs, 1.5), P(kDataTs, 2.25)));
}

TEST_F(IngestTest, DataWithoutATimestampIsStoredAtHostTime) {
  BringOnline();
  Send(Topic("NDATA"), Next({ByAlias(1, DataType::kDouble, Value(30.0))}, std::nullopt));
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5), P(kNowMs, 30)));
}

TEST_F(IngestTest, NullValuesAreStoredAsNulls) {
  BringOnline();
  Metric bad_temp = NullMetric(1, DataType::kDouble);
  sparkplug::SetQuality(bad_temp, contract::status::kBadSensorFailure);
  Metric null_mode = NullMetric(3, DataType::kString);
  sparkplug::SetQuality(null_mode, contract::status::kBadNotConnected);
  Send(Topic("NDATA"), Next({bad_temp, null_mode}));

  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5), NullP(kDataTs, 0x808C0000)));
  EXPECT_THAT(Text("G/N/Mode"),
              ElementsAre(T(kBirthTs, "auto"), TextPoint{kDataTs, "", 0x808A0000, true}));
  EXPECT_EQ(historian_->Latest(Series("G/N/Temperature").id, /*good_only=*/true),
            std::optional<Point>(P(kBirthTs, 21.5)));
}

TEST_F(IngestTest, QualitiesComeFromTheKilnStatusCode) {
  BringOnline();
  Metric uncertain = ByAlias(1, DataType::kDouble, Value(22.5));
  sparkplug::SetQuality(uncertain, contract::status::kUncertainSubNormal);
  Metric bad = ByAlias(5, DataType::kInt32, Value(int32_t{0}));
  sparkplug::SetQuality(bad, contract::status::kBadOutOfRange);
  // Only the specification's Quality property (500 = stale): Uncertain, last usable value.
  Metric stale = ByAlias(10, DataType::kFloat, Value(1.75f));
  stale.properties.push_back(
      sparkplug::Property{"Quality", DataType::kInt32, Value(sparkplug::kQualityStale)});
  Send(Topic("NDATA"), Next({uncertain, bad}));
  Send(Topic("DDATA", "D1"), Next({stale}));
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5), P(kDataTs, 22.5, 0x40950000)));
  EXPECT_THAT(Raw("G/N/Count"), ElementsAre(P(kBirthTs, 7), P(kDataTs, 0, 0x803C0000)));
  EXPECT_THAT(Raw("G/N/D1/Pressure"), ElementsAre(P(kBirthTs, 1.5), P(kDataTs, 1.75, 0x40900000)));
}

TEST_F(IngestTest, UnsupportedDatatypesAreCountedNotStored) {
  BringOnline();
  EXPECT_EQ(historian_->Find("G/N/Blob"), std::nullopt);
  EXPECT_EQ(historian_->Find("G/N/D1/Table"), std::nullopt);
  EXPECT_EQ(ingest_->stats().unsupported, 2u);
  Metric blob = ByAlias(4, DataType::kBytes, Value());
  blob.bytes_value = "xyz";
  Send(Topic("NDATA"), Next({blob, ByAlias(1, DataType::kDouble, Value(22.0))}));
  EXPECT_EQ(historian_->Find("G/N/Blob"), std::nullopt);
  EXPECT_EQ(ingest_->stats().unsupported, 3u);
  EXPECT_EQ(ingest_->stats().store_errors, 0u) << ::testing::PrintToString(sink_.Matching(""));
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5), P(kDataTs, 22)));
  EXPECT_EQ(sink_.Matching("G/N/Blob: Bytes values are not stored").size(), 1u)
      << "logged once per metric";
}

TEST_F(IngestTest, PointsCountEveryValueStored) {
  BringOnline();
  Send(Topic("NDATA"), Next({ByAlias(1, DataType::kDouble, Value(22.0))}));
  // bdSeq, Temperature x2, Running, Count, Pressure, and the text metric Mode.
  EXPECT_EQ(ingest_->stats().points, 7u);
  EXPECT_EQ(ingest_->stats().queued, 0u);
}

// IngestStats::points is documented as "values written to the historian" and exported as
// kiln_server_points_stored_total; the text values written with AppendText are part of it.
TEST_F(IngestTest, PointsCountTextValuesToo) {
  BringOnline();
  Send(Topic("NDATA"), Next({ByAlias(3, DataType::kString, Value("manual"))}));
  EXPECT_THAT(Text("G/N/Mode"), ElementsAre(T(kBirthTs, "auto"), T(kDataTs, "manual")));
  // 5 numeric birth values + 2 text values.
  EXPECT_EQ(ingest_->stats().points, 7u);
}

TEST_F(IngestTest, NodeDeathAddsOneStalePointPerMetricAtHostTime) {
  BringOnline();
  Metric bad = NullMetric(5, DataType::kInt32);
  sparkplug::SetQuality(bad, contract::status::kBadDeviceFailure);
  Send(Topic("NDATA"), Next({ByAlias(1, DataType::kDouble, Value(22.0)), bad}));
  clock_.Advance(5s);
  Send(Topic("NDEATH"), Payload{std::nullopt, std::nullopt, std::nullopt, {BdSeq(3)}});

  constexpr int64_t kDeath = kNowMs + 5000;
  EXPECT_THAT(Raw("G/N/Temperature"),
              ElementsAre(P(kBirthTs, 21.5), P(kDataTs, 22), P(kDeath, 22, kStale)));
  EXPECT_THAT(Raw("G/N/Running"), ElementsAre(P(kBirthTs, 1), P(kDeath, 1, kStale)));
  EXPECT_THAT(Raw("G/N/bdSeq"), ElementsAre(P(kBirthTs, 3), P(kDeath, 3, kStale)));
  EXPECT_THAT(Raw("G/N/Count"),
              ElementsAre(P(kBirthTs, 7), NullP(kDataTs, 0x808B0000), NullP(kDeath, 0x808B0000)))
      << "a Bad value keeps its quality (and stays null)";
  EXPECT_THAT(Raw("G/N/D1/Pressure"), ElementsAre(P(kBirthTs, 1.5), P(kDeath, 1.5, kStale)))
      << "the devices die with their node";
  EXPECT_EQ(historian_->Find("G/N/Blob"), std::nullopt);
  EXPECT_EQ(ingest_->host_stats().deaths, 1u);

  auto node = registry_->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_FALSE(node->online);
  EXPECT_EQ(node->since, kDeath);
  ASSERT_EQ(node->devices.size(), 1u);
  EXPECT_FALSE(node->devices[0].online);
  EXPECT_EQ(node->devices[0].since, kDeath);
}

// The header and docs/API.md: "each of its metrics gets one more point at the death time".
TEST_F(IngestTest, NodeDeathStalesTextMetricsToo) {
  BringOnline();
  clock_.Advance(5s);
  Send(Topic("NDEATH"), Payload{std::nullopt, std::nullopt, std::nullopt, {BdSeq(3)}});
  // Text metrics get their stale point too.
  EXPECT_THAT(Text("G/N/Mode"), ElementsAre(T(kBirthTs, "auto"), T(kNowMs + 5000, "auto", kStale)));
}

TEST_F(IngestTest, NodeDeathWithAnotherBdSeqChangesNothing) {
  BringOnline();
  clock_.Advance(5s);
  Send(Topic("NDEATH"), Payload{std::nullopt, std::nullopt, std::nullopt, {BdSeq(2)}});
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5)));
  EXPECT_EQ(ingest_->host_stats().stale_deaths, 1u);
  auto node = registry_->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_TRUE(node->online);
  EXPECT_TRUE(node->devices[0].online);
}

TEST_F(IngestTest, DeviceDeathStalesOnlyThatDeviceAtItsTimestamp) {
  BringOnline();
  constexpr int64_t kDeviceDeath = kDataTs + 1000;
  Send(Topic("DDEATH", "D1"), Next({}, kDeviceDeath));
  EXPECT_THAT(Raw("G/N/D1/Pressure"), ElementsAre(P(kBirthTs, 1.5), P(kDeviceDeath, 1.5, kStale)));
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5)));
  auto node = registry_->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_TRUE(node->online);
  ASSERT_EQ(node->devices.size(), 1u);
  EXPECT_FALSE(node->devices[0].online);
  EXPECT_EQ(node->devices[0].since, kDeviceDeath);
}

TEST_F(IngestTest, RegistryFollowsBirthsAndRebirths) {
  BringOnline();
  auto node = registry_->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_TRUE(node->online);
  EXPECT_EQ(node->since, kBirthTs);
  EXPECT_EQ(node->bdseq, 3u);
  ASSERT_EQ(node->metrics.size(), 6u);
  EXPECT_EQ(node->metrics[1].path, "G/N/Temperature");
  EXPECT_EQ(node->metrics[1].datatype, "Double");
  EXPECT_EQ(node->metrics[1].unit, "degC");
  EXPECT_EQ(node->metrics[4].datatype, "Bytes");
  ASSERT_EQ(node->devices.size(), 1u);
  EXPECT_TRUE(node->devices[0].online);
  EXPECT_EQ(node->devices[0].metrics[1].datatype, "DataSet");

  Send(Topic("NBIRTH"), NodeBirth(4));
  node = registry_->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->bdseq, 4u);
  EXPECT_FALSE(node->devices[0].online) << "until its DBIRTH";
}

TEST_F(IngestTest, LiveEventsAreValuesAndStatusChangesButNotHistory) {
  auto sub = live_.Subscribe("G/N/");
  auto status = live_.Subscribe("G/N");
  BringOnline();
  uint64_t dropped = 0;
  auto events = sub->Wait(std::stop_token(), 10s, dropped);
  std::vector<std::string> got;
  for (const auto& e : events) got.push_back(e.type + " " + e.data);
  EXPECT_THAT(
      got, ElementsAre(
               R"(value {"metric":"G/N/bdSeq","t":1699999990000,"v":3,"q":0})",
               R"(value {"metric":"G/N/Temperature","t":1699999990000,"v":21.5,"q":0})",
               R"(value {"metric":"G/N/Running","t":1699999990000,"v":1,"q":0})",
               R"(value {"metric":"G/N/Mode","t":1699999990000,"v":"auto","q":0})",
               R"(value {"metric":"G/N/Count","t":1699999990000,"v":7,"q":0})",
               R"(status {"group":"G","node":"N","device":"D1","online":true,"t":1699999990000})",
               R"(value {"metric":"G/N/D1/Pressure","t":1699999990000,"v":1.5,"q":0})"));
  events = status->Wait(std::stop_token(), 10s, dropped);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].type, "status");
  EXPECT_EQ(events[0].path, "G/N");
  EXPECT_EQ(events[0].data, R"({"group":"G","node":"N","online":true,"t":1699999990000})");

  Metric historical = ByAlias(1, DataType::kDouble, Value(20.0));
  historical.is_historical = true;
  historical.timestamp = kBirthTs - 60000;
  Metric null_temp = NullMetric(1, DataType::kDouble);
  null_temp.timestamp = kDataTs + 1;
  sparkplug::SetQuality(null_temp, contract::status::kBadTimeout);
  Send(Topic("NDATA"), Next({historical, ByAlias(1, DataType::kDouble, Value(22.0)), null_temp}));
  events = sub->Wait(std::stop_token(), 10s, dropped);
  got.clear();
  for (const auto& e : events) got.push_back(e.type + " " + e.data);
  EXPECT_THAT(
      got, ElementsAre(
               R"(value {"metric":"G/N/Temperature","t":1699999995000,"v":22,"q":0})",
               R"(value {"metric":"G/N/Temperature","t":1699999995001,"v":null,"q":2148139008})"));
  EXPECT_EQ(dropped, 0u);
  // The history is stored all the same.
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs - 60000, 20), P(kBirthTs, 21.5),
                                                  P(kDataTs, 22), NullP(kDataTs + 1, 0x800A0000)));
}

TEST_F(IngestTest, DeathsAreStreamedWithTheirStalePoints) {
  BringOnline();
  auto sub = live_.Subscribe("G/N/D1");
  Send(Topic("DDEATH", "D1"), Next({}, kDataTs));
  uint64_t dropped = 0;
  auto events = sub->Wait(std::stop_token(), 10s, dropped);
  std::vector<std::string> got;
  for (const auto& e : events) got.push_back(e.type + " " + e.data);
  EXPECT_THAT(
      got,
      ElementsAre(
          R"(value {"metric":"G/N/D1/Pressure","t":1699999995000,"v":1.5,"q":1083113472})",
          R"(status {"group":"G","node":"N","device":"D1","online":false,"t":1699999995000})"));
}

TEST_F(IngestTest, NoEventsAreQueuedWithoutSubscribers) {
  BringOnline();
  EXPECT_FALSE(live_.HasSubscribers());
  auto sub = live_.Subscribe("");
  uint64_t dropped = 0;
  EXPECT_THAT(sub->Wait(std::stop_token(), 1ms, dropped), IsEmpty());
}

TEST_F(IngestTest, RebirthRequestsReachThePublishFunction) {
  // Data before any birth: the host asks the node for a rebirth.
  seq_ = 5;
  Send(Topic("NDATA"), Next({ByAlias(1, DataType::kDouble, Value(22.0))}));
  auto commands = commands_.commands();
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].first, "spBv1.0/G/NCMD/N");
  sparkplug::Decoder decoder;
  auto p = decoder.Decode(commands[0].second);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->timestamp, std::optional<uint64_t>(kNowMs));
  ASSERT_EQ(p->metrics.size(), 1u);
  EXPECT_EQ(p->metrics[0].name, std::optional<std::string>("Node Control/Rebirth"));
  EXPECT_EQ(p->metrics[0].value, Value(true));
  EXPECT_EQ(ingest_->host_stats().rebirth_requests, 1u);
  EXPECT_EQ(ingest_->host_stats().data_before_birth, 1u);
  EXPECT_EQ(historian_->stats().series, 0u);
}

TEST_F(IngestTest, ASeqGapRequestsARebirth) {
  BringOnline();
  seq_ += 3;  // three messages lost
  Send(Topic("NDATA"), Next({ByAlias(1, DataType::kDouble, Value(22.0))}));
  ASSERT_EQ(commands_.commands().size(), 1u);
  EXPECT_EQ(commands_.commands()[0].first, "spBv1.0/G/NCMD/N");
  EXPECT_EQ(ingest_->host_stats().seq_gaps, 3u);
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5), P(kDataTs, 22)))
      << "the message after the gap is stored";
}

TEST_F(IngestTest, ResetSessionsMakesTheNextDataAskForABirth) {
  BringOnline();
  ingest_->ResetSessions();
  Send(Topic("NDATA"), Next({ByAlias(1, DataType::kDouble, Value(22.0))}));
  ASSERT_EQ(commands_.commands().size(), 1u);
  EXPECT_EQ(ingest_->host_stats().data_before_birth, 1u);
  // The reset ends the session at host time: the value is marked stale, the data after it
  // (before a new birth) is not stored.
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5), P(kNowMs, 21.5, kStale)));
  EXPECT_FALSE(registry_->Node("G", "N")->online);
}

TEST_F(IngestTest, MalformedMessagesAreCountedAndSkipped) {
  ingest_->Enqueue("spBv1.0/G/NDATA", "x");
  ingest_->Enqueue(Topic("NBIRTH"), "\xff\xff\xff");
  ingest_->Sync();
  EXPECT_EQ(ingest_->host_stats().malformed, 2u);
  EXPECT_EQ(ingest_->host_stats().messages, 2u);
  BringOnline();
  EXPECT_THAT(Raw("G/N/Temperature"), ElementsAre(P(kBirthTs, 21.5)));
}

TEST_F(IngestTest, StopDrainsWhatIsQueued) {
  Enqueue(Topic("NBIRTH"), NodeBirth());
  for (int i = 0; i < 50; ++i) {
    Enqueue(Topic("NDATA"), Next({ByAlias(1, DataType::kDouble, Value(double(i)))}, kDataTs + i));
  }
  ingest_->Stop();
  const auto points = Raw("G/N/Temperature");
  ASSERT_EQ(points.size(), 51u);
  EXPECT_EQ(points.back(), P(kDataTs + 49, 49));
  EXPECT_EQ(ingest_->stats().queued, 0u);
}

TEST_F(IngestTest, ARebirthWithASupportedTypeIsStored) {
  BringOnline();
  // The next birth declares Blob as a Double: its values are now storable.
  Payload birth = NodeBirth(4);
  birth.metrics[4] = Declare("Blob", 4, DataType::kDouble, Value(0.5));
  Send(Topic("NBIRTH"), birth);
  Send(Topic("NDATA"), Next({ByAlias(4, DataType::kDouble, Value(0.75))}));
  // Each birth resolves its metrics' series again, so a metric once of an unsupported type
  // is stored once it is born with a supported one.
  ASSERT_TRUE(historian_->Find("G/N/Blob").has_value());
  EXPECT_THAT(Raw("G/N/Blob"), ElementsAre(P(kBirthTs, 0.5), P(kDataTs, 0.75)));
}

TEST_F(IngestTest, ExportsItsCounters) {
  BringOnline();
  MetricsRegistry metrics;
  ingest_->ExportMetrics(metrics);
  const std::string text = metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("kiln_server_messages_total 2\n"));
  EXPECT_THAT(text, HasSubstr("kiln_server_births_total 2\n"));
  EXPECT_THAT(text, HasSubstr("kiln_server_values_total 8\n"));
  EXPECT_THAT(text, HasSubstr("kiln_server_unsupported_values_total 2\n"));
  EXPECT_THAT(text, HasSubstr("kiln_server_ingest_queue 0\n"));
  EXPECT_THAT(text, HasSubstr("kiln_server_store_errors_total 0\n"));
  EXPECT_THAT(text, HasSubstr("kiln_server_rebirth_requests_total 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE kiln_server_points_stored_total counter\n"));
}

}  // namespace
}  // namespace kiln::server
