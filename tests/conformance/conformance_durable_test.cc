// Conformance suite, part 5: delayed delivery, dedupe, and what survives a
// restart (Close, then Bus::Open of the same URL; durable transports only).

#include <string>

#include "conformance_util.h"

namespace junction::conformance {
namespace {

PublishOptions After(Duration delay) {
  PublishOptions options;
  options.delay = delay;
  return options;
}

TopicOptions DedupeWindow(Duration window) {
  TopicOptions options;
  options.dedupe_window = window;
  return options;
}

TEST_P(Conformance, DelayedMessagesAreDeliveredWhenDueAndNotBefore) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    if (!co_await Supported(caps().delayed_delivery,
                            bus().Publish("orders", Msg("x"), After(10s), kForever))) {
      co_return;
    }
    auto sub = co_await Join("orders", Group("g"));
    std::unique_ptr<Subscription> ephemeral;
    if (caps().ephemeral) ephemeral = co_await Join("orders", Group(""));
    PublishOptions at_20s;
    at_20s.deliver_at = clock().WallNow() + 20s;
    co_await Publish("orders", Msg("later"), at_20s);
    co_await Publish("orders", Msg("soon"), After(10s));
    co_await Publish("orders", Msg("now"));
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("now"));
    clock().Advance(9s);
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    clock().Advance(1s);
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("soon"));
    clock().Advance(9s);
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    clock().Advance(1s);
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("later"));
    if (ephemeral) {
      EXPECT_THAT(Ids(co_await Drain(*ephemeral)), ElementsAre("now", "soon", "later"));
    }
  });
}

TEST_P(Conformance, DelayedMessageSurvivesRestart) {
  if (!caps().durable) GTEST_SKIP() << GetParam() << " keeps nothing across Close";
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    if (!co_await Supported(caps().delayed_delivery,
                            bus().Publish("orders", Msg("x"), After(10s), kForever))) {
      co_return;
    }
    auto sub = co_await Join("orders", Group("g"));
    co_await Publish("orders", Msg("delayed"), After(10s));
    co_await Publish("orders", Msg("now"));
    for (const Delivery& d : co_await Drain(*sub)) Must(co_await d.Ack());
    Must(co_await sub->Close());
    sub.reset();
    co_await Reopen();
    sub = co_await Join("orders", Group("g"));
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    clock().Advance(10s);
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("delayed"));
  });
}

TEST_P(Conformance, DuplicateIdWithinTheWindowIsStoredOnce) {
  Run([&]() -> Awaitable<void> {
    if (!co_await Supported(caps().dedupe,
                            bus().CreateTopic("orders", DedupeWindow(1min), kForever))) {
      co_return;
    }
    Must(co_await bus().CreateTopic("orders", DedupeWindow(1min), kForever));
    PublishResult first = co_await Publish("orders", Msg("x", std::nullopt, "v1"));
    PublishResult again = co_await Publish("orders", Msg("x", std::nullopt, "v2"));
    EXPECT_FALSE(first.duplicate);
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.partition, first.partition);
    EXPECT_EQ(again.offset, first.offset);
    EXPECT_EQ((co_await Publish("orders", Msg("y"))).offset, Offset(1));
    clock().Advance(1min + 1s);
    PublishResult after_window = co_await Publish("orders", Msg("x", std::nullopt, "v3"));
    EXPECT_FALSE(after_window.duplicate);
    EXPECT_EQ(after_window.offset, Offset(2));
    if (!caps().groups) co_return;
    auto sub = co_await Join("orders", Group("g"));
    std::vector<Delivery> got = co_await Drain(*sub);
    EXPECT_THAT(Ids(got), ElementsAre("x", "y", "x"));
    CO_ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].message().data, "v1");
    EXPECT_EQ(got[2].message().data, "v3");
  });
}

TEST_P(Conformance, DedupeSurvivesRestart) {
  if (!caps().durable) GTEST_SKIP() << GetParam() << " keeps nothing across Close";
  Run([&]() -> Awaitable<void> {
    if (!co_await Supported(caps().dedupe,
                            bus().CreateTopic("orders", DedupeWindow(1min), kForever))) {
      co_return;
    }
    Must(co_await bus().CreateTopic("orders", DedupeWindow(1min), kForever));
    co_await PublishN("orders", 2);
    co_await Reopen();
    PublishResult again = co_await Publish("orders", Msg("m1"));
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.offset, Offset(1));
    EXPECT_EQ((co_await Publish("orders", Msg("m2"))).offset, Offset(2));
  });
}

TEST_P(Conformance, RestartRedeliversWhatWasNotAckedAndNothingElse) {
  if (!caps().durable) GTEST_SKIP() << GetParam() << " keeps nothing across Close";
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto sub = co_await Join("orders", Group("g"));
    co_await PublishN("orders", 4);
    std::vector<Delivery> got = co_await Drain(*sub);
    CO_ASSERT_EQ(got.size(), 4u);
    Must(co_await got[0].Ack());
    Must(co_await got[2].Ack());
    sub.reset();
    co_await Reopen();
    sub = co_await Join("orders", Group("g"));
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("m1", "m3"));
    EXPECT_EQ((co_await Publish("orders", Msg("m4"))).offset, Offset(4));
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("m4"));
    auto fresh = co_await Join("orders", Group("fresh"));
    EXPECT_THAT(Ids(co_await Drain(*fresh)), ElementsAre("m0", "m1", "m2", "m3", "m4"));
  });
}

}  // namespace
}  // namespace junction::conformance
