#pragma once

// Running junctiond in the foreground: its configuration keys (broker.*),
// and the life cycle shared by apps/junctiond and `junction broker`.

#include <cstdio>

#include "junction/config.h"
#include "junction/result.h"
#include "server/server.h"

namespace junction::server {

// broker.data_dir, broker.listen, broker.admin, broker.shards, broker.max_connections,
// broker.max_frame_bytes, broker.max_message_bytes, broker.heartbeat
// (the fsync policy is storage.fsync).
Status AddConfigKeys(config::Schema& schema);

// InvalidArgument naming the key and where its value came from.
Result<ServerOptions> OptionsFromConfig(const config::Config& config);

// Starts the server, prints where it listens and how to use it on `banner`
// (nullptr: nothing), then waits for SIGTERM or SIGINT: the first stops it
// gracefully (Server::Stop), a second one during the stop exits at once
// (status 130). Returns the process's exit status: 0 after a clean stop.
// Blocks SIGTERM and SIGINT in the calling thread (call it before starting
// other threads, so that they inherit the mask).
int RunDaemon(const ServerOptions& options, std::FILE* banner);

}  // namespace junction::server
