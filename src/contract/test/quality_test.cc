#include "contract/quality.h"

#include <gtest/gtest.h>

namespace kiln::contract {
namespace {

TEST(QualityTest, SeverityFromTopBits) {
  EXPECT_TRUE(status::kGood.IsGood());
  EXPECT_TRUE(status::kGoodClamped.IsGood());
  EXPECT_TRUE(status::kUncertainLastUsableValue.IsUncertain());
  EXPECT_TRUE(status::kBadTimeout.IsBad());
  EXPECT_TRUE(Quality(0xC0000000).IsBad());  // reserved severity treated as Bad
}

TEST(QualityTest, NamesMatchAppendixB) {
  EXPECT_EQ(status::kBadSensorFailure.code(), 0x808C0000u);
  EXPECT_EQ(status::kBadOutOfService.code(), 0x808D0000u);
  EXPECT_EQ(status::kBadSensorFailure.Name(), "BadSensorFailure");
  EXPECT_EQ(Quality(0x80AB0000).Name(), "0x80AB0000");
  EXPECT_EQ(Quality::FromName("BadNoCommunication"), status::kBadNoCommunication);
}

}  // namespace
}  // namespace kiln::contract
