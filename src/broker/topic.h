#pragma once

// Topic: the partitions of one topic, its groups and its dedupe window.
// Thread: the broker's shard only.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/smart_ptr/local_shared_ptr.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "broker/group.h"
#include "broker/partitioner.h"
#include "junction/bus.h"
#include "storage/log.h"

namespace junction::broker {

// Checks a topic or group name: 1..249 of [A-Za-z0-9._-], not starting with
// "__" (reserved). InvalidArgument naming what is wrong.
Status ValidateName(std::string_view kind, std::string_view name);

// Message ids stored within the window, with where they went, kept as 64-bit
// hashes (about 80 bytes an id at the 1M cap: an open-addressing table at
// half load, and the time order): a hit is only a candidate, which the broker
// confirms by reading the stored message's id. At most `max_ids` are kept;
// past that the oldest leave the window early (counted in `evicted`). A
// publish in flight holds its ids as pending, so a concurrent duplicate waits
// for it.
class DedupeWindow {
 public:
  struct Hit {
    PartitionId partition;
    Offset offset;
  };
  struct Pending;
  // Shard-only, so counted without atomics: a lock-prefixed count per id
  // is a full fence, which made each id's window insert (a cache miss on a
  // large window) wait for the one before (8% of junctiond's CPU on
  // pipelined publishes, perf).
  using PendingPtr = boost::local_shared_ptr<Pending>;
  struct Pending {
    // The id being stored: a view of the publishing call's message, which
    // outlives the entry (Broker::Store removes it before it returns).
    std::string_view id;
    std::optional<Hit> result;  // unset while in flight, or when it failed
    bool done = false;
    // Created by the first duplicate that waits; cancelled when done.
    std::unique_ptr<boost::asio::steady_timer> waiters;
    // The next pending id with the same hash (almost always none).
    PendingPtr next_same_hash;
  };

  DedupeWindow(Duration window, std::size_t max_ids) : window_(window), max_ids_(max_ids) {}

  static std::uint64_t Hash(std::string_view id);

  // Drops ids stored before now - window.
  void Expire(std::int64_t now_ms);
  // Valid until the next Add, Forget or Expire.
  const Hit* Find(std::uint64_t hash) const;
  void Forget(std::uint64_t hash) { ids_.erase(hash); }
  // Pending ids are kept by hash(id) (the caller has it already), the ids
  // compared on a hit.
  PendingPtr FindPending(std::uint64_t hash, std::string_view id) const;
  // Under `hash`, pending->id's (a second publish of an id waits
  // for the first, so an id is pending once at most).
  void AddPending(std::uint64_t hash, PendingPtr pending);
  void RemovePending(std::uint64_t hash, const Pending* pending);
  void Add(std::uint64_t hash, Hit hit, std::int64_t stored_ms);
  std::size_t size() const { return ids_.size(); }
  std::uint64_t evicted() const { return evicted_; }
  Duration window() const { return window_; }
  bool enabled() const { return window_ > Duration::zero() && max_ids_ > 0; }

 private:
  struct Stored {
    Hit hit;
    std::int64_t stored_ms = 0;
  };
  Duration window_;
  std::size_t max_ids_;
  std::uint64_t evicted_ = 0;
  // The keys are XXH3 hashes already: used as they are.
  struct HashIsKey {
    using is_avalanching = void;
    std::size_t operator()(std::uint64_t hash) const noexcept { return hash; }
  };
  // Open addressing: no node per id (the window holds up to max_ids).
  boost::unordered_flat_map<std::uint64_t, Stored, HashIsKey> ids_;
  std::deque<std::pair<std::int64_t, std::uint64_t>> order_;  // by stored_ms
  // By hash; ids with the same hash chained through next_same_hash.
  boost::unordered_flat_map<std::uint64_t, PendingPtr, HashIsKey> pending_;
};

// The newest messages of one partition as the groups read them: a store
// hands each stored batch over, so that a group caught up with the log takes
// its messages from memory instead of reading back and decoding what was just
// written. Holds consecutive offsets [begin, end) and at most kMaxMessages /
// kMaxBytes of them (oldest out first); the broker trims what every group of
// the topic has read. A group whose next offset is not in it reads the log.
// Beside the messages it keeps the stored batches that hold them (counted in
// kMaxBytes too), which their first deliveries carry to junctiond.
class TailCache {
 public:
  static constexpr std::size_t kMaxMessages = 4096;
  static constexpr std::size_t kMaxBytes = 4u << 20;

  // `base` is the offset of messages[0]; `batch` (may be null) is the stored
  // batch that holds exactly them. A batch that does not continue the cache
  // (a failed append in between, or batches completing out of order)
  // replaces it: offsets stay consecutive, and what is missing is read from
  // the log.
  void Append(Offset base, std::vector<std::shared_ptr<const StoredMessage>> messages,
              std::shared_ptr<const StoredBatch> batch = nullptr);
  // The cached message at `offset`, or null.
  const std::shared_ptr<const StoredMessage>* Find(Offset offset) const;
  // The cached stored batch that holds `offset`, or null.
  std::shared_ptr<const StoredBatch> BatchAt(Offset offset) const;
  // Forgets messages below `offset`.
  void TrimBefore(Offset offset);
  void Clear();
  Offset begin() const { return begin_; }
  Offset end() const { return Offset(begin_.value() + messages_.size()); }
  bool empty() const { return messages_.empty(); }

 private:
  void PopFront();

  Offset begin_;
  std::deque<std::shared_ptr<const StoredMessage>> messages_;
  std::deque<std::size_t> sizes_;  // MessageSize of each, for the byte bound
  // By base offset; a batch leaves when its first message does.
  std::deque<std::shared_ptr<const StoredBatch>> batches_;
  std::size_t bytes_ = 0;
};

struct Topic {
  Topic(std::string topic_name, TopicOptions topic_options, std::size_t max_dedupe_ids)
      : name(std::move(topic_name)),
        options(topic_options),
        dedupe(options.dedupe_window, max_dedupe_ids) {}

  std::string name;
  TopicOptions options;
  std::vector<std::unique_ptr<storage::Log>> partitions;
  std::vector<TailCache> tails;  // one per partition
  // Per partition: the high watermark when this broker opened the log.
  // Every record from there on was stored by this broker, which validated
  // it (Broker::Store's callers): a group may keep those as positions in a
  // stored batch without decoding them (Group::FillPartition). Records
  // below were written before, perhaps by another version, and are decoded
  // when read, so one that is not a message is skipped there.
  std::vector<Offset> validated_from;
  StickyPartitioner keyless;  // placement of messages without a key
  std::map<std::string, std::unique_ptr<Group>, std::less<>> groups;
  std::map<std::uint64_t, std::unique_ptr<Group>> ephemerals;
  DedupeWindow dedupe;
  bool dedupe_eviction_logged = false;
  bool pump_scheduled = false;       // Broker::SchedulePump
  std::size_t stores_in_flight = 0;  // Broker::Store calls running
  bool deleting = false;             // Broker::DeleteTopic is running

  template <typename F>
  void ForEachGroup(F&& f) {
    for (auto& [name, group] : groups) f(*group);
    for (auto& [id, group] : ephemerals) f(*group);
  }
};

}  // namespace junction::broker
