#pragma once

// The files of one segment (docs/formats/log.md, "Segments"): naming, the
// index entry format and lookups, and a scanner that walks and verifies the
// batches of a .log file. No state of its own; used by Log on its shard (reads,
// lookups) and on the blocking executor (recovery, flushes).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/record_batch.h"
#include "core/env.h"
#include "junction/ids.h"
#include "junction/result.h"

namespace junction::storage {

inline constexpr std::string_view kLogSuffix = ".log";
inline constexpr std::string_view kIndexSuffix = ".index";

// "00000000000000000042.log" for base offset 42 and suffix ".log".
std::string SegmentFileName(Offset base, std::string_view suffix);
// The base offset in a segment file name with `suffix`; nullopt for any other name.
std::optional<Offset> ParseSegmentFileName(std::string_view name, std::string_view suffix);

// One index entry (16 bytes on disk, little-endian): the batch at `position`
// has base offset `segment base + relative_offset`, and `max_timestamp_ms` is
// the greatest record timestamp of all batches up to and including it.
struct IndexEntry {
  std::uint32_t relative_offset = 0;
  std::uint32_t position = 0;
  std::int64_t max_timestamp_ms = 0;
  friend bool operator==(const IndexEntry&, const IndexEntry&) = default;
};
inline constexpr std::size_t kIndexEntrySize = 16;

void EncodeIndexEntry(const IndexEntry& entry, std::span<std::byte, kIndexEntrySize> out);
IndexEntry DecodeIndexEntry(std::span<const std::byte, kIndexEntrySize> in);

// Reads the entries of an index file and keeps the longest prefix that is
// consistent: relative offsets and positions strictly increasing, timestamps
// non-decreasing, positions below `log_size`. A trailing partial entry is
// ignored. Returns the kept entries (a segment has at most
// segment_bytes / index_interval entries, so this is bounded).
Result<std::vector<IndexEntry>> LoadIndex(const RandomAccessFile& index, std::uint64_t log_size);

// Binary search with preads over the first `entries` entries of an index
// file. The last entry whose relative offset is <= `relative_offset`;
// nullopt when there is none.
Result<std::optional<IndexEntry>> IndexFloor(const RandomAccessFile& index, std::uint64_t entries,
                                             std::uint32_t relative_offset);
// The position in the index (0-based) of the first entry whose
// max_timestamp_ms >= timestamp_ms; `entries` when there is none.
Result<std::uint64_t> IndexFirstAtOrAfterTime(const RandomAccessFile& index, std::uint64_t entries,
                                              std::int64_t timestamp_ms);
Result<IndexEntry> ReadIndexEntry(const RandomAccessFile& index, std::uint64_t i);

struct ScannedBatch {
  std::uint64_t position = 0;        // in the .log file
  codec::BatchHeader header;         // verified
  std::span<const std::byte> bytes;  // valid until the next call to Next()
};

// Walks the batches of a .log file from `position` to `end`, verifying each
// (structure, checksum) and that offsets continue: the first batch must have
// base offset `expected`, each next one the previous one's next_offset().
// Reads through a buffer of about `buffer_bytes`; one pread per buffer.
// Thread-compatible.
class BatchScanner {
 public:
  BatchScanner(const RandomAccessFile& file, std::uint64_t position, std::uint64_t end,
               Offset expected, std::uint32_t max_batch_bytes,
               std::size_t buffer_bytes = std::size_t{1} << 20);

  // The next batch; nullopt once position() == end; DataLoss naming the file
  // position and the failed check when the bytes at position() are not the
  // expected batch (the scanner stays at that position).
  Result<std::optional<ScannedBatch>> Next();

  std::uint64_t position() const { return position_; }
  Offset expected() const { return expected_; }

 private:
  Status Fill(std::size_t need);

  const RandomAccessFile& file_;
  std::uint64_t position_;
  std::uint64_t end_;
  Offset expected_;
  std::uint32_t max_batch_bytes_;
  std::size_t buffer_bytes_;
  std::vector<std::byte> buffer_;
  std::uint64_t buffer_position_ = 0;  // file position of buffer_[0]
  std::size_t buffer_size_ = 0;        // valid bytes in buffer_
};

// After a scan stopped at `from` (a batch that failed its checks), looks for
// a whole valid batch anywhere in (from, end) whose base offset is >=
// `expected`. Finding one means the damage is in the middle of the data,
// not a torn tail. Returns its position.
Result<std::optional<std::uint64_t>> FindLaterValidBatch(const RandomAccessFile& file,
                                                         std::uint64_t from, std::uint64_t end,
                                                         Offset expected,
                                                         std::uint32_t max_batch_bytes);

}  // namespace junction::storage
