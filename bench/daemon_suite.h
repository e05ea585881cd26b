#pragma once

// `junction bench daemon`: junctiond against the in-process broker and the
// machine's floors, in one run (issue 5's goals, bench/README.md):
//
//  * for fsync=always and fsync=never: the `queue` load (bus_bench.h)
//    through a junctiond started in this process (junction:// over loopback,
//    2 shards, file:// on the scratch disk) next to the same load on an
//    in-process file:// bus, the two taking turns in three rounds of a
//    third of the messages each (a drifting machine moves both alike; the
//    lowest and highest round's ratio are shown too); goal: the daemon
//    reaches 0.80 of in-process;
//  * the absolute goals (1,000,000 and 2,000,000 msg/s of 100 B on this
//    machine) with pipelined publishers: the durable queue (fsync=always)
//    and the non-durable `pubsub` load (fsync=never), each producer with
//    `in_flight` PublishBatch calls of `batch` messages in flight, each
//    beside the same pipelined load on an in-process file:// bus (what the
//    broker itself reaches bounds the daemon); the same loads with single
//    publishes beside them, for reference;
//  * request-reply p50 through the daemon against the loopback TCP round
//    trip measured just before (goal: at most 2.2x);
//  * the peer the issue states its pub/sub goal beside: NATS core pub/sub
//    (nats_peer.h: a nats-server on loopback, driven through cnats), run
//    right after the daemon's pipelined pub/sub, with its msgs/s, the ratio
//    of the daemon's to it, and both sides' CPU per message.
//
// Blocking; runs on the calling thread plus the threads the loads start.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>
#include <vector>

#include "bench/log_suite.h"  // BenchRow, FilesystemInfo
#include "junction/result.h"

namespace junction::bench {

struct DaemonSuiteOptions {
  std::filesystem::path dir;  // parent of the scratch directory; empty: the default
  std::uint64_t msgs = 200'000;
  std::size_t size = 100;
  int producers = 1;
  int consumers = 1;
  std::uint32_t partitions = 1;
  std::uint32_t in_flight = 64;
  std::uint32_t batch = 64;  // messages per PublishBatch in the pipelined goal rows
  std::uint64_t request_msgs = 20'000;
  // The nats-server binary for the NATS core peer; empty: found as
  // nats_peer.h says (an error when there is none); "none": no peer rows.
  std::filesystem::path nats_server;
  std::function<void(std::string_view)> progress;
};

struct DaemonSuiteResult {
  std::filesystem::path dir;
  FilesystemInfo filesystem;
  std::vector<BenchRow> rows;
};

Result<DaemonSuiteResult> RunDaemonSuite(const DaemonSuiteOptions& options);

}  // namespace junction::bench
