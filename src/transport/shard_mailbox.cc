#include "transport/shard_mailbox.h"

#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace junction::transport {
namespace asio = boost::asio;
namespace {

bool HasOptions(const PublishOptions& options) {
  return options.deliver_at || options.delay || options.partition;
}

template <typename Waiter, typename Value>
void Complete(Waiter& waiter, Value value) {
  if (waiter.here) {
    // Already on the waiter's executor: what dispatch would do, without
    // asking the type-erased handler for its executor (and a work guard on
    // it) each time.
    std::move(waiter.handler)(std::move(value));
    return;
  }
  asio::dispatch(asio::append(std::move(waiter.handler), std::move(value)));
}

}  // namespace

// Stores `messages` (each already checked) in one publish, or the one message
// with options, and completes each handler with its own result.
asio::awaitable<void> ShardMailbox::StoreTogether(
    std::string topic, std::vector<std::shared_ptr<broker::StoredMessage>> messages,
    PublishOptions options, std::vector<PublishWaiter> waiters) {
  broker::Broker* broker = broker_.get();
  Result<std::vector<PublishResult>> stored =
      co_await broker->PublishChecked(std::move(topic), std::move(messages), options);
  for (std::size_t i = 0; i < waiters.size(); ++i) {
    if (stored.ok()) {
      Complete(waiters[i], Result<PublishResult>((*stored)[i]));
    } else {
      Complete(waiters[i], Result<PublishResult>(stored.status()));
    }
  }
  // Publishers resumed in place just now have likely sent their next
  // messages: store them at once (this runs as the log acknowledges, and the
  // log starts their write as soon as its acknowledgements are done) rather
  // than behind the delivery and ack work queued on the shard meanwhile.
  StorePublishesNow();
}

void ShardMailbox::EnqueuePublishErased(std::string topic,
                                        std::shared_ptr<broker::StoredMessage> message,
                                        PublishOptions options, PublishWaiter waiter) {
  std::lock_guard lock(mutex_);
  publishes_.push_back({std::move(topic), std::move(message), options, std::move(waiter)});
  ScheduleLocked();
}

void ShardMailbox::EnqueueAckErased(AckItem item) {
  std::lock_guard lock(mutex_);
  acks_.push_back(std::move(item));
  ScheduleLocked();
}

void ShardMailbox::ScheduleLocked() {
  if (scheduled_) return;
  scheduled_ = true;
  asio::post(shard_, [this] { Drain(); });
}

// Checks `publishes` and hands them to the broker: one Publish per topic for
// the plain ones (in arrival order); one each for those with options. A
// message the broker would refuse fails alone.
void ShardMailbox::StorePublishes(std::vector<PublishItem>& publishes, broker::Broker& broker) {
  struct Together {
    std::vector<std::shared_ptr<broker::StoredMessage>> messages;
    std::vector<PublishWaiter> waiters;
  };
  std::map<std::string, Together> together;
  // A burst is mostly to one topic: its name is checked once.
  std::optional<std::string_view> checked_topic;
  for (PublishItem& item : publishes) {
    Status s;
    if (item.topic != checked_topic) {
      s = broker.CheckTopic(item.topic);
      if (s.ok()) checked_topic = item.topic;
    }
    if (s.ok()) {
      s = broker.CheckMessages(std::span<const Message>(&item.message->message, 1), item.options);
    }
    if (!s.ok()) {
      Complete(item.waiter, Result<PublishResult>(std::move(s)));
      continue;
    }
    if (HasOptions(item.options)) {
      std::vector<std::shared_ptr<broker::StoredMessage>> one;
      one.push_back(std::move(item.message));
      std::vector<PublishWaiter> waiter;
      waiter.push_back(std::move(item.waiter));
      asio::co_spawn(
          shard_,
          StoreTogether(std::move(item.topic), std::move(one), item.options, std::move(waiter)),
          asio::detached);
      continue;
    }
    Together& group = together[item.topic];
    group.messages.push_back(std::move(item.message));
    group.waiters.push_back(std::move(item.waiter));
  }
  for (auto& [topic, group] : together) {
    asio::co_spawn(
        shard_,
        StoreTogether(topic, std::move(group.messages), PublishOptions(), std::move(group.waiters)),
        asio::detached);
  }
}

void ShardMailbox::StorePublishesNow() {
  if (storing_now_ || !broker_) return;  // (a store that failed at once, inside this)
  storing_now_ = true;
  std::vector<PublishItem>& publishes = publishes_now_;
  {
    std::lock_guard lock(mutex_);
    publishes.swap(publishes_);
    // scheduled_ stays: the drain posted for these still comes (for acks,
    // or finding nothing).
  }
  StorePublishes(publishes, *broker_);
  publishes.clear();
  storing_now_ = false;
}

void ShardMailbox::Drain() {
  // Swapped with the queues' spare vectors, cleared (not freed) when done:
  // the queues keep their capacity from drain to drain.
  std::vector<PublishItem>& publishes = draining_publishes_;
  std::vector<AckItem>& acks = draining_acks_;
  struct Cleared {
    std::vector<PublishItem>& publishes;
    std::vector<AckItem>& acks;
    ~Cleared() {
      publishes.clear();
      acks.clear();
    }
  } cleared{publishes, acks};
  {
    std::lock_guard lock(mutex_);
    publishes.swap(publishes_);
    acks.swap(acks_);
    scheduled_ = false;
  }
  if (!broker_) {  // the bus is shutting down
    for (AckItem& item : acks) Complete(item.waiter, FailedPreconditionError("the bus is closed"));
    for (PublishItem& item : publishes) {
      Complete(item.waiter, Result<PublishResult>(FailedPreconditionError("the bus is closed")));
    }
    return;
  }
  broker::Broker& broker = *broker_;
  StorePublishes(publishes, broker);
  // Acks after the publishes: each store above has handed its batch to the
  // log (whose group commit starts its write+fdatasync) before the acks'
  // group work runs, which then overlaps the sync instead of delaying it.
  // Each group the acks free room in is pumped once, after the last of them,
  // and only then are the callers told: one resumed in place finds the
  // deliveries the ack made room for already handed out.
  {
    broker::Broker::DeferredPumps pumps(broker);
    for (AckItem& item : acks) {
      switch (item.kind) {
        case AckKind::kAck:
          item.result = broker.Ack(item.ref);
          break;
        case AckKind::kNack:
          item.result = broker.Nack(item.ref, item.delay, std::move(item.error));
          break;
        case AckKind::kInProgress:
          item.result = broker.InProgress(item.ref);
          break;
      }
    }
  }
  for (AckItem& item : acks) Complete(item.waiter, std::move(item.result));
}

}  // namespace junction::transport
