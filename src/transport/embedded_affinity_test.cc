// BusOptions::shard_cpus and blocking_cpus: the bus's threads run on the CPUs
// named, the caller's thread is left as it was, and CPU sets the process
// cannot use are refused when the bus opens.

#include <sched.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "core/affinity.h"
#include "junction/bus.h"

namespace junction {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

// How many of this process's threads may run on exactly `list` (as
// /proc/self/task/*/status writes it, e.g. "1" or "0-3").
int ThreadsAllowedOnly(const std::string& list) {
  int n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
      std::string value = line.substr(line.find(':') + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      if (value == list) ++n;
    }
  }
  return n;
}

Message Msg(const std::string& id) {
  Message message;
  message.id = id;
  message.source = "/test";
  message.type = "test";
  message.data = "x";
  return message;
}

TEST(EmbeddedAffinity, TheBusThreadsRunOnTheCpusNamedAndTheCallerIsLeftAlone) {
  Result<std::vector<int>> mine = ThreadCpus();
  ASSERT_TRUE(mine.ok()) << mine.status();
  if (mine->size() < 2) GTEST_SKIP() << "needs two CPUs to tell the sets apart";
  const int shard_cpu = mine->back();
  const int blocking_cpu = mine->front();
  const int shard_before = ThreadsAllowedOnly(std::to_string(shard_cpu));
  const int blocking_before = ThreadsAllowedOnly(std::to_string(blocking_cpu));

  BusOptions options;
  options.shard_cpus = {shard_cpu};
  options.blocking_cpus = {blocking_cpu};
  Result<std::unique_ptr<Bus>> bus = Bus::Open("mem://?blocking_threads=3", options);
  ASSERT_TRUE(bus.ok()) << bus.status();
  EXPECT_EQ(ThreadsAllowedOnly(std::to_string(shard_cpu)) - shard_before, 1);
  // At least: a sanitizer runtime may start a helper thread of its own
  // (TSan does) while the pool's threads are being created, and it inherits
  // the set too.
  EXPECT_GE(ThreadsAllowedOnly(std::to_string(blocking_cpu)) - blocking_before, 3);
  EXPECT_EQ(*ThreadCpus(), *mine);

  // And it works as a bus.
  asio::io_context io;
  std::string received;
  auto body = [&]() -> Awaitable<void> {
    SubscribeOptions group;
    group.group = "g";
    Result<std::unique_ptr<Subscription>> sub =
        co_await (*bus)->Subscribe("orders", group, Deadline::Infinite());
    EXPECT_TRUE(sub.ok()) << sub.status();
    if (!sub.ok()) co_return;
    Result<PublishResult> published = co_await (*bus)->Publish("orders", Msg("a"));
    EXPECT_TRUE(published.ok()) << published.status();
    Result<Delivery> next = co_await (*sub)->Next(Deadline::Infinite());
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok()) co_return;
    received = next->message().id;
    EXPECT_TRUE((co_await next->AckSync()).ok());
    EXPECT_TRUE((co_await (*bus)->Close()).ok());
  };
  std::future<void> done = asio::co_spawn(io, body(), asio::use_future);
  io.run_for(30s);  // a bound on a hang, not a timing assertion
  ASSERT_EQ(done.wait_for(0s), std::future_status::ready);
  done.get();
  EXPECT_EQ(received, "a");
}

TEST(EmbeddedAffinity, CpuSetsTheBusCannotUseAreRefusedAtOpen) {
  BusOptions bad_blocking;
  bad_blocking.blocking_cpus = {-1};
  Result<std::unique_ptr<Bus>> a = Bus::Open("mem://", bad_blocking);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().ToString().find("blocking_cpus"), std::string::npos) << a.status();
  EXPECT_NE(a.status().ToString().find("CPU -1"), std::string::npos) << a.status();

  BusOptions bad_shard;
  bad_shard.shard_cpus = {CPU_SETSIZE};
  Result<std::unique_ptr<Bus>> b = Bus::Open("mem://", bad_shard);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().ToString().find("shard_cpus"), std::string::npos) << b.status();

  // The shard is the caller's executor: its thread is the caller's to pin.
  asio::io_context io;
  BusOptions on_executor;
  on_executor.executor = io.get_executor();
  on_executor.shard_cpus = {ThreadCpus()->front()};
  Result<std::unique_ptr<Bus>> c = Bus::Open("mem://", on_executor);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().ToString().find("shard_cpus"), std::string::npos) << c.status();
}

}  // namespace
}  // namespace junction
