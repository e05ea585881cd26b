#include "bench_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "bench/broker_suite.h"
#include "bench/daemon_suite.h"
#include "bench/log_suite.h"
#include "cli.h"
#include "junction/config.h"

namespace junction::cli {
namespace {

// Whole numbers from 100 up, else three significant digits.
std::string FormatNumber(double value) {
  char text[64];
  if (std::fabs(value) >= 100) {
    std::snprintf(text, sizeof text, "%.0f", value);
  } else {
    std::snprintf(text, sizeof text, "%#.3g", value);
  }
  return text;
}

// Cut (not rounded) to three decimals, so that a ratio shown as 0.900 is one
// that meets a goal of 0.90.
std::string FormatRatio(double ratio) {
  char text[64];
  std::snprintf(text, sizeof text, "%.3f", std::floor(ratio * 1000) / 1000);
  return text;
}

std::string OptionalNumber(const std::optional<double>& value) {
  return value ? FormatNumber(*value) : "-";
}

std::string MetText(const std::optional<bool>& met) {
  if (!met) return "-";
  return *met ? "yes" : "no";
}

boost::json::value OptionalJson(const std::optional<double>& value) {
  return value ? boost::json::value(*value) : boost::json::value(nullptr);
}

void PrintJson(const Context& context, const std::vector<bench::BenchRow>& result_rows,
               const bench::FilesystemInfo& info) {
  boost::json::array rows;
  std::string filesystem = info.ToString();
  for (const bench::BenchRow& row : result_rows) {
    boost::json::object object;
    object["scenario"] = row.scenario;
    object["value"] = row.value;
    object["unit"] = row.unit;
    object["peer"] = OptionalJson(row.peer);
    object["ratio"] = OptionalJson(row.ratio);
    object["goal"] = row.goal.empty() ? boost::json::value(nullptr) : boost::json::value(row.goal);
    object["met"] = row.met ? boost::json::value(*row.met) : boost::json::value(nullptr);
    object["filesystem"] = filesystem;
    rows.push_back(std::move(object));
  }
  context.out << boost::json::serialize(rows) << '\n';
}

// `title` is the first line; a warning follows when the scratch directory is
// on tmpfs.
void PrintBenchTable(const Context& context, const std::vector<bench::BenchRow>& rows,
                     const bench::FilesystemInfo& filesystem, const std::string& title) {
  std::vector<std::vector<std::string>> cells;
  for (const bench::BenchRow& row : rows) {
    cells.push_back({row.scenario, FormatNumber(row.value), row.unit, OptionalNumber(row.peer),
                     row.ratio ? FormatRatio(*row.ratio) : "-", row.goal.empty() ? "-" : row.goal,
                     MetText(row.met)});
  }
  context.out << title << '\n';
  if (filesystem.is_tmpfs) {
    context.out << "warning: tmpfs: fdatasync costs nothing here; these figures say nothing "
                   "about a disk\n";
  }
  PrintTable(context, {"SCENARIO", "VALUE", "UNIT", "FLOOR/PEER", "RATIO", "GOAL", "MET"}, cells,
             {1, 3, 4});
}

int RunBenchLog(const Context& context, const BenchOptions& options) {
  Result<config::Value> log_bytes =
      config::ParseValue(config::ByteSizeKey("bench.log_bytes", 0, "log size"), options.log_bytes);
  if (!log_bytes.ok()) {
    context.err << "junction: --log-bytes: " << log_bytes.status().message() << '\n';
    return kExitUsage;
  }
  bench::LogSuiteOptions suite;
  suite.dir = options.dir;
  suite.seconds = bench::Seconds(options.seconds);
  suite.log_bytes = std::get<config::ByteSize>(*log_bytes).bytes;
  suite.progress = [&](std::string_view line) { context.err << "bench: " << line << std::endl; };
  Result<bench::LogSuiteResult> result = bench::RunLogSuite(suite);
  if (!result.ok()) {
    context.err << "junction: bench log: " << result.status().ToString() << '\n';
    return kExitFailure;
  }
  if (context.json) {
    PrintJson(context, result->rows, result->filesystem);
  } else {
    PrintBenchTable(context, result->rows, result->filesystem,
                    "junction bench log: " + result->dir.string() + " on " +
                        result->filesystem.ToString() + ", " + FormatNumber(options.seconds) +
                        " s per run; floor/peer: plain write+fdatasync at the same bytes per fsync "
                        "(appends), plain pread (read)");
  }
  return kExitOk;
}

int RunBenchBroker(const Context& context, const BenchOptions& options) {
  bench::BrokerSuiteOptions suite;
  suite.dir = options.dir;
  suite.seconds = bench::Seconds(options.seconds);
  suite.backlog = options.backlog;
  if (!options.only.empty()) {
    auto wanted = [&](std::string_view name) {
      return std::find(options.only.begin(), options.only.end(), name) != options.only.end();
    };
    suite.throughput = wanted("throughput");
    suite.latency = wanted("latency");
    suite.memory = wanted("memory");
  }
  suite.progress = [&](std::string_view line) { context.err << "bench: " << line << std::endl; };
  Result<bench::BrokerSuiteResult> result = bench::RunBrokerSuite(suite);
  if (!result.ok()) {
    context.err << "junction: bench broker: " << result.status().ToString() << '\n';
    return kExitFailure;
  }
  if (context.json) {
    PrintJson(context, result->rows, result->filesystem);
  } else {
    PrintBenchTable(context, result->rows, result->filesystem,
                    "junction bench broker: " + result->dir.string() + " on " +
                        result->filesystem.ToString() + ", " + FormatNumber(options.seconds) +
                        " s per run; peer: the log's own appends (100 B, 64 in flight, "
                        "fsync=always) for throughput, write+fdatasync of 256 B for latency");
  }
  return kExitOk;
}

int RunBenchDaemon(const Context& context, const BenchOptions& options) {
  bench::DaemonSuiteOptions suite;
  suite.dir = options.dir;
  const BusBenchFlags& bus = options.bus;
  suite.msgs = bus.msgs;
  suite.size = bus.size;
  suite.producers = bus.producers;
  suite.consumers = bus.consumers;
  suite.partitions = bus.partitions;
  if (bus.in_flight != 0) suite.in_flight = bus.in_flight;
  suite.request_msgs = options.request_msgs;
  suite.batch = options.daemon_batch;
  suite.nats_server = options.nats_server;
  suite.progress = [&](std::string_view line) { context.err << "bench: " << line << std::endl; };
  Result<bench::DaemonSuiteResult> result = bench::RunDaemonSuite(suite);
  if (!result.ok()) {
    context.err << "junction: bench daemon: " << result.status().ToString() << '\n';
    return kExitFailure;
  }
  if (context.json) {
    PrintJson(context, result->rows, result->filesystem);
  } else {
    PrintBenchTable(context, result->rows, result->filesystem,
                    "junction bench daemon: " + result->dir.string() + " on " +
                        result->filesystem.ToString() + ", " + std::to_string(suite.msgs) +
                        " msgs of " + std::to_string(suite.size) +
                        " B per load; junctiond in this process over loopback (2 shards) vs "
                        "file:// in process, same disk, same run; pub/sub also vs "
                        "nats-server (core NATS) on loopback");
  }
  return kExitOk;
}

}  // namespace

void AddBenchCommand(CLI::App& app, BenchOptions& options) {
  CLI::App* bench = app.add_subcommand("bench", "Run a benchmark and print its figures");
  bench->require_subcommand(1);
  CLI::App* log = bench->add_subcommand(
      "log",
      "Storage log: appends with fsync=always against a plain write+fdatasync loop, "
      "sequential reads, open after clean and unclean shutdown");
  log->add_option("--dir", options.dir,
                  "Directory to create the scratch directory in (default: /var/tmp unless "
                  "tmpfs, else the current directory)");
  log->add_option("--seconds", options.seconds, "Length of each timed run")
      ->check(CLI::Range(0.1, 3600.0));
  log->add_option("--log-bytes", options.log_bytes,
                  "Size of the log for the read and open scenarios (\"1GiB\", \"256MiB\")");
  CLI::App* broker = bench->add_subcommand(
      "broker",
      "Embedded broker (file://): publish->deliver->ack throughput against the log's own "
      "appends, latency at 10k msg/s against fdatasync, memory behind a stalled consumer");
  broker->add_option("--dir", options.dir,
                     "Directory to create the scratch directory in (default: /var/tmp unless "
                     "tmpfs, else the current directory)");
  broker->add_option("--seconds", options.seconds, "Length of each timed run")
      ->check(CLI::Range(0.1, 3600.0));
  broker
      ->add_option("--backlog", options.backlog,
                   "Messages published behind the stalled consumer of the memory scenario")
      ->check(CLI::Range(std::uint64_t{1000}, std::uint64_t{1'000'000'000}));
  broker->add_option("--only", options.only, "Run only these scenarios (default: all)")
      ->check(CLI::IsMember({"throughput", "latency", "memory"}));
  AddBusBenchCommands(*bench, options.bus);
  CLI::App* daemon = bench->add_subcommand(
      "daemon",
      "junctiond over loopback vs in-process file:// (fsync always and never), the durable and "
      "non-durable goals, request-reply p50 vs the TCP round trip: one run, ratios");
  daemon->add_option("--dir", options.dir, "Directory to create the scratch directory in");
  daemon->add_option("--msgs", options.bus.msgs, "Messages per load")
      ->check(CLI::Range(std::uint64_t{1000}, std::uint64_t{1'000'000'000}));
  daemon->add_option("--request-msgs", options.request_msgs, "Requests of the req load")
      ->check(CLI::Range(std::uint64_t{100}, std::uint64_t{100'000'000}));
  daemon->add_option("--size", options.bus.size, "Bytes of data per message (>= 16)")
      ->check(CLI::Range(std::size_t{16}, std::size_t{1} << 20));
  daemon->add_option("--producers", options.bus.producers, "Producer threads")
      ->check(CLI::Range(1, 256));
  daemon->add_option("--consumers", options.bus.consumers, "Consumer threads")
      ->check(CLI::Range(1, 256));
  daemon->add_option("--partitions", options.bus.partitions, "Partitions")
      ->check(CLI::Range(1, 1024));
  daemon->add_option("--in-flight", options.bus.in_flight, "Publishes in flight per producer")
      ->check(CLI::Range(1, 65536));
  daemon
      ->add_option("--batch", options.daemon_batch,
                   "Messages per PublishBatch in the pipelined goal rows (default 64)")
      ->check(CLI::Range(1, 100000));
  daemon->add_option("--nats-server", options.nats_server,
                     "The nats-server binary of the NATS core pub/sub peer (default: "
                     "$JUNCTION_NATS_SERVER, else nats-server on PATH or in /usr/sbin); "
                     "\"none\": no peer");
}

int RunBench(const Context& context, const CLI::App& bench, const BenchOptions& options) {
  if (bench.got_subcommand("log")) return RunBenchLog(context, options);
  if (bench.got_subcommand("broker")) return RunBenchBroker(context, options);
  if (bench.got_subcommand("daemon")) return RunBenchDaemon(context, options);
  if (int code = RunBusBenchCommand(context, bench, options.bus); code >= 0) return code;
  context.err << "junction: bench: unknown scenario\n";
  return kExitUsage;
}

}  // namespace junction::cli
