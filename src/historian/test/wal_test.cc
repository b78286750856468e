// The WAL record codec and segment names (docs/formats/historian.md, "WAL").
#include "historian/internal/wal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "core/coding.h"
#include "core/crc32c.h"
#include "historian/test/historian_test_util.h"

namespace kiln::historian::internal {
namespace {

struct Frame {
  WalRecordType type;
  std::vector<uint8_t> payload;
};

// Splits a builder's bytes into frames, checking each CRC.
std::vector<Frame> Frames(std::span<const std::byte> bytes) {
  std::vector<Frame> out;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t off = 0;
  while (off < bytes.size()) {
    EXPECT_GE(bytes.size() - off, kWalFrameHeaderBytes);
    const uint32_t len = Get32(p + off + 4);
    EXPECT_EQ(Get32(p + off), crc32c::Value(p + off + 4, len + 5));
    out.push_back(Frame{static_cast<WalRecordType>(p[off + 8]),
                        std::vector<uint8_t>(p + off + 9, p + off + 9 + len)});
    off += kWalFrameHeaderBytes + len;
  }
  EXPECT_EQ(off, bytes.size());
  return out;
}

bool SameBits(const PointWrite& a, const PointWrite& b) {
  return a.series == b.series && a.point.t == b.point.t && a.point.q == b.point.q &&
         a.point.is_null == b.point.is_null &&
         std::bit_cast<uint64_t>(a.point.v) == std::bit_cast<uint64_t>(b.point.v);
}

TEST(WalTest, PointsRoundTripExactly) {
  const double nan = std::bit_cast<double>(uint64_t{0x7FF8DEADBEEF0001});
  std::vector<PointWrite> in = {
      {1, {1700000000000, 21.5, 0, false}},
      {1, {1700000001000, 21.5, 0, false}},  // same value
      {2, {1700000001000, 0.0, 0, false}},
      {2, {1699999999000, -0.0, 0x80000000, false}},  // back in time, -0.0, a quality
      {3, {std::numeric_limits<int64_t>::min(), 9007199254740992.0, 0, false}},
      {3, {std::numeric_limits<int64_t>::max(), -9007199254740993.0, 0, false}},
      {4294967295u, {-5, nan, 0xFFFFFFFF, false}},
      {4, {0, std::numeric_limits<double>::infinity(), 0, false}},
      {4, {1, 1e-310, 0, false}},
      {4, {2, -123456789, 0, false}},
      {4, {3, 0, 0x80000000, true}},
  };
  WalRecordBuilder b;
  b.AddPoints(in);
  const auto frames = Frames(b.bytes());
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].type, WalRecordType::kPoints);
  WalPointReader r(frames[0].payload);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.count(), in.size());
  PointWrite w;
  for (const PointWrite& want : in) {
    ASSERT_TRUE(r.Next(w));
    EXPECT_TRUE(SameBits(w, want)) << "t " << want.point.t;
  }
  EXPECT_FALSE(r.Next(w));
  EXPECT_FALSE(r.malformed());
}

TEST(WalTest, NullValuesAreWrittenAsZero) {
  std::vector<PointWrite> in = {{1, {5, 42.0, 0x80000000, true}}};
  WalRecordBuilder b;
  b.AddPoints(in);
  const auto frames = Frames(b.bytes());
  WalPointReader r(frames[0].payload);
  PointWrite w;
  ASSERT_TRUE(r.Next(w));
  EXPECT_TRUE(w.point.is_null);
  EXPECT_EQ(w.point.v, 0.0);
}

TEST(WalTest, CompactForTypicalBatches) {
  std::vector<PointWrite> in;
  for (int i = 0; i < 1000; ++i)
    in.push_back({7, {1700000000000 + i * 1000, 20.0 + i % 7, 0, false}});
  WalRecordBuilder b;
  b.AddPoints(in);
  EXPECT_LE(b.size(), 1000u * 4 + 32);  // flags, a 2-byte time delta, a 1-byte integer
}

TEST(WalTest, LargeBatchesAreSplitIntoRecords) {
  std::vector<PointWrite> in(kMaxPointsPerRecord + 10, PointWrite{1, {1, 2, 0, false}});
  WalRecordBuilder b;
  b.AddPoints(in);
  const auto frames = Frames(b.bytes());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(WalPointReader(frames[0].payload).count(), kMaxPointsPerRecord);
  EXPECT_EQ(WalPointReader(frames[1].payload).count(), 10u);
}

TEST(WalTest, TextAndSeriesRecordsRoundTrip) {
  WalRecordBuilder b;
  b.AddSeries(12, SeriesKind::kText, "G/N/D/state");
  b.AddText(12, TextPoint{-7, std::string("a\0b", 3), 0x40000000, false});
  b.AddText(12, TextPoint{8, "dropped", 0x80000000, true});
  const auto frames = Frames(b.bytes());
  ASSERT_EQ(frames.size(), 3u);
  SeriesId id;
  SeriesKind kind;
  std::string path;
  ASSERT_TRUE(ParseSeriesRecord(frames[0].payload, id, kind, path));
  EXPECT_EQ(id, 12u);
  EXPECT_EQ(kind, SeriesKind::kText);
  EXPECT_EQ(path, "G/N/D/state");
  TextPoint p;
  ASSERT_TRUE(ParseTextRecord(frames[1].payload, id, p));
  EXPECT_EQ(p, (TextPoint{-7, std::string("a\0b", 3), 0x40000000, false}));
  ASSERT_TRUE(ParseTextRecord(frames[2].payload, id, p));
  EXPECT_EQ(p, (TextPoint{8, "", 0x80000000, true}));
}

TEST(WalTest, MalformedPayloadsAreRejected) {
  std::vector<PointWrite> in = {{1, {1, 1.5, 0, false}}, {2, {2, 2.5, 0, false}}};
  WalRecordBuilder b;
  b.AddPoints(in);
  auto payload = Frames(b.bytes())[0].payload;
  // Every truncation fails somewhere, never reads past the end.
  for (size_t n = 0; n < payload.size(); ++n) {
    std::vector<uint8_t> cut(payload.begin(), payload.begin() + static_cast<ptrdiff_t>(n));
    WalPointReader r(cut);
    PointWrite w;
    size_t got = 0;
    while (r.Next(w)) ++got;
    EXPECT_TRUE(!r.ok() || got < 2 || r.malformed()) << n;
    EXPECT_LT(got, 2u) << n;
  }
  std::vector<uint8_t> huge_count = {0xFF, 0xFF, 0x03, 0, 0};
  EXPECT_FALSE(WalPointReader(huge_count).ok());
  SeriesId id;
  SeriesKind kind;
  std::string path;
  EXPECT_FALSE(ParseSeriesRecord(std::vector<uint8_t>{1, 0, 5, 'a'}, id, kind, path));
  EXPECT_FALSE(ParseSeriesRecord(std::vector<uint8_t>{0, 0, 1, 'a'}, id, kind, path));
  EXPECT_FALSE(ParseSeriesRecord(std::vector<uint8_t>{1, 7, 1, 'a'}, id, kind, path));
  TextPoint p;
  EXPECT_FALSE(ParseTextRecord(std::vector<uint8_t>{1, 2, 0, 3, 1, 'a'}, id, p));
}

TEST(WalTest, SegmentNamesAndHeaders) {
  EXPECT_EQ(WalSegmentName(42), "00000000000000000042.wal");
  uint64_t seq = 0;
  EXPECT_TRUE(ParseWalSegmentName("00000000000000000042.wal", seq));
  EXPECT_EQ(seq, 42u);
  EXPECT_FALSE(ParseWalSegmentName("0000000000000000042.wal", seq));
  EXPECT_FALSE(ParseWalSegmentName("0000000000000000004x.wal", seq));
  EXPECT_FALSE(ParseWalSegmentName("00000000000000000042.log", seq));
  EXPECT_FALSE(ParseWalSegmentName("99999999999999999999.wal", seq));
  uint8_t h[kWalHeaderBytes];
  EncodeWalHeader(42, h);
  EXPECT_EQ(CheckWalHeader(h, 42), WalHeaderCheck::kOk);
  EXPECT_EQ(CheckWalHeader(h, 43), WalHeaderCheck::kBadSeq);
  EXPECT_EQ(CheckWalHeader(std::span(h, 10), 42), WalHeaderCheck::kShort);
  h[20] ^= 1;
  EXPECT_EQ(CheckWalHeader(h, 42), WalHeaderCheck::kBadCrc);
  h[0] = 'X';
  EXPECT_EQ(CheckWalHeader(h, 42), WalHeaderCheck::kBadMagic);
}

}  // namespace
}  // namespace kiln::historian::internal
