#pragma once

// Definitions private to the Log's translation units (log.cc, log_writer.cc,
// log_open.cc).

#include <span>

#include "storage/log.h"

namespace junction::storage {

inline constexpr std::string_view kLockFile = "LOCK";
inline constexpr std::string_view kMetaFile = "partition.meta";
inline constexpr std::string_view kMetaContents = "junction partition log, format 1\n";
inline constexpr std::string_view kCleanShutdownFile = "clean-shutdown";

// The active segment's open files and what has been written to them.
// Thread: touched only by the flush in flight (on the blocking executor), or
// by Open/Close when no flush can be in flight; hand-offs go through
// executor posts, which order the accesses.
struct Log::Writer {
  Writer(Env& env, const Clock& clock, std::filesystem::path dir, LogOptions options)
      : env(env), clock(clock), dir(std::move(dir)), options(options) {}

  Env& env;
  const Clock& clock;
  std::filesystem::path dir;
  LogOptions options;

  Offset base;
  Offset next;
  std::unique_ptr<WritableFile> log;
  std::unique_ptr<WritableFile> index;
  std::uint64_t size = 0;               // bytes written to the .log file
  std::uint64_t bytes_since_index = 0;  // since the batch of the last index entry
  std::int64_t max_timestamp_ms = std::numeric_limits<std::int64_t>::min();
  std::uint64_t index_entries = 0;
  WallTime created;     // when the segment was created or opened (segment_age)
  bool dirty = false;   // bytes written since the last sync
  bool broken = false;  // a write or sync failed: nothing more may be written
  // An index write failed: the index of this segment is no longer written or
  // vouched for (the next open rebuilds it); the data is unaffected.
  bool index_broken = false;
  // Some index write or sync failed since the log opened: no clean-shutdown
  // marker may vouch for the indexes at close.
  bool index_unsure = false;

  SegmentInfo Snapshot() const {
    return SegmentInfo{base, next, size, max_timestamp_ms, index_entries};
  }

  // Writes the batches (one writev per segment), rolling segments as
  // needed, then syncs if `sync` and appends the index entries.
  FlushOutcome Flush(std::span<const PendingAppend> appends, bool sync);
  // Seals the current segment (sync, close) and creates the next one.
  Status Roll(Offset new_base);
  Status Sync();
  // Syncs if dirty, closes the files.
  Status Close();
};

struct Log::Recovered {
  std::unique_ptr<FileLock> lock;
  std::vector<SegmentInfo> segments;
  std::shared_ptr<Writer> writer;  // null unless the log is writable
  LogState state = LogState::kOpen;
  Status error;
  std::optional<Offset> corrupt_from;
  std::uint64_t truncated = 0;
  bool clean = false;
};

// The clean-shutdown marker: every segment's SegmentInfo, one per line
// ("base next size max_timestamp_ms index_entries"), so that a clean open
// reads nothing else. Decode returns nullopt for anything malformed.
std::string EncodeCleanShutdown(std::span<const SegmentInfo> segments);
std::optional<std::vector<SegmentInfo>> DecodeCleanShutdown(std::string_view text);

}  // namespace junction::storage
