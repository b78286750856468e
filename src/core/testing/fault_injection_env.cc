#include "core/testing/fault_injection_env.h"

#include <algorithm>
#include <cerrno>
#include <random>
#include <thread>

namespace kiln::testing {
namespace {

constexpr uint64_t kSector = 512;

bool Mutating(FileOp op) {
  switch (op) {
    case FileOp::kWrite:
    case FileOp::kSync:
    case FileOp::kTruncate:
    case FileOp::kRename:
    case FileOp::kRemove:
    case FileOp::kCreateDir:
    case FileOp::kSyncDir:
      return true;
    default:
      return false;
  }
}

std::string Parent(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string TrimSlash(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace

std::string_view FileOpName(FileOp op) {
  static constexpr std::array<std::string_view, kFileOpCount> kNames = {
      "open",   "read",   "write", "sync",    "truncate", "size",
      "rename", "remove", "mkdir", "syncdir", "listdir",  "filesize"};
  return kNames[static_cast<size_t>(op)];
}

class FaultFile final : public File {
 public:
  FaultFile(FaultInjectionEnv& env, std::unique_ptr<File> base)
      : env_(env), base_(std::move(base)) {}

  Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) const override {
    if (int err = env_.Check(FileOp::kRead, path())) return ErrnoToStatus(err, "read", path());
    return base_->ReadAt(offset, out);
  }

  Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
    size_t partial = 0;
    if (int err = env_.Check(FileOp::kWrite, path(), &partial)) {
      partial = std::min(partial, data.size());
      if (partial > 0) Write(offset, data.first(partial)).IgnoreError();
      return ErrnoToStatus(err, "write", path());
    }
    return Write(offset, data);
  }

  Status Sync() override {
    if (int err = env_.Check(FileOp::kSync, path())) {
      return ErrnoToStatus(err, "fdatasync", path());
    }
    if (!env_.tracking()) return base_->Sync();
    std::shared_ptr<FaultInjectionEnv::Node> node;
    {
      MutexLock lock(env_.mu_);
      node = env_.NodeLocked(path());
    }
    return env_.SyncTracked(*base_, node);
  }

  Status Truncate(uint64_t size) override {
    if (int err = env_.Check(FileOp::kTruncate, path())) {
      return ErrnoToStatus(err, "ftruncate", path());
    }
    if (env_.tracking()) {
      // Remember the sectors a shrink discards.
      KILN_ASSIGN_OR_RETURN(const uint64_t old_size, base_->Size());
      if (size < old_size) {
        // Record pre-images by "writing" the current content back: WriteTracked keeps the
        // content at the last sync for every sector it touches.
        std::vector<std::byte> cur(old_size - size);
        KILN_RETURN_IF_ERROR(base_->ReadAt(size, cur));
        std::shared_ptr<FaultInjectionEnv::Node> node;
        {
          MutexLock lock(env_.mu_);
          node = env_.NodeLocked(path());
        }
        KILN_RETURN_IF_ERROR(env_.WriteTracked(*base_, node, size, cur));
      }
    }
    return base_->Truncate(size);
  }

  Result<uint64_t> Size() const override {
    if (int err = env_.Check(FileOp::kSize, path())) return ErrnoToStatus(err, "stat", path());
    return base_->Size();
  }

  const std::string& path() const override { return base_->path(); }

 private:
  Status Write(uint64_t offset, std::span<const std::byte> data) {
    if (!env_.tracking()) return base_->WriteAt(offset, data);
    std::shared_ptr<FaultInjectionEnv::Node> node;
    {
      MutexLock lock(env_.mu_);
      node = env_.NodeLocked(path());
    }
    return env_.WriteTracked(*base_, node, offset, data);
  }

  FaultInjectionEnv& env_;
  std::unique_ptr<File> base_;
};

FaultInjectionEnv::FaultInjectionEnv(Env& base) : base_(base) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

void FaultInjectionEnv::InjectFault(FileOp op, int err, std::string path_part, int times,
                                    size_t partial_bytes) {
  MutexLock lock(mu_);
  rules_.push_back(Rule{op, err, std::move(path_part), times, partial_bytes});
}

void FaultInjectionEnv::ClearFaults() {
  MutexLock lock(mu_);
  rules_.clear();
}

uint64_t FaultInjectionEnv::count(FileOp op) const {
  return counts_[static_cast<size_t>(op)].load(std::memory_order_relaxed);
}

void FaultInjectionEnv::StartTracking() { tracking_.store(true, std::memory_order_release); }

void FaultInjectionEnv::CrashAfter(int64_t n) {
  MutexLock lock(mu_);
  crash_countdown_ = n;
}

bool FaultInjectionEnv::crashed() const {
  MutexLock lock(mu_);
  return crashed_;
}

uint64_t FaultInjectionEnv::count(FileOp op, std::string_view path_part) const {
  MutexLock lock(count_mu_);
  uint64_t n = 0;
  for (const auto& [o, path] : history_) {
    if (o == op && path.find(path_part) != std::string::npos) ++n;
  }
  return n;
}

bool FaultInjectionEnv::WaitForCount(FileOp op, uint64_t n, std::chrono::milliseconds timeout,
                                     std::string_view path_part) {
  MutexLock lock(count_mu_);
  return count_cv_.WaitFor(lock, timeout, [&]() KILN_REQUIRES(count_mu_) {
    uint64_t k = 0;
    for (const auto& [o, path] : history_) {
      if (o == op && path.find(path_part) != std::string::npos) ++k;
    }
    return k >= n;
  });
}

void FaultInjectionEnv::SetSyncDelay(std::chrono::microseconds d) {
  sync_delay_us_.store(d.count(), std::memory_order_relaxed);
}

int FaultInjectionEnv::Check(FileOp op, std::string_view path, size_t* partial) {
  int err;
  {
    MutexLock lock(mu_);
    err = CheckLocked(op, path, partial);
  }
  if ((op == FileOp::kSync || op == FileOp::kSyncDir) && err == 0) {
    const int64_t us = sync_delay_us_.load(std::memory_order_relaxed);
    if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
  }
  {
    MutexLock lock(count_mu_);
    counts_[static_cast<size_t>(op)].fetch_add(1, std::memory_order_relaxed);
    history_.emplace_back(op, std::string(path));
  }
  count_cv_.NotifyAll();
  return err;
}

int FaultInjectionEnv::CheckLocked(FileOp op, std::string_view path, size_t* partial,
                                   bool mutating) {
  if (crashed_) return EIO;
  if ((mutating || Mutating(op)) && crash_countdown_ >= 0) {
    if (crash_countdown_ == 0) {
      crashed_ = true;
      return EIO;
    }
    --crash_countdown_;
  }
  for (Rule& r : rules_) {
    if (r.op != op || r.times == 0) continue;
    if (!r.path_part.empty() && path.find(r.path_part) == std::string_view::npos) continue;
    if (r.times > 0) --r.times;
    if (partial != nullptr) *partial = r.partial_bytes;
    return r.err;
  }
  return 0;
}

std::shared_ptr<FaultInjectionEnv::Node> FaultInjectionEnv::NodeLocked(const std::string& path) {
  auto& node = nodes_[path];
  if (!node) node = std::make_shared<Node>();
  return node;
}

Status FaultInjectionEnv::WriteTracked(File& base, const std::shared_ptr<Node>& node,
                                       uint64_t offset, std::span<const std::byte> data) {
  MutexLock lock(io_mu_);
  if (!node->dirty) {
    KILN_ASSIGN_OR_RETURN(node->synced_size, base.Size());
    node->dirty = true;
  }
  if (!data.empty()) {
    for (uint64_t s = offset / kSector; s <= (offset + data.size() - 1) / kSector; ++s) {
      if (node->sectors.count(s) != 0) continue;
      std::vector<std::byte> pre(kSector);
      KILN_ASSIGN_OR_RETURN(const size_t n, base.ReadAt(s * kSector, pre));
      // Bytes beyond the size at the last sync read back as zeros after a crash.
      const uint64_t valid =
          node->synced_size > s * kSector ? std::min(kSector, node->synced_size - s * kSector) : 0;
      for (size_t i = std::min<size_t>(n, valid); i < kSector; ++i) pre[i] = std::byte{0};
      node->sectors.emplace(s, std::move(pre));
    }
  }
  return base.WriteAt(offset, data);
}

Status FaultInjectionEnv::SyncTracked(File& base, const std::shared_ptr<Node>& node) {
  MutexLock lock(io_mu_);
  KILN_RETURN_IF_ERROR(base.Sync());
  node->sectors.clear();
  node->dirty = false;
  return OkStatus();
}

Result<std::unique_ptr<File>> FaultInjectionEnv::Open(const std::string& path, OpenMode mode) {
  const bool creating = mode == OpenMode::kCreate || mode == OpenMode::kCreateNew;
  bool existed = true;
  if (creating) existed = base_.FileSize(path).ok();
  {
    {
      MutexLock lock(count_mu_);
      counts_[static_cast<size_t>(FileOp::kOpen)].fetch_add(1, std::memory_order_relaxed);
      history_.emplace_back(FileOp::kOpen, path);
    }
    count_cv_.NotifyAll();
    MutexLock lock(mu_);
    // A creating open is a mutating operation for CrashAfter.
    const int err = CheckLocked(FileOp::kOpen, path, nullptr, creating && !existed);
    if (err != 0) return ErrnoToStatus(err, "open", path);
  }
  KILN_ASSIGN_OR_RETURN(auto file, base_.Open(path, mode));
  if (creating && !existed && tracking()) {
    MutexLock lock(mu_);
    dir_ops_.push_back(DirOp{false, "", path, std::nullopt});
    auto& node = nodes_[path];
    node = std::make_shared<Node>();
    node->dirty = true;  // nothing of it is durable yet
    node->synced_size = 0;
  }
  return std::unique_ptr<File>(std::make_unique<FaultFile>(*this, std::move(file)));
}

Status FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  if (int err = Check(FileOp::kRename, to)) return ErrnoToStatus(err, "rename", from);
  std::optional<std::vector<std::byte>> replaced;
  if (tracking()) {
    if (auto f = base_.Open(to, OpenMode::kRead); f.ok()) {
      KILN_ASSIGN_OR_RETURN(const uint64_t size, (*f)->Size());
      replaced.emplace(size);
      KILN_RETURN_IF_ERROR((*f)->ReadAt(0, *replaced));
    }
  }
  KILN_RETURN_IF_ERROR(base_.Rename(from, to));
  if (tracking()) {
    MutexLock lock(mu_);
    dir_ops_.push_back(DirOp{true, from, to, std::move(replaced)});
    auto it = nodes_.find(from);
    if (it != nodes_.end()) {
      nodes_[to] = it->second;
      nodes_.erase(it);
    } else {
      nodes_.erase(to);
    }
  }
  return OkStatus();
}

Status FaultInjectionEnv::Remove(const std::string& path) {
  if (int err = Check(FileOp::kRemove, path)) return ErrnoToStatus(err, "unlink", path);
  KILN_RETURN_IF_ERROR(base_.Remove(path));
  if (tracking()) {
    MutexLock lock(mu_);
    nodes_.erase(path);
    // A removed file stays removed: forget pending operations that could bring it back.
    std::erase_if(dir_ops_, [&](const DirOp& op) { return op.to == path; });
  }
  return OkStatus();
}

Status FaultInjectionEnv::CreateDir(const std::string& path) {
  if (int err = Check(FileOp::kCreateDir, path)) return ErrnoToStatus(err, "mkdir", path);
  return base_.CreateDir(path);
}

Status FaultInjectionEnv::SyncDir(const std::string& path) {
  if (int err = Check(FileOp::kSyncDir, path)) return ErrnoToStatus(err, "fsync", path);
  KILN_RETURN_IF_ERROR(base_.SyncDir(path));
  if (tracking()) {
    // Metadata is journaled in order: syncing `path` makes every operation up to the last
    // one in it durable.
    MutexLock lock(mu_);
    const std::string dir = TrimSlash(path);
    size_t last = 0;
    for (size_t i = 0; i < dir_ops_.size(); ++i) {
      if (Parent(dir_ops_[i].to) == dir ||
          (dir_ops_[i].rename && Parent(dir_ops_[i].from) == dir)) {
        last = i + 1;
      }
    }
    dir_ops_.erase(dir_ops_.begin(), dir_ops_.begin() + static_cast<std::ptrdiff_t>(last));
  }
  return OkStatus();
}

Result<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& path) {
  if (int err = Check(FileOp::kListDir, path)) return ErrnoToStatus(err, "opendir", path);
  return base_.ListDir(path);
}

Result<uint64_t> FaultInjectionEnv::FileSize(const std::string& path) {
  if (int err = Check(FileOp::kFileSize, path)) return ErrnoToStatus(err, "stat", path);
  return base_.FileSize(path);
}

Result<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(const std::string& path) {
  if (int err = Check(FileOp::kOpen, path)) return ErrnoToStatus(err, "open", path);
  return base_.LockFile(path);
}

void FaultInjectionEnv::SimulatePowerLoss(uint64_t seed, double keep) {
  MutexLock io_lock(io_mu_);
  MutexLock lock(mu_);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  for (auto& [path, node] : nodes_) {
    if (!node->dirty) continue;
    auto file = base_.Open(path, OpenMode::kReadWrite);
    if (!file.ok()) continue;
    const uint64_t cur_size = (*file)->Size().value_or(0);
    uint64_t new_size = std::min(node->synced_size, cur_size);
    for (auto& [s, pre] : node->sectors) {
      const uint64_t start = s * kSector;
      if (start >= cur_size) continue;
      const uint64_t len = std::min(kSector, cur_size - start);
      if (coin(rng) < keep) {
        new_size = std::max(new_size, start + len);
      } else {
        (*file)->WriteAt(start, std::span<const std::byte>(pre).first(len)).IgnoreError();
      }
    }
    if (new_size < cur_size) (*file)->Truncate(new_size).IgnoreError();
  }
  // Directory operations persist in order: keep a random prefix.
  const size_t cut = static_cast<size_t>(rng() % (dir_ops_.size() + 1));
  for (size_t i = dir_ops_.size(); i > cut; --i) {
    const DirOp& op = dir_ops_[i - 1];
    if (op.rename) {
      base_.Rename(op.to, op.from).IgnoreError();
      if (op.replaced) {
        if (auto f = base_.Open(op.to, OpenMode::kCreate); f.ok()) {
          (*f)->WriteAt(0, *op.replaced).IgnoreError();
        }
      }
    } else {
      base_.Remove(op.to).IgnoreError();
    }
  }
  nodes_.clear();
  dir_ops_.clear();
  crashed_ = false;
  crash_countdown_ = -1;
  tracking_.store(false, std::memory_order_release);
}

}  // namespace kiln::testing
