#include "bench/bus_bench.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/run_sync.h"
#include "junction/bus.h"
#include "junction/clock.h"

namespace junction::bench {
namespace {

using Steady = std::chrono::steady_clock;

constexpr Duration kSlice = std::chrono::milliseconds(100);
constexpr Duration kCallTimeout = std::chrono::seconds(30);
constexpr std::size_t kFillBatch = 1000;

std::int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch())
      .count();
}

// What the threads of one run share.
struct Run {
  const BusBenchOptions& options;
  Bus& bus;
  std::string topic;
  std::string stem;      // message ids: <stem>-<n>
  std::uint64_t target;  // operations the run waits for
  std::int64_t start_nanos = 0;
  std::atomic<std::uint64_t> next{0};  // the next message number to send
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> data_bytes{0};
  std::atomic<std::int64_t> end_nanos{0};
  std::atomic<int> ready{0};  // consumers subscribed (responders open)
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  bool per_client = false;  // each client opens a bus of its own (BusBenchOptions::bus_per_client)
  std::mutex mutex;
  std::string first_error;  // guarded by mutex

  Run(const BusBenchOptions& o, Bus& b, std::uint64_t t) : options(o), bus(b), target(t) {}

  // `count` operations of `bytes` data in all (a consumer counts a batch at once).
  void Completed(std::size_t bytes, std::uint64_t count = 1) {
    data_bytes.fetch_add(bytes, std::memory_order_relaxed);
    std::uint64_t before = done.fetch_add(count, std::memory_order_acq_rel);
    if (before < target && before + count >= target) end_nanos = NowNanos();
  }
  void Failed(const Status& status, std::uint64_t count = 1) {
    errors.fetch_add(count, std::memory_order_relaxed);
    std::lock_guard lock(mutex);
    if (first_error.empty()) first_error = status.ToString();
  }
  bool finished() const { return stop.load() || done.load() >= target; }
};

Message MakeMessage(const Run& run, std::uint64_t n, std::int64_t intended) {
  Message message;
  message.id = run.stem + "-" + std::to_string(n);
  message.source = "/junction/bench";
  message.type = "bench";
  message.data.assign(run.options.size, 'x');
  if (message.data.size() >= 16) {
    std::memcpy(message.data.data(), &intended, 8);
    std::memcpy(message.data.data() + 8, &n, 8);
  }
  return message;
}

std::int64_t SentAt(const Message& message) {
  std::int64_t sent = 0;
  if (message.data.size() >= 16) std::memcpy(&sent, message.data.data(), 8);
  return sent;
}

// When message n is due: with a rate, message n (claimed in order by all
// producers) is due at start + n / rate; without one, now.
std::int64_t DueAt(const Run& run, std::uint64_t n) {
  if (run.options.rate <= 0) return NowNanos();
  return run.start_nanos +
         static_cast<std::int64_t>(static_cast<double>(n) * 1e9 / run.options.rate);
}

Awaitable<void> SleepUntil(boost::asio::steady_timer& timer, std::int64_t nanos) {
  std::int64_t now = NowNanos();
  if (nanos <= now) co_return;
  timer.expires_after(std::chrono::nanoseconds(nanos - now));
  boost::system::error_code ignored;
  co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
}

// One slot of a producer's window with --batch above 1: claims `batch`
// message numbers at a time and publishes them with one PublishBatch.
Awaitable<void> ProduceBatchLoop(Run& run, Bus& bus, obs::LatencyHistogram& latency) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  const BusBenchOptions& o = run.options;
  std::vector<std::int64_t> intended;
  while (!run.stop) {
    std::uint64_t first = run.next.fetch_add(o.batch);
    if (first >= o.msgs) break;
    std::uint64_t count = std::min<std::uint64_t>(o.batch, o.msgs - first);
    intended.clear();
    // Unthrottled, the batch is due now: one reading of the clock for all
    // of it (a reading per message cost the client 3% of its CPU).
    const std::int64_t due = o.rate > 0 ? 0 : NowNanos();
    for (std::uint64_t i = 0; i < count; ++i) {
      intended.push_back(o.rate > 0 ? DueAt(run, first + i) : due);
    }
    if (o.rate > 0) co_await SleepUntil(timer, intended.back());
    std::vector<Message> messages;
    messages.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
      messages.push_back(MakeMessage(run, first + i, intended[i]));
    }
    PublishOptions options;  // named: GCC 12 mis-handles aggregate temporaries in co_await
    Result<std::vector<PublishResult>> published = co_await bus.PublishBatch(
        run.topic, std::move(messages), options, Deadline::After(RealClock(), kCallTimeout));
    if (!published.ok()) {
      run.Failed(published.status(), count);
      continue;
    }
    if (o.scenario != BusScenario::kPub) continue;
    std::int64_t now = NowNanos();
    for (std::uint64_t i = 0; i < count; ++i) latency.Record(now - intended[i]);
    run.Completed(o.size * count, count);
  }
}

// One slot of a producer's window: claims message numbers until none are
// left and publishes (or requests) each.
Awaitable<void> ProduceLoop(Run& run, Bus& bus, obs::LatencyHistogram& latency) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  const BusBenchOptions& o = run.options;
  while (!run.stop) {
    std::uint64_t n = run.next.fetch_add(1);
    if (n >= o.msgs) break;
    std::int64_t intended = DueAt(run, n);
    if (o.rate > 0) co_await SleepUntil(timer, intended);
    Message message = MakeMessage(run, n, intended);
    if (o.scenario == BusScenario::kRequestReply) {
      Result<Message> reply = co_await bus.Request(run.topic, std::move(message),
                                                   Deadline::After(RealClock(), kCallTimeout));
      if (!reply.ok()) {
        run.Failed(reply.status());
        continue;
      }
      latency.Record(NowNanos() - intended);
      run.Completed(reply->data.size());
      continue;
    }
    Result<PublishResult> published = co_await bus.Publish(
        run.topic, std::move(message), {}, Deadline::After(RealClock(), kCallTimeout));
    if (!published.ok()) {
      run.Failed(published.status());
      continue;
    }
    if (o.scenario == BusScenario::kPub) {
      latency.Record(NowNanos() - intended);
      run.Completed(o.size);
    }
  }
}

Awaitable<void> AckOne(Run& run, Delivery delivery) {
  std::size_t bytes = delivery.message().data.size();
  Status acked = co_await delivery.Ack();
  if (!acked.ok()) {
    run.Failed(acked);
    co_return;
  }
  run.Completed(bytes);
}

Awaitable<void> ConsumeLoop(Run& run, Bus& bus, obs::LatencyHistogram& latency) {
  const BusBenchOptions& o = run.options;
  SubscribeOptions subscribe;
  if (o.scenario != BusScenario::kPubSub) {
    subscribe.group = "bench";
    subscribe.start = StartPosition::Earliest();
    subscribe.max_in_flight = 1024;
  }
  Result<std::unique_ptr<Subscription>> subscription = co_await bus.Subscribe(
      run.topic, std::move(subscribe), Deadline::After(RealClock(), kCallTimeout));
  if (!subscription.ok()) {
    run.Failed(subscription.status());
    run.stop = true;
    co_return;
  }
  ++run.ready;
  auto executor = co_await boost::asio::this_coro::executor;
  bool record = o.scenario != BusScenario::kSub && o.size >= 16;
  while (!run.finished()) {
    Result<std::vector<Delivery>> batch =
        co_await (*subscription)->NextBatch(256, Deadline::After(RealClock(), kSlice));
    if (!batch.ok()) {
      if (batch.status().code() == StatusCode::kDeadlineExceeded) continue;
      run.Failed(batch.status());
      break;
    }
    std::int64_t now = NowNanos();
    std::size_t bytes = 0;
    for (Delivery& delivery : *batch) {
      if (record) latency.Record(now - SentAt(delivery.message()));
      if (o.scenario == BusScenario::kPubSub) {
        bytes += delivery.message().data.size();
      } else {
        boost::asio::co_spawn(executor, AckOne(run, std::move(delivery)), boost::asio::detached);
      }
    }
    if (o.scenario == BusScenario::kPubSub) run.Completed(bytes, batch->size());
  }
  Status closed = co_await (*subscription)->Close();
  if (!closed.ok() && !run.stop) run.Failed(closed);
}

Awaitable<void> RespondLoop(Run& run, Bus& bus) {
  Result<std::unique_ptr<Responder>> responder =
      co_await bus.Respond(run.topic, Deadline::After(RealClock(), kCallTimeout));
  if (!responder.ok()) {
    run.Failed(responder.status());
    run.stop = true;
    co_return;
  }
  ++run.ready;
  while (!run.finished()) {
    Result<std::unique_ptr<IncomingRequest>> request =
        co_await (*responder)->Next(Deadline::After(RealClock(), kSlice));
    if (!request.ok()) {
      if (request.status().code() == StatusCode::kDeadlineExceeded) continue;
      run.Failed(request.status());
      break;
    }
    Message reply = (*request)->message();  // echo, send time included
    reply.id += "-reply";
    Status sent = co_await (*request)->Reply(std::move(reply));
    if (!sent.ok()) run.Failed(sent);
  }
  Status closed = co_await (*responder)->Close();
  if (!closed.ok() && !run.stop) run.Failed(closed);
}

Awaitable<void> CloseBus(Run& run, std::unique_ptr<Bus> bus) {
  Status closed = co_await bus->Close();
  if (!closed.ok() && !run.stop) run.Failed(closed);
}

// One client (a producer or a consumer): `slots` coroutines made by `loop`
// on this thread's io_context, on the run's shared bus or, per client, on a
// bus of its own opened on that io_context (BusOptions::executor), closed
// there once the last coroutine returns.
void RunClient(Run& run, std::uint32_t slots, const std::function<Awaitable<void>(Bus&)>& loop) {
  boost::asio::io_context io;
  std::unique_ptr<Bus> own;
  Bus* bus = &run.bus;
  if (run.per_client) {
    BusOptions options;
    options.executor = io.get_executor();
    Result<std::unique_ptr<Bus>> opened = Bus::Open(run.options.url, options);
    if (!opened.ok()) {
      run.Failed(opened.status());
      run.stop = true;
      return;
    }
    own = std::move(*opened);
    bus = own.get();
  }
  std::uint32_t running = slots;
  for (std::uint32_t slot = 0; slot < slots; ++slot) {
    boost::asio::co_spawn(io, loop(*bus), [&](const std::exception_ptr&) {
      if (--running == 0 && own) {
        boost::asio::co_spawn(io, CloseBus(run, std::move(own)), boost::asio::detached);
      }
    });
  }
  io.run();
}

Awaitable<Status> CreateAndFill(Run& run) {
  TopicOptions topic;
  topic.partitions = run.options.partitions;
  Status created =
      co_await run.bus.CreateTopic(run.topic, topic, Deadline::After(RealClock(), kCallTimeout));
  if (!created.ok()) co_return created;
  if (run.options.scenario != BusScenario::kSub) co_return OkStatus();
  // sub drains a backlog: publish it before the clock starts.
  std::uint64_t n = 0;
  while (n < run.options.msgs) {
    std::vector<Message> batch;
    while (n < run.options.msgs && batch.size() < kFillBatch) {
      batch.push_back(MakeMessage(run, n, NowNanos()));
      ++n;
    }
    Result<std::vector<PublishResult>> stored = co_await run.bus.PublishBatch(
        run.topic, std::move(batch), {}, Deadline::After(RealClock(), kCallTimeout));
    if (!stored.ok()) co_return stored.status();
  }
  co_return OkStatus();
}

std::string RandomStem() {
  std::random_device device;
  char text[17];
  std::snprintf(text, sizeof text, "%08x%08x", device(), device());
  return text;
}

}  // namespace

Result<BusScenario> ParseBusScenario(std::string_view name) {
  if (name == "pub") return BusScenario::kPub;
  if (name == "sub") return BusScenario::kSub;
  if (name == "pubsub") return BusScenario::kPubSub;
  if (name == "queue") return BusScenario::kQueue;
  if (name == "req") return BusScenario::kRequestReply;
  return InvalidArgumentError("unknown scenario '" + std::string(name) +
                              "' (pub, sub, pubsub, queue, req)");
}

std::string_view BusScenarioName(BusScenario scenario) {
  switch (scenario) {
    case BusScenario::kPub:
      return "pub";
    case BusScenario::kSub:
      return "sub";
    case BusScenario::kPubSub:
      return "pubsub";
    case BusScenario::kQueue:
      return "queue";
    case BusScenario::kRequestReply:
      return "req";
  }
  return "?";
}

Result<BusBenchResult> RunBusBench(const BusBenchOptions& options) {
  if (options.producers < 1 || options.consumers < 1 || options.msgs == 0 ||
      options.in_flight == 0) {
    return InvalidArgumentError("producers, consumers, msgs and in-flight must be at least 1");
  }
  if (options.batch == 0) return InvalidArgumentError("batch must be at least 1");
  if (options.batch > 1 && options.scenario == BusScenario::kRequestReply) {
    return InvalidArgumentError("a request is one message: batch applies to publishes, not req");
  }
  if (options.batch > 1 && options.scenario == BusScenario::kSub) {
    return InvalidArgumentError("sub publishes its backlog before the clock starts: no batch");
  }
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<Bus> bus, Bus::Open(options.url));
  std::uint64_t target = options.msgs;
  if (options.scenario == BusScenario::kPubSub)
    target *= static_cast<std::uint64_t>(options.consumers);
  Run run(options, *bus, target);
  run.per_client = options.bus_per_client.value_or(options.url.starts_with("junction://"));
  run.stem = RandomStem();
  run.topic = options.topic.empty()
                  ? "bench." + std::string(BusScenarioName(options.scenario)) + "." + run.stem
                  : options.topic;
  if (Status s = RunSync(CreateAndFill(run)); !s.ok()) {
    (void)RunSync(bus->Close());
    return s;
  }

  BusBenchResult result;
  result.topic = run.topic;
  result.bus_per_client = run.per_client;
  bool consumers_run = options.scenario != BusScenario::kPub;
  int consumer_count = consumers_run ? options.consumers : 0;
  std::vector<std::unique_ptr<obs::LatencyHistogram>> histograms;
  for (int i = 0; i < options.producers + consumer_count; ++i) {
    histograms.push_back(std::make_unique<obs::LatencyHistogram>());
  }
  std::vector<std::thread> threads;
  // Consumers (responders) first: an ephemeral subscription sees only what
  // is published after it exists.
  for (int i = 0; i < consumer_count; ++i) {
    threads.emplace_back([&run, &options, histogram = histograms[options.producers + i].get()] {
      RunClient(run, 1, [&](Bus& bus) {
        return options.scenario == BusScenario::kRequestReply ? RespondLoop(run, bus)
                                                              : ConsumeLoop(run, bus, *histogram);
      });
    });
  }
  auto ready_by = Steady::now() + std::chrono::seconds(30);
  while (run.ready.load() < consumer_count && !run.stop && Steady::now() < ready_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (run.ready.load() < consumer_count && !run.stop) {
    run.Failed(DeadlineExceededError("consumers did not subscribe within 30 s"));
    run.stop = true;
  }
  run.start_nanos = NowNanos();
  bool producers_run = options.scenario != BusScenario::kSub;
  for (int i = 0; producers_run && i < options.producers && !run.stop; ++i) {
    threads.emplace_back([&run, &options, histogram = histograms[i].get()] {
      RunClient(run, options.in_flight, [&](Bus& bus) {
        return options.batch > 1 ? ProduceBatchLoop(run, bus, *histogram)
                                 : ProduceLoop(run, bus, *histogram);
      });
    });
  }

  std::uint64_t last_done = 0;
  auto last_change = Steady::now();
  while (!run.finished()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    std::uint64_t done = run.done.load();
    if (options.progress) {
      options.progress({done, target, (NowNanos() - run.start_nanos) / 1e9});
    }
    if (done != last_done) {
      last_done = done;
      last_change = Steady::now();
    } else if (Steady::now() - last_change > options.stall_timeout) {
      run.Failed(DeadlineExceededError("no progress for " +
                                       std::to_string(options.stall_timeout.count()) + " s"));
      run.stop = true;
    }
    // Every producer failed: nothing more will come.
    if (producers_run && run.next.load() >= options.msgs && run.errors.load() >= options.msgs) {
      run.stop = true;
    }
  }
  run.stop = true;
  for (std::thread& thread : threads) thread.join();
  std::int64_t end = run.end_nanos.load();
  if (end == 0) end = NowNanos();
  result.ops = run.done.load();
  result.errors = run.errors.load();
  result.seconds = (end - run.start_nanos) / 1e9;
  result.data_bytes = run.data_bytes.load();
  result.latency = std::make_unique<obs::LatencyHistogram>();
  for (const auto& histogram : histograms) result.latency->Merge(*histogram);
  switch (options.scenario) {
    case BusScenario::kPub:
      result.latency_of = "publish until acked";
      break;
    case BusScenario::kSub:
      result.latency_of = "";
      break;
    case BusScenario::kPubSub:
    case BusScenario::kQueue:
      result.latency_of = "send until received";
      break;
    case BusScenario::kRequestReply:
      result.latency_of = "request until reply";
      break;
  }
  if (options.size < 16 && options.scenario != BusScenario::kPub &&
      options.scenario != BusScenario::kRequestReply) {
    result.latency_of = "";  // no room for the send time
  }
  Status closed = RunSync(bus->Close());
  if (result.ops < target) {
    std::lock_guard lock(run.mutex);
    return UnavailableError(std::to_string(result.ops) + " of " + std::to_string(target) +
                            " operations completed; first error: " +
                            (run.first_error.empty() ? "none" : run.first_error));
  }
  if (!closed.ok()) return closed;
  return result;
}

}  // namespace junction::bench
