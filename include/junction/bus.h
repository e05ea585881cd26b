#pragma once

// Bus: the asynchronous half of Junction. One API over every transport,
// chosen by URL:
//
//   mem://             the embedded broker in memory: every semantic below,
//                      nothing survives Close()
//   file:///var/lib/j  the embedded broker on the durable log, in this process
//   junction://host:port  a junctiond shared by many processes (docs/formats/wire.md)
//
// The contract (DESIGN.md, "Async semantics") is checked for every transport
// by tests/conformance/. A transport that cannot keep a point says so in its
// Capabilities and refuses the call with Unimplemented; it never degrades
// silently.
//
// Threads: a Bus and its Subscriptions/Responders may be used from any thread
// and any executor. Every waiting call is an Asio awaitable that resumes on
// the caller's executor; callback users co_spawn them with their handler
// (`boost::asio::co_spawn(ex, bus.Publish(...), [](std::exception_ptr,
// Result<PublishResult>) {...})`). Every waiting call takes a Deadline, read
// on the bus's clock (BusOptions::clock).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "junction/clock.h"
#include "junction/deadline.h"
#include "junction/ids.h"
#include "junction/message.h"
#include "junction/result.h"
#include "junction/status.h"

namespace junction {

class Env;  // core/env.h: the seam for file I/O (tests inject faults through it)

template <typename T>
using Awaitable = boost::asio::awaitable<T>;

// What a transport can do. The conformance suite checks that each `false`
// is refused loudly (Unimplemented) rather than ignored.
struct Capabilities {
  bool durable = false;           // state and messages survive reopening the URL
  bool groups = true;             // durable competing-consumer groups
  bool ordered_groups = false;    // per-key order within a group
  bool delayed_delivery = false;  // PublishOptions::deliver_at / delay
  bool dedupe = false;            // message id dedupe window
  bool seek = false;              // Seek a group to an offset or time
  bool dead_letters = false;      // max_deliveries then the dead-letter topic
  bool request_reply = false;
  bool ephemeral = true;  // subscriptions without a group
};

struct TopicOptions {
  std::uint32_t partitions = 1;  // 1..1024; fixed once the topic exists
  // Retention, per partition: whole old segments go when the partition is
  // larger than `retention_bytes` or they are older than `retention_age`.
  // It never deletes what a group has not acked, unless
  // `retention_drops_unacked` says so; then what it drops is counted and
  // logged per group (GroupInfo::dropped_by_retention).
  std::optional<std::uint64_t> retention_bytes{};
  std::optional<Duration> retention_age{};
  bool retention_drops_unacked = false;
  // A message whose id was stored within this window is not stored again.
  Duration dedupe_window = std::chrono::minutes(2);
};

struct PublishOptions {
  // Delayed delivery: groups see the message at or after this wall time.
  // At most one of deliver_at and delay.
  std::optional<Timestamp> deliver_at{};
  std::optional<Duration> delay{};
  // Overrides placement. Without it a keyed message goes where Kafka's
  // default partitioner puts it (murmur2(key) % partitions); messages without
  // a key fill one partition for about 64 KiB, then the next in turn (sticky,
  // as Kafka's since 2.4), so that messages published together share one
  // partition's fdatasync and, over time, every partition an even share.
  std::optional<PartitionId> partition{};
};

struct PublishResult {
  PartitionId partition;
  Offset offset;
  // The message id was stored within the dedupe window: nothing new was
  // stored, and partition/offset say where the first copy is.
  bool duplicate = false;
};

// Where a new group starts reading (ignored when the group exists), or where
// Seek moves it.
struct StartPosition {
  enum class Kind : std::uint8_t { kEarliest, kLatest, kOffset, kTime };
  Kind kind = Kind::kEarliest;
  Offset offset{};   // kOffset: the same offset in every partition
  Timestamp time{};  // kTime: the first message stored at or after it

  static StartPosition Earliest() { return {}; }
  static StartPosition Latest() { return {Kind::kLatest, {}, {}}; }
  static StartPosition AtOffset(Offset o) { return {Kind::kOffset, o, {}}; }
  static StartPosition AtTime(Timestamp t) { return {Kind::kTime, {}, t}; }
};

struct SubscribeOptions {
  // The durable group to join, created on first use. Empty: an ephemeral
  // subscription (no state, from now, at most once: delivery counts as ack).
  std::string group;
  StartPosition start{};
  // Group settings, fixed by the member that creates the group; a member
  // asking for a different `ordered` is refused (FailedPrecondition).
  bool ordered = false;  // per-key order; one message per key in flight
  Duration ack_deadline = std::chrono::seconds(30);
  std::uint32_t max_deliveries = 20;  // then the dead-letter topic
  // Redelivery delay after the n-th failed attempt (nack without a delay, or
  // ack deadline passed); the last entry repeats.
  std::vector<Duration> backoff = {std::chrono::seconds(1), std::chrono::seconds(5),
                                   std::chrono::seconds(30), std::chrono::minutes(2)};
  // Empty: "<topic>.<group>.dlq".
  std::string dead_letter_topic;
  // Credit of this member: at most this many unacked deliveries, and bytes
  // of message data, handed to it at once.
  std::uint32_t max_in_flight = 256;
  std::uint64_t max_in_flight_bytes = 8ull << 20;
};

// Where a group made with `options` on `topic` sends its dead letters:
// options.dead_letter_topic, or "<topic>.<group>.dlq" when that is empty.
inline std::string DeadLetterTopic(std::string_view topic, const SubscribeOptions& options) {
  if (!options.dead_letter_topic.empty()) return options.dead_letter_topic;
  std::string name(topic);
  name.append(".").append(options.group).append(".dlq");
  return name;
}

// Headers the broker sets on redeliveries and dead letters.
inline constexpr std::string_view kHeaderAttempt = "junction-attempt";
inline constexpr std::string_view kHeaderDlqTopic = "junction-dlq-topic";
inline constexpr std::string_view kHeaderDlqGroup = "junction-dlq-group";
inline constexpr std::string_view kHeaderDlqPartition = "junction-dlq-partition";
inline constexpr std::string_view kHeaderDlqOffset = "junction-dlq-offset";
inline constexpr std::string_view kHeaderDlqAttempts = "junction-dlq-attempts";
inline constexpr std::string_view kHeaderDlqLastError = "junction-dlq-last-error";
inline constexpr std::string_view kHeaderDlqFirstFailure = "junction-dlq-first-failure";
inline constexpr std::string_view kHeaderDlqLastFailure = "junction-dlq-last-failure";

// Acknowledges one delivery attempt. Implemented by transports.
// The transport's side of a Delivery. The awaitables it returns must not
// refer to the control itself: the Delivery that holds it may be gone before
// they are awaited.
class DeliveryControl {
 public:
  virtual ~DeliveryControl() = default;
  virtual Awaitable<Status> Ack() = 0;
  virtual Awaitable<Status> AckSync() = 0;
  virtual Awaitable<Status> Nack(std::optional<Duration> delay, std::string error) = 0;
  virtual Awaitable<Status> InProgress() = 0;
};

// One attempt at handing a message to a consumer. Acks are bound to the
// attempt: once the message was redelivered (ack deadline passed, member
// left) an Ack/Nack/InProgress of this attempt fails with FailedPrecondition
// and changes nothing. Copyable; all copies are the same attempt.
class Delivery {
 public:
  Delivery() = default;
  // (Two overloads rather than a Message by value: a transport handing over
  // a fresh copy moves it once, not twice.)
  Delivery(std::string topic, PartitionId partition, Offset offset, DeliveryCount attempt,
           Message&& message, std::shared_ptr<DeliveryControl> control);
  Delivery(std::string topic, PartitionId partition, Offset offset, DeliveryCount attempt,
           const Message& message, std::shared_ptr<DeliveryControl> control);

  const Message& message() const { return message_; }
  Message& message() { return message_; }
  const std::string& topic() const { return topic_; }
  PartitionId partition() const { return partition_; }
  Offset offset() const { return offset_; }
  DeliveryCount attempt() const { return attempt_; }  // 1 on the first delivery

  // Done: the group never delivers this message again. Completes once the
  // ack is applied; the group's position becomes durable shortly after, so
  // a crash (not a clean Close) may redeliver what was acked just before.
  Awaitable<Status> Ack() const;
  // Ack, completing only once the group's position including it is durable:
  // not redelivered even after a crash. Costs a state-store sync (shared
  // with every ack of the same moment).
  Awaitable<Status> AckSync() const;
  // Failed: redeliver after `delay` (nullopt: the group's backoff for this
  // attempt), or dead-letter it when this was attempt max_deliveries.
  // `error` is kept as the last error (dead-letter header).
  Awaitable<Status> Nack(std::optional<Duration> delay = std::nullopt,
                         std::string error = {}) const;
  // Still working: the ack deadline restarts from now.
  Awaitable<Status> InProgress() const;

 private:
  std::string topic_;
  PartitionId partition_;
  Offset offset_;
  DeliveryCount attempt_;
  Message message_;
  std::shared_ptr<DeliveryControl> control_;
};

// Membership in a group (or an ephemeral subscription). Destroying or closing
// it leaves the group: its unacked deliveries go to the other members.
class Subscription {
 public:
  virtual ~Subscription() = default;
  // The next delivery; DeadlineExceeded when none came by `deadline`
  // (Deadline::Past() polls), Cancelled once closed. One Next/NextBatch at a
  // time per subscription.
  Awaitable<Result<Delivery>> Next(Deadline deadline);
  // Between 1 and `max` deliveries: as soon as at least one is there, every
  // other one ready at that moment (within the member's credit) comes along.
  virtual Awaitable<Result<std::vector<Delivery>>> NextBatch(std::size_t max,
                                                             Deadline deadline) = 0;
  virtual Awaitable<Status> Close() = 0;
};

// A request received by a Responder. Reply at most once.
class IncomingRequest {
 public:
  virtual ~IncomingRequest() = default;
  virtual const Message& message() const = 0;
  virtual Awaitable<Status> Reply(Message reply) = 0;
};

// Serves requests on one topic. While open, Request() on the topic may pick
// it (round robin among responders).
class Responder {
 public:
  virtual ~Responder() = default;
  virtual Awaitable<Result<std::unique_ptr<IncomingRequest>>> Next(Deadline deadline) = 0;
  virtual Awaitable<Status> Close() = 0;
};

// Request() with nobody serving the topic fails with Unavailable and a message
// starting "no responders"; this tells that case from other failures.
bool IsNoResponders(const Status& status);

struct GroupInfo {
  std::string topic;
  std::string group;
  std::uint32_t members = 0;
  std::uint64_t in_flight = 0;             // delivered, not yet acked
  std::uint64_t backlog = 0;               // stored, not yet acked (all partitions)
  std::uint64_t dead_lettered = 0;         // since the bus opened
  std::uint64_t dropped_by_retention = 0;  // unacked messages retention deleted
  std::string dead_letter_topic;           // where its dead letters go
};

struct PartitionInfo {
  PartitionId partition;
  Offset log_start;    // the first offset still stored (retention and purges move it)
  Offset next_offset;  // the offset the next message stored gets
  std::uint64_t bytes = 0;
  std::uint64_t messages() const { return next_offset - log_start; }
};

struct TopicInfo {
  std::string name;
  TopicOptions options{};
  std::vector<PartitionInfo> partitions{};
  std::vector<std::string> groups{};  // its durable groups, by name
  std::uint32_t subscribers = 0;      // open subscriptions: group members and ephemeral ones
  std::uint64_t messages() const {    // stored, over all partitions
    std::uint64_t n = 0;
    for (const PartitionInfo& p : partitions) n += p.messages();
    return n;
  }
  std::uint64_t bytes() const {
    std::uint64_t n = 0;
    for (const PartitionInfo& p : partitions) n += p.bytes;
    return n;
  }
};

// A stored message read without a group (Bus::ReadTopic).
struct TopicRecord {
  PartitionId partition;
  Offset offset;
  Message message;
};

struct BusOptions {
  const Clock* clock = nullptr;                // nullptr: RealClock(); must outlive the Bus
  Env* env = nullptr;                          // file:// only; nullptr: the real file system
  bool auto_create_topics = true;              // else unknown topics are NotFound
  TopicOptions default_topic{};                // for auto-created topics
  std::uint64_t max_message_bytes = 1u << 20;  // data + attributes + headers
  // Run the bus on this executor instead of a thread of its own: the
  // broker's shard for mem:// and file://, the connection for junction://.
  // It must run one handler at a time (an io_context run by one thread, or
  // a strand). Calls made from a coroutine on it reach the broker (or the
  // socket) without a thread hop, so a single-threaded service pays no
  // wakeup per publish, delivery or ack; calls from other executors work as
  // usual. mem:// and file:// still write and fdatasync on the bus's
  // blocking threads.
  // REQUIRES: Bus::Open runs on this executor's thread or while nothing runs
  // it (Open recovers the broker, or makes the first connection, in place);
  // the executor keeps running until the Bus and everything it handed out
  // are destroyed (the last of them closes the broker or the connection
  // there).
  std::optional<boost::asio::any_io_executor> executor;
  // mem:// and file:// only: Linux CPU ids the bus's threads may run on;
  // empty (the default) leaves them to the scheduler. `shard_cpus`: the
  // bus's own shard thread (InvalidArgument together with `executor`: that
  // thread is yours to pin). `blocking_cpus`: the threads that write and
  // fdatasync. Keeping the two apart stops the kernel from waking a thread
  // whose fdatasync finished onto the CPU the busy shard holds: under
  // fsync=always, on a 2-CPU machine, the shard and its clients on one CPU
  // and the blocking threads on the other took a co-located broker from
  // 0.40-0.65 to 0.63-0.83 of the log's own append rate (bench/README.md).
  // A set the kernel refuses (no CPU of it online and in the process's
  // cpuset) is InvalidArgument.
  std::vector<int> shard_cpus;
  std::vector<int> blocking_cpus;
};

// Query parameters of mem:// and file:// URLs: fsync=always|never|interval=200ms
// (default always), segment_bytes=N, max_group_entries=N (the
// unacked messages a group holds in memory, default 10000; an ordered group
// also holds back up to 100x that many positions behind busy keys),
// blocking_threads=N (threads for writes and fdatasyncs, default 8: up to
// that many partitions flush at once).
class Bus {
 public:
  // Opens the transport the URL names: InvalidArgument for a malformed URL or
  // option, Unimplemented for a scheme not built in, and the transport's own
  // errors (a file:// directory another process holds is Unavailable).
  static Result<std::unique_ptr<Bus>> Open(std::string_view url, const BusOptions& options = {});

  // Closes if still open. REQUIRES: no call of this bus is still running.
  virtual ~Bus() = default;

  virtual const Capabilities& capabilities() const = 0;

  // AlreadyExists when it exists with other options; OK when identical.
  virtual Awaitable<Status> CreateTopic(std::string_view topic, TopicOptions options,
                                        Deadline deadline) = 0;

  // Completes once the message is stored with the topic's durability.
  virtual Awaitable<Result<PublishResult>> Publish(std::string_view topic, Message message,
                                                   PublishOptions options, Deadline deadline) = 0;
  // (Two overloads rather than a Message by value: a moved-in message is
  // moved once on its way to the transport, not twice.)
  Awaitable<Result<PublishResult>> Publish(std::string_view topic, Message&& message) {
    return Publish(topic, std::move(message), {}, Deadline::Infinite());
  }
  Awaitable<Result<PublishResult>> Publish(std::string_view topic, const Message& message) {
    return Publish(topic, message, {}, Deadline::Infinite());
  }
  // Results in input order; messages of one partition are stored together.
  virtual Awaitable<Result<std::vector<PublishResult>>> PublishBatch(std::string_view topic,
                                                                     std::vector<Message> messages,
                                                                     PublishOptions options,
                                                                     Deadline deadline) = 0;

  virtual Awaitable<Result<std::unique_ptr<Subscription>>> Subscribe(std::string_view topic,
                                                                     SubscribeOptions options,
                                                                     Deadline deadline) = 0;
  // Moves a group's position in every partition; its in-flight deliveries
  // become stale. NotFound when the group does not exist.
  virtual Awaitable<Status> Seek(std::string_view topic, std::string_view group,
                                 StartPosition position, Deadline deadline) = 0;
  virtual Awaitable<Result<GroupInfo>> DescribeGroup(std::string_view topic, std::string_view group,
                                                     Deadline deadline) = 0;

  // ---- Administration (what `junction topics|groups|dlq` use) ----

  // Every topic, by name.
  virtual Awaitable<Result<std::vector<TopicInfo>>> ListTopics(Deadline deadline) = 0;
  virtual Awaitable<Result<TopicInfo>> DescribeTopic(std::string_view topic, Deadline deadline) = 0;
  // The durable groups of `topic` (empty: of every topic), by topic, then name.
  virtual Awaitable<Result<std::vector<GroupInfo>>> ListGroups(std::string_view topic,
                                                               Deadline deadline) = 0;
  // Up to `max` stored messages of one partition, from `from` on (from the
  // log start when `from` is below it), without a group: nothing is
  // delivered or acked. Empty at the end of the partition.
  virtual Awaitable<Result<std::vector<TopicRecord>>> ReadTopic(std::string_view topic,
                                                                PartitionId partition, Offset from,
                                                                std::size_t max,
                                                                Deadline deadline) = 0;
  // Deletes the topic, its messages and its groups. FailedPrecondition while
  // a subscription of it is open. Publishing to it meanwhile is Unavailable;
  // afterwards, the name is free (an auto-created topic starts at offset 0).
  virtual Awaitable<Status> DeleteTopic(std::string_view topic, Deadline deadline) = 0;
  // Deletes every message stored so far; offsets go on from where they
  // were, and every group moves past what was deleted (its deliveries in
  // flight become stale, as after Seek).
  virtual Awaitable<Status> PurgeTopic(std::string_view topic, Deadline deadline) = 0;

  // The reply, or DeadlineExceeded, or NoResponders (IsNoResponders).
  virtual Awaitable<Result<Message>> Request(std::string_view topic, Message request,
                                             Deadline deadline) = 0;
  virtual Awaitable<Result<std::unique_ptr<Responder>>> Respond(std::string_view topic,
                                                                Deadline deadline) = 0;

  // Finishes stores in flight, persists group state, releases the files.
  // Later calls fail with FailedPrecondition.
  virtual Awaitable<Status> Close() = 0;
};

}  // namespace junction
