// PosixEnv: the Env on the real file system. Every descriptor is opened O_CLOEXEC;
// system calls are retried on EINTR and short writes/reads are continued.

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <utility>

#include "core/env.h"

namespace junction {
namespace {

namespace fs = std::filesystem;

// Calls `call` until it does not fail with EINTR.
template <typename Call>
auto RetryOnEintr(Call call) {
  decltype(call()) result;
  do {
    result = call();
  } while (result == -1 && errno == EINTR);
  return result;
}

Status Errno(std::string_view what, const fs::path& path) {
  return ErrnoToStatus(errno, std::string(what) + " " + path.string());
}

Result<int> Open(const fs::path& path, int flags, std::string_view what = "open") {
  int fd = RetryOnEintr([&] { return ::open(path.c_str(), flags | O_CLOEXEC, 0644); });
  if (fd < 0) return Errno(what, path);
  return fd;
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, fs::path path, std::uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  ~PosixWritableFile() override { Close().IgnoreError(); }

  Status AppendV(std::span<const std::span<const std::byte>> pieces) override {
    JUNCTION_RETURN_IF_ERROR(Usable("append"));
    std::vector<iovec> iov;
    iov.reserve(pieces.size());
    for (auto piece : pieces) {
      if (!piece.empty()) iov.push_back({const_cast<std::byte*>(piece.data()), piece.size()});
    }
    std::size_t next = 0;
    while (next < iov.size()) {
      int count = static_cast<int>(std::min<std::size_t>(iov.size() - next, IOV_MAX));
      ssize_t n = RetryOnEintr([&] { return ::writev(fd_, &iov[next], count); });
      if (n <= 0) {
        if (n == 0) errno = EIO;  // no progress on a regular file: never loop forever
        error_ = Errno("append", path_);
        return error_;
      }
      size_ += static_cast<std::uint64_t>(n);
      // Skip what was written; a short write leaves a partial piece to resume from.
      auto written = static_cast<std::size_t>(n);
      while (next < iov.size() && written >= iov[next].iov_len) written -= iov[next++].iov_len;
      if (written > 0) {
        iov[next].iov_base = static_cast<char*>(iov[next].iov_base) + written;
        iov[next].iov_len -= written;
      }
    }
    return OkStatus();
  }

  Status Sync() override {
    JUNCTION_RETURN_IF_ERROR(Usable("sync"));
    if (RetryOnEintr([&] { return ::fdatasync(fd_); }) != 0) {
      error_ = Errno("fdatasync", path_);
      return error_;
    }
    return OkStatus();
  }

  Status Close() override {
    if (fd_ < 0) return OkStatus();
    int rc = ::close(fd_);  // never retried: Linux frees the descriptor even on EINTR
    fd_ = -1;
    return rc == 0 ? OkStatus() : Errno("close", path_);
  }

  std::uint64_t Size() const override { return size_; }

 private:
  Status Usable(std::string_view what) const {
    if (fd_ < 0)
      return FailedPreconditionError(std::string(what) + " " + path_.string() + ": file is closed");
    if (!error_.ok()) {
      return FailedPreconditionError(std::string(what) + " " + path_.string() +
                                     ": handle broken by an earlier error: " + error_.message());
    }
    return OkStatus();
  }

  int fd_;
  fs::path path_;
  std::uint64_t size_;
  Status error_;  // the first failed Append or Sync
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(int fd, fs::path path) : fd_(fd), path_(std::move(path)) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  Result<std::size_t> Read(std::uint64_t offset, std::span<std::byte> out) const override {
    constexpr auto kMaxOffset = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
    std::size_t done = 0;
    while (done < out.size() && offset <= kMaxOffset - done) {
      ssize_t n = RetryOnEintr([&] {
        return ::pread(fd_, out.data() + done, out.size() - done,
                       static_cast<off_t>(offset + done));
      });
      if (n < 0) return Errno("read", path_);
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  Result<std::uint64_t> Size() const override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Errno("stat", path_);
    return static_cast<std::uint64_t>(st.st_size);
  }

 private:
  int fd_;
  fs::path path_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

class PosixEnvImpl final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const fs::path& path) override {
    JUNCTION_ASSIGN_OR_RETURN(int fd, Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND));
    return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(fd, path, 0));
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const fs::path& path) override {
    JUNCTION_ASSIGN_OR_RETURN(int fd, Open(path, O_WRONLY | O_CREAT | O_APPEND));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      Status status = Errno("stat", path);
      ::close(fd);
      return status;
    }
    auto size = static_cast<std::uint64_t>(st.st_size);
    return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(fd, path, size));
  }

  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const fs::path& path) override {
    JUNCTION_ASSIGN_OR_RETURN(int fd, Open(path, O_RDONLY));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
      int error_number = S_ISDIR(st.st_mode) ? EISDIR : errno;
      ::close(fd);
      return ErrnoToStatus(error_number, "open " + path.string());
    }
    return std::unique_ptr<RandomAccessFile>(std::make_unique<PosixRandomAccessFile>(fd, path));
  }

  bool FileExists(const fs::path& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<std::uint64_t> GetFileSize(const fs::path& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Errno("stat", path);
    if (S_ISDIR(st.st_mode)) return ErrnoToStatus(EISDIR, "stat " + path.string());
    return static_cast<std::uint64_t>(st.st_size);
  }

  Result<std::vector<std::string>> GetChildren(const fs::path& dir) override {
    DIR* stream = ::opendir(dir.c_str());  // glibc opens it O_CLOEXEC
    if (stream == nullptr) return Errno("opendir", dir);
    std::vector<std::string> names;
    while (true) {
      errno = 0;
      const dirent* entry = ::readdir(stream);
      if (entry == nullptr) break;
      std::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    int error_number = errno;
    ::closedir(stream);
    if (error_number != 0) return ErrnoToStatus(error_number, "readdir " + dir.string());
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDir(const fs::path& path) override {
    if (::mkdir(path.c_str(), 0755) != 0) return Errno("mkdir", path);
    return OkStatus();
  }

  Status CreateDirs(const fs::path& path) override {
    fs::path prefix;
    for (const fs::path& part : path) {
      prefix /= part;
      if (::mkdir(prefix.c_str(), 0755) == 0) continue;
      if (errno != EEXIST) return Errno("mkdir", prefix);
      struct stat st {};
      if (::stat(prefix.c_str(), &st) != 0) return Errno("mkdir", prefix);
      if (!S_ISDIR(st.st_mode)) return ErrnoToStatus(ENOTDIR, "mkdir " + prefix.string());
    }
    return OkStatus();
  }

  Status RemoveFile(const fs::path& path) override {
    if (::unlink(path.c_str()) != 0) return Errno("unlink", path);
    return OkStatus();
  }

  Status RemoveDir(const fs::path& path) override {
    if (::rmdir(path.c_str()) != 0) return Errno("rmdir", path);
    return OkStatus();
  }

  Status RenameFile(const fs::path& from, const fs::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoToStatus(errno, "rename " + from.string() + " to " + to.string());
    }
    return OkStatus();
  }

  Status Truncate(const fs::path& path, std::uint64_t size) override {
    JUNCTION_ASSIGN_OR_RETURN(int fd, Open(path, O_WRONLY, "truncate"));
    Status status;
    if (RetryOnEintr([&] { return ::ftruncate(fd, static_cast<off_t>(size)); }) != 0 ||
        RetryOnEintr([&] { return ::fsync(fd); }) != 0) {
      status = Errno("truncate", path);
    }
    if (::close(fd) != 0 && status.ok()) status = Errno("truncate", path);
    return status;
  }

  Status SyncDir(const fs::path& dir) override {
    JUNCTION_ASSIGN_OR_RETURN(int fd, Open(dir, O_RDONLY | O_DIRECTORY, "fsync dir"));
    Status status;
    if (RetryOnEintr([&] { return ::fsync(fd); }) != 0) status = Errno("fsync dir", dir);
    ::close(fd);
    return status;
  }

  Result<std::unique_ptr<FileLock>> LockFile(const fs::path& path) override {
    JUNCTION_ASSIGN_OR_RETURN(int fd, Open(path, O_RDWR | O_CREAT, "lock"));
    // flock locks belong to the open file description, so a second open of the same path
    // conflicts even within this process.
    if (RetryOnEintr([&] { return ::flock(fd, LOCK_EX | LOCK_NB); }) != 0) {
      int error_number = errno;
      ::close(fd);
      if (error_number == EWOULDBLOCK) {
        return UnavailableError("lock " + path.string() + ": already held by another owner");
      }
      return ErrnoToStatus(error_number, "lock " + path.string());
    }
    return std::unique_ptr<FileLock>(std::make_unique<PosixFileLock>(fd));
  }
};

}  // namespace

Env& PosixEnv() {
  static PosixEnvImpl* env = new PosixEnvImpl();  // never destroyed: usable during exit
  return *env;
}

}  // namespace junction
