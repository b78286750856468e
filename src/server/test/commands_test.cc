#include "server/commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "contract/sparkplug/payload.h"
#include "contract/value.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/testing/capturing_sink.h"
#include "core/testing/temp_dir.h"
#include "server/host.h"
#include "server/registry.h"
#include "testing/status_matchers.h"

namespace kiln::server {

inline void PrintTo(CommandState s, std::ostream* os) { *os << CommandStateName(s); }

namespace {

using contract::Value;
using ::kiln::testing::CapturingSink;
using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::kiln::testing::TempDir;
using sparkplug::DataType;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kT0 = 1700000000000;  // FakeClock's default start
constexpr const char* kTarget = "G/N/D";
constexpr const char* kDcmdTopic = "spBv1.0/G/DCMD/N/D";

std::string Show(const Value& v) {
  return std::string(contract::ValueTypeName(v.type())) + " " + v.ToString();
}

// A row of the audit table.
struct AuditRow {
  int64_t t_ms = 0;
  std::string who, action, command_id, target, metric, value, state, reason;
};

// A second, raw SQLite connection to the commands file, as an auditor would open it.
class RawDb {
 public:
  explicit RawDb(const std::string& file) {
    EXPECT_EQ(sqlite3_open(file.c_str(), &db_), SQLITE_OK) << file;
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Runs `sql`; "" when it succeeded, else SQLite's message.
  std::string Exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    std::string out = rc == SQLITE_OK ? "" : (error != nullptr ? error : "error");
    sqlite3_free(error);
    return out;
  }

  std::vector<AuditRow> Audit() {
    std::vector<AuditRow> rows;
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_,
                                 "SELECT t_ms, who, action, command_id, target, metric, value, "
                                 "state, reason FROM audit ORDER BY seq",
                                 -1, &s, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db_);
    auto text = [&](int col) {
      const auto* p = sqlite3_column_text(s, col);
      return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
    };
    while (s != nullptr && sqlite3_step(s) == SQLITE_ROW) {
      rows.push_back(AuditRow{sqlite3_column_int64(s, 0), text(1), text(2), text(3), text(4),
                              text(5), text(6), text(7), text(8)});
    }
    sqlite3_finalize(s);
    return rows;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::vector<std::string> Actions(const std::vector<AuditRow>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.action);
  return out;
}

class CommandServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = Registry::Open(dir_.path() + "/registry.db");
    ASSERT_THAT(r, IsOk());
    registry_ = std::move(*r);
    BirthNode();
    BirthD();
    BirthD2();
    service_ = Open();
    ASSERT_NE(service_, nullptr);
  }

  std::string file() const { return dir_.path() + "/commands.db"; }

  std::unique_ptr<CommandService> Open(CommandOptions options = {}) {
    auto s = CommandService::Open(
        file(), *registry_, clock_, Logger(sink_, "commands", LogLevel::kDebug),
        [this](const std::string& topic, const std::string& payload) {
          return Publish(topic, payload);
        },
        options);
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : nullptr;
  }

  // The recording PublishFn: every attempt counts; only successful ones are kept.
  Status Publish(const std::string& topic, const std::string& payload) {
    std::lock_guard lock(mu_);
    ++attempts_;
    if (!publish_status_.ok()) return publish_status_;
    sent_.emplace_back(topic, payload);
    return OkStatus();
  }
  size_t sent() {
    std::lock_guard lock(mu_);
    return sent_.size();
  }
  int attempts() {
    std::lock_guard lock(mu_);
    return attempts_;
  }
  void SetPublishStatus(Status s) {
    std::lock_guard lock(mu_);
    publish_status_ = std::move(s);
  }
  std::string SentTopic(size_t i) {
    std::lock_guard lock(mu_);
    return i < sent_.size() ? sent_[i].first : "<none>";
  }
  // The i-th published payload, decoded.
  sparkplug::Payload SentPayload(size_t i) {
    std::string bytes;
    {
      std::lock_guard lock(mu_);
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

  // Checks that message `i` is a command on `topic` writing `value` to `metric` of
  // `datatype`, for command `c`.
  void ExpectCommandMessage(size_t i, std::string_view topic, const Command& c, DataType datatype,
                            const Value& value) {
    SCOPED_TRACE("message " + std::to_string(i) + " for " + c.id);
    EXPECT_EQ(SentTopic(i), topic);
    const sparkplug::Payload p = SentPayload(i);
    EXPECT_EQ(p.timestamp, static_cast<uint64_t>(c.delivered_ms));
    ASSERT_EQ(p.metrics.size(), 1u);
    const sparkplug::Metric& m = p.metrics[0];
    EXPECT_EQ(m.name, c.metric);
    EXPECT_EQ(m.datatype, datatype);
    EXPECT_FALSE(m.is_null);
    EXPECT_TRUE(m.value == value) << Show(m.value) << " vs " << Show(value);
    ASSERT_EQ(m.properties.size(), 2u);
    EXPECT_EQ(m.properties[0].key, "kiln.commandId");
    EXPECT_EQ(m.properties[0].type, DataType::kString);
    EXPECT_TRUE(m.properties[0].value == Value(c.id)) << Show(m.properties[0].value);
    EXPECT_EQ(m.properties[1].key, "kiln.expiresAt");
    EXPECT_EQ(m.properties[1].type, DataType::kUInt64);
    EXPECT_TRUE(m.properties[1].value == Value(static_cast<uint64_t>(c.expires_ms)))
        << Show(m.properties[1].value);
  }

  MetricInfo* Declare(std::string node, std::string device, std::string name, DataType type) {
    auto m = std::make_unique<MetricInfo>();
    m->path = MetricPath(NodeKey{"G", node}, device, name);
    m->device = std::move(device);
    m->name = std::move(name);
    m->datatype = type;
    infos_.push_back(std::move(m));
    return infos_.back().get();
  }
  int64_t Now() const { return ToEpochMillis(clock_.Now()); }

  // NBIRTH of G/N: bdSeq, Speed (Int32), Node Control/Rebirth.
  void BirthNode() {
    std::vector<MetricInfo*> m = {Declare("N", "", "bdSeq", DataType::kInt64),
                                  Declare("N", "", "Speed", DataType::kInt32),
                                  Declare("N", "", "Node Control/Rebirth", DataType::kBoolean)};
    ASSERT_THAT(registry_->Birth(kNode, "", 1, m, Now()), IsOk());
  }
  // DBIRTH of G/N/D: Setpoint (Float), Count (Int16), Enable (Boolean), Mode (String),
  // Level (Double), Total (UInt64).
  void BirthD() {
    std::vector<MetricInfo*> m = {Declare("N", "D", "Setpoint", DataType::kFloat),
                                  Declare("N", "D", "Count", DataType::kInt16),
                                  Declare("N", "D", "Enable", DataType::kBoolean),
                                  Declare("N", "D", "Mode", DataType::kString),
                                  Declare("N", "D", "Level", DataType::kDouble),
                                  Declare("N", "D", "Total", DataType::kUInt64)};
    ASSERT_THAT(registry_->Birth(kNode, "D", 1, m, Now()), IsOk());
  }
  // DBIRTH of G/N/D2: Setpoint (Double).
  void BirthD2() {
    std::vector<MetricInfo*> m = {Declare("N", "D2", "Setpoint", DataType::kDouble)};
    ASSERT_THAT(registry_->Birth(kNode, "D2", 1, m, Now()), IsOk());
  }

  static CommandRequest Request(std::string target, std::string metric, Value value,
                                milliseconds ttl = milliseconds(30000), std::string key = "",
                                std::string who = "alice") {
    CommandRequest r;
    r.target = std::move(target);
    r.metric = std::move(metric);
    r.value = std::move(value);
    r.ttl = ttl;
    r.idempotency_key = std::move(key);
    r.who = std::move(who);
    return r;
  }
  // Submits Setpoint = `v` to G/N/D; the command (a failure when refused).
  Command SubmitSetpoint(double v, milliseconds ttl = milliseconds(30000), std::string key = "") {
    auto s = service_->Submit(Request(kTarget, "Setpoint", Value(v), ttl, std::move(key)));
    EXPECT_THAT(s, IsOk());
    return s.ok() ? s->command : Command{};
  }
  CommandState StateOf(const std::string& id) {
    auto c = service_->Get(id);
    EXPECT_TRUE(c.has_value()) << id;
    return c ? c->state : CommandState::kPending;
  }
  static std::string ResultJson(std::string_view id, std::string_view state,
                                std::string_view extra = "") {
    return std::string(R"({"id":")") + std::string(id) +
           R"(","device":"D","metric":"Setpoint","state":")" + std::string(state) + "\"" +
           std::string(extra) + R"(,"t":1700000000123})";
  }

  const NodeKey kNode{"G", "N"};
  TempDir dir_;
  FakeClock clock_;
  CapturingSink sink_{CapturingSink::Format::kComponent};
  std::unique_ptr<Registry> registry_;
  std::vector<std::unique_ptr<MetricInfo>> infos_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> sent_;
  int attempts_ = 0;
  Status publish_status_;
  std::unique_ptr<CommandService> service_;
};

// ---------------------------------------------------------------------------------------
// States

TEST(CommandStateTest, NamesRoundTripAndOnlyPendingAndDeliveredAreOpen) {
  for (auto s : {CommandState::kPending, CommandState::kDelivered, CommandState::kSucceeded,
                 CommandState::kFailed, CommandState::kRejected, CommandState::kExpired}) {
    EXPECT_EQ(ParseCommandState(CommandStateName(s)), s) << CommandStateName(s);
  }
  EXPECT_EQ(CommandStateName(CommandState::kSucceeded), "succeeded");
  EXPECT_EQ(ParseCommandState("done"), std::nullopt);
  EXPECT_EQ(ParseCommandState(""), std::nullopt);
  EXPECT_FALSE(IsFinal(CommandState::kPending));
  EXPECT_FALSE(IsFinal(CommandState::kDelivered));
  EXPECT_TRUE(IsFinal(CommandState::kSucceeded));
  EXPECT_TRUE(IsFinal(CommandState::kFailed));
  EXPECT_TRUE(IsFinal(CommandState::kRejected));
  EXPECT_TRUE(IsFinal(CommandState::kExpired));
}

// ---------------------------------------------------------------------------------------
// Delivery

TEST_F(CommandServiceTest, SubmitToAnOnlineDeviceDeliversAtOnce) {
  auto s =
      service_->Submit(Request(kTarget, "Setpoint", Value(72.5), milliseconds(30000), "", "op"));
  ASSERT_THAT(s, IsOk());
  EXPECT_TRUE(s->created);
  const Command& c = s->command;
  EXPECT_FALSE(c.id.empty());
  EXPECT_EQ(c.state, CommandState::kDelivered);
  EXPECT_EQ(c.target, kTarget);
  EXPECT_EQ(c.metric, "Setpoint");
  EXPECT_TRUE(c.value == Value(72.5)) << Show(c.value);
  EXPECT_EQ(c.ttl_ms, 30000);
  EXPECT_EQ(c.created_ms, kT0);
  EXPECT_EQ(c.expires_ms, kT0 + 30000);
  EXPECT_EQ(c.delivered_ms, kT0);
  EXPECT_EQ(c.finished_ms, 0);
  EXPECT_EQ(c.reason, "");
  EXPECT_EQ(c.read_back, std::nullopt);
  EXPECT_EQ(c.who, "op");
  ASSERT_EQ(sent(), 1u);
  ExpectCommandMessage(0, kDcmdTopic, c, DataType::kFloat, Value(72.5f));

  auto got = service_->Get(c.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state, CommandState::kDelivered);
  EXPECT_EQ(got->delivered_ms, kT0);
  // Tick does not send it again.
  service_->Tick();
  clock_.Advance(std::chrono::seconds(1));
  service_->Tick();
  EXPECT_EQ(sent(), 1u);
}

TEST_F(CommandServiceTest, ValueIsConvertedToTheMetricsDatatype) {
  struct Case {
    std::string metric;
    Value value;
    DataType datatype;
    Value sent;
  };
  const Case cases[] = {
      {"Count", Value(300.0), DataType::kInt16, Value(int16_t{300})},
      {"Count", Value(int64_t{-2}), DataType::kInt16, Value(int16_t{-2})},
      {"Enable", Value(true), DataType::kBoolean, Value(true)},
      {"Enable", Value(false), DataType::kBoolean, Value(false)},
      {"Level", Value(0.1), DataType::kDouble, Value(0.1)},
      {"Setpoint", Value(int32_t{7}), DataType::kFloat, Value(7.0f)},
      {"Total", Value(1e6), DataType::kUInt64, Value(uint64_t{1000000})},
  };
  size_t i = 0;
  for (const Case& k : cases) {
    auto s = service_->Submit(Request(kTarget, k.metric, k.value));
    ASSERT_THAT(s, IsOk()) << k.metric;
    EXPECT_EQ(s->command.state, CommandState::kDelivered) << k.metric;
    ExpectCommandMessage(i++, kDcmdTopic, s->command, k.datatype, k.sent);
  }
  EXPECT_EQ(sent(), i);
}

// The server never rounds or saturates: the edge's gate must see the value that was meant.
TEST_F(CommandServiceTest, AValueThatDoesNotFitTheTypeExactlyIsRefused) {
  EXPECT_THAT(service_->Submit(Request(kTarget, "Count", Value(300.6))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("whole number")));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Count", Value(70000.0))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Total", Value(-5.0))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Setpoint", Value(1e39))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("Float")));
  EXPECT_EQ(attempts(), 0);
}

// Only device tags pass the edge's gate: node metrics cannot be written.
TEST_F(CommandServiceTest, NodeMetricsCannotBeWritten) {
  EXPECT_THAT(service_->Submit(Request("G/N", "Speed", Value(1500.0))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("group/node/device")));
  EXPECT_EQ(attempts(), 0);
}

TEST_F(CommandServiceTest, OfflineDeviceKeepsTheCommandPendingUntilItsBirth) {
  ASSERT_THAT(registry_->Death(kNode, "D", Now()), IsOk());
  const Command c = SubmitSetpoint(72.5);
  EXPECT_EQ(c.state, CommandState::kPending);
  EXPECT_EQ(c.delivered_ms, 0);
  EXPECT_EQ(sent(), 0u);
  EXPECT_EQ(attempts(), 0) << "nothing is sent to an offline device";
  clock_.Advance(std::chrono::seconds(5));
  service_->Tick();
  EXPECT_EQ(StateOf(c.id), CommandState::kPending);
  EXPECT_EQ(sent(), 0u);

  BirthD();
  service_->Tick();
  auto got = service_->Get(c.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state, CommandState::kDelivered);
  EXPECT_EQ(got->delivered_ms, kT0 + 5000);
  EXPECT_EQ(got->expires_ms, kT0 + 30000) << "the birth does not extend the ttl";
  ASSERT_EQ(sent(), 1u);
  ExpectCommandMessage(0, kDcmdTopic, *got, DataType::kFloat, Value(72.5f));
  service_->Tick();
  EXPECT_EQ(sent(), 1u);
}

TEST_F(CommandServiceTest, OfflineNodeNeedsTheNodeAndTheDeviceBirth) {
  ASSERT_THAT(registry_->Death(kNode, "", Now()), IsOk());
  const Command c = SubmitSetpoint(10);
  EXPECT_EQ(c.state, CommandState::kPending);
  BirthNode();  // marks D offline until its own birth
  service_->Tick();
  EXPECT_EQ(StateOf(c.id), CommandState::kPending);
  EXPECT_EQ(sent(), 0u);
  BirthD();
  service_->Tick();
  EXPECT_EQ(StateOf(c.id), CommandState::kDelivered);
  EXPECT_EQ(sent(), 1u);
}

TEST_F(CommandServiceTest, PublishErrorKeepsTheCommandPendingAndTickRetries) {
  SetPublishStatus(UnavailableError("not connected"));
  const Command c = SubmitSetpoint(72.5);
  EXPECT_EQ(c.state, CommandState::kPending);
  EXPECT_EQ(attempts(), 1);
  EXPECT_EQ(sent(), 0u);
  service_->Tick();
  EXPECT_EQ(attempts(), 2);
  EXPECT_EQ(StateOf(c.id), CommandState::kPending);
  EXPECT_THAT(sink_.Matching("not sent yet"), ::testing::Not(IsEmpty()));

  SetPublishStatus(OkStatus());
  clock_.Advance(std::chrono::seconds(2));
  service_->Tick();
  auto got = service_->Get(c.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state, CommandState::kDelivered);
  EXPECT_EQ(got->delivered_ms, kT0 + 2000);
  ASSERT_EQ(sent(), 1u);
  ExpectCommandMessage(0, kDcmdTopic, *got, DataType::kFloat, Value(72.5f));
}

TEST_F(CommandServiceTest, NeverConnectedUntilTheTtlExpires) {
  SetPublishStatus(UnavailableError("not connected"));
  const Command c = SubmitSetpoint(72.5, milliseconds(1000));
  clock_.Advance(milliseconds(1000));
  SetPublishStatus(OkStatus());
  service_->Tick();
  EXPECT_EQ(StateOf(c.id), CommandState::kExpired);
  EXPECT_EQ(sent(), 0u);
}

// ---------------------------------------------------------------------------------------
// Expiry and time-outs

TEST_F(CommandServiceTest, PendingPastItsTtlExpiresAndIsNeverSent) {
  ASSERT_THAT(registry_->Death(kNode, "D", Now()), IsOk());
  const Command c = SubmitSetpoint(72.5, milliseconds(10000));
  clock_.Advance(milliseconds(9999));
  service_->Tick();
  EXPECT_EQ(StateOf(c.id), CommandState::kPending);
  clock_.Advance(milliseconds(1));
  service_->Tick();
  auto got = service_->Get(c.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state, CommandState::kExpired);
  EXPECT_THAT(got->reason, HasSubstr("ttl"));
  EXPECT_EQ(got->finished_ms, kT0 + 10000);
  EXPECT_EQ(got->delivered_ms, 0);

  // The device comes back: the expired command stays unsent.
  BirthD();
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(std::chrono::seconds(1));
    service_->Tick();
  }
  EXPECT_EQ(sent(), 0u);
  EXPECT_EQ(attempts(), 0);
  EXPECT_EQ(StateOf(c.id), CommandState::kExpired);
}

TEST_F(CommandServiceTest, ABirthAtTheMomentOfExpiryDoesNotSendIt) {
  ASSERT_THAT(registry_->Death(kNode, "D", Now()), IsOk());
  const Command c = SubmitSetpoint(72.5, milliseconds(500));
  clock_.Advance(milliseconds(500));
  BirthD();
  service_->Tick();
  EXPECT_EQ(StateOf(c.id), CommandState::kExpired);
  EXPECT_EQ(attempts(), 0);
}

TEST_F(CommandServiceTest, DeliveredWithoutResultFailsAfterTtlPlusGrace) {
  const Command c = SubmitSetpoint(72.5, milliseconds(10000));
  ASSERT_EQ(c.state, CommandState::kDelivered);
  clock_.Advance(milliseconds(10000 + 5000 - 1));  // default grace: 5 s
  service_->Tick();
  EXPECT_EQ(StateOf(c.id), CommandState::kDelivered);
  clock_.Advance(milliseconds(1));
  service_->Tick();
  auto got = service_->Get(c.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state, CommandState::kFailed);
  EXPECT_THAT(got->reason, HasSubstr("no result"));
  EXPECT_EQ(got->finished_ms, kT0 + 15000);
  EXPECT_EQ(sent(), 1u);
  // A late result does not change the final state.
  service_->OnResult("G", "N", ResultJson(c.id, "succeeded", R"(,"read_back":72.5)"));
  got = service_->Get(c.id);
  EXPECT_EQ(got->state, CommandState::kFailed);
  EXPECT_EQ(got->read_back, std::nullopt);
}

TEST_F(CommandServiceTest, ResultGraceIsAnOption) {
  service_.reset();
  CommandOptions options;
  options.result_grace = milliseconds(200);
  service_ = Open(options);
  ASSERT_NE(service_, nullptr);
  const Command c = SubmitSetpoint(1, milliseconds(1000));
  clock_.Advance(milliseconds(1199));
  service_->Tick();
  EXPECT_EQ(StateOf(c.id), CommandState::kDelivered);
  clock_.Advance(milliseconds(1));
  service_->Tick();
  EXPECT_EQ(StateOf(c.id), CommandState::kFailed);
}

// ---------------------------------------------------------------------------------------
// Results from the edge

TEST_F(CommandServiceTest, SucceededResultCarriesTheReadBack) {
  const Command c = SubmitSetpoint(72.5);
  clock_.Advance(milliseconds(40));
  service_->OnResult("G", "N", ResultJson(c.id, "succeeded", R"(,"reason":"","read_back":72.5)"));
  auto got = service_->Get(c.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state, CommandState::kSucceeded);
  EXPECT_EQ(got->reason, "");
  EXPECT_EQ(got->read_back, 72.5);
  EXPECT_EQ(got->delivered_ms, kT0);
  EXPECT_EQ(got->finished_ms, kT0 + 40);
  // Final: neither Tick nor a second result changes it.
  clock_.Advance(std::chrono::hours(1));
  service_->Tick();
  service_->OnResult("G", "N", ResultJson(c.id, "failed", R"(,"reason":"late")"));
  got = service_->Get(c.id);
  EXPECT_EQ(got->state, CommandState::kSucceeded);
  EXPECT_EQ(got->reason, "");
}

TEST_F(CommandServiceTest, FailedRejectedAndExpiredResultsKeepTheReason) {
  struct Case {
    std::string state;
    CommandState expected;
    std::string extra;
    std::string reason;
    std::optional<double> read_back;
  };
  const Case cases[] = {
      {"failed", CommandState::kFailed, R"(,"reason":"modbus exception 2")", "modbus exception 2",
       std::nullopt},
      {"rejected", CommandState::kRejected, R"(,"reason":"out of range: max 100")",
       "out of range: max 100", std::nullopt},
      {"expired", CommandState::kExpired, R"(,"reason":"arrived after kiln.expiresAt")",
       "arrived after kiln.expiresAt", std::nullopt},
      {"failed", CommandState::kFailed, R"(,"reason":"read back differs","read_back":70)",
       "read back differs", 70.0},
      {"rejected", CommandState::kRejected, "", "", std::nullopt},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.state + k.extra);
    const Command c = SubmitSetpoint(72.5);
    service_->OnResult("G", "N", ResultJson(c.id, k.state, k.extra));
    auto got = service_->Get(c.id);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->state, k.expected);
    EXPECT_EQ(got->reason, k.reason);
    EXPECT_EQ(got->read_back, k.read_back);
    EXPECT_EQ(got->finished_ms, kT0);
  }
}

TEST_F(CommandServiceTest, ResultForAnUnknownIdIsIgnored) {
  const Command c = SubmitSetpoint(72.5);
  service_->OnResult("G", "N", ResultJson("c-unknown", "succeeded", R"(,"read_back":1)"));
  service_->OnResult("G", "N",
                     ResultJson("", "succeeded", R"(,"read_back":1)"));  // a third party's
  EXPECT_EQ(StateOf(c.id), CommandState::kDelivered);
  EXPECT_EQ(service_->Get("c-unknown"), std::nullopt);
  EXPECT_EQ(service_->List("").size(), 1u);
}

TEST_F(CommandServiceTest, ResultFromAnotherNodeIsIgnored) {
  const Command c = SubmitSetpoint(72.5);
  service_->OnResult("G", "N2", ResultJson(c.id, "succeeded"));
  service_->OnResult("H", "N", ResultJson(c.id, "succeeded"));
  EXPECT_EQ(StateOf(c.id), CommandState::kDelivered);
  EXPECT_THAT(sink_.Matching("another node"), ::testing::SizeIs(2));
  service_->OnResult("G", "N", ResultJson(c.id, "succeeded"));
  EXPECT_EQ(StateOf(c.id), CommandState::kSucceeded);
}

TEST_F(CommandServiceTest, ResultFromANodeWhoseNameIsAPrefixOfTheTargetsIsIgnored) {
  // G/N1 with device D: a command to G/N1/D must not accept a result from G/N.
  std::vector<MetricInfo*> node = {Declare("N1", "", "bdSeq", DataType::kInt64)};
  ASSERT_THAT(registry_->Birth(NodeKey{"G", "N1"}, "", 1, node, Now()), IsOk());
  std::vector<MetricInfo*> dev = {Declare("N1", "D", "Setpoint", DataType::kFloat)};
  ASSERT_THAT(registry_->Birth(NodeKey{"G", "N1"}, "D", 1, dev, Now()), IsOk());
  auto s = service_->Submit(Request("G/N1/D", "Setpoint", Value(5.0)));
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(SentTopic(0), "spBv1.0/G/DCMD/N1/D");
  service_->OnResult("G", "N", ResultJson(s->command.id, "succeeded"));
  // A result from node "N" must not complete a command of node "N1" (whose id extends it).
  EXPECT_EQ(StateOf(s->command.id), CommandState::kDelivered);
  // The same for an empty node id (topic kiln/edge/G//command-result): "G/" is a prefix.
  service_->OnResult("G", "", ResultJson(s->command.id, "succeeded"));
  EXPECT_EQ(StateOf(s->command.id), CommandState::kDelivered);
  service_->OnResult("G", "N1", ResultJson(s->command.id, "rejected", R"(,"reason":"x")"));
  EXPECT_EQ(StateOf(s->command.id), CommandState::kRejected);
}

TEST_F(CommandServiceTest, MalformedResultsAreLoggedAndIgnored) {
  const Command c = SubmitSetpoint(72.5);
  const std::string bad[] = {
      "not json",
      "",
      "[]",
      R"({"state":"succeeded"})",
      R"({"id":")" + c.id + R"("})",
      R"({"id":")" + c.id + R"(","state":"done"})",
      R"({"id":")" + c.id + R"(","state":"delivered"})",
      R"({"id":")" + c.id + R"(","state":"pending"})",
      R"({"id":")" + c.id + R"(","state":7})",
      R"({"id":42,"state":"succeeded"})",
      R"({"id":")" + c.id + R"(","state":"succeeded")",  // cut short
  };
  for (const std::string& text : bad) {
    sink_.Clear();
    service_->OnResult("G", "N", text);
    EXPECT_EQ(StateOf(c.id), CommandState::kDelivered) << text;
    EXPECT_THAT(sink_.Matching("malformed command result"), ::testing::SizeIs(1)) << text;
  }
  // A good one still completes it.
  service_->OnResult("G", "N", ResultJson(c.id, "succeeded", R"(,"read_back":72.5)"));
  EXPECT_EQ(StateOf(c.id), CommandState::kSucceeded);
}

// ---------------------------------------------------------------------------------------
// Idempotency

TEST_F(CommandServiceTest, SameKeyAndContentReturnsTheSameCommandWithoutASecondWrite) {
  const Command first = SubmitSetpoint(72.5, milliseconds(30000), "key-1");
  ASSERT_EQ(first.state, CommandState::kDelivered);
  EXPECT_EQ(first.idempotency_key, "key-1");
  clock_.Advance(milliseconds(100));
  auto again = service_->Submit(
      Request(kTarget, "Setpoint", Value(72.5), milliseconds(30000), "key-1", "bob"));
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->command.id, first.id);
  EXPECT_EQ(again->command.state, CommandState::kDelivered);
  EXPECT_EQ(again->command.who, "alice");
  EXPECT_EQ(sent(), 1u);
  EXPECT_EQ(service_->List("").size(), 1u);

  // Once final, the same key answers the final command, still without a write.
  service_->OnResult("G", "N", ResultJson(first.id, "succeeded", R"(,"read_back":72.5)"));
  auto after =
      service_->Submit(Request(kTarget, "Setpoint", Value(72.5), milliseconds(30000), "key-1"));
  ASSERT_THAT(after, IsOk());
  EXPECT_FALSE(after->created);
  EXPECT_EQ(after->command.id, first.id);
  EXPECT_EQ(after->command.state, CommandState::kSucceeded);
  EXPECT_EQ(after->command.read_back, 72.5);
  EXPECT_EQ(sent(), 1u);
  // Another key is another command.
  const Command other = SubmitSetpoint(72.5, milliseconds(30000), "key-2");
  EXPECT_NE(other.id, first.id);
  EXPECT_EQ(sent(), 2u);
}

TEST_F(CommandServiceTest, SameKeyOfAPendingCommandReturnsItWithoutAWrite) {
  ASSERT_THAT(registry_->Death(kNode, "D", Now()), IsOk());
  const Command first = SubmitSetpoint(72.5, milliseconds(30000), "key-1");
  ASSERT_EQ(first.state, CommandState::kPending);
  BirthD();
  auto again =
      service_->Submit(Request(kTarget, "Setpoint", Value(72.5), milliseconds(30000), "key-1"));
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->command.id, first.id);
  EXPECT_EQ(sent(), 0u) << "the resubmission does not deliver it; Tick does";
  service_->Tick();
  EXPECT_EQ(sent(), 1u);
  EXPECT_EQ(StateOf(first.id), CommandState::kDelivered);
}

TEST_F(CommandServiceTest, SameKeyForAnotherCommandIsFailedPrecondition) {
  const Command first = SubmitSetpoint(72.5, milliseconds(30000), "key-1");
  EXPECT_THAT(
      service_->Submit(Request(kTarget, "Setpoint", Value(80.0), milliseconds(30000), "key-1")),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr("key-1")));
  EXPECT_THAT(
      service_->Submit(Request(kTarget, "Level", Value(72.5), milliseconds(30000), "key-1")),
      StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(
      service_->Submit(Request("G/N/D2", "Setpoint", Value(72.5), milliseconds(30000), "key-1")),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr(first.id)));
  EXPECT_EQ(sent(), 1u);
  EXPECT_EQ(service_->List("").size(), 1u);
}

TEST_F(CommandServiceTest, SameKeyWithAnIntegerValueIsTheSameCommand) {
  // The API takes any numeric contract::Value; the stored command keeps it as JSON.
  auto first = service_->Submit(
      Request(kTarget, "Count", Value(int32_t{70}), milliseconds(30000), "key-int"));
  ASSERT_THAT(first, IsOk());
  auto again = service_->Submit(
      Request(kTarget, "Count", Value(int32_t{70}), milliseconds(30000), "key-int"));
  // The stored value comes back from SQLite as a double: an exact retry with an int32 70 is
  // still the same request.
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->command.id, first->command.id);
  EXPECT_EQ(sent(), 1u);
}

// ---------------------------------------------------------------------------------------
// Validation

TEST_F(CommandServiceTest, MissingMetricOrValueIsInvalidArgument) {
  EXPECT_THAT(service_->Submit(Request(kTarget, "", Value(1.0))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("metric is required")));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Setpoint", Value())),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("value is required")));
  EXPECT_EQ(attempts(), 0);
  EXPECT_THAT(service_->List(""), IsEmpty());
}

TEST_F(CommandServiceTest, TtlMustBePositiveAndAtMostADay) {
  for (auto ttl :
       {milliseconds(0), milliseconds(-1), milliseconds(-30000),
        std::chrono::duration_cast<milliseconds>(std::chrono::hours(24)) + milliseconds(1)}) {
    EXPECT_THAT(service_->Submit(Request(kTarget, "Setpoint", Value(1.0), ttl)),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("ttl")))
        << ttl.count();
  }
  EXPECT_EQ(attempts(), 0);
  EXPECT_THAT(service_->Submit(Request(kTarget, "Setpoint", Value(1.0), milliseconds(1))), IsOk());
  auto day = service_->Submit(Request(kTarget, "Setpoint", Value(1.0), std::chrono::hours(24)));
  ASSERT_THAT(day, IsOk());
  EXPECT_EQ(day->command.expires_ms, kT0 + 86400000);
}

TEST_F(CommandServiceTest, IdempotencyKeyIsAtMost200Characters) {
  EXPECT_THAT(service_->Submit(Request(kTarget, "Setpoint", Value(1.0), milliseconds(1000),
                                       std::string(201, 'k'))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("idempotency_key")));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Setpoint", Value(1.0), milliseconds(1000),
                                       std::string(200, 'k'))),
              IsOk());
}

TEST_F(CommandServiceTest, MalformedTargetsAreInvalidArgument) {
  for (const char* target :
       {"", "G", "G/N/D/X", "G//D", "G/N/", "/N/D", "G/N+/D", "G/#/D", "G/N/D/", "//"}) {
    EXPECT_THAT(service_->Submit(Request(target, "Setpoint", Value(1.0))),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("target")))
        << "'" << target << "'";
  }
  EXPECT_EQ(attempts(), 0);
  EXPECT_THAT(service_->List(""), IsEmpty());
}

TEST_F(CommandServiceTest, UnknownNodeDeviceOrMetricIsNotFound) {
  EXPECT_THAT(service_->Submit(Request("H/N/D", "Setpoint", Value(1.0))),
              StatusIs(StatusCode::kNotFound, HasSubstr("H/N")));
  EXPECT_THAT(service_->Submit(Request("G/X/D", "Setpoint", Value(1.0))),
              StatusIs(StatusCode::kNotFound, HasSubstr("G/X")));
  EXPECT_THAT(service_->Submit(Request("G/N/X", "Setpoint", Value(1.0))),
              StatusIs(StatusCode::kNotFound, HasSubstr("G/N/X")));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Nope", Value(1.0))),
              StatusIs(StatusCode::kNotFound, HasSubstr("Nope")));
  // A device metric is not a node metric, and the reverse.
  EXPECT_THAT(service_->Submit(Request("G/N", "Setpoint", Value(1.0))),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Speed", Value(1.0))),
              StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(attempts(), 0);
  EXPECT_THAT(service_->List(""), IsEmpty());
}

TEST_F(CommandServiceTest, StringMetricsCannotBeWritten) {
  EXPECT_THAT(service_->Submit(Request(kTarget, "Mode", Value(std::string("auto")))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("String")));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Mode", Value(1.0))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("String")));
  EXPECT_EQ(attempts(), 0);
}

TEST_F(CommandServiceTest, ValueMustFitTheMetricsType) {
  EXPECT_THAT(service_->Submit(Request(kTarget, "Enable", Value(1.0))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("Boolean")));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Setpoint", Value(std::string("72.5")))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("Float")));
  EXPECT_EQ(attempts(), 0);
  EXPECT_THAT(service_->List(""), IsEmpty());
}

TEST_F(CommandServiceTest, BoolValueForAFloatMetricIsInvalidArgument) {
  // A bool is not a number: `true` for a Float tag is refused, not written as 1.0.
  EXPECT_THAT(service_->Submit(Request(kTarget, "Setpoint", Value(true))),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(service_->Submit(Request(kTarget, "Count", Value(false))),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(attempts(), 0);
}

TEST_F(CommandServiceTest, NonFiniteValuesAreInvalidArgument) {
  // NaN and infinities are refused (they would reach the device, while the stored command
  // and the audit trail could only keep them as JSON null).
  EXPECT_THAT(service_->Submit(
                  Request(kTarget, "Setpoint", Value(std::numeric_limits<double>::quiet_NaN()))),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(
      service_->Submit(Request(kTarget, "Level", Value(std::numeric_limits<double>::infinity()))),
      StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(attempts(), 0);
}

// ---------------------------------------------------------------------------------------
// Persistence

TEST_F(CommandServiceTest, FinalCommandsSurviveAReopen) {
  const Command ok = SubmitSetpoint(72.5, milliseconds(30000), "key-1");
  auto flag =
      service_->Submit(Request(kTarget, "Enable", Value(true), milliseconds(5000), "", "bob"));
  ASSERT_THAT(flag, IsOk());
  clock_.Advance(milliseconds(30));
  service_->OnResult("G", "N", ResultJson(ok.id, "succeeded", R"(,"read_back":72.5)"));
  service_->OnResult("G", "N",
                     ResultJson(flag->command.id, "rejected", R"(,"reason":"interlock")"));
  const Command before_ok = *service_->Get(ok.id);
  const Command before_flag = *service_->Get(flag->command.id);

  service_.reset();
  service_ = Open();
  ASSERT_NE(service_, nullptr);
  for (const Command* want : {&before_ok, &before_flag}) {
    auto got = service_->Get(want->id);
    ASSERT_TRUE(got.has_value()) << want->id;
    EXPECT_EQ(got->idempotency_key, want->idempotency_key);
    EXPECT_EQ(got->target, want->target);
    EXPECT_EQ(got->metric, want->metric);
    EXPECT_TRUE(got->value == want->value) << Show(got->value) << " vs " << Show(want->value);
    EXPECT_EQ(got->ttl_ms, want->ttl_ms);
    EXPECT_EQ(got->created_ms, want->created_ms);
    EXPECT_EQ(got->expires_ms, want->expires_ms);
    EXPECT_EQ(got->state, want->state);
    EXPECT_EQ(got->reason, want->reason);
    EXPECT_EQ(got->read_back, want->read_back);
    EXPECT_EQ(got->delivered_ms, want->delivered_ms);
    EXPECT_EQ(got->finished_ms, want->finished_ms);
    EXPECT_EQ(got->who, want->who);
  }
  EXPECT_EQ(service_->Get(ok.id)->read_back, 72.5);
  EXPECT_EQ(service_->Get(ok.id)->state, CommandState::kSucceeded);
  EXPECT_EQ(service_->Get(flag->command.id)->reason, "interlock");
  EXPECT_EQ(service_->Get(flag->command.id)->who, "bob");
  // The key still names the same command, and a new command gets a new id.
  auto again =
      service_->Submit(Request(kTarget, "Setpoint", Value(72.5), milliseconds(30000), "key-1"));
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->command.id, ok.id);
  const Command fresh = SubmitSetpoint(1);
  EXPECT_NE(fresh.id, ok.id);
  EXPECT_NE(fresh.id, flag->command.id);
  EXPECT_EQ(sent(), 3u);
}

TEST_F(CommandServiceTest, OpenCommandsAreLoadedAndContinueAfterAReopen) {
  ASSERT_THAT(registry_->Death(kNode, "D", Now()), IsOk());
  const Command short_ttl = SubmitSetpoint(1, milliseconds(10000));
  const Command long_ttl = SubmitSetpoint(2, milliseconds(60000));
  auto on_d2 = service_->Submit(Request("G/N/D2", "Setpoint", Value(3.0), milliseconds(10000)));
  ASSERT_THAT(on_d2, IsOk());
  auto answered = service_->Submit(Request("G/N/D2", "Setpoint", Value(4.0), milliseconds(10000)));
  ASSERT_THAT(answered, IsOk());
  ASSERT_EQ(short_ttl.state, CommandState::kPending);
  ASSERT_EQ(long_ttl.state, CommandState::kPending);
  ASSERT_EQ(on_d2->command.state, CommandState::kDelivered);
  ASSERT_EQ(sent(), 2u);

  service_.reset();
  service_ = Open();
  ASSERT_NE(service_, nullptr);
  EXPECT_EQ(StateOf(short_ttl.id), CommandState::kPending);
  EXPECT_EQ(StateOf(long_ttl.id), CommandState::kPending);
  EXPECT_EQ(StateOf(on_d2->command.id), CommandState::kDelivered);

  // A result for a command delivered before the restart is still taken.
  service_->OnResult("G", "N", ResultJson(answered->command.id, "succeeded", R"(,"read_back":4)"));
  EXPECT_EQ(StateOf(answered->command.id), CommandState::kSucceeded);

  clock_.Advance(milliseconds(10000));
  service_->Tick();
  EXPECT_EQ(StateOf(short_ttl.id), CommandState::kExpired);
  EXPECT_EQ(StateOf(long_ttl.id), CommandState::kPending);
  EXPECT_EQ(sent(), 2u);

  BirthD();
  service_->Tick();
  auto delivered = service_->Get(long_ttl.id);
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->state, CommandState::kDelivered);
  ASSERT_EQ(sent(), 3u);
  ExpectCommandMessage(2, kDcmdTopic, *delivered, DataType::kFloat, Value(2.0f));
  EXPECT_EQ(StateOf(short_ttl.id), CommandState::kExpired) << "never sent";

  clock_.Advance(milliseconds(5000));  // on_d2: ttl 10 s + grace 5 s
  service_->Tick();
  EXPECT_EQ(StateOf(on_d2->command.id), CommandState::kFailed);
  EXPECT_EQ(StateOf(long_ttl.id), CommandState::kDelivered);
  EXPECT_EQ(sent(), 3u);
}

TEST_F(CommandServiceTest, OpenFailsForAFileThatCannotBeCreated) {
  auto s = CommandService::Open(dir_.path() + "/missing/dir/commands.db", *registry_, clock_,
                                Logger(sink_, "commands"),
                                [](const std::string&, const std::string&) { return OkStatus(); });
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("commands.db"));
}

// ---------------------------------------------------------------------------------------
// Audit trail

TEST_F(CommandServiceTest, AuditHasOneRowPerSubmitAndStateChange) {
  ASSERT_THAT(registry_->Death(kNode, "D", Now()), IsOk());
  const Command a = SubmitSetpoint(72.5, milliseconds(10000), "key-a");
  clock_.Advance(milliseconds(1000));
  BirthD();
  service_->Tick();
  clock_.Advance(milliseconds(50));
  service_->OnResult("G", "N", ResultJson(a.id, "succeeded", R"(,"read_back":72.5)"));
  // A repeated key and ignored results add no rows; a refused request adds one.
  ASSERT_THAT(
      service_->Submit(Request(kTarget, "Setpoint", Value(72.5), milliseconds(10000), "key-a")),
      IsOk());
  EXPECT_FALSE(service_->Submit(Request(kTarget, "Nope", Value(1.0))).ok());
  service_->OnResult("G", "N", ResultJson(a.id, "failed"));
  service_->OnResult("G", "N", "garbage");

  ASSERT_THAT(registry_->Death(kNode, "D", Now()), IsOk());
  auto b =
      service_->Submit(Request(kTarget, "Enable", Value(false), milliseconds(2000), "", "bob"));
  ASSERT_THAT(b, IsOk());
  clock_.Advance(milliseconds(2000));
  service_->Tick();

  RawDb db(file());
  const std::vector<AuditRow> rows = db.Audit();
  ASSERT_THAT(Actions(rows), ElementsAre("submitted", "delivered", "succeeded", "refused",
                                         "submitted", "expired"));
  const int64_t times[] = {kT0, kT0 + 1000, kT0 + 1050, kT0 + 1050, kT0 + 1050, kT0 + 3050};
  const char* states[] = {"pending", "delivered", "succeeded", "refused", "pending", "expired"};
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(rows[i].t_ms, times[i]);
    EXPECT_EQ(rows[i].state, states[i]);
    if (i == 3) continue;  // the refused request, checked below
    EXPECT_EQ(rows[i].command_id, i < 3 ? a.id : b->command.id);
    EXPECT_EQ(rows[i].who, i < 3 ? "alice" : "bob");
    EXPECT_EQ(rows[i].target, kTarget);
    EXPECT_EQ(rows[i].metric, i < 3 ? "Setpoint" : "Enable");
    EXPECT_EQ(rows[i].value, i < 3 ? "72.5" : "false");
  }
  EXPECT_EQ(rows[2].reason, "");
  EXPECT_EQ(rows[3].command_id, "");
  EXPECT_EQ(rows[3].metric, "Nope");
  EXPECT_THAT(rows[3].reason, HasSubstr("no metric 'Nope'"));
  EXPECT_THAT(rows[5].reason, HasSubstr("ttl"));
}

TEST_F(CommandServiceTest, AuditTrailRefusesUpdateAndDelete) {
  const Command a = SubmitSetpoint(72.5);
  RawDb db(file());
  ASSERT_EQ(db.Audit().size(), 2u);  // submitted, delivered
  EXPECT_THAT(db.Exec("UPDATE audit SET who = 'mallory'"), HasSubstr("append-only"));
  EXPECT_THAT(db.Exec("UPDATE audit SET state = 'succeeded' WHERE action = 'delivered'"),
              HasSubstr("append-only"));
  EXPECT_THAT(db.Exec("DELETE FROM audit"), HasSubstr("append-only"));
  EXPECT_THAT(db.Exec("DELETE FROM audit WHERE command_id = '" + a.id + "'"),
              HasSubstr("append-only"));
  const std::vector<AuditRow> rows = db.Audit();
  ASSERT_THAT(Actions(rows), ElementsAre("submitted", "delivered"));
  EXPECT_EQ(rows[0].who, "alice");
  EXPECT_EQ(rows[1].state, "delivered");
  // The triggers are still there after a reopen (IF NOT EXISTS).
  service_.reset();
  service_ = Open();
  ASSERT_NE(service_, nullptr);
  EXPECT_THAT(db.Exec("DELETE FROM audit"), HasSubstr("append-only"));
  EXPECT_EQ(db.Audit().size(), 2u);
  // Appending still works.
  service_->OnResult("G", "N", ResultJson(a.id, "succeeded"));
  EXPECT_THAT(Actions(db.Audit()), ElementsAre("submitted", "delivered", "succeeded"));
}

// ---------------------------------------------------------------------------------------
// Listing

TEST_F(CommandServiceTest, ListIsNewestFirstAndFiltersByTargetPrefix) {
  const Command a = SubmitSetpoint(1);
  clock_.Advance(milliseconds(10));
  auto b = service_->Submit(Request("G/N/D2", "Setpoint", Value(2.0)));
  ASSERT_THAT(b, IsOk());
  clock_.Advance(milliseconds(10));
  auto c = service_->Submit(Request("G/N/D2", "Setpoint", Value(3.0)));
  ASSERT_THAT(c, IsOk());
  clock_.Advance(milliseconds(10));
  service_->OnResult("G", "N", ResultJson(a.id, "succeeded", R"(,"read_back":1)"));

  auto ids = [&](std::string_view prefix, size_t limit = 100) {
    std::vector<std::string> out;
    for (const Command& cmd : service_->List(prefix, limit)) out.push_back(cmd.id);
    return out;
  };
  const std::string& b_id = b->command.id;
  const std::string& c_id = c->command.id;
  EXPECT_THAT(ids(""), ElementsAre(c_id, b_id, a.id));
  EXPECT_THAT(ids("G"), ElementsAre(c_id, b_id, a.id));
  EXPECT_THAT(ids("G/N/D"), ElementsAre(c_id, b_id, a.id)) << "a prefix: D2 starts with D";
  EXPECT_THAT(ids("G/N/D2"), ElementsAre(c_id, b_id));
  EXPECT_THAT(ids("G/N/D/"), IsEmpty());
  EXPECT_THAT(ids("H"), IsEmpty());
  EXPECT_THAT(ids("g/n"), IsEmpty()) << "case-sensitive";
  EXPECT_THAT(ids("", 2), ElementsAre(c_id, b_id));
  EXPECT_THAT(ids("G/N/D", 1), ElementsAre(c_id));
  // Listed with their current state.
  const auto all = service_->List("");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].state, CommandState::kSucceeded);
  EXPECT_EQ(all[2].read_back, 1.0);
  EXPECT_EQ(all[1].state, CommandState::kDelivered);
}

TEST_F(CommandServiceTest, ListKeepsTheSubmitOrderWithinOneMillisecond) {
  std::vector<std::string> submitted;
  for (int i = 0; i < 12; ++i) submitted.push_back(SubmitSetpoint(i).id);
  std::vector<std::string> newest_first(submitted.rbegin(), submitted.rend());
  std::vector<std::string> listed;
  for (const Command& c : service_->List("")) listed.push_back(c.id);
  // Within one millisecond the order is still newest first (ids such as "c...-9" and
  // "c...-10" do not sort as text).
  EXPECT_EQ(listed, newest_first);
  EXPECT_EQ(std::set<std::string>(submitted.begin(), submitted.end()).size(), 12u);
}

TEST_F(CommandServiceTest, ConcurrentSubmitsResultsAndTicksAreSafe) {
  // REST handlers, the MQTT thread and the ticker call the service at once.
  constexpr int kPerThread = 20;
  std::vector<std::string> ids[2];
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          auto s = service_->Submit(
              Request(t == 0 ? "G/N/D" : "G/N/D2", "Setpoint", Value(static_cast<double>(i))));
          if (!s.ok()) {
            ADD_FAILURE() << s.status().ToString();
            continue;
          }
          ids[t].push_back(s->command.id);
          service_->OnResult("G", "N", ResultJson(s->command.id, "succeeded"));
        }
      });
    }
    threads.emplace_back([&] {
      for (int i = 0; i < 40; ++i) {
        service_->Tick();
        (void)service_->List("G/N", 10);
      }
    });
  }
  std::set<std::string> unique;
  for (const auto& v : ids) {
    for (const auto& id : v) {
      unique.insert(id);
      EXPECT_EQ(StateOf(id), CommandState::kSucceeded) << id;
    }
  }
  EXPECT_EQ(unique.size(), 2u * kPerThread);
  EXPECT_EQ(sent(), 2u * kPerThread);
}

}  // namespace
}  // namespace kiln::server
