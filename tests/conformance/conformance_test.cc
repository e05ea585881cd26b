// Conformance suite, part 1: the transports it runs on, and publishing
// (placement, batches, validation, topics, Close). The other parts:
// conformance_delivery_test.cc, conformance_failure_test.cc,
// conformance_request_test.cc, conformance_durable_test.cc.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include "conformance_util.h"

namespace junction::conformance {
namespace {

// Kafka's murmur2 of each key (UtilsTest.testMurmur2), and the partition
// (murmur2 & 0x7fffffff) % 8 that Kafka's default partitioner picks for it.
struct KafkaKey {
  std::string key;
  std::int32_t murmur2;
  std::uint32_t partition_of_8;
};
const std::vector<KafkaKey>& KafkaKeys() {
  static const auto* const keys = new std::vector<KafkaKey>{
      {"21", -973932308, 4},
      {"foobar", -790332482, 6},
      {"a-little-bit-long-string", -985981536, 0},
      {"a-little-bit-longer-string", -1486304829, 3},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 5},
      {"abc", 479470107, 3},
  };
  return *keys;
}

TEST(KafkaKeysTest, ExpectedPartitionsFollowFromTheHashes) {
  for (const KafkaKey& k : KafkaKeys()) {
    EXPECT_EQ((static_cast<std::uint32_t>(k.murmur2) & 0x7fffffffu) % 8, k.partition_of_8) << k.key;
  }
}

TopicOptions Partitions(std::uint32_t n) {
  TopicOptions options;
  options.partitions = n;
  return options;
}

TEST_P(Conformance, PublishReturnsPartitionAndOffset) {
  Run([&]() -> Awaitable<void> {
    std::vector<PublishResult> results = co_await PublishN("orders", 3);
    CO_ASSERT_EQ(results.size(), 3u);
    for (std::uint64_t i = 0; i < 3; ++i) {
      EXPECT_EQ(results[i].partition, PartitionId(0));
      EXPECT_EQ(results[i].offset, Offset(i));
      EXPECT_FALSE(results[i].duplicate);
    }
  });
}

// Callback style: the awaitables are co_spawn'ed with a completion handler,
// and the caller never writes a coroutine of its own for them.
TEST_P(Conformance, CallbackUsersGetTheSameResults) {
  Run([&]() -> Awaitable<void> {
    auto ex = co_await boost::asio::this_coro::executor;
    std::optional<Result<PublishResult>> published;
    boost::asio::co_spawn(
        ex, bus().Publish("orders", Msg("m0")),
        [&](const std::exception_ptr&, const Result<PublishResult>& r) { published = r; });
    while (!published) co_await boost::asio::post(ex, boost::asio::use_awaitable);
    EXPECT_EQ(Must(*published).offset, Offset(0));
    std::optional<Result<Message>> reply;
    boost::asio::co_spawn(ex, bus().Request("nobody", Msg("q"), kForever),
                          [&](const std::exception_ptr&, const Result<Message>& r) { reply = r; });
    while (!reply) co_await boost::asio::post(ex, boost::asio::use_awaitable);
    if (caps().request_reply) {
      EXPECT_TRUE(IsNoResponders(reply->status())) << reply->status();
    }
  });
}

TEST_P(Conformance, KeyPlacementMatchesKafkaMurmur2) {
  Run([&]() -> Awaitable<void> {
    Must(co_await bus().CreateTopic("orders", Partitions(8), kForever));
    for (const KafkaKey& k : KafkaKeys()) {
      PublishResult r = co_await Publish("orders", Msg("id-" + k.key, k.key));
      EXPECT_EQ(r.partition, PartitionId(k.partition_of_8)) << "key " << k.key;
    }
    PublishOptions pinned;
    pinned.partition = PartitionId(7);
    EXPECT_EQ((co_await Publish("orders", Msg("pinned", "foobar"), pinned)).partition,
              PartitionId(7));
  });
}

TEST_P(Conformance, KeylessMessagesSpreadOverEveryPartition) {
  Run([&]() -> Awaitable<void> {
    Must(co_await bus().CreateTopic("orders", Partitions(4), kForever));
    // Placement may be sticky (a partition takes keyless messages for some
    // bytes: 16 KiB in Kafka, 64 KiB in the embedded broker), so the test
    // publishes eight times 64 KiB: 64 x 8 KiB.
    constexpr int kMessages = 64;
    std::map<std::uint32_t, int> count;
    for (int i = 0; i < kMessages; ++i) {
      PublishResult r = co_await Publish(
          "orders", Msg("m" + std::to_string(i), std::nullopt, std::string(8192, 'x')));
      ++count[r.partition.value()];
    }
    CO_ASSERT_EQ(count.size(), 4u) << "every partition takes some";
    for (const auto& [partition, n] : count) {
      EXPECT_GE(n, kMessages / 8) << "partition " << partition << " took too few";
    }
  });
}

// Every attribute, extension, header and byte of data, as published.
Message FullMessage(std::string id) {
  Message m = Msg(std::move(id), "key-1",
                  std::string("bin\0\xff\x01"
                              "data",
                              10));
  m.subject = "orders/42";
  m.time = Timestamp(std::chrono::nanoseconds(1'700'000'000'123'456'789));
  m.datacontenttype = "application/octet-stream";
  m.dataschema = "https://example.com/schemas/order";
  m.extensions["flag"] = true;
  m.extensions["count"] = std::int32_t{-7};
  m.extensions["region"] = std::string("eu-west");
  m.headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  return m;
}

// A group that was there when the message was stored (on the embedded broker
// it gets it handed over from memory) and one that joins later and reads it
// back from the log get the same message: the published one plus the attempt
// header.
TEST_P(Conformance, EveryAttributeArrivesUnchangedToGroupsOldAndNew) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto early = co_await Join("orders", Group("early"));
    const Message published = FullMessage("full-1");
    co_await Publish("orders", published);
    auto late = co_await Join("orders", Group("late"));
    std::vector<Subscription*> groups;
    groups.push_back(early.get());
    groups.push_back(late.get());
    for (Subscription* sub : groups) {
      std::vector<Delivery> got = co_await Drain(*sub);
      if (got.size() != 1) {
        ADD_FAILURE() << "expected one delivery, got " << got.size();
        continue;
      }
      Message received = got[0].message();
      EXPECT_EQ(Header(received, kHeaderAttempt), "1");
      received.headers.erase(std::string(kHeaderAttempt));
      EXPECT_EQ(received, published);
      Must(co_await got[0].Ack());
    }
  });
}

TEST_P(Conformance, BatchResultsComeInInputOrder) {
  Run([&]() -> Awaitable<void> {
    Must(co_await bus().CreateTopic("orders", Partitions(8), kForever));
    // Partitions 3, 4, 3, 6 (see KafkaKeys).
    std::vector<Message> batch = {Msg("b0", "abc"), Msg("b1", "21"),
                                  Msg("b2", "a-little-bit-longer-string"), Msg("b3", "foobar")};
    std::vector<PublishResult> results =
        Must(co_await bus().PublishBatch("orders", batch, {}, kForever));
    CO_ASSERT_EQ(results.size(), 4u);
    EXPECT_EQ(results[0].partition, PartitionId(3));
    EXPECT_EQ(results[1].partition, PartitionId(4));
    EXPECT_EQ(results[2].partition, PartitionId(3));
    EXPECT_EQ(results[3].partition, PartitionId(6));
    EXPECT_EQ(results[0].offset, Offset(0));
    EXPECT_EQ(results[1].offset, Offset(0));
    EXPECT_EQ(results[2].offset, Offset(1));
    EXPECT_EQ(results[3].offset, Offset(0));
    if (!co_await SupportsGroups()) co_return;
    // Each result names where its own message is stored.
    auto sub = co_await Join("orders", Group("g"));
    for (const Delivery& d : co_await Drain(*sub)) {
      const PublishResult& r = results[d.message().id[1] - '0'];
      EXPECT_EQ(d.partition(), r.partition) << d.message().id;
      EXPECT_EQ(d.offset(), r.offset) << d.message().id;
    }
  });
}

TEST_P(Conformance, UnknownTopicIsNotFoundWithoutAutoCreate) {
  Run([&]() -> Awaitable<void> {
    BusOptions options;
    options.auto_create_topics = false;
    co_await Reopen(options);
    EXPECT_EQ(Code(co_await bus().Publish("orders", Msg("m0"))), StatusCode::kNotFound);
    EXPECT_EQ(Code(co_await bus().PublishBatch("orders", One(Msg("m0")), {}, kForever)),
              StatusCode::kNotFound);
    if (caps().groups) {
      EXPECT_EQ(Code(co_await bus().Subscribe("orders", Group("g"), kForever)),
                StatusCode::kNotFound);
    }
    Must(co_await bus().CreateTopic("orders", {}, kForever));
    EXPECT_EQ((co_await Publish("orders", Msg("m0"))).offset, Offset(0));
  });
}

TEST_P(Conformance, CreateTopicIsIdempotentButRefusesOtherOptions) {
  Run([&]() -> Awaitable<void> {
    Must(co_await bus().CreateTopic("orders", Partitions(2), kForever));
    Must(co_await bus().CreateTopic("orders", Partitions(2), kForever));
    EXPECT_EQ(Code(co_await bus().CreateTopic("orders", Partitions(3), kForever)),
              StatusCode::kAlreadyExists);
  });
}

TEST_P(Conformance, InvalidTopicNamesAreRefused) {
  Run([&]() -> Awaitable<void> {
    const std::vector<std::string> names = {"", "has space", "a/b", std::string(250, 'x'),
                                            "__internal"};
    for (const std::string& name : names) {
      EXPECT_EQ(Code(co_await bus().Publish(name, Msg("m0"))), StatusCode::kInvalidArgument)
          << "'" << name << "'";
      EXPECT_EQ(Code(co_await bus().CreateTopic(name, {}, kForever)), StatusCode::kInvalidArgument)
          << "'" << name << "'";
    }
    Must(co_await bus().CreateTopic(std::string(249, 'x'), {}, kForever));
    Must(co_await bus().CreateTopic("Az09._-", {}, kForever));
  });
}

TEST_P(Conformance, InvalidMessagesAreRefused) {
  Run([&]() -> Awaitable<void> {
    Message no_source = Msg("m0");
    no_source.source.clear();
    EXPECT_EQ(Code(co_await bus().Publish("orders", no_source)), StatusCode::kInvalidArgument);
    EXPECT_EQ(Code(co_await bus().PublishBatch("orders", One(Msg("")), {}, kForever)),
              StatusCode::kInvalidArgument);
    if (caps().delayed_delivery) {
      PublishOptions both;
      both.delay = 1s;
      both.deliver_at = clock().WallNow() + 1s;
      EXPECT_EQ(Code(co_await bus().Publish("orders", Msg("m1"), both, kForever)),
                StatusCode::kInvalidArgument);
    }
    // Nothing of the refused calls was stored.
    EXPECT_EQ((co_await Publish("orders", Msg("m2"))).offset, Offset(0));
  });
}

TEST_P(Conformance, OversizedMessageIsResourceExhausted) {
  Run([&]() -> Awaitable<void> {
    BusOptions options;
    options.max_message_bytes = 4096;
    co_await Reopen(options);
    EXPECT_EQ(
        Code(co_await bus().Publish("orders", Msg("big", std::nullopt, std::string(4097, 'x')))),
        StatusCode::kResourceExhausted);
    Message big_header = Msg("big-header");
    big_header.headers["x-pad"] = std::string(4097, 'y');
    EXPECT_EQ(Code(co_await bus().Publish("orders", big_header)), StatusCode::kResourceExhausted);
    EXPECT_EQ((co_await Publish("orders", Msg("small", std::nullopt, "x"))).offset, Offset(0));
  });
}

TEST_P(Conformance, CallsAfterCloseFailWithFailedPrecondition) {
  Run([&]() -> Awaitable<void> {
    std::unique_ptr<Subscription> sub;
    if (caps().groups) sub = co_await Join("orders", Group("g"));
    Must(co_await bus().Close());
    EXPECT_EQ(Code(co_await bus().Publish("orders", Msg("m0"))), StatusCode::kFailedPrecondition);
    EXPECT_EQ(Code(co_await bus().PublishBatch("orders", One(Msg("m1")), {}, kForever)),
              StatusCode::kFailedPrecondition);
    EXPECT_EQ(Code(co_await bus().Subscribe("orders", Group("g2"), kForever)),
              StatusCode::kFailedPrecondition);
    EXPECT_EQ(Code(co_await bus().CreateTopic("other", {}, kForever)),
              StatusCode::kFailedPrecondition);
    if (sub) {
      EXPECT_EQ(Code(co_await sub->Next(kNow)), StatusCode::kCancelled);
    }
  });
}

// A Delivery may outlive its bus: an ack sent as the bus goes completes (the
// broker applied it, or FailedPrecondition), and one sent after it is gone
// fails with FailedPrecondition; none hangs or is dropped.
TEST_P(Conformance, AcksOfDeliveriesThatOutliveTheirBusFailCleanly) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    std::unique_ptr<Subscription> sub = co_await Join("orders", Group("g"));
    co_await PublishN("orders", 2);
    std::vector<Delivery> got = co_await Drain(*sub);
    EXPECT_EQ(got.size(), 2u);
    if (got.size() != 2) co_return;
    // Sent, then the subscription and the bus go while it is on its way.
    std::shared_ptr<Pending<Status>> in_flight = Spawn(got[0].Ack());
    co_await Yield();
    sub.reset();
    DropBus();
    Status sent_first = co_await in_flight->Wait();
    EXPECT_TRUE(sent_first.ok() || sent_first.code() == StatusCode::kFailedPrecondition)
        << sent_first;
    // Sent after the bus is gone.
    EXPECT_EQ(Code(co_await got[1].Ack()), StatusCode::kFailedPrecondition);
    EXPECT_EQ(Code(co_await got[1].Nack()), StatusCode::kFailedPrecondition);
    EXPECT_EQ(Code(co_await got[1].InProgress()), StatusCode::kFailedPrecondition);
  });
}

INSTANTIATE_TEST_SUITE_P(Transports, Conformance,
                         ::testing::Values("mem://", "file://",
                                           "file://" + std::string(kOnTestExecutor), "junction://",
                                           "junction://" + std::string(kOnTestExecutor)),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param.substr(0, info.param.find(':'));
                           if (info.param.ends_with(kOnTestExecutor)) name += "OnTestExecutor";
                           return name;
                         });

}  // namespace
}  // namespace junction::conformance
