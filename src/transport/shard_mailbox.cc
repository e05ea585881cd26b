#include "transport/shard_mailbox.h"

#include <map>
#include <span>
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

template <typename Handler, typename Value>
void Complete(Handler& handler, Value value) {
  asio::dispatch(asio::append(std::move(handler), std::move(value)));
}

}  // namespace

// Stores `messages` (each already checked) in one publish, or the one message
// with options, and completes each handler with its own result.
asio::awaitable<void> ShardMailbox::StoreTogether(std::string topic, std::vector<Message> messages,
                                                  PublishOptions options,
                                                  std::vector<PublishHandler> handlers) {
  broker::Broker* broker = broker_.get();
  // Not a co_await in a conditional expression (GCC 12 coroutine bugs).
  Result<std::vector<PublishResult>> stored = FailedPreconditionError("not stored");
  if (HasOptions(options)) {
    stored = co_await broker->Publish(std::move(topic), std::move(messages), options);
  } else {
    stored = co_await broker->PublishChecked(std::move(topic), std::move(messages));
  }
  for (std::size_t i = 0; i < handlers.size(); ++i) {
    if (stored.ok()) {
      Complete(handlers[i], Result<PublishResult>((*stored)[i]));
    } else {
      Complete(handlers[i], Result<PublishResult>(stored.status()));
    }
  }
}

void ShardMailbox::EnqueuePublish(std::string topic, Message message, PublishOptions options,
                                  PublishHandler handler) {
  std::lock_guard lock(mutex_);
  publishes_.push_back({std::move(topic), std::move(message), options, std::move(handler)});
  ScheduleLocked();
}

void ShardMailbox::EnqueueAck(broker::DeliveryRef ref, AckKind kind, std::optional<Duration> delay,
                              std::string error, StatusHandler handler) {
  std::lock_guard lock(mutex_);
  acks_.push_back({ref, kind, delay, std::move(error), std::move(handler)});
  ScheduleLocked();
}

void ShardMailbox::ScheduleLocked() {
  if (scheduled_) return;
  scheduled_ = true;
  asio::post(shard_, [this] { Drain(); });
}

void ShardMailbox::Drain() {
  std::vector<PublishItem> publishes;
  std::vector<AckItem> acks;
  {
    std::lock_guard lock(mutex_);
    publishes.swap(publishes_);
    acks.swap(acks_);
    scheduled_ = false;
  }
  if (!broker_) {  // the bus is shutting down
    for (AckItem& item : acks) Complete(item.handler, FailedPreconditionError("the bus is closed"));
    for (PublishItem& item : publishes) {
      Complete(item.handler, Result<PublishResult>(FailedPreconditionError("the bus is closed")));
    }
    return;
  }
  broker::Broker& broker = *broker_;
  for (AckItem& item : acks) {
    Status status;
    switch (item.kind) {
      case AckKind::kAck:
        status = broker.Ack(item.ref);
        break;
      case AckKind::kNack:
        status = broker.Nack(item.ref, item.delay, std::move(item.error));
        break;
      case AckKind::kInProgress:
        status = broker.InProgress(item.ref);
        break;
    }
    Complete(item.handler, std::move(status));
  }
  // One Publish per topic for the plain ones (in arrival order); one each for
  // those with options. A message the broker would refuse fails alone.
  struct Together {
    std::vector<Message> messages;
    std::vector<PublishHandler> handlers;
  };
  std::map<std::string, Together> together;
  for (PublishItem& item : publishes) {
    if (Status s = broker.CheckPublish(item.topic, std::span<const Message>(&item.message, 1),
                                       item.options);
        !s.ok()) {
      Complete(item.handler, Result<PublishResult>(std::move(s)));
      continue;
    }
    if (HasOptions(item.options)) {
      std::vector<Message> one;
      one.push_back(std::move(item.message));
      std::vector<PublishHandler> handler;
      handler.push_back(std::move(item.handler));
      asio::co_spawn(
          shard_,
          StoreTogether(std::move(item.topic), std::move(one), item.options, std::move(handler)),
          asio::detached);
      continue;
    }
    Together& group = together[item.topic];
    group.messages.push_back(std::move(item.message));
    group.handlers.push_back(std::move(item.handler));
  }
  for (auto& [topic, group] : together) {
    asio::co_spawn(shard_,
                   StoreTogether(topic, std::move(group.messages), PublishOptions(),
                                 std::move(group.handlers)),
                   asio::detached);
  }
}

}  // namespace junction::transport
