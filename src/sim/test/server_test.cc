#include "sim/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <modbus/modbus.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "sim/simulator.h"
#include "testing/status_matchers.h"

namespace kiln::sim {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A plant of one TCP server on a free port, with a few kinds of registers.
constexpr std::string_view kPlant = R"(
[[servers]]
id = "press-3"
protocol = "tcp"
listen = "127.0.0.1:0"
  [[servers.registers]]
  register = "holding:0"
  type = "float32"
  signal = "constant"
  value = 123.456
  [[servers.registers]]
  register = "holding:2"
  type = "int32"
  word_order = "CDAB"
  signal = "constant"
  value = -123456
  [[servers.registers]]
  register = "holding:4"
  type = "int16"
  signal = "sine"
  offset = 100
  amplitude = 50
  period_s = 4
  [[servers.registers]]
  register = "holding:100"
  type = "uint16"
  signal = "ramp"
  min = 0
  max = 1000
  period_s = 10
  count = 10
  [[servers.registers]]
  register = "coil:0"
  type = "bool"
  signal = "step"
  values = [true, false]
  period_s = 1
)";

SimConfig ParseOrDie(std::string_view text) {
  auto config = ParseSimConfig(text, "test.toml");
  EXPECT_THAT(config, IsOk());
  return std::move(config).value();
}

Command MustParse(std::string_view line) {
  auto command = ParseCommand(line);
  EXPECT_THAT(command, IsOk());
  return std::move(command).value();
}

// A raw libmodbus client, independent of Kiln's driver.
class Client {
 public:
  explicit Client(uint16_t port) : ctx_(modbus_new_tcp("127.0.0.1", port)) {
    modbus_set_response_timeout(ctx_, 5, 0);
  }
  ~Client() {
    modbus_close(ctx_);
    modbus_free(ctx_);
  }
  bool Connect() { return modbus_connect(ctx_) == 0; }
  // The registers, or empty with errno_ set.
  std::vector<uint16_t> Read(int address, int count) {
    std::vector<uint16_t> regs(static_cast<size_t>(count));
    if (modbus_read_registers(ctx_, address, count, regs.data()) != count) {
      error_ = errno;
      return {};
    }
    return regs;
  }
  int error() const { return error_; }
  modbus_t* ctx() { return ctx_; }

 private:
  modbus_t* ctx_;
  int error_ = 0;
};

class ModbusServerTest : public ::testing::Test {
 protected:
  void StartPlant(std::string_view text = kPlant) {
    config_ = ParseOrDie(text);
    auto created = ModbusServer::Create(config_.servers[0], clock_, Logger(sink_, "sim"));
    ASSERT_THAT(created, IsOk());
    server_ = std::move(created).value();
    server_->Start();
    if (config_.servers[0].protocol != Protocol::kTcp) return;
    const std::string endpoint = server_->endpoint();
    port_ = static_cast<uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
    ASSERT_NE(port_, 0);
  }

  FakeClock clock_;
  NullSink sink_;
  SimConfig config_;
  std::unique_ptr<ModbusServer> server_;
  uint16_t port_ = 0;
};

TEST_F(ModbusServerTest, ServesEncodedRegistersToALibmodbusClient) {
  StartPlant();
  Client client(port_);
  ASSERT_TRUE(client.Connect());
  EXPECT_THAT(client.Read(0, 4), ElementsAre(0x42F6, 0xE979, 0x1DC0, 0xFFFE));
  // The sine starts at its offset; the ramp instances are shifted by a tenth of a period each.
  EXPECT_THAT(client.Read(4, 1), ElementsAre(100));
  EXPECT_THAT(client.Read(100, 3), ElementsAre(0, 100, 200));
  uint8_t coil = 0;
  ASSERT_EQ(modbus_read_bits(client.ctx(), 0, 1, &coil), 1);
  EXPECT_EQ(coil, 1);
}

TEST_F(ModbusServerTest, SignalsFollowTheInjectedClock) {
  StartPlant();
  Client client(port_);
  ASSERT_TRUE(client.Connect());
  clock_.Advance(std::chrono::seconds(1));  // a quarter of the sine's period
  ASSERT_THAT(server_->SyncForTest(), IsOk());
  EXPECT_THAT(client.Read(4, 1), ElementsAre(150));
  EXPECT_THAT(client.Read(100, 2), ElementsAre(100, 200));
  uint8_t coil = 1;
  ASSERT_EQ(modbus_read_bits(client.ctx(), 0, 1, &coil), 1);
  EXPECT_EQ(coil, 0);
}

TEST_F(ModbusServerTest, InjectsAnExceptionOnTheFaultedAddressOnly) {
  StartPlant();
  Client client(port_);
  ASSERT_TRUE(client.Connect());
  ASSERT_THAT(server_->Execute(MustParse("fault press-3 exception holding:3 2")), IsOk());
  EXPECT_THAT(client.Read(2, 2), ::testing::IsEmpty());
  EXPECT_EQ(client.error(), EMBXILADD);
  EXPECT_THAT(client.Read(0, 2), ElementsAre(0x42F6, 0xE979));
  ASSERT_THAT(server_->Execute(MustParse("fault press-3 exception holding:0 4")), IsOk());
  EXPECT_THAT(client.Read(0, 1), ::testing::IsEmpty());
  EXPECT_EQ(client.error(), EMBXSFAIL);
  ASSERT_THAT(server_->Execute(MustParse("clear press-3")), IsOk());
  EXPECT_THAT(client.Read(0, 4), ElementsAre(0x42F6, 0xE979, 0x1DC0, 0xFFFE));
}

TEST_F(ModbusServerTest, SetEncodesPerDefinitionAndHoldsTheValue) {
  StartPlant();
  Client client(port_);
  ASSERT_TRUE(client.Connect());
  ASSERT_THAT(server_->Execute(MustParse("set press-3 holding:2 -2")), IsOk());
  EXPECT_THAT(client.Read(2, 2), ElementsAre(0xFFFE, 0xFFFF));  // int32 CDAB
  ASSERT_THAT(server_->Execute(MustParse("set press-3 holding:4 -7")), IsOk());
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_THAT(server_->SyncForTest(), IsOk());
  EXPECT_THAT(client.Read(4, 1), ElementsAre(0xFFF9));  // no longer follows its sine
  // An address outside the config takes a raw uint16.
  ASSERT_THAT(server_->Execute(MustParse("set press-3 holding:500 0xBEEF")), IsOk());
  EXPECT_THAT(client.Read(500, 1), ElementsAre(0xBEEF));
  ASSERT_THAT(server_->Execute(MustParse("set press-3 coil:0 off")), IsOk());
  uint8_t coil = 1;
  ASSERT_EQ(modbus_read_bits(client.ctx(), 0, 1, &coil), 1);
  EXPECT_EQ(coil, 0);

  EXPECT_THAT(
      server_->Execute(MustParse("set press-3 holding:1 5")),
      StatusIs(StatusCode::kInvalidArgument, Eq("holding:1 is inside the float32 at holding:0")));
  EXPECT_THAT(server_->Execute(MustParse("set press-3 holding:4 40000")),
              StatusIs(StatusCode::kInvalidArgument, Eq("'40000' is out of range for int16")));
}

TEST_F(ModbusServerTest, AClientWriteTakesTheRegisterOverFromItsSignal) {
  StartPlant();
  Client client(port_);
  ASSERT_TRUE(client.Connect());
  ASSERT_EQ(modbus_write_register(client.ctx(), 101, 7), 1);
  clock_.Advance(std::chrono::seconds(3));
  ASSERT_THAT(server_->SyncForTest(), IsOk());
  EXPECT_THAT(client.Read(100, 3), ElementsAre(300, 7, 500));
}

// FC5, FC15 and FC16 as well as FC6: what the driver's write-and-read-back and the system
// tests rely on. A refused write leaves the register with its signal.
TEST_F(ModbusServerTest, ClientWritesOfEveryFunctionCodeHoldTheirValues) {
  StartPlant();
  Client client(port_);
  ASSERT_TRUE(client.Connect());
  const std::vector<uint16_t> ten = {0x4120, 0x0000};                    // float32 10.0, ABCD
  ASSERT_EQ(modbus_write_registers(client.ctx(), 0, 2, ten.data()), 2);  // FC16
  ASSERT_EQ(modbus_write_register(client.ctx(), 4, 0xFFF9), 1);          // FC6
  ASSERT_EQ(modbus_write_bit(client.ctx(), 0, 0), 1);                    // FC5
  const std::vector<uint8_t> bits = {1, 0, 1};
  ASSERT_EQ(modbus_write_bits(client.ctx(), 10, 3, bits.data()), 3);  // FC15
  ASSERT_THAT(server_->Execute(MustParse("fault press-3 exception holding:100 2")), IsOk());
  EXPECT_EQ(modbus_write_register(client.ctx(), 100, 999), -1);
  EXPECT_EQ(errno, EMBXILADD);
  ASSERT_THAT(server_->Execute(MustParse("clear press-3")), IsOk());

  // Two seconds on, the step coil would be on again and the ramp at 200.
  clock_.Advance(std::chrono::seconds(2));
  ASSERT_THAT(server_->SyncForTest(), IsOk());
  EXPECT_THAT(client.Read(0, 2), ElementsAre(0x4120, 0x0000));
  EXPECT_THAT(client.Read(4, 1), ElementsAre(0xFFF9));
  EXPECT_THAT(client.Read(100, 1), ElementsAre(200));
  std::vector<uint8_t> coils(13, 0xFF);
  ASSERT_EQ(modbus_read_bits(client.ctx(), 0, 13, coils.data()), 13);
  EXPECT_EQ(coils[0], 0);
  EXPECT_THAT(std::vector<uint8_t>(coils.begin() + 10, coils.end()), ElementsAre(1, 0, 1));
}

TEST_F(ModbusServerTest, FreezeStopsSignalsUntilCleared) {
  StartPlant();
  Client client(port_);
  ASSERT_TRUE(client.Connect());
  ASSERT_THAT(server_->Execute(MustParse("fault press-3 freeze")), IsOk());
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_THAT(server_->SyncForTest(), IsOk());
  EXPECT_THAT(client.Read(4, 1), ElementsAre(100));
  ASSERT_THAT(server_->Execute(MustParse("clear press-3")), IsOk());
  EXPECT_THAT(client.Read(4, 1), ElementsAre(150));
}

TEST_F(ModbusServerTest, DropClosesTheListenerAndClearReopensTheSamePort) {
  StartPlant();
  Client before(port_);
  ASSERT_TRUE(before.Connect());
  ASSERT_THAT(server_->Execute(MustParse("fault press-3 drop")), IsOk());
  EXPECT_THAT(before.Read(0, 1), ::testing::IsEmpty());  // the connection was closed
  Client refused(port_);
  EXPECT_FALSE(refused.Connect());
  ASSERT_THAT(server_->Execute(MustParse("clear press-3")), IsOk());
  Client after(port_);
  ASSERT_TRUE(after.Connect());
  EXPECT_THAT(after.Read(0, 2), ElementsAre(0x42F6, 0xE979));
}

TEST_F(ModbusServerTest, SilentKeepsTheConnectionButNeverAnswers) {
  StartPlant();
  Client client(port_);
  ASSERT_TRUE(client.Connect());
  ASSERT_THAT(server_->Execute(MustParse("fault press-3 silent")), IsOk());
  modbus_set_response_timeout(client.ctx(), 0, 200'000);
  EXPECT_THAT(client.Read(0, 1), ::testing::IsEmpty());
  EXPECT_EQ(client.error(), ETIMEDOUT);
  ASSERT_THAT(server_->Execute(MustParse("clear press-3")), IsOk());
  modbus_set_response_timeout(client.ctx(), 5, 0);
  // The same connection answers again; the request sent while silent was dropped, not queued.
  EXPECT_THAT(client.Read(0, 2), ElementsAre(0x42F6, 0xE979));
}

TEST_F(ModbusServerTest, ScriptedFaultsFollowTheClock) {
  std::string plant(kPlant);
  plant += R"(
  [[servers.faults]]
  kind = "exception"
  at_s = 2
  duration_s = 1
  register = "holding:0"
  code = 6
)";
  StartPlant(plant);
  Client client(port_);
  ASSERT_TRUE(client.Connect());
  EXPECT_THAT(client.Read(0, 1), ElementsAre(0x42F6));
  clock_.Advance(std::chrono::seconds(2));
  ASSERT_THAT(server_->SyncForTest(), IsOk());
  EXPECT_THAT(client.Read(0, 1), ::testing::IsEmpty());
  EXPECT_EQ(client.error(), EMBXSBUSY);
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_THAT(server_->SyncForTest(), IsOk());
  EXPECT_THAT(client.Read(0, 1), ElementsAre(0x42F6));
}

TEST_F(ModbusServerTest, ServesManyClientsAtOnce) {
  StartPlant();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->Connect());
  }
  for (int round = 0; round < 50; ++round) {
    for (auto& client : clients) EXPECT_THAT(client->Read(0, 1), ElementsAre(0x42F6));
  }
}

TEST_F(ModbusServerTest, RtuServerAnswersOnlyItsUnitOnAPseudoTerminal) {
  StartPlant(R"(
[[servers]]
id = "line"
protocol = "rtu"
serial = "pty"
unit_id = 7
  [[servers.registers]]
  register = "input:10"
  type = "float32"
  word_order = "BADC"
  value = 123.456
)");
  const std::string device = server_->endpoint();
  ASSERT_THAT(device, StartsWith("/dev/pts/"));
  modbus_t* ctx = modbus_new_rtu(device.c_str(), 19200, 'N', 8, 1);
  ASSERT_NE(ctx, nullptr);
  ASSERT_EQ(modbus_connect(ctx), 0);
  std::vector<uint16_t> regs(2);
  // Another unit gets no answer...
  modbus_set_slave(ctx, 3);
  modbus_set_response_timeout(ctx, 0, 200'000);
  EXPECT_EQ(modbus_read_input_registers(ctx, 10, 2, regs.data()), -1);
  EXPECT_EQ(errno, ETIMEDOUT);
  // ...and the next request to our unit is answered, not mistaken for that unit's reply.
  modbus_set_slave(ctx, 7);
  modbus_set_response_timeout(ctx, 5, 0);
  ASSERT_EQ(modbus_read_input_registers(ctx, 10, 2, regs.data()), 2);
  EXPECT_THAT(regs, ElementsAre(0xF642, 0x79E9));
  ASSERT_THAT(server_->Execute(MustParse("fault line drop")),
              StatusIs(StatusCode::kFailedPrecondition, Eq("drop applies to tcp servers only")));
  modbus_close(ctx);
  modbus_free(ctx);
}

TEST(SimulatorTest, AnswersControlLines) {
  FakeClock clock;
  NullSink sink;
  auto sim = Simulator::Create(ParseOrDie(kPlant), clock, Logger(sink, "sim"));
  ASSERT_THAT(sim, IsOk());
  (*sim)->Start();
  const std::vector<std::string> ready = (*sim)->ReadyLines();
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_THAT(ready[0], StartsWith("ready press-3 tcp 127.0.0.1:"));
  EXPECT_EQ((*sim)->HandleLine("set press-3 holding:10 42").text, "ok");
  EXPECT_EQ((*sim)->HandleLine("fault press-3 exception holding:10 2").text, "ok");
  EXPECT_EQ((*sim)->HandleLine("clear press-3").text, "ok");
  EXPECT_EQ((*sim)->HandleLine("set oven-9 holding:10 42").text, "error no server 'oven-9'");
  EXPECT_EQ((*sim)->HandleLine("bogus").text,
            "error unknown command 'bogus' (use set, fault, clear or quit)");
  const Simulator::Reply quit = (*sim)->HandleLine("quit");
  EXPECT_EQ(quit.text, "ok");
  EXPECT_TRUE(quit.quit);
  (*sim)->Stop();
  EXPECT_THAT((*sim)->HandleLine("clear press-3").text, HasSubstr("is not running"));
}

}  // namespace
}  // namespace kiln::sim
