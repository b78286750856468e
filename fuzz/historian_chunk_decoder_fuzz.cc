// Fuzz target: a historian chunk blob read back from SQLite must be decoded or rejected with
// DataLoss without crashing, whatever the bytes; and a chunk that decodes must survive
// encode + decode unchanged. The input is tried as is and with its CRC recomputed, so that
// the fuzzer reaches the body parser rather than stopping at the checksum.
// A white-box target of kiln::historian: it uses the internal codec directly.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/crc32c.h"
#include "historian/internal/chunk_codec.h"

namespace {

using namespace kiln::historian;
using namespace kiln::historian::internal;

bool SameBits(const std::vector<Point>& a, const std::vector<Point>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].t != b[i].t || a[i].q != b[i].q || a[i].is_null != b[i].is_null ||
        std::bit_cast<uint64_t>(a[i].v) != std::bit_cast<uint64_t>(b[i].v)) {
      return false;
    }
  }
  return true;
}

void Check(std::string_view blob) {
  std::vector<Point> points;
  const kiln::Status s = DecodeChunk(blob, points);
  if (!s.ok() && (s.code() != kiln::StatusCode::kDataLoss || !points.empty())) __builtin_trap();
  if (s.ok()) {
    std::string again;
    EncodeChunk(points, again);
    std::vector<Point> round;
    if (!DecodeChunk(again, round).ok() || !SameBits(points, round)) __builtin_trap();
  }
  std::vector<TextPoint> texts;
  const kiln::Status st = DecodeTextChunk(blob, texts);
  if (!st.ok() && st.code() != kiln::StatusCode::kDataLoss) __builtin_trap();
  if (st.ok()) {
    std::string again;
    EncodeTextChunk(texts, again);
    std::vector<TextPoint> round;
    if (!DecodeTextChunk(again, round).ok() || round != texts) __builtin_trap();
  }
  const auto summary = PeekChunk(blob);
  if (!summary.ok() && summary.status().code() != kiln::StatusCode::kDataLoss) __builtin_trap();
  if (s.ok() && (!summary.ok() || summary->count != points.size() ||
                 summary->t_min != points.front().t || summary->t_max != points.back().t)) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string blob(reinterpret_cast<const char*>(data), size);
  Check(blob);
  if (blob.size() >= 4) {
    const uint32_t crc = kiln::crc32c::Value(std::string_view(blob).substr(0, blob.size() - 4));
    for (int i = 0; i < 4; ++i) blob[blob.size() - 4 + i] = static_cast<char>(crc >> (8 * i));
    Check(blob);
  }
  return 0;
}
