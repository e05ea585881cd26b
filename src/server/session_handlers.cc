// The requests of a session that are answered later (session.h): each runs
// as a coroutine of its own on the session's shard.

#include <algorithm>
#include <span>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/message_codec.h"
#include "codec/record_batch.h"
#include "junction/log.h"
#include "server/session.h"
#include "transport/embedded_bus.h"

namespace junction::server {
namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
namespace c = codec;

namespace {

// Room kept free in a DELIVER frame for its headers.
constexpr std::size_t kDeliverSlack = 4u << 10;

}  // namespace

awaitable<void> Session::HandleCreateTopic(std::uint32_t correlation, std::string topic,
                                           TopicOptions options) {
  Status s = co_await context_->brokers->Create(topic, options, Deadline::Infinite());
  AnswerStatus(correlation, s);
}

awaitable<bool> Session::CreateMissing(const Status& status, const std::string& topic) {
  if (status.code() != StatusCode::kNotFound || !auto_create_) co_return false;
  Status created = co_await context_->brokers->Create(topic, default_topic_, Deadline::Infinite());
  // AlreadyExists: another connection created it (with other options) meanwhile.
  co_return created.ok() || created.code() == StatusCode::kAlreadyExists;
}

awaitable<void> Session::HandlePublish(std::uint32_t correlation, std::string topic,
                                       std::vector<std::shared_ptr<broker::StoredMessage>> messages,
                                       std::vector<std::byte> batch, PublishOptions options) {
  if (std::uint64_t deleted = context_->topics_deleted.load(); deleted != known_as_of_) {
    known_topics_.clear();  // one of them may be gone
    known_as_of_ = deleted;
  }
  if (messages.size() == 1) {
    // Kept until stored: a publish to a missing topic is tried again.
    bool retry = auto_create_ && !known_topics_.contains(topic);
    Message copy = retry ? messages.front()->message : Message{};
    Result<PublishResult> r = co_await BusFor(topic).Publish(
        topic, std::move(messages.front()->message), options, Deadline::Infinite());
    // (For again: the topic is now where the create put it.)
    if (!r.ok() && retry && co_await CreateMissing(r.status(), topic)) {
      r = co_await BusFor(topic).Publish(topic, std::move(copy), options, Deadline::Infinite());
    }
    if (r.ok() && retry && known_topics_.size() < 10'000) known_topics_.insert(topic);
    if (!r.ok()) {
      SendError(correlation, r.status());
      co_return;
    }
    c::FrameWriter w = writer();
    c::BeginPublished(w, correlation, 1);
    c::EncodePublishedResult(w, *r);
    w.End();
    Flush();
    co_return;
  }
  bool retry = auto_create_ && !known_topics_.contains(topic);
  // The boxes again (the first try is over, and stored none of them).
  std::vector<std::shared_ptr<broker::StoredMessage>> copy =
      retry ? messages : std::vector<std::shared_ptr<broker::StoredMessage>>{};
  std::vector<std::byte> batch_copy = retry ? batch : std::vector<std::byte>{};
  Result<std::vector<PublishResult>> r = co_await transport::PublishReceived(
      BusFor(topic), topic, std::move(messages), std::move(batch), options);
  if (!r.ok() && retry && co_await CreateMissing(r.status(), topic)) {
    r = co_await transport::PublishReceived(BusFor(topic), topic, std::move(copy),
                                            std::move(batch_copy), options);
  }
  if (r.ok() && retry && known_topics_.size() < 10'000) known_topics_.insert(topic);
  if (!r.ok()) {
    SendError(correlation, r.status());
    co_return;
  }
  c::FrameWriter w = writer();
  c::BeginPublished(w, correlation, r->size());
  for (const PublishResult& p : *r) c::EncodePublishedResult(w, p);
  w.End();
  Flush();
}

awaitable<void> Session::HandleSubscribe(std::uint32_t correlation, std::string topic,
                                         SubscribeOptions options) {
  bool ephemeral = options.group.empty();
  if (Status placed = co_await context_->brokers->PlaceDeadLetters(topic, options); !placed.ok()) {
    SendError(correlation, placed);
    co_return;
  }
  Result<std::unique_ptr<Subscription>> sub =
      co_await BusFor(topic).Subscribe(topic, options, Deadline::Infinite());
  if (!sub.ok() && co_await CreateMissing(sub.status(), topic)) {
    sub = co_await BusFor(topic).Subscribe(topic, std::move(options), Deadline::Infinite());
  }
  if (!sub.ok()) {
    SendError(correlation, sub.status());
    co_return;
  }
  if (closed_ || going_away_) {
    (void)co_await (*sub)->Close();
    SendError(correlation, UnavailableError("junctiond is shutting down"));
    co_return;
  }
  auto stream = std::make_shared<Stream>();
  stream->id = next_stream_++;
  stream->ephemeral = ephemeral;
  stream->subscription = std::move(*sub);
  stream->bus = &BusFor(topic);
  streams_.emplace(stream->id, stream);
  c::FrameWriter w = writer();
  c::EncodeSubscribed(w, correlation, stream->id);
  Flush();
}

awaitable<void> Session::HandleFetch(std::uint32_t correlation, std::shared_ptr<Stream> stream,
                                     std::size_t max_messages, Deadline deadline) {
  if (stream->responder) {
    Result<std::unique_ptr<IncomingRequest>> got = co_await stream->responder->Next(deadline);
    stream->fetching = false;
    if (!got.ok()) {
      SendError(correlation, got.status());
      co_return;
    }
    Result<std::vector<std::byte>> batch = broker::EncodeMessageBatch(
        std::span(&(*got)->message(), 1), WallMs(*context_->clock), c::kMaxBatchBytesLimit);
    if (!batch.ok()) {
      SendError(correlation, batch.status());
      co_return;
    }
    std::uint64_t id = next_request_++;
    requests_.emplace(id, std::move(*got));
    c::FrameWriter w = writer();
    c::BeginRequestIn(w, correlation, stream->id, id);
    w.Raw(*batch);
    w.End();
    Flush();
    co_return;
  }
  // Again when every delivery got was skipped (not a message: SendDeliveries).
  for (bool sent = false; !sent;) {
    std::vector<Delivery> deliveries;
    std::vector<transport::StoredRef> stored;
    if (stream->pending.empty()) {
      // A version 1 client takes no stored batch: its deliveries come whole.
      Result<transport::StoredDeliveries> got;
      if (version_ >= 2) {
        got = co_await transport::NextBatchStored(*stream->subscription, max_messages, deadline);
      } else {
        Result<std::vector<Delivery>> whole =
            co_await stream->subscription->NextBatch(max_messages, deadline);
        if (whole.ok()) {
          got = transport::StoredDeliveries{std::move(*whole), {}};
        } else {
          got = whole.status();
        }
      }
      if (!got.ok()) {
        stream->fetching = false;
        SendError(correlation, got.status());
        co_return;
      }
      deliveries = std::move(got->deliveries);
      stored = std::move(got->stored);
      stored.resize(deliveries.size());
    } else {
      while (!stream->pending.empty() && deliveries.size() < max_messages) {
        deliveries.push_back(std::move(stream->pending.front().delivery));
        stored.push_back(std::move(stream->pending.front().stored));
        stream->pending.pop_front();
      }
    }
    stream->fetching = false;
    sent = SendDeliveries(correlation, *stream, std::move(deliveries), std::move(stored));
    if (!sent) stream->fetching = true;
  }
}

bool Session::SendDeliveries(std::uint32_t correlation, Stream& stream,
                             std::vector<Delivery> deliveries,
                             std::vector<transport::StoredRef> stored) {
  // As many as fit the peer's frame limit; the rest wait for the next FETCH.
  const std::size_t room =
      peer_max_frame_ > kDeliverSlack * 2 ? peer_max_frame_ - kDeliverSlack : peer_max_frame_;
  // The stored batches of this fetch, one per range of offsets however many
  // copies the deliveries hold (the tail's, one read back from the log).
  // Of each, the run of records from the fetch's lowest offset in its range
  // to its highest goes out as stored when the fetch has at least half of
  // that run: the whole batch when the run is all of it, else a slice (its
  // records' bytes unchanged under a header of its own, codec::SliceBatch;
  // a compressed batch goes whole or not at all). Every delivery of the
  // frame in that run is then served from it, first deliveries or not (the
  // client takes each record of a stored batch that matches a delivery:
  // wire.md, DELIVER); the others are encoded.
  struct Candidate {
    const broker::StoredBatch* batch = nullptr;
    std::shared_ptr<const broker::StoredBatch> owner;  // of `batch`
    PartitionId partition;
    Offset lowest;                      // of this fetch's deliveries in its range
    Offset highest;                     // likewise
    std::uint32_t lowest_position = 0;  // where `lowest` starts in the batch, when known
    std::size_t uses = 0;
    bool chosen = false;
    bool sent = false;
    std::vector<std::byte> slice;  // when chosen and not whole
    std::span<const std::byte> bytes() const {
      return slice.empty() ? std::span<const std::byte>(batch->bytes) : slice;
    }
  };
  std::vector<Candidate> candidates;
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  auto covering = [&candidates](PartitionId p, Offset o) {
    for (std::size_t k = 0; k < candidates.size(); ++k) {
      const broker::StoredBatch& b = *candidates[k].batch;
      if (candidates[k].partition == p && o >= b.base_offset &&
          o.value() - b.base_offset.value() < b.records) {
        return k;
      }
    }
    return kNone;
  };
  if (version_ >= 2) {
    for (std::size_t i = 0; i < deliveries.size(); ++i) {
      const broker::StoredBatch* b = stored[i].batch.get();
      if (b != nullptr && covering(deliveries[i].partition(), deliveries[i].offset()) == kNone) {
        Candidate& c = candidates.emplace_back();
        c.batch = b;
        c.owner = stored[i].batch;
        c.partition = deliveries[i].partition();
        c.lowest = deliveries[i].offset();
        c.highest = deliveries[i].offset();
      }
    }
  }
  std::vector<std::size_t> cover(deliveries.size(), kNone);
  if (!candidates.empty()) {
    for (std::size_t i = 0; i < deliveries.size(); ++i) {
      cover[i] = covering(deliveries[i].partition(), deliveries[i].offset());
      if (cover[i] == kNone) continue;
      Candidate& c = candidates[cover[i]];
      ++c.uses;
      if (deliveries[i].offset() <= c.lowest) {
        c.lowest = deliveries[i].offset();
        // (A record entry's, in this very batch: a decoded message's
        // delivery knows none, and another copy's may be laid out otherwise.)
        const bool known = stored[i].message == nullptr && stored[i].batch.get() == c.batch;
        c.lowest_position = known ? stored[i].position : 0;
      }
      c.highest = std::max(c.highest, deliveries[i].offset());
    }
    for (Candidate& c : candidates) {
      const broker::StoredBatch& b = *c.batch;
      const Offset last(b.base_offset.value() + b.records - 1);
      const std::uint64_t run = c.highest.value() - c.lowest.value() + 1;
      const bool whole = c.lowest == b.base_offset && c.highest == last;
      if (!whole && c.uses * 2 >= run) {
        std::uint32_t from = c.lowest_position;
        if (from == 0 && stream.last_slice.at == c.batch && !stream.last_slice.batch.expired() &&
            stream.last_slice.next == c.lowest) {
          from = stream.last_slice.position;
        }
        std::uint32_t end = 0;
        Result<std::vector<std::byte>> slice =
            c::SliceBatch(b.bytes, c.lowest, c.highest, from, &end);
        if (slice.ok()) {
          c.slice = std::move(*slice);
          stream.last_slice = {c.owner, c.batch, c.highest + 1, end};
        } else if (slice.status().code() != StatusCode::kInvalidArgument) {
          log::Warn("a stored batch could not be sliced; its deliveries are encoded",
                    {{"error", slice.status().ToString()}});
        }
      }
      if (c.slice.empty()) {
        // Whole, or nothing: a batch that could not be sliced (compressed)
        // goes whole only when the fetch has half of all its records.
        c.lowest = b.base_offset;
        c.highest = last;
        c.chosen = c.uses * 2 >= b.records;
      } else {
        c.chosen = true;
      }
      c.chosen = c.chosen && c.bytes().size() + kDeliverSlack <= room;
    }
  }
  // A delivery the broker never decoded (a record of a stored batch) that
  // goes out encoded after all: its message, decoded here. One that is not
  // a message is left out (in flight, its attempt fails and the group skips
  // it: broker::Group::Fail).
  for (std::size_t i = 0; i < deliveries.size();) {
    const bool encoded = cover[i] == kNone || !candidates[cover[i]].chosen;
    if (!encoded || stored[i].message != nullptr || stored[i].batch == nullptr) {
      ++i;
      continue;
    }
    Result<std::shared_ptr<broker::StoredMessage>> decoded =
        broker::DecodeStoredRecordAt(*stored[i].batch, stored[i].position);
    if (decoded.ok()) {
      stored[i].message = std::move(*decoded);
      ++i;
      continue;
    }
    log::Error("a delivery is not a message; skipped",
               {{"topic", deliveries[i].topic()},
                {"partition", std::uint64_t{deliveries[i].partition().value()}},
                {"offset", deliveries[i].offset().value()},
                {"error", decoded.status().ToString()}});
    deliveries.erase(deliveries.begin() + static_cast<std::ptrdiff_t>(i));
    stored.erase(stored.begin() + static_cast<std::ptrdiff_t>(i));
    cover.erase(cover.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (deliveries.empty()) return false;
  std::vector<std::size_t> sent;  // candidates, in the order they go out
  std::size_t stored_bytes = 0;
  std::size_t unstored = 0;
  c::RecordBatchBuilder builder({.max_batch_bytes = c::kMaxBatchBytesLimit});
  std::size_t take = 0;
  std::int64_t now_ms = WallMs(*context_->clock);
  for (; take < deliveries.size(); ++take) {
    const Delivery& d = deliveries[take];
    if (cover[take] != kNone && candidates[cover[take]].chosen) {
      // The delivery header, and the batch once.
      Candidate& c = candidates[cover[take]];
      std::size_t extra = 32 + (c.sent ? 0 : c.bytes().size() + 8);
      if (take > 0 && builder.uncompressed_bytes() + stored_bytes + extra > room) break;
      stored_bytes += extra;
      if (!c.sent) sent.push_back(cover[take]);
      c.sent = true;
      continue;
    }
    // The broker's message when the Delivery holds none (the client sets
    // the attempt header itself: version 2).
    const Message& m =
        stored[take].message != nullptr ? stored[take].message->message : d.message();
    // The record takes about the message's size plus a few bytes per field.
    std::size_t estimate = broker::MessageSize(m) + 128 + 16 * m.headers.size();
    if (take > 0 && builder.uncompressed_bytes() + stored_bytes + estimate > room) break;
    broker::AddMessage(builder, m, now_ms, std::nullopt);
    ++unstored;
  }
  for (std::size_t i = deliveries.size(); i > take; --i) {
    stream.pending.push_front({std::move(deliveries[i - 1]), std::move(stored[i - 1])});
  }
  deliveries.resize(take);
  Result<std::vector<std::byte>> batch = std::vector<std::byte>{};
  if (unstored > 0) batch = builder.Build();
  if (!batch.ok()) {
    SendError(correlation, batch.status());
    return true;
  }
  c::FrameWriter w = writer();
  c::BeginDeliver(w, correlation, stream.id, deliveries.size());
  for (std::size_t i = 0; i < deliveries.size(); ++i) {
    Delivery& d = deliveries[i];
    std::uint64_t id = stream.next_delivery++;
    c::EncodeDeliveryHeader(w, {d.partition(), d.offset(), d.attempt(), id});
    if (!stream.ephemeral && !stream.closed) {
      stream.deliveries.emplace(id, Stream::Outstanding{std::move(d), stored[i].ref});
    }
  }
  if (version_ < 2) {
    w.Raw(*batch);
  } else {
    c::BeginDeliverBatches(w, sent.size() + (unstored > 0 ? 1 : 0));
    for (std::size_t k : sent) {
      c::EncodeDeliverBatch(w, {candidates[k].partition, candidates[k].bytes()});
    }
    if (unstored > 0) c::EncodeDeliverBatch(w, {std::nullopt, *batch});
  }
  w.End();
  Flush();
  return true;
}

awaitable<void> Session::HandleAck(std::uint32_t correlation, std::vector<SlotAck> one_by_one,
                                   std::vector<AckBatch> batches,
                                   std::vector<std::optional<Status>> results) {
  // Every ack starts at once (the bus gathers the one-by-one ones), then
  // the answers go out in order.
  struct Gather {
    explicit Gather(const asio::any_io_executor& ex, std::vector<std::optional<Status>> r)
        : results(std::move(r)), wake(ex, asio::steady_timer::time_point::max()) {}
    std::vector<std::optional<Status>> results;
    std::size_t left = 0;
    asio::steady_timer wake;
  };
  auto gather = std::make_shared<Gather>(executor_, std::move(results));
  gather->left = one_by_one.size();
  for (SlotAck& a : one_by_one) {
    asio::co_spawn(executor_, std::move(a.ack),
                   [gather, slot = a.slot](const std::exception_ptr& e, const Status& s) {
                     gather->results[slot] = e ? InternalError("ack failed with an exception") : s;
                     if (--gather->left == 0) gather->wake.cancel();
                   });
  }
  for (AckBatch& batch : batches) {
    std::vector<Status> applied = co_await transport::ApplyAcks(*batch.bus, std::move(batch.ops));
    for (std::size_t i = 0; i < batch.slots.size(); ++i) {
      gather->results[batch.slots[i]] = std::move(applied[i]);
    }
  }
  while (gather->left > 0) {
    boost::system::error_code ec;
    co_await gather->wake.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  c::FrameWriter w = writer();
  c::BeginAcked(w, correlation, gather->results.size());
  for (const std::optional<Status>& s : gather->results) c::EncodeAckedResult(w, *s);
  w.End();
  Flush();
}

awaitable<void> Session::HandleCloseStream(std::uint32_t correlation,
                                           std::shared_ptr<Stream> stream) {
  stream->closed = true;
  stream->deliveries.clear();
  stream->pending.clear();
  // (Not a conditional expression: GCC 12 mis-compiles co_await in one.)
  Status s;
  if (stream->subscription) {
    s = co_await stream->subscription->Close();
  } else {
    s = co_await stream->responder->Close();
  }
  if (correlation == 0) co_return;
  AnswerStatus(correlation, s);
}

awaitable<void> Session::CloseStreams() {
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, stream] : streams) co_await HandleCloseStream(0, stream);
}

awaitable<void> Session::HandleSeek(std::uint32_t correlation, std::string topic, std::string group,
                                    StartPosition position) {
  Status s = co_await BusFor(topic).Seek(topic, group, position, Deadline::Infinite());
  AnswerStatus(correlation, s);
}

awaitable<void> Session::HandleDescribe(std::uint32_t correlation, std::string topic,
                                        std::string group) {
  Result<GroupInfo> info = co_await BusFor(topic).DescribeGroup(topic, group, Deadline::Infinite());
  if (!info.ok()) {
    SendError(correlation, info.status());
    co_return;
  }
  c::FrameWriter w = writer();
  c::EncodeGroupInfo(w, correlation, *info);
  Flush();
}

awaitable<void> Session::HandleRequest(std::uint32_t correlation, std::string topic,
                                       Message request, Deadline deadline) {
  Result<Message> reply = co_await BusFor(topic).Request(topic, std::move(request), deadline);
  if (!reply.ok()) {
    SendError(correlation, reply.status());
    co_return;
  }
  Result<std::vector<std::byte>> batch = broker::EncodeMessageBatch(
      std::span(&*reply, 1), WallMs(*context_->clock), c::kMaxBatchBytesLimit);
  if (!batch.ok()) {
    SendError(correlation, batch.status());
    co_return;
  }
  c::FrameWriter w = writer();
  w.Begin(c::FrameType::kReply, correlation);
  w.Raw(*batch);
  w.End();
  Flush();
}

awaitable<void> Session::HandleRespond(std::uint32_t correlation, std::string topic) {
  Result<std::unique_ptr<Responder>> responder =
      co_await BusFor(topic).Respond(topic, Deadline::Infinite());
  if (!responder.ok()) {
    SendError(correlation, responder.status());
    co_return;
  }
  if (closed_ || going_away_) {
    (void)co_await (*responder)->Close();
    SendError(correlation, UnavailableError("junctiond is shutting down"));
    co_return;
  }
  auto stream = std::make_shared<Stream>();
  stream->id = next_stream_++;
  stream->responder = std::move(*responder);
  streams_.emplace(stream->id, stream);
  c::FrameWriter w = writer();
  c::EncodeResponding(w, correlation, stream->id);
  Flush();
}

awaitable<void> Session::HandleReplyTo(std::uint32_t correlation,
                                       std::unique_ptr<IncomingRequest> request, Message reply) {
  Status s = co_await request->Reply(std::move(reply));
  AnswerStatus(correlation, s);
}

}  // namespace junction::server
