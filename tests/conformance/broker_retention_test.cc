// Retention against groups on the embedded broker: a segment holding what a
// group has not acked stays, unless the topic says retention may drop it;
// then the loss is counted and the group moves on to what is left.

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "junction/bus.h"

namespace junction {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

template <typename T>
T Sync(Awaitable<T> a) {
  boost::asio::io_context io;
  auto future = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  io.run();
  return future.get();
}

class BrokerRetentionTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    BusOptions options;
    options.clock = &clock_;
    bus_ = std::move(*Bus::Open("mem://?segment_bytes=4096", options));
    TopicOptions topic;
    topic.retention_bytes = 8192;
    topic.retention_drops_unacked = GetParam();
    ASSERT_TRUE(Sync(bus_->CreateTopic("events", topic, Deadline::Infinite())).ok());
  }

  std::unique_ptr<Subscription> Join(const std::string& group) {
    SubscribeOptions options;
    options.group = group;
    options.max_in_flight = 1000;
    return std::move(*Sync(bus_->Subscribe("events", options, Deadline::Infinite())));
  }

  void Publish(int n) {
    for (int i = 0; i < n; ++i) {
      Message m;
      m.id = "m" + std::to_string(next_++);
      m.source = "/t";
      m.type = "t";
      m.data = std::string(100, 'x');
      ASSERT_TRUE(Sync(bus_->Publish("events", m)).ok());
    }
  }

  // Retention runs on the broker's timer (every 30 s of bus time); any Next
  // runs the timers that are due.
  void RunRetention() {
    clock_.Advance(31s);
    auto probe = std::move(*Sync(bus_->Subscribe("probe", {}, Deadline::Infinite())));
    (void)Sync(probe->Next(Deadline::Past()));
  }

  GroupInfo Describe(const std::string& group) {
    return *Sync(bus_->DescribeGroup("events", group, Deadline::Infinite()));
  }

  ManualClock clock_;
  std::unique_ptr<Bus> bus_;
  int next_ = 0;
};

TEST_P(BrokerRetentionTest, UnackedMessagesAreKeptOrCountedWhenDropped) {
  (void)Sync(Join("g")->Close());  // the group exists; no member reads ahead
  Publish(300);                    // ~40 KB: many 4 KiB segments, far over retention_bytes
  RunRetention();
  auto g = Join("g");
  Result<Delivery> first = Sync(g->Next(Deadline::Past()));
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
    Result<Delivery> d = Sync(g->Next(Deadline::Past()));
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(Sync(d->Ack()).ok());
  }
  RunRetention();
  SubscribeOptions late;
  late.group = "late";
  auto h = std::move(*Sync(bus_->Subscribe("events", late, Deadline::Infinite())));
  Result<Delivery> first = Sync(h->Next(Deadline::Past()));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT(first->offset(), Offset(0)) << "nothing was deleted";
  if (!GetParam()) {
    EXPECT_LE(first->offset(), Offset(200)) << "deleted past the group's ack floor";
  }
}

INSTANTIATE_TEST_SUITE_P(DropsUnacked, BrokerRetentionTest, ::testing::Bool());

}  // namespace
}  // namespace junction
