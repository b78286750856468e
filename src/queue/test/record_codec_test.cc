#include "queue/internal/record_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "queue/internal/format.h"
#include "queue/internal/segment.h"

namespace kiln::queue::internal {
namespace {

using contract::Quality;
using contract::Sample;
using contract::Value;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

Sample S(uint32_t tag, Value v, int64_t ns, uint32_t quality = 0) {
  return Sample{tag, std::move(v), Quality(quality), Timestamp(std::chrono::nanoseconds(ns))};
}

// Every value type at its edges, every kind of quality, times going forward, backward and
// far apart.
std::vector<Sample> EveryKind() {
  const int64_t t = int64_t{1700000000} * 1000000000;
  return {
      S(0, Value(), t),
      S(1, Value(true), t, 0x80050000),
      S(2, Value(false), t + 1),
      S(3, Value(std::numeric_limits<int8_t>::min()), t - 5, 0x40000000),
      S(4, Value(std::numeric_limits<int8_t>::max()), t),
      S(5, Value(std::numeric_limits<int16_t>::min()), t),
      S(6, Value(std::numeric_limits<int16_t>::max()), t),
      S(7, Value(std::numeric_limits<int32_t>::min()), t),
      S(8, Value(std::numeric_limits<int32_t>::max()), t),
      S(9, Value(std::numeric_limits<int64_t>::min()), t),
      S(10, Value(std::numeric_limits<int64_t>::max()), t),
      S(11, Value(uint8_t{255}), t),
      S(12, Value(uint16_t{65535}), t),
      S(13, Value(std::numeric_limits<uint32_t>::max()), t),
      S(14, Value(std::numeric_limits<uint64_t>::max()), t),
      S(15, Value(1.5f), t),
      S(16, Value(-std::numeric_limits<float>::infinity()), t),
      S(17, Value(std::numeric_limits<float>::denorm_min()), t),
      S(18, Value(-0.0), t),
      S(19, Value(3.141592653589793), t),
      S(20, Value(std::numeric_limits<double>::max()), t, 0xFFFFFFFF),
      S(21, Value(std::string()), t),
      S(22, Value("pump 7 running"), t),
      S(23, Value(std::string(1000, 'x')), t),
      S(std::numeric_limits<uint32_t>::max(), Value(int32_t{-1}),
        std::numeric_limits<int64_t>::max()),
      S(24, Value(int8_t{0}), std::numeric_limits<int64_t>::min()),
      S(25, Value(int16_t{-300}), 0),
      S(26, Value(int64_t{1}), -1),
  };
}

std::vector<Sample> DecodeAll(std::span<const uint8_t> payload, int64_t base, uint32_t count) {
  std::vector<Sample> out;
  SampleDecoder d(payload, base);
  for (uint32_t i = 0; i < count; ++i) {
    Sample s;
    EXPECT_TRUE(d.Next(s)) << "sample " << i;
    out.push_back(std::move(s));
  }
  EXPECT_TRUE(d.AtEnd());
  return out;
}

TEST(RecordCodecTest, RoundTripsEveryValueTypeAndQuality) {
  const std::vector<Sample> in = EveryKind();
  RecordEncoder enc(64 * 1024);
  ASSERT_EQ(enc.Encode(in), 0u);
  ASSERT_EQ(enc.records().size(), 1u);
  const EncodedRecord& r = enc.records()[0];
  EXPECT_EQ(r.count, in.size());
  EXPECT_EQ(r.min_time, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r.max_time, std::numeric_limits<int64_t>::max());
  const FrameHeader h = DecodeFrameHeader(enc.bytes().data());
  EXPECT_EQ(h.count, in.size());
  EXPECT_EQ(h.base_time, in[0].source_time.time_since_epoch().count());
  EXPECT_EQ(kFrameHeaderBytes + h.payload_bytes, r.size);
  const auto out = DecodeAll(std::span(enc.bytes()).subspan(kFrameHeaderBytes, h.payload_bytes),
                             h.base_time, h.count);
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(out[i], in[i]) << "sample " << i;
  // -0.0 == 0.0, so check the sign bit survived too.
  EXPECT_TRUE(std::signbit(*out[18].value.get_if<double>()));
}

TEST(RecordCodecTest, AReusedEncoderHoldsOnlyTheLatestBatch) {
  RecordEncoder enc(1 << 16);
  std::vector<Sample> big;
  for (int i = 0; i < 500; ++i) big.push_back(S(static_cast<uint32_t>(i), Value(i * 1.5), i));
  ASSERT_EQ(enc.Encode(big), 0u);
  const size_t big_size = enc.bytes().size();
  ASSERT_EQ(enc.Encode(std::vector<Sample>{S(7, Value(2.5), 0)}), 0u);
  ASSERT_EQ(enc.records().size(), 1u);
  EXPECT_LT(enc.bytes().size(), big_size);
  EXPECT_EQ(enc.bytes().size(), enc.records()[0].size);
  const FrameHeader h = DecodeFrameHeader(enc.bytes().data());
  const auto out = DecodeAll(std::span(enc.bytes()).subspan(kFrameHeaderBytes, h.payload_bytes),
                             h.base_time, h.count);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], S(7, Value(2.5), 0));
}

TEST(RecordCodecTest, NanSurvivesBitForBit) {
  const float nan = std::bit_cast<float>(uint32_t{0x7FC01234});
  RecordEncoder enc(1024);
  ASSERT_EQ(enc.Encode(std::vector<Sample>{S(1, Value(nan), 5)}), 0u);
  const FrameHeader h = DecodeFrameHeader(enc.bytes().data());
  const auto out = DecodeAll(std::span(enc.bytes()).subspan(kFrameHeaderBytes), h.base_time, 1);
  EXPECT_EQ(std::bit_cast<uint32_t>(*out[0].value.get_if<float>()), 0x7FC01234u);
}

TEST(RecordCodecTest, GoldenSampleBytes) {
  const int64_t t = 1000;
  std::vector<uint8_t> buf(64);
  int64_t prev = t;
  // Tag 5, same time as the base, float 1.5, Good: no quality bytes.
  uint8_t* end = EncodeSample(S(5, Value(1.5f), t), prev, buf.data());
  EXPECT_THAT(std::vector<uint8_t>(buf.data(), end),
              ElementsAre(0x05, 0x00, 0x0A, 0x00, 0x00, 0xC0, 0x3F));
  // Tag 300, 1000 ns later (zigzag 2000), int16 -2 (zigzag 3), quality Bad 0x80000000.
  end = EncodeSample(S(300, Value(int16_t{-2}), t + 1000, 0x80000000), prev, buf.data());
  EXPECT_THAT(std::vector<uint8_t>(buf.data(), end),
              ElementsAre(0xAC, 0x02, 0xD0, 0x0F, 0x13, 0x00, 0x00, 0x00, 0x80, 0x03));
  // Back in time by 1 ns (zigzag 1), a string.
  end = EncodeSample(S(1, Value("ab"), t + 999), prev, buf.data());
  EXPECT_THAT(std::vector<uint8_t>(buf.data(), end), ElementsAre(0x01, 0x01, 0x0C, 0x02, 'a', 'b'));
  // The two-byte tag of the fast path: tag 300, 3 ns later (zigzag 6), float 2.5, Good.
  end = EncodeSample(S(300, Value(2.5f), t + 1002), prev, buf.data());
  EXPECT_THAT(std::vector<uint8_t>(buf.data(), end),
              ElementsAre(0xAC, 0x02, 0x06, 0x0A, 0x00, 0x00, 0x20, 0x40));
  // Just beyond it: tag 16384 (three bytes), the same time, bool true, Good.
  end = EncodeSample(S(16384, Value(true), t + 1002), prev, buf.data());
  EXPECT_THAT(std::vector<uint8_t>(buf.data(), end),
              ElementsAre(0x80, 0x80, 0x01, 0x00, 0x01, 0x01));
  // A delta of 64 ns (zigzag 128, two bytes) leaves the fast path too: tag 1, null, Good.
  end = EncodeSample(S(1, Value(), t + 1066), prev, buf.data());
  EXPECT_THAT(std::vector<uint8_t>(buf.data(), end), ElementsAre(0x01, 0x80, 0x01, 0x00));
}

TEST(RecordCodecTest, SplitsIntoRecordsOfBoundedPayloadAndDropsOversizedSamples) {
  std::vector<Sample> in;
  for (int i = 0; i < 500; ++i) in.push_back(S(static_cast<uint32_t>(i), Value(i * 1.0), i * 1000));
  in.insert(in.begin() + 250, S(9, Value(std::string(300, 'z')), 250 * 1000));  // too large
  RecordEncoder enc(200);
  EXPECT_EQ(enc.Encode(in), 1u);
  ASSERT_GT(enc.records().size(), 10u);
  uint64_t total = 0;
  size_t offset = 0;
  std::vector<Sample> out;
  for (const EncodedRecord& r : enc.records()) {
    EXPECT_EQ(r.offset, offset);  // back to back
    const FrameHeader h = DecodeFrameHeader(enc.bytes().data() + r.offset);
    EXPECT_LE(h.payload_bytes, 200u);
    EXPECT_EQ(h.count, r.count);
    auto part =
        DecodeAll(std::span(enc.bytes()).subspan(r.offset + kFrameHeaderBytes, h.payload_bytes),
                  h.base_time, h.count);
    out.insert(out.end(), part.begin(), part.end());
    total += r.count;
    offset += r.size;
  }
  EXPECT_EQ(offset, enc.bytes().size());
  EXPECT_EQ(total, 500u);
  in.erase(in.begin() + 250);
  EXPECT_THAT(out, ElementsAreArray(in));
}

TEST(RecordCodecTest, DecoderRejectsMalformedPayloads) {
  auto decode_one = [](std::vector<uint8_t> p) {
    SampleDecoder d(p, 0);
    Sample s;
    return d.Next(s);
  };
  EXPECT_TRUE(decode_one({0x01, 0x00, 0x01, 0x01}));         // bool true
  EXPECT_FALSE(decode_one({0x01, 0x00, 0x01, 0x02}));        // bool 2
  EXPECT_FALSE(decode_one({0x01, 0x00, 0x0D}));              // type 13
  EXPECT_FALSE(decode_one({0x01, 0x00, 0x2A, 0, 0, 0, 0}));  // reserved flag bit
  EXPECT_FALSE(decode_one({0x01, 0x00, 0x02, 0x80, 0x02}));  // int8 256 (zigzag 256 = 128)
  EXPECT_FALSE(decode_one({0x01, 0x00, 0x0A, 0x00, 0x00}));  // float cut short
  EXPECT_FALSE(decode_one({0x01, 0x00, 0x1B, 0x00}));        // quality cut short
  EXPECT_FALSE(decode_one({0x01, 0x00, 0x0C, 0x05, 'a'}));   // string longer than the payload
  EXPECT_FALSE(decode_one({0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00, 0x00}));  // tag > u32
  EXPECT_FALSE(decode_one({0x01}));                                            // no time
}

SegmentSource Memory(const std::vector<uint8_t>& frames) {
  return SegmentSource{nullptr, std::make_shared<const std::vector<uint8_t>>(frames)};
}

TEST(RecordCodecTest, FramesCarryCrcSequenceAndIds) {
  RecordEncoder enc(100);
  ASSERT_EQ(enc.Encode(
                std::vector<Sample>{S(1, Value(1.0), 0), S(2, Value(2.0), 0), S(3, Value(3.0), 0)}),
            0u);
  ASSERT_EQ(enc.records().size(), 1u);
  SealFrame(enc.bytes().data(), 7, 42, enc.records()[0].payload_crc);
  std::vector<uint8_t> frames(enc.bytes().begin(), enc.bytes().end());
  frames.resize(frames.size() + 64, 0);  // zeroed space after it
  const uint64_t end = kHeaderBytes + frames.size();
  std::vector<uint8_t> buffer;

  auto source = Memory(frames);
  RecordReader reader(source, 7, kHeaderBytes, 42, end, buffer);
  RecordView rec;
  ASSERT_EQ(reader.Next(rec), ReadOutcome::kRecord);
  EXPECT_EQ(rec.header.first_id, 42u);
  EXPECT_EQ(rec.header.count, 3u);
  EXPECT_EQ(rec.header.seq, 7u);
  EXPECT_EQ(rec.offset, kHeaderBytes);
  EXPECT_EQ(reader.next_id(), 45u);
  EXPECT_EQ(reader.Next(rec), ReadOutcome::kZero);  // end of data

  // Another segment's sequence number: old data of a recycled file.
  RecordReader stale(source, 8, kHeaderBytes, 42, end, buffer);
  EXPECT_EQ(stale.Next(rec), ReadOutcome::kStale);
  // Not the id expected there.
  RecordReader wrong_id(source, 7, kHeaderBytes, 41, end, buffer);
  EXPECT_EQ(wrong_id.Next(rec), ReadOutcome::kBadRecord);
  // Any flipped byte of the frame (length, CRC, header or payload) is caught.
  for (size_t i = 0; i < enc.records()[0].size; ++i) {
    if (i >= 8 && i < 12) continue;  // the sequence number: a different outcome (stale)
    std::vector<uint8_t> bad = frames;
    bad[i] ^= 0x10;
    auto src = Memory(bad);
    RecordReader r(src, 7, kHeaderBytes, 42, end, buffer);
    EXPECT_NE(r.Next(rec), ReadOutcome::kRecord) << "byte " << i;
  }
  // Cut short.
  std::vector<uint8_t> cut(frames.begin(),
                           frames.begin() + static_cast<long>(enc.records()[0].size) - 1);
  auto cut_src = Memory(cut);
  RecordReader torn(cut_src, 7, kHeaderBytes, 42, kHeaderBytes + cut.size(), buffer);
  EXPECT_EQ(torn.Next(rec), ReadOutcome::kTorn);
  EXPECT_EQ(torn.bad_bytes(), cut.size());
}

TEST(SegmentFormatTest, HeaderBlockRoundTripsWithSealAndIndex) {
  SegmentHeader h;
  h.seq = 12;
  h.first_id = 1000;
  h.tag_fingerprint = 0xABCDEF;
  h.segment_bytes = 1 << 20;
  h.created_ns = 99;
  std::vector<uint8_t> block(kHeaderBytes);
  std::span<uint8_t, kHeaderBytes> view(block.data(), kHeaderBytes);
  EncodeHeaderBlock(h, view);
  SegmentHeader d;
  ASSERT_EQ(DecodeHeaderBlock(block, d), HeaderCheck::kOk);
  EXPECT_FALSE(d.sealed);
  EXPECT_EQ(d.seq, 12u);
  EXPECT_EQ(d.first_id, 1000u);
  EXPECT_EQ(d.tag_fingerprint, 0xABCDEFu);

  h.sealed = true;
  h.count = 77;
  h.data_end = 5000;
  h.min_time = -5;
  h.max_time = 500;
  for (uint64_t i = 0; i < kMaxIndexEntries; ++i)
    h.index.push_back({1000 + i, 4096 + i * 10, static_cast<int64_t>(i)});
  EncodeHeaderBlock(h, view);
  ASSERT_EQ(DecodeHeaderBlock(block, d), HeaderCheck::kOk);
  EXPECT_TRUE(d.sealed);
  EXPECT_FALSE(d.compressed);
  EXPECT_EQ(d.count, 77u);
  EXPECT_EQ(d.data_end, 5000u);
  EXPECT_EQ(d.min_time, -5);
  EXPECT_EQ(d.max_time, 500);
  EXPECT_EQ(d.index, h.index);

  // A damaged index is ignored, a damaged seal makes the segment unsealed, a damaged
  // identity makes the header corrupt.
  std::vector<uint8_t> bad = block;
  bad[kIndexOffset + 100] ^= 1;
  ASSERT_EQ(DecodeHeaderBlock(bad, d), HeaderCheck::kOk);
  EXPECT_TRUE(d.sealed);
  EXPECT_TRUE(d.index.empty());
  bad = block;
  bad[kSealOffset + 20] ^= 1;
  ASSERT_EQ(DecodeHeaderBlock(bad, d), HeaderCheck::kOk);
  EXPECT_FALSE(d.sealed);
  bad = block;
  bad[30] ^= 1;
  EXPECT_EQ(DecodeHeaderBlock(bad, d), HeaderCheck::kCorrupt);
  bad = block;
  bad[0] = 'X';
  EXPECT_EQ(DecodeHeaderBlock(bad, d), HeaderCheck::kNotASegment);
  h.version = 2;
  EncodeHeaderBlock(h, view);
  EXPECT_EQ(DecodeHeaderBlock(block, d), HeaderCheck::kUnknownVersion);
  EXPECT_EQ(d.version, 2u);
}

TEST(SegmentFormatTest, SealOfAnEarlierUseOfTheFileIsNotTrusted) {
  SegmentHeader old;
  old.seq = 3;
  old.first_id = 1;
  old.sealed = true;
  old.count = 10;
  old.data_end = 8000;
  std::vector<uint8_t> block(kHeaderBytes);
  EncodeHeaderBlock(old, std::span<uint8_t, kHeaderBytes>(block.data(), kHeaderBytes));
  // A new identity written over the first 64 bytes only (a torn header write).
  SegmentHeader fresh;
  fresh.seq = 9;
  fresh.first_id = 500;
  std::vector<uint8_t> head(kHeaderBytes);
  EncodeHeaderBlock(fresh, std::span<uint8_t, kHeaderBytes>(head.data(), kHeaderBytes));
  std::copy(head.begin(), head.begin() + 64, block.begin());
  SegmentHeader d;
  ASSERT_EQ(DecodeHeaderBlock(block, d), HeaderCheck::kOk);
  EXPECT_EQ(d.seq, 9u);
  EXPECT_FALSE(d.sealed);
}

TEST(SegmentFormatTest, AcksEntriesRoundTripAndATornTailIsIgnored) {
  std::vector<uint8_t> buf;
  EncodeAcksHeader(buf);
  const std::vector<IdRange> a = {{1, 10}, {20, 5}};
  const std::vector<IdRange> b = {{100, 1}};
  EncodeAcksEntry(a, buf);
  EncodeAcksEntry(b, buf);
  AcksParse p = ParseAcks(buf);
  EXPECT_TRUE(p.header_ok);
  EXPECT_THAT(p.ranges, ElementsAre(IdRange{1, 10}, IdRange{20, 5}, IdRange{100, 1}));
  EXPECT_EQ(p.torn_bytes, 0u);
  const size_t whole = buf.size();
  EncodeAcksEntry(a, buf);
  buf.resize(buf.size() - 3);  // the last entry torn
  p = ParseAcks(buf);
  EXPECT_EQ(p.ranges.size(), 3u);
  EXPECT_EQ(p.valid_bytes, whole);
  EXPECT_EQ(p.torn_bytes, buf.size() - whole);
  buf[whole - 1] ^= 1;  // and a corrupt one
  p = ParseAcks(buf);
  EXPECT_EQ(p.ranges.size(), 2u);
}

TEST(SegmentFormatTest, FileNames) {
  EXPECT_EQ(SegmentFileName(42, false), "seg-00000000000000000042.log");
  EXPECT_EQ(SegmentFileName(42, true), "seg-00000000000000000042.zst");
  uint64_t id = 0;
  bool z = true;
  EXPECT_TRUE(ParseSegmentFileName("seg-00000000000000000042.log", id, z));
  EXPECT_EQ(id, 42u);
  EXPECT_FALSE(z);
  EXPECT_FALSE(ParseSegmentFileName("seg-0000000000000000004x.log", id, z));
  EXPECT_FALSE(ParseSegmentFileName("seg-00000000000000000042.tmp", id, z));
  EXPECT_TRUE(ParseSpareFileName("spare-7.log", id));
  EXPECT_EQ(id, 7u);
  EXPECT_FALSE(ParseSpareFileName("spare-.log", id));
}

TEST(SegmentIndexTest, KeepsEvenlySpacedEntries) {
  IndexBuilder b;
  for (uint64_t i = 0; i < 1000; ++i) b.Add({i * 10, i, static_cast<int64_t>(i)});
  const auto& e = b.entries();
  ASSERT_LE(e.size(), kMaxIndexEntries);
  ASSERT_GE(e.size(), kMaxIndexEntries / 2);
  EXPECT_EQ(e[0].first_id, 0u);
  const uint64_t stride = e[1].first_id - e[0].first_id;
  for (size_t i = 1; i < e.size(); ++i) EXPECT_EQ(e[i].first_id - e[i - 1].first_id, stride);
}

}  // namespace
}  // namespace kiln::queue::internal
