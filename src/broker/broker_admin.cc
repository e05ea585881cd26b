// Broker administration: listing, describing, reading, deleting and purging
// topics (Bus's calls of the same names).

#include <algorithm>
#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/broker.h"
#include "broker/message_codec.h"
#include "broker/state_codec.h"
#include "codec/record_batch.h"
#include "junction/log.h"

namespace junction::broker {
namespace asio = boost::asio;

namespace {

// Bytes ReadTopic takes from a log at once.
constexpr std::size_t kReadChunkBytes = 256 * 1024;

// Removes a topic's directory: its partition directories and their files
// (the layout OpenTopic makes). NotFound-tolerant.
Status RemoveTopicTree(Env& env, const std::filesystem::path& dir) {
  if (!env.FileExists(dir)) return OkStatus();
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> partitions, env.GetChildren(dir));
  for (const std::string& partition : partitions) {
    std::filesystem::path pdir = dir / partition;
    Result<std::vector<std::string>> files = env.GetChildren(pdir);
    if (!files.ok()) {  // a stray file beside the partitions
      JUNCTION_RETURN_IF_ERROR(env.RemoveFile(pdir));
      continue;
    }
    for (const std::string& file : *files) {
      Status s = env.RemoveFile(pdir / file);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
    JUNCTION_RETURN_IF_ERROR(env.RemoveDir(pdir));
  }
  JUNCTION_RETURN_IF_ERROR(env.RemoveDir(dir));
  return env.SyncDir(dir.parent_path());
}

Status NoSuchTopic(std::string_view name) {
  return NotFoundError("topic '" + std::string(name) + "' does not exist");
}

}  // namespace

std::filesystem::path Broker::TopicDir(std::string_view name) const {
  return options_.dir / "topics" / std::string(name);
}

Status Broker::RemoveOrphanTopicDirs() {
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> names,
                            options_.env->GetChildren(options_.dir / "topics"));
  for (const std::string& name : names) {
    if (topics_.contains(name)) continue;
    log::Warn("removing the files of a topic deleted before the broker stopped", {{"topic", name}});
    JUNCTION_RETURN_IF_ERROR(RemoveTopicTree(*options_.env, TopicDir(name)));
  }
  return OkStatus();
}

TopicInfo Broker::Describe(const Topic& topic) {
  TopicInfo info;
  info.name = topic.name;
  info.options = topic.options;
  for (std::uint32_t p = 0; p < topic.partitions.size(); ++p) {
    storage::LogStatus status = topic.partitions[p]->status();
    info.partitions.push_back(
        PartitionInfo{PartitionId(p), status.log_start, status.high_watermark, status.size_bytes});
  }
  for (const auto& [name, group] : topic.groups) {
    info.groups.push_back(name);
    info.subscribers += static_cast<std::uint32_t>(group->members().size());
  }
  for (const auto& [id, group] : topic.ephemerals) {
    info.subscribers += static_cast<std::uint32_t>(group->members().size());
  }
  return info;
}

Result<std::vector<TopicInfo>> Broker::ListTopics() const {
  if (closed_) return FailedPreconditionError("the bus is closed");
  std::vector<TopicInfo> out;
  out.reserve(topics_.size());
  for (const auto& [name, topic] : topics_) {
    if (!topic->deleting) out.push_back(Describe(*topic));
  }
  return out;
}

Result<TopicInfo> Broker::DescribeTopic(std::string_view name) const {
  if (closed_) return FailedPreconditionError("the bus is closed");
  auto it = topics_.find(name);
  if (it == topics_.end() || it->second->deleting) return NoSuchTopic(name);
  return Describe(*it->second);
}

Result<std::vector<GroupInfo>> Broker::ListGroups(std::string_view name) const {
  if (closed_) return FailedPreconditionError("the bus is closed");
  std::vector<GroupInfo> out;
  auto add = [&out](const Topic& topic) {
    for (const auto& [group_name, group] : topic.groups) out.push_back(group->Describe());
  };
  if (name.empty()) {
    for (const auto& [topic_name, topic] : topics_) {
      if (!topic->deleting) add(*topic);
    }
    return out;
  }
  auto it = topics_.find(name);
  if (it == topics_.end() || it->second->deleting) return NoSuchTopic(name);
  add(*it->second);
  return out;
}

Result<std::vector<TopicRecord>> Broker::ReadTopic(std::string_view name, PartitionId partition,
                                                   Offset from, std::size_t max) {
  if (closed_) return FailedPreconditionError("the bus is closed");
  auto it = topics_.find(name);
  if (it == topics_.end() || it->second->deleting) return NoSuchTopic(name);
  Topic& topic = *it->second;
  if (partition.value() >= topic.partitions.size()) {
    return InvalidArgumentError("partition " + std::to_string(partition.value()) +
                                " does not exist; topic '" + topic.name + "' has " +
                                std::to_string(topic.partitions.size()));
  }
  storage::Log& log = *topic.partitions[partition.value()];
  std::vector<TopicRecord> out;
  Offset next = std::max(from, log.log_start());
  while (out.size() < max && next < log.high_watermark()) {
    Result<storage::ReadResult> read = log.Read(next, kReadChunkBytes);
    if (!read.ok() && read.status().code() == StatusCode::kOutOfRange && next < log.log_start()) {
      next = log.log_start();  // retention moved on between the two calls
      continue;
    }
    if (!read.ok()) return read.status().WithContext("topic '" + topic.name + "'");
    std::span<const std::byte> rest(read->batches);
    Offset before = next;
    while (!rest.empty() && out.size() < max) {
      JUNCTION_ASSIGN_OR_RETURN(codec::BatchHeader header, codec::ParseBatchHeader(rest));
      std::span<const std::byte> batch = rest.first(header.batch_length);
      rest = rest.subspan(header.batch_length);
      JUNCTION_ASSIGN_OR_RETURN(std::vector<codec::Record> records, codec::DecodeRecords(batch));
      for (codec::Record& record : records) {
        if (record.offset < next || out.size() >= max) continue;
        Result<StoredMessage> stored = DecodeMessage(record);
        if (!stored.ok()) {
          return stored.status().WithContext("topic '" + topic.name + "' partition " +
                                             std::to_string(partition.value()) + " offset " +
                                             std::to_string(record.offset.value()));
        }
        out.push_back(TopicRecord{partition, record.offset, std::move(stored->message)});
        next = record.offset + 1;
      }
    }
    if (next == before) break;  // nothing readable advanced: stop rather than spin
  }
  return out;
}

asio::awaitable<Status> Broker::DeleteTopic(std::string name) {
  if (closed_ || closing_) co_return FailedPreconditionError("the bus is closed");
  auto it = topics_.find(name);
  if (it == topics_.end()) co_return NoSuchTopic(name);
  Topic& topic = *it->second;
  if (topic.deleting) co_return UnavailableError("topic '" + name + "' is being deleted");
  if (std::uint32_t open = Describe(topic).subscribers; open > 0) {
    co_return FailedPreconditionError("topic '" + name + "' has " + std::to_string(open) +
                                      " open subscription(s); close them first");
  }
  topic.deleting = true;
  // Its groups leave the id index first: no later persist round writes
  // their keys back after the deletions below.
  std::vector<std::uint64_t> ids;
  std::vector<StateStore::Update> update;
  update.emplace_back(TopicKey(name), std::nullopt);
  topic.ForEachGroup([&](Group& group) {
    ids.push_back(group.id());
    if (!group.ephemeral()) update.emplace_back(GroupKey(name, group.name()), std::nullopt);
  });
  for (std::uint64_t id : ids) groups_by_id_.erase(id);
  // The config goes first: a crash after it leaves files that the next
  // open removes (RemoveOrphanTopicDirs), never a topic half there.
  if (Status s = co_await state_->Put(std::move(update)); !s.ok()) {
    topic.ForEachGroup([&](Group& group) { groups_by_id_[group.id()] = &group; });
    topic.deleting = false;
    co_return s.WithContext("deleting topic '" + name + "'");
  }
  // Stores already running hold the topic: let them finish (their appends
  // complete or fail as the logs close).
  asio::steady_timer poll(shard_);
  while (topic.stores_in_flight > 0) {
    boost::system::error_code ec;
    poll.expires_after(std::chrono::milliseconds(1));
    co_await poll.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  for (auto& log : topic.partitions) {
    if (Status s = co_await log->Close(); !s.ok()) {
      log::Warn("closing a deleted topic's partition failed",
                {{"topic", name}, {"error", s.ToString()}});
    }
  }
  topic.partitions.clear();
  co_await asio::post(blocking_, asio::use_awaitable);
  Status removed = RemoveTopicTree(*options_.env, TopicDir(name));
  co_await asio::post(shard_, asio::use_awaitable);
  if (!removed.ok()) {
    // Deleted all the same: the files go at the next open, or when the
    // name is created again.
    log::Warn("could not remove a deleted topic's files",
              {{"topic", name}, {"error", removed.ToString()}});
  }
  topics_.erase(name);
  log::Info("deleted topic", {{"topic", name}});
  co_return OkStatus();
}

asio::awaitable<Status> Broker::PurgeTopic(std::string name) {
  if (closed_ || closing_) co_return FailedPreconditionError("the bus is closed");
  auto it = topics_.find(name);
  if (it == topics_.end() || it->second->deleting) co_return NoSuchTopic(name);
  Topic* topic = it->second.get();
  for (std::size_t p = 0; p < topic->partitions.size(); ++p) {
    Result<Offset> start = co_await topic->partitions[p]->Purge();
    // The topic may have been deleted meanwhile.
    auto again = topics_.find(name);
    if (again == topics_.end() || again->second.get() != topic || topic->deleting) {
      co_return NoSuchTopic(name);
    }
    if (!start.ok()) {
      co_return start.status().WithContext("purging topic '" + name + "' partition " +
                                           std::to_string(p));
    }
    topic->tails[p].Clear();
  }
  topic->ForEachGroup([](Group& group) {
    group.Reset(StartPosition::Earliest());
    group.Pump();
  });
  log::Info("purged topic", {{"topic", name}});
  co_return OkStatus();
}

}  // namespace junction::broker
