// A fast publisher, a group whose consumer acks one message in 100 ms, and a
// healthy group, all on one junctiond (a child process, stopped by its PID)
// for SOAK_SECONDS (default 15 in `make test`; `make soak` runs 60):
// the daemon's resident memory grows by less than its 256 MiB budget while
// the slow group's backlog grows without bound, and the healthy group gets
// every message. The healthy group's latency is printed, never asserted
// (timings are not test results on shared machines).

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "core/run_sync.h"
#include "junction/bus.h"
#include "obs/latency_histogram.h"
#include "tests/support/daemon_process.h"

namespace junction {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

constexpr std::uint64_t kBudget = 256ull << 20;
constexpr std::string_view kTopic = "firehose";

std::uint64_t ResidentBytes(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t pages = 0;
  std::uint64_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int SoakSeconds() {
  const char* text = std::getenv("SOAK_SECONDS");
  int seconds = text != nullptr ? std::atoi(text) : 0;
  return seconds > 0 ? seconds : 15;
}

std::unique_ptr<Subscription> Join(Bus& bus, const std::string& group) {
  SubscribeOptions options;
  options.group = group;
  options.start = StartPosition::Earliest();
  options.max_in_flight = 1024;
  auto sub = RunSync(bus.Subscribe(kTopic, options, Deadline::After(RealClock(), 10s)));
  EXPECT_TRUE(sub.ok()) << sub.status();
  return sub.ok() ? std::move(*sub) : nullptr;
}

Awaitable<void> AckOne(Delivery d) { (void)co_await d.Ack(); }

// Acks a whole batch at once (one round trip, not one per message).
void AckAll(std::vector<Delivery>& batch) {
  boost::asio::io_context io;
  for (Delivery& d : batch) boost::asio::co_spawn(io, AckOne(std::move(d)), boost::asio::detached);
  io.run();
}

TEST(DaemonSlowConsumerTest, MemoryStaysInItsBudgetAndTheHealthyGroupGetsEverything) {
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "daemon_slow_consumer_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
  // default) that counts as resident: keep it small in the daemon.
  const char* asan = std::getenv("ASAN_OPTIONS");
  std::string asan_options = asan != nullptr && asan[0] != '\0' ? std::string(asan) + ":" : "";
  ::setenv("ASAN_OPTIONS", (asan_options + "quarantine_size_mb=4").c_str(), 1);
  testing::DaemonProcess daemon;
  std::string url = daemon.Start(
      {JUNCTIOND_PATH, "--shards=2", "--fsync=never", "--log-level=error"}, dir / "data");
  ASSERT_FALSE(url.empty()) << "junctiond did not start; see " << dir.string() << "/data.stderr";

  // Each party has a connection of its own, as separate processes would.
  Result<std::unique_ptr<Bus>> publisher_bus = Bus::Open(url);
  Result<std::unique_ptr<Bus>> slow_bus = Bus::Open(url);
  Result<std::unique_ptr<Bus>> healthy_bus = Bus::Open(url);
  ASSERT_TRUE(publisher_bus.ok() && slow_bus.ok() && healthy_bus.ok());
  std::unique_ptr<Subscription> slow = Join(**slow_bus, "slow");
  std::unique_ptr<Subscription> healthy = Join(**healthy_bus, "healthy");
  ASSERT_TRUE(slow && healthy);

  std::uint64_t baseline = ResidentBytes(daemon.pid());
  std::atomic<bool> publishing{true};
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> peak{baseline};
  std::thread publisher([&] {
    std::uint64_t n = 0;
    while (publishing) {
      std::vector<Message> batch;
      for (int i = 0; i < 100; ++i, ++n) {
        Message m;
        m.id = "m" + std::to_string(n);
        m.source = "/slow-consumer-test";
        m.type = "test.event";
        m.data.assign(100, 'x');
        std::int64_t now = NowNanos();
        std::memcpy(m.data.data(), &now, sizeof now);
        batch.push_back(std::move(m));
      }
      auto stored = RunSync(
          (*publisher_bus)
              ->PublishBatch(kTopic, std::move(batch), {}, Deadline::After(RealClock(), 30s)));
      ASSERT_TRUE(stored.ok()) << stored.status();
      published += stored->size();
    }
  });
  std::thread slow_consumer([&] {
    while (!done) {
      auto d = RunSync(slow->Next(Deadline::After(RealClock(), 100ms)));
      if (d.ok()) (void)RunSync(d->Ack());
      std::this_thread::sleep_for(100ms);
    }
  });
  std::thread sampler([&] {
    while (!done) {
      std::uint64_t now = ResidentBytes(daemon.pid());
      std::uint64_t seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(200ms);
    }
  });

  auto histogram = std::make_unique<obs::LatencyHistogram>();
  std::uint64_t received = 0;
  auto stop_publishing = std::chrono::steady_clock::now() + std::chrono::seconds(SoakSeconds());
  auto give_up = stop_publishing + 60s;
  while (std::chrono::steady_clock::now() < give_up) {
    if (publishing && std::chrono::steady_clock::now() >= stop_publishing) publishing = false;
    if (!publishing && received >= published.load()) break;
    auto batch = RunSync(healthy->NextBatch(1024, Deadline::After(RealClock(), 200ms)));
    if (!batch.ok()) continue;
    std::int64_t now = NowNanos();
    for (Delivery& d : *batch) {
      std::int64_t sent = 0;
      std::memcpy(&sent, d.message().data.data(), sizeof sent);
      histogram->Record(now - sent);
      ++received;
    }
    AckAll(*batch);
  }
  publishing = false;
  publisher.join();
  done = true;
  slow_consumer.join();
  sampler.join();

  EXPECT_EQ(received, published.load()) << "the healthy group fell behind for good";
  std::uint64_t growth = peak.load() > baseline ? peak.load() - baseline : 0;
  EXPECT_LT(growth, kBudget) << "resident memory grew by " << (growth >> 20) << " MiB";
  std::printf(
      "%d s: published %llu (%.0f/s); daemon RSS %.1f -> peak %.1f MiB (+%.1f); healthy group "
      "latency p50 %.2f ms p99 %.2f ms max %.2f ms\n",
      SoakSeconds(), static_cast<unsigned long long>(published.load()),
      static_cast<double>(published.load()) / SoakSeconds(), baseline / 1048576.0,
      peak.load() / 1048576.0, growth / 1048576.0, histogram->ValueAtQuantile(0.5) / 1e6,
      histogram->ValueAtQuantile(0.99) / 1e6, histogram->max() / 1e6);
  RecordProperty("rss_growth_bytes", static_cast<int>(growth));

  EXPECT_TRUE(RunSync(slow->Close()).ok());
  EXPECT_TRUE(RunSync(healthy->Close()).ok());
  for (auto* bus : {publisher_bus->get(), slow_bus->get(), healthy_bus->get()}) {
    EXPECT_TRUE(RunSync(bus->Close()).ok());
  }
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(60s), 0);
}

}  // namespace
}  // namespace junction
