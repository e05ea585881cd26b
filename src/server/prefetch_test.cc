// Prefetch of the junction:// client (src/transport/README.md, "Prefetch"):
// a subscription that fetches ahead loses, repeats and reorders nothing,
// whatever `max` each NextBatch asks for; a group member fetches ahead only
// when its URL asks for it (`prefetch=all`), and what it held goes to the
// other members when it closes.

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/run_sync.h"
#include "junction/bus.h"
#include "server/loopback_server_test.h"
#include "server/server.h"

namespace junction::server {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

Deadline Soon() { return Deadline::After(RealClock(), 10s); }

class PrefetchTest : public LoopbackServerTest {
 protected:
  std::unique_ptr<Bus> Open(const std::string& query = "") {
    Result<std::unique_ptr<Bus>> bus = Bus::Open("junction://" + server_->address() + query);
    EXPECT_TRUE(bus.ok()) << bus.status();
    return bus.ok() ? std::move(*bus) : nullptr;
  }

  static void Publish(Bus& bus, const std::string& topic, int first, int count) {
    std::vector<Message> batch;
    for (int i = first; i < first + count; ++i) {
      Message m;
      m.id = "m" + std::to_string(i);
      m.source = "/prefetch-test";
      m.type = "test.event";
      m.data = std::to_string(i);
      batch.push_back(std::move(m));
    }
    Result<std::vector<PublishResult>> r =
        RunSync(bus.PublishBatch(topic, std::move(batch), {}, Soon()));
    ASSERT_TRUE(r.ok()) << r.status();
  }

  static Result<std::vector<Delivery>> Next(Subscription& sub, std::size_t max,
                                            Duration wait = 10s) {
    return RunSync(sub.NextBatch(max, Deadline::After(RealClock(), wait)));
  }

  // Two buses (the first with `query`), a topic, and a member of group
  // "billing" on the first.
  void TwoBusesAndAMember(const std::string& query) {
    a_ = Open(query);
    b_ = Open();
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
    ASSERT_TRUE(RunSync(a_->CreateTopic("orders", {}, Soon())).ok());
    Result<std::unique_ptr<Subscription>> first =
        RunSync(a_->Subscribe("orders", Billing(), Soon()));
    ASSERT_TRUE(first.ok()) << first.status();
    first_ = std::move(*first);
  }
  static SubscribeOptions Billing() {
    SubscribeOptions group;
    group.group = "billing";
    return group;
  }
  void CloseBuses() {
    EXPECT_TRUE(RunSync(a_->Close()).ok());
    EXPECT_TRUE(RunSync(b_->Close()).ok());
  }

  std::unique_ptr<Bus> a_;
  std::unique_ptr<Bus> b_;
  std::unique_ptr<Subscription> first_;
};

// Ids of `deliveries`, appended to `ids`.
void Collect(const std::vector<Delivery>& deliveries, std::vector<std::string>& ids) {
  for (const Delivery& d : deliveries) ids.push_back(d.message().id);
}

// Takes batches of up to `max` from `sub` until `ids` holds `count` ids.
void CollectUntil(Subscription& sub, std::size_t count, std::size_t max,
                  std::vector<std::string>& ids) {
  while (ids.size() < count) {
    Result<std::vector<Delivery>> got =
        RunSync(sub.NextBatch(max, Deadline::After(RealClock(), 10s)));
    ASSERT_TRUE(got.ok()) << got.status();
    Collect(*got, ids);
  }
}

std::vector<std::string> Ids(int first, int count) {
  std::vector<std::string> ids;
  for (int i = first; i < first + count; ++i) ids.push_back("m" + std::to_string(i));
  return ids;
}

TEST_F(PrefetchTest, AnEphemeralSubscriptionGetsEveryMessageOnceInOrderWhateverItsMax) {
  std::unique_ptr<Bus> bus = Open();
  ASSERT_NE(bus, nullptr);
  ASSERT_TRUE(RunSync(bus->CreateTopic("ticks", {}, Soon())).ok());
  Result<std::unique_ptr<Subscription>> sub = RunSync(bus->Subscribe("ticks", {}, Soon()));
  ASSERT_TRUE(sub.ok()) << sub.status();

  Publish(*bus, "ticks", 0, 40);
  // Asks for 8, then for less than what was fetched ahead (held for the
  // next calls), then for more.
  std::vector<std::string> ids;
  const std::size_t maxes[] = {8, 1, 2, 1, 16, 3, 64};
  std::size_t call = 0;
  while (ids.size() < 40) {
    std::size_t max = maxes[std::min(call++, std::size(maxes) - 1)];
    Result<std::vector<Delivery>> got = Next(**sub, max);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_GE(got->size(), 1u);
    ASSERT_LE(got->size(), max);
    Collect(*got, ids);
  }
  EXPECT_EQ(ids, Ids(0, 40));

  // Nothing more: the caller's deadline holds; what is published next
  // arrives, in order.
  Result<std::vector<Delivery>> none = Next(**sub, 8, 200ms);
  EXPECT_EQ(none.status().code(), StatusCode::kDeadlineExceeded) << none.status();
  Publish(*bus, "ticks", 40, 5);
  std::vector<std::string> later;
  ASSERT_NO_FATAL_FAILURE(CollectUntil(**sub, 5, 2, later));
  EXPECT_EQ(later, Ids(40, 5));

  EXPECT_TRUE(RunSync((*sub)->Close()).ok());
  Result<std::vector<Delivery>> closed = Next(**sub, 1, 1s);
  EXPECT_FALSE(closed.ok());
  EXPECT_TRUE(RunSync(bus->Close()).ok());
}

// In flight for `group` on `topic`, once it stops changing (within 5 s).
std::uint64_t SettledInFlight(Bus& bus, const std::string& topic, const std::string& group) {
  std::uint64_t last = ~0ull;
  for (int i = 0; i < 50; ++i) {
    Result<GroupInfo> info = RunSync(bus.DescribeGroup(topic, group, Soon()));
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok()) return 0;
    if (info->in_flight == last) return last;
    last = info->in_flight;
    std::this_thread::sleep_for(100ms);
  }
  return last;
}

TEST_F(PrefetchTest, AGroupMemberFetchesOnlyWhatItAsksForByDefault) {
  ASSERT_NO_FATAL_FAILURE(TwoBusesAndAMember(""));
  Result<std::unique_ptr<Subscription>> second =
      RunSync(b_->Subscribe("orders", Billing(), Soon()));
  ASSERT_TRUE(second.ok()) << second.status();

  Publish(*a_, "orders", 0, 4);
  std::vector<std::string> ids;
  Result<std::vector<Delivery>> got = Next(*first_, 2);
  ASSERT_TRUE(got.ok()) << got.status();
  Collect(*got, ids);
  EXPECT_EQ(SettledInFlight(*a_, "orders", "billing"), got->size());  // nothing fetched ahead
  // The other member gets the rest while the first still holds its own.
  ASSERT_NO_FATAL_FAILURE(CollectUntil(**second, 4, 4, ids));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, Ids(0, 4));
  CloseBuses();
}

TEST_F(PrefetchTest, AGroupMemberAskedToFetchAheadHoldsABatchAndReleasesItOnClose) {
  ASSERT_NO_FATAL_FAILURE(TwoBusesAndAMember("?prefetch=all"));
  Publish(*a_, "orders", 0, 4);
  std::vector<std::string> ids;
  Result<std::vector<Delivery>> got = Next(*first_, 2);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);  // the four were stored together: all ready at once
  Collect(*got, ids);
  for (Delivery& d : *got) EXPECT_TRUE(RunSync(d.Ack()).ok());
  // The FETCH sent ahead holds the other two, unasked.
  EXPECT_EQ(SettledInFlight(*a_, "orders", "billing"), 2u);

  // Closing hands them to the group: the other member gets them.
  Result<std::unique_ptr<Subscription>> second =
      RunSync(b_->Subscribe("orders", Billing(), Soon()));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(RunSync(first_->Close()).ok());
  ASSERT_NO_FATAL_FAILURE(CollectUntil(**second, 4, 4, ids));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, Ids(0, 4));
  CloseBuses();
}

TEST(PrefetchUrlTest, UnknownSettingsAreRefused) {
  Result<std::unique_ptr<Bus>> bus = Bus::Open("junction://127.0.0.1:1?prefetch=sometimes");
  EXPECT_EQ(bus.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bus.status().message().find("prefetch must be none, ephemeral or all"),
            std::string::npos)
      << bus.status();
}

}  // namespace
}  // namespace junction::server
