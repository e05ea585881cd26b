// broker_bench: the embedded broker's CPU cost per message under Google
// Benchmark (bench/README.md). No disk: the bus is mem:// (the same broker,
// groups and log code on an in-memory file system), and publishers, the
// consumer and the broker share one thread (BusOptions::executor), so the
// figure is the work the broker does per message and nothing else: no
// fdatasync, no thread hop, no wakeup.
//
//   broker_bench [--iterations=N] [--benchmark_...]
//
// --iterations: run each benchmark exactly N rounds (for callgrind: the
// instruction count per message is then (total - setup) / (N x messages per
// round)); by default Google Benchmark picks the count.
//
// It has no peer of its own: it is the tool for finding where the broker's
// CPU per message goes (under callgrind or perf); the throughput goal and its
// peer are `junction bench broker`'s.

#include <charconv>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include "broker/dedupe_window.h"

#include "junction/bus.h"
#include "junction/status.h"

namespace junction::bench {
namespace {

namespace asio = boost::asio;

constexpr int kPublishers = 64;
constexpr int kPerPublisher = 16;  // messages each publisher sends per round
constexpr int kPerRound = kPublishers * kPerPublisher;
constexpr std::size_t kBytes = 100;
constexpr std::string_view kTopic = "bench";

std::optional<std::int64_t>& FixedIterations() {
  static std::optional<std::int64_t> iterations;
  return iterations;
}

Message MakeMessage(std::uint64_t seq) {
  Message message;
  message.id = "m" + std::to_string(seq);
  message.source = "/bench";
  message.type = "bench";
  message.data.assign(kBytes, 'v');
  return message;
}

// Runs `task` on `io` (run by this thread) until it is done; the bus's own
// timers keep the io_context busy, so run_one rather than run.
Status RunOn(asio::io_context& io, asio::awaitable<Status> task) {
  std::optional<Status> out;
  asio::co_spawn(io, std::move(task), [&out](const std::exception_ptr& e, Status status) {
    out = e ? InternalError("benchmark coroutine threw") : std::move(status);
  });
  while (!out) io.run_one();
  return *out;
}

struct Round {
  int publishers_left = kPublishers;
  Status error;
};

asio::awaitable<void> PublishSome(Bus& bus, std::uint64_t first, Round& round) {
  for (int i = 0; i < kPerPublisher; ++i) {
    Result<PublishResult> published =
        co_await bus.Publish(kTopic, MakeMessage(first + static_cast<std::uint64_t>(i)));
    if (!published.ok() && round.error.ok()) round.error = published.status();
  }
  --round.publishers_left;
}

// One round: kPublishers coroutines publish kPerPublisher messages each, one
// Publish at a time; the consumer takes them in batches and acks each.
asio::awaitable<Status> PublishDeliverAck(Bus& bus, Subscription& subscription,
                                          std::uint64_t& seq) {
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  Round round;
  for (int p = 0; p < kPublishers; ++p) {
    asio::co_spawn(executor, PublishSome(bus, seq, round), asio::detached);
    seq += kPerPublisher;
  }
  int acked = 0;
  while (acked < kPerRound) {
    Result<std::vector<Delivery>> got = co_await subscription.NextBatch(
        256, Deadline::After(RealClock(), std::chrono::seconds(10)));
    if (!got.ok()) co_return got.status().WithContext("NextBatch");
    for (Delivery& delivery : *got) {
      Status status = co_await delivery.Ack();
      if (!status.ok()) co_return status.WithContext("Ack");
      ++acked;
    }
  }
  while (round.publishers_left > 0) {
    co_await asio::post(executor, asio::use_awaitable);
  }
  co_return round.error;
}

// mem://, one partition, one consumer; items are messages acked.
void BM_PublishDeliverAckInMemory(benchmark::State& state) {
  asio::io_context io(1);
  BusOptions options;
  options.executor = io.get_executor();
  Result<std::unique_ptr<Bus>> bus = Bus::Open("mem://", options);
  if (!bus.ok()) {
    state.SkipWithError(bus.status().ToString().c_str());
    return;
  }
  std::unique_ptr<Subscription> subscription;
  Status ready = RunOn(io, [&]() -> asio::awaitable<Status> {
    TopicOptions topic;
    topic.partitions = 1;
    JUNCTION_CO_RETURN_IF_ERROR(co_await (*bus)->CreateTopic(kTopic, topic, Deadline::Infinite()));
    SubscribeOptions group;
    group.group = "workers";
    Result<std::unique_ptr<Subscription>> joined =
        co_await (*bus)->Subscribe(kTopic, group, Deadline::Infinite());
    if (!joined.ok()) co_return joined.status();
    subscription = std::move(*joined);
    co_return OkStatus();
  }());
  if (!ready.ok()) {
    state.SkipWithError(ready.ToString().c_str());
    return;
  }
  std::uint64_t seq = 0;
  for (auto _ : state) {
    Status status = RunOn(io, PublishDeliverAck(**bus, *subscription, seq));
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kPerRound);
  subscription.reset();
  Status closed = RunOn(io, (*bus)->Close());
  if (!closed.ok()) state.SkipWithError(closed.ToString().c_str());
}

// A topic's dedupe window at its cap (1M ids, the default), as Broker::Store
// uses it for a publish of 64 new ids: look each up (none is there), then,
// once stored, add each and let the oldest go. Items are ids. The window
// is past its growth, so this is the steady state of a busy topic: every
// id's bucket is a cache miss.
void BM_DedupeWindowAtItsCap(benchmark::State& state) {
  constexpr std::size_t kCap = 1'000'000;
  constexpr std::size_t kBatch = 64;
  broker::DedupeWindow window(std::chrono::hours(1), kCap);
  std::uint64_t next = 0;
  std::vector<std::uint64_t> hashes(kBatch);
  // New ids' hashes (splitmix64 of a count: as random as XXH3's, and cheap).
  auto fill = [&] {
    for (std::uint64_t& hash : hashes) {
      std::uint64_t z = (next++ + 1) * 0x9e3779b97f4a7c15ULL;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      hash = z ^ (z >> 31);
    }
  };
  for (std::size_t i = 0; i < kCap / kBatch + 1; ++i) {
    fill();
    for (std::uint64_t hash : hashes) window.Add(hash, {PartitionId(0), Offset(next)}, 1000);
  }
  for (auto _ : state) {
    fill();
    for (std::uint64_t hash : hashes) window.Prefetch(hash);
    for (std::uint64_t hash : hashes) benchmark::DoNotOptimize(window.Find(hash));
    window.Expire(1000);
    for (std::uint64_t hash : hashes) window.Prefetch(hash);
    for (std::uint64_t hash : hashes) window.Add(hash, {PartitionId(0), Offset(next)}, 1000);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
  // Past the cap, each id added lets the oldest go: all by count here.
  state.counters["left_early"] = static_cast<double>(window.evicted());
}

void Register() {
  auto* b =
      benchmark::RegisterBenchmark("BM_PublishDeliverAckInMemory", BM_PublishDeliverAckInMemory);
  b->Unit(benchmark::kMicrosecond);
  if (FixedIterations()) b->Iterations(*FixedIterations());
  auto* d = benchmark::RegisterBenchmark("BM_DedupeWindowAtItsCap", BM_DedupeWindowAtItsCap);
  if (FixedIterations()) d->Iterations(*FixedIterations());
}

// Takes --iterations= out of argv (before Google Benchmark sees it).
bool ParseOwnFlags(int& argc, char** argv) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    constexpr std::string_view kIterations = "--iterations=";
    if (arg.starts_with(kIterations)) {
      std::string_view value = arg.substr(kIterations.size());
      std::int64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n < 1) {
        std::cerr << "broker_bench: --iterations wants a positive integer, got '" << value << "'\n";
        return false;
      }
      FixedIterations() = n;
      continue;
    }
    argv[out++] = argv[i];
  }
  argc = out;
  return true;
}

}  // namespace
}  // namespace junction::bench

int main(int argc, char** argv) {
  using namespace junction::bench;  // NOLINT(google-build-using-namespace): main only
  if (!ParseOwnFlags(argc, argv)) return 2;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  Register();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
