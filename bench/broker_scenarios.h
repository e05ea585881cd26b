#pragma once

// The kernels of the broker benchmarks (bench/README.md, "broker"): each opens
// a file:// Bus in a directory of its own, drives it from a publisher thread
// and a consumer thread (each an io_context running coroutines), and returns
// what it counted. `junction bench broker` (broker_suite.h) puts them beside
// their peers.
//
// Threads: every Run* call blocks the calling thread, which only orchestrates
// (it sleeps while the publisher and consumer threads work). Besides those two
// the bus runs its shard thread and its one-thread blocking pool.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bench/counting_env.h"
#include "bench/log_scenarios.h"
#include "junction/result.h"

namespace junction::bench {

// Bytes of Message::data in every benchmark message (id, source and type come
// on top: "m<n>", "/bench", "bench").
inline constexpr std::size_t kBrokerMessageBytes = 100;

// The nearest-rank percentile of `sorted` (ascending), q in [0, 1]; 0 when empty.
double Percentile(const std::vector<double>& sorted, double q);

struct ThroughputLoad {
  std::uint32_t partitions = 1;
  int consumers = 1;    // members of one group, each a coroutine on the consumer thread
  int publishers = 64;  // coroutines awaiting one Publish of one message at a time
  Seconds duration{3};  // publishing stops after this long
  // The broker, the publishers and the consumers on one thread: the bus runs
  // on the consumer thread's io_context (BusOptions::executor), as the log
  // benchmark's appenders run on the log's shard.
  bool on_bus_executor = false;
  // 0: messages without a key (the broker places them, sticky); N: message
  // n has the key "k<n % N>" (murmur2 placement, each partition its own
  // group commit).
  int keys = 0;
  // Linux CPU ids; empty: the scheduler's choice. `shard_cpus`: the thread
  // that runs the broker (the consumer thread when on_bus_executor, else the
  // bus's own shard: BusOptions::shard_cpus). `blocking_cpus`: the bus's
  // write and fdatasync threads (BusOptions::blocking_cpus).
  std::vector<int> shard_cpus{};
  std::vector<int> blocking_cpus{};
  // The broker behind a junctiond started in this process (2 shards), the
  // clients reaching it over loopback with junction:// (excludes
  // on_bus_executor and the CPU sets).
  bool via_daemon = false;
};

struct ThroughputRun {
  std::uint64_t published = 0;     // Publish calls that completed OK
  std::uint64_t acked = 0;         // Ack calls that completed OK
  std::uint64_t redelivered = 0;   // deliveries with attempt() > 1
  double publish_seconds = 0;      // first Publish to the last completion
  double seconds = 0;              // first Publish to the last Ack
  double cpu_seconds = 0;          // of the process, first Publish to the last Ack (about)
  IoCounters io;                   // of the partition logs (topics/)
  IoCounters state_io;             // of the group state (state/: its logs count as segments)
  std::uint64_t stored_bytes = 0;  // size of the partition logs afterwards
  double acked_per_second() const { return seconds > 0 ? acked / seconds : 0; }
  double published_per_second() const {
    return publish_seconds > 0 ? published / publish_seconds : 0;
  }
  // Sums counts and times (stored_bytes: of the last run).
  void Add(const ThroughputRun& other);
};

// publish -> deliver -> ack through file://`dir`?fsync=always: one topic of
// load.partitions partitions, one group of load.consumers members subscribed
// before the first publish. Each consumer takes deliveries with Next() and
// acks each one in a coroutine of its own (so its next Next() does not wait
// for the ack). After publishing stops the run waits until every published
// message is acked. The Bus gets an Env that counts writes and fdatasyncs
// (forwarding to PosixEnv); its other options are the defaults.
Result<ThroughputRun> RunBrokerThroughput(const std::filesystem::path& dir,
                                          const ThroughputLoad& load);

struct LatencyLoad {
  std::string fsync = "always";  // the URL's fsync= option
  double rate = 10000;           // messages per second offered
  Seconds duration{3};
  double warmup_fraction = 0.1;  // latencies of this first part of the run are dropped
};

struct LatencyRun {
  std::vector<double> micros;  // publish start to receipt, ascending, without the warm-up
  std::uint64_t published = 0;
  std::uint64_t received = 0;
  double offered_per_second = 0;      // messages issued over the pacing time
  std::uint64_t max_outstanding = 0;  // publishes in flight at once, at most
  double stored_per_second = 0;       // published / (first publish to last completion)
  double delivered_per_second = 0;    // received / (first publish to last receipt)
  IoCounters io;                      // partition logs, whole run
  IoCounters state_io;                // group state, whole run
};

// One message every 1/load.rate s, issued on schedule whatever the earlier
// publishes are doing (open loop), each carrying steady_clock::now() taken
// just before its Publish call in the first 8 bytes of its data; one consumer
// (group member) notes now - that on receipt and acks in a coroutine of its own.
Result<LatencyRun> RunBrokerLatency(const std::filesystem::path& dir, const LatencyLoad& load);

// write() of `bytes` then fdatasync(), appended to a new file at `file`, for
// `duration`; each pair timed. The file is removed afterwards. Ascending micros.
Result<std::vector<double>> RunFdatasyncLatency(const std::filesystem::path& file,
                                                std::size_t bytes, Seconds duration);

struct MemoryRun {
  std::uint64_t rss_before = 0;  // bytes, after the subscribe, before the first publish
  std::uint64_t rss_after = 0;   // bytes, after the last publish completed
  std::uint64_t peak = 0;        // VmHWM: since the reset before the fill, else process-wide
  bool peak_reset = false;       // the reset (/proc/self/clear_refs) worked
  std::uint64_t published = 0;
  double fill_seconds = 0;
  std::uint64_t backlog = 0;    // DescribeGroup after the fill
  std::uint64_t in_flight = 0;  // DescribeGroup after the fill
  std::uint64_t held = 0;       // deliveries the stalled consumer got
};

struct MemoryLoad {
  std::uint64_t messages = 10'000'000;
  std::size_t batch = 1000;  // messages per PublishBatch
  int in_flight = 2;         // PublishBatch calls outstanding at once
  // TopicOptions::dedupe_window of the topic; nullopt: the default.
  std::optional<Duration> dedupe_window;
};

// file://`dir`?fsync=never: one group whose only member (max_in_flight 256)
// takes what it is given and never acks, while load.messages are published.
Result<MemoryRun> RunBrokerMemory(const std::filesystem::path& dir, const MemoryLoad& load);

// VmRSS / VmHWM of this process in bytes (from /proc/self/status).
Result<std::uint64_t> ResidentBytes();
Result<std::uint64_t> PeakResidentBytes();

}  // namespace junction::bench
