#pragma once

// The `junction bench broker` suite: the broker scenarios of bench/README.md
// ("broker") run in one process, each beside its peer measured in the same
// run on the same disk: publish -> deliver -> ack throughput against the log's
// own append throughput, publish -> deliver latency against the disk's
// fdatasync latency, and the resident memory of a stalled group's backlog.
//
// Blocking; runs on the calling thread plus the threads the scenarios start.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>
#include <vector>

#include "bench/broker_scenarios.h"
#include "bench/log_suite.h"  // BenchRow
#include "junction/result.h"

namespace junction::bench {

struct BrokerSuiteOptions {
  // Parent of the scratch directory the suite creates and removes; empty:
  // DefaultScratchParent().
  std::filesystem::path dir;
  // Length of each timed run (each throughput case and its peer, each
  // latency run and the fdatasync loop).
  Seconds seconds{3};
  // Messages the memory scenario publishes while its consumer is stalled.
  std::uint64_t backlog = 10'000'000;
  // Which scenarios run.
  bool throughput = true;
  bool latency = true;
  bool memory = true;
  // Called with one line before each step (for stderr); may be empty.
  std::function<void(std::string_view)> progress;
};

struct BrokerSuiteResult {
  std::filesystem::path dir;  // the scratch directory used (removed by now)
  FilesystemInfo filesystem;
  std::vector<BenchRow> rows;
};

Result<BrokerSuiteResult> RunBrokerSuite(const BrokerSuiteOptions& options);

}  // namespace junction::bench
