#include "codec/record_batch.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "codec/byte_order.h"

namespace junction::codec {
namespace {

std::vector<Record> SampleRecords() {
  return {
      {Offset(0), 1'700'000'000'000, "order-1", "created", {{"traceparent", "00-ab"}}},
      {Offset(1), 1'699'999'999'000, std::nullopt, std::nullopt, {}},  // earlier, no key
      {Offset(2), 1'700'000'000'500, "", std::string(300, 'x'), {{"empty", std::nullopt}}},
  };
}

std::vector<std::byte> Build(const std::vector<Record>& records, Compression c) {
  RecordBatchBuilder builder(
      {.compression = c, .producer_id = ProducerId(7), .base_sequence = SequenceNumber(100)});
  for (const Record& r : records) builder.Add(r);
  return *builder.Build();
}

class RecordBatchRoundTrip : public ::testing::TestWithParam<Compression> {};

TEST_P(RecordBatchRoundTrip, RecordsSurviveWithOffsetsFromTheBase) {
  std::vector<std::byte> batch = Build(SampleRecords(), GetParam());
  SetBaseOffset(batch, Offset(1000));
  Result<BatchHeader> h = VerifyBatch(batch);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->base_offset, Offset(1000));
  EXPECT_EQ(h->record_count, 3u);
  EXPECT_EQ(h->last_offset(), Offset(1002));
  EXPECT_EQ(h->next_offset(), Offset(1003));
  EXPECT_EQ(h->compression, GetParam());
  EXPECT_EQ(h->first_timestamp_ms, 1'700'000'000'000);
  EXPECT_EQ(h->max_timestamp_ms, 1'700'000'000'500);
  EXPECT_EQ(h->producer_id, ProducerId(7));
  EXPECT_EQ(h->base_sequence, SequenceNumber(100));

  Result<std::vector<Record>> decoded = DecodeRecords(batch);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  std::vector<Record> expected = SampleRecords();
  for (Record& r : expected) r.offset += 1000;
  EXPECT_EQ(*decoded, expected);
}

INSTANTIATE_TEST_SUITE_P(AllCompressions, RecordBatchRoundTrip,
                         ::testing::Values(Compression::kNone, Compression::kLz4,
                                           Compression::kZstd),
                         [](const auto& info) { return std::string(CompressionName(info.param)); });

TEST(RecordBatchTest, BaseOffsetIsOutsideTheChecksum) {
  std::vector<std::byte> batch = Build(SampleRecords(), Compression::kNone);
  std::uint64_t before = ComputeBatchChecksum(batch);
  SetBaseOffset(batch, Offset(123456789));
  EXPECT_EQ(ComputeBatchChecksum(batch), before);
  EXPECT_TRUE(VerifyBatch(batch).ok());
}

TEST(RecordBatchTest, StampingTheTimeKeepsTheRecordsAndTheChecksumValid) {
  RecordBatchBuilder builder;
  builder.Add({Offset(0), 1'000, "k", "a", {{"h", "v"}}});
  builder.Add({Offset(1), 1'000, std::nullopt, "b", {}});
  std::vector<std::byte> batch = *builder.Build();
  const std::vector<std::byte> before = batch;
  StampBatchTime(batch, 1'700'000'000'123);
  Result<BatchHeader> h = VerifyBatch(batch);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->first_timestamp_ms, 1'700'000'000'123);
  EXPECT_EQ(h->max_timestamp_ms, 1'700'000'000'123);
  Result<std::vector<Record>> records = DecodeRecords(batch);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].timestamp_ms, 1'700'000'000'123);
  EXPECT_EQ((*records)[1].timestamp_ms, 1'700'000'000'123);
  EXPECT_EQ((*records)[1].value, "b");
  // Only the two timestamps and the checksum changed.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    bool stamped = (i >= batch_field::kChecksum && i < batch_field::kAttributes) ||
                   (i >= batch_field::kFirstTimestamp && i < batch_field::kProducerId);
    if (!stamped) {
      EXPECT_EQ(batch[i], before[i]) << "byte " << i;
    }
  }
}

std::vector<std::byte> BodyOf(std::span<const std::byte> batch) {
  return {batch.begin() + kBatchHeaderSize, batch.end()};
}

TEST(SliceBatchTest, ARunOfRecordsKeepsTheirBytesUnderAValidHeaderOfItsOwn) {
  std::vector<std::byte> batch = Build(SampleRecords(), Compression::kNone);
  SetBaseOffset(batch, Offset(1000));
  Result<std::vector<std::byte>> tail = SliceBatch(batch, Offset(1001), Offset(1002));
  ASSERT_TRUE(tail.ok()) << tail.status();
  Result<BatchHeader> h = VerifyBatch(*tail);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->base_offset, Offset(1000));
  EXPECT_EQ(h->record_count, 2u);
  EXPECT_EQ(h->last_offset(), Offset(1002));
  EXPECT_EQ(h->first_timestamp_ms, 1'700'000'000'000);
  EXPECT_EQ(h->max_timestamp_ms, 1'700'000'000'500);
  EXPECT_EQ(h->producer_id, ProducerId(7));
  EXPECT_EQ(h->base_sequence, SequenceNumber(101));  // its first record's
  Result<std::vector<Record>> decoded = DecodeRecords(*tail);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  std::vector<Record> expected = SampleRecords();
  expected.erase(expected.begin());
  for (Record& r : expected) r.offset += 1000;
  EXPECT_EQ(*decoded, expected);
  // The records are the stored batch's last bytes, not encoded again.
  std::vector<std::byte> body = BodyOf(batch);
  std::vector<std::byte> tail_body = BodyOf(*tail);
  ASSERT_LE(tail_body.size(), body.size());
  EXPECT_TRUE(std::equal(tail_body.begin(), tail_body.end(),
                         body.end() - static_cast<std::ptrdiff_t>(tail_body.size())));

  // One record in the middle: its own time is the greatest.
  Result<std::vector<std::byte>> middle = SliceBatch(batch, Offset(1001), Offset(1001));
  ASSERT_TRUE(middle.ok()) << middle.status();
  Result<BatchHeader> m = VerifyBatch(*middle);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->record_count, 1u);
  EXPECT_EQ(m->max_timestamp_ms, 1'699'999'999'000);
  Result<std::vector<Record>> one = DecodeRecords(*middle);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].offset, Offset(1001));
  EXPECT_EQ((*one)[0].headers, SampleRecords()[1].headers);
}

TEST(SliceBatchTest, ARangeOverEveryRecordGivesTheBatchBack) {
  std::vector<std::byte> batch = Build(SampleRecords(), Compression::kNone);
  SetBaseOffset(batch, Offset(1000));
  Result<std::vector<std::byte>> all = SliceBatch(batch, Offset(0), Offset(5000));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, batch);
}

// A fetch takes a large stored batch in windows: every window is its run of
// records (the records before it are passed by length), and a record whose
// length runs past the batch before the window is still found.
TEST(SliceBatchTest, WindowsOfALargeBatchAreItsRunsInOrder) {
  std::vector<Record> records;
  for (int i = 0; i < 1000; ++i) {
    records.push_back({Offset(static_cast<std::uint64_t>(i)),
                       1'700'000'000'000 + i % 7,
                       "k" + std::to_string(i % 13),
                       std::string(static_cast<std::size_t>(i % 50), 'v'),
                       {{"n", std::to_string(i)}}});
  }
  std::vector<std::byte> batch = Build(records, Compression::kNone);
  SetBaseOffset(batch, Offset(5000));
  for (std::uint64_t first = 0; first < records.size(); first += 64) {
    const std::uint64_t last = std::min<std::uint64_t>(first + 63, records.size() - 1);
    Result<std::vector<std::byte>> window =
        SliceBatch(batch, Offset(5000 + first), Offset(5000 + last));
    ASSERT_TRUE(window.ok()) << first << ": " << window.status();
    ASSERT_TRUE(VerifyBatch(*window).ok()) << first;
    Result<std::vector<Record>> decoded = DecodeRecords(*window);
    ASSERT_TRUE(decoded.ok()) << first << ": " << decoded.status();
    std::vector<Record> expected(records.begin() + static_cast<std::ptrdiff_t>(first),
                                 records.begin() + static_cast<std::ptrdiff_t>(last) + 1);
    for (Record& r : expected) r.offset += 5000;
    EXPECT_EQ(*decoded, expected) << first;
  }
  // The first record's length points past the batch: found while passing it.
  std::vector<std::byte> bad = batch;
  bad[kBatchHeaderSize] = std::byte{0xFF};
  bad[kBatchHeaderSize + 1] = std::byte{0xFF};
  bad[kBatchHeaderSize + 2] = std::byte{0x7F};
  Result<std::vector<std::byte>> framing = SliceBatch(bad, Offset(5500), Offset(5563));
  EXPECT_EQ(framing.status().code(), StatusCode::kDataLoss) << framing.status();
}

// Windows cut one after another, each from where the last one ended
// (end_position), are the same runs as windows found by walking; a
// position where no such record starts is ignored, not trusted.
TEST(SliceBatchTest, AWindowStartsWhereTheLastOneEndedAndAWrongStartIsIgnored) {
  std::vector<Record> records;
  for (int i = 0; i < 500; ++i) {
    records.push_back({Offset(static_cast<std::uint64_t>(i)),
                       1'700'000'000'000 + i % 5,
                       std::nullopt,
                       std::string(static_cast<std::size_t>(i % 40), 'v'),
                       {{"n", std::to_string(i)}}});
  }
  std::vector<std::byte> batch = Build(records, Compression::kNone);
  SetBaseOffset(batch, Offset(7000));
  std::uint32_t from = 0;
  for (std::uint64_t first = 0; first < records.size(); first += 100) {
    const std::uint64_t last = first + 99;
    std::uint32_t end = 0;
    Result<std::vector<std::byte>> chained =
        SliceBatch(batch, Offset(7000 + first), Offset(7000 + last), from, &end);
    Result<std::vector<std::byte>> walked =
        SliceBatch(batch, Offset(7000 + first), Offset(7000 + last));
    ASSERT_TRUE(chained.ok()) << first << ": " << chained.status();
    ASSERT_TRUE(walked.ok()) << first << ": " << walked.status();
    EXPECT_EQ(*chained, *walked) << first;
    EXPECT_GT(end, from);
    EXPECT_LE(end, batch.size());
    // Off by one byte, or another record's start: the same slice again.
    for (std::uint32_t wrong : {end + 1, from + 1, static_cast<std::uint32_t>(kBatchHeaderSize)}) {
      if (first == 0) break;
      Result<std::vector<std::byte>> hinted =
          SliceBatch(batch, Offset(7000 + first), Offset(7000 + last), wrong);
      ASSERT_TRUE(hinted.ok()) << first << " from " << wrong << ": " << hinted.status();
      EXPECT_EQ(*hinted, *walked) << first << " from " << wrong;
    }
    from = end;
  }
  EXPECT_EQ(from, batch.size());  // the last window ended with the batch
}

TEST(SliceBatchTest, WhatCannotBeSlicedIsAnErrorNamingWhy) {
  std::vector<std::byte> lz4 = Build(SampleRecords(), Compression::kLz4);
  EXPECT_EQ(SliceBatch(lz4, Offset(0), Offset(0)).status().code(), StatusCode::kInvalidArgument);
  std::vector<std::byte> batch = Build(SampleRecords(), Compression::kNone);
  SetBaseOffset(batch, Offset(1000));
  Result<std::vector<std::byte>> none = SliceBatch(batch, Offset(2000), Offset(3000));
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("no record"), std::string_view::npos);
  std::vector<std::byte> shorter(batch.begin(), batch.end() - 1);
  EXPECT_EQ(SliceBatch(shorter, Offset(1000), Offset(1000)).status().code(), StatusCode::kDataLoss);
  // The first record's length points past the batch.
  std::vector<std::byte> bad = batch;
  bad[kBatchHeaderSize] = std::byte{0xFF};
  bad[kBatchHeaderSize + 1] = std::byte{0xFF};
  bad[kBatchHeaderSize + 2] = std::byte{0x7F};  // about 2 MiB
  Result<std::vector<std::byte>> framing = SliceBatch(bad, Offset(1000), Offset(1002));
  EXPECT_EQ(framing.status().code(), StatusCode::kDataLoss) << framing.status();
}

TEST(RecordBatchTest, EveryFlippedBitOutsideTheBaseOffsetIsDetected) {
  std::vector<std::byte> batch = Build(SampleRecords(), Compression::kNone);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i >= batch_field::kBaseOffset && i < batch_field::kBaseOffset + 8) continue;
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<std::byte> copy = batch;
      copy[i] ^= std::byte(1 << bit);
      EXPECT_FALSE(VerifyBatch(copy).ok()) << "byte " << i << " bit " << bit;
    }
  }
}

// Offsets never wrap: a batch whose next offset (after its last record)
// would pass 2^64 - 1 is refused (and so is any slice of it); the last one
// that fits is not.
TEST(RecordBatchTest, ABatchWhoseOffsetsWouldWrapIsRefused) {
  std::vector<std::byte> batch = Build(SampleRecords(), Compression::kNone);  // deltas 0..2
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  SetBaseOffset(batch, Offset(kMax - 3));
  Result<BatchHeader> fits = VerifyBatch(batch);
  ASSERT_TRUE(fits.ok()) << fits.status();
  EXPECT_EQ(fits->last_offset(), Offset(kMax - 1));
  EXPECT_EQ(fits->next_offset(), Offset(kMax));
  for (std::uint64_t base : {kMax - 2, kMax - 1, kMax}) {
    SetBaseOffset(batch, Offset(base));
    Result<BatchHeader> wraps = VerifyBatch(batch);
    EXPECT_EQ(wraps.status().code(), StatusCode::kDataLoss) << base;
    EXPECT_THAT(wraps.status().message(), ::testing::HasSubstr("leaves no next offset"));
    EXPECT_EQ(SliceBatch(batch, Offset(kMax - 1), Offset(kMax - 1)).status().code(),
              StatusCode::kDataLoss);
  }
}

TEST(RecordBatchTest, HeaderDamageIsNamed) {
  std::vector<std::byte> good = Build(SampleRecords(), Compression::kNone);
  auto expect_error = [&](std::size_t pos, std::byte value, std::string_view what) {
    std::vector<std::byte> copy = good;
    copy[pos] = value;
    Result<BatchHeader> h = VerifyBatch(copy);
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(h.status().message().find(what), std::string::npos) << h.status();
  };
  expect_error(batch_field::kMagic, std::byte{'X'}, "magic");
  expect_error(batch_field::kVersion, std::byte{9}, "version 9");
  expect_error(batch_field::kReserved + 1, std::byte{1}, "reserved");
  expect_error(batch_field::kBatchLength + 3, std::byte{0x7f}, "batch_length");
  expect_error(batch_field::kBatchLength, std::byte{0x10}, "batch_length");
  expect_error(batch_field::kRecordCount, std::byte{0}, "record_count");
  expect_error(batch_field::kChecksum, ~good[batch_field::kChecksum], "checksum");
}

TEST(RecordBatchTest, ShortInputIsOutOfRangeNotACrash) {
  std::vector<std::byte> batch = Build(SampleRecords(), Compression::kNone);
  for (std::size_t n = 0; n < kBatchHeaderSize; ++n) {
    EXPECT_EQ(ParseBatchHeader(std::span(batch).first(n)).status().code(), StatusCode::kOutOfRange);
  }
  EXPECT_EQ(VerifyBatch(std::span(batch).first(batch.size() - 1)).status().code(),
            StatusCode::kDataLoss);
}

TEST(RecordBatchTest, OversizedBatchIsRefusedByBuilderAndReader) {
  RecordBatchBuilder builder({.max_batch_bytes = 1024});
  builder.Add(0, std::nullopt, std::string(2000, 'a'));
  EXPECT_EQ(builder.Build().status().code(), StatusCode::kResourceExhausted);

  std::vector<std::byte> batch =
      Build({{Offset(0), 0, std::nullopt, std::string(2000, 'a'), {}}}, Compression::kNone);
  EXPECT_EQ(VerifyBatch(batch, 1024).status().code(), StatusCode::kDataLoss);
}

TEST(RecordBatchTest, EmptyBuilderIsAnError) {
  RecordBatchBuilder builder;
  EXPECT_EQ(builder.Build().status().code(), StatusCode::kInvalidArgument);
}

TEST(RecordBatchTest, CompressionBombIsRefused) {
  // 8 MiB of zeros compresses to a few KiB; a 64 KiB batch limit allows at
  // most 256 KiB decompressed.
  RecordBatchBuilder builder({.compression = Compression::kZstd});
  builder.Add(0, std::nullopt, std::string(8 << 20, '\0'));
  std::vector<std::byte> batch = *builder.Build();
  ASSERT_LT(batch.size(), 64u * 1024);
  Result<std::vector<Record>> decoded = DecodeRecords(batch, 64 * 1024);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("exceed"), std::string::npos) << decoded.status();
}

TEST(RecordBatchTest, MalformedRecordNamesIndexAndField) {
  std::vector<std::byte> batch = Build(SampleRecords(), Compression::kNone);
  // Record 0 starts at the header's end: its length varint, the attribute
  // byte, then the timestamp. Set an unknown attribute bit and re-checksum.
  batch[kBatchHeaderSize + 1] = std::byte{1};
  StoreLE<std::uint64_t>(batch.data() + batch_field::kChecksum, ComputeBatchChecksum(batch));
  Result<std::vector<Record>> decoded = DecodeRecords(batch);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().message(), "record 0: attributes: unknown bits set");
}

TEST_P(RecordBatchRoundTrip, ViewsReadTheRecordsInPlace) {
  std::vector<std::byte> batch = Build(SampleRecords(), GetParam());
  RecordViews views;
  ASSERT_TRUE(views.Decode(batch).ok());
  EXPECT_EQ(views.header().record_count, 3u);
  std::vector<Record> expected = SampleRecords();
  ASSERT_EQ(views.records().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const RecordView& v = views.records()[i];
    const Record& r = expected[i];
    EXPECT_EQ(v.offset, r.offset);
    EXPECT_EQ(v.timestamp_ms, r.timestamp_ms);
    EXPECT_EQ(v.key, r.key) << i;
    EXPECT_EQ(v.value, r.value) << i;
    ASSERT_EQ(v.headers.size(), r.headers.size()) << i;
    for (std::size_t h = 0; h < r.headers.size(); ++h) {
      EXPECT_EQ(v.headers[h].key, r.headers[h].key);
      EXPECT_EQ(v.headers[h].value, r.headers[h].value);
    }
  }
  if (GetParam() == Compression::kNone) {  // no copy: the value is the batch's bytes
    const auto* first = reinterpret_cast<const char*>(batch.data());
    const char* value = views.records()[2].value->data();
    EXPECT_TRUE(value > first && value < first + batch.size());
  }
}

// Each record decoded alone at its position is the record the whole
// batch's decode gave; a compressed batch or a position where no record
// starts is refused.
TEST_P(RecordBatchRoundTrip, EachRecordDecodesAloneAtItsPosition) {
  std::vector<std::byte> batch = Build(SampleRecords(), GetParam());
  RecordViews views;
  ASSERT_TRUE(views.Decode(batch).ok());
  std::vector<RecordHeaderView> headers;
  if (GetParam() != Compression::kNone) {
    Result<RecordView> refused = DecodeRecordAt(batch, views.records()[0].position, headers);
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status();
    return;
  }
  std::uint32_t previous = 0;
  for (const RecordView& whole : views.records()) {
    EXPECT_GT(whole.position, previous);  // the first is right after the header
    previous = whole.position;
    Result<RecordView> alone = DecodeRecordAt(batch, whole.position, headers);
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_EQ(alone->offset, whole.offset);
    EXPECT_EQ(alone->timestamp_ms, whole.timestamp_ms);
    EXPECT_EQ(alone->key, whole.key);
    EXPECT_EQ(alone->value, whole.value);
    EXPECT_EQ(alone->position, whole.position);
    ASSERT_EQ(alone->headers.size(), whole.headers.size());
    for (std::size_t h = 0; h < whole.headers.size(); ++h) {
      EXPECT_EQ(alone->headers[h].key, whole.headers[h].key);
      EXPECT_EQ(alone->headers[h].value, whole.headers[h].value);
    }
  }
  EXPECT_EQ(views.records()[0].position, kBatchHeaderSize);
  for (std::uint32_t outside : {std::uint32_t{0}, std::uint32_t{kBatchHeaderSize - 1},
                                static_cast<std::uint32_t>(batch.size())}) {
    EXPECT_EQ(DecodeRecordAt(batch, outside, headers).status().code(), StatusCode::kInvalidArgument)
        << outside;
  }
  // Inside a record rather than at its start: malformed, never a crash.
  EXPECT_FALSE(DecodeRecordAt(batch, views.records()[1].position + 1, headers).ok());
}

// For a batch the log verified on read: the same records as Decode, the
// checksum not computed again (a stale one passes), and everything else
// still checked.
TEST_P(RecordBatchRoundTrip, DecodeVerifiedChecksAllButTheChecksum) {
  std::vector<std::byte> batch = Build(SampleRecords(), GetParam());
  RecordViews whole;
  ASSERT_TRUE(whole.Decode(batch).ok());
  std::vector<std::byte> stale = batch;
  StoreLE<std::uint64_t>(stale.data() + batch_field::kChecksum, ComputeBatchChecksum(batch) + 1);
  RecordViews views;
  EXPECT_FALSE(views.Decode(stale).ok());
  ASSERT_TRUE(views.DecodeVerified(stale).ok());
  ASSERT_EQ(views.records().size(), whole.records().size());
  for (std::size_t i = 0; i < whole.records().size(); ++i) {
    EXPECT_EQ(views.records()[i].offset, whole.records()[i].offset);
    EXPECT_EQ(views.records()[i].value, whole.records()[i].value);
    EXPECT_EQ(views.records()[i].headers.size(), whole.records()[i].headers.size());
  }
  // One byte short of its batch_length, and a record's framing broken.
  EXPECT_FALSE(views.DecodeVerified(std::span(stale).first(stale.size() - 1)).ok());
  EXPECT_TRUE(views.records().empty());
  if (GetParam() == Compression::kNone) {
    stale[kBatchHeaderSize + 1] = std::byte{1};  // the first record's attributes
    Status broken = views.DecodeVerified(stale);
    EXPECT_EQ(broken.message(), "record 0: attributes: unknown bits set");
    EXPECT_TRUE(views.records().empty());
  }
}

TEST(RecordBatchTest, ViewsAreReusedForTheNextBatchAndEmptyAfterAnError) {
  RecordViews views;
  std::vector<std::byte> three = Build(SampleRecords(), Compression::kZstd);
  ASSERT_TRUE(views.Decode(three).ok());
  ASSERT_EQ(views.records().size(), 3u);
  std::vector<Record> one = {{Offset(0), 5, "k", "v", {{"a", "1"}, {"b", "2"}}}};
  std::vector<std::byte> single = Build(one, Compression::kNone);
  ASSERT_TRUE(views.Decode(single).ok());
  ASSERT_EQ(views.records().size(), 1u);
  EXPECT_EQ(views.records()[0].key, "k");
  ASSERT_EQ(views.records()[0].headers.size(), 2u);
  EXPECT_EQ(views.records()[0].headers[1].value, "2");

  single[kBatchHeaderSize + 1] = std::byte{1};  // an unknown attribute bit, checksum kept valid
  StoreLE<std::uint64_t>(single.data() + batch_field::kChecksum, ComputeBatchChecksum(single));
  Status failed = views.Decode(single);
  EXPECT_EQ(failed.message(), "record 0: attributes: unknown bits set");
  EXPECT_TRUE(views.records().empty());
}

TEST(VarintTest, RoundTripsAndRejectsOverlongEncodings) {
  for (std::uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, ~0ull}) {
    std::string out;
    PutVarint(out, v);
    std::size_t pos = 0;
    auto bytes = std::as_bytes(std::span(out));
    EXPECT_EQ(GetVarint(bytes, pos), v);
    EXPECT_EQ(pos, out.size());
  }
  std::string overlong(11, '\x80');
  std::size_t pos = 0;
  EXPECT_EQ(GetVarint(std::as_bytes(std::span(overlong)), pos), std::nullopt);
  for (std::int64_t n :
       {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1}, INT64_MIN, INT64_MAX}) {
    EXPECT_EQ(ZigZagDecode(ZigZagEncode(n)), n);
  }
}

}  // namespace
}  // namespace junction::codec
