#pragma once

// The kernels of the log benchmarks (bench/README.md): a plain write() +
// fdatasync() loop (the physical floor), a plain pread loop, and a harness
// that drives a storage::Log the way a shard does. `junction bench log`
// (log_suite.h) and the Google Benchmark binary (log_bench.cc) both run them.
//
// Threads: a LogHarness is used from one thread, which also runs the shard's
// io_context (inside the harness's calls); the blocking executor is a
// boost::asio::thread_pool of one thread, as in the broker.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "bench/counting_env.h"
#include "junction/result.h"
#include "storage/log.h"
#include "storage/options.h"

namespace junction::bench {

using Seconds = std::chrono::duration<double>;

struct FilesystemInfo {
  std::string type;    // "ext4", "xfs", "tmpfs", ... (from /proc/self/mountinfo, else statfs)
  std::string source;  // the mounted device, "" when unknown
  bool is_tmpfs = false;
  std::string ToString() const;  // "ext4 on /dev/vda"
};
Result<FilesystemInfo> DescribeFilesystem(const std::filesystem::path& dir);

// Where scratch directories go by default: /var/tmp, unless it is a tmpfs
// (fsync there costs nothing), then the current directory.
std::filesystem::path DefaultScratchParent();

// A new directory "junction-bench-XXXXXX" under `parent`, removed with all it
// holds when destroyed.
class ScratchDir {
 public:
  static Result<std::unique_ptr<ScratchDir>> Create(const std::filesystem::path& parent);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / name, emptied first if it exists.
  Result<std::filesystem::path> FreshSubdir(std::string_view name);

 private:
  explicit ScratchDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

// The floor: write() of `bytes_per_sync` bytes then fdatasync(), appended to a
// new file at `file`, repeated for `duration`. The file is removed afterwards.
struct PlainSyncRun {
  std::uint64_t syncs = 0;
  std::uint64_t bytes = 0;
  double seconds = 0;
  double syncs_per_second() const { return seconds > 0 ? syncs / seconds : 0; }
  double bytes_per_second() const { return seconds > 0 ? bytes / seconds : 0; }
  double bytes_per_sync() const { return syncs > 0 ? static_cast<double>(bytes) / syncs : 0; }
  void Add(const PlainSyncRun& other);
};
Result<PlainSyncRun> RunPlainWriteSync(const std::filesystem::path& file,
                                       std::size_t bytes_per_sync, Seconds duration);

struct ReadRun {
  std::uint64_t bytes = 0;
  std::uint64_t reads = 0;
  double seconds = 0;
  double bytes_per_second() const { return seconds > 0 ? bytes / seconds : 0; }
};
// pread() of every *.log file in `dir`, in name order, `chunk` bytes at a time.
Result<ReadRun> RunPlainPread(const std::filesystem::path& dir, std::size_t chunk);

// One batch of `records` records, each a value of `value_bytes` bytes (no
// key, no headers, no compression), as codec::RecordBatchBuilder makes it.
Result<std::vector<std::byte>> MakeBatch(std::size_t value_bytes, std::uint32_t records);

struct AppendLoad {
  std::vector<std::byte> batch;  // appended again and again (a copy each time)
  std::uint32_t records_per_batch = 1;
  int in_flight = 1;            // appends outstanding at once (appenders x window)
  Seconds duration{3};          // stop issuing after this long; 0: no time limit
  std::uint64_t max_bytes = 0;  // or after this many batch bytes; 0: no limit
  // The appenders run on a thread of their own and reach the shard the way a
  // client of the log on another thread does: each Append is handed to the
  // shard and its result handed back (two thread hops per append).
  bool from_other_thread = false;
  // Linux CPU ids for the run: the shard (the calling thread; the other
  // thread's clients are not pinned) and the blocking thread. Empty: the
  // scheduler's choice. Both threads get their own set back afterwards.
  std::vector<int> shard_cpus{};
  std::vector<int> blocking_cpus{};
};

// User + system CPU time of this process so far, every thread (getrusage).
double ProcessCpuSeconds();

struct AppendRun {
  std::uint64_t records = 0;  // acknowledged
  std::uint64_t batches = 0;
  IoCounters io;           // what reached the segment files meanwhile
  double seconds = 0;      // first issue to last acknowledgement
  double cpu_seconds = 0;  // of the process meanwhile (about: from before the first issue)
  double records_per_second() const { return seconds > 0 ? records / seconds : 0; }
  double bytes_per_second() const { return seconds > 0 ? io.segment_bytes / seconds : 0; }
  double syncs_per_second() const { return seconds > 0 ? io.segment_syncs / seconds : 0; }
  double records_per_sync() const {
    return io.segment_syncs > 0 ? static_cast<double>(records) / io.segment_syncs : 0;
  }
  double bytes_per_sync() const {
    return io.segment_syncs > 0 ? static_cast<double>(io.segment_bytes) / io.segment_syncs : 0;
  }
  void Add(const AppendRun& other);
};

class LogHarness;

// The Log against its floor, interleaved so that a drifting disk moves both
// alike: `rounds` times, appends for load.duration / rounds, then the plain
// write+fdatasync loop (file `plain_file`) for as long, each time at the bytes
// per fdatasync the Log has averaged so far. REQUIRES: load.duration > 0.
struct AppendVsFloor {
  AppendRun log;
  PlainSyncRun plain;
  std::vector<double> round_ratios;  // each round's records/s over its floor's
  double round_ratio_stddev() const;
  // The plain loop's rate in records/s at the Log's records per fdatasync.
  double plain_records_per_second() const {
    return plain.syncs_per_second() * log.records_per_sync();
  }
};
Result<AppendVsFloor> RunAppendsAgainstFloor(LogHarness& harness, const AppendLoad& load,
                                             const std::filesystem::path& plain_file, int rounds);

// How FillLog batches its records: this many values of 100 B per batch.
inline constexpr std::uint32_t kFillRecordsPerBatch = 64;
inline constexpr std::size_t kFillValueBytes = 100;

// A storage::Log on PosixEnv (through a CountingEnv) with its own shard
// io_context and a one-thread blocking pool. Every Log call runs inside the
// shard's io_context, on the calling thread.
class LogHarness {
 public:
  // Opens (creating) the log at `dir`; open_seconds() says how long Log::Open took.
  static Result<std::unique_ptr<LogHarness>> Open(const std::filesystem::path& dir,
                                                  const storage::LogOptions& options);
  // Destroys the Log without Close if it is still open (an unclean shutdown).
  ~LogHarness();
  LogHarness(const LogHarness&) = delete;
  LogHarness& operator=(const LogHarness&) = delete;

  double open_seconds() const { return open_seconds_; }
  storage::LogStatus status();  // REQUIRES: open

  // `load.in_flight` coroutines on the shard, each appending copies of
  // load.batch one after the other until the duration or byte budget is spent.
  // The first failed append ends the run with its error. REQUIRES: open.
  Result<AppendRun> RunAppends(const AppendLoad& load);

  // Reads every acknowledged batch front to back with Read(next, max_bytes).
  Result<ReadRun> ReadAll(std::size_t max_bytes);  // REQUIRES: open

  // Log::Close, then destroys the Log (a clean shutdown).
  Status Close();
  // Destroys the Log without Close (an unclean shutdown).
  void Abandon();

 private:
  LogHarness() : env_(PosixEnv()) {}
  // Runs `fn` inside the shard's io_context and returns when it and all it
  // started have finished.
  template <typename Fn>
  Status RunOnShard(Fn&& fn);

  CountingEnv env_;
  boost::asio::io_context shard_{1};
  boost::asio::thread_pool blocking_{1};
  std::unique_ptr<storage::Log> log_;  // declared last: destroyed first
  double open_seconds_ = 0;
};

// Appends batches of kFillRecordsPerBatch x kFillValueBytes to the log at
// `dir` (fsync=never, 16 in flight) until it holds about `bytes` more bytes,
// then closes it cleanly.
Result<AppendRun> FillLog(const std::filesystem::path& dir, std::uint64_t bytes);

// "what" of the exception in `e` (for a Status).
std::string DescribeException(const std::exception_ptr& e);

}  // namespace junction::bench
