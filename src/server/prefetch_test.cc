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
#include "server/server.h"

namespace junction::server {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

Deadline Soon() { return Deadline::After(RealClock(), 10s); }

class PrefetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.bus_url = "mem://";
    options.listen = "127.0.0.1:0";
    options.shards = 2;
    Result<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void TearDown() override {
    if (server_) {
      EXPECT_TRUE(server_->Stop().ok());
    }
  }

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

  std::unique_ptr<Server> server_;
};

// Ids of `deliveries`, appended to `ids`.
void Collect(const std::vector<Delivery>& deliveries, std::vector<std::string>& ids) {
  for (const Delivery& d : deliveries) ids.push_back(d.message().id);
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
  while (later.size() < 5) {
    Result<std::vector<Delivery>> got = Next(**sub, 2);
    ASSERT_TRUE(got.ok()) << got.status();
    Collect(*got, later);
  }
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
  std::unique_ptr<Bus> a = Open();
  std::unique_ptr<Bus> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(RunSync(a->CreateTopic("orders", {}, Soon())).ok());
  SubscribeOptions group;
  group.group = "billing";
  Result<std::unique_ptr<Subscription>> first = RunSync(a->Subscribe("orders", group, Soon()));
  Result<std::unique_ptr<Subscription>> second = RunSync(b->Subscribe("orders", group, Soon()));
  ASSERT_TRUE(first.ok() && second.ok());

  Publish(*a, "orders", 0, 4);
  std::vector<std::string> ids;
  Result<std::vector<Delivery>> got = Next(**first, 2);
  ASSERT_TRUE(got.ok()) << got.status();
  Collect(*got, ids);
  EXPECT_EQ(SettledInFlight(*a, "orders", "billing"), got->size());  // nothing fetched ahead
  // The other member gets the rest while the first still holds its own.
  while (ids.size() < 4) {
    Result<std::vector<Delivery>> rest = Next(**second, 4);
    ASSERT_TRUE(rest.ok()) << rest.status();
    Collect(*rest, ids);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, Ids(0, 4));
  EXPECT_TRUE(RunSync(a->Close()).ok());
  EXPECT_TRUE(RunSync(b->Close()).ok());
}

TEST_F(PrefetchTest, AGroupMemberAskedToFetchAheadHoldsABatchAndReleasesItOnClose) {
  std::unique_ptr<Bus> a = Open("?prefetch=all");
  std::unique_ptr<Bus> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(RunSync(a->CreateTopic("orders", {}, Soon())).ok());
  SubscribeOptions group;
  group.group = "billing";
  Result<std::unique_ptr<Subscription>> first = RunSync(a->Subscribe("orders", group, Soon()));
  ASSERT_TRUE(first.ok()) << first.status();

  Publish(*a, "orders", 0, 4);
  std::vector<std::string> ids;
  Result<std::vector<Delivery>> got = Next(**first, 2);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);  // the four were stored together: all ready at once
  Collect(*got, ids);
  for (Delivery& d : *got) EXPECT_TRUE(RunSync(d.Ack()).ok());
  // The FETCH sent ahead holds the other two, unasked.
  EXPECT_EQ(SettledInFlight(*a, "orders", "billing"), 2u);

  // Closing hands them to the group: the other member gets them.
  Result<std::unique_ptr<Subscription>> second = RunSync(b->Subscribe("orders", group, Soon()));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(RunSync((*first)->Close()).ok());
  while (ids.size() < 4) {
    Result<std::vector<Delivery>> rest = Next(**second, 4);
    ASSERT_TRUE(rest.ok()) << rest.status();
    Collect(*rest, ids);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, Ids(0, 4));
  EXPECT_TRUE(RunSync(a->Close()).ok());
  EXPECT_TRUE(RunSync(b->Close()).ok());
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
