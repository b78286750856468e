#pragma once
// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected, as in iSCSI, ext4 and LevelDB): the
// checksum of every on-disk frame. Uses the SSE4.2 crc32 instruction when the CPU has it
// (detected once at run time) and a slicing-by-8 table otherwise. Thread-safe, no state.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace kiln::crc32c {

// Returns the CRC32C of `data` appended to bytes whose CRC32C is `crc`:
// Extend(Value(a), b) == Value(a + b).
uint32_t Extend(uint32_t crc, const void* data, size_t n);

inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::span<const std::byte> data) {
  return Extend(0, data.data(), data.size());
}
inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

// Returns the CRC32C of a + b from Value(a), Value(b) and b's length, without the bytes:
// Combine(Value(a), Value(b), |b|) == Value(a + b). Costs two GF(2) multiplications for
// |b| < 64 KiB (a few tens of nanoseconds), more beyond.
uint32_t Combine(uint32_t crc_a, uint32_t crc_b, size_t len_b);

// True when Extend uses the CPU's crc32 instruction.
bool IsHardwareAccelerated();

// The table implementation, whatever the CPU; for tests and benchmarks.
uint32_t ExtendPortableForTest(uint32_t crc, const void* data, size_t n);

}  // namespace kiln::crc32c
