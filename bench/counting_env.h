#pragma once

// CountingEnv: an Env that forwards every call to another Env and counts the
// writes, bytes and fsyncs that reach segment files (*.log), so a benchmark
// can tell how many fdatasyncs a Log issued and how many bytes each covered
// without looking inside the Log.
//
// Thread-safe like the Env it wraps: the counters are atomics, read with
// Snapshot() from any thread. REQUIRES: `base` outlives the CountingEnv, and
// the CountingEnv outlives every file it hands out.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "core/env.h"

namespace junction::bench {

struct IoCounters {
  std::uint64_t segment_writes = 0;  // AppendV calls on *.log files
  std::uint64_t segment_bytes = 0;   // bytes those calls handed to the OS
  std::uint64_t segment_syncs = 0;   // Sync (fdatasync) calls on *.log files
  std::uint64_t other_syncs = 0;     // Sync of any other file, and SyncDir

  // The counts of `*this` minus those of `earlier`.
  IoCounters Since(const IoCounters& earlier) const;
};

class CountingEnv final : public EnvWrapper {
 public:
  explicit CountingEnv(Env& base) : EnvWrapper(base) {}

  IoCounters Snapshot() const;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::filesystem::path& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::filesystem::path& path) override;
  Status SyncDir(const std::filesystem::path& dir) override;

  struct Counters {
    std::atomic<std::uint64_t> segment_writes{0};
    std::atomic<std::uint64_t> segment_bytes{0};
    std::atomic<std::uint64_t> segment_syncs{0};
    std::atomic<std::uint64_t> other_syncs{0};
  };

 private:
  std::unique_ptr<WritableFile> Wrap(std::unique_ptr<WritableFile> file,
                                     const std::filesystem::path& path);

  Counters counters_;
};

}  // namespace junction::bench
