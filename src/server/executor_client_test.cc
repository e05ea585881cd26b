// junction:// with BusOptions::executor: the client connection runs on the
// caller's io_context instead of a thread of its own. These check its life
// cycle against a real junctiond on loopback: no connection thread, calls
// in place, a bus dropped without Close ends all its work, an io_context
// destroyed under a live connection frees it, and reconnection runs there.

#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "junction/bus.h"
#include "server/loopback_server_test.h"
#include "server/server.h"

namespace junction::server {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
namespace asio = boost::asio;

Message Event(std::string id) {
  Message m;
  m.id = std::move(id);
  m.source = "/executor_client_test";
  m.type = "test.event";
  return m;
}

// Threads of this process named `name` (what pthread_setname_np gave them).
int ThreadsNamed(const std::string& name) {
  int count = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    if (std::getline(comm, line) && line == name) ++count;
  }
  return count;
}

// Runs `a` on `ctx` until it completes: the connection's own work keeps the
// io_context busy, so run() would not return by itself. 20 s at most.
template <typename T>
std::optional<T> RunOn(asio::io_context& ctx, asio::awaitable<T> a) {
  std::optional<T> out;
  asio::co_spawn(ctx, std::move(a), [&](const std::exception_ptr& e, T value) {
    if (!e) out.emplace(std::move(value));
    ctx.stop();
  });
  ctx.restart();
  ctx.run_for(20s);
  return out;
}

class ExecutorClientTest : public LoopbackServerTest {
 protected:
  Result<std::unique_ptr<Bus>> Open(asio::io_context& ctx) {
    BusOptions options;
    options.executor = ctx.get_executor();
    return Bus::Open("junction://" + server_->address(), options);
  }

  // The daemon's open connections reach `n` within 5 s.
  bool ConnectionsOpenReach(std::uint64_t n) {
    for (int i = 0; i < 500; ++i) {
      if (server_->stats().connections_open == n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

TEST_F(ExecutorClientTest, RunsWithoutAThreadOfItsOwn) {
  int before = ThreadsNamed("jn-conn");
  asio::io_context ctx;
  Result<std::unique_ptr<Bus>> own_thread = Bus::Open("junction://" + server_->address());
  ASSERT_TRUE(own_thread.ok()) << own_thread.status();
  // (Threads it starts, such as Asio's resolver thread, inherit its name.)
  int with_own_thread = ThreadsNamed("jn-conn");
  EXPECT_GT(with_own_thread, before);
  Result<std::unique_ptr<Bus>> bus = Open(ctx);
  ASSERT_TRUE(bus.ok()) << bus.status();
  EXPECT_EQ(ThreadsNamed("jn-conn"), with_own_thread) << "the second bus started a thread";

  SubscribeOptions group;
  group.group = "g";
  auto sub = RunOn(ctx, (*bus)->Subscribe("orders", group, Deadline::Infinite()));
  ASSERT_TRUE(sub && sub->ok());
  auto published = RunOn(ctx, (*bus)->Publish("orders", Event("m0")));
  ASSERT_TRUE(published && published->ok());
  auto got = RunOn(ctx, (**sub)->Next(Deadline::After(RealClock(), 10s)));
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ((*got)->message().id, "m0");
  auto acked = RunOn(ctx, (*got)->Ack());
  ASSERT_TRUE(acked);
  EXPECT_TRUE(acked->ok()) << *acked;
  sub->value().reset();
  auto closed = RunOn(ctx, (*bus)->Close());
  ASSERT_TRUE(closed);
  EXPECT_TRUE(closed->ok()) << *closed;
  own_thread->reset();
}

TEST_F(ExecutorClientTest, ABusDroppedWithoutCloseEndsAllItsWork) {
  asio::io_context ctx;
  {
    Result<std::unique_ptr<Bus>> bus = Open(ctx);
    ASSERT_TRUE(bus.ok()) << bus.status();
    auto sub = RunOn(ctx, (*bus)->Subscribe("orders", {}, Deadline::Infinite()));
    ASSERT_TRUE(sub && sub->ok());
    ASSERT_TRUE(ConnectionsOpenReach(1));
  }  // the subscription and the bus go without Close
  ctx.restart();
  ctx.run_for(10s);
  // Nothing is left to run: the read loop, the heartbeat and the close
  // ended, and the connection was freed.
  EXPECT_TRUE(ctx.stopped()) << "work was left on the io_context";
  EXPECT_TRUE(ConnectionsOpenReach(0));
}

TEST_F(ExecutorClientTest, DestroyingTheIoContextFreesALiveConnection) {
  {
    asio::io_context ctx;
    Result<std::unique_ptr<Bus>> bus = Open(ctx);
    ASSERT_TRUE(bus.ok()) << bus.status();
    auto published = RunOn(ctx, (*bus)->Publish("orders", Event("m0")));
    ASSERT_TRUE(published && published->ok());
    ASSERT_TRUE(ConnectionsOpenReach(1));
    bus->reset();  // its close is posted, but the io_context never runs again
  }
  // The io_context's destructor destroyed the pending coroutines, and with
  // them the last references: the socket closed (the leak checker of the
  // sanitizer builds sees the rest).
  EXPECT_TRUE(ConnectionsOpenReach(0));
}

TEST_F(ExecutorClientTest, ClosingWhileReconnectingEndsAllItsWork) {
  asio::io_context ctx;
  Result<std::unique_ptr<Bus>> bus = Open(ctx);
  ASSERT_TRUE(bus.ok()) << bus.status();
  ASSERT_TRUE(server_->Stop().ok());
  server_.reset();
  // The daemon is gone: the connection notices and retries with backoff.
  ctx.restart();
  ctx.run_for(300ms);
  auto closed = RunOn(ctx, (*bus)->Close());
  ASSERT_TRUE(closed);
  EXPECT_TRUE(closed->ok()) << *closed;
  bus->reset();
  ctx.restart();
  ctx.run_for(10s);
  EXPECT_TRUE(ctx.stopped()) << "the reconnection kept running after Close";
}

TEST_F(ExecutorClientTest, ReconnectsOnTheCallersExecutor) {
  asio::io_context ctx;
  Result<std::unique_ptr<Bus>> bus = Open(ctx);
  ASSERT_TRUE(bus.ok()) << bus.status();
  SubscribeOptions group;
  group.group = "g";
  auto sub = RunOn(ctx, (*bus)->Subscribe("orders", group, Deadline::Infinite()));
  ASSERT_TRUE(sub && sub->ok());

  std::string address = server_->address();
  ASSERT_TRUE(server_->Stop().ok());
  server_.reset();
  ServerOptions options;
  options.bus_url = "mem://";
  options.listen = address;
  options.shards = 1;
  Result<std::unique_ptr<Server>> second = Server::Start(options);
  ASSERT_TRUE(second.ok()) << second.status();
  server_ = std::move(*second);

  // The publish waits for the new connection (made on ctx), and the
  // subscription, opened again there, gets the message.
  auto published =
      RunOn(ctx, (*bus)->Publish("orders", Event("m1"), {}, Deadline::After(RealClock(), 15s)));
  ASSERT_TRUE(published);
  ASSERT_TRUE(published->ok()) << published->status();
  auto got = RunOn(ctx, (**sub)->Next(Deadline::After(RealClock(), 15s)));
  ASSERT_TRUE(got);
  ASSERT_TRUE(got->ok()) << got->status();
  EXPECT_EQ((*got)->message().id, "m1");
  sub->value().reset();
  auto closed = RunOn(ctx, (*bus)->Close());
  ASSERT_TRUE(closed);
  EXPECT_TRUE(closed->ok()) << *closed;
}

}  // namespace
}  // namespace junction::server
