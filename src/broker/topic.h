#pragma once

// Topic: the partitions of one topic, its groups and its dedupe window.
// Thread: the broker's shard only.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "broker/group.h"
#include "junction/bus.h"
#include "storage/log.h"

namespace junction::broker {

// Checks a topic or group name: 1..249 of [A-Za-z0-9._-], not starting with
// "__" (reserved). InvalidArgument naming what is wrong.
Status ValidateName(std::string_view kind, std::string_view name);

// Message ids stored within the window, with where they went. A publish in
// flight holds its ids as pending, so a concurrent duplicate waits for it.
class DedupeWindow {
 public:
  struct Hit {
    PartitionId partition;
    Offset offset;
  };
  struct Pending {
    explicit Pending(const boost::asio::any_io_executor& ex)
        : done(ex, std::chrono::steady_clock::time_point::max()) {}
    boost::asio::steady_timer done;  // cancelled when the publish completes
    std::optional<Hit> result;       // unset when it failed
  };

  explicit DedupeWindow(Duration window) : window_(window) {}

  // Drops ids stored before now - window.
  void Expire(std::int64_t now_ms);
  const Hit* Find(std::string_view id) const;
  std::shared_ptr<Pending> FindPending(std::string_view id) const;
  void AddPending(const std::string& id, std::shared_ptr<Pending> pending);
  void RemovePending(const std::string& id);
  void Add(const std::string& id, Hit hit, std::int64_t stored_ms);
  std::size_t size() const { return ids_.size(); }
  Duration window() const { return window_; }

 private:
  struct Stored {
    Hit hit;
    std::int64_t stored_ms = 0;
  };
  Duration window_;
  std::unordered_map<std::string, Stored> ids_;
  std::deque<std::pair<std::int64_t, std::string>> order_;  // by stored_ms
  std::unordered_map<std::string, std::shared_ptr<Pending>> pending_;
};

struct Topic {
  Topic(std::string topic_name, TopicOptions topic_options)
      : name(std::move(topic_name)),
        options(std::move(topic_options)),
        dedupe(options.dedupe_window) {}

  std::string name;
  TopicOptions options;
  std::vector<std::unique_ptr<storage::Log>> partitions;
  std::uint32_t next_partition = 0;  // round robin of keyless messages
  std::map<std::string, std::unique_ptr<Group>, std::less<>> groups;
  std::map<std::uint64_t, std::unique_ptr<Group>> ephemerals;
  DedupeWindow dedupe;

  template <typename F>
  void ForEachGroup(F&& f) {
    for (auto& [name, group] : groups) f(*group);
    for (auto& [id, group] : ephemerals) f(*group);
  }
};

}  // namespace junction::broker
