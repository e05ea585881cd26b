// Fuzzes the record batch decoder (docs/formats/log.md). Random bytes almost
// never carry a valid XXH3 checksum, so each input is tried twice: as given,
// and with its checksum field recomputed, which lets the fuzzer reach the
// record parser. Every batch that decodes must rebuild into a batch that
// decodes to the same records (a round-trip oracle), and a slice of it
// (SliceBatch) must decode to the records of its range, and be the same
// when told where its first record starts. SliceBatch is also
// run on every input: it may fail, never crash. RecordViews::DecodeVerified
// must give what Decode gives, and each record decoded alone at its
// position (DecodeRecordAt) must be the same record; DecodeRecordAt at
// positions inside records may fail, never crash. The fast record reader
// (internal::DecodeRecordFast) is held against the careful one at every
// byte of the records: wherever it takes a record, the careful reader
// takes the same record and ends at the same byte.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/byte_order.h"
#include "codec/record_batch.h"
#include "codec/record_batch_internal.h"

namespace {

using junction::codec::BatchHeader;
using junction::codec::Record;

constexpr std::uint32_t kMaxBatch = 1 << 20;

void CheckSlice(std::span<const std::byte> batch, const BatchHeader& header,
                const std::vector<Record>& records) {
  if (header.compression != junction::codec::Compression::kNone) return;
  const std::size_t i = records.size() / 3;
  const std::size_t j = records.size() * 2 / 3;
  auto slice = junction::codec::SliceBatch(batch, records[i].offset, records[j].offset);
  JUNCTION_CHECK(slice.ok()) << slice.status();
  auto sliced = junction::codec::DecodeRecords(*slice, kMaxBatch);
  JUNCTION_CHECK(sliced.ok()) << sliced.status();
  const std::vector<Record> expected(records.begin() + static_cast<std::ptrdiff_t>(i),
                                     records.begin() + static_cast<std::ptrdiff_t>(j) + 1);
  JUNCTION_CHECK(*sliced == expected) << "a slice's records differ from its range's";
  // From where a record starts (where the last slice ended, or the
  // record's position as the views give it), the same slice as walking
  // there. From any other byte: it may fail or slice wrongly (the caller
  // must know), never crash. Only a dense batch takes a start position.
  if (header.last_offset_delta + 1 != header.record_count) return;
  std::uint32_t end = 0;
  auto head = junction::codec::SliceBatch(batch, records[0].offset, records[i].offset, 0, &end);
  JUNCTION_CHECK(head.ok()) << head.status();
  JUNCTION_CHECK(end > junction::codec::kBatchHeaderSize && end <= batch.size());
  if (i + 1 <= j) {
    auto walked = junction::codec::SliceBatch(batch, records[i + 1].offset, records[j].offset);
    auto chained =
        junction::codec::SliceBatch(batch, records[i + 1].offset, records[j].offset, end);
    JUNCTION_CHECK(walked.ok() && chained.ok() && *walked == *chained)
        << "a slice from where the last one ended differs";
    junction::codec::RecordViews views;
    JUNCTION_CHECK(views.Decode(batch, kMaxBatch).ok());
    auto at_record = junction::codec::SliceBatch(batch, records[i + 1].offset, records[j].offset,
                                                 views.records()[i + 1].position);
    JUNCTION_CHECK(at_record.ok() && *at_record == *walked)
        << "a slice from its first record's position differs";
    for (std::uint32_t at = 0; at < batch.size() && at < 1024; ++at) {
      (void)junction::codec::SliceBatch(batch, records[i + 1].offset, records[j].offset, at);
    }
  }
}

void CheckViews(std::span<const std::byte> batch) {
  junction::codec::RecordViews whole;
  junction::codec::RecordViews verified;
  const bool decoded = whole.Decode(batch, kMaxBatch).ok();
  const bool trusted = verified.DecodeVerified(batch, kMaxBatch).ok();
  if (!decoded) return;  // (DecodeVerified passes a wrong checksum)
  JUNCTION_CHECK(trusted) << "DecodeVerified refused what Decode took";
  JUNCTION_CHECK(whole.records().size() == verified.records().size()) << "record counts differ";
  if (whole.header().compression != junction::codec::Compression::kNone) return;
  std::vector<junction::codec::RecordHeaderView> headers;
  for (const junction::codec::RecordView& r : whole.records()) {
    auto alone = junction::codec::DecodeRecordAt(batch, r.position, headers);
    JUNCTION_CHECK(alone.ok()) << alone.status();
    JUNCTION_CHECK(alone->offset == r.offset && alone->key == r.key && alone->value == r.value &&
                   alone->timestamp_ms == r.timestamp_ms &&
                   alone->headers.size() == r.headers.size())
        << "a record decoded alone differs";
    (void)junction::codec::DecodeRecordAt(batch, r.position + 1, headers);
  }
}

void CheckReaders(std::span<const std::byte> batch) {
  auto header = junction::codec::ParseBatchHeader(batch, kMaxBatch);
  if (!header.ok() || header->batch_length != batch.size()) return;
  std::span<const std::byte> body = batch.subspan(junction::codec::kBatchHeaderSize);
  std::vector<junction::codec::RecordHeaderView> fast_headers;
  std::vector<junction::codec::RecordHeaderView> checked_headers;
  for (std::size_t start = 0; start < body.size(); ++start) {
    std::size_t fast_pos = start;
    std::size_t checked_pos = start;
    fast_headers.clear();
    checked_headers.clear();
    junction::codec::RecordView fast;
    const bool took =
        junction::codec::internal::DecodeRecordFast(body, fast_pos, *header, fast_headers, fast);
    auto checked =
        junction::codec::internal::DecodeRecordChecked(body, checked_pos, *header, checked_headers);
    if (!took) {
      JUNCTION_CHECK(fast_pos == start && fast_headers.empty()) << "a refusal changed state";
      continue;
    }
    JUNCTION_CHECK(checked.ok()) << "the fast reader took what the careful one refuses: "
                                 << checked.status();
    JUNCTION_CHECK(fast_pos == checked_pos && fast.offset == checked->offset &&
                   fast.timestamp_ms == checked->timestamp_ms && fast.key == checked->key &&
                   fast.value == checked->value && fast.position == checked->position &&
                   fast_headers.size() == checked_headers.size())
        << "the two readers differ";
    for (std::size_t h = 0; h < fast_headers.size(); ++h) {
      JUNCTION_CHECK(fast_headers[h].key == checked_headers[h].key &&
                     fast_headers[h].value == checked_headers[h].value)
          << "the two readers differ in header " << h;
    }
  }
}

void CheckRoundTrip(std::span<const std::byte> batch) {
  CheckReaders(batch);
  CheckViews(batch);
  if (batch.size() >= junction::codec::kBatchHeaderSize) {
    const junction::Offset base(junction::codec::LoadLE<std::uint64_t>(
        batch.data() + junction::codec::batch_field::kBaseOffset));
    (void)junction::codec::SliceBatch(batch, base, base + 1);
    // A start position anywhere: may fail, never crash.
    (void)junction::codec::SliceBatch(batch, base + 1, base + 2,
                                      static_cast<std::uint32_t>(batch.size() / 2));
  }
  auto records = junction::codec::DecodeRecords(batch, kMaxBatch);
  if (!records.ok()) return;
  auto header = junction::codec::ParseBatchHeader(batch, kMaxBatch);
  JUNCTION_CHECK(header.ok()) << "decoded batch has a bad header";
  CheckSlice(batch, *header, *records);
  // The builder numbers records densely; only dense batches can round-trip.
  if (header->last_offset_delta + 1 != header->record_count) return;
  junction::codec::RecordBatchBuilder builder({.compression = header->compression,
                                               .producer_id = header->producer_id,
                                               .base_sequence = header->base_sequence,
                                               .max_batch_bytes = kMaxBatch * 4});
  for (const Record& r : *records) builder.Add(r);
  auto rebuilt = builder.Build();
  JUNCTION_CHECK(rebuilt.ok()) << rebuilt.status();
  junction::codec::SetBaseOffset(*rebuilt, header->base_offset);
  auto again = junction::codec::DecodeRecords(*rebuilt, kMaxBatch * 4);
  JUNCTION_CHECK(again.ok()) << again.status();
  JUNCTION_CHECK(*again == *records) << "records differ after a rebuild";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  CheckRoundTrip(input);
  if (size >= junction::codec::kBatchHeaderSize) {
    std::vector<std::byte> fixed(input.begin(), input.end());
    junction::codec::StoreLE<std::uint64_t>(fixed.data() + junction::codec::batch_field::kChecksum,
                                            junction::codec::ComputeBatchChecksum(fixed));
    CheckRoundTrip(fixed);
  }
  return 0;
}
