#include "bench_bus_command.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "bench/bus_bench.h"
#include "bench/log_scenarios.h"
#include "cli.h"
#include "junction/config.h"

namespace junction::cli {
namespace {

constexpr const char* kScenarios[] = {"pub", "sub", "pubsub", "queue", "req"};

std::string Micros(std::uint64_t nanos) {
  char text[32];
  double us = static_cast<double>(nanos) / 1000;
  if (us >= 1000) {
    std::snprintf(text, sizeof text, "%.2f ms", us / 1000);
  } else if (us >= 100) {
    std::snprintf(text, sizeof text, "%.0f us", us);
  } else {
    std::snprintf(text, sizeof text, "%.1f us", us);
  }
  return text;
}

std::string Grouped(double value) {
  std::string digits = std::to_string(std::llround(value));
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Fixed2(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", value);
  return text;
}

boost::json::object LatencyJson(const obs::LatencyHistogram& h) {
  boost::json::object object;
  object["count"] = h.count();
  object["p50_us"] = h.ValueAtQuantile(0.50) / 1000.0;
  object["p90_us"] = h.ValueAtQuantile(0.90) / 1000.0;
  object["p99_us"] = h.ValueAtQuantile(0.99) / 1000.0;
  object["p999_us"] = h.ValueAtQuantile(0.999) / 1000.0;
  object["max_us"] = h.max() / 1000.0;
  return object;
}

std::string LatencyLine(const obs::LatencyHistogram& h) {
  return "p50 " + Micros(h.ValueAtQuantile(0.50)) + "  p90 " + Micros(h.ValueAtQuantile(0.90)) +
         "  p99 " + Micros(h.ValueAtQuantile(0.99)) + "  p99.9 " +
         Micros(h.ValueAtQuantile(0.999)) + "  max " + Micros(h.max());
}

// The URL with fsync=<policy> added; file:// only.
Result<std::string> WithFsync(std::string url, const std::string& fsync) {
  if (fsync.empty()) return url;
  if (!url.starts_with("file://")) {
    return InvalidArgumentError(
        "--fsync applies to file:// URLs; a junctiond's fsync is set where it starts "
        "(junction broker --fsync)");
  }
  url += url.find('?') == std::string::npos ? "?" : "&";
  return url + "fsync=" + fsync;
}

int RunScenario(const Context& context, bench::BusScenario scenario, const BusBenchFlags& flags) {
  bench::BusBenchOptions options;
  Result<std::string> url =
      WithFsync(flags.server.empty() ? context.config.GetString("url") : flags.server, flags.fsync);
  if (!url.ok()) return Fail(context, "bench", url.status());
  options.url = *url;
  options.scenario = scenario;
  options.msgs = flags.msgs;
  options.size = flags.size;
  options.producers = flags.producers;
  options.consumers = flags.consumers;
  options.partitions = flags.partitions;
  options.in_flight = flags.in_flight != 0
                          ? flags.in_flight
                          : (scenario == bench::BusScenario::kRequestReply ? 1 : 64);
  options.batch = flags.batch;
  if (!flags.bus.empty()) options.bus_per_client = flags.bus == "per-client";
  options.rate = flags.rate;
  options.topic = flags.topic;
  std::string name(bench::BusScenarioName(scenario));
  bool live = !flags.no_progress && ::isatty(STDERR_FILENO) != 0;
  if (live) {
    options.progress = [&](const bench::BusBenchProgress& p) {
      double rate = p.seconds > 0 ? p.done / p.seconds : 0;
      context.err << "\r\x1b[K" << name << "  " << Grouped(p.done) << "/" << Grouped(p.total)
                  << "  " << Grouped(rate) << " ops/s  " << Fixed2(p.seconds) << std::flush;
    };
  }
  Result<bench::BusBenchResult> result = bench::RunBusBench(options);
  if (live) context.err << "\r\x1b[K" << std::flush;
  if (!result.ok()) return Fail(context, "bench " + name, result.status());
  double mb = result->seconds > 0 ? result->data_bytes / result->seconds / 1e6 : 0;
  if (context.json) {
    boost::json::object object;
    object["scenario"] = name;
    object["url"] = options.url;
    object["topic"] = result->topic;
    object["msgs"] = options.msgs;
    object["size"] = options.size;
    object["producers"] = options.producers;
    object["consumers"] = options.consumers;
    object["partitions"] = options.partitions;
    object["in_flight"] = options.in_flight;
    object["batch"] = options.batch;
    object["bus_per_client"] = result->bus_per_client;
    object["rate"] = options.rate;
    object["ops"] = result->ops;
    object["errors"] = result->errors;
    object["seconds"] = result->seconds;
    object["ops_per_second"] = result->ops_per_second();
    object["mb_per_second"] = mb;
    object["latency_of"] = result->latency_of;
    object["latency"] = result->latency_of.empty()
                            ? boost::json::value(nullptr)
                            : boost::json::value(LatencyJson(*result->latency));
    context.out << boost::json::serialize(object) << '\n';
    return kExitOk;
  }
  context.out << Styled(context, kBold, "junction bench " + name) << ": " << options.url << ", "
              << Grouped(options.msgs) << " msgs of " << options.size << " B, " << options.producers
              << " producer(s) x " << options.in_flight << " in flight"
              << (options.batch > 1 ? " of " + std::to_string(options.batch) + " msgs" : "") << ", "
              << (scenario == bench::BusScenario::kPub
                      ? std::string()
                      : std::to_string(options.consumers) + " consumer(s), ")
              << options.partitions << " partition(s)"
              << (result->bus_per_client ? ", a bus per client" : ", one shared bus")
              << (options.rate > 0 ? ", rate " + Grouped(options.rate) + "/s" : "") << '\n';
  context.out << "throughput  " << Grouped(result->ops_per_second()) << " ops/s  " << Fixed2(mb)
              << " MB/s  (" << Grouped(result->ops) << " in " << Fixed2(result->seconds) << " s, "
              << result->errors << " errors)\n";
  if (!result->latency_of.empty()) {
    context.out << "latency     " << LatencyLine(*result->latency) << "  (" << result->latency_of
                << ", from the intended send time)\n";
  }
  return kExitOk;
}

int RunBaseline(const Context& context, const BusBenchFlags& flags) {
  std::filesystem::path dir =
      flags.dir.empty() ? bench::DefaultScratchParent() : std::filesystem::path(flags.dir);
  Result<bench::BaselineResult> result = bench::RunBaseline(dir, bench::Seconds(flags.seconds));
  if (!result.ok()) return Fail(context, "bench baseline", result.status());
  if (context.json) {
    boost::json::object object;
    object["tcp_round_trip"] = LatencyJson(*result->tcp_round_trip);
    object["fdatasync"] = LatencyJson(*result->fdatasync);
    object["dir"] = dir.string();
    context.out << boost::json::serialize(object) << '\n';
    return kExitOk;
  }
  context.out << Styled(context, kBold, "junction bench baseline") << ": this machine's floors, "
              << Fixed2(flags.seconds) << " s each\n"
              << "tcp round trip (100 B, loopback)  " << LatencyLine(*result->tcp_round_trip)
              << "  (" << Grouped(result->tcp_round_trip->count() / flags.seconds) << "/s)\n"
              << "write + fdatasync (100 B, " << dir.string() << ")  "
              << LatencyLine(*result->fdatasync) << "  ("
              << Grouped(result->fdatasync->count() / flags.seconds) << "/s)\n";
  return kExitOk;
}

}  // namespace

void AddBusBenchCommands(CLI::App& bench, BusBenchFlags& flags) {
  const char* about[] = {
      "Publish only; latency until each publish is acked",
      "Drain a backlog published before the clock starts (group, each delivery acked)",
      "Fan-out: each consumer an ephemeral subscription receiving every message",
      "Durable queue: a group of consumers acking each delivery; latency send -> receipt",
      "Request-reply: producers request, consumers echo; latency request -> reply"};
  for (std::size_t i = 0; i < std::size(kScenarios); ++i) {
    CLI::App* command = bench.add_subcommand(kScenarios[i], about[i]);
    command->add_option("-s,--server", flags.server, "Bus URL (default: the `url` key)");
    command->add_option("--msgs", flags.msgs, "Messages to publish (requests to send)")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{10'000'000'000}));
    command->add_option("--size", flags.size, "Bytes of data per message (>= 16 for latency)")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 20));
    command->add_option("--producers", flags.producers, "Producer threads")
        ->check(CLI::Range(1, 256));
    command->add_option("--consumers", flags.consumers, "Consumer (responder) threads")
        ->check(CLI::Range(1, 256));
    command->add_option("--partitions", flags.partitions, "Partitions of the topic")
        ->check(CLI::Range(1, 1024));
    command
        ->add_option("--in-flight", flags.in_flight,
                     "Publishes (requests) in flight per producer (default 64; req 1)")
        ->check(CLI::Range(1, 65536));
    command
        ->add_option("--batch", flags.batch,
                     "Messages per publish call (one PublishBatch each; default 1)")
        ->check(CLI::Range(1, 100000));
    command
        ->add_option("--bus", flags.bus,
                     "per-client: each producer and consumer opens its own bus on its own thread; "
                     "shared: one bus for all (default: per-client on junction://)")
        ->check(CLI::IsMember({"per-client", "shared"}));
    command->add_option("--rate", flags.rate, "Intended msgs/s over all producers (0: unpaced)")
        ->check(CLI::Range(0.0, 1e9));
    command->add_option("--fsync", flags.fsync, "file:// only: always | never | interval=200ms");
    command->add_option("--topic", flags.topic, "Topic (default: a new bench.<scenario>.<id>)");
    command->add_flag("--no-progress", flags.no_progress, "No live progress line on stderr");
  }
  CLI::App* baseline = bench.add_subcommand(
      "baseline", "This machine's floors: loopback TCP round trip, write + fdatasync");
  baseline->add_option("--dir", flags.dir, "Directory of the fdatasync file");
  baseline->add_option("--seconds", flags.seconds, "Length of each measurement")
      ->check(CLI::Range(0.1, 3600.0));
}

int RunBusBenchCommand(const Context& context, const CLI::App& bench, const BusBenchFlags& flags) {
  for (const char* name : kScenarios) {
    if (bench.got_subcommand(name)) {
      Result<bench::BusScenario> scenario = bench::ParseBusScenario(name);
      return RunScenario(context, *scenario, flags);
    }
  }
  if (bench.got_subcommand("baseline")) return RunBaseline(context, flags);
  return -1;
}

}  // namespace junction::cli
