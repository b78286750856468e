#include "drivers/modbus/modbus_config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "testing/config_testing.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::modbus {
namespace {

using contract::ValueType;
using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

using Parsed = ::kiln::testing::ParsedTable<ModbusDeviceConfig>;

// Parses the one [[devices]] table of `toml` (file name "test.toml").
Parsed ParseDevice(std::string_view toml) {
  return ::kiln::testing::ParseOnlyTable(toml, "devices", ParseModbusDevice);
}

TEST(ModbusConfigTest, ParsesTcpDeviceAndTags) {
  const Parsed p = ParseDevice(R"(
[[devices]]
id = "press-3"
driver = "modbus-tcp"
address = "127.0.0.1:5020"
unit_id = 7
poll_ms = 100
timeout_ms = 250
max_gap = 4
  [[devices.tags]]
  name = "Temperature"
  register = "holding:0"
  type = "float32"
  word_order = "CDAB"
  scale = 0.5
  offset = -10
  deadband = 0.5
  unit = "degC"
  heartbeat_s = 30
  [[devices.tags]]
  name = "Running"
  register = "coil:12"
  [[devices.tags]]
  name = "Count"
  register = "input:65535"
  [[devices.tags]]
  register = "discrete:3"
  type = "bool"
  [[devices.tags]]
  register = "holding:100"
  type = "int64"
  word_order = "DCBA"
)");
  EXPECT_THAT(p.errors, IsEmpty());
  const ModbusDeviceConfig& c = p.config;
  EXPECT_EQ(c.transport, Transport::kTcp);
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 5020);
  EXPECT_EQ(c.unit_id, 7);
  EXPECT_EQ(c.timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c.max_gap, 4);
  EXPECT_EQ(c.Endpoint(), "127.0.0.1:5020");
  ASSERT_THAT(c.tags, SizeIs(5));

  EXPECT_EQ(c.tags[0].kind, RegisterKind::kHoldingRegister);
  EXPECT_EQ(c.tags[0].address, 0);
  EXPECT_EQ(c.tags[0].type, ValueType::kFloat);
  EXPECT_EQ(c.tags[0].word_order, WordOrder::kCDAB);
  EXPECT_EQ(c.tags[0].scale, 0.5);
  EXPECT_EQ(c.tags[0].offset, -10.0);
  EXPECT_EQ(PublishedType(c.tags[0]), ValueType::kDouble);

  EXPECT_EQ(c.tags[1].kind, RegisterKind::kCoil);
  EXPECT_EQ(c.tags[1].address, 12);
  EXPECT_EQ(c.tags[1].type, ValueType::kBool);  // default for bits
  EXPECT_EQ(c.tags[2].kind, RegisterKind::kInputRegister);
  EXPECT_EQ(c.tags[2].address, 65535);
  EXPECT_EQ(c.tags[2].type, ValueType::kUInt16);  // default for registers
  EXPECT_EQ(PublishedType(c.tags[2]), ValueType::kUInt16);
  EXPECT_EQ(c.tags[3].kind, RegisterKind::kDiscreteInput);
  EXPECT_EQ(c.tags[4].type, ValueType::kInt64);
  EXPECT_EQ(c.tags[4].word_order, WordOrder::kDCBA);
  EXPECT_THAT(ValidateModbusDevice(c), IsOk());
}

TEST(ModbusConfigTest, AppliesDefaults) {
  const Parsed p = ParseDevice(R"(
[[devices]]
driver = "modbus-tcp"
address = "plc.local"
)");
  EXPECT_THAT(p.errors, IsEmpty());
  EXPECT_EQ(p.config.host, "plc.local");
  EXPECT_EQ(p.config.port, 502);
  EXPECT_EQ(p.config.unit_id, 1);
  EXPECT_EQ(p.config.timeout, std::chrono::milliseconds(1000));
  EXPECT_EQ(p.config.max_gap, 0);
  EXPECT_THAT(p.config.tags, IsEmpty());
}

TEST(ModbusConfigTest, ParsesBracketedIpv6Address) {
  const Parsed p = ParseDevice(R"(
[[devices]]
driver = "modbus-tcp"
address = "[::1]:1502"
)");
  EXPECT_THAT(p.errors, IsEmpty());
  EXPECT_EQ(p.config.host, "::1");
  EXPECT_EQ(p.config.port, 1502);
  EXPECT_EQ(p.config.Endpoint(), "[::1]:1502");
}

TEST(ModbusConfigTest, ParsesRtuDevice) {
  const Parsed p = ParseDevice(R"(
[[devices]]
driver = "modbus-rtu"
serial = "/dev/ttyUSB0"
baud = 9600
parity = "N"
data_bits = 8
stop_bits = 2
unit_id = 247
)");
  EXPECT_THAT(p.errors, IsEmpty());
  EXPECT_EQ(p.config.transport, Transport::kRtu);
  EXPECT_EQ(p.config.serial.device, "/dev/ttyUSB0");
  EXPECT_EQ(p.config.serial.baud, 9600);
  EXPECT_EQ(p.config.serial.parity, Parity::kNone);
  EXPECT_EQ(p.config.serial.stop_bits, 2);
  EXPECT_EQ(p.config.unit_id, 247);
  EXPECT_EQ(p.config.Endpoint(), "/dev/ttyUSB0");
}

TEST(ModbusConfigTest, RtuDefaultsTo19200Even) {
  const Parsed p = ParseDevice("[[devices]]\ndriver = \"modbus-rtu\"\nserial = \"/dev/ttyS1\"\n");
  EXPECT_THAT(p.errors, IsEmpty());
  EXPECT_EQ(p.config.serial.baud, 19200);
  EXPECT_EQ(p.config.serial.parity, Parity::kEven);
  EXPECT_EQ(p.config.serial.data_bits, 8);
  EXPECT_EQ(p.config.serial.stop_bits, 1);
}

TEST(ModbusConfigTest, BadRegisterSyntaxNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
driver = "modbus-tcp"
address = "127.0.0.1"
[[devices.tags]]
register = "holdng:3"
)");
  EXPECT_THAT(p.errors,
              ElementsAre("test.toml:5:12: devices[0].tags[0].register: 'holdng:3' is not a "
                          "register (use holding:N, input:N, coil:N or discrete:N)"));
}

TEST(ModbusConfigTest, ValuePastLastRegisterNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
driver = "modbus-tcp"
address = "127.0.0.1"
[[devices.tags]]
register = "holding:65535"
type = "float32"
)");
  EXPECT_THAT(p.errors, ElementsAre("test.toml:5:12: devices[0].tags[0].register: float32 at "
                                    "holding:65535 spans 2 registers and runs past 65535"));
}

TEST(ModbusConfigTest, AddressOutOfRangeNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
driver = "modbus-tcp"
address = "127.0.0.1"
[[devices.tags]]
register = "input:65536"
)");
  EXPECT_THAT(p.errors, ElementsAre("test.toml:5:12: devices[0].tags[0].register: "
                                    "'input:65536': address 65536 is out of range [0, 65535]"));
}

TEST(ModbusConfigTest, ReservedTcpUnitIdNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
driver = "modbus-tcp"
address = "127.0.0.1"
unit_id = 248
)");
  EXPECT_THAT(p.errors, ElementsAre("test.toml:4:11: devices[0].unit_id: 248 is reserved: use "
                                    "0..247, or 255 over TCP"));
}

TEST(ModbusConfigTest, UnitIdRangesDependOnTransport) {
  EXPECT_THAT(
      ParseDevice("[[devices]]\ndriver = \"modbus-tcp\"\naddress = \"h\"\nunit_id = 255\n").errors,
      IsEmpty());
  EXPECT_THAT(
      ParseDevice("[[devices]]\ndriver = \"modbus-tcp\"\naddress = \"h\"\nunit_id = 256\n").errors,
      ElementsAre(HasSubstr("unit_id: 256 is out of range [0, 255]")));
  EXPECT_THAT(
      ParseDevice("[[devices]]\ndriver = \"modbus-rtu\"\nserial = \"/dev/x\"\nunit_id = 248\n")
          .errors,
      ElementsAre(HasSubstr("unit_id: 248 is out of range [1, 247]")));
  // 0 is the serial broadcast address, which devices never answer.
  EXPECT_THAT(
      ParseDevice("[[devices]]\ndriver = \"modbus-rtu\"\nserial = \"/dev/x\"\nunit_id = 0\n")
          .errors,
      ElementsAre(HasSubstr("unit_id: 0 is out of range [1, 247]")));
  EXPECT_THAT(
      ParseDevice("[[devices]]\ndriver = \"modbus-tcp\"\naddress = \"h\"\nunit_id = 0\n").errors,
      IsEmpty());
}

TEST(ModbusConfigTest, RejectsBaudRatesLibmodbusWouldTurnInto9600) {
  EXPECT_THAT(
      ParseDevice("[[devices]]\ndriver = \"modbus-rtu\"\nserial = \"/dev/x\"\nbaud = 2000000\n")
          .errors,
      ElementsAre(HasSubstr("baud")));
  EXPECT_THAT(
      ParseDevice("[[devices]]\ndriver = \"modbus-rtu\"\nserial = \"/dev/x\"\nbaud = 115200\n")
          .errors,
      IsEmpty());
}

TEST(ModbusConfigTest, BoolOnlyOnBitsAndBitsOnlyBool) {
  const Parsed p = ParseDevice(R"([[devices]]
driver = "modbus-tcp"
address = "127.0.0.1"
[[devices.tags]]
register = "holding:3"
type = "bool"
[[devices.tags]]
register = "coil:4"
type = "uint16"
[[devices.tags]]
register = "discrete:5"
word_order = "CDAB"
scale = 2
)");
  EXPECT_THAT(p.errors,
              ElementsAre("test.toml:6:8: devices[0].tags[0].type: holding:3 is a 16-bit "
                          "register: bool needs a coil or discrete input",
                          "test.toml:9:8: devices[0].tags[1].type: coil:4 is a single bit: its "
                          "type must be bool",
                          "test.toml:12:14: devices[0].tags[2].word_order: applies to registers "
                          "only, not to coils or discrete inputs",
                          "test.toml:13:9: devices[0].tags[2].scale: applies to registers only, "
                          "not to coils or discrete inputs"));
}

TEST(ModbusConfigTest, RejectsUnknownTypeWordOrderAndBadScale) {
  const Parsed p = ParseDevice(R"([[devices]]
driver = "modbus-tcp"
address = "127.0.0.1"
[[devices.tags]]
register = "holding:3"
type = "float16"
word_order = "ADCB"
scale = 0
offset = nan
)");
  EXPECT_THAT(p.errors, ElementsAre(HasSubstr("tags[0].type: unknown type 'float16'"),
                                    HasSubstr("tags[0].word_order: unknown word order 'ADCB'"),
                                    HasSubstr("tags[0].scale: must be a finite, non-zero number"),
                                    HasSubstr("tags[0].offset: must be a finite number")));
}

TEST(ModbusConfigTest, RejectsBadAddresses) {
  for (const char* address : {"127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:", ":502", "::1", "[::1",
                              "[::1]x", "host:50a"}) {
    SCOPED_TRACE(address);
    const Parsed p = ParseDevice(
        fmt::format("[[devices]]\ndriver = \"modbus-tcp\"\naddress = \"{}\"\n", address));
    EXPECT_THAT(p.errors, ElementsAre(HasSubstr("test.toml:3:11: devices[0].address: ")));
  }
}

TEST(ModbusConfigTest, RejectsKeysOfTheOtherTransport) {
  const Parsed tcp = ParseDevice(R"([[devices]]
driver = "modbus-tcp"
address = "127.0.0.1"
baud = 9600
)");
  EXPECT_THAT(tcp.errors, ElementsAre("test.toml:4:8: devices[0].baud: only for driver = "
                                      "\"modbus-rtu\""));
  const Parsed rtu = ParseDevice(R"([[devices]]
driver = "modbus-rtu"
serial = "/dev/ttyUSB0"
address = "127.0.0.1"
parity = "X"
baud = 12345
)");
  EXPECT_THAT(rtu.errors,
              ElementsAre(HasSubstr("baud: 12345 is not a standard baud rate"),
                          HasSubstr("parity: 'X' is not a parity"),
                          "test.toml:4:11: devices[0].address: only for driver = \"modbus-tcp\""));
}

TEST(ModbusConfigTest, RequiresDriverAddressSerialAndRegister) {
  EXPECT_THAT(ParseDevice("[[devices]]\naddress = \"h\"\n").errors,
              ElementsAre(HasSubstr("devices[0].driver: missing required key")));
  EXPECT_THAT(ParseDevice("[[devices]]\ndriver = \"modbus-tcp\"\n").errors,
              ElementsAre(HasSubstr("devices[0].address: missing required key")));
  EXPECT_THAT(ParseDevice("[[devices]]\ndriver = \"modbus-rtu\"\n").errors,
              ElementsAre(HasSubstr("devices[0].serial: missing required key")));
  EXPECT_THAT(ParseDevice("[[devices]]\ndriver = \"opcua\"\naddress = \"h\"\n").errors,
              ElementsAre(HasSubstr("devices[0].driver: 'opcua' is not a Modbus driver")));
  const Parsed p = ParseDevice(
      "[[devices]]\ndriver = \"modbus-tcp\"\naddress = \"h\"\n[[devices.tags]]\ntype = "
      "\"int16\"\n");
  EXPECT_THAT(p.errors,
              ElementsAre(HasSubstr("devices[0].tags[0].register: missing required key")));
  EXPECT_THAT(p.config.tags, SizeIs(1));  // one entry per table, even with errors
}

TEST(ModbusConfigTest, KeyListsCoverEveryKeyRead) {
  auto doc = ConfigDocument::Parse(R"([[devices]]
driver = "modbus-rtu"
serial = "/dev/ttyUSB0"
baud = 9600
parity = "E"
data_bits = 8
stop_bits = 1
unit_id = 3
timeout_ms = 200
max_gap = 2
[[devices.tags]]
register = "holding:1"
type = "int32"
word_order = "BADC"
scale = 2.5
offset = 1
)",
                                   "test.toml");
  ASSERT_THAT(doc, IsOk());
  const ConfigTable device = (*doc)->root().GetTableArray("devices")[0];
  device.RejectUnknownKeys(ModbusDeviceKeys());
  device.GetTableArray("tags")[0].RejectUnknownKeys(ModbusTagKeys());
  EXPECT_THAT((*doc)->ToStatus(), IsOk());
  EXPECT_THAT(ModbusDeviceKeys(), Contains("tags"));
  (void)ParseModbusDevice(device);
  EXPECT_THAT((*doc)->ToStatus(), IsOk());
}

TEST(ModbusConfigTest, ValidateRejectsConfigsBuiltWrongInCode) {
  ModbusDeviceConfig config;
  config.host = "127.0.0.1";
  EXPECT_THAT(ValidateModbusDevice(config), IsOk());
  ModbusTag tag;
  tag.type = ValueType::kBool;  // on a holding register
  config.tags = {tag};
  EXPECT_THAT(ValidateModbusDevice(config),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("tag 0 (holding:0)")));
  tag.type = ValueType::kString;
  config.tags = {tag};
  EXPECT_THAT(ValidateModbusDevice(config), StatusIs(StatusCode::kInvalidArgument));
  tag.type = ValueType::kDouble;
  tag.address = 65533;
  config.tags = {tag};
  EXPECT_THAT(ValidateModbusDevice(config),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("runs past register 65535")));
  config.tags.clear();
  config.host.clear();
  EXPECT_THAT(ValidateModbusDevice(config), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kiln::drivers::modbus
