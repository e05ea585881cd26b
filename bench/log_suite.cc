#include "bench/log_suite.h"

#include <cmath>
#include <memory>
#include <utility>

#include <fmt/format.h>

namespace junction::bench {

BenchRow Measured(std::string scenario, double value, std::string unit) {
  BenchRow row;
  row.scenario = std::move(scenario);
  row.value = value;
  row.unit = std::move(unit);
  return row;
}

BenchRow Compared(std::string scenario, double value, std::string unit, double peer) {
  BenchRow row = Measured(std::move(scenario), value, std::move(unit));
  row.peer = peer;
  if (peer > 0) row.ratio = value / peer;
  return row;
}

BenchRow WithGoal(BenchRow row, std::string goal, bool met) {
  row.goal = std::move(goal);
  row.met = met;
  return row;
}

namespace {

constexpr double kMega = 1e6;
constexpr double kGiga = 1e9;
constexpr std::size_t kReadChunk = 1 << 20;
constexpr double kAppendRatioGoal = 0.90;     // within 10% of the plain loop
constexpr double kHighConcurrencyGoal = 1e6;  // records/s of 100 B
constexpr double kReadGoal = 1e9;             // bytes/s from page cache
constexpr double kOpenGoalSeconds = 1.0;
constexpr int kRounds = 10;  // log and plain loop alternate this many times

storage::LogOptions Options(storage::FsyncPolicy fsync) {
  storage::LogOptions options;
  options.fsync = fsync;
  return options;
}

void Progress(const LogSuiteOptions& options, std::string_view line) {
  if (options.progress) options.progress(line);
}

std::string SizeLabel(std::uint64_t bytes) {
  if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  return fmt::format("{} MiB", (bytes + (1ull << 19)) >> 20);
}

struct AppendCase {
  std::size_t value_bytes;
  int appenders;
  int window;  // outstanding appends per appender
  bool absolute_goal;
};

std::string CaseName(const AppendCase& c) {
  std::string size = c.value_bytes % 1024 == 0 ? fmt::format("{}KiB", c.value_bytes / 1024)
                                               : fmt::format("{}B", c.value_bytes);
  if (c.window == 1) return fmt::format("append {} x{}", size, c.appenders);
  return fmt::format("append {} x{}x{} in flight", size, c.appenders, c.window);
}

// Log::Append with fsync=always against the plain loop at the batch size (bytes
// per fdatasync) the Log achieved.
Status RunAppendCase(const LogSuiteOptions& options, ScratchDir& scratch, const AppendCase& c,
                     std::vector<BenchRow>& rows) {
  std::string name = CaseName(c);
  Progress(options, name);
  JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path dir, scratch.FreshSubdir("append"));
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::byte> batch, MakeBatch(c.value_bytes, 1));
  AppendVsFloor both;
  {
    JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<LogHarness> harness,
                              LogHarness::Open(dir, Options(storage::FsyncPolicy::Always())));
    AppendLoad load{std::move(batch), 1, c.appenders * c.window, options.seconds, 0};
    JUNCTION_ASSIGN_OR_RETURN(
        both, RunAppendsAgainstFloor(*harness, load, scratch.path() / "plain.dat", kRounds));
    JUNCTION_RETURN_IF_ERROR(harness->Close());
  }
  const AppendRun& run = both.log;
  const PlainSyncRun& plain = both.plain;
  double plain_records = both.plain_records_per_second();
  BenchRow records = Compared(name, run.records_per_second(), "records/s", plain_records);
  double ratio = records.ratio.value_or(0);
  if (c.absolute_goal) {
    records = WithGoal(std::move(records), fmt::format(">= {:.0f}", kHighConcurrencyGoal),
                       run.records_per_second() >= kHighConcurrencyGoal);
  } else {
    records = WithGoal(std::move(records), fmt::format("ratio >= {:.2f}", kAppendRatioGoal),
                       ratio >= kAppendRatioGoal);
  }
  rows.push_back(std::move(records));
  rows.push_back(Measured(name, both.round_ratio_stddev(),
                          fmt::format("ratio stddev ({} rounds)", both.round_ratios.size())));
  rows.push_back(Compared(name, run.bytes_per_second() / kMega, "MB/s disk",
                          plain.bytes_per_second() / kMega));
  rows.push_back(Compared(name, run.syncs_per_second(), "fsyncs/s", plain.syncs_per_second()));
  rows.push_back(Measured(name, run.records_per_sync(), "records/fsync"));
  rows.push_back(Compared(name, run.bytes_per_sync(), "bytes/fsync", plain.bytes_per_sync()));
  if (run.io.segment_writes != run.io.segment_syncs) {
    rows.push_back(Measured(
        name,
        static_cast<double>(run.io.segment_writes) / static_cast<double>(run.io.segment_syncs),
        "writes/fsync"));
  }
  return OkStatus();
}

// Writes a log of options.log_bytes, then: clean open, sequential read (and a
// plain pread of the same files beside it), unclean shutdown, open again.
Status RunReadAndOpen(const LogSuiteOptions& options, ScratchDir& scratch,
                      std::vector<BenchRow>& rows) {
  JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path dir, scratch.FreshSubdir("big"));
  std::string size = SizeLabel(options.log_bytes);
  Progress(options, fmt::format("fill a {} log (fsync=never, batches of {} x {} B)", size,
                                kFillRecordsPerBatch, kFillValueBytes));
  JUNCTION_ASSIGN_OR_RETURN(AppendRun fill, FillLog(dir, options.log_bytes));
  rows.push_back(Measured(fmt::format("fill {} (fsync=never)", size),
                          fill.bytes_per_second() / kMega, "MB/s disk"));

  Progress(options, "open after a clean shutdown, read front to back");
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<LogHarness> clean,
                            LogHarness::Open(dir, Options(storage::FsyncPolicy::Always())));
  storage::LogStatus clean_status = clean->status();
  std::string clean_name = fmt::format("open {} log, clean shutdown", size);
  if (!clean_status.clean_open) clean_name += " (marker NOT used)";
  rows.push_back(WithGoal(Measured(clean_name, clean->open_seconds(), "s"),
                          fmt::format("< {:.0f} s", kOpenGoalSeconds),
                          clean->open_seconds() < kOpenGoalSeconds));

  JUNCTION_ASSIGN_OR_RETURN(ReadRun plain, RunPlainPread(dir, kReadChunk));
  JUNCTION_ASSIGN_OR_RETURN(ReadRun read, clean->ReadAll(kReadChunk));
  BenchRow read_row =
      Compared(fmt::format("read {} log, Read(next, 1 MiB)", size), read.bytes_per_second() / kGiga,
               "GB/s", plain.bytes_per_second() / kGiga);
  rows.push_back(WithGoal(std::move(read_row), fmt::format(">= {:.0f}", kReadGoal / kGiga),
                          read.bytes_per_second() >= kReadGoal));

  Progress(options, "unclean shutdown (Log destroyed without Close), open again");
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::byte> batch,
                            MakeBatch(kFillValueBytes, kFillRecordsPerBatch));
  AppendLoad one{batch, kFillRecordsPerBatch, 1, Seconds::zero(), batch.size()};
  JUNCTION_RETURN_IF_ERROR(clean->RunAppends(one).status());
  clean->Abandon();
  clean.reset();
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<LogHarness> unclean,
                            LogHarness::Open(dir, Options(storage::FsyncPolicy::Always())));
  storage::LogStatus unclean_status = unclean->status();
  std::string unclean_name = fmt::format("open {} log, unclean shutdown", size);
  if (unclean_status.clean_open) unclean_name += " (marker used!)";
  if (unclean_status.bytes_truncated_at_open > 0) {
    unclean_name += fmt::format(" ({} B cut)", unclean_status.bytes_truncated_at_open);
  }
  rows.push_back(WithGoal(Measured(unclean_name, unclean->open_seconds(), "s"),
                          fmt::format("< {:.0f} s", kOpenGoalSeconds),
                          unclean->open_seconds() < kOpenGoalSeconds));

  // The worst case: no index survives, so every segment is scanned and
  // verified in full and its index rebuilt.
  Progress(options, "unclean shutdown and every index file lost, open again");
  unclean->Abandon();
  unclean.reset();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".index") std::filesystem::remove(entry.path());
  }
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<LogHarness> rebuilt,
                            LogHarness::Open(dir, Options(storage::FsyncPolicy::Always())));
  rows.push_back(WithGoal(Measured(fmt::format("open {} log, unclean, all indexes lost", size),
                                   rebuilt->open_seconds(), "s"),
                          fmt::format("< {:.0f} s", kOpenGoalSeconds),
                          rebuilt->open_seconds() < kOpenGoalSeconds));
  return rebuilt->Close();
}

}  // namespace

Result<LogSuiteResult> RunLogSuite(const LogSuiteOptions& options) {
  std::filesystem::path parent = options.dir.empty() ? DefaultScratchParent() : options.dir;
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<ScratchDir> scratch, ScratchDir::Create(parent));
  LogSuiteResult result;
  result.dir = scratch->path();
  JUNCTION_ASSIGN_OR_RETURN(result.filesystem, DescribeFilesystem(scratch->path()));
  Progress(options, fmt::format("scratch directory {} ({})", result.dir.string(),
                                result.filesystem.ToString()));

  const AppendCase cases[] = {
      {100, 1, 1, false},   {100, 16, 1, false},  {100, 64, 1, false}, {1024, 1, 1, false},
      {1024, 16, 1, false}, {1024, 64, 1, false}, {100, 64, 64, true},
  };
  for (const AppendCase& c : cases) {
    JUNCTION_RETURN_IF_ERROR(RunAppendCase(options, *scratch, c, result.rows));
  }
  JUNCTION_RETURN_IF_ERROR(RunReadAndOpen(options, *scratch, result.rows));
  return result;
}

}  // namespace junction::bench
