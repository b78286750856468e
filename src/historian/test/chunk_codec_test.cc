#include "historian/internal/chunk_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/crc32c.h"
#include "testing/status_matchers.h"

namespace kiln::historian::internal {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::FieldsAre;
using ::testing::SizeIs;

constexpr int64_t kT0 = 1'700'000'000'000;  // 2023-11-14, ms

// A seeded PRNG whose output does not depend on the standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) { return Next() % n; }
  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1p-53; }

 private:
  uint64_t state_;
};

// Points compare bit-exactly (NaN == NaN, -0.0 != 0.0).
void ExpectSamePoints(const std::vector<Point>& got, const std::vector<Point>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].t, want[i].t) << "point " << i;
    const double want_v = want[i].is_null ? 0.0 : want[i].v;
    ASSERT_EQ(std::bit_cast<uint64_t>(got[i].v), std::bit_cast<uint64_t>(want_v))
        << "point " << i << ": got " << got[i].v << ", want " << want_v;
    ASSERT_EQ(got[i].q, want[i].q) << "point " << i;
    ASSERT_EQ(got[i].is_null, want[i].is_null) << "point " << i;
  }
}

std::vector<Point> RoundTrip(const std::vector<Point>& points, std::string* blob_out = nullptr) {
  std::string blob;
  EncodeChunk(points, blob);
  std::vector<Point> got;
  EXPECT_THAT(DecodeChunk(blob, got), IsOk());
  EXPECT_THAT(PeekChunk(blob), IsOkAndHolds(FieldsAre(points.front().t, points.back().t,
                                                      static_cast<uint32_t>(points.size()))));
  if (blob_out != nullptr) *blob_out = std::move(blob);
  return got;
}

void ExpectRoundTrip(const std::vector<Point>& points) {
  ExpectSamePoints(RoundTrip(points), points);
}

std::vector<Point> Regular(size_t n, double (*value)(size_t)) {
  std::vector<Point> points(n);
  for (size_t i = 0; i < n; ++i) points[i] = {kT0 + static_cast<int64_t>(i) * 1000, value(i)};
  return points;
}

double TwoDecimals(double x) { return std::round(x * 100) / 100; }

// Rewrites the CRC of a blob after the test changed its bytes, so that the decoder's
// parsing (not only its checksum) is exercised.
void FixCrc(std::string& blob) {
  if (blob.size() < 4) return;
  const uint32_t crc = crc32c::Value(std::string_view(blob).substr(0, blob.size() - 4));
  for (int i = 0; i < 4; ++i) blob[blob.size() - 4 + i] = static_cast<char>(crc >> (8 * i));
}

TEST(ChunkCodecTest, RoundTripsOnePoint) {
  ExpectRoundTrip({{kT0, 21.5, 0, false}});
  ExpectRoundTrip({{-5, -1e300, 0x80000000, false}});
  ExpectRoundTrip({{0, 0, 0x80310000, true}});
}

TEST(ChunkCodecTest, RoundTripsSpecialDoubles) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> specials = {
      0.0,
      -0.0,
      inf,
      -inf,
      std::numeric_limits<double>::quiet_NaN(),
      std::bit_cast<double>(uint64_t{0x7ff0000000000001}),  // signalling NaN
      std::bit_cast<double>(uint64_t{0xfff8dead0000beef}),  // negative NaN with a payload
      std::numeric_limits<double>::denorm_min(),
      -std::numeric_limits<double>::denorm_min(),
      std::numeric_limits<double>::min(),
      std::numeric_limits<double>::max(),
      std::numeric_limits<double>::lowest(),
      std::numeric_limits<double>::epsilon(),
      0.1 + 0.2,
      1e22,
      1e-22,
      9007199254740993.0,
      -9007199254740992.0,
      0x1p51,
      -0x1p51,
      123456789.123456789,
  };
  // Alone, among short decimals (exceptions of the decimal encoding), and in bulk.
  for (double v : specials) {
    ExpectRoundTrip({{kT0, v}});
    std::vector<Point> points = Regular(100, [](size_t i) { return 20 + 0.25 * (i % 7); });
    points[37].v = v;
    ExpectRoundTrip(points);
  }
  std::vector<Point> all;
  for (size_t i = 0; i < specials.size(); ++i) {
    all.push_back({kT0 + static_cast<int64_t>(i), specials[i]});
  }
  ExpectRoundTrip(all);
}

TEST(ChunkCodecTest, RoundTripsExtremeTimestamps) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  ExpectRoundTrip({{kMin, 1}, {kMax, 2}});
  ExpectRoundTrip({{kMin, 1}, {kMin + 1, 2}, {0, 3}, {kMax - 1, 4}, {kMax, 5}});
  ExpectRoundTrip({{kMax, 1}});
  ExpectRoundTrip({{kMin, 1}});
  ExpectRoundTrip({{-86'400'000, 1}, {-1, 2}, {0, 3}, {1, 4}, {86'400'000, 5}});
  // Irregular deltas that alternate between tiny and huge.
  std::vector<Point> points;
  int64_t t = kMin / 2;
  for (int i = 0; i < 1000; ++i) {
    points.push_back({t, static_cast<double>(i)});
    t += (i % 3 == 0) ? (int64_t{1} << 50) : 1 + i;
  }
  ExpectRoundTrip(points);
}

TEST(ChunkCodecTest, NullsDecodeAsZeroAndKeepTheirQuality) {
  std::vector<Point> points = Regular(50, [](size_t i) { return 1.5 * i; });
  for (size_t i = 10; i < 20; ++i)
    points[i] = {points[i].t, 99.9, static_cast<uint32_t>(0x80000000 + i % 3), true};
  points[49] = {points[49].t, -7, 0x80310000, true};
  const std::vector<Point> got = RoundTrip(points);
  ExpectSamePoints(got, points);
  EXPECT_EQ(got[14].v, 0.0);
  EXPECT_EQ(got[14].q, 0x80000002u);
  EXPECT_TRUE(got[14].is_null);
}

TEST(ChunkCodecTest, RoundTripsAllNulls) {
  std::vector<Point> points(300);
  for (size_t i = 0; i < points.size(); ++i) {
    points[i] = {kT0 + static_cast<int64_t>(i), 1.0, 0x80000000, true};
  }
  ExpectRoundTrip(points);
}

TEST(ChunkCodecTest, RoundTripsLargeChunks) {
  ExpectRoundTrip(Regular(65536, [](size_t i) { return TwoDecimals(20 + std::sin(i * 1e-3)); }));
  ExpectRoundTrip(Regular(70000, [](size_t i) { return std::sin(static_cast<double>(i)); }));
  ExpectRoundTrip(Regular(kMaxChunkPoints, [](size_t i) { return static_cast<double>(i); }));
}

TEST(ChunkCodecTest, DecodeAppendsToOut) {
  const std::vector<Point> points = Regular(10, [](size_t i) { return 0.5 * i; });
  std::string blob;
  EncodeChunk(points, blob);
  std::vector<Point> got = {{1, 2, 3, false}};
  ASSERT_THAT(DecodeChunk(blob, got), IsOk());
  ASSERT_THAT(got, SizeIs(11));
  EXPECT_EQ(got[0], (Point{1, 2, 3, false}));
  EXPECT_EQ(got[10], points[9]);
}

TEST(ChunkCodecTest, CompressesShortDecimals) {
  // 2-decimal noise around a slow sine at 1 Hz.
  SplitMix64 rng(7);
  std::vector<Point> points(8192);
  for (size_t i = 0; i < points.size(); ++i) {
    const double x = 20 + 5 * std::sin(2 * M_PI * i / 86400.0) + (rng.Unit() - 0.5);
    points[i] = {kT0 + static_cast<int64_t>(i) * 1000, TwoDecimals(x)};
  }
  std::string blob;
  ExpectSamePoints(RoundTrip(points, &blob), points);
  EXPECT_LT(static_cast<double>(blob.size()) / points.size(), 1.1);
}

TEST(ChunkCodecTest, CompressesARarelyChangingGauge) {
  std::vector<Point> points =
      Regular(8192, [](size_t i) { return static_cast<double>(i / 600 % 7) / 10 + 50; });
  std::string blob;
  ExpectSamePoints(RoundTrip(points, &blob), points);
  EXPECT_LT(static_cast<double>(blob.size()) / points.size(), 0.05);
}

TEST(ChunkCodecTest, RoundTripsDecimalsWhoseCommonExponentOverflows) {
  // 10^14 + x.5 needs 1 decimal (mantissa ~10^15); 0.001 needs 3, which would push the big
  // mantissas past 2^51: some values must become exceptions.
  std::vector<Point> points =
      Regular(300, [](size_t i) { return 1e14 + static_cast<double>(i) + 0.5; });
  for (size_t i = 0; i < points.size(); i += 7) points[i].v = 0.001 * static_cast<double>(i);
  ExpectRoundTrip(points);
  std::vector<Point> many_decimals = Regular(300, [](size_t i) { return 1e-15 * i; });
  many_decimals[5].v = 123456.789;
  ExpectRoundTrip(many_decimals);
}

TEST(ChunkCodecTest, RoundTripsSparseChanges) {
  // Mostly regular timestamps with rare jitter, values that rarely change: sparse streams.
  std::vector<Point> points(5000);
  int64_t t = kT0;
  for (size_t i = 0; i < points.size(); ++i) {
    t += (i % 997 == 0) ? 1013 : 1000;
    points[i] = {t, static_cast<double>(i / 1200) * 0.5 - 3};
  }
  std::string blob;
  ExpectSamePoints(RoundTrip(points, &blob), points);
  EXPECT_LT(blob.size(), 200u);
}

TEST(ChunkCodecTest, RoundTripsNoisySignals) {
  // A slow ramp plus uniform noise at several precisions: the mean predictors.
  for (int decimals = 0; decimals <= 4; ++decimals) {
    SplitMix64 rng(decimals);
    const double scale = std::pow(10, decimals);
    std::vector<Point> points(8192);
    for (size_t i = 0; i < points.size(); ++i) {
      const double x = 0.001 * static_cast<double>(i) + 3 * (rng.Unit() - 0.5) - 40;
      points[i] = {kT0 + static_cast<int64_t>(i), std::round(x * scale) / scale};
    }
    ExpectRoundTrip(points);
  }
}

// Random chunks mixing every kind of value, timestamp spacing, quality and null.
std::vector<Point> RandomChunk(SplitMix64& rng) {
  const size_t sizes[] = {1, 2, 3, 4, 17, 100, 1000, 5000};
  const size_t n = sizes[rng.Below(std::size(sizes))];
  const int value_kind = static_cast<int>(rng.Below(6));
  const int time_kind = static_cast<int>(rng.Below(3));
  const int decimals = static_cast<int>(rng.Below(8));
  const bool with_nulls = rng.Below(3) == 0;
  const bool with_quality = rng.Below(2) == 0;
  std::vector<Point> points(n);
  int64_t t = static_cast<int64_t>(rng.Next());
  if (time_kind != 2) t = kT0 + static_cast<int64_t>(rng.Below(1'000'000));
  double walk = 100 * (rng.Unit() - 0.5);
  for (size_t i = 0; i < n; ++i) {
    Point& p = points[i];
    p.t = t;
    double v;
    switch (value_kind) {
      case 0:  // full random bits: NaNs, infinities, denormals, everything
        v = std::bit_cast<double>(rng.Next());
        break;
      case 1:  // random walk of short decimals
        walk += rng.Unit() - 0.5;
        v = std::round(walk * std::pow(10, decimals)) / std::pow(10, decimals);
        break;
      case 2:  // integers, including huge ones
        v = static_cast<double>(static_cast<int64_t>(rng.Next() >> rng.Below(64)) *
                                (rng.Below(2) ? 1 : -1));
        break;
      case 3:  // decimals with occasional specials
        v = std::round((rng.Unit() - 0.5) * 1e6) / 1e3;
        if (rng.Below(20) == 0) v = std::bit_cast<double>(rng.Next());
        if (rng.Below(50) == 0) v = -0.0;
        break;
      case 4:  // constant
        v = 42.125;
        break;
      default:  // full-precision smooth signal
        v = std::sin(static_cast<double>(i) / 100);
        break;
    }
    p.v = v;
    if (with_quality && rng.Below(10) == 0) p.q = static_cast<uint32_t>(rng.Next());
    if (with_quality && rng.Below(4) == 0 && i > 0) p.q = points[i - 1].q;
    if (with_nulls && rng.Below(5) == 0) p.is_null = true;
    // The next timestamp, without passing INT64_MAX: n - i - 1 points still need room.
    const uint64_t room = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) -
                          static_cast<uint64_t>(t) - (n - i - 1);
    uint64_t step;
    switch (time_kind) {
      case 0:
        step = 1000;
        break;
      case 1:
        step = 1 + rng.Below(2000);
        break;
      default:
        step = 1 + (rng.Next() >> (1 + rng.Below(63)));
        break;
    }
    const uint64_t max_step = room / (n - i) + 1;
    t = static_cast<int64_t>(static_cast<uint64_t>(t) + std::min(step, max_step));
  }
  return points;
}

TEST(ChunkCodecTest, RoundTripsRandomChunks) {
  SplitMix64 rng(20240601);
  for (int iter = 0; iter < 600; ++iter) {
    SCOPED_TRACE(iter);
    const std::vector<Point> points = RandomChunk(rng);
    ExpectRoundTrip(points);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

std::vector<TextPoint> TextRoundTrip(const std::vector<TextPoint>& points) {
  std::string blob;
  EncodeTextChunk(points, blob);
  std::vector<TextPoint> got;
  EXPECT_THAT(DecodeTextChunk(blob, got), IsOk());
  EXPECT_THAT(PeekChunk(blob), IsOkAndHolds(FieldsAre(points.front().t, points.back().t,
                                                      static_cast<uint32_t>(points.size()))));
  return got;
}

TEST(ChunkCodecTest, RoundTripsText) {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  const std::vector<TextPoint> points = {
      {kT0, "", 0, false},
      {kT0 + 1, "running", 0, false},
      {kT0 + 2, "", 0x80000000, true},
      {kT0 + 3, std::string(1 << 20, 'x'), 0, false},
      {kT0 + 4, binary, 0x40000000, false},
      {kT0 + 5, std::string("a\0b", 3), 0, false},
      {std::numeric_limits<int64_t>::max(), "last", 0, false},
  };
  EXPECT_EQ(TextRoundTrip(points), points);
  EXPECT_EQ(TextRoundTrip({{std::numeric_limits<int64_t>::min(), "", 0, false}}),
            (std::vector<TextPoint>{{std::numeric_limits<int64_t>::min(), "", 0, false}}));
}

TEST(ChunkCodecTest, TextNullsDecodeAsEmpty) {
  const std::vector<TextPoint> points = {{1, "ignored", 0x80000000, true}, {2, "x", 0, false}};
  const std::vector<TextPoint> got = TextRoundTrip(points);
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_EQ(got[0], (TextPoint{1, "", 0x80000000, true}));
  EXPECT_EQ(got[1], points[1]);
}

TEST(ChunkCodecTest, RoundTripsRandomTextChunks) {
  SplitMix64 rng(99);
  for (int iter = 0; iter < 200; ++iter) {
    const size_t n = 1 + rng.Below(300);
    std::vector<TextPoint> points(n);
    int64_t t = -static_cast<int64_t>(rng.Below(1'000'000'000));
    for (size_t i = 0; i < n; ++i) {
      points[i].t = t;
      t += 1 + static_cast<int64_t>(rng.Below(5000));
      const size_t len = rng.Below(4) == 0 ? rng.Below(2000) : rng.Below(12);
      for (size_t k = 0; k < len; ++k) points[i].v.push_back(static_cast<char>(rng.Below(256)));
      if (rng.Below(6) == 0) {
        points[i].is_null = true;
        points[i].v.clear();
        points[i].q = 0x80000000;
      }
    }
    ASSERT_EQ(TextRoundTrip(points), points) << "iteration " << iter;
  }
}

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// Version-1 blobs as this encoder writes them (docs/formats/historian-chunk.md walks through
// the first). A reader must keep decoding them; the uncompressed ones must also encode to
// the same bytes unless the format version changes.
constexpr std::string_view kGoldenNumeric =
    "4b480100000580a0abfef962a01fd00f00040200018080808008000000808080800400020102000000000000"
    "008002cc213101c84c2df83f";
constexpr std::string_view kGoldenCompressed =
    "4b48010001c80180a0abfef962d8920cd50128b52ffd20d53d0300d2840a10d06538004b550100580ab71b5b"
    "a6940259cea7a2e6fdf0f3b2bad1e8cb35a9a5cc321088bb321850041900014340f3823e40448010e102660188"
    "2b04d3f8d50ac015ace02ac010e8f2032858c0edcd6a1804639d662d36e8869d8ab054d4cb0561284e3e6a72ef";
constexpr std::string_view kGoldenText =
    "4b480101000380a0abfef962dc0be80702e8030300000080808080040180808080080102036f6e6f6666e9dec1"
    "b1";

TEST(ChunkCodecTest, DecodesGoldenVersion1Blobs) {
  const std::vector<Point> numeric = {{kT0, 21.5},
                                      {kT0 + 1000, 21.25},
                                      {kT0 + 2000, 0, 0x80000000, true},
                                      {kT0 + 3000, -0.0},
                                      {kT0 + 4000, 22, 0x40000000}};
  std::vector<Point> got;
  ASSERT_THAT(DecodeChunk(FromHex(kGoldenNumeric), got), IsOk());
  ExpectSamePoints(got, numeric);
  std::string blob;
  EncodeChunk(numeric, ChunkEncodeOptions{.zstd_level = 0}, blob);
  EXPECT_EQ(blob, FromHex(kGoldenNumeric));

  std::vector<Point> compressed;
  for (int i = 0; i < 200; ++i) {
    compressed.push_back({kT0 + i * 1000, std::round(100 * (20 + std::sin(i * 0.1))) / 100});
  }
  got.clear();
  ASSERT_THAT(DecodeChunk(FromHex(kGoldenCompressed), got), IsOk());
  ExpectSamePoints(got, compressed);

  const std::vector<TextPoint> text = {
      {kT0, "on"}, {kT0 + 500, "off", 0x40000000}, {kT0 + 1500, "", 0x80000000, true}};
  std::vector<TextPoint> got_text;
  ASSERT_THAT(DecodeTextChunk(FromHex(kGoldenText), got_text), IsOk());
  EXPECT_EQ(got_text, text);
  EncodeTextChunk(text, ChunkEncodeOptions{.zstd_level = 0}, blob);
  EXPECT_EQ(blob, FromHex(kGoldenText));
}

TEST(ChunkCodecTest, PeeksAtTextChunksAndRejectsTruncatedHeaders) {
  const std::string text = FromHex(kGoldenText);
  EXPECT_THAT(PeekChunk(text), IsOkAndHolds(FieldsAre(kT0, kT0 + 1500, 3u)));
  for (size_t len = 0; len < 12; ++len) {
    EXPECT_THAT(PeekChunk(text.substr(0, len)), StatusIs(StatusCode::kDataLoss)) << len;
  }
}

TEST(ChunkCodecTest, RejectsAChunkOfTheOtherKind) {
  std::string numeric, text;
  EncodeChunk(std::vector<Point>{{1, 2}}, numeric);
  EncodeTextChunk(std::vector<TextPoint>{{1, "a"}}, text);
  std::vector<Point> points;
  std::vector<TextPoint> texts;
  EXPECT_THAT(DecodeChunk(text, points), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(DecodeTextChunk(numeric, texts), StatusIs(StatusCode::kDataLoss));
  EXPECT_TRUE(points.empty());
  EXPECT_TRUE(texts.empty());
}

TEST(ChunkCodecTest, RejectsAnUnknownVersion) {
  std::string blob;
  EncodeChunk(std::vector<Point>{{1, 2}}, blob);
  blob[2] = 2;
  FixCrc(blob);
  std::vector<Point> points;
  EXPECT_THAT(DecodeChunk(blob, points), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(PeekChunk(blob), StatusIs(StatusCode::kDataLoss));
}

TEST(ChunkCodecTest, RejectsEmptyAndGarbage) {
  std::vector<Point> points;
  EXPECT_THAT(DecodeChunk("", points), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(DecodeChunk("KH", points), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(PeekChunk(""), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(PeekChunk("not a chunk at all"), StatusIs(StatusCode::kDataLoss));
}

TEST(ChunkCodecTest, DetectsAFlippedBitByCrc) {
  std::string blob;
  EncodeChunk(Regular(1000, [](size_t i) { return 0.01 * i; }), blob);
  for (size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] ^= 0x10;
    std::vector<Point> points = {{1, 2}};
    EXPECT_THAT(DecodeChunk(bad, points), StatusIs(StatusCode::kDataLoss)) << "byte " << i;
    EXPECT_THAT(points, SizeIs(1));
  }
}

// Blobs of every encoding, to corrupt: each both zstd-compressed and stored raw, so that
// corrupt bodies also reach the body parser directly.
std::vector<std::string> SampleBlobs() {
  std::vector<std::string> blobs;
  SplitMix64 rng(5);
  std::vector<std::vector<Point>> chunks;
  for (int i = 0; i < 24; ++i) {
    chunks.push_back(RandomChunk(rng));
    if (chunks.back().size() > 300) chunks.back().resize(300);
  }
  chunks.push_back(Regular(20, [](size_t i) { return 0.5 * i; }));
  std::vector<Point> with_specials = Regular(40, [](size_t i) { return 0.25 * i; });
  with_specials[3].v = -0.0;
  with_specials[9].is_null = true;
  with_specials[30].v = std::numeric_limits<double>::quiet_NaN();
  chunks.push_back(with_specials);
  const std::vector<TextPoint> texts = {{1, "a"}, {5, "", 7, true}, {9, std::string(100, 'z')}};
  for (int level : {3, 0}) {
    for (const std::vector<Point>& points : chunks) {
      blobs.emplace_back();
      EncodeChunk(points, ChunkEncodeOptions{.zstd_level = level}, blobs.back());
    }
    blobs.emplace_back();
    EncodeTextChunk(texts, ChunkEncodeOptions{.zstd_level = level}, blobs.back());
  }
  return blobs;
}

// Decodes a corrupt blob: it must fail with DataLoss or decode (never crash or hit UB, which
// the asan preset checks).
void ExpectDataLossOrDecodes(const std::string& blob) {
  std::vector<Point> points;
  const Status s = DecodeChunk(blob, points);
  if (!s.ok()) {
    EXPECT_THAT(s, StatusIs(StatusCode::kDataLoss));
    EXPECT_TRUE(points.empty());
  }
  std::vector<TextPoint> texts;
  const Status st = DecodeTextChunk(blob, texts);
  if (!st.ok()) {
    EXPECT_THAT(st, StatusIs(StatusCode::kDataLoss));
  }
  const Result<ChunkSummary> summary = PeekChunk(blob);
  if (!summary.ok()) {
    EXPECT_THAT(summary, StatusIs(StatusCode::kDataLoss));
  }
}

TEST(ChunkCodecTest, RejectsEveryTruncation) {
  for (const std::string& blob : SampleBlobs()) {
    for (size_t len = 0; len < blob.size(); ++len) {
      std::string prefix = blob.substr(0, len);
      std::vector<Point> points;
      std::vector<TextPoint> texts;
      EXPECT_THAT(DecodeChunk(prefix, points), StatusIs(StatusCode::kDataLoss));
      EXPECT_THAT(DecodeTextChunk(prefix, texts), StatusIs(StatusCode::kDataLoss));
      // With a valid CRC, the parser itself must notice.
      FixCrc(prefix);
      ExpectDataLossOrDecodes(prefix);
    }
  }
}

TEST(ChunkCodecTest, SurvivesCorruptionBehindAValidCrc) {
  SplitMix64 rng(11);
  for (const std::string& blob : SampleBlobs()) {
    for (int iter = 0; iter < 400; ++iter) {
      std::string bad = blob;
      const int flips = 1 + static_cast<int>(rng.Below(4));
      for (int f = 0; f < flips; ++f) {
        // Favour the header and the start of the body, where the lengths are.
        const size_t at =
            rng.Below(2) ? rng.Below(std::min<size_t>(bad.size(), 24)) : rng.Below(bad.size());
        bad[at] = static_cast<char>(rng.Below(2) ? rng.Below(256) : bad[at] ^ (1 << rng.Below(8)));
      }
      FixCrc(bad);
      ExpectDataLossOrDecodes(bad);
    }
  }
}

TEST(ChunkCodecTest, SurvivesEveryByteValueInAnUncompressedBody) {
  std::vector<Point> points = Regular(6, [](size_t i) { return 0.5 * i; });
  points[1].is_null = true;
  points[3].v = -0.0;
  std::string blob;
  EncodeChunk(points, ChunkEncodeOptions{.zstd_level = 0}, blob);
  ASSERT_EQ(blob[4], 0) << "expected an uncompressed body";
  for (size_t at = 5; at + 4 < blob.size(); ++at) {
    for (int b = 0; b < 256; ++b) {
      std::string bad = blob;
      bad[at] = static_cast<char>(b);
      FixCrc(bad);
      ExpectDataLossOrDecodes(bad);
    }
  }
}

TEST(ChunkCodecTest, RoundTripsUncompressed) {
  SplitMix64 rng(3);
  for (int iter = 0; iter < 50; ++iter) {
    const std::vector<Point> points = RandomChunk(rng);
    std::string blob;
    EncodeChunk(points, ChunkEncodeOptions{.zstd_level = 0}, blob);
    ASSERT_EQ(blob[4], 0);
    std::vector<Point> got;
    ASSERT_THAT(DecodeChunk(blob, got), IsOk());
    ExpectSamePoints(got, points);
  }
}

}  // namespace
}  // namespace kiln::historian::internal
