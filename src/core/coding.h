#pragma once
// Byte-level encoding helpers of the on-disk formats (the journal, docs/formats/journal.md, and
// the historian's WAL, docs/formats/historian.md): little-endian fixed-width fields, LEB128
// varints and zigzag. Stateless and thread-safe. Inline because the record codecs call them
// once or more per field in their hot loops.
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace kiln {

// Writes `v` little-endian (whatever the host's byte order) to p[0, 4).
inline void Put32(uint8_t* p, uint32_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  std::memcpy(p, &v, 4);
}

// Writes `v` little-endian to p[0, 8).
inline void Put64(uint8_t* p, uint64_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  std::memcpy(p, &v, 8);
}

// Reads the little-endian value at p[0, 4).
inline uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  return v;
}

// Reads the little-endian value at p[0, 8).
inline uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

// The most bytes a varint of a uint64_t takes.
inline constexpr size_t kMaxVarint64 = 10;

// Writes `v` as a LEB128 varint (7 bits a byte, low bits first) at `p` and returns the end.
// REQUIRES: p has room for the encoding (at most kMaxVarint64 bytes).
inline uint8_t* PutVarint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

// Reads a varint from [p, end) into `v` and returns the byte after it; nullptr (and `v`
// untouched) when it is truncated or longer than kMaxVarint64 bytes.
inline const uint8_t* GetVarint(const uint8_t* p, const uint8_t* end, uint64_t& v) {
  if (p < end && *p < 0x80) {
    v = *p;
    return p + 1;
  }
  uint64_t result = 0;
  for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
    const uint64_t byte = *p++;
    result |= (byte & 0x7F) << shift;
    if (byte < 0x80) {
      v = result;
      return p;
    }
  }
  return nullptr;
}

// Zigzag: maps signed to unsigned so that values near zero stay small as varints
// (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...). UnZigZag(ZigZag(v)) == v for every int64_t.
inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

}  // namespace kiln
