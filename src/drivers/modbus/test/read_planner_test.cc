#include "drivers/modbus/read_planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <vector>

namespace kiln::drivers::modbus {
namespace {

using contract::ValueType;
using ::testing::ElementsAre;
using ::testing::SizeIs;

ModbusTag Tag(RegisterKind kind, uint16_t address, ValueType type = ValueType::kUInt16) {
  ModbusTag tag;
  tag.kind = kind;
  tag.address = address;
  tag.type = IsBitKind(kind) ? ValueType::kBool : type;
  return tag;
}

ModbusTag Holding(uint16_t address, ValueType type = ValueType::kUInt16) {
  return Tag(RegisterKind::kHoldingRegister, address, type);
}

// Checks what every plan must satisfy: each tag read whole by exactly one request of its kind,
// requests within the limit, and no request reading more than max_gap registers in a row
// that belong to no tag.
void ExpectValidPlan(const std::vector<ModbusTag>& tags, const std::vector<ReadRequest>& plan,
                     const PlanOptions& options) {
  std::vector<int> seen(tags.size(), 0);
  for (const ReadRequest& r : plan) {
    ASSERT_GE(r.count, 1);
    ASSERT_LE(r.count, RequestLimit(r.kind, options));
    ASSERT_LE(uint32_t{r.address} + r.count, 65536u);
    std::vector<bool> used(r.count, false);
    for (const ModbusTag& t : tags) {  // registers of any tag of this kind may be read
      if (t.kind != r.kind) continue;
      for (uint32_t a = t.address; a < uint32_t{t.address} + Width(t); ++a) {
        if (a >= r.address && a < uint32_t{r.address} + r.count) used[a - r.address] = true;
      }
    }
    int run = 0;
    for (bool u : used) {
      run = u ? 0 : run + 1;
      EXPECT_LE(run, options.max_gap) << "request at " << r.address << " bridges a wide hole";
    }
    for (uint32_t i : r.tags) {
      ASSERT_LT(i, tags.size());
      const ModbusTag& t = tags[i];
      EXPECT_EQ(t.kind, r.kind);
      EXPECT_GE(t.address, r.address);
      EXPECT_LE(uint32_t{t.address} + Width(t), uint32_t{r.address} + r.count);
      ++seen[i];
    }
  }
  for (size_t i = 0; i < tags.size(); ++i) EXPECT_EQ(seen[i], 1) << "tag " << i;
}

// The fewest requests, by trying every partition of the tags into requests.
size_t OptimalRequestCount(const std::vector<ModbusTag>& tags, const PlanOptions& options) {
  auto valid = [&](const std::vector<uint32_t>& group) {
    const RegisterKind kind = tags[group[0]].kind;
    uint32_t lo = 65536;
    uint32_t hi = 0;
    for (uint32_t i : group) {
      if (tags[i].kind != kind) return false;
      lo = std::min<uint32_t>(lo, tags[i].address);
      hi = std::max<uint32_t>(hi, tags[i].address + Width(tags[i]) - 1);
    }
    if (hi - lo + 1 > RequestLimit(kind, options)) return false;
    std::vector<bool> used(hi - lo + 1, false);
    for (const ModbusTag& t : tags) {
      if (t.kind != kind) continue;
      for (uint32_t a = t.address; a < uint32_t{t.address} + Width(t); ++a) {
        if (a >= lo && a <= hi) used[a - lo] = true;
      }
    }
    int run = 0;
    for (bool u : used) {
      run = u ? 0 : run + 1;
      if (run > options.max_gap) return false;
    }
    return true;
  };
  size_t best = tags.size();
  std::vector<std::vector<uint32_t>> groups;
  std::function<void(uint32_t)> assign = [&](uint32_t i) {
    if (groups.size() >= best) return;
    if (i == tags.size()) {
      if (std::all_of(groups.begin(), groups.end(), valid)) best = groups.size();
      return;
    }
    for (size_t g = 0; g < groups.size(); ++g) {  // by index: the recursion grows `groups`
      groups[g].push_back(i);
      assign(i + 1);
      groups[g].pop_back();
    }
    groups.push_back({i});
    assign(i + 1);
    groups.pop_back();
  };
  assign(0);
  return best;
}

TEST(ReadPlannerTest, ThousandContiguousUint16AreEightRequests) {
  std::vector<ModbusTag> tags;
  for (uint16_t a = 0; a < 1000; ++a) tags.push_back(Holding(a));
  const std::vector<ReadRequest> plan = PlanReads(tags, PlanOptions{});
  ASSERT_THAT(plan, SizeIs(8));
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].address, 125 * i);
    EXPECT_EQ(plan[i].count, 125);
    EXPECT_THAT(plan[i].tags, SizeIs(125));
  }
  ExpectValidPlan(tags, plan, PlanOptions{});
}

TEST(ReadPlannerTest, TenThousandTagsOverHoldingAreEightyRequests) {
  std::vector<ModbusTag> tags;
  for (uint16_t a = 0; a < 10000; ++a) tags.push_back(Holding(static_cast<uint16_t>(9999 - a)));
  const std::vector<ReadRequest> plan = PlanReads(tags, PlanOptions{});
  EXPECT_THAT(plan, SizeIs(80));
  ExpectValidPlan(tags, plan, PlanOptions{});
}

TEST(ReadPlannerTest, Float32StraddlingTheLimitStartsANewRequest) {
  std::vector<ModbusTag> tags;
  for (uint16_t a = 0; a < 124; ++a) tags.push_back(Holding(a));
  tags.push_back(Holding(124, ValueType::kFloat));  // registers 124 and 125
  const std::vector<ReadRequest> plan = PlanReads(tags, PlanOptions{});
  ASSERT_THAT(plan, SizeIs(2));
  EXPECT_EQ(plan[0].address, 0);
  EXPECT_EQ(plan[0].count, 124);
  EXPECT_EQ(plan[1].address, 124);
  EXPECT_EQ(plan[1].count, 2);
  EXPECT_THAT(plan[1].tags, ElementsAre(124));
}

TEST(ReadPlannerTest, Float32EndingOnTheLimitFits) {
  std::vector<ModbusTag> tags;
  for (uint16_t a = 0; a < 123; ++a) tags.push_back(Holding(a));
  tags.push_back(Holding(123, ValueType::kFloat));  // registers 123 and 124
  const std::vector<ReadRequest> plan = PlanReads(tags, PlanOptions{});
  ASSERT_THAT(plan, SizeIs(1));
  EXPECT_EQ(plan[0].count, 125);
}

TEST(ReadPlannerTest, BridgesGapsUpToMaxGap) {
  const std::vector<ModbusTag> tags = {Holding(0), Holding(5, ValueType::kUInt32)};
  EXPECT_THAT(PlanReads(tags, PlanOptions{.max_gap = 3}), SizeIs(2));  // registers 1..4 free
  const std::vector<ReadRequest> joined = PlanReads(tags, PlanOptions{.max_gap = 4});
  ASSERT_THAT(joined, SizeIs(1));
  EXPECT_EQ(joined[0].address, 0);
  EXPECT_EQ(joined[0].count, 7);
  EXPECT_THAT(joined[0].tags, ElementsAre(0, 1));
}

TEST(ReadPlannerTest, MergesOverlappingAndDuplicateTags) {
  const std::vector<ModbusTag> tags = {Holding(10, ValueType::kUInt32), Holding(11),
                                       Holding(10, ValueType::kFloat), Holding(12)};
  const std::vector<ReadRequest> plan = PlanReads(tags, PlanOptions{});
  ASSERT_THAT(plan, SizeIs(1));
  EXPECT_EQ(plan[0].address, 10);
  EXPECT_EQ(plan[0].count, 3);
  EXPECT_THAT(plan[0].tags, ElementsAre(0, 2, 1, 3));
}

TEST(ReadPlannerTest, GroupsByKindInFunctionCodeOrder) {
  const std::vector<ModbusTag> tags = {
      Tag(RegisterKind::kInputRegister, 0), Holding(0), Tag(RegisterKind::kDiscreteInput, 0),
      Tag(RegisterKind::kCoil, 0),          Holding(1), Tag(RegisterKind::kCoil, 1)};
  const std::vector<ReadRequest> plan = PlanReads(tags, PlanOptions{});
  ASSERT_THAT(plan, SizeIs(4));
  EXPECT_EQ(plan[0].kind, RegisterKind::kCoil);
  EXPECT_THAT(plan[0].tags, ElementsAre(3, 5));
  EXPECT_EQ(plan[1].kind, RegisterKind::kDiscreteInput);
  EXPECT_EQ(plan[2].kind, RegisterKind::kHoldingRegister);
  EXPECT_THAT(plan[2].tags, ElementsAre(1, 4));
  EXPECT_EQ(plan[3].kind, RegisterKind::kInputRegister);
}

TEST(ReadPlannerTest, BitRequestsHoldUpTo2000Bits) {
  std::vector<ModbusTag> tags;
  for (uint16_t a = 0; a < 2001; ++a) tags.push_back(Tag(RegisterKind::kCoil, a));
  const std::vector<ReadRequest> plan = PlanReads(tags, PlanOptions{});
  ASSERT_THAT(plan, SizeIs(2));
  EXPECT_EQ(plan[0].count, 2000);
  EXPECT_EQ(plan[1].address, 2000);
  EXPECT_EQ(plan[1].count, 1);
}

TEST(ReadPlannerTest, LastRegisterIsPlannable) {
  const std::vector<ModbusTag> tags = {Holding(65532, ValueType::kDouble), Holding(65535)};
  const std::vector<ReadRequest> plan = PlanReads(tags, PlanOptions{});
  ASSERT_THAT(plan, SizeIs(1));
  EXPECT_EQ(plan[0].address, 65532);
  EXPECT_EQ(plan[0].count, 4);
}

TEST(ReadPlannerTest, PlansASubsetWithOriginalIndices) {
  const std::vector<ModbusTag> tags = {Holding(0), Holding(1), Holding(2), Holding(3)};
  const std::vector<uint32_t> subset = {3, 0, 1};
  const std::vector<ReadRequest> plan = PlanReads(tags, subset, PlanOptions{});
  ASSERT_THAT(plan, SizeIs(2));
  EXPECT_THAT(plan[0].tags, ElementsAre(0, 1));
  EXPECT_THAT(plan[1].tags, ElementsAre(3));
}

TEST(ReadPlannerTest, EmptyTagListPlansNothing) {
  EXPECT_THAT(PlanReads({}, PlanOptions{}), SizeIs(0));
}

// Greedy over sorted addresses is optimal: compare with an exhaustive search on small
// random cases with small limits, so that limits, gaps, overlaps and kinds all bite.
TEST(ReadPlannerTest, GreedyMatchesExhaustiveOptimum) {
  std::mt19937 rng(7);
  const std::vector<ValueType> types = {ValueType::kUInt16, ValueType::kUInt16, ValueType::kFloat,
                                        ValueType::kDouble};
  for (int round = 0; round < 400; ++round) {
    PlanOptions options;
    options.max_registers = static_cast<uint16_t>(4 + rng() % 5);
    options.max_bits = static_cast<uint16_t>(1 + rng() % 6);
    options.max_gap = static_cast<uint16_t>(rng() % 3);
    std::vector<ModbusTag> tags;
    const size_t n = 1 + rng() % 7;
    for (size_t i = 0; i < n; ++i) {
      const auto address = static_cast<uint16_t>(rng() % 16);
      if (rng() % 4 == 0) {
        tags.push_back(Tag(RegisterKind::kCoil, address));
      } else {
        tags.push_back(Holding(address, types[rng() % types.size()]));
      }
    }
    const std::vector<ReadRequest> plan = PlanReads(tags, options);
    SCOPED_TRACE(::testing::Message() << "round " << round);
    ExpectValidPlan(tags, plan, options);
    EXPECT_EQ(plan.size(), OptimalRequestCount(tags, options));
  }
}

TEST(ReadPlannerTest, LargeRandomPlansAreValid) {
  std::mt19937 rng(11);
  for (uint16_t max_gap : {0, 3, 40}) {
    std::vector<ModbusTag> tags;
    for (int i = 0; i < 3000; ++i) {
      const auto address = static_cast<uint16_t>(rng() % 20000);
      const ValueType type = rng() % 2 ? ValueType::kUInt16 : ValueType::kFloat;
      tags.push_back(Holding(address, type));
    }
    const PlanOptions options{.max_gap = max_gap};
    ExpectValidPlan(tags, PlanReads(tags, options), options);
  }
}

}  // namespace
}  // namespace kiln::drivers::modbus
