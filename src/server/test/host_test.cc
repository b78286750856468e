#include "server/host.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contract/quality.h"
#include "contract/sparkplug/payload.h"
#include "contract/value.h"
#include "core/clock.h"
#include "core/log.h"

namespace kiln::server {
namespace {

using contract::Quality;
using contract::Value;
using sparkplug::DataType;
using sparkplug::Metric;
using sparkplug::Payload;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using namespace std::chrono_literals;

// Timestamps in ms since the epoch.
constexpr uint64_t kStartMs = 1700000000000;    // FakeClock's default start
constexpr uint64_t kBirthTs = 1699999990000;    // payload timestamp of the births
constexpr uint64_t kMetricTs = 1699999995000;   // a metric's own timestamp
constexpr uint64_t kDataTs = 1699999999000;     // payload timestamp of data messages
constexpr uint64_t kYear2001Ts = 978307200000;  // a skewed edge clock
constexpr uint64_t kHourAgoTs = kStartMs - 3600000;

// What a HostListener call carried, copied at the time of the call.
struct ValueEvent {
  MetricInfo* info = nullptr;
  std::string path;
  std::string device;
  std::string name;
  DataType datatype = DataType::kUnknown;
  std::string unit;
  std::optional<uint64_t> alias;
  uint64_t user_data = 0;
  Value value;
  uint64_t t_ms = 0;
  Quality quality;
};

struct LifeEvent {
  NodeKey node;
  std::string device;
  uint64_t bdseq = 0;
  std::vector<std::string> paths;
  std::vector<MetricInfo*> infos;
  uint64_t t_ms = 0;
};

struct CommandEvent {
  std::string topic;
  std::string payload;
  uint64_t sent_ms = 0;  // host wall time when it was published
};

// Records every call. OnBirth hands out user_data (1, 2, ...) to metrics that have none,
// as the historian ingest does with series ids.
class RecordingListener final : public HostListener {
 public:
  explicit RecordingListener(const Clock& clock) : clock_(clock) {}

  void OnValue(MetricInfo& metric, const Metric& value, int64_t t_ms, Quality quality) override {
    values.push_back(ValueEvent{&metric, metric.path, metric.device, metric.name, metric.datatype,
                                metric.unit, metric.alias, metric.user_data, value.value,
                                static_cast<uint64_t>(t_ms), quality});
    order.push_back("value " + metric.path);
  }
  void OnBirth(const NodeKey& node, std::string_view device, uint64_t bdseq,
               std::span<MetricInfo* const> metrics, int64_t t_ms) override {
    LifeEvent e{node, std::string(device), bdseq, {}, {}, static_cast<uint64_t>(t_ms)};
    for (MetricInfo* m : metrics) {
      if (m->user_data == UINT64_MAX) m->user_data = ++next_user_data;
      e.paths.push_back(m->path);
      e.infos.push_back(m);
    }
    births.push_back(std::move(e));
    order.push_back("birth " + node.Name() + (device.empty() ? "" : "/") + std::string(device));
  }
  void OnDeath(const NodeKey& node, std::string_view device, std::span<MetricInfo* const> metrics,
               int64_t t_ms) override {
    LifeEvent e{node, std::string(device), 0, {}, {}, static_cast<uint64_t>(t_ms)};
    for (MetricInfo* m : metrics) {
      e.paths.push_back(m->path);
      e.infos.push_back(m);
    }
    deaths.push_back(std::move(e));
    order.push_back("death " + node.Name() + (device.empty() ? "" : "/") + std::string(device));
  }
  void PublishCommand(const std::string& topic, const std::string& payload) override {
    commands.push_back(
        CommandEvent{topic, payload, static_cast<uint64_t>(ToEpochMillis(clock_.Now()))});
    order.push_back("command " + topic);
  }

  void Clear() {
    values.clear();
    births.clear();
    deaths.clear();
    commands.clear();
    order.clear();
  }
  // The recorded values of one metric path, in order.
  std::vector<ValueEvent> ValuesOf(std::string_view path) const {
    std::vector<ValueEvent> out;
    for (const auto& v : values) {
      if (v.path == path) out.push_back(v);
    }
    return out;
  }

  std::vector<ValueEvent> values;
  std::vector<LifeEvent> births;
  std::vector<LifeEvent> deaths;
  std::vector<CommandEvent> commands;
  std::vector<std::string> order;
  uint64_t next_user_data = 0;

 private:
  const Clock& clock_;
};

Metric Declare(std::string name, uint64_t alias, DataType type, Value value,
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

Metric ByName(std::string name, DataType type, Value value) {
  Metric m;
  m.name = std::move(name);
  m.datatype = type;
  m.value = std::move(value);
  return m;
}

Metric BdSeqMetric(uint64_t bdseq) {
  Metric m;
  m.name = "bdSeq";
  m.datatype = DataType::kUInt64;
  m.value = Value(bdseq);
  return m;
}

class PrimaryHostTest : public ::testing::Test {
 protected:
  PrimaryHostTest() { MakeHost({}); }

  void MakeHost(HostOptions options) {
    host_.reset();
    host_ = std::make_unique<PrimaryHost>(listener_, clock_,
                                          Logger(sink_, "host", LogLevel::kDebug), options);
  }

  static std::string Topic(std::string_view type, std::string_view device = {},
                           std::string_view node = "N") {
    std::string t = "spBv1.0/G/" + std::string(type) + "/" + std::string(node);
    if (!device.empty()) t += "/" + std::string(device);
    return t;
  }

  void Send(const std::string& topic, const Payload& p) {
    std::string bytes;
    ASSERT_TRUE(encoder_.Encode(p, bytes).ok()) << topic;
    host_->OnMessage(topic, bytes);
  }

  // NBIRTH: bdSeq, Temperature (alias 1, Double, degC), Running (alias 2, Boolean, with its
  // own timestamp).
  static Payload NodeBirth(uint64_t bdseq, std::optional<uint64_t> seq = 0) {
    Payload p;
    p.timestamp = kBirthTs;
    p.seq = seq;
    p.metrics.push_back(BdSeqMetric(bdseq));
    p.metrics.push_back(Declare("Temperature", 1, DataType::kDouble, Value(21.5), "degC"));
    Metric running = Declare("Running", 2, DataType::kBoolean, Value(true));
    running.timestamp = kMetricTs;
    p.metrics.push_back(std::move(running));
    return p;
  }
  // DBIRTH of D1: Pressure (alias 10, Float, bar), Count (alias 11, Int32, no unit).
  static Payload BirthD1(uint64_t seq) {
    Payload p;
    p.timestamp = kBirthTs;
    p.seq = seq;
    p.metrics.push_back(Declare("Pressure", 10, DataType::kFloat, Value(1.5f), "bar"));
    p.metrics.push_back(Declare("Count", 11, DataType::kInt32, Value(int32_t{7})));
    return p;
  }
  // DBIRTH of D2: Level (alias 20, Double, m).
  static Payload BirthD2(uint64_t seq) {
    Payload p;
    p.timestamp = kBirthTs;
    p.seq = seq;
    p.metrics.push_back(Declare("Level", 20, DataType::kDouble, Value(3.25), "m"));
    return p;
  }
  static Payload Data(std::optional<uint64_t> seq, std::vector<Metric> metrics,
                      std::optional<uint64_t> timestamp = kDataTs) {
    Payload p;
    p.timestamp = timestamp;
    p.seq = seq;
    p.metrics = std::move(metrics);
    return p;
  }
  // An NDATA with one Temperature value, by alias.
  static Payload TempData(uint64_t seq, double v = 22.0) {
    return Data(seq, {ByAlias(1, DataType::kDouble, Value(v))});
  }
  static Payload Death(std::optional<uint64_t> bdseq, std::optional<uint64_t> timestamp = kStartMs,
                       std::optional<uint64_t> seq = std::nullopt) {
    Payload p;
    p.timestamp = timestamp;
    p.seq = seq;
    if (bdseq) p.metrics.push_back(BdSeqMetric(*bdseq));
    return p;
  }

  // NBIRTH (bdSeq 3, seq 0), DBIRTH D1 (seq 1), DBIRTH D2 (seq 2); the next seq is 3. Clears
  // the listener afterwards.
  void BringOnline() {
    Send(Topic("NBIRTH"), NodeBirth(3));
    Send(Topic("DBIRTH", "D1"), BirthD1(1));
    Send(Topic("DBIRTH", "D2"), BirthD2(2));
    ASSERT_TRUE(host_->IsOnlineForTest(kNode, "D2"));
    listener_.Clear();
  }

  // Checks that `c` is an NCMD "Node Control/Rebirth" = true to `node`, stamped with the host
  // time at which it was sent.
  static void ExpectRebirthCommand(const CommandEvent& c, std::string_view node = "N") {
    EXPECT_EQ(c.topic, "spBv1.0/G/NCMD/" + std::string(node));
    sparkplug::Decoder decoder;
    auto p = decoder.Decode(c.payload);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ASSERT_TRUE(p->timestamp.has_value());
    EXPECT_EQ(*p->timestamp, c.sent_ms);
    EXPECT_FALSE(p->seq.has_value());
    ASSERT_EQ(p->metrics.size(), 1u);
    const Metric& m = p->metrics[0];
    EXPECT_EQ(m.name, std::optional<std::string>("Node Control/Rebirth"));
    EXPECT_FALSE(m.alias.has_value()) << "the rebirth request goes by name";
    EXPECT_EQ(m.datatype, std::optional<DataType>(DataType::kBoolean));
    EXPECT_EQ(m.value, Value(true));
  }

  const NodeKey kNode{"G", "N"};
  FakeClock clock_;
  NullSink sink_;
  RecordingListener listener_{clock_};
  sparkplug::Encoder encoder_;
  std::unique_ptr<PrimaryHost> host_;
};

// ---------------------------------------------------------------------------------------
// Births and data

TEST(MetricPathTest, JoinsGroupNodeDeviceAndName) {
  EXPECT_EQ(MetricPath(NodeKey{"G", "N"}, "", "M"), "G/N/M");
  EXPECT_EQ(MetricPath(NodeKey{"G", "N"}, "D", "M"), "G/N/D/M");
  EXPECT_EQ(MetricPath(NodeKey{"G", "N"}, "", "Folder/M"), "G/N/Folder/M");
}

TEST_F(PrimaryHostTest, NodeBirthDeclaresMetricsAndStoresBirthValues) {
  Send(Topic("NBIRTH"), NodeBirth(3));

  EXPECT_TRUE(host_->IsOnlineForTest(kNode));
  ASSERT_EQ(listener_.births.size(), 1u);
  const LifeEvent& b = listener_.births[0];
  EXPECT_EQ(b.node, kNode);
  EXPECT_EQ(b.device, "");
  EXPECT_EQ(b.bdseq, 3u);
  EXPECT_EQ(b.t_ms, kBirthTs);
  EXPECT_THAT(b.paths, ElementsAre("G/N/bdSeq", "G/N/Temperature", "G/N/Running"));

  ASSERT_EQ(listener_.values.size(), 3u);
  const ValueEvent& temp = listener_.values[1];
  EXPECT_EQ(temp.path, "G/N/Temperature");
  EXPECT_EQ(temp.device, "");
  EXPECT_EQ(temp.name, "Temperature");
  EXPECT_EQ(temp.datatype, DataType::kDouble);
  EXPECT_EQ(temp.unit, "degC");
  EXPECT_EQ(temp.alias, std::optional<uint64_t>(1));
  EXPECT_EQ(temp.value, Value(21.5));
  EXPECT_EQ(temp.t_ms, kBirthTs) << "no metric timestamp: the payload's";
  EXPECT_EQ(temp.quality, contract::status::kGood);
  const ValueEvent& running = listener_.values[2];
  EXPECT_EQ(running.path, "G/N/Running");
  EXPECT_EQ(running.datatype, DataType::kBoolean);
  EXPECT_EQ(running.unit, "");
  EXPECT_EQ(running.value, Value(true));
  EXPECT_EQ(running.t_ms, kMetricTs) << "the metric's own timestamp wins";

  // The birth is announced before its values, so the listener can prepare its series.
  EXPECT_THAT(listener_.order, ElementsAre("birth G/N", "value G/N/bdSeq", "value G/N/Temperature",
                                           "value G/N/Running"));
  EXPECT_NE(temp.user_data, UINT64_MAX);
  EXPECT_EQ(host_->stats().births, 1u);
  EXPECT_EQ(host_->stats().values, 3u);
  EXPECT_EQ(host_->stats().messages, 1u);
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, DeviceBirthDeclaresDeviceMetrics) {
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("DBIRTH", "D1"), BirthD1(1));

  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
  EXPECT_FALSE(host_->IsOnlineForTest(kNode, "D2"));
  ASSERT_EQ(listener_.births.size(), 2u);
  const LifeEvent& b = listener_.births[1];
  EXPECT_EQ(b.node, kNode);
  EXPECT_EQ(b.device, "D1");
  EXPECT_EQ(b.bdseq, 3u) << "a DBIRTH belongs to the node's session";
  EXPECT_EQ(b.t_ms, kBirthTs);
  EXPECT_THAT(b.paths, ElementsAre("G/N/D1/Pressure", "G/N/D1/Count"));

  const auto pressure = listener_.ValuesOf("G/N/D1/Pressure");
  ASSERT_EQ(pressure.size(), 1u);
  EXPECT_EQ(pressure[0].device, "D1");
  EXPECT_EQ(pressure[0].name, "Pressure");
  EXPECT_EQ(pressure[0].datatype, DataType::kFloat);
  EXPECT_EQ(pressure[0].unit, "bar");
  EXPECT_EQ(pressure[0].alias, std::optional<uint64_t>(10));
  EXPECT_EQ(pressure[0].value, Value(1.5f));
  EXPECT_EQ(pressure[0].t_ms, kBirthTs);
  const auto count = listener_.ValuesOf("G/N/D1/Count");
  ASSERT_EQ(count.size(), 1u);
  EXPECT_EQ(count[0].datatype, DataType::kInt32);
  EXPECT_EQ(count[0].value, Value(int32_t{7}));
  EXPECT_EQ(host_->stats().births, 2u);
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, BirthWithoutPayloadTimestampUsesArrivalTime) {
  clock_.Advance(1234ms);
  Payload birth = NodeBirth(3);
  birth.timestamp.reset();
  Send(Topic("NBIRTH"), birth);

  ASSERT_EQ(listener_.births.size(), 1u);
  EXPECT_EQ(listener_.births[0].t_ms, kStartMs + 1234);
  EXPECT_EQ(listener_.ValuesOf("G/N/Temperature").at(0).t_ms, kStartMs + 1234);
  EXPECT_EQ(listener_.ValuesOf("G/N/Running").at(0).t_ms, kMetricTs);
}

TEST_F(PrimaryHostTest, NodeDataByAliasReachesTheListener) {
  BringOnline();
  Send(Topic("NDATA"), Data(3, {ByAlias(1, DataType::kDouble, Value(23.5)),
                                ByAlias(2, DataType::kBoolean, Value(false))}));

  ASSERT_EQ(listener_.values.size(), 2u);
  EXPECT_EQ(listener_.values[0].path, "G/N/Temperature");
  EXPECT_EQ(listener_.values[0].datatype, DataType::kDouble);
  EXPECT_EQ(listener_.values[0].unit, "degC");
  EXPECT_EQ(listener_.values[0].value, Value(23.5));
  EXPECT_EQ(listener_.values[0].t_ms, kDataTs);
  EXPECT_EQ(listener_.values[1].path, "G/N/Running");
  EXPECT_EQ(listener_.values[1].value, Value(false));
  EXPECT_EQ(host_->stats().unknown_metrics, 0u);
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, NodeDataByNameReachesTheListener) {
  BringOnline();
  Send(Topic("NDATA"), Data(3, {ByName("Temperature", DataType::kDouble, Value(19.0))}));

  ASSERT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(listener_.values[0].path, "G/N/Temperature");
  EXPECT_EQ(listener_.values[0].unit, "degC");
  EXPECT_EQ(listener_.values[0].value, Value(19.0));
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, DeviceDataByAliasAndByNameReachesTheListener) {
  BringOnline();
  Send(Topic("DDATA", "D1"), Data(3, {ByAlias(10, DataType::kFloat, Value(2.5f)),
                                      ByName("Count", DataType::kInt32, Value(int32_t{-4}))}));
  Send(Topic("DDATA", "D2"), Data(4, {ByAlias(20, DataType::kDouble, Value(4.0))}));

  ASSERT_EQ(listener_.values.size(), 3u);
  EXPECT_EQ(listener_.values[0].path, "G/N/D1/Pressure");
  EXPECT_EQ(listener_.values[0].device, "D1");
  EXPECT_EQ(listener_.values[0].datatype, DataType::kFloat);
  EXPECT_EQ(listener_.values[0].unit, "bar");
  EXPECT_EQ(listener_.values[0].value, Value(2.5f));
  EXPECT_EQ(listener_.values[1].path, "G/N/D1/Count");
  EXPECT_EQ(listener_.values[1].value, Value(int32_t{-4}));
  EXPECT_EQ(listener_.values[2].path, "G/N/D2/Level");
  EXPECT_EQ(listener_.values[2].unit, "m");
  EXPECT_EQ(host_->stats().values, 3u + 6u) << "6 birth values + 3 data values";
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, DataTimestampIsMetricElsePayloadElseArrival) {
  BringOnline();
  clock_.Advance(5s);
  Metric with_ts = ByAlias(1, DataType::kDouble, Value(1.0));
  with_ts.timestamp = kMetricTs;
  Send(Topic("NDATA"), Data(3, {with_ts, ByAlias(2, DataType::kBoolean, Value(true))}));
  Send(Topic("NDATA"), Data(4, {ByAlias(1, DataType::kDouble, Value(2.0))}, std::nullopt));

  ASSERT_EQ(listener_.values.size(), 3u);
  EXPECT_EQ(listener_.values[0].t_ms, kMetricTs);
  EXPECT_EQ(listener_.values[1].t_ms, kDataTs);
  EXPECT_EQ(listener_.values[2].t_ms, kStartMs + 5000);
}

TEST_F(PrimaryHostTest, QualityComesFromStatusCodeOrSparkplugQualityProperty) {
  BringOnline();
  Metric bad = ByAlias(1, DataType::kDouble, Value(1.0));
  sparkplug::SetQuality(bad, contract::status::kBadTimeout);
  Metric uncertain = ByAlias(20, DataType::kDouble, Value(2.0));
  sparkplug::SetQuality(uncertain, contract::status::kUncertainSensorNotAccurate);
  Metric stale = ByAlias(2, DataType::kBoolean, Value(true));
  stale.properties.push_back({"Quality", DataType::kInt32, Value(int32_t{500})});
  Metric spec_bad = ByName("Temperature", DataType::kDouble, Value(3.0));
  spec_bad.properties.push_back({"Quality", DataType::kInt32, Value(int32_t{0})});
  Metric spec_good = ByName("Temperature", DataType::kDouble, Value(4.0));
  spec_good.properties.push_back({"Quality", DataType::kInt32, Value(int32_t{192})});
  Send(Topic("NDATA"), Data(3, {bad, stale, spec_bad, spec_good}));
  Send(Topic("DDATA", "D2"), Data(4, {uncertain}));

  ASSERT_EQ(listener_.values.size(), 5u);
  EXPECT_EQ(listener_.values[0].quality, contract::status::kBadTimeout);
  EXPECT_EQ(listener_.values[1].quality, contract::status::kUncertainLastUsableValue);
  EXPECT_EQ(listener_.values[2].quality, contract::status::kBad);
  EXPECT_EQ(listener_.values[3].quality, contract::status::kGood);
  EXPECT_EQ(listener_.values[4].quality, contract::status::kUncertainSensorNotAccurate);
}

TEST_F(PrimaryHostTest, BirthValuesCarryTheirQuality) {
  Payload birth = NodeBirth(3);
  sparkplug::SetQuality(birth.metrics[1], contract::status::kBadSensorFailure);
  Send(Topic("NBIRTH"), birth);

  EXPECT_EQ(listener_.ValuesOf("G/N/Temperature").at(0).quality,
            contract::status::kBadSensorFailure);
  EXPECT_EQ(listener_.ValuesOf("G/N/Running").at(0).quality, contract::status::kGood);
}

TEST_F(PrimaryHostTest, AliasOfAnotherDeviceIsUnknown) {
  BringOnline();
  // Alias 10 belongs to D1 and alias 1 to the node: neither resolves for D2.
  Send(Topic("DDATA", "D2"), Data(3, {ByAlias(10, DataType::kFloat, Value(1.0f)),
                                      ByAlias(1, DataType::kDouble, Value(1.0))}));
  // Alias 20 belongs to D2: not a node metric.
  Send(Topic("NDATA"), Data(4, {ByAlias(20, DataType::kDouble, Value(1.0))}));

  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_EQ(host_->stats().unknown_metrics, 3u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
}

TEST_F(PrimaryHostTest, DeviceBirthAgainReplacesTheDeviceMetrics) {
  BringOnline();
  Payload again;
  again.timestamp = kBirthTs;
  again.seq = 3;
  again.metrics.push_back(Declare("Flow", 12, DataType::kDouble, Value(0.5), "l/s"));
  Send(Topic("DBIRTH", "D1"), again);
  listener_.Clear();

  Send(Topic("DDATA", "D1"), Data(4, {ByAlias(12, DataType::kDouble, Value(0.75))}));
  ASSERT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(listener_.values[0].path, "G/N/D1/Flow");
  EXPECT_EQ(listener_.values[0].unit, "l/s");
  EXPECT_THAT(listener_.commands, IsEmpty());

  // Pressure (alias 10) was not declared again.
  Send(Topic("DDATA", "D1"), Data(5, {ByAlias(10, DataType::kFloat, Value(1.0f))}));
  EXPECT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(host_->stats().unknown_metrics, 1u);
  EXPECT_EQ(listener_.commands.size(), 1u);
}

TEST_F(PrimaryHostTest, NodesAreIndependent) {
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NBIRTH", {}, "M"), NodeBirth(9));
  listener_.Clear();

  Send(Topic("NDATA", {}, "M"), TempData(1, 30.0));
  Send(Topic("NDEATH"), Death(3));
  Send(Topic("NDATA", {}, "M"), TempData(2, 31.0));

  EXPECT_FALSE(host_->IsOnlineForTest(kNode));
  EXPECT_TRUE(host_->IsOnlineForTest(NodeKey{"G", "M"}));
  const auto m_temp = listener_.ValuesOf("G/M/Temperature");
  ASSERT_EQ(m_temp.size(), 2u);
  EXPECT_EQ(m_temp[1].value, Value(31.0));
  EXPECT_THAT(listener_.commands, IsEmpty());
  EXPECT_EQ(host_->stats().seq_reorders, 0u);
}

// ---------------------------------------------------------------------------------------
// bdSeq, NDEATH and DDEATH (HA.6)

TEST_F(PrimaryHostTest, NodeDeathWithMatchingBdSeqTakesNodeAndDevicesOfflineAtHostTime) {
  BringOnline();
  clock_.Advance(42s);
  Send(Topic("NDEATH"), Death(3, kYear2001Ts));

  EXPECT_FALSE(host_->IsOnlineForTest(kNode));
  EXPECT_FALSE(host_->IsOnlineForTest(kNode, "D1"));
  EXPECT_FALSE(host_->IsOnlineForTest(kNode, "D2"));
  ASSERT_EQ(listener_.deaths.size(), 1u);
  const LifeEvent& d = listener_.deaths[0];
  EXPECT_EQ(d.node, kNode);
  EXPECT_EQ(d.device, "");
  EXPECT_EQ(d.t_ms, kStartMs + 42000) << "host time, not the payload's 2001 timestamp";
  EXPECT_THAT(d.paths, UnorderedElementsAre("G/N/bdSeq", "G/N/Temperature", "G/N/Running",
                                            "G/N/D1/Pressure", "G/N/D1/Count", "G/N/D2/Level"));
  EXPECT_EQ(host_->stats().deaths, 1u);
  EXPECT_EQ(host_->stats().stale_deaths, 0u);
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, NodeDeathWithAnotherBdSeqIsIgnored) {
  BringOnline();
  Send(Topic("NDEATH"), Death(2));  // the Will of an older connection

  EXPECT_TRUE(host_->IsOnlineForTest(kNode));
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
  EXPECT_THAT(listener_.deaths, IsEmpty());
  EXPECT_EQ(host_->stats().stale_deaths, 1u);
  EXPECT_EQ(host_->stats().deaths, 0u);

  // The session goes on undisturbed.
  Send(Topic("NDATA"), TempData(3));
  EXPECT_EQ(listener_.values.size(), 1u);
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, NodeDeathWithoutBdSeqIsIgnored) {
  BringOnline();
  Send(Topic("NDEATH"), Death(std::nullopt));

  EXPECT_TRUE(host_->IsOnlineForTest(kNode));
  EXPECT_THAT(listener_.deaths, IsEmpty());
  EXPECT_EQ(host_->stats().stale_deaths, 1u);
}

TEST_F(PrimaryHostTest, SecondIdenticalNodeDeathIsIgnored) {
  BringOnline();
  Send(Topic("NDEATH"), Death(3));
  Send(Topic("NDEATH"), Death(3));  // MQTT 5: explicit NDEATH, then the broker's Will

  EXPECT_EQ(listener_.deaths.size(), 1u);
  EXPECT_EQ(host_->stats().deaths, 1u);
  EXPECT_EQ(host_->stats().stale_deaths, 1u);
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, NodeDeathOfUnknownNodeIsStale) {
  Send(Topic("NDEATH"), Death(0));

  EXPECT_THAT(listener_.deaths, IsEmpty());
  EXPECT_EQ(host_->stats().stale_deaths, 1u);
  EXPECT_EQ(host_->stats().malformed, 0u);
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, DataAfterNodeDeathIsDataBeforeBirth) {
  BringOnline();
  Send(Topic("NDEATH"), Death(3));
  Send(Topic("NDATA"), TempData(3));
  Send(Topic("DDATA", "D1"), Data(4, {ByAlias(10, DataType::kFloat, Value(1.0f))}));

  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_EQ(host_->stats().data_before_birth, 2u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
}

TEST_F(PrimaryHostTest, NewBirthAfterDeathOpensANewSession) {
  BringOnline();
  Send(Topic("NDEATH"), Death(3));
  Send(Topic("NBIRTH"), NodeBirth(4));
  EXPECT_TRUE(host_->IsOnlineForTest(kNode));
  ASSERT_EQ(listener_.births.size(), 1u);
  EXPECT_EQ(listener_.births[0].bdseq, 4u);

  // A late Will of the previous session does not end the new one.
  Send(Topic("NDEATH"), Death(3));
  EXPECT_TRUE(host_->IsOnlineForTest(kNode));
  EXPECT_EQ(listener_.deaths.size(), 1u);

  Send(Topic("NDEATH"), Death(4));
  EXPECT_FALSE(host_->IsOnlineForTest(kNode));
  ASSERT_EQ(listener_.deaths.size(), 2u);
  EXPECT_THAT(listener_.deaths[1].paths,
              UnorderedElementsAre("G/N/bdSeq", "G/N/Temperature", "G/N/Running"));
}

TEST_F(PrimaryHostTest, DeviceDeathUsesItsPayloadTimestamp) {
  BringOnline();
  clock_.Advance(10s);
  Send(Topic("DDEATH", "D1"), Death(std::nullopt, kHourAgoTs, 3));

  EXPECT_FALSE(host_->IsOnlineForTest(kNode, "D1"));
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D2"));
  EXPECT_TRUE(host_->IsOnlineForTest(kNode));
  ASSERT_EQ(listener_.deaths.size(), 1u);
  const LifeEvent& d = listener_.deaths[0];
  EXPECT_EQ(d.node, kNode);
  EXPECT_EQ(d.device, "D1");
  EXPECT_EQ(d.t_ms, kHourAgoTs);
  EXPECT_THAT(d.paths, UnorderedElementsAre("G/N/D1/Pressure", "G/N/D1/Count"));
  EXPECT_EQ(host_->stats().deaths, 1u);

  // The sibling device and the node keep working.
  Send(Topic("DDATA", "D2"), Data(4, {ByAlias(20, DataType::kDouble, Value(5.0))}));
  Send(Topic("NDATA"), TempData(5));
  EXPECT_EQ(listener_.values.size(), 2u);
  EXPECT_THAT(listener_.commands, IsEmpty());
  EXPECT_EQ(host_->stats().seq_reorders, 0u) << "DDEATH takes part in the seq sequence";
}

TEST_F(PrimaryHostTest, DeviceDeathWithoutTimestampUsesArrivalTime) {
  BringOnline();
  clock_.Advance(10s);
  Send(Topic("DDEATH", "D1"), Death(std::nullopt, std::nullopt, 3));

  ASSERT_EQ(listener_.deaths.size(), 1u);
  EXPECT_EQ(listener_.deaths[0].t_ms, kStartMs + 10000);
}

TEST_F(PrimaryHostTest, DataOfDeadDeviceIsDataBeforeBirth) {
  BringOnline();
  Send(Topic("DDEATH", "D1"), Death(std::nullopt, kHourAgoTs, 3));
  Send(Topic("DDATA", "D1"), Data(4, {ByAlias(10, DataType::kFloat, Value(1.0f))}));

  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_EQ(host_->stats().data_before_birth, 1u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);

  // A new DBIRTH brings the device back.
  Send(Topic("DBIRTH", "D1"), BirthD1(5));
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
}

TEST_F(PrimaryHostTest, DeviceDeathOfUnknownDeviceIsStale) {
  BringOnline();
  Send(Topic("DDEATH", "D9"), Death(std::nullopt, kHourAgoTs, 3));

  EXPECT_THAT(listener_.deaths, IsEmpty());
  EXPECT_EQ(host_->stats().stale_deaths, 1u);
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
}

TEST_F(PrimaryHostTest, DeviceDeathWithoutSeqIsMalformed) {
  BringOnline();
  Send(Topic("DDEATH", "D1"), Death(std::nullopt, kHourAgoTs, std::nullopt));

  EXPECT_THAT(listener_.deaths, IsEmpty());
  EXPECT_EQ(host_->stats().malformed, 1u);
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
}

// ---------------------------------------------------------------------------------------
// seq and the reorder timeout (HA.7)

TEST_F(PrimaryHostTest, ContiguousSeqRequestsNothing) {
  BringOnline();
  for (uint64_t seq = 3; seq < 20; ++seq) {
    if (seq % 2 == 0) {
      Send(Topic("NDATA"), TempData(seq));
    } else {
      Send(Topic("DDATA", "D2"), Data(seq, {ByAlias(20, DataType::kDouble, Value(1.0))}));
    }
  }
  clock_.Advance(1h);
  host_->Tick();

  EXPECT_EQ(listener_.values.size(), 17u);
  EXPECT_THAT(listener_.commands, IsEmpty());
  EXPECT_EQ(host_->stats().seq_reorders, 0u);
  EXPECT_EQ(host_->stats().seq_gaps, 0u);
  EXPECT_FALSE(host_->NextDeadline().has_value());
}

TEST_F(PrimaryHostTest, SeqGapRequestsRebirthOnlyAfterTheReorderTimeout) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NDATA"), TempData(1, 1.0));
  const MonoTime gap_time = clock_.Monotonic();
  Send(Topic("NDATA"), TempData(3, 3.0));  // 2 is withheld

  // Processed at once: no latency for the messages after a gap.
  const auto temp = listener_.ValuesOf("G/N/Temperature");
  ASSERT_EQ(temp.size(), 3u);
  EXPECT_EQ(temp[2].value, Value(3.0));
  EXPECT_EQ(host_->stats().seq_reorders, 1u);
  ASSERT_TRUE(host_->NextDeadline().has_value());
  EXPECT_EQ(*host_->NextDeadline(), gap_time + 500ms);

  host_->Tick();
  EXPECT_THAT(listener_.commands, IsEmpty());
  clock_.Advance(499ms);
  host_->Tick();
  EXPECT_THAT(listener_.commands, IsEmpty());
  EXPECT_EQ(host_->stats().seq_gaps, 0u);

  clock_.Advance(1ms);
  host_->Tick();
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
  EXPECT_EQ(listener_.commands[0].sent_ms, kStartMs + 500);
  EXPECT_EQ(host_->stats().seq_gaps, 1u);
  EXPECT_EQ(host_->stats().rebirth_requests, 1u);
  EXPECT_FALSE(host_->NextDeadline().has_value());

  clock_.Advance(10s);
  host_->Tick();
  EXPECT_EQ(listener_.commands.size(), 1u);
}

TEST_F(PrimaryHostTest, DefaultReorderTimeoutIsTwoSeconds) {
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NDATA"), TempData(2));
  clock_.Advance(1999ms);
  host_->Tick();
  EXPECT_THAT(listener_.commands, IsEmpty());
  clock_.Advance(1ms);
  host_->Tick();
  EXPECT_EQ(listener_.commands.size(), 1u);
}

TEST_F(PrimaryHostTest, MissingSeqArrivingInTimeCancelsTheTimer) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NDATA"), TempData(1, 1.0));
  Send(Topic("NDATA"), TempData(3, 3.0));
  clock_.Advance(200ms);
  Send(Topic("NDATA"), TempData(2, 2.0));

  EXPECT_FALSE(host_->NextDeadline().has_value());
  clock_.Advance(3s);
  host_->Tick();
  EXPECT_THAT(listener_.commands, IsEmpty());
  EXPECT_EQ(host_->stats().seq_gaps, 0u);
  const auto temp = listener_.ValuesOf("G/N/Temperature");
  ASSERT_EQ(temp.size(), 4u);  // birth, 1, 3, 2
  EXPECT_EQ(temp[1].value, Value(1.0));
  EXPECT_EQ(temp[2].value, Value(3.0));
  EXPECT_EQ(temp[3].value, Value(2.0));

  // Processing continues in order, and a later gap starts a fresh timer.
  Send(Topic("NDATA"), TempData(4));
  EXPECT_FALSE(host_->NextDeadline().has_value());
  const MonoTime gap_time = clock_.Monotonic();
  Send(Topic("NDATA"), TempData(6));
  ASSERT_TRUE(host_->NextDeadline().has_value());
  EXPECT_EQ(*host_->NextDeadline(), gap_time + 500ms);
  clock_.Advance(500ms);
  host_->Tick();
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
}

TEST_F(PrimaryHostTest, GapOfSeveralSeqsIsOpenUntilAllArrive) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NDATA"), TempData(1));
  Send(Topic("NDATA"), TempData(4));  // 2 and 3 missing
  Send(Topic("NDATA"), TempData(2));  // 3 still missing

  EXPECT_TRUE(host_->NextDeadline().has_value());
  clock_.Advance(500ms);
  host_->Tick();
  ASSERT_EQ(listener_.commands.size(), 1u);
  EXPECT_EQ(host_->stats().seq_gaps, 1u);
}

TEST_F(PrimaryHostTest, EveryMissingSeqCountsAsAGap) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NDATA"), TempData(1));
  Send(Topic("NDATA"), TempData(5));  // 2, 3 and 4 missing
  clock_.Advance(500ms);
  host_->Tick();

  EXPECT_EQ(listener_.commands.size(), 1u);
  EXPECT_EQ(host_->stats().seq_gaps, 3u);
}

TEST_F(PrimaryHostTest, SecondGapWithinTheDebounceWindowSendsNoSecondRequest) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NDATA"), TempData(1));
  Send(Topic("NDATA"), TempData(3));
  clock_.Advance(500ms);
  host_->Tick();
  ASSERT_EQ(listener_.commands.size(), 1u);  // at t = 500 ms

  clock_.Advance(100ms);
  Send(Topic("NDATA"), TempData(4));
  Send(Topic("NDATA"), TempData(6));
  clock_.Advance(500ms);
  host_->Tick();  // t = 1100 ms: the second gap expires
  EXPECT_EQ(listener_.commands.size(), 1u);
  EXPECT_EQ(host_->stats().seq_gaps, 2u);
  EXPECT_EQ(host_->stats().rebirths_debounced, 1u);
  EXPECT_EQ(host_->stats().rebirth_requests, 1u);
  EXPECT_FALSE(host_->NextDeadline().has_value());

  // After the debounce window a new gap is requested again.
  clock_.Advance(5s);  // t = 6100 ms
  Send(Topic("NDATA"), TempData(7));
  Send(Topic("NDATA"), TempData(9));
  clock_.Advance(500ms);
  host_->Tick();
  ASSERT_EQ(listener_.commands.size(), 2u);
  ExpectRebirthCommand(listener_.commands[1]);
  EXPECT_EQ(host_->stats().rebirth_requests, 2u);
}

TEST_F(PrimaryHostTest, SeqWrapsFrom255ToZeroWithoutAGap) {
  Send(Topic("NBIRTH"), NodeBirth(3));
  for (uint64_t seq = 1; seq <= 255; ++seq) Send(Topic("NDATA"), TempData(seq));
  Send(Topic("NDATA"), TempData(0));
  Send(Topic("NDATA"), TempData(1));
  clock_.Advance(1h);
  host_->Tick();

  EXPECT_EQ(listener_.ValuesOf("G/N/Temperature").size(), 1u + 257u);
  EXPECT_EQ(host_->stats().seq_reorders, 0u);
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, GapAcrossTheWraparound) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  Send(Topic("NBIRTH"), NodeBirth(3));
  for (uint64_t seq = 1; seq <= 254; ++seq) Send(Topic("NDATA"), TempData(seq));
  Send(Topic("NDATA"), TempData(1));    // 255 and 0 missing
  Send(Topic("NDATA"), TempData(255));  // late
  Send(Topic("NDATA"), TempData(0));    // late
  Send(Topic("NDATA"), TempData(2));
  clock_.Advance(1s);
  host_->Tick();
  EXPECT_THAT(listener_.commands, IsEmpty());
  EXPECT_EQ(host_->stats().seq_gaps, 0u);

  Send(Topic("NDATA"), TempData(3));
  Send(Topic("NDATA"), TempData(5));
  clock_.Advance(1s);
  host_->Tick();
  EXPECT_EQ(listener_.commands.size(), 1u);
  EXPECT_EQ(host_->stats().seq_gaps, 1u);
}

TEST_F(PrimaryHostTest, ZeroReorderTimeoutRequestsAtOnce) {
  MakeHost({.reorder_timeout = 0ms, .rebirth_debounce = 5000ms});
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NDATA"), TempData(1));
  Send(Topic("NDATA"), TempData(3));

  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
  EXPECT_EQ(host_->stats().seq_gaps, 1u);
  EXPECT_FALSE(host_->NextDeadline().has_value());
  EXPECT_EQ(listener_.ValuesOf("G/N/Temperature").size(), 3u) << "seq 3 is still processed";
}

TEST_F(PrimaryHostTest, NextDeadlineIsTheEarliestPendingTimer) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  EXPECT_FALSE(host_->NextDeadline().has_value());
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NBIRTH", {}, "M"), NodeBirth(1));
  const MonoTime t0 = clock_.Monotonic();
  Send(Topic("NDATA"), TempData(2));
  clock_.Advance(100ms);
  Send(Topic("NDATA", {}, "M"), TempData(2));
  EXPECT_EQ(host_->NextDeadline(), std::optional<MonoTime>(t0 + 500ms));

  clock_.Advance(400ms);
  host_->Tick();  // N's gap expires; M's has 100 ms left
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0], "N");
  EXPECT_EQ(host_->NextDeadline(), std::optional<MonoTime>(t0 + 600ms));

  clock_.Advance(100ms);
  host_->Tick();
  ASSERT_EQ(listener_.commands.size(), 2u);
  ExpectRebirthCommand(listener_.commands[1], "M");
  EXPECT_FALSE(host_->NextDeadline().has_value());
}

TEST_F(PrimaryHostTest, SeqBehindTheExpectedOneIsProcessedWithoutATimer) {
  BringOnline();
  Send(Topic("NDATA"), TempData(3, 3.0));
  Send(Topic("NDATA"), TempData(4, 4.0));
  Send(Topic("NDATA"), TempData(3, 33.0));  // a duplicate

  EXPECT_EQ(listener_.values.size(), 3u);
  EXPECT_FALSE(host_->NextDeadline().has_value());
  Send(Topic("NDATA"), TempData(5, 5.0));
  clock_.Advance(1h);
  host_->Tick();
  EXPECT_THAT(listener_.commands, IsEmpty());
}

// A burst of 200 lost messages puts the next seq more than half the ring ahead: still a gap
// (only a seq just behind the last one is a repeat).
TEST_F(PrimaryHostTest, ABurstOfLostMessagesLongerThanHalfTheRingIsAGap) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  BringOnline();  // next seq: 3
  Send(Topic("NDATA"), TempData(static_cast<uint8_t>(3 + 200), 1.0));
  ASSERT_TRUE(host_->NextDeadline().has_value());
  clock_.Advance(500ms);
  host_->Tick();
  ASSERT_EQ(listener_.commands.size(), 1u);
  EXPECT_EQ(host_->stats().seq_gaps, 200u);
}

// A rebirth answers the request: a gap right after it may ask again, debounce or not.
TEST_F(PrimaryHostTest, ANodeBirthEndsTheDebounce) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  BringOnline();
  Send(Topic("NDATA"), TempData(5));  // 3, 4 missing
  clock_.Advance(500ms);
  host_->Tick();
  ASSERT_EQ(listener_.commands.size(), 1u);
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NDATA"), TempData(3));  // 1, 2 missing
  clock_.Advance(500ms);
  host_->Tick();
  EXPECT_EQ(listener_.commands.size(), 2u);
}

TEST_F(PrimaryHostTest, NewNodeBirthClearsPendingGaps) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("NDATA"), TempData(2));  // 1 missing
  ASSERT_TRUE(host_->NextDeadline().has_value());
  Send(Topic("NBIRTH"), NodeBirth(4));

  EXPECT_FALSE(host_->NextDeadline().has_value());
  clock_.Advance(1s);
  host_->Tick();
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, DataWithSeqOutOfRangeIsMalformed) {
  BringOnline();
  Send(Topic("NDATA"), TempData(256));

  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_EQ(host_->stats().malformed, 1u);
  // It took no seq: 3 is still the expected one.
  Send(Topic("NDATA"), TempData(3));
  EXPECT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(host_->stats().seq_reorders, 0u);
}

// ---------------------------------------------------------------------------------------
// Data before birth and unknown metrics

TEST_F(PrimaryHostTest, NodeDataOfUnknownNodeIsDroppedAndRequestsRebirth) {
  clock_.Advance(3s);
  Send(Topic("NDATA"), TempData(7));

  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_FALSE(host_->IsOnlineForTest(kNode));
  EXPECT_EQ(host_->stats().data_before_birth, 1u);
  EXPECT_EQ(host_->stats().malformed, 0u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
  EXPECT_EQ(listener_.commands[0].sent_ms, kStartMs + 3000);
  EXPECT_EQ(host_->stats().rebirth_requests, 1u);
}

TEST_F(PrimaryHostTest, DataBeforeBirthStormSendsOneRequestPerDebounceWindow) {
  for (int i = 0; i < 100; ++i) {
    Send(Topic("NDATA"), TempData(static_cast<uint64_t>(i % 256)));
    Send(Topic("DDATA", "D1"),
         Data(static_cast<uint64_t>(i % 256), {ByAlias(10, DataType::kFloat, Value(1.0f))}));
    clock_.Advance(10ms);
  }
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_EQ(host_->stats().data_before_birth, 200u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
  EXPECT_EQ(host_->stats().rebirths_debounced, 199u);

  clock_.Advance(4s);  // 5 s after the first request
  Send(Topic("NDATA"), TempData(100));
  ASSERT_EQ(listener_.commands.size(), 2u);
  ExpectRebirthCommand(listener_.commands[1]);
}

TEST_F(PrimaryHostTest, RebirthDebounceIsPerNode) {
  Send(Topic("NDATA"), TempData(1));
  Send(Topic("NDATA", {}, "M"), TempData(1));
  Send(Topic("NDATA", {}, "M"), TempData(2));

  ASSERT_EQ(listener_.commands.size(), 2u);
  ExpectRebirthCommand(listener_.commands[0], "N");
  ExpectRebirthCommand(listener_.commands[1], "M");
}

TEST_F(PrimaryHostTest, DeviceBirthBeforeNodeBirthIsDataBeforeBirth) {
  Send(Topic("DBIRTH", "D1"), BirthD1(1));

  EXPECT_THAT(listener_.births, IsEmpty());
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_FALSE(host_->IsOnlineForTest(kNode, "D1"));
  EXPECT_EQ(host_->stats().data_before_birth, 1u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
}

TEST_F(PrimaryHostTest, DeviceDataOfUnbornDeviceIsDataBeforeBirth) {
  BringOnline();
  Send(Topic("DDATA", "D9"), Data(3, {ByAlias(10, DataType::kFloat, Value(1.0f))}));

  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_EQ(host_->stats().data_before_birth, 1u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
}

// A message dropped as data before birth (DDATA of an unknown device) or as a stale DDEATH
// still takes its seq: otherwise the node's next message would look like a gap, be counted in
// seq_gaps and answered with another rebirth request. Every message of an online node with a
// valid seq advances the seq tracking.
TEST_F(PrimaryHostTest, DroppedDeviceMessagesStillTakeTheirSeq) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 100ms});
  BringOnline();
  Send(Topic("DDEATH", "D1"), Death(std::nullopt, kHourAgoTs, 3));
  Send(Topic("DDATA", "D1"), Data(4, {ByAlias(10, DataType::kFloat, Value(1.0f))}));
  ASSERT_EQ(listener_.commands.size(), 1u);                         // data before birth
  Send(Topic("DDEATH", "D9"), Death(std::nullopt, kHourAgoTs, 5));  // stale
  Send(Topic("NDATA"), TempData(6));

  EXPECT_EQ(host_->stats().seq_reorders, 0u);
  EXPECT_FALSE(host_->NextDeadline().has_value());
  clock_.Advance(1s);
  host_->Tick();
  EXPECT_EQ(host_->stats().seq_gaps, 0u);
  EXPECT_EQ(listener_.commands.size(), 1u);
}

TEST_F(PrimaryHostTest, UndeclaredAliasIsDroppedOthersAreStoredAndRebirthRequested) {
  BringOnline();
  Send(Topic("DDATA", "D1"), Data(3, {ByAlias(10, DataType::kFloat, Value(2.0f)),
                                      ByAlias(99, DataType::kDouble, Value(9.0)),
                                      ByAlias(11, DataType::kInt32, Value(int32_t{8}))}));

  ASSERT_EQ(listener_.values.size(), 2u);
  EXPECT_EQ(listener_.values[0].path, "G/N/D1/Pressure");
  EXPECT_EQ(listener_.values[0].value, Value(2.0f));
  EXPECT_EQ(listener_.values[1].path, "G/N/D1/Count");
  EXPECT_EQ(listener_.values[1].value, Value(int32_t{8}));
  EXPECT_EQ(host_->stats().unknown_metrics, 1u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1")) << "the session stays open";
}

TEST_F(PrimaryHostTest, UndeclaredNameIsUnknown) {
  BringOnline();
  Send(Topic("NDATA"), Data(3, {ByName("Nope", DataType::kDouble, Value(1.0)),
                                ByName("Running", DataType::kBoolean, Value(false))}));

  ASSERT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(listener_.values[0].path, "G/N/Running");
  EXPECT_EQ(host_->stats().unknown_metrics, 1u);
  EXPECT_EQ(listener_.commands.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Rebirth, user_data and ResetSessions

TEST_F(PrimaryHostTest, NewNodeBirthResetsSeqAndDevices) {
  BringOnline();
  Send(Topic("NDATA"), TempData(3));
  Send(Topic("NDATA"), TempData(4));
  Send(Topic("NBIRTH"), NodeBirth(4));  // a rebirth: seq starts over
  EXPECT_TRUE(host_->IsOnlineForTest(kNode));
  EXPECT_FALSE(host_->IsOnlineForTest(kNode, "D1"));
  EXPECT_FALSE(host_->IsOnlineForTest(kNode, "D2"));
  listener_.Clear();

  // D1 has not been born again in this session.
  Send(Topic("DDATA", "D1"), Data(1, {ByAlias(10, DataType::kFloat, Value(1.0f))}));
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_EQ(host_->stats().data_before_birth, 1u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);

  Send(Topic("DBIRTH", "D1"), BirthD1(2));
  Send(Topic("DDATA", "D1"), Data(3, {ByAlias(10, DataType::kFloat, Value(2.0f))}));
  EXPECT_EQ(listener_.ValuesOf("G/N/D1/Pressure").size(), 2u);  // birth + data
}

TEST_F(PrimaryHostTest, RebirthMayRedefineAliasesAndUnits) {
  BringOnline();
  Payload birth;
  birth.timestamp = kBirthTs;
  birth.seq = 0;
  birth.metrics.push_back(BdSeqMetric(4));
  birth.metrics.push_back(Declare("Temperature", 2, DataType::kFloat, Value(1.0f), "K"));
  birth.metrics.push_back(Declare("Running", 1, DataType::kBoolean, Value(true)));
  Send(Topic("NBIRTH"), birth);
  listener_.Clear();

  Send(Topic("NDATA"), Data(1, {ByAlias(2, DataType::kFloat, Value(300.0f))}));
  ASSERT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(listener_.values[0].path, "G/N/Temperature");
  EXPECT_EQ(listener_.values[0].datatype, DataType::kFloat);
  EXPECT_EQ(listener_.values[0].unit, "K");
  EXPECT_EQ(listener_.values[0].alias, std::optional<uint64_t>(2));
}

TEST_F(PrimaryHostTest, UserDataSurvivesARebirth) {
  Send(Topic("NBIRTH"), NodeBirth(3));
  Send(Topic("DBIRTH", "D1"), BirthD1(1));
  MetricInfo* temp = listener_.ValuesOf("G/N/Temperature").at(0).info;
  MetricInfo* pressure = listener_.ValuesOf("G/N/D1/Pressure").at(0).info;
  const uint64_t temp_id = temp->user_data;
  const uint64_t pressure_id = pressure->user_data;
  ASSERT_NE(temp_id, UINT64_MAX);
  ASSERT_NE(pressure_id, UINT64_MAX);
  ASSERT_NE(temp_id, pressure_id);

  Send(Topic("NDEATH"), Death(3));
  Send(Topic("NBIRTH"), NodeBirth(4));
  Send(Topic("DBIRTH", "D1"), BirthD1(1));
  Send(Topic("NBIRTH"), NodeBirth(5));  // and a rebirth without a death
  listener_.Clear();
  Send(Topic("NDATA"), TempData(1));

  ASSERT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(listener_.values[0].info, temp) << "the same MetricInfo for the same path";
  EXPECT_EQ(listener_.values[0].user_data, temp_id);
  EXPECT_EQ(pressure->user_data, pressure_id);
  EXPECT_EQ(listener_.next_user_data, 5u) << "no MetricInfo was created twice";
}

TEST_F(PrimaryHostTest, ResetSessionsMakesDataDataBeforeBirth) {
  MakeHost({.reorder_timeout = 500ms, .rebirth_debounce = 5000ms});
  BringOnline();
  Send(Topic("NDATA"), TempData(4));  // 3 missing
  ASSERT_TRUE(host_->NextDeadline().has_value());

  host_->ResetSessions();
  EXPECT_FALSE(host_->IsOnlineForTest(kNode));
  EXPECT_FALSE(host_->IsOnlineForTest(kNode, "D1"));
  EXPECT_FALSE(host_->NextDeadline().has_value());
  // What happened meanwhile is unknown: the node is reported dead at host time, with every
  // metric of its node and device births.
  ASSERT_EQ(listener_.deaths.size(), 1u);
  EXPECT_EQ(listener_.deaths[0].device, "");
  EXPECT_EQ(listener_.deaths[0].t_ms, static_cast<uint64_t>(ToEpochMillis(clock_.Now())));
  EXPECT_GE(listener_.deaths[0].paths.size(), 2u);
  listener_.Clear();

  Send(Topic("NDATA"), TempData(5));
  Send(Topic("DDATA", "D1"), Data(6, {ByAlias(10, DataType::kFloat, Value(1.0f))}));
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_EQ(host_->stats().data_before_birth, 2u);
  ASSERT_EQ(listener_.commands.size(), 1u);
  ExpectRebirthCommand(listener_.commands[0]);

  // The rebirth opens a session again.
  Send(Topic("NBIRTH"), NodeBirth(4));
  Send(Topic("NDATA"), TempData(1));
  EXPECT_EQ(listener_.ValuesOf("G/N/Temperature").size(), 2u);
  clock_.Advance(1s);
  host_->Tick();
  EXPECT_EQ(listener_.commands.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Malformed input and ignored topics

TEST_F(PrimaryHostTest, GarbagePayloadIsMalformed) {
  BringOnline();
  const std::vector<std::string> garbage = {
      std::string("\xff\xff\xff\xff", 4),  // an unterminated varint tag
      std::string("\x0a\x05\x01", 3),      // a length beyond the end
      std::string("\x12\x03\x0a\x01", 4),  // a truncated metric
      std::string("\x07", 1),              // wire type 7 does not exist
  };
  sparkplug::Decoder decoder;
  for (const auto& g : garbage) ASSERT_FALSE(decoder.Decode(g).ok());

  uint64_t expected = 0;
  for (const auto& g : garbage) {
    for (const auto& topic : {Topic("NBIRTH"), Topic("NDATA"), Topic("NDEATH"),
                              Topic("DBIRTH", "D1"), Topic("DDATA", "D1"), Topic("DDEATH", "D1")}) {
      host_->OnMessage(topic, g);
      ++expected;
    }
  }

  EXPECT_EQ(host_->stats().malformed, expected);
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_THAT(listener_.births, IsEmpty());
  EXPECT_THAT(listener_.deaths, IsEmpty());
  EXPECT_THAT(listener_.commands, IsEmpty());
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
  // The session is intact.
  Send(Topic("NDATA"), TempData(3));
  EXPECT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(host_->stats().seq_reorders, 0u);
}

TEST_F(PrimaryHostTest, InvalidTopicsAreMalformed) {
  BringOnline();
  std::string bytes;
  ASSERT_TRUE(encoder_.Encode(TempData(3), bytes).ok());
  const std::vector<std::string> topics = {
      "spBv1.0/G/NDATA/N/extra/more",
      "spAv1.0/G/NDATA/N",
      "spBv1.0/G/NDATA",
      "spBv1.0/G/NDATA/N/D1",  // a node message with a device level
      "spBv1.0/G/DDATA/N",     // a device message without one
      "spBv1.0/G/BOGUS/N",
      "spBv1.0//NDATA/N",
      "spBv1.0/G/NDATA/",
      "spBv1.0/STATE/host/extra",
      "",
      "spBv1.0",
  };
  for (const auto& t : topics) host_->OnMessage(t, bytes);

  EXPECT_EQ(host_->stats().malformed, topics.size());
  EXPECT_EQ(host_->stats().messages, 3u + topics.size());
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_THAT(listener_.commands, IsEmpty());
}

TEST_F(PrimaryHostTest, NodeBirthWithoutBdSeqIsMalformed) {
  Payload birth = NodeBirth(3);
  birth.metrics.erase(birth.metrics.begin());
  Send(Topic("NBIRTH"), birth);

  EXPECT_EQ(host_->stats().malformed, 1u);
  EXPECT_EQ(host_->stats().births, 0u);
  EXPECT_FALSE(host_->IsOnlineForTest(kNode));
  EXPECT_THAT(listener_.births, IsEmpty());
  EXPECT_THAT(listener_.values, IsEmpty());

  Send(Topic("NDATA"), TempData(1));
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_EQ(host_->stats().data_before_birth, 1u);
}

TEST_F(PrimaryHostTest, NodeBirthWithoutBdSeqLeavesTheSessionAlone) {
  BringOnline();
  Payload birth = NodeBirth(4);
  birth.metrics.erase(birth.metrics.begin());
  Send(Topic("NBIRTH"), birth);

  EXPECT_EQ(host_->stats().malformed, 1u);
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
  Send(Topic("NDATA"), TempData(3));
  EXPECT_EQ(listener_.values.size(), 1u);
}

TEST_F(PrimaryHostTest, NodeBirthWithoutSeqStoresNothing) {
  Send(Topic("NBIRTH"), NodeBirth(3, std::nullopt));

  EXPECT_EQ(host_->stats().malformed, 1u);
  EXPECT_EQ(host_->stats().births, 0u);
  EXPECT_THAT(listener_.births, IsEmpty());
  EXPECT_THAT(listener_.values, IsEmpty());
}

// A malformed NBIRTH (no seq, or a metric without a name) changes no session state: it opens
// no session, its bdSeq ends nothing, and the next NDATA is data before birth.
TEST_F(PrimaryHostTest, NodeBirthWithoutSeqOpensNoSession) {
  Send(Topic("NBIRTH"), NodeBirth(3, std::nullopt));
  EXPECT_EQ(host_->stats().malformed, 1u);
  EXPECT_FALSE(host_->IsOnlineForTest(kNode));

  Send(Topic("NDATA"), TempData(1));
  EXPECT_EQ(host_->stats().data_before_birth, 1u);
  EXPECT_EQ(host_->stats().unknown_metrics, 0u);
  EXPECT_EQ(listener_.commands.size(), 1u);
  // No session was opened, so there is none to end.
  Send(Topic("NDEATH"), Death(3));
  EXPECT_THAT(listener_.deaths, IsEmpty());
}

// A malformed NBIRTH (a metric without a name) received during a valid session leaves that
// session as it was.
TEST_F(PrimaryHostTest, MalformedNodeBirthLeavesTheSessionAlone) {
  BringOnline();
  Payload birth = NodeBirth(4);
  birth.metrics.push_back(ByAlias(7, DataType::kDouble, Value(1.0)));  // no name
  Send(Topic("NBIRTH"), birth);

  EXPECT_EQ(host_->stats().malformed, 1u);
  EXPECT_THAT(listener_.births, IsEmpty());
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
  Send(Topic("DDATA", "D1"), Data(3, {ByAlias(10, DataType::kFloat, Value(1.0f))}));
  EXPECT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(host_->stats().unknown_metrics + host_->stats().data_before_birth, 0u);
}

TEST_F(PrimaryHostTest, DeviceBirthWithNamelessMetricIsMalformed) {
  BringOnline();
  Payload birth = BirthD1(3);
  birth.metrics.push_back(ByAlias(12, DataType::kDouble, Value(1.0)));
  Send(Topic("DBIRTH", "D3"), birth);

  EXPECT_EQ(host_->stats().malformed, 1u);
  EXPECT_THAT(listener_.births, IsEmpty());
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_FALSE(host_->IsOnlineForTest(kNode, "D3"));
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
}

TEST_F(PrimaryHostTest, DataWithoutSeqIsMalformed) {
  BringOnline();
  Send(Topic("NDATA"), Data(std::nullopt, {ByAlias(1, DataType::kDouble, Value(1.0))}));
  Send(Topic("DDATA", "D1"), Data(std::nullopt, {ByAlias(10, DataType::kFloat, Value(1.0f))}));

  EXPECT_EQ(host_->stats().malformed, 2u);
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_THAT(listener_.commands, IsEmpty());
  EXPECT_TRUE(host_->IsOnlineForTest(kNode, "D1"));
}

TEST_F(PrimaryHostTest, StateAndCommandTopicsAreIgnored) {
  BringOnline();
  std::string bytes;
  ASSERT_TRUE(encoder_.Encode(TempData(3), bytes).ok());
  host_->OnMessage("spBv1.0/STATE/host1", R"({"online":true,"timestamp":1700000000000})");
  host_->OnMessage("spBv1.0/G/NCMD/N", bytes);
  host_->OnMessage("spBv1.0/G/DCMD/N/D1", bytes);
  host_->OnMessage("spBv1.0/G/NCMD/N", std::string("\xff\xff", 2));  // not even decoded

  EXPECT_EQ(host_->stats().malformed, 0u);
  EXPECT_EQ(host_->stats().messages, 3u + 4u);
  EXPECT_THAT(listener_.values, IsEmpty());
  EXPECT_THAT(listener_.commands, IsEmpty());
  // Commands do not take part in seq.
  Send(Topic("NDATA"), TempData(3));
  EXPECT_EQ(listener_.values.size(), 1u);
  EXPECT_EQ(host_->stats().seq_reorders, 0u);
}

TEST_F(PrimaryHostTest, EmptyPayloadIsNotMalformedButLacksItsFields) {
  // An empty protobuf decodes to an empty payload: no seq, no bdSeq.
  host_->OnMessage(Topic("NBIRTH"), "");
  EXPECT_EQ(host_->stats().malformed, 1u);
  host_->OnMessage(Topic("NDEATH"), "");
  EXPECT_EQ(host_->stats().stale_deaths, 1u);
  EXPECT_THAT(listener_.births, IsEmpty());
  EXPECT_THAT(listener_.deaths, IsEmpty());
}

}  // namespace
}  // namespace kiln::server
