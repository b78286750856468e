#pragma once
// Env: the file-system seam of storage code (LevelDB/RocksDB style). Library code reaches
// files only through an Env, so tests can inject failures (core/testing/
// fault_injection_env.h) and simulate power cuts. Env::Default() is POSIX.
//
// Errors carry the operation, the path and the errno text, e.g.
//   "write /var/lib/kiln/queue/seg-00000000000000000001.log: No space left on device (ENOSPC)".
// errno -> StatusCode:
//   ENOSPC, EDQUOT, EFBIG, EMFILE, ENFILE, ENOMEM  -> ResourceExhausted (space or handles ran out)
//   EACCES, EPERM                                  -> PermissionDenied (fix the permissions)
//   ENOENT, ENOTDIR                                -> NotFound
//   EEXIST                                         -> AlreadyExists
//   EROFS, EIO and everything else                 -> Unavailable (the storage failed or was
//                                                    remounted read-only; may come back)
// Thread-safe: an Env and its Files may be used from several threads at once (positional I/O).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kiln {

// An open file. Reads and writes are positional (pread/pwrite), so a File has no cursor and
// may be shared by threads. Closed on destruction.
class File {
 public:
  virtual ~File() = default;

  // Reads up to out.size() bytes at `offset`; fewer only at the end of the file.
  // Returns how many were read.
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) const = 0;
  // Writes all of `data` at `offset`, growing the file when needed. On error some prefix
  // of `data` may have been written.
  virtual Status WriteAt(uint64_t offset, std::span<const std::byte> data) = 0;
  // Writes `parts` back to back from `offset`, as WriteAt of their concatenation would, in as
  // few system calls as the system allows (pwritev). The default calls WriteAt per part.
  virtual Status WriteAtV(uint64_t offset, std::span<const std::span<const std::byte>> parts);
  // fdatasync: everything written so far (and the size) is on stable storage.
  virtual Status Sync() = 0;
  // Starts writing [offset, offset + n) to storage without waiting (sync_file_range), so that
  // a later Sync has less to do. Promises nothing about durability. The default does nothing.
  virtual void StartWriteback(uint64_t offset, uint64_t n) {
    (void)offset;
    (void)n;
  }
  // Sets the size (ftruncate).
  virtual Status Truncate(uint64_t size) = 0;
  virtual Result<uint64_t> Size() const = 0;
  virtual const std::string& path() const = 0;
};

// An advisory lock on a file (Env::LockFile), released on destruction or when the process
// ends.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

enum class OpenMode {
  kRead,       // existing file, read only
  kReadWrite,  // existing file
  kCreate,     // read-write, created (empty) when missing
  kCreateNew,  // read-write, must not exist (AlreadyExists)
};

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX implementation. Stateless; lives for the whole program.
  static Env& Default();

  virtual Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) = 0;
  // Atomically renames `from` to `to`, replacing `to` if it exists. Durable only after
  // SyncDir of the directories involved.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Remove(const std::string& path) = 0;
  // Creates the directory and missing parents; OK when it exists.
  virtual Status CreateDir(const std::string& path) = 0;
  // fsync of a directory: makes creations, renames and removals in it durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // Names of the entries of a directory, without "." and "..", in no particular order.
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Creates `path` if needed and takes an exclusive lock on it (flock), so two processes
  // (or two owners in one process) never use the same data. Errors: Unavailable when it is
  // held already.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// The Status for errno `err` of operation `op` ("open", "write", ...) on `path`, mapped as
// described at the top of this file.
Status ErrnoToStatus(int err, std::string_view op, std::string_view path);

}  // namespace kiln
