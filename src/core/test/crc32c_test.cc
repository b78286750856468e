#include "core/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kiln::crc32c {
namespace {

// Known answers: the CRC catalogue's check value and the iSCSI vectors of RFC 3720 B.4.
struct Vector {
  std::vector<uint8_t> data;
  uint32_t crc;
};

std::vector<Vector> KnownAnswers() {
  std::vector<Vector> v;
  const std::string check = "123456789";
  v.push_back({std::vector<uint8_t>(check.begin(), check.end()), 0xE3069283});
  v.push_back({std::vector<uint8_t>(32, 0x00), 0x8A9136AA});
  v.push_back({std::vector<uint8_t>(32, 0xFF), 0x62A8AB43});
  std::vector<uint8_t> up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<uint8_t>(i);
    down[i] = static_cast<uint8_t>(31 - i);
  }
  v.push_back({up, 0x46DD794E});
  v.push_back({down, 0x113FDB5C});
  v.push_back({{}, 0});
  return v;
}

TEST(Crc32cTest, KnownAnswers) {
  for (const Vector& v : KnownAnswers()) {
    EXPECT_EQ(Value(v.data.data(), v.data.size()), v.crc) << v.data.size() << " bytes";
    EXPECT_EQ(ExtendPortableForTest(0, v.data.data(), v.data.size()), v.crc);
  }
  EXPECT_EQ(Value(std::string_view("123456789")), 0xE3069283u);
}

TEST(Crc32cTest, ExtendEqualsWholeAtEverySplitAndAlignment) {
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(300);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t start = 0; start < 9; ++start) {
    const size_t n = buf.size() - start;
    const uint32_t whole = Value(buf.data() + start, n);
    EXPECT_EQ(ExtendPortableForTest(0, buf.data() + start, n), whole);
    for (size_t split = 0; split <= n; split += 7) {
      const uint32_t a = Value(buf.data() + start, split);
      EXPECT_EQ(Extend(a, buf.data() + start + split, n - split), whole);
      EXPECT_EQ(ExtendPortableForTest(a, buf.data() + start + split, n - split), whole);
    }
  }
}

// Lengths around the multiples of the three-stream round (3 x 512 bytes), from every
// alignment, against the table implementation.
TEST(Crc32cTest, ThreeStreamRoundsAgreeWithTheTableAtTheirEdges) {
  std::mt19937_64 rng(3);
  std::vector<uint8_t> buf(5000);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t round : {1536, 3072, 4608}) {
    for (size_t n = round - 9; n <= round + 9; ++n) {
      for (size_t off = 0; off < 8 && off + n <= buf.size(); ++off) {
        const uint32_t seed = static_cast<uint32_t>(rng());
        ASSERT_EQ(Extend(seed, buf.data() + off, n),
                  ExtendPortableForTest(seed, buf.data() + off, n))
            << n << " bytes at offset " << off;
      }
    }
  }
}

TEST(Crc32cTest, CombineEqualsTheCrcOfTheConcatenation) {
  std::mt19937_64 rng(11);
  std::vector<uint8_t> buf((1 << 17) + 100);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  // Every length of b below 600 (the table's low byte and its carries), then random lengths
  // on both sides of 64 KiB, where the short-operator tables give way to the general path.
  std::vector<size_t> lengths;
  for (size_t n = 0; n < 600; ++n) lengths.push_back(n);
  for (int i = 0; i < 100; ++i) lengths.push_back(rng() % buf.size() / 2 + 60'000);
  lengths.push_back(65535);
  lengths.push_back(65536);
  for (size_t len_b : lengths) {
    const size_t len_a = rng() % 50;
    const uint8_t* a = buf.data();
    const uint8_t* b = buf.data() + len_a;
    ASSERT_LE(len_a + len_b, buf.size());
    ASSERT_EQ(Combine(Value(a, len_a), Value(b, len_b), len_b), Value(a, len_a + len_b))
        << "|a| " << len_a << " |b| " << len_b;
  }
}

// Beyond 512 MiB the operator needs powers x^(2^k) with k >= 32 (8 n >= 2^32 bits): checked
// against the CRC of that many zero bytes, computed 1 MiB at a time (~0.1 s).
TEST(Crc32cTest, CombineHandlesLengthsBeyond512MiB) {
  const std::vector<uint8_t> zeros(size_t{1} << 20, 0);
  const size_t len_b = (size_t{1} << 29) + 12345;
  uint32_t crc_b = 0;
  for (size_t done = 0; done < len_b; done += zeros.size()) {
    crc_b = Extend(crc_b, zeros.data(), std::min(zeros.size(), len_b - done));
  }
  const std::string a = "kiln";
  uint32_t whole = Value(a);
  for (size_t done = 0; done < len_b; done += zeros.size()) {
    whole = Extend(whole, zeros.data(), std::min(zeros.size(), len_b - done));
  }
  EXPECT_EQ(Combine(Value(a), crc_b, len_b), whole);
}

TEST(Crc32cTest, HardwareAndPortableAgreeOnRandomData) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf(1 << 16);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (int i = 0; i < 200; ++i) {
    const size_t off = rng() % 64;
    const size_t n = rng() % (buf.size() - off);
    const uint32_t seed = static_cast<uint32_t>(rng());
    ASSERT_EQ(Extend(seed, buf.data() + off, n), ExtendPortableForTest(seed, buf.data() + off, n));
  }
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) {
    EXPECT_TRUE(IsHardwareAccelerated());
  }
#endif
}

TEST(Crc32cTest, DetectsSingleBitFlips) {
  std::vector<uint8_t> buf(64, 0x5A);
  const uint32_t good = Value(buf.data(), buf.size());
  for (size_t bit = 0; bit < buf.size() * 8; ++bit) {
    buf[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    ASSERT_NE(Value(buf.data(), buf.size()), good) << bit;
    buf[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  }
}

}  // namespace
}  // namespace kiln::crc32c
