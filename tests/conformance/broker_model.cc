#include "broker_model.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace junction::model_test {
namespace {

std::string Time(Duration t) {
  if (t == Duration::max()) return "never";
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t).count();
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%s%lld.%03llds", ms < 0 ? "-" : "",
                static_cast<long long>(std::abs(ms) / 1000),
                static_cast<long long>(std::abs(ms) % 1000));
  return buffer;
}

// The delivered message is the published one (the broker adds headers).
std::string CompareContent(const Message& got, const Message& want) {
  if (got.id != want.id || got.source != want.source || got.type != want.type ||
      got.key != want.key || got.data != want.data) {
    std::ostringstream out;
    out << "content differs: got " << got << ", published " << want;
    return out.str();
  }
  for (const auto& [name, value] : want.headers) {
    auto it = got.headers.find(name);
    if (it == got.headers.end() || it->second != value) return "header '" + name + "' lost";
  }
  return {};
}

std::optional<std::uint64_t> HeaderNumber(const Message& message, std::string_view name) {
  auto it = message.headers.find(std::string(name));
  if (it == message.headers.end()) return std::nullopt;
  std::uint64_t value = 0;
  const std::string& text = it->second;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<DeadLetterRecord> ParseDeadLetter(const Message& message) {
  auto partition = HeaderNumber(message, kHeaderDlqPartition);
  auto offset = HeaderNumber(message, kHeaderDlqOffset);
  auto attempts = HeaderNumber(message, kHeaderDlqAttempts);
  const auto& h = message.headers;
  for (std::string_view name : {kHeaderDlqTopic, kHeaderDlqGroup, kHeaderDlqLastError,
                                kHeaderDlqFirstFailure, kHeaderDlqLastFailure}) {
    if (!h.contains(std::string(name))) return std::nullopt;
  }
  if (!partition || !offset || !attempts) return std::nullopt;
  return DeadLetterRecord{h.at(std::string(kHeaderDlqTopic)),
                          h.at(std::string(kHeaderDlqGroup)),
                          PartitionId(static_cast<std::uint32_t>(*partition)),
                          Offset(*offset),
                          static_cast<std::uint32_t>(*attempts),
                          h.at(std::string(kHeaderDlqLastError)),
                          message};
}

Duration GroupSpec::Backoff(std::uint32_t attempt) const {
  return backoff[std::min<std::size_t>(attempt == 0 ? 0 : attempt - 1, backoff.size() - 1)];
}

Model::Model(std::string topic, std::vector<GroupSpec> groups) : topic_(std::move(topic)) {
  for (GroupSpec& spec : groups) {
    Group group;
    group.spec = std::move(spec);
    groups_.push_back(std::move(group));
  }
}

std::size_t Model::Publish(ModelMessage message) {
  std::size_t index = messages_.size();
  by_position_[{message.partition, message.offset}] = index;
  for (Group& group : groups_) {
    State state;
    state.earliest = message.deliver_at;
    state.latest = std::max(now_, message.deliver_at);
    group.states.push_back(state);
  }
  messages_.push_back(std::move(message));
  return index;
}

std::optional<std::size_t> Model::Find(PartitionId partition, Offset offset) const {
  auto it = by_position_.find({partition, offset});
  if (it == by_position_.end()) return std::nullopt;
  return it->second;
}

std::string Model::Describe(std::size_t index) const {
  const ModelMessage& m = messages_[index];
  std::ostringstream out;
  out << m.message.id << "@p" << m.partition << "/" << m.offset;
  if (m.message.key) out << " key=" << *m.message.key;
  return out.str();
}

bool Model::SameKey(std::size_t a, std::size_t b) const {
  return messages_[a].message.key && messages_[a].message.key == messages_[b].message.key;
}

void Model::Fail(Group& group, std::size_t index, Duration earliest, Duration latest,
                 std::optional<std::string> error) {
  State& s = group.states[index];
  s.in_flight.reset();
  // "Any failure ... of an attempt number >= max_deliveries moves the message
  // to the dead-letter topic ... then counts it acked for the group."
  if (s.attempts >= group.spec.max_deliveries) {
    s.done = true;
    s.storing = true;
    s.dead_letters.push_back({s.attempts, std::move(error), true});
    ++group.dead_lettered_since_open;
    return;
  }
  s.earliest = earliest;
  s.latest = latest;
  s.min_next_attempt = s.attempts + 1;
}

void Model::ResolveDead(State& state) {
  state.maybe_dead = false;
  state.done = true;
  state.dead_letters.back().certain = true;  // pushed by Restarted, the last one
}

void Model::BeginPoll(int group_index) {
  Group& group = groups_[group_index];
  for (std::size_t i = 0; i < group.states.size(); ++i) {
    const State& s = group.states[i];
    if (!s.in_flight || !Expired(*s.in_flight)) continue;
    // The broker may have noticed the deadline at any time since it passed:
    // the redelivery is due between deadline + backoff and now + backoff.
    Duration backoff = group.spec.Backoff(s.attempts);
    Fail(group, i, s.in_flight->deadline + backoff, now_ + backoff, "ack deadline exceeded");
  }
}

std::uint32_t Model::InFlightOf(const Group& group, int member) const {
  std::uint32_t n = 0;
  for (const State& s : group.states) n += s.in_flight && s.in_flight->member == member;
  return n;
}

bool Model::KeyFree(const Group& group, std::size_t index) const {
  if (!group.spec.ordered || !messages_[index].message.key) return true;
  for (std::size_t j = 0; j < group.states.size(); ++j) {
    if (j == index || !SameKey(j, index)) continue;
    if (group.states[j].in_flight) return false;
    if (j < index && (!group.states[j].done || group.states[j].storing)) return false;
  }
  return true;
}

std::string Model::Delivered(int group_index, int member, const Delivery& delivery,
                             std::size_t& index, std::uint64_t& token) {
  Group& group = groups_[group_index];
  std::ostringstream out;
  auto found = Find(delivery.partition(), delivery.offset());
  if (delivery.topic() != topic_ || !found) {
    out << "delivered " << delivery.topic() << "@p" << delivery.partition() << "/"
        << delivery.offset() << ", which was never published";
    return out.str();
  }
  index = *found;
  const ModelMessage& m = messages_[index];
  State& s = group.states[index];
  const std::uint32_t attempt = delivery.attempt().value();
  out << "group " << group.spec.name << " delivered " << Describe(index) << " attempt " << attempt
      << " at " << Time(now_) << ": ";
  if (std::string diff = CompareContent(delivery.message(), m.message); !diff.empty()) {
    return out.str() + diff;
  }
  auto header = delivery.message().headers.find(std::string(kHeaderAttempt));
  if (header == delivery.message().headers.end() || header->second != std::to_string(attempt)) {
    return out.str() + "header junction-attempt missing or not the attempt";
  }
  if (s.in_flight) {
    out << "attempt " << s.attempts << " (member " << s.in_flight->member
        << ") is still in flight, deadline " << Time(s.in_flight->deadline);
    return out.str();
  }
  if (s.done) return out.str() + "it was acked or dead-lettered (and not sought below)";
  if (now_ < s.earliest) return out.str() + "not due before " + Time(s.earliest);
  if (attempt < s.min_next_attempt || attempt > s.attempts + 1) {
    out << "expected attempt " << s.min_next_attempt;
    if (s.min_next_attempt != s.attempts + 1) out << ".." << s.attempts + 1;
    return out.str();
  }
  if (attempt > group.spec.max_deliveries) return out.str() + "beyond max_deliveries";
  if (InFlightOf(group, member) >= group.spec.max_in_flight) {
    out << "member " << member << " already holds max_in_flight=" << group.spec.max_in_flight;
    return out.str();
  }
  if (group.spec.ordered && m.message.key) {
    for (std::size_t j = 0; j < group.states.size(); ++j) {
      if (j == index || !SameKey(j, index)) continue;
      State& other = group.states[j];
      if (other.in_flight) return out.str() + "same key in flight: " + Describe(j);
      if (j < index) other.storing = false;  // the key moved on: that store finished
      if (j < index && !other.done) {
        // A later message of the key came: the earlier one was dead-lettered.
        if (!other.maybe_dead) return out.str() + "earlier message not acked: " + Describe(j);
        ResolveDead(other);
      }
    }
  }
  s.maybe_dead = false;  // it came back: the restart did not dead-letter it
  s.attempts = attempt;
  s.min_next_attempt = attempt + 1;
  token = ++next_token_;
  s.in_flight = Attempt{member, token, now_ + group.spec.ack_deadline};
  return {};
}

std::string Model::NothingDeliverable(int group_index, const std::vector<int>& members) const {
  const Group& group = groups_[group_index];
  bool credit = false;
  for (int member : members) credit |= InFlightOf(group, member) < group.spec.max_in_flight;
  if (!credit) return {};
  for (std::size_t i = 0; i < group.states.size(); ++i) {
    const State& s = group.states[i];
    if (s.done || s.maybe_dead || s.in_flight || s.latest > now_ || !KeyFree(group, i)) continue;
    return "group " + group.spec.name + ": Next() of every member (" +
           std::to_string(members.size()) + ") found nothing at " + Time(now_) + ", but " +
           Describe(i) + " is deliverable since " + Time(s.latest) + " (attempts so far " +
           std::to_string(s.attempts) + ")";
  }
  return {};
}

bool Model::IsCurrent(int group, std::size_t index, std::uint64_t token) const {
  const State& s = groups_[group].states[index];
  return s.in_flight && s.in_flight->token == token;
}

std::string Model::Settled(int group_index, std::size_t index, std::uint64_t token, Settle kind,
                           std::optional<Duration> nack_delay, const std::string& nack_error,
                           const Status& status) {
  Group& group = groups_[group_index];
  State& s = group.states[index];
  const char* what = kind == Settle::kAck ? "Ack" : kind == Settle::kNack ? "Nack" : "InProgress";
  std::string prefix = "group " + group.spec.name + ": " + what + " of " + Describe(index) +
                       " at " + Time(now_) + " returned " + status.ToString() + ", ";
  if (!IsCurrent(group_index, index, token)) {
    // "Acks are bound to the attempt ... fail with FailedPrecondition and
    // change nothing. A second Ack of the same attempt also fails."
    if (status.code() == StatusCode::kFailedPrecondition) return {};
    return prefix + "expected FAILED_PRECONDITION for an attempt no longer current";
  }
  const Duration backoff = group.spec.Backoff(s.attempts);
  if (!status.ok()) {
    // Past the ack deadline the broker may already have taken the attempt back.
    if (Expired(*s.in_flight) && status.code() == StatusCode::kFailedPrecondition) {
      Fail(group, index, s.in_flight->deadline + backoff, now_ + backoff, "ack deadline exceeded");
      return {};
    }
    return prefix + "expected OK for the current attempt (deadline " + Time(s.in_flight->deadline) +
           ")";
  }
  switch (kind) {
    case Settle::kAck:
      s.in_flight.reset();
      s.done = true;
      break;
    case Settle::kNack: {
      Duration due = now_ + nack_delay.value_or(backoff);
      Fail(group, index, due, due, nack_error);
      break;
    }
    case Settle::kInProgress:
      s.in_flight->deadline = now_ + group.spec.ack_deadline;
      break;
  }
  return {};
}

void Model::Left(int group_index, int member) {
  Group& group = groups_[group_index];
  for (std::size_t i = 0; i < group.states.size(); ++i) {
    const State& s = group.states[i];
    if (!s.in_flight || s.in_flight->member != member) continue;
    // "deliverable to the other members at once (no backoff)", unless the
    // broker had already taken it back for its passed deadline.
    if (Expired(*s.in_flight)) {
      Duration backoff = group.spec.Backoff(s.attempts);
      Fail(group, i, std::min(now_, s.in_flight->deadline + backoff), now_ + backoff, std::nullopt);
    } else {
      Fail(group, i, now_, now_, std::nullopt);
    }
  }
}

void Model::Sought(int group_index, const StartPosition& position) {
  Group& group = groups_[group_index];
  for (std::size_t i = 0; i < group.states.size(); ++i) {
    State& s = group.states[i];
    const ModelMessage& m = messages_[i];
    // When a pending redelivery may keep its timer, it is due by then at the latest.
    Duration hold = now_;
    if (s.in_flight && Expired(*s.in_flight)) {
      // The deadline may have been processed (and the message dead-lettered)
      // before the seek.
      if (s.attempts >= group.spec.max_deliveries) {
        s.dead_letters.push_back({s.attempts, std::nullopt, false});
        ++group.dead_lettered_maybe;
      }
      hold = now_ + group.spec.Backoff(s.attempts);
    } else if (!s.done && !s.in_flight && !s.maybe_dead && s.attempts > 0) {
      hold = s.latest;
    }
    s.in_flight.reset();  // stale
    s.maybe_dead = false;
    s.storing = false;  // what the store finishes no longer matters to the group
    const bool below =
        position.kind == StartPosition::Kind::kLatest ||
        (position.kind == StartPosition::Kind::kOffset && m.offset < position.offset);
    s.done = below;
    if (below) continue;
    // "acked state above is forgotten": delivered again, the attempt count
    // may start over.
    s.min_next_attempt = 1;
    s.earliest = m.deliver_at;
    s.latest = std::max({now_, m.deliver_at, hold});
  }
}

void Model::Restarted() {
  for (Group& group : groups_) {
    group.dead_lettered_since_open = 0;
    group.dead_lettered_maybe = 0;
    for (State& s : group.states) {
      s.storing = false;  // Close finishes stores in flight
      if (s.in_flight) {
        // Closing the bus may count as the member leaving (a failure: at the
        // last attempt, a dead letter) or as nothing; either way the message
        // is unacked and "delivered again" after the restart.
        const bool expired = Expired(*s.in_flight);
        const Duration backoff = group.spec.Backoff(s.attempts);
        if (s.attempts >= group.spec.max_deliveries) {
          s.maybe_dead = true;
          s.dead_letters.push_back({s.attempts, std::nullopt, false});
        } else {
          s.earliest = expired ? std::min(now_, s.in_flight->deadline + backoff) : now_;
          s.latest = expired ? now_ + backoff : now_;
        }
        s.in_flight.reset();
      } else if (!s.done && s.attempts > 0) {
        s.earliest = std::min(s.earliest, now_);  // backoff timers may be forgotten
      }
      // "attempt counts may continue" (or start over).
      if (!s.done && s.attempts > 0) s.min_next_attempt = 1;
    }
  }
}

std::string Model::CheckDescribe(int group_index, const GroupInfo& info,
                                 std::uint32_t members) const {
  const Group& group = groups_[group_index];
  std::uint64_t open = 0, uncertain = 0, expired_last = 0, storing = 0, held = 0,
                delivered_unacked = 0;
  for (const State& s : group.states) {
    const bool expired_at_last =
        s.in_flight && Expired(*s.in_flight) && s.attempts >= group.spec.max_deliveries;
    expired_last += expired_at_last;
    storing += s.storing;
    if (s.maybe_dead || expired_at_last || s.storing) {
      ++uncertain;
    } else if (!s.done) {
      ++open;
    }
    held += s.in_flight && !Expired(*s.in_flight);
    delivered_unacked += !s.done && (s.in_flight || s.attempts > 0);
  }
  std::ostringstream out;
  out << "DescribeGroup(" << group.spec.name << ") at " << Time(now_) << ": ";
  if (info.topic != topic_ || info.group != group.spec.name) {
    out << "names " << info.topic << "/" << info.group;
  } else if (info.members != members) {
    out << "members " << info.members << ", expected " << members;
  } else if (info.backlog < open || info.backlog > open + uncertain) {
    out << "backlog " << info.backlog << ", expected " << open << ".." << open + uncertain;
  } else if (info.dead_lettered + storing < group.dead_lettered_since_open ||
             info.dead_lettered >
                 group.dead_lettered_since_open + expired_last + group.dead_lettered_maybe) {
    out << "dead_lettered " << info.dead_lettered << ", expected "
        << group.dead_lettered_since_open - storing << ".."
        << group.dead_lettered_since_open + expired_last + group.dead_lettered_maybe;
  } else if (info.in_flight < held || info.in_flight > delivered_unacked) {
    out << "in_flight " << info.in_flight << ", expected " << held << ".." << delivered_unacked;
  } else {
    return {};
  }
  return out.str();
}

std::string Model::Unsettled() const {
  std::ostringstream out;
  int shown = 0;
  for (const Group& group : groups_) {
    for (std::size_t i = 0; i < group.states.size(); ++i) {
      const State& s = group.states[i];
      if (s.done || s.maybe_dead) continue;
      if (shown++ == 4) return out.str() + " ...";
      out << (shown > 1 ? "; " : "") << "group " << group.spec.name << ": " << Describe(i)
          << " attempts " << s.attempts << (s.in_flight ? " in flight" : "") << " due "
          << Time(s.earliest) << ".." << Time(s.latest);
    }
  }
  return out.str();
}

void Model::FinishDrain() {
  for (Group& group : groups_) {
    for (State& s : group.states) {
      if (s.maybe_dead) ResolveDead(s);
      s.storing = false;
    }
  }
}

std::string Model::CheckDeadLetters(int group_index,
                                    const std::vector<DeadLetterRecord>& records) const {
  const Group& group = groups_[group_index];
  std::map<std::size_t, std::vector<const DeadLetterRecord*>> by_message;
  const std::string prefix = "dead letters of group " + group.spec.name + ": ";
  for (const DeadLetterRecord& r : records) {
    auto index = Find(r.partition, r.offset);
    std::ostringstream where;
    where << r.topic << "@p" << r.partition << "/" << r.offset;
    if (r.topic != topic_ || r.group != group.spec.name || !index) {
      return prefix + "a record for " + where.str() + " (group " + r.group + ")";
    }
    if (std::string diff = CompareContent(r.message, messages_[*index].message); !diff.empty()) {
      std::string message = prefix + Describe(*index);
      message += ": ";
      message += diff;
      return message;
    }
    by_message[*index].push_back(&r);
  }
  for (std::size_t i = 0; i < group.states.size(); ++i) {
    const std::vector<ExpectedDeadLetter>& expected = group.states[i].dead_letters;
    const auto certain = static_cast<std::size_t>(
        std::count_if(expected.begin(), expected.end(), [](auto& e) { return e.certain; }));
    const std::vector<const DeadLetterRecord*>& got = by_message[i];
    // The same message dead-lettered twice (after a seek) may be stored once:
    // the dead-letter topic dedupes by message id.
    if (got.size() < std::min<std::size_t>(certain, 1) || got.size() > expected.size()) {
      return prefix + Describe(i) + " is there " + std::to_string(got.size()) +
             " times, expected " + std::to_string(std::min<std::size_t>(certain, 1)) + ".." +
             std::to_string(expected.size());
    }
    for (const DeadLetterRecord* r : got) {
      bool matches = std::any_of(expected.begin(), expected.end(), [&](const auto& e) {
        return e.attempt == r->attempts && (!e.error || *e.error == r->last_error);
      });
      if (!matches) {
        std::string want;
        for (const auto& e : expected) {
          want += " " + std::to_string(e.attempt) + "/'" + e.error.value_or("*") + "'";
        }
        std::string message = prefix + Describe(i);
        message += " has attempts " + std::to_string(r->attempts);
        message += " and last error '" + r->last_error + "', expected one of";
        message += want;
        return message;
      }
    }
  }
  return {};
}

}  // namespace junction::model_test
