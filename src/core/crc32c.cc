#include "core/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace kiln::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82F63B78;  // 0x1EDC6F41 bit-reversed

// kTables[k][b]: the CRC of byte b followed by k zero bytes (slicing-by-8).
constexpr std::array<std::array<uint32_t, 256>, 8> MakeTables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (size_t k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  }
  return t;
}

constexpr auto kTables = MakeTables();

inline uint64_t LoadLE64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

uint32_t ExtendPortable(uint32_t crc, const uint8_t* p, size_t n) {
  uint32_t c = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xFF];
    --n;
  }
  while (n >= 8) {
    const uint64_t v = LoadLE64(p) ^ c;
    c = kTables[7][v & 0xFF] ^ kTables[6][(v >> 8) & 0xFF] ^ kTables[5][(v >> 16) & 0xFF] ^
        kTables[4][(v >> 24) & 0xFF] ^ kTables[3][(v >> 32) & 0xFF] ^ kTables[2][(v >> 40) & 0xFF] ^
        kTables[1][(v >> 48) & 0xFF] ^ kTables[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xFF];
    --n;
  }
  return ~c;
}

// --- Combine: polynomials mod P in the reflected representation (bit 31 holds x^0).

// a * b mod P.
uint32_t MultModP(uint32_t a, uint32_t b) {
  uint32_t m = uint32_t{1} << 31;
  uint32_t p = 0;
  while (true) {
    if ((a & m) != 0) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) != 0 ? (b >> 1) ^ kPoly : b >> 1;
  }
  return p;
}

constexpr uint32_t kOne = uint32_t{1} << 31;  // x^0

// x^(2^k) mod P for k = 0..66, enough for x^(8n) with any 64-bit n. (They do not repeat
// with period 32: P has the factor x + 1, so x^(2^32) is x^2, not x.)
const std::array<uint32_t, 67>& PowersOfTwo() {
  static const std::array<uint32_t, 67> t = [] {
    std::array<uint32_t, 67> a{};
    a[0] = kOne >> 1;  // x^1
    for (size_t k = 1; k < a.size(); ++k) a[k] = MultModP(a[k - 1], a[k - 1]);
    return a;
  }();
  return t;
}

// x^(8n) mod P: the operator that appends n zero bytes to a CRC register.
uint32_t ZeroBytesOperator(uint64_t n) {
  const auto& pow2 = PowersOfTwo();
  uint32_t p = kOne;
  for (size_t k = 3; n != 0; n >>= 1, ++k) {
    if ((n & 1) != 0) p = MultModP(pow2[k], p);
  }
  return p;
}

// The operators for n < 2^16 bytes, as x^(8 * 256 * hi) * x^(8 * lo): two tables of 256.
struct ShortOperators {
  std::array<uint32_t, 256> lo{};
  std::array<uint32_t, 256> hi{};
};
const ShortOperators& Short() {
  static const ShortOperators t = [] {
    ShortOperators s;
    for (uint64_t i = 0; i < 256; ++i) {
      s.lo[i] = ZeroBytesOperator(i);
      s.hi[i] = ZeroBytesOperator(i * 256);
    }
    return s;
  }();
  return t;
}

// Multiplication by a fixed operator `op` (a linear map of the 32-bit register) as four
// table lookups, one per byte of the register.
struct OperatorTable {
  explicit OperatorTable(uint32_t op) {
    for (uint32_t k = 0; k < 4; ++k) {
      for (uint32_t b = 0; b < 256; ++b) t[k][b] = MultModP(op, b << (8 * k));
    }
  }
  uint32_t Apply(uint32_t c) const {
    return t[0][c & 0xFF] ^ t[1][(c >> 8) & 0xFF] ^ t[2][(c >> 16) & 0xFF] ^ t[3][c >> 24];
  }
  std::array<std::array<uint32_t, 256>, 4> t{};
};

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  // The instruction takes 3 cycles and can start one per cycle: three streams over
  // consecutive blocks of kStreamBytes run 3 times as fast as one, and their registers are
  // then combined: R(c, A B C) = R(c, A) x^(16 kStreamBytes) + R(0, B) x^(8 kStreamBytes) +
  // R(0, C).
  constexpr size_t kStreamBytes = 512;
  if (n >= 3 * kStreamBytes) {
    static const OperatorTable shift1(ZeroBytesOperator(kStreamBytes));
    static const OperatorTable shift2(ZeroBytesOperator(2 * kStreamBytes));
    do {
      uint64_t c1 = 0;
      uint64_t c2 = 0;
      for (size_t i = 0; i < kStreamBytes; i += 8) {
        uint64_t v0, v1, v2;
        std::memcpy(&v0, p + i, 8);
        std::memcpy(&v1, p + kStreamBytes + i, 8);
        std::memcpy(&v2, p + 2 * kStreamBytes + i, 8);
        c = _mm_crc32_u64(c, v0);
        c1 = _mm_crc32_u64(c1, v1);
        c2 = _mm_crc32_u64(c2, v2);
      }
      c = shift2.Apply(static_cast<uint32_t>(c)) ^ shift1.Apply(static_cast<uint32_t>(c1)) ^
          static_cast<uint32_t>(c2);
      p += 3 * kStreamBytes;
      n -= 3 * kStreamBytes;
    } while (n >= 3 * kStreamBytes);
  }
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  return ~static_cast<uint32_t>(c);
}

bool DetectSse42() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#endif

using ExtendFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);

ExtendFn Choose() {
#if defined(__x86_64__)
  if (DetectSse42()) return &ExtendSse42;
#endif
  return &ExtendPortable;
}

// Chosen once; a function-local static is initialized thread-safely.
ExtendFn Impl() {
  static const ExtendFn fn = Choose();
  return fn;
}

}  // namespace

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  return Impl()(crc, static_cast<const uint8_t*>(data), n);
}

uint32_t Combine(uint32_t crc_a, uint32_t crc_b, size_t len_b) {
  uint32_t op;
  if (len_b < (size_t{1} << 16)) {
    const ShortOperators& t = Short();
    op = MultModP(t.hi[len_b >> 8], t.lo[len_b & 0xFF]);
  } else {
    op = ZeroBytesOperator(len_b);
  }
  return MultModP(op, crc_a) ^ crc_b;
}

bool IsHardwareAccelerated() { return Impl() != &ExtendPortable; }

uint32_t ExtendPortableForTest(uint32_t crc, const void* data, size_t n) {
  return ExtendPortable(crc, static_cast<const uint8_t*>(data), n);
}

}  // namespace kiln::crc32c
