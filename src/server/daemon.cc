#include "server/daemon.h"

#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "junction/log.h"
#include "server/admin.h"
#include "server/brokers.h"
#include "storage/config.h"

namespace junction::server {

Status AddConfigKeys(config::Schema& schema) {
  ServerOptions d;
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::StringKey(
      "broker.data_dir", "junction-data", "junctiond: the directory of its topics and groups")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(
      config::StringKey("broker.listen", d.listen,
                        "junctiond: HOST:PORT of the wire protocol (loopback by default)")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::IntKey(
      "broker.shards", 0, 0, 256, "junctiond: event-loop threads (0: one per CPU)")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::IntKey(
      "broker.brokers", 0, 0, static_cast<std::int64_t>(Brokers::kMaxBrokers),
      "junctiond: brokers a new data directory spreads its topics over (0: one per shard; a "
      "directory keeps the count it was made with)")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::IntKey(
      "broker.blocking_threads", 8, 1, 256,
      "junctiond: write and fdatasync threads of each broker (partitions flush at once up to "
      "this many)")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::StringKey(
      "broker.admin", "",
      "junctiond: HOST:PORT of /metrics, /livez, /readyz (loopback; empty: no admin port)")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(
      config::IntKey("broker.max_connections", static_cast<std::int64_t>(d.max_connections), 1,
                     1'000'000, "junctiond: open connections at most")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::ByteSizeKey(
      "broker.max_frame_bytes", d.max_frame_bytes, "junctiond: largest wire frame accepted")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::ByteSizeKey(
      "broker.max_message_bytes", d.max_message_bytes, "junctiond: largest message stored")));
  JUNCTION_RETURN_IF_ERROR(
      schema.Add(config::DurationKey("broker.heartbeat", d.heartbeat,
                                     "junctiond: idle time before a PING (3x: the peer is gone)")));
  return OkStatus();
}

Result<ServerOptions> OptionsFromConfig(const config::Config& config) {
  ServerOptions o;
  o.data_dir = config.GetString("broker.data_dir");
  o.listen = config.GetString("broker.listen");
  o.admin_address = config.GetString("broker.admin");
  o.shards = static_cast<std::size_t>(config.GetInt("broker.shards"));
  o.brokers = static_cast<std::size_t>(config.GetInt("broker.brokers"));
  o.blocking_threads = static_cast<std::size_t>(config.GetInt("broker.blocking_threads"));
  o.max_connections = static_cast<std::size_t>(config.GetInt("broker.max_connections"));
  std::uint64_t frame = config.GetByteSize("broker.max_frame_bytes");
  if (frame < (64u << 10) || frame > (64u << 20)) {
    return InvalidArgumentError("broker.max_frame_bytes (" +
                                config.SourceOf("broker.max_frame_bytes").ToString() +
                                "): between 64KiB and 64MiB");
  }
  o.max_frame_bytes = static_cast<std::uint32_t>(frame);
  o.max_message_bytes = config.GetByteSize("broker.max_message_bytes");
  if (o.max_message_bytes + (64u << 10) > o.max_frame_bytes) {
    return InvalidArgumentError("broker.max_message_bytes (" +
                                config.SourceOf("broker.max_message_bytes").ToString() +
                                ") must be at least 64KiB below broker.max_frame_bytes");
  }
  o.heartbeat = config.GetDuration("broker.heartbeat");
  if (o.heartbeat < std::chrono::milliseconds(100)) {
    return InvalidArgumentError("broker.heartbeat (" +
                                config.SourceOf("broker.heartbeat").ToString() +
                                "): at least 100ms");
  }
  JUNCTION_ASSIGN_OR_RETURN(storage::LogOptions log, storage::LogOptionsFromConfig(config));
  o.fsync = log.fsync.ToString();
  return o;
}

int RunDaemon(const ServerOptions& options, std::FILE* banner) {
  // Each connection is a descriptor: take every one the hard limit allows
  // (as nginx and nats-server do), and say so when that is fewer than
  // broker.max_connections needs.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &files);
  }
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY &&
      files.rlim_cur < options.max_connections + 256) {
    log::Warn("junctiond: the open-files limit is below broker.max_connections",
              {{"limit", static_cast<std::uint64_t>(files.rlim_cur)},
               {"max_connections", static_cast<std::uint64_t>(options.max_connections)}});
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Result<std::unique_ptr<Server>> server = Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "junctiond: %s\n", server.status().message().c_str());
    return 1;
  }
  std::unique_ptr<AdminServer> admin;
  if (!options.admin_address.empty()) {
    Result<std::unique_ptr<AdminServer>> started =
        AdminServer::Start(options.admin_address, **server);
    if (!started.ok()) {
      std::fprintf(stderr, "junctiond: %s\n", started.status().message().c_str());
      (void)(*server)->Stop();
      return 1;
    }
    admin = std::move(*started);
  }
  if (banner != nullptr) {
    std::string url = "junction://" + (*server)->address();
    std::fprintf(banner,
                 "junctiond is listening on %s (data in %s, fsync %s).\n"
                 "Programs reach it with Bus::Open(\"%s\") (include/junction/bus.h);\n"
                 "from a shell (add --server %s when not the default):\n"
                 "  junction pub demo 'hello {{n}}' --count 3\n"
                 "  junction sub demo --group readers --from earliest\n"
                 "  junction bench queue --server %s\n"
                 "Stop with Ctrl-C: it finishes what is in flight; a second Ctrl-C exits at "
                 "once.\n",
                 url.c_str(), options.data_dir.string().c_str(), options.fsync.c_str(), url.c_str(),
                 url.c_str(), url.c_str());
    if (admin) {
      std::fprintf(banner, "Metrics: http://%s/metrics (and /livez, /readyz).\n",
                   admin->address().c_str());
    }
    std::fflush(banner);
  }
  int received = 0;
  while (sigwait(&signals, &received) != 0) {
  }
  log::Info("junctiond: stopping", {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
  std::atomic<bool> stopped{false};
  Status stop_status;
  std::thread stopper([&] {
    stop_status = (*server)->Stop();
    stopped.store(true);
    // Wakes the waiting thread below.
    kill(getpid(), SIGTERM);
  });
  while (true) {
    int again = 0;
    sigwait(&signals, &again);
    if (stopped.load()) break;
    // A second signal during the stop: leave now, as asked.
    std::fprintf(stderr, "junctiond: second signal, exiting without a clean shutdown\n");
    std::_Exit(130);
  }
  stopper.join();
  admin.reset();  // after the stop: /readyz answered 503 while it ran
  server->reset();
  if (!stop_status.ok()) {
    std::fprintf(stderr, "junctiond: stopped with an error: %s\n", stop_status.message().c_str());
    return 1;
  }
  log::Info("junctiond: stopped cleanly");
  return 0;
}

}  // namespace junction::server
