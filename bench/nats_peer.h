#pragma once

// The NATS core pub/sub peer of `junction bench daemon` (issue 5 states its
// pub/sub goal beside NATS core's rate): a nats-server started by this
// process on a loopback port of its choosing, stopped by its PID at the end,
// and driven through cnats (libnats) the way NATS users drive it: one
// connection publishes `msgs` messages of `size` bytes to one subject as
// fast as the client library takes them (it buffers and writes in batches
// by itself), and a second connection's asynchronous subscription counts
// them. Core NATS stores nothing, acknowledges nothing and drops what a slow
// subscriber cannot take; the subscription's pending limits are lifted so
// that a drop cannot shorten the run, and a run that still loses messages
// is an error, not a figure.
//
// Blocking; runs on the calling thread plus the client library's threads.

#include <cstdint>
#include <filesystem>
#include <string>

#include "junction/result.h"

namespace junction::bench {

struct NatsPeerOptions {
  std::uint64_t msgs = 200'000;
  std::size_t size = 100;
  // The server binary; empty: $JUNCTION_NATS_SERVER, else nats-server on
  // $PATH, else /usr/sbin/nats-server (where Debian installs it).
  std::filesystem::path server;
  // Where the server's log goes (created or truncated).
  std::filesystem::path log;
  double timeout_seconds = 120;
};

struct NatsPeerResult {
  std::uint64_t msgs = 0;  // received by the subscriber (all of them)
  double seconds = 0;      // first publish to last receipt
  // CPU seconds of the nats-server process, and of this whole process over
  // the run (the client library's threads and the calling thread, and
  // whatever else of this process ran meanwhile: nothing else does in
  // `junction bench daemon`).
  double server_cpu_seconds = 0;
  double client_cpu_seconds = 0;
  std::string server_version;  // as the server announced it to the client

  double msgs_per_second() const { return seconds > 0 ? static_cast<double>(msgs) / seconds : 0; }
};

// NotFound when there is no nats-server binary; Unavailable when it does not
// start or the client cannot reach it; DataLoss when messages went missing.
Result<NatsPeerResult> RunNatsPubSub(const NatsPeerOptions& options);

// The binary RunNatsPubSub would start, or an empty path.
std::filesystem::path FindNatsServer(const std::filesystem::path& configured = {});

}  // namespace junction::bench
