#include "historian/internal/wal.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

#include "core/coding.h"
#include "core/crc32c.h"

namespace kiln::historian::internal {

namespace {

// Flags byte of a point in a kPoints record.
constexpr uint8_t kNullBit = 0x01;
constexpr uint8_t kSeriesBit = 0x02;   // varint series id follows
constexpr uint8_t kQualityBit = 0x04;  // varint quality follows
constexpr int kValueShift = 3;         // bits 3-4: how the value is stored
enum ValueForm : uint8_t {
  kF64 = 0,   // 8 bytes, the IEEE bits little-endian
  kInt = 1,   // zigzag varint of an integer value (|v| <= 2^53, not -0.0)
  kSame = 2,  // the same bits as the previous point's value in the record
  kZero = 3,  // +0.0
};
constexpr double kMaxExactInt = 9007199254740992.0;  // 2^53

}  // namespace

std::string WalSegmentName(uint64_t seq) { return fmt::format("{:020}.wal", seq); }

bool ParseWalSegmentName(std::string_view name, uint64_t& seq) {
  if (name.size() != 24 || name.substr(20) != ".wal") return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  seq = v;
  return true;
}

void EncodeWalHeader(uint64_t seq, uint8_t* out) {
  std::memset(out, 0, kWalHeaderBytes);
  std::memcpy(out, kWalMagic, 8);
  Put32(out + 8, kWalVersion);
  Put64(out + 16, seq);
  Put32(out + 28, crc32c::Value(out, 28));
}

WalHeaderCheck CheckWalHeader(std::span<const uint8_t> bytes, uint64_t seq) {
  if (bytes.size() < kWalHeaderBytes) return WalHeaderCheck::kShort;
  if (std::memcmp(bytes.data(), kWalMagic, 8) != 0) return WalHeaderCheck::kBadMagic;
  if (Get32(bytes.data() + 28) != crc32c::Value(bytes.data(), 28)) return WalHeaderCheck::kBadCrc;
  if (Get32(bytes.data() + 8) != kWalVersion) return WalHeaderCheck::kUnknownVersion;
  if (Get64(bytes.data() + 16) != seq) return WalHeaderCheck::kBadSeq;
  return WalHeaderCheck::kOk;
}

// --- Building records.

size_t WalRecordBuilder::BeginFrame(WalRecordType type) {
  const size_t start = bytes_.size();
  bytes_.resize(start + kWalFrameHeaderBytes);
  bytes_[start + 8] = static_cast<uint8_t>(type);
  return start;
}

void WalRecordBuilder::EndFrame(size_t frame_start) {
  uint8_t* f = bytes_.data() + frame_start;
  const size_t len = bytes_.size() - frame_start - kWalFrameHeaderBytes;
  Put32(f + 4, static_cast<uint32_t>(len));
  Put32(f, crc32c::Value(f + 4, len + kWalFrameHeaderBytes - 4));
}

void WalRecordBuilder::AddPoints(std::span<const PointWrite> points) {
  while (!points.empty()) {
    const size_t n = std::min(points.size(), kMaxPointsPerRecord);
    const size_t frame = BeginFrame(WalRecordType::kPoints);
    // Worst case per point: flags 1 + series 5 + time 10 + quality 5 + value 10.
    size_t pos = bytes_.size();
    bytes_.resize(pos + kMaxVarint64 + n * 31);
    uint8_t* p = bytes_.data() + pos;
    p = PutVarint(p, n);
    SeriesId prev_series = 0;
    uint32_t prev_q = 0;
    uint64_t prev_t = 0;
    uint64_t prev_bits = 0;
    for (size_t i = 0; i < n; ++i) {
      const PointWrite& w = points[i];
      const Point& pt = w.point;
      uint8_t* flags = p++;
      uint8_t f = pt.is_null ? kNullBit : 0;
      if (w.series != prev_series) {
        f |= kSeriesBit;
        p = PutVarint(p, w.series);
        prev_series = w.series;
      }
      const uint64_t t = static_cast<uint64_t>(pt.t);
      p = PutVarint(p, ZigZag(static_cast<int64_t>(t - prev_t)));
      prev_t = t;
      if (pt.q != prev_q) {
        f |= kQualityBit;
        p = PutVarint(p, pt.q);
        prev_q = pt.q;
      }
      // A null's value is 0 (historian.h).
      const double value = pt.is_null ? 0.0 : pt.v;
      const uint64_t bits = std::bit_cast<uint64_t>(value);
      ValueForm form;
      if (bits == prev_bits) {
        form = kSame;
      } else if (bits == 0) {
        form = kZero;
      } else if (value >= -kMaxExactInt && value <= kMaxExactInt &&
                 static_cast<double>(static_cast<int64_t>(value)) == value && value != 0) {
        form = kInt;
        p = PutVarint(p, ZigZag(static_cast<int64_t>(value)));
      } else {
        form = kF64;
        Put64(p, bits);
        p += 8;
      }
      prev_bits = bits;
      *flags = static_cast<uint8_t>(f | (form << kValueShift));
    }
    bytes_.resize(static_cast<size_t>(p - bytes_.data()));
    EndFrame(frame);
    points = points.subspan(n);
  }
}

void WalRecordBuilder::AddText(SeriesId series, const TextPoint& point) {
  const size_t frame = BeginFrame(WalRecordType::kText);
  const size_t pos = bytes_.size();
  bytes_.resize(pos + 4 * kMaxVarint64 + 1 + point.v.size());
  uint8_t* p = bytes_.data() + pos;
  p = PutVarint(p, series);
  p = PutVarint(p, ZigZag(point.t));
  p = PutVarint(p, point.q);
  *p++ = point.is_null ? 1 : 0;
  // A null's text is empty (historian.h).
  const std::string_view v = point.is_null ? std::string_view() : std::string_view(point.v);
  p = PutVarint(p, v.size());
  if (!v.empty()) std::memcpy(p, v.data(), v.size());
  p += v.size();
  bytes_.resize(static_cast<size_t>(p - bytes_.data()));
  EndFrame(frame);
}

void WalRecordBuilder::AddSeries(SeriesId id, SeriesKind kind, std::string_view path) {
  const size_t frame = BeginFrame(WalRecordType::kSeries);
  const size_t pos = bytes_.size();
  bytes_.resize(pos + 2 * kMaxVarint64 + 1 + path.size());
  uint8_t* p = bytes_.data() + pos;
  p = PutVarint(p, id);
  *p++ = static_cast<uint8_t>(kind);
  p = PutVarint(p, path.size());
  if (!path.empty()) std::memcpy(p, path.data(), path.size());
  p += path.size();
  bytes_.resize(static_cast<size_t>(p - bytes_.data()));
  EndFrame(frame);
}

// --- Reading records.

WalPointReader::WalPointReader(std::span<const uint8_t> payload)
    : p_(payload.data()), end_(payload.data() + payload.size()) {
  const uint8_t* q = GetVarint(p_, end_, count_);
  // Every point takes at least 2 bytes (flags and time).
  if (q != nullptr && count_ <= static_cast<uint64_t>(end_ - q) / 2 &&
      count_ <= kMaxPointsPerRecord) {
    p_ = q;
    ok_ = true;
  }
}

bool WalPointReader::Next(PointWrite& out) {
  if (!ok_ || read_ == count_) return false;
  auto fail = [&] {
    malformed_ = true;
    ok_ = false;
    return false;
  };
  if (p_ >= end_) return fail();
  const uint8_t f = *p_++;
  if ((f & ~0x1F) != 0) return fail();
  uint64_t v;
  if ((f & kSeriesBit) != 0) {
    p_ = GetVarint(p_, end_, v);
    if (p_ == nullptr || v > UINT32_MAX) return fail();
    series_ = static_cast<SeriesId>(v);
  }
  p_ = GetVarint(p_, end_, v);
  if (p_ == nullptr) return fail();
  t_ = static_cast<int64_t>(static_cast<uint64_t>(t_) + static_cast<uint64_t>(UnZigZag(v)));
  if ((f & kQualityBit) != 0) {
    p_ = GetVarint(p_, end_, v);
    if (p_ == nullptr || v > UINT32_MAX) return fail();
    q_ = static_cast<uint32_t>(v);
  }
  switch (static_cast<ValueForm>((f >> kValueShift) & 3)) {
    case kF64:
      if (end_ - p_ < 8) return fail();
      bits_ = Get64(p_);
      p_ += 8;
      break;
    case kInt:
      p_ = GetVarint(p_, end_, v);
      if (p_ == nullptr) return fail();
      bits_ = std::bit_cast<uint64_t>(static_cast<double>(UnZigZag(v)));
      break;
    case kSame:
      break;
    case kZero:
      bits_ = 0;
      break;
  }
  out.series = series_;
  out.point.t = t_;
  out.point.q = q_;
  out.point.v = std::bit_cast<double>(bits_);
  out.point.is_null = (f & kNullBit) != 0;
  ++read_;
  return true;
}

bool ParseTextRecord(std::span<const uint8_t> payload, SeriesId& series, TextPoint& point) {
  const uint8_t* p = payload.data();
  const uint8_t* end = p + payload.size();
  uint64_t v;
  if ((p = GetVarint(p, end, v)) == nullptr || v > UINT32_MAX) return false;
  series = static_cast<SeriesId>(v);
  if ((p = GetVarint(p, end, v)) == nullptr) return false;
  point.t = UnZigZag(v);
  if ((p = GetVarint(p, end, v)) == nullptr || v > UINT32_MAX) return false;
  point.q = static_cast<uint32_t>(v);
  if (p >= end || *p > 1) return false;
  point.is_null = *p++ == 1;
  if ((p = GetVarint(p, end, v)) == nullptr || v != static_cast<uint64_t>(end - p)) return false;
  point.v.assign(reinterpret_cast<const char*>(p), v);
  return true;
}

bool ParseSeriesRecord(std::span<const uint8_t> payload, SeriesId& id, SeriesKind& kind,
                       std::string& path) {
  const uint8_t* p = payload.data();
  const uint8_t* end = p + payload.size();
  uint64_t v;
  if ((p = GetVarint(p, end, v)) == nullptr || v == 0 || v > UINT32_MAX) return false;
  id = static_cast<SeriesId>(v);
  if (p >= end || *p > 1) return false;
  kind = static_cast<SeriesKind>(*p++);
  if ((p = GetVarint(p, end, v)) == nullptr || v == 0 || v != static_cast<uint64_t>(end - p)) {
    return false;
  }
  path.assign(reinterpret_cast<const char*>(p), v);
  return true;
}

// --- Replay.

Result<WalReplayResult> ReplayWal(
    Env& env, const std::string& dir, const Logger& log,
    const std::function<Status(uint64_t, WalRecordType, std::span<const uint8_t>)>& on_record) {
  WalReplayResult result;
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, env.ListDir(dir));
  std::vector<uint64_t> seqs;
  for (const std::string& name : names) {
    uint64_t seq;
    if (ParseWalSegmentName(name, seq)) seqs.push_back(seq);
  }
  std::sort(seqs.begin(), seqs.end());
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const uint64_t seq = seqs[i];
    const bool last = i + 1 == seqs.size();
    const std::string path = dir + "/" + WalSegmentName(seq);
    result.max_seq = std::max(result.max_seq, seq);
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.Open(path, OpenMode::kReadWrite));
    KILN_ASSIGN_OR_RETURN(const uint64_t size, file->Size());
    buf.resize(size);
    KILN_ASSIGN_OR_RETURN(const size_t got,
                          file->ReadAt(0, std::as_writable_bytes(std::span(buf))));
    if (got != size) return UnavailableError(fmt::format("read {}: short read", path));
    const WalHeaderCheck hc = CheckWalHeader(buf, seq);
    if (hc == WalHeaderCheck::kUnknownVersion) {
      return FailedPreconditionError(
          fmt::format("{}: written by WAL format version {}; this build reads version {}", path,
                      Get32(buf.data() + 8), kWalVersion));
    }
    if (hc != WalHeaderCheck::kOk) {
      if (last && size < kWalHeaderBytes) {
        // Created by a run that died before the header was on disk: it holds nothing.
        log.Warn("{}: incomplete segment header ({} bytes), removed", path, size);
        file.reset();
        KILN_RETURN_IF_ERROR(env.Remove(path));
        continue;
      }
      log.Error("{}: bad segment header ({}); its {} bytes are skipped", path,
                hc == WalHeaderCheck::kBadMagic ? "magic"
                : hc == WalHeaderCheck::kBadSeq ? "sequence number"
                                                : "checksum",
                size);
      result.corrupt_bytes += size;
      result.segments[seq] = size;
      continue;
    }
    uint64_t off = kWalHeaderBytes;
    const char* problem = nullptr;
    while (off < size) {
      if (size - off < kWalFrameHeaderBytes) {
        problem = "truncated frame header";
        break;
      }
      const uint8_t* f = buf.data() + off;
      const uint32_t len = Get32(f + 4);
      if (len > kMaxWalRecordBytes || len > size - off - kWalFrameHeaderBytes) {
        problem = "frame runs past the end of the file";
        break;
      }
      if (Get32(f) != crc32c::Value(f + 4, len + kWalFrameHeaderBytes - 4)) {
        problem = "checksum mismatch";
        break;
      }
      const uint8_t type = f[8];
      if (type < 1 || type > 3) {
        problem = "unknown record type";
        break;
      }
      KILN_RETURN_IF_ERROR(on_record(seq, static_cast<WalRecordType>(type),
                                     std::span(f + kWalFrameHeaderBytes, len)));
      ++result.records;
      off += kWalFrameHeaderBytes + len;
    }
    if (problem != nullptr) {
      const uint64_t bad = size - off;
      result.corrupt_bytes += bad;
      if (last) {
        log.Warn("{}: torn tail at offset {} ({}): {} bytes cut off", path, off, problem, bad);
        KILN_RETURN_IF_ERROR(file->Truncate(off));
        KILN_RETURN_IF_ERROR(file->Sync());
        result.segments[seq] = off;
        continue;
      }
      log.Error(
          "{}: corrupt record at offset {} ({}): the remaining {} bytes of this segment are "
          "skipped; points in them are lost",
          path, off, problem, bad);
    }
    result.segments[seq] = size;
  }
  return result;
}

// --- Writer.

WalWriter::WalWriter(Env& env, std::string dir, uint64_t segment_bytes, Logger log)
    : env_(env), dir_(std::move(dir)), segment_bytes_(segment_bytes), log_(std::move(log)) {}

WalWriter::~WalWriter() = default;

std::string WalWriter::Path(uint64_t seq) const { return dir_ + "/" + WalSegmentName(seq); }

Result<std::unique_ptr<WalWriter>> WalWriter::Create(Env& env, std::string dir, uint64_t seq,
                                                     std::map<uint64_t, uint64_t> existing,
                                                     uint64_t segment_bytes, Logger log) {
  std::unique_ptr<WalWriter> w(new WalWriter(env, std::move(dir), segment_bytes, std::move(log)));
  MutexLock l(w->mu_);
  w->segments_ = std::move(existing);
  KILN_RETURN_IF_ERROR(w->StartSegmentLocked(seq));
  return w;
}

Status WalWriter::StartSegmentLocked(uint64_t seq) {
  const std::string path = Path(seq);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<File> f, env_.Open(path, OpenMode::kCreateNew));
  uint8_t header[kWalHeaderBytes];
  EncodeWalHeader(seq, header);
  Status st = f->WriteAt(0, std::as_bytes(std::span(header)));
  if (st.ok()) st = f->Sync();
  if (st.ok()) st = env_.SyncDir(dir_);
  if (!st.ok()) {
    f.reset();
    env_.Remove(path).IgnoreError();
    return st;
  }
  file_ = std::move(f);
  seq_ = seq;
  size_ = kWalHeaderBytes;
  segments_[seq] = size_;
  poisoned_ = false;
  return OkStatus();
}

Result<uint64_t> WalWriter::Rotate() {
  std::shared_ptr<File> old;
  uint64_t lsn;
  {
    MutexLock l(mu_);
    old = file_;
    lsn = written_lsn_;
  }
  Status st = old->Sync();
  MutexLock l(mu_);
  ++syncs_;
  if (st.ok()) {
    durable_lsn_ = std::max(durable_lsn_, lsn);
  } else {
    log_.Error("{}: sync before rotation failed: {}", Path(seq_), st.ToString());
  }
  KILN_RETURN_IF_ERROR(StartSegmentLocked(seq_ + 1));
  sync_cv_.NotifyAll();
  return seq_;
}

Status WalWriter::Append(std::span<const std::byte> data) {
  bool rotate;
  {
    MutexLock l(mu_);
    rotate = poisoned_ || (size_ > kWalHeaderBytes && size_ + data.size() > segment_bytes_);
  }
  if (rotate) KILN_RETURN_IF_ERROR(Rotate().status());
  std::shared_ptr<File> f;
  uint64_t off;
  {
    MutexLock l(mu_);
    f = file_;
    off = size_;
  }
  Status st = f->WriteAt(off, data);
  MutexLock l(mu_);
  if (!st.ok()) {
    // A prefix may have reached the file: cut it off, and write further data elsewhere.
    if (!f->Truncate(off).ok()) {
      log_.Error("{}: could not cut off a failed write at offset {}", Path(seq_), off);
    }
    poisoned_ = true;
    return st;
  }
  size_ += data.size();
  segments_[seq_] = size_;
  written_lsn_ += data.size();
  return OkStatus();
}

Status WalWriter::SyncTo(uint64_t lsn) {
  while (true) {
    std::shared_ptr<File> file;
    uint64_t target;
    {
      MutexLock l(mu_);
      while (true) {
        lsn = std::min(lsn, written_lsn_);
        if (durable_lsn_ >= lsn) return OkStatus();
        if (!sync_running_) break;
        // Someone is syncing: wait for the end of that round (group commit).
        const uint64_t round = sync_round_;
        sync_cv_.Wait(l, [&]() KILN_REQUIRES(mu_) { return sync_round_ != round; });
        if (!last_sync_.ok() && last_sync_target_ >= lsn) return last_sync_;
      }
      sync_running_ = true;
      target = written_lsn_;
      file = file_;
    }
    Status st = file->Sync();
    {
      MutexLock l(mu_);
      sync_running_ = false;
      ++sync_round_;
      ++syncs_;
      last_sync_ = st;
      last_sync_target_ = target;
      if (st.ok()) {
        durable_lsn_ = std::max(durable_lsn_, target);
      } else if (file == file_) {
        // After a failed fdatasync the kernel may have dropped the dirty pages: write into a
        // new segment from now on.
        poisoned_ = true;
      }
    }
    sync_cv_.NotifyAll();
    if (!st.ok()) return st;
  }
}

Status WalWriter::RemoveBelow(uint64_t seq) {
  std::vector<uint64_t> victims;
  {
    MutexLock l(mu_);
    seq = std::min(seq, seq_);
    for (auto it = segments_.begin(); it != segments_.end() && it->first < seq; ++it) {
      victims.push_back(it->first);
    }
  }
  Status first;
  for (uint64_t v : victims) {
    Status st = env_.Remove(Path(v));
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      if (first.ok()) first = st;
      continue;
    }
    MutexLock l(mu_);
    segments_.erase(v);
  }
  return first;
}

uint64_t WalWriter::current_seq() const {
  MutexLock l(mu_);
  return seq_;
}

uint64_t WalWriter::written_lsn() const {
  MutexLock l(mu_);
  return written_lsn_;
}

bool WalWriter::has_unsynced() const {
  MutexLock l(mu_);
  return written_lsn_ > durable_lsn_;
}

uint64_t WalWriter::total_bytes() const {
  MutexLock l(mu_);
  uint64_t n = 0;
  for (const auto& [seq, bytes] : segments_) n += bytes;
  return n;
}

uint64_t WalWriter::bytes_from(uint64_t seq) const {
  MutexLock l(mu_);
  uint64_t n = 0;
  for (auto it = segments_.lower_bound(seq); it != segments_.end(); ++it) n += it->second;
  return n;
}

uint64_t WalWriter::oldest_seq() const {
  MutexLock l(mu_);
  return segments_.empty() ? seq_ : segments_.begin()->first;
}

uint64_t WalWriter::SeqWithin(uint64_t budget) const {
  MutexLock l(mu_);
  uint64_t seq = seq_;
  uint64_t n = 0;
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
    n += it->second;
    if (n > budget) break;
    seq = it->first;
  }
  return seq;
}

bool WalWriter::current_empty() const {
  MutexLock l(mu_);
  return size_ <= kWalHeaderBytes;
}

uint64_t WalWriter::syncs() const {
  MutexLock l(mu_);
  return syncs_;
}

}  // namespace kiln::historian::internal
