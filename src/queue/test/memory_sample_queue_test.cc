#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "queue/sample_queue.h"

namespace kiln::queue {
namespace {

using contract::Sample;
using contract::Value;
using ::testing::ElementsAre;

std::vector<Sample> Make(int from, int n) {
  std::vector<Sample> out;
  for (int i = from; i < from + n; ++i) {
    out.push_back(Sample{static_cast<contract::TagId>(i), Value(i), {}, {}});
  }
  return out;
}

std::vector<contract::TagId> Tags(const SampleBatch& b) {
  std::vector<contract::TagId> out;
  for (const auto& s : b.samples) out.push_back(s.tag);
  return out;
}

MonoTime Now() { return std::chrono::steady_clock::now(); }

TEST(MemorySampleQueueTest, LiveReadsInOrderWithIds) {
  MemorySampleQueue q(10);
  ASSERT_TRUE(q.Push(Make(0, 5)).ok());
  SampleBatch b = q.ReadLive(3, Now());
  EXPECT_THAT(Tags(b), ElementsAre(0, 1, 2));
  EXPECT_THAT(b.ids, ElementsAre(IdRange{1, 3}));
  b = q.ReadLive(10, Now());
  EXPECT_THAT(b.ids, ElementsAre(IdRange{4, 2}));
  EXPECT_TRUE(q.ReadLive(10, Now()).empty());
  const std::vector<IdRange> acks = {{1, 3}};
  q.Ack(acks);
  EXPECT_EQ(q.stats().depth, 2u);
  EXPECT_EQ(q.stats().acked, 3u);
}

TEST(MemorySampleQueueTest, UnackedLiveSamplesBecomeBacklogOfTheNextDelivery) {
  MemorySampleQueue q(10);
  ASSERT_TRUE(q.Push(Make(0, 4)).ok());
  EXPECT_EQ(q.StartDelivery(), 1u);  // nothing read live yet: everything is live
  EXPECT_TRUE(q.ReadBacklog(10).empty());
  (void)q.ReadLive(4, Now());
  const std::vector<IdRange> acks = {{2, 1}};  // only id 2 reached the broker
  q.Ack(acks);
  ASSERT_TRUE(q.Push(Make(10, 1)).ok());
  EXPECT_EQ(q.StartDelivery(), 5u);
  SampleBatch b = q.ReadBacklog(10);
  EXPECT_THAT(Tags(b), ElementsAre(0, 2, 3));
  EXPECT_THAT(b.ids, ElementsAre(IdRange{1, 1}, IdRange{3, 2}));
  EXPECT_TRUE(q.ReadBacklog(10).empty());
  EXPECT_THAT(Tags(q.ReadLive(10, Now())), ElementsAre(10));
}

TEST(MemorySampleQueueTest, ANewDeliveryRereadsWhatIsUnacked) {
  MemorySampleQueue q(10);
  ASSERT_TRUE(q.Push(Make(0, 4)).ok());
  (void)q.ReadLive(4, Now());
  q.StartDelivery();
  EXPECT_EQ(q.ReadBacklog(10).samples.size(), 4u);
  const std::vector<IdRange> acks = {{1, 1}, {4, 1}};
  q.Ack(acks);
  EXPECT_EQ(q.StartDelivery(), 5u);  // nothing read live since: the same boundary
  EXPECT_THAT(Tags(q.ReadBacklog(10)), ElementsAre(1, 2));
}

TEST(MemorySampleQueueTest, BacklogReadsInBoundedBatches) {
  MemorySampleQueue q(10);
  ASSERT_TRUE(q.Push(Make(0, 5)).ok());
  (void)q.ReadLive(5, Now());
  q.StartDelivery();
  EXPECT_THAT(q.ReadBacklog(2).ids, ElementsAre(IdRange{1, 2}));
  EXPECT_THAT(q.ReadBacklog(2).ids, ElementsAre(IdRange{3, 2}));
  EXPECT_THAT(q.ReadBacklog(2).ids, ElementsAre(IdRange{5, 1}));
}

TEST(MemorySampleQueueTest, DropsOldestWhenFullAndCountsOnlyUnacked) {
  MemorySampleQueue q(4);
  ASSERT_TRUE(q.Push(Make(0, 4)).ok());
  (void)q.ReadLive(1, Now());
  q.Ack(std::vector<IdRange>{{1, 1}});  // released at once: not a drop later
  ASSERT_TRUE(q.Push(Make(4, 3)).ok());
  EXPECT_EQ(q.stats().dropped, 2u);  // ids 2 and 3
  EXPECT_EQ(q.stats().depth, 4u);
  SampleBatch b = q.ReadLive(10, Now());
  EXPECT_THAT(Tags(b), ElementsAre(3, 4, 5, 6));
  EXPECT_THAT(b.ids, ElementsAre(IdRange{4, 4}));
}

TEST(MemorySampleQueueTest, AckIgnoresIdsNeverAppended) {
  MemorySampleQueue q(8);
  ASSERT_TRUE(q.Push(Make(0, 4)).ok());
  q.Ack(std::vector<IdRange>{{3, 100}});
  EXPECT_EQ(q.stats().acked, 2u);
  EXPECT_EQ(q.stats().depth, 2u);
}

TEST(MemorySampleQueueTest, ReportsTheOldestUnackedSourceTime) {
  MemorySampleQueue q(8);
  std::vector<Sample> s = Make(0, 2);
  s[0].source_time = Timestamp(std::chrono::seconds(5));
  s[1].source_time = Timestamp(std::chrono::seconds(9));
  ASSERT_TRUE(q.Push(s).ok());
  EXPECT_EQ(q.stats().oldest_unacked_ns, 5'000'000'000);
  q.Ack(std::vector<IdRange>{{1, 1}});
  EXPECT_EQ(q.stats().oldest_unacked_ns, 9'000'000'000);
  q.Ack(std::vector<IdRange>{{2, 1}});
  EXPECT_EQ(q.stats().oldest_unacked_ns, 0);
}

TEST(MemorySampleQueueTest, ReadLiveWaitsForPushFromAnotherThread) {
  MemorySampleQueue q(8);
  std::jthread producer([&] { ASSERT_TRUE(q.Push(Make(7, 1)).ok()); });
  SampleBatch b = q.ReadLive(10, Now() + std::chrono::seconds(30));
  ASSERT_EQ(b.samples.size(), 1u);
  EXPECT_EQ(b.samples[0].tag, 7u);
}

TEST(MemorySampleQueueTest, WakeInterruptsReadLive) {
  MemorySampleQueue q(8);
  std::jthread waker([&] { q.Wake(); });
  SampleBatch b = q.ReadLive(10, Now() + std::chrono::seconds(30));
  EXPECT_TRUE(b.samples.empty());
}

}  // namespace
}  // namespace kiln::queue
