#include "storage/options.h"

#include <charconv>

namespace junction::storage {
namespace {

// "200ms", "2s", "1m"; nullopt otherwise.
std::optional<std::chrono::milliseconds> ParseMillis(std::string_view text) {
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
  constexpr std::uint64_t kMaxMillis = 24ull * 3600 * 1000;
  std::uint64_t scale = 0;
  if (unit == "ms") scale = 1;
  if (unit == "s") scale = 1000;
  if (unit == "m") scale = 60'000;
  if (scale == 0 || n > kMaxMillis / scale) return std::nullopt;
  return std::chrono::milliseconds(n * scale);
}

}  // namespace

Result<FsyncPolicy> FsyncPolicy::Parse(std::string_view text) {
  if (text == "always") return Always();
  if (text == "never") return Never();
  constexpr std::string_view kInterval = "interval=";
  if (text.starts_with(kInterval)) {
    auto every = ParseMillis(text.substr(kInterval.size()));
    if (every && every->count() > 0) return Interval(*every);
  }
  return InvalidArgumentError(
      "fsync policy must be 'always', 'interval=<n>ms|s|m' or 'never', got '" + std::string(text) +
      "'");
}

std::string FsyncPolicy::ToString() const {
  switch (kind) {
    case Kind::kAlways:
      return "always";
    case Kind::kInterval:
      return "interval=" + std::to_string(interval.count()) + "ms";
    case Kind::kNever:
      return "never";
  }
  return "unknown";
}

Status LogOptions::Validate() const {
  constexpr std::uint64_t kMinSegment = 4096;
  constexpr std::uint64_t kMaxSegment = 1ull << 30;
  if (segment_bytes < kMinSegment || segment_bytes > kMaxSegment) {
    return InvalidArgumentError("segment_bytes must be between 4 KiB and 1 GiB, got " +
                                std::to_string(segment_bytes));
  }
  if (segment_age.count() <= 0) return InvalidArgumentError("segment_age must be positive");
  if (index_interval_bytes == 0)
    return InvalidArgumentError("index_interval_bytes must be positive");
  if (max_batch_bytes < codec::kBatchHeaderSize || max_batch_bytes > codec::kMaxBatchBytesLimit) {
    return InvalidArgumentError("max_batch_bytes must be between 72 bytes and 64 MiB, got " +
                                std::to_string(max_batch_bytes));
  }
  if (fsync.kind == FsyncPolicy::Kind::kInterval && fsync.interval.count() <= 0) {
    return InvalidArgumentError("fsync interval must be positive");
  }
  if (retention_age && retention_age->count() <= 0) {
    return InvalidArgumentError("retention_age must be positive");
  }
  if (max_open_segments == 0) return InvalidArgumentError("max_open_segments must be positive");
  return OkStatus();
}

}  // namespace junction::storage
