#include "edge/device_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <utility>
#include <vector>

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

}  // namespace
}  // namespace kiln::edge
