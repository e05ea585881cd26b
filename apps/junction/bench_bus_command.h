#pragma once

// `junction bench pub|sub|pubsub|queue|req` against any Bus URL, and
// `junction bench baseline` (bench/bus_bench.h).

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.h"

namespace junction::cli {

struct BusBenchFlags {
  std::string server;  // empty: the `url` key
  std::uint64_t msgs = 100'000;
  std::size_t size = 100;
  int producers = 1;
  int consumers = 1;
  std::uint32_t partitions = 1;
  std::uint32_t in_flight = 0;  // 0: 64, and 1 for req
  std::uint32_t batch = 1;      // messages per publish call
  std::string bus;              // per-client | shared | "" (per client on junction://)
  double rate = 0;
  std::string fsync;  // file:// only
  std::string topic;
  bool no_progress = false;
  std::string dir;     // baseline: where the fdatasync file goes
  double seconds = 3;  // baseline: each measurement
};

// Adds the scenarios to `bench`; parsing fills `flags`, which must outlive it.
void AddBusBenchCommands(CLI::App& bench, BusBenchFlags& flags);

// Runs the scenario `bench` got; -1 when it got none of these.
int RunBusBenchCommand(const Context& context, const CLI::App& bench, const BusBenchFlags& flags);

}  // namespace junction::cli
