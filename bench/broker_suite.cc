#include "bench/broker_suite.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/affinity.h"

namespace junction::bench {
namespace {

constexpr double kThroughputGoal = 0.70;  // of the log's own append rate
constexpr double kDaemonGoal = 0.80;      // junction:// over loopback, of file:// in-process
constexpr double kLatencyGoal = 3.0;      // p50 over fdatasync p50, fsync=always
constexpr double kMemoryGoal = 256.0;     // MiB resident
constexpr double kMiB = 1024.0 * 1024.0;
constexpr int kPublishers = 64;
constexpr int kThroughputRounds = 3;
// Keys of the keyed runs of multi-partition cases: each partition gets some.
constexpr int kKeys = 64;
constexpr double kLatencyRate = 10000;
// The plain write per fdatasync of the latency floor: about one stored message.
constexpr std::size_t kSyncBytes = 256;

void Progress(const BrokerSuiteOptions& options, std::string_view line) {
  if (options.progress) options.progress(line);
}

// Where the goal rows' threads run, broker and peer alike: the thread that
// runs the log or broker together with its clients on the first CPU this
// process may use, the write and fdatasync threads on the others. Left to the
// scheduler, a thread whose fdatasync returns is often woken on the busy
// shard's CPU and waits for it (bench/README.md). Empty with a single CPU.
struct CpuPlan {
  std::vector<int> shard;
  std::vector<int> blocking;
};

Result<CpuPlan> GoalCpus() {
  JUNCTION_ASSIGN_OR_RETURN(std::vector<int> cpus, ThreadCpus());
  CpuPlan plan;
  if (cpus.size() < 2) return plan;
  plan.shard = {cpus.front()};
  plan.blocking.assign(cpus.begin() + 1, cpus.end());
  return plan;
}

// The peer: Log::Append of one 100 B record per batch, kPublishers in flight,
// fsync=always, for options.seconds, its shard and blocking thread on `cpus`
// (not from_other_thread).
// `from_other_thread`: the appenders run on a thread of their own, as the
// broker's publishers do (the ceiling of any client of the log on another
// thread: two thread hops per append).
Result<AppendRun> RunLogPeer(const BrokerSuiteOptions& options, ScratchDir& scratch,
                             bool from_other_thread, const CpuPlan& cpus = {}) {
  JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path dir, scratch.FreshSubdir("peer"));
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::byte> batch, MakeBatch(kBrokerMessageBytes, 1));
  storage::LogOptions log_options;
  log_options.fsync = storage::FsyncPolicy::Always();
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<LogHarness> harness,
                            LogHarness::Open(dir, log_options));
  AppendLoad load{std::move(batch), 1, kPublishers, options.seconds, 0, from_other_thread};
  if (!from_other_thread) {
    load.shard_cpus = cpus.shard;
    load.blocking_cpus = cpus.blocking;
  }
  JUNCTION_ASSIGN_OR_RETURN(AppendRun run, harness->RunAppends(load));
  JUNCTION_RETURN_IF_ERROR(harness->Close());
  return run;
}

Status RunThroughputCase(const BrokerSuiteOptions& options, ScratchDir& scratch,
                         std::uint32_t partitions, int consumers, std::vector<BenchRow>& rows) {
  std::string name = fmt::format("pub->ack {}p x{}c", partitions, consumers);
  // The peer, the second reference and both broker arrangements take turns,
  // kThroughputRounds times for a third of --seconds each, so that a disk
  // whose speed drifts (by 2x within a minute here) moves them alike.
  const Seconds slice = options.seconds / kThroughputRounds;
  AppendRun peer;
  AppendRun cross;
  ThroughputRun shared;
  ThroughputRun keyed;     // co-located, messages with kKeys keys (partitions > 1)
  ThroughputRun unpinned;  // co-located, threads left to the scheduler (when pinned at all)
  ThroughputRun run;
  ThroughputRun daemon;  // the same clients over loopback to a junctiond
  std::vector<double> round_ratios;
  JUNCTION_ASSIGN_OR_RETURN(const CpuPlan cpus, GoalCpus());
  for (int round = 1; round <= kThroughputRounds; ++round) {
    BrokerSuiteOptions sliced = options;
    sliced.seconds = slice;
    Progress(options, fmt::format("{} round {}/{}: log append peer (100 B, {} in flight, "
                                  "fsync=always)",
                                  name, round, kThroughputRounds, kPublishers));
    JUNCTION_ASSIGN_OR_RETURN(AppendRun peer_round, RunLogPeer(sliced, scratch, false, cpus));
    Progress(options, fmt::format("{} round {}/{}: broker, clients on its executor", name, round,
                                  kThroughputRounds));
    JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path shared_dir, scratch.FreshSubdir("throughput"));
    ThroughputLoad shared_load{partitions, consumers, kPublishers, slice, true};
    shared_load.shard_cpus = cpus.shard;
    shared_load.blocking_cpus = cpus.blocking;
    JUNCTION_ASSIGN_OR_RETURN(ThroughputRun shared_round,
                              RunBrokerThroughput(shared_dir, shared_load));
    if (!cpus.shard.empty()) {
      Progress(options, fmt::format("{} round {}/{}: broker, clients on its executor, unpinned",
                                    name, round, kThroughputRounds));
      JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path free_dir, scratch.FreshSubdir("throughput"));
      ThroughputLoad free_load{partitions, consumers, kPublishers, slice, true};
      JUNCTION_ASSIGN_OR_RETURN(ThroughputRun free_round, RunBrokerThroughput(free_dir, free_load));
      unpinned.Add(free_round);
    }
    if (partitions > 1) {
      Progress(options, fmt::format("{} round {}/{}: broker, clients on its executor, {} keys",
                                    name, round, kThroughputRounds, kKeys));
      JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path keyed_dir, scratch.FreshSubdir("throughput"));
      ThroughputLoad keyed_load{partitions, consumers, kPublishers, slice, true, kKeys};
      keyed_load.shard_cpus = cpus.shard;
      keyed_load.blocking_cpus = cpus.blocking;
      JUNCTION_ASSIGN_OR_RETURN(ThroughputRun keyed_round,
                                RunBrokerThroughput(keyed_dir, keyed_load));
      keyed.Add(keyed_round);
    }
    Progress(options, fmt::format("{} round {}/{}: log appends from another thread", name, round,
                                  kThroughputRounds));
    JUNCTION_ASSIGN_OR_RETURN(AppendRun cross_round, RunLogPeer(sliced, scratch, true));
    Progress(options, fmt::format("{} round {}/{}: broker, clients on their own threads", name,
                                  round, kThroughputRounds));
    JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path dir, scratch.FreshSubdir("throughput"));
    ThroughputLoad load{partitions, consumers, kPublishers, slice, false};
    JUNCTION_ASSIGN_OR_RETURN(ThroughputRun run_round, RunBrokerThroughput(dir, load));
    Progress(options, fmt::format("{} round {}/{}: broker behind junctiond, clients over loopback",
                                  name, round, kThroughputRounds));
    JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path daemon_dir, scratch.FreshSubdir("throughput"));
    ThroughputLoad daemon_load{partitions, consumers, kPublishers, slice, false};
    daemon_load.via_daemon = true;
    JUNCTION_ASSIGN_OR_RETURN(ThroughputRun daemon_round,
                              RunBrokerThroughput(daemon_dir, daemon_load));
    daemon.Add(daemon_round);
    if (peer_round.records_per_second() > 0) {
      round_ratios.push_back(shared_round.acked_per_second() / peer_round.records_per_second());
    }
    peer.Add(peer_round);
    cross.Add(cross_round);
    shared.Add(shared_round);
    run.Add(run_round);
  }
  // Like for like: the peer's appenders run on the log's shard, these
  // clients on the broker's.
  BenchRow acked =
      Compared(name, shared.acked_per_second(), "msgs/s acked", peer.records_per_second());
  bool met = acked.ratio.value_or(0) >= kThroughputGoal;
  rows.push_back(WithGoal(std::move(acked), fmt::format("ratio >= {:.2f}", kThroughputGoal), met));
  if (!round_ratios.empty()) {
    auto [low, high] = std::minmax_element(round_ratios.begin(), round_ratios.end());
    rows.push_back(Measured(name + " ratio, lowest round", *low, "ratio"));
    rows.push_back(Measured(name + " ratio, highest round", *high, "ratio"));
  }
  rows.push_back(Compared(name + " publish", shared.published_per_second(), "msgs/s stored",
                          peer.records_per_second()));
  if (shared.acked > 0 && peer.records > 0) {
    // CPU of the whole process per message, the peer's per append: the part
    // of the broker's cost that a drifting disk does not move.
    rows.push_back(Compared(name + " CPU", 1e6 * shared.cpu_seconds / shared.acked, "us/msg",
                            1e6 * peer.cpu_seconds / peer.records));
  }
  if (shared.io.segment_syncs > 0) {
    rows.push_back(Compared(
        name, static_cast<double>(shared.published) / static_cast<double>(shared.io.segment_syncs),
        "msgs/fsync", peer.records_per_sync()));
  }
  if (daemon.seconds > 0 && run.seconds > 0) {
    // The goal: the daemon over loopback at >= 80% of the same
    // clients in-process (both with the clients on threads of their own).
    BenchRow via = Compared(name + " via junctiond", daemon.acked_per_second(), "msgs/s acked",
                            run.acked_per_second());
    bool daemon_met = via.ratio.value_or(0) >= kDaemonGoal;
    rows.push_back(
        WithGoal(std::move(via), fmt::format("ratio >= {:.2f}", kDaemonGoal), daemon_met));
    if (daemon.acked > 0 && run.acked > 0) {
      rows.push_back(Compared(name + " via junctiond CPU", 1e6 * daemon.cpu_seconds / daemon.acked,
                              "us/msg", 1e6 * run.cpu_seconds / run.acked));
    }
  }
  if (unpinned.seconds > 0) {
    rows.push_back(Compared(name + ", unpinned", unpinned.acked_per_second(), "msgs/s acked",
                            peer.records_per_second()));
  }
  if (keyed.seconds > 0) {
    std::string keyed_name = fmt::format("{}, {} keys", name, kKeys);
    rows.push_back(
        Compared(keyed_name, keyed.acked_per_second(), "msgs/s acked", peer.records_per_second()));
    if (keyed.io.segment_syncs > 0) {
      rows.push_back(Compared(
          keyed_name,
          static_cast<double>(keyed.published) / static_cast<double>(keyed.io.segment_syncs),
          "msgs/fsync", peer.records_per_sync()));
    }
  }
  name += ", clients on own threads";
  rows.push_back(Compared(name, run.acked_per_second(), "msgs/s acked", peer.records_per_second()));
  rows.push_back(Compared(name + " publish", run.published_per_second(), "msgs/s stored",
                          peer.records_per_second()));
  rows.push_back(Compared(name + " vs log from another thread", run.acked_per_second(),
                          "msgs/s acked", cross.records_per_second()));
  rows.push_back(Compared("log from another thread", cross.records_per_second(), "appends/s",
                          peer.records_per_second()));
  if (cross.io.segment_syncs > 0) {
    rows.push_back(
        Measured("log from another thread",
                 static_cast<double>(cross.records) / static_cast<double>(cross.io.segment_syncs),
                 "appends/fsync"));
  }
  if (run.io.segment_syncs > 0) {
    rows.push_back(Compared(
        name, static_cast<double>(run.published) / static_cast<double>(run.io.segment_syncs),
        "msgs/fsync", peer.records_per_sync()));
  }
  if (run.seconds > 0) {
    rows.push_back(Compared(name, static_cast<double>(run.io.segment_syncs) / run.seconds,
                            "partition fsyncs/s", peer.syncs_per_second()));
    double state_syncs = static_cast<double>(run.state_io.segment_syncs + run.state_io.other_syncs);
    rows.push_back(Measured(name, state_syncs / run.seconds, "state fsyncs/s"));
  }
  if (run.published > 0) {
    rows.push_back(
        Measured(name, static_cast<double>(run.stored_bytes) / static_cast<double>(run.published),
                 "stored B/msg"));
  }
  if (run.redelivered > 0) {
    rows.push_back(Measured(name, static_cast<double>(run.redelivered), "redeliveries"));
  }
  return OkStatus();
}

Status RunLatency(const BrokerSuiteOptions& options, ScratchDir& scratch,
                  std::vector<BenchRow>& rows) {
  Progress(options, fmt::format("fdatasync latency ({} B write + fdatasync)", kSyncBytes));
  JUNCTION_ASSIGN_OR_RETURN(
      std::vector<double> sync,
      RunFdatasyncLatency(scratch.path() / "sync.dat", kSyncBytes, options.seconds));
  if (sync.empty()) return InternalError("the fdatasync loop made no round");
  for (const char* fsync : {"always", "never"}) {
    std::string name = fmt::format("latency 10k/s fsync={}", fsync);
    Progress(options, name);
    JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path dir, scratch.FreshSubdir("latency"));
    LatencyLoad load;
    load.fsync = fsync;
    load.rate = kLatencyRate;
    load.duration = options.seconds;
    JUNCTION_ASSIGN_OR_RETURN(LatencyRun run, RunBrokerLatency(dir, load));
    BenchRow p50 =
        Compared(name + " p50", Percentile(run.micros, 0.5), "us", Percentile(sync, 0.5));
    if (std::string_view(fsync) == "always") {
      bool met = p50.ratio.value_or(1e9) <= kLatencyGoal;
      p50 = WithGoal(std::move(p50), fmt::format("ratio <= {:.0f}", kLatencyGoal), met);
    }
    rows.push_back(std::move(p50));
    rows.push_back(
        Compared(name + " p99", Percentile(run.micros, 0.99), "us", Percentile(sync, 0.99)));
    rows.push_back(
        Compared(name + " p99.9", Percentile(run.micros, 0.999), "us", Percentile(sync, 0.999)));
    rows.push_back(Measured(name, run.offered_per_second, "msgs/s offered"));
    rows.push_back(Measured(name, run.stored_per_second, "msgs/s stored"));
    rows.push_back(Measured(name, run.delivered_per_second, "msgs/s delivered"));
    rows.push_back(Measured(name, static_cast<double>(run.io.segment_writes), "partition writes"));
    rows.push_back(
        Measured(name, static_cast<double>(run.state_io.segment_writes), "state writes"));
    rows.push_back(Measured(name, static_cast<double>(run.max_outstanding), "max publishes open"));
  }
  return OkStatus();
}

// `dedupe_window`: the topic's; nullopt: the default (the scenario as the
// goal means it).
Status RunMemory(const BrokerSuiteOptions& options, ScratchDir& scratch,
                 std::optional<Duration> dedupe_window, std::vector<BenchRow>& rows) {
  std::string name = fmt::format("stalled group, {} msgs", options.backlog);
  if (dedupe_window) {
    name += fmt::format(", dedupe_window={}s",
                        std::chrono::duration_cast<std::chrono::seconds>(*dedupe_window).count());
  }
  Progress(options, fmt::format("{} published (PublishBatch of 1000, fsync=never)", name));
  JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path dir, scratch.FreshSubdir("memory"));
  MemoryLoad load;
  load.messages = options.backlog;
  load.dedupe_window = dedupe_window;
  JUNCTION_ASSIGN_OR_RETURN(MemoryRun run, RunBrokerMemory(dir, load));
  rows.push_back(
      Measured(name + ": RSS before", static_cast<double>(run.rss_before) / kMiB, "MiB"));
  double after = static_cast<double>(run.rss_after) / kMiB;
  rows.push_back(WithGoal(Measured(name + ": RSS after", after, "MiB"),
                          fmt::format("< {:.0f}", kMemoryGoal), after < kMemoryGoal));
  double peak = static_cast<double>(run.peak) / kMiB;
  rows.push_back(WithGoal(
      Measured(name + (run.peak_reset ? ": peak (VmHWM)" : ": peak (VmHWM, whole process)"), peak,
               "MiB"),
      fmt::format("< {:.0f}", kMemoryGoal), peak < kMemoryGoal));
  rows.push_back(Measured(name + ": fill",
                          run.fill_seconds > 0 ? run.published / run.fill_seconds : 0, "msgs/s"));
  rows.push_back(Compared(name + ": group backlog", static_cast<double>(run.backlog), "msgs",
                          static_cast<double>(run.published)));
  rows.push_back(Measured(name + ": group in flight", static_cast<double>(run.in_flight), "msgs"));
  return OkStatus();
}

}  // namespace

Result<BrokerSuiteResult> RunBrokerSuite(const BrokerSuiteOptions& options) {
  std::filesystem::path parent = options.dir.empty() ? DefaultScratchParent() : options.dir;
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<ScratchDir> scratch, ScratchDir::Create(parent));
  BrokerSuiteResult result;
  result.dir = scratch->path();
  JUNCTION_ASSIGN_OR_RETURN(result.filesystem, DescribeFilesystem(scratch->path()));
  Progress(options, fmt::format("scratch directory {} ({})", result.dir.string(),
                                result.filesystem.ToString()));
  const std::pair<std::uint32_t, int> cases[] = {{1, 1}, {1, 4}, {8, 1}, {8, 4}};
  for (const auto& [partitions, consumers] : cases) {
    if (!options.throughput) break;
    JUNCTION_RETURN_IF_ERROR(
        RunThroughputCase(options, *scratch, partitions, consumers, result.rows));
  }
  if (options.latency) JUNCTION_RETURN_IF_ERROR(RunLatency(options, *scratch, result.rows));
  if (options.memory) {
    // Without the dedupe window first (what the group itself costs), then the
    // scenario as specified (default topic options).
    JUNCTION_RETURN_IF_ERROR(RunMemory(options, *scratch, Duration::zero(), result.rows));
    JUNCTION_RETURN_IF_ERROR(RunMemory(options, *scratch, std::nullopt, result.rows));
  }
  return result;
}

}  // namespace junction::bench
