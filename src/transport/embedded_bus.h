#pragma once

// The embedded transports: mem:// and file:// run a broker::Broker in this
// process, on a shard thread of its own (or on BusOptions::executor) with a
// blocking pool for writes and fdatasyncs. Calls from other executors hop to
// the shard and resume on the caller's executor; calls made on the shard run
// in place.

#include <filesystem>
#include <memory>

#include "junction/bus.h"
#include "storage/options.h"

namespace junction::transport {

struct EmbeddedConfig {
  bool durable = true;        // false: mem:// (an in-memory Env)
  std::filesystem::path dir;  // file:// only
  storage::LogOptions log{};
  std::size_t max_group_entries = 10000;  // BrokerOptions::max_group_entries
  // Threads for writes and fdatasyncs: partitions flush at once up to this
  // many (with 4, 8 partitions under load waited for each other's fsyncs).
  std::size_t blocking_threads = 8;
};

// Blocking: opens (recovers) the broker before returning.
Result<std::unique_ptr<Bus>> OpenEmbeddedBus(EmbeddedConfig config, const BusOptions& options);

}  // namespace junction::transport
