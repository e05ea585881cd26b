// Conformance suite, part 3: dead letters and ordered groups.

#include <string>
#include <vector>

#include "conformance_util.h"

namespace junction::conformance {
namespace {

SubscribeOptions Ordered(std::uint32_t max_deliveries = 20) {
  SubscribeOptions options = Group("g");
  options.ordered = true;
  options.max_deliveries = max_deliveries;
  options.backoff = {1s};
  return options;
}

TEST_P(Conformance, MaxDeliveriesMovesTheMessageToTheDeadLetterTopic) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    SubscribeOptions options = Group("billing");
    options.max_deliveries = 3;
    options.backoff = {1s};
    SubscribeOptions explicit_dlq = options;
    explicit_dlq.dead_letter_topic = "orders.billing.dlq";
    if (!co_await Supported(caps().dead_letters,
                            bus().Subscribe("orders", explicit_dlq, kForever))) {
      co_return;
    }
    auto sub = co_await Join("orders", options);
    co_await PublishN("orders", 2, "fine");
    for (const Delivery& d : co_await Drain(*sub)) Must(co_await d.Ack());
    co_await Publish("orders", Msg("poison", "k1", "payload"));

    const Timestamp first_failure = clock().WallNow();
    Delivery d = co_await TakeOne(*sub);
    Must(co_await d.Nack(std::nullopt, "boom 1"));
    clock().Advance(1s);
    d = co_await TakeOne(*sub);
    Must(co_await d.Nack(std::nullopt, "boom 2"));
    clock().Advance(1s);
    d = co_await TakeOne(*sub);
    EXPECT_EQ(d.attempt(), DeliveryCount(3));
    const Timestamp last_failure = clock().WallNow();
    Must(co_await d.Nack(std::nullopt, "boom 3"));

    auto dlq = co_await Join("orders.billing.dlq", Group("reader"));
    Delivery dead = co_await AwaitOne(*dlq);  // stored in the background
    // The original counts as dead-lettered once the dead letter's store has
    // completed; a reader of the dead-letter topic may see it a moment
    // before (on a bus running on this thread, between two of its steps).
    GroupInfo info = co_await Describe("orders", "billing");
    for (int i = 0; i < 100 && info.dead_lettered == 0; ++i) {
      co_await Yield();
      info = co_await Describe("orders", "billing");
    }
    EXPECT_EQ(info.dead_lettered, 1u);
    EXPECT_EQ(info.backlog, 0u);
    clock().Advance(1h);
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty()) << "the original came back";
    const Message& m = dead.message();
    EXPECT_EQ(m.id, "poison");
    EXPECT_EQ(m.key, "k1");
    EXPECT_EQ(m.data, "payload");
    EXPECT_EQ(dead.topic(), "orders.billing.dlq");
    EXPECT_EQ(Header(m, kHeaderDlqTopic), "orders");
    EXPECT_EQ(Header(m, kHeaderDlqGroup), "billing");
    EXPECT_EQ(Header(m, kHeaderDlqPartition), "0");
    EXPECT_EQ(Header(m, kHeaderDlqOffset), "2");
    EXPECT_EQ(Header(m, kHeaderDlqAttempts), "3");
    EXPECT_EQ(Header(m, kHeaderDlqLastError), "boom 3");
    Result<Timestamp> first = ParseRfc3339(Header(m, kHeaderDlqFirstFailure));
    Result<Timestamp> last = ParseRfc3339(Header(m, kHeaderDlqLastFailure));
    EXPECT_TRUE(first.ok() && *first == first_failure) << Header(m, kHeaderDlqFirstFailure);
    EXPECT_TRUE(last.ok() && *last == last_failure) << Header(m, kHeaderDlqLastFailure);
  });
}

// A consumer's error text can hold anything. The dead letter keeps it as a
// header value can hold it (control characters escaped), so the dead
// letter is still a message wherever it is read from: here from the log,
// by a group that joins once it is stored.
TEST_P(Conformance, ADeadLetterOfAnErrorWithControlCharactersIsStillAMessage) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    SubscribeOptions options = Group("g");
    options.max_deliveries = 1;
    options.dead_letter_topic = "parked";
    if (!co_await Supported(caps().dead_letters, bus().Subscribe("orders", options, kForever))) {
      co_return;
    }
    auto sub = co_await Join("orders", options);
    co_await Publish("orders", Msg("multi-line"));
    Delivery d = co_await TakeOne(*sub);
    Must(co_await d.Nack(std::nullopt, "line one\nline two\r\x01\tend"));
    GroupInfo info = co_await Describe("orders", "g");
    for (int i = 0; i < 1000 && info.dead_lettered == 0; ++i) {
      co_await Yield();
      info = co_await Describe("orders", "g");
    }
    EXPECT_EQ(info.dead_lettered, 1u);
    auto dlq = co_await Join("parked", Group("reader"));
    Delivery dead = co_await AwaitOne(*dlq);
    EXPECT_EQ(dead.message().id, "multi-line");
    EXPECT_EQ(Header(dead.message(), kHeaderDlqLastError), "line one\\nline two\\r\\x01\tend");
  });
}

TEST_P(Conformance, AckDeadlineFailuresAlsoEndInTheDeadLetterTopic) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    SubscribeOptions options = Group("g");
    options.max_deliveries = 2;
    options.ack_deadline = 10s;
    options.backoff = {1s};
    options.dead_letter_topic = "parked";
    if (!co_await Supported(caps().dead_letters, bus().Subscribe("orders", options, kForever))) {
      co_return;
    }
    auto sub = co_await Join("orders", options);
    co_await Publish("orders", Msg("slow"));
    Delivery first = co_await TakeOne(*sub);
    clock().Advance(12s);
    Delivery second = co_await TakeOne(*sub);
    EXPECT_EQ(second.attempt(), DeliveryCount(2));
    clock().Advance(12s);
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    auto dlq = co_await Join("parked", Group("reader"));
    Delivery dead = co_await AwaitOne(*dlq);
    EXPECT_EQ(dead.message().id, "slow");
    EXPECT_EQ(Header(dead.message(), kHeaderDlqAttempts), "2");
    EXPECT_EQ(Header(dead.message(), kHeaderDlqLastError), "ack deadline exceeded");
  });
}

TEST_P(Conformance, MemberLeavingOnTheLastAttemptDeadLetters) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    SubscribeOptions options = Group("g");
    options.max_deliveries = 1;
    options.dead_letter_topic = "parked";
    if (!co_await Supported(caps().dead_letters, bus().Subscribe("orders", options, kForever))) {
      co_return;
    }
    auto a = co_await Join("orders", options);
    auto b = co_await Join("orders", options);
    co_await Publish("orders", Msg("m0"));
    EXPECT_EQ((co_await TakeOne(*a)).message().id, "m0");
    Must(co_await a->Close());
    auto dlq = co_await Join("parked", Group("reader"));
    Delivery dead = co_await AwaitOne(*dlq);
    EXPECT_EQ(dead.message().id, "m0");
    EXPECT_EQ(Header(dead.message(), kHeaderDlqAttempts), "1");
    EXPECT_THAT(Ids(co_await Drain(*b)), IsEmpty());
  });
}

TEST_P(Conformance, OrderedGroupDeliversEachKeyInOrderOneAtATime) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    if (!co_await Supported(caps().ordered_groups,
                            bus().Subscribe("orders", Ordered(), kForever))) {
      co_return;
    }
    auto a = co_await Join("orders", Ordered());
    auto b = co_await Join("orders", Ordered());
    const std::vector<std::string> ids = {"a1", "b1", "a2", "b2", "a3"};
    for (const std::string& id : ids) {
      co_await Publish("orders", Msg(id, id.substr(0, 1)));
    }
    std::vector<std::string> seen;
    for (int round = 0; round < 5; ++round) {
      std::vector<Delivery> now = co_await Drain(*a);
      for (Delivery& d : co_await Drain(*b)) now.push_back(std::move(d));
      int per_key[2] = {0, 0};
      for (const Delivery& d : now) ++per_key[d.message().key == "a" ? 0 : 1];
      EXPECT_LE(per_key[0], 1) << "key a in flight twice, round " << round;
      EXPECT_LE(per_key[1], 1) << "key b in flight twice, round " << round;
      for (const Delivery& d : now) {
        seen.push_back(d.message().id);
        Must(co_await d.Ack());
      }
    }
    EXPECT_THAT(seen, UnorderedElementsAre("a1", "b1", "a2", "b2", "a3"));
    std::vector<std::string> a_order, b_order;
    for (const std::string& id : seen) (id[0] == 'a' ? a_order : b_order).push_back(id);
    EXPECT_THAT(a_order, ElementsAre("a1", "a2", "a3"));
    EXPECT_THAT(b_order, ElementsAre("b1", "b2"));
  });
}

TEST_P(Conformance, OrderedGroupPoisonedKeyWaitsForItsDeadLetterWhileOthersFlow) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    if (!co_await Supported(caps().ordered_groups,
                            bus().Subscribe("orders", Ordered(2), kForever))) {
      co_return;
    }
    auto sub = co_await Join("orders", Ordered(2));
    const std::vector<std::string> ids = {"a1", "a2", "b1", "b2"};
    for (const std::string& id : ids) {
      co_await Publish("orders", Msg(id, id.substr(0, 1)));
    }
    std::vector<Delivery> first = co_await Drain(*sub);
    EXPECT_THAT(Ids(first), UnorderedElementsAre("a1", "b1"));
    for (const Delivery& d : first) {
      if (d.message().id == "a1") Must(co_await d.Nack(std::nullopt, "poison"));
      if (d.message().id == "b1") Must(co_await d.Ack());
    }
    Delivery b2 = co_await TakeOne(*sub);  // b flows while a waits for its retry
    EXPECT_EQ(b2.message().id, "b2");
    Must(co_await b2.Ack());
    clock().Advance(1s);
    Delivery retry = co_await TakeOne(*sub);
    EXPECT_EQ(retry.message().id, "a1");
    EXPECT_EQ(retry.attempt(), DeliveryCount(2));
    Must(co_await retry.Nack(std::nullopt, "poison"));  // the last attempt: dead-lettered
    // a2 waits until a1 is stored as a dead letter (in the background).
    EXPECT_EQ((co_await AwaitOne(*sub)).message().id, "a2");
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    if (caps().dead_letters) {
      auto dlq = co_await Join("orders.g.dlq", Group("reader"));
      EXPECT_THAT(Ids(co_await Drain(*dlq)), ElementsAre("a1"));
    }
  });
}

TEST_P(Conformance, JoiningWithAnotherOrderedSettingIsRefused) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    if (!caps().ordered_groups) co_return;  // refusal checked by the tests above
    auto ordered = co_await Join("orders", Ordered());
    EXPECT_EQ(Code(co_await bus().Subscribe("orders", Group("g"), kForever)),
              StatusCode::kFailedPrecondition);
  });
}

}  // namespace
}  // namespace junction::conformance
