#include "core/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "fmt/format.h"

namespace kiln {
namespace {

const char* ErrnoName(int err) {
  switch (err) {
    case ENOSPC:
      return "ENOSPC";
    case EDQUOT:
      return "EDQUOT";
    case EFBIG:
      return "EFBIG";
    case EMFILE:
      return "EMFILE";
    case ENFILE:
      return "ENFILE";
    case ENOMEM:
      return "ENOMEM";
    case EACCES:
      return "EACCES";
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case ENOTDIR:
      return "ENOTDIR";
    case EEXIST:
      return "EEXIST";
    case EROFS:
      return "EROFS";
    case EIO:
      return "EIO";
    case EISDIR:
      return "EISDIR";
    case EINVAL:
      return "EINVAL";
    default:
      return nullptr;
  }
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }

  Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> out) const override {
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, "read", path_);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Status WriteAt(uint64_t offset, std::span<const std::byte> data) override {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n =
          ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, "write", path_);
      }
      done += static_cast<size_t>(n);
    }
    return OkStatus();
  }

  Status WriteAtV(uint64_t offset, std::span<const std::span<const std::byte>> parts) override {
    std::array<iovec, 64> iov;
    size_t next = 0;  // the first part not (wholly) written
    size_t skip = 0;  // bytes of parts[next] already written
    while (next < parts.size()) {
      size_t n_iov = 0;
      for (size_t i = next; i < parts.size() && n_iov < iov.size(); ++i) {
        const size_t from = i == next ? skip : 0;
        if (parts[i].size() == from) continue;
        iov[n_iov++] =
            iovec{const_cast<std::byte*>(parts[i].data() + from), parts[i].size() - from};
      }
      if (n_iov == 0) break;
      const ssize_t n =
          ::pwritev(fd_, iov.data(), static_cast<int>(n_iov), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, "write", path_);
      }
      offset += static_cast<uint64_t>(n);
      size_t left = static_cast<size_t>(n);
      while (next < parts.size() && left >= parts[next].size() - skip) {
        left -= parts[next].size() - skip;
        skip = 0;
        ++next;
      }
      skip += left;
    }
    return OkStatus();
  }

  void StartWriteback(uint64_t offset, uint64_t n) override {
#if defined(__linux__)
    ::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(n),
                      SYNC_FILE_RANGE_WRITE);
#else
    (void)offset;
    (void)n;
#endif
  }

  Status Sync() override {
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) return ErrnoToStatus(errno, "fdatasync", path_);
    }
    return OkStatus();
  }

  Status Truncate(uint64_t size) override {
    while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) return ErrnoToStatus(errno, "ftruncate", path_);
    }
    return OkStatus();
  }

  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoToStatus(errno, "stat", path_);
    return static_cast<uint64_t>(st.st_size);
  }

  const std::string& path() const override { return path_; }

 private:
  const int fd_;
  const std::string path_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing the descriptor releases the lock

 private:
  const int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead:
        flags |= O_RDONLY;
        break;
      case OpenMode::kReadWrite:
        flags |= O_RDWR;
        break;
      case OpenMode::kCreate:
        flags |= O_RDWR | O_CREAT;
        break;
      case OpenMode::kCreateNew:
        flags |= O_RDWR | O_CREAT | O_EXCL;
        break;
    }
    int fd;
    do {
      fd = ::open(path.c_str(), flags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return ErrnoToStatus(errno, "open", path);
    return std::unique_ptr<File>(std::make_unique<PosixFile>(fd, path));
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoToStatus(errno, "rename", from + " -> " + to);
    }
    return OkStatus();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoToStatus(errno, "unlink", path);
    return OkStatus();
  }

  Status CreateDir(const std::string& path) override {
    if (path.empty()) return InvalidArgumentError("mkdir: empty path");
    if (::mkdir(path.c_str(), 0755) == 0) return OkStatus();
    int err = errno;
    if (err == ENOENT) {
      // Create the parent first.
      const size_t slash = path.find_last_of('/', path.size() > 1 ? path.size() - 2 : 0);
      if (slash != std::string::npos && slash > 0) {
        KILN_RETURN_IF_ERROR(CreateDir(path.substr(0, slash)));
        if (::mkdir(path.c_str(), 0755) == 0) return OkStatus();
        err = errno;
      }
    }
    if (err == EEXIST) {
      struct stat st;
      if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return OkStatus();
      return ErrnoToStatus(ENOTDIR, "mkdir", path);
    }
    return ErrnoToStatus(err, "mkdir", path);
  }

  Status SyncDir(const std::string& path) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return ErrnoToStatus(errno, "open", path);
    Status s;
    while (::fsync(fd) != 0) {
      if (errno != EINTR) {
        s = ErrnoToStatus(errno, "fsync", path);
        break;
      }
    }
    ::close(fd);
    return s;
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return ErrnoToStatus(errno, "opendir", path);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      const std::string_view name(e->d_name);
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoToStatus(err, "readdir", path);
    return names;
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat", path);
    return static_cast<uint64_t>(st.st_size);
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return ErrnoToStatus(errno, "open", path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return UnavailableError(
            fmt::format("lock {}: held by another user of the directory", path));
      }
      return ErrnoToStatus(err, "flock", path);
    }
    return std::unique_ptr<FileLock>(std::make_unique<PosixFileLock>(fd));
  }
};

}  // namespace

Status File::WriteAtV(uint64_t offset, std::span<const std::span<const std::byte>> parts) {
  for (const std::span<const std::byte>& part : parts) {
    KILN_RETURN_IF_ERROR(WriteAt(offset, part));
    offset += part.size();
  }
  return OkStatus();
}

Env& Env::Default() {
  static PosixEnv env;  // stateless, so usable even during static destruction
  return env;
}

Status ErrnoToStatus(int err, std::string_view op, std::string_view path) {
  std::string msg = fmt::format("{} {}: {}", op, path, std::generic_category().message(err));
  if (const char* name = ErrnoName(err)) {
    msg += fmt::format(" ({})", name);
  } else {
    msg += fmt::format(" (errno {})", err);
  }
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return ResourceExhaustedError(std::move(msg));
    case EACCES:
    case EPERM:
      return PermissionDeniedError(std::move(msg));
    case ENOENT:
    case ENOTDIR:
      return NotFoundError(std::move(msg));
    case EEXIST:
      return AlreadyExistsError(std::move(msg));
    default:
      return UnavailableError(std::move(msg));
  }
}

}  // namespace kiln
