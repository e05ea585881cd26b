// Conformance suite, part 6: administration (ListTopics, DescribeTopic,
// ListGroups, ReadTopic, PurgeTopic, DeleteTopic).

#include <string>
#include <vector>

#include "conformance_util.h"

namespace junction::conformance {
namespace {

TopicOptions Partitions(std::uint32_t n) {
  TopicOptions options;
  options.partitions = n;
  return options;
}

std::vector<std::string> RecordIds(const std::vector<TopicRecord>& records) {
  std::vector<std::string> ids;
  for (const TopicRecord& r : records) ids.push_back(r.message.id);
  return ids;
}

std::vector<std::string> Names(const std::vector<TopicInfo>& topics) {
  std::vector<std::string> names;
  for (const TopicInfo& t : topics) names.push_back(t.name);
  return names;
}

TEST_P(Conformance, TopicsAndGroupsAreListedWithTheirCounts) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    Must(co_await bus().CreateTopic("orders", Partitions(2), kForever));
    Must(co_await bus().CreateTopic("audit", {}, kForever));
    for (int i = 0; i < 5; ++i) co_await Publish("orders", Msg("m" + std::to_string(i), "k"));
    auto sub = co_await Join("orders", Group("billing"));

    std::vector<TopicInfo> topics = Must(co_await bus().ListTopics(kForever));
    EXPECT_THAT(Names(topics), testing::IsSupersetOf({"audit", "orders"}));
    TopicInfo orders = Must(co_await bus().DescribeTopic("orders", kForever));
    EXPECT_EQ(orders.name, "orders");
    EXPECT_EQ(orders.options.partitions, 2u);
    CO_ASSERT_EQ(orders.partitions.size(), 2u);
    EXPECT_EQ(orders.partitions[1].partition, PartitionId(1));
    EXPECT_EQ(orders.messages(), 5u);
    EXPECT_GT(orders.bytes(), 0u);
    EXPECT_THAT(orders.groups, ElementsAre("billing"));
    EXPECT_EQ(orders.subscribers, 1u);
    EXPECT_EQ(Code(co_await bus().DescribeTopic("nope", kForever)), StatusCode::kNotFound);

    std::vector<GroupInfo> groups = Must(co_await bus().ListGroups("orders", kForever));
    CO_ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(groups[0].topic, "orders");
    EXPECT_EQ(groups[0].group, "billing");
    EXPECT_EQ(groups[0].members, 1u);
    EXPECT_EQ(groups[0].backlog, 5u);
    EXPECT_EQ(groups[0].dead_letter_topic, "orders.billing.dlq");
    std::vector<GroupInfo> all = Must(co_await bus().ListGroups("", kForever));
    EXPECT_EQ(all.size(), 1u);
    EXPECT_EQ(Code(co_await bus().ListGroups("nope", kForever)), StatusCode::kNotFound);
  });
}

TEST_P(Conformance, ReadTopicReturnsStoredMessagesWithoutConsumingThem) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    co_await PublishN("orders", 3);
    std::vector<TopicRecord> first =
        Must(co_await bus().ReadTopic("orders", PartitionId(0), Offset(0), 2, kForever));
    EXPECT_THAT(RecordIds(first), ElementsAre("m0", "m1"));
    CO_ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[1].offset, Offset(1));
    EXPECT_EQ(first[1].message.source, "/conformance");
    std::vector<TopicRecord> rest =
        Must(co_await bus().ReadTopic("orders", PartitionId(0), Offset(2), 10, kForever));
    EXPECT_THAT(RecordIds(rest), ElementsAre("m2"));
    EXPECT_THAT(RecordIds(Must(
                    co_await bus().ReadTopic("orders", PartitionId(0), Offset(3), 10, kForever))),
                IsEmpty());
    EXPECT_EQ(Code(co_await bus().ReadTopic("orders", PartitionId(7), Offset(0), 1, kForever)),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(Code(co_await bus().ReadTopic("nope", PartitionId(0), Offset(0), 1, kForever)),
              StatusCode::kNotFound);
    // Nothing was delivered or acked: a group from the start gets everything.
    auto sub = co_await Join("orders", Group("g"));
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("m0", "m1", "m2"));
  });
}

TEST_P(Conformance, PurgeDeletesWhatIsStoredAndGroupsMovePastIt) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto sub = co_await Join("orders", Group("g"));
    co_await PublishN("orders", 2);
    Delivery held = Must(co_await sub->Next(kForever));
    Must(co_await bus().PurgeTopic("orders", kForever));
    EXPECT_EQ(Code(co_await held.Ack()), StatusCode::kFailedPrecondition)
        << "a delivery in flight at the purge is stale";
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
    PublishResult after = co_await Publish("orders", Msg("after"));
    EXPECT_EQ(after.offset, Offset(2)) << "offsets go on after a purge";
    std::vector<Delivery> got = co_await Drain(*sub);
    EXPECT_THAT(Ids(got), ElementsAre("after"));
    for (const Delivery& d : got) Must(co_await d.Ack());
    TopicInfo info = Must(co_await bus().DescribeTopic("orders", kForever));
    EXPECT_EQ(info.messages(), 1u);
    EXPECT_EQ(info.partitions[0].log_start, Offset(2));
    EXPECT_THAT(RecordIds(Must(
                    co_await bus().ReadTopic("orders", PartitionId(0), Offset(0), 10, kForever))),
                ElementsAre("after"));
    EXPECT_EQ(Code(co_await bus().PurgeTopic("nope", kForever)), StatusCode::kNotFound);
    if (!caps().durable) co_return;
    Must(co_await sub->Close());
    sub.reset();
    co_await Reopen();
    info = Must(co_await bus().DescribeTopic("orders", kForever));
    EXPECT_EQ(info.partitions[0].log_start, Offset(2)) << "the purge survives a restart";
    sub = co_await Join("orders", Group("g"));
    EXPECT_THAT(Ids(co_await Drain(*sub)), IsEmpty());
  });
}

TEST_P(Conformance, DeleteTopicRemovesItsMessagesAndGroups) {
  Run([&]() -> Awaitable<void> {
    if (!co_await SupportsGroups()) co_return;
    auto sub = co_await Join("orders", Group("g"));
    co_await PublishN("orders", 3);
    EXPECT_EQ(Code(co_await bus().DeleteTopic("orders", kForever)), StatusCode::kFailedPrecondition)
        << "a topic with an open subscription stays";
    Must(co_await sub->Close());
    sub.reset();
    Must(co_await bus().DeleteTopic("orders", kForever));
    EXPECT_EQ(Code(co_await bus().DescribeTopic("orders", kForever)), StatusCode::kNotFound);
    EXPECT_THAT(Names(Must(co_await bus().ListTopics(kForever))),
                testing::Not(testing::Contains("orders")));
    EXPECT_THAT(Must(co_await bus().ListGroups("", kForever)), IsEmpty());
    EXPECT_EQ(Code(co_await bus().DeleteTopic("orders", kForever)), StatusCode::kNotFound);
    // The name is free again: a new topic from offset 0, with no old group.
    PublishResult fresh = co_await Publish("orders", Msg("new"));
    EXPECT_EQ(fresh.offset, Offset(0));
    sub = co_await Join("orders", Group("g"));
    EXPECT_THAT(Ids(co_await Drain(*sub)), ElementsAre("new"));
    if (!caps().durable) co_return;
    Must(co_await sub->Close());
    sub.reset();
    Must(co_await bus().DeleteTopic("orders", kForever));
    co_await Reopen();
    EXPECT_EQ(Code(co_await bus().DescribeTopic("orders", kForever)), StatusCode::kNotFound)
        << "a deleted topic stays deleted after a restart";
  });
}

}  // namespace
}  // namespace junction::conformance
