// Ordered groups on the embedded broker with a poisoned key whose queue is
// far longer than the group's in-memory entries (max_group_entries=4): the
// other keys keep flowing while the poisoned message fails, and once it is
// dead-lettered its key goes on in order, every message once.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "junction/bus.h"

namespace junction {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

constexpr int kQueuedBehind = 50;  // far more than max_group_entries
constexpr int kOtherPerKey = 5;

Message Keyed(const std::string& key, int n) {
  Message m;
  m.id = key + "#" + std::to_string(n);
  m.source = "/t";
  m.type = "t";
  m.key = key;
  m.data = "x";
  return m;
}

class BrokerOrderedTest : public ::testing::TestWithParam<bool> {
 protected:
  // Runs `a` on this thread. One io_context for the whole test: the bus's
  // thread may still be returning from posting a completion to it when the
  // completion has already run here.
  template <typename T>
  T Sync(Awaitable<T> a) {
    auto future = boost::asio::co_spawn(io_, std::move(a), boost::asio::use_future);
    io_.restart();
    io_.run();
    return future.get();
  }

  void SetUp() override {
    std::string url = "mem://?max_group_entries=4";
    if (GetParam()) {
      std::string pattern = (std::filesystem::temp_directory_path() / "jn-ordered-XXXXXX").string();
      ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
      dir_ = pattern;
      url = "file://" + dir_.string() + "?fsync=never&max_group_entries=4";
    }
    BusOptions options;
    options.clock = &clock_;
    Result<std::unique_ptr<Bus>> bus = Bus::Open(url, options);
    ASSERT_TRUE(bus.ok()) << bus.status();
    bus_ = std::move(*bus);
    TopicOptions topic;
    topic.partitions = 1;
    ASSERT_TRUE(Sync(bus_->CreateTopic("orders", topic, Deadline::Infinite())).ok());
    SubscribeOptions group;
    group.group = "g";
    group.ordered = true;
    group.max_deliveries = 2;
    group.backoff = {1s};
    group.max_in_flight = 100;
    Result<std::unique_ptr<Subscription>> joined =
        Sync(bus_->Subscribe("orders", group, Deadline::Infinite()));
    ASSERT_TRUE(joined.ok()) << joined.status();
    sub_ = std::move(*joined);
  }

  void TearDown() override {
    sub_.reset();
    if (bus_) (void)Sync(bus_->Close());
    bus_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Publish(const Message& m) { ASSERT_TRUE(Sync(bus_->Publish("orders", m)).ok()) << m.id; }

  boost::asio::io_context io_;  // outlives the bus
  ManualClock clock_;
  std::filesystem::path dir_;
  std::unique_ptr<Bus> bus_;
  std::unique_ptr<Subscription> sub_;
};

TEST_P(BrokerOrderedTest, APoisonedKeyWithALongQueueDoesNotStallTheOtherKeys) {
  for (int i = 0; i <= kQueuedBehind; ++i) Publish(Keyed("bad", i));
  for (int i = 0; i < kOtherPerKey; ++i) {
    Publish(Keyed("a", i));
    Publish(Keyed("b", i));
  }

  // While bad#0 fails, every message of the other keys arrives, in key order.
  std::vector<std::string> others;
  std::vector<std::string> bad;
  while (true) {
    Result<Delivery> d = Sync(sub_->Next(Deadline::Past()));
    if (!d.ok()) {
      ASSERT_EQ(d.status().code(), StatusCode::kDeadlineExceeded) << d.status();
      break;
    }
    if (*d->message().key == "bad") {
      bad.push_back(d->message().id);
      ASSERT_TRUE(Sync(d->Nack(std::nullopt, "poison")).ok());
    } else {
      others.push_back(d->message().id);
      ASSERT_TRUE(Sync(d->Ack()).ok());
    }
  }
  EXPECT_EQ(bad, std::vector<std::string>{"bad#0"});
  std::vector<std::string> expected_others;
  for (int i = 0; i < kOtherPerKey; ++i) {
    expected_others.push_back("a#" + std::to_string(i));
    expected_others.push_back("b#" + std::to_string(i));
  }
  EXPECT_EQ(others, expected_others) << "the other keys were held up by the poisoned one";

  // The last attempt fails: bad#0 is dead-lettered, then its key goes on.
  clock_.Advance(2s);
  Result<Delivery> retry = Sync(sub_->Next(Deadline::Infinite()));
  ASSERT_TRUE(retry.ok()) << retry.status();
  ASSERT_EQ(retry->message().id, "bad#0");
  ASSERT_EQ(retry->attempt(), DeliveryCount(2));
  ASSERT_TRUE(Sync(retry->Nack(std::nullopt, "poison")).ok());
  for (int i = 1; i <= kQueuedBehind; ++i) {
    Result<Delivery> d = Sync(sub_->Next(Deadline::Infinite()));
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_EQ(d->message().id, "bad#" + std::to_string(i)) << "out of order or lost";
    EXPECT_EQ(d->attempt(), DeliveryCount(1));
    ASSERT_TRUE(Sync(d->Ack()).ok());
  }
  Result<Delivery> none = Sync(sub_->Next(Deadline::Past()));
  EXPECT_EQ(none.status().code(), StatusCode::kDeadlineExceeded) << "delivered twice";
  Result<GroupInfo> info = Sync(bus_->DescribeGroup("orders", "g", Deadline::Infinite()));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->dead_lettered, 1u);
  EXPECT_EQ(info->backlog, 0u);
}

INSTANTIATE_TEST_SUITE_P(Transports, BrokerOrderedTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "File" : "Mem"; });

}  // namespace
}  // namespace junction
