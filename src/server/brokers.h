#pragma once

// The brokers of one junctiond (internal to src/server): its topics are
// spread over several embedded buses, each run by one shard, and every call
// about a topic goes to the bus that holds it.
//
// Placement. Every name the daemon knows to be a topic, or to be becoming
// one, is in one directory (name -> broker), so a name never lives on two
// brokers: the topics found on disk at start, each topic created since
// (entered before the create is sent, by Create), and the dead-letter
// topics reserved for groups (below). A name not in it goes to broker
// murmur2(name) % count (HashedOf). The count is fixed when the data
// directory is made (its `junctiond.layout` file), so a topic is found
// where it was after a restart, also with another --shards. Broker 0 keeps
// its data in the data directory itself, broker N in `broker-N/` under it;
// a directory written before brokers were spread (no layout file, not
// empty) is one broker.
//
// Dead letters. A group's broker creates the group's dead-letter topic on
// its first dead letter, on itself. So Subscribe enters the name on the
// group's broker first (PlaceDeadLetters), refused when it is already
// another broker's, and start-up enters the dead-letter topic of every
// group on disk (refusing to start when two brokers claim one name).

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "junction/bus.h"

namespace junction::server {

class Brokers {
 public:
  // Where broker data directories record their count.
  static constexpr std::string_view kLayoutFile = "junctiond.layout";
  static constexpr std::size_t kMaxBrokers = 256;

  // Opens the brokers of `url` ("file:///dir?query" or "mem://..."; every
  // broker gets the same query; any other scheme is one broker). For file://, the count is read
  // from the layout file, or for a new or empty directory is `count` (written to the layout file),
  // or 1 for a directory that holds data but no layout file. mem:// opens `count` independent
  // buses. Bus i runs on shards[i % shards.size()]; nothing may run the shards yet (they are run
  // here, on this thread, to list what each broker holds).
  static Result<std::unique_ptr<Brokers>> Open(std::string_view url, std::size_t count,
                                               const BusOptions& options, Env* env,
                                               std::span<boost::asio::io_context* const> shards);

  std::size_t size() const { return buses_.size(); }
  Bus& at(std::size_t i) const { return *buses_[i]; }
  // The shard (index into the `shards` given to Open) that runs bus i.
  std::size_t shard(std::size_t i) const { return i % shard_count_; }
  // The broker that holds `topic`, or would hold it once created.
  std::size_t Owner(std::string_view topic) const { return Find(topic).broker; }
  // Owner, and whether the name is in the directory: then its broker never
  // changes while the daemon runs (callers may remember it).
  struct Placement {
    std::size_t broker = 0;
    bool fixed = false;
  };
  Placement Find(std::string_view topic) const;
  Bus& For(std::string_view topic) const { return at(Owner(topic)); }
  // The broker a new topic of this name goes to when nothing else placed it.
  std::size_t Hashed(std::string_view topic) const { return HashedOf(topic, buses_.size()); }
  // (murmur2(topic) & 0x7fffffff) % count, Kafka's key partitioner (0 for
  // one broker): stable across builds and platforms, as placement on disk
  // must be.
  static std::size_t HashedOf(std::string_view topic, std::size_t count);

  // Before a group member subscribes to `topic`: enters the group's
  // dead-letter topic (its own, if the group exists; else what `options`
  // ask) in the directory on the topic's broker. FailedPrecondition when the
  // name is already another broker's (a topic there, or another group's
  // dead letters). Nothing for ephemeral subscriptions.
  Awaitable<Status> PlaceDeadLetters(std::string topic, const SubscribeOptions& options);

  // CreateTopic on the broker that will hold `topic`, entered in the
  // directory before the call is sent.
  Awaitable<Status> Create(std::string topic, TopicOptions options, Deadline deadline);

  // Every broker's topics, by name; every broker's groups (of `topic`, or
  // all when empty), by topic and name.
  Awaitable<Result<std::vector<TopicInfo>>> ListTopics(Deadline deadline);
  Awaitable<Result<std::vector<GroupInfo>>> ListGroups(std::string topic, Deadline deadline);

  // The bus URL of broker i (for logs).
  const std::string& url(std::size_t i) const { return urls_[i]; }

  // Closes nothing: the server closes each bus on its shard (Bus::Close),
  // then destroys this.
  ~Brokers();

 private:
  Brokers() = default;
  Status Scan(std::span<boost::asio::io_context* const> shards);
  // Enters `name` on `broker` unless it is another broker's; returns the
  // broker it is on.
  std::size_t Enter(const std::string& name, std::size_t broker);

  std::vector<std::unique_ptr<Bus>> buses_;
  std::vector<std::string> urls_;
  std::size_t shard_count_ = 1;
  // Lookups by string_view without a copy (Owner runs on every call).
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const {
      return std::hash<std::string_view>{}(name);
    }
  };
  mutable std::mutex mu_;
  // The directory: names of topics and reserved dead-letter topics. It
  // grows with every topic created while the daemon runs (deleted ones
  // keep their entry: the name stays on its broker) and starts afresh from
  // the disk at each start.
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>>
      placed_;  // guarded by mu_
};

}  // namespace junction::server
