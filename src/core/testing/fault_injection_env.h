#pragma once
// FaultInjectionEnv: an Env for tests that wraps another (POSIX by default) and
//   - makes chosen operations fail with a chosen errno (ENOSPC, EROFS, EIO...), optionally
//     after writing part of the data (a torn write);
//   - counts the operations (e.g. how many fdatasyncs a sync policy costs);
//   - simulates a power cut: while tracking, it remembers what each write overwrote until the
//     file is synced and which creations and renames are not yet made durable by a directory
//     sync; CrashAfter(n) makes every operation fail from the n-th mutating one on (the
//     process "died" there), and SimulatePowerLoss() then reverts a random subset of the
//     unsynced 512-byte sectors and a random suffix of the unsynced directory operations.
// Removals are treated as durable at once (a removed file never reappears).
// Thread-safe. Files opened through it must not outlive it.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/env.h"
#include "core/mutex.h"

namespace kiln::testing {

enum class FileOp : uint8_t {
  kOpen,
  kRead,
  kWrite,
  kSync,
  kTruncate,
  kSize,
  kRename,
  kRemove,
  kCreateDir,
  kSyncDir,
  kListDir,
  kFileSize,
};
inline constexpr size_t kFileOpCount = 12;
std::string_view FileOpName(FileOp op);

class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(Env& base = Env::Default());
  ~FaultInjectionEnv() override;

  // Makes the next `times` operations `op` whose path contains `path_part` fail with errno
  // `err` (times < 0: until ClearFaults). A failing kWrite first writes `partial_bytes` of
  // its data.
  void InjectFault(FileOp op, int err, std::string path_part = "", int times = -1,
                   size_t partial_bytes = 0);
  void ClearFaults();
  // Operations `op` attempted so far, failed ones included; with `path_part`, only those on
  // paths containing it.
  uint64_t count(FileOp op) const;
  uint64_t count(FileOp op, std::string_view path_part) const;
  // Waits until count(op, path_part) >= n (true) or `timeout` passes (false).
  bool WaitForCount(FileOp op, uint64_t n, std::chrono::milliseconds timeout,
                    std::string_view path_part = "");
  // Makes every sync (file or directory) take at least `d`, like a slow disk.
  void SetSyncDelay(std::chrono::microseconds d);

  // Starts remembering unsynced writes and directory operations (see above).
  void StartTracking();
  // After `n` more mutating operations (write, sync, truncate, rename, remove, mkdir,
  // directory sync, creating open) every operation fails with EIO.
  void CrashAfter(int64_t n);
  bool crashed() const;
  // Applies the power cut: each unsynced sector is kept with probability `keep` or reverted
  // to its content at the last sync, then a random suffix of the unsynced creations and
  // renames is undone. Every File opened through this env must be closed first. Afterwards
  // the env works normally again and tracking stops.
  void SimulatePowerLoss(uint64_t seed, double keep = 0.5);

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status CreateDir(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;  // as kOpen

  // What a tracked file looks like since its last sync. Internal, shared with the files.
  struct Node {
    bool dirty = false;
    uint64_t synced_size = 0;
    std::map<uint64_t, std::vector<std::byte>> sectors;  // sector -> content at last sync
  };

 private:
  friend class FaultFile;
  struct Rule {
    FileOp op;
    int err;
    std::string path_part;
    int times;
    size_t partial_bytes;
  };
  struct DirOp {
    bool rename = false;                             // else a creation
    std::string from;                                // renames only
    std::string to;                                  // the created or renamed-to path
    std::optional<std::vector<std::byte>> replaced;  // content of `to` a rename replaced
  };

  // Counts `op` and returns the errno it must fail with, or 0. Sets `partial` for writes.
  int Check(FileOp op, std::string_view path, size_t* partial = nullptr);
  // `mutating`: counts toward CrashAfter whatever `op` is (a creating open).
  int CheckLocked(FileOp op, std::string_view path, size_t* partial, bool mutating = false)
      KILN_REQUIRES(mu_);
  std::shared_ptr<Node> NodeLocked(const std::string& path) KILN_REQUIRES(mu_);
  Status WriteTracked(File& base, const std::shared_ptr<Node>& node, uint64_t offset,
                      std::span<const std::byte> data);
  Status SyncTracked(File& base, const std::shared_ptr<Node>& node);
  bool tracking() const { return tracking_.load(std::memory_order_acquire); }

  Env& base_;
  std::array<std::atomic<uint64_t>, kFileOpCount> counts_{};
  mutable Mutex count_mu_;
  CondVar count_cv_;
  std::vector<std::pair<FileOp, std::string>> history_ KILN_GUARDED_BY(count_mu_);
  std::atomic<int64_t> sync_delay_us_{0};
  std::atomic<bool> tracking_{false};
  mutable Mutex mu_;
  std::vector<Rule> rules_ KILN_GUARDED_BY(mu_);
  int64_t crash_countdown_ KILN_GUARDED_BY(mu_) = -1;
  bool crashed_ KILN_GUARDED_BY(mu_) = false;
  std::map<std::string, std::shared_ptr<Node>> nodes_ KILN_GUARDED_BY(mu_);
  std::vector<DirOp> dir_ops_ KILN_GUARDED_BY(mu_);
  // Serializes tracked writes and syncs with their bookkeeping.
  Mutex io_mu_;
};

}  // namespace kiln::testing
