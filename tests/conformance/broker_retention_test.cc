// Retention against groups on the embedded broker: a segment holding what a
// group has not acked stays, unless the topic says retention may drop it;
// then the loss is counted and the group moves on to what is left.

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "core/run_sync.h"
#include "junction/bus.h"

namespace junction {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

class BrokerRetentionTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    BusOptions options;
    options.clock = &clock_;
    bus_ = std::move(*Bus::Open("mem://?segment_bytes=4096", options));
    TopicOptions topic;
    topic.retention_bytes = 8192;
    topic.retention_drops_unacked = GetParam();
    ASSERT_TRUE(RunSync(bus_->CreateTopic("events", topic, Deadline::Infinite())).ok());
  }

  std::unique_ptr<Subscription> Join(const std::string& group) {
    SubscribeOptions options;
    options.group = group;
    options.max_in_flight = 1000;
    return std::move(*RunSync(bus_->Subscribe("events", options, Deadline::Infinite())));
  }

  void Publish(int n) {
    for (int i = 0; i < n; ++i) {
      Message m;
      m.id = "m" + std::to_string(next_++);
      m.source = "/t";
      m.type = "t";
      m.data = std::string(100, 'x');
      ASSERT_TRUE(RunSync(bus_->Publish("events", m)).ok());
    }
  }

  // Retention runs on the broker's timer (every 30 s of bus time); any Next
  // runs the timers that are due.
  void RunRetention() {
    clock_.Advance(31s);
    auto probe = std::move(*RunSync(bus_->Subscribe("probe", {}, Deadline::Infinite())));
    (void)RunSync(probe->Next(Deadline::Past()));
  }

  GroupInfo Describe(const std::string& group) {
    return *RunSync(bus_->DescribeGroup("events", group, Deadline::Infinite()));
  }

  ManualClock clock_;
  std::unique_ptr<Bus> bus_;
  int next_ = 0;
};

TEST_P(BrokerRetentionTest, UnackedMessagesAreKeptOrCountedWhenDropped) {
  (void)RunSync(Join("g")->Close());  // the group exists; no member reads ahead
  Publish(300);                       // ~40 KB: many 4 KiB segments, far over retention_bytes
  RunRetention();
  auto g = Join("g");
  Result<Delivery> first = RunSync(g->Next(Deadline::Past()));
  ASSERT_TRUE(first.ok()) << first.status();
  GroupInfo info = Describe("g");
  if (!GetParam()) {
    EXPECT_EQ(first->offset(), Offset(0)) << "retention deleted what the group had not acked";
    EXPECT_EQ(info.dropped_by_retention, 0u);
    EXPECT_EQ(info.backlog, 300u);
  } else {
    EXPECT_GT(first->offset(), Offset(0));
    EXPECT_EQ(info.dropped_by_retention, first->offset().value());
    EXPECT_EQ(info.backlog, 300u - first->offset().value());
  }
}

TEST_P(BrokerRetentionTest, AckedPrefixIsDeletedOnceEveryGroupAckedIt) {
  auto g = Join("g");
  Publish(300);
  for (int i = 0; i < 200; ++i) {
    Result<Delivery> d = RunSync(g->Next(Deadline::Past()));
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(RunSync(d->Ack()).ok());
  }
  RunRetention();
  SubscribeOptions late;
  late.group = "late";
  auto h = std::move(*RunSync(bus_->Subscribe("events", late, Deadline::Infinite())));
  Result<Delivery> first = RunSync(h->Next(Deadline::Past()));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT(first->offset(), Offset(0)) << "nothing was deleted";
  if (!GetParam()) {
    EXPECT_LE(first->offset(), Offset(200)) << "deleted past the group's ack floor";
  }
}

INSTANTIATE_TEST_SUITE_P(DropsUnacked, BrokerRetentionTest, ::testing::Bool());

}  // namespace
}  // namespace junction
