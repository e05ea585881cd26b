#include "transport/embedded_bus.h"

#include <future>
#include <optional>
#include <span>
#include <thread>
#include <type_traits>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "broker/broker.h"
#include "core/affinity.h"
#include "core/env.h"
#include "junction/log.h"
#include "transport/holding.h"
#include "transport/shard_mailbox.h"

namespace junction::transport {
namespace asio = boost::asio;
namespace {

// The shard (a thread of its own, or the executor BusOptions::executor
// names), the blocking pool and the broker they run. Shared by the Bus and
// the Subscriptions/Responders users hold, so none outlives it; NewCore's
// deleter closes the broker on the shard before it goes. Lambdas posted to
// the shard capture it by raw pointer: the broker is closed and the Core
// destroyed only after everything posted before its last reference went.
template <typename T>
asio::awaitable<std::optional<T>> Optional(asio::awaitable<T> a) {
  co_return co_await std::move(a);
}

struct Core;
asio::awaitable<void> CloseBroker(Core* core);

struct Core {
  // Set when the bus runs its own shard thread.
  std::unique_ptr<asio::io_context> own_shard;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::any_io_executor shard;
  // Pins this thread to BusOptions::blocking_cpus while `blocking` starts
  // its threads, which inherit the set; reset right after.
  std::optional<ScopedThreadCpus> pool_cpus;
  // Writes and fdatasyncs of different partitions (and the state store) run
  // at once; each log still flushes one batch at a time.
  asio::thread_pool blocking;
  std::unique_ptr<Env> owned_env;
  std::unique_ptr<broker::Broker> broker;
  ShardMailbox mailbox;
  std::thread thread;

  // `executor`: the user's shard; nullopt: a thread of our own, on
  // `shard_cpus` unless empty. REQUIRES: both CPU sets passed CheckCpus.
  Core(std::optional<asio::any_io_executor> executor, std::size_t blocking_threads,
       std::span<const int> shard_cpus, std::span<const int> blocking_cpus)
      : own_shard(executor ? nullptr : std::make_unique<asio::io_context>(1)),
        shard(executor ? *executor : asio::any_io_executor(own_shard->get_executor())),
        pool_cpus(std::in_place, blocking_cpus),
        blocking(blocking_threads),
        mailbox(shard, broker) {
    pool_cpus.reset();
    if (own_shard) {
      work.emplace(own_shard->get_executor());
      thread = std::thread([this, cpus = std::vector<int>(shard_cpus.begin(), shard_cpus.end())] {
        if (!cpus.empty()) (void)PinThread(cpus);  // checked by OpenEmbeddedBus
        own_shard->run();
      });
    }
  }

  // Runs the awaitable `a` on the shard, blocking this thread.
  // REQUIRES: own_shard, and not on the shard thread.
  template <typename T>
  T RunBlocking(asio::awaitable<T> a) {
    // co_spawn needs a default-constructible result: carry it in an optional.
    std::optional<T> out = asio::co_spawn(shard, Optional(std::move(a)), asio::use_future).get();
    return std::move(*out);
  }

  // The broker is closed (or never opened) by now.
  ~Core() {
    if (own_shard) {
      work.reset();
      own_shard->stop();
      thread.join();
    }
    blocking.join();
  }
};

asio::awaitable<void> CloseBroker(Core* core) {
  if (core->broker) (void)co_await core->broker->Close();
  core->broker.reset();
}

asio::awaitable<void> CloseAndDelete(Core* core) {
  co_await CloseBroker(core);
  delete core;
}

// The deleter of every shared_ptr<Core>. With a shard thread of our own it
// blocks until the broker is closed (the last reference is never dropped on
// that thread: see the lambdas above). On the user's executor it may well run
// there, inside a handler that still uses the Core, so the close and the
// delete are posted behind it.
void DestroyCore(Core* core) {
  if (core->own_shard || !core->broker) {  // (no broker: Open failed, nothing was posted)
    if (core->broker) {
      asio::co_spawn(core->shard, CloseBroker(core), asio::use_future).get();
    }
    delete core;
    return;
  }
  asio::post(core->shard,
             [core] { asio::co_spawn(core->shard, CloseAndDelete(core), asio::detached); });
}

std::shared_ptr<Core> NewCore(const BusOptions& options, std::size_t blocking_threads) {
  return std::shared_ptr<Core>(
      new Core(options.executor, blocking_threads, options.shard_cpus, options.blocking_cpus),
      &DestroyCore);
}

// Runs the (not yet started) awaitable `a` on the shard and resumes on the
// caller's executor. `a` is created on the caller's thread but, being lazy,
// runs only on the shard. co_spawn needs a default-constructible result,
// hence the optional. (Awaitables rather than lambdas: GCC 12 mis-copies
// lambda captures passed through coroutine parameters.)
// A caller already on the shard (BusOptions::executor) runs it in place.
template <typename T>
Awaitable<T> OnShard(Core& core, Awaitable<T> a) {
  asio::any_io_executor caller = co_await asio::this_coro::executor;
  if (caller == core.shard) co_return co_await std::move(a);
  std::optional<T> out =
      co_await asio::co_spawn(core.shard, Optional(std::move(a)), asio::use_awaitable);
  co_return std::move(*out);
}

// The broker's synchronous calls, as awaitables for OnShard.
Awaitable<std::vector<Status>> ApplyAcksOn(Core* c, std::vector<AckOp> ops) {
  std::vector<Status> out;
  out.reserve(ops.size());
  if (!c->broker) {
    out.assign(ops.size(), FailedPreconditionError("the bus is closed"));
    co_return out;
  }
  broker::Broker& broker = *c->broker;
  broker::Broker::DeferredPumps pumps(broker);
  for (AckOp& op : ops) {
    switch (op.kind) {
      case AckOp::Kind::kAck:
        out.push_back(broker.Ack(op.ref));
        break;
      case AckOp::Kind::kNack:
        out.push_back(broker.Nack(op.ref, op.delay, std::move(op.error)));
        break;
      case AckOp::Kind::kInProgress:
        out.push_back(broker.InProgress(op.ref));
        break;
    }
  }
  co_return out;
}

Awaitable<Status> LeaveOn(Core* c, std::shared_ptr<broker::Member> m) {
  c->broker->Leave(*m);
  co_return OkStatus();
}
Awaitable<Status> ReplyOn(Core* c, std::uint64_t id, Message reply) {
  co_return c->broker->Reply(id, std::move(reply));
}
Awaitable<Status> CloseResponderOn(Core* c, std::shared_ptr<broker::ResponderState> s) {
  c->broker->CloseResponder(*s);
  co_return OkStatus();
}
Awaitable<Result<GroupInfo>> DescribeOn(Core* c, std::string topic, std::string group) {
  co_return c->broker->DescribeGroup(topic, group);
}
Awaitable<Result<std::vector<TopicInfo>>> ListTopicsOn(Core* c) {
  co_return c->broker->ListTopics();
}
Awaitable<Result<TopicInfo>> DescribeTopicOn(Core* c, std::string topic) {
  co_return c->broker->DescribeTopic(topic);
}
Awaitable<Result<std::vector<GroupInfo>>> ListGroupsOn(Core* c, std::string topic) {
  co_return c->broker->ListGroups(topic);
}
Awaitable<Result<std::vector<TopicRecord>>> ReadTopicOn(Core* c, std::string topic,
                                                        PartitionId partition, Offset from,
                                                        std::size_t max) {
  co_return c->broker->ReadTopic(topic, partition, from, max);
}
Awaitable<Result<std::shared_ptr<broker::ResponderState>>> RespondOn(Core* c, std::string topic) {
  co_return c->broker->Respond(std::move(topic));
}

// A completion handler that holds the Core until the broker answered: a
// Delivery may outlive its Bus, and the mailbox must not be destroyed with
// an ack in it (its handler, never called, would end the awaiting coroutine
// silently). Invoked where `handler` runs (its executor is forwarded), so
// the last reference is dropped there, never on a shard thread of our own.
template <typename Handler>
using HoldingCore = Holding<Core, Handler>;

// An ack, nack or InProgress through the shard's mailbox: a burst of them
// costs one hop. No coroutine of its own: the awaitable is the initiation's,
// which holds copies of these arguments and nothing of the control.
Awaitable<Status> SendAck(std::weak_ptr<Core> weak, broker::DeliveryRef ref,
                          ShardMailbox::AckKind kind, std::optional<Duration> delay,
                          std::string error) {
  auto initiate = [weak = std::move(weak), ref, kind, delay,
                   error = std::move(error)](auto handler) mutable {
    std::shared_ptr<Core> core = weak.lock();
    if (!core) {
      // Not inline: the awaiting coroutine is still suspending.
      auto executor = asio::get_associated_executor(handler);
      asio::post(executor,
                 asio::append(std::move(handler), FailedPreconditionError("the bus is closed")));
      return;
    }
    ShardMailbox& mailbox = core->mailbox;
    mailbox.EnqueueAck(ref, kind, delay, std::move(error),
                       HoldingCore<decltype(handler)>{std::move(core), std::move(handler)});
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(Status)>(std::move(initiate),
                                                                           asio::use_awaitable);
}

Awaitable<Status> AckSyncOn(std::weak_ptr<Core> weak, broker::DeliveryRef ref) {
  std::shared_ptr<Core> core = weak.lock();
  if (!core) co_return FailedPreconditionError("the bus is closed");
  co_return co_await OnShard(*core, core->broker->AckSync(ref));
}

class EmbeddedDeliveryControl final : public DeliveryControl {
 public:
  EmbeddedDeliveryControl(std::weak_ptr<Core> core, broker::DeliveryRef ref)
      : core_(std::move(core)), ref_(ref) {}

  Awaitable<Status> Ack() override {
    return SendAck(core_, ref_, ShardMailbox::AckKind::kAck, std::nullopt, std::string());
  }
  Awaitable<Status> AckSync() override { return AckSyncOn(core_, ref_); }
  Awaitable<Status> Nack(std::optional<Duration> delay, std::string error) override {
    return SendAck(core_, ref_, ShardMailbox::AckKind::kNack, delay, std::move(error));
  }
  Awaitable<Status> InProgress() override {
    return SendAck(core_, ref_, ShardMailbox::AckKind::kInProgress, std::nullopt, std::string());
  }

 private:
  std::weak_ptr<Core> core_;
  broker::DeliveryRef ref_;
};

class EmbeddedSubscription final : public Subscription {
 public:
  EmbeddedSubscription(std::shared_ptr<Core> core, std::shared_ptr<broker::Member> member)
      : core_(std::move(core)), member_(std::move(member)) {}
  ~EmbeddedSubscription() override {
    // Dispatched: a caller on the shard (BusOptions::executor) leaves at
    // once, before its next call reaches the broker.
    asio::dispatch(core_->shard, [c = core_.get(), m = member_] { c->broker->Leave(*m); });
  }

  Awaitable<Result<std::vector<Delivery>>> NextBatch(std::size_t max, Deadline deadline) override {
    return NextBatchWith(max, deadline, nullptr);
  }

  // NextBatch; when `stored` is given, what NextBatchStored (embedded_bus.h)
  // returns beside each delivery, at the same index.
  Awaitable<Result<std::vector<Delivery>>> NextBatchWith(std::size_t max, Deadline deadline,
                                                         std::vector<StoredRef>* stored) {
    while (true) {
      Result<std::vector<broker::BrokerDelivery>> got =
          co_await OnShard(*core_, core_->broker->Next(member_, deadline, max));
      if (!got.ok()) co_return got.status();
      const bool none = got->empty();
      std::vector<Delivery> out = Take(std::move(*got), stored);
      // None when every one was skipped (not a message): the next ones.
      if (!out.empty() || none) co_return out;
    }
  }

  Awaitable<Status> Close() override {
    co_return co_await OnShard(*core_, LeaveOn(core_.get(), member_));
  }

  // The broker's deliveries as the consumer's (see NextBatchWith).
  std::vector<Delivery> Take(std::vector<broker::BrokerDelivery> got,
                             std::vector<StoredRef>* stored) {
    if (stored != nullptr) {
      stored->clear();
      stored->reserve(got.size());
    }
    std::vector<Delivery> out;
    out.reserve(got.size());
    // One allocation for the batch's controls; each delivery's pointer
    // shares the block (never grown: reserved first).
    auto controls = std::make_shared<std::vector<EmbeddedDeliveryControl>>();
    controls->reserve(got.size());
    for (broker::BrokerDelivery& d : got) {
      if (stored != nullptr && d.batch != nullptr) {
        // Sent as stored: no consumer's copy.
        std::shared_ptr<DeliveryControl> control(controls, &controls->emplace_back(core_, d.ref));
        out.emplace_back(std::move(d.topic), d.partition, d.offset, d.attempt, Message{},
                         std::move(control));
        stored->push_back({std::move(d.batch), std::move(d.stored), d.ref, d.position});
        continue;
      }
      // A record the group never decoded: decoded here, off the shard.
      Result<std::shared_ptr<const broker::StoredMessage>> message = broker::StoredOf(d);
      if (!message.ok()) {
        // Left in flight: its failed attempt skips it (broker::Group::Fail).
        log::Error("a delivery is not a message; skipped",
                   {{"topic", d.topic},
                    {"partition", std::uint64_t{d.partition.value()}},
                    {"offset", d.offset.value()},
                    {"error", message.status().ToString()}});
        continue;
      }
      std::shared_ptr<DeliveryControl> control(controls, &controls->emplace_back(core_, d.ref));
      if (stored != nullptr) stored->push_back({nullptr, nullptr, d.ref});
      // The consumer's copy, made in place (not copied, then moved).
      Delivery& delivery = out.emplace_back(std::move(d.topic), d.partition, d.offset, d.attempt,
                                            std::as_const((*message)->message), std::move(control));
      broker::SetAttemptHeader(delivery.message(), d.attempt);
    }
    return out;
  }

 private:
  std::shared_ptr<Core> core_;
  std::shared_ptr<broker::Member> member_;
};

class EmbeddedIncomingRequest final : public IncomingRequest {
 public:
  EmbeddedIncomingRequest(std::weak_ptr<Core> core, std::uint64_t id, Message message)
      : core_(std::move(core)), id_(id), message_(std::move(message)) {}
  const Message& message() const override { return message_; }
  Awaitable<Status> Reply(Message reply) override {
    auto core = core_.lock();
    if (!core) co_return FailedPreconditionError("the bus is closed");
    co_return co_await OnShard(*core, ReplyOn(core.get(), id_, std::move(reply)));
  }

 private:
  std::weak_ptr<Core> core_;
  std::uint64_t id_;
  Message message_;
};

class EmbeddedResponder final : public Responder {
 public:
  EmbeddedResponder(std::shared_ptr<Core> core, std::shared_ptr<broker::ResponderState> state)
      : core_(std::move(core)), state_(std::move(state)) {}
  ~EmbeddedResponder() override {
    asio::dispatch(core_->shard, [c = core_.get(), s = state_] { c->broker->CloseResponder(*s); });
  }

  Awaitable<Result<std::unique_ptr<IncomingRequest>>> Next(Deadline deadline) override {
    Result<broker::RequestData> got =
        co_await OnShard(*core_, core_->broker->NextRequest(state_, deadline));
    if (!got.ok()) co_return got.status();
    co_return std::make_unique<EmbeddedIncomingRequest>(core_, got->id, std::move(got->message));
  }
  Awaitable<Status> Close() override {
    co_return co_await OnShard(*core_, CloseResponderOn(core_.get(), state_));
  }

 private:
  std::shared_ptr<Core> core_;
  std::shared_ptr<broker::ResponderState> state_;
};

class EmbeddedBus final : public Bus {
 public:
  EmbeddedBus(std::shared_ptr<Core> core, Capabilities capabilities, const Clock& clock)
      : core_(std::move(core)), capabilities_(capabilities), clock_(clock) {}

  const Capabilities& capabilities() const override { return capabilities_; }

  Awaitable<Status> CreateTopic(std::string_view topic, TopicOptions options,
                                Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(*core_, core_->broker->CreateTopic(std::string(topic), options));
  }

  // Not a coroutine: the awaitable async_initiate returns is the only frame
  // per publish. Through the shard's mailbox: concurrent publishes to a topic
  // are stored together.
  Awaitable<Result<PublishResult>> Publish(std::string_view topic, Message message,
                                           PublishOptions options, Deadline deadline) override {
    if (Status s = CheckDeadline(deadline); !s.ok()) return PublishFailed(std::move(s));
    // Boxed once here, as the broker will store and share it: the awaitable's
    // machinery then moves a pointer, not the Message.
    auto initiate = [core = core_.get(), topic = std::string(topic),
                     message = std::make_shared<broker::StoredMessage>(std::move(message)),
                     options](auto handler) mutable {
      core->mailbox.EnqueuePublish(std::move(topic), std::move(message), options,
                                   std::move(handler));
    };
    return asio::async_initiate<decltype(asio::use_awaitable), void(Result<PublishResult>)>(
        std::move(initiate), asio::use_awaitable);
  }

  Awaitable<Result<std::vector<PublishResult>>> PublishBatch(std::string_view topic,
                                                             std::vector<Message> messages,
                                                             PublishOptions options,
                                                             Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(
        *core_, core_->broker->Publish(std::string(topic), std::move(messages), options));
  }

  // ApplyAcks's (embedded_bus.h).
  Awaitable<std::vector<Status>> ApplyAcks(std::vector<AckOp> ops) {
    co_return co_await OnShard(*core_, ApplyAcksOn(core_.get(), std::move(ops)));
  }

  // KeepStoredBatches's (embedded_bus.h).
  void KeepStoredBatches() { core_->broker->set_keep_stored_batches(true); }

  // PublishReceived's (embedded_bus.h).
  Awaitable<Result<std::vector<PublishResult>>> PublishReceived(
      std::string_view topic, std::vector<std::shared_ptr<broker::StoredMessage>> messages,
      std::vector<std::byte> batch, PublishOptions options) {
    co_return co_await OnShard(
        *core_, core_->broker->PublishDecoded(std::string(topic), std::move(messages), options,
                                              std::move(batch)));
  }

  Awaitable<Result<std::unique_ptr<Subscription>>> Subscribe(std::string_view topic,
                                                             SubscribeOptions options,
                                                             Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    Result<std::shared_ptr<broker::Member>> member =
        co_await OnShard(*core_, core_->broker->Subscribe(std::string(topic), std::move(options)));
    if (!member.ok()) co_return member.status();
    co_return std::make_unique<EmbeddedSubscription>(core_, std::move(*member));
  }

  Awaitable<Status> Seek(std::string_view topic, std::string_view group, StartPosition position,
                         Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(
        *core_, core_->broker->Seek(std::string(topic), std::string(group), position));
  }

  Awaitable<Result<GroupInfo>> DescribeGroup(std::string_view topic, std::string_view group,
                                             Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(*core_,
                               DescribeOn(core_.get(), std::string(topic), std::string(group)));
  }

  Awaitable<Result<std::vector<TopicInfo>>> ListTopics(Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(*core_, ListTopicsOn(core_.get()));
  }

  Awaitable<Result<TopicInfo>> DescribeTopic(std::string_view topic, Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(*core_, DescribeTopicOn(core_.get(), std::string(topic)));
  }

  Awaitable<Result<std::vector<GroupInfo>>> ListGroups(std::string_view topic,
                                                       Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(*core_, ListGroupsOn(core_.get(), std::string(topic)));
  }

  Awaitable<Result<std::vector<TopicRecord>>> ReadTopic(std::string_view topic,
                                                        PartitionId partition, Offset from,
                                                        std::size_t max,
                                                        Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(*core_,
                               ReadTopicOn(core_.get(), std::string(topic), partition, from, max));
  }

  Awaitable<Status> DeleteTopic(std::string_view topic, Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(*core_, core_->broker->DeleteTopic(std::string(topic)));
  }

  Awaitable<Status> PurgeTopic(std::string_view topic, Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await OnShard(*core_, core_->broker->PurgeTopic(std::string(topic)));
  }

  Awaitable<Result<Message>> Request(std::string_view topic, Message request,
                                     Deadline deadline) override {
    co_return co_await OnShard(
        *core_, core_->broker->Request(std::string(topic), std::move(request), deadline));
  }

  Awaitable<Result<std::unique_ptr<Responder>>> Respond(std::string_view topic,
                                                        Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    Result<std::shared_ptr<broker::ResponderState>> state =
        co_await OnShard(*core_, RespondOn(core_.get(), std::string(topic)));
    if (!state.ok()) co_return state.status();
    co_return std::make_unique<EmbeddedResponder>(core_, std::move(*state));
  }

  Awaitable<Status> Close() override { co_return co_await OnShard(*core_, core_->broker->Close()); }

 private:
  // The embedded broker never abandons a store midway (the log has no
  // cancellation), so a deadline is checked when the call starts.
  Status CheckDeadline(Deadline deadline) const {
    if (deadline.Expired(clock_))
      return DeadlineExceededError("the deadline passed before the call");
    return OkStatus();
  }

  static Awaitable<Result<PublishResult>> PublishFailed(Status status) { co_return status; }

  std::shared_ptr<Core> core_;
  Capabilities capabilities_;
  const Clock& clock_;
};

Awaitable<Result<std::unique_ptr<broker::Broker>>> OpenBroker(broker::BrokerOptions options,
                                                              asio::any_io_executor shard,
                                                              asio::any_io_executor blocking) {
  co_return broker::Broker::Open(std::move(options), std::move(shard), std::move(blocking));
}

}  // namespace

Awaitable<Result<std::vector<PublishResult>>> PublishReceived(
    Bus& bus, std::string_view topic, std::vector<std::shared_ptr<broker::StoredMessage>> messages,
    std::vector<std::byte> batch, PublishOptions options) {
  if (auto* embedded = dynamic_cast<EmbeddedBus*>(&bus)) {
    co_return co_await embedded->PublishReceived(topic, std::move(messages), std::move(batch),
                                                 options);
  }
  std::vector<Message> unboxed;
  unboxed.reserve(messages.size());
  for (std::shared_ptr<broker::StoredMessage>& m : messages)
    unboxed.push_back(std::move(m->message));
  co_return co_await bus.PublishBatch(topic, std::move(unboxed), options, Deadline::Infinite());
}

Awaitable<Result<StoredDeliveries>> NextBatchStored(Subscription& subscription, std::size_t max,
                                                    Deadline deadline) {
  StoredDeliveries out;
  Result<std::vector<Delivery>> got;
  if (auto* embedded = dynamic_cast<EmbeddedSubscription*>(&subscription)) {
    got = co_await embedded->NextBatchWith(max, deadline, &out.stored);
  } else {
    got = co_await subscription.NextBatch(max, deadline);
  }
  if (!got.ok()) co_return got.status();
  out.deliveries = std::move(*got);
  out.stored.resize(out.deliveries.size());
  co_return out;
}

Awaitable<std::vector<Status>> ApplyAcks(Bus& bus, std::vector<AckOp> ops) {
  auto* embedded = dynamic_cast<EmbeddedBus*>(&bus);
  if (embedded == nullptr) {
    co_return std::vector<Status>(
        ops.size(), FailedPreconditionError("ApplyAcks: not an embedded bus (mem:// or file://)"));
  }
  co_return co_await embedded->ApplyAcks(std::move(ops));
}

void KeepStoredBatches(Bus& bus) {
  if (auto* embedded = dynamic_cast<EmbeddedBus*>(&bus)) embedded->KeepStoredBatches();
}

Result<std::unique_ptr<Bus>> OpenEmbeddedBus(EmbeddedConfig config, const BusOptions& options) {
  if (!options.shard_cpus.empty()) {
    if (options.executor) {
      return InvalidArgumentError(
          "BusOptions::shard_cpus: the broker runs on BusOptions::executor, whose thread the "
          "caller pins");
    }
  }
  // Tried on this thread (and undone) so that the kernel's refusal is
  // reported here, not lost in a thread that cannot report it.
  for (auto [cpus, name] : {std::pair{&options.shard_cpus, "BusOptions::shard_cpus"},
                            std::pair{&options.blocking_cpus, "BusOptions::blocking_cpus"}}) {
    if (cpus->empty()) continue;
    ScopedThreadCpus trial(*cpus);
    JUNCTION_RETURN_IF_ERROR(trial.status().WithContext(name));
  }
  std::shared_ptr<Core> core = NewCore(options, config.blocking_threads);
  Env* env = options.env;
  if (!config.durable) {
    core->owned_env = NewMemEnv();
    env = core->owned_env.get();
    config.dir = "/mem";
  } else if (env == nullptr) {
    env = &PosixEnv();
  }
  broker::BrokerOptions broker_options;
  broker_options.dir = config.dir;
  broker_options.env = env;
  const Clock& clock = options.clock != nullptr ? *options.clock : RealClock();
  broker_options.clock = &clock;
  broker_options.log = config.log;
  broker_options.auto_create_topics = options.auto_create_topics;
  broker_options.default_topic = options.default_topic;
  broker_options.max_message_bytes = options.max_message_bytes;
  broker_options.max_group_entries = config.max_group_entries;
  Result<std::unique_ptr<broker::Broker>> opened;
  if (core->own_shard) {
    opened = core->RunBlocking(
        OpenBroker(std::move(broker_options), core->shard, core->blocking.get_executor()));
  } else {  // on the shard's thread, or while nothing runs it (BusOptions::executor)
    opened =
        broker::Broker::Open(std::move(broker_options), core->shard, core->blocking.get_executor());
  }
  if (!opened.ok()) return opened.status();
  core->broker = std::move(*opened);
  Capabilities capabilities;
  capabilities.durable = config.durable;
  capabilities.groups = true;
  capabilities.ordered_groups = true;
  capabilities.delayed_delivery = true;
  capabilities.dedupe = true;
  capabilities.seek = true;
  capabilities.dead_letters = true;
  capabilities.request_reply = true;
  capabilities.ephemeral = true;
  return std::unique_ptr<Bus>(std::make_unique<EmbeddedBus>(std::move(core), capabilities, clock));
}

}  // namespace junction::transport
