#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "queue/sample_queue.h"

namespace kiln::queue {
namespace {

using contract::Sample;
using contract::Value;

std::vector<Sample> Make(int from, int n) {
  std::vector<Sample> out;
  for (int i = from; i < from + n; ++i) {
    out.push_back(Sample{static_cast<contract::TagId>(i), Value(i), {}, {}});
  }
  return out;
}

MonoTime Now() { return std::chrono::steady_clock::now(); }

TEST(MemorySampleQueueTest, ReadsInOrderAndAcks) {
  MemorySampleQueue q(10);
  ASSERT_TRUE(q.Push(Make(0, 5)).ok());
  SampleBatch b = q.Read(3, Now());
  EXPECT_EQ(b.first_id, 1u);
  ASSERT_EQ(b.samples.size(), 3u);
  EXPECT_EQ(b.samples[2].tag, 2u);
  b = q.Read(10, Now());
  EXPECT_EQ(b.first_id, 4u);
  EXPECT_EQ(b.samples.size(), 2u);
  q.Ack(3);
  EXPECT_EQ(q.stats().depth, 2u);
  EXPECT_EQ(q.stats().acked, 3u);
}

TEST(MemorySampleQueueTest, RewindReplaysUnacked) {
  MemorySampleQueue q(10);
  ASSERT_TRUE(q.Push(Make(0, 4)).ok());
  (void)q.Read(4, Now());
  q.Ack(2);
  q.Rewind();
  SampleBatch b = q.Read(10, Now());
  EXPECT_EQ(b.first_id, 3u);
  ASSERT_EQ(b.samples.size(), 2u);
  EXPECT_EQ(b.samples[0].tag, 2u);
}

TEST(MemorySampleQueueTest, DropsOldestWhenFullAndCounts) {
  MemorySampleQueue q(4);
  ASSERT_TRUE(q.Push(Make(0, 6)).ok());
  EXPECT_EQ(q.stats().dropped, 2u);
  SampleBatch b = q.Read(10, Now());
  EXPECT_EQ(b.first_id, 3u);
  ASSERT_EQ(b.samples.size(), 4u);
  EXPECT_EQ(b.samples[0].tag, 2u);
  EXPECT_EQ(b.samples[3].tag, 5u);
}

TEST(MemorySampleQueueTest, AckNeverReleasesUnreadSamples) {
  MemorySampleQueue q(8);
  ASSERT_TRUE(q.Push(Make(0, 4)).ok());
  (void)q.Read(1, Now());
  q.Ack(100);
  EXPECT_EQ(q.stats().depth, 3u);
}

TEST(MemorySampleQueueTest, ReadWaitsForPushFromAnotherThread) {
  MemorySampleQueue q(8);
  std::jthread producer([&] { ASSERT_TRUE(q.Push(Make(7, 1)).ok()); });
  SampleBatch b = q.Read(10, Now() + std::chrono::seconds(30));
  ASSERT_EQ(b.samples.size(), 1u);
  EXPECT_EQ(b.samples[0].tag, 7u);
}

TEST(MemorySampleQueueTest, WakeInterruptsRead) {
  MemorySampleQueue q(8);
  std::jthread waker([&] { q.Wake(); });
  SampleBatch b = q.Read(10, Now() + std::chrono::seconds(30));
  EXPECT_TRUE(b.samples.empty());
}

}  // namespace
}  // namespace kiln::queue
