#include "storage/segment.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "codec/byte_order.h"

namespace junction::storage {
namespace {

constexpr int kNameDigits = 20;

std::string PositionText(std::uint64_t position) {
  return "at file position " + std::to_string(position);
}

}  // namespace

std::string SegmentFileName(Offset base, std::string_view suffix) {
  std::array<char, kNameDigits + 1> digits{};
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), base.value());
  std::string_view value(digits.data(), static_cast<std::size_t>(end - digits.data()));
  std::string name(kNameDigits - value.size(), '0');
  name += value;
  name += suffix;
  return name;
}

std::optional<Offset> ParseSegmentFileName(std::string_view name, std::string_view suffix) {
  if (name.size() != kNameDigits + suffix.size() || !name.ends_with(suffix)) return std::nullopt;
  std::uint64_t value = 0;
  const char* first = name.data();
  const char* last = name.data() + kNameDigits;
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last) return std::nullopt;
  return Offset(value);
}

void EncodeIndexEntry(const IndexEntry& entry, std::span<std::byte, kIndexEntrySize> out) {
  codec::StoreLE<std::uint32_t>(out.data(), entry.relative_offset);
  codec::StoreLE<std::uint32_t>(out.data() + 4, entry.position);
  codec::StoreLE<std::int64_t>(out.data() + 8, entry.max_timestamp_ms);
}

IndexEntry DecodeIndexEntry(std::span<const std::byte, kIndexEntrySize> in) {
  return IndexEntry{codec::LoadLE<std::uint32_t>(in.data()),
                    codec::LoadLE<std::uint32_t>(in.data() + 4),
                    codec::LoadLE<std::int64_t>(in.data() + 8)};
}

Result<std::vector<IndexEntry>> LoadIndex(const RandomAccessFile& index, std::uint64_t log_size) {
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t size, index.Size());
  std::vector<std::byte> bytes(static_cast<std::size_t>(size - size % kIndexEntrySize));
  JUNCTION_ASSIGN_OR_RETURN(std::size_t got, index.Read(0, bytes));
  std::vector<IndexEntry> entries;
  entries.reserve(got / kIndexEntrySize);
  for (std::size_t at = 0; at + kIndexEntrySize <= got; at += kIndexEntrySize) {
    IndexEntry e = DecodeIndexEntry(std::span(bytes).subspan(at).first<kIndexEntrySize>());
    if (e.position >= log_size) break;
    if (!entries.empty()) {
      const IndexEntry& prev = entries.back();
      if (e.relative_offset <= prev.relative_offset || e.position <= prev.position ||
          e.max_timestamp_ms < prev.max_timestamp_ms) {
        break;
      }
    }
    entries.push_back(e);
  }
  return entries;
}

Result<IndexEntry> ReadIndexEntry(const RandomAccessFile& index, std::uint64_t i) {
  std::array<std::byte, kIndexEntrySize> raw;
  JUNCTION_ASSIGN_OR_RETURN(std::size_t got, index.Read(i * kIndexEntrySize, raw));
  if (got != kIndexEntrySize) {
    return DataLossError("index entry " + std::to_string(i) + " is beyond the end of the index");
  }
  return DecodeIndexEntry(raw);
}

Result<std::optional<IndexEntry>> IndexFloor(const RandomAccessFile& index, std::uint64_t entries,
                                             std::uint32_t relative_offset) {
  // Invariant: entries [0, lo) are <= target, [hi, entries) are > target.
  std::uint64_t lo = 0;
  std::uint64_t hi = entries;
  std::optional<IndexEntry> best;
  while (lo < hi) {
    std::uint64_t mid = lo + (hi - lo) / 2;
    JUNCTION_ASSIGN_OR_RETURN(IndexEntry e, ReadIndexEntry(index, mid));
    if (e.relative_offset <= relative_offset) {
      best = e;
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return best;
}

Result<std::uint64_t> IndexFirstAtOrAfterTime(const RandomAccessFile& index, std::uint64_t entries,
                                              std::int64_t timestamp_ms) {
  std::uint64_t lo = 0;
  std::uint64_t hi = entries;
  while (lo < hi) {
    std::uint64_t mid = lo + (hi - lo) / 2;
    JUNCTION_ASSIGN_OR_RETURN(IndexEntry e, ReadIndexEntry(index, mid));
    if (e.max_timestamp_ms >= timestamp_ms) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

BatchScanner::BatchScanner(const RandomAccessFile& file, std::uint64_t position, std::uint64_t end,
                           Offset expected, std::uint32_t max_batch_bytes, std::size_t buffer_bytes)
    : file_(file),
      position_(position),
      end_(end),
      expected_(expected),
      max_batch_bytes_(max_batch_bytes),
      buffer_bytes_(std::max<std::size_t>(buffer_bytes, codec::kBatchHeaderSize)) {}

Status BatchScanner::Fill(std::size_t need) {
  std::uint64_t have_end = buffer_position_ + buffer_size_;
  if (position_ >= buffer_position_ && position_ + need <= have_end) return OkStatus();
  std::size_t want = static_cast<std::size_t>(
      std::min<std::uint64_t>(std::max(need, buffer_bytes_), end_ - position_));
  if (buffer_.size() < want) buffer_.resize(want);
  JUNCTION_ASSIGN_OR_RETURN(std::size_t got, file_.Read(position_, std::span(buffer_).first(want)));
  buffer_position_ = position_;
  buffer_size_ = got;
  if (got < need) {
    return DataLossError("batch " + PositionText(position_) + " is cut short: the file ends " +
                         std::to_string(got) + " bytes later");
  }
  return OkStatus();
}

Result<std::optional<ScannedBatch>> BatchScanner::Next() {
  if (position_ >= end_) return std::optional<ScannedBatch>();
  if (end_ - position_ < codec::kBatchHeaderSize) {
    return DataLossError("partial batch header " + PositionText(position_) + " (" +
                         std::to_string(end_ - position_) + " bytes)");
  }
  JUNCTION_RETURN_IF_ERROR(Fill(codec::kBatchHeaderSize));
  auto at = static_cast<std::size_t>(position_ - buffer_position_);
  Result<codec::BatchHeader> header = codec::ParseBatchHeader(
      std::span(buffer_).subspan(at, codec::kBatchHeaderSize), max_batch_bytes_);
  if (!header.ok()) return header.status().WithContext(PositionText(position_));
  if (header->batch_length > end_ - position_) {
    return DataLossError("batch " + PositionText(position_) + " claims " +
                         std::to_string(header->batch_length) + " bytes but only " +
                         std::to_string(end_ - position_) + " remain");
  }
  JUNCTION_RETURN_IF_ERROR(Fill(header->batch_length));
  at = static_cast<std::size_t>(position_ - buffer_position_);
  std::span<const std::byte> bytes = std::span(buffer_).subspan(at, header->batch_length);
  Result<codec::BatchHeader> verified = codec::VerifyBatch(bytes, max_batch_bytes_);
  if (!verified.ok()) return verified.status().WithContext(PositionText(position_));
  if (verified->base_offset != expected_) {
    return DataLossError("batch " + PositionText(position_) + " has base offset " +
                         std::to_string(verified->base_offset.value()) + ", expected " +
                         std::to_string(expected_.value()));
  }
  ScannedBatch batch{position_, *verified, bytes};
  position_ += header->batch_length;
  expected_ = verified->next_offset();
  return std::optional<ScannedBatch>(batch);
}

Result<std::optional<std::uint64_t>> FindLaterValidBatch(const RandomAccessFile& file,
                                                         std::uint64_t from, std::uint64_t end,
                                                         Offset expected,
                                                         std::uint32_t max_batch_bytes) {
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  std::array<std::byte, 4> magic;
  codec::StoreLE<std::uint32_t>(magic.data(), codec::kBatchMagic);
  std::vector<std::byte> chunk(kChunk + codec::kBatchHeaderSize);
  for (std::uint64_t base = from + 1; base + codec::kBatchHeaderSize <= end; base += kChunk) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), end - base));
    JUNCTION_ASSIGN_OR_RETURN(std::size_t got, file.Read(base, std::span(chunk).first(want)));
    for (std::size_t i = 0; i + codec::kBatchHeaderSize <= got && i < kChunk; ++i) {
      if (std::memcmp(chunk.data() + i, magic.data(), magic.size()) != 0) continue;
      auto header = codec::ParseBatchHeader(std::span(chunk).subspan(i, codec::kBatchHeaderSize),
                                            max_batch_bytes);
      if (!header.ok() || header->base_offset < expected) continue;
      std::uint64_t position = base + i;
      if (header->batch_length > end - position) continue;
      std::vector<std::byte> bytes(header->batch_length);
      JUNCTION_ASSIGN_OR_RETURN(std::size_t n, file.Read(position, bytes));
      if (n == bytes.size() && codec::VerifyBatch(bytes, max_batch_bytes).ok()) {
        return std::optional<std::uint64_t>(position);
      }
    }
  }
  return std::optional<std::uint64_t>();
}

}  // namespace junction::storage
