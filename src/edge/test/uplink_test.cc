#include "edge/uplink.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "contract/sparkplug/payload.h"
#include "contract/sparkplug/state.h"
#include "core/json.h"
#include "core/testing/capturing_sink.h"

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

  // Holds PUBACKs back (a stalled broker) until ReleaseAcks().
  void HoldAcks(bool hold) {
    MutexLock lock(mu_);
    hold_acks_ = hold;
  }
  void ReleaseAcks() {
    std::vector<int> mids;
    {
      MutexLock lock(mu_);
      mids.swap(held_acks_);
      hold_acks_ = false;
    }
    for (int mid : mids) Ack(mid);
  }
  size_t held_acks() const {
    MutexLock lock(mu_);
    return held_acks_.size();
  }

  mutable Mutex mu_;

 private:
  bool Hold(int mid) {
    MutexLock lock(mu_);
    if (hold_acks_) held_acks_.push_back(mid);
    return hold_acks_;
  }
  void Ack(int mid) { Send({mqtt::Event::Kind::kPublished, 0, {}, {}, {}, mid}); }

  class FakeConnection : public mqtt::Connection {
   public:
    explicit FakeConnection(FakeBroker& b) : b_(b) {}
    Result<int> Publish(std::string_view topic, std::string_view payload, int qos, bool) override {
      const int mid = ++mid_;
      const bool held = qos > 0 && b_.Hold(mid);
      b_.Record({"publish", std::string(topic), std::string(payload), qos});
      if (qos > 0 && !held) b_.Ack(mid);  // PUBACK
      return mid;
    }
    Result<int> Subscribe(std::string_view topic, int qos) override {
      b_.Record({"subscribe", std::string(topic), {}, qos});
      return ++mid_;
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
  bool hold_acks_ KILN_GUARDED_BY(mu_) = false;
  std::vector<int> held_acks_ KILN_GUARDED_BY(mu_);

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
  // The device online, the uplink started, the session accepted and the births out.
  void StartWithDeviceBorn() {
    uplink_->OnDeviceStatus(0, true);
    uplink_->Start();
    WaitConnects(1);
    Accept();
    WaitPublished("/DBIRTH/", 1);
  }
  void WaitDepth(uint64_t depth) {
    for (int i = 0; i < 1000 && queue_.stats().depth != depth; ++i)
      std::this_thread::sleep_for(5ms);
    ASSERT_EQ(queue_.stats().depth, depth);
  }
  static std::string Rebirth() {
    sparkplug::Payload cmd;
    sparkplug::Metric m;
    m.name = "Node Control/Rebirth";
    m.datatype = sparkplug::DataType::kBoolean;
    m.value = Value(true);
    cmd.metrics.push_back(m);
    std::string bytes;
    sparkplug::Encoder enc;
    EXPECT_TRUE(enc.Encode(cmd, bytes).ok());
    return bytes;
  }

  SystemClock clock_;
  testing::CapturingSink sink_;
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
  StartWithDeviceBorn();
  broker_.Send({mqtt::Event::Kind::kMessage, 0, {}, "spBv1.0/Plant1/NCMD/gw-01", Rebirth(), 0});
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

TEST_F(UplinkTest, DataAtQos0IsAcknowledgedByTheBarrierAfterIt) {
  StartWithDeviceBorn();
  broker_.HoldAcks(true);
  Push(0, Value(1.0));
  WaitPublished("/barrier", 1);
  const auto log = broker_.log();
  const auto data = broker_.published("/DDATA/");
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0].qos, 0);
  EXPECT_EQ(log.back().topic, "kiln/edge/Plant1/gw-01/barrier");
  EXPECT_EQ(log.back().qos, 1);
  EXPECT_EQ(queue_.stats().depth, 1u);  // published, but the broker has not confirmed it
  broker_.ReleaseAcks();
  WaitDepth(0);
  EXPECT_EQ(queue_.stats().acked, 1u);
}

TEST_F(UplinkTest, UnconfirmedDataIsReplayedAsHistoryAfterTheNextBirths) {
  StartWithDeviceBorn();
  broker_.HoldAcks(true);
  Push(0, Value(7.0));
  WaitPublished("/barrier", 1);
  broker_.Send({mqtt::Event::Kind::kDisconnected, 7, "lost", {}, {}, 0});
  WaitConnects(2);
  broker_.HoldAcks(false);
  Accept();
  WaitPublished("/DDATA/", 2);
  const auto log = broker_.log();
  size_t nbirth = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    if (log[i].topic.find("/NBIRTH/") != std::string::npos) nbirth = i;
  }
  ASSERT_GT(nbirth, 0u);
  ASSERT_LT(nbirth + 2, log.size());
  EXPECT_EQ(log[nbirth + 1].topic, "spBv1.0/Plant1/DBIRTH/gw-01/press-3");
  auto replay = Decode(log[nbirth + 2]);  // right after the births, with the new seq
  EXPECT_EQ(log[nbirth + 2].topic, "spBv1.0/Plant1/DDATA/gw-01/press-3");
  EXPECT_EQ(replay.seq, 2u);
  ASSERT_EQ(replay.metrics.size(), 1u);
  EXPECT_TRUE(replay.metrics[0].is_historical);
  EXPECT_EQ(replay.metrics[0].value, Value(7.0));
  WaitDepth(0);
}

TEST_F(UplinkTest, NoDataBeyondTheBarrierWindowAndBirthsWaitForIt) {
  StartWithDeviceBorn();
  broker_.HoldAcks(true);
  for (int i = 0; i < 10; ++i) {
    Push(0, Value(static_cast<double>(i)));
    WaitPublished("/barrier", std::min(i + 1, 4));
  }
  const size_t data_before = broker_.published("/DDATA/").size();
  EXPECT_LE(data_before, 4u);  // one round per barrier, at most four unconfirmed
  EXPECT_EQ(broker_.held_acks(), 4u);
  // A rebirth request now: births must wait until nothing is in flight.
  broker_.Send({mqtt::Event::Kind::kMessage, 0, {}, "spBv1.0/Plant1/NCMD/gw-01", Rebirth(), 0});
  std::this_thread::sleep_for(50ms);  // give a wrong implementation the chance to publish
  EXPECT_EQ(broker_.published("/NBIRTH/").size(), 1u);
  EXPECT_EQ(broker_.published("/DDATA/").size(), data_before);
  broker_.ReleaseAcks();
  WaitPublished("/NBIRTH/", 2);
  WaitDepth(0);
  // Every value arrived: the confirmed ones live, the rest replayed after the new births.
  std::vector<double> values;
  for (const auto& e : broker_.published("/DDATA/")) {
    for (const auto& m : Decode(e).metrics) values.push_back(*m.value.AsDouble());
  }
  std::vector<double> want;
  for (int i = 0; i < 10; ++i) want.push_back(i);
  EXPECT_EQ(values, want);
}

TEST_F(UplinkTest, HistoryOfAnOfflineDeviceWaitsForItsNextBirth) {
  Push(0, Value(3.0));  // queued while no session: becomes history
  uplink_->Start();     // the device is not online yet
  WaitConnects(1);
  Accept();
  WaitPublished("/NBIRTH/", 1);
  WaitDepth(1);  // not published, not acknowledged
  EXPECT_TRUE(broker_.published("/DDATA/").empty());
  uplink_->OnDeviceStatus(0, true);
  WaitPublished("/DDATA/", 1);
  auto replay = Decode(broker_.published("/DDATA/")[0]);
  ASSERT_EQ(replay.metrics.size(), 1u);
  EXPECT_TRUE(replay.metrics[0].is_historical);
  EXPECT_EQ(replay.metrics[0].value, Value(3.0));
  WaitDepth(0);
}

TEST_F(UplinkTest, LiveSamplesBeforeTheDeviceBirthComeAsHistoryAfterIt) {
  uplink_->Start();
  WaitConnects(1);
  Accept();
  WaitPublished("/NBIRTH/", 1);
  Push(0, Value(1.0));  // the device's first read, before its online event is applied
  WaitDepth(1);         // not published (no DBIRTH yet), so not acknowledged
  uplink_->OnDeviceStatus(0, true);
  WaitPublished("/DDATA/", 1);
  EXPECT_EQ(Decode(broker_.published("/DBIRTH/")[0]).metrics[0].value, Value(1.0));
  auto replay = Decode(broker_.published("/DDATA/")[0]);
  ASSERT_EQ(replay.metrics.size(), 1u);
  EXPECT_TRUE(replay.metrics[0].is_historical);
  EXPECT_EQ(replay.metrics[0].value, Value(1.0));
  WaitDepth(0);
}

TEST_F(UplinkTest, ABirthThatReleasesHeldSamplesNeverRepublishesWhatIsInFlight) {
  StartWithDeviceBorn();
  broker_.HoldAcks(true);
  Push(0, Value(1.0));  // published, its barrier unconfirmed
  WaitPublished("/barrier", 1);
  uplink_->OnDeviceStatus(0, false);
  WaitPublished("/DDEATH/", 1);
  Push(0, Value(2.0));  // held: the device has no birth
  WaitDepth(2);
  uplink_->OnDeviceStatus(0, true);
  WaitPublished("/DBIRTH/", 2);
  std::this_thread::sleep_for(50ms);  // a wrong implementation would replay 1.0 now
  broker_.ReleaseAcks();
  WaitDepth(0);
  std::vector<std::pair<double, bool>> seen;  // value, is_historical
  for (const auto& e : broker_.published("/DDATA/")) {
    for (const auto& m : Decode(e).metrics) seen.emplace_back(*m.value.AsDouble(), m.is_historical);
  }
  const std::vector<std::pair<double, bool>> want = {{1.0, false}, {2.0, true}};
  EXPECT_EQ(seen, want);
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

TEST_F(PrimaryHostUplinkTest, DataWaitsInTheQueueWhileTheHostIsOfflineThenComesAsHistory) {
  uplink_->OnDeviceStatus(0, true);
  uplink_->Start();
  WaitConnects(1);
  Accept();
  State(true, 1000);
  WaitPublished("/DBIRTH/", 1);
  State(false, 2000);  // host offline: NDEATH, a new connection that waits for it
  WaitConnects(2);
  Accept();
  Push(0, Value(42.0));  // polled while the host is offline
  WaitDepth(1);
  EXPECT_TRUE(broker_.published("/DDATA/").empty());
  State(true, 3000);
  WaitPublished("/DDATA/", 1);
  auto replay = Decode(broker_.published("/DDATA/")[0]);
  ASSERT_EQ(replay.metrics.size(), 1u);
  EXPECT_TRUE(replay.metrics[0].is_historical);
  EXPECT_EQ(replay.metrics[0].value, Value(42.0));
  EXPECT_EQ(Decode(broker_.published("/DBIRTH/").back()).metrics[0].value, Value(42.0));
  WaitDepth(0);
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

// Wall time stands still at a known instant (for the results' "t"); monotonic time is real,
// since the uplink loop waits on it.
class FixedWallClock final : public Clock {
 public:
  Timestamp Now() const override { return FromEpochMillis(1764230400123); }
  MonoTime Monotonic() const override { return std::chrono::steady_clock::now(); }
};

// Wraps the fake broker's connections to record the retain flag of each publish.
class RetainRecorder {
 public:
  mqtt::ConnectFn Wrap(mqtt::ConnectFn inner) {
    return [this, inner](const mqtt::ClientOptions& o, const std::optional<mqtt::WillMessage>& w,
                         mqtt::EventHandler h) -> Result<std::unique_ptr<mqtt::Connection>> {
      auto c = inner(o, w, std::move(h));
      if (!c.ok()) return c.status();
      return std::unique_ptr<mqtt::Connection>(new Connection(*this, std::move(c).value()));
    };
  }
  std::vector<std::pair<std::string, bool>> retains() const {
    std::lock_guard lock(mu_);
    return retains_;
  }

 private:
  class Connection : public mqtt::Connection {
   public:
    Connection(RetainRecorder& r, std::unique_ptr<mqtt::Connection> inner)
        : r_(r), inner_(std::move(inner)) {}
    Result<int> Publish(std::string_view topic, std::string_view payload, int qos,
                        bool retain) override {
      {
        std::lock_guard lock(r_.mu_);
        r_.retains_.emplace_back(std::string(topic), retain);
      }
      return inner_->Publish(topic, payload, qos, retain);
    }
    Result<int> Subscribe(std::string_view topic, int qos) override {
      return inner_->Subscribe(topic, qos);
    }
    Status Disconnect() override { return inner_->Disconnect(); }

   private:
    RetainRecorder& r_;
    std::unique_ptr<mqtt::Connection> inner_;
  };

  mutable std::mutex mu_;
  std::vector<std::pair<std::string, bool>> retains_;
};

class CommandUplinkTest : public UplinkTest {
 protected:
  static constexpr std::string_view kResultTopic = "kiln/edge/Plant1/gw-01/command-result";

  CommandUplinkTest() { Make(/*with_on_write=*/false); }
  ~CommandUplinkTest() override { uplink_->Stop(); }  // before the members it uses go

  void Make(bool with_on_write) {
    UplinkOptions o;
    o.mqtt.client_id = "test";
    o.reconnect_initial = 1ms;
    o.reconnect_max = 2ms;
    o.connect = retains_.Wrap(broker_.Connect());
    if (with_on_write) {
      o.on_write = [this](EdgeNode::WriteCommand w) {
        std::lock_guard lock(writes_mu_);
        writes_.push_back(std::move(w));
        writes_cv_.notify_all();
      };
    }
    uplink_ = std::make_unique<Uplink>(o, node_, queue_, wall_, log_, metrics_);
  }

  static std::string Dcmd(std::vector<std::pair<std::string, Value>> metrics,
                          const std::string& command_id) {
    sparkplug::Payload cmd;
    cmd.timestamp = 1764230400000;
    for (auto& [name, value] : metrics) {
      sparkplug::Metric m;
      m.name = name;
      m.datatype = value.type() == ValueType::kBool ? sparkplug::DataType::kBoolean
                                                    : sparkplug::DataType::kDouble;
      m.value = value;
      m.properties.push_back({"kiln.commandId", sparkplug::DataType::kString, Value(command_id)});
      cmd.metrics.push_back(std::move(m));
    }
    std::string bytes;
    sparkplug::Encoder enc;
    EXPECT_TRUE(enc.Encode(cmd, bytes).ok());
    return bytes;
  }
  void SendDcmd(const std::string& payload) {
    broker_.Send(
        {mqtt::Event::Kind::kMessage, 0, {}, "spBv1.0/Plant1/DCMD/gw-01/press-3", payload, 0});
  }
  bool WaitWrites(size_t n) {
    std::unique_lock lock(writes_mu_);
    return writes_cv_.wait_for(lock, 10s, [&] { return writes_.size() >= n; });
  }
  // Index in the broker's log of the last subscription to `topic` (-1 if none).
  static long LastSubscribe(const std::vector<FakeBroker::Entry>& log, std::string_view topic) {
    long at = -1;
    for (size_t i = 0; i < log.size(); ++i) {
      if (log[i].kind == "subscribe" && log[i].topic == topic) at = static_cast<long>(i);
    }
    return at;
  }
  static std::string Json(const std::string& id, const std::string& state,
                          const std::string& reason, const std::string& read_back) {
    return R"({"id":")" + id + R"(","device":"press-3","metric":"Setpoint","state":")" + state +
           R"(","reason":")" + reason + "\"" +
           (read_back.empty() ? std::string() : ",\"read_back\":" + read_back) +
           ",\"t\":1764230400123}";
  }
  static CommandResult Succeeded(std::string id, std::string state = "succeeded") {
    return CommandResult{std::move(id), "press-3", "Setpoint", std::move(state), "", 72.5};
  }

  FixedWallClock wall_;
  RetainRecorder retains_;
  std::mutex writes_mu_;
  std::condition_variable writes_cv_;
  std::vector<EdgeNode::WriteCommand> writes_;
};

TEST_F(CommandUplinkTest, DeviceCommandWritesGoToOnWrite) {
  Make(/*with_on_write=*/true);
  StartWithDeviceBorn();
  SendDcmd(Dcmd({{"Temperature", Value(55.5)}, {"Running", Value(true)}}, "c-9f2"));
  ASSERT_TRUE(WaitWrites(2));
  {
    std::lock_guard lock(writes_mu_);
    EXPECT_EQ(writes_[0].device, 0u);
    EXPECT_EQ(writes_[0].command_id, "c-9f2");
    EXPECT_EQ(writes_[0].request.tag, "Temperature");
    EXPECT_EQ(writes_[0].request.value, Value(55.5));
    EXPECT_EQ(writes_[1].request.tag, "Running");
    EXPECT_EQ(writes_[1].request.value, Value(true));
  }
  // The result is the runner's to publish, not the uplink's.
  uplink_->Stop();
  EXPECT_TRUE(broker_.published("/command-result").empty());
}

TEST_F(CommandUplinkTest, WithoutOnWriteEveryWriteIsAnsweredRejected) {
  StartWithDeviceBorn();
  SendDcmd(Dcmd({{"Temperature", Value(55.5)}, {"Running", Value(true)}}, "c-9f2"));
  WaitPublished("/command-result", 2);
  const auto results = broker_.published("/command-result");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].topic, kResultTopic);
  EXPECT_EQ(results[0].qos, 1);
  const std::vector<std::string> metrics = {"Temperature", "Running"};
  for (size_t i = 0; i < 2; ++i) {
    auto doc = json::Parse(results[i].payload);
    ASSERT_TRUE(doc.ok()) << results[i].payload;
    EXPECT_EQ(doc->Find("id")->AsString(), "c-9f2");
    EXPECT_EQ(doc->Find("metric")->AsString(), metrics[i]);
    EXPECT_EQ(doc->Find("state")->AsString(), "rejected");
    EXPECT_EQ(doc->Find("reason")->AsString(), "this node takes no writes");
    EXPECT_EQ(doc->Find("read_back"), nullptr);
    EXPECT_EQ(doc->Find("t")->AsInt64(), 1764230400123);
    // Every result names the device of the DCMD (docs/formats/commands.md).
    ASSERT_NE(doc->Find("device"), nullptr);
    EXPECT_EQ(doc->Find("device")->AsString(), "press-3") << results[i].payload;
  }
}

TEST_F(CommandUplinkTest, ResultIsPublishedAtQos1NotRetainedAsTheDocumentedJson) {
  StartWithDeviceBorn();
  uplink_->PublishCommandResult(Succeeded("c-9f2"));
  uplink_->PublishCommandResult(
      {"", "press-3", "Setpoint", "failed", "exception 02 \"illegal data address\"", {}});
  WaitPublished("/command-result", 2);
  const auto results = broker_.published("/command-result");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].topic, kResultTopic);
  EXPECT_EQ(results[0].qos, 1);
  EXPECT_EQ(results[0].payload, Json("c-9f2", "succeeded", "", "72.5"));
  EXPECT_EQ(results[1].qos, 1);
  // No read_back when nothing was read back; the reason is escaped.
  EXPECT_EQ(results[1].payload, Json("", "failed", R"(exception 02 \"illegal data address\")", ""));
  size_t seen = 0;
  for (const auto& [topic, retain] : retains_.retains()) {
    if (topic != kResultTopic) continue;
    ++seen;
    EXPECT_FALSE(retain);
  }
  EXPECT_EQ(seen, 2u);
}

TEST_F(CommandUplinkTest, ResultsQueuedWhileDisconnectedGoOutOnceConnected) {
  uplink_->PublishCommandResult(Succeeded("c-1"));  // before any connection
  uplink_->Start();
  WaitConnects(1);
  uplink_->PublishCommandResult(Succeeded("c-2"));  // connecting, no CONNACK yet
  Accept();
  WaitPublished("/command-result", 2);
  auto log = broker_.log();
  auto results = broker_.published("/command-result");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].payload, Json("c-1", "succeeded", "", "72.5"));
  EXPECT_EQ(results[1].payload, Json("c-2", "succeeded", "", "72.5"));
  // Not before the broker accepted the session (it subscribes to commands right then).
  const long subscribed = LastSubscribe(log, "spBv1.0/Plant1/NCMD/gw-01");
  ASSERT_GE(subscribed, 0);
  for (size_t i = 0; i < static_cast<size_t>(subscribed); ++i) {
    EXPECT_EQ(log[i].topic.find("/command-result"), std::string::npos) << i;
  }

  // The connection drops; a result produced meanwhile waits for the next session.
  broker_.Send({mqtt::Event::Kind::kDisconnected, 7, "lost", {}, {}, 0});
  WaitConnects(2);
  uplink_->PublishCommandResult(Succeeded("c-3"));
  Accept();
  WaitPublished("/command-result", 3);
  log = broker_.log();
  results = broker_.published("/command-result");
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[2].payload, Json("c-3", "succeeded", "", "72.5"));
  const long resubscribed = LastSubscribe(log, "spBv1.0/Plant1/NCMD/gw-01");
  ASSERT_GT(resubscribed, subscribed);
  long c3 = -1;
  for (size_t i = 0; i < log.size(); ++i) {
    if (log[i].kind == "publish" && log[i].payload.find("\"c-3\"") != std::string::npos) {
      c3 = static_cast<long>(i);
    }
  }
  EXPECT_GT(c3, resubscribed);
}

TEST_F(CommandUplinkTest, MoreThan1000QueuedResultsKeepTheNewest1000) {
  for (int i = 0; i < 1005; ++i) uplink_->PublishCommandResult(Succeeded("c-" + std::to_string(i)));
  uplink_->Start();
  WaitConnects(1);
  Accept();
  WaitPublished("/command-result", 1000);
  uplink_->PublishCommandResult(Succeeded("last"));  // everything before it is out by then
  WaitPublished("/command-result", 1001);
  const auto results = broker_.published("/command-result");
  ASSERT_EQ(results.size(), 1001u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(results[i].payload, Json("c-" + std::to_string(i + 5), "succeeded", "", "72.5")) << i;
  }
  EXPECT_EQ(results[1000].payload, Json("last", "succeeded", "", "72.5"));
}

}  // namespace
TEST_F(UplinkTest, ARefusedSubscriptionIsLoggedWithItsTopic) {
  StartWithDeviceBorn();
  // The broker's ACL refuses the second SUBSCRIBE (the DCMD filter): SUBACK 0x80.
  std::string refused;
  int mid = 0;
  for (const auto& e : broker_.log()) {
    if (e.kind == "subscribe" && ++mid == 2) refused = e.topic;
  }
  ASSERT_FALSE(refused.empty());
  broker_.Send({mqtt::Event::Kind::kSubscribed, 0, {}, {}, {}, 1});  // granted: not logged
  broker_.Send({mqtt::Event::Kind::kSubscribed, 0x80, {}, {}, {}, 2});
  EXPECT_TRUE(sink_.WaitFor("refused the subscription to " + refused + " (SUBACK 0x80)",
                            std::chrono::seconds(10)))
      << ::testing::PrintToString(sink_.lines());
  // Events are handled in order: the granted one came first and said nothing.
  EXPECT_THAT(sink_.Matching("refused"), ::testing::SizeIs(1));
}

}  // namespace kiln::edge
