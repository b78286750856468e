#include "edge/edge_node.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "testing/status_matchers.h"

namespace kiln::edge {
namespace {

using contract::Sample;
using contract::Value;
using contract::ValueType;
using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using sparkplug::DataType;
using sparkplug::MessageType;

class EdgeNodeTest : public ::testing::Test {
 protected:
  EdgeNodeTest()
      : node_({"Plant1", "gw-01", 1000},
              {NodeDevice{"press-3",
                          {NodeTag{0, "Temperature", ValueType::kFloat, "degC"},
                           NodeTag{1, "Running", ValueType::kBool, ""}}},
               NodeDevice{"oven-1", {NodeTag{2, "Pressure", ValueType::kDouble, "bar"}}}},
              clock_, 5) {}

  sparkplug::Payload Decode(const Message& m) {
    auto p = decoder_.Decode(m.payload);
    EXPECT_THAT(p, IsOk());
    return p.ok() ? *p : sparkplug::Payload{};
  }

  Sample At(contract::TagId tag, Value v, contract::Quality q = contract::status::kGood) {
    return Sample{tag, std::move(v), q, clock_.Now()};
  }

  FakeClock clock_;
  EdgeNode node_;
  sparkplug::Decoder decoder_;
  std::vector<Message> out_;
};

TEST_F(EdgeNodeTest, WillIsNDeathWithBdSeqAndNoSeq) {
  Message will = node_.BeginSession();
  EXPECT_EQ(will.topic, "spBv1.0/Plant1/NDEATH/gw-01");
  EXPECT_EQ(will.qos, 1);
  EXPECT_FALSE(will.retain);
  auto p = Decode(will);
  EXPECT_FALSE(p.seq.has_value());
  ASSERT_EQ(p.metrics.size(), 1u);
  EXPECT_EQ(p.metrics[0].name, "bdSeq");
  EXPECT_EQ(p.metrics[0].datatype, DataType::kInt64);
  EXPECT_EQ(p.metrics[0].value, Value(int64_t{5}));
}

TEST_F(EdgeNodeTest, BdSeqAdvancesPerAcceptedSessionAndWraps) {
  node_.BeginSession();
  EXPECT_EQ(node_.bd_seq(), 5u);
  node_.EndSession(/*established=*/false);  // refused: its Will can never be published
  node_.BeginSession();
  EXPECT_EQ(node_.bd_seq(), 5u);
  node_.EndSession(/*established=*/true);
  node_.BeginSession();
  EXPECT_EQ(node_.bd_seq(), 6u);
  EdgeNode wrap({"G", "E", 10}, {}, clock_, 255);
  wrap.BeginSession();
  wrap.EndSession(true);
  wrap.BeginSession();
  EXPECT_EQ(wrap.bd_seq(), 0u);
}

TEST_F(EdgeNodeTest, BirthsDeclareEveryMetricOfOnlineDevices) {
  node_.Data(std::vector<Sample>{At(0, Value(21.5f)), At(1, Value(true))}, out_);
  node_.SetDeviceOnline(0, true, out_);
  EXPECT_TRUE(out_.empty());  // not in a session yet
  node_.BeginSession();
  node_.Births(out_);
  ASSERT_EQ(out_.size(), 2u);  // oven-1 is offline: no DBIRTH
  EXPECT_EQ(out_[0].topic, "spBv1.0/Plant1/NBIRTH/gw-01");
  EXPECT_EQ(out_[0].qos, 0);
  auto nbirth = Decode(out_[0]);
  EXPECT_EQ(nbirth.seq, 0u);
  ASSERT_EQ(nbirth.metrics.size(), 3u);
  EXPECT_EQ(nbirth.metrics[0].name, "bdSeq");
  EXPECT_EQ(nbirth.metrics[0].value, Value(int64_t{5}));
  EXPECT_EQ(nbirth.metrics[1].name, "Node Control/Rebirth");
  EXPECT_EQ(nbirth.metrics[1].datatype, DataType::kBoolean);
  EXPECT_EQ(nbirth.metrics[1].value, Value(false));
  EXPECT_FALSE(nbirth.metrics[1].alias.has_value());
  EXPECT_EQ(nbirth.metrics[2].name, "Store/Dropped Samples");
  EXPECT_EQ(nbirth.metrics[2].value, Value(uint64_t{0}));

  EXPECT_EQ(out_[1].topic, "spBv1.0/Plant1/DBIRTH/gw-01/press-3");
  auto dbirth = Decode(out_[1]);
  EXPECT_EQ(dbirth.seq, 1u);
  ASSERT_EQ(dbirth.metrics.size(), 2u);
  EXPECT_EQ(dbirth.metrics[0].name, "Temperature");
  EXPECT_EQ(dbirth.metrics[0].alias, 1u);
  EXPECT_EQ(dbirth.metrics[0].datatype, DataType::kFloat);
  EXPECT_EQ(dbirth.metrics[0].value, Value(21.5f));
  EXPECT_EQ(dbirth.metrics[0].unit, "degC");
  EXPECT_EQ(dbirth.metrics[1].datatype, DataType::kBoolean);
}

TEST_F(EdgeNodeTest, DataGoesByAliasWithQualityProperties) {
  node_.SetDeviceOnline(0, true, out_);
  node_.BeginSession();
  node_.Births(out_);
  out_.clear();
  node_.Data(
      std::vector<Sample>{At(0, Value(22.0f)), At(1, Value(), contract::status::kBadNodeIdUnknown)},
      out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].topic, "spBv1.0/Plant1/DDATA/gw-01/press-3");
  auto p = Decode(out_[0]);
  EXPECT_EQ(p.seq, 2u);
  ASSERT_EQ(p.metrics.size(), 2u);
  EXPECT_FALSE(p.metrics[0].name.has_value());
  EXPECT_EQ(p.metrics[0].alias, 1u);
  EXPECT_EQ(p.metrics[0].value, Value(22.0f));
  EXPECT_TRUE(p.metrics[0].properties.empty());
  EXPECT_TRUE(p.metrics[1].is_null);
  EXPECT_EQ(sparkplug::QualityOf(p.metrics[1]), contract::status::kBadNodeIdUnknown);
  ASSERT_EQ(p.metrics[1].properties.size(), 2u);
  EXPECT_EQ(p.metrics[1].properties[0].key, "Quality");
  EXPECT_EQ(p.metrics[1].properties[0].value, Value(int32_t{0}));
}

TEST_F(EdgeNodeTest, OfflineDeviceDataOnlyUpdatesStateAndDeathHasSeq) {
  node_.SetDeviceOnline(0, true, out_);
  node_.BeginSession();
  node_.Births(out_);
  out_.clear();
  node_.SetDeviceOnline(0, false, out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].topic, "spBv1.0/Plant1/DDEATH/gw-01/press-3");
  EXPECT_EQ(Decode(out_[0]).seq, 2u);
  out_.clear();
  node_.Data(std::vector<Sample>{At(0, Value(30.0f))}, out_);
  EXPECT_TRUE(out_.empty());
  node_.SetDeviceOnline(0, true, out_);
  ASSERT_EQ(out_.size(), 1u);
  auto p = Decode(out_[0]);
  EXPECT_EQ(out_[0].type, MessageType::kDBirth);
  EXPECT_EQ(p.metrics[0].value, Value(30.0f));
}

TEST_F(EdgeNodeTest, SeqWrapsAfter255AcrossDeviceMessages) {
  node_.SetDeviceOnline(0, true, out_);
  node_.BeginSession();
  node_.Births(out_);
  out_.clear();
  node_.SetSeqForTest(255);
  node_.Data(std::vector<Sample>{At(0, Value(1.0f))}, out_);
  node_.Data(std::vector<Sample>{At(0, Value(2.0f))}, out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(Decode(out_[0]).seq, 255u);
  EXPECT_EQ(Decode(out_[1]).seq, 0u);
}

TEST_F(EdgeNodeTest, SplitsLargeBatches) {
  EdgeNode node({"G", "E", 2}, {NodeDevice{"d", {NodeTag{0, "a", ValueType::kDouble, ""}}}},
                clock_);
  node.SetDeviceOnline(0, true, out_);
  node.BeginSession();
  node.Births(out_);
  out_.clear();
  std::vector<Sample> samples;
  for (int i = 0; i < 5; ++i) samples.push_back(At(0, Value(double(i))));
  node.Data(samples, out_);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(Decode(out_[2]).metrics.size(), 1u);
  EXPECT_EQ(node.stats().metrics, 5u);
}

TEST_F(EdgeNodeTest, RebirthCommandRepublishesBirthsWithSameBdSeq) {
  node_.SetDeviceOnline(1, true, out_);
  node_.BeginSession();
  node_.Births(out_);
  node_.Data(std::vector<Sample>{At(2, Value(1.5))}, out_);
  out_.clear();
  sparkplug::Payload cmd;
  cmd.timestamp = 1;
  sparkplug::Metric m;
  m.name = "Node Control/Rebirth";
  m.datatype = DataType::kBoolean;
  m.value = Value(true);
  cmd.metrics.push_back(m);
  sparkplug::Encoder enc;
  std::string bytes;
  ASSERT_THAT(enc.Encode(cmd, bytes), IsOk());
  auto command = node_.OnMessage("spBv1.0/Plant1/NCMD/gw-01", bytes);
  ASSERT_THAT(command, IsOk());
  EXPECT_EQ(*command, EdgeNode::Command::kRebirth);
  EXPECT_TRUE(out_.empty());
  node_.Births(out_);
  ASSERT_EQ(out_.size(), 2u);
  auto nbirth = Decode(out_[0]);
  EXPECT_EQ(nbirth.seq, 0u);
  EXPECT_EQ(nbirth.metrics[0].value, Value(int64_t{5}));
  auto dbirth = Decode(out_[1]);
  EXPECT_EQ(out_[1].topic, "spBv1.0/Plant1/DBIRTH/gw-01/oven-1");
  EXPECT_EQ(dbirth.metrics[0].value, Value(1.5));
  EXPECT_EQ(node_.stats().rebirths, 1u);
}

TEST_F(EdgeNodeTest, RebirthWinsOverUnsupportedMetricsInTheSameCommand) {
  node_.BeginSession();
  sparkplug::Payload cmd;
  for (const char* name : {"Node Control/Reboot", "Node Control/Rebirth"}) {
    sparkplug::Metric m;
    m.name = name;
    m.datatype = DataType::kBoolean;
    m.value = Value(true);
    cmd.metrics.push_back(m);
  }
  sparkplug::Encoder enc;
  std::string bytes;
  ASSERT_THAT(enc.Encode(cmd, bytes), IsOk());
  auto command = node_.OnMessage("spBv1.0/Plant1/NCMD/gw-01", bytes);
  ASSERT_THAT(command, IsOk());
  EXPECT_EQ(*command, EdgeNode::Command::kRebirth);
  EXPECT_EQ(node_.stats().bad_commands, 1u);
}

TEST_F(EdgeNodeTest, HistoryOfADeviceOfflineAtReplayIsHeldBack) {
  EXPECT_FALSE(node_.CanPublish(0));  // no session
  node_.SetDeviceOnline(0, true, out_);
  node_.BeginSession();
  EXPECT_FALSE(node_.CanPublish(0));  // no births yet
  node_.Births(out_);
  EXPECT_TRUE(node_.CanPublish(0));
  EXPECT_FALSE(node_.CanPublish(999));  // not configured
  node_.SetDeviceOnline(0, false, out_);
  out_.clear();
  EXPECT_FALSE(node_.CanPublish(0));
  node_.Data(std::vector<Sample>{At(0, Value(1.0f)), At(1, Value(true))}, out_, true);
  EXPECT_TRUE(out_.empty());
}

TEST_F(EdgeNodeTest, StoreDroppedIsInTheBirthAndChangesGoOutAsNData) {
  node_.SetStoreDropped(5, out_);  // before the session: state only
  EXPECT_TRUE(out_.empty());
  node_.BeginSession();
  node_.Births(out_);
  auto birth = Decode(out_.at(0));
  const sparkplug::Metric* dropped = nullptr;
  for (const auto& m : birth.metrics) {
    if (m.name == "Store/Dropped Samples") dropped = &m;
  }
  ASSERT_NE(dropped, nullptr);
  EXPECT_EQ(dropped->datatype, sparkplug::DataType::kUInt64);
  EXPECT_EQ(dropped->value, Value(uint64_t{5}));
  out_.clear();
  node_.SetStoreDropped(5, out_);  // unchanged: nothing
  EXPECT_TRUE(out_.empty());
  node_.SetStoreDropped(9, out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].topic, "spBv1.0/Plant1/NDATA/gw-01");
  auto data = Decode(out_[0]);
  ASSERT_EQ(data.metrics.size(), 1u);
  EXPECT_EQ(data.metrics[0].value, Value(uint64_t{9}));
  EXPECT_EQ(data.seq, std::optional<uint64_t>(1));  // NBIRTH had 0, no device is online
}

TEST_F(EdgeNodeTest, GarbageCommandIsCountedNotFatal) {
  node_.BeginSession();
  EXPECT_THAT(node_.OnMessage("spBv1.0/Plant1/NCMD/gw-01", "\xff\xff\xff"),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(node_.OnMessage("nonsense", ""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(node_.stats().bad_commands, 2u);
  EXPECT_TRUE(out_.empty());
}

TEST_F(EdgeNodeTest, PreparedBirthsDeclareValuesQueuedBeforeThem) {
  node_.SetDeviceOnline(0, true, out_);
  node_.BeginSession();
  node_.Births(out_);
  out_.clear();
  node_.PrepareBirths();  // e.g. a rebirth request: fold the backlog in first
  node_.Data(std::vector<Sample>{At(0, Value(40.0f))}, out_);
  node_.SetDeviceOnline(1, true, out_);
  EXPECT_TRUE(out_.empty());
  node_.Births(out_);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(Decode(out_[1]).metrics[0].value, Value(40.0f));
  EXPECT_EQ(out_[2].topic, "spBv1.0/Plant1/DBIRTH/gw-01/oven-1");
}

TEST_F(EdgeNodeTest, HistoricalDataIsMarkedAndLeavesCurrentValues) {
  node_.SetDeviceOnline(0, true, out_);
  node_.Data(std::vector<Sample>{At(0, Value(50.0f))}, out_);
  node_.BeginSession();
  node_.Births(out_);
  out_.clear();
  const Sample old{0, Value(10.0f), contract::status::kGood, clock_.Now() - std::chrono::hours(1)};
  node_.Data(std::vector<Sample>{old}, out_, /*historical=*/true);
  ASSERT_EQ(out_.size(), 1u);
  auto p = Decode(out_[0]);
  EXPECT_TRUE(p.metrics[0].is_historical);
  EXPECT_EQ(p.metrics[0].timestamp, static_cast<uint64_t>(ToEpochMillis(old.source_time)));
  out_.clear();
  node_.SetDeviceOnline(0, false, out_);
  node_.SetDeviceOnline(0, true, out_);
  EXPECT_EQ(Decode(out_.back()).metrics[0].value, Value(50.0f));  // not the historical 10
}

TEST_F(EdgeNodeTest, CommandTopicsCoverNodeAndDevices) {
  EXPECT_THAT(node_.CommandTopics(), ::testing::ElementsAre("spBv1.0/Plant1/NCMD/gw-01",
                                                            "spBv1.0/Plant1/DCMD/gw-01/press-3",
                                                            "spBv1.0/Plant1/DCMD/gw-01/oven-1"));
}

// A Sparkplug command metric for DCMD tests: by name or by alias, with Kiln's properties.
struct CommandMetric {
  std::optional<std::string> name;
  std::optional<uint64_t> alias;
  DataType datatype = DataType::kDouble;
  Value value;
  std::optional<std::string> command_id;  // kiln.commandId (String)
  std::optional<uint64_t> expires_at;     // kiln.expiresAt (UInt64)
};

CommandMetric Named(std::string name, DataType datatype, Value value,
                    std::optional<std::string> command_id = std::nullopt,
                    std::optional<uint64_t> expires_at = std::nullopt) {
  return {std::move(name),  std::nullopt,          datatype,
          std::move(value), std::move(command_id), expires_at};
}

CommandMetric Aliased(uint64_t alias, DataType datatype, Value value,
                      std::optional<std::string> command_id = std::nullopt) {
  return {std::nullopt, alias, datatype, std::move(value), std::move(command_id), std::nullopt};
}

std::string EncodeCommand(const std::vector<CommandMetric>& metrics) {
  sparkplug::Payload cmd;
  cmd.timestamp = 1764230400000;
  for (const CommandMetric& c : metrics) {
    sparkplug::Metric m;
    m.name = c.name;
    m.alias = c.alias;
    m.datatype = c.datatype;
    m.value = c.value;
    if (c.command_id) {
      m.properties.push_back({"kiln.commandId", DataType::kString, Value(*c.command_id)});
    }
    if (c.expires_at) {
      m.properties.push_back({"kiln.expiresAt", DataType::kUInt64, Value(*c.expires_at)});
    }
    cmd.metrics.push_back(std::move(m));
  }
  sparkplug::Encoder enc;
  std::string bytes;
  EXPECT_THAT(enc.Encode(cmd, bytes), IsOk());
  return bytes;
}

TEST_F(EdgeNodeTest, DeviceCommandByNameGivesOneWritePerMetricWithItsProperties) {
  node_.BeginSession();
  auto command = node_.OnMessage(
      "spBv1.0/Plant1/DCMD/gw-01/press-3",
      EncodeCommand(
          {Named("Temperature", DataType::kFloat, Value(55.5f), "c-9f2", uint64_t{1764230400123}),
           Named("Running", DataType::kBoolean, Value(true))}));
  ASSERT_THAT(command, IsOk());
  EXPECT_EQ(*command, EdgeNode::Command::kWrite);
  const std::vector<EdgeNode::WriteCommand> writes = node_.TakeWrites();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].device, 0u);
  EXPECT_EQ(writes[0].command_id, "c-9f2");
  EXPECT_EQ(writes[0].request.tag, "Temperature");
  EXPECT_EQ(writes[0].request.value, Value(55.5f));
  EXPECT_EQ(writes[0].request.expires_at, FromEpochMillis(1764230400123));
  // A third-party host sends no properties: no id, never expires.
  EXPECT_EQ(writes[1].device, 0u);
  EXPECT_EQ(writes[1].command_id, "");
  EXPECT_EQ(writes[1].request.tag, "Running");
  EXPECT_EQ(writes[1].request.value, Value(true));
  EXPECT_FALSE(writes[1].request.expires_at.has_value());
  EXPECT_EQ(node_.stats().bad_commands, 0u);
  EXPECT_TRUE(node_.TakeWrites().empty());  // taken
}

TEST_F(EdgeNodeTest, DeviceCommandByAliasIsResolvedToTheTagName) {
  auto command = node_.OnMessage("spBv1.0/Plant1/DCMD/gw-01/oven-1",
                                 EncodeCommand({Aliased(3, DataType::kDouble, Value(2.5), "c-1")}));
  ASSERT_THAT(command, IsOk());
  EXPECT_EQ(*command, EdgeNode::Command::kWrite);
  const std::vector<EdgeNode::WriteCommand> writes = node_.TakeWrites();
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].device, 1u);  // oven-1
  EXPECT_EQ(writes[0].command_id, "c-1");
  EXPECT_EQ(writes[0].request.tag, "Pressure");  // alias 3 = tag id 2 + 1
  EXPECT_EQ(writes[0].request.value, Value(2.5));
  EXPECT_FALSE(writes[0].request.expires_at.has_value());
}

TEST_F(EdgeNodeTest, AliasOfAnotherDeviceOrOfNoTagIsNamedByItsNumber) {
  // Alias 3 is oven-1's Pressure: not press-3's, so the gate must not find it there.
  auto command = node_.OnMessage("spBv1.0/Plant1/DCMD/gw-01/press-3",
                                 EncodeCommand({Aliased(3, DataType::kDouble, Value(1.0)),
                                                Aliased(99, DataType::kDouble, Value(1.0)),
                                                Aliased(1, DataType::kFloat, Value(7.0f))}));
  ASSERT_THAT(command, IsOk());
  EXPECT_EQ(*command, EdgeNode::Command::kWrite);
  const std::vector<EdgeNode::WriteCommand> writes = node_.TakeWrites();
  ASSERT_EQ(writes.size(), 3u);
  EXPECT_EQ(writes[0].request.tag, "#3");
  EXPECT_EQ(writes[1].request.tag, "#99");
  EXPECT_EQ(writes[2].request.tag, "Temperature");
  for (const auto& w : writes) EXPECT_EQ(w.device, 0u);
}

TEST_F(EdgeNodeTest, DeviceCommandOfAnUnknownDeviceIsRefusedAndCounted) {
  auto command =
      node_.OnMessage("spBv1.0/Plant1/DCMD/gw-01/press-9",
                      EncodeCommand({Named("Temperature", DataType::kFloat, Value(1.0f), "c-1")}));
  EXPECT_THAT(command, StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("press-9")));
  EXPECT_EQ(node_.stats().bad_commands, 1u);
  EXPECT_TRUE(node_.TakeWrites().empty());
}

TEST_F(EdgeNodeTest, DeviceCommandOfAnotherNodeOrGroupGivesNoWrites) {
  const std::string bytes =
      EncodeCommand({Named("Temperature", DataType::kFloat, Value(1.0f), "c-1")});
  for (const char* topic :
       {"spBv1.0/Plant1/DCMD/gw-02/press-3", "spBv1.0/Plant2/DCMD/gw-01/press-3"}) {
    auto command = node_.OnMessage(topic, bytes);
    EXPECT_THAT(command, StatusIs(StatusCode::kInvalidArgument)) << topic;
    EXPECT_TRUE(node_.TakeWrites().empty()) << topic;
  }
  EXPECT_EQ(node_.stats().bad_commands, 2u);
}

TEST_F(EdgeNodeTest, UndecodableDeviceCommandIsCounted) {
  EXPECT_THAT(node_.OnMessage("spBv1.0/Plant1/DCMD/gw-01/press-3", "\xff\xff\xff"),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(node_.stats().bad_commands, 1u);
  EXPECT_TRUE(node_.TakeWrites().empty());
}

TEST_F(EdgeNodeTest, DeviceCommandWithoutMetricsIsNothingToDo) {
  auto command = node_.OnMessage("spBv1.0/Plant1/DCMD/gw-01/press-3", EncodeCommand({}));
  ASSERT_THAT(command, IsOk());
  EXPECT_EQ(*command, EdgeNode::Command::kNone);
  EXPECT_TRUE(node_.TakeWrites().empty());
  EXPECT_EQ(node_.stats().bad_commands, 0u);
}

TEST_F(EdgeNodeTest, ExpiryBeyondTheTimestampRangeDoesNotExpireTheWrite) {
  // kiln.expiresAt is a UInt64: a host may send "far in the future". It must never read as
  // a time in the past (every write refused "expired"), nor overflow.
  auto command =
      node_.OnMessage("spBv1.0/Plant1/DCMD/gw-01/press-3",
                      EncodeCommand({Named("Temperature", DataType::kFloat, Value(1.0f), "c-1",
                                           std::numeric_limits<uint64_t>::max())}));
  ASSERT_THAT(command, IsOk());
  const std::vector<EdgeNode::WriteCommand> writes = node_.TakeWrites();
  ASSERT_EQ(writes.size(), 1u);
  // UINT64_MAX ("never") must not wrap to -1 ms (1969) nor overflow the nanosecond Timestamp:
  // beyond what a Timestamp holds, the write does not expire.
  EXPECT_TRUE(!writes[0].request.expires_at || *writes[0].request.expires_at > clock_.Now());
}

TEST_F(EdgeNodeTest, RebirthStillWorksAlongsideDeviceCommands) {
  node_.BeginSession();
  auto write =
      node_.OnMessage("spBv1.0/Plant1/DCMD/gw-01/press-3",
                      EncodeCommand({Named("Temperature", DataType::kFloat, Value(1.0f), "c-1")}));
  ASSERT_THAT(write, IsOk());
  EXPECT_EQ(*write, EdgeNode::Command::kWrite);
  auto rebirth = node_.OnMessage(
      "spBv1.0/Plant1/NCMD/gw-01",
      EncodeCommand({Named("Node Control/Rebirth", DataType::kBoolean, Value(true))}));
  ASSERT_THAT(rebirth, IsOk());
  EXPECT_EQ(*rebirth, EdgeNode::Command::kRebirth);
  EXPECT_EQ(node_.stats().rebirths, 1u);
  EXPECT_EQ(node_.stats().bad_commands, 0u);
  // The NCMD is no write: an NCMD naming a device tag is an unsupported node command.
  EXPECT_THAT(node_.OnMessage("spBv1.0/Plant1/NCMD/gw-01",
                              EncodeCommand({Named("Temperature", DataType::kFloat, Value(1.0f))})),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kiln::edge
