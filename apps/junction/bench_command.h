#pragma once

// `junction bench <scenario>`: benchmarks that print a table, or with --json
// the same figures as an array of objects. Scenarios: `log` and `broker`
// (bench/README.md), and the loads against any Bus URL (bench_bus_command.h).

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_bus_command.h"
#include "commands.h"

namespace junction::cli {

struct BenchOptions {
  std::string dir;                      // parent of the scratch directory; "": default
  double seconds = 3;                   // each timed run
  std::string log_bytes = "1GiB";       // log size for the read and open scenarios
  std::uint64_t backlog = 10'000'000;   // broker: messages behind the stalled consumer
  std::vector<std::string> only;        // broker: the scenarios to run; empty: all
  BusBenchFlags bus;                    // pub, sub, pubsub, queue, req, baseline, daemon
  std::uint64_t request_msgs = 20'000;  // daemon: requests of its req load
  std::uint32_t daemon_batch = 64;      // daemon: messages per PublishBatch, pipelined rows
  std::string nats_server;              // daemon: the NATS peer's binary; "none": no peer
};

// Adds `bench` and its subcommands to `app`; parsing fills `options`, which
// must outlive the parse.
void AddBenchCommand(CLI::App& app, BenchOptions& options);

// Runs the bench subcommand that `bench` (the parsed `bench` subcommand) got.
int RunBench(const Context& context, const CLI::App& bench, const BenchOptions& options);

}  // namespace junction::cli
