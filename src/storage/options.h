#pragma once

// Options of one partition's log (docs/formats/log.md describes what they
// control). Parsed from configuration by the broker; defaults are safe.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "codec/record_batch.h"
#include "junction/result.h"

namespace junction::storage {

// When an append is acknowledged relative to fdatasync.
struct FsyncPolicy {
  enum class Kind : std::uint8_t {
    kAlways,    // ack after an fdatasync that covers the batch (default; safe)
    kInterval,  // ack after write(); fdatasync every `interval`. UNSAFE: acked
                // records written in the last interval are lost on power loss
    kNever,     // ack after write(); fdatasync only at roll and close. UNSAFE
  };
  Kind kind = Kind::kAlways;
  std::chrono::milliseconds interval{0};  // kInterval only, > 0

  static FsyncPolicy Always() { return {}; }
  static FsyncPolicy Interval(std::chrono::milliseconds every) { return {Kind::kInterval, every}; }
  static FsyncPolicy Never() { return {Kind::kNever, {}}; }

  // "always", "interval=<duration>" ("interval=200ms", "interval=1s"), "never".
  static Result<FsyncPolicy> Parse(std::string_view text);
  std::string ToString() const;
  bool acks_after_sync() const { return kind == Kind::kAlways; }

  friend bool operator==(const FsyncPolicy&, const FsyncPolicy&) = default;
};

struct LogOptions {
  FsyncPolicy fsync{};
  // Roll the active segment when the next batch would take it past this size
  // (a larger batch gets a segment of its own). Between 4 KiB and 1 GiB
  // (index positions are 32-bit).
  std::uint64_t segment_bytes = 256ull << 20;
  // Roll the active segment when its first batch was appended this long ago.
  std::chrono::milliseconds segment_age = std::chrono::hours(24 * 7);
  // One index entry after at least this many bytes of batches.
  std::uint32_t index_interval_bytes = 4096;
  // Largest batch accepted (and read back).
  std::uint32_t max_batch_bytes = codec::kDefaultMaxBatchBytes;
  // Retention: whole sealed segments are deleted, oldest first, while the log
  // is larger than retention_bytes or the segment's newest record is older
  // than retention_age. Unset: keep forever.
  std::optional<std::uint64_t> retention_bytes{};
  std::optional<std::chrono::milliseconds> retention_age{};
  // Sealed segments whose files stay open for reading (a small LRU).
  std::size_t max_open_segments = 16;

  // InvalidArgument naming the option that is out of range.
  Status Validate() const;
};

}  // namespace junction::storage
