// The chunk codec of the historian. Format: docs/formats/historian-chunk.md.
#include "historian/internal/chunk_codec.h"

#include <zstd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "core/check.h"
#include "core/crc32c.h"

// The decimal encoding relies on exact IEEE-754 arithmetic (see DecimalValue).
#ifdef __FAST_MATH__
#error "chunk_codec.cc must not be compiled with -ffast-math"
#endif

namespace kiln::historian::internal {
namespace {

// ---------------------------------------------------------------------------------------
// Constants of the format (docs/formats/historian-chunk.md).

constexpr uint8_t kMagic0 = 'K';
constexpr uint8_t kMagic1 = 'H';
constexpr uint8_t kVersion = 1;
constexpr uint8_t kKindNumeric = 0;
constexpr uint8_t kKindText = 1;
constexpr uint8_t kFlagZstd = 0x01;
constexpr uint8_t kKnownFlags = kFlagZstd;

// Value encodings of a numeric chunk.
constexpr uint8_t kValuesDecimal = 0;  // integer mantissas with one decimal exponent
constexpr uint8_t kValuesXor = 1;      // each double's bits XOR the previous one's
constexpr uint8_t kValuesRaw = 2;      // each double's bits

// Predictors of the mantissa stream.
constexpr uint8_t kPredictBase = 0;   // m - min(m)
constexpr uint8_t kPredictDelta = 1;  // m[i] - m[i-1]
constexpr uint8_t kPredictDod = 2;    // (m[i] - m[i-1]) - (m[i-1] - m[i-2])
constexpr uint8_t kPredictMean = 3;   // m[i] - floor(mean of the 2^k previous)
constexpr int kMaxMeanLog2K = 6;
// The window sizes the encoder tries: smoothing a noisy signal.
constexpr int kMeanLog2Ks[] = {2, 4, 6};

// Decimal exponents go from 10^0 down to 10^-kMaxDecimals; every power is an exact double.
constexpr int kMaxDecimals = 22;
// Mantissas are below 2^51 in magnitude: exact doubles, converted by MantissaToDouble.
constexpr int64_t kMaxMantissa = (int64_t{1} << 51) - 1;

// Upper bounds of a body, so that a corrupt length cannot make us allocate gigabytes.
constexpr uint64_t kMaxNumericBodyPerPoint = 64;
constexpr uint64_t kMaxTextBodyBytes = kMaxChunkTextBytes;

// Bodies smaller than this are not worth a zstd frame header.
constexpr size_t kMinZstdBody = 32;
// Per-thread scratch larger than this is released after use.
constexpr size_t kMaxKeptScratchBytes = size_t{4} << 20;

constexpr std::array<double, kMaxDecimals + 1> kPow10 = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

constexpr std::array<int64_t, 19> kPow10Int = [] {
  std::array<int64_t, 19> p{};
  p[0] = 1;
  for (size_t i = 1; i < p.size(); ++i) p[i] = p[i - 1] * 10;
  return p;
}();

// ---------------------------------------------------------------------------------------
// Integer helpers. All arithmetic on untrusted data is done in uint64_t, which wraps.

inline uint64_t ZigZag(uint64_t v) {
  return (v << 1) ^ static_cast<uint64_t>(static_cast<int64_t>(v) >> 63);
}
inline uint64_t UnZigZag(uint64_t v) { return (v >> 1) ^ (~(v & 1) + 1); }

inline uint64_t DoubleBits(double v) { return std::bit_cast<uint64_t>(v); }
inline double BitsDouble(uint64_t v) { return std::bit_cast<double>(v); }

// The double of a mantissa |m| < 2^51 without an int-to-double instruction (which SSE2
// lacks for vectors, so this loop vectorizes): m added to the bits of 1.5 * 2^52 is the
// double 1.5 * 2^52 + m. Larger m (only in corrupt chunks) give wrong but defined values.
inline double MantissaToDouble(uint64_t m) {
  return BitsDouble(DoubleBits(0x1.8p52) + m) - 0x1.8p52;
}

// The value of mantissa `m` with `decimals` decimals; the decoder computes exactly this, so
// the encoder's checks against it guarantee the round trip.
inline double DecimalValue(int64_t m, int decimals) {
  return MantissaToDouble(static_cast<uint64_t>(m)) / kPow10[decimals];
}

// Bytes needed for the widest value whose bits are OR-ed in `acc`.
inline int ByteWidth(uint64_t acc) { return (64 - std::countl_zero(acc) + 7) / 8; }

// ---------------------------------------------------------------------------------------
// Writing.

void PutByte(std::string& out, uint8_t b) { out.push_back(static_cast<char>(b)); }

void PutVarint(std::string& out, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}

void PutFixed32(std::string& out, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out.append(buf, 4);
}

void PutFixed64(std::string& out, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out.append(buf, 8);
}

inline int VarintLength(uint64_t v) { return (64 - std::countl_zero(v | 1) + 6) / 7; }

// An integer stream of n values, in one of two layouts chosen by the first byte:
// - 0..8 = w: w byte planes of n bytes each; plane j holds byte j (little-endian) of every
//   value. Planes keep the mostly-zero high bytes together, where zstd stores them almost
//   for free, and the zstd block ends after each large plane (`cuts`) so that each plane
//   gets its own Huffman table.
// - kSparseStream: varint count of non-zero values, then for each: varint gap (zeros
//   since the previous one) and varint value. For streams that are nearly all zero.
constexpr uint8_t kSparseStream = 0x10;
// A zstd block ends after each plane at least this long.
constexpr size_t kMinBlockBytes = 1024;

void PutStream(std::string& out, const uint64_t* v, size_t n, std::vector<size_t>& cuts) {
  uint64_t acc = 0;
  size_t nonzero = 0;
  for (size_t i = 0; i < n; ++i) {
    acc |= v[i];
    nonzero += v[i] != 0 ? 1 : 0;
  }
  const int w = ByteWidth(acc);
  if (w > 0 && nonzero <= n / 16) {
    size_t nonzero_bytes = 0;
    size_t sparse_bytes = 0;
    size_t last = 0;
    for (size_t i = 0; i < n; ++i) {
      if (v[i] != 0) {
        nonzero_bytes += static_cast<size_t>(ByteWidth(v[i]));
        sparse_bytes += static_cast<size_t>(VarintLength(i - last) + VarintLength(v[i]));
        last = i + 1;
      }
    }
    // zstd spends ~3 bytes on each non-zero byte among runs of zeros.
    if (sparse_bytes < 3 * nonzero_bytes + 8) {
      PutByte(out, kSparseStream);
      PutVarint(out, nonzero);
      last = 0;
      for (size_t i = 0; i < n; ++i) {
        if (v[i] != 0) {
          PutVarint(out, i - last);
          PutVarint(out, v[i]);
          last = i + 1;
        }
      }
      return;
    }
  }
  PutByte(out, static_cast<uint8_t>(w));
  const size_t at = out.size();
  out.resize(at + n * static_cast<size_t>(w));
  auto* dst = reinterpret_cast<uint8_t*>(out.data() + at);
  for (int j = 0; j < w; ++j) {
    const int shift = 8 * j;
    uint8_t* plane = dst + static_cast<size_t>(j) * n;
    for (size_t i = 0; i < n; ++i) plane[i] = static_cast<uint8_t>(v[i] >> shift);
    if (n >= kMinBlockBytes) cuts.push_back(at + (j + 1) * n);
  }
}

// log2(1 + i / 256) for i in [0, 256), for FastLog2.
constexpr std::array<float, 256> MakeLog2Table() {
  std::array<float, 256> t{};
  for (int i = 0; i < 256; ++i) {
    // log2(x) for x in [1, 2) by the series of ln((1 + y) / (1 - y)), y = (x - 1) / (x + 1).
    const double x = 1.0 + i / 256.0;
    const double y = (x - 1) / (x + 1);
    double term = y, sum = 0;
    for (int k = 1; k < 40; k += 2) {
      sum += term / k;
      term *= y * y;
    }
    t[i] = static_cast<float>(2 * sum / 0.6931471805599453);
  }
  return t;
}
constexpr std::array<float, 256> kLog2Table = MakeLog2Table();

// log2(c) for c >= 1 within 0.006.
inline float FastLog2(uint32_t c) {
  const int e = std::bit_width(c) - 1;
  const uint32_t frac = e >= 8 ? (c >> (e - 8)) & 0xff : (c << (8 - e)) & 0xff;
  return static_cast<float>(e) + kLog2Table[frac];
}

// An estimate of the bits zstd needs for PutStream(v, n): the order-0 entropy of each
// plane (what its Huffman stage achieves), which is good enough to rank predictors. Planes
// below `from_plane` are left out.
double EstimateStreamBits(const uint64_t* v, size_t n, int from_plane = 0) {
  uint64_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= v[i];
  const int w = ByteWidth(acc);
  double bits = 8;
  // Four histograms, summed at the end, so that runs of one byte do not serialize on a
  // single counter.
  std::array<std::array<uint32_t, 256>, 4> hist;
  for (int j = from_plane; j < w; ++j) {
    for (auto& h : hist) h.fill(0);
    const int shift = 8 * j;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      ++hist[0][static_cast<uint8_t>(v[i] >> shift)];
      ++hist[1][static_cast<uint8_t>(v[i + 1] >> shift)];
      ++hist[2][static_cast<uint8_t>(v[i + 2] >> shift)];
      ++hist[3][static_cast<uint8_t>(v[i + 3] >> shift)];
    }
    for (; i < n; ++i) ++hist[0][static_cast<uint8_t>(v[i] >> shift)];
    // n*log2(n) - sum(c*log2(c))
    double plane = static_cast<double>(n) * std::log2(static_cast<double>(n));
    for (int b = 0; b < 256; ++b) {
      const uint32_t c = hist[0][b] + hist[1][b] + hist[2][b] + hist[3][b];
      if (c > 1) plane -= static_cast<double>(c) * FastLog2(c);
    }
    bits += plane;
  }
  return bits;
}

// ---------------------------------------------------------------------------------------
// Reading. Every accessor checks the remaining length and returns false when short.

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }

  // The next byte, or -1 at the end.
  int PeekByte() const { return p_ == end_ ? -1 : *p_; }

  bool Byte(uint8_t& v) {
    if (p_ == end_) return false;
    v = *p_++;
    return true;
  }

  bool Varint(uint64_t& v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const uint8_t b = *p_++;
      // The tenth byte may only carry the top bit.
      if (shift == 63 && b > 1) return false;
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) {
        v = result;
        return true;
      }
    }
    return false;
  }

  bool Fixed64(uint64_t& v) {
    if (remaining() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += 8;
    return true;
  }

  // Returns n bytes, or nullptr when fewer remain.
  const uint8_t* Take(size_t n) {
    if (n > remaining()) return nullptr;
    const uint8_t* r = p_;
    p_ += n;
    return r;
  }

  // Reads an integer stream of n values (PutStream) into v.
  bool Stream(uint64_t* v, size_t n) {
    uint8_t w;
    if (!Byte(w)) return false;
    if (w == kSparseStream) {
      uint64_t nonzero;
      if (!Varint(nonzero) || nonzero > n) return false;
      std::fill(v, v + n, uint64_t{0});
      size_t at = 0;
      for (uint64_t k = 0; k < nonzero; ++k) {
        uint64_t gap;
        if (!Varint(gap) || gap >= n - at || !Varint(v[at + gap])) return false;
        at += gap + 1;
      }
      return true;
    }
    if (w > 8) return false;
    if (w == 0) {
      std::fill(v, v + n, uint64_t{0});
      return true;
    }
    // n <= kMaxChunkPoints, so n * w does not overflow.
    const uint8_t* src = Take(n * w);
    if (src == nullptr) return false;
    for (size_t i = 0; i < n; ++i) v[i] = src[i];
    for (int j = 1; j < w; ++j) {
      const uint8_t* plane = src + static_cast<size_t>(j) * n;
      const int shift = 8 * j;
      for (size_t i = 0; i < n; ++i) v[i] |= static_cast<uint64_t>(plane[i]) << shift;
    }
    return true;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

Status Corrupt(std::string_view what) {
  return DataLossError("historian chunk: " + std::string(what));
}

// ---------------------------------------------------------------------------------------
// Per-thread state: zstd contexts and scratch buffers, so that encoding and decoding a
// chunk allocates nothing in the steady state.

// One run of equal (q, is_null).
struct QualityRun {
  uint32_t len;
  uint32_t q;
  bool is_null;
};

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

struct Scratch {
  std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx;
  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx;
  std::string body;                  // an uncompressed body
  std::vector<uint64_t> ints;        // a stream being built or read
  std::vector<uint64_t> ints2;       // a second candidate stream
  std::vector<int64_t> mantissas;    // per value
  std::vector<uint8_t> decimals;     // per value
  std::vector<size_t> cuts;          // zstd block boundaries in `body`
  std::vector<uint64_t> exceptions;  // decimal encoding: (index, bits) pairs
  std::vector<int64_t> times;        // decoded timestamps
  std::vector<double> values;        // decoded values of the non-null points
  std::vector<QualityRun> runs;      // decoded quality runs

  // Frees buffers that one huge chunk made large.
  void Trim() {
    auto trim = [](auto& v) {
      if (v.capacity() * sizeof(v[0]) > kMaxKeptScratchBytes) {
        std::remove_reference_t<decltype(v)>().swap(v);
      }
    };
    trim(body);
    trim(ints);
    trim(ints2);
    trim(mantissas);
    trim(decimals);
    trim(exceptions);
    trim(times);
    trim(values);
    trim(runs);
  }
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// ---------------------------------------------------------------------------------------
// Header and framing.

struct Header {
  uint8_t kind = 0;
  uint8_t flags = 0;
  uint32_t count = 0;
  int64_t t_min = 0;
  int64_t t_max = 0;
};

void PutHeader(std::string& out, uint8_t kind, uint8_t flags, uint32_t count, int64_t t_min,
               int64_t t_max) {
  PutByte(out, kMagic0);
  PutByte(out, kMagic1);
  PutByte(out, kVersion);
  PutByte(out, kind);
  PutByte(out, flags);
  PutVarint(out, count);
  PutVarint(out, ZigZag(static_cast<uint64_t>(t_min)));
  PutVarint(out, static_cast<uint64_t>(t_max) - static_cast<uint64_t>(t_min));
}

Status ReadHeader(Reader& r, Header& h) {
  uint8_t m0, m1, version;
  if (!r.Byte(m0) || !r.Byte(m1) || m0 != kMagic0 || m1 != kMagic1) return Corrupt("bad magic");
  if (!r.Byte(version)) return Corrupt("truncated header");
  if (version != kVersion) {
    return Corrupt("unknown format version " + std::to_string(version));
  }
  if (!r.Byte(h.kind) || !r.Byte(h.flags)) return Corrupt("truncated header");
  if (h.kind != kKindNumeric && h.kind != kKindText) return Corrupt("unknown chunk kind");
  if ((h.flags & ~kKnownFlags) != 0) return Corrupt("unknown flags");
  uint64_t count, t_min, span;
  if (!r.Varint(count) || !r.Varint(t_min) || !r.Varint(span)) {
    return Corrupt("truncated header");
  }
  if (count == 0 || count > kMaxChunkPoints) return Corrupt("bad point count");
  h.count = static_cast<uint32_t>(count);
  h.t_min = static_cast<int64_t>(UnZigZag(t_min));
  const uint64_t t_max = static_cast<uint64_t>(h.t_min) + span;
  // t_max must not wrap past INT64_MAX, and a chunk of n points spans at least n - 1 ms.
  if (span >
      static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - static_cast<uint64_t>(h.t_min)) {
    return Corrupt("bad time range");
  }
  if (span < count - 1) return Corrupt("time range shorter than the point count");
  h.t_max = static_cast<int64_t>(t_max);
  return OkStatus();
}

// Appends the body (zstd-compressed when that is smaller) and the CRC to `out`, which holds
// the header; sets the zstd flag at `flags_at`. The zstd frame gets a block boundary at each
// of `cuts` (offsets into the body, ascending).
void FinishBlob(std::string& out, size_t flags_at, const std::string& body,
                const std::vector<size_t>& cuts, int level, Scratch& s) {
  bool compressed = false;
  if (level != 0 && body.size() >= kMinZstdBody) {
    if (!s.cctx) {
      s.cctx.reset(ZSTD_createCCtx());
      KILN_CHECK(s.cctx != nullptr) << "ZSTD_createCCtx failed";
    }
    ZSTD_CCtx* cctx = s.cctx.get();
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setPledgedSrcSize(cctx, body.size());
    const size_t at = out.size();
    PutVarint(out, body.size());
    const size_t frame_at = out.size();
    // Each flush may add a block header to the bound of one-shot compression.
    const size_t bound = ZSTD_compressBound(body.size()) + 8 * (cuts.size() + 1);
    out.resize(frame_at + bound);
    ZSTD_outBuffer dst{out.data() + frame_at, bound, 0};
    size_t from = 0;
    for (size_t c = 0; c <= cuts.size(); ++c) {
      const bool last = c == cuts.size();
      const size_t to = last ? body.size() : cuts[c];
      if (!last && (to <= from || to >= body.size())) continue;
      ZSTD_inBuffer src{body.data() + from, to - from, 0};
      size_t remaining;
      do {
        remaining = ZSTD_compressStream2(cctx, &dst, &src, last ? ZSTD_e_end : ZSTD_e_flush);
        KILN_CHECK(!ZSTD_isError(remaining)) << "zstd: " << ZSTD_getErrorName(remaining);
        KILN_CHECK(remaining == 0 || dst.pos < dst.size) << "zstd output bound too small";
      } while (remaining != 0);
      from = to;
    }
    if (frame_at - at + dst.pos < body.size()) {
      out.resize(frame_at + dst.pos);
      compressed = true;
    } else {
      out.resize(at);
    }
  }
  if (compressed) {
    out[flags_at] = static_cast<char>(kFlagZstd);
  } else {
    out.append(body);
  }
  PutFixed32(out, crc32c::Value(out));
}

// Checks the CRC and header, and finds the uncompressed body: a view into the blob or into
// `s.body`.
Status OpenBlob(std::string_view blob, uint8_t want_kind, Header& h, std::string_view& body,
                Scratch& s) {
  if (blob.size() < 4) return Corrupt("too short");
  const size_t crc_at = blob.size() - 4;
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) {
    stored |= static_cast<uint32_t>(static_cast<uint8_t>(blob[crc_at + i])) << (8 * i);
  }
  if (crc32c::Value(blob.substr(0, crc_at)) != stored) return Corrupt("crc mismatch");
  Reader r(reinterpret_cast<const uint8_t*>(blob.data()), crc_at);
  KILN_RETURN_IF_ERROR(ReadHeader(r, h));
  if (h.kind != want_kind) {
    return Corrupt(want_kind == kKindNumeric ? "a text chunk where a numeric one was expected"
                                             : "a numeric chunk where a text one was expected");
  }
  if ((h.flags & kFlagZstd) == 0) {
    body = std::string_view(reinterpret_cast<const char*>(r.Take(0)), r.remaining());
    return OkStatus();
  }
  uint64_t body_size;
  if (!r.Varint(body_size)) return Corrupt("truncated body size");
  const uint64_t limit =
      h.kind == kKindNumeric ? kMaxNumericBodyPerPoint * h.count + 1024 : kMaxTextBodyBytes;
  if (body_size > limit) return Corrupt("body size out of range");
  const size_t frame_size = r.remaining();
  const uint8_t* frame = r.Take(frame_size);
  const unsigned long long content = ZSTD_getFrameContentSize(frame, frame_size);
  if (content != body_size) return Corrupt("zstd frame size does not match the body size");
  if (!s.dctx) {
    s.dctx.reset(ZSTD_createDCtx());
    if (!s.dctx) return ResourceExhaustedError("ZSTD_createDCtx failed");
  }
  s.body.resize(body_size);
  const size_t n =
      ZSTD_decompressDCtx(s.dctx.get(), s.body.data(), s.body.size(), frame, frame_size);
  if (ZSTD_isError(n)) return Corrupt(std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n != body_size) return Corrupt("zstd frame shorter than the body size");
  body = s.body;
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// Timestamps: the first comes from the header; then the first delta as a zigzag varint
// and the delta-of-deltas as a stream.

template <typename P>
void PutTimestamps(std::string& body, std::span<const P> points, Scratch& s) {
  const size_t n = points.size();
  if (n < 2) return;
  uint64_t prev_t = static_cast<uint64_t>(points[1].t);
  uint64_t prev_d = prev_t - static_cast<uint64_t>(points[0].t);
  PutVarint(body, ZigZag(prev_d));
  s.ints.resize(n - 2);
  for (size_t i = 2; i < n; ++i) {
    const uint64_t t = static_cast<uint64_t>(points[i].t);
    const uint64_t d = t - prev_t;
    s.ints[i - 2] = ZigZag(d - prev_d);
    prev_t = t;
    prev_d = d;
  }
  PutStream(body, s.ints.data(), n - 2, s.cuts);
}

// Reads the timestamps of `h.count` points into t[0..count) and checks that they increase
// strictly from t_min to t_max.
bool ReadTimestamps(Reader& r, const Header& h, int64_t* t) {
  const size_t n = h.count;
  t[0] = h.t_min;
  if (n == 1) return h.t_min == h.t_max;
  uint64_t d;
  if (!r.Varint(d)) return false;
  d = UnZigZag(d);
  const uint64_t t1 = static_cast<uint64_t>(h.t_min) + d;
  uint64_t* u = reinterpret_cast<uint64_t*>(t);
  u[1] = t1;
  if (r.PeekByte() == 0) {
    // Every delta-of-delta is zero: a fixed interval d (unsigned). Increasing iff d >= 1 and
    // the n - 1 steps add up to the span without wrapping.
    r.Take(1);  // the width byte just peeked
    uint64_t span;
    if (d == 0 || __builtin_mul_overflow(d, n - 1, &span) ||
        span != static_cast<uint64_t>(h.t_max) - static_cast<uint64_t>(h.t_min)) {
      return false;
    }
    for (size_t i = 2; i < n; ++i) u[i] = t1 + (i - 1) * d;
    return true;
  }
  // The delta-of-deltas land in t[2..n) and are summed in place.
  if (!r.Stream(u + 2, n - 2)) return false;
  uint64_t tt = t1;
  for (size_t i = 2; i < n; ++i) {
    d += UnZigZag(u[i]);
    tt += d;
    u[i] = tt;
  }
  // Increasing as signed values.
  bool increasing = true;
  for (size_t i = 1; i < n; ++i) increasing &= t[i] > t[i - 1];
  return increasing && t[n - 1] == h.t_max;
}

// ---------------------------------------------------------------------------------------
// Qualities and nulls: runs of equal (q, is_null): varint run count, then per run
// varint ((length - 1) << 1 | is_null) and varint q.

template <typename P>
void PutQualities(std::string& body, std::span<const P> points) {
  const size_t n = points.size();
  size_t runs = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i == 0 || points[i].q != points[i - 1].q || points[i].is_null != points[i - 1].is_null) {
      ++runs;
    }
  }
  PutVarint(body, runs);
  size_t start = 0;
  for (size_t i = 1; i <= n; ++i) {
    if (i == n || points[i].q != points[start].q || points[i].is_null != points[start].is_null) {
      PutVarint(body,
                (static_cast<uint64_t>(i - start - 1) << 1) | (points[start].is_null ? 1 : 0));
      PutVarint(body, points[start].q);
      start = i;
    }
  }
}

// Reads the runs of n points; sets `nonnull` to the number of non-null points.
bool ReadQualities(Reader& r, size_t n, std::vector<QualityRun>& runs, size_t& nonnull) {
  uint64_t count;
  if (!r.Varint(count) || count == 0 || count > n) return false;
  runs.resize(count);
  size_t at = 0;
  nonnull = 0;
  for (QualityRun& run : runs) {
    uint64_t len_null, q;
    if (!r.Varint(len_null) || !r.Varint(q)) return false;
    const uint64_t len = (len_null >> 1) + 1;
    if (len > n - at || q > std::numeric_limits<uint32_t>::max()) return false;
    run = {static_cast<uint32_t>(len), static_cast<uint32_t>(q), (len_null & 1) != 0};
    if (!run.is_null) nonnull += len;
    at += len;
  }
  return at == n;
}

// ---------------------------------------------------------------------------------------
// Numeric values.

// Whether `v` is exactly DecimalValue(m, decimals) for an integer |m| < 2^51; sets m.
inline bool FitsDecimals(double v, int decimals, int64_t& m) {
  const double x = v * kPow10[decimals];
  if (!(std::fabs(x) < 0x1p51)) return false;  // also NaN
  // Round to nearest integer: adding 1.5 * 2^52 leaves no fraction bits.
  const double rounded = (x + 0x1.8p52) - 0x1.8p52;
  if (!(std::fabs(rounded) < 0x1p51)) return false;
  m = static_cast<int64_t>(rounded);
  return DoubleBits(DecimalValue(m, decimals)) == DoubleBits(v);
}

// The fewest decimals that represent `v` (see FitsDecimals), trying `hint` first; or -1.
inline int MinDecimals(double v, int hint, int64_t& m) {
  if (FitsDecimals(v, hint, m)) {
    // m / 10^k == (m / 10) / 10^(k-1) exactly when m ends in 0: the same rational, so the
    // same correctly rounded double.
    while (hint > 0 && m % 10 == 0) {
      m /= 10;
      --hint;
    }
    return hint;
  }
  // Fewer decimals than hint cannot fit, unless v * 10^hint overflowed: then start at 0.
  int k = std::fabs(v * kPow10[hint]) < 0x1p51 ? hint + 1 : 0;
  for (; k <= kMaxDecimals; ++k) {
    if (FitsDecimals(v, k, m)) return k;
    if (k > hint && !(std::fabs(v * kPow10[k]) < 0x1p51)) break;
  }
  return -1;
}

// Writes the values as raw or XOR-ed double bits, whichever looks smaller: XOR wins on slowly
// changing values, raw bits on noise (XOR-ing two random exponents adds entropy).
void PutDoubleValues(std::string& body, std::span<const Point> points, size_t nonnull, Scratch& s) {
  s.ints.resize(nonnull);
  s.ints2.resize(nonnull);
  uint64_t prev = 0;
  size_t j = 0;
  for (const Point& p : points) {
    if (p.is_null) continue;
    const uint64_t bits = DoubleBits(p.v);
    s.ints[j] = bits ^ prev;
    s.ints2[j] = bits;
    prev = bits;
    ++j;
  }
  // Only the high planes (sign, exponent, top of the mantissa) differ much.
  const bool use_raw = EstimateStreamBits(s.ints2.data(), nonnull, 5) <
                       EstimateStreamBits(s.ints.data(), nonnull, 5);
  PutByte(body, use_raw ? kValuesRaw : kValuesXor);
  PutStream(body, use_raw ? s.ints2.data() : s.ints.data(), nonnull, s.cuts);
}

// The residuals of a mean-of-the-last-2^log2k predictor: zz(m[i] - floor(mean)) for i >= 1;
// values before m[0] count as m[0]. The decoder mirrors this arithmetic exactly (wrapping).
void MeanResiduals(const int64_t* m, size_t n, int log2k, uint64_t* out) {
  const size_t k = size_t{1} << log2k;
  const uint64_t m0 = static_cast<uint64_t>(m[0]);
  uint64_t sum = m0 << log2k;
  for (size_t i = 1; i < n; ++i) {
    const uint64_t pred = static_cast<uint64_t>(static_cast<int64_t>(sum) >> log2k);
    const uint64_t mi = static_cast<uint64_t>(m[i]);
    out[i - 1] = ZigZag(mi - pred);
    sum += mi - (i >= k ? static_cast<uint64_t>(m[i - k]) : m0);
  }
}

// Tries the decimal encoding; returns false (writing nothing) when too many values are not
// short decimals.
bool PutDecimalValues(std::string& body, std::span<const Point> points, size_t nonnull,
                      Scratch& s) {
  // Pass 1: the fewest decimals of each value; histogram of them.
  s.mantissas.resize(nonnull);
  s.decimals.resize(nonnull);
  std::array<size_t, kMaxDecimals + 1> hist{};
  size_t bad = 0;
  // Beyond this many exceptions, raw doubles are smaller.
  const size_t max_bad = nonnull / 4 + 1;
  int64_t* const mantissas = s.mantissas.data();
  uint8_t* const decimals = s.decimals.data();
  int hint = 0;
  size_t j = 0;
  for (const Point& p : points) {
    if (p.is_null) continue;
    int64_t m = 0;
    const int k = MinDecimals(p.v, hint, m);
    if (k < 0) {
      if (++bad > max_bad) return false;
      decimals[j] = 0xff;
    } else {
      ++hist[k];
      hint = k;
      decimals[j] = static_cast<uint8_t>(k);
      mantissas[j] = m;
    }
    ++j;
  }
  // The common number of decimals: each value with more becomes an exception (~80 bits);
  // each extra decimal costs every value log2(10) bits.
  int best_k = 0;
  double best_cost = std::numeric_limits<double>::infinity();
  size_t excess = nonnull - bad;
  for (int k = 0; k <= kMaxDecimals; ++k) {
    excess -= hist[k];
    const double cost =
        80.0 * static_cast<double>(excess) + 3.33 * k * static_cast<double>(nonnull - bad - excess);
    if (cost < best_cost) {
      best_cost = cost;
      best_k = k;
    }
    if (excess == 0) break;
  }
  // Pass 2: mantissas at best_k; the rest are exceptions.
  s.exceptions.clear();  // (index, bits) pairs
  size_t kept = 0;
  j = 0;
  for (const Point& p : points) {
    if (p.is_null) continue;
    const int k = decimals[j];
    bool ok = false;
    if (k == best_k) {
      mantissas[kept++] = mantissas[j];  // checked by FitsDecimals
      ok = true;
    } else if (k < best_k) {
      const int scale = best_k - k;
      const int64_t m = mantissas[j];
      if (scale < static_cast<int>(kPow10Int.size()) &&
          (m < 0 ? -m : m) <= kMaxMantissa / kPow10Int[scale]) {
        // The same rational with an exact numerator: the same double. Checked anyway.
        const int64_t scaled = m * kPow10Int[scale];
        if (DoubleBits(DecimalValue(scaled, best_k)) == DoubleBits(p.v)) {
          mantissas[kept++] = scaled;
          ok = true;
        }
      }
    }
    if (!ok) {
      s.exceptions.push_back(j);
      s.exceptions.push_back(DoubleBits(p.v));
      if (s.exceptions.size() / 2 > max_bad) return false;
    }
    ++j;
  }
  const size_t nexc = s.exceptions.size() / 2;

  PutByte(body, kValuesDecimal);
  PutByte(body, static_cast<uint8_t>(best_k));
  PutVarint(body, nexc);
  uint64_t next = 0;
  for (size_t e = 0; e < nexc; ++e) {
    PutVarint(body, s.exceptions[2 * e] - next);
    PutFixed64(body, s.exceptions[2 * e + 1]);
    next = s.exceptions[2 * e] + 1;
  }

  // Predictor: whichever residual stream is estimated smallest. Candidates are built in
  // ints2 and kept in ints when they win.
  const int64_t* m = s.mantissas.data();
  const size_t n = kept;
  const int64_t base = n > 0 ? *std::min_element(m, m + n) : 0;
  s.ints.resize(n);
  for (size_t i = 0; i < n; ++i) {
    s.ints[i] = static_cast<uint64_t>(m[i]) - static_cast<uint64_t>(base);
  }
  uint8_t pred = kPredictBase;
  int pred_log2k = 0;
  size_t stream_n = n;
  if (n >= 3) {
    double best_bits = EstimateStreamBits(s.ints.data(), n);
    s.ints2.resize(n);
    auto consider = [&](uint8_t p, int log2k, size_t len) {
      const double bits = EstimateStreamBits(s.ints2.data(), len);
      if (bits < best_bits) {
        best_bits = bits;
        pred = p;
        pred_log2k = log2k;
        stream_n = len;
        s.ints.swap(s.ints2);
      }
    };
    for (size_t i = 1; i < n; ++i) {
      s.ints2[i - 1] = ZigZag(static_cast<uint64_t>(m[i]) - static_cast<uint64_t>(m[i - 1]));
    }
    consider(kPredictDelta, 0, n - 1);
    uint64_t prev = static_cast<uint64_t>(m[1]) - static_cast<uint64_t>(m[0]);
    for (size_t i = 2; i < n; ++i) {
      const uint64_t d = static_cast<uint64_t>(m[i]) - static_cast<uint64_t>(m[i - 1]);
      s.ints2[i - 2] = ZigZag(d - prev);
      prev = d;
    }
    consider(kPredictDod, 0, n - 2);
    for (int log2k : kMeanLog2Ks) {
      MeanResiduals(m, n, log2k, s.ints2.data());
      consider(kPredictMean, log2k, n - 1);
    }
  }
  PutByte(body, pred);
  switch (pred) {
    case kPredictBase:
      PutVarint(body, ZigZag(static_cast<uint64_t>(base)));
      break;
    case kPredictDelta:
      PutVarint(body, ZigZag(static_cast<uint64_t>(m[0])));
      break;
    case kPredictDod:
      PutVarint(body, ZigZag(static_cast<uint64_t>(m[0])));
      PutVarint(body, ZigZag(static_cast<uint64_t>(m[1]) - static_cast<uint64_t>(m[0])));
      break;
    default:
      PutByte(body, static_cast<uint8_t>(pred_log2k));
      PutVarint(body, ZigZag(static_cast<uint64_t>(m[0])));
      break;
  }
  PutStream(body, s.ints.data(), stream_n, s.cuts);
  return true;
}

// Reads the n mantissas of the decimal encoding (after the predictor byte) into v.
bool ReadMantissas(Reader& r, uint8_t pred, size_t n, uint64_t* v) {
  uint64_t first = 0;
  switch (pred) {
    case kPredictBase: {
      if (!r.Varint(first) || !r.Stream(v, n)) return false;
      const uint64_t base = UnZigZag(first);
      for (size_t i = 0; i < n; ++i) v[i] += base;
      return true;
    }
    case kPredictDelta: {
      if (n < 1 || !r.Varint(first) || !r.Stream(v + 1, n - 1)) return false;
      uint64_t m = UnZigZag(first);
      v[0] = m;
      for (size_t i = 1; i < n; ++i) {
        m += UnZigZag(v[i]);
        v[i] = m;
      }
      return true;
    }
    case kPredictDod: {
      uint64_t first_delta;
      if (n < 2 || !r.Varint(first) || !r.Varint(first_delta) || !r.Stream(v + 2, n - 2)) {
        return false;
      }
      uint64_t m = UnZigZag(first);
      uint64_t d = UnZigZag(first_delta);
      v[0] = m;
      m += d;
      v[1] = m;
      for (size_t i = 2; i < n; ++i) {
        d += UnZigZag(v[i]);
        m += d;
        v[i] = m;
      }
      return true;
    }
    case kPredictMean: {
      uint8_t log2k;
      if (!r.Byte(log2k) || log2k < 1 || log2k > kMaxMeanLog2K) return false;
      if (n < 1 || !r.Varint(first) || !r.Stream(v + 1, n - 1)) return false;
      const size_t k = size_t{1} << log2k;
      const uint64_t m0 = UnZigZag(first);
      v[0] = m0;
      uint64_t sum = m0 << log2k;
      for (size_t i = 1; i < n; ++i) {
        const uint64_t pred_i = static_cast<uint64_t>(static_cast<int64_t>(sum) >> log2k);
        const uint64_t mi = pred_i + UnZigZag(v[i]);
        v[i] = mi;
        sum += mi - (i >= k ? v[i - k] : m0);
      }
      return true;
    }
    default:
      return false;
  }
}

// Reads the values of the `nonnull` non-null points into vals[0..nonnull).
bool ReadValues(Reader& r, size_t nonnull, double* vals, Scratch& s) {
  if (nonnull == 0) return true;
  uint8_t mode;
  if (!r.Byte(mode)) return false;
  uint64_t* v = reinterpret_cast<uint64_t*>(vals);
  if (mode == kValuesXor || mode == kValuesRaw) {
    if (!r.Stream(v, nonnull)) return false;
    if (mode == kValuesXor) {
      for (size_t i = 1; i < nonnull; ++i) v[i] ^= v[i - 1];
    }
    return true;  // the bits are the doubles
  }
  if (mode != kValuesDecimal) return false;
  uint8_t decimals;
  uint64_t nexc;
  if (!r.Byte(decimals) || decimals > kMaxDecimals) return false;
  if (!r.Varint(nexc) || nexc > nonnull) return false;
  // Exceptions: indexes (among non-null values) and raw bits.
  s.exceptions.resize(2 * nexc);
  uint64_t next = 0;
  for (size_t e = 0; e < nexc; ++e) {
    uint64_t gap, bits;
    if (!r.Varint(gap) || gap >= nonnull - next || !r.Fixed64(bits)) return false;
    s.exceptions[2 * e] = next + gap;
    s.exceptions[2 * e + 1] = bits;
    next = next + gap + 1;
  }
  const size_t n = nonnull - nexc;
  uint8_t pred;
  if (!r.Byte(pred)) return false;
  // The mantissas go to the end of vals, so that spreading them out around the exceptions
  // (below) never overwrites one not yet read.
  uint64_t* m = v + nexc;
  if (!ReadMantissas(r, pred, n, m)) return false;
  const double scale = kPow10[decimals];
  for (size_t i = 0; i < n; ++i) vals[nexc + i] = MantissaToDouble(m[i]) / scale;
  if (nexc > 0) {
    size_t mi = nexc;
    size_t e = 0;
    for (size_t j = 0; j < nonnull; ++j) {
      if (e < nexc && s.exceptions[2 * e] == j) {
        v[j] = s.exceptions[2 * e + 1];
        ++e;
      } else {
        vals[j] = vals[mi++];
      }
    }
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------

void EncodeChunk(std::span<const Point> points, std::string& out) {
  EncodeChunk(points, ChunkEncodeOptions(), out);
}

void EncodeTextChunk(std::span<const TextPoint> points, std::string& out) {
  EncodeTextChunk(points, ChunkEncodeOptions(), out);
}

void EncodeChunk(std::span<const Point> points, const ChunkEncodeOptions& options,
                 std::string& out) {
  KILN_CHECK(!points.empty() && points.size() <= kMaxChunkPoints)
      << "EncodeChunk of " << points.size() << " points";
  Scratch& s = ThreadScratch();
  out.clear();
  PutHeader(out, kKindNumeric, 0, static_cast<uint32_t>(points.size()), points.front().t,
            points.back().t);
  const size_t flags_at = 4;
  std::string& body = s.body;
  body.clear();
  s.cuts.clear();
  body.reserve(points.size() * 4 + 64);
  PutTimestamps(body, points, s);
  PutQualities(body, points);
  size_t nonnull = 0;
  for (const Point& p : points) nonnull += p.is_null ? 0 : 1;
  if (nonnull > 0) {
    const size_t at = body.size();
    if (!PutDecimalValues(body, points, nonnull, s)) {
      body.resize(at);
      PutDoubleValues(body, points, nonnull, s);
    }
  }
  FinishBlob(out, flags_at, body, s.cuts, options.zstd_level, s);
  s.Trim();
}

void EncodeTextChunk(std::span<const TextPoint> points, const ChunkEncodeOptions& options,
                     std::string& out) {
  KILN_CHECK(!points.empty() && points.size() <= kMaxChunkPoints)
      << "EncodeTextChunk of " << points.size() << " points";
  Scratch& s = ThreadScratch();
  out.clear();
  PutHeader(out, kKindText, 0, static_cast<uint32_t>(points.size()), points.front().t,
            points.back().t);
  const size_t flags_at = 4;
  std::string body;
  s.cuts.clear();
  size_t text_bytes = 0;
  for (const TextPoint& p : points) text_bytes += p.is_null ? 0 : p.v.size();
  body.reserve(points.size() * 4 + text_bytes + 64);
  PutTimestamps(body, points, s);
  PutQualities(body, points);
  s.ints.clear();
  for (const TextPoint& p : points) {
    if (!p.is_null) s.ints.push_back(p.v.size());
  }
  PutStream(body, s.ints.data(), s.ints.size(), s.cuts);
  for (const TextPoint& p : points) {
    if (!p.is_null) body.append(p.v);
  }
  KILN_CHECK(body.size() <= kMaxTextBodyBytes)
      << "EncodeTextChunk: " << body.size() << " bytes of text in one chunk";
  FinishBlob(out, flags_at, body, s.cuts, options.zstd_level, s);
  s.Trim();
}

Status DecodeChunk(std::string_view blob, std::vector<Point>& out) {
  Scratch& s = ThreadScratch();
  Header h;
  std::string_view body;
  KILN_RETURN_IF_ERROR(OpenBlob(blob, kKindNumeric, h, body, s));
  // Columns first, points last: nothing is appended unless the whole chunk decodes.
  Reader r(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  s.times.resize(h.count);
  s.values.resize(h.count);
  size_t nonnull = 0;
  Status status;
  if (!ReadTimestamps(r, h, s.times.data())) {
    status = Corrupt("bad timestamps");
  } else if (!ReadQualities(r, h.count, s.runs, nonnull)) {
    status = Corrupt("bad qualities");
  } else if (!ReadValues(r, nonnull, s.values.data(), s)) {
    status = Corrupt("bad values");
  } else if (!r.empty()) {
    status = Corrupt("trailing bytes");
  }
  if (status.ok()) {
    const size_t old_size = out.size();
    out.resize(old_size + h.count);
    Point* dst = out.data() + old_size;
    const int64_t* t = s.times.data();
    const double* v = s.values.data();
    for (const QualityRun& run : s.runs) {
      const uint32_t q = run.q;
      Point* const end = dst + run.len;
      if (run.is_null) {
        for (; dst != end; ++dst) *dst = Point{*t++, 0.0, q, true};
      } else {
        for (; dst != end; ++dst) *dst = Point{*t++, *v++, q, false};
      }
    }
  }
  s.Trim();
  return status;
}

Status DecodeTextChunk(std::string_view blob, std::vector<TextPoint>& out) {
  Scratch& s = ThreadScratch();
  Header h;
  std::string_view body;
  KILN_RETURN_IF_ERROR(OpenBlob(blob, kKindText, h, body, s));
  Reader r(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  s.times.resize(h.count);
  size_t nonnull = 0;
  if (!ReadTimestamps(r, h, s.times.data())) return Corrupt("bad timestamps");
  if (!ReadQualities(r, h.count, s.runs, nonnull)) return Corrupt("bad qualities");
  s.ints.resize(nonnull);
  if (!r.Stream(s.ints.data(), nonnull)) return Corrupt("bad text lengths");
  uint64_t total = 0;
  for (uint64_t len : s.ints) {
    if (len > r.remaining() - total) return Corrupt("text longer than the chunk");
    total += len;
  }
  if (total != r.remaining()) return Corrupt("trailing bytes");
  const char* text = reinterpret_cast<const char*>(r.Take(total));
  out.reserve(out.size() + h.count);
  const int64_t* t = s.times.data();
  const uint64_t* len = s.ints.data();
  for (const QualityRun& run : s.runs) {
    for (uint32_t i = 0; i < run.len; ++i) {
      TextPoint& p = out.emplace_back();
      p.t = *t++;
      p.q = run.q;
      p.is_null = run.is_null;
      if (!run.is_null) {
        p.v.assign(text, *len);
        text += *len++;
      }
    }
  }
  s.Trim();
  return OkStatus();
}

Result<ChunkSummary> PeekChunk(std::string_view blob) {
  Reader r(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
  Header h;
  KILN_RETURN_IF_ERROR(ReadHeader(r, h));
  // The CRC (last 4 bytes) must at least fit after the header.
  if (r.remaining() < 4) return Corrupt("too short");
  return ChunkSummary{h.t_min, h.t_max, h.count};
}

}  // namespace kiln::historian::internal
