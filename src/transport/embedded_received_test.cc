// PublishReceived (embedded_bus.h): a record batch that came off the wire is
// what the log stores, byte for byte but for base_offset, the batch times and
// the checksum, when the whole batch goes to one partition; anything else is
// encoded again and reads back the same.

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "broker/message_codec.h"
#include "codec/record_batch.h"
#include "junction/bus.h"
#include "tests/support/temp_dir.h"
#include "transport/embedded_bus.h"

namespace junction {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

using test_support::TempDir;

Message Msg(const std::string& id, std::optional<std::string> key = std::nullopt) {
  Message m;
  m.id = id;
  m.source = "/test";
  m.type = "test.received";
  m.key = std::move(key);
  m.data = "data of " + id;
  m.headers = {{"traceparent", "00-ab-cd-01"}};
  return m;
}

// The wire's batch of `messages` (as a junction:// client builds it), and
// the messages as the daemon decodes them from it.
struct Received {
  std::vector<std::byte> batch;
  std::vector<std::shared_ptr<broker::StoredMessage>> messages;
};

Received FromTheWire(const std::vector<Message>& messages) {
  Received r;
  r.batch = *broker::EncodeMessageBatch(messages, 1'000);
  bool storable = false;
  Status s =
      broker::DecodeStoredBatch(r.batch, codec::kDefaultMaxBatchBytes, 1000, r.messages, &storable);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(storable);
  return r;
}

std::vector<std::byte> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  for (std::size_t i = 0; i < chars.size(); ++i) bytes[i] = static_cast<std::byte>(chars[i]);
  return bytes;
}

// The first batch of a partition's first segment.
std::vector<std::byte> FirstStoredBatch(const std::filesystem::path& dir, std::string_view topic,
                                        int partition) {
  std::vector<std::byte> log = ReadFile(dir / "topics" / std::string(topic) /
                                        std::to_string(partition) / "00000000000000000000.log");
  Result<codec::BatchHeader> header = codec::ParseBatchHeader(log);
  EXPECT_TRUE(header.ok()) << header.status();
  if (!header.ok()) return {};
  log.resize(header->batch_length);
  return log;
}

// Runs `body` on an io_context of the test's thread (bounded: a hang fails).
template <typename F>
void RunOnIo(F body) {
  asio::io_context io;
  std::future<void> done = asio::co_spawn(io, body(), asio::use_future);
  io.run_for(30s);  // a bound on a hang, not a timing assertion
  ASSERT_EQ(done.wait_for(0s), std::future_status::ready);
  done.get();
}

TEST(PublishReceived, AWholeBatchForOnePartitionIsStoredAsItCame) {
  TempDir dir("junction-received");
  Result<std::unique_ptr<Bus>> bus = Bus::Open("file://" + dir.path().string());
  ASSERT_TRUE(bus.ok()) << bus.status();
  const std::vector<Message> sent = {Msg("a", "k1"), Msg("b"), Msg("c", "k2")};
  Received received = FromTheWire(sent);
  const std::vector<std::byte> wire = received.batch;
  std::vector<std::string> delivered;
  RunOnIo([&]() -> Awaitable<void> {
    TopicOptions one;  // one partition: keys and keyless alike go there
    EXPECT_TRUE((co_await (*bus)->CreateTopic("orders", one, Deadline::Infinite())).ok());
    SubscribeOptions group;
    group.group = "g";
    Result<std::unique_ptr<Subscription>> sub =
        co_await (*bus)->Subscribe("orders", group, Deadline::Infinite());
    EXPECT_TRUE(sub.ok()) << sub.status();
    if (!sub.ok()) co_return;
    Result<std::vector<PublishResult>> published = co_await transport::PublishReceived(
        **bus, "orders", std::move(received.messages), std::move(received.batch), {});
    EXPECT_TRUE(published.ok()) << published.status();
    if (!published.ok()) co_return;
    EXPECT_EQ(published->size(), 3u);
    for (std::size_t i = 0; i < published->size(); ++i) {
      EXPECT_EQ((*published)[i].offset, Offset(i));
      EXPECT_FALSE((*published)[i].duplicate);
    }
    // Groups get them from the tail cache, as from any other publish.
    while (delivered.size() < 3) {
      Result<Delivery> d = co_await (*sub)->Next(Deadline::Infinite());
      EXPECT_TRUE(d.ok()) << d.status();
      if (!d.ok()) co_return;
      delivered.push_back(d->message().id + "=" + d->message().data);
      EXPECT_TRUE((co_await d->AckSync()).ok());
    }
    EXPECT_TRUE((co_await (*bus)->Close()).ok());
  });
  EXPECT_EQ(delivered, (std::vector<std::string>{"a=data of a", "b=data of b", "c=data of c"}));

  std::vector<std::byte> stored = FirstStoredBatch(dir.path(), "orders", 0);
  ASSERT_EQ(stored.size(), wire.size());
  namespace f = codec::batch_field;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    const bool written_by_broker = (i >= f::kBaseOffset && i < f::kBatchLength) ||
                                   (i >= f::kChecksum && i < f::kAttributes) ||
                                   (i >= f::kFirstTimestamp && i < f::kProducerId);
    if (!written_by_broker) {
      ASSERT_EQ(stored[i], wire[i]) << "byte " << i;
    }
  }
  Result<codec::BatchHeader> header = codec::VerifyBatch(stored);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->record_count, 3u);
  EXPECT_NE(header->first_timestamp_ms, 1'000);  // the broker's time, not the publisher's
  EXPECT_EQ(header->max_timestamp_ms, header->first_timestamp_ms);
}

TEST(PublishReceived, WhatCannotBeStoredAsItCameIsEncodedAgainAndReadsTheSame) {
  TempDir dir("junction-received");
  Result<std::unique_ptr<Bus>> bus = Bus::Open("file://" + dir.path().string());
  ASSERT_TRUE(bus.ok()) << bus.status();
  // Keys over four partitions; a batch with an id stored before; a delay.
  std::vector<Message> keyed;
  for (int i = 0; i < 16; ++i)
    keyed.push_back(Msg("k" + std::to_string(i), "key-" + std::to_string(i)));
  Received spread = FromTheWire(keyed);
  Received with_duplicate = FromTheWire({Msg("d0"), Msg("d1")});
  Received delayed = FromTheWire({Msg("late0"), Msg("late1")});
  std::vector<PublishResult> spread_results;
  std::vector<PublishResult> duplicate_results;
  std::vector<std::string> read_back;
  RunOnIo([&]() -> Awaitable<void> {
    TopicOptions four;
    four.partitions = 4;
    EXPECT_TRUE((co_await (*bus)->CreateTopic("spread", four, Deadline::Infinite())).ok());
    Result<std::vector<PublishResult>> r = co_await transport::PublishReceived(
        **bus, "spread", std::move(spread.messages), std::move(spread.batch), {});
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) spread_results = *r;

    TopicOptions one;
    EXPECT_TRUE((co_await (*bus)->CreateTopic("one", one, Deadline::Infinite())).ok());
    EXPECT_TRUE((co_await (*bus)->Publish("one", Msg("d0"))).ok());
    r = co_await transport::PublishReceived(**bus, "one", std::move(with_duplicate.messages),
                                            std::move(with_duplicate.batch), {});
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) duplicate_results = *r;

    PublishOptions later;
    later.delay = 1h;
    r = co_await transport::PublishReceived(**bus, "one", std::move(delayed.messages),
                                            std::move(delayed.batch), later);
    EXPECT_TRUE(r.ok()) << r.status();

    for (std::uint32_t p = 0; p < 4; ++p) {
      Result<std::vector<TopicRecord>> records = co_await (*bus)->ReadTopic(
          "spread", PartitionId(p), Offset(0), 100, Deadline::Infinite());
      EXPECT_TRUE(records.ok()) << records.status();
      if (!records.ok()) co_return;
      for (const TopicRecord& record : *records) {
        read_back.push_back(record.message.id + "@" + std::to_string(p) + "=" +
                            (record.message.key ? *record.message.key : "?"));
      }
    }
    EXPECT_TRUE((co_await (*bus)->Close()).ok());
  });
  // Every keyed message is where its key puts it, whole, once.
  ASSERT_EQ(spread_results.size(), 16u);
  std::vector<std::string> expected;
  std::vector<bool> used(4, false);
  for (int i = 0; i < 16; ++i) {
    std::uint32_t p = spread_results[i].partition.value();
    used[p] = true;
    expected.push_back("k" + std::to_string(i) + "@" + std::to_string(p) + "=key-" +
                       std::to_string(i));
  }
  ASSERT_GE(std::count(used.begin(), used.end(), true), 2) << "the keys should spread";
  std::sort(expected.begin(), expected.end());
  std::sort(read_back.begin(), read_back.end());
  EXPECT_EQ(read_back, expected);

  // The duplicate is answered from the window; the other is stored alone.
  ASSERT_EQ(duplicate_results.size(), 2u);
  EXPECT_TRUE(duplicate_results[0].duplicate);
  EXPECT_EQ(duplicate_results[0].offset, Offset(0));
  EXPECT_FALSE(duplicate_results[1].duplicate);
  EXPECT_EQ(duplicate_results[1].offset, Offset(1));

  // In "one": d0 (a single publish), then d1 in a batch of its own (encoded
  // again without d0), then the delayed two, with the broker's field.
  std::vector<std::byte> log =
      ReadFile(dir.path() / "topics" / "one" / "0" / "00000000000000000000.log");
  std::vector<std::uint32_t> counts;
  std::vector<std::string> ids;
  std::span<const std::byte> rest(log);
  while (!rest.empty()) {
    Result<codec::BatchHeader> header =
        codec::VerifyBatch(rest.first(codec::ParseBatchHeader(rest).value().batch_length));
    ASSERT_TRUE(header.ok()) << header.status();
    counts.push_back(header->record_count);
    Result<std::vector<codec::Record>> records =
        codec::DecodeRecords(rest.first(header->batch_length));
    ASSERT_TRUE(records.ok()) << records.status();
    for (const codec::Record& record : *records) {
      Result<broker::StoredMessage> m = broker::DecodeMessage(record);
      ASSERT_TRUE(m.ok()) << m.status();
      ids.push_back(m->message.id + (m->deliver_at_ms ? "+delay" : ""));
    }
    rest = rest.subspan(header->batch_length);
  }
  EXPECT_EQ(counts, (std::vector<std::uint32_t>{1, 1, 2}));
  EXPECT_EQ(ids, (std::vector<std::string>{"d0", "d1", "late0+delay", "late1+delay"}));
}

// What came off the wire was validated as it was decoded; its size is still
// the bus's to check, and an oversized message stores none of its batch.
TEST(PublishReceived, AMessageOverTheBussLimitIsRefusedAndNothingIsStored) {
  TempDir dir("junction-received");
  BusOptions options;
  options.max_message_bytes = 512;
  Result<std::unique_ptr<Bus>> bus = Bus::Open("file://" + dir.path().string(), options);
  ASSERT_TRUE(bus.ok()) << bus.status();
  Message big = Msg("big");
  big.data.assign(600, 'x');
  Received received = FromTheWire({Msg("small"), big});
  RunOnIo([&]() -> Awaitable<void> {
    EXPECT_TRUE((co_await (*bus)->CreateTopic("one", {}, Deadline::Infinite())).ok());
    Result<std::vector<PublishResult>> r = co_await transport::PublishReceived(
        **bus, "one", std::move(received.messages), std::move(received.batch), {});
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status();
    EXPECT_NE(r.status().message().find("exceeds max_message_bytes (512)"), std::string::npos)
        << r.status();
    Result<std::vector<TopicRecord>> records =
        co_await (*bus)->ReadTopic("one", PartitionId(0), Offset(0), 10, Deadline::Infinite());
    EXPECT_TRUE(records.ok()) << records.status();
    if (records.ok()) {
      EXPECT_TRUE(records->empty());
    }
    EXPECT_TRUE((co_await (*bus)->Close()).ok());
  });
}

}  // namespace
}  // namespace junction
