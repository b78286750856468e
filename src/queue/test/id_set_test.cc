#include "queue/id_set.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <set>

namespace kiln::queue {
namespace {

using ::testing::ElementsAre;

TEST(IdSetTest, MergesTouchingAndOverlappingIntervals) {
  IdSet s;
  EXPECT_EQ(s.Add(10, 20), 10u);
  EXPECT_EQ(s.Add(30, 40), 10u);
  EXPECT_EQ(s.Add(20, 25), 5u);  // touches [10, 20)
  EXPECT_EQ(s.Add(24, 31), 5u);  // bridges to [30, 40)
  EXPECT_THAT(s.ranges(), ElementsAre(IdRange{10, 30}));
  EXPECT_EQ(s.Add(12, 18), 0u);
  EXPECT_EQ(s.size(), 30u);
}

TEST(IdSetTest, ContainsAndNextAbsent) {
  IdSet s;
  s.Add(5, 8);
  s.Add(9, 10);
  EXPECT_FALSE(s.Contains(4));
  EXPECT_TRUE(s.Contains(5));
  EXPECT_TRUE(s.Contains(7));
  EXPECT_FALSE(s.Contains(8));
  EXPECT_EQ(s.NextAbsent(1), 1u);
  EXPECT_EQ(s.NextAbsent(5), 8u);
  EXPECT_EQ(s.NextAbsent(9), 10u);
}

TEST(IdSetTest, EraseBelowAndFromSplitIntervals) {
  IdSet s;
  s.Add(0, 10);
  s.Add(20, 30);
  s.EraseBelow(5);
  EXPECT_THAT(s.ranges(), ElementsAre(IdRange{5, 5}, IdRange{20, 10}));
  s.EraseFrom(25);
  EXPECT_THAT(s.ranges(), ElementsAre(IdRange{5, 5}, IdRange{20, 5}));
  EXPECT_EQ(s.size(), 10u);
  EXPECT_EQ(s.CountIn(8, 22), 4u);
}

TEST(IdSetTest, AppendIdExtendsContiguousRuns) {
  std::vector<IdRange> r;
  AppendId(r, 3);
  AppendId(r, 4);
  AppendId(r, 7);
  EXPECT_THAT(r, ElementsAre(IdRange{3, 2}, IdRange{7, 1}));
}

TEST(IdSetTest, AgreesWithAPlainSetOnRandomOperations) {
  std::mt19937 rng(42);
  IdSet s;
  std::set<uint64_t> ref;
  for (int i = 0; i < 2000; ++i) {
    const uint64_t a = rng() % 500;
    const uint64_t b = a + rng() % 20;
    uint64_t fresh = 0;
    for (uint64_t id = a; id < b; ++id) fresh += ref.insert(id).second ? 1 : 0;
    ASSERT_EQ(s.Add(a, b), fresh);
    if (i % 100 == 99) {
      const uint64_t cut = rng() % 500;
      s.EraseBelow(cut);
      ref.erase(ref.begin(), ref.lower_bound(cut));
    }
    ASSERT_EQ(s.size(), ref.size());
    const uint64_t probe = rng() % 520;
    ASSERT_EQ(s.Contains(probe), ref.count(probe) == 1);
    uint64_t next = probe;
    while (ref.count(next) != 0) ++next;
    ASSERT_EQ(s.NextAbsent(probe), next);
  }
}

}  // namespace
}  // namespace kiln::queue
