#include "server/live.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace kiln::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace std::chrono_literals;

LiveEvent Value(std::string path, std::string data = "{}") {
  return LiveEvent{"value", std::move(path), std::move(data)};
}

std::vector<std::string> Paths(const std::vector<LiveEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.path);
  return out;
}

// Generous bound for waits that must not time out when the code is right.
constexpr auto kLong = std::chrono::seconds(10);

TEST(LiveHubTest, NobodyListensAtFirst) {
  LiveHub hub;
  EXPECT_FALSE(hub.HasSubscribers());
  const std::vector<LiveEvent> events = {Value("G/N/T")};
  hub.Publish(events);  // goes nowhere
  EXPECT_EQ(hub.dropped(), 0u);
}

TEST(LiveHubTest, WaitReturnsQueuedEventsInOrder) {
  LiveHub hub;
  auto sub = hub.Subscribe("");
  EXPECT_TRUE(hub.HasSubscribers());
  const std::vector<LiveEvent> events = {Value("G/N/A", "{\"v\":1}"), Value("G/N/B", "{\"v\":2}")};
  hub.Publish(events);
  hub.Publish(std::vector<LiveEvent>{LiveEvent{"status", "G/N", "{\"online\":true}"}});
  uint64_t dropped = 99;
  auto got = sub->Wait(std::stop_token(), kLong, dropped);
  EXPECT_EQ(dropped, 0u);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].type, "value");
  EXPECT_EQ(got[0].path, "G/N/A");
  EXPECT_EQ(got[0].data, "{\"v\":1}");
  EXPECT_EQ(got[1].data, "{\"v\":2}");
  EXPECT_EQ(got[2].type, "status");
  EXPECT_EQ(got[2].data, "{\"online\":true}");
  // Taken: the next wait times out empty.
  got = sub->Wait(std::stop_token(), 1ms, dropped);
  EXPECT_THAT(got, IsEmpty());
  EXPECT_EQ(dropped, 0u);
}

TEST(LiveHubTest, SubscribersSeeOnlyTheirPrefix) {
  LiveHub hub;
  auto all = hub.Subscribe("");
  auto d1 = hub.Subscribe("G/N/D1/");
  auto other = hub.Subscribe("H/");
  const std::vector<LiveEvent> events = {Value("G/N/D1/P"), Value("G/N/D2/P"), Value("G/N/D1/Q"),
                                         Value("G/N/D1")};
  hub.Publish(events);
  uint64_t dropped = 0;
  EXPECT_THAT(Paths(all->Wait(std::stop_token(), kLong, dropped)),
              ElementsAre("G/N/D1/P", "G/N/D2/P", "G/N/D1/Q", "G/N/D1"));
  EXPECT_THAT(Paths(d1->Wait(std::stop_token(), kLong, dropped)),
              ElementsAre("G/N/D1/P", "G/N/D1/Q"));
  EXPECT_THAT(other->Wait(std::stop_token(), 1ms, dropped), IsEmpty());
}

TEST(LiveHubTest, AFullQueueDropsTheOldestAndSaysHowMany) {
  LiveHub hub(/*max_queue=*/3);
  auto slow = hub.Subscribe("");
  auto filtered = hub.Subscribe("G/N/E");
  std::vector<LiveEvent> events;
  for (int i = 0; i < 5; ++i) events.push_back(Value("G/N/M" + std::to_string(i)));
  hub.Publish(events);
  hub.Publish(std::vector<LiveEvent>{Value("G/N/M5")});
  uint64_t dropped = 0;
  EXPECT_THAT(Paths(slow->Wait(std::stop_token(), kLong, dropped)),
              ElementsAre("G/N/M3", "G/N/M4", "G/N/M5"));
  EXPECT_EQ(dropped, 3u);
  EXPECT_EQ(hub.dropped(), 3u);
  // Reported once.
  hub.Publish(std::vector<LiveEvent>{Value("G/N/M6")});
  EXPECT_THAT(Paths(slow->Wait(std::stop_token(), kLong, dropped)), ElementsAre("G/N/M6"));
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(hub.dropped(), 3u) << "the total stays";
  // The filtered subscriber saw nothing and lost nothing.
  EXPECT_THAT(filtered->Wait(std::stop_token(), 1ms, dropped), IsEmpty());
  EXPECT_EQ(dropped, 0u);
}

TEST(LiveHubTest, HasSubscribersGoesFalseWhenTheLastSubscriptionIsReleased) {
  LiveHub hub;
  auto a = hub.Subscribe("");
  auto b = hub.Subscribe("G/");
  EXPECT_TRUE(hub.HasSubscribers());
  a.reset();
  EXPECT_TRUE(hub.HasSubscribers());
  b.reset();
  EXPECT_FALSE(hub.HasSubscribers());
  hub.Publish(std::vector<LiveEvent>{Value("G/N/T")});  // no subscriber left: nothing happens
  auto c = hub.Subscribe("");
  EXPECT_TRUE(hub.HasSubscribers());
  uint64_t dropped = 0;
  EXPECT_THAT(c->Wait(std::stop_token(), 1ms, dropped), IsEmpty())
      << "a new subscriber sees only what is published after it subscribed";
}

TEST(LiveHubTest, WaitWakesUpForAnEventPublishedFromAnotherThread) {
  LiveHub hub;
  auto sub = hub.Subscribe("");
  std::promise<void> waiting;
  auto result = std::async(std::launch::async, [&] {
    waiting.set_value();
    uint64_t dropped = 0;
    return sub->Wait(std::stop_token(), kLong, dropped);
  });
  waiting.get_future().wait();
  hub.Publish(std::vector<LiveEvent>{Value("G/N/T")});
  ASSERT_EQ(result.wait_for(kLong), std::future_status::ready);
  EXPECT_THAT(Paths(result.get()), ElementsAre("G/N/T"));
}

TEST(LiveHubTest, WaitReturnsWhenStopIsRequested) {
  LiveHub hub;
  auto sub = hub.Subscribe("");
  std::stop_source stop;
  std::promise<void> waiting;
  const auto start = std::chrono::steady_clock::now();
  auto result = std::async(std::launch::async, [&] {
    waiting.set_value();
    uint64_t dropped = 0;
    // Far longer than the test may take: only the stop can end it early.
    return sub->Wait(stop.get_token(), std::chrono::hours(1), dropped);
  });
  waiting.get_future().wait();
  stop.request_stop();
  ASSERT_EQ(result.wait_for(kLong), std::future_status::ready);
  EXPECT_THAT(result.get(), IsEmpty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, kLong);
}

TEST(LiveHubTest, WaitWithStopAlreadyRequestedStillTakesQueuedEvents) {
  LiveHub hub;
  auto sub = hub.Subscribe("");
  hub.Publish(std::vector<LiveEvent>{Value("G/N/T")});
  std::stop_source stop;
  stop.request_stop();
  uint64_t dropped = 0;
  EXPECT_THAT(Paths(sub->Wait(stop.get_token(), std::chrono::hours(1), dropped)),
              ElementsAre("G/N/T"));
  EXPECT_THAT(sub->Wait(stop.get_token(), std::chrono::hours(1), dropped), IsEmpty());
}

}  // namespace
}  // namespace kiln::server
