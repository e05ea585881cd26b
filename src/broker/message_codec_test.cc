#include "broker/message_codec.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace junction::broker {
namespace {

using std::string_literals::operator""s;  // NOLINT(misc-unused-using-decls): used

using ::testing::HasSubstr;

Message FullMessage() {
  Message m;
  m.id = "evt-1";
  m.source = "/orders/eu";
  m.type = "com.example.order.created";
  m.subject = "order/42";
  m.time = ParseRfc3339("2024-02-29T23:59:59.123456789Z").value();
  m.datacontenttype = "application/octet-stream";
  m.dataschema = "https://example.com/schemas/order.json";
  m.extensions = {{"sampled", true},
                  {"off", false},
                  {"retries", std::int32_t{-7}},
                  {"low", std::numeric_limits<std::int32_t>::min()},
                  {"looksint", std::string("3")},
                  {"empty", std::string()}};
  m.key = "customer-9";
  m.headers = {{"traceparent", "00-abc-def-01"}, {"X-Mixed", "a\tb"}};
  m.data = "\x00\xff binary\n"s;
  return m;
}

Message MinimalMessage() {
  Message m;
  m.id = "1";
  m.source = "s";
  m.type = "t";
  return m;
}

std::vector<codec::Record> Store(const std::vector<StoredMessage>& messages) {
  codec::RecordBatchBuilder builder;
  for (const StoredMessage& s : messages) {
    AddMessage(builder, s.message, s.timestamp_ms, s.deliver_at_ms);
  }
  auto batch = builder.Build();
  EXPECT_TRUE(batch.ok()) << batch.status();
  auto records = codec::DecodeRecords(*batch);
  EXPECT_TRUE(records.ok()) << records.status();
  return records.value_or(std::vector<codec::Record>{});
}

TEST(MessageCodecTest, FullAndMinimalMessagesRoundTripThroughABatch) {
  const std::vector<StoredMessage> stored = {
      {FullMessage(), 1709251199000, 1709251260000},
      {MinimalMessage(), 1709251199001, std::nullopt},
      {MinimalMessage(), -5, -1},  // before the epoch
  };
  ASSERT_TRUE(stored[0].message.Validate().ok());
  std::vector<codec::Record> records = Store(stored);
  ASSERT_EQ(records.size(), stored.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    Result<StoredMessage> decoded = DecodeMessage(records[i]);
    ASSERT_TRUE(decoded.ok()) << i << ": " << decoded.status();
    EXPECT_EQ(*decoded, stored[i]) << i;
  }
  // Minimal: no key and no data leave the record's key and value absent.
  EXPECT_EQ(records[1].key, std::nullopt);
  EXPECT_EQ(records[1].value, std::nullopt);
}

// DecodeStoredMessage builds the message in its box: the same message,
// times and size as DecodeMessage, and the same error for a bad record.
TEST(MessageCodecTest, BoxedDecodeGivesWhatDecodeMessageGives) {
  const std::vector<StoredMessage> stored = {
      {FullMessage(), 1709251199000, 1709251260000},
      {MinimalMessage(), -5, std::nullopt},
  };
  codec::RecordBatchBuilder builder;
  for (const StoredMessage& s : stored) {
    AddMessage(builder, s.message, s.timestamp_ms, s.deliver_at_ms);
  }
  Message bad = MinimalMessage();
  bad.subject = "";  // encoded as it is; invalid once decoded
  AddMessage(builder, bad, 7, std::nullopt);
  Result<std::vector<std::byte>> batch = builder.Build();
  ASSERT_TRUE(batch.ok()) << batch.status();
  codec::RecordViews views;
  ASSERT_TRUE(views.Decode(*batch, codec::kDefaultMaxBatchBytes).ok());
  ASSERT_EQ(views.records().size(), 3u);
  for (std::size_t i = 0; i < stored.size(); ++i) {
    Result<std::shared_ptr<StoredMessage>> boxed = DecodeStoredMessage(views.records()[i]);
    ASSERT_TRUE(boxed.ok()) << i << ": " << boxed.status();
    EXPECT_EQ(**boxed, stored[i]) << i;
    EXPECT_EQ((*boxed)->size(), MessageSize(stored[i].message)) << i;
  }
  Result<std::shared_ptr<StoredMessage>> boxed = DecodeStoredMessage(views.records()[2]);
  EXPECT_EQ(boxed.status(), DecodeMessage(views.records()[2]).status());
  EXPECT_THAT(boxed.status().message(), HasSubstr("attribute 'subject'"));
}
// What a group reads of a record it does not decode: the message's size,
// equal to MessageSize of what decoding gives, and whether it is delayed;
// and the record decoded alone from its stored batch is the message.
TEST(MessageCodecTest, ARecordsSummaryAndItsDecodeAtItsPositionAgreeWithTheMessage) {
  Message no_time = FullMessage();
  no_time.time.reset();
  no_time.key.reset();
  const std::vector<StoredMessage> stored = {
      {FullMessage(), 1709251199000, 1709251260000},
      {MinimalMessage(), 1709251199001, std::nullopt},
      {no_time, 3, std::nullopt},
  };
  codec::RecordBatchBuilder builder;
  for (const StoredMessage& s : stored) {
    AddMessage(builder, s.message, s.timestamp_ms, s.deliver_at_ms);
  }
  Result<std::vector<std::byte>> bytes = builder.Build();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const StoredBatch batch(Offset(0), 3, *bytes);
  codec::RecordViews views;
  ASSERT_TRUE(views.Decode(batch.bytes).ok());
  ASSERT_EQ(views.records().size(), stored.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    const codec::RecordView& record = views.records()[i];
    RecordSummary summary = SummarizeRecord(record);
    EXPECT_EQ(summary.size, MessageSize(stored[i].message)) << i;
    EXPECT_EQ(summary.delayed, stored[i].deliver_at_ms.has_value()) << i;
    Result<std::shared_ptr<StoredMessage>> alone = DecodeStoredRecordAt(batch, record.position);
    ASSERT_TRUE(alone.ok()) << i << ": " << alone.status();
    EXPECT_EQ(**alone, stored[i]) << i;
    EXPECT_EQ((*alone)->size(), summary.size) << i;
  }
  // Not a record's start: an error, not a message.
  EXPECT_FALSE(DecodeStoredRecordAt(batch, views.records()[1].position + 2).ok());
}

// Which received batches the broker may store as they came.
TEST(MessageCodecTest, OnlyBatchesWithoutBrokerFieldsOrOwnTimesAreStorable) {
  Message second = MinimalMessage();
  second.id = "2";
  auto storable = [](const std::vector<std::byte>& batch) {
    std::vector<Message> out;
    bool as_is = true;
    Status s = DecodeMessageBatch(batch, codec::kDefaultMaxBatchBytes, 100, out, &as_is);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(out.size(), 2u);
    return as_is;
  };
  auto build = [&](codec::RecordBatchBuilder::Options options, std::int64_t second_time,
                   std::optional<std::int64_t> deliver_at) {
    codec::RecordBatchBuilder builder(options);
    AddMessage(builder, FullMessage(), 1000, std::nullopt);
    AddMessage(builder, second, second_time, deliver_at);
    return *builder.Build();
  };
  // What clients send (EncodeMessageBatch): one time, no broker field.
  std::vector<Message> both = {FullMessage(), second};
  EXPECT_TRUE(storable(*EncodeMessageBatch(both, 1000)));
  EXPECT_TRUE(storable(build({}, 1000, std::nullopt)));
  // A record of its own time, a broker field, an idempotent producer's
  // identity or sequence: the broker writes those, so it encodes again.
  EXPECT_FALSE(storable(build({}, 1001, std::nullopt)));
  EXPECT_FALSE(storable(build({}, 1000, 5000)));
  EXPECT_FALSE(storable(build({.producer_id = ProducerId(3)}, 1000, std::nullopt)));
  EXPECT_FALSE(storable(build({.base_sequence = SequenceNumber(9)}, 1000, std::nullopt)));
}

// junctiond's decode: the same messages, boxed with their sizes, the same
// storable verdict, and the same refusal of a batch with a bad record.
TEST(MessageCodecTest, StoredBatchDecodesWhatMessageBatchDoesBoxed) {
  Message second = MinimalMessage();
  second.id = "2";
  std::vector<Message> both = {FullMessage(), second};
  std::vector<std::byte> batch = *EncodeMessageBatch(both, 1000);
  std::vector<Message> plain;
  bool plain_storable = false;
  ASSERT_TRUE(
      DecodeMessageBatch(batch, codec::kDefaultMaxBatchBytes, 100, plain, &plain_storable).ok());
  std::vector<std::shared_ptr<StoredMessage>> boxed = {nullptr};  // cleared first
  bool boxed_storable = false;
  ASSERT_TRUE(
      DecodeStoredBatch(batch, codec::kDefaultMaxBatchBytes, 100, boxed, &boxed_storable).ok());
  EXPECT_TRUE(plain_storable);
  EXPECT_TRUE(boxed_storable);
  ASSERT_EQ(boxed.size(), both.size());
  for (std::size_t i = 0; i < both.size(); ++i) {
    ASSERT_NE(boxed[i], nullptr);
    EXPECT_EQ(boxed[i]->message, plain[i]) << i;
    EXPECT_EQ(boxed[i]->message, both[i]) << i;
    EXPECT_EQ(boxed[i]->size(), MessageSize(both[i])) << i;
    EXPECT_EQ(boxed[i]->timestamp_ms, 1000) << i;
  }
  EXPECT_EQ(DecodeStoredBatch(batch, codec::kDefaultMaxBatchBytes, 1, boxed).code(),
            StatusCode::kInvalidArgument);  // more records than allowed

  codec::RecordBatchBuilder builder;
  AddMessage(builder, FullMessage(), 1000, std::nullopt);
  Message invalid = MinimalMessage();
  invalid.specversion = "0.3";
  AddMessage(builder, invalid, 1000, std::nullopt);
  std::vector<std::byte> bad = *builder.Build();
  Status plain_error = DecodeMessageBatch(bad, codec::kDefaultMaxBatchBytes, 100, plain);
  Status boxed_error = DecodeStoredBatch(bad, codec::kDefaultMaxBatchBytes, 100, boxed);
  EXPECT_EQ(boxed_error.code(), StatusCode::kInvalidArgument) << boxed_error;
  EXPECT_EQ(boxed_error, plain_error);
  EXPECT_NE(boxed_error.message().find("record 1"), std::string::npos) << boxed_error;
}

TEST(MessageCodecTest, RecordLayoutFollowsTheFormatDocument) {
  Message m = MinimalMessage();
  m.time = ParseRfc3339("2024-01-02T03:04:05.5Z").value();
  m.extensions = {{"n", std::int32_t{12}}, {"b", true}, {"s", std::string("x")}};
  m.headers = {{"trace", "t1"}};
  m.key = "k";
  m.data = "payload";
  std::vector<codec::Record> records = Store({{m, 7, 1234567890123}});
  ASSERT_EQ(records.size(), 1u);
  const codec::Record& r = records[0];
  EXPECT_EQ(r.timestamp_ms, 7);
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.value, "payload");
  const std::vector<codec::RecordHeader> expected = {
      {"ce-id", "1"},
      {"ce-source", "s"},
      {"ce-specversion", "1.0"},
      {"ce-type", "t"},
      {"ce-time", "2024-01-02T03:04:05.5Z"},
      {"ce-b", "btrue"},
      {"ce-n", "i12"},
      {"ce-s", "sx"},
      {"h-trace", "t1"},
      {"x-deliver-at", "1234567890123"},
  };
  EXPECT_EQ(r.headers, expected);
}

codec::Record RequiredOnly() {
  codec::Record r;
  r.headers = {{"ce-id", "1"}, {"ce-source", "s"}, {"ce-specversion", "1.0"}, {"ce-type", "t"}};
  return r;
}

Status DecodeWith(std::vector<codec::RecordHeader> extra) {
  codec::Record r = RequiredOnly();
  r.headers.insert(r.headers.end(), extra.begin(), extra.end());
  return DecodeMessage(r).status();
}

TEST(MessageCodecTest, ManyHeadersRoundTripAndARepeatAmongThemIsFound) {
  // More headers than the pairwise repeat check handles (it then uses a set).
  Message m = FullMessage();
  for (int i = 0; i < 40; ++i) m.headers["x-h" + std::to_string(i)] = std::to_string(i);
  for (int i = 0; i < 20; ++i) m.extensions["ext" + std::to_string(i)] = std::int32_t{i};
  const StoredMessage stored{m, 7, 9};
  std::vector<codec::Record> records = Store({stored});
  ASSERT_EQ(records.size(), 1u);
  Result<StoredMessage> decoded = DecodeMessage(records[0]);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, stored);

  codec::Record repeated = records[0];
  ASSERT_GT(repeated.headers.size(), 16u);
  repeated.headers.push_back({"h-x-h7", "again"});
  EXPECT_THAT(DecodeMessage(repeated).status().message(),
              HasSubstr("record header 'h-x-h7': appears twice"));
}

TEST(MessageCodecTest, MalformedHeadersAreDataLossNamingTheHeader) {
  struct Case {
    std::vector<codec::RecordHeader> extra;
    std::string error;
  };
  const Case cases[] = {
      {{{"ce-id", "2"}}, "record header 'ce-id': appears twice"},
      {{{"h-a", std::nullopt}}, "record header 'h-a': has no value"},
      {{{"ce-time", "yesterday"}}, "record header 'ce-time': "},
      {{{"ce-ext", ""}}, "record header 'ce-ext': extension value has no type byte"},
      {{{"ce-ext", "x1"}}, "record header 'ce-ext': unknown extension type byte 'x'"},
      {{{"ce-ext", "bmaybe"}}, "record header 'ce-ext': not a boolean: 'maybe'"},
      {{{"ce-ext", "i007"}}, "record header 'ce-ext': not a canonical int32: '007'"},
      {{{"ce-ext", "i2147483648"}}, "not a canonical int32"},
      {{{"ce-", "sx"}}, "record header 'ce-': no attribute name after the prefix"},
      {{{"h-", "v"}}, "record header 'h-': no header name after the prefix"},
      {{{"x-deliver-at", "+5"}}, "record header 'x-deliver-at': not a canonical decimal int64"},
      {{{"trace", "t"}}, "record header 'trace': unknown header"},
      {{{"CE-id", "1"}}, "record header 'CE-id': unknown header"},
      // Well-formed headers that decode to an invalid Message.
      {{{"ce-data", "sx"}}, "stored message is invalid: attribute 'data'"},
      {{{"h-ce-foo", "v"}}, "stored message is invalid: header 'ce-foo'"},
      {{{"ce-subject", ""}}, "stored message is invalid: attribute 'subject'"},
  };
  for (const Case& c : cases) {
    Status s = DecodeWith(c.extra);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << c.error << " -> " << s;
    EXPECT_THAT(s.message(), HasSubstr(c.error));
  }
}

TEST(MessageCodecTest, MissingRequiredAttributeOrInvalidKeyIsDataLoss) {
  codec::Record r = RequiredOnly();
  r.headers.erase(r.headers.begin() + 2);  // ce-specversion
  EXPECT_EQ(DecodeMessage(r).status(), DataLossError("record header 'ce-specversion': missing"));

  r = RequiredOnly();
  r.key = "";
  EXPECT_THAT(DecodeMessage(r).status().message(),
              HasSubstr("stored message is invalid: attribute 'partitionkey' (key)"));
}

TEST(MessageCodecTest, UnknownBrokerFieldsAreIgnoredAndEmptyValueMeansNoData) {
  codec::Record r = RequiredOnly();
  r.headers.push_back({"x-from-the-future", "whatever"});
  r.value = "";
  Result<StoredMessage> decoded = DecodeMessage(r);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->message, MinimalMessage());
  EXPECT_EQ(decoded->deliver_at_ms, std::nullopt);
}

TEST(MessageCodecTest, MessageSizeCountsEveryFieldAsText) {
  Message m = MinimalMessage();  // id 1 + source 1 + "1.0" 3 + type 1
  EXPECT_EQ(MessageSize(m), 6u);
  m.time = ParseRfc3339("2024-01-02T03:04:05Z").value();                              // 20
  m.extensions = {{"b", false}, {"n", std::int32_t{-12}}, {"s", std::string("xy")}};  // 6+4+3
  m.key = "key";                                                                      // 3
  m.headers = {{"h", "vv"}};                                                          // 3
  m.data = "12345";                                                                   // 5
  EXPECT_EQ(MessageSize(m), 6u + 20 + 13 + 3 + 3 + 5);
  // Kept with the message once boxed, and again once read back.
  EXPECT_EQ(StoredMessage(Message(m)).size(), 6u + 20 + 13 + 3 + 3 + 5);
  std::vector<codec::Record> records = Store({StoredMessage(m, 7, std::nullopt)});
  ASSERT_EQ(records.size(), 1u);
  Result<StoredMessage> decoded = DecodeMessage(records[0]);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->size(), 6u + 20 + 13 + 3 + 3 + 5);
}

}  // namespace
}  // namespace junction::broker
