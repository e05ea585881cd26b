// The flush path of Log: runs on the blocking executor, one flush at a time.

#include <algorithm>
#include <array>

#include "storage/log_internal.h"
#include "storage/segment.h"

namespace junction::storage {

Status Log::Writer::Sync() {
  if (!dirty) return OkStatus();
  if (Status s = log->Sync(); !s.ok()) {
    broken = true;
    return s;
  }
  dirty = false;
  return OkStatus();
}

Status Log::Writer::Roll(Offset new_base) {
  // A sealed segment is always synced, whatever the policy: recovery trusts
  // sealed segments and validates only the active one's tail.
  JUNCTION_RETURN_IF_ERROR(Sync());
  JUNCTION_RETURN_IF_ERROR(log->Close());
  // The sealed index is synced too, once, so that a clean-shutdown marker
  // can vouch for it later.
  if (index_broken || !index->Sync().ok()) index_unsure = true;  // derived data: not fatal
  index->Close().IgnoreError();
  auto fail = [this](Status s) {
    broken = true;
    return s;
  };
  auto new_log = env.NewWritableFile(dir / SegmentFileName(new_base, kLogSuffix));
  if (!new_log.ok()) return fail(new_log.status());
  auto new_index = env.NewWritableFile(dir / SegmentFileName(new_base, kIndexSuffix));
  if (!new_index.ok()) return fail(new_index.status());
  if (Status s = env.SyncDir(dir); !s.ok()) return fail(s);
  log = *std::move(new_log);
  index = *std::move(new_index);
  base = new_base;
  next = new_base;
  size = 0;
  bytes_since_index = 0;
  max_timestamp_ms = std::numeric_limits<std::int64_t>::min();
  index_entries = 0;
  index_broken = false;
  created = clock.WallNow();
  return OkStatus();
}

Log::FlushOutcome Log::Writer::Flush(std::span<const PendingAppend> appends, bool sync) {
  FlushOutcome outcome;
  if (broken) {
    outcome.status = FailedPreconditionError("log writer is broken by an earlier failure");
    return outcome;
  }
  std::vector<std::span<const std::byte>> pieces;
  pieces.reserve(appends.size());
  std::vector<IndexEntry> entries;
  std::uint64_t group_bytes = 0;

  // Writes the pieces gathered for the current segment; after a sync, the
  // index entries that point into them (an entry never points at bytes that
  // a crash could take away under the `always` policy).
  auto write_group = [&](bool sync_now) -> Status {
    if (!pieces.empty()) {
      if (Status s = log->AppendV(pieces); !s.ok()) {
        broken = true;
        return s;
      }
      dirty = true;
      size += group_bytes;
      pieces.clear();
      group_bytes = 0;
    }
    if (sync_now) JUNCTION_RETURN_IF_ERROR(Sync());
    if (!entries.empty()) {
      std::vector<std::byte> raw(entries.size() * kIndexEntrySize);
      for (std::size_t i = 0; i < entries.size(); ++i) {
        EncodeIndexEntry(entries[i],
                         std::span(raw).subspan(i * kIndexEntrySize).first<kIndexEntrySize>());
      }
      // The index is derived data: a failed index write only costs a rebuild
      // at the next open, so it does not fail the appends.
      if (!index_broken) {
        if (index->Append(raw).ok()) {
          index_entries += entries.size();
        } else {
          index_broken = true;
          index_unsure = true;
        }
      }
      entries.clear();
    }
    return OkStatus();
  };

  WallTime now = clock.WallNow();
  for (const PendingAppend& append : appends) {
    std::uint64_t length = append.batch.size();
    std::uint64_t written = size + group_bytes;
    bool full = written > 0 && written + length > options.segment_bytes;
    bool old = written > 0 && now - created >= options.segment_age;
    if (full || old) {
      if (Status s = write_group(true); !s.ok()) {
        outcome.status = s;
        return outcome;
      }
      outcome.segments.push_back(Snapshot());
      if (Status s = Roll(append.base); !s.ok()) {
        outcome.status = s;
        return outcome;
      }
      written = 0;
    }
    max_timestamp_ms = std::max(max_timestamp_ms, append.max_timestamp_ms);
    if (written > 0 && bytes_since_index >= options.index_interval_bytes) {
      entries.push_back(IndexEntry{static_cast<std::uint32_t>(append.base - base),
                                   static_cast<std::uint32_t>(written), max_timestamp_ms});
      bytes_since_index = 0;
    }
    bytes_since_index += length;
    pieces.emplace_back(append.batch);
    group_bytes += length;
    next = append.last + 1;
  }
  if (Status s = write_group(sync); !s.ok()) {
    outcome.status = s;
    return outcome;
  }
  outcome.segments.push_back(Snapshot());
  return outcome;
}

Status Log::Writer::Close() {
  Status synced = Sync();
  // The index must be durable before a clean-shutdown marker counts its
  // entries; a failure here only withholds the marker.
  Status index_synced =
      index_broken ? FailedPreconditionError("index write failed") : index->Sync();
  Status log_closed = log->Close();
  index->Close().IgnoreError();
  JUNCTION_RETURN_IF_ERROR(synced);
  JUNCTION_RETURN_IF_ERROR(log_closed);
  if (!index_synced.ok()) index_unsure = true;  // Log::Close then writes no marker
  return OkStatus();
}

}  // namespace junction::storage
