#pragma once

// junction://host:port: the Bus of a junctiond reached over the wire
// protocol (docs/formats/wire.md). One TCP connection per Bus, served by a
// thread of its own; calls from any executor hop to it and resume on the
// caller's executor.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "junction/bus.h"

namespace junction::transport {

// Which subscriptions send their next FETCH as soon as a DELIVER arrives,
// so the daemon fills the next batch while the caller works through this
// one (URL option `prefetch`; src/transport/README.md, "Prefetch").
enum class Prefetch : std::uint8_t {
  kNone,       // every NextBatch is one FETCH round trip
  kEphemeral,  // subscriptions without a group (the default)
  kAll,        // group members too: a batch fetched ahead is held from the other members
};

struct JunctionConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7522;
  Duration connect_timeout = std::chrono::seconds(5);
  Duration heartbeat = std::chrono::seconds(5);
  Prefetch prefetch = Prefetch::kEphemeral;
};

// Blocking: connects and completes the handshake before returning.
// Unavailable when nothing answers, or the peer is not junctiond.
Result<std::unique_ptr<Bus>> OpenJunctionBus(JunctionConfig config, const BusOptions& options);

}  // namespace junction::transport
