#pragma once

// A reference model of one topic and its durable groups, as the embedded
// broker (mem://, file://) promises them: include/junction/bus.h and the
// embedded broker's semantics (DESIGN.md, "Async semantics"). broker_model_test
// drives a real Bus and this model through the same random operations and
// compares them after every step.
//
// The model does not predict which message comes next (partition order and
// member choice are the broker's); it decides whether what the broker did is
// allowed, and what the broker must do:
//   * each message has, per group, a window [earliest, latest] of model time:
//     delivering it before `earliest` is a divergence, and Next() returning
//     nothing while it is deliverable since `latest` is one too;
//   * where the contract leaves a choice (a passed ack deadline not yet
//     processed, what a restart keeps, when an asynchronous dead-letter store
//     finishes), the model allows every permitted outcome and narrows down
//     once the broker shows which one it took;
//   * members compete: which member gets a message is the broker's choice,
//     so "nothing deliverable" is checked per group, once every member's
//     Next() found nothing.
//
// Time is model time: the Duration since the test started its ManualClock
// (both clocks move together; the test never sets the wall clock).
// Not thread-safe; test-only.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "junction/bus.h"
#include "junction/clock.h"
#include "junction/message.h"
#include "junction/status.h"

namespace junction::model_test {

// The settings every member of one group subscribes with.
struct GroupSpec {
  std::string name;
  bool ordered = false;
  std::uint32_t max_deliveries = 1;
  std::uint32_t max_in_flight = 1;
  Duration ack_deadline{};
  std::vector<Duration> backoff;  // non-empty

  // The redelivery delay after a failed attempt `attempt` (the last entry repeats).
  Duration Backoff(std::uint32_t attempt) const;
};

// One stored message.
struct ModelMessage {
  PartitionId partition;
  Offset offset;
  Message message;
  Duration deliver_at{};  // model time; the publish time when not delayed
};

// A dead letter the model expects (certain) or allows (maybe).
struct ExpectedDeadLetter {
  std::uint32_t attempt = 0;
  std::optional<std::string> error;  // nullopt: any last-error text
  bool certain = true;
};

// A dead letter as read back from the dead-letter topic.
struct DeadLetterRecord {
  std::string topic;
  std::string group;
  PartitionId partition;
  Offset offset;
  std::uint32_t attempts = 0;
  std::string last_error;
  Message message;
};

// The record a dead letter carries in its junction-dlq-* headers; nullopt
// when one is missing or not a number where it should be.
std::optional<DeadLetterRecord> ParseDeadLetter(const Message& message);

enum class Settle { kAck, kNack, kInProgress };

class Model {
 public:
  Model(std::string topic, std::vector<GroupSpec> groups);

  Duration now() const { return now_; }
  void Advance(Duration delta) { now_ += delta; }
  const GroupSpec& spec(int group) const { return groups_[group].spec; }
  const std::vector<ModelMessage>& messages() const { return messages_; }
  bool created(int group) const { return groups_[group].created; }

  // A Publish stored `message`; returns its index.
  std::size_t Publish(ModelMessage message);
  // The index of the message stored at (partition, offset), if any.
  std::optional<std::size_t> Find(PartitionId partition, Offset offset) const;

  // A member joined `group` (the first one creates it).
  void Join(int group) { groups_[group].created = true; }
  // Next() is about to be called on a member of `group`: the broker processes
  // every passed ack deadline first.
  void BeginPoll(int group);
  // Next() of `member` returned `delivery`. On success `index` and `token`
  // name the attempt (the token identifies it in Settled/IsCurrent).
  std::string Delivered(int group, int member, const Delivery& delivery, std::size_t& index,
                        std::uint64_t& token);
  // Next() returned DeadlineExceeded to each of `members` (all members of
  // `group`) after the broker had processed the timers due now: nothing is
  // deliverable while one of them has credit.
  std::string NothingDeliverable(int group, const std::vector<int>& members) const;
  // Ack/Nack/InProgress of attempt `token` of message `index` returned `status`.
  std::string Settled(int group, std::size_t index, std::uint64_t token, Settle kind,
                      std::optional<Duration> nack_delay, const std::string& nack_error,
                      const Status& status);
  bool IsCurrent(int group, std::size_t index, std::uint64_t token) const;
  // `member` closed its subscription.
  void Left(int group, int member);
  // Seek of `group` to `position` returned OK.
  void Sought(int group, const StartPosition& position);
  // The bus was closed and opened again (every member is gone).
  void Restarted();
  std::string CheckDescribe(int group, const GroupInfo& info, std::uint32_t members) const;

  // Every message is acked or dead-lettered in every group, or may have been
  // dead-lettered by a restart; else the first unsettled ones, described.
  std::string Unsettled() const;
  // After a drain: what may have been dead-lettered and never came back was.
  void FinishDrain();
  // The dead-letter topic of `group` holds exactly `records`.
  std::string CheckDeadLetters(int group, const std::vector<DeadLetterRecord>& records) const;

  std::string Describe(std::size_t index) const;

 private:
  struct Attempt {
    int member = 0;
    std::uint64_t token = 0;
    Duration deadline{};
  };
  // One message in one group.
  struct State {
    bool done = false;        // acked or dead-lettered since the last seek
    bool maybe_dead = false;  // a restart may have dead-lettered it (see Restarted)
    // Dead-lettered, and the store into the dead-letter topic may still run
    // (the broker may complete it asynchronously; until then the next message
    // of the key waits and GroupInfo counts it as backlog).
    bool storing = false;
    std::uint32_t attempts = 0;          // attempt number of the last delivery
    std::uint32_t min_next_attempt = 1;  // the next is in [min_next_attempt, attempts + 1]
    std::optional<Attempt> in_flight;    // the current attempt
    Duration earliest{};                 // not deliverable before
    Duration latest{};                   // deliverable from, at the latest
    std::vector<ExpectedDeadLetter> dead_letters;
  };
  struct Group {
    GroupSpec spec;
    bool created = false;
    std::vector<State> states;  // by message index
    std::uint64_t dead_lettered_since_open = 0;
    // Dead letters a seek made uncertain (the deadline of a last attempt had
    // passed; the broker may have stored it before the seek, and counts it).
    std::uint64_t dead_lettered_maybe = 0;
  };

  bool Expired(const Attempt& attempt) const { return now_ > attempt.deadline; }
  // The current attempt of `index` failed (nack, passed deadline, member left).
  void Fail(Group& group, std::size_t index, Duration earliest, Duration latest,
            std::optional<std::string> error);
  void ResolveDead(State& state);
  std::uint32_t InFlightOf(const Group& group, int member) const;
  // Ordered groups: every earlier message of the key is certainly done and
  // none of the key is in flight.
  bool KeyFree(const Group& group, std::size_t index) const;
  bool SameKey(std::size_t a, std::size_t b) const;

  std::string topic_;
  Duration now_{};
  std::vector<ModelMessage> messages_;
  std::map<std::pair<PartitionId, Offset>, std::size_t> by_position_;
  std::vector<Group> groups_;
  std::uint64_t next_token_ = 0;
};

}  // namespace junction::model_test
