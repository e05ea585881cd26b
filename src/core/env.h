#pragma once

// Env: the seam through which all of Junction's file I/O goes, so that storage
// tests can crash, tear and fail the "disk" without a real one (as leveldb's Env).
//
// Three implementations obey one contract (env_test.cc runs it against each):
//   PosixEnv()           the real file system.
//   NewMemEnv()          in memory; nothing is ever lost.
//   FaultInjectionEnv    in memory, with a durability model, simulated crashes and
//                        injected errors (core/fault_injection_env.h).
//
// Durability (what survives power loss, or FaultInjectionEnv::SimulateCrash):
//   * A file's bytes: those appended before a WritableFile::Sync() that returned OK,
//     and the size set by Truncate().
//   * A directory's names (files and directories created, renamed or removed in it):
//     only after SyncDir(that directory). A new file therefore needs Sync() of the file
//     AND SyncDir() of its parent; a rename across directories needs SyncDir of both.
//   WriteFileAtomically() does all of this for small metadata files.
//
// Errors: every failure is a Status made by ErrnoToStatus(errno, "<what> <path>"), the
// same errno and wording in every implementation (a missing file is NotFound, a full
// disk ResourceExhausted, EIO Unavailable), so messages always name the path.
//
// Paths are std::filesystem::path. The in-memory envs read a relative path as relative
// to their root "/" and reject "..".

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "junction/result.h"
#include "junction/status.h"

namespace junction {

// A file open for appending. Nothing is buffered in user space: each Append hands its
// bytes to the OS at once (a RandomAccessFile on the same file sees them), but they are
// durable only once Sync() returns OK.
//
// After an Append or Sync fails the handle is broken: every later Append/Sync returns
// FailedPrecondition. A failed append may have stored a prefix of its bytes (Size()
// counts it), and after a failed fsync Linux may have dropped the dirty pages, so a retry
// would write after garbage or trust a sync that never happened. To go on: Close,
// Truncate the file to the last size known durable, reopen with NewAppendableFile.
//
// Thread: one thread at a time. REQUIRES: the Env outlives the handle; at most one
// WritableFile per file at a time.
class WritableFile {
 public:
  // Closes the file if still open; an error of that close is lost.
  virtual ~WritableFile() = default;

  // Appends the pieces in order with one system call where possible (writev), so a
  // group commit of many batches costs one write.
  virtual Status AppendV(std::span<const std::span<const std::byte>> pieces) = 0;
  Status Append(std::span<const std::byte> data);
  Status Append(std::string_view data);

  // fdatasync: every byte appended so far is durable when this returns OK. The file's
  // name is not; a new file also needs Env::SyncDir(parent).
  virtual Status Sync() = 0;

  // Releases the file without syncing. Later Append/Sync fail; a second Close is OK.
  virtual Status Close() = 0;

  // The file's size: its size at open plus everything appended through this handle,
  // including a prefix stored by a failed append.
  virtual std::uint64_t Size() const = 0;
};

// A file open for positional reads. Reads see bytes appended after the open (the log
// reads its active segment while appending to it) and keep working after the path is
// renamed or removed, as an open POSIX file does.
//
// Thread-safe: any number of threads may Read at once. REQUIRES: the Env outlives it.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;

  // Reads up to out.size() bytes at `offset` into `out` and returns how many it read:
  // fewer only at the end of the file, 0 when offset >= Size().
  virtual Result<std::size_t> Read(std::uint64_t offset, std::span<std::byte> out) const = 0;
  virtual Result<std::uint64_t> Size() const = 0;
};

// An exclusive lock on a file, held until this object is destroyed. Thread: any.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

// The file system. Thread-safe: every method may be called from any thread at once.
class Env {
 public:
  virtual ~Env() = default;

  // Creates `path`, or truncates it to empty if it exists. REQUIRES: the parent exists.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::filesystem::path& path) = 0;
  // Opens `path` for appending at its end, creating it empty if missing.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::filesystem::path& path) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::filesystem::path& path) = 0;

  // True if a file or directory exists at `path` (false also when that cannot be told).
  virtual bool FileExists(const std::filesystem::path& path) = 0;
  // The size of a regular file (EISDIR for a directory).
  virtual Result<std::uint64_t> GetFileSize(const std::filesystem::path& path) = 0;
  // The names (not paths) in `dir`, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> GetChildren(const std::filesystem::path& dir) = 0;

  // Creates one directory; AlreadyExists if `path` exists. REQUIRES: the parent exists.
  virtual Status CreateDir(const std::filesystem::path& path) = 0;
  // mkdir -p: creates missing parents too; OK if `path` already is a directory.
  virtual Status CreateDirs(const std::filesystem::path& path) = 0;
  virtual Status RemoveFile(const std::filesystem::path& path) = 0;
  // REQUIRES: `path` is an empty directory (ENOTEMPTY otherwise).
  virtual Status RemoveDir(const std::filesystem::path& path) = 0;
  // Atomically renames `from` to `to`, replacing a file at `to`: a reader sees the old
  // or the new file, never neither. Durable after SyncDir of both parents.
  virtual Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  // Cuts (or extends with zeros) a file to `size` bytes; durable when it returns OK.
  // Recovery uses it to drop a torn tail. REQUIRES: no WritableFile is open on `path`.
  virtual Status Truncate(const std::filesystem::path& path, std::uint64_t size) = 0;
  // Makes every create, rename and removal done so far in `dir` durable (fsync of the
  // directory).
  virtual Status SyncDir(const std::filesystem::path& dir) = 0;

  // Takes an exclusive lock on `path` (flock(LOCK_EX | LOCK_NB)), creating the file if
  // missing. While it is held, another LockFile of the same path, from this process or
  // another, fails at once with Unavailable naming the path. A crashed process's locks
  // are released by the OS.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::filesystem::path& path) = 0;
};

// An Env that forwards every call to `target`, for Envs that change a few
// (counting, splitting, injecting): derive and override only those.
// `target` must outlive the wrapper; thread-safe when it is.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env& target) : target_(target) {}
  Env& target() const { return target_; }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::filesystem::path& path) override {
    return target_.NewWritableFile(path);
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::filesystem::path& path) override {
    return target_.NewAppendableFile(path);
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::filesystem::path& path) override {
    return target_.NewRandomAccessFile(path);
  }
  bool FileExists(const std::filesystem::path& path) override { return target_.FileExists(path); }
  Result<std::uint64_t> GetFileSize(const std::filesystem::path& path) override {
    return target_.GetFileSize(path);
  }
  Result<std::vector<std::string>> GetChildren(const std::filesystem::path& dir) override {
    return target_.GetChildren(dir);
  }
  Status CreateDir(const std::filesystem::path& path) override { return target_.CreateDir(path); }
  Status CreateDirs(const std::filesystem::path& path) override { return target_.CreateDirs(path); }
  Status RemoveFile(const std::filesystem::path& path) override { return target_.RemoveFile(path); }
  Status RemoveDir(const std::filesystem::path& path) override { return target_.RemoveDir(path); }
  Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to) override {
    return target_.RenameFile(from, to);
  }
  Status Truncate(const std::filesystem::path& path, std::uint64_t size) override {
    return target_.Truncate(path, size);
  }
  Status SyncDir(const std::filesystem::path& dir) override { return target_.SyncDir(dir); }
  Result<std::unique_ptr<FileLock>> LockFile(const std::filesystem::path& path) override {
    return target_.LockFile(path);
  }

 private:
  Env& target_;
};

// The real file system. Lives forever; thread-safe.
Env& PosixEnv();

// A fresh, empty in-memory file system; every write is immediately "durable" (nothing
// ever crashes it). Handles must not outlive it.
std::unique_ptr<Env> NewMemEnv();

// The whole content of the file at `path`.
Result<std::string> ReadFileToString(Env& env, const std::filesystem::path& path);

// mkdir -p whose new directories survive a crash: each directory it creates is
// made durable in its parent (SyncDir) before the next is created.
Status CreateDirsDurably(Env& env, const std::filesystem::path& path);

// Replaces the file at `path` with `contents` so that a crash at any point leaves either
// the old or the new contents, never a mix: writes "<path>.tmp", syncs and closes it,
// renames it over `path`, syncs the parent directory. On failure `path` is unchanged or
// (if only the final SyncDir failed) replaced but perhaps not durably.
// REQUIRES: no other writer of `path` at the same time.
Status WriteFileAtomically(Env& env, const std::filesystem::path& path, std::string_view contents);

}  // namespace junction
