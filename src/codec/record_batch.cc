#include "codec/record_batch.h"

#include <lz4frame.h>
#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

#include "codec/byte_order.h"
#include "codec/record_batch_internal.h"

namespace junction::codec {
namespace {

namespace f = batch_field;

constexpr std::uint16_t kCompressionMask = 0x7;
constexpr int kZstdLevel = 3;

const std::byte* Ptr(std::string_view s) { return reinterpret_cast<const std::byte*>(s.data()); }

std::size_t VarintSize(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

std::size_t BytesSize(std::optional<std::string_view> bytes) {
  if (!bytes) return VarintSize(ZigZagEncode(-1));
  return VarintSize(ZigZagEncode(static_cast<std::int64_t>(bytes->size()))) + bytes->size();
}

// Writes `v` as PutVarint would at `p`; returns the end.
char* WriteVarint(char* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

char* WriteBytes(char* p, std::optional<std::string_view> bytes) {
  if (!bytes) return WriteVarint(p, ZigZagEncode(-1));
  p = WriteVarint(p, ZigZagEncode(static_cast<std::int64_t>(bytes->size())));
  if (!bytes->empty()) std::memcpy(p, bytes->data(), bytes->size());
  return p + bytes->size();
}

Result<std::string> Compress(Compression c, std::string_view in) {
  std::string out;
  if (c == Compression::kLz4) {
    out.resize(LZ4F_compressFrameBound(in.size(), nullptr));
    std::size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), nullptr);
    if (LZ4F_isError(n)) return InternalError(std::string("lz4: ") + LZ4F_getErrorName(n));
    out.resize(n);
  } else {
    out.resize(ZSTD_compressBound(in.size()));
    std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), kZstdLevel);
    if (ZSTD_isError(n)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(n));
    out.resize(n);
  }
  return out;
}

// Decompresses one frame, refusing to produce more than `limit` bytes.
Result<std::string> Decompress(Compression c, std::span<const std::byte> in, std::size_t limit) {
  std::string out;
  std::size_t produced = 0;
  auto grow = [&]() -> Status {
    if (out.size() >= limit) {
      return DataLossError("decompressed records exceed " + std::to_string(limit) + " bytes");
    }
    out.resize(std::min(limit, std::max<std::size_t>(out.size() * 2, 64 * 1024)));
    return OkStatus();
  };
  if (c == Compression::kLz4) {
    LZ4F_dctx* raw = nullptr;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&raw, LZ4F_VERSION))) {
      return InternalError("lz4: cannot create a decompression context");
    }
    std::unique_ptr<LZ4F_dctx, decltype(&LZ4F_freeDecompressionContext)> ctx(
        raw, &LZ4F_freeDecompressionContext);
    std::size_t consumed = 0;
    while (true) {
      if (produced == out.size()) JUNCTION_RETURN_IF_ERROR(grow());
      std::size_t dst_size = out.size() - produced;
      std::size_t src_size = in.size() - consumed;
      std::size_t hint = LZ4F_decompress(ctx.get(), out.data() + produced, &dst_size,
                                         in.data() + consumed, &src_size, nullptr);
      if (LZ4F_isError(hint)) return DataLossError(std::string("lz4: ") + LZ4F_getErrorName(hint));
      produced += dst_size;
      consumed += src_size;
      if (hint == 0) break;  // frame complete
      if (consumed == in.size() && dst_size == 0) return DataLossError("lz4: truncated frame");
    }
    if (consumed != in.size()) return DataLossError("lz4: bytes after the end of the frame");
  } else {
    std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
    if (!ctx) return InternalError("zstd: cannot create a decompression context");
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    std::size_t hint = 1;
    while (hint != 0) {
      if (produced == out.size()) JUNCTION_RETURN_IF_ERROR(grow());
      ZSTD_outBuffer output{out.data(), out.size(), produced};
      std::size_t before_in = input.pos;
      hint = ZSTD_decompressStream(ctx.get(), &output, &input);
      if (ZSTD_isError(hint)) return DataLossError(std::string("zstd: ") + ZSTD_getErrorName(hint));
      bool progressed = output.pos != produced || input.pos != before_in;
      produced = output.pos;
      if (hint != 0 && !progressed) return DataLossError("zstd: truncated frame");
    }
    if (input.pos != input.size) return DataLossError("zstd: bytes after the end of the frame");
  }
  out.resize(produced);
  return out;
}

// Reads a zigzag length: -1 (absent) or a length that fits in what remains.
Result<std::optional<std::string_view>> GetBytes(std::span<const std::byte> in, std::size_t& pos,
                                                 std::size_t end, const char* field) {
  auto raw = GetVarint(in.first(end), pos);
  if (!raw) return DataLossError(std::string(field) + ": bad varint");
  std::int64_t length = ZigZagDecode(*raw);
  if (length == -1) return std::optional<std::string_view>();
  if (length < 0 || static_cast<std::uint64_t>(length) > end - pos) {
    return DataLossError(std::string(field) + ": length " + std::to_string(length) +
                         " exceeds the record");
  }
  std::string_view value(reinterpret_cast<const char*>(in.data() + pos),
                         static_cast<std::size_t>(length));
  pos += static_cast<std::size_t>(length);
  return std::optional<std::string_view>(value);
}

}  // namespace

namespace internal {

// One record at `pos`, in place; its headers are appended to `headers`
// (the caller points the record's span at them once they stop moving).
Result<RecordView> DecodeRecordChecked(std::span<const std::byte> in, std::size_t& pos,
                                       const BatchHeader& h,
                                       std::vector<RecordHeaderView>& headers) {
  const std::size_t start = pos;
  auto length = GetVarint(in, pos);
  if (!length) return DataLossError("length: bad varint");
  if (*length > in.size() - pos) return DataLossError("length: exceeds the batch");
  std::size_t end = pos + static_cast<std::size_t>(*length);
  if (pos >= end) return DataLossError("attributes: missing");
  if (in[pos++] != std::byte{0}) return DataLossError("attributes: unknown bits set");
  RecordView record;
  record.position = static_cast<std::uint32_t>(kBatchHeaderSize + start);
  auto ts = GetVarint(in.first(end), pos);
  if (!ts) return DataLossError("timestamp_delta: bad varint");
  record.timestamp_ms = h.first_timestamp_ms + ZigZagDecode(*ts);
  auto delta = GetVarint(in.first(end), pos);
  if (!delta || *delta > h.last_offset_delta) return DataLossError("offset_delta: out of range");
  record.offset = h.base_offset + *delta;
  JUNCTION_ASSIGN_OR_RETURN(record.key, GetBytes(in, pos, end, "key"));
  JUNCTION_ASSIGN_OR_RETURN(record.value, GetBytes(in, pos, end, "value"));
  auto count = GetVarint(in.first(end), pos);
  if (!count || *count > end - pos) return DataLossError("header_count: out of range");
  for (std::uint64_t i = 0; i < *count; ++i) {
    RecordHeaderView header;
    JUNCTION_ASSIGN_OR_RETURN(std::optional<std::string_view> key,
                              GetBytes(in, pos, end, "header key"));
    if (!key) return DataLossError("header key: absent");
    header.key = *key;
    JUNCTION_ASSIGN_OR_RETURN(header.value, GetBytes(in, pos, end, "header value"));
    headers.push_back(header);
  }
  if (pos != end) return DataLossError("length: record has trailing bytes");
  return record;
}

namespace {

// A varint at `p` (before `end`); false when it does not end before `end`
// or overflows, as GetVarint.
[[gnu::always_inline]] inline bool ReadVarint(const std::uint8_t*& p, const std::uint8_t* end,
                                              std::uint64_t& v) {
  if (p < end && *p < 0x80) {
    v = *p++;
    return true;
  }
  std::uint64_t result = 0;
  for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
    const std::uint8_t byte = *p++;
    if (shift == 63 && byte > 1) return false;
    result |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      v = result;
      return true;
    }
  }
  return false;
}

// A zigzag length and its bytes, as GetBytes: absent (-1) or within `end`.
[[gnu::always_inline]] inline bool ReadBytes(const std::uint8_t*& p, const std::uint8_t* end,
                                             std::optional<std::string_view>& out) {
  std::uint64_t raw = 0;
  if (!ReadVarint(p, end, raw)) return false;
  const std::int64_t length = ZigZagDecode(raw);
  if (length == -1) {
    out.reset();
    return true;
  }
  if (length < 0 || static_cast<std::uint64_t>(length) > static_cast<std::uint64_t>(end - p)) {
    return false;
  }
  out.emplace(reinterpret_cast<const char*>(p), static_cast<std::size_t>(length));
  p += length;
  return true;
}

}  // namespace

bool DecodeRecordFast(std::span<const std::byte> body, std::size_t& pos, const BatchHeader& h,
                      std::vector<RecordHeaderView>& headers, RecordView& out) {
  const auto* base = reinterpret_cast<const std::uint8_t*>(body.data());
  const std::uint8_t* p = base + pos;
  const std::uint8_t* limit = base + body.size();
  std::uint64_t length = 0;
  if (!ReadVarint(p, limit, length) || length > static_cast<std::uint64_t>(limit - p) ||
      length == 0 || *p != 0) {
    return false;
  }
  const std::uint8_t* end = p + length;
  ++p;  // attributes
  std::uint64_t ts = 0;
  std::uint64_t delta = 0;
  std::uint64_t count = 0;
  RecordView record;
  if (!ReadVarint(p, end, ts) || !ReadVarint(p, end, delta) || delta > h.last_offset_delta ||
      !ReadBytes(p, end, record.key) || !ReadBytes(p, end, record.value) ||
      !ReadVarint(p, end, count) || count > static_cast<std::uint64_t>(end - p)) {
    return false;
  }
  const std::size_t first = headers.size();
  for (std::uint64_t i = 0; i < count; ++i) {
    RecordHeaderView& header = headers.emplace_back();
    std::optional<std::string_view> key;
    if (!ReadBytes(p, end, key) || !key || !ReadBytes(p, end, header.value)) {
      headers.resize(first);
      return false;
    }
    header.key = *key;
  }
  if (p != end) {
    headers.resize(first);
    return false;
  }
  record.timestamp_ms = h.first_timestamp_ms + ZigZagDecode(ts);
  record.offset = h.base_offset + delta;
  record.position = static_cast<std::uint32_t>(kBatchHeaderSize + pos);
  pos = static_cast<std::size_t>(end - base);
  out = record;
  return true;
}

}  // namespace internal

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kLz4:
      return "lz4";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

Result<Compression> ParseCompression(std::string_view name) {
  for (Compression c : {Compression::kNone, Compression::kLz4, Compression::kZstd}) {
    if (CompressionName(c) == name) return c;
  }
  return InvalidArgumentError("compression must be none, lz4 or zstd, got '" + std::string(name) +
                              "'");
}

Result<BatchHeader> ParseBatchHeader(std::span<const std::byte> bytes,
                                     std::uint32_t max_batch_bytes) {
  if (bytes.size() < kBatchHeaderSize) {
    return OutOfRangeError("batch header needs " + std::to_string(kBatchHeaderSize) +
                           " bytes, have " + std::to_string(bytes.size()));
  }
  const std::byte* p = bytes.data();
  if (LoadLE<std::uint32_t>(p + f::kMagic) != kBatchMagic) return DataLossError("batch: bad magic");
  if (static_cast<std::uint8_t>(p[f::kVersion]) != kBatchFormatVersion) {
    return DataLossError("batch: unknown format version " +
                         std::to_string(static_cast<int>(p[f::kVersion])));
  }
  if (p[f::kReserved] != std::byte{0} || p[f::kReserved + 1] != std::byte{0} ||
      p[f::kReserved + 2] != std::byte{0}) {
    return DataLossError("batch: reserved header bytes are not zero");
  }
  BatchHeader h;
  h.base_offset = Offset(LoadLE<std::uint64_t>(p + f::kBaseOffset));
  h.batch_length = LoadLE<std::uint32_t>(p + f::kBatchLength);
  if (h.batch_length < kBatchHeaderSize || h.batch_length > max_batch_bytes) {
    return DataLossError("batch: batch_length " + std::to_string(h.batch_length) +
                         " outside [72, " + std::to_string(max_batch_bytes) + "]");
  }
  h.record_count = LoadLE<std::uint32_t>(p + f::kRecordCount);
  h.checksum = LoadLE<std::uint64_t>(p + f::kChecksum);
  auto attributes = LoadLE<std::uint16_t>(p + f::kAttributes);
  if ((attributes & ~kCompressionMask) != 0 || (attributes & kCompressionMask) > 2 ||
      LoadLE<std::uint16_t>(p + f::kReserved2) != 0) {
    return DataLossError("batch: unknown attribute bits");
  }
  h.compression = static_cast<Compression>(attributes & kCompressionMask);
  h.last_offset_delta = LoadLE<std::uint32_t>(p + f::kLastOffsetDelta);
  if (h.record_count == 0 || h.last_offset_delta < h.record_count - 1) {
    return DataLossError("batch: record_count " + std::to_string(h.record_count) +
                         " inconsistent with last_offset_delta " +
                         std::to_string(h.last_offset_delta));
  }
  // The offset after the batch (next_offset()) must exist too.
  if (h.base_offset.value() >= std::numeric_limits<std::uint64_t>::max() - h.last_offset_delta) {
    return DataLossError("batch: base_offset " + std::to_string(h.base_offset.value()) +
                         " + last_offset_delta " + std::to_string(h.last_offset_delta) +
                         " leaves no next offset below 2^64");
  }
  h.first_timestamp_ms = LoadLE<std::int64_t>(p + f::kFirstTimestamp);
  h.max_timestamp_ms = LoadLE<std::int64_t>(p + f::kMaxTimestamp);
  h.producer_id = ProducerId(LoadLE<std::uint64_t>(p + f::kProducerId));
  h.base_sequence = SequenceNumber(LoadLE<std::uint64_t>(p + f::kBaseSequence));
  return h;
}

std::uint64_t ComputeBatchChecksum(std::span<const std::byte> batch) {
  // The seed folds in the header fields before the checksum, all but
  // base_offset: magic, version, reserved, batch_length and record_count.
  std::uint64_t seed = LoadLE<std::uint64_t>(batch.data() + f::kMagic) ^
                       LoadLE<std::uint64_t>(batch.data() + f::kBatchLength);
  return XXH3_64bits_withSeed(batch.data() + f::kAttributes, batch.size() - f::kAttributes, seed);
}

Result<BatchHeader> VerifyBatch(std::span<const std::byte> batch, std::uint32_t max_batch_bytes) {
  JUNCTION_ASSIGN_OR_RETURN(BatchHeader h, ParseBatchHeader(batch, max_batch_bytes));
  if (batch.size() != h.batch_length) {
    return DataLossError("batch: batch_length " + std::to_string(h.batch_length) + " but " +
                         std::to_string(batch.size()) + " bytes given");
  }
  if (ComputeBatchChecksum(batch) != h.checksum) return DataLossError("batch: checksum mismatch");
  return h;
}

void SetBaseOffset(std::span<std::byte> batch, Offset base_offset) {
  JUNCTION_CHECK(batch.size() >= kBatchHeaderSize) << "SetBaseOffset on a short batch";
  StoreLE<std::uint64_t>(batch.data() + f::kBaseOffset, base_offset.value());
}

void StampBatchTime(std::span<std::byte> batch, std::int64_t timestamp_ms) {
  JUNCTION_CHECK(batch.size() >= kBatchHeaderSize) << "StampBatchTime on a short batch";
  StoreLE<std::int64_t>(batch.data() + f::kFirstTimestamp, timestamp_ms);
  StoreLE<std::int64_t>(batch.data() + f::kMaxTimestamp, timestamp_ms);
  StoreLE<std::uint64_t>(batch.data() + f::kChecksum, ComputeBatchChecksum(batch));
}

Result<std::vector<std::byte>> SliceBatch(std::span<const std::byte> batch, Offset first,
                                          Offset last, std::uint32_t first_position,
                                          std::uint32_t* end_position) {
  JUNCTION_ASSIGN_OR_RETURN(BatchHeader h, ParseBatchHeader(batch, kMaxBatchBytesLimit));
  if (h.batch_length != batch.size()) {
    return DataLossError("batch_length " + std::to_string(h.batch_length) + " but " +
                         std::to_string(batch.size()) + " bytes given");
  }
  if (h.compression != Compression::kNone) {
    return InvalidArgumentError("a compressed batch cannot be sliced");
  }
  std::span<const std::byte> body = batch.subspan(kBatchHeaderSize);
  std::size_t pos = 0;
  std::size_t begin = 0;  // of the run in `body`
  std::size_t end = 0;
  std::uint32_t count = 0;
  std::uint32_t first_index = 0;
  std::uint64_t last_delta = 0;
  std::int64_t max_ts_delta = 0;
  std::uint32_t i = 0;
  // A dense batch (offset deltas 0, 1, 2, ...: every batch the broker
  // stores) numbers its records by position, so the records before `first`
  // are passed by their lengths alone. A fetch that takes a stored batch in
  // several slices then reads each record's fields once, not once per
  // earlier slice.
  const bool dense = h.last_offset_delta + std::uint64_t{1} == h.record_count;
  if (dense && first > h.base_offset && first_position >= kBatchHeaderSize &&
      first_position < batch.size()) {
    // Where the caller says `first` starts: taken once the record there
    // reads as `first` (the loop below checks its framing as for any other).
    std::size_t at = first_position - kBatchHeaderSize;
    std::size_t field = at;
    auto length = GetVarint(body, field);
    std::optional<std::uint64_t> delta;
    if (length && *length <= body.size() - field && field + 1 < body.size()) {
      std::span<const std::byte> record = body.first(field + static_cast<std::size_t>(*length));
      ++field;  // past the attributes
      if (GetVarint(record, field)) delta = GetVarint(record, field);
    }
    if (delta && *delta <= h.last_offset_delta && *delta == first.value() - h.base_offset.value()) {
      pos = at;
      i = static_cast<std::uint32_t>(*delta);
    }
  }
  if (dense && first > h.base_offset && i == 0) {
    const std::uint64_t before =
        std::min<std::uint64_t>(first.value() - h.base_offset.value(), h.record_count);
    for (; i < before; ++i) {
      auto length = GetVarint(body, pos);
      if (!length || *length > body.size() - pos) {
        return DataLossError("record " + std::to_string(i) + ": length exceeds the batch");
      }
      pos += static_cast<std::size_t>(*length);
    }
  }
  for (; i < h.record_count; ++i) {
    const std::size_t start = pos;
    auto length = GetVarint(body, pos);
    if (!length || *length > body.size() - pos) {
      return DataLossError("record " + std::to_string(i) + ": length exceeds the batch");
    }
    const std::size_t record_end = pos + static_cast<std::size_t>(*length);
    std::span<const std::byte> record = body.first(record_end);
    std::size_t at = pos + 1;  // past the attributes
    auto ts = at <= record_end ? GetVarint(record, at) : std::nullopt;
    auto delta = ts ? GetVarint(record, at) : std::nullopt;
    if (!delta || *delta > h.last_offset_delta) {
      return DataLossError("record " + std::to_string(i) + ": bad timestamp or offset delta");
    }
    pos = record_end;
    const Offset offset = h.base_offset + *delta;
    if (offset < first) continue;
    if (offset > last) break;
    if (count == 0) {
      begin = start;
      first_index = i;
      max_ts_delta = ZigZagDecode(*ts);
    } else {
      max_ts_delta = std::max(max_ts_delta, ZigZagDecode(*ts));
    }
    end = record_end;
    last_delta = *delta;
    ++count;
  }
  if (count == 0) {
    return InvalidArgumentError("no record of the batch lies in offsets [" +
                                std::to_string(first.value()) + ", " +
                                std::to_string(last.value()) + "]");
  }
  if (end_position != nullptr) *end_position = static_cast<std::uint32_t>(kBatchHeaderSize + end);
  std::vector<std::byte> out(kBatchHeaderSize + (end - begin));
  std::copy_n(batch.data(), kBatchHeaderSize, out.data());
  std::copy(body.begin() + static_cast<std::ptrdiff_t>(begin),
            body.begin() + static_cast<std::ptrdiff_t>(end), out.begin() + kBatchHeaderSize);
  std::byte* p = out.data();
  StoreLE<std::uint32_t>(p + f::kBatchLength, static_cast<std::uint32_t>(out.size()));
  StoreLE<std::uint32_t>(p + f::kRecordCount, count);
  StoreLE<std::uint32_t>(p + f::kLastOffsetDelta, static_cast<std::uint32_t>(last_delta));
  // (Wrapping, as a hostile batch's fields may: the result is only stored.)
  StoreLE<std::uint64_t>(p + f::kMaxTimestamp, static_cast<std::uint64_t>(h.first_timestamp_ms) +
                                                   static_cast<std::uint64_t>(max_ts_delta));
  if (h.producer_id.value() != 0) {
    StoreLE<std::uint64_t>(p + f::kBaseSequence, h.base_sequence.value() + first_index);
  }
  StoreLE<std::uint64_t>(p + f::kChecksum, ComputeBatchChecksum(out));
  return out;
}

RecordBatchBuilder::RecordBatchBuilder(Options options) : options_(options) {}

void RecordBatchBuilder::Add(
    std::int64_t timestamp_ms, std::optional<std::string_view> key,
    std::optional<std::string_view> value,
    std::span<const std::pair<std::string_view, std::optional<std::string_view>>> headers) {
  if (count_ == 0) {
    first_timestamp_ms_ = timestamp_ms;
    max_timestamp_ms_ = timestamp_ms;
  }
  max_timestamp_ms_ = std::max(max_timestamp_ms_, timestamp_ms);
  // Sized first, then written in place: one resize of records_ per record.
  const std::uint64_t delta = ZigZagEncode(timestamp_ms - first_timestamp_ms_);
  std::size_t body = 1 + VarintSize(delta) + VarintSize(count_) + BytesSize(key) +
                     BytesSize(value) + VarintSize(headers.size());
  for (const auto& [header_key, header_value] : headers) {
    body += BytesSize(header_key) + BytesSize(header_value);
  }
  if (records_.empty()) records_.resize(kBatchHeaderSize);  // filled in by Build
  const std::size_t at = records_.size();
  records_.resize(at + VarintSize(body) + body);
  char* p = reinterpret_cast<char*>(records_.data()) + at;
  p = WriteVarint(p, body);
  *p++ = '\0';  // attributes
  p = WriteVarint(p, delta);
  p = WriteVarint(p, count_);
  p = WriteBytes(p, key);
  p = WriteBytes(p, value);
  p = WriteVarint(p, headers.size());
  for (const auto& [header_key, header_value] : headers) {
    p = WriteBytes(p, header_key);
    p = WriteBytes(p, header_value);
  }
  JUNCTION_CHECK(p == reinterpret_cast<char*>(records_.data()) + records_.size())
      << "record size miscounted";
  ++count_;
}

void RecordBatchBuilder::Add(const Record& record) {
  std::vector<std::pair<std::string_view, std::optional<std::string_view>>> headers;
  headers.reserve(record.headers.size());
  for (const RecordHeader& h : record.headers) headers.emplace_back(h.key, h.value);
  Add(record.timestamp_ms, record.key, record.value, headers);
}

Result<std::vector<std::byte>> RecordBatchBuilder::Build() {
  if (count_ == 0) return InvalidArgumentError("a batch needs at least one record");
  // Uncompressed, the records are in place behind the header's room already.
  std::vector<std::byte> batch;
  if (options_.compression == Compression::kNone) {
    batch = std::move(records_);
  } else {
    std::string_view records(reinterpret_cast<const char*>(records_.data()) + kBatchHeaderSize,
                             records_.size() - kBatchHeaderSize);
    Result<std::string> payload = Compress(options_.compression, records);
    records_.clear();
    if (!payload.ok()) {
      count_ = 0;
      return payload.status();
    }
    batch.resize(kBatchHeaderSize + payload->size());
    std::copy_n(Ptr(*payload), payload->size(), batch.data() + kBatchHeaderSize);
  }
  const std::size_t total = batch.size();
  if (total > options_.max_batch_bytes) {
    records_.clear();
    count_ = 0;
    return ResourceExhaustedError("batch of " + std::to_string(total) + " bytes exceeds the " +
                                  std::to_string(options_.max_batch_bytes) + "-byte limit");
  }
  std::byte* p = batch.data();
  StoreLE<std::uint32_t>(p + f::kMagic, kBatchMagic);
  p[f::kVersion] = std::byte{kBatchFormatVersion};
  StoreLE<std::uint64_t>(p + f::kBaseOffset, 0);
  StoreLE<std::uint32_t>(p + f::kBatchLength, static_cast<std::uint32_t>(total));
  StoreLE<std::uint32_t>(p + f::kRecordCount, count_);
  StoreLE<std::uint16_t>(p + f::kAttributes, static_cast<std::uint16_t>(options_.compression));
  StoreLE<std::uint32_t>(p + f::kLastOffsetDelta, count_ - 1);
  StoreLE<std::int64_t>(p + f::kFirstTimestamp, first_timestamp_ms_);
  StoreLE<std::int64_t>(p + f::kMaxTimestamp, max_timestamp_ms_);
  StoreLE<std::uint64_t>(p + f::kProducerId, options_.producer_id.value());
  StoreLE<std::uint64_t>(p + f::kBaseSequence, options_.base_sequence.value());
  StoreLE<std::uint64_t>(p + f::kChecksum, ComputeBatchChecksum(batch));
  records_.clear();
  count_ = 0;
  return batch;
}

Status RecordViews::Decode(std::span<const std::byte> batch, std::uint32_t max_batch_bytes) {
  records_.clear();
  Result<BatchHeader> header = VerifyBatch(batch, max_batch_bytes);
  if (!header.ok()) return header.status();
  return DecodeRecords(batch, *header, max_batch_bytes);
}

Status RecordViews::DecodeVerified(std::span<const std::byte> batch,
                                   std::uint32_t max_batch_bytes) {
  records_.clear();
  Result<BatchHeader> header = ParseBatchHeader(batch, max_batch_bytes);
  if (!header.ok()) return header.status();
  if (header->batch_length != batch.size()) {
    return DataLossError("batch_length " + std::to_string(header->batch_length) + " but " +
                         std::to_string(batch.size()) + " bytes given");
  }
  return DecodeRecords(batch, *header, max_batch_bytes);
}

Status RecordViews::DecodeRecords(std::span<const std::byte> batch, const BatchHeader& header,
                                  std::uint32_t max_batch_bytes) {
  headers_.clear();
  first_header_.clear();
  header_ = header;
  std::span<const std::byte> body = batch.subspan(kBatchHeaderSize);
  if (header_.compression != Compression::kNone) {
    JUNCTION_ASSIGN_OR_RETURN(
        decompressed_, Decompress(header_.compression, body, std::size_t{max_batch_bytes} * 4));
    body = std::span(Ptr(decompressed_), decompressed_.size());
  }
  std::size_t reserve = std::min<std::size_t>(header_.record_count, body.size() / 4 + 1);
  records_.reserve(reserve);
  first_header_.reserve(reserve);
  // A message's record has its four required attributes at least; room for
  // at most one header per 16 bytes of body (a header takes 2 or more).
  headers_.reserve(std::min<std::size_t>(std::size_t{header_.record_count} * 4, body.size() / 16));
  std::size_t pos = 0;
  std::uint64_t previous_delta = 0;
  Status failed;
  for (std::uint32_t i = 0; i < header_.record_count && failed.ok(); ++i) {
    std::size_t first = headers_.size();
    RecordView record;
    if (!internal::DecodeRecordFast(body, pos, header_, headers_, record)) {
      // Unusual or malformed: the careful reader decides, and names why.
      Result<RecordView> checked = internal::DecodeRecordChecked(body, pos, header_, headers_);
      if (!checked.ok()) {
        failed = checked.status().WithContext("record " + std::to_string(i));
        break;
      }
      record = *checked;
    }
    std::uint64_t delta = record.offset - header_.base_offset;
    if (i > 0 && delta <= previous_delta) {
      failed = DataLossError("record " + std::to_string(i) + ": offset_delta not increasing");
      break;
    }
    previous_delta = delta;
    records_.push_back(record);
    first_header_.push_back(first);
  }
  if (failed.ok() && previous_delta != header_.last_offset_delta) {
    failed = DataLossError("batch: last record's offset_delta differs from last_offset_delta");
  }
  if (failed.ok() && pos != body.size())
    failed = DataLossError("batch: bytes after the last record");
  if (!failed.ok()) {
    records_.clear();
    return failed;
  }
  // headers_ no longer grows: point each record at its headers.
  for (std::size_t i = 0; i < records_.size(); ++i) {
    std::size_t first = first_header_[i];
    std::size_t last = i + 1 < records_.size() ? first_header_[i + 1] : headers_.size();
    records_[i].headers = std::span<const RecordHeaderView>(headers_).subspan(first, last - first);
  }
  return OkStatus();
}

Result<RecordView> DecodeRecordAt(std::span<const std::byte> batch, std::uint32_t position,
                                  std::vector<RecordHeaderView>& headers) {
  headers.clear();
  JUNCTION_ASSIGN_OR_RETURN(BatchHeader header, ParseBatchHeader(batch, kMaxBatchBytesLimit));
  if (header.compression != Compression::kNone) {
    return InvalidArgumentError("a record of a compressed batch has no position of its own");
  }
  if (header.batch_length != batch.size() || position < kBatchHeaderSize ||
      position >= batch.size()) {
    return InvalidArgumentError("no record starts at byte " + std::to_string(position) +
                                " of a batch of " + std::to_string(batch.size()) + " bytes");
  }
  std::span<const std::byte> body = batch.subspan(kBatchHeaderSize);
  std::size_t pos = position - kBatchHeaderSize;
  RecordView record;
  if (!internal::DecodeRecordFast(body, pos, header, headers, record)) {
    JUNCTION_ASSIGN_OR_RETURN(record, internal::DecodeRecordChecked(body, pos, header, headers));
  }
  record.headers = headers;
  return record;
}

Result<std::vector<Record>> DecodeRecords(std::span<const std::byte> batch,
                                          std::uint32_t max_batch_bytes) {
  RecordViews views;
  JUNCTION_RETURN_IF_ERROR(views.Decode(batch, max_batch_bytes));
  std::vector<Record> records;
  records.reserve(views.records().size());
  for (const RecordView& view : views.records()) {
    Record& record = records.emplace_back();
    record.offset = view.offset;
    record.timestamp_ms = view.timestamp_ms;
    if (view.key) record.key.emplace(*view.key);
    if (view.value) record.value.emplace(*view.value);
    record.headers.reserve(view.headers.size());
    for (const RecordHeaderView& h : view.headers) {
      RecordHeader& header = record.headers.emplace_back();
      header.key = h.key;
      if (h.value) header.value.emplace(*h.value);
    }
  }
  return records;
}

}  // namespace junction::codec
