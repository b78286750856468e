#include "drivers/modbus/modbus_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "drivers/modbus/codec.h"
#include "drivers/modbus/testing/loopback_server.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::modbus {
namespace {

using contract::Quality;
using contract::Sample;
using contract::Value;
using contract::ValueType;
using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::SizeIs;

namespace st = contract::status;

ModbusTag Tag(RegisterKind kind, uint16_t address, ValueType type,
              WordOrder order = WordOrder::kABCD) {
  ModbusTag tag;
  tag.kind = kind;
  tag.address = address;
  tag.type = type;
  tag.word_order = order;
  return tag;
}

ModbusTag Holding(uint16_t address, ValueType type = ValueType::kUInt16) {
  return Tag(RegisterKind::kHoldingRegister, address, type);
}

class ModbusDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = LoopbackServer::Start();
    ASSERT_THAT(server, IsOk());
    server_ = std::move(server).value();
  }

  // A TCP device on the loopback server with `tags`, numbered 100, 101, ...
  ModbusDeviceConfig Config(std::vector<ModbusTag> tags) const {
    ModbusDeviceConfig config;
    config.host = "127.0.0.1";
    config.port = server_->port();
    config.timeout = std::chrono::milliseconds(200);
    for (size_t i = 0; i < tags.size(); ++i) tags[i].id = static_cast<contract::TagId>(100 + i);
    config.tags = std::move(tags);
    return config;
  }

  std::unique_ptr<ModbusDriver> NewDriver(const ModbusDeviceConfig& config) {
    auto driver = ModbusDriver::Create(config, clock_, Logger(sink_, "modbus"));
    EXPECT_THAT(driver, IsOk());
    return driver.ok() ? std::move(driver).value() : nullptr;
  }

  std::vector<Sample> ReadAllOrDie(ModbusDriver& driver) {
    auto samples = driver.ReadAll();
    EXPECT_THAT(samples, IsOk());
    return samples.ok() ? std::move(samples).value() : std::vector<Sample>{};
  }

  FakeClock clock_;
  NullSink sink_;
  std::unique_ptr<LoopbackServer> server_;
};

TEST_F(ModbusDriverTest, DecodesEveryTypeEndToEnd) {
  server_->SetRegisters(
      RegisterKind::kHoldingRegister, 0,
      std::vector<uint16_t>{0x42F6, 0xE979, 0xE979, 0x42F6, 0xFFFF, 0xFFFE, 0x1DC0});
  server_->SetRegisters(
      RegisterKind::kHoldingRegister, 10,
      std::vector<uint16_t>{0x405E, 0xDD2F, 0x1A9F, 0xBE77, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE});
  server_->SetRegister(RegisterKind::kInputRegister, 0, 250);
  server_->SetBit(RegisterKind::kCoil, 3, true);
  server_->SetBit(RegisterKind::kDiscreteInput, 7, true);

  ModbusTag scaled = Tag(RegisterKind::kInputRegister, 0, ValueType::kUInt16);
  scaled.scale = 0.1;
  scaled.offset = -5;
  const std::vector<ModbusTag> tags = {
      Holding(0, ValueType::kFloat),
      Tag(RegisterKind::kHoldingRegister, 2, ValueType::kFloat, WordOrder::kCDAB),
      Holding(4, ValueType::kInt16),
      Holding(5, ValueType::kInt32),
      Holding(10, ValueType::kDouble),
      Holding(14, ValueType::kInt64),
      scaled,
      Tag(RegisterKind::kCoil, 3, ValueType::kBool),
      Tag(RegisterKind::kCoil, 4, ValueType::kBool),
      Tag(RegisterKind::kDiscreteInput, 7, ValueType::kBool),
  };
  auto driver = NewDriver(Config(tags));
  ASSERT_NE(driver, nullptr);
  clock_.Advance(std::chrono::seconds(5));
  const std::vector<Sample> samples = ReadAllOrDie(*driver);
  ASSERT_THAT(samples, SizeIs(tags.size()));
  for (size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(samples[i].tag, 100 + i);
    EXPECT_EQ(samples[i].quality, st::kGood) << "tag " << i;
    EXPECT_EQ(samples[i].source_time, clock_.Now());
  }
  EXPECT_EQ(samples[0].value, Value(123.456f));
  EXPECT_EQ(samples[1].value, Value(123.456f));
  EXPECT_EQ(samples[2].value, Value(int16_t{-1}));
  EXPECT_EQ(samples[3].value, Value(int32_t{-123456}));
  EXPECT_EQ(samples[4].value, Value(123.456));
  EXPECT_EQ(samples[5].value, Value(int64_t{-2}));
  ASSERT_EQ(samples[6].value.type(), ValueType::kDouble);
  EXPECT_DOUBLE_EQ(*samples[6].value.get_if<double>(), 20.0);
  EXPECT_EQ(samples[7].value, Value(true));
  EXPECT_EQ(samples[8].value, Value(false));
  EXPECT_EQ(samples[9].value, Value(true));
  // max_gap 0 keeps holding 7..9 unread: holding 0..6, holding 10..17, input 0, coils 3..4,
  // discrete 7.
  EXPECT_EQ(driver->planned_requests(), 5u);
  EXPECT_EQ(driver->stats().requests, 5u);
  EXPECT_EQ(server_->requests(), 5u);
}

TEST_F(ModbusDriverTest, IssuesExactlyThePlannedRequests) {
  std::vector<ModbusTag> tags;
  std::vector<uint16_t> values;
  for (uint16_t a = 0; a < 1000; ++a) {
    tags.push_back(Holding(a));
    values.push_back(static_cast<uint16_t>(a * 7));
  }
  server_->SetRegisters(RegisterKind::kHoldingRegister, 0, values);
  const ModbusDeviceConfig config = Config(tags);
  auto driver = NewDriver(config);
  ASSERT_NE(driver, nullptr);
  EXPECT_EQ(driver->planned_requests(), PlanReads(config.tags, PlanOptions{}).size());
  EXPECT_EQ(driver->planned_requests(), 8u);
  for (int round = 1; round <= 3; ++round) {
    const std::vector<Sample> samples = ReadAllOrDie(*driver);
    ASSERT_THAT(samples, SizeIs(1000));
    for (uint16_t a = 0; a < 1000; ++a) {
      ASSERT_EQ(samples[a].value, Value(static_cast<uint16_t>(a * 7))) << a;
    }
    EXPECT_EQ(driver->stats().requests, 8u * round);
    EXPECT_EQ(server_->requests(), 8u * round);
  }
  EXPECT_EQ(driver->stats().connects, 1u);
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(ModbusDriverTest, IllegalAddressBlanksOnlyThatTagAfterTheSplit) {
  std::vector<ModbusTag> tags;
  for (uint16_t a = 0; a < 10; ++a) {
    tags.push_back(Holding(a));
    server_->SetRegister(RegisterKind::kHoldingRegister, a, static_cast<uint16_t>(a + 1));
  }
  server_->InjectException(RegisterKind::kHoldingRegister, 5, kIllegalDataAddress);
  auto driver = NewDriver(Config(tags));
  ASSERT_NE(driver, nullptr);
  ASSERT_EQ(driver->planned_requests(), 1u);

  for (int round = 0; round < 2; ++round) {
    const std::vector<Sample> samples = ReadAllOrDie(*driver);
    ASSERT_THAT(samples, SizeIs(10));
    for (uint16_t a = 0; a < 10; ++a) {
      if (a == 5) {
        EXPECT_EQ(samples[a].quality, st::kBadNodeIdUnknown);
        EXPECT_TRUE(samples[a].value.is_null());
      } else {
        EXPECT_EQ(samples[a].quality, st::kGood) << a;
        EXPECT_EQ(samples[a].value, Value(static_cast<uint16_t>(a + 1)));
      }
    }
  }
  // First read: the block, then its 10 tags one by one; second read: 0..4, 5, 6..9.
  const std::vector<ReadRequest> plan = driver->plan();
  ASSERT_THAT(plan, SizeIs(3));
  EXPECT_EQ(plan[0].address, 0);
  EXPECT_EQ(plan[0].count, 5);
  EXPECT_EQ(plan[1].address, 5);
  EXPECT_EQ(plan[1].count, 1);
  EXPECT_EQ(plan[2].address, 6);
  EXPECT_EQ(plan[2].count, 4);
  EXPECT_EQ(driver->stats().requests, 1u + 10u + 3u);
  EXPECT_EQ(driver->stats().splits, 1u);
  EXPECT_EQ(driver->stats().exceptions, 1u + 1u + 1u);
}

TEST_F(ModbusDriverTest, RunRefusedAgainSplitsIntoSingleTags) {
  std::vector<ModbusTag> tags;
  for (uint16_t a = 0; a < 6; ++a) tags.push_back(Holding(a));
  server_->InjectException(RegisterKind::kHoldingRegister, 5, kIllegalDataAddress);
  auto driver = NewDriver(Config(tags));
  ASSERT_NE(driver, nullptr);
  ReadAllOrDie(*driver);
  ASSERT_EQ(driver->planned_requests(), 2u);  // 0..4 and 5

  server_->InjectException(RegisterKind::kHoldingRegister, 2, kIllegalDataAddress);
  const std::vector<Sample> samples = ReadAllOrDie(*driver);
  EXPECT_EQ(samples[2].quality, st::kBadNodeIdUnknown);
  EXPECT_EQ(samples[5].quality, st::kBadNodeIdUnknown);
  for (int a : {0, 1, 3, 4}) EXPECT_EQ(samples[a].quality, st::kGood) << a;
  EXPECT_EQ(driver->planned_requests(), 6u);
  EXPECT_EQ(driver->stats().splits, 2u);
}

TEST_F(ModbusDriverTest, MissingRegisterInABridgedGapRejoinsTheTagsWithoutIt) {
  ModbusDeviceConfig config = Config({Holding(0), Holding(4)});
  config.max_gap = 3;
  server_->InjectException(RegisterKind::kHoldingRegister, 2, kIllegalDataAddress);
  server_->SetRegister(RegisterKind::kHoldingRegister, 4, 44);
  auto driver = NewDriver(config);
  ASSERT_NE(driver, nullptr);
  ASSERT_EQ(driver->planned_requests(), 1u);
  const std::vector<Sample> samples = ReadAllOrDie(*driver);
  EXPECT_EQ(samples[0].quality, st::kGood);
  EXPECT_EQ(samples[1].quality, st::kGood);
  EXPECT_EQ(samples[1].value, Value(uint16_t{44}));
  EXPECT_EQ(driver->planned_requests(), 2u);
}

TEST_F(ModbusDriverTest, MapsExceptionsToQualitiesOfTheWholeRequest) {
  const std::vector<std::pair<uint8_t, Quality>> cases = {
      {kIllegalFunction, st::kBadNotSupported},
      {kIllegalDataValue, st::kBadOutOfRange},
      {kServerDeviceFailure, st::kBadDeviceFailure},
      {kAcknowledge, Quality(0x80040000)},
      {kServerDeviceBusy, Quality(0x80040000)},
      {kGatewayPathUnavailable, st::kBadNoCommunication},
      {kGatewayTargetFailedToRespond, st::kBadNoCommunication},
  };
  auto driver =
      NewDriver(Config({Holding(0), Holding(1), Tag(RegisterKind::kCoil, 0, ValueType::kBool)}));
  ASSERT_NE(driver, nullptr);
  for (const auto& [code, quality] : cases) {
    SCOPED_TRACE(ExceptionName(code));
    server_->InjectException(RegisterKind::kHoldingRegister, 1, code);
    clock_.Advance(std::chrono::milliseconds(10));
    const std::vector<Sample> samples = ReadAllOrDie(*driver);
    EXPECT_EQ(samples[0].quality, quality);
    EXPECT_EQ(samples[1].quality, quality);
    EXPECT_TRUE(samples[0].value.is_null());
    EXPECT_EQ(samples[0].source_time, clock_.Now());
    EXPECT_EQ(samples[2].quality, st::kGood);  // the coil request is not affected
  }
  EXPECT_EQ(driver->planned_requests(), 2u);  // only exception 02 splits
  EXPECT_EQ(driver->stats().exceptions, cases.size());
  EXPECT_TRUE(driver->connected());
}

TEST_F(ModbusDriverTest, BadResponseMarksItsTagsAndReconnects) {
  server_->SetRegister(RegisterKind::kInputRegister, 0, 9);
  server_->InjectBadResponse(RegisterKind::kHoldingRegister, 0);
  auto driver =
      NewDriver(Config({Holding(0), Tag(RegisterKind::kInputRegister, 0, ValueType::kUInt16)}));
  ASSERT_NE(driver, nullptr);
  const std::vector<Sample> samples = ReadAllOrDie(*driver);
  EXPECT_EQ(samples[0].quality, st::kBadCommunicationError);
  EXPECT_TRUE(samples[0].value.is_null());
  EXPECT_EQ(samples[1].quality, st::kGood);
  EXPECT_EQ(samples[1].value, Value(uint16_t{9}));
  EXPECT_EQ(driver->stats().bad_responses, 1u);
  EXPECT_EQ(driver->stats().connects, 2u);

  server_->ClearFaults();
  EXPECT_EQ(ReadAllOrDie(*driver)[0].quality, st::kGood);
}

TEST_F(ModbusDriverTest, StoppedServerIsUnavailableAndRestartReconnects) {
  server_->SetRegister(RegisterKind::kHoldingRegister, 0, 42);
  auto driver = NewDriver(Config({Holding(0)}));
  ASSERT_NE(driver, nullptr);
  ReadAllOrDie(*driver);

  server_->Stop();
  EXPECT_THAT(driver->ReadAll(),
              StatusIs(StatusCode::kUnavailable, HasSubstr("connection lost during FC3")));
  EXPECT_FALSE(driver->connected());
  EXPECT_THAT(driver->ReadAll(), StatusIs(StatusCode::kUnavailable,
                                          AllOf(HasSubstr(server_->address()),
                                                HasSubstr("cannot connect: Connection refused"))));

  ASSERT_THAT(server_->Restart(), IsOk());
  const std::vector<Sample> samples = ReadAllOrDie(*driver);
  EXPECT_EQ(samples[0].value, Value(uint16_t{42}));
  EXPECT_EQ(driver->stats().connects, 2u);
  EXPECT_EQ(driver->stats().connection_errors, 2u);
}

TEST_F(ModbusDriverTest, SilentServerExceedsTheDeadlineThenRecovers) {
  auto driver = NewDriver(Config({Holding(0)}));
  ASSERT_NE(driver, nullptr);
  server_->SetSilent(true);
  EXPECT_THAT(driver->ReadAll(),
              StatusIs(StatusCode::kDeadlineExceeded,
                       HasSubstr(server_->address() + ": no answer to FC3 holding:0..0 within "
                                                      "200 ms")));
  EXPECT_FALSE(driver->connected());
  EXPECT_EQ(driver->stats().timeouts, 1u);

  server_->SetSilent(false);
  EXPECT_THAT(driver->ReadAll(), IsOk());
  EXPECT_EQ(driver->stats().connects, 2u);
}

TEST_F(ModbusDriverTest, DisconnectThenReadAllReconnects) {
  auto driver = NewDriver(Config({Holding(0)}));
  ASSERT_NE(driver, nullptr);
  ReadAllOrDie(*driver);
  EXPECT_TRUE(driver->connected());
  driver->Disconnect();
  EXPECT_FALSE(driver->connected());
  ReadAllOrDie(*driver);
  EXPECT_EQ(driver->stats().connects, 2u);
}

TEST_F(ModbusDriverTest, DeviceWithoutTagsConnectsAndReadsNothing) {
  auto driver = NewDriver(Config({}));
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(ReadAllOrDie(*driver), SizeIs(0));
  EXPECT_EQ(driver->stats().requests, 0u);
}

TEST_F(ModbusDriverTest, CreateRejectsInvalidConfig) {
  EXPECT_THAT(
      ModbusDriver::Create(Config({Holding(0, ValueType::kBool)}), clock_, Logger(sink_, "modbus")),
      StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(ModbusDriverTest, RtuDeviceThatCannotBeOpenedIsUnavailable) {
  ModbusDeviceConfig config;
  config.transport = Transport::kRtu;
  config.serial.device = "/nonexistent/ttyKILN0";
  config.tags = {Holding(0)};
  auto driver = NewDriver(config);
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->ReadAll(),
              StatusIs(StatusCode::kUnavailable,
                       HasSubstr("/nonexistent/ttyKILN0: cannot connect: No such file")));
  EXPECT_FALSE(driver->connected());
}

ModbusTag Coil(uint16_t address) { return Tag(RegisterKind::kCoil, address, ValueType::kBool); }

TEST_F(ModbusDriverTest, WritesEveryRegisterTypeAndReadsItBack) {
  struct Case {
    ModbusTag tag;
    Value value;
    std::vector<uint16_t> registers;  // what the device holds afterwards
  };
  const std::vector<Case> cases = {
      {Holding(0, ValueType::kInt16), Value(int16_t{-5}), {0xFFFB}},
      {Holding(1, ValueType::kUInt16), Value(uint16_t{65535}), {0xFFFF}},
      {Holding(2, ValueType::kInt32), Value(int32_t{-123456}), {0xFFFE, 0x1DC0}},
      {Tag(RegisterKind::kHoldingRegister, 4, ValueType::kFloat, WordOrder::kABCD),
       Value(123.456f),
       {0x42F6, 0xE979}},
      {Tag(RegisterKind::kHoldingRegister, 6, ValueType::kFloat, WordOrder::kCDAB),
       Value(123.456f),
       {0xE979, 0x42F6}},
      {Tag(RegisterKind::kHoldingRegister, 8, ValueType::kFloat, WordOrder::kBADC),
       Value(123.456f),
       {0xF642, 0x79E9}},
      {Tag(RegisterKind::kHoldingRegister, 10, ValueType::kFloat, WordOrder::kDCBA),
       Value(123.456f),
       {0x79E9, 0xF642}},
      {Holding(12, ValueType::kDouble), Value(123.456), {0x405E, 0xDD2F, 0x1A9F, 0xBE77}},
      {Tag(RegisterKind::kHoldingRegister, 16, ValueType::kDouble, WordOrder::kDCBA),
       Value(123.456),
       {0x77BE, 0x9F1A, 0x2FDD, 0x5E40}},
      {Holding(20, ValueType::kInt64), Value(int64_t{-2}), {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE}},
  };
  std::vector<ModbusTag> tags;
  for (const Case& c : cases) tags.push_back(c.tag);
  auto driver = NewDriver(Config(tags));
  ASSERT_NE(driver, nullptr);

  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(FormatRegister(c.tag.kind, c.tag.address));
    EXPECT_THAT(driver->WriteAndReadBack(static_cast<contract::TagId>(100 + i), c.value),
                IsOkAndHolds(Eq(c.value)));
    for (size_t r = 0; r < c.registers.size(); ++r) {
      EXPECT_EQ(server_->GetRegister(RegisterKind::kHoldingRegister,
                                     static_cast<uint16_t>(c.tag.address + r)),
                c.registers[r])
          << "register " << r;
    }
  }
  // One-register tags take FC6, wider ones FC16; each write is read back with FC3 alone.
  EXPECT_EQ(server_->requests(6), 2u);
  EXPECT_EQ(server_->requests(16), cases.size() - 2);
  EXPECT_EQ(server_->requests(3), cases.size());
  EXPECT_EQ(driver->stats().writes, cases.size());
  EXPECT_EQ(driver->requests_sent(), 2 * cases.size());
  EXPECT_EQ(driver->stats().connects, 1u);

  // A poll sees what was written.
  const std::vector<Sample> samples = ReadAllOrDie(*driver);
  ASSERT_THAT(samples, SizeIs(cases.size()));
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(samples[i].value, cases[i].value) << i;
}

TEST_F(ModbusDriverTest, ConvertsNumbersOfAnotherTypeToTheRawType) {
  auto driver = NewDriver(Config({Holding(0, ValueType::kInt16), Holding(1, ValueType::kFloat),
                                  Holding(3, ValueType::kUInt32)}));
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->WriteAndReadBack(100, Value(-7.0)), IsOkAndHolds(Eq(Value(int16_t{-7}))));
  EXPECT_THAT(driver->WriteAndReadBack(101, Value(int32_t{3})), IsOkAndHolds(Eq(Value(3.0f))));
  EXPECT_THAT(driver->WriteAndReadBack(102, Value(int64_t{70000})),
              IsOkAndHolds(Eq(Value(uint32_t{70000}))));
  EXPECT_EQ(server_->GetRegister(RegisterKind::kHoldingRegister, 0), 0xFFF9);
}

TEST_F(ModbusDriverTest, WritesACoilWithFC5AndReadsItBack) {
  auto driver = NewDriver(Config({Coil(3)}));
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->WriteAndReadBack(100, Value(true)), IsOkAndHolds(Eq(Value(true))));
  EXPECT_TRUE(server_->GetBit(RegisterKind::kCoil, 3));
  EXPECT_THAT(driver->WriteAndReadBack(100, Value(int32_t{0})), IsOkAndHolds(Eq(Value(false))));
  EXPECT_FALSE(server_->GetBit(RegisterKind::kCoil, 3));
  EXPECT_EQ(server_->requests(5), 2u);
  EXPECT_EQ(server_->requests(1), 2u);
}

TEST_F(ModbusDriverTest, ScaledTagWritesTheRawValueAndReadsBackTheScaledOne) {
  ModbusTag temperature = Holding(0, ValueType::kUInt16);
  temperature.scale = 0.1;
  temperature.offset = -5;
  ModbusTag halves = Holding(1, ValueType::kInt16);
  halves.scale = 0.5;
  auto driver = NewDriver(Config({temperature, halves}));
  ASSERT_NE(driver, nullptr);

  auto read_back = driver->WriteAndReadBack(100, Value(20.0));
  ASSERT_THAT(read_back, IsOk());
  ASSERT_EQ(read_back->type(), ValueType::kDouble);
  EXPECT_DOUBLE_EQ(*read_back->get_if<double>(), 20.0);
  EXPECT_EQ(server_->GetRegister(RegisterKind::kHoldingRegister, 0), 250);

  // 2.3 / 0.5 = 4.6 rounds to raw 5: the read-back shows what the device holds.
  read_back = driver->WriteAndReadBack(101, Value(2.3));
  ASSERT_THAT(read_back, IsOk());
  EXPECT_EQ(*read_back, Value(2.5));
  EXPECT_EQ(server_->GetRegister(RegisterKind::kHoldingRegister, 1), 5);
}

TEST_F(ModbusDriverTest, InputRegistersAndDiscreteInputsCannotBeWritten) {
  auto driver = NewDriver(Config({Tag(RegisterKind::kInputRegister, 0, ValueType::kUInt16),
                                  Tag(RegisterKind::kDiscreteInput, 7, ValueType::kBool)}));
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->WriteAndReadBack(100, Value(uint16_t{1})),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("input:0 cannot be written")));
  EXPECT_THAT(driver->WriteAndReadBack(101, Value(true)),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("discrete:7 cannot be written")));
  // Refused before anything is sent, or even connected.
  EXPECT_EQ(server_->connections(), 0u);
  EXPECT_EQ(driver->requests_sent(), 0u);
}

TEST_F(ModbusDriverTest, ValuesThatDoNotFitTheTagAreInvalidArguments) {
  ModbusTag scaled = Holding(10, ValueType::kUInt16);
  scaled.scale = 0.1;
  auto driver = NewDriver(
      Config({Holding(0, ValueType::kInt16), Holding(1, ValueType::kFloat), scaled, Coil(0)}));
  ASSERT_NE(driver, nullptr);
  const std::vector<std::pair<contract::TagId, Value>> cases = {
      {100, Value(int32_t{40000})},   // above int16
      {100, Value(int32_t{-32769})},  // below int16
      {100, Value(2.5)},              // a fraction for an unscaled integer
      {100, Value("12")},             // a string
      {100, Value()},                 // null
      {101, Value(1e39)},             // beyond float32
      {101, Value(std::nan(""))},     // not a number
      {101, Value(HUGE_VAL)},         // infinity
      {102, Value(6553.6)},           // raw 65536 after the scale
      {102, Value(-0.1)},             // raw -1 after the scale
      {103, Value(int32_t{2})},       // a coil takes 0 or 1
      {103, Value(0.5)},              //
  };
  for (const auto& [id, value] : cases) {
    SCOPED_TRACE(value.ToString());
    EXPECT_THAT(driver->WriteAndReadBack(id, value), StatusIs(StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(
      driver->WriteAndReadBack(100, Value(int32_t{40000})),
      StatusIs(StatusCode::kInvalidArgument, Eq("holding:0: 40000 is out of range for int16")));
  EXPECT_THAT(driver->WriteAndReadBack(102, Value(6553.6)),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("holding:10: 6553.6 is out of range for uint16 (raw value 65536)")));
  EXPECT_THAT(
      driver->WriteAndReadBack(100, Value("12")),
      StatusIs(StatusCode::kInvalidArgument, Eq("holding:0 (int16) cannot take a string value")));
  EXPECT_EQ(server_->connections(), 0u);
  EXPECT_EQ(driver->requests_sent(), 0u);
}

TEST_F(ModbusDriverTest, RefusedWriteIsAbortedNamingTheException) {
  server_->SetRegister(RegisterKind::kHoldingRegister, 5, 9);
  server_->InjectException(RegisterKind::kHoldingRegister, 5, kIllegalDataAddress,
                           FaultScope::kWrites);
  server_->InjectException(RegisterKind::kHoldingRegister, 7, kIllegalDataValue,
                           FaultScope::kWrites);
  server_->InjectException(RegisterKind::kCoil, 1, kServerDeviceFailure, FaultScope::kWrites);
  auto driver =
      NewDriver(Config({Holding(5, ValueType::kInt16), Holding(6, ValueType::kFloat), Coil(1)}));
  ASSERT_NE(driver, nullptr);

  EXPECT_THAT(driver->WriteAndReadBack(100, Value(int16_t{3})),
              StatusIs(StatusCode::kAborted,
                       AllOf(HasSubstr(server_->address()),
                             HasSubstr("FC6 holding:5 refused: exception 02 illegal data "
                                       "address"))));
  EXPECT_THAT(driver->WriteAndReadBack(101, Value(1.5f)),
              StatusIs(StatusCode::kAborted,
                       HasSubstr("FC16 holding:6..7 refused: exception 03 illegal data value")));
  EXPECT_THAT(driver->WriteAndReadBack(102, Value(true)),
              StatusIs(StatusCode::kAborted,
                       HasSubstr("FC5 coil:1 refused: exception 04 server device failure")));
  EXPECT_EQ(server_->GetRegister(RegisterKind::kHoldingRegister, 5), 9);
  EXPECT_EQ(server_->requests(3), 0u);  // nothing to read back
  EXPECT_EQ(driver->stats().exceptions, 3u);
  // The device answered: the connection stays and the poll goes on.
  EXPECT_TRUE(driver->connected());
  const std::vector<Sample> samples = ReadAllOrDie(*driver);
  EXPECT_EQ(samples[0].value, Value(int16_t{9}));
  EXPECT_EQ(driver->stats().connects, 1u);
}

TEST_F(ModbusDriverTest, RefusedReadBackIsAbortedAfterTheWrite) {
  server_->InjectException(RegisterKind::kHoldingRegister, 5, kIllegalDataAddress,
                           FaultScope::kReads);
  auto driver = NewDriver(Config({Holding(5)}));
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(
      driver->WriteAndReadBack(100, Value(uint16_t{3})),
      StatusIs(StatusCode::kAborted,
               HasSubstr("holding:5 written, but the read-back FC3 holding:5..5 was refused: "
                         "exception 02 illegal data address")));
  EXPECT_EQ(server_->GetRegister(RegisterKind::kHoldingRegister, 5), 3);
  EXPECT_TRUE(driver->connected());
}

TEST_F(ModbusDriverTest, BadReadBackAnswerIsUnavailableAndReconnects) {
  server_->InjectBadResponse(RegisterKind::kHoldingRegister, 0);  // reads only
  auto driver = NewDriver(Config({Holding(0)}));
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->WriteAndReadBack(100, Value(uint16_t{8})),
              StatusIs(StatusCode::kUnavailable, HasSubstr("did not fit")));
  EXPECT_EQ(server_->GetRegister(RegisterKind::kHoldingRegister, 0), 8);
  EXPECT_FALSE(driver->connected());

  server_->ClearFaults();
  EXPECT_EQ(ReadAllOrDie(*driver)[0].value, Value(uint16_t{8}));
  EXPECT_EQ(driver->stats().connects, 2u);
}

TEST_F(ModbusDriverTest, UnknownTagIsNotFound) {
  auto driver = NewDriver(Config({Holding(0)}));
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->WriteAndReadBack(99, Value(uint16_t{1})),
              StatusIs(StatusCode::kNotFound, HasSubstr("no tag with id 99")));
  EXPECT_EQ(server_->connections(), 0u);
}

TEST_F(ModbusDriverTest, WriteConnectsFirstAndStoppedServerIsUnavailable) {
  auto driver = NewDriver(Config({Holding(0)}));
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->WriteAndReadBack(100, Value(uint16_t{1})),
              IsOkAndHolds(Eq(Value(uint16_t{1}))));
  EXPECT_EQ(driver->stats().connects, 1u);

  server_->Stop();
  EXPECT_THAT(
      driver->WriteAndReadBack(100, Value(uint16_t{2})),
      StatusIs(StatusCode::kUnavailable, HasSubstr("connection lost during FC6 holding:0")));
  EXPECT_FALSE(driver->connected());
  EXPECT_THAT(
      driver->WriteAndReadBack(100, Value(uint16_t{2})),
      StatusIs(StatusCode::kUnavailable, AllOf(HasSubstr(server_->address()),
                                               HasSubstr("cannot connect: Connection refused"))));

  ASSERT_THAT(server_->Restart(), IsOk());
  EXPECT_EQ(ReadAllOrDie(*driver)[0].value, Value(uint16_t{1}));
  EXPECT_THAT(driver->WriteAndReadBack(100, Value(uint16_t{2})),
              IsOkAndHolds(Eq(Value(uint16_t{2}))));
  EXPECT_EQ(driver->stats().connects, 2u);
}

TEST_F(ModbusDriverTest, SilentServerWriteExceedsTheDeadline) {
  auto driver = NewDriver(Config({Holding(0)}));
  ASSERT_NE(driver, nullptr);
  ReadAllOrDie(*driver);
  server_->SetSilent(true);
  EXPECT_THAT(driver->WriteAndReadBack(100, Value(uint16_t{1})),
              StatusIs(StatusCode::kDeadlineExceeded,
                       HasSubstr("no answer to FC6 holding:0 within 200 ms; the write may have "
                                 "taken effect")));
  EXPECT_FALSE(driver->connected());
  EXPECT_EQ(driver->stats().timeouts, 1u);

  server_->SetSilent(false);
  EXPECT_THAT(driver->ReadAll(), IsOk());
  EXPECT_EQ(driver->stats().connects, 2u);
}

}  // namespace
}  // namespace kiln::drivers::modbus
