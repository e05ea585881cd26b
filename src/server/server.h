#pragma once

// junctiond as a library: the embedded broker shared by many processes over
// the wire protocol (docs/formats/wire.md). apps/junctiond is a thin main
// over it; tests start it in-process.
//
// Threads: `shards` io_contexts, each run by one thread. The topics are
// spread over brokers (brokers.h), broker i on shard i % shards
// (BusOptions::executor: a session there reaches it without a hop);
// connections are spread over all shards round robin and forward each call
// to the shard of the topic's broker. Writes and fdatasyncs run on the
// buses' blocking threads, never on a shard.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "codec/wire.h"
#include "junction/bus.h"
#include "junction/clock.h"
#include "junction/result.h"
#include "junction/status.h"

namespace junction::server {

struct ServerOptions {
  // The bus the daemon serves: file:///dir?fsync=... (the default is
  // file://<data_dir>?fsync=<fsync>), or mem:// for tests.
  std::filesystem::path data_dir;
  std::string fsync = "always";  // always | never | interval=200ms
  std::string bus_url;           // overrides data_dir and fsync when set
  // host:port to listen on; port 0 picks a free one (see Server::port()).
  std::string listen = "127.0.0.1:7522";
  std::size_t shards = 0;  // 0: one per CPU the process may run on
  // Brokers the topics are spread over, for a new data directory (an
  // existing one keeps the count it was made with: brokers.h). 0: one per
  // shard, at most Brokers::kMaxBrokers (key broker.brokers).
  std::size_t brokers = 0;
  // Threads each file:// broker writes and fdatasyncs on (its partitions
  // flush at once up to this many); 0: the bus's default, 8 (key
  // broker.blocking_threads). Ignored with bus_url.
  std::size_t blocking_threads = 0;
  // A connection whose first request about a topic (PUBLISH, SUBSCRIBE,
  // REQUEST, RESPOND) names one on another shard's broker moves to that
  // shard before the request runs, so its calls need no thread hop. (Not
  // a configuration key; tests turn it off to keep connections where
  // round robin put them.)
  bool place_connections = true;
  std::size_t max_connections = 10'000;
  std::uint32_t max_frame_bytes = 16u << 20;
  std::uint64_t max_message_bytes = 1u << 20;
  // Requests a connection may have unanswered before the server stops
  // reading from it.
  std::size_t max_requests_per_connection = 4096;
  // Bytes a connection may have queued for sending before it stops
  // fetching deliveries and reading requests.
  std::size_t max_send_buffer = 1u << 20;
  Duration heartbeat = std::chrono::seconds(5);
  Duration handshake_timeout = std::chrono::seconds(10);
  Duration frame_timeout = std::chrono::seconds(30);
  // Named in the answer to an HTTP request on the wire port ("" if none).
  std::string admin_address;
  // The newest wire version offered (codec::kMinWireVersion to
  // kWireVersion): tests run clients against a daemon of an older version
  // with it. (Not a configuration key.)
  std::uint16_t max_wire_version = codec::kWireVersion;
  const Clock* clock = nullptr;  // the broker's clock; nullptr: RealClock()
  Env* env = nullptr;            // file:// only; nullptr: the real file system
  BusOptions bus{};              // the rest (clock, env and executor are set here)
};

// Counters for /metrics and tests. Read from any thread.
struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t connections_refused = 0;  // not Junction, limit reached, bad handshake
  std::uint64_t frames_received = 0;
  std::uint64_t protocol_errors = 0;  // connections closed for breaking the protocol
  bool accepting = true;              // false once Stop() began
  // Connections moved to the shard of their first topic's broker
  // (ServerOptions::place_connections).
  std::uint64_t connections_moved = 0;
};

// What the broker holds, for /metrics (Server::broker_figures).
struct BrokerFigures {
  static constexpr std::size_t kMaxTopics = 1000;
  static constexpr std::size_t kMaxGroups = 10000;
  std::vector<TopicInfo> topics;  // by name, at most kMaxTopics
  std::vector<GroupInfo> groups;  // durable groups by topic and name, at most kMaxGroups
  bool complete = true;           // false: some were past the caps
};

class Server {
 public:
  // Opens the brokers (brokers.h), binds the listener and starts the shards.
  // Unavailable when the address is taken or the data directory is held.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options);
  // Stop(), if not yet done.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address ("127.0.0.1:41234") and port.
  std::string address() const;
  std::uint16_t port() const;
  ServerStats stats() const;
  // The brokers' topics and durable groups, read on their shards (behind
  // whatever each shard has queued). Waits at most `timeout`: Unavailable
  // when the shards have not answered by then, while an earlier read still
  // runs (one at a time), and once Stop began. Call from a thread that is
  // not a shard.
  Result<BrokerFigures> broker_figures(Duration timeout) const;

  // Graceful: stops accepting, tells every connection GOAWAY, answers what
  // was already read, waits up to `drain` for the connections to finish,
  // then closes the brokers' buses (stores in flight finish, group state is
  // persisted, the clean-shutdown markers written). Idempotent; call from a
  // thread that is not a shard. Returns the first failed Close status.
  Status Stop(Duration drain = std::chrono::seconds(10));

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace junction::server
