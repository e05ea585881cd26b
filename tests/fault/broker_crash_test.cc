// The embedded broker (file://) under power loss and a full disk, on the
// fault-injecting Env: what Publish and AckSync acknowledged survives a crash
// at any point; what was only Ack'ed may come back; nothing else is lost.

#include <cerrno>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/fault_injection_env.h"
#include "core/run_sync.h"
#include "junction/bus.h"

namespace junction {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

constexpr std::string_view kUrl = "file:///data?fsync=always&segment_bytes=8192";

Message Msg(int i) {
  Message m;
  m.id = "m" + std::to_string(i);
  m.source = "/crash-test";
  m.type = "test.event";
  m.data = std::string(100, 'x');
  return m;
}

class BrokerCrashTest : public ::testing::Test {
 protected:
  std::unique_ptr<Bus> OpenBus() {
    BusOptions options;
    options.env = &env_;
    options.clock = &clock_;
    Result<std::unique_ptr<Bus>> bus = Bus::Open(kUrl, options);
    EXPECT_TRUE(bus.ok()) << bus.status();
    return bus.ok() ? std::move(*bus) : nullptr;
  }

  std::unique_ptr<Subscription> Join(Bus& bus) {
    SubscribeOptions options;
    options.group = "g";
    options.max_in_flight = 10000;
    auto sub = RunSync(bus.Subscribe("events", options, Deadline::Infinite()));
    EXPECT_TRUE(sub.ok()) << sub.status();
    return std::move(*sub);
  }

  // Every delivery available now, by message id.
  std::vector<Delivery> Drain(Subscription& sub) {
    std::vector<Delivery> out;
    while (true) {
      Result<Delivery> d = RunSync(sub.Next(Deadline::Past()));
      if (!d.ok()) {
        EXPECT_EQ(d.status().code(), StatusCode::kDeadlineExceeded) << d.status();
        return out;
      }
      out.push_back(std::move(*d));
    }
  }

  static std::set<std::string> Ids(const std::vector<Delivery>& deliveries) {
    std::set<std::string> ids;
    for (const Delivery& d : deliveries) ids.insert(d.message().id);
    return ids;
  }

  FaultInjectionEnv env_;
  ManualClock clock_;
};

TEST_F(BrokerCrashTest, AckSyncIsNeverRedeliveredAndUnackedAlwaysIs) {
  auto bus = OpenBus();
  auto sub = Join(*bus);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(RunSync(bus->Publish("events", Msg(i))).ok());
  std::vector<Delivery> got = Drain(*sub);
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(RunSync(got[i].AckSync()).ok());
  ASSERT_TRUE(RunSync(got[6].Ack()).ok());  // may or may not be durable

  env_.SimulateCrash(CrashMode::kDropUnsynced);
  sub.reset();
  bus.reset();

  bus = OpenBus();
  sub = Join(*bus);
  std::set<std::string> again = Ids(Drain(*sub));
  for (std::string id : {"m7", "m8", "m9"}) EXPECT_TRUE(again.contains(id)) << id;
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(again.contains("m" + std::to_string(i)));
  EXPECT_LE(again.size(), 4u);
}

TEST_F(BrokerCrashTest, TornCrashesLoseNothingThatWasAcknowledged) {
  for (std::uint64_t seed = 0; seed < 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    FaultInjectionEnv env;
    BusOptions options;
    options.env = &env;
    options.clock = &clock_;
    auto bus = std::move(*Bus::Open(kUrl, options));
    auto sub = Join(*bus);
    std::set<std::string> published;
    std::set<std::string> acked_sync;
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE(RunSync(bus->Publish("events", Msg(i))).ok());
      published.insert("m" + std::to_string(i));
      if (i % 3 == 0) {
        for (Delivery& d : Drain(*sub)) {
          if (std::hash<std::string>{}(d.message().id) % 2 == seed % 2) {
            ASSERT_TRUE(RunSync(d.AckSync()).ok());
            acked_sync.insert(d.message().id);
          }
        }
      }
    }
    env.SimulateCrash(CrashMode::kTearAndGarbleUnsynced, seed);
    sub.reset();
    bus.reset();

    auto reopened = Bus::Open(kUrl, options);
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    sub = Join(**reopened);
    std::set<std::string> again = Ids(Drain(*sub));
    for (const std::string& id : published) {
      EXPECT_NE(again.contains(id), acked_sync.contains(id))
          << id
          << (acked_sync.contains(id) ? " was AckSync'ed but came back"
                                      : " was published, not acked, and is gone");
    }
    sub.reset();
  }
}

TEST_F(BrokerCrashTest, FullDiskFailsPublishLoudlyAndKeepsWhatWasStored) {
  auto bus = OpenBus();
  auto sub = Join(*bus);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(RunSync(bus->Publish("events", Msg(i))).ok());
  env_.FailNth(FaultOp::kWrite, 1, ENOSPC, {.sticky = true});
  Result<PublishResult> refused = RunSync(bus->Publish("events", Msg(5)));
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted) << refused.status();
  EXPECT_EQ(Ids(Drain(*sub)), (std::set<std::string>{"m0", "m1", "m2", "m3", "m4"}));
  Result<PublishResult> still = RunSync(bus->Publish("events", Msg(6)));
  EXPECT_FALSE(still.ok());  // the partition stays read-only until reopened
}

}  // namespace
}  // namespace junction
