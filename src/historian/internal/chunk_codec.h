#pragma once
// The encoding of one chunk: the points of one series in a time range, sorted by time with
// unique timestamps, compressed for storage. Sans-IO and stateless; thread-safe. Each thread
// that calls it keeps its own zstd contexts and scratch buffers (about 1 MiB once it has
// encoded, a few hundred KiB to decode), so that the steady state allocates nothing.
// Format: docs/formats/historian-chunk.md.
//
// Numeric chunks store timestamps as delta-of-deltas, qualities and nulls as runs, and values
// as integer mantissas with one common decimal exponent when the values are short decimals
// (the usual case for sensor readings; the few that are not are stored raw as exceptions),
// else as raw or XOR-ed doubles; the whole body is then compressed with zstd. Every double bit
// pattern (-0.0, NaN payloads, infinities, denormals) and every int64 timestamp round-trips
// exactly. A blob carries a magic, a format version and a CRC32C.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "historian/historian.h"

namespace kiln::historian::internal {

// The most points one chunk may hold (encoders CHECK it, decoders reject more).
inline constexpr uint32_t kMaxChunkPoints = uint32_t{1} << 20;
// The most bytes of text one text chunk may hold, lengths included (ditto).
inline constexpr uint64_t kMaxChunkTextBytes = uint64_t{256} << 20;

// Summary of a chunk, stored beside the blob so a query can skip or answer from it.
struct ChunkSummary {
  int64_t t_min = 0;
  int64_t t_max = 0;
  uint32_t count = 0;
};

// Tuning of the encoders; the defaults are what the historian uses.
struct ChunkEncodeOptions {
  // zstd level of the body; 0 stores the body uncompressed (tests, benchmarks).
  int zstd_level = 3;
};

// Encodes `points` into `out` (replaced). REQUIRES: 1 <= points.size() <= kMaxChunkPoints,
// sorted by t, unique t; for text, at most kMaxChunkTextBytes of text in all. The value of a
// null point is not stored (it decodes as 0, or as an empty string in a text chunk); its
// quality is.
void EncodeChunk(std::span<const Point> points, std::string& out);
void EncodeTextChunk(std::span<const TextPoint> points, std::string& out);
void EncodeChunk(std::span<const Point> points, const ChunkEncodeOptions& options,
                 std::string& out);
void EncodeTextChunk(std::span<const TextPoint> points, const ChunkEncodeOptions& options,
                     std::string& out);

// Decodes a blob written by EncodeChunk / EncodeTextChunk, appending to `out` (on error,
// `out` is left as it was). Never trusts the input: every count and length is bounded and
// the CRC is checked. Errors: DataLoss for a blob that does not decode (truncated, corrupt,
// unknown version, or a chunk of the other kind).
Status DecodeChunk(std::string_view blob, std::vector<Point>& out);
Status DecodeTextChunk(std::string_view blob, std::vector<TextPoint>& out);

// The summary of an encoded chunk (numeric or text) from its header alone, without checking
// the CRC or decoding the body. Errors: DataLoss for a bad or truncated header.
Result<ChunkSummary> PeekChunk(std::string_view blob);

}  // namespace kiln::historian::internal
