#pragma once

// The `junction bench log` suite: every log scenario of bench/README.md run
// side by side in one process, each against its floor or peer on the same
// disk, reported as rows of (scenario, value, unit, peer, ratio, goal, met).
//
// Blocking; runs on the calling thread (plus the harness's blocking thread).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/log_scenarios.h"
#include "junction/result.h"

namespace junction::bench {

struct LogSuiteOptions {
  // Parent of the scratch directory the suite creates and removes; empty:
  // DefaultScratchParent().
  std::filesystem::path dir;
  // Length of each timed append run and of each plain loop beside it.
  Seconds seconds{3};
  // Size of the log written for the read and open scenarios.
  std::uint64_t log_bytes = 1ull << 30;
  // Called with one line before each step (for stderr); may be empty.
  std::function<void(std::string_view)> progress;
};

struct BenchRow {
  std::string scenario;
  double value = 0;
  std::string unit;
  std::optional<double> peer;   // the floor or peer measured beside it, same unit
  std::optional<double> ratio;  // value / peer
  std::string goal;             // "" when the row has none
  std::optional<bool> met;      // nullopt when the row has no goal
};

// Row builders shared by the suites: a plain figure, one with its peer (and
// the ratio), and a goal with whether it was met.
BenchRow Measured(std::string scenario, double value, std::string unit);
BenchRow Compared(std::string scenario, double value, std::string unit, double peer);
BenchRow WithGoal(BenchRow row, std::string goal, bool met);

struct LogSuiteResult {
  std::filesystem::path dir;  // the scratch directory used (removed by now)
  FilesystemInfo filesystem;
  std::vector<BenchRow> rows;
};

Result<LogSuiteResult> RunLogSuite(const LogSuiteOptions& options);

}  // namespace junction::bench
