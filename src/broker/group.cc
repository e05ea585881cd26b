#include "broker/group.h"

#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "broker/broker.h"
#include "broker/topic.h"
#include "codec/record_batch.h"
#include "junction/log.h"

namespace junction::broker {
namespace {

constexpr std::size_t kReadBytes = 256 * 1024;

// `text` as a header value may hold it (Message::Validate: no control
// character but tab, no DEL): a newline or carriage return written as \n or
// \r, any other such byte as \xNN. A consumer's error text (a nack's) can
// hold anything, and a dead letter must still be a message.
std::string HeaderSafe(std::string_view text) {
  auto control = [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return (b < 0x20 && c != '\t') || b == 0x7f;
  };
  if (std::none_of(text.begin(), text.end(), control)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (!control(c)) {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      const auto b = static_cast<unsigned char>(c);
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    }
  }
  return out;
}

// Ordered groups hold back at most this many positions per entry slot:
// 10,000 entries allow 1,000,000 held-back messages (~16 MB).
constexpr std::size_t kHeldPerEntry = 100;

std::int64_t ToMillis(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::pair<MonoTime, std::int64_t> ClockInstant(const Clock& clock) {
  constexpr Duration kSlack = std::chrono::microseconds(100);
  MonoTime before = clock.Now();
  for (int tries = 1;; ++tries) {
    const std::int64_t wall_ms = ToMillis(clock.WallNow());
    const MonoTime after = clock.Now();
    if (after - before <= kSlack || tries == 8) return {after, wall_ms};
    before = after;
  }
}

GroupConfig GroupConfig::From(const SubscribeOptions& options, std::string_view topic) {
  GroupConfig config;
  config.ordered = options.ordered;
  config.ack_deadline = options.ack_deadline;
  config.max_deliveries = std::max<std::uint32_t>(1, options.max_deliveries);
  config.backoff = options.backoff;
  if (config.backoff.empty()) config.backoff.push_back(std::chrono::seconds(1));
  config.dead_letter_topic = DeadLetterTopic(topic, options);
  return config;
}

Group::Group(Broker& broker, Topic& topic, std::string name, std::uint64_t id, GroupConfig config,
             bool ephemeral)
    : broker_(broker),
      topic_(topic),
      name_(std::move(name)),
      id_(id),
      config_(std::move(config)),
      ephemeral_(ephemeral),
      max_entries_(broker.max_group_entries()),
      cursors_(topic.partitions.size()),
      max_held_(broker.max_group_entries() * kHeldPerEntry) {}

void Group::Reset(const StartPosition& start) {
  ++epoch_;
  for (auto& member : members_) {
    member->queue.clear();
    member->in_flight = 0;
    member->in_flight_bytes = 0;
  }
  entries_.clear();
  ready_.clear();
  timers_.clear();
  keys_.clear();
  blocked_ = 0;
  held_ = 0;
  heads_to_load_.clear();
  in_flight_ = 0;
  for (std::size_t p = 0; p < cursors_.size(); ++p) {
    storage::Log& log = *topic_.partitions[p];
    Offset log_start = log.status().log_start;
    Offset end = log.high_watermark();
    Offset at = log_start;
    switch (start.kind) {
      case StartPosition::Kind::kEarliest:
        break;
      case StartPosition::Kind::kLatest:
        at = end;
        break;
      case StartPosition::Kind::kOffset:
        at = std::clamp(start.offset, log_start, end);
        break;
      case StartPosition::Kind::kTime: {
        auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(start.time.time_since_epoch())
                .count();
        Result<Offset> found = log.OffsetForTime(ms);
        at = found.ok() ? std::max(*found, log_start) : end;
        break;
      }
    }
    cursors_[p] = PartitionCursor{AckSet(at), at};
  }
  if (!ephemeral_) broker_.MarkDirty(*this);
}

void Group::Restore(std::vector<AckSet> acked) {
  for (std::size_t p = 0; p < cursors_.size() && p < acked.size(); ++p) {
    Offset floor = acked[p].floor();
    cursors_[p] = PartitionCursor{std::move(acked[p]), floor};
  }
}

const std::vector<AckSet>& Group::acked() const {
  acked_view_.clear();
  for (const auto& c : cursors_) acked_view_.push_back(c.acked);
  return acked_view_;
}

Offset Group::Floor(PartitionId p) const { return cursors_[p.value()].acked.floor(); }

void Group::Join(std::shared_ptr<Member> member) {
  members_.push_back(std::move(member));
  Pump();
}

void Group::Leave(Member& member) {
  member.closed = true;
  std::erase_if(members_, [&](const auto& m) { return m.get() == &member; });
  std::vector<Key> held;
  for (const auto& [key, entry] : entries_) {
    if (entry->state == State::kInFlight && entry->member_id == member.id) held.push_back(key);
  }
  std::sort(held.begin(), held.end());  // back to ready in offset order
  member.queue.clear();
  for (const Key& key : held) {
    Entry& entry = *entries_.at(key);
    Release(entry);
    Fail(entry, Duration::zero(), "consumer left", broker_.clock().Now());
  }
  member.in_flight = 0;
  member.in_flight_bytes = 0;
  member.Wake();
  Pump();
}

void Group::Pump() {
  Fill();
  Dispatch();
}

bool Group::HasRoom() const {
  return entries_.size() - blocked_ < max_entries_ && held_ < max_held_;
}

void Group::Fill() {
  if (members_.empty()) return;
  for (auto it = heads_to_load_.begin(); it != heads_to_load_.end();) {
    it = NextOfKey(*it) ? heads_to_load_.erase(it) : std::next(it);
  }
  const std::uint32_t n = static_cast<std::uint32_t>(cursors_.size());
  bool progressed = true;
  while (progressed && HasRoom()) {
    progressed = false;
    for (std::uint32_t i = 0; i < n && HasRoom(); ++i) {
      progressed |= FillPartition((next_partition_ + i) % n);
    }
    next_partition_ = (next_partition_ + 1) % n;
  }
}

bool Group::FillPartition(std::uint32_t p) {
  PartitionCursor& cursor = cursors_[p];
  storage::Log& log = *topic_.partitions[p];
  if (cursor.next_read >= log.high_watermark()) return false;
  if (FillFromTail(p)) return true;
  Result<storage::ReadResult> read = log.Read(cursor.next_read, kReadBytes);
  if (!read.ok()) {
    Offset log_start = log.status().log_start;
    if (read.status().code() == StatusCode::kOutOfRange && cursor.next_read < log_start) {
      // Retention deleted what this group had not acked (the topic allows it).
      std::uint64_t acked_before = cursor.acked.acked_above_floor();
      Offset floor_before = cursor.acked.floor();
      cursor.acked.AdvanceFloor(log_start);
      std::uint64_t acked_gone = acked_before - cursor.acked.acked_above_floor();
      std::uint64_t lost = (log_start - floor_before) - acked_gone;
      dropped_by_retention_ += lost;
      cursor.next_read = log_start;
      log::Warn("retention deleted messages a group had not acked",
                {{"topic", topic_.name},
                 {"group", name_},
                 {"partition", std::uint64_t{p}},
                 {"messages", lost}});
      if (!ephemeral_) broker_.MarkDirty(*this);
      return true;
    }
    log::Error("a group cannot read its partition", {{"topic", topic_.name},
                                                     {"group", name_},
                                                     {"partition", std::uint64_t{p}},
                                                     {"error", read.status().ToString()}});
    return false;
  }
  std::span<const std::byte> rest(read->batches);
  codec::RecordViews views;  // one batch at a time, its buffers reused
  while (!rest.empty()) {
    Result<codec::BatchHeader> header = codec::ParseBatchHeader(rest);
    JUNCTION_CHECK(header.ok()) << "log returned a bad batch: " << header.status();
    std::span<const std::byte> batch = rest.first(header->batch_length);
    rest = rest.subspan(header->batch_length);
    Status decoded = views.DecodeVerified(batch);  // Log::Read verified every checksum
    JUNCTION_CHECK(decoded.ok()) << "log returned a bad batch: " << decoded;
    std::span<const codec::RecordView> records = views.records();
    // Copied out of the read buffer (entries would pin all of it) when at
    // least half of its records are this group's to deliver: junctiond
    // sends such a batch, or runs of its records, as stored, and encodes
    // the messages of the others.
    std::shared_ptr<const StoredBatch> kept;
    if (broker_.keep_stored_batches() && header->last_offset_delta + 1 == header->record_count) {
      std::size_t ours = 0;
      for (const codec::RecordView& record : records) {
        if (record.offset >= cursor.next_read && !cursor.acked.Contains(record.offset)) ++ours;
      }
      if (ours * 2 >= header->record_count) {
        kept =
            std::make_shared<const StoredBatch>(header->base_offset, header->record_count,
                                                std::vector<std::byte>(batch.begin(), batch.end()));
      }
    }
    // Of a kept batch, junctiond sends the records as they are: their
    // messages are decoded only if an attempt fails (Materialize), except
    // where the group needs them now (a key's order, a delay) and in what
    // this broker did not store and validate itself (Topic::validated_from).
    const bool as_records = kept != nullptr && header->compression == codec::Compression::kNone &&
                            header->base_offset >= topic_.validated_from[p] &&
                            !(config_.ordered && !ephemeral_);
    for (const codec::RecordView& record : records) {
      if (record.offset < cursor.next_read || cursor.acked.Contains(record.offset)) continue;
      if (as_records) {
        RecordSummary summary = SummarizeRecord(record);
        if (!summary.delayed) {
          AddRecordEntry(PartitionId(p), record.offset, kept, record.position, summary.size);
          continue;
        }
      }
      Result<std::shared_ptr<StoredMessage>> stored = DecodeStoredMessage(record);
      if (!stored.ok()) {
        // Unreadable as a message: it cannot be delivered or dead-lettered.
        log::Error("skipping a record that is not a message",
                   {{"topic", topic_.name},
                    {"partition", std::uint64_t{p}},
                    {"offset", record.offset.value()},
                    {"error", stored.status().ToString()}});
        cursor.acked.Add(record.offset);
        continue;
      }
      AddEntry(PartitionId(p), record.offset, std::move(*stored), kept);
    }
  }
  cursor.next_read = read->next_offset;
  return true;
}

bool Group::FillFromTail(std::uint32_t p) {
  const TailCache& tail = topic_.tails[p];
  PartitionCursor& cursor = cursors_[p];
  storage::Log& log = *topic_.partitions[p];
  // Below the log's start, retention deleted it: the log path counts that.
  if (tail.Find(cursor.next_read) == nullptr || cursor.next_read < log.log_start()) {
    return false;
  }
  // As much as one read of the log would give, about.
  std::size_t bytes = 0;
  Offset end = std::min(tail.end(), log.high_watermark());
  Offset at = cursor.next_read;
  std::shared_ptr<const StoredBatch> batch;
  for (; at < end && bytes < kReadBytes && HasRoom(); at = Offset(at.value() + 1)) {
    if (cursor.acked.Contains(at)) continue;
    const std::shared_ptr<const StoredMessage>& stored = *tail.Find(at);
    bytes += stored->size();
    if (batch == nullptr || at.value() - batch->base_offset.value() >= batch->records) {
      batch = tail.BatchAt(at);
    }
    AddEntry(PartitionId(p), at, stored, batch);
  }
  cursor.next_read = at;
  return true;
}

std::string Group::KeyOf(const Entry& entry) const {
  return entry.stored->message.key.value_or(std::string());
}

void Group::AddEntry(PartitionId p, Offset o, std::shared_ptr<const StoredMessage> stored,
                     std::shared_ptr<const StoredBatch> batch) {
  Key key{p.value(), o.value()};
  if (config_.ordered && !ephemeral_ && blocked_ >= max_entries_ && stored->message.key &&
      !stored->message.key->empty()) {
    auto queue = keys_.find(*stored->message.key);
    if (queue != keys_.end() && !queue->second.empty()) {
      queue->second.push_back(key);  // held back: its position only
      ++held_;
      return;
    }
  }
  Entry entry;
  entry.partition = p;
  entry.offset = o;
  entry.size = stored->size();
  entry.stored = std::move(stored);
  entry.batch = std::move(batch);
  Admit(std::move(entry));
}

void Group::AddRecordEntry(PartitionId p, Offset o, std::shared_ptr<const StoredBatch> batch,
                           std::uint32_t position, std::size_t size) {
  Entry entry;
  entry.partition = p;
  entry.offset = o;
  entry.batch = std::move(batch);
  entry.size = size;
  entry.position = position;
  Admit(std::move(entry));
}

void Group::Admit(Entry&& entry) {
  const Key key{entry.partition.value(), entry.offset.value()};
  auto [it, inserted] = entries_.try_emplace(key);
  if (!inserted) return;
  it->second = BoxEntry(std::move(entry));
  Entry& added = *it->second;
  if (config_.ordered && !ephemeral_) {
    std::string message_key = KeyOf(added);
    if (!message_key.empty()) {
      auto& queue = keys_[message_key];
      queue.push_back(key);
      if (queue.size() > 1) {
        added.state = State::kBlocked;
        ++blocked_;
        added.batch.reset();  // may wait long: it pins nothing meanwhile
        return;
      }
    }
  }
  Activate(added);
  if (added.state != State::kReady) added.batch.reset();  // delayed: the same
}

bool Group::Materialize(Entry& entry) {
  Result<std::shared_ptr<StoredMessage>> decoded =
      DecodeStoredRecordAt(*entry.batch, entry.position);
  if (!decoded.ok()) {
    log::Error("skipping a record that is not a message",
               {{"topic", topic_.name},
                {"partition", std::uint64_t{entry.partition.value()}},
                {"offset", entry.offset.value()},
                {"error", decoded.status().ToString()}});
    return false;
  }
  entry.stored = std::move(*decoded);
  entry.batch.reset();
  return true;
}

Result<std::shared_ptr<const StoredMessage>> StoredOf(const BrokerDelivery& delivery) {
  if (delivery.stored != nullptr) return delivery.stored;
  JUNCTION_CHECK(delivery.batch != nullptr) << "a delivery with neither a message nor a batch";
  JUNCTION_ASSIGN_OR_RETURN(std::shared_ptr<StoredMessage> decoded,
                            DecodeStoredRecordAt(*delivery.batch, delivery.position));
  return std::shared_ptr<const StoredMessage>(std::move(decoded));
}

bool Group::NextOfKey(const std::string& message_key) {
  auto queue = keys_.find(message_key);
  if (queue == keys_.end() || queue->second.empty()) return true;
  const Key key = queue->second.front();
  if (auto it = entries_.find(key); it != entries_.end()) {
    JUNCTION_CHECK(it->second->state == State::kBlocked) << "the next of a key was not blocked";
    --blocked_;
    Activate(*it->second);
    return true;
  }
  // Held back as a position: read it again.
  const Offset o(key.second);
  Result<storage::ReadResult> read = topic_.partitions[key.first]->Read(o, 1);
  std::optional<StoredMessage> found;
  Status problem = read.status();
  if (read.ok()) {
    for (std::span<const std::byte> rest(read->batches); !rest.empty() && !found;) {
      Result<codec::BatchHeader> header = codec::ParseBatchHeader(rest);
      JUNCTION_CHECK(header.ok()) << "log returned a bad batch: " << header.status();
      Result<std::vector<codec::Record>> records =
          codec::DecodeRecords(rest.first(header->batch_length));
      JUNCTION_CHECK(records.ok()) << "log returned a bad batch: " << records.status();
      rest = rest.subspan(header->batch_length);
      for (codec::Record& record : *records) {
        if (record.offset != o) continue;
        Result<StoredMessage> stored = DecodeMessage(record);
        if (stored.ok()) found = std::move(*stored);
        break;
      }
      if (!found) problem = DataLossError("not a message where one was read before");
    }
  }
  if (!found && problem.code() != StatusCode::kOutOfRange) {
    log::Error("an ordered group cannot read the next message of a key",
               {{"topic", topic_.name},
                {"group", name_},
                {"partition", std::uint64_t{key.first}},
                {"offset", o.value()},
                {"error", problem.ToString()}});
    return false;
  }
  --held_;
  if (!found) {
    // Retention deleted it while it was held back (the topic allows that).
    queue->second.pop_front();
    ++dropped_by_retention_;
    cursors_[key.first].acked.Add(o);
    if (!ephemeral_) broker_.MarkDirty(*this);
    log::Warn("retention deleted a message an ordered group held back",
              {{"topic", topic_.name},
               {"group", name_},
               {"partition", std::uint64_t{key.first}},
               {"offset", o.value()}});
    if (queue->second.empty()) {
      keys_.erase(queue);
      return true;
    }
    return NextOfKey(message_key);
  }
  Entry entry;
  entry.partition = PartitionId(key.first);
  entry.offset = o;
  entry.stored = std::make_shared<const StoredMessage>(std::move(*found));
  entry.size = entry.stored->size();
  auto [it, inserted] = entries_.try_emplace(key, BoxEntry(std::move(entry)));
  JUNCTION_CHECK(inserted) << "a held-back message already had an entry";
  Activate(*it->second);
  return true;
}

void Group::Activate(Entry& entry) {
  // The clock is read only for a delayed message (most have no deliver_at,
  // and a record entry never has one).
  if (entry.stored != nullptr && entry.stored->deliver_at_ms) {
    const std::int64_t deliver_at = *entry.stored->deliver_at_ms;
    const auto [now, now_ms] = ClockInstant(broker_.clock());
    if (deliver_at > now_ms) {
      SetTimer(entry, now + std::chrono::milliseconds(deliver_at - now_ms), State::kWaiting);
      return;
    }
  }
  MakeReady(entry);
}

void Group::MakeReady(Entry& entry) {
  entry.state = State::kReady;
  ready_.push_back(Key{entry.partition.value(), entry.offset.value()});
}

void Group::SetTimer(Entry& entry, MonoTime when, State state) {
  entry.state = state;
  entry.timer = when;
  if (timers_.size() >= 2 * entries_.size() + 1024) {
    // Compaction: at least entries_.size() + 1024 timers were pushed since
    // the last one, so its cost per timer is constant.
    std::erase_if(timers_, [&](const Timer& t) { return !IsCurrent(t); });
    std::make_heap(timers_.begin(), timers_.end(), Later{});
  }
  timers_.push_back(Timer{when, Key{entry.partition.value(), entry.offset.value()}});
  std::push_heap(timers_.begin(), timers_.end(), Later{});
  broker_.WakeAt(when);
}

bool Group::IsCurrent(const Timer& timer) const {
  auto it = entries_.find(timer.key);
  return it != entries_.end() && it->second->timer == timer.when &&
         (it->second->state == State::kWaiting || it->second->state == State::kInFlight);
}

void Group::DropStaleTimers() {
  while (!timers_.empty() && !IsCurrent(timers_.front())) {
    std::pop_heap(timers_.begin(), timers_.end(), Later{});
    timers_.pop_back();
  }
}

Member* Group::PickMember(std::size_t bytes) {
  for (std::size_t i = 0; i < members_.size(); ++i) {
    std::size_t index = (next_member_ + i) % members_.size();
    Member& member = *members_[index];
    if (!member.closed && member.queue.size() < member.wanted && member.HasCredit(bytes)) {
      next_member_ = index + 1;
      return &member;
    }
  }
  return nullptr;
}

void Group::Dispatch() {
  // One reading of the clock for every ack deadline this call starts.
  std::optional<MonoTime> now;
  while (!ready_.empty()) {
    Key key = ready_.front();
    Entry& entry = *entries_.at(key);
    Member* member = PickMember(entry.size);
    if (member == nullptr) return;
    ready_.pop_front();
    ++entry.attempts;
    entry.delivery_id = ++next_delivery_id_;
    entry.member_id = member->id;
    ++member->in_flight;
    member->in_flight_bytes += entry.size;
    // A record entry keeps its batch: a failed attempt decodes the message
    // from it (Fail). The others hand theirs over with their first attempt,
    // as does every entry of an ephemeral group (completed below: it has no
    // other attempt), without a count on the batch per message.
    std::shared_ptr<const StoredBatch> batch =
        entry.stored == nullptr && !ephemeral_ ? entry.batch : std::move(entry.batch);
    member->queue.push_back(
        BrokerDelivery{topic_.name, entry.partition, entry.offset, DeliveryCount(entry.attempts),
                       ephemeral_ ? std::move(entry.stored) : entry.stored,
                       DeliveryRef{id_, entry.partition, entry.offset, entry.delivery_id},
                       ephemeral_, std::move(batch), entry.size, entry.position});
    member->Wake();
    if (ephemeral_) {
      Complete(key);  // at most once: handing it out is the ack
    } else {
      ++in_flight_;
      if (!now) now = broker_.clock().Now();
      SetTimer(entry, *now + config_.ack_deadline, State::kInFlight);
    }
  }
}

void SetAttemptHeader(Message& message, DeliveryCount attempt) {
  message.headers.insert_or_assign(std::string(kHeaderAttempt), std::to_string(attempt.value()));
}

void Group::Taken(Member& member, const BrokerDelivery& delivery) {
  if (!ephemeral_) return;
  --member.in_flight;
  member.in_flight_bytes -= delivery.size;
}

Result<Group::Entry*> Group::FindAttempt(const DeliveryRef& ref) {
  auto it = entries_.find(Key{ref.partition.value(), ref.offset.value()});
  if (it == entries_.end() || it->second->state != State::kInFlight ||
      it->second->delivery_id != ref.delivery_id) {
    return FailedPreconditionError(
        "delivery of offset " + std::to_string(ref.offset.value()) + " in partition " +
        std::to_string(ref.partition.value()) + " of group '" + name_ +
        "' is no longer current (already acked, redelivered, or the group was reset)");
  }
  return it->second.get();
}

void Group::Release(Entry& entry) {
  // Its ack-deadline timer goes stale (see Timer).
  for (auto& member : members_) {
    if (member->id != entry.member_id) continue;
    --member->in_flight;
    member->in_flight_bytes -= entry.size;
    std::erase_if(member->queue,
                  [&](const BrokerDelivery& d) { return d.ref.delivery_id == entry.delivery_id; });
  }
  entry.member_id = 0;
  --in_flight_;
}

void Group::Fail(Entry& entry, std::optional<Duration> delay, std::string error, MonoTime at) {
  // A redelivery or a dead letter needs the message, and no batch is pinned
  // while the entry waits.
  if (entry.stored == nullptr && !Materialize(entry)) {
    Complete(Key{entry.partition.value(), entry.offset.value()});  // skipped, as Fill skips one
    return;
  }
  WallTime now = broker_.clock().WallNow();
  if (!entry.first_failure) entry.first_failure = now;
  entry.last_failure = now;
  entry.last_error = std::move(error);
  if (entry.attempts >= config_.max_deliveries) {
    DeadLetter(entry);
    return;
  }
  Duration wait =
      delay
          ? *delay
          : config_.backoff[std::min<std::size_t>(entry.attempts - 1, config_.backoff.size() - 1)];
  if (wait <= Duration::zero()) {
    MakeReady(entry);
  } else {
    SetTimer(entry, at + wait, State::kWaiting);
  }
}

void Group::DeadLetter(Entry& entry) {
  entry.state = State::kDeadLettering;
  Message message = entry.stored->message;
  auto set = [&](std::string_view name, std::string value) {
    message.headers[std::string(name)] = std::move(value);
  };
  set(kHeaderDlqTopic, topic_.name);
  set(kHeaderDlqGroup, name_);
  set(kHeaderDlqPartition, std::to_string(entry.partition.value()));
  set(kHeaderDlqOffset, std::to_string(entry.offset.value()));
  set(kHeaderDlqAttempts, std::to_string(entry.attempts));
  set(kHeaderDlqLastError, HeaderSafe(entry.last_error));
  set(kHeaderDlqFirstFailure, FormatRfc3339(Timestamp(entry.first_failure->time_since_epoch())));
  set(kHeaderDlqLastFailure, FormatRfc3339(Timestamp(entry.last_failure->time_since_epoch())));
  broker_.SendToDeadLetters(*this, config_.dead_letter_topic, std::move(message), entry.partition,
                            entry.offset, epoch_);
}

void Group::OnDeadLettered(PartitionId partition, Offset offset, std::uint64_t epoch,
                           const Status& status) {
  if (status.ok()) ++dead_lettered_;  // stored, even if a Seek made it moot
  if (epoch != epoch_) return;
  Key key{partition.value(), offset.value()};
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second->state != State::kDeadLettering) return;
  if (!status.ok()) {
    log::Error("could not store a dead letter; retrying",
               {{"topic", topic_.name},
                {"group", name_},
                {"dead_letter_topic", config_.dead_letter_topic},
                {"error", status.ToString()}});
    it->second->retry_dead_letter = true;
    SetTimer(*it->second, broker_.clock().Now() + config_.backoff.front(), State::kWaiting);
    return;
  }
  Complete(key);
  Pump();
}

void Group::Complete(Key key) {
  auto it = entries_.find(key);
  JUNCTION_CHECK(it != entries_.end()) << "completing an entry the group does not hold";
  // Out of the table first: NextOfKey below may add to it.
  std::unique_ptr<Entry> gone = std::move(it->second);
  entries_.erase(it);
  const Entry& entry = *gone;
  cursors_[key.first].acked.Add(entry.offset);
  if (config_.ordered && !ephemeral_) {
    std::string message_key = KeyOf(entry);
    auto queue = keys_.find(message_key);
    if (!message_key.empty() && queue != keys_.end()) {
      JUNCTION_CHECK(queue->second.front() == key) << "ordered key completed out of order";
      queue->second.pop_front();
      if (queue->second.empty()) {
        keys_.erase(queue);
      } else if (!NextOfKey(message_key)) {
        heads_to_load_.insert(message_key);  // Fill tries again
      }
    }
  }
  if (!ephemeral_) broker_.MarkDirty(*this);
  if (spare_entries_.size() < kSpareEntries) {
    *gone = Entry();  // lets go of the message now
    spare_entries_.push_back(std::move(gone));
  }
}

std::unique_ptr<Group::Entry> Group::BoxEntry(Entry&& entry) {
  if (spare_entries_.empty()) return std::make_unique<Entry>(std::move(entry));
  std::unique_ptr<Entry> box = std::move(spare_entries_.back());
  spare_entries_.pop_back();
  *box = std::move(entry);
  return box;
}

Status Group::Ack(const DeliveryRef& ref) {
  if (ephemeral_) return OkStatus();
  JUNCTION_ASSIGN_OR_RETURN(Entry * entry, FindAttempt(ref));
  Release(*entry);
  Complete(Key{ref.partition.value(), ref.offset.value()});
  broker_.PumpOrDefer(*this);
  return OkStatus();
}

Status Group::Nack(const DeliveryRef& ref, std::optional<Duration> delay, std::string error) {
  if (ephemeral_) return OkStatus();
  if (delay && *delay < Duration::zero()) return InvalidArgumentError("nack delay is negative");
  JUNCTION_ASSIGN_OR_RETURN(Entry * entry, FindAttempt(ref));
  Release(*entry);
  Fail(*entry, delay, error.empty() ? "nacked" : std::move(error), broker_.clock().Now());
  broker_.PumpOrDefer(*this);
  return OkStatus();
}

Status Group::InProgress(const DeliveryRef& ref) {
  if (ephemeral_) return OkStatus();
  JUNCTION_ASSIGN_OR_RETURN(Entry * entry, FindAttempt(ref));
  // A long attempt: its message is decoded now rather than its batch held
  // for as long (kept when the record does not decode: Fail skips it).
  if (entry->stored == nullptr) (void)Materialize(*entry);
  SetTimer(*entry, broker_.clock().Now() + config_.ack_deadline, State::kInFlight);
  return OkStatus();
}

std::optional<MonoTime> Group::ProcessTimers(MonoTime now) {
  while (!timers_.empty() && timers_.front().when <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), Later{});
    const Timer timer = timers_.back();
    timers_.pop_back();
    if (!IsCurrent(timer)) continue;
    const MonoTime when = timer.when;
    Entry& entry = *entries_.at(timer.key);
    if (entry.state == State::kWaiting) {
      if (entry.retry_dead_letter) {
        entry.retry_dead_letter = false;
        DeadLetter(entry);
      } else {
        MakeReady(entry);
      }
    } else if (entry.state == State::kInFlight) {
      Release(entry);
      Fail(entry, std::nullopt, "ack deadline exceeded", when);
    }
  }
  DropStaleTimers();
  return NextTimer();
}

std::optional<MonoTime> Group::NextTimer() const {
  // May be a stale timer's time (an entry acked since): the broker then
  // wakes early, and ProcessTimers finds nothing due.
  if (timers_.empty()) return std::nullopt;
  return timers_.front().when;
}

GroupInfo Group::Describe() const {
  GroupInfo info;
  info.topic = topic_.name;
  info.group = name_;
  info.members = static_cast<std::uint32_t>(members_.size());
  info.in_flight = in_flight_;
  info.dead_lettered = dead_lettered_;
  info.dropped_by_retention = dropped_by_retention_;
  info.dead_letter_topic = config_.dead_letter_topic;
  for (std::size_t p = 0; p < cursors_.size(); ++p) {
    const AckSet& acked = cursors_[p].acked;
    Offset end = topic_.partitions[p]->high_watermark();
    if (end > acked.floor()) {
      info.backlog += (end - acked.floor()) - acked.acked_above_floor();
    }
  }
  return info;
}

}  // namespace junction::broker
