// The embedded bus on the caller's executor (BusOptions::executor): opened
// before the executor runs, used from it and from another thread, and
// destroyed without Close() there — the broker then closes on that executor,
// and what was acknowledged stays acknowledged. (The whole conformance suite
// also runs in this mode: tests/conformance, "fileOnTestExecutor".)

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "junction/bus.h"
#include "tests/support/temp_dir.h"

namespace junction {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

constexpr Deadline kForever = Deadline::Infinite();
constexpr Deadline kNow = Deadline::Past();

using test_support::TempDir;

Message Msg(const std::string& id) {
  Message message;
  message.id = id;
  message.source = "/test";
  message.type = "test";
  message.data = "x";
  return message;
}

SubscribeOptions Group(const std::string& name) {
  SubscribeOptions options;
  options.group = name;
  return options;
}

// Runs `io` until it has nothing left to do (the bus's close included);
// false if that takes more than 30 s of real time.
bool RunToCompletion(asio::io_context& io) {
  io.restart();
  io.run_for(30s);
  return io.stopped();
}

// Every id deliverable now from `group` of `url`, read through a bus with a
// shard thread of its own; each is acked.
std::vector<std::string> Remaining(const std::string& url, const std::string& group) {
  asio::io_context io;
  std::vector<std::string> ids;
  auto body = [&]() -> Awaitable<void> {
    Result<std::unique_ptr<Bus>> bus = Bus::Open(url);
    EXPECT_TRUE(bus.ok()) << bus.status();
    if (!bus.ok()) co_return;
    Result<std::unique_ptr<Subscription>> sub =
        co_await (*bus)->Subscribe("orders", Group(group), kForever);
    EXPECT_TRUE(sub.ok()) << sub.status();
    if (!sub.ok()) co_return;
    while (true) {
      Result<Delivery> next = co_await (*sub)->Next(kNow);
      if (!next.ok()) {
        EXPECT_EQ(next.status().code(), StatusCode::kDeadlineExceeded) << next.status();
        break;
      }
      ids.push_back(next->message().id);
      EXPECT_TRUE((co_await next->AckSync()).ok());
    }
    EXPECT_TRUE((co_await (*bus)->Close()).ok());
  };
  asio::co_spawn(io, body(), asio::use_future);
  EXPECT_TRUE(RunToCompletion(io));
  return ids;
}

// The bus of `url` on `io`, opened while nothing runs `io` (as
// BusOptions::executor allows); null after a failure reported here.
std::unique_ptr<Bus> OpenOn(asio::io_context& io, const std::string& url) {
  BusOptions options;
  options.executor = io.get_executor();
  Result<std::unique_ptr<Bus>> opened = Bus::Open(url, options);
  EXPECT_TRUE(opened.ok()) << opened.status();
  return opened.ok() ? std::move(*opened) : nullptr;
}

TEST(EmbeddedOnCallersExecutor, DestroyedWithoutCloseClosesThereAndKeepsAcks) {
  TempDir dir("junction-executor");
  ASSERT_FALSE(dir.path().empty());
  asio::io_context io;
  std::unique_ptr<Bus> bus = OpenOn(io, dir.url());
  ASSERT_NE(bus, nullptr);
  std::vector<std::string> received;
  auto body = [&]() -> Awaitable<void> {
    Result<std::unique_ptr<Subscription>> sub =
        co_await bus->Subscribe("orders", Group("g"), kForever);
    EXPECT_TRUE(sub.ok()) << sub.status();
    if (!sub.ok()) co_return;
    for (const char* id : {"a", "b", "c"}) {
      Result<PublishResult> published = co_await bus->Publish("orders", Msg(id));
      EXPECT_TRUE(published.ok()) << published.status();
    }
    for (int i = 0; i < 3; ++i) {
      Result<Delivery> next = co_await (*sub)->Next(kNow);
      EXPECT_TRUE(next.ok()) << next.status();
      if (!next.ok()) co_return;
      received.push_back(next->message().id);
      // "a" and "b" acknowledged durably, "c" left in flight.
      if (next->message().id != "c") {
        Status acked = co_await next->AckSync();
        EXPECT_TRUE(acked.ok()) << acked;
      }
    }
    // Both go without Close(), here on the bus's own executor: the last
    // reference closes the broker once this handler is done.
    sub->reset();
    bus.reset();
  };
  asio::co_spawn(io, body(), asio::use_future);
  ASSERT_TRUE(RunToCompletion(io)) << "the bus did not finish closing on its executor";
  EXPECT_EQ(received, (std::vector<std::string>{"a", "b", "c"}));
  // The files are released (a second Open would fail with Unavailable
  // otherwise), and only the unacknowledged message comes back.
  EXPECT_EQ(Remaining(dir.url(), "g"), (std::vector<std::string>{"c"}));
}

TEST(EmbeddedOnCallersExecutor, CallsFromAnotherThreadStillWork) {
  TempDir dir("junction-executor");
  ASSERT_FALSE(dir.path().empty());
  asio::io_context bus_io;
  std::unique_ptr<Bus> bus = OpenOn(bus_io, dir.url());
  ASSERT_NE(bus, nullptr);
  auto guard = asio::make_work_guard(bus_io);
  std::thread bus_thread([&] { bus_io.run(); });

  // Subscribed and consumed on the bus's executor, published from here.
  std::atomic<int> acked{0};
  auto consume = [&]() -> Awaitable<void> {
    Result<std::unique_ptr<Subscription>> sub =
        co_await bus->Subscribe("orders", Group("g"), kForever);
    EXPECT_TRUE(sub.ok()) << sub.status();
    if (!sub.ok()) co_return;
    while (acked < 100) {
      Result<Delivery> next = co_await (*sub)->Next(Deadline::After(RealClock(), 10s));
      EXPECT_TRUE(next.ok()) << next.status();
      if (!next.ok()) co_return;
      EXPECT_TRUE((co_await next->Ack()).ok());
      ++acked;
    }
  };
  std::future<void> consumed = asio::co_spawn(bus_io, consume(), asio::use_future);
  asio::io_context publisher_io;
  auto publish = [&]() -> Awaitable<void> {
    for (int i = 0; i < 100; ++i) {
      Result<PublishResult> published = co_await bus->Publish("orders", Msg(std::to_string(i)));
      EXPECT_TRUE(published.ok()) << published.status();
    }
  };
  asio::co_spawn(publisher_io, publish(), asio::use_future);
  EXPECT_TRUE(RunToCompletion(publisher_io));
  EXPECT_EQ(consumed.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(acked, 100);

  // Closed and destroyed from this thread while the bus's thread runs.
  std::future<Status> closed = asio::co_spawn(publisher_io, bus->Close(), asio::use_future);
  EXPECT_TRUE(RunToCompletion(publisher_io));
  EXPECT_TRUE(closed.get().ok());
  bus.reset();
  guard.reset();
  bus_thread.join();  // returns once the posted close-and-delete has run
  EXPECT_EQ(Remaining(dir.url(), "g"), std::vector<std::string>{});
}

TEST(EmbeddedOnCallersExecutor, OpenFailureLeavesNothingBehind) {
  TempDir dir("junction-executor");
  ASSERT_FALSE(dir.path().empty());
  std::filesystem::path file = dir.path() / "not-a-directory";
  { std::ofstream(file) << "x"; }
  asio::io_context io;
  BusOptions options;
  options.executor = io.get_executor();
  Result<std::unique_ptr<Bus>> opened = Bus::Open("file://" + file.string(), options);
  EXPECT_FALSE(opened.ok());
  // Nothing was posted to the executor: it has no work at all.
  EXPECT_EQ(io.poll(), 0u);
}

}  // namespace
}  // namespace junction
