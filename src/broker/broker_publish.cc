// The publish side of Broker: validation, dedupe, placement, storing in
// the partition logs, and rebuilding the dedupe window at open.
#include "broker/broker.h"

#include <algorithm>
#include <limits>
#include <map>
#include <span>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/smart_ptr/make_local_shared.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "broker/message_codec.h"
#include "broker/partitioner.h"
#include "codec/record_batch.h"
#include "junction/log.h"

namespace junction::broker {
namespace asio = boost::asio;

namespace {

// Messages of one publish are cut into batches of about this size.
constexpr std::size_t kBatchTarget = 1u << 20;
// What a stored message costs besides its id and data, about (the other
// attributes, the record's framing): for the keyless placement's byte count.
constexpr std::size_t kRecordOverhead = 40;

std::int64_t ToMillis(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// Not in the coroutine: GCC 12 mishandles temporaries of a conditional
// expression inside coroutines.
Status TooBig(std::size_t size, std::uint64_t max_bytes) {
  return ResourceExhaustedError("message of " + std::to_string(size) +
                                " bytes exceeds max_message_bytes (" + std::to_string(max_bytes) +
                                ")");
}

Status ValidateMessages(std::span<const Message> messages, std::uint64_t max_bytes) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (Status s = messages[i].Validate(); !s.ok()) {
      return s.WithContext(messages.size() == 1 ? "message" : "message " + std::to_string(i));
    }
    std::size_t size = MessageSize(messages[i]);
    if (size > max_bytes) return TooBig(size, max_bytes);
  }
  return OkStatus();
}

Status CheckOptions(const PublishOptions& options) {
  if (options.deliver_at && options.delay) {
    return InvalidArgumentError("set deliver_at or delay, not both");
  }
  if (options.delay && *options.delay < Duration::zero()) {
    return InvalidArgumentError("delay is negative");
  }
  return OkStatus();
}

// Whether a group of `topic` may take partition `p`'s next batch from its
// tail cache: one reading inside the cache, or (the cache empty) caught up
// with the log. A group further behind reads the log, and by the time it
// gets there the cache has moved on: holding the batch for it (a copy of
// its bytes with keep_stored_batches, a count on each message) is wasted.
// Under a pipelined publisher that outruns its consumers, that is every
// batch.
bool TailWanted(Topic& topic, std::uint32_t p) {
  const TailCache& tail = topic.tails[p];
  const Offset from = tail.empty() ? topic.partitions[p]->high_watermark() : tail.begin();
  bool wanted = false;
  topic.ForEachGroup([&](Group& group) { wanted |= group.NextRead(PartitionId(p)) >= from; });
  return wanted;
}

}  // namespace

Status Broker::RebuildDedupe(Topic& topic) {
  if (!topic.dedupe.enabled()) return OkStatus();
  std::int64_t since = NowMs() - ToMillis(topic.options.dedupe_window);
  // Every partition's ids, then added oldest first: the window keeps its
  // ids in the order added and lets them go from the front.
  struct Stored {
    std::int64_t ms;
    std::uint64_t hash;
    DedupeWindow::Hit hit;
  };
  std::vector<Stored> ids;
  for (std::uint32_t p = 0; p < topic.partitions.size(); ++p) {
    storage::Log& log = *topic.partitions[p];
    JUNCTION_ASSIGN_OR_RETURN(Offset at, log.OffsetForTime(since));
    while (at < log.high_watermark()) {
      JUNCTION_ASSIGN_OR_RETURN(storage::ReadResult read, log.Read(at, kBatchTarget));
      std::span<const std::byte> rest(read.batches);
      while (!rest.empty()) {
        JUNCTION_ASSIGN_OR_RETURN(codec::BatchHeader header, codec::ParseBatchHeader(rest));
        JUNCTION_ASSIGN_OR_RETURN(std::vector<codec::Record> records,
                                  codec::DecodeRecords(rest.first(header.batch_length)));
        rest = rest.subspan(header.batch_length);
        for (const codec::Record& record : records) {
          if (record.offset < at || record.timestamp_ms < since) continue;
          Result<StoredMessage> stored = DecodeMessage(record);
          if (!stored.ok()) continue;  // Group::FillPartition reports it
          ids.push_back({record.timestamp_ms,
                         DedupeWindow::Hash(stored->message.id),
                         {PartitionId(p), record.offset}});
        }
      }
      at = read.next_offset;
    }
  }
  std::stable_sort(ids.begin(), ids.end(),
                   [](const Stored& a, const Stored& b) { return a.ms < b.ms; });
  for (const Stored& id : ids) topic.dedupe.Add(id.hash, id.hit, id.ms);
  return OkStatus();
}

bool Broker::StoredIdIs(Topic& topic, const DedupeWindow::Hit& hit, std::string_view id) {
  storage::Log& log = *topic.partitions[hit.partition.value()];
  Result<storage::ReadResult> read = log.Read(hit.offset, 1);
  if (!read.ok()) return false;  // gone (retention): cannot be a duplicate any more
  std::span<const std::byte> rest(read->batches);
  Result<codec::BatchHeader> header = codec::ParseBatchHeader(rest);
  if (!header.ok()) return false;
  Result<std::vector<codec::Record>> records =
      codec::DecodeRecords(rest.first(header->batch_length));
  if (!records.ok()) return false;
  for (const codec::Record& record : *records) {
    if (record.offset != hit.offset) continue;
    Result<StoredMessage> stored = DecodeMessage(record);
    return stored.ok() && stored->message.id == id;
  }
  return false;
}

Status Broker::CheckPublish(std::string_view topic, std::span<const Message> messages,
                            const PublishOptions& options) const {
  JUNCTION_RETURN_IF_ERROR(CheckTopic(topic));
  return CheckMessages(messages, options);
}

Status Broker::CheckTopic(std::string_view topic) const {
  if (closed_) return FailedPreconditionError("the bus is closed");
  return ValidateName("topic", topic);
}

Status Broker::CheckMessages(std::span<const Message> messages,
                             const PublishOptions& options) const {
  JUNCTION_RETURN_IF_ERROR(CheckOptions(options));
  return ValidateMessages(messages, options_.max_message_bytes);
}

asio::awaitable<Result<std::vector<PublishResult>>> Broker::Publish(
    std::string topic_name, std::vector<Message> messages, PublishOptions options,
    std::vector<std::byte> received) {
  JUNCTION_CO_RETURN_IF_ERROR(CheckPublish(topic_name, messages, options));
  std::vector<std::shared_ptr<StoredMessage>> boxed;
  boxed.reserve(messages.size());
  for (Message& message : messages) {
    boxed.push_back(std::make_shared<StoredMessage>(std::move(message)));
  }
  co_return co_await PublishChecked(std::move(topic_name), std::move(boxed), options,
                                    std::move(received));
}

asio::awaitable<Result<std::vector<PublishResult>>> Broker::PublishDecoded(
    std::string topic_name, std::vector<std::shared_ptr<StoredMessage>> messages,
    PublishOptions options, std::vector<std::byte> received) {
  JUNCTION_CO_RETURN_IF_ERROR(CheckTopic(topic_name));
  JUNCTION_CO_RETURN_IF_ERROR(CheckOptions(options));
  for (const std::shared_ptr<StoredMessage>& message : messages) {
    if (message->size() > options_.max_message_bytes) {
      co_return TooBig(message->size(), options_.max_message_bytes);
    }
  }
  co_return co_await PublishChecked(std::move(topic_name), std::move(messages), options,
                                    std::move(received));
}

asio::awaitable<Result<std::vector<PublishResult>>> Broker::PublishChecked(
    std::string topic_name, std::vector<std::shared_ptr<StoredMessage>> messages,
    PublishOptions options, std::vector<std::byte> received) {
  if (closed_) co_return FailedPreconditionError("the bus is closed");
  std::optional<std::int64_t> deliver_at_ms;
  if (options.delay) deliver_at_ms = NowMs() + ToMillis(*options.delay);
  if (options.deliver_at) {
    deliver_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        options.deliver_at->time_since_epoch())
                        .count();
  }
  JUNCTION_CO_ASSIGN_OR_RETURN(
      Topic * topic,
      co_await FindOrCreate(topic_name, options_.auto_create_topics, options_.default_topic));
  if (options.partition && options.partition->value() >= topic->partitions.size()) {
    co_return InvalidArgumentError("partition " + std::to_string(options.partition->value()) +
                                   " does not exist; topic '" + topic_name + "' has " +
                                   std::to_string(topic->partitions.size()));
  }
  co_return co_await Store(*topic, std::move(messages), deliver_at_ms, options.partition,
                           std::move(received));
}

asio::awaitable<Result<std::vector<PublishResult>>> Broker::Store(
    Topic& topic, std::vector<std::shared_ptr<StoredMessage>> owned,
    std::optional<std::int64_t> deliver_at_ms, std::optional<PartitionId> partition,
    std::vector<std::byte> received) {
  ++topic.stores_in_flight;  // DeleteTopic waits for it
  struct Done {
    Topic& topic;
    ~Done() { --topic.stores_in_flight; }
  } done_guard{topic};
  const std::size_t n = owned.size();
  std::vector<PublishResult> results(n);
  std::vector<bool> done(n, false);
  topic.dedupe.Expire(NowMs());
  // Each id's window hash, computed once (dedupe on only).
  std::vector<std::uint64_t> hashes;
  if (topic.dedupe.enabled()) hashes.resize(n);
  // The window's buckets of every id start loading at once (each is a
  // cache miss on a large window), before the first lookup waits for one.
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    hashes[i] = DedupeWindow::Hash(owned[i]->message.id);
    topic.dedupe.Prefetch(hashes[i]);
  }
  // Ids already stored, or being stored by a publish in flight.
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    while (true) {
      std::uint64_t hash = hashes[i];
      if (std::optional<DedupeWindow::Hit> hit = topic.dedupe.Find(hash)) {
        if (StoredIdIs(topic, *hit, owned[i]->message.id)) {
          results[i] = {hit->partition, hit->offset, true};
          done[i] = true;
          break;
        }
        topic.dedupe.Forget(hash);  // another id with the same hash
      }
      DedupeWindow::PendingPtr pending = topic.dedupe.FindPending(hashes[i], owned[i]->message.id);
      if (!pending) break;
      if (!pending->waiters) {
        pending->waiters = std::make_unique<asio::steady_timer>(shard_, MonoTime::max());
      }
      boost::system::error_code ec;
      while (!pending->done) {
        co_await pending->waiters->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      if (pending->result) {
        results[i] = {pending->result->partition, pending->result->offset, true};
        done[i] = true;
        break;
      }
    }
  }
  // Place the rest; a repeated id within this call is a duplicate of its first.
  std::map<std::uint32_t, std::vector<std::size_t>> by_partition;
  boost::unordered_flat_map<std::string_view, std::size_t> first_of;  // unused for one message
  if (n > 1) first_of.reserve(n);
  std::vector<std::optional<std::size_t>> duplicate_of(n);
  const auto count = static_cast<std::uint32_t>(topic.partitions.size());
  // Where each message goes (kKeyless: wherever this call's keyless ones go).
  constexpr std::uint32_t kKeyless = std::numeric_limits<std::uint32_t>::max();
  std::vector<std::uint32_t> place(n, kKeyless);
  std::size_t keyless_bytes = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (done[i]) continue;
    owned[i]->deliver_at_ms = deliver_at_ms;
    if (n > 1) {
      auto [it, inserted] = first_of.emplace(owned[i]->message.id, i);
      if (!inserted) {
        duplicate_of[i] = it->second;
        continue;
      }
    }
    const Message& m = owned[i]->message;
    if (partition) {
      place[i] = partition->value();
    } else if (m.key) {
      place[i] = PartitionForKey(*m.key, count).value();
    } else {
      keyless_bytes += kRecordOverhead + m.id.size() + m.data.size();
    }
  }
  // The keyless messages of one call stay together: one partition's group
  // commit (one fdatasync) takes them all (StickyPartitioner).
  const std::uint32_t keyless_partition =
      keyless_bytes > 0 ? topic.keyless.Next(count, keyless_bytes).value() : 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (done[i] || duplicate_of[i]) continue;
    by_partition[place[i] == kKeyless ? keyless_partition : place[i]].push_back(i);
  }
  // By the index of the (first) message with the id.
  std::vector<std::pair<std::size_t, DedupeWindow::PendingPtr>> pendings;
  if (topic.dedupe.enabled()) {
    std::size_t placed = 0;
    for (const auto& [p, indexes] : by_partition) placed += indexes.size();
    // One allocation for all of them; each pointer shares the block.
    auto block = boost::make_local_shared<std::vector<DedupeWindow::Pending>>(placed);
    pendings.reserve(placed);
    for (auto& [p, indexes] : by_partition) {
      for (std::size_t i : indexes) {
        DedupeWindow::PendingPtr pending(block, &(*block)[pendings.size()]);
        pending->id = owned[i]->message.id;
        topic.dedupe.AddPending(hashes[i], pending);
        pendings.emplace_back(i, std::move(pending));
      }
    }
  }
  const std::int64_t now_ms = NowMs();
  // Every partition's batches are appended at once (each log group-commits
  // its own), then awaited together: partitions never wait for each other.
  struct Chunk {
    std::uint32_t partition = 0;
    const std::vector<std::size_t>* indexes = nullptr;
    std::size_t begin = 0;
    std::size_t end = 0;
    std::vector<std::byte> batch;
    std::optional<Result<storage::AppendResult>> appended;
    // A copy of `batch` for the tail cache (BrokerOptions::keep_stored_batches).
    std::shared_ptr<StoredBatch> kept;
    bool to_tail = false;  // TailWanted when appended
  };
  std::vector<Chunk> chunks;
  Status status;
  // The batch as it came, when it holds exactly what goes to one partition
  // (every message, in order: none was a duplicate) and needs no broker field.
  const bool as_received = !received.empty() && by_partition.size() == 1 &&
                           by_partition.begin()->second.size() == n && !deliver_at_ms &&
                           received.size() <= kBatchTarget;
  if (as_received) {
    auto& [p, indexes] = *by_partition.begin();
    for (std::size_t i : indexes) owned[i]->timestamp_ms = now_ms;
    codec::StampBatchTime(received, now_ms);
    chunks.push_back(Chunk{p, &indexes, 0, n, std::move(received), std::nullopt, nullptr});
  }
  for (auto& [p, indexes] : by_partition) {
    if (as_received) break;
    for (std::size_t begin = 0; begin < indexes.size() && status.ok();) {
      codec::RecordBatchBuilder builder;
      std::size_t end = begin;
      while (end < indexes.size() &&
             (end == begin || builder.uncompressed_bytes() < kBatchTarget)) {
        owned[indexes[end]]->timestamp_ms = now_ms;
        AddMessage(builder, owned[indexes[end]]->message, now_ms, deliver_at_ms);
        ++end;
      }
      Result<std::vector<std::byte>> batch = builder.Build();
      if (!batch.ok()) {
        status = batch.status();
        break;
      }
      chunks.push_back(Chunk{p, &indexes, begin, end, std::move(*batch), std::nullopt, nullptr});
      begin = end;
    }
  }
  if (status.ok() && !chunks.empty()) {
    std::size_t remaining = chunks.size();
    // Called by the last append's completion: resumes this coroutine right
    // there, as the log acknowledges (a timer's cancel would queue it behind
    // whatever else waits on the shard, and the next store with it).
    std::optional<asio::any_completion_handler<void()>> all_appended;
    for (Chunk& chunk : chunks) {
      chunk.to_tail = TailWanted(topic, chunk.partition);
      if (chunk.to_tail && options_.keep_stored_batches) {
        chunk.kept = std::make_shared<StoredBatch>(
            Offset(0), static_cast<std::uint32_t>(chunk.end - chunk.begin), chunk.batch);
      }
      // The completion runs as the log acknowledges the batch, before any
      // group can see the new high watermark: the tail cache has it first.
      topic.partitions[chunk.partition]->AsyncAppend(
          std::move(chunk.batch), [&chunk, &remaining, &all_appended, &topic, &owned](auto result) {
            if (result.ok() && chunk.to_tail) {
              std::vector<std::shared_ptr<const StoredMessage>> stored;
              stored.reserve(chunk.end - chunk.begin);
              for (std::size_t k = chunk.begin; k < chunk.end; ++k) {
                stored.push_back(owned[(*chunk.indexes)[k]]);
              }
              if (chunk.kept != nullptr) {
                chunk.kept->base_offset = result->base_offset;
                codec::SetBaseOffset(chunk.kept->bytes, result->base_offset);
              }
              topic.tails[chunk.partition].Append(result->base_offset, std::move(stored),
                                                  std::move(chunk.kept));
            }
            chunk.appended = std::move(result);
            // (Never inside AsyncAppend: the log completes on a later turn,
            // by when this coroutine waits.)
            if (--remaining == 0 && all_appended) std::move (*all_appended)();
          });
    }
    // Named, not a temporary in the co_await (GCC 12 coroutine bugs).
    auto wait_for_all = [&all_appended](auto handler) { all_appended.emplace(std::move(handler)); };
    if (remaining > 0) {
      co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(wait_for_all,
                                                                           asio::use_awaitable);
    }
    for (Chunk& chunk : chunks) {
      if (!chunk.appended->ok()) {
        if (status.ok()) {
          status = chunk.appended->status().WithContext("topic '" + topic.name + "' partition " +
                                                        std::to_string(chunk.partition));
        }
        continue;
      }
      for (std::size_t k = chunk.begin; k < chunk.end; ++k) {
        results[(*chunk.indexes)[k]] = {PartitionId(chunk.partition),
                                        (*chunk.appended)->base_offset + (k - chunk.begin), false};
        done[(*chunk.indexes)[k]] = true;
      }
    }
  }
  for (const auto& [i, pending] : pendings) {
    if (done[i]) topic.dedupe.Prefetch(hashes[i]);
  }
  for (auto& [i, pending] : pendings) {
    topic.dedupe.RemovePending(hashes[i], pending.get());
    if (done[i]) {
      const PublishResult& r = results[i];
      topic.dedupe.Add(hashes[i], {r.partition, r.offset}, now_ms);
      pending->result = DedupeWindow::Hit{r.partition, r.offset};
    }
    pending->done = true;
    if (pending->waiters) pending->waiters->cancel();
  }
  if (topic.dedupe.evicted() > 0 && !topic.dedupe_eviction_logged) {
    topic.dedupe_eviction_logged = true;
    log::Warn("dedupe window full: ids leave it before their time",
              {{"topic", topic.name}, {"max_ids", std::uint64_t{options_.max_dedupe_ids}}});
  }
  // Whatever was stored is deliverable, even when a later batch failed.
  if (!by_partition.empty()) SchedulePump(topic);
  if (!status.ok()) co_return status;
  for (std::size_t i = 0; i < n; ++i) {
    if (duplicate_of[i]) {
      results[i] = results[*duplicate_of[i]];
      results[i].duplicate = true;
    }
  }
  co_return results;
}

void Broker::PumpAll(Topic& topic) {
  topic.ForEachGroup([](Group& group) { group.Pump(); });
  // Every group has read what it could: the tail caches keep only what some
  // group has still to read from them. A group whose next offset is below a
  // cache (held back, or new from earliest) reads the log and does not keep
  // it: by the time it gets there, the cache has moved on.
  for (std::uint32_t p = 0; p < topic.tails.size(); ++p) {
    TailCache& tail = topic.tails[p];
    if (tail.empty()) continue;
    std::optional<Offset> lowest;
    topic.ForEachGroup([&](Group& group) {
      Offset next = group.NextRead(PartitionId(p));
      if (next >= tail.begin() && (!lowest || next < *lowest)) lowest = next;
    });
    if (lowest) {
      tail.TrimBefore(*lowest);
    } else {
      tail.Clear();
    }
  }
}

// Why two turns later rather than now: when a store completes, its
// publishers' continuations run first (right after this coroutine returns, or
// one turn later on their own executors) and send their next messages to the
// shard's mailbox; the mailbox's drain, queued in that turn, hands them to the
// log, whose next fdatasync then starts before this batch's delivery work
// (decode, dispatch, handing out, acks) runs, and overlaps it instead of
// waiting for it (bench/README.md has the figures). Next() runs a scheduled pump of
// its topic before it looks, so a consumer polling right after a publish
// completed still finds the message, and every group of the topic (an
// ephemeral one too) reads it at the same moment.
void Broker::SchedulePump(Topic& topic) {
  if (topic.pump_scheduled) return;
  topic.pump_scheduled = true;
  auto pump = [this, alive = std::weak_ptr<const bool>(alive_), topic = &topic] {
    if (alive.expired()) return;
    topic->pump_scheduled = false;
    if (closed_) return;
    PumpAll(*topic);
  };
  asio::post(shard_, [this, alive = std::weak_ptr<const bool>(alive_), pump = std::move(pump)] {
    if (alive.expired()) return;
    asio::post(shard_, std::move(pump));
  });
}

}  // namespace junction::broker
