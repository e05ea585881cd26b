#pragma once

// `junction bench pub|sub|pubsub|queue|req`: a load against any Bus URL
// (mem://, file://, junction://, and the external engines once their
// transports exist), the same way for each, so that figures of different
// transports compare.
//
// Producers and consumers are threads of their own, each running an
// io_context (as separate client processes would run their own loops). On
// junction:// each opens a Bus of its own on that io_context
// (BusOptions::executor: one connection per client, no thread hop between
// the client and its socket); elsewhere they share one Bus
// (`bus_per_client` chooses). Latency is measured from the *intended* send time: with
// --rate, message n of a producer is due at start + n / rate and a late send
// counts its lateness (no coordinated omission); without a rate a message is
// due when a window slot frees. End-to-end latencies use the send time that
// the producer writes into the first 8 bytes of the message (same process,
// steady clock).
//
// Blocking; runs on the calling thread plus the threads it starts.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bench/log_scenarios.h"  // Seconds
#include "junction/result.h"
#include "obs/latency_histogram.h"

namespace junction::bench {

enum class BusScenario : std::uint8_t {
  kPub,           // publishes only; latency: until the publish is acked (stored)
  kSub,           // drains a backlog published before the clock starts; no latency
  kPubSub,        // fan-out: every consumer an ephemeral subscription gets every message
  kQueue,         // durable: a group of consumers, each delivery acked
  kRequestReply,  // producers request, consumers answer (echo)
};

Result<BusScenario> ParseBusScenario(std::string_view name);  // pub, sub, pubsub, queue, req
std::string_view BusScenarioName(BusScenario scenario);

struct BusBenchProgress {
  std::uint64_t done = 0;   // completed operations (see BusBenchResult::ops)
  std::uint64_t total = 0;  // operations the run waits for
  double seconds = 0;       // since the clock started
};

struct BusBenchOptions {
  std::string url;
  BusScenario scenario = BusScenario::kQueue;
  std::uint64_t msgs = 100'000;  // messages published (requests sent)
  std::size_t size = 100;        // bytes of data per message; >= 16 carries the send time
  int producers = 1;
  int consumers = 1;
  std::uint32_t partitions = 1;  // of the topic the run creates
  // Publishes (requests) each producer keeps in flight.
  std::uint32_t in_flight = 64;
  // Messages per publish call: above 1 each call is one PublishBatch of
  // `batch` messages (the last may be shorter), built once its last message
  // is due; every message's latency still counts from its own intended time.
  // Not for req.
  std::uint32_t batch = 1;
  double rate = 0;  // intended messages per second over all producers; 0: unpaced
  // Each producer and consumer opens a Bus of its own on its thread's
  // io_context (true), or all share one Bus (false); unset: per client on
  // junction://, shared elsewhere (an embedded broker is one per process).
  std::optional<bool> bus_per_client;
  std::string topic;  // empty: "bench.<scenario>.<random>"
  // No progress for this long fails the run (what was counted is reported).
  Seconds stall_timeout{30};
  // Called about four times a second on the calling thread; may be empty.
  std::function<void(const BusBenchProgress&)> progress;
};

struct BusBenchResult {
  std::string topic;
  bool bus_per_client = false;  // what the run did (BusBenchOptions::bus_per_client)
  // Completed operations: acked publishes (pub), acked deliveries (sub,
  // queue), deliveries over all consumers (pubsub: msgs x consumers),
  // replies (req).
  std::uint64_t ops = 0;
  std::uint64_t errors = 0;      // failed publishes, acks, requests
  double seconds = 0;            // clock start to the last completion
  std::uint64_t data_bytes = 0;  // of the completed operations' messages
  // What the latency measures ("" when the scenario has none).
  std::string latency_of;
  std::unique_ptr<obs::LatencyHistogram> latency;  // nanoseconds
  double ops_per_second() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

Result<BusBenchResult> RunBusBench(const BusBenchOptions& options);

// `junction bench baseline`: this machine's floors, measured in the same run.
struct BaselineResult {
  std::unique_ptr<obs::LatencyHistogram> tcp_round_trip;  // 100 B each way, loopback, ns
  std::unique_ptr<obs::LatencyHistogram> fdatasync;       // write of 100 B + fdatasync, ns
  std::filesystem::path dir;                              // where the fdatasync file was
};
Result<BaselineResult> RunBaseline(const std::filesystem::path& dir, Seconds each);

}  // namespace junction::bench
