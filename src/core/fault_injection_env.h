#pragma once

// FaultInjectionEnv: an in-memory Env that models what a disk makes durable, so that
// storage tests can crash it at any point, tear its unsynced writes and fail its
// operations with chosen errnos, reproducibly and without a real disk.
//
// The durability model (see core/env.h for the contract it enforces):
//   * Per file: its bytes, and how many of them are durable. Sync() makes all current
//     bytes durable; Truncate() is durable at once. A failed Sync() (injected) marks the
//     unsynced tail as lost: even a later successful Sync cannot save it, as on Linux
//     where a failed fsync drops the dirty pages (truncating below it clears the mark).
//   * Per directory: its entries as of its last SyncDir(), plus the ordered list of
//     namespace changes since (create, rename, remove, mkdir; a rename within one
//     directory is one change). A rename across directories is a change in each.
//
// NewMemEnv() returns one of these that nobody crashes. The file system itself is in
// mem_env.cc, the crash model and the faults in fault_injection_env.cc.
//
// Thread-safe: one mutex guards the whole file system, so any thread may use the env
// and its handles, and SimulateCrash may race with writers. Handles must not outlive
// the env.

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/env.h"

namespace junction {

enum class CrashMode {
  kDropUnsynced,  // only durable bytes and durable directory entries survive
  // Per file, a random-length prefix of the unsynced bytes survives; per directory, a
  // random prefix of the unsynced namespace changes survives. Chosen by the seed.
  kTearUnsynced,
  // As kTearUnsynced, and the last 1..8 surviving unsynced bytes of a file are garbled
  // (a torn sector). Synced bytes are never touched.
  kTearAndGarbleUnsynced,
  kKeepUnsynced,  // everything survives: the process died, the machine did not
};

enum class FaultOp {
  kWrite,  // WritableFile::Append / AppendV
  kSync,   // WritableFile::Sync, Env::SyncDir
  kAny,    // any mutating call: the above, opening for write, mkdir, rename, remove,
           // truncate (not LockFile)
};

struct FaultOptions {
  // The failing op and every later op of its kind fail, as on a full disk.
  bool sticky = false;
  // A failing write still stores the first half of its bytes (unsynced), as a real
  // short write before ENOSPC does.
  bool partial_write = false;
};

class FaultInjectionEnv final : public Env {
 public:
  FaultInjectionEnv();
  ~FaultInjectionEnv() override;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::filesystem::path& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::filesystem::path& path) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::filesystem::path& path) override;
  bool FileExists(const std::filesystem::path& path) override;
  Result<std::uint64_t> GetFileSize(const std::filesystem::path& path) override;
  Result<std::vector<std::string>> GetChildren(const std::filesystem::path& dir) override;
  Status CreateDir(const std::filesystem::path& path) override;
  Status CreateDirs(const std::filesystem::path& path) override;
  Status RemoveFile(const std::filesystem::path& path) override;
  Status RemoveDir(const std::filesystem::path& path) override;
  Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Status Truncate(const std::filesystem::path& path, std::uint64_t size) override;
  Status SyncDir(const std::filesystem::path& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::filesystem::path& path) override;

  // Power loss and restart: the file system becomes what `mode` lets survive (random
  // choices drawn from `seed`, so a run is reproducible), all locks are released, and
  // every handle opened before returns FailedPrecondition ("handle opened before
  // simulated crash") on any use. Armed faults stay armed (a full disk stays full).
  void SimulateCrash(CrashMode mode, std::uint64_t seed = 0);

  // Arms one fault, replacing any armed before: the `nth` op of kind `op` from now
  // (1 = the next) fails with ErrnoToStatus(error_number, ...). REQUIRES: nth >= 1.
  void FailNth(FaultOp op, int nth, int error_number, FaultOptions options = {});
  void ClearFaults();

  // Calls made so far (failed ones included), to enumerate "fail the k-th write of this
  // workload": writes() counts appends, syncs() counts Sync and SyncDir, mutations()
  // counts every op that kAny matches.
  std::uint64_t writes() const;
  std::uint64_t syncs() const;
  std::uint64_t mutations() const;

 private:
  struct Node;
  using NodePtr = std::shared_ptr<Node>;
  struct Change {
    std::string name;
    NodePtr node;  // null: the name was removed
  };
  // A file or a directory of the in-memory file system.
  struct Node {
    static constexpr std::uint64_t kNoLoss = std::numeric_limits<std::uint64_t>::max();
    using Entries = std::map<std::string, NodePtr>;

    static NodePtr MakeDir();
    static void Apply(Entries& entries, const std::vector<Change>& changes);

    bool is_dir = false;
    // A file: data[0, min(synced, lost_from)) is durable.
    std::string data;
    std::uint64_t synced = 0;
    std::uint64_t lost_from = kNoLoss;  // a failed Sync lost data[lost_from, ...)
    // A directory.
    Entries entries;                           // as the running system sees them
    Entries durable;                           // as of the last SyncDir
    std::vector<std::vector<Change>> pending;  // namespace changes since, oldest first
  };
  struct Resolved {
    NodePtr dir;
    std::string name;
  };
  struct Armed {
    FaultOp op;
    int countdown;
    int error_number;
    FaultOptions options;
    bool fired = false;
  };
  struct Injected {
    int error_number = 0;  // 0: the op goes ahead
    bool partial_write = false;
  };
  class Writable;
  class Reader;
  class Lock;

  // All below: REQUIRES mutex_ held.
  // `context` ("open /a/b") prefixes the error.
  Result<NodePtr> Lookup(const std::filesystem::path& path, const std::string& context) const;
  Result<Resolved> LookupParent(const std::filesystem::path& path,
                                const std::string& context) const;
  Result<std::unique_ptr<WritableFile>> OpenWritable(const std::filesystem::path& path,
                                                     bool truncate);
  // Applies `changes` to `dir` and logs them as one not yet durable namespace change.
  static void Record(Node& dir, std::vector<Change> changes);
  static bool Contains(const Node& dir, const Node* node);
  Injected CountOp(FaultOp kind);
  // CountOp for an op that has no partial effect: its injected error, or OK.
  Status InjectedError(FaultOp kind, const std::string& context);
  Status CheckHandle(std::uint64_t generation, std::string_view what,
                     const std::filesystem::path& path) const;
  static void RecoverDir(Node& dir, CrashMode mode, std::mt19937_64& rng,
                         std::set<const Node*>& seen);
  static void RecoverFile(Node& file, CrashMode mode, std::mt19937_64& rng);

  mutable std::mutex mutex_;
  NodePtr root_;                  // guarded by mutex_
  std::uint64_t generation_ = 0;  // guarded by mutex_; bumped by each crash
  std::set<std::string> locks_;   // guarded by mutex_; normalized paths
  std::optional<Armed> fault_;    // guarded by mutex_
  std::uint64_t writes_ = 0;      // guarded by mutex_
  std::uint64_t syncs_ = 0;       // guarded by mutex_
  std::uint64_t mutations_ = 0;   // guarded by mutex_
};

}  // namespace junction
