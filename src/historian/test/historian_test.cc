#include "historian/historian.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "core/testing/capturing_sink.h"
#include "core/testing/fault_injection_env.h"
#include "core/testing/temp_dir.h"
#include "historian/test/historian_test_util.h"
#include "testing/status_matchers.h"

namespace kiln::historian {
namespace {

using ::kiln::testing::CapturingSink;
using ::kiln::testing::FaultInjectionEnv;
using ::kiln::testing::FileOp;
using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::kiln::testing::TempDir;
using testing::CheckChunks;
using testing::ChunksOf;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint32_t kBad = 0x80000000;
constexpr uint32_t kUncertain = 0x40000000;
constexpr int64_t kT0 = 1700000000000;  // FakeClock's default start, ms

Point P(int64_t t, double v, uint32_t q = 0) { return Point{t, v, q, false}; }
Point Null(int64_t t, uint32_t q = kBad) { return Point{t, 0, q, true}; }

class HistorianTest : public ::testing::Test {
 protected:
  HistorianOptions Options() {
    HistorianOptions o;
    o.dir = dir_.path() + "/h";
    o.clock = &clock_;
    o.log = &sink_;
    o.background = false;
    o.wal_sync = WalSync::kNever;
    return o;
  }
  std::unique_ptr<Historian> Open(const HistorianOptions& o) {
    auto h = Historian::Open(o);
    EXPECT_THAT(h, IsOk());
    return h.ok() ? std::move(*h) : nullptr;
  }
  std::unique_ptr<Historian> Open() { return Open(Options()); }
  std::string db_dir() const { return dir_.path() + "/h"; }

  static Status Write(Historian& h, SeriesId id, std::vector<Point> points) {
    std::vector<PointWrite> w;
    for (const Point& p : points) w.push_back(PointWrite{id, p});
    return h.Append(w);
  }
  static std::vector<Point> All(Historian& h, SeriesId id, const QueryOptions& o = {}) {
    auto r =
        h.QueryRaw(id, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), o);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : std::vector<Point>{};
  }

  TempDir dir_;
  FakeClock clock_;
  CapturingSink sink_;
};

TEST_F(HistorianTest, AppendThenQueryRawFromHeadAndChunks) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("G/N/D/temp", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(Write(*h, *id, {P(1000, 1.5), P(2000, 2.5), P(3000, 3.5)}), IsOk());
  EXPECT_THAT(All(*h, *id), ElementsAre(P(1000, 1.5), P(2000, 2.5), P(3000, 3.5)));
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_EQ(h->stats().head_points, 0u);
  EXPECT_EQ(h->stats().chunks, 1u);
  EXPECT_EQ(h->stats().chunk_points, 3u);
  EXPECT_EQ(h->stats().wal_bytes, 32u);  // one new, empty segment
  EXPECT_EQ(h->stats().seal_rounds, 1u);
  EXPECT_THAT(All(*h, *id), ElementsAre(P(1000, 1.5), P(2000, 2.5), P(3000, 3.5)));
  // [from, to) bounds.
  EXPECT_THAT(h->QueryRaw(*id, 2000, 3000), IsOkAndHolds(ElementsAre(P(2000, 2.5))));
  EXPECT_THAT(h->QueryRaw(*id, 3001, 9000), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(h->QueryRaw(*id, 3000, 3000), IsOkAndHolds(IsEmpty()));
}

TEST_F(HistorianTest, SeriesAreFoundAndListedByPrefix) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto a = h->Series("G/N/D/b", SeriesKind::kNumeric);
  auto b = h->Series("G/N/D/a", SeriesKind::kText);
  auto c = h->Series("G/X/D/a", SeriesKind::kNumeric);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(h->Series("G/N/D/b", SeriesKind::kNumeric), IsOkAndHolds(*a));
  auto found = h->Find("G/N/D/a");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, *b);
  EXPECT_EQ(found->kind, SeriesKind::kText);
  EXPECT_FALSE(h->Find("nope").has_value());
  auto list = h->List("G/N/");
  ASSERT_THAT(list, SizeIs(2));
  EXPECT_EQ(list[0].path, "G/N/D/a");
  EXPECT_EQ(list[1].path, "G/N/D/b");
  EXPECT_THAT(h->List(""), SizeIs(3));
  EXPECT_EQ(h->stats().series, 3u);
}

TEST_F(HistorianTest, ErrorsForBadSeriesKindsAndIds) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto num = h->Series("num", SeriesKind::kNumeric);
  auto text = h->Series("text", SeriesKind::kText);
  ASSERT_THAT(num, IsOk());
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(h->Series("", SeriesKind::kNumeric), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(h->Series("num", SeriesKind::kText), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(h->Series("text", SeriesKind::kNumeric), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(Write(*h, *text, {P(1, 1)}), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(h->AppendText(*num, TextPoint{1, "x"}), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(Write(*h, 999, {P(1, 1)}), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(Write(*h, 0, {P(1, 1)}), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(h->AppendText(999, TextPoint{1, "x"}), StatusIs(StatusCode::kNotFound));
  // A batch with one bad point stores nothing.
  std::vector<PointWrite> batch = {{*num, P(5, 5)}, {999, P(6, 6)}};
  EXPECT_THAT(h->Append(batch), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(All(*h, *num), IsEmpty());
  EXPECT_THAT(h->QueryRaw(999, 0, 10), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(h->QueryRaw(*text, 0, 10), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(h->QueryText(*num, 0, 10), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(h->QueryBuckets(*num, 0, 10, 0, Aggregate::kAvg),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(h->QueryBuckets(*text, 0, 10, 5, Aggregate::kAvg),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(h->QueryBuckets(999, 0, 10, 5, Aggregate::kAvg), StatusIs(StatusCode::kNotFound));
  EXPECT_FALSE(h->Latest(999).has_value());
  EXPECT_FALSE(h->Latest(*text).has_value());
  EXPECT_FALSE(h->LatestText(*num).has_value());
  EXPECT_EQ(h->stats().points_written, 0u);
}

TEST_F(HistorianTest, OutOfOrderInsertsComeBackSorted) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  std::vector<Point> pts;
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) pts.push_back(P(i * 10, i));
  std::shuffle(pts.begin(), pts.end(), rng);
  for (size_t i = 0; i < pts.size(); i += 37) {
    std::vector<Point> batch(pts.begin() + static_cast<ptrdiff_t>(i),
                             pts.begin() + static_cast<ptrdiff_t>(std::min(i + 37, pts.size())));
    ASSERT_THAT(Write(*h, *id, batch), IsOk());
  }
  auto check = [&] {
    const auto got = All(*h, *id);
    ASSERT_EQ(got.size(), 500u);
    for (int i = 0; i < 500; ++i) ASSERT_EQ(got[static_cast<size_t>(i)], P(i * 10, i));
    // A range in the middle of the unsorted head.
    auto mid = h->QueryRaw(*id, 1000, 1050);
    ASSERT_THAT(mid, IsOkAndHolds(ElementsAre(P(1000, 100), P(1010, 101), P(1020, 102),
                                              P(1030, 103), P(1040, 104))));
  };
  check();
  ASSERT_THAT(h->Flush(), IsOk());
  check();
  EXPECT_EQ(CheckChunks(db_dir(), *id), 500);
}

TEST_F(HistorianTest, IdenticalPointTwiceIsStoredOnceAndCounted) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  // In order: the repeat meets the head's last point.
  ASSERT_THAT(Write(*h, *id, {P(10, 1), P(20, 2)}), IsOk());
  ASSERT_THAT(Write(*h, *id, {P(20, 2)}), IsOk());
  EXPECT_EQ(h->stats().duplicates, 1u);
  // A whole batch again (at-least-once edge): out of order within the head.
  ASSERT_THAT(Write(*h, *id, {P(10, 1), P(20, 2)}), IsOk());
  EXPECT_THAT(All(*h, *id), ElementsAre(P(10, 1), P(20, 2)));
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_THAT(All(*h, *id), ElementsAre(P(10, 1), P(20, 2)));
  EXPECT_EQ(h->stats().duplicates, 3u);
  // Again after sealing: merged into the chunk, still once.
  ASSERT_THAT(Write(*h, *id, {P(10, 1), P(20, 2)}), IsOk());
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_THAT(All(*h, *id), ElementsAre(P(10, 1), P(20, 2)));
  EXPECT_EQ(h->stats().duplicates, 5u);
  EXPECT_EQ(h->stats().chunk_points, 2u);
  EXPECT_EQ(h->stats().points_written, 7u);
  EXPECT_EQ(CheckChunks(db_dir(), *id), 2);
}

TEST_F(HistorianTest, EqualTimeWithAnotherValueReplaces) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(Write(*h, *id, {P(10, 1), P(20, 2), P(30, 3)}), IsOk());
  ASSERT_THAT(Write(*h, *id, {P(30, 33)}), IsOk());              // the head's last
  ASSERT_THAT(Write(*h, *id, {P(20, 22, kUncertain)}), IsOk());  // inside the head
  EXPECT_THAT(All(*h, *id), ElementsAre(P(10, 1), P(20, 22, kUncertain), P(30, 33)));
  ASSERT_THAT(h->Flush(), IsOk());
  ASSERT_THAT(Write(*h, *id, {P(10, 11)}), IsOk());  // in a chunk
  EXPECT_THAT(All(*h, *id), ElementsAre(P(10, 11), P(20, 22, kUncertain), P(30, 33)));
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_THAT(All(*h, *id), ElementsAre(P(10, 11), P(20, 22, kUncertain), P(30, 33)));
  EXPECT_EQ(h->stats().duplicates, 0u);
  EXPECT_EQ(CheckChunks(db_dir(), *id), 3);
}

TEST_F(HistorianTest, LateHistoryDoesNotReplaceLatest) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  EXPECT_FALSE(h->Latest(*id).has_value());
  ASSERT_THAT(Write(*h, *id, {P(100, 1)}), IsOk());
  ASSERT_THAT(Write(*h, *id, {P(50, 2), P(99, 3)}), IsOk());
  EXPECT_EQ(h->Latest(*id), P(100, 1));
  ASSERT_THAT(Write(*h, *id, {P(100, 4)}), IsOk());  // same time: replaces
  EXPECT_EQ(h->Latest(*id), P(100, 4));
  ASSERT_THAT(Write(*h, *id, {P(200, 5, kBad), Null(300)}), IsOk());
  EXPECT_EQ(h->Latest(*id), Null(300));
  EXPECT_EQ(h->Latest(*id, /*good_only=*/true), P(100, 4));
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_EQ(h->Latest(*id), Null(300));
  EXPECT_EQ(h->Latest(*id, true), P(100, 4));
  // After reopening, from the chunks.
  h.reset();
  h = Open();
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->Latest(*id), Null(300));
  EXPECT_EQ(h->Latest(*id, true), P(100, 4));
  ASSERT_THAT(Write(*h, *id, {P(10, 9)}), IsOk());
  EXPECT_EQ(h->Latest(*id), Null(300));
}

TEST_F(HistorianTest, LatestGoodFallsBackWhenOverwrittenByBad) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(Write(*h, *id, {P(10, 1), P(20, 2)}), IsOk());
  ASSERT_THAT(h->Flush(), IsOk());
  ASSERT_THAT(Write(*h, *id, {P(30, 3)}), IsOk());
  EXPECT_EQ(h->Latest(*id, true), P(30, 3));
  ASSERT_THAT(Write(*h, *id, {P(30, 3, kBad)}), IsOk());  // in the head
  EXPECT_EQ(h->Latest(*id, true), P(20, 2));
  ASSERT_THAT(Write(*h, *id, {P(20, 2, kBad)}), IsOk());  // overrides a chunk's point
  EXPECT_EQ(h->Latest(*id, true), P(10, 1));
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_EQ(h->Latest(*id, true), P(10, 1));
  EXPECT_EQ(h->Latest(*id), P(30, 3, kBad));
}

TEST_F(HistorianTest, RawQueryLimitAndGoodOnly) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(Write(*h, *id, {P(1, 1), P(2, 2, kBad), Null(3, 0), P(4, 4, kUncertain), P(5, 5)}),
              IsOk());
  QueryOptions good;
  good.good_only = true;
  EXPECT_THAT(All(*h, *id, good), ElementsAre(P(1, 1), P(5, 5)));
  QueryOptions lim;
  lim.limit = 2;
  EXPECT_THAT(All(*h, *id, lim), ElementsAre(P(1, 1), P(2, 2, kBad)));
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_THAT(All(*h, *id, good), ElementsAre(P(1, 1), P(5, 5)));
  EXPECT_THAT(All(*h, *id, lim), ElementsAre(P(1, 1), P(2, 2, kBad)));
  EXPECT_THAT(All(*h, *id), SizeIs(5));
}

TEST_F(HistorianTest, NullValuesAreStoredAsZero) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(Write(*h, *id, {Point{1, 42, kBad, true}}), IsOk());
  EXPECT_THAT(All(*h, *id), ElementsAre(Null(1)));
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_THAT(All(*h, *id), ElementsAre(Null(1)));
}

class BucketTest : public HistorianTest, public ::testing::WithParamInterface<bool> {
 protected:
  // Whether the points are sealed into chunks before the query (else they are in the head).
  void MaybeFlush(Historian& h) {
    if (GetParam()) {
      ASSERT_THAT(h.Flush(), IsOk());
    }
  }
};

TEST_P(BucketTest, EveryAggregateAtBucketEdges) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  // step 10: buckets [0,10) [10,20) [20,30) [40,50); nothing in [30,40).
  ASSERT_THAT(
      Write(*h, *id,
            {P(0, 1), P(5, 3), P(9, 2), P(10, 10), P(19, 20), P(20, -1), Null(25), P(45, 7)}),
      IsOk());
  MaybeFlush(*h);
  auto q = [&](Aggregate agg) { return h->QueryBuckets(*id, 0, 100, 10, agg); };
  EXPECT_THAT(q(Aggregate::kAvg), IsOkAndHolds(ElementsAre(Bucket{0, 2, 3}, Bucket{10, 15, 2},
                                                           Bucket{20, -1, 1}, Bucket{40, 7, 1})));
  EXPECT_THAT(q(Aggregate::kMin), IsOkAndHolds(ElementsAre(Bucket{0, 1, 3}, Bucket{10, 10, 2},
                                                           Bucket{20, -1, 1}, Bucket{40, 7, 1})));
  EXPECT_THAT(q(Aggregate::kMax), IsOkAndHolds(ElementsAre(Bucket{0, 3, 3}, Bucket{10, 20, 2},
                                                           Bucket{20, -1, 1}, Bucket{40, 7, 1})));
  EXPECT_THAT(q(Aggregate::kFirst), IsOkAndHolds(ElementsAre(Bucket{0, 1, 3}, Bucket{10, 10, 2},
                                                             Bucket{20, -1, 1}, Bucket{40, 7, 1})));
  EXPECT_THAT(q(Aggregate::kLast), IsOkAndHolds(ElementsAre(Bucket{0, 2, 3}, Bucket{10, 20, 2},
                                                            Bucket{20, -1, 1}, Bucket{40, 7, 1})));
  EXPECT_THAT(q(Aggregate::kCount), IsOkAndHolds(ElementsAre(Bucket{0, 3, 3}, Bucket{10, 2, 2},
                                                             Bucket{20, 1, 1}, Bucket{40, 1, 1})));
  // from/to not aligned: the first bucket starts before `from` and holds only points from it.
  EXPECT_THAT(h->QueryBuckets(*id, 5, 20, 10, Aggregate::kCount),
              IsOkAndHolds(ElementsAre(Bucket{0, 2, 2}, Bucket{10, 2, 2})));
  EXPECT_THAT(h->QueryBuckets(*id, 6, 19, 10, Aggregate::kAvg),
              IsOkAndHolds(ElementsAre(Bucket{0, 2, 1}, Bucket{10, 10, 1})));
  // Only nulls in range: no bucket.
  EXPECT_THAT(h->QueryBuckets(*id, 21, 30, 10, Aggregate::kCount), IsOkAndHolds(IsEmpty()));
}

TEST_P(BucketTest, NegativeTimesUseFloorDivision) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(Write(*h, *id, {P(-25, 1), P(-20, 2), P(-11, 3), P(-10, 4), P(-1, 5), P(0, 6)}),
              IsOk());
  MaybeFlush(*h);
  EXPECT_THAT(h->QueryBuckets(*id, -100, 100, 10, Aggregate::kAvg),
              IsOkAndHolds(ElementsAre(Bucket{-30, 1, 1}, Bucket{-20, 2.5, 2}, Bucket{-10, 4.5, 2},
                                       Bucket{0, 6, 1})));
  EXPECT_THAT(h->QueryBuckets(*id, -22, -1, 7, Aggregate::kCount),
              IsOkAndHolds(ElementsAre(Bucket{-21, 1, 1}, Bucket{-14, 2, 2})));
}

TEST_P(BucketTest, GoodOnlyIgnoresNonGoodPoints) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(
      Write(*h, *id, {P(0, 1), P(1, 100, kBad), P(2, 50, kUncertain), P(3, 3), P(10, 9, kBad)}),
      IsOk());
  MaybeFlush(*h);
  QueryOptions good;
  good.good_only = true;
  EXPECT_THAT(h->QueryBuckets(*id, 0, 20, 10, Aggregate::kMax, good),
              IsOkAndHolds(ElementsAre(Bucket{0, 3, 2})));
  EXPECT_THAT(h->QueryBuckets(*id, 0, 20, 10, Aggregate::kMax),
              IsOkAndHolds(ElementsAre(Bucket{0, 100, 4}, Bucket{10, 9, 1})));
}

INSTANTIATE_TEST_SUITE_P(HeadAndChunks, BucketTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Chunks" : "Head";
                         });

TEST(AggregateTest, ParseAndName) {
  for (Aggregate a : {Aggregate::kAvg, Aggregate::kMin, Aggregate::kMax, Aggregate::kFirst,
                      Aggregate::kLast, Aggregate::kCount}) {
    EXPECT_EQ(ParseAggregate(AggregateName(a)), a);
  }
  EXPECT_FALSE(ParseAggregate("sum").has_value());
}

TEST_F(HistorianTest, RetentionDeletesOldChunksAndDropsOldHeadPoints) {
  HistorianOptions o = Options();
  o.retention = std::chrono::hours(1);
  o.chunk_points = 10;
  auto h = Open(o);
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  // 30 points, one a minute, ending now: three chunks.
  std::vector<Point> pts;
  for (int i = 0; i < 30; ++i) pts.push_back(P(kT0 - (29 - i) * 60000, i));
  ASSERT_THAT(Write(*h, *id, pts), IsOk());
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_EQ(h->stats().chunks, 3u);
  ASSERT_THAT(h->EnforceRetention(), IsOk());
  EXPECT_EQ(h->stats().retired_chunks, 0u);
  // 45 minutes later the first chunk (t up to now - 20 min) is past the hour.
  clock_.Advance(std::chrono::minutes(45));
  ASSERT_THAT(h->EnforceRetention(), IsOk());
  EXPECT_EQ(h->stats().retired_chunks, 1u);
  EXPECT_EQ(h->stats().chunks, 2u);
  EXPECT_EQ(h->stats().chunk_points, 20u);
  EXPECT_EQ(All(*h, *id).front(), pts[10]);
  // Late points already past retention are dropped when sealed.
  ASSERT_THAT(Write(*h, *id, {P(kT0 - 3600000, 1), P(kT0 + 1, 2)}), IsOk());
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_EQ(h->stats().expired_points, 1u);
  EXPECT_THAT(All(*h, *id), SizeIs(21));
  // RunOnce applies retention too.
  clock_.Advance(std::chrono::hours(2));
  ASSERT_THAT(h->RunOnce(), IsOk());
  EXPECT_THAT(All(*h, *id), IsEmpty());
  EXPECT_EQ(h->stats().chunks, 0u);
  EXPECT_EQ(h->Latest(*id), P(kT0 + 1, 2));  // the latest is kept in memory
}

TEST_F(HistorianTest, ReopenAfterFlushAndWithoutFlushKeepsEveryPoint) {
  HistorianOptions o = Options();
  o.chunk_points = 64;
  std::vector<Point> expect;
  SeriesId a, b, t;
  {
    auto h = Open(o);
    ASSERT_NE(h, nullptr);
    a = *h->Series("a", SeriesKind::kNumeric);
    b = *h->Series("b", SeriesKind::kNumeric);
    t = *h->Series("t", SeriesKind::kText);
    std::vector<PointWrite> batch;
    for (int i = 0; i < 1000; ++i) {
      batch.push_back({a, P(i, i * 0.25)});
      batch.push_back({b, P(1000 - i, -i, i % 3 == 0 ? kBad : 0)});
      expect.push_back(P(i, i * 0.25));
    }
    ASSERT_THAT(h->Append(batch), IsOk());  // seals full heads inline
    ASSERT_THAT(h->AppendText(t, TextPoint{5, "hello", 0, false}), IsOk());
    EXPECT_GT(h->stats().chunks, 0u);
    EXPECT_GT(h->stats().head_points, 0u);
  }
  auto check = [&](Historian& h) {
    EXPECT_EQ(All(h, a), expect);
    const auto bs = All(h, b);
    ASSERT_EQ(bs.size(), 1000u);
    EXPECT_EQ(bs.front(), P(1, -999, kBad));
    EXPECT_EQ(bs.back(), P(1000, 0, kBad));
    EXPECT_THAT(h.QueryText(t, 0, 10), IsOkAndHolds(ElementsAre(TextPoint{5, "hello", 0, false})));
    EXPECT_EQ(h.Latest(a), P(999, 999 * 0.25));
    EXPECT_EQ(h.Latest(b, true), P(999, -1));
  };
  {
    // Without Flush: the WAL gives the heads back.
    auto h = Open(o);
    ASSERT_NE(h, nullptr);
    EXPECT_GT(h->stats().replayed_points, 0u);
    EXPECT_EQ(h->Find("t")->kind, SeriesKind::kText);
    check(*h);
    ASSERT_THAT(h->Flush(), IsOk());
    EXPECT_EQ(h->stats().head_points, 0u);
    check(*h);
    EXPECT_EQ(CheckChunks(db_dir(), a), 1000);
    EXPECT_EQ(CheckChunks(db_dir(), b), 1000);
  }
  {
    auto h = Open(o);
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->stats().replayed_points, 0u);
    EXPECT_EQ(h->stats().chunk_points, 2001u);
    check(*h);
  }
}

TEST_F(HistorianTest, SeriesCreatedWithoutFlushSurviveReopen) {
  {
    auto h = Open();
    ASSERT_NE(h, nullptr);
    ASSERT_THAT(h->Series("x", SeriesKind::kNumeric), IsOkAndHolds(1u));
    ASSERT_THAT(h->Series("y", SeriesKind::kText), IsOkAndHolds(2u));
  }
  {
    auto h = Open();
    ASSERT_NE(h, nullptr);
    EXPECT_THAT(h->Series("y", SeriesKind::kText), IsOkAndHolds(2u));
    EXPECT_THAT(h->Series("z", SeriesKind::kNumeric), IsOkAndHolds(3u));
    ASSERT_THAT(h->Flush(), IsOk());  // the rows reach the database
  }
  auto h = Open();
  ASSERT_NE(h, nullptr);
  EXPECT_THAT(h->List(""), SizeIs(3));
  EXPECT_EQ(h->stats().wal_bytes, 32u);  // one empty segment
}

// The newest WAL segment (the only one after Flush + reopen).
std::string NewestSegment(const std::string& wal_dir) {
  std::string newest;
  for (const auto& e : std::filesystem::directory_iterator(wal_dir)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".wal") && name > newest) newest = name;
  }
  return wal_dir + "/" + newest;
}

TEST_F(HistorianTest, TornWalTailIsCutOffAndLogged) {
  SeriesId id;
  std::string seg;
  uint64_t good_size;
  {
    auto h = Open();
    ASSERT_NE(h, nullptr);
    id = *h->Series("s", SeriesKind::kNumeric);
    ASSERT_THAT(Write(*h, id, {P(1, 1), P(2, 2)}), IsOk());
    seg = NewestSegment(db_dir() + "/wal");
    good_size = std::filesystem::file_size(seg);
    ASSERT_THAT(Write(*h, id, {P(3, 3), P(4, 4)}), IsOk());
  }
  // The last record loses its last byte, as if the power went during the write.
  std::filesystem::resize_file(seg, std::filesystem::file_size(seg) - 1);
  auto h = Open();
  ASSERT_NE(h, nullptr);
  EXPECT_THAT(All(*h, id), ElementsAre(P(1, 1), P(2, 2)));
  EXPECT_GT(h->stats().wal_corrupt_bytes, 0u);
  EXPECT_THAT(sink_.Matching("torn tail at offset " + std::to_string(good_size)), SizeIs(1));
  EXPECT_EQ(std::filesystem::file_size(seg), good_size);
  // Writing goes on; the next reopen finds nothing wrong.
  ASSERT_THAT(Write(*h, id, {P(5, 5)}), IsOk());
  h.reset();
  h = Open();
  ASSERT_NE(h, nullptr);
  EXPECT_THAT(All(*h, id), ElementsAre(P(1, 1), P(2, 2), P(5, 5)));
  EXPECT_EQ(h->stats().wal_corrupt_bytes, 0u);
}

TEST_F(HistorianTest, CorruptRecordInAnOlderSegmentIsLoggedAndSkipped) {
  SeriesId id;
  std::string first;
  {
    auto h = Open();
    ASSERT_NE(h, nullptr);
    id = *h->Series("s", SeriesKind::kNumeric);
    ASSERT_THAT(Write(*h, id, {P(1, 1)}), IsOk());
    ASSERT_THAT(Write(*h, id, {P(2, 2)}), IsOk());
    first = NewestSegment(db_dir() + "/wal");
  }
  {
    // A second segment (every open starts one).
    auto h = Open();
    ASSERT_NE(h, nullptr);
    ASSERT_THAT(Write(*h, id, {P(3, 3)}), IsOk());
  }
  // Flip a byte in the last record of the first segment (the point at t=2).
  {
    std::fstream f(first, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(first) - 2));
    f.put('\x7f');
  }
  auto h = Open();
  ASSERT_NE(h, nullptr);
  EXPECT_THAT(All(*h, id), ElementsAre(P(1, 1), P(3, 3)));
  EXPECT_GT(h->stats().wal_corrupt_bytes, 0u);
  EXPECT_THAT(sink_.Matching("E " + first + ": corrupt record at offset"), SizeIs(1));
}

TEST_F(HistorianTest, LatePointsAreMergedIntoExistingChunks) {
  HistorianOptions o = Options();
  o.chunk_points = 100;
  auto h = Open(o);
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  // Even times 0..1998 in order: ten chunks of 100.
  std::vector<Point> pts;
  for (int i = 0; i < 1000; ++i) pts.push_back(P(i * 2, i));
  ASSERT_THAT(Write(*h, *id, pts), IsOk());
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_EQ(h->stats().chunks, 10u);
  // Late odd times all over the range, plus some before and after it.
  std::vector<Point> late;
  for (int i = -10; i < 1010; i += 3) late.push_back(P(i * 2 + 1, -i));
  ASSERT_THAT(Write(*h, *id, late), IsOk());
  // Before sealing, the queries merge head and chunks.
  EXPECT_THAT(All(*h, *id), SizeIs(pts.size() + late.size()));
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_GT(h->stats().merged_chunks, 0u);
  EXPECT_EQ(CheckChunks(db_dir(), *id), static_cast<int64_t>(pts.size() + late.size()));
  EXPECT_EQ(h->stats().chunk_points, pts.size() + late.size());
  EXPECT_EQ(h->stats().chunks, ChunksOf(db_dir(), *id).size());
  for (const auto& c : ChunksOf(db_dir(), *id)) EXPECT_LE(c.count, 125);
  auto got = All(*h, *id);
  ASSERT_EQ(got.size(), pts.size() + late.size());
  for (size_t i = 1; i < got.size(); ++i) ASSERT_LT(got[i - 1].t, got[i].t);
  EXPECT_EQ(got.front(), P(-19, 10));
  // A late point replacing a sealed one.
  ASSERT_THAT(Write(*h, *id, {P(1000, 12345)}), IsOk());
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_THAT(h->QueryRaw(*id, 1000, 1001), IsOkAndHolds(ElementsAre(P(1000, 12345))));
  EXPECT_EQ(CheckChunks(db_dir(), *id), static_cast<int64_t>(pts.size() + late.size()));
}

TEST_F(HistorianTest, SmallLastChunkOfASlowSeriesIsExtended) {
  HistorianOptions o = Options();
  o.chunk_points = 100;
  auto h = Open(o);
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  for (int round = 0; round < 5; ++round) {
    std::vector<Point> pts;
    for (int i = 0; i < 10; ++i) pts.push_back(P(round * 10 + i, i));
    ASSERT_THAT(Write(*h, *id, pts), IsOk());
    ASSERT_THAT(h->Flush(), IsOk());
  }
  EXPECT_THAT(ChunksOf(db_dir(), *id), SizeIs(1));
  EXPECT_EQ(CheckChunks(db_dir(), *id), 50);
}

TEST_F(HistorianTest, DamagedChunkIsReportedThenSetAsideWhenMergedInto) {
  SeriesId id;
  {
    auto h = Open();
    ASSERT_NE(h, nullptr);
    id = *h->Series("s", SeriesKind::kNumeric);
    std::vector<Point> pts;
    for (int i = 0; i < 100; ++i) pts.push_back(P(i, i));
    ASSERT_THAT(Write(*h, id, pts), IsOk());
    ASSERT_THAT(h->Flush(), IsOk());
  }
  testing::ExecSql(db_dir(), "UPDATE chunks SET data = x'0102030405060708'");
  auto h = Open();
  ASSERT_NE(h, nullptr);
  EXPECT_THAT(sink_.Matching("looking up its latest point"), SizeIs(2));
  EXPECT_FALSE(h->Latest(id).has_value());
  EXPECT_THAT(h->QueryRaw(id, 0, 100), StatusIs(StatusCode::kDataLoss));
  // A late point into its range: the round cannot merge it, so it sets the chunk aside.
  ASSERT_THAT(Write(*h, id, {P(50, 7)}), IsOk());
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_EQ(h->stats().corrupt_chunks, 1u);
  EXPECT_THAT(sink_.Matching("moved to table corrupt_chunks"), SizeIs(1));
  EXPECT_THAT(All(*h, id), ElementsAre(P(50, 7)));
  EXPECT_EQ(CheckChunks(db_dir(), id), 1);
  EXPECT_EQ(h->stats().chunks, 1u);
  EXPECT_EQ(h->stats().chunk_points, 1u);
}

TEST_F(HistorianTest, TextSeries) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  auto id = h->Series("G/N/D/state", SeriesKind::kText);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(h->AppendText(*id, TextPoint{20, "running", 0, false}), IsOk());
  ASSERT_THAT(h->AppendText(*id, TextPoint{10, "starting", 0, false}), IsOk());
  ASSERT_THAT(h->AppendText(*id, TextPoint{30, "junk", kBad, true}), IsOk());
  const std::vector<TextPoint> want = {TextPoint{10, "starting", 0, false},
                                       TextPoint{20, "running", 0, false},
                                       TextPoint{30, "", kBad, true}};
  EXPECT_THAT(h->QueryText(*id, 0, 100), IsOkAndHolds(want));
  EXPECT_EQ(h->LatestText(*id), want[2]);
  EXPECT_EQ(h->LatestText(*id, true), want[1]);
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_THAT(h->QueryText(*id, 0, 100), IsOkAndHolds(want));
  ASSERT_THAT(h->AppendText(*id, TextPoint{20, "stopped", 0, false}), IsOk());
  QueryOptions good;
  good.good_only = true;
  EXPECT_THAT(h->QueryText(*id, 0, 100, good),
              IsOkAndHolds(ElementsAre(want[0], TextPoint{20, "stopped", 0, false})));
  h.reset();
  h = Open();
  ASSERT_NE(h, nullptr);
  EXPECT_THAT(h->QueryText(*id, 15, 25),
              IsOkAndHolds(ElementsAre(TextPoint{20, "stopped", 0, false})));
  EXPECT_EQ(h->LatestText(*id), want[2]);
  EXPECT_EQ(h->LatestText(*id, true), (TextPoint{20, "stopped", 0, false}));
}

TEST_F(HistorianTest, HeadsAreSealedByAgeInRunOnce) {
  HistorianOptions o = Options();
  o.seal_age = std::chrono::minutes(10);
  auto h = Open(o);
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(Write(*h, *id, {P(1, 1)}), IsOk());
  clock_.Advance(std::chrono::minutes(9));
  ASSERT_THAT(h->RunOnce(), IsOk());
  EXPECT_EQ(h->stats().head_points, 1u);
  EXPECT_EQ(h->stats().chunks, 0u);
  ASSERT_THAT(Write(*h, *id, {P(2, 2)}), IsOk());
  clock_.Advance(std::chrono::minutes(1));
  ASSERT_THAT(h->RunOnce(), IsOk());
  EXPECT_EQ(h->stats().head_points, 0u);
  EXPECT_EQ(h->stats().chunk_points, 2u);
  // Every segment before the current one is gone.
  EXPECT_LT(h->stats().wal_bytes, 200u);
}

TEST_F(HistorianTest, WalStaysBoundedWhenOneSeriesIsSlow) {
  HistorianOptions o = Options();
  o.chunk_points = 256;
  o.wal_segment_bytes = 16 << 10;
  o.wal_max_bytes = 128 << 10;
  auto h = Open(o);
  ASSERT_NE(h, nullptr);
  auto fast = h->Series("fast", SeriesKind::kNumeric);
  auto slow = h->Series("slow", SeriesKind::kNumeric);
  ASSERT_THAT(fast, IsOk());
  ASSERT_THAT(slow, IsOk());
  uint64_t max_wal = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<PointWrite> batch;
    for (int k = 0; k < 50; ++k) batch.push_back({*fast, P(i * 50 + k, 0.1 * k + i)});
    if (i % 100 == 0) batch.push_back({*slow, P(i, i)});
    ASSERT_THAT(h->Append(batch), IsOk());
    if (i % 20 == 0) {
      ASSERT_THAT(h->RunOnce(), IsOk());
    }
    max_wal = std::max(max_wal, h->stats().wal_bytes);
  }
  EXPECT_LT(max_wal, 200u << 10);
  EXPECT_THAT(All(*h, *slow), SizeIs(20));
  EXPECT_THAT(All(*h, *fast), SizeIs(100000));
}

TEST_F(HistorianTest, SecondOpenOfTheSameDirectoryIsUnavailable) {
  auto h = Open();
  ASSERT_NE(h, nullptr);
  EXPECT_THAT(Historian::Open(Options()), StatusIs(StatusCode::kUnavailable));
}

TEST_F(HistorianTest, FailedWalWriteStoresNothingAndLaterWritesWork) {
  FaultInjectionEnv env;
  HistorianOptions o = Options();
  o.env = &env;
  auto h = Open(o);
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(Write(*h, *id, {P(1, 1)}), IsOk());
  env.InjectFault(FileOp::kWrite, ENOSPC, ".wal", 1, /*partial_bytes=*/5);
  EXPECT_THAT(Write(*h, *id, {P(2, 2), P(3, 3)}), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_THAT(All(*h, *id), ElementsAre(P(1, 1)));
  EXPECT_EQ(h->stats().write_errors, 1u);
  EXPECT_EQ(h->stats().points_written, 1u);
  ASSERT_THAT(Write(*h, *id, {P(4, 4)}), IsOk());
  h.reset();
  h = Open(o);
  ASSERT_NE(h, nullptr);
  EXPECT_THAT(All(*h, *id), ElementsAre(P(1, 1), P(4, 4)));
  EXPECT_EQ(h->stats().wal_corrupt_bytes, 0u);
}

TEST_F(HistorianTest, WalSyncAlwaysSyncsEveryAppend) {
  FaultInjectionEnv env;
  HistorianOptions o = Options();
  o.env = &env;
  o.wal_sync = WalSync::kAlways;
  auto h = Open(o);
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  const uint64_t before = env.count(FileOp::kSync, ".wal");
  for (int i = 0; i < 5; ++i) ASSERT_THAT(Write(*h, *id, {P(i, i)}), IsOk());
  EXPECT_EQ(env.count(FileOp::kSync, ".wal") - before, 5u);
  env.InjectFault(FileOp::kSync, EIO, ".wal", 1);
  EXPECT_THAT(Write(*h, *id, {P(9, 9)}), StatusIs(StatusCode::kUnavailable));
}

// Power cuts with the WAL as the only durable copy: every point of an acknowledged Append
// (wal_sync kAlways) is there after the cut.
TEST_F(HistorianTest, PowerCutKeepsEveryAcknowledgedPoint) {
  FaultInjectionEnv env;
  for (int round = 1; round <= 20; ++round) {
    TempDir tmp;
    HistorianOptions o = Options();
    o.dir = tmp.path() + "/h";
    o.env = &env;
    o.wal_sync = WalSync::kAlways;
    o.wal_segment_bytes = 4096;
    SeriesId id = 0;
    int64_t acked = 0;
    {
      auto h = Open(o);
      ASSERT_NE(h, nullptr);
      id = *h->Series("s", SeriesKind::kNumeric);
      env.StartTracking();
      env.CrashAfter(3 + round * 7 % 50);
      for (int64_t t = 0; t < 2000 && !env.crashed(); t += 10) {
        std::vector<Point> pts;
        for (int64_t k = 0; k < 10; ++k) pts.push_back(P(t + k, static_cast<double>(t + k) / 4));
        if (!Write(*h, id, pts).ok()) break;
        acked = t + 10;
      }
    }
    env.SimulatePowerLoss(/*seed=*/static_cast<uint64_t>(round), /*keep=*/0.5);
    HistorianOptions clean = o;
    clean.env = nullptr;
    auto h = Open(clean);
    ASSERT_NE(h, nullptr) << "round " << round;
    const auto got = All(*h, id);
    ASSERT_GE(got.size(), static_cast<size_t>(acked)) << "round " << round;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], P(static_cast<int64_t>(i), static_cast<double>(i) / 4))
          << "round " << round;
    }
  }
}

TEST_F(HistorianTest, ConcurrentReaderSeesEveryAcknowledgedPoint) {
  HistorianOptions o = Options();
  o.background = true;
  o.chunk_points = 512;
  o.seal_age = std::chrono::milliseconds(20);
  o.wal_sync = WalSync::kInterval;
  o.wal_sync_interval = std::chrono::milliseconds(5);
  auto h = Open(o);
  ASSERT_NE(h, nullptr);
  auto id = h->Series("s", SeriesKind::kNumeric);
  ASSERT_THAT(id, IsOk());
  constexpr int64_t kPoints = 100000;
  std::atomic<int64_t> acked{0};
  std::atomic<bool> failed{false};
  std::thread writer([&] {
    for (int64_t t = 0; t < kPoints; t += 100) {
      std::vector<PointWrite> batch;
      for (int64_t k = 0; k < 100; ++k)
        batch.push_back({*id, P(t + k, static_cast<double>(t + k))});
      if (!h->Append(batch).ok()) {
        failed = true;
        return;
      }
      acked = t + 100;
    }
  });
  int queries = 0;
  while (acked.load() < kPoints && !failed) {
    const int64_t before = acked.load();
    auto r = h->QueryRaw(*id, 0, kPoints);
    ASSERT_THAT(r, IsOk());
    ASSERT_GE(static_cast<int64_t>(r->size()), before);
    for (size_t i = 0; i < r->size(); ++i) {
      ASSERT_EQ((*r)[i].t, static_cast<int64_t>(i));
    }
    auto b = h->QueryBuckets(*id, 0, kPoints, 1000, Aggregate::kCount);
    ASSERT_THAT(b, IsOk());
    ++queries;
  }
  writer.join();
  ASSERT_FALSE(failed);
  EXPECT_GT(queries, 0);
  EXPECT_THAT(All(*h, *id), SizeIs(kPoints));
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_EQ(CheckChunks(db_dir(), *id), kPoints);
  EXPECT_EQ(h->Latest(*id), P(kPoints - 1, kPoints - 1));
}

// Random writes (late, duplicate, overwriting, null, bad), seals, retention-free reopens and
// queries against a std::map model, for numeric and text series.
class RandomOpsTest : public HistorianTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(RandomOpsTest, MatchAModel) {
  HistorianOptions o = Options();
  o.chunk_points = 16;
  std::mt19937 rng(GetParam());
  std::map<int64_t, Point> model;
  std::map<int64_t, TextPoint> tmodel;
  auto h = Open(o);
  ASSERT_NE(h, nullptr);
  const SeriesId id = *h->Series("n", SeriesKind::kNumeric);
  const SeriesId tid = *h->Series("t", SeriesKind::kText);
  auto random_point = [&](int64_t t) {
    const uint32_t r = rng() % 10;
    if (r == 0) return Null(t);
    return P(t, static_cast<double>(rng() % 7) - 3 + 0.5 * (rng() % 2), r == 1 ? kBad : 0);
  };
  for (int step = 0; step < 400; ++step) {
    const uint32_t op = rng() % 20;
    if (op < 14) {
      std::vector<PointWrite> batch;
      for (int k = static_cast<int>(rng() % 12); k >= 0; --k) {
        const int64_t t = static_cast<int64_t>(rng() % 300) - 100;
        const Point p = random_point(t);
        batch.push_back({id, p});
        model[t] = p;
      }
      ASSERT_THAT(h->Append(batch), IsOk());
      const int64_t t = static_cast<int64_t>(rng() % 60) - 20;
      TextPoint tp{t, "v" + std::to_string(rng() % 5), rng() % 4 == 0 ? kBad : 0, false};
      ASSERT_THAT(h->AppendText(tid, tp), IsOk());
      tmodel[t] = tp;
    } else if (op < 16) {
      ASSERT_THAT(h->Flush(), IsOk());
    } else if (op < 17) {
      ASSERT_THAT(h->RunOnce(), IsOk());
    } else if (op < 18) {
      h.reset();
      h = Open(o);
      ASSERT_NE(h, nullptr);
    } else {
      // Queries.
      const int64_t from = static_cast<int64_t>(rng() % 320) - 110;
      const int64_t to = from + static_cast<int64_t>(rng() % 200);
      QueryOptions qo;
      qo.good_only = rng() % 2 == 0;
      qo.limit = rng() % 3 == 0 ? rng() % 10 : 0;
      std::vector<Point> want;
      for (auto it = model.lower_bound(from); it != model.end() && it->first < to; ++it) {
        if (qo.good_only && (it->second.is_null || it->second.q != 0)) continue;
        if (qo.limit != 0 && want.size() == qo.limit) break;
        want.push_back(it->second);
      }
      ASSERT_THAT(h->QueryRaw(id, from, to, qo), IsOkAndHolds(want)) << "step " << step;
      const int64_t step_ms = 1 + static_cast<int64_t>(rng() % 40);
      std::vector<Bucket> bw;
      for (auto it = model.lower_bound(from); it != model.end() && it->first < to; ++it) {
        const Point& p = it->second;
        if (p.is_null || (qo.good_only && p.q != 0)) continue;
        const int64_t start =
            (p.t >= 0 ? p.t / step_ms : -((-p.t + step_ms - 1) / step_ms)) * step_ms;
        if (bw.empty() || bw.back().start != start) bw.push_back(Bucket{start, 0, 0});
        bw.back().value += p.v;
        ++bw.back().count;
      }
      for (Bucket& b : bw) b.value /= static_cast<double>(b.count);
      ASSERT_THAT(h->QueryBuckets(id, from, to, step_ms, Aggregate::kAvg, qo), IsOkAndHolds(bw))
          << "step " << step;
      std::vector<TextPoint> tw;
      for (auto it = tmodel.lower_bound(from); it != tmodel.end() && it->first < to; ++it) {
        tw.push_back(it->second);
      }
      ASSERT_THAT(h->QueryText(tid, from, to), IsOkAndHolds(tw)) << "step " << step;
      // Latest.
      std::optional<Point> latest, latest_good;
      for (const auto& [t, p] : model) {
        latest = p;
        if (!p.is_null && p.q == 0) latest_good = p;
      }
      ASSERT_EQ(h->Latest(id), latest) << "step " << step;
      ASSERT_EQ(h->Latest(id, true), latest_good) << "step " << step;
    }
  }
  ASSERT_THAT(h->Flush(), IsOk());
  EXPECT_EQ(CheckChunks(db_dir(), id), static_cast<int64_t>(model.size()));
  EXPECT_EQ(CheckChunks(db_dir(), tid), static_cast<int64_t>(tmodel.size()));
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomOpsTest, ::testing::Values(1u, 2u, 3u, 12345u));

}  // namespace
}  // namespace kiln::historian
