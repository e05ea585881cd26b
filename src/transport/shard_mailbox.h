#pragma once

// ShardMailbox: how single publishes and acks from any thread reach the
// broker's shard in batches. Callers enqueue an item with its completion
// handler; the first item of an empty mailbox posts one drain to the shard,
// which takes everything queued by then. Publishes to one topic without
// options are stored together (one record batch per partition, one log
// append) and acks are applied in one go, so under load a burst costs one
// hop to the shard instead of one per message. Each handler completes on its
// own executor.
//
// Thread: Enqueue* from any thread; Drain on the shard only.

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/broker.h"
#include "junction/bus.h"

namespace junction::transport {

class ShardMailbox {
 public:
  using PublishHandler = boost::asio::any_completion_handler<void(Result<PublishResult>)>;
  using StatusHandler = boost::asio::any_completion_handler<void(Status)>;
  enum class AckKind : std::uint8_t { kAck, kNack, kInProgress };

  // `broker` is read on the shard only, when a drain runs; it must outlive
  // every drain (the owner stops the shard first).
  ShardMailbox(boost::asio::any_io_executor shard, std::unique_ptr<broker::Broker>& broker)
      : shard_(std::move(shard)), broker_(broker) {}

  // `handler`: a completion handler for void(Result<PublishResult>), resp.
  // void(Status). One whose executor is the shard's is called in place when
  // the drain has the result (it runs there already); any other is
  // dispatched to its executor.
  // `message`: boxed by the caller as the broker stores and shares it
  // (broker::Broker::PublishChecked), so it is not moved again.
  template <typename Handler>
  void EnqueuePublish(std::string topic, std::shared_ptr<broker::StoredMessage> message,
                      PublishOptions options, Handler&& handler) {
    bool here = boost::asio::get_associated_executor(handler) == shard_;
    EnqueuePublishErased(std::move(topic), std::move(message), options,
                         {PublishHandler(std::forward<Handler>(handler)), here});
  }
  template <typename Handler>
  void EnqueueAck(broker::DeliveryRef ref, AckKind kind, std::optional<Duration> delay,
                  std::string error, Handler&& handler) {
    bool here = boost::asio::get_associated_executor(handler) == shard_;
    EnqueueAckErased({ref,
                      kind,
                      delay,
                      std::move(error),
                      {StatusHandler(std::forward<Handler>(handler)), here},
                      Status()});
  }

 private:
  template <typename H>
  struct Waiter {
    H handler;
    bool here = false;  // on the shard's executor: called in place
  };
  using PublishWaiter = Waiter<PublishHandler>;
  struct PublishItem {
    std::string topic;
    std::shared_ptr<broker::StoredMessage> message;
    PublishOptions options;
    PublishWaiter waiter;
  };
  struct AckItem {
    broker::DeliveryRef ref;
    AckKind kind = AckKind::kAck;
    std::optional<Duration> delay;
    std::string error;
    Waiter<StatusHandler> waiter;
    Status result;  // set by Drain, then passed to the waiter
  };

  void EnqueuePublishErased(std::string topic, std::shared_ptr<broker::StoredMessage> message,
                            PublishOptions options, PublishWaiter waiter);
  void EnqueueAckErased(AckItem item);
  void ScheduleLocked();
  void Drain();
  void StorePublishes(std::vector<PublishItem>& publishes, broker::Broker& broker);
  // On the shard: stores what publishes_ holds now, ahead of the queued drain.
  void StorePublishesNow();
  boost::asio::awaitable<void> StoreTogether(
      std::string topic, std::vector<std::shared_ptr<broker::StoredMessage>> messages,
      PublishOptions options, std::vector<PublishWaiter> waiters);

  boost::asio::any_io_executor shard_;
  std::unique_ptr<broker::Broker>& broker_;
  std::mutex mutex_;
  std::vector<PublishItem> publishes_;  // guarded by mutex_
  std::vector<AckItem> acks_;           // guarded by mutex_
  bool scheduled_ = false;              // guarded by mutex_: a drain is posted
  // What Drain is working through (shard only; empty between drains).
  std::vector<PublishItem> draining_publishes_;
  std::vector<AckItem> draining_acks_;
  std::vector<PublishItem> publishes_now_;  // StorePublishesNow's
  bool storing_now_ = false;
};

}  // namespace junction::transport
