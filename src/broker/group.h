#pragma once

// Group: one consumer group of one topic, or one ephemeral subscription.
//
// It reads the topic's partitions from its position, keeps the messages it
// has read and not yet acked as entries (bounded: at most max_entries, the
// rest stays on disk), hands ready entries to members with credit, and turns
// acks, nacks and passed deadlines into the next state of each entry:
//
//   waiting (deliver_at or backoff) -> ready -> in flight -> acked (gone)
//        ^                                         |
//        +------ nack / deadline / member left ----+--> dead-lettering -> gone
//
// Ordered groups also keep, per key, its entries in offset order; only the
// first of a key may leave the blocked state.
//
// Thread: the broker's shard only.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "broker/ack_set.h"
#include "broker/delivery_ref.h"
#include "broker/message_codec.h"
#include "junction/bus.h"
#include "junction/clock.h"

namespace junction::broker {

class Broker;
class Group;
struct Topic;

// The settings a group is created with (persisted with its state).
struct GroupConfig {
  bool ordered = false;
  Duration ack_deadline = std::chrono::seconds(30);
  std::uint32_t max_deliveries = 20;
  std::vector<Duration> backoff;
  std::string dead_letter_topic;

  static GroupConfig From(const SubscribeOptions& options, std::string_view topic);
};

struct BrokerDelivery {
  std::string topic;
  PartitionId partition;
  Offset offset;
  DeliveryCount attempt;
  // Shared with the group's entry and the tail cache: the consumer's copy is
  // made once, with SetAttemptHeader. Null when the group never decoded the
  // message: it is then the record at `position` of `batch`
  // (DecodeStoredRecordAt), which junctiond sends as stored.
  std::shared_ptr<const StoredMessage> stored;
  DeliveryRef ref;
  bool ephemeral = false;
  // On a first delivery (with BrokerOptions::keep_stored_batches): the
  // stored batch that holds the message, from the tail cache or read back
  // from the log, which junctiond may send as it is. Else null.
  std::shared_ptr<const StoredBatch> batch;
  std::size_t size = 0;        // the message's size (MessageSize), for credit
  std::uint32_t position = 0;  // with a null `stored`: the record's byte in `batch`
};

// The message of a delivery: its stored one, or the record it was held as,
// decoded now (DataLoss when that record is not a message).
Result<std::shared_ptr<const StoredMessage>> StoredOf(const BrokerDelivery& delivery);

// The monotonic clock and the wall clock (in ms) as of one instant. Two
// reads can straddle a move of the clock made on another thread (a test's
// ManualClock::Advance; the shard runs beside it), and a timer computed
// from such a pair is off by the whole move: a delayed message then waited
// that much past its time. Reads again while the monotonic clock moved more
// than 100 us around the wall clock's read (8 reads at most).
std::pair<MonoTime, std::int64_t> ClockInstant(const Clock& clock);

// The message as the consumer gets it is a copy of the stored one with the
// attempt header (kHeaderAttempt) set: this sets it.
void SetAttemptHeader(Message& message, DeliveryCount attempt);

// One member's view: its queue of handed-out deliveries and its credit.
struct Member {
  std::uint64_t id = 0;
  std::uint64_t group_id = 0;
  std::uint32_t max_in_flight = 0;
  std::uint64_t max_in_flight_bytes = 0;
  // Deliveries go only to a member inside Next() (up to `wanted` of them):
  // the ack deadline starts when the consumer gets it, not in a buffer.
  std::size_t wanted = 0;
  std::deque<BrokerDelivery> queue;  // handed out, not yet taken by Next
  std::uint32_t in_flight = 0;       // handed out and not acked
  std::uint64_t in_flight_bytes = 0;
  boost::asio::steady_timer* waiter = nullptr;  // a Next waiting for the queue
  bool closed = false;

  bool HasCredit(std::size_t bytes) const {
    return in_flight < max_in_flight &&
           (in_flight == 0 || in_flight_bytes + bytes <= max_in_flight_bytes);
  }
  void Wake() {
    if (waiter != nullptr) waiter->cancel();
  }
};

class Group {
 public:
  Group(Broker& broker, Topic& topic, std::string name, std::uint64_t id, GroupConfig config,
        bool ephemeral);

  const std::string& name() const { return name_; }
  std::uint64_t id() const { return id_; }
  const GroupConfig& config() const { return config_; }
  bool ephemeral() const { return ephemeral_; }
  Topic& topic() { return topic_; }
  const std::vector<std::shared_ptr<Member>>& members() const { return members_; }

  // Positions every partition at `start` (a new group, or Seek): forgets
  // entries and acked state above; in-flight attempts become stale.
  void Reset(const StartPosition& start);
  // Restores persisted acked state (one AckSet per partition).
  void Restore(std::vector<AckSet> acked);
  const std::vector<AckSet>& acked() const;
  // Lowest unacked offset of a partition (what retention must keep).
  Offset Floor(PartitionId p) const;
  // The next offset of a partition this group will read.
  Offset NextRead(PartitionId p) const { return cursors_[p.value()].next_read; }

  void Join(std::shared_ptr<Member> member);
  // The member's unacked deliveries go back to the group at once.
  void Leave(Member& member);

  // Reads what it can hold from the partitions and hands ready entries to
  // members with credit; wakes the members it gave something to.
  void Pump();
  // Moves waiting entries whose time came to ready and fails in-flight
  // attempts whose ack deadline passed. Returns the earliest timer left.
  std::optional<MonoTime> ProcessTimers(MonoTime now);
  std::optional<MonoTime> NextTimer() const;

  Status Ack(const DeliveryRef& ref);
  Status Nack(const DeliveryRef& ref, std::optional<Duration> delay, std::string error);
  Status InProgress(const DeliveryRef& ref);
  // A member took a delivery off its queue (ephemeral groups release credit).
  void Taken(Member& member, const BrokerDelivery& delivery);
  // The dead-letter store of (partition, offset) finished; `epoch` is the
  // group's epoch when it started (a Reset since makes it moot).
  void OnDeadLettered(PartitionId partition, Offset offset, std::uint64_t epoch,
                      const Status& status);

  GroupInfo Describe() const;

 private:
  using Key = std::pair<std::uint32_t, std::uint64_t>;  // partition, offset
  enum class State : std::uint8_t { kBlocked, kWaiting, kReady, kInFlight, kDeadLettering };
  struct Entry {
    PartitionId partition;
    Offset offset;
    // Null for a record read from the log into a stored batch that junctiond
    // will send as it is: the entry holds `batch` and the record's
    // `position` in it, and decodes the message only when an attempt fails
    // (Materialize), so a message delivered and acked is never built.
    std::shared_ptr<const StoredMessage> stored;
    // The stored batch holding it (tail cache or log read), until its first
    // hand-out, or, when `stored` is null, until it is acked, fails or is
    // reported in progress (redeliveries carry none: an entry pins no batch
    // for longer than an ack deadline).
    std::shared_ptr<const StoredBatch> batch;
    std::size_t size = 0;  // counts against credit: MessageSize
    std::uint32_t position = 0;
    State state = State::kReady;
    std::uint32_t attempts = 0;
    std::uint64_t delivery_id = 0;
    std::uint64_t member_id = 0;
    MonoTime timer{};  // kWaiting: when ready; kInFlight: ack deadline
    std::optional<WallTime> first_failure;
    std::optional<WallTime> last_failure;
    std::string last_error;
    bool retry_dead_letter = false;  // kWaiting: the dead-letter store failed
  };
  struct PartitionCursor {
    AckSet acked;
    Offset next_read;
  };
  // Group::timers_ is a min-heap of these by time (std::push_heap with
  // `Later`). A timer is not taken out when its entry is acked or re-armed
  // (that would be a search): it stays, stale, until it comes up or the heap
  // is compacted, once it holds over twice as many timers as there are
  // entries. IsCurrent tells a live one from a stale one.
  struct Timer {
    MonoTime when;
    Key key;
  };
  struct Later {
    bool operator()(const Timer& a, const Timer& b) const { return a.when > b.when; }
  };

  void Fill();
  bool FillPartition(std::uint32_t p);
  // FillPartition from the topic's tail cache; false when `next_read` is not
  // in it.
  bool FillFromTail(std::uint32_t p);
  void AddEntry(PartitionId p, Offset o, std::shared_ptr<const StoredMessage> stored,
                std::shared_ptr<const StoredBatch> batch = nullptr);
  // The record at byte `position` of `batch` (not ordered, not delayed),
  // its message not decoded (Entry::stored).
  void AddRecordEntry(PartitionId p, Offset o, std::shared_ptr<const StoredBatch> batch,
                      std::uint32_t position, std::size_t size);
  void Admit(Entry&& entry);
  // Decodes a record entry's message (Entry::stored) and lets its batch go.
  // False (logged; the entry keeps its batch) when the record is not a
  // message.
  bool Materialize(Entry& entry);
  // Ordered groups: the front of `message_key`'s queue just became its next
  // message; give it its turn (reading it back first if it was held back
  // as a position only). False (logged) when the partition cannot be read;
  // Fill tries again.
  bool NextOfKey(const std::string& message_key);
  // Whether Fill may read more: room for active entries and held positions.
  bool HasRoom() const;
  // Blocked/new entry becomes waiting or ready depending on deliver_at.
  void Activate(Entry& entry);
  void MakeReady(Entry& entry);
  void SetTimer(Entry& entry, MonoTime when, State state);
  // Whether `timer` is still the entry's (not re-armed, released or gone).
  bool IsCurrent(const Timer& timer) const;
  void DropStaleTimers();
  void Dispatch();
  Member* PickMember(std::size_t bytes);
  Result<Entry*> FindAttempt(const DeliveryRef& ref);
  void Release(Entry& entry);  // gives the member's credit back
  // The attempt failed at `at` (now, or when its ack deadline passed).
  void Fail(Entry& entry, std::optional<Duration> delay, std::string error, MonoTime at);
  void Complete(Key key);  // acked or dead-lettered: the entry is gone
  std::unique_ptr<Entry> BoxEntry(Entry&& entry);
  void DeadLetter(Entry& entry);
  std::string KeyOf(const Entry& entry) const;

  Broker& broker_;
  Topic& topic_;
  std::string name_;
  std::uint64_t id_;
  GroupConfig config_;
  bool ephemeral_;
  std::size_t max_entries_;

  std::vector<PartitionCursor> cursors_;
  struct KeyHash {
    std::size_t operator()(const Key& key) const noexcept {
      return static_cast<std::size_t>(key.second) ^ (static_cast<std::size_t>(key.first) << 40);
    }
  };
  // Boxed: an Entry& stays valid while the table grows.
  boost::unordered_flat_map<Key, std::unique_ptr<Entry>, KeyHash> entries_;
  // Boxes of completed entries, emptied, for the next ones (BoxEntry): a
  // message's entry then costs no allocation. At most kSpareEntries.
  static constexpr std::size_t kSpareEntries = 1024;
  std::vector<std::unique_ptr<Entry>> spare_entries_;
  std::deque<Key> ready_;      // FIFO: in the order entries became ready
  std::vector<Timer> timers_;  // see Timer
  // Ordered groups: each key's unfinished messages in order; the front one
  // has its turn. Those behind it are blocked entries (up to max_entries_ of
  // them, bodies in memory) and beyond that held back as positions only
  // (16 bytes each, read again when their turn comes), so a poisoned key
  // with a long queue never crowds out the other keys' entries.
  std::unordered_map<std::string, std::deque<Key>> keys_;
  std::size_t blocked_ = 0;  // entries in State::kBlocked
  std::size_t held_ = 0;     // queued positions without an entry
  std::size_t max_held_;
  std::set<std::string> heads_to_load_;  // keys whose front could not be read yet
  std::vector<std::shared_ptr<Member>> members_;
  std::size_t next_member_ = 0;
  std::uint32_t next_partition_ = 0;
  std::uint64_t next_delivery_id_ = 0;
  std::uint64_t epoch_ = 0;  // bumps on Reset: dead letters in flight then are ignored
  std::uint64_t in_flight_ = 0;
  std::uint64_t dead_lettered_ = 0;
  std::uint64_t dropped_by_retention_ = 0;
  mutable std::vector<AckSet> acked_view_;
};

}  // namespace junction::broker
