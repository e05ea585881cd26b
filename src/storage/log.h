#pragma once

// Log: one partition's durable, segmented, append-only log (docs/formats/log.md).
//
// Rule one: an append is acknowledged only after an fdatasync that covers its
// bytes (FsyncPolicy::kAlways). Appends are group-committed: every batch that
// arrives while a write + fdatasync runs shares the next single write
// (writev) and fdatasync, and each is acknowledged only after it.
//
// Threads: a Log belongs to one shard. Append, Read, OffsetForTime,
// EnforceRetention, Close and the accessors are called on the shard's
// executor only, and completions run there. Writes and fsyncs run on the
// blocking executor, one flush at a time; nothing else touches the files
// being written. Reads are preads of acknowledged bytes on the shard.
//
// Failure: a failed write or fsync (EIO, ENOSPC, ...) is fatal for the Log:
// the batches of that flush fail with the error, every later append fails
// with FailedPrecondition naming it, reads of acknowledged records go on.
// Nothing is retried: reopening the Log (after the cause is fixed) recovers.
//
// Corruption found before the tail (a batch that fails its checks while
// valid batches follow it) is never skipped or cut: the Log opens in state
// kCorrupt, reads before the damage work, reads at or past it fail with
// DataLoss naming the offset and file position, and appends are refused.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/env.h"
#include "junction/clock.h"
#include "junction/ids.h"
#include "junction/result.h"
#include "storage/options.h"

namespace junction::storage {

struct AppendResult {
  Offset base_offset;  // offset of the batch's first record
  Offset last_offset;  // offset of its last record
};

struct ReadResult {
  // Whole, verified batches back to back, exactly as stored (and as sent on
  // the wire). Empty when `from` is the high watermark.
  std::vector<std::byte> batches;
  Offset next_offset;     // where the next read continues
  Offset high_watermark;  // one past the last acknowledged record
};

enum class LogState : std::uint8_t {
  kOpen,
  kReadOnly,  // a write or fsync failed; appends fail, reads go on
  kCorrupt,   // corruption before the tail; reads past it and appends fail
  kClosed,
};

struct LogStatus {
  LogState state = LogState::kOpen;
  Status error;                        // why the state is not kOpen
  std::optional<Offset> corrupt_from;  // kCorrupt: first unreadable offset
  Offset log_start;                    // first offset still kept (retention)
  Offset high_watermark;               // one past the last acknowledged record
  Offset next_offset;                  // offset the next appended record gets
  std::uint64_t size_bytes = 0;        // bytes of all segments
  std::size_t segments = 0;
  std::uint64_t bytes_truncated_at_open = 0;  // torn tail cut by recovery
  bool clean_open = false;                    // the clean-shutdown marker was used
};

// What a Log knows of one segment: only acknowledged bytes count.
struct SegmentInfo {
  Offset base;
  Offset next;             // one past its last acknowledged record
  std::uint64_t size = 0;  // acknowledged bytes of its .log file
  std::int64_t max_timestamp_ms = std::numeric_limits<std::int64_t>::min();
  std::uint64_t index_entries = 0;  // entries of its .index file to use
  friend bool operator==(const SegmentInfo&, const SegmentInfo&) = default;
};

class Log {
 public:
  struct Context {
    Env& env;                               // must outlive the Log
    const Clock& clock;                     // must outlive the Log
    boost::asio::any_io_executor shard;     // the owning shard
    boost::asio::any_io_executor blocking;  // runs write/fsync/unlink
  };

  using AppendHandler = boost::asio::any_completion_handler<void(Result<AppendResult>)>;

  // Opens the partition at `dir`, creating it if missing, and recovers it:
  // validates the active segment's tail, cuts a torn tail (logging how many
  // bytes), rebuilds missing or inconsistent indexes. Takes an exclusive lock
  // on the directory for the Log's lifetime (a second Open fails with
  // Unavailable). Blocking: call it on the blocking executor or at start-up.
  static Result<std::unique_ptr<Log>> Open(Context context, std::filesystem::path dir,
                                           LogOptions options);

  // Destroying an open Log without Close() loses no acknowledged record but
  // skips the clean-shutdown marker; the appends in flight are dropped
  // without completing (a flush already running finishes its write, and the
  // directory stays locked until it has). REQUIRES: on the shard.
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Appends one batch as built by codec::RecordBatchBuilder; its base_offset
  // is overwritten with the assigned one. Completes on the shard with the
  // assigned offsets once the batch is durable per the fsync policy, or with
  // InvalidArgument (a malformed batch, naming the check) /
  // ResourceExhausted (larger than max_batch_bytes) / FailedPrecondition
  // (Log not open) / the write or fsync error.
  template <typename CompletionToken>
  auto AsyncAppend(std::vector<std::byte> batch, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(Result<AppendResult>)>(
        [this](auto handler, std::vector<std::byte> bytes) {
          StartAppend(std::move(bytes), AppendHandler(std::move(handler)));
        },
        token, std::move(batch));
  }
  boost::asio::awaitable<Result<AppendResult>> Append(std::vector<std::byte> batch);

  // Whole batches from the one holding `from`, until adding the next would
  // pass max_bytes (always at least one batch when `from` is below the high
  // watermark). Only acknowledged batches are returned. OutOfRange when
  // `from` is below log_start (deleted by retention) or above the high
  // watermark; DataLoss when a batch fails its checks (its checksum
  // among them: a caller need not verify a returned batch again).
  Result<ReadResult> Read(Offset from, std::size_t max_bytes);

  // The base offset of the first batch whose max timestamp is >= t, or the
  // high watermark when there is none.
  Result<Offset> OffsetForTime(std::int64_t timestamp_ms);

  // Deletes whole sealed segments per LogOptions retention; returns how many.
  // Never deletes a segment holding `keep_from` or a later offset (the broker
  // passes its groups' lowest unacked offset). The log start moves at once;
  // files are removed on the blocking executor.
  Result<std::size_t> EnforceRetention(std::optional<Offset> keep_from = std::nullopt);

  // Deletes every acknowledged record: seals the active segment, starts an
  // empty one at the high watermark and removes every older segment, files
  // and all, before it completes (so a crash after it never brings them
  // back). Returns the new log start. Appends made meanwhile wait and land
  // after it. FailedPrecondition unless open; a failure to roll or remove
  // makes the log read-only (the Log's rule for write errors).
  boost::asio::awaitable<Result<Offset>> Purge();

  // Waits for the flush in flight, syncs, writes the clean-shutdown marker
  // and closes the files. Later appends fail with FailedPrecondition.
  boost::asio::awaitable<Status> Close();

  LogStatus status() const;
  Offset high_watermark() const;
  Offset log_start() const;  // status().log_start, without building the rest
  Offset next_offset() const;
  const std::filesystem::path& dir() const;

 private:
  struct PendingAppend {
    std::vector<std::byte> batch;
    Offset base;
    Offset last;
    std::int64_t max_timestamp_ms = 0;
    AppendHandler handler;
  };
  struct FlushOutcome {
    Status status;
    // State after the flush of every segment it touched, oldest first; the
    // first is the segment that was active when it started.
    std::vector<SegmentInfo> segments;
    // The job took the appends made meanwhile and is flushing them already.
    bool continued = false;
  };
  // Appends made while a flush runs (fsync=always), for the flush job to take
  // itself as soon as its flush is done: under load, one flush follows the
  // next without a round trip through the shard. Shared with the job.
  struct Handoff {
    std::mutex mutex;
    std::vector<PendingAppend> appends;  // guarded by mutex
    bool job_running = false;            // guarded by mutex: the job looks again
  };
  struct Writer;  // the active segment's files; owned by the flush in flight
  struct OpenFiles {
    std::unique_ptr<RandomAccessFile> log;
    std::unique_ptr<RandomAccessFile> index;
    std::uint64_t last_use = 0;
  };
  struct Cursor {  // where the last Read stopped, so sequential reads skip the index
    Offset segment;
    Offset next;
    std::uint64_t position = 0;
  };
  struct Recovered;

  Log(Context context, std::filesystem::path dir, LogOptions options, Recovered recovered);

  void StartAppend(std::vector<std::byte> batch, AppendHandler handler);
  void Fail(AppendHandler handler, Status status);
  void MaybeStartFlush();
  void OnFlushDone(const FlushOutcome& outcome, std::vector<PendingAppend> appends);
  void NotifyIdle();
  static std::uint64_t Records(const std::vector<PendingAppend>& appends);
  // What the flush job did not take.
  std::vector<PendingAppend> TakeHandoff();
  void ArmIntervalSync();
  Result<OpenFiles*> FilesFor(const SegmentInfo& segment);
  Result<std::uint64_t> PositionOf(const SegmentInfo& segment, OpenFiles& files, Offset offset);
  Status ReadableStatus(Offset from) const;
  // A read found damage at `at`: the log turns kCorrupt (appends refused,
  // reads at or past `at` fail) and says so once. Returns `why`.
  Status MarkCorrupt(Offset at, Status why);
  // Forgets the first `count` segments; returns their files, for removal.
  std::vector<std::filesystem::path> DropSegments(std::size_t count);
  boost::asio::awaitable<void> WaitIdle();

  Context context_;
  std::filesystem::path dir_;
  LogOptions options_;
  // Shared with the flush in flight: a destroyed Log keeps its directory
  // locked until a flush still running on the blocking executor is done.
  std::shared_ptr<FileLock> lock_;
  std::shared_ptr<Writer> writer_;  // shared with the flush job in flight
  std::shared_ptr<int> alive_;      // flush completions hold a weak_ptr to it

  std::vector<SegmentInfo> segments_;  // by base offset; back() is the active one
  std::map<Offset, OpenFiles> open_;   // readers, at most max_open_segments + 1
  std::uint64_t use_clock_ = 0;
  std::optional<Cursor> cursor_;

  std::vector<PendingAppend> pending_;  // waiting for the next flush
  std::shared_ptr<Handoff> handoff_;    // fsync=always only
  std::size_t pending_bytes_ = 0;
  bool flushing_ = false;
  bool completing_ = false;  // completion handlers are running: hold new flushes
  bool closing_ = false;
  bool purging_ = false;      // Purge: no flush starts
  bool sync_wanted_ = false;  // kInterval: a sync is due
  std::vector<boost::asio::any_completion_handler<void()>> idle_waiters_;
  std::unique_ptr<boost::asio::steady_timer> sync_timer_;

  LogState state_ = LogState::kOpen;
  Status error_;
  std::optional<Offset> corrupt_from_;
  Offset log_start_;
  Offset high_watermark_;
  Offset next_offset_;
  std::uint64_t truncated_at_open_ = 0;
  bool clean_open_ = false;
};

}  // namespace junction::storage
