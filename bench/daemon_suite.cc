#include "bench/daemon_suite.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/bus_bench.h"
#include "bench/cpu_time.h"
#include "bench/log_scenarios.h"
#include "bench/nats_peer.h"
#include "core/affinity.h"
#include "server/server.h"

namespace junction::bench {
namespace {

constexpr double kDaemonGoal = 0.80;
constexpr double kDurableGoal = 1'000'000;
constexpr double kPubSubGoal = 2'000'000;
constexpr double kRequestGoal = 2.2;  // x the raw round trip
// The daemon and in-process queue loads take turns, `msgs` / kRounds each,
// so that a machine whose speed drifts within a minute (this VM's does)
// moves both alike; the ratio is of the totals.
constexpr int kRounds = 3;

void Progress(const DaemonSuiteOptions& options, const std::string& line) {
  if (options.progress) options.progress(line);
}

BusBenchOptions Load(const DaemonSuiteOptions& options, BusScenario scenario, std::string url,
                     std::uint32_t batch = 1) {
  BusBenchOptions load;
  load.url = std::move(url);
  load.scenario = scenario;
  load.msgs = scenario == BusScenario::kRequestReply ? options.request_msgs : options.msgs;
  load.size = options.size;
  load.producers = options.producers;
  load.consumers = options.consumers;
  load.partitions = options.partitions;
  load.in_flight = scenario == BusScenario::kRequestReply ? 1 : options.in_flight;
  load.batch = batch;
  return load;
}

// A junctiond in this process on a fresh directory of `scratch`.
Result<std::unique_ptr<server::Server>> StartDaemon(ScratchDir& scratch, const std::string& name,
                                                    const std::string& fsync) {
  JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path dir, scratch.FreshSubdir(name));
  server::ServerOptions options;
  options.data_dir = dir;
  options.fsync = fsync;
  options.listen = "127.0.0.1:0";
  options.shards = 2;
  return server::Server::Start(options);
}

Result<BusBenchResult> Run(const DaemonSuiteOptions& options, BusScenario scenario,
                           const std::string& url, std::uint32_t batch = 1,
                           const std::string& round = "") {
  Progress(options, fmt::format("{} on {}{}{}", BusScenarioName(scenario), url,
                                batch > 1 ? fmt::format(", batches of {}", batch) : "", round));
  BusBenchOptions load = Load(options, scenario, url, batch);
  if (!round.empty()) load.msgs = std::max<std::uint64_t>(1, load.msgs / kRounds);
  return RunBusBench(load);
}

// Rounds of one load added up: ops over the summed seconds, latencies merged.
struct Rounds {
  std::uint64_t ops = 0;
  double seconds = 0;
  std::unique_ptr<obs::LatencyHistogram> latency;
  void Add(const BusBenchResult& r) {
    ops += r.ops;
    seconds += r.seconds;
    if (r.latency == nullptr) return;
    if (latency == nullptr) latency = std::make_unique<obs::LatencyHistogram>();
    latency->Merge(*r.latency);
  }
  double ops_per_second() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

// CPU seconds this process has used: the daemon's shard threads ("jn-shard-N",
// read from /proc/self/task) and all of it (getrusage, which keeps the time
// of threads that have exited: each load's client threads do). The rest is
// the client's, and the daemon's blocking pool's (fdatasync).
struct CpuTimes {
  double shards = 0;
  double process = 0;
};

CpuTimes ReadCpuTimes() {
  CpuTimes t;
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) == 0) {
    t.process = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  }
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name.starts_with("jn-shard-")) {
      t.shards += TaskCpuSeconds(task.path());
    }
  }
  return t;
}

// Rows saying where a load's CPU went, per message: the daemon's shards, the
// rest of the process, and the rate at which every CPU this process may use
// would be busy at that cost (the ceiling for this load as the code stands: a goal
// above it needs less CPU per message, not more overlap).
void AddCpuRows(std::vector<BenchRow>& rows, const std::string& load, const CpuTimes& before,
                const CpuTimes& after, std::uint64_t msgs) {
  if (msgs == 0) return;
  const double shards = after.shards - before.shards;
  const double rest = std::max(0.0, (after.process - before.process) - shards);
  const double per_msg = 1e6 / static_cast<double>(msgs);
  rows.push_back(Measured(load + ": daemon shards CPU per msg", shards * per_msg, "us"));
  rows.push_back(Measured(load + ": client + blocking pool CPU per msg", rest * per_msg, "us"));
  // The CPUs this process may run on (affinity), not every CPU online.
  Result<std::vector<int>> allowed = ThreadCpus();
  const std::size_t cpus = allowed.ok() ? allowed->size() : 0;
  if (shards + rest > 0 && cpus > 0) {
    rows.push_back(Measured(fmt::format("{}: rate with all {} CPUs busy at that cost", load, cpus),
                            static_cast<double>(cpus) * static_cast<double>(msgs) / (shards + rest),
                            "msgs/s"));
  }
}

// NATS core pub/sub, the same messages count and size, beside the daemon's
// pipelined pub/sub just measured: rates, their ratio, and the CPU per
// message of each server (the daemon's shards against nats-server).
Status AddNatsRows(std::vector<BenchRow>& rows, const DaemonSuiteOptions& options,
                   const std::filesystem::path& scratch, double daemon_rate,
                   double daemon_shard_seconds, std::uint64_t daemon_msgs) {
  NatsPeerOptions peer;
  peer.msgs = options.msgs;
  peer.size = options.size;
  peer.server = options.nats_server;
  peer.log = scratch / "nats-server.log";
  Progress(options, "pubsub on nats-server (core NATS), through cnats");
  JUNCTION_ASSIGN_OR_RETURN(NatsPeerResult nats, RunNatsPubSub(peer));
  const double rate = nats.msgs_per_second();
  rows.push_back(Measured(fmt::format("vs nats-server: core NATS pub/sub (no storage), nats-server "
                                      "{}, cnats 1 publisher 1 subscriber",
                                      nats.server_version),
                          rate, "msgs/s"));
  rows.push_back(Compared("vs nats-server: junctiond pubsub, batched / core NATS", daemon_rate,
                          "msgs/s", rate));
  const double per_msg = 1e6 / static_cast<double>(std::max<std::uint64_t>(1, nats.msgs));
  if (daemon_msgs > 0) {
    rows.push_back(Compared("vs nats-server: junctiond shards / nats-server CPU per msg",
                            daemon_shard_seconds * 1e6 / static_cast<double>(daemon_msgs), "us",
                            nats.server_cpu_seconds * per_msg));
  }
  rows.push_back(Measured("vs nats-server: cnats client (this process) CPU per msg",
                          nats.client_cpu_seconds * per_msg, "us"));
  return Status();
}

std::string Shape(const DaemonSuiteOptions& o) {
  return fmt::format("{}p x{} {}c {}part", o.producers, o.in_flight, o.consumers, o.partitions);
}

}  // namespace

Result<DaemonSuiteResult> RunDaemonSuite(const DaemonSuiteOptions& options) {
  // Said before any load runs, not after a minute of them.
  if (options.nats_server != "none" && FindNatsServer(options.nats_server).empty()) {
    return NotFoundError(fmt::format(
        "no nats-server{} for the NATS core peer (scripts/setup installs Debian's nats-server; "
        "--nats-server none runs without it)",
        options.nats_server.empty() ? "" : " at " + options.nats_server.string()));
  }
  std::filesystem::path parent = options.dir.empty() ? DefaultScratchParent() : options.dir;
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<ScratchDir> scratch, ScratchDir::Create(parent));
  DaemonSuiteResult result;
  result.dir = scratch->path();
  JUNCTION_ASSIGN_OR_RETURN(result.filesystem, DescribeFilesystem(scratch->path()));

  Progress(options, "baseline: loopback TCP round trip");
  JUNCTION_ASSIGN_OR_RETURN(BaselineResult baseline, RunBaseline(scratch->path(), Seconds(2)));
  double rtt_us = baseline.tcp_round_trip->ValueAtQuantile(0.5) / 1000.0;
  result.rows.push_back(Measured("baseline: tcp round trip 100 B p50", rtt_us, "us"));
  result.rows.push_back(Measured("baseline: write+fdatasync 100 B p50",
                                 baseline.fdatasync->ValueAtQuantile(0.5) / 1000.0, "us"));

  for (const char* policy : {"always", "never"}) {
    std::string fsync = policy;
    JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<server::Server> daemon,
                              StartDaemon(*scratch, "daemon-" + fsync, fsync));
    std::string daemon_url = "junction://" + daemon->address();
    // The goal's pair, in turns: the daemon, then in-process file://.
    Rounds via;
    Rounds in_process;
    std::vector<double> round_ratios;
    Status failed;
    for (int r = 1; r <= kRounds && failed.ok(); ++r) {
      std::string round = fmt::format(" (round {}/{})", r, kRounds);
      Result<BusBenchResult> daemon_round = Run(options, BusScenario::kQueue, daemon_url, 1, round);
      if (!daemon_round.ok()) {
        failed = daemon_round.status();
        break;
      }
      Result<std::filesystem::path> local =
          scratch->FreshSubdir(fmt::format("file-{}-{}", fsync, r));
      if (!local.ok()) {
        failed = local.status();
        break;
      }
      Result<BusBenchResult> local_round =
          Run(options, BusScenario::kQueue,
              "file://" + std::filesystem::absolute(*local).string() + "?fsync=" + fsync, 1, round);
      if (!local_round.ok()) {
        failed = local_round.status();
        break;
      }
      if (local_round->ops_per_second() > 0) {
        round_ratios.push_back(daemon_round->ops_per_second() / local_round->ops_per_second());
      }
      via.Add(*daemon_round);
      in_process.Add(*local_round);
    }
    // The second load runs only where its goal is stated: request-reply
    // with fsync=always, the non-durable pub/sub with fsync=never.
    BusScenario second = fsync == "always" ? BusScenario::kRequestReply : BusScenario::kPubSub;
    Result<BusBenchResult> other =
        failed.ok() ? Run(options, second, daemon_url) : Result<BusBenchResult>(failed);
    // The throughput goal's load with pipelined publishers: the durable
    // queue with fsync=always, the pub/sub with fsync=never.
    BusScenario goal = fsync == "always" ? BusScenario::kQueue : BusScenario::kPubSub;
    const CpuTimes cpu_before = ReadCpuTimes();
    Result<BusBenchResult> pipelined = other.ok() ? Run(options, goal, daemon_url, options.batch)
                                                  : Result<BusBenchResult>(other.status());
    const CpuTimes cpu_after = ReadCpuTimes();
    Status stopped = daemon->Stop();
    JUNCTION_RETURN_IF_ERROR(other.status());
    JUNCTION_RETURN_IF_ERROR(pipelined.status());
    JUNCTION_RETURN_IF_ERROR(stopped);
    // The same pipelined load on the in-process broker, for the ratio: what
    // the broker itself reaches on this machine bounds what the daemon can.
    JUNCTION_ASSIGN_OR_RETURN(std::filesystem::path local_pipelined_dir,
                              scratch->FreshSubdir(fmt::format("file-{}-pipelined", fsync)));
    JUNCTION_ASSIGN_OR_RETURN(
        BusBenchResult local_pipelined,
        Run(options, goal,
            "file://" + std::filesystem::absolute(local_pipelined_dir).string() + "?fsync=" + fsync,
            options.batch));
    std::string batched =
        fmt::format("{}p x{} batches of {}", options.producers, options.in_flight, options.batch);

    std::string tag = fmt::format("fsync={} {}", fsync, Shape(options));
    double ratio_value = via.ops_per_second();
    double peer = in_process.ops_per_second();
    result.rows.push_back(WithGoal(
        Compared("queue via junctiond / file:// " + tag, ratio_value, "msgs/s", peer),
        fmt::format(">= {:.2f}", kDaemonGoal), peer > 0 && ratio_value / peer >= kDaemonGoal));
    if (!round_ratios.empty()) {
      auto [low, high] = std::minmax_element(round_ratios.begin(), round_ratios.end());
      result.rows.push_back(
          Measured(fmt::format("queue via junctiond / file:// fsync={}, lowest of {} rounds", fsync,
                               kRounds),
                   *low, "ratio"));
      result.rows.push_back(
          Measured(fmt::format("queue via junctiond / file:// fsync={}, highest of {} rounds",
                               fsync, kRounds),
                   *high, "ratio"));
    }
    if (fsync == "always") {
      result.rows.push_back(
          Measured("queue via junctiond, durable " + tag, via.ops_per_second(), "msgs/s"));
      result.rows.push_back(WithGoal(
          Compared(fmt::format("queue via junctiond, durable, pipelined fsync=always {} {}c "
                               "/ file:// in process",
                               batched, options.consumers),
                   pipelined->ops_per_second(), "msgs/s", local_pipelined.ops_per_second()),
          ">= 1000000", pipelined->ops_per_second() >= kDurableGoal));
      AddCpuRows(result.rows, "durable queue, batched", cpu_before, cpu_after, pipelined->ops);
      if (via.latency != nullptr) {
        result.rows.push_back(Measured("queue via junctiond p50 (send->received) " + tag,
                                       via.latency->ValueAtQuantile(0.5) / 1000.0, "us"));
      }
      double p50 = other->latency->ValueAtQuantile(0.5) / 1000.0;
      result.rows.push_back(WithGoal(
          Compared("req via junctiond p50 / tcp round trip", p50, "us", rtt_us),
          fmt::format("<= {:.1f}x", kRequestGoal), rtt_us > 0 && p50 / rtt_us <= kRequestGoal));
    } else {
      result.rows.push_back(
          Measured("pubsub via junctiond, non-durable " + tag, other->ops_per_second(), "msgs/s"));
      result.rows.push_back(WithGoal(
          Compared(fmt::format("pubsub via junctiond, non-durable, pipelined fsync=never {} {}c "
                               "/ file:// in process",
                               batched, options.consumers),
                   pipelined->ops_per_second(), "msgs/s", local_pipelined.ops_per_second()),
          ">= 2000000", pipelined->ops_per_second() >= kPubSubGoal));
      AddCpuRows(result.rows, "pubsub, batched", cpu_before, cpu_after, pipelined->ops);
      if (options.nats_server != "none") {
        JUNCTION_RETURN_IF_ERROR(AddNatsRows(result.rows, options, scratch->path(),
                                             pipelined->ops_per_second(),
                                             cpu_after.shards - cpu_before.shards, pipelined->ops));
      }
    }
  }
  return result;
}

}  // namespace junction::bench
