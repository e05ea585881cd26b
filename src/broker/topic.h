#pragma once

// Topic: the partitions of one topic, its groups and its dedupe window.
// Thread: the broker's shard only.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/dedupe_window.h"
#include "broker/group.h"
#include "broker/partitioner.h"
#include "junction/bus.h"
#include "storage/log.h"

namespace junction::broker {

// Checks a topic or group name: 1..249 of [A-Za-z0-9._-], not starting with
// "__" (reserved). InvalidArgument naming what is wrong.
Status ValidateName(std::string_view kind, std::string_view name);

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
