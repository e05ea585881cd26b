#pragma once

// Broker: the embedded message broker of one process (or one junctiond shard).
// Topics of partitions on storage::Log, durable groups whose state lives in
// a compacted StateStore, delays, dedupe, dead letters, and in-memory
// request-reply. The semantics are DESIGN.md's "Async semantics"; the
// transports (mem://, file://, later junctiond) wrap it.
//
// Thread: everything runs on one shard executor; every method must be called
// there. Blocking file work (fsync, unlink) runs on the blocking executor.
// Topic creation opens its logs on the shard (a few file operations).
//
// Layout under dir: topics/<topic>/<partition>/ (logs), state/ (StateStore:
// topic configs and group positions, docs/formats/state.md).

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/group.h"
#include "broker/state_store.h"
#include "broker/topic.h"
#include "core/env.h"
#include "junction/bus.h"
#include "storage/log.h"

namespace junction::broker {

struct BrokerOptions {
  std::filesystem::path dir;
  Env* env = nullptr;            // must outlive the broker
  const Clock* clock = nullptr;  // must outlive the broker
  storage::LogOptions log{};     // for every partition (retention comes from the topic)
  bool auto_create_topics = true;
  TopicOptions default_topic{};
  std::uint64_t max_message_bytes = 1u << 20;
  // Largest number of unacked messages a group holds in memory; the rest of
  // its backlog stays on disk until these are acked.
  std::size_t max_group_entries = 10000;
  Duration retention_interval = std::chrono::seconds(30);
  // Ids each topic's dedupe window keeps at most (about 64 bytes each); past
  // it the oldest leave the window before its time.
  std::size_t max_dedupe_ids = 1'000'000;
  // Group positions changed by plain acks are written at most this often
  // (AckSync, Seek and Close write at once).
  Duration state_flush_interval = std::chrono::milliseconds(20);
  // Keep each stored batch in the tail cache beside its messages, and each
  // batch a group reads back from the log beside its entries, so that first
  // deliveries carry it (BrokerDelivery::batch): junctiond sends it to
  // consumers unchanged. Costs a copy of every batch stored while the topic
  // has groups, and of every batch read back; the in-process transports
  // have no use for it.
  bool keep_stored_batches = false;
};

struct ResponderState;

// A request as a responder receives it.
struct RequestData {
  std::uint64_t id = 0;
  Message message;
};

class Broker {
 public:
  // Opens or creates the broker under options.dir and recovers topics and
  // group positions. Call on the shard.
  static Result<std::unique_ptr<Broker>> Open(BrokerOptions options,
                                              boost::asio::any_io_executor shard,
                                              boost::asio::any_io_executor blocking);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // BrokerOptions::keep_stored_batches, for a broker opened without it.
  // REQUIRES: on the broker's executor, or before anything runs it.
  void set_keep_stored_batches(bool keep) { options_.keep_stored_batches = keep; }
  bool keep_stored_batches() const { return options_.keep_stored_batches; }

  boost::asio::awaitable<Status> CreateTopic(std::string name, TopicOptions options);
  // What Publish refuses before storing anything: a closed broker, a bad
  // topic name or options, an invalid or oversized message.
  Status CheckPublish(std::string_view topic, std::span<const Message> messages,
                      const PublishOptions& options) const;
  // Its two halves, for a caller that checks many messages to one topic: a
  // closed broker or a bad topic name; bad options or messages.
  Status CheckTopic(std::string_view topic) const;
  Status CheckMessages(std::span<const Message> messages, const PublishOptions& options) const;
  // `received`: the record batch the messages came in off the wire, when
  // DecodeMessageBatch found it storable (else empty). When the whole call
  // goes to one partition as one batch (no duplicate, no delay, not past the
  // batch target), those bytes are what the log stores: only base_offset,
  // the batch times and the checksum are written (codec::StampBatchTime).
  // Otherwise the messages are encoded again, as for any other publish.
  boost::asio::awaitable<Result<std::vector<PublishResult>>> Publish(
      std::string topic, std::vector<Message> messages, PublishOptions options,
      std::vector<std::byte> received = {});
  // Publish of messages DecodeStoredBatch returned (it validated each and
  // boxed them as the groups and the tail cache share them): their sizes
  // are checked, their contents not again.
  boost::asio::awaitable<Result<std::vector<PublishResult>>> PublishDecoded(
      std::string topic, std::vector<std::shared_ptr<StoredMessage>> messages,
      PublishOptions options, std::vector<std::byte> received);
  // Publish for the shard's mailbox: each message passed CheckPublish with
  // these options (messages do not change after), so none is validated
  // again; a closed broker still refuses. The messages come boxed as the
  // groups and the tail cache will share them (timestamp and deliver_at are
  // set here), so none is moved again on its way to the log.
  boost::asio::awaitable<Result<std::vector<PublishResult>>> PublishChecked(
      std::string topic, std::vector<std::shared_ptr<StoredMessage>> messages,
      PublishOptions options, std::vector<std::byte> received = {});

  boost::asio::awaitable<Result<std::shared_ptr<Member>>> Subscribe(std::string topic,
                                                                    SubscribeOptions options);
  // Waits for deliveries to `member`; returns between 1 and `max` of them.
  boost::asio::awaitable<Result<std::vector<BrokerDelivery>>> Next(std::shared_ptr<Member> member,
                                                                   Deadline deadline,
                                                                   std::size_t max);
  void Leave(Member& member);
  Status Ack(const DeliveryRef& ref);
  // While one exists, a group an Ack or Nack frees room in is noted rather
  // than pumped (filled and dispatched) at once, and pumped when the
  // outermost one goes: a burst of acks to a group (the shard's mailbox
  // applies them together) pumps it once, not once per ack. Shard only.
  class DeferredPumps {
   public:
    explicit DeferredPumps(Broker& broker) : broker_(broker) { ++broker_.pumps_deferred_; }
    ~DeferredPumps();
    DeferredPumps(const DeferredPumps&) = delete;
    DeferredPumps& operator=(const DeferredPumps&) = delete;

   private:
    Broker& broker_;
  };
  // Ack, then wait until the group's position including it is durable.
  boost::asio::awaitable<Status> AckSync(DeliveryRef ref);
  Status Nack(const DeliveryRef& ref, std::optional<Duration> delay, std::string error);
  Status InProgress(const DeliveryRef& ref);
  boost::asio::awaitable<Status> Seek(std::string topic, std::string group, StartPosition position);
  Result<GroupInfo> DescribeGroup(std::string_view topic, std::string_view group);

  // Administration (broker_admin.cc); Bus's calls of the same names.
  Result<std::vector<TopicInfo>> ListTopics() const;
  Result<TopicInfo> DescribeTopic(std::string_view topic) const;
  Result<std::vector<GroupInfo>> ListGroups(std::string_view topic) const;
  Result<std::vector<TopicRecord>> ReadTopic(std::string_view topic, PartitionId partition,
                                             Offset from, std::size_t max);
  boost::asio::awaitable<Status> DeleteTopic(std::string topic);
  boost::asio::awaitable<Status> PurgeTopic(std::string topic);

  boost::asio::awaitable<Result<Message>> Request(std::string topic, Message request,
                                                  Deadline deadline);
  Result<std::shared_ptr<ResponderState>> Respond(std::string topic);
  boost::asio::awaitable<Result<RequestData>> NextRequest(std::shared_ptr<ResponderState> r,
                                                          Deadline deadline);
  Status Reply(std::uint64_t request_id, Message reply);
  void CloseResponder(ResponderState& responder);

  // Persists group state, closes the logs. Later calls fail.
  boost::asio::awaitable<Status> Close();
  bool closed() const { return closed_; }

  // For groups (same shard).
  const Clock& clock() const { return *options_.clock; }
  const boost::asio::any_io_executor& shard() const { return shard_; }
  std::size_t max_group_entries() const { return options_.max_group_entries; }
  void MarkDirty(Group& group);
  // group.Pump() now, or when the outermost DeferredPumps goes.
  void PumpOrDefer(Group& group);
  // Runs timers at or after `when` (arms the wakeup timer if earlier).
  void WakeAt(MonoTime when);
  // Stores `message` in the dead-letter topic, then calls
  // group.OnDeadLettered(partition, offset, epoch, status) if it still exists.
  void SendToDeadLetters(Group& group, std::string dlq_topic, Message message,
                         PartitionId partition, Offset offset, std::uint64_t epoch);

 private:
  Broker(BrokerOptions options, boost::asio::any_io_executor shard,
         boost::asio::any_io_executor blocking, std::unique_ptr<StateStore> state);

  Status Recover();
  // Removes what an interrupted DeleteTopic left: topic directories no
  // topic config names (the config goes first).
  Status RemoveOrphanTopicDirs();
  std::filesystem::path TopicDir(std::string_view name) const;
  static TopicInfo Describe(const Topic& topic);
  Result<Topic*> OpenTopic(const std::string& name, const TopicOptions& options);
  // The topic, created with `defaults` when missing and `auto_create`.
  boost::asio::awaitable<Result<Topic*>> FindOrCreate(const std::string& name, bool auto_create,
                                                      const TopicOptions& defaults);
  Status RebuildDedupe(Topic& topic);
  // Whether the message stored at `hit` has this id (a hash hit is only a candidate).
  bool StoredIdIs(Topic& topic, const DedupeWindow::Hit& hit, std::string_view id);
  Result<Group*> FindGroup(std::uint64_t group_id);
  boost::asio::awaitable<Result<std::vector<PublishResult>>> Store(
      Topic& topic, std::vector<std::shared_ptr<StoredMessage>> messages,
      std::optional<std::int64_t> deliver_at_ms, std::optional<PartitionId> partition,
      std::vector<std::byte> received = {});
  boost::asio::awaitable<Status> PersistLoop();
  // Lets `topic`'s groups read what was just stored, two turns of the shard
  // from now (see broker_publish.cc).
  void SchedulePump(Topic& topic);
  // Pumps every group of `topic`, then trims its tail caches to what some
  // group has still to read.
  void PumpAll(Topic& topic);
  void ProcessTimers();
  void ArmWakeup();
  void EnforceRetention();
  // Fails every request waiting for a reply, and wakes every responder.
  void CloseRequests();
  std::int64_t NowMs() const;
  // Waits on `timer` until it is cancelled or `deadline` (on the bus clock)
  // may have passed; with a virtual clock it polls.
  boost::asio::awaitable<void> WaitSlice(boost::asio::steady_timer& timer, Deadline deadline);

  BrokerOptions options_;
  boost::asio::any_io_executor shard_;
  boost::asio::any_io_executor blocking_;
  std::unique_ptr<StateStore> state_;
  std::map<std::string, std::unique_ptr<Topic>, std::less<>> topics_;
  std::map<std::uint64_t, Group*> groups_by_id_;
  int pumps_deferred_ = 0;                 // DeferredPumps alive
  std::vector<std::uint64_t> pump_later_;  // ids of the groups they noted
  std::uint64_t next_id_ = 1;
  bool closed_ = false;
  bool real_clock_ = false;

  std::vector<std::uint64_t> dirty_groups_;
  bool persisting_ = false;
  std::uint64_t dirty_seq_ = 0;                               // bumps on every MarkDirty
  std::uint64_t persisted_seq_ = 0;                           // every change up to it is durable
  Status persist_error_;                                      // the last failed round's error
  std::unique_ptr<boost::asio::steady_timer> persist_done_;   // cancelled when a persist ends
  std::unique_ptr<boost::asio::steady_timer> persist_delay_;  // gathers plain acks
  std::size_t dead_letters_in_flight_ = 0;                    // SendToDeadLetters stores running
  std::size_t sync_waiters_ = 0;                              // AckSync calls waiting
  bool closing_ = false;

  std::unique_ptr<boost::asio::steady_timer> wakeup_;
  std::optional<MonoTime> wakeup_at_;
  MonoTime next_retention_{};

  std::map<std::string, std::vector<std::shared_ptr<ResponderState>>, std::less<>> responders_;
  std::map<std::string, std::size_t, std::less<>> next_responder_;
  struct PendingRequest;
  std::map<std::uint64_t, PendingRequest*> requests_;
  std::uint64_t next_request_id_ = 1;
  // Handlers posted to the shard hold a weak reference: once the broker is
  // gone they do nothing.
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);
};

}  // namespace junction::broker
