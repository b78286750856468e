#include "edge/uplink.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "contract/sparkplug/payload.h"
#include "contract/sparkplug/state.h"

namespace kiln::edge {
namespace {

using contract::Sample;
using contract::Value;
using contract::ValueType;
using namespace std::chrono_literals;

// A broker stand-in: records what the uplink subscribes and publishes and lets the test
// play the broker's side (accept, deliver a command, drop the link). Thread-safe.
class FakeBroker {
 public:
  struct Entry {
    std::string kind;  // "subscribe", "publish", "disconnect"
    std::string topic;
    std::string payload;
    int qos = 0;
  };

  mqtt::ConnectFn Connect() {
    return [this](const mqtt::ClientOptions&, const std::optional<mqtt::WillMessage>& will,
                  mqtt::EventHandler handler) -> Result<std::unique_ptr<mqtt::Connection>> {
      MutexLock lock(mu_);
      wills_.push_back(will);
      handler_ = std::move(handler);
      cv_.NotifyAll();
      return std::unique_ptr<mqtt::Connection>(new FakeConnection(*this));
    };
  }

  // Waits (bounded) until `pred` holds over the recorded state.
  bool WaitFor(const std::function<bool()>& pred) {
    MutexLock lock(mu_);
    return cv_.WaitFor(lock, 10s, [&]() KILN_REQUIRES(mu_) { return pred(); });
  }
  size_t connects() const KILN_REQUIRES(mu_) { return wills_.size(); }
  std::vector<Entry> log() const {
    MutexLock lock(mu_);
    return log_;
  }
  std::vector<Entry> published(std::string_view topic_part) const {
    std::vector<Entry> out;
    for (const auto& e : log()) {
      if (e.kind == "publish" && e.topic.find(topic_part) != std::string::npos) out.push_back(e);
    }
    return out;
  }
  std::optional<mqtt::WillMessage> will(size_t i) const {
    MutexLock lock(mu_);
    return wills_.at(i);
  }
  // Broker side: events to the latest connection.
  void Send(mqtt::Event e) {
    mqtt::EventHandler h;
    {
      MutexLock lock(mu_);
      h = handler_;
    }
    h(std::move(e));
  }

  mutable Mutex mu_;

 private:
  class FakeConnection : public mqtt::Connection {
   public:
    explicit FakeConnection(FakeBroker& b) : b_(b) {}
    Result<int> Publish(std::string_view topic, std::string_view payload, int qos, bool) override {
      const int mid = ++mid_;
      b_.Record({"publish", std::string(topic), std::string(payload), qos});
      if (qos > 0) b_.Send({mqtt::Event::Kind::kPublished, 0, {}, {}, {}, mid});  // PUBACK
      return mid;
    }
    Status Subscribe(std::string_view topic, int qos) override {
      b_.Record({"subscribe", std::string(topic), {}, qos});
      return OkStatus();
    }
    Status Disconnect() override {
      b_.Record({"disconnect", {}, {}, 0});
      return OkStatus();
    }

   private:
    FakeBroker& b_;
    int mid_ = 0;
  };

  void Record(Entry e) {
    MutexLock lock(mu_);
    log_.push_back(std::move(e));
    cv_.NotifyAll();
  }

  CondVar cv_;
  std::vector<std::optional<mqtt::WillMessage>> wills_ KILN_GUARDED_BY(mu_);
  mqtt::EventHandler handler_ KILN_GUARDED_BY(mu_);
  std::vector<Entry> log_ KILN_GUARDED_BY(mu_);

  friend class UplinkTest;
};

class UplinkTest : public ::testing::Test {
 protected:
  UplinkTest()
      : queue_(1000),
        node_({"Plant1", "gw-01", 1000},
              {NodeDevice{"press-3",
                          {NodeTag{0, "Temperature", ValueType::kDouble, "degC"},
                           NodeTag{1, "Running", ValueType::kBool, ""}}}},
              clock_),
        log_(sink_, "test") {
    UplinkOptions o;
    o.mqtt.client_id = "test";
    o.reconnect_initial = 1ms;
    o.reconnect_max = 2ms;
    o.connect = broker_.Connect();
    uplink_ = std::make_unique<Uplink>(o, node_, queue_, clock_, log_, metrics_);
  }
  ~UplinkTest() override { uplink_->Stop(); }

  void Push(contract::TagId tag, Value v) {
    const Sample s{tag, std::move(v), contract::status::kGood, clock_.Now()};
    ASSERT_TRUE(queue_.Push(std::span<const Sample>(&s, 1)).ok());
  }
  void WaitConnects(size_t n) {
    ASSERT_TRUE(
        broker_.WaitFor([&]() KILN_REQUIRES(broker_.mu_) { return broker_.connects() >= n; }));
  }
  void WaitPublished(std::string_view topic_part, size_t n) {
    ASSERT_TRUE(broker_.WaitFor([&]() KILN_REQUIRES(broker_.mu_) {
      size_t count = 0;
      for (const auto& e : broker_.log_) {
        count += e.kind == "publish" && e.topic.find(topic_part) != std::string::npos;
      }
      return count >= n;
    })) << "waiting for "
        << n << " x " << topic_part;
  }
  void WaitSubscribed(std::string_view topic) {
    ASSERT_TRUE(broker_.WaitFor([&]() KILN_REQUIRES(broker_.mu_) {
      for (const auto& e : broker_.log_) {
        if (e.kind == "subscribe" && e.topic == topic) return true;
      }
      return false;
    })) << "waiting for a subscription to "
        << topic;
  }
  sparkplug::Payload Decode(const FakeBroker::Entry& e) {
    auto p = decoder_.Decode(e.payload);
    EXPECT_TRUE(p.ok());
    return p.ok() ? *p : sparkplug::Payload{};
  }
  void Accept() { broker_.Send({mqtt::Event::Kind::kConnected, 0, "connected", {}, {}, 0}); }

  SystemClock clock_;
  NullSink sink_;
  queue::MemorySampleQueue queue_;
  EdgeNode node_;
  Logger log_;
  MetricsRegistry metrics_;
  FakeBroker broker_;
  sparkplug::Decoder decoder_;
  std::unique_ptr<Uplink> uplink_;
};

TEST_F(UplinkTest, SubscribesThenBirthsWithQueuedValuesThenReplaysThemAsHistory) {
  Push(0, Value(20.5));
  Push(0, Value(21.5));
  uplink_->OnDeviceStatus(0, true);
  uplink_->Start();
  WaitConnects(1);
  Accept();
  WaitPublished("/DDATA/", 1);
  const auto log = broker_.log();
  ASSERT_GE(log.size(), 5u);
  EXPECT_EQ(log[0].kind, "subscribe");
  EXPECT_EQ(log[0].topic, "spBv1.0/Plant1/NCMD/gw-01");
  EXPECT_EQ(log[0].qos, 1);
  EXPECT_EQ(log[1].topic, "spBv1.0/Plant1/DCMD/gw-01/press-3");
  EXPECT_EQ(log[2].topic, "spBv1.0/Plant1/NBIRTH/gw-01");
  EXPECT_EQ(log[3].topic, "spBv1.0/Plant1/DBIRTH/gw-01/press-3");
  auto dbirth = Decode(log[3]);
  EXPECT_EQ(dbirth.metrics[0].value, Value(21.5));  // the latest queued value
  auto history = Decode(log[4]);
  ASSERT_EQ(history.metrics.size(), 2u);
  EXPECT_TRUE(history.metrics[0].is_historical);
  EXPECT_EQ(history.metrics[0].value, Value(20.5));
  EXPECT_EQ(history.metrics[1].value, Value(21.5));

  Push(1, Value(true));  // live from here on
  WaitPublished("/DDATA/", 2);
  auto live = Decode(broker_.published("/DDATA/").back());
  ASSERT_EQ(live.metrics.size(), 1u);
  EXPECT_FALSE(live.metrics[0].is_historical);
  EXPECT_EQ(live.seq, 3u);
}

TEST_F(UplinkTest, RebirthRequestRepublishesBirthsWithSameBdSeq) {
  uplink_->OnDeviceStatus(0, true);
  uplink_->Start();
  WaitConnects(1);
  Accept();
  WaitPublished("/DBIRTH/", 1);
  sparkplug::Payload cmd;
  sparkplug::Metric m;
  m.name = "Node Control/Rebirth";
  m.datatype = sparkplug::DataType::kBoolean;
  m.value = Value(true);
  cmd.metrics.push_back(m);
  std::string bytes;
  sparkplug::Encoder enc;
  ASSERT_TRUE(enc.Encode(cmd, bytes).ok());
  broker_.Send({mqtt::Event::Kind::kMessage, 0, {}, "spBv1.0/Plant1/NCMD/gw-01", bytes, 0});
  WaitPublished("/DBIRTH/", 2);
  const auto births = broker_.published("/NBIRTH/");
  ASSERT_EQ(births.size(), 2u);
  EXPECT_EQ(Decode(births[1]).seq, 0u);
  EXPECT_EQ(Decode(births[1]).metrics[0].value, Value(int64_t{0}));  // bdSeq unchanged
}

TEST_F(UplinkTest, LostSessionReconnectsWithNextBdSeqInTheWill) {
  uplink_->Start();
  WaitConnects(1);
  // Refused before CONNACK: the next attempt keeps bdSeq 0.
  broker_.Send({mqtt::Event::Kind::kDisconnected, 7, "refused", {}, {}, 0});
  WaitConnects(2);
  Accept();
  WaitPublished("/NBIRTH/", 1);
  broker_.Send({mqtt::Event::Kind::kDisconnected, 7, "lost", {}, {}, 0});
  WaitConnects(3);
  auto will_bd = [&](size_t i) {
    auto p = decoder_.Decode(broker_.will(i)->payload);
    return p.ok() ? p->metrics[0].value : Value();
  };
  EXPECT_EQ(will_bd(0), Value(int64_t{0}));
  EXPECT_EQ(will_bd(1), Value(int64_t{0}));
  EXPECT_EQ(will_bd(2), Value(int64_t{1}));
  EXPECT_EQ(broker_.will(2)->qos, 1);
  EXPECT_FALSE(broker_.will(2)->retain);
}

class PrimaryHostUplinkTest : public UplinkTest {
 protected:
  PrimaryHostUplinkTest() {
    UplinkOptions o;
    o.mqtt.client_id = "test";
    o.reconnect_initial = 1ms;
    o.reconnect_max = 2ms;
    o.connect = broker_.Connect();
    o.primary_host_id = "kiln";
    uplink_ = std::make_unique<Uplink>(o, node_, queue_, clock_, log_, metrics_);
  }
  void State(bool online, uint64_t ts) {
    broker_.Send({mqtt::Event::Kind::kMessage,
                  0,
                  {},
                  "spBv1.0/STATE/kiln",
                  sparkplug::BuildHostState({online, ts}),
                  0});
  }
  size_t Count(std::string_view kind, std::string_view topic_part) {
    size_t n = 0;
    for (const auto& e : broker_.log()) {
      n += e.kind == kind && e.topic.find(topic_part) != std::string::npos;
    }
    return n;
  }
};

TEST_F(PrimaryHostUplinkTest, BirthsWaitForOnlineStateAndOfflineStateStartsOver) {
  uplink_->Start();
  WaitConnects(1);
  Accept();
  WaitSubscribed("spBv1.0/STATE/kiln");
  State(false, 1000);  // host offline, nothing published yet: keep waiting
  State(true, 2000);
  WaitPublished("/NBIRTH/", 1);
  State(false, 1500);  // older than the last STATE: ignored
  State(true, 2500);
  EXPECT_EQ(Count("publish", "/NDEATH/"), 0u);
  State(false, 3000);  // current offline: NDEATH, DISCONNECT, a new connection
  WaitConnects(2);
  EXPECT_EQ(Count("publish", "/NDEATH/"), 1u);
  EXPECT_EQ(Count("disconnect", ""), 1u);
  auto will = decoder_.Decode(broker_.will(1)->payload);
  ASSERT_TRUE(will.ok());
  EXPECT_EQ(will->metrics[0].value, Value(int64_t{1}));  // the next session's bdSeq
  Accept();
  State(true, 3000);  // not older than the last one: accepted
  WaitPublished("/NBIRTH/", 2);
}

TEST_F(PrimaryHostUplinkTest, MalformedStateIsIgnored) {
  uplink_->Start();
  WaitConnects(1);
  Accept();
  broker_.Send({mqtt::Event::Kind::kMessage, 0, {}, "spBv1.0/STATE/kiln", "ONLINE", 0});
  State(true, 10);
  WaitPublished("/NBIRTH/", 1);
  EXPECT_EQ(Count("publish", "/NBIRTH/"), 1u);
}

TEST_F(UplinkTest, StopPublishesNDeathThenDisconnects) {
  uplink_->Start();
  WaitConnects(1);
  Accept();
  WaitPublished("/NBIRTH/", 1);
  uplink_->Stop();
  const auto log = broker_.log();
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[log.size() - 2].topic, "spBv1.0/Plant1/NDEATH/gw-01");
  EXPECT_EQ(log[log.size() - 2].qos, 1);
  EXPECT_EQ(log.back().kind, "disconnect");
}

}  // namespace
}  // namespace kiln::edge
