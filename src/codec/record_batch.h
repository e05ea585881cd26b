#pragma once

// The record batch: the unit of checksum, compression, storage and transfer.
// The format is specified in docs/formats/log.md; this file follows it field
// for field. Batches are built by producers (RecordBatchBuilder), stamped with
// a base offset by the log (SetBaseOffset), verified on every read
// (VerifyBatch) and decoded by consumers (RecordDecoder). Pure functions on
// bytes: no I/O, thread-compatible.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "junction/ids.h"
#include "junction/result.h"

namespace junction::codec {

inline constexpr std::size_t kBatchHeaderSize = 72;
inline constexpr std::uint32_t kBatchMagic = 0x31424E4A;  // "JNB1" in file order
inline constexpr std::uint8_t kBatchFormatVersion = 1;
inline constexpr std::uint32_t kDefaultMaxBatchBytes = 8u << 20;
inline constexpr std::uint32_t kMaxBatchBytesLimit = 64u << 20;

// Byte positions of the header fields (docs/formats/log.md, "Record batch").
namespace batch_field {
inline constexpr std::size_t kMagic = 0;             // 4
inline constexpr std::size_t kVersion = 4;           // 1
inline constexpr std::size_t kReserved = 5;          // 3
inline constexpr std::size_t kBaseOffset = 8;        // 8
inline constexpr std::size_t kBatchLength = 16;      // 4
inline constexpr std::size_t kRecordCount = 20;      // 4
inline constexpr std::size_t kChecksum = 24;         // 8
inline constexpr std::size_t kAttributes = 32;       // 2, first checksummed byte
inline constexpr std::size_t kReserved2 = 34;        // 2
inline constexpr std::size_t kLastOffsetDelta = 36;  // 4
inline constexpr std::size_t kFirstTimestamp = 40;   // 8
inline constexpr std::size_t kMaxTimestamp = 48;     // 8
inline constexpr std::size_t kProducerId = 56;       // 8
inline constexpr std::size_t kBaseSequence = 64;     // 8
}  // namespace batch_field
static_assert(batch_field::kBaseSequence + 8 == kBatchHeaderSize);
static_assert(batch_field::kChecksum + 8 == batch_field::kAttributes);

enum class Compression : std::uint8_t { kNone = 0, kLz4 = 1, kZstd = 2 };

std::string_view CompressionName(Compression c);
Result<Compression> ParseCompression(std::string_view name);  // "none", "lz4", "zstd"

struct BatchHeader {
  Offset base_offset;
  std::uint32_t batch_length = 0;
  std::uint32_t record_count = 0;
  std::uint64_t checksum = 0;
  Compression compression = Compression::kNone;
  std::uint32_t last_offset_delta = 0;
  std::int64_t first_timestamp_ms = 0;
  std::int64_t max_timestamp_ms = 0;
  ProducerId producer_id;
  SequenceNumber base_sequence;

  Offset last_offset() const { return base_offset + last_offset_delta; }
  // The base offset the batch after this one must have.
  Offset next_offset() const { return base_offset + (std::uint64_t{last_offset_delta} + 1); }
};

// Reads and structurally checks a header: magic, version, reserved bytes,
// attributes, 72 <= batch_length <= max_batch_bytes, record_count >= 1 and
// last_offset_delta >= record_count - 1. Does not read past the header and
// does not verify the checksum. DataLoss (with the field named) on failure;
// OutOfRange when fewer than kBatchHeaderSize bytes are given.
Result<BatchHeader> ParseBatchHeader(std::span<const std::byte> bytes,
                                     std::uint32_t max_batch_bytes = kDefaultMaxBatchBytes);

// XXH3-64 of batch[kAttributes, batch.size()) seeded with the XOR of the
// 64-bit words at kMagic and kBatchLength: covers every byte but base_offset
// and the checksum itself. REQUIRES: batch.size() >= kBatchHeaderSize.
std::uint64_t ComputeBatchChecksum(std::span<const std::byte> batch);

// ParseBatchHeader, then: batch.size() == batch_length and the checksum
// matches. DataLoss naming the check that failed.
Result<BatchHeader> VerifyBatch(std::span<const std::byte> batch,
                                std::uint32_t max_batch_bytes = kDefaultMaxBatchBytes);

// Writes base_offset into a batch (not covered by the checksum).
// REQUIRES: batch.size() >= kBatchHeaderSize.
void SetBaseOffset(std::span<std::byte> batch, Offset base_offset);

// Stamps a batch with the time its broker stored it (Kafka's "log append
// time"): first_timestamp and max_timestamp become `timestamp_ms` and the
// checksum is computed again; no record is touched. Every record then reads
// as timestamp_ms plus its timestamp_delta, so a batch whose deltas are all
// zero reads as stored at timestamp_ms throughout.
// REQUIRES: batch.size() >= kBatchHeaderSize.
void StampBatchTime(std::span<std::byte> batch, std::int64_t timestamp_ms);

// A batch of the records of `batch` whose offsets lie in [first, last]: a
// run of its records, their bytes unchanged, under a header of its own
// with the same base_offset, attributes, first_timestamp and producer_id,
// and its own batch_length, record_count, last_offset_delta, max_timestamp,
// base_sequence (its first record's) and checksum. So junctiond sends part
// of a stored batch without encoding its records again (wire.md, DELIVER).
// InvalidArgument for a compressed batch or a range holding none of its
// records; DataLoss for a malformed header or record framing. The batch's
// checksum is not verified (the log verified it on read). In a dense batch
// (offset deltas 0, 1, 2, ...) the records before `first` are passed by
// their lengths alone: the cost is that of the slice, plus a varint per
// record before it. `first_position` (when not 0): the byte of `batch` where
// the record at `first` starts, as RecordView::position or an earlier
// slice's `end_position` gave it: in a dense batch the slice starts there,
// with no varint per record before it. It is checked only against the
// offset delta read there (a mismatch: ignored), so a position where no
// record starts may slice wrongly: pass only positions of this batch.
// `end_position` (when given) receives the byte of `batch` after the
// slice's last record: where the record after `last` starts, the
// `first_position` of a slice that goes on from there.
Result<std::vector<std::byte>> SliceBatch(std::span<const std::byte> batch, Offset first,
                                          Offset last, std::uint32_t first_position = 0,
                                          std::uint32_t* end_position = nullptr);

struct RecordHeader {
  std::string key;
  std::optional<std::string> value;
  friend bool operator==(const RecordHeader&, const RecordHeader&) = default;
};

// An owned record, as producers give it and tests compare it.
struct Record {
  Offset offset;  // ignored by the builder (offsets follow insertion order)
  std::int64_t timestamp_ms = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<RecordHeader> headers;
  friend bool operator==(const Record&, const Record&) = default;
};

// Builds one batch from records. Not thread-safe.
class RecordBatchBuilder {
 public:
  struct Options {
    Compression compression = Compression::kNone;
    ProducerId producer_id{};  // 0: no idempotence
    SequenceNumber base_sequence{};
    std::uint32_t max_batch_bytes = kDefaultMaxBatchBytes;
  };

  RecordBatchBuilder() : RecordBatchBuilder(Options{}) {}
  explicit RecordBatchBuilder(Options options);

  void Add(
      std::int64_t timestamp_ms, std::optional<std::string_view> key,
      std::optional<std::string_view> value,
      std::span<const std::pair<std::string_view, std::optional<std::string_view>>> headers = {});
  void Add(const Record& record);

  std::uint32_t record_count() const { return count_; }
  // Uncompressed size of the batch if built now.
  std::size_t uncompressed_bytes() const {
    return records_.empty() ? kBatchHeaderSize : records_.size();
  }

  // The finished batch with base_offset 0. InvalidArgument when empty;
  // ResourceExhausted when larger than max_batch_bytes; Internal when the
  // compressor fails. The builder is empty again afterwards, after an error
  // too.
  Result<std::vector<std::byte>> Build();

 private:
  Options options_;
  // The batch being built: room for its header, then the records (empty
  // before the first Add).
  std::vector<std::byte> records_;
  std::uint32_t count_ = 0;
  std::int64_t first_timestamp_ms_ = 0;
  std::int64_t max_timestamp_ms_ = 0;
};

// Decodes all records of a batch, verifying it first. DataLoss on any
// malformed record, with the record index and field named.
Result<std::vector<Record>> DecodeRecords(std::span<const std::byte> batch,
                                          std::uint32_t max_batch_bytes = kDefaultMaxBatchBytes);

// A record header read in place (RecordViews).
struct RecordHeaderView {
  std::string_view key;
  std::optional<std::string_view> value;
};

// A record read in place: its key, value and headers point into the batch
// (into the RecordViews that decoded it, for a compressed batch).
struct RecordView {
  Offset offset;
  std::int64_t timestamp_ms = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::span<const RecordHeaderView> headers;
  // Where the record starts in the batch's bytes (its length varint), for
  // DecodeRecordAt; meaningful only in an uncompressed batch.
  std::uint32_t position = 0;
};

// Every record of a batch, decoded without copying keys, values or headers:
// what DecodeRecords checks and returns, as views. The views are valid
// while the batch's bytes are and until the next Decode; a RecordViews is
// neither copied nor moved (they may point into it). Decode again to reuse
// its buffers for the next batch.
class RecordViews {
 public:
  RecordViews() = default;
  RecordViews(const RecordViews&) = delete;
  RecordViews& operator=(const RecordViews&) = delete;

  // Verifies `batch` and decodes its records. DataLoss as DecodeRecords;
  // on error, records() is empty.
  Status Decode(std::span<const std::byte> batch,
                std::uint32_t max_batch_bytes = kDefaultMaxBatchBytes);
  // The same for a batch whose checksum was verified already (what
  // storage::Log::Read returns): the header's fields and every record are
  // checked, the checksum is not computed again.
  Status DecodeVerified(std::span<const std::byte> batch,
                        std::uint32_t max_batch_bytes = kDefaultMaxBatchBytes);
  const BatchHeader& header() const { return header_; }
  std::span<const RecordView> records() const { return records_; }

 private:
  Status DecodeRecords(std::span<const std::byte> batch, const BatchHeader& header,
                       std::uint32_t max_batch_bytes);

  BatchHeader header_{};
  std::vector<RecordView> records_;
  std::vector<RecordHeaderView> headers_;
  std::vector<std::size_t> first_header_;  // per record, into headers_, while decoding
  std::string decompressed_;
};

// The record that starts at byte `position` of an uncompressed batch (a
// RecordView::position its RecordViews gave), with its headers in
// `headers` (cleared first; the view's span points into it). Reads the
// header's fields but does not verify the checksum or the other records:
// for a batch decoded whole before (the broker's stored batches).
// InvalidArgument for a compressed batch or a position outside the records;
// DataLoss for a malformed record.
Result<RecordView> DecodeRecordAt(std::span<const std::byte> batch, std::uint32_t position,
                                  std::vector<RecordHeaderView>& headers);

}  // namespace junction::codec
