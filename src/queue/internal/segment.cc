#include "queue/internal/segment.h"

#include <zstd.h>

#include <algorithm>
#include <limits>
#include <new>

#include "fmt/format.h"
#include "queue/internal/record_codec.h"

namespace kiln::queue::internal {
namespace {

constexpr uint64_t kReadChunk = 256 * 1024;

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

}  // namespace

const char* ReadOutcomeName(ReadOutcome o) {
  switch (o) {
    case ReadOutcome::kRecord:
      return "record";
    case ReadOutcome::kEnd:
      return "end";
    case ReadOutcome::kZero:
      return "zero length";
    case ReadOutcome::kStale:
      return "frame of another segment";
    case ReadOutcome::kTorn:
      return "truncated frame";
    case ReadOutcome::kBadCrc:
      return "crc mismatch";
    case ReadOutcome::kBadRecord:
      return "unexpected record";
    case ReadOutcome::kIoError:
      return "read error";
  }
  return "?";
}

RecordReader::RecordReader(const SegmentSource& source, uint64_t seq, uint64_t offset,
                           uint64_t first_id, uint64_t end, std::vector<uint8_t>& buffer)
    : source_(source),
      seq_(static_cast<uint32_t>(seq)),
      offset_(offset),
      next_id_(first_id),
      end_(end),
      buffer_(buffer) {}

const uint8_t* RecordReader::Fill(uint64_t off, uint64_t n) {
  if (source_.memory) {
    const uint64_t size = source_.memory->size();
    if (off < kHeaderBytes || off - kHeaderBytes > size || size - (off - kHeaderBytes) < n) {
      return nullptr;
    }
    return source_.memory->data() + (off - kHeaderBytes);
  }
  if (off >= window_offset_ && off + n <= window_offset_ + window_size_) {
    return buffer_.data() + (off - window_offset_);
  }
  const uint64_t want = std::min(std::max(n, kReadChunk), end_ - off);
  if (want < n) return nullptr;
  if (buffer_.size() < want) buffer_.resize(want);
  auto got = source_.file->ReadAt(off, std::as_writable_bytes(std::span(buffer_.data(), want)));
  if (!got.ok()) {
    io_status_ = got.status();
    window_size_ = 0;
    return nullptr;
  }
  window_offset_ = off;
  window_size_ = *got;
  return *got >= n ? buffer_.data() : nullptr;
}

ReadOutcome RecordReader::Next(RecordView& rec) {
  bad_bytes_ = 0;
  if (offset_ >= end_) return ReadOutcome::kEnd;
  const uint64_t left = end_ - offset_;
  if (left < kFrameHeaderBytes) {
    // Too short for a frame: the end of written data if zero, else torn.
    const uint8_t* p = Fill(offset_, left);
    if (p == nullptr) return io_status_.ok() ? ReadOutcome::kTorn : ReadOutcome::kIoError;
    if (std::all_of(p, p + left, [](uint8_t b) { return b == 0; })) return ReadOutcome::kZero;
    bad_bytes_ = left;
    return ReadOutcome::kTorn;
  }
  const uint8_t* p = Fill(offset_, kFrameHeaderBytes);
  if (p == nullptr) {
    if (!io_status_.ok()) return ReadOutcome::kIoError;
    bad_bytes_ = left;
    return ReadOutcome::kTorn;
  }
  const FrameHeader h = DecodeFrameHeader(p);
  if (h.payload_bytes == 0) return ReadOutcome::kZero;
  if (h.seq != seq_) return ReadOutcome::kStale;
  if (h.payload_bytes > left - kFrameHeaderBytes) {
    bad_bytes_ = left;
    return ReadOutcome::kTorn;
  }
  const uint64_t frame = kFrameHeaderBytes + h.payload_bytes;
  p = Fill(offset_, frame);
  if (p == nullptr) {
    if (!io_status_.ok()) return ReadOutcome::kIoError;
    bad_bytes_ = frame;
    return ReadOutcome::kTorn;
  }
  if (FrameCrc(p, h.payload_bytes) != h.crc) {
    bad_bytes_ = frame;
    return ReadOutcome::kBadCrc;
  }
  if (h.first_id != next_id_ || h.count == 0) {
    bad_bytes_ = frame;
    return ReadOutcome::kBadRecord;
  }
  rec.offset = offset_;
  rec.header = h;
  rec.payload = std::span<const uint8_t>(p + kFrameHeaderBytes, h.payload_bytes);
  offset_ += frame;
  next_id_ += h.count;
  return ReadOutcome::kRecord;
}

void IndexBuilder::Add(const IndexEntry& e) {
  if (records_++ % stride_ != 0) return;
  entries_.push_back(e);
  if (entries_.size() >= kMaxIndexEntries) {
    size_t j = 0;
    for (size_t i = 0; i < entries_.size(); i += 2) entries_[j++] = entries_[i];
    entries_.resize(j);
    stride_ *= 2;
  }
}

void IndexBuilder::Reset(std::vector<IndexEntry> entries) {
  entries_ = std::move(entries);
  records_ = 0;
  stride_ = 1;
}

Result<ScanResult> ScanSegment(const SegmentSource& source, const SegmentHeader& h,
                               uint64_t file_size, std::vector<uint8_t>& buffer) {
  ScanResult r;
  r.end_id = h.first_id;
  RecordReader reader(source, h.seq, kHeaderBytes, h.first_id, file_size, buffer);
  RecordView rec;
  bool any = false;
  while (true) {
    const ReadOutcome o = reader.Next(rec);
    if (o == ReadOutcome::kIoError) return reader.io_status();
    if (o != ReadOutcome::kRecord) {
      r.stop = o;
      r.bad_bytes = reader.bad_bytes();
      break;
    }
    // The CRC matched; the payload must also decode.
    SampleDecoder d(rec.payload, rec.header.base_time);
    int64_t mn = std::numeric_limits<int64_t>::max(), mx = std::numeric_limits<int64_t>::min();
    uint32_t n = 0;
    while (!d.AtEnd() && d.Skip()) {
      mn = std::min(mn, d.last_time());
      mx = std::max(mx, d.last_time());
      ++n;
    }
    if (n != rec.header.count || !d.AtEnd()) {
      r.stop = ReadOutcome::kBadRecord;
      r.bad_bytes = rec.end_offset() - rec.offset;
      break;
    }
    r.index.Add(IndexEntry{rec.header.first_id, rec.offset, mn});
    r.min_time = any ? std::min(r.min_time, mn) : mn;
    r.max_time = any ? std::max(r.max_time, mx) : mx;
    any = true;
    r.data_end = rec.end_offset();
    r.end_id = rec.end_id();
  }
  return r;
}

Status CompressSegment(const SegmentSource& source, const SegmentHeader& h, File& out, int level,
                       std::vector<uint8_t>& buffer, uint64_t& compressed_bytes) {
  std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
  if (!cctx) return ResourceExhaustedError("zstd: out of memory");
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setPledgedSrcSize(cctx.get(), h.data_end - kHeaderBytes);
  std::vector<uint8_t> obuf(std::max<size_t>(ZSTD_CStreamOutSize(), 1 << 20));
  uint64_t out_offset = kHeaderBytes;
  size_t ofill = 0;
  auto flush = [&]() -> Status {
    if (ofill == 0) return OkStatus();
    KILN_RETURN_IF_ERROR(out.WriteAt(out_offset, std::as_bytes(std::span(obuf.data(), ofill))));
    out_offset += ofill;
    ofill = 0;
    return OkStatus();
  };
  auto feed = [&](const uint8_t* data, size_t n, ZSTD_EndDirective mode) -> Status {
    ZSTD_inBuffer in{data, n, 0};
    while (true) {
      ZSTD_outBuffer o{obuf.data() + ofill, obuf.size() - ofill, 0};
      const size_t rc = ZSTD_compressStream2(cctx.get(), &o, &in, mode);
      if (ZSTD_isError(rc)) return InternalError(fmt::format("zstd: {}", ZSTD_getErrorName(rc)));
      ofill += o.pos;
      if (ofill == obuf.size()) KILN_RETURN_IF_ERROR(flush());
      const bool done = mode == ZSTD_e_end ? rc == 0 : in.pos == in.size;
      if (done) return OkStatus();
    }
  };
  RecordReader reader(source, h.seq, kHeaderBytes, h.first_id, h.data_end, buffer);
  RecordView rec;
  while (true) {
    const ReadOutcome o = reader.Next(rec);
    if (o == ReadOutcome::kEnd) break;
    if (o == ReadOutcome::kIoError) return reader.io_status();
    if (o != ReadOutcome::kRecord) {
      return DataLossError(fmt::format("offset {}: {}", reader.offset(), ReadOutcomeName(o)));
    }
    KILN_RETURN_IF_ERROR(feed(rec.payload.data() - kFrameHeaderBytes,
                              kFrameHeaderBytes + rec.payload.size(), ZSTD_e_continue));
  }
  if (reader.next_id() != h.first_id + h.count) {
    return DataLossError(fmt::format("records end at id {}, the seal says {}", reader.next_id(),
                                     h.first_id + h.count));
  }
  KILN_RETURN_IF_ERROR(feed(nullptr, 0, ZSTD_e_end));
  KILN_RETURN_IF_ERROR(flush());
  compressed_bytes = out_offset - kHeaderBytes;
  SegmentHeader zh = h;
  zh.compressed = true;
  zh.compressed_bytes = compressed_bytes;
  std::vector<uint8_t> block(kHeaderBytes);
  EncodeHeaderBlock(zh, std::span<uint8_t, kHeaderBytes>(block.data(), kHeaderBytes));
  return out.WriteAt(0, std::as_bytes(std::span(block)));
}

namespace {

Result<std::shared_ptr<const std::vector<uint8_t>>> Decompress(const File& file,
                                                               const SegmentHeader& h) {
  std::vector<uint8_t> in(h.compressed_bytes);
  KILN_ASSIGN_OR_RETURN(const size_t got,
                        file.ReadAt(kHeaderBytes, std::as_writable_bytes(std::span(in))));
  if (got != in.size()) {
    return DataLossError(fmt::format("{} of {} compressed bytes present", got, in.size()));
  }
  const uint64_t size = h.data_end - kHeaderBytes;
  const unsigned long long frame = ZSTD_getFrameContentSize(in.data(), in.size());
  if (frame != size) return DataLossError("zstd frame size does not match the header");
  auto out = std::make_shared<std::vector<uint8_t>>(size);
  const size_t rc = ZSTD_decompress(out->data(), out->size(), in.data(), in.size());
  if (ZSTD_isError(rc)) return DataLossError(fmt::format("zstd: {}", ZSTD_getErrorName(rc)));
  if (rc != size) return DataLossError("zstd data shorter than the header says");
  return std::shared_ptr<const std::vector<uint8_t>>(std::move(out));
}

}  // namespace

Result<std::shared_ptr<const std::vector<uint8_t>>> DecompressSegment(const File& file,
                                                                      const SegmentHeader& h) {
  if (h.data_end < kHeaderBytes || h.compressed_bytes > (uint64_t{1} << 34)) {
    return DataLossError("implausible sizes in the header");
  }
  try {
    return Decompress(file, h);
  } catch (const std::bad_alloc&) {
    // A whole segment is decompressed at once; under memory pressure, retry later rather than
    // let an exception cross the reader's thread.
    return ResourceExhaustedError(
        fmt::format("no memory to decompress a segment of {} bytes", h.data_end));
  }
}

}  // namespace kiln::queue::internal
