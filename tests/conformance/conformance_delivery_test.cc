// Conformance suite, part 2: groups and delivery (competing consumers,
// fan-out, start positions, seek, acks, redelivery, credit, membership).

#include <optional>
#include <string>
#include <vector>

#include "conformance_util.h"

namespace junction::conformance {
namespace {

// A group "g" with a short ack deadline and a one-step backoff. (Built outside
// the coroutines: GCC 12 cannot keep a braced list's array in a coroutine frame.)
SubscribeOptions Quick(Duration ack_deadline = 10s, Duration backoff = 1s) {
  SubscribeOptions options = Group("g");
  options.ack_deadline = ack_deadline;
  options.backoff = {backoff};
  return options;
}

// Backoff 1 s, 5 s, 30 s; ten deliveries.
SubscribeOptions ThreeStepBackoff() {
  SubscribeOptions options = Quick(1h);
  options.backoff = {1s, 5s, 30s};
  options.max_deliveries = 10;
  return options;
}

TEST_P(Conformance, CompetingConsumersGetEachMessageOnce) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    SubscribeOptions options = Group("g");
    options.max_in_flight = 3;
    auto a = co_await Join("orders", options);
    auto b = co_await Join("orders", options);
    co_await PublishN("orders", 6);
    std::vector<Delivery> got = co_await Drain(*a);
    EXPECT_EQ(got.size(), 3u);
    for (Delivery& d : co_await Drain(*b)) got.push_back(std::move(d));
    EXPECT_THAT(Ids(got), UnorderedElementsAre("m0", "m1", "m2", "m3", "m4", "m5"));
    for (const Delivery& d : got) Must(co_await d.Ack());
    clock().Advance(1h);
    EXPECT_THAT(Ids(co_await Drain(*a)), IsEmpty());
    EXPECT_THAT(Ids(co_await Drain(*b)), IsEmpty());
  });
}

TEST_P(Conformance, NextBatchTakesEverythingReadyWithinCredit) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    SubscribeOptions options = Group("g");
    options.max_in_flight = 4;
    auto sub = co_await Join("orders", options);
    co_await PublishN("orders", 6);
    std::vector<Delivery> batch = Must(co_await sub->NextBatch(10, kNow));
    EXPECT_THAT(Ids(batch), ElementsAre("m0", "m1", "m2", "m3"));  // the credit, not 10
    EXPECT_EQ(Code(co_await sub->NextBatch(10, kNow)), StatusCode::kDeadlineExceeded);
    Must(co_await batch[0].Ack());
    EXPECT_THAT(Ids(Must(co_await sub->NextBatch(10, kNow))), ElementsAre("m4"));
    EXPECT_EQ(Code(co_await sub->NextBatch(0, kNow)), StatusCode::kInvalidArgument);
  });
}

TEST_P(Conformance, EveryGroupGetsEveryMessage) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto billing = co_await Join("orders", Group("billing"));
    auto shipping = co_await Join("orders", Group("shipping"));
    co_await PublishN("orders", 3);
    std::vector<Delivery> got = co_await Drain(*billing);
    EXPECT_THAT(Ids(got), ElementsAre("m0", "m1", "m2"));
    for (const Delivery& d : got) Must(co_await d.Ack());
    EXPECT_THAT(Ids(co_await Drain(*shipping)), ElementsAre("m0", "m1", "m2"));
  });
}

TEST_P(Conformance, NewGroupStartsAtEarliestByDefault) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    co_await PublishN("orders", 3);
    auto sub = co_await Join("orders", Group("g"));
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("m0", "m1", "m2"));
  });
}

TEST_P(Conformance, NewGroupStartsAtLatest) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    co_await PublishN("orders", 3);
    SubscribeOptions options = Group("g");
    options.start = StartPosition::Latest();
    auto sub = co_await Join("orders", options);
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    co_await Publish("orders", Msg("after"));
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("after"));
  });
}

TEST_P(Conformance, StartPositionOfAnExistingGroupIsIgnored) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    co_await PublishN("orders", 2);
    SubscribeOptions latest = Group("g");
    latest.start = StartPosition::Latest();
    auto a = co_await Join("orders", latest);
    auto b = co_await Join("orders", Group("g"));  // asks for Earliest
    EXPECT_THAT(Ids(co_await Drain(*b)), IsEmpty());
    EXPECT_THAT(Ids(co_await Drain(*a)), IsEmpty());
  });
}

TEST_P(Conformance, NewGroupStartsAtOffset) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    co_await PublishN("orders", 4);
    SubscribeOptions options = Group("g");
    options.start = StartPosition::AtOffset(Offset(2));
    auto sub = co_await Join("orders", options);
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("m2", "m3"));
  });
}

TEST_P(Conformance, NewGroupStartsAtTime) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    co_await PublishN("orders", 2, "early");
    clock().Advance(1min);
    const Timestamp from = clock().WallNow();
    co_await PublishN("orders", 2, "late");
    SubscribeOptions options = Group("g");
    options.start = StartPosition::AtTime(from);
    auto sub = co_await Join("orders", options);
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("late0", "late1"));
  });
}

TEST_P(Conformance, SeekReplaysAndMakesInFlightAcksStale) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    if (!co_await Supported(caps().seek,
                            bus().Seek("orders", "g", StartPosition::Earliest(), kForever))) {
      co_return;
    }
    co_await PublishN("orders", 3);
    auto sub = co_await Join("orders", Group("g"));
    std::vector<Delivery> first = co_await Drain(*sub);
    CO_ASSERT_EQ(first.size(), 3u);
    Must(co_await first[0].Ack());
    Must(co_await bus().Seek("orders", "g", StartPosition::Earliest(), kForever));
    EXPECT_EQ(Code(co_await first[1].Ack()), StatusCode::kFailedPrecondition);
    EXPECT_EQ(Code(co_await first[2].Nack()), StatusCode::kFailedPrecondition);
    std::vector<Delivery> replay = co_await Drain(*sub);
    EXPECT_THAT(Ids(replay), ElementsAre("m0", "m1", "m2"));
    for (const Delivery& d : replay) Must(co_await d.Ack());
    Must(co_await bus().Seek("orders", "g", StartPosition::AtOffset(Offset(2)), kForever));
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("m2"));
    EXPECT_EQ(Code(co_await bus().Seek("orders", "nobody", StartPosition::Earliest(), kForever)),
              StatusCode::kNotFound);
  });
}

TEST_P(Conformance, SeekToTimeReplaysFromThatTime) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    if (!co_await Supported(caps().seek,
                            bus().Seek("orders", "g", StartPosition::Earliest(), kForever))) {
      co_return;
    }
    auto sub = co_await Join("orders", Group("g"));
    co_await PublishN("orders", 2, "early");
    clock().Advance(1min);
    const Timestamp from = clock().WallNow();
    co_await PublishN("orders", 2, "late");
    for (const Delivery& d : co_await Drain(*sub)) Must(co_await d.Ack());
    Must(co_await bus().Seek("orders", "g", StartPosition::AtTime(from), kForever));
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("late0", "late1"));
  });
}

TEST_P(Conformance, AckDeadlinePassedRedeliversAsAttemptTwo) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto sub = co_await Join("orders", Quick(10s, 1s));
    co_await Publish("orders", Msg("m0"));
    Delivery first = co_await TakeOne(*sub);
    EXPECT_EQ(first.attempt(), DeliveryCount(1));
    EXPECT_EQ(Header(first.message(), kHeaderAttempt), "1");
    clock().Advance(10s);  // the deadline, but not yet its backoff
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    clock().Advance(2s);
    Delivery second = co_await TakeOne(*sub);
    EXPECT_EQ(second.message().id, "m0");
    EXPECT_EQ(second.attempt(), DeliveryCount(2));
    EXPECT_EQ(Header(second.message(), kHeaderAttempt), "2");
    EXPECT_EQ(second.offset(), first.offset());
  });
}

TEST_P(Conformance, InProgressRestartsTheAckDeadline) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto sub = co_await Join("orders", Quick(10s, 1s));
    co_await Publish("orders", Msg("m0"));
    Delivery d = co_await TakeOne(*sub);
    clock().Advance(8s);
    Must(co_await d.InProgress());
    clock().Advance(8s);  // 16 s after delivery, 8 s after InProgress
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    clock().Advance(4s);  // 12 s after InProgress: deadline and backoff passed
    Delivery again = co_await TakeOne(*sub);
    EXPECT_EQ(again.attempt(), DeliveryCount(2));
    EXPECT_EQ(Code(co_await d.InProgress()), StatusCode::kFailedPrecondition);
  });
}

// Thousands of acked attempts, whose ack-deadline timers the group does not
// search out and remove (they go stale until it compacts them away), leave
// the one unacked delivery's timer, re-armed by InProgress before them, to
// redeliver it on time, and nothing else.
TEST_P(Conformance, OnlyTheUnackedDeliveryComesBackAfterThousandsOfAcks) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    constexpr int kMessages = 2500;
    auto sub = co_await Join("orders", Quick(10s, 1s));
    std::vector<Message> batch;
    for (int i = 0; i < kMessages; ++i) batch.push_back(Msg("m" + std::to_string(i)));
    Must(co_await bus().PublishBatch("orders", std::move(batch), {}, kForever));
    std::optional<Delivery> kept;
    int taken = 0;
    bool extended = false;
    while (taken < kMessages) {
      std::vector<Delivery> got = co_await Drain(*sub);
      if (got.empty()) break;
      for (Delivery& d : got) {
        ++taken;
        if (d.message().id == "m7") {
          kept = d;
        } else {
          Must(co_await d.Ack());
        }
      }
      if (kept && !extended) {
        clock().Advance(5s);
        Must(co_await kept->InProgress());  // its deadline is now 15 s from the start
        extended = true;
      }
    }
    EXPECT_EQ(taken, kMessages);
    if (!kept) {
      ADD_FAILURE() << "m7 was not delivered";
      co_return;
    }
    clock().Advance(7s);  // 12 s: the first deadline and its backoff passed, not the second
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    clock().Advance(4s);  // 16 s: the second deadline and its backoff passed
    Delivery again = co_await TakeOne(*sub);
    EXPECT_EQ(again.message().id, "m7");
    EXPECT_EQ(again.attempt(), DeliveryCount(2));
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
  });
}

TEST_P(Conformance, NackWithDelayRedeliversOnlyAfterTheDelay) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto sub = co_await Join("orders", Quick(1h, 1s));
    co_await Publish("orders", Msg("m0"));
    Delivery d = co_await TakeOne(*sub);
    Must(co_await d.Nack(5s, "try later"));
    clock().Advance(4s);
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    clock().Advance(1s);
    Delivery again = co_await TakeOne(*sub);
    EXPECT_EQ(again.attempt(), DeliveryCount(2));
    EXPECT_EQ(Header(again.message(), kHeaderAttempt), "2");
  });
}

TEST_P(Conformance, NackWithoutDelayFollowsTheBackoffSchedule) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto sub = co_await Join("orders", ThreeStepBackoff());
    co_await Publish("orders", Msg("m0"));
    Delivery d = co_await TakeOne(*sub);
    const std::vector<Duration> waits = {1s, 5s, 30s, 30s};  // the last entry repeats
    for (std::uint32_t i = 0; i < waits.size(); ++i) {
      EXPECT_EQ(d.attempt(), DeliveryCount(i + 1));
      Must(co_await d.Nack());
      clock().Advance(waits[i] - 1ms);
      EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty()) << "early after attempt " << i + 1;
      clock().Advance(1ms);
      d = co_await TakeOne(*sub);
    }
    EXPECT_EQ(d.attempt(), DeliveryCount(5));
  });
}

TEST_P(Conformance, StaleAckAfterRedeliveryIsRejectedAndChangesNothing) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto sub = co_await Join("orders", Quick(10s, 1s));
    co_await Publish("orders", Msg("m0"));
    Delivery stale = co_await TakeOne(*sub);
    clock().Advance(12s);
    Delivery current = co_await TakeOne(*sub);
    EXPECT_EQ(Code(co_await stale.Ack()), StatusCode::kFailedPrecondition);
    EXPECT_EQ(Code(co_await stale.Nack()), StatusCode::kFailedPrecondition);
    EXPECT_EQ(Code(co_await stale.InProgress()), StatusCode::kFailedPrecondition);
    GroupInfo info = co_await Describe("orders", "g");
    EXPECT_EQ(info.in_flight, 1u);
    EXPECT_EQ(info.backlog, 1u);
    Must(co_await current.Ack());
    info = co_await Describe("orders", "g");
    EXPECT_EQ(info.in_flight, 0u);
    EXPECT_EQ(info.backlog, 0u);
    clock().Advance(1h);
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
  });
}

TEST_P(Conformance, SecondAckOfOneAttemptIsRejected) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto sub = co_await Join("orders", Group("g"));
    co_await Publish("orders", Msg("m0"));
    Delivery d = co_await TakeOne(*sub);
    // Copies are the same attempt.
    // NOLINTNEXTLINE(performance-unnecessary-copy-initialization)
    const Delivery copy = d;
    Must(co_await d.Ack());
    EXPECT_EQ(Code(co_await d.Ack()), StatusCode::kFailedPrecondition);
    EXPECT_EQ(Code(co_await copy.Ack()), StatusCode::kFailedPrecondition);
    EXPECT_EQ((co_await Describe("orders", "g")).backlog, 0u);
  });
}

TEST_P(Conformance, CreditLimitsDeliveriesInFlight) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    SubscribeOptions options = Group("g");
    options.max_in_flight = 2;
    auto sub = co_await Join("orders", options);
    co_await PublishN("orders", 3);
    std::vector<Delivery> got = co_await Drain(*sub);
    EXPECT_THAT(Ids(got), ElementsAre("m0", "m1"));
    EXPECT_EQ(Code(co_await sub->Next(kNow)), StatusCode::kDeadlineExceeded);
    CO_ASSERT_EQ(got.size(), 2u);
    Must(co_await got[0].Ack());
    EXPECT_EQ((co_await TakeOne(*sub)).message().id, "m2");
  });
}

TEST_P(Conformance, CreditLimitsBytesInFlight) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    SubscribeOptions options = Group("g");
    options.max_in_flight_bytes = 1000;
    auto sub = co_await Join("orders", options);
    const std::vector<std::string> ids = {"m0", "m1"};
    for (const std::string& id : ids) {
      co_await Publish("orders", Msg(id, std::nullopt, std::string(600, 'x')));
    }
    Delivery first = co_await TakeOne(*sub);
    EXPECT_EQ(first.message().id, "m0");
    Must(co_await first.Ack());
    EXPECT_EQ((co_await TakeOne(*sub)).message().id, "m1");
  });
}

TEST_P(Conformance, LeavingMemberHandsItsDeliveriesToAnother) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto a = co_await Join("orders", Group("g"));
    co_await PublishN("orders", 2);
    std::vector<Delivery> of_a = co_await Drain(*a);
    EXPECT_THAT(Ids(of_a), ElementsAre("m0", "m1"));
    auto b = co_await Join("orders", Group("g"));
    EXPECT_THAT(Ids(co_await Drain(*b)), IsEmpty());
    Must(co_await a->Close());
    EXPECT_EQ(Code(co_await a->Next(kNow)), StatusCode::kCancelled);
    std::vector<Delivery> of_b = co_await Drain(*b);  // at once: no backoff
    EXPECT_THAT(Ids(of_b), UnorderedElementsAre("m0", "m1"));
    for (const Delivery& d : of_b) EXPECT_EQ(d.attempt(), DeliveryCount(2)) << d.message().id;
    CO_ASSERT_EQ(of_a.size(), 2u);
    EXPECT_EQ(Code(co_await of_a[0].Ack()), StatusCode::kFailedPrecondition);
    // Destroying a member leaves too.
    auto c = co_await Join("orders", Group("g"));
    b.reset();
    EXPECT_THAT(Ids(co_await Drain(*c)), UnorderedElementsAre("m0", "m1"));
    EXPECT_EQ((co_await Describe("orders", "g")).members, 1u);
  });
}

TEST_P(Conformance, DescribeGroupCountsMembersInFlightAndBacklog) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    SubscribeOptions options = Group("g");
    options.max_in_flight = 2;
    auto a = co_await Join("orders", options);
    auto b = co_await Join("orders", options);
    co_await PublishN("orders", 5);
    std::vector<Delivery> got = co_await Drain(*a);
    CO_ASSERT_EQ(got.size(), 2u);
    Must(co_await got[0].Ack());
    GroupInfo info = co_await Describe("orders", "g");
    EXPECT_EQ(info.topic, "orders");
    EXPECT_EQ(info.group, "g");
    EXPECT_EQ(info.members, 2u);
    EXPECT_EQ(info.in_flight, 1u);
    EXPECT_EQ(info.backlog, 4u);
    EXPECT_EQ(info.dead_lettered, 0u);
    EXPECT_EQ(info.dropped_by_retention, 0u);
    Must(co_await b->Close());
    EXPECT_EQ((co_await Describe("orders", "g")).members, 1u);
    EXPECT_EQ(Code(co_await bus().DescribeGroup("orders", "nobody", kForever)),
              StatusCode::kNotFound);
  });
}

TEST_P(Conformance, EphemeralSubscriptionStartsNowWithoutRedelivery) {
  Run([&]() -> Awaitable<void> {
    if (!co_await Supported(caps().ephemeral, bus().Subscribe("orders", Group(""), kForever))) {
      co_return;
    }
    co_await PublishN("orders", 2, "old");
    auto sub = co_await Join("orders", Group(""));
    co_await PublishN("orders", 2, "new");
    std::vector<Delivery> got = co_await Drain(*sub);
    EXPECT_THAT(Ids(got), ElementsAre("new0", "new1"));
    for (const Delivery& d : got) {
      EXPECT_EQ(d.attempt(), DeliveryCount(1));
      Must(co_await d.Nack());  // accepted, and does nothing
    }
    clock().Advance(1h);
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
  });
}

}  // namespace
}  // namespace junction::conformance
