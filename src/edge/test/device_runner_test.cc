#include "edge/device_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edge/command_gate.h"
#include "edge/config.h"

namespace kiln::edge {
namespace {

using contract::Sample;
using contract::Value;
using namespace std::chrono_literals;

class FakeDriver : public drivers::Driver {
 public:
  explicit FakeDriver(std::deque<Result<std::vector<Sample>>>& script) : script_(script) {}
  Result<std::vector<Sample>> ReadAll() override {
    auto r = std::move(script_.front());
    script_.pop_front();
    return r;
  }
  // Records the write; the device "holds" what was written.
  Result<Value> WriteAndReadBack(contract::TagId id, const Value& value) override {
    writes.emplace_back(id, value);
    return value;
  }
  void Disconnect() override { ++disconnects; }
  uint64_t requests_sent() const override { return 0; }
  int disconnects = 0;
  std::vector<std::pair<contract::TagId, Value>> writes;

 private:
  std::deque<Result<std::vector<Sample>>>& script_;
};

// Records status changes together with how many samples were queued before each.
class RecordingSink : public DeviceStatusSink {
 public:
  explicit RecordingSink(queue::SampleQueue& q) : q_(q) {}
  void OnDeviceStatus(size_t device, bool online) override {
    events.push_back({device, online, q_.stats().appended});
  }
  struct Event {
    size_t device;
    bool online;
    uint64_t queued_before;
  };
  std::vector<Event> events;

 private:
  queue::SampleQueue& q_;
};

class DeviceRunnerTest : public ::testing::Test {
 protected:
  DeviceRunnerTest() : queue_(100), sink_(queue_), log_(null_sink_, "test") {}

  std::unique_ptr<DeviceRunner> Make() {
    auto driver = std::make_unique<FakeDriver>(script_);
    DeviceRunnerOptions o;
    o.device_id = "press-3";
    o.device_index = 2;
    o.poll = 100ms;
    o.backoff_initial = 100ms;
    o.backoff_max = 1000ms;
    return std::make_unique<DeviceRunner>(o, std::move(driver),
                                          ScanEngine({{10, 0, {}}, {11, 0, {}}}), queue_, sink_,
                                          clock_, log_, metrics_);
  }

  std::vector<Sample> Good(double a, double b) {
    return {Sample{10, Value(a), {}, clock_.Now()}, Sample{11, Value(b), {}, clock_.Now()}};
  }

  std::vector<Sample> Drain() {
    auto b = queue_.ReadLive(1000, MonoTime());
    queue_.Ack(b.ids);
    return b.samples;
  }

  FakeClock clock_;
  NullSink null_sink_;
  queue::MemorySampleQueue queue_;
  RecordingSink sink_;
  Logger log_;
  MetricsRegistry metrics_;
  std::deque<Result<std::vector<Sample>>> script_;
};

TEST_F(DeviceRunnerTest, GoesOnlineAfterFirstReadAndFiltersUnchanged) {
  script_.push_back(Good(1, 2));
  script_.push_back(Good(1, 3));
  auto r = Make();
  EXPECT_EQ(r->RunOnce(), 100ms);
  EXPECT_EQ(Drain().size(), 2u);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_TRUE(sink_.events[0].online);
  EXPECT_EQ(sink_.events[0].device, 2u);
  EXPECT_EQ(sink_.events[0].queued_before, 2u);
  r->RunOnce();
  auto changed = Drain();
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].tag, 11u);
  EXPECT_TRUE(r->online());
}

TEST_F(DeviceRunnerTest, TimeoutTurnsTagsBadThenReportsOffline) {
  script_.push_back(Good(1, 2));
  script_.push_back(DeadlineExceededError("no answer"));
  auto r = Make();
  r->RunOnce();
  Drain();
  r->RunOnce();
  auto bad = Drain();
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[0].quality, contract::status::kBadTimeout);
  EXPECT_TRUE(bad[0].value.is_null());
  ASSERT_EQ(sink_.events.size(), 2u);
  EXPECT_FALSE(sink_.events[1].online);
  EXPECT_EQ(sink_.events[1].queued_before, 4u);  // Bad values were queued before the offline
  EXPECT_FALSE(r->online());
}

TEST_F(DeviceRunnerTest, LostConnectionIsBadNoCommunicationWithGrowingCappedBackoff) {
  for (int i = 0; i < 8; ++i) script_.push_back(UnavailableError("connection refused"));
  auto r = Make();
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 8; ++i) waits.push_back(r->RunOnce());
  auto bad = Drain();
  ASSERT_EQ(bad.size(), 2u);  // repeated failures do not repeat the Bad samples
  EXPECT_EQ(bad[0].quality, contract::status::kBadNoCommunication);
  EXPECT_TRUE(sink_.events.empty());  // never online, so never offline either
  for (size_t i = 0; i < waits.size(); ++i) {
    const auto base = std::min<std::chrono::milliseconds>(1000ms, 100ms * (1 << i));
    EXPECT_GE(waits[i], base / 2) << i;
    EXPECT_LE(waits[i], base) << i;
  }
}

TEST_F(DeviceRunnerTest, ValuesOlderThanThreePollPeriodsTurnUncertain) {
  script_.push_back(Good(1, 2));
  script_.push_back(Good(1, 2));
  auto r = Make();
  r->RunOnce();
  Drain();
  clock_.Advance(300ms);
  r->CheckStale();
  EXPECT_TRUE(Drain().empty());
  clock_.Advance(1ms);
  r->CheckStale();
  auto stale = Drain();
  ASSERT_EQ(stale.size(), 2u);
  EXPECT_EQ(stale[0].quality, contract::status::kUncertainLastUsableValue);
  EXPECT_EQ(stale[0].value, Value(1.0));
  r->CheckStale();
  EXPECT_TRUE(Drain().empty());
  r->RunOnce();  // fresh again: Good is a quality change
  auto fresh = Drain();
  ASSERT_EQ(fresh.size(), 2u);
  EXPECT_TRUE(fresh[0].quality.IsGood());
}

// Writes: a device whose tags have write rules (ids 10..13, as the ScanEngine's).
//   Setpoint (10): writable, 0..70, min_write_interval 2 s, interlock Mode == 1
//   Mode (11):     read only, deadband 2 (so 0 <-> 1 is held back after the first value)
//   Count (12):    writable uint16
//   Temperature (13): read only
DeviceConfig WriteDevice() {
  DeviceConfig d;
  d.id = "press-3";
  TagConfig setpoint;
  setpoint.id = 10;
  setpoint.name = "Setpoint";
  setpoint.type = contract::ValueType::kDouble;
  setpoint.write.writable = true;
  setpoint.write.min = 0;
  setpoint.write.max = 70;
  setpoint.write.min_write_interval = 2s;
  setpoint.write.interlock = Interlock{"Mode", 1};
  TagConfig mode;
  mode.id = 11;
  mode.name = "Mode";
  mode.deadband = 2;
  TagConfig count;
  count.id = 12;
  count.name = "Count";
  count.type = contract::ValueType::kUInt16;
  count.write.writable = true;
  TagConfig temperature;
  temperature.id = 13;
  temperature.name = "Temperature";
  d.tags = {setpoint, mode, count, temperature};
  return d;
}

// The FakeDriver, with writes that can fail or read back something else than was written,
// and reads the test can wait for (the loop runs on its own thread).
class WriteDriver : public FakeDriver {
 public:
  explicit WriteDriver(std::deque<Result<std::vector<Sample>>>& script)
      : FakeDriver(script), script_(script) {}
  Result<std::vector<Sample>> ReadAll() override {
    // Past the script the device stops answering (a poll the test did not expect).
    auto r = script_.empty() ? UnavailableError("no more scripted reads") : FakeDriver::ReadAll();
    std::lock_guard lock(mu_);
    ++reads_;
    cv_.notify_all();
    return r;
  }
  Result<Value> WriteAndReadBack(contract::TagId id, const Value& value) override {
    auto r = FakeDriver::WriteAndReadBack(id, value);
    if (!fail_with.ok()) return fail_with;
    if (holds) return *holds;
    return r;
  }
  bool WaitForReads(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return reads_ >= n; });
  }
  int reads() {
    std::lock_guard lock(mu_);
    return reads_;
  }
  Status fail_with;            // the device refuses the write with this (OK: it does not)
  std::optional<Value> holds;  // what the device reads back, when not what was written

 private:
  std::deque<Result<std::vector<Sample>>>& script_;
  std::mutex mu_;
  std::condition_variable cv_;
  int reads_ = 0;
};

class DeviceRunnerWriteTest : public DeviceRunnerTest {
 protected:
  std::unique_ptr<DeviceRunner> MakeWriter(const Clock& clock, bool gate = true,
                                           std::chrono::milliseconds poll = 100ms) {
    auto driver = std::make_unique<WriteDriver>(script_);
    driver_ = driver.get();
    DeviceRunnerOptions o;
    o.device_id = "press-3";
    o.device_index = 2;
    o.poll = poll;
    o.backoff_initial = 100ms;
    o.backoff_max = 1000ms;
    auto r = std::make_unique<DeviceRunner>(
        o, std::move(driver), ScanEngine({{10, 0, {}}, {11, 2, {}}, {12, 0, {}}, {13, 0, {}}}),
        queue_, sink_, clock, log_, metrics_);
    if (gate) r->EnableWrites(std::make_unique<CommandGate>(WriteDevice(), clock));
    return r;
  }
  std::unique_ptr<DeviceRunner> MakeWriter(bool gate = true) { return MakeWriter(clock_, gate); }

  std::vector<Sample> Reads(double setpoint, double mode, double count, double temperature) {
    return {Sample{10, Value(setpoint), {}, clock_.Now()},
            Sample{11, Value(mode), {}, clock_.Now()}, Sample{12, Value(count), {}, clock_.Now()},
            Sample{13, Value(temperature), {}, clock_.Now()}};
  }

  // Submits one write and runs it now; returns its result.
  CommandResult Write(DeviceRunner& r, std::string id, std::string tag, Value v,
                      std::optional<Timestamp> expires_at = std::nullopt) {
    std::vector<CommandResult> results;
    r.SubmitWrite(std::move(id), WriteRequest{std::move(tag), std::move(v), expires_at},
                  [&](CommandResult c) { results.push_back(std::move(c)); });
    r.RunWrites();
    EXPECT_EQ(results.size(), 1u);
    return results.empty() ? CommandResult{} : results[0];
  }

  WriteDriver* driver_ = nullptr;  // owned by the runner
};

TEST_F(DeviceRunnerWriteTest, AllowedWriteReachesTheDriverConvertedAndReportsTheReadBack) {
  script_.push_back(Reads(10, 1, 0, 20));
  auto r = MakeWriter();
  r->RunOnce();
  Drain();

  const CommandResult sp = Write(*r, "c-9f2", "Setpoint", Value(int64_t{42}));
  EXPECT_EQ(sp.id, "c-9f2");
  EXPECT_EQ(sp.device, "press-3");
  EXPECT_EQ(sp.metric, "Setpoint");
  EXPECT_EQ(sp.state, "succeeded");
  EXPECT_EQ(sp.reason, "");
  EXPECT_EQ(sp.read_back, 42.0);

  const CommandResult count = Write(*r, "", "Count", Value(7.0));
  EXPECT_EQ(count.state, "succeeded");
  EXPECT_EQ(count.id, "");
  EXPECT_EQ(count.read_back, 7.0);

  // The gate converted both values to the tags' types.
  const std::vector<std::pair<contract::TagId, Value>> want = {{10, Value(42.0)},
                                                               {12, Value(uint16_t{7})}};
  EXPECT_EQ(driver_->writes, want);
  // The read-back values go out at once, Good, like a poll's.
  const auto pushed = Drain();
  ASSERT_EQ(pushed.size(), 2u);
  EXPECT_EQ(pushed[0].tag, 10u);
  EXPECT_EQ(pushed[0].value, Value(42.0));
  EXPECT_TRUE(pushed[0].quality.IsGood());
  EXPECT_EQ(pushed[0].source_time, clock_.Now());
  EXPECT_EQ(pushed[1].tag, 12u);
  EXPECT_EQ(pushed[1].value, Value(uint16_t{7}));
  EXPECT_EQ(metrics_
                .GetCounter("kiln_edge_device_writes_total", "Command writes sent to the device",
                            {{"device", "press-3"}})
                .value(),
            2u);
}

TEST_F(DeviceRunnerWriteTest, ReadBackIsWhatTheDeviceHoldsNotWhatWasSent) {
  script_.push_back(Reads(10, 1, 0, 20));
  auto r = MakeWriter();
  r->RunOnce();
  Drain();
  driver_->holds = Value(65.0);  // e.g. the device clamps
  const CommandResult res = Write(*r, "c-1", "Setpoint", Value(66.0));
  EXPECT_EQ(res.state, "succeeded");
  EXPECT_EQ(res.read_back, 65.0);
  const auto pushed = Drain();
  ASSERT_EQ(pushed.size(), 1u);
  EXPECT_EQ(pushed[0].value, Value(65.0));
}

TEST_F(DeviceRunnerWriteTest, ReadBackPassesTheScanEngineLikeAPoll) {
  script_.push_back(Reads(10, 1, 0, 20));
  auto r = MakeWriter();
  r->RunOnce();
  Drain();
  driver_->holds = Value(0.0);  // what was published already: unchanged, nothing new
  const CommandResult res = Write(*r, "c-1", "Count", Value(0.0));
  EXPECT_EQ(res.state, "succeeded");
  EXPECT_EQ(res.read_back, 0.0);
  EXPECT_TRUE(Drain().empty());
}

TEST_F(DeviceRunnerWriteTest, RefusedWritesNeverReachTheDevice) {
  script_.push_back(Reads(10, 0, 0, 20));  // Mode 0: Setpoint's interlock is closed
  auto r = MakeWriter();
  r->RunOnce();
  Drain();
  struct Case {
    std::string tag;
    Value value;
    std::optional<Timestamp> expires_at;
    std::string state;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"Temperature", Value(1.0), std::nullopt, "rejected", "Temperature is not writable"},
      {"Count", Value(70000.0), std::nullopt, "rejected",
       "70000 does not fit Count (uint16: 0 to 65535)"},
      {"Setpoint", Value(72.5), std::nullopt, "rejected", "72.5 is above max 70"},
      {"Setpoint", Value(10.0), std::nullopt, "rejected", "interlock: Mode is 0, needs 1"},
      {"#7", Value(1.0), std::nullopt, "rejected", "no tag #7 on device press-3"},
      {"Count", Value(1.0), clock_.Now() - 1500ms, "expired", "expired 1.5 s before it arrived"},
  };
  for (const Case& c : cases) {
    const CommandResult res = Write(*r, "c-1", c.tag, c.value, c.expires_at);
    EXPECT_EQ(res.state, c.state) << c.tag;
    EXPECT_EQ(res.reason, c.reason) << c.tag;
    EXPECT_EQ(res.metric, c.tag);
    EXPECT_EQ(res.device, "press-3");
    EXPECT_FALSE(res.read_back.has_value()) << c.tag;
  }
  EXPECT_TRUE(driver_->writes.empty());
  EXPECT_TRUE(Drain().empty());
  // Not expired at its very deadline.
  EXPECT_EQ(Write(*r, "c-2", "Count", Value(1.0), clock_.Now()).state, "succeeded");
}

TEST_F(DeviceRunnerWriteTest, InterlockUsesTheLastValueReadThoughADeadbandHeldItBack) {
  script_.push_back(Reads(10, 0, 0, 20));
  script_.push_back(Reads(10, 1, 0, 20));  // Mode 0 -> 1 is within its deadband of 2
  auto r = MakeWriter();
  r->RunOnce();
  EXPECT_EQ(Drain().size(), 4u);
  r->RunOnce();
  EXPECT_TRUE(Drain().empty());  // published Mode is still 0; the device reads 1
  const CommandResult res = Write(*r, "c-1", "Setpoint", Value(30.0));
  EXPECT_EQ(res.state, "succeeded") << res.reason;
  ASSERT_EQ(driver_->writes.size(), 1u);
  EXPECT_EQ(driver_->writes[0].second, Value(30.0));
}

TEST_F(DeviceRunnerWriteTest, InterlockClosedByTheLastValueReadThoughTheLastPublishedIsOpen) {
  script_.push_back(Reads(10, 1, 0, 20));
  script_.push_back(Reads(10, 0, 0, 20));  // Mode 1 -> 0 is within its deadband of 2
  auto r = MakeWriter();
  r->RunOnce();
  Drain();
  r->RunOnce();
  EXPECT_TRUE(Drain().empty());  // published Mode is still 1; the device reads 0
  const CommandResult res = Write(*r, "c-1", "Setpoint", Value(30.0));
  EXPECT_EQ(res.state, "rejected");
  EXPECT_EQ(res.reason, "interlock: Mode is 0, needs 1");
  EXPECT_TRUE(driver_->writes.empty());
}

TEST_F(DeviceRunnerWriteTest, InterlockTagReadBadIsClosed) {
  std::vector<Sample> reads = Reads(10, 1, 0, 20);
  reads[1] = Sample{11, Value(), contract::status::kBadNodeIdUnknown, clock_.Now()};
  script_.push_back(reads);
  auto r = MakeWriter();
  r->RunOnce();
  const CommandResult res = Write(*r, "c-1", "Setpoint", Value(30.0));
  EXPECT_EQ(res.state, "rejected");
  EXPECT_THAT(res.reason, ::testing::StartsWith("interlock: Mode is Bad"));
  EXPECT_TRUE(driver_->writes.empty());
}

TEST_F(DeviceRunnerWriteTest, DriverFailureReportsFailedWithItsMessage) {
  script_.push_back(Reads(10, 1, 0, 20));
  auto r = MakeWriter();
  r->RunOnce();
  Drain();
  driver_->fail_with = Status(StatusCode::kAborted, "exception 02 illegal data address");
  const CommandResult res = Write(*r, "c-1", "Count", Value(3.0));
  EXPECT_EQ(res.state, "failed");
  EXPECT_EQ(res.reason, "exception 02 illegal data address");
  EXPECT_FALSE(res.read_back.has_value());
  EXPECT_EQ(driver_->writes.size(), 1u);  // it reached the device
  EXPECT_TRUE(Drain().empty());           // nothing was read back
}

TEST_F(DeviceRunnerWriteTest, MinWriteIntervalCountsAFailedDeviceWrite) {
  script_.push_back(Reads(10, 1, 0, 20));
  auto r = MakeWriter();
  r->RunOnce();
  driver_->fail_with = DeadlineExceededError("no answer");  // it may still have been written
  EXPECT_EQ(Write(*r, "c-1", "Setpoint", Value(30.0)).state, "failed");
  driver_->fail_with = OkStatus();
  clock_.Advance(800ms);
  const CommandResult again = Write(*r, "c-2", "Setpoint", Value(30.0));
  EXPECT_EQ(again.state, "rejected");
  EXPECT_EQ(again.reason, "last write 0.8 s ago; min_write_interval is 2 s");
  EXPECT_EQ(driver_->writes.size(), 1u);
  clock_.Advance(1200ms);
  EXPECT_EQ(Write(*r, "c-3", "Setpoint", Value(30.0)).state, "succeeded");
  EXPECT_EQ(driver_->writes.size(), 2u);
}

TEST_F(DeviceRunnerWriteTest, RefusedWriteDoesNotStartTheMinWriteInterval) {
  script_.push_back(Reads(10, 1, 0, 20));
  auto r = MakeWriter();
  r->RunOnce();
  EXPECT_EQ(Write(*r, "c-1", "Setpoint", Value(99.0)).state, "rejected");  // above max
  EXPECT_EQ(Write(*r, "c-2", "Setpoint", Value(30.0)).state, "succeeded");
}

TEST_F(DeviceRunnerWriteTest, OfflineDeviceFailsTheWriteWithoutTryingIt) {
  script_.push_back(Reads(10, 1, 0, 20));
  script_.push_back(UnavailableError("connection refused"));
  auto r = MakeWriter();
  // Never read yet: offline.
  CommandResult res = Write(*r, "c-1", "Count", Value(3.0));
  EXPECT_EQ(res.state, "failed");
  EXPECT_EQ(res.reason, "device press-3 is offline");
  r->RunOnce();
  r->RunOnce();  // lost
  ASSERT_FALSE(r->online());
  res = Write(*r, "c-2", "Count", Value(3.0));
  EXPECT_EQ(res.state, "failed");
  EXPECT_EQ(res.reason, "device press-3 is offline");
  EXPECT_FALSE(res.read_back.has_value());
  // The gate still decides first: a late command expires rather than fails.
  EXPECT_EQ(Write(*r, "c-3", "Count", Value(3.0), clock_.Now() - 1s).state, "expired");
  EXPECT_TRUE(driver_->writes.empty());
}

TEST_F(DeviceRunnerWriteTest, WithoutAGateEveryWriteIsRejected) {
  script_.push_back(Reads(10, 1, 0, 20));
  auto r = MakeWriter(/*gate=*/false);
  r->RunOnce();
  const CommandResult res = Write(*r, "c-1", "Count", Value(3.0));
  EXPECT_EQ(res.id, "c-1");
  EXPECT_EQ(res.device, "press-3");
  EXPECT_EQ(res.metric, "Count");
  EXPECT_EQ(res.state, "rejected");
  EXPECT_EQ(res.reason, "device press-3 takes no writes");
  EXPECT_TRUE(driver_->writes.empty());
}

TEST_F(DeviceRunnerWriteTest, RunWritesRunsTheQueuedWritesInOrder) {
  script_.push_back(Reads(10, 1, 0, 20));
  auto r = MakeWriter();
  r->RunOnce();
  Drain();
  std::vector<std::string> done;
  for (int i = 1; i <= 3; ++i) {
    r->SubmitWrite("c-" + std::to_string(i), WriteRequest{"Count", Value(double(i)), {}},
                   [&](CommandResult c) { done.push_back(c.id + " " + c.state); });
  }
  EXPECT_TRUE(driver_->writes.empty());  // queued, not run
  EXPECT_TRUE(done.empty());
  r->RunWrites();
  EXPECT_THAT(done, ::testing::ElementsAre("c-1 succeeded", "c-2 succeeded", "c-3 succeeded"));
  ASSERT_EQ(driver_->writes.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(driver_->writes[i].second, Value(uint16_t(i + 1)));
  std::vector<Value> pushed;
  for (const Sample& s : Drain()) pushed.push_back(s.value);
  EXPECT_THAT(pushed,
              ::testing::ElementsAre(Value(uint16_t{1}), Value(uint16_t{2}), Value(uint16_t{3})));
  r->RunWrites();  // nothing left
  EXPECT_EQ(done.size(), 3u);
}

TEST_F(DeviceRunnerWriteTest, LoopWakesForAWriteBetweenPolls) {
  SystemClock real;
  script_.push_back(Reads(10, 1, 0, 20));  // the only poll within the hour
  auto r = MakeWriter(real, /*gate=*/true, /*poll=*/std::chrono::hours(1));
  r->Start();
  ASSERT_TRUE(driver_->WaitForReads(1));
  std::mutex mu;
  std::condition_variable cv;
  std::optional<CommandResult> result;
  r->SubmitWrite("c-1", WriteRequest{"Count", Value(5.0), {}}, [&](CommandResult c) {
    std::lock_guard lock(mu);
    result = std::move(c);
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return result.has_value(); }))
        << "the loop did not run the write before its next poll";
    EXPECT_EQ(result->state, "succeeded") << result->reason;
    EXPECT_EQ(result->read_back, 5.0);
  }
  EXPECT_EQ(driver_->reads(), 1);  // woken for the write, not by a poll
  r->Stop();
  ASSERT_EQ(driver_->writes.size(), 1u);
  EXPECT_EQ(driver_->writes[0].second, Value(uint16_t{5}));
  EXPECT_EQ(driver_->disconnects, 1);
}

}  // namespace
}  // namespace kiln::edge
