// Log::Open: discovery of the segments and crash recovery
// (docs/formats/log.md, "Durability and recovery").

#include <algorithm>
#include <charconv>
#include <sstream>

#include "junction/log.h"
#include "storage/log_internal.h"
#include "storage/segment.h"

namespace junction::storage {
namespace {

constexpr std::int64_t kNoTimestamp = std::numeric_limits<std::int64_t>::min();

// What recovery learned of one segment's file.
struct SegmentScan {
  SegmentInfo info;
  std::vector<IndexEntry> entries;  // the index as it should be
  bool index_changed = false;       // the index file must be rewritten
  Status damage;                    // not OK: the scan stopped early, at info.size
};

// Finds the last index entry whose batch is really there, then scans and
// verifies every batch after it, adding index entries where they are due.
Result<SegmentScan> ScanSegmentFile(Env& env, const std::filesystem::path& dir, Offset base,
                                    const LogOptions& options) {
  SegmentScan scan;
  scan.info.base = base;
  std::filesystem::path log_path = dir / SegmentFileName(base, kLogSuffix);
  std::filesystem::path index_path = dir / SegmentFileName(base, kIndexSuffix);
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> log,
                            env.NewRandomAccessFile(log_path));
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t size, log->Size());
  std::size_t index_on_disk = 0;
  if (env.FileExists(index_path)) {
    JUNCTION_ASSIGN_OR_RETURN(auto index, env.NewRandomAccessFile(index_path));
    JUNCTION_ASSIGN_OR_RETURN(scan.entries, LoadIndex(*index, size));
    JUNCTION_ASSIGN_OR_RETURN(std::uint64_t index_size, index->Size());
    index_on_disk = static_cast<std::size_t>(index_size / kIndexEntrySize);
    scan.index_changed = index_size % kIndexEntrySize != 0;
  } else {
    scan.index_changed = true;
  }
  // Drop entries from the back until one points at the batch it names.
  while (!scan.entries.empty()) {
    const IndexEntry& e = scan.entries.back();
    BatchScanner probe(*log, e.position, size, base + e.relative_offset, options.max_batch_bytes,
                       codec::kBatchHeaderSize);
    if (probe.Next().ok()) break;
    scan.entries.pop_back();
  }
  if (scan.entries.size() != index_on_disk) scan.index_changed = true;

  std::uint64_t position = 0;
  Offset expected = base;
  std::int64_t max_ts = kNoTimestamp;
  if (!scan.entries.empty()) {
    position = scan.entries.back().position;
    expected = base + scan.entries.back().relative_offset;
    max_ts = scan.entries.back().max_timestamp_ms;  // covers every batch up to its own
  }
  std::uint64_t last_entry_position = position;
  BatchScanner scanner(*log, position, size, expected, options.max_batch_bytes);
  while (true) {
    Result<std::optional<ScannedBatch>> batch = scanner.Next();
    if (!batch.ok()) {
      scan.damage = batch.status();
      break;
    }
    if (!*batch) break;
    const ScannedBatch& b = **batch;
    max_ts = std::max(max_ts, b.header.max_timestamp_ms);
    bool due = b.position > 0 && b.position - last_entry_position >= options.index_interval_bytes;
    bool covered = !scan.entries.empty() && b.position <= scan.entries.back().position;
    if (due && !covered) {
      scan.entries.push_back(IndexEntry{static_cast<std::uint32_t>(b.header.base_offset - base),
                                        static_cast<std::uint32_t>(b.position), max_ts});
      scan.index_changed = true;
    }
    if (due || covered) last_entry_position = b.position;
  }
  scan.info.next = scanner.expected();
  scan.info.size = scanner.position();
  scan.info.max_timestamp_ms = max_ts;
  scan.info.index_entries = scan.entries.size();
  if (!scan.damage.ok()) {
    scan.damage = scan.damage.WithContext(log_path.string());
    // Is it a torn tail, or damage with good data after it?
    JUNCTION_ASSIGN_OR_RETURN(
        std::optional<std::uint64_t> later,
        FindLaterValidBatch(*log, scan.info.size, size, scan.info.next, options.max_batch_bytes));
    if (later) {
      scan.damage = DataLossError(scan.damage.message() + "; valid data follows at position " +
                                  std::to_string(*later));
    } else {
      scan.damage = Status(StatusCode::kOutOfRange, scan.damage.message());  // torn tail
    }
  }
  return scan;
}

Status WriteIndex(Env& env, const std::filesystem::path& path,
                  std::span<const IndexEntry> entries) {
  std::vector<std::byte> raw(entries.size() * kIndexEntrySize);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EncodeIndexEntry(entries[i],
                     std::span(raw).subspan(i * kIndexEntrySize).first<kIndexEntrySize>());
  }
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env.NewWritableFile(path));
  JUNCTION_RETURN_IF_ERROR(file->Append(raw));
  // Synced so that a clean-shutdown marker written later may count on it.
  JUNCTION_RETURN_IF_ERROR(file->Sync());
  return file->Close();
}

}  // namespace

std::string EncodeCleanShutdown(std::span<const SegmentInfo> segments) {
  std::ostringstream out;
  out << segments.size() << "\n";
  for (const SegmentInfo& s : segments) {
    out << s.base.value() << " " << s.next.value() << " " << s.size << " " << s.max_timestamp_ms
        << " " << s.index_entries << "\n";
  }
  return out.str();
}

std::optional<std::vector<SegmentInfo>> DecodeCleanShutdown(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::size_t count = 0;
  if (!(in >> count) || count == 0 || count > 1'000'000) return std::nullopt;
  std::vector<SegmentInfo> segments(count);
  for (SegmentInfo& s : segments) {
    std::uint64_t base = 0;
    std::uint64_t next = 0;
    if (!(in >> base >> next >> s.size >> s.max_timestamp_ms >> s.index_entries)) {
      return std::nullopt;
    }
    s.base = Offset(base);
    s.next = Offset(next);
  }
  std::string rest;
  if (in >> rest) return std::nullopt;
  return segments;
}

Result<std::unique_ptr<Log>> Log::Open(Context context, std::filesystem::path dir,
                                       LogOptions options) {
  JUNCTION_RETURN_IF_ERROR(options.Validate());
  if (!options.fsync.acks_after_sync()) {
    log::Warn("UNSAFE fsync policy: acknowledged records can be lost on power loss",
              {{"dir", dir.string()}, {"fsync", options.fsync.ToString()}});
  }
  Env& env = context.env;
  // A new directory is durable only once its parent is synced: sync the
  // parent of every directory this creates.
  std::vector<std::filesystem::path> created;
  for (auto p = dir; !p.empty() && !env.FileExists(p); p = p.parent_path()) {
    created.push_back(p);
    if (p == p.parent_path()) break;
  }
  JUNCTION_RETURN_IF_ERROR(env.CreateDirs(dir));
  for (const auto& p : created) {
    std::filesystem::path parent = p.parent_path();
    JUNCTION_RETURN_IF_ERROR(env.SyncDir(parent.empty() ? std::filesystem::path(".") : parent));
  }
  Recovered r;
  JUNCTION_ASSIGN_OR_RETURN(r.lock, env.LockFile(dir / kLockFile));

  std::filesystem::path meta = dir / kMetaFile;
  if (env.FileExists(meta)) {
    JUNCTION_ASSIGN_OR_RETURN(std::string contents, ReadFileToString(env, meta));
    if (contents != kMetaContents) {
      return FailedPreconditionError(meta.string() + " is not a format-1 Junction partition");
    }
  } else {
    JUNCTION_RETURN_IF_ERROR(WriteFileAtomically(env, meta, kMetaContents));
  }

  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> names, env.GetChildren(dir));
  std::vector<Offset> bases;
  for (const std::string& name : names) {
    if (auto base = ParseSegmentFileName(name, kLogSuffix)) bases.push_back(*base);
  }
  std::sort(bases.begin(), bases.end());
  for (const std::string& name : names) {
    auto base = ParseSegmentFileName(name, kIndexSuffix);
    bool orphan = base && !std::binary_search(bases.begin(), bases.end(), *base);
    if (orphan || name.ends_with(".tmp")) JUNCTION_RETURN_IF_ERROR(env.RemoveFile(dir / name));
  }

  // A clean-shutdown marker describes every segment; it is used only if the
  // files agree with it, and removed before anything else is written.
  std::optional<std::vector<SegmentInfo>> clean;
  std::filesystem::path marker = dir / kCleanShutdownFile;
  if (env.FileExists(marker)) {
    JUNCTION_ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, marker));
    clean = DecodeCleanShutdown(text);
    if (clean && clean->size() == bases.size()) {
      for (std::size_t i = 0; clean && i < bases.size(); ++i) {
        const SegmentInfo& listed = (*clean)[i];
        auto size = env.GetFileSize(dir / SegmentFileName(bases[i], kLogSuffix));
        auto index_size = env.GetFileSize(dir / SegmentFileName(bases[i], kIndexSuffix));
        if (listed.base != bases[i] || !size.ok() || *size != listed.size || !index_size.ok() ||
            *index_size != listed.index_entries * kIndexEntrySize) {
          clean.reset();
        }
      }
    } else {
      clean.reset();
    }
    if (!clean)
      log::Warn("ignoring a clean-shutdown marker that does not match the files",
                {{"dir", dir.string()}});
    JUNCTION_RETURN_IF_ERROR(env.RemoveFile(marker));
    JUNCTION_RETURN_IF_ERROR(env.SyncDir(dir));
  }

  if (bases.empty()) {
    JUNCTION_ASSIGN_OR_RETURN(auto log,
                              env.NewWritableFile(dir / SegmentFileName(Offset(0), kLogSuffix)));
    JUNCTION_RETURN_IF_ERROR(log->Close());
    JUNCTION_RETURN_IF_ERROR(WriteIndex(env, dir / SegmentFileName(Offset(0), kIndexSuffix), {}));
    JUNCTION_RETURN_IF_ERROR(env.SyncDir(dir));
    bases.push_back(Offset(0));
  }

  if (clean) {
    r.segments = *std::move(clean);
    r.clean = true;
  } else {
    for (std::size_t i = 0; i < bases.size(); ++i) {
      bool active = i + 1 == bases.size();
      if (!r.segments.empty() && r.segments.back().next != bases[i]) {
        r.state = LogState::kCorrupt;
        r.corrupt_from = r.segments.back().next;
        r.error = DataLossError("segment " + SegmentFileName(bases[i], kLogSuffix) +
                                " starts at offset " + std::to_string(bases[i].value()) +
                                " but the one before ends at " +
                                std::to_string(r.segments.back().next.value()));
        break;
      }
      JUNCTION_ASSIGN_OR_RETURN(SegmentScan scan, ScanSegmentFile(env, dir, bases[i], options));
      std::filesystem::path log_path = dir / SegmentFileName(bases[i], kLogSuffix);
      if (!scan.damage.ok()) {
        JUNCTION_ASSIGN_OR_RETURN(std::uint64_t file_size, env.GetFileSize(log_path));
        bool torn_tail = active && scan.damage.code() == StatusCode::kOutOfRange;
        if (torn_tail) {
          JUNCTION_RETURN_IF_ERROR(env.Truncate(log_path, scan.info.size));
          r.truncated = file_size - scan.info.size;
          log::Warn("cut a torn tail from the active segment", {{"file", log_path.string()},
                                                                {"bytes_cut", r.truncated},
                                                                {"valid_bytes", scan.info.size},
                                                                {"reason", scan.damage.message()}});
        } else {
          // Never cut or skip damage that has good data after it, or damage
          // in a sealed (fsynced) segment: report it and stop there.
          r.state = LogState::kCorrupt;
          r.corrupt_from = scan.info.next;
          r.error = DataLossError(scan.damage.message());
          log::Error("partition is corrupt; reads stop before the damage and appends are refused",
                     {{"file", log_path.string()},
                      {"offset", scan.info.next.value()},
                      {"position", scan.info.size},
                      {"reason", scan.damage.message()}});
        }
      }
      if (scan.index_changed) {
        JUNCTION_RETURN_IF_ERROR(
            WriteIndex(env, dir / SegmentFileName(bases[i], kIndexSuffix), scan.entries));
      }
      r.segments.push_back(scan.info);
      if (r.state == LogState::kCorrupt) break;
    }
  }

  if (r.state == LogState::kOpen) {
    const SegmentInfo& active = r.segments.back();
    auto writer = std::make_shared<Writer>(env, context.clock, dir, options);
    writer->base = active.base;
    writer->next = active.next;
    JUNCTION_ASSIGN_OR_RETURN(
        writer->log, env.NewAppendableFile(dir / SegmentFileName(active.base, kLogSuffix)));
    JUNCTION_ASSIGN_OR_RETURN(
        writer->index, env.NewAppendableFile(dir / SegmentFileName(active.base, kIndexSuffix)));
    writer->size = active.size;
    writer->max_timestamp_ms = active.max_timestamp_ms;
    writer->index_entries = active.index_entries;
    std::uint64_t last_entry_position = 0;
    if (active.index_entries > 0) {
      JUNCTION_ASSIGN_OR_RETURN(
          auto index, env.NewRandomAccessFile(dir / SegmentFileName(active.base, kIndexSuffix)));
      JUNCTION_ASSIGN_OR_RETURN(IndexEntry last, ReadIndexEntry(*index, active.index_entries - 1));
      last_entry_position = last.position;
    }
    writer->bytes_since_index = active.size - last_entry_position;
    writer->created = context.clock.WallNow();
    r.writer = std::move(writer);
  }
  log::Info("opened partition log", {{"dir", dir.string()},
                                     {"segments", static_cast<std::uint64_t>(r.segments.size())},
                                     {"next_offset", r.segments.back().next.value()},
                                     {"clean", r.clean},
                                     {"bytes_cut", r.truncated}});
  return std::unique_ptr<Log>(new Log(context, std::move(dir), options, std::move(r)));
}

}  // namespace junction::storage
