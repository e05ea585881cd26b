#include "broker/broker.h"

#include <algorithm>
#include <map>
#include <span>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/message_codec.h"
#include "broker/partitioner.h"
#include "broker/state_codec.h"
#include "codec/record_batch.h"
#include "junction/log.h"

namespace junction::broker {
namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxPartitions = 1024;
constexpr Duration kVirtualClockPoll = std::chrono::milliseconds(5);

Status ValidateTopicOptions(const TopicOptions& options) {
  if (options.partitions == 0 || options.partitions > kMaxPartitions) {
    return InvalidArgumentError("partitions must be between 1 and 1024");
  }
  if (options.dedupe_window < Duration::zero()) {
    return InvalidArgumentError("dedupe_window is negative");
  }
  if (options.retention_age && *options.retention_age <= Duration::zero()) {
    return InvalidArgumentError("retention_age must be positive");
  }
  return OkStatus();
}

Status ValidateSubscribeOptions(const SubscribeOptions& options) {
  if (options.max_in_flight == 0) return InvalidArgumentError("max_in_flight must be at least 1");
  if (options.max_in_flight_bytes == 0) {
    return InvalidArgumentError("max_in_flight_bytes must be at least 1");
  }
  if (options.group.empty()) return OkStatus();
  if (options.ack_deadline <= Duration::zero()) {
    return InvalidArgumentError("ack_deadline must be positive");
  }
  if (options.max_deliveries == 0) return InvalidArgumentError("max_deliveries must be >= 1");
  for (Duration d : options.backoff) {
    if (d < Duration::zero()) return InvalidArgumentError("backoff steps must not be negative");
  }
  return OkStatus();
}

bool SameTopicOptions(const TopicOptions& a, const TopicOptions& b) {
  return a.partitions == b.partitions && a.retention_bytes == b.retention_bytes &&
         a.retention_age == b.retention_age &&
         a.retention_drops_unacked == b.retention_drops_unacked &&
         a.dedupe_window == b.dedupe_window;
}

}  // namespace

Broker::Broker(BrokerOptions options, asio::any_io_executor shard, asio::any_io_executor blocking,
               std::unique_ptr<StateStore> state)
    : options_(std::move(options)),
      shard_(std::move(shard)),
      blocking_(std::move(blocking)),
      state_(std::move(state)),
      real_clock_(options_.clock == &RealClock()),
      persist_done_(std::make_unique<asio::steady_timer>(shard_)),
      persist_delay_(std::make_unique<asio::steady_timer>(shard_)),
      wakeup_(std::make_unique<asio::steady_timer>(shard_)) {
  // Never expires: waiters are woken by cancel(), which leaves the expiry.
  persist_done_->expires_at(MonoTime::max());
}

Broker::~Broker() = default;

Result<std::unique_ptr<Broker>> Broker::Open(BrokerOptions options, asio::any_io_executor shard,
                                             asio::any_io_executor blocking) {
  JUNCTION_CHECK(options.env != nullptr && options.clock != nullptr)
      << "BrokerOptions needs an env and a clock";
  JUNCTION_RETURN_IF_ERROR(options.log.Validate());
  JUNCTION_RETURN_IF_ERROR(CreateDirsDurably(*options.env, options.dir / "topics"));
  storage::Log::Context context{*options.env, *options.clock, shard, blocking};
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<StateStore> state,
                            StateStore::Open(context, options.dir / "state", options.log.fsync));
  std::unique_ptr<Broker> broker(
      new Broker(std::move(options), std::move(shard), std::move(blocking), std::move(state)));
  JUNCTION_RETURN_IF_ERROR(broker->Recover());
  broker->next_retention_ = broker->clock().Now() + broker->options_.retention_interval;
  broker->ArmWakeup();
  return broker;
}

Status Broker::Recover() {
  // Topics first: groups need their partitions.
  for (const auto& [key, value] : state_->entries()) {
    if (!key.starts_with(kTopicKeyPrefix)) continue;
    std::string name = key.substr(kTopicKeyPrefix.size());
    Result<TopicOptions> options = DecodeTopicOptions(value);
    if (!options.ok()) return options.status().WithContext("topic '" + name + "'");
    JUNCTION_ASSIGN_OR_RETURN(Topic * topic, OpenTopic(name, *options));
    JUNCTION_RETURN_IF_ERROR(RebuildDedupe(*topic));
  }
  for (const auto& [key, value] : state_->entries()) {
    if (!key.starts_with(kGroupKeyPrefix)) continue;
    std::string_view rest = std::string_view(key).substr(kGroupKeyPrefix.size());
    std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return DataLossError("state: bad group key '" + key + "'");
    auto topic = topics_.find(rest.substr(0, slash));
    if (topic == topics_.end()) {
      return DataLossError("state: group '" + key + "' of a topic that does not exist");
    }
    Result<GroupRecord> record = DecodeGroupRecord(value);
    if (!record.ok()) return record.status().WithContext("group '" + key + "'");
    std::string name(rest.substr(slash + 1));
    std::uint64_t id = next_id_++;
    auto group = std::make_unique<Group>(*this, *topic->second, name, id, std::move(record->config),
                                         /*ephemeral=*/false);
    group->Restore(std::move(record->acked));
    groups_by_id_[id] = group.get();
    topic->second->groups.emplace(name, std::move(group));
  }
  return RemoveOrphanTopicDirs();
}

Result<Topic*> Broker::OpenTopic(const std::string& name, const TopicOptions& options) {
  auto topic = std::make_unique<Topic>(name, options, options_.max_dedupe_ids);
  storage::LogOptions log_options = options_.log;
  log_options.retention_bytes = options.retention_bytes;
  if (options.retention_age) {
    log_options.retention_age =
        std::chrono::duration_cast<std::chrono::milliseconds>(*options.retention_age);
  }
  storage::Log::Context context{*options_.env, *options_.clock, shard_, blocking_};
  for (std::uint32_t p = 0; p < options.partitions; ++p) {
    std::filesystem::path dir = TopicDir(name) / std::to_string(p);
    JUNCTION_RETURN_IF_ERROR(CreateDirsDurably(*options_.env, dir));
    Result<std::unique_ptr<storage::Log>> log = storage::Log::Open(context, dir, log_options);
    if (!log.ok()) {
      return log.status().WithContext("topic '" + name + "' partition " + std::to_string(p));
    }
    topic->validated_from.push_back((*log)->high_watermark());
    topic->partitions.push_back(std::move(*log));
  }
  topic->tails.resize(topic->partitions.size());
  Topic* raw = topic.get();
  topics_.emplace(name, std::move(topic));
  return raw;
}

asio::awaitable<Status> Broker::CreateTopic(std::string name, TopicOptions options) {
  if (closed_) co_return FailedPreconditionError("the bus is closed");
  JUNCTION_CO_RETURN_IF_ERROR(ValidateName("topic", name));
  JUNCTION_CO_RETURN_IF_ERROR(ValidateTopicOptions(options));
  if (auto it = topics_.find(name); it != topics_.end()) {
    if (it->second->deleting) co_return UnavailableError("topic '" + name + "' is being deleted");
    if (SameTopicOptions(it->second->options, options)) co_return OkStatus();
    co_return AlreadyExistsError("topic '" + name + "' exists with other options");
  }
  // The config is durable before any partition exists, so a crash in
  // between leaves a topic whose logs the next open creates.
  std::vector<StateStore::Update> update;
  update.emplace_back(TopicKey(name), EncodeTopicOptions(options));
  JUNCTION_CO_RETURN_IF_ERROR(co_await state_->Put(std::move(update)));
  if (topics_.contains(name)) co_return OkStatus();  // created meanwhile
  // Files a deletion could not remove must not come back as this topic's.
  if (options_.env->FileExists(TopicDir(name))) {
    JUNCTION_CO_RETURN_IF_ERROR(RemoveOrphanTopicDirs());
  }
  Result<Topic*> topic = OpenTopic(name, options);
  co_return topic.status();
}

asio::awaitable<Result<Topic*>> Broker::FindOrCreate(const std::string& name, bool auto_create,
                                                     const TopicOptions& defaults) {
  if (auto it = topics_.find(name); it != topics_.end()) {
    if (it->second->deleting) co_return UnavailableError("topic '" + name + "' is being deleted");
    co_return it->second.get();
  }
  if (!auto_create) {
    co_return NotFoundError("topic '" + name +
                            "' does not exist; create it first (auto_create_topics is off)");
  }
  JUNCTION_CO_RETURN_IF_ERROR(co_await CreateTopic(name, defaults));
  auto it = topics_.find(name);
  if (it == topics_.end()) co_return InternalError("topic '" + name + "' vanished after creation");
  co_return it->second.get();
}

asio::awaitable<Result<std::shared_ptr<Member>>> Broker::Subscribe(std::string topic_name,
                                                                   SubscribeOptions options) {
  if (closed_) co_return FailedPreconditionError("the bus is closed");
  JUNCTION_CO_RETURN_IF_ERROR(ValidateName("topic", topic_name));
  if (!options.group.empty()) JUNCTION_CO_RETURN_IF_ERROR(ValidateName("group", options.group));
  JUNCTION_CO_RETURN_IF_ERROR(ValidateSubscribeOptions(options));
  if (!options.dead_letter_topic.empty()) {
    JUNCTION_CO_RETURN_IF_ERROR(ValidateName("dead-letter topic", options.dead_letter_topic));
  }
  JUNCTION_CO_ASSIGN_OR_RETURN(
      Topic * topic,
      co_await FindOrCreate(topic_name, options_.auto_create_topics, options_.default_topic));
  auto member = std::make_shared<Member>();
  member->id = next_id_++;
  member->max_in_flight = options.max_in_flight;
  member->max_in_flight_bytes = options.max_in_flight_bytes;
  Group* group = nullptr;
  if (options.group.empty()) {
    std::uint64_t id = next_id_++;
    auto owned = std::make_unique<Group>(*this, *topic, "", id, GroupConfig{}, true);
    owned->Reset(StartPosition::Latest());
    group = owned.get();
    topic->ephemerals.emplace(id, std::move(owned));
    groups_by_id_[id] = group;
  } else if (auto it = topic->groups.find(options.group); it != topic->groups.end()) {
    group = it->second.get();
    if (group->config().ordered != options.ordered) {
      co_return FailedPreconditionError(
          "group '" + options.group + "' of topic '" + topic_name + "' is " +
          (group->config().ordered ? "ordered" : "unordered") + "; a member cannot change that");
    }
  } else {
    std::uint64_t id = next_id_++;
    auto owned = std::make_unique<Group>(*this, *topic, options.group, id,
                                         GroupConfig::From(options, topic_name), false);
    group = owned.get();
    topic->groups.emplace(options.group, std::move(owned));
    groups_by_id_[id] = group;
    group->Reset(options.start);
  }
  member->group_id = group->id();
  group->Join(member);
  co_return member;
}

Broker::DeferredPumps::~DeferredPumps() {
  if (--broker_.pumps_deferred_ > 0) return;
  // By id: a group may have gone meanwhile (its last ephemeral member left).
  // Pumping may note more (a dead letter stored in place, say): until none.
  while (!broker_.pump_later_.empty()) {
    std::vector<std::uint64_t> ids;
    ids.swap(broker_.pump_later_);
    for (std::uint64_t id : ids) {
      Result<Group*> group = broker_.FindGroup(id);
      if (group.ok() && !broker_.closed_) (*group)->Pump();
    }
  }
}

void Broker::PumpOrDefer(Group& group) {
  if (pumps_deferred_ == 0) {
    group.Pump();
    return;
  }
  // A burst touches one or a few groups: a linear look is enough.
  if (std::find(pump_later_.begin(), pump_later_.end(), group.id()) == pump_later_.end()) {
    pump_later_.push_back(group.id());
  }
}

Result<Group*> Broker::FindGroup(std::uint64_t group_id) {
  auto it = groups_by_id_.find(group_id);
  if (it == groups_by_id_.end()) return NotFoundError("the group is gone");
  return it->second;
}

asio::awaitable<Result<std::vector<BrokerDelivery>>> Broker::Next(std::shared_ptr<Member> member,
                                                                  Deadline deadline,
                                                                  std::size_t max) {
  if (member->waiter != nullptr || member->wanted != 0) {
    co_return FailedPreconditionError("another Next() of this subscription is waiting");
  }
  if (max == 0) co_return InvalidArgumentError("NextBatch of 0 deliveries");
  asio::steady_timer timer(shard_);
  member->wanted = max;
  struct StopWanting {
    Member& member;
    ~StopWanting() { member.wanted = 0; }
  } stop_wanting{*member};
  while (true) {
    if (closed_) co_return CancelledError("the bus is closed");
    if (member->closed) co_return CancelledError("the subscription is closed");
    ProcessTimers();
    Result<Group*> group = FindGroup(member->group_id);
    if (!group.ok()) co_return CancelledError("the subscription's group is gone");
    // A pump still scheduled (SchedulePump) runs now, for every group of the
    // topic: each sees what was stored before this call as of the moment
    // it was stored.
    Topic& topic = (*group)->topic();
    if (topic.pump_scheduled) {
      PumpAll(topic);
    } else {
      (*group)->Pump();
    }
    if (!member->queue.empty()) {
      std::vector<BrokerDelivery> out;
      out.reserve(std::min(max, member->queue.size()));
      while (!member->queue.empty() && out.size() < max) {
        out.push_back(std::move(member->queue.front()));
        member->queue.pop_front();
        (*group)->Taken(*member, out.back());
      }
      co_return out;
    }
    if (deadline.Expired(clock())) co_return DeadlineExceededError("no message by the deadline");
    member->waiter = &timer;
    co_await WaitSlice(timer, deadline);
    member->waiter = nullptr;
  }
}

void Broker::Leave(Member& member) {
  Result<Group*> found = FindGroup(member.group_id);
  member.closed = true;
  member.Wake();
  if (!found.ok()) return;
  Group& group = **found;
  group.Leave(member);
  if (group.ephemeral()) {
    groups_by_id_.erase(group.id());
    group.topic().ephemerals.erase(group.id());
  }
}

Status Broker::Ack(const DeliveryRef& ref) {
  if (closed_) return FailedPreconditionError("the bus is closed");
  JUNCTION_ASSIGN_OR_RETURN(Group * group, FindGroup(ref.group_id));
  return group->Ack(ref);
}

asio::awaitable<Status> Broker::AckSync(DeliveryRef ref) {
  JUNCTION_CO_RETURN_IF_ERROR(Ack(ref));
  const std::uint64_t target = dirty_seq_;
  ++sync_waiters_;
  struct Done {
    std::size_t& waiters;
    ~Done() { --waiters; }
  } done{sync_waiters_};
  persist_delay_->cancel();  // a waiting round starts now
  while (persisted_seq_ < target) {
    if (closed_) co_return persist_error_;
    if (!persisting_) co_return InternalError("group state not being persisted");
    boost::system::error_code ec;
    co_await persist_done_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return persist_error_;
}

Status Broker::Nack(const DeliveryRef& ref, std::optional<Duration> delay, std::string error) {
  if (closed_) return FailedPreconditionError("the bus is closed");
  JUNCTION_ASSIGN_OR_RETURN(Group * group, FindGroup(ref.group_id));
  return group->Nack(ref, delay, std::move(error));
}

Status Broker::InProgress(const DeliveryRef& ref) {
  if (closed_) return FailedPreconditionError("the bus is closed");
  JUNCTION_ASSIGN_OR_RETURN(Group * group, FindGroup(ref.group_id));
  return group->InProgress(ref);
}

asio::awaitable<Status> Broker::Seek(std::string topic_name, std::string group_name,
                                     StartPosition position) {
  if (closed_) co_return FailedPreconditionError("the bus is closed");
  auto topic = topics_.find(topic_name);
  if (topic == topics_.end()) co_return NotFoundError("topic '" + topic_name + "' does not exist");
  auto group = topic->second->groups.find(group_name);
  if (group == topic->second->groups.end()) {
    co_return NotFoundError("group '" + group_name + "' of topic '" + topic_name +
                            "' does not exist");
  }
  group->second->Reset(position);
  group->second->Pump();
  co_return OkStatus();
}

Result<GroupInfo> Broker::DescribeGroup(std::string_view topic_name, std::string_view group_name) {
  if (closed_) return FailedPreconditionError("the bus is closed");
  auto topic = topics_.find(topic_name);
  if (topic == topics_.end()) {
    return NotFoundError("topic '" + std::string(topic_name) + "' does not exist");
  }
  auto group = topic->second->groups.find(group_name);
  if (group == topic->second->groups.end()) {
    return NotFoundError("group '" + std::string(group_name) + "' does not exist");
  }
  return group->second->Describe();
}

void Broker::SendToDeadLetters(Group& group, std::string dlq_topic, Message message,
                               PartitionId partition, Offset offset, std::uint64_t epoch) {
  asio::co_spawn(
      shard_,
      [this, group_id = group.id(), dlq_topic = std::move(dlq_topic), message = std::move(message),
       partition, offset, epoch]() mutable -> asio::awaitable<void> {
        ++dead_letters_in_flight_;
        Status status;
        if (closed_) {
          status = FailedPreconditionError("the bus is closed");
        } else {
          Result<Topic*> topic = co_await FindOrCreate(dlq_topic, true, TopicOptions{});
          if (!topic.ok()) {
            status = topic.status();
          } else {
            std::vector<std::shared_ptr<StoredMessage>> one;
            one.push_back(std::make_shared<StoredMessage>(std::move(message)));
            status = (co_await Store(**topic, std::move(one), std::nullopt, std::nullopt)).status();
          }
        }
        if (Result<Group*> group = FindGroup(group_id); group.ok()) {
          (*group)->OnDeadLettered(partition, offset, epoch, status);
        }
        --dead_letters_in_flight_;
        persist_done_->cancel();  // Close() may be waiting for it
      },
      asio::detached);
}

void Broker::MarkDirty(Group& group) {
  if (group.ephemeral()) return;
  ++dirty_seq_;
  if (std::find(dirty_groups_.begin(), dirty_groups_.end(), group.id()) == dirty_groups_.end()) {
    dirty_groups_.push_back(group.id());
  }
  if (persisting_ || closed_) return;
  persisting_ = true;
  asio::co_spawn(
      shard_, [this]() -> asio::awaitable<void> { (void)co_await PersistLoop(); }, asio::detached);
}

asio::awaitable<Status> Broker::PersistLoop() {
  Status last;
  while (!dirty_groups_.empty()) {
    // Plain acks are gathered for a moment: one state sync per interval
    // rather than one per ack. AckSync and Close cut the wait short.
    if (sync_waiters_ == 0 && !closing_) {
      boost::system::error_code ec;
      persist_delay_->expires_after(options_.state_flush_interval);
      co_await persist_delay_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    const std::uint64_t round = dirty_seq_;
    std::vector<std::uint64_t> ids;
    ids.swap(dirty_groups_);
    std::vector<std::pair<std::string, std::optional<std::string>>> updates;
    for (std::uint64_t id : ids) {
      Result<Group*> group = FindGroup(id);
      if (!group.ok()) continue;
      updates.emplace_back(GroupKey((*group)->topic().name, (*group)->name()),
                           EncodeGroupRecord((*group)->config(), (*group)->acked()));
    }
    if (!updates.empty()) {
      last = co_await state_->Put(std::move(updates));
      if (!last.ok()) {
        log::Error("could not persist group positions; they stay in memory",
                   {{"error", last.ToString()}});
      }
    }
    persist_error_ = last;
    persisted_seq_ = round;
    persist_done_->cancel();
  }
  persisting_ = false;
  persist_done_->cancel();
  co_return last;
}

std::int64_t Broker::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock().WallNow().time_since_epoch())
      .count();
}

void Broker::ProcessTimers() {
  if (closed_) return;
  MonoTime now = clock().Now();
  for (auto& [name, topic] : topics_) {
    topic->ForEachGroup([&](Group& group) {
      if (group.NextTimer() && *group.NextTimer() <= now) {
        group.ProcessTimers(now);
        group.Pump();
      }
    });
  }
  if (now >= next_retention_) {
    next_retention_ = now + options_.retention_interval;
    EnforceRetention();
  }
  ArmWakeup();
}

void Broker::ArmWakeup() {
  std::optional<MonoTime> earliest = next_retention_;
  for (auto& [name, topic] : topics_) {
    topic->ForEachGroup([&](Group& group) {
      if (auto t = group.NextTimer(); t && (!earliest || *t < *earliest)) earliest = t;
    });
  }
  if (earliest) WakeAt(*earliest);
}

void Broker::WakeAt(MonoTime when) {
  if (closed_) return;
  if (wakeup_at_ && *wakeup_at_ <= when) return;
  wakeup_at_ = when;
  if (real_clock_) {
    wakeup_->expires_at(when);
  } else {
    Duration left = std::max(Duration::zero(), when - clock().Now());
    wakeup_->expires_after(std::min(left, kVirtualClockPoll));
  }
  wakeup_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // re-armed or shut down: `this` may be gone
    wakeup_at_.reset();
    ProcessTimers();
  });
}

asio::awaitable<void> Broker::WaitSlice(asio::steady_timer& timer, Deadline deadline) {
  if (real_clock_) {
    timer.expires_at(deadline.when());
  } else {
    timer.expires_after(std::min(deadline.Remaining(clock()), kVirtualClockPoll));
  }
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void Broker::EnforceRetention() {
  for (auto& [name, topic] : topics_) {
    if (!topic->options.retention_bytes && !topic->options.retention_age) continue;
    for (std::uint32_t p = 0; p < topic->partitions.size(); ++p) {
      std::optional<Offset> keep_from;
      if (!topic->options.retention_drops_unacked) {
        for (auto& [group_name, group] : topic->groups) {
          Offset floor = group->Floor(PartitionId(p));
          if (!keep_from || floor < *keep_from) keep_from = floor;
        }
      }
      Result<std::size_t> removed = topic->partitions[p]->EnforceRetention(keep_from);
      if (!removed.ok()) {
        log::Warn("retention failed", {{"topic", name}, {"error", removed.status().ToString()}});
      }
    }
  }
}

asio::awaitable<Status> Broker::Close() {
  if (closed_ || closing_) co_return OkStatus();
  closing_ = true;
  persist_delay_->cancel();
  // Dead letters being stored finish first (their originals then count as
  // acked and are persisted below), so a clean close redelivers none of them.
  while (persisting_ || dead_letters_in_flight_ > 0) {
    boost::system::error_code ec;
    co_await persist_done_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  Status status;
  if (!dirty_groups_.empty()) {
    persisting_ = true;
    status = co_await PersistLoop();
  }
  closed_ = true;
  wakeup_->cancel();
  for (auto& [name, topic] : topics_) {
    topic->ForEachGroup([](Group& group) {
      for (const auto& member : group.members()) member->Wake();
    });
  }
  CloseRequests();
  for (auto& [name, topic] : topics_) {
    for (auto& log : topic->partitions) {
      Status s = co_await log->Close();
      if (status.ok() && !s.ok()) status = s;
    }
  }
  Status s = co_await state_->Close();
  if (status.ok() && !s.ok()) status = s;
  co_return status;
}

}  // namespace junction::broker
