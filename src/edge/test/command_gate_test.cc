#include "edge/command_gate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "edge/config.h"
#include "testing/status_matchers.h"

namespace kiln::edge {
namespace {

using contract::Quality;
using contract::Sample;
using contract::Value;
using ::kiln::testing::IsOk;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// One Modbus device with a tag for every rule, loaded the way kiln-edge loads it.
constexpr std::string_view kConfig = R"([node]
group_id = "G"
edge_node_id = "E"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[devices]]
id = "press-3"
driver = "modbus-tcp"
address = "127.0.0.1:5020"
  [[devices.tags]]
  name = "Setpoint"
  register = "holding:0"
  type = "float32"
  writable = true
  min = 0
  max = 70
  min_write_interval = "2s"
  interlock = { tag = "Mode", equals = 1 }
  [[devices.tags]]
  name = "Mode"
  register = "holding:2"
  type = "uint16"
  [[devices.tags]]
  name = "Count"
  register = "holding:3"
  type = "uint16"
  writable = true
  [[devices.tags]]
  name = "Running"
  register = "coil:0"
  type = "bool"
  writable = true
  [[devices.tags]]
  name = "Speed"
  register = "holding:4"
  type = "int16"
  scale = 0.1
  writable = true
  [[devices.tags]]
  name = "Temperature"
  register = "holding:5"
  type = "float32"
  [[devices.tags]]
  name = "Door"
  register = "coil:1"
  type = "bool"
  [[devices.tags]]
  name = "Valve"
  register = "holding:7"
  type = "int16"
  writable = true
  interlock = { tag = "Door", equals = 1 }
  [[devices.tags]]
  name = "Big"
  register = "holding:8"
  type = "uint64"
  writable = true
  [[devices.tags]]
  name = "Limit"
  register = "holding:12"
  type = "float32"
  writable = true
  min = -72.3
  max = 72.3
  [[devices.tags]]
  name = "Mixed"
  register = "holding:14"
  type = "int32"
  writable = true
  min = -5
  max = 5
)";

DeviceConfig LoadDevice() {
  auto cfg = ParseEdgeConfig(kConfig, "edge.toml");
  EXPECT_THAT(cfg, IsOk());
  return cfg.ok() ? cfg->devices.at(0) : DeviceConfig{};
}

class CommandGateTest : public ::testing::Test {
 protected:
  CommandGateTest() : device_(LoadDevice()), gate_(device_, clock_) {
    // Mode and Door hold the values that open the interlocks.
    Set("Mode", Value(uint16_t{1}));
    Set("Door", Value(true));
  }

  void Set(std::string_view tag, Value v, Quality q = contract::status::kGood) {
    const TagConfig* t = gate_.FindTag(tag);
    ASSERT_NE(t, nullptr) << tag;
    current_[t->id] = Sample{t->id, std::move(v), q, clock_.Now()};
  }
  void Forget(std::string_view tag) { current_.erase(gate_.FindTag(tag)->id); }

  GateDecision Check(std::string tag, Value v, std::optional<Timestamp> expires = std::nullopt) {
    return gate_.Check(WriteRequest{std::move(tag), std::move(v), expires}, Lookup());
  }
  CurrentSample Lookup() {
    return [this](contract::TagId id) -> std::optional<Sample> {
      auto it = current_.find(id);
      if (it == current_.end()) return std::nullopt;
      return it->second;
    };
  }
  // Expects a refusal with exactly `reason`.
  void ExpectRejected(const GateDecision& d, std::string_view reason) {
    EXPECT_EQ(d.state, GateState::kRejected) << d.reason;
    EXPECT_EQ(d.reason, reason);
    EXPECT_FALSE(d.allowed());
    EXPECT_TRUE(d.value.is_null());
  }

  FakeClock clock_;
  DeviceConfig device_;
  CommandGate gate_;
  std::map<contract::TagId, Sample> current_;
};

TEST_F(CommandGateTest, AllowsAWriteThatPassesEveryRule) {
  GateDecision d = Check("Setpoint", Value(42.5), clock_.Now() + 30s);
  EXPECT_TRUE(d.allowed()) << d.reason;
  EXPECT_EQ(d.state, GateState::kAllowed);
  EXPECT_EQ(d.reason, "");
  EXPECT_EQ(d.tag, gate_.FindTag("Setpoint")->id);
  EXPECT_EQ(d.value, Value(42.5f));  // as the tag's published type, float32
}

TEST_F(CommandGateTest, StateNamesAreTheCommandResultStates) {
  EXPECT_EQ(GateStateName(GateState::kAllowed), "allowed");
  EXPECT_EQ(GateStateName(GateState::kRejected), "rejected");
  EXPECT_EQ(GateStateName(GateState::kExpired), "expired");
}

TEST_F(CommandGateTest, RejectsAnUnknownTag) {
  GateDecision d = Check("Nope", Value(1.0));
  ExpectRejected(d, "no tag Nope on device press-3");
  EXPECT_FALSE(d.tag.has_value());
}

TEST_F(CommandGateTest, RejectsATagThatIsNotWritable) {
  GateDecision d = Check("Temperature", Value(20.0));
  ExpectRejected(d, "Temperature is not writable");
  EXPECT_EQ(d.tag, gate_.FindTag("Temperature")->id);
  ExpectRejected(Check("Mode", Value(uint16_t{1})), "Mode is not writable");
}

TEST_F(CommandGateTest, RejectsValuesOutsideMinAndMaxInclusive) {
  ExpectRejected(Check("Setpoint", Value(72.5)), "72.5 is above max 70");
  ExpectRejected(Check("Setpoint", Value(-0.5)), "-0.5 is below min 0");
  ExpectRejected(Check("Mixed", Value(int64_t{6})), "6 is above max 5");
  ExpectRejected(Check("Mixed", Value(int32_t{-6})), "-6 is below min -5");
  EXPECT_TRUE(Check("Setpoint", Value(70.0)).allowed());
  EXPECT_TRUE(Check("Setpoint", Value(0.0)).allowed());
  EXPECT_TRUE(Check("Mixed", Value(int8_t{-5})).allowed());
  EXPECT_TRUE(Check("Mixed", Value(5.0)).allowed());
}

TEST_F(CommandGateTest, ComparesBoundsInFloatPrecisionForFloat32) {
  // 72.3f is 72.30000305... as a double, yet it is the float32 closest to max = 72.3.
  EXPECT_TRUE(Check("Limit", Value(72.3f)).allowed());
  EXPECT_TRUE(Check("Limit", Value(72.3)).allowed());
  EXPECT_TRUE(Check("Limit", Value(-72.3f)).allowed());
  ExpectRejected(Check("Limit", Value(72.31f)), "72.31 is above max 72.3");
  ExpectRejected(Check("Limit", Value(-72.31)), "-72.31 is below min -72.3");
}

TEST_F(CommandGateTest, RejectsValuesOfTheWrongKind) {
  ExpectRejected(Check("Setpoint", Value("hot")), "Setpoint takes a number, not 'hot'");
  ExpectRejected(Check("Setpoint", Value(true)), "Setpoint takes a number, not true");
  ExpectRejected(Check("Setpoint", Value()), "no value to write to Setpoint");
  ExpectRejected(Check("Setpoint", Value(std::numeric_limits<double>::quiet_NaN())),
                 "Setpoint takes a finite number, not nan");
  ExpectRejected(Check("Setpoint", Value(std::numeric_limits<double>::infinity())),
                 "Setpoint takes a finite number, not inf");
  ExpectRejected(Check("Running", Value("on")),
                 "Running takes true or false (or 1 or 0), not 'on'");
}

TEST_F(CommandGateTest, IntegerTagsTakeWholeNumbersThatFitTheirType) {
  GateDecision d = Check("Count", Value(7.0));
  ASSERT_TRUE(d.allowed()) << d.reason;
  EXPECT_EQ(d.value, Value(uint16_t{7}));
  EXPECT_EQ(Check("Count", Value(int64_t{65535})).value, Value(uint16_t{65535}));
  EXPECT_EQ(Check("Count", Value(7.0f)).value, Value(uint16_t{7}));
  ExpectRejected(Check("Count", Value(72.5)), "Count takes whole numbers, not 72.5");
  ExpectRejected(Check("Count", Value(int32_t{70000})),
                 "70000 does not fit Count (uint16: 0 to 65535)");
  ExpectRejected(Check("Count", Value(-1.0)), "-1 does not fit Count (uint16: 0 to 65535)");
  ExpectRejected(Check("Valve", Value(int64_t{40000})),
                 "40000 does not fit Valve (int16: -32768 to 32767)");
}

TEST_F(CommandGateTest, SixtyFourBitIntegersAreWrittenExactly) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  GateDecision d = Check("Big", Value(max));
  ASSERT_TRUE(d.allowed()) << d.reason;
  EXPECT_EQ(d.value, Value(max));
  // 2^53 + 1 has no exact double; the gate must not round it through one.
  const uint64_t odd = (uint64_t{1} << 53) + 1;
  EXPECT_EQ(Check("Big", Value(static_cast<int64_t>(odd))).value, Value(odd));
  ExpectRejected(Check("Big", Value(int64_t{-1})),
                 "-1 does not fit Big (uint64: 0 to 18446744073709551615)");
  ExpectRejected(Check("Big", Value(std::ldexp(1.0, 64))),
                 "1.8446744073709552e+19 does not fit Big (uint64: 0 to 18446744073709551615)");
}

TEST_F(CommandGateTest, BoolTagsTakeBoolsOrOneAndZero) {
  EXPECT_EQ(Check("Running", Value(true)).value, Value(true));
  EXPECT_EQ(Check("Running", Value(false)).value, Value(false));
  EXPECT_EQ(Check("Running", Value(int32_t{1})).value, Value(true));
  EXPECT_EQ(Check("Running", Value(0.0)).value, Value(false));
  ExpectRejected(Check("Running", Value(int32_t{2})),
                 "Running takes true or false (or 1 or 0), not 2");
}

TEST_F(CommandGateTest, ScaledTagsMustFitTheirRawRegister) {
  GateDecision d = Check("Speed", Value(72.5));
  ASSERT_TRUE(d.allowed()) << d.reason;
  EXPECT_EQ(d.value, Value(72.5));  // published float64; the writer unscales it
  EXPECT_TRUE(Check("Speed", Value(3276.7)).allowed());
  EXPECT_TRUE(Check("Speed", Value(-3276.8)).allowed());
  ExpectRejected(Check("Speed", Value(5000.0)),
                 "5000 does not fit Speed's register (int16 with scale 0.1 and offset 0: -3276.8 "
                 "to 3276.7)");
}

TEST_F(CommandGateTest, Float32TagsRejectWhatFloat32CannotHold) {
  ExpectRejected(Check("Limit", Value(1e39)), "1e+39 does not fit Limit (float32)");
}

TEST_F(CommandGateTest, InterlockOpenAllowsAndClosedRejects) {
  EXPECT_TRUE(Check("Setpoint", Value(10.0)).allowed());
  Set("Mode", Value(uint16_t{0}));
  GateDecision d = Check("Setpoint", Value(10.0));
  ExpectRejected(d, "interlock: Mode is 0, needs 1");
  EXPECT_EQ(d.tag, gate_.FindTag("Setpoint")->id);
  Set("Mode", Value(uint16_t{2}));
  ExpectRejected(Check("Setpoint", Value(10.0)), "interlock: Mode is 2, needs 1");
  Set("Mode", Value(1.0));  // compared numerically, whatever the type
  EXPECT_TRUE(Check("Setpoint", Value(10.0)).allowed());
}

TEST_F(CommandGateTest, InterlockOnABoolTagComparesOneAndZero) {
  EXPECT_TRUE(Check("Valve", Value(int16_t{5})).allowed());
  Set("Door", Value(false));
  ExpectRejected(Check("Valve", Value(int16_t{5})), "interlock: Door is 0, needs 1");
}

TEST_F(CommandGateTest, InterlockWithoutAGoodValueIsClosed) {
  Set("Mode", Value(uint16_t{1}), contract::status::kBadTimeout);
  ExpectRejected(Check("Setpoint", Value(10.0)), "interlock: Mode is BadTimeout, needs 1");
  Set("Mode", Value(uint16_t{1}), contract::status::kUncertainLastUsableValue);
  GateDecision d = Check("Setpoint", Value(10.0));
  EXPECT_EQ(d.state, GateState::kRejected);
  EXPECT_THAT(d.reason, HasSubstr("interlock: Mode is Uncertain"));
  Set("Mode", Value());
  ExpectRejected(Check("Setpoint", Value(10.0)), "interlock: Mode is null, needs 1");
  Forget("Mode");
  ExpectRejected(Check("Setpoint", Value(10.0)), "interlock: Mode has no value yet, needs 1");
  // No lookup at all: every interlock is closed.
  ExpectRejected(gate_.Check(WriteRequest{"Setpoint", Value(10.0), std::nullopt}, nullptr),
                 "interlock: Mode has no value yet, needs 1");
  // Tags without an interlock do not need the lookup.
  EXPECT_TRUE(gate_.Check(WriteRequest{"Count", Value(1.0), std::nullopt}, nullptr).allowed());
}

TEST_F(CommandGateTest, RefusesAWriteSoonerThanTheMinWriteInterval) {
  ASSERT_TRUE(Check("Setpoint", Value(10.0)).allowed());
  gate_.RecordWrite("Setpoint", clock_.Monotonic());
  clock_.Advance(800ms);
  ExpectRejected(Check("Setpoint", Value(11.0)), "last write 0.8 s ago; min_write_interval is 2 s");
  clock_.Advance(1199ms);
  ExpectRejected(Check("Setpoint", Value(11.0)),
                 "last write 1.999 s ago; min_write_interval is 2 s");
  clock_.Advance(1ms);  // exactly the interval
  EXPECT_TRUE(Check("Setpoint", Value(11.0)).allowed());
}

TEST_F(CommandGateTest, RefusedWritesDoNotCountForTheInterval) {
  gate_.RecordWrite("Setpoint", clock_.Monotonic());
  clock_.Advance(1s);
  ExpectRejected(Check("Setpoint", Value(11.0)), "last write 1 s ago; min_write_interval is 2 s");
  clock_.Advance(1s);  // 2 s after the recorded write; the refused one is not a write
  EXPECT_TRUE(Check("Setpoint", Value(11.0)).allowed());
}

TEST_F(CommandGateTest, TheIntervalIsPerTagAndOnlyWhereConfigured) {
  gate_.RecordWrite("Setpoint", clock_.Monotonic());
  EXPECT_TRUE(Check("Limit", Value(1.0)).allowed());
  gate_.RecordWrite("Count", clock_.Monotonic());
  EXPECT_TRUE(Check("Count", Value(2.0)).allowed());   // no min_write_interval on Count
  gate_.RecordWrite("NoSuchTag", clock_.Monotonic());  // ignored
}

TEST_F(CommandGateTest, ExpiredCommandsAreRefusedBeforeAnyRule) {
  GateDecision d = Check("Setpoint", Value(10.0), clock_.Now() - 1200ms);
  EXPECT_EQ(d.state, GateState::kExpired);
  EXPECT_EQ(d.reason, "expired 1.2 s before it arrived");
  EXPECT_TRUE(d.value.is_null());
  // Expiry is reported even where a rule would also refuse.
  EXPECT_EQ(Check("Nope", Value(1.0), clock_.Now() - 1ms).state, GateState::kExpired);
  EXPECT_EQ(Check("Setpoint", Value(99.0), clock_.Now() - 1ms).state, GateState::kExpired);
}

TEST_F(CommandGateTest, ACommandArrivingAtItsExpiryTimeIsOnTime) {
  EXPECT_TRUE(Check("Setpoint", Value(10.0), clock_.Now()).allowed());
  EXPECT_TRUE(Check("Setpoint", Value(10.0), clock_.Now() + 1ms).allowed());
  const Timestamp expires = clock_.Now() + 5s;
  clock_.Advance(5s + 1ms);
  GateDecision d = Check("Setpoint", Value(10.0), expires);
  EXPECT_EQ(d.state, GateState::kExpired);
  EXPECT_EQ(d.reason, "expired 0.001 s before it arrived");
}

TEST_F(CommandGateTest, FindsTagsByNameAndId) {
  const TagConfig* running = gate_.FindTag("Running");
  ASSERT_NE(running, nullptr);
  EXPECT_EQ(running->type, contract::ValueType::kBool);
  EXPECT_EQ(gate_.FindTag(running->id), running);
  EXPECT_EQ(gate_.FindTag("running"), nullptr);  // names are case-sensitive
  EXPECT_EQ(gate_.FindTag(contract::TagId{999}), nullptr);
  EXPECT_EQ(gate_.device_id(), "press-3");
}

TEST(CommandGateCodeConfigTest, WorksOnADeviceBuiltInCode) {
  // Ids need not start at 0 (a second device), and without a Modbus map there is no raw
  // register range to check.
  DeviceConfig dev;
  dev.id = "oven-1";
  TagConfig a;
  a.id = 7;
  a.name = "Setpoint";
  a.type = contract::ValueType::kDouble;
  a.write.writable = true;
  a.write.max = 250;
  TagConfig b;
  b.id = 8;
  b.name = "Recipe";
  b.type = contract::ValueType::kString;
  b.write.writable = true;
  dev.tags = {a, b};
  FakeClock clock;
  CommandGate gate(dev, clock);
  EXPECT_EQ(gate.FindTag(contract::TagId{8})->name, "Recipe");
  EXPECT_EQ(gate.FindTag(contract::TagId{0}), nullptr);
  EXPECT_EQ(gate.Check({"Setpoint", Value(1e200 * -1), std::nullopt}, nullptr).value,
            Value(-1e200));
  EXPECT_EQ(gate.Check({"Setpoint", Value(251.0), std::nullopt}, nullptr).reason,
            "251 is above max 250");
  EXPECT_EQ(gate.Check({"Recipe", Value("B-7"), std::nullopt}, nullptr).value, Value("B-7"));
  EXPECT_EQ(gate.Check({"Recipe", Value(7.0), std::nullopt}, nullptr).reason,
            "Recipe takes a string, not 7");
  EXPECT_EQ(gate.Check({"Nope", Value(7.0), std::nullopt}, nullptr).reason,
            "no tag Nope on device oven-1");
}

}  // namespace
}  // namespace kiln::edge
