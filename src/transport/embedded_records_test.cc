// Deliveries of records the broker never decoded: on a bus that keeps stored
// batches (junctiond's), a group that reads its partition back from the log
// holds each record as a position in the stored batch and builds its
// Message only when an attempt fails (broker::Group::Materialize), or when a
// consumer of the bus itself takes it (embedded_bus.cc). What a consumer
// gets must not depend on which of the two happened.

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "broker/message_codec.h"
#include "core/run_sync.h"
#include "junction/bus.h"
#include "tests/support/temp_dir.h"
#include "transport/embedded_bus.h"

namespace junction {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
using test_support::TempDir;

Message Msg(const std::string& id) {
  Message m;
  m.id = id;
  m.source = "/test/records";
  m.type = "test.records";
  m.subject = "s-" + id;
  m.extensions.emplace("tenant", ExtensionValue(std::string("acme")));
  m.extensions.emplace("priority", ExtensionValue(std::int32_t{7}));
  m.extensions.emplace("urgent", ExtensionValue(true));
  m.headers.emplace("trace", "t-" + id);
  m.data = "body of " + id;
  return m;
}

SubscribeOptions Earliest(const std::string& group) {
  SubscribeOptions options;
  options.group = group;
  options.start = StartPosition::Earliest();
  options.ack_deadline = 1h;
  options.max_deliveries = 2;
  options.backoff = {Duration::zero()};
  return options;
}

// What the consumer compares: the message without the attempt header.
Message WithoutAttempt(Message m) {
  m.headers.erase(std::string(kHeaderAttempt));
  return m;
}

bool RunToCompletion(asio::io_context& io) {
  io.restart();
  io.run_for(30s);
  return io.stopped();
}

// The bus of `url` on `io`, keeping stored batches as junctiond's does
// (set before anything runs `io`); null after a failure reported here.
std::unique_ptr<Bus> OpenKeepingBatches(asio::io_context& io, const std::string& url) {
  BusOptions options;
  options.executor = io.get_executor();
  Result<std::unique_ptr<Bus>> opened = Bus::Open(url, options);
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (!opened.ok()) return nullptr;
  transport::KeepStoredBatches(**opened);
  return std::move(*opened);
}

TEST(EmbeddedRecords, RecordsReadBackAreDeliveredFailedAndDeadLetteredWhole) {
  TempDir dir("junction-records");
  ASSERT_FALSE(dir.path().empty());
  asio::io_context io;
  std::unique_ptr<Bus> bus = OpenKeepingBatches(io, dir.url());
  ASSERT_NE(bus, nullptr);

  const std::vector<std::string> ids = {"a", "b", "c", "d"};
  auto body = [&]() -> Awaitable<void> {
    // Stored before any group exists: no tail cache holds them, and the
    // groups read them back from the log, one batch.
    std::vector<Message> messages;
    for (const std::string& id : ids) messages.push_back(Msg(id));
    Result<std::vector<PublishResult>> published =
        co_await bus->PublishBatch("orders", messages, {}, Deadline::Infinite());
    EXPECT_TRUE(published.ok()) << published.status();
    if (!published.ok()) co_return;

    // junctiond's view: the batch and each record's place in it, no Message.
    Result<std::unique_ptr<Subscription>> sub =
        co_await bus->Subscribe("orders", Earliest("g"), Deadline::Infinite());
    EXPECT_TRUE(sub.ok()) << sub.status();
    if (!sub.ok()) co_return;
    Result<transport::StoredDeliveries> got =
        co_await transport::NextBatchStored(**sub, ids.size(), Deadline::After(RealClock(), 10s));
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok()) co_return;
    EXPECT_EQ(got->deliveries.size(), ids.size());
    if (got->deliveries.size() != ids.size()) co_return;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const transport::StoredRef& ref = got->stored[i];
      EXPECT_NE(ref.batch, nullptr) << i;
      EXPECT_EQ(ref.message, nullptr) << i << ": the broker decoded a record it sends as stored";
      if (ref.batch == nullptr) continue;
      Result<std::shared_ptr<broker::StoredMessage>> decoded =
          broker::DecodeStoredRecordAt(*ref.batch, ref.position);
      EXPECT_TRUE(decoded.ok()) << decoded.status();
      if (decoded.ok()) {
        EXPECT_EQ((*decoded)->message, Msg(ids[i])) << i;
        EXPECT_EQ((*decoded)->size(), broker::MessageSize(Msg(ids[i]))) << i;
      }
    }
    // "b" fails once (nacked) and comes again, decoded by the group; "c"
    // fails twice and goes to the dead-letter topic, decoded the same way.
    using Kind = transport::AckOp::Kind;
    auto op = [&](std::size_t i, Kind kind) {
      transport::AckOp o;
      o.ref = got->stored[i].ref.value_or(broker::DeliveryRef{});
      o.kind = kind;
      if (kind == Kind::kNack) o.delay = Duration::zero();
      return o;
    };
    std::vector<transport::AckOp> ops;
    ops.push_back(op(0, Kind::kAck));
    ops.push_back(op(1, Kind::kNack));
    ops.push_back(op(2, Kind::kNack));
    ops.push_back(op(3, Kind::kAck));
    std::vector<Status> applied = co_await transport::ApplyAcks(*bus, std::move(ops));
    for (const Status& s : applied) EXPECT_TRUE(s.ok()) << s;
    std::vector<std::string> again;
    for (int i = 0; i < 2; ++i) {
      Result<Delivery> next = co_await (*sub)->Next(Deadline::After(RealClock(), 10s));
      EXPECT_TRUE(next.ok()) << next.status();
      if (!next.ok()) co_return;
      EXPECT_EQ(next->attempt(), DeliveryCount(2));
      EXPECT_EQ(WithoutAttempt(next->message()), Msg(next->message().id));
      again.push_back(next->message().id);
      Status done = next->message().id == "c" ? co_await next->Nack(Duration::zero(), "poison")
                                              : co_await next->AckSync();
      EXPECT_TRUE(done.ok()) << done;
    }
    EXPECT_EQ(again, (std::vector<std::string>{"b", "c"}));
    Result<std::unique_ptr<Subscription>> dlq = co_await bus->Subscribe(
        DeadLetterTopic("orders", Earliest("g")), Earliest("dlq-reader"), Deadline::Infinite());
    EXPECT_TRUE(dlq.ok()) << dlq.status();
    if (!dlq.ok()) co_return;
    Result<Delivery> dead = co_await (*dlq)->Next(Deadline::After(RealClock(), 10s));
    EXPECT_TRUE(dead.ok()) << dead.status();
    if (dead.ok()) {
      Message expected = Msg("c");
      const Message& m = dead->message();
      EXPECT_EQ(m.id, "c");
      EXPECT_EQ(m.data, expected.data);
      EXPECT_EQ(m.extensions, expected.extensions);
      EXPECT_EQ(m.headers.at("trace"), "t-c");
      EXPECT_EQ(m.headers.at(std::string(kHeaderDlqLastError)), "poison");
    }

    // A consumer of the bus itself (no stored batches asked for) gets each
    // record decoded for it, whole, on its first attempt.
    Result<std::unique_ptr<Subscription>> plain =
        co_await bus->Subscribe("orders", Earliest("plain"), Deadline::Infinite());
    EXPECT_TRUE(plain.ok()) << plain.status();
    if (!plain.ok()) co_return;
    for (const std::string& id : ids) {
      Result<Delivery> next = co_await (*plain)->Next(Deadline::After(RealClock(), 10s));
      EXPECT_TRUE(next.ok()) << next.status();
      if (!next.ok()) co_return;
      EXPECT_EQ(next->attempt(), DeliveryCount(1));
      EXPECT_EQ(WithoutAttempt(next->message()), Msg(id));
    }
    Result<GroupInfo> info = co_await bus->DescribeGroup("orders", "g", Deadline::Infinite());
    EXPECT_TRUE(info.ok()) << info.status();
    if (info.ok()) {
      EXPECT_EQ(info->backlog, 0u);
      EXPECT_EQ(info->dead_lettered, 1u);
    }
    EXPECT_TRUE((co_await bus->Close()).ok());
  };
  std::future<void> done = asio::co_spawn(io, body(), asio::use_future);
  ASSERT_TRUE(RunToCompletion(io));
  done.get();
}

// Records stored before the broker opened the log (by an earlier process,
// perhaps another version) are decoded when read, so one that is not a
// message is skipped there; those this broker stored and validated itself
// stay records (broker::Topic::validated_from).
TEST(EmbeddedRecords, OnlyRecordsStoredSinceTheLogOpenedStayUndecoded) {
  TempDir dir("junction-records-reopen");
  ASSERT_FALSE(dir.path().empty());
  {
    Result<std::unique_ptr<Bus>> before = Bus::Open(dir.url());
    ASSERT_TRUE(before.ok()) << before.status();
    Status s = RunSync([&]() -> Awaitable<Status> {
      std::vector<Message> messages = {Msg("old-1"), Msg("old-2")};
      Result<std::vector<PublishResult>> published =
          co_await (*before)->PublishBatch("orders", messages, {}, Deadline::Infinite());
      if (!published.ok()) co_return published.status();
      co_return co_await (*before)->Close();
    }());
    ASSERT_TRUE(s.ok()) << s;
  }
  asio::io_context io;
  std::unique_ptr<Bus> bus = OpenKeepingBatches(io, dir.url());
  ASSERT_NE(bus, nullptr);
  auto body = [&]() -> Awaitable<void> {
    std::vector<Message> messages = {Msg("new-1"), Msg("new-2")};
    Result<std::vector<PublishResult>> published =
        co_await bus->PublishBatch("orders", messages, {}, Deadline::Infinite());
    EXPECT_TRUE(published.ok()) << published.status();
    Result<std::unique_ptr<Subscription>> sub =
        co_await bus->Subscribe("orders", Earliest("g"), Deadline::Infinite());
    EXPECT_TRUE(sub.ok()) << sub.status();
    if (!sub.ok()) co_return;
    std::vector<std::string> decoded;
    std::vector<std::string> records;
    while (decoded.size() + records.size() < 4) {
      Result<transport::StoredDeliveries> got =
          co_await transport::NextBatchStored(**sub, 4, Deadline::After(RealClock(), 10s));
      EXPECT_TRUE(got.ok()) << got.status();
      if (!got.ok()) co_return;
      for (const transport::StoredRef& ref : got->stored) {
        EXPECT_NE(ref.batch, nullptr);
        if (ref.message != nullptr) {  // decoded when read
          decoded.push_back(ref.message->message.id);
          continue;
        }
        if (ref.batch == nullptr) continue;
        Result<std::shared_ptr<broker::StoredMessage>> m =
            broker::DecodeStoredRecordAt(*ref.batch, ref.position);
        EXPECT_TRUE(m.ok()) << m.status();
        if (m.ok()) records.push_back((*m)->message.id);
      }
    }
    EXPECT_EQ(decoded, (std::vector<std::string>{"old-1", "old-2"}));
    EXPECT_EQ(records, (std::vector<std::string>{"new-1", "new-2"}));
    EXPECT_TRUE((co_await bus->Close()).ok());
  };
  std::future<void> done = asio::co_spawn(io, body(), asio::use_future);
  ASSERT_TRUE(RunToCompletion(io));
  done.get();
}

}  // namespace
}  // namespace junction
