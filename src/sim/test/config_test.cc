#include "sim/config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/config.h"
#include "testing/status_matchers.h"

namespace kiln::sim {
namespace {

using contract::ValueType;
using ::kiln::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::string ExamplePath(const std::string& name) {
  const char* root = std::getenv("KILN_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/examples/" + name;
}

TEST(SimConfigTest, LoadsTheExamplePlant) {
  auto config = LoadSimConfig(ExamplePath("sim.toml"));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_THAT(config->servers, SizeIs(2));
  const ServerConfig& press = config->servers[0];
  EXPECT_EQ(press.id, "press-3");
  EXPECT_EQ(press.protocol, Protocol::kTcp);
  EXPECT_EQ(press.host, "127.0.0.1");
  EXPECT_EQ(press.port, 5020);
  ASSERT_GE(press.registers.size(), 5u);
  EXPECT_EQ(press.registers[0].first, (RegisterRef{Table::kHolding, 0}));
  EXPECT_EQ(press.registers[0].type, ValueType::kFloat);
  EXPECT_EQ(press.registers[0].signal.kind, SignalKind::kSine);
  EXPECT_EQ(press.registers[1].word_order, WordOrder::kCDAB);
  EXPECT_EQ(config->servers[1].id, "oven-1");
}

// The demo runs examples/edge.toml against examples/sim.toml: every tag the edge reads must
// be a register the simulator defines, with the same type and word order.
TEST(SimConfigTest, ExamplePlantServesEveryTagOfTheExampleEdge) {
  auto sim = LoadSimConfig(ExamplePath("sim.toml"));
  ASSERT_TRUE(sim.ok()) << sim.status();
  auto edge = ConfigDocument::Load(ExamplePath("edge.toml"));
  ASSERT_TRUE(edge.ok()) << edge.status();
  int tags = 0;
  for (const ConfigTable& device : (*edge)->root().GetTableArray("devices")) {
    const std::string id = device.GetString("id", "");
    const ServerConfig* server = nullptr;
    for (const ServerConfig& s : sim->servers) {
      if (s.id == id) server = &s;
    }
    ASSERT_NE(server, nullptr) << "no simulated server " << id;
    EXPECT_EQ(device.GetString("address", ""), fmt::format("{}:{}", server->host, server->port));
    for (const ConfigTable& tag : device.GetTableArray("tags")) {
      ++tags;
      const std::string where = id + " " + tag.GetString("name", "");
      auto ref = ParseRegisterRef(tag.GetString("register", ""));
      ASSERT_TRUE(ref.ok()) << where;
      const RegisterConfig* match = nullptr;
      for (const RegisterConfig& r : server->registers) {
        if (r.first == *ref) match = &r;
      }
      ASSERT_NE(match, nullptr) << where << ": " << FormatRegisterRef(*ref) << " is not simulated";
      EXPECT_EQ(contract::ValueTypeName(match->type), tag.GetString("type", "")) << where;
      EXPECT_EQ(WordOrderName(match->word_order), tag.GetString("word_order", "ABCD")) << where;
    }
  }
  EXPECT_GT(tags, 0);
  EXPECT_THAT((*edge)->errors(), ::testing::IsEmpty());
}

TEST(SimConfigTest, LoadsTheBenchmarkPlant) {
  auto config = LoadSimConfig(ExamplePath("sim-bench.toml"));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_THAT(config->servers, SizeIs(1));
  ASSERT_THAT(config->servers[0].registers, SizeIs(1));
  const RegisterConfig& r = config->servers[0].registers[0];
  EXPECT_EQ(r.count, 10000u);
  EXPECT_EQ(r.type, ValueType::kUInt16);
  EXPECT_EQ(r.first.table, Table::kHolding);
  EXPECT_EQ(config->servers[0].port, 0);
}

TEST(SimConfigTest, ReadsEverySignalRtuSettingsAndFaults) {
  auto config = ParseSimConfig(R"(
[[servers]]
id = "line"
protocol = "rtu"
serial = "pty"
baud = 9600
parity = "E"
stop_bits = 2
unit_id = 7
  [[servers.registers]]
  register = "holding:0"
  type = "int32"
  word_order = "DCBA"
  signal = "random_walk"
  min = -5
  max = 5
  step = 0.5
  seed = 9
  update_ms = 250
  count = 3
  [[servers.registers]]
  register = "coil:4"
  type = "bool"
  signal = "step"
  values = [true, false, 1]
  period_s = 0.5
  [[servers.faults]]
  kind = "exception"
  at_s = 1.5
  duration_s = 2
  register = "holding:2"
  code = 4
  [[servers.faults]]
  kind = "silent"
  at_s = 10
)",
                               "rtu.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  const ServerConfig& s = config->servers[0];
  EXPECT_EQ(s.protocol, Protocol::kRtu);
  EXPECT_EQ(s.serial.device, "pty");
  EXPECT_EQ(s.serial.baud, 9600);
  EXPECT_EQ(s.serial.parity, 'E');
  EXPECT_EQ(s.serial.data_bits, 8);
  EXPECT_EQ(s.serial.stop_bits, 2);
  EXPECT_EQ(s.unit_id, 7);
  ASSERT_THAT(s.registers, SizeIs(2));
  EXPECT_EQ(s.registers[0].signal.kind, SignalKind::kRandomWalk);
  EXPECT_EQ(s.registers[0].signal.start, 0);  // (min + max) / 2 by default
  EXPECT_EQ(s.registers[0].signal.seed, 9u);
  EXPECT_EQ(s.registers[0].update, std::chrono::milliseconds(250));
  EXPECT_EQ(s.registers[0].count, 3u);
  EXPECT_THAT(s.registers[1].signal.values, ::testing::ElementsAre(1, 0, 1));
  ASSERT_THAT(s.faults, SizeIs(2));
  EXPECT_EQ(s.faults[0].fault, (Fault{FaultKind::kException, {Table::kHolding, 2}, 4}));
  EXPECT_EQ(s.faults[0].at, std::chrono::milliseconds(1500));
  EXPECT_EQ(s.faults[0].duration, std::chrono::milliseconds(2000));
  EXPECT_EQ(s.faults[1].fault.kind, FaultKind::kSilent);
  EXPECT_EQ(s.faults[1].duration, std::nullopt);
}

TEST(SimConfigTest, ListsEveryErrorWithFileLineAndKey) {
  auto config = ParseSimConfig(R"([[servers]]
id = "press-3"
protocol = "tcp"
listen = "127.0.0.1:99999"
baud = 9600
  [[servers.registers]]
  register = "holding:0"
  type = "float32"
  word_order = "ABDC"
  signal = "sine"
  offset = 1
  period_s = 0
  [[servers.registers]]
  register = "holding:1"
  type = "uint16"
  min = 1
  [[servers.registers]]
  register = "coil:0"
  type = "uint16"
  [[servers.registers]]
  register = "holding:65535"
  type = "uint16"
  count = 2
  [[servers.registers]]
  register = "input:0"
  type = "uint16"
  signal = "step"
  values = [1, "two", 70000]
  period_s = 1
  [[servers.faults]]
  kind = "exception"
  at_s = 1
  code = 12
[[servers]]
id = "press-3"
protocol = "udp"
)",
                               "bad.toml");
  ASSERT_THAT(config, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(config.status().message(),
            "15 errors in bad.toml\n"
            "  bad.toml:5:8: servers[0].baud: applies to rtu servers only\n"
            "  bad.toml:4:10: servers[0].listen: '127.0.0.1:99999': '99999' is not a port "
            "(0..65535)\n"
            "  bad.toml:9:16: servers[0].registers[0].word_order: 'ABDC' is not a word order (use "
            "ABCD, CDAB, BADC or DCBA)\n"
            "  bad.toml:6:3: servers[0].registers[0].amplitude: missing required key\n"
            "  bad.toml:12:14: servers[0].registers[0].period_s: must be a number of seconds in "
            "[0.001, 1000000000]\n"
            "  bad.toml:16:9: servers[0].registers[1].min: unknown key\n"
            "  bad.toml:19:10: servers[0].registers[2].type: coil registers hold bool values only\n"
            "  bad.toml:23:11: servers[0].registers[3].count: 2 value(s) of uint16 from "
            "holding:65535 run past address 65535\n"
            "  bad.toml:28:16: servers[0].registers[4].values[1]: expected a number\n"
            "  bad.toml:28:23: servers[0].registers[4].values[2]: 70000 does not fit uint16\n"
            "  bad.toml:14:14: servers[0].registers[1].register: overlaps servers[0].registers[0] "
            "(holding:0..1)\n"
            "  bad.toml:30:3: servers[0].faults[0].register: missing required key\n"
            "  bad.toml:33:10: servers[0].faults[0].code: 12 is out of range [1, 11]\n"
            "  bad.toml:36:12: servers[1].protocol: 'udp' is not a protocol (use tcp or rtu)\n"
            "  bad.toml:35:6: servers[1].id: duplicate server id 'press-3' (also servers[0])");
}

TEST(SimConfigTest, RejectsAMissingFileAndAnEmptyPlant) {
  EXPECT_THAT(LoadSimConfig("/nonexistent/sim.toml"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ParseSimConfig("", "empty.toml"),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("servers: at least one [[servers]] table is required")));
  EXPECT_THAT(ParseSimConfig("[[servers]]\nid = 1\n", "x.toml"),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("x.toml:2:6: servers[0].id: expected a string, found integer")));
}

}  // namespace
}  // namespace kiln::sim
