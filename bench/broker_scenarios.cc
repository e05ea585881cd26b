#include "bench/broker_scenarios.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "core/affinity.h"
#include "core/env.h"
#include "junction/bus.h"
#include "junction/clock.h"
#include "server/server.h"

namespace junction::bench {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kTopic = "bench";
constexpr std::string_view kGroup = "bench";
// Deliveries a consumer takes per NextBatch() round trip.
constexpr std::size_t kNextBatch = 64;
// How long a consumer's Next() waits before it looks at the stop flag again.
constexpr Duration kNextSlice = std::chrono::milliseconds(20);
// How long the consumers may take to catch up once publishing stopped.
constexpr auto kDrainTimeout = std::chrono::seconds(120);
constexpr auto kPoll = std::chrono::milliseconds(1);

double SecondsBetween(SteadyClock::time_point from, SteadyClock::time_point to) {
  return Seconds(to - from).count();
}

std::int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}

std::string FileUrl(const fs::path& dir, std::string_view fsync) {
  return "file://" + fs::absolute(dir).string() + "?fsync=" + std::string(fsync);
}

// A message of kBrokerMessageBytes of data; the first 8 bytes carry `stamp`.
Message MakeMessage(std::uint64_t seq, std::int64_t stamp = 0) {
  Message message;
  message.id = "m" + std::to_string(seq);
  message.source = "/bench";
  message.type = "bench";
  message.data.assign(kBrokerMessageBytes, 'v');
  std::memcpy(message.data.data(), &stamp, sizeof stamp);
  return message;
}

std::int64_t StampOf(const Message& message) {
  std::int64_t stamp = 0;
  if (message.data.size() >= sizeof stamp) std::memcpy(&stamp, message.data.data(), sizeof stamp);
  return stamp;
}

// An io_context on a thread of its own, named for `perf report --sort comm`.
// Stop() (or destruction) lets run() return once no work is left and joins:
// REQUIRES every coroutine on it to be finishing by then.
class IoThread {
 public:
  // `cpus`: Linux CPU ids to pin the thread to (checked by the caller); empty:
  // unpinned.
  explicit IoThread(const char* name, std::vector<int> cpus = {})
      : thread_([this, name, cpus = std::move(cpus)] {
          ::pthread_setname_np(::pthread_self(), name);
          if (!cpus.empty()) (void)PinThread(cpus);
          try {
            io_.run();
          } catch (const std::exception& e) {
            std::lock_guard lock(mutex_);
            error_ = InternalError(std::string("io thread: ") + e.what());
          }
        }) {}
  ~IoThread() { Stop(); }
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  asio::any_io_executor executor() { return io_.get_executor(); }
  void Stop() {
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }
  // An exception that escaped a handler (and stopped the thread), else OK.
  Status error() {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::mutex mutex_;
  Status error_;
  std::thread thread_;  // last: starts once the rest exists
};

// Counts the I/O of a broker directory in two parts: the partition logs
// (paths with a "topics" component) and everything else (the group state).
class SplitCountingEnv final : public EnvWrapper {
 public:
  explicit SplitCountingEnv(Env& base) : EnvWrapper(base), topics_(base), state_(base) {}

  IoCounters topics() const { return topics_.Snapshot(); }
  IoCounters state() const { return state_.Snapshot(); }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const fs::path& path) override {
    return For(path).NewWritableFile(path);
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const fs::path& path) override {
    return For(path).NewAppendableFile(path);
  }
  Status SyncDir(const fs::path& dir) override { return For(dir).SyncDir(dir); }

 private:
  CountingEnv& For(const fs::path& path) {
    for (const fs::path& part : path) {
      if (part == "topics") return topics_;
    }
    return state_;
  }

  CountingEnv topics_;
  CountingEnv state_;
};

// Runs the coroutine `fn` returns on `executor` and blocks until it ends.
template <typename F>
Status BlockOn(const asio::any_io_executor& executor, F fn) {
  try {
    return asio::co_spawn(executor, std::move(fn), asio::use_future).get();
  } catch (const std::exception& e) {
    return InternalError(std::string("benchmark coroutine: ") + e.what());
  }
}

// What the publisher and consumer coroutines count, read by the orchestrating
// thread.
struct Flow {
  std::atomic<bool> stop_publishing{false};
  std::atomic<bool> stop_consuming{false};
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> acked{0};
  std::atomic<std::uint64_t> redelivered{0};
  std::atomic<std::int64_t> outstanding{0};  // coroutines spawned and not finished
  std::atomic<std::int64_t> last_publish_ns{0};
  std::atomic<std::int64_t> last_ack_ns{0};
  std::mutex mutex;
  Status error;  // the first failure; guarded by mutex

  void Fail(Status status) {
    std::lock_guard lock(mutex);
    if (error.ok()) error = std::move(status);
  }
  Status FirstError() {
    std::lock_guard lock(mutex);
    return error;
  }
  bool failed() {
    std::lock_guard lock(mutex);
    return !error.ok();
  }
};

// Spawns `task` on `executor`, counted in flow.outstanding; an exception
// becomes flow's error.
void Spawn(const asio::any_io_executor& executor, Flow& flow, asio::awaitable<void> task) {
  ++flow.outstanding;
  asio::co_spawn(executor, std::move(task), [&flow](const std::exception_ptr& e) {
    if (e) flow.Fail(InternalError(DescribeException(e)));
    --flow.outstanding;
  });
}

// Blocks until `done()` or flow failed; DeadlineExceeded after `timeout`.
template <typename Done>
Status WaitFor(Flow& flow, Done done, std::chrono::seconds timeout, std::string_view what) {
  auto give_up = SteadyClock::now() + timeout;
  while (!done()) {
    if (flow.failed()) return flow.FirstError();
    if (SteadyClock::now() > give_up) {
      return DeadlineExceededError(std::string(what) + ": not done after " +
                                   std::to_string(timeout.count()) + " s");
    }
    std::this_thread::sleep_for(kPoll);
  }
  return flow.FirstError();
}

// Acks `delivery` without waiting for it: the ack's own awaitable (which
// needs nothing of the Delivery) is spawned with a completion handler, as a
// callback user would, counted in flow.outstanding.
void AckOne(const Delivery& delivery, const asio::any_io_executor& executor, Flow& flow) {
  ++flow.outstanding;
  asio::co_spawn(executor, delivery.Ack(),
                 [&flow](const std::exception_ptr& e, const Status& acked) {
                   if (e) {
                     flow.Fail(InternalError(DescribeException(e)));
                   } else if (!acked.ok()) {
                     flow.Fail(acked.WithContext("ack"));
                   } else {
                     ++flow.acked;
                     flow.last_ack_ns = NowNanos();
                   }
                   --flow.outstanding;
                 });
}

// Takes deliveries until flow.stop_consuming and acks each (AckOne).
// `on_receipt` sees each delivery first (on this thread).
template <typename OnReceipt>
asio::awaitable<void> ConsumeLoop(Subscription& subscription, Flow& flow, OnReceipt on_receipt) {
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  while (!flow.stop_consuming) {
    Result<std::vector<Delivery>> got =
        co_await subscription.NextBatch(kNextBatch, Deadline::After(RealClock(), kNextSlice));
    if (!got.ok()) {
      if (got.status().code() == StatusCode::kDeadlineExceeded) continue;
      if (got.status().code() == StatusCode::kCancelled && flow.stop_consuming) break;
      flow.Fail(got.status().WithContext("Next"));
      co_return;
    }
    for (Delivery& delivery : *got) {
      ++flow.received;
      if (delivery.attempt() > DeliveryCount(1)) ++flow.redelivered;
      on_receipt(delivery);
      AckOne(delivery, executor, flow);
    }
  }
}

Status Subscribe(Bus& bus, const asio::any_io_executor& executor, std::string_view topic,
                 const SubscribeOptions& options,
                 std::vector<std::unique_ptr<Subscription>>& subscriptions) {
  return BlockOn(executor, [&]() -> asio::awaitable<Status> {
    for (auto& subscription : subscriptions) {
      Result<std::unique_ptr<Subscription>> joined =
          co_await bus.Subscribe(topic, options, Deadline::Infinite());
      if (!joined.ok()) co_return joined.status().WithContext("subscribe");
      subscription = std::move(*joined);
    }
    co_return OkStatus();
  });
}

Status CreateTopic(Bus& bus, const asio::any_io_executor& executor, const TopicOptions& options) {
  return BlockOn(executor, [&]() -> asio::awaitable<Status> {
    co_return co_await bus.CreateTopic(kTopic, options, Deadline::Infinite());
  });
}

Status CloseBus(Bus& bus, const asio::any_io_executor& executor) {
  return BlockOn(executor, [&]() -> asio::awaitable<Status> { co_return co_await bus.Close(); });
}

std::uint64_t DirectoryBytes(const fs::path& dir) {
  std::uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && entry.path().extension() == ".log") {
      bytes += entry.file_size(ec);
    }
  }
  return bytes;
}

// One of `live` publishers: one Publish at a time until told to stop.
asio::awaitable<void> PublishLoop(Bus& bus, Flow& flow, std::uint64_t& next_seq, int keys,
                                  std::atomic<int>& live) {
  struct Leaving {
    std::atomic<int>& live;
    ~Leaving() { --live; }
  } leaving{live};
  while (!flow.stop_publishing && !flow.failed()) {
    Message message = MakeMessage(next_seq);
    if (keys > 0) message.key = "k" + std::to_string(next_seq % static_cast<std::uint64_t>(keys));
    ++next_seq;
    Result<PublishResult> published = co_await bus.Publish(kTopic, std::move(message));
    if (!published.ok()) {
      flow.Fail(published.status().WithContext("publish"));
      co_return;
    }
    ++flow.published;
    flow.last_publish_ns = NowNanos();
  }
}

// Stops the consumers, waits for every coroutine, leaves the group and closes
// the bus; the first error of the run wins.
Status Finish(Bus& bus, Flow& flow, IoThread& publisher, IoThread& consumer,
              std::vector<std::unique_ptr<Subscription>>& subscriptions, Status status) {
  flow.stop_publishing = true;
  flow.stop_consuming = true;
  Status quiet = WaitFor(
      flow, [&] { return flow.outstanding == 0; }, std::chrono::seconds(60), "stopping");
  if (status.ok()) status = quiet;
  if (status.ok()) status = publisher.error();
  if (status.ok()) status = consumer.error();
  subscriptions.clear();
  Status closed = CloseBus(bus, consumer.executor());
  if (status.ok()) status = closed;
  return status;
}

std::uint64_t ReadStatusField(std::string_view field, bool& found) {
  std::ifstream in("/proc/self/status");
  std::string line;
  found = false;
  while (std::getline(in, line)) {
    if (!line.starts_with(field) || line.size() <= field.size() || line[field.size()] != ':') {
      continue;
    }
    found = true;
    return std::stoull(line.substr(field.size() + 1)) * 1024;  // "VmRSS:   1234 kB"
  }
  return 0;
}

Result<std::uint64_t> StatusBytes(std::string_view field) {
  bool found = false;
  std::uint64_t bytes = 0;
  try {
    bytes = ReadStatusField(field, found);
  } catch (const std::exception& e) {
    return InternalError("/proc/self/status " + std::string(field) + ": " + e.what());
  }
  if (!found) return UnavailableError("/proc/self/status has no " + std::string(field));
  return bytes;
}

// Resets VmHWM to the current RSS (Linux >= 4.0).
bool ResetPeakResident() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

Result<std::uint64_t> ResidentBytes() { return StatusBytes("VmRSS"); }
Result<std::uint64_t> PeakResidentBytes() { return StatusBytes("VmHWM"); }

void ThroughputRun::Add(const ThroughputRun& other) {
  published += other.published;
  acked += other.acked;
  redelivered += other.redelivered;
  publish_seconds += other.publish_seconds;
  seconds += other.seconds;
  cpu_seconds += other.cpu_seconds;
  for (auto [into, from] : {std::pair{&io, &other.io}, std::pair{&state_io, &other.state_io}}) {
    into->segment_writes += from->segment_writes;
    into->segment_bytes += from->segment_bytes;
    into->segment_syncs += from->segment_syncs;
    into->other_syncs += from->other_syncs;
  }
  stored_bytes = other.stored_bytes;
}

Result<ThroughputRun> RunBrokerThroughput(const fs::path& dir, const ThroughputLoad& load) {
  JUNCTION_CHECK(load.partitions >= 1 && load.consumers >= 1 && load.publishers >= 1);
  JUNCTION_CHECK(!load.via_daemon || (!load.on_bus_executor && load.shard_cpus.empty()));
  SplitCountingEnv env(PosixEnv());
  BusOptions options;
  options.env = &env;
  std::unique_ptr<server::Server> daemon;
  if (load.via_daemon) {
    server::ServerOptions server_options;
    server_options.bus_url = FileUrl(dir, "always");
    server_options.env = &env;
    server_options.listen = "127.0.0.1:0";
    server_options.shards = 2;
    server_options.bus.blocking_cpus = load.blocking_cpus;
    JUNCTION_ASSIGN_OR_RETURN(daemon, server::Server::Start(server_options));
  }
  // Stopped after the bus below is gone (declared first, destroyed last).
  struct StopLast {
    std::unique_ptr<server::Server>& daemon;
    ~StopLast() {
      if (daemon) (void)daemon->Stop();
    }
  } stop_last{daemon};
  IoThread publisher("jn-bench-pub");
  if (!load.shard_cpus.empty()) JUNCTION_RETURN_IF_ERROR(CheckCpus(load.shard_cpus));
  IoThread consumer(load.on_bus_executor ? "jn-bench-all" : "jn-bench-con",
                    load.on_bus_executor ? load.shard_cpus : std::vector<int>());
  options.blocking_cpus = load.blocking_cpus;
  if (!load.on_bus_executor) options.shard_cpus = load.shard_cpus;
  asio::any_io_executor publish_on = publisher.executor();
  std::unique_ptr<Bus> bus;
  if (load.on_bus_executor) {
    // Opened on that thread, as BusOptions::executor requires of a running one.
    options.executor = consumer.executor();
    publish_on = consumer.executor();
    JUNCTION_RETURN_IF_ERROR(BlockOn(consumer.executor(), [&]() -> asio::awaitable<Status> {
      Result<std::unique_ptr<Bus>> opened = Bus::Open(FileUrl(dir, "always"), options);
      if (!opened.ok()) co_return opened.status();
      bus = std::move(*opened);
      co_return OkStatus();
    }));
  } else if (daemon) {
    JUNCTION_ASSIGN_OR_RETURN(bus, Bus::Open("junction://" + daemon->address()));
  } else {
    JUNCTION_ASSIGN_OR_RETURN(bus, Bus::Open(FileUrl(dir, "always"), options));
  }
  // Destroyed while the threads still run (on the bus's executor its last
  // step runs there).
  struct DropFirst {
    std::unique_ptr<Bus>& bus;
    ~DropFirst() { bus.reset(); }
  } drop_first{bus};
  Flow flow;
  std::vector<std::unique_ptr<Subscription>> subscriptions(load.consumers);
  TopicOptions topic;
  topic.partitions = load.partitions;
  SubscribeOptions member;
  member.group = kGroup;
  Status status = CreateTopic(*bus, consumer.executor(), topic);
  if (status.ok()) status = Subscribe(*bus, consumer.executor(), kTopic, member, subscriptions);
  if (!status.ok()) return Finish(*bus, flow, publisher, consumer, subscriptions, status);

  for (auto& subscription : subscriptions) {
    Spawn(consumer.executor(), flow, ConsumeLoop(*subscription, flow, [](const Delivery&) {}));
  }
  IoCounters topics_before = env.topics();
  IoCounters state_before = env.state();
  std::uint64_t next_seq = 0;  // used on the publisher thread only
  std::int64_t start_ns = NowNanos();
  const double cpu_before = ProcessCpuSeconds();
  std::atomic<int> publishing{load.publishers};
  for (int i = 0; i < load.publishers; ++i) {
    Spawn(publish_on, flow, PublishLoop(*bus, flow, next_seq, load.keys, publishing));
  }
  std::this_thread::sleep_for(load.duration);
  flow.stop_publishing = true;
  status = WaitFor(
      flow, [&] { return publishing == 0; }, std::chrono::seconds(60), "publishers");
  if (status.ok()) {
    status = WaitFor(
        flow, [&] { return flow.acked >= flow.published; }, kDrainTimeout,
        "consumers acking every published message");
  }
  ThroughputRun run;
  run.cpu_seconds = ProcessCpuSeconds() - cpu_before;
  run.published = flow.published;
  run.acked = flow.acked;
  run.redelivered = flow.redelivered;
  run.publish_seconds = static_cast<double>(flow.last_publish_ns - start_ns) / 1e9;
  run.seconds = static_cast<double>(flow.last_ack_ns - start_ns) / 1e9;
  status = Finish(*bus, flow, publisher, consumer, subscriptions, status);
  run.io = env.topics().Since(topics_before);
  run.state_io = env.state().Since(state_before);
  run.stored_bytes = DirectoryBytes(dir / "topics");
  if (!status.ok()) return status;
  return run;
}

Result<LatencyRun> RunBrokerLatency(const fs::path& dir, const LatencyLoad& load) {
  JUNCTION_CHECK(load.rate > 0 && load.duration > Seconds::zero());
  SplitCountingEnv env(PosixEnv());
  BusOptions options;
  options.env = &env;
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<Bus> bus, Bus::Open(FileUrl(dir, load.fsync), options));
  Flow flow;
  IoThread publisher("jn-bench-pub");
  IoThread consumer("jn-bench-con");
  std::vector<std::unique_ptr<Subscription>> subscriptions(1);
  SubscribeOptions member;
  member.group = kGroup;
  Status status = CreateTopic(*bus, consumer.executor(), TopicOptions{});
  if (status.ok()) status = Subscribe(*bus, consumer.executor(), kTopic, member, subscriptions);
  if (!status.ok()) return Finish(*bus, flow, publisher, consumer, subscriptions, status);

  const auto total = static_cast<std::uint64_t>(std::llround(load.rate * load.duration.count()));
  const auto warmup = static_cast<std::uint64_t>(static_cast<double>(total) * load.warmup_fraction);
  std::vector<double> micros;  // consumer thread only, until it stopped
  micros.reserve(total);
  std::int64_t last_receipt_ns = 0;  // consumer thread only, until it stopped
  const IoCounters topics_before = env.topics();
  const IoCounters state_before = env.state();
  const std::int64_t start_ns = NowNanos();
  Spawn(consumer.executor(), flow,
        ConsumeLoop(*subscriptions.front(), flow, [&](const Delivery& delivery) {
          std::int64_t now = NowNanos();
          last_receipt_ns = now;
          // The id is "m<seq>": drop the warm-up by sequence number.
          std::uint64_t seq = std::stoull(delivery.message().id.substr(1));
          if (seq >= warmup)
            micros.push_back(static_cast<double>(now - StampOf(delivery.message())) / 1e3);
        }));

  std::atomic<std::uint64_t> max_outstanding{0};
  std::atomic<std::int64_t> in_flight{0};
  auto publish_one = [&](std::uint64_t seq) -> asio::awaitable<void> {
    std::int64_t live = ++in_flight;
    if (static_cast<std::uint64_t>(live) > max_outstanding) max_outstanding = live;
    Result<PublishResult> published = co_await bus->Publish(kTopic, MakeMessage(seq, NowNanos()));
    --in_flight;
    if (!published.ok()) {
      flow.Fail(published.status().WithContext("publish"));
      co_return;
    }
    ++flow.published;
    flow.last_publish_ns = NowNanos();
  };
  double pacing_seconds = 0;
  auto pace = [&]() -> asio::awaitable<Status> {
    asio::any_io_executor executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor);
    const auto interval = std::chrono::duration_cast<SteadyClock::duration>(Seconds(1 / load.rate));
    const SteadyClock::time_point start = SteadyClock::now();
    std::uint64_t seq = 0;
    while (seq < total && !flow.failed()) {
      SteadyClock::time_point now = SteadyClock::now();
      SteadyClock::time_point due = start + interval * static_cast<std::int64_t>(seq);
      if (due > now) {
        timer.expires_at(due);
        co_await timer.async_wait(asio::use_awaitable);
        continue;
      }
      for (; seq < total && start + interval * static_cast<std::int64_t>(seq) <= now; ++seq) {
        Spawn(executor, flow, publish_one(seq));
      }
      // Let the publishes just spawned (and completions) run before pacing on.
      co_await asio::post(executor, asio::use_awaitable);
    }
    pacing_seconds = SecondsBetween(start, SteadyClock::now());
    co_return OkStatus();
  };
  status = BlockOn(publisher.executor(), pace);
  if (status.ok()) {
    status = WaitFor(
        flow, [&] { return flow.published >= total; }, std::chrono::seconds(60), "publishes");
  }
  if (status.ok()) {
    status = WaitFor(
        flow, [&] { return flow.received >= total && flow.acked >= total; }, kDrainTimeout,
        "consumer receiving every message");
  }
  status = Finish(*bus, flow, publisher, consumer, subscriptions, status);
  if (!status.ok()) return status;
  LatencyRun run;
  run.published = flow.published;
  run.received = flow.received;
  run.offered_per_second = pacing_seconds > 0 ? static_cast<double>(total) / pacing_seconds : 0;
  run.max_outstanding = max_outstanding;
  run.io = env.topics().Since(topics_before);
  run.state_io = env.state().Since(state_before);
  double stored_seconds = static_cast<double>(flow.last_publish_ns - start_ns) / 1e9;
  double delivered_seconds = static_cast<double>(last_receipt_ns - start_ns) / 1e9;
  if (stored_seconds > 0)
    run.stored_per_second = static_cast<double>(run.published) / stored_seconds;
  if (delivered_seconds > 0) {
    run.delivered_per_second = static_cast<double>(run.received) / delivered_seconds;
  }
  std::sort(micros.begin(), micros.end());
  run.micros = std::move(micros);
  return run;
}

Result<std::vector<double>> RunFdatasyncLatency(const fs::path& file, std::size_t bytes,
                                                Seconds duration) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "open " + file.string());
  std::vector<char> buffer(std::max<std::size_t>(bytes, 1), 'v');
  std::vector<double> micros;
  Status error;
  auto start = SteadyClock::now();
  auto end = start + std::chrono::duration_cast<SteadyClock::duration>(duration);
  while (SteadyClock::now() < end) {
    auto before = SteadyClock::now();
    if (::write(fd, buffer.data(), buffer.size()) != static_cast<ssize_t>(buffer.size())) {
      error = ErrnoToStatus(errno, "write " + file.string());
      break;
    }
    if (::fdatasync(fd) != 0) {
      error = ErrnoToStatus(errno, "fdatasync " + file.string());
      break;
    }
    micros.push_back(
        std::chrono::duration<double, std::micro>(SteadyClock::now() - before).count());
  }
  ::close(fd);
  ::unlink(file.c_str());
  if (!error.ok()) return error;
  std::sort(micros.begin(), micros.end());
  return micros;
}

Result<MemoryRun> RunBrokerMemory(const fs::path& dir, const MemoryLoad& load) {
  JUNCTION_CHECK(load.batch >= 1 && load.in_flight >= 1);
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<Bus> bus, Bus::Open(FileUrl(dir, "never")));
  Flow flow;
  IoThread publisher("jn-bench-pub");
  IoThread consumer("jn-bench-con");
  std::vector<std::unique_ptr<Subscription>> subscriptions(1);
  TopicOptions topic;
  if (load.dedupe_window) topic.dedupe_window = *load.dedupe_window;
  SubscribeOptions member;
  member.group = "stalled";
  member.max_in_flight = 256;
  Status status = CreateTopic(*bus, consumer.executor(), topic);
  if (status.ok()) status = Subscribe(*bus, consumer.executor(), kTopic, member, subscriptions);
  if (!status.ok()) return Finish(*bus, flow, publisher, consumer, subscriptions, status);

  // The stalled consumer: takes what it gets and never acks.
  std::vector<Delivery> held;  // consumer thread only, until it stopped
  auto stall = [&]() -> asio::awaitable<void> {
    while (!flow.stop_consuming) {
      Result<Delivery> got =
          co_await subscriptions.front()->Next(Deadline::After(RealClock(), kNextSlice));
      if (got.ok()) {
        held.push_back(std::move(*got));
        ++flow.received;
      } else if (got.status().code() != StatusCode::kDeadlineExceeded) {
        if (!flow.stop_consuming) flow.Fail(got.status().WithContext("Next"));
        co_return;
      }
    }
  };
  Spawn(consumer.executor(), flow, stall());

  ::malloc_trim(0);  // what earlier scenarios freed goes back to the system
  MemoryRun run;
  JUNCTION_ASSIGN_OR_RETURN(run.rss_before, ResidentBytes());
  run.peak_reset = ResetPeakResident();
  std::uint64_t next_batch = 0;  // publisher thread only
  const std::uint64_t batches = (load.messages + load.batch - 1) / load.batch;
  auto fill = [&]() -> asio::awaitable<void> {
    while (!flow.failed() && !flow.stop_publishing) {
      std::uint64_t b = next_batch++;
      if (b >= batches) break;
      std::uint64_t first = b * load.batch;
      std::uint64_t count = std::min<std::uint64_t>(load.batch, load.messages - first);
      std::vector<Message> messages;
      messages.reserve(count);
      PublishOptions options;  // named: GCC 12 mis-handles aggregate temporaries in co_await
      for (std::uint64_t i = 0; i < count; ++i) messages.push_back(MakeMessage(first + i));
      Result<std::vector<PublishResult>> published =
          co_await bus->PublishBatch(kTopic, std::move(messages), options, Deadline::Infinite());
      if (!published.ok()) {
        flow.Fail(published.status().WithContext("PublishBatch"));
        co_return;
      }
      flow.published += count;
    }
  };
  auto start = SteadyClock::now();
  for (int i = 0; i < load.in_flight; ++i) Spawn(publisher.executor(), flow, fill());
  status = WaitFor(
      flow, [&] { return flow.published >= load.messages; }, std::chrono::seconds(3600),
      "filling the backlog");
  run.fill_seconds = SecondsBetween(start, SteadyClock::now());
  if (status.ok()) {
    status = WaitFor(
        flow, [&] { return flow.received >= member.max_in_flight; }, std::chrono::seconds(10),
        "the stalled consumer taking its credit");
  }
  if (status.ok()) {
    Result<std::uint64_t> rss = ResidentBytes();
    Result<std::uint64_t> peak = PeakResidentBytes();
    status = rss.ok() ? peak.status() : rss.status();
    if (status.ok()) {
      run.rss_after = *rss;
      run.peak = *peak;
    }
  }
  if (status.ok()) {
    status = BlockOn(consumer.executor(), [&]() -> asio::awaitable<Status> {
      Result<GroupInfo> info = co_await bus->DescribeGroup(kTopic, "stalled", Deadline::Infinite());
      if (!info.ok()) co_return info.status();
      run.backlog = info->backlog;
      run.in_flight = info->in_flight;
      co_return OkStatus();
    });
  }
  run.published = flow.published;
  run.held = flow.received;
  status = Finish(*bus, flow, publisher, consumer, subscriptions, status);
  held.clear();
  if (!status.ok()) return status;
  return run;
}

}  // namespace junction::bench
