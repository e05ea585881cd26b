// The runner's operations: the random ops of a sequence (model_runner.h).

#include "model_runner.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "broker_model.h"
#include "junction/bus.h"
#include "junction/clock.h"
#include "junction/deadline.h"

namespace junction::model_test {
namespace {

// "p<partition>/<offset>[ duplicate]", or the error, for the trace.
std::string Published(const Result<PublishResult>& result) {
  if (!result.ok()) return result.status().ToString();
  std::ostringstream out;
  out << "p" << result->partition << "/" << result->offset
      << (result->duplicate ? " duplicate" : "");
  return out.str();
}

}  // namespace

// ---- operations ----

bool Runner::Open() {
  BusOptions options;
  options.clock = &clock_;
  options.env = env_.get();
  Result<std::unique_ptr<Bus>> bus = Bus::Open(url_, options);
  Trace("open " + url_ + " -> " + bus.status().ToString());
  if (!bus.ok()) return Expect(bus.status(), StatusCode::kOk, "Bus::Open");
  bus_ = std::move(bus).value();
  TopicOptions topic;
  topic.partitions = kPartitions;
  return Expect(Await(bus_->CreateTopic(kTopic, topic, Deadline::Infinite())), StatusCode::kOk,
                "CreateTopic (new or identical)");
}

bool Runner::Step() {
  const std::uint64_t roll = Random(100);
  if (roll < 22) return Publish();
  if (roll < 24) return Republish();
  if (roll < 29) return JoinRandom();
  if (roll < 32) return Leave();
  if (roll < 53) return PollRandom();
  if (roll < 58) return Sweep(static_cast<int>(Random(2)));
  if (roll < 73) return SettleRandom(Settle::kAck);
  if (roll < 79) return SettleRandom(Settle::kNack);
  if (roll < 81) return SettleRandom(Settle::kInProgress);
  if (roll < 83) return SettleOrphan();
  if (roll < 93) return AdvanceRandom();
  if (roll < 95) return Seek();
  if (roll < 97) return Describe();
  return durable_ ? Restart() : Publish();
}

bool Runner::StoreResult(const Message& message, std::optional<PartitionId> forced,
                         const Result<PublishResult>& result, Duration deliver_at) {
  if (!result.ok()) return Expect(result.status(), StatusCode::kOk, "Publish " + message.id);
  const PartitionId p = result->partition;
  std::ostringstream what;
  what << "Publish " << message.id << " -> p" << p << "/" << result->offset << ": ";
  if (p.value() >= kPartitions || result->offset != Offset(next_offset_[p.value()])) {
    what << "expected the next offset " << next_offset_[p.value() % kPartitions];
    return Diverge(what.str());
  }
  if (forced && *forced != p) return Diverge(what.str() + "ignored options.partition");
  if (message.key) {
    auto [it, inserted] = key_partition_.emplace(*message.key, p);
    if (it->second != p) return Diverge(what.str() + "the key went to another partition");
  }
  ++next_offset_[p.value()];
  std::size_t index = model_.Publish({p, result->offset, message, deliver_at});
  copies_[message.id].push_back({index, model_.now()});
  return true;
}

bool Runner::Publish() {
  const int n = published_++;
  Message message;
  message.id = "m" + std::to_string(n);
  message.source = "/model";
  message.type = "model.event";
  if (Random(4) != 0) message.key = "k" + std::to_string(Random(3));
  message.headers["x-seq"] = std::to_string(n);
  message.data = "d" + std::to_string(n) + std::string(Random(24), 'x');
  PublishOptions options;
  Duration deliver_at = model_.now();
  std::string note;
  const std::uint64_t delay_roll = Random(10);
  if (delay_roll < 2) {
    static const std::vector<Duration> kDelays = {0s, 2s, 7s, 20s};
    options.delay = Pick(kDelays);
    deliver_at += *options.delay;
    note = " delay=" + Time(*options.delay);
  } else if (delay_roll < 3) {
    static const std::vector<Duration> kOffsets = {-5s, 3s, 11s};
    Duration offset = Pick(kOffsets);
    options.deliver_at = clock_.WallNow() + offset;
    deliver_at += offset;
    note = " deliver_at=" + Time(deliver_at);
  }
  if (!message.key && Random(5) == 0) options.partition = PartitionId(Random(kPartitions));
  Result<PublishResult> result =
      Await(bus_->Publish(kTopic, message, options, Deadline::Infinite()));
  Trace("publish " + message.id + " key=" + message.key.value_or("-") + note + " -> " +
        Published(result));
  if (result.ok() && result->duplicate) return Diverge("a fresh id was reported duplicate");
  return StoreResult(message, options.partition, result, deliver_at);
}

// Publishes an id again: within the dedupe window it must not be stored.
bool Runner::Republish() {
  if (copies_.empty()) return Publish();
  auto it = std::next(copies_.begin(), static_cast<long>(Random(copies_.size())));
  const std::vector<Copy> copies = it->second;  // a copy: StoreResult appends to it
  const Message message =
      model_.messages()[copies.front().index].message;  // a copy: Publish grows the vector
  const Duration age = model_.now() - copies.back().stored_at;
  Result<PublishResult> result = Await(bus_->Publish(kTopic, message, {}, Deadline::Infinite()));
  Trace("republish " + message.id + " (age " + Time(age) + ") -> " + Published(result));
  if (!result.ok() || !result->duplicate) {
    if (result.ok() && age < kDedupeWindow - 1s) {
      return Diverge("republished " + message.id + " within the dedupe window: stored again");
    }
    return StoreResult(message, std::nullopt, result, model_.now());
  }
  // The copy within the window is the newest one.
  for (const Copy& copy : copies) {
    const ModelMessage& stored = model_.messages()[copy.index];
    if (stored.partition != result->partition || stored.offset != result->offset) continue;
    if (age < kDedupeWindow - 1s && copy.index != copies.back().index) break;
    return true;
  }
  return Diverge("duplicate of " + message.id + " names a position that is not its copy");
}

bool Runner::Join(int group) {
  Result<std::unique_ptr<Subscription>> sub =
      Await(bus_->Subscribe(kTopic, Options(group), Deadline::Infinite()));
  Member member{next_member_++, group, nullptr, {}};
  Trace("join " + Name(member) + " -> " + sub.status().ToString());
  if (!sub.ok()) return Expect(sub.status(), StatusCode::kOk, "Subscribe");
  member.subscription = std::move(sub).value();
  model_.Join(group);
  members_.push_back(std::move(member));
  return true;
}

bool Runner::JoinRandom() {
  const int group = static_cast<int>(Random(2));
  if (MembersOf(group) >= kMaxMembersPerGroup) return PollRandom();
  return Join(group);
}

bool Runner::Leave(std::size_t which) {
  Member& member = members_[which];
  Status status = Await(member.subscription->Close());
  Trace("leave " + Name(member) + " -> " + status.ToString());
  if (!Expect(status, StatusCode::kOk, "Subscription::Close")) return false;
  model_.Left(member.group, member.id);
  Result<Delivery> next = Await(member.subscription->Next(Deadline::Past()));
  if (!Expect(next.status(), StatusCode::kCancelled, "Next after Close")) return false;
  for (Held& held : member.held) {
    if (orphans_.size() < 6) orphans_.push_back({member.group, std::move(held)});
  }
  members_.erase(members_.begin() + static_cast<long>(which));
  return true;
}

bool Runner::Leave() {
  if (members_.empty()) return JoinRandom();
  return Leave(Random(members_.size()));
}

// Next(Deadline::Past()) on `member`; `delivered` says whether it got one.
bool Runner::Poll(Member& member, Held* delivered) {
  model_.BeginPoll(member.group);
  Result<Delivery> next = Await(member.subscription->Next(Deadline::Past()));
  if (!next.ok()) {
    Trace("poll " + Name(member) + " -> " + next.status().ToString(), /*changes=*/false);
    if (!Expect(next.status(), StatusCode::kDeadlineExceeded, "Next(Past)")) return false;
    if (delivered != nullptr) delivered->token = 0;
    // Members compete: what is ready may sit with another member. Once
    // every member of the group found nothing, after one Next() had run the
    // timers due at this state, nothing may be deliverable.
    if (first_empty_at_ != change_) {
      first_empty_at_ = change_;
      return true;
    }
    member.empty_at = change_;
    std::vector<int> ids;
    for (const Member& m : members_) {
      if (m.group != member.group) continue;
      if (m.empty_at != change_) return true;
      ids.push_back(m.id);
    }
    return Check(model_.NothingDeliverable(member.group, ids));
  }
  Held held{*next, 0, 0};
  std::ostringstream line;
  line << "poll " << Name(member) << " -> " << next->topic() << "@p" << next->partition() << "/"
       << next->offset() << " " << next->message().id << " attempt " << next->attempt();
  Trace(line.str());
  if (!Check(model_.Delivered(member.group, member.id, *next, held.index, held.token))) {
    return false;
  }
  if (delivered != nullptr) *delivered = held;
  member.held.push_back(std::move(held));
  return true;
}

bool Runner::PollRandom() {
  if (members_.empty()) return JoinRandom();
  return Poll(members_[Random(members_.size())], nullptr);
}

// Polls every member of `group` until two passes in a row got nothing;
// with `ack`, acks each delivery at once. `any` says whether one came.
bool Runner::Sweep(int group, bool ack, bool* any) {
  int quiet = 0;
  for (int pass = 0; pass < 100 && quiet < 2; ++pass) {
    bool got_one = false;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (members_[i].group != group) continue;
      for (int polls = 0; polls < 1000; ++polls) {
        Held got;
        if (!Poll(members_[i], &got)) return false;
        if (got.token == 0) break;
        got_one = true;
        if (ack) {
          if (!SettleHeld(group, got, Settle::kAck, std::nullopt)) return false;
          members_[i].held.pop_back();
        }
      }
    }
    quiet = got_one ? 0 : quiet + 1;
    if (got_one && any != nullptr) *any = true;
  }
  return true;
}

bool Runner::SettleHeld(int group, const Held& held, Settle kind, std::optional<Duration> delay) {
  const std::string error = "e" + std::to_string(op_);
  Status status;
  std::string what;
  switch (kind) {
    case Settle::kAck:
      status = Await(held.delivery.Ack());
      what = "ack";
      break;
    case Settle::kNack:
      status = Await(held.delivery.Nack(delay, error));
      what = "nack" + (delay ? "(" + Time(*delay) + ")" : std::string("()"));
      break;
    case Settle::kInProgress:
      status = Await(held.delivery.InProgress());
      what = "in-progress";
      break;
  }
  Trace(what + " " + held.delivery.message().id + " attempt " +
        std::to_string(held.delivery.attempt().value()) +
        (model_.IsCurrent(group, held.index, held.token) ? "" : " (stale)") + " -> " +
        status.ToString());
  return Check(model_.Settled(group, held.index, held.token, kind, delay, error, status));
}

bool Runner::SettleRandom(Settle kind) {
  std::vector<std::size_t> holders;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (!members_[i].held.empty()) holders.push_back(i);
  }
  if (holders.empty()) return PollRandom();
  Member& member = members_[Pick(holders)];
  // Mostly the current attempts; sometimes one already settled or redelivered.
  std::vector<std::size_t> current;
  for (std::size_t i = 0; i < member.held.size(); ++i) {
    if (model_.IsCurrent(member.group, member.held[i].index, member.held[i].token)) {
      current.push_back(i);
    }
  }
  const std::size_t which =
      !current.empty() && Random(5) != 0 ? Pick(current) : Random(member.held.size());
  std::optional<Duration> delay;
  if (kind == Settle::kNack && Random(2) == 0) {
    static const std::vector<Duration> kNackDelays = {0s, 1s, 6s};
    delay = Pick(kNackDelays);
  }
  const Held held = member.held[which];
  if (!SettleHeld(member.group, held, kind, delay)) return false;
  // Keep some settled ones to try again (stale), drop the rest.
  if (!model_.IsCurrent(member.group, held.index, held.token) &&
      (Random(3) != 0 || member.held.size() > 8)) {
    member.held.erase(member.held.begin() + static_cast<long>(which));
  }
  return true;
}

// Settles a delivery of a member that left: always stale.
bool Runner::SettleOrphan() {
  if (orphans_.empty()) return SettleRandom(Settle::kAck);
  const std::size_t which = Random(orphans_.size());
  auto [group, held] = orphans_[which];
  orphans_.erase(orphans_.begin() + static_cast<long>(which));
  const Settle kind = static_cast<Settle>(Random(3));
  return SettleHeld(group, held, kind, std::nullopt);
}

void Runner::Advance(Duration delta) {
  clock_.Advance(delta);
  model_.Advance(delta);
  Trace("advance " + Time(delta));
}

bool Runner::AdvanceRandom() {
  static const std::vector<Duration> kAdvances = {0s, 1s, 2s, 3s, 5s, 8s, 13s, 30s};
  Advance(Pick(kAdvances) + kTick);
  return true;
}

bool Runner::Seek() {
  const int group = static_cast<int>(Random(2));
  const std::string& name = model_.spec(group).name;
  std::uint64_t lowest_end = next_offset_[0];
  for (std::uint64_t end : next_offset_) lowest_end = std::min(lowest_end, end);
  StartPosition position;
  const std::uint64_t roll = Random(5);
  if (roll < 2) {
    position = StartPosition::Earliest();
  } else if (roll < 4) {
    position = StartPosition::AtOffset(Offset(Random(lowest_end + 1)));
  } else {
    position = StartPosition::Latest();
  }
  Status status = Await(bus_->Seek(kTopic, name, position, Deadline::Infinite()));
  std::ostringstream line;
  line << "seek " << name << " to " << (roll < 2 ? "earliest" : roll < 4 ? "offset " : "latest");
  if (position.kind == StartPosition::Kind::kOffset) line << position.offset;
  Trace(line.str() + " -> " + status.ToString());
  if (!model_.created(group)) return Expect(status, StatusCode::kNotFound, "Seek (no group)");
  if (!Expect(status, StatusCode::kOk, "Seek")) return false;
  model_.Sought(group, position);
  return true;
}

bool Runner::Describe() {
  const int group = static_cast<int>(Random(2));
  if (!model_.created(group)) return PollRandom();
  Result<GroupInfo> info =
      Await(bus_->DescribeGroup(kTopic, model_.spec(group).name, Deadline::Infinite()));
  if (!info.ok()) return Expect(info.status(), StatusCode::kOk, "DescribeGroup");
  Trace("describe " + model_.spec(group).name + " -> members " + std::to_string(info->members) +
        " in_flight " + std::to_string(info->in_flight) + " backlog " +
        std::to_string(info->backlog) + " dead_lettered " + std::to_string(info->dead_lettered));
  return Check(model_.CheckDescribe(group, *info, static_cast<std::uint32_t>(MembersOf(group))));
}

// Close the bus (sometimes after every member left), open it again, rejoin.
bool Runner::Restart() {
  if (Random(2) == 0) {
    while (!members_.empty()) {
      if (!Leave(members_.size() - 1)) return false;
    }
  }
  std::vector<int> rejoin;
  for (const Member& m : members_) rejoin.push_back(m.group);
  Status closed = Await(bus_->Close());
  Trace("close bus -> " + closed.ToString());
  if (!Expect(closed, StatusCode::kOk, "Bus::Close")) return false;
  if (!members_.empty()) {
    Result<Delivery> next = Await(members_.front().subscription->Next(Deadline::Past()));
    if (!Expect(next.status(), StatusCode::kCancelled, "Next after Bus::Close")) return false;
    if (!members_.front().held.empty()) {
      Status late = Await(members_.front().held.front().delivery.Ack());
      if (!Expect(late, StatusCode::kFailedPrecondition, "Ack after Bus::Close")) return false;
    }
  }
  Message message;
  message.id = "late";
  message.source = "/model";
  message.type = "model.event";
  Result<PublishResult> late = Await(bus_->Publish(kTopic, message, {}, Deadline::Infinite()));
  if (!Expect(late.status(), StatusCode::kFailedPrecondition, "Publish after Bus::Close")) {
    return false;
  }
  members_.clear();
  orphans_.clear();
  bus_.reset();
  model_.Restarted();
  if (!Open()) return false;
  for (int group : rejoin) {
    if (!Join(group)) return false;
  }
  return true;
}

}  // namespace junction::model_test
