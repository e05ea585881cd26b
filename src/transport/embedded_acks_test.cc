// ApplyAcks (embedded_bus.h): junctiond's acks of one ACK frame, applied to
// an embedded bus at once, each answered at its index as Delivery::Ack,
// Nack and InProgress would answer it.

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/run_sync.h"
#include "junction/bus.h"
#include "transport/embedded_bus.h"

namespace junction {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

Message Msg(const std::string& id) {
  Message m;
  m.id = id;
  m.source = "/test";
  m.type = "test.acks";
  return m;
}

transport::AckOp Op(const transport::StoredRef& stored, transport::AckOp::Kind kind) {
  transport::AckOp op;
  op.ref = stored.ref.value_or(broker::DeliveryRef{});
  op.kind = kind;
  return op;
}

TEST(ApplyAcks, EachOpIsAnsweredAtItsIndexAsTheDeliveryCallWouldBe) {
  Result<std::unique_ptr<Bus>> bus = Bus::Open("mem://");
  ASSERT_TRUE(bus.ok()) << bus.status();
  RunSync([&]() -> Awaitable<void> {
    SubscribeOptions group;
    group.group = "g";
    group.start = StartPosition::Earliest();
    group.ack_deadline = 1h;
    Result<std::unique_ptr<Subscription>> sub =
        co_await (*bus)->Subscribe("orders", group, Deadline::Infinite());
    EXPECT_TRUE(sub.ok()) << sub.status();
    if (!sub.ok()) co_return;
    const std::vector<std::string> ids = {"a", "b", "c"};  // (no braced list: GCC 12 coroutines)
    for (const std::string& id : ids) {
      EXPECT_TRUE((co_await (*bus)->Publish("orders", Msg(id))).ok());
    }
    Result<transport::StoredDeliveries> got =
        co_await transport::NextBatchStored(**sub, 3, Deadline::After(RealClock(), 10s));
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok()) co_return;
    EXPECT_EQ(got->deliveries.size(), 3u);
    if (got->deliveries.size() != 3u) co_return;
    for (const transport::StoredRef& stored : got->stored) {
      EXPECT_TRUE(stored.ref.has_value()) << "an embedded delivery without its ref";
    }
    using Kind = transport::AckOp::Kind;
    transport::AckOp nack = Op(got->stored[1], Kind::kNack);
    nack.delay = Duration::zero();
    nack.error = "try again";
    std::vector<transport::AckOp> ops;
    ops.push_back(Op(got->stored[0], Kind::kAck));
    ops.push_back(std::move(nack));
    ops.push_back(Op(got->stored[2], Kind::kInProgress));
    ops.push_back(Op(got->stored[0], Kind::kAck));
    std::vector<Status> applied = co_await transport::ApplyAcks(**bus, std::move(ops));
    EXPECT_EQ(applied.size(), 4u);
    if (applied.size() != 4u) co_return;
    EXPECT_TRUE(applied[0].ok()) << applied[0];
    EXPECT_TRUE(applied[1].ok()) << applied[1];
    EXPECT_TRUE(applied[2].ok()) << applied[2];
    // Acked by the first op: no longer current.
    EXPECT_EQ(applied[3].code(), StatusCode::kFailedPrecondition) << applied[3];

    // The nacked one comes again, its attempt raised; the acked one does not.
    Result<Delivery> again = co_await (*sub)->Next(Deadline::After(RealClock(), 10s));
    EXPECT_TRUE(again.ok()) << again.status();
    if (again.ok()) {
      EXPECT_EQ(again->message().id, "b");
      EXPECT_EQ(again->attempt(), DeliveryCount(2));
    }
    Result<GroupInfo> info = co_await (*bus)->DescribeGroup("orders", "g", Deadline::Infinite());
    EXPECT_TRUE(info.ok()) << info.status();
    if (info.ok()) {
      EXPECT_EQ(info->backlog, 2u);  // b and c
      EXPECT_EQ(info->in_flight, 2u);
    }
    EXPECT_TRUE((co_await (*bus)->Close()).ok());
    // A closed bus answers every op, and applies none.
    std::vector<transport::AckOp> late;
    late.push_back(Op(got->stored[2], Kind::kAck));
    applied = co_await transport::ApplyAcks(**bus, std::move(late));
    EXPECT_EQ(applied.size(), 1u);
    if (!applied.empty()) {
      EXPECT_EQ(applied[0].code(), StatusCode::kFailedPrecondition) << applied[0];
    }
  }());
}

}  // namespace
}  // namespace junction
