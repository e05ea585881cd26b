// The streams of a junction:// bus: subscriptions and responders, their
// FETCHes (and the prefetch, src/transport/README.md), acks and replies.

#include "transport/junction_streams.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "broker/message_codec.h"
#include "codec/wire.h"
#include "transport/junction_deliver.h"

namespace junction::transport::junction_client {

awaitable<Result<std::uint64_t>> OpenStreamOn(Conn* conn, std::string topic,
                                              std::optional<SubscribeOptions> options) {
  while (true) {
    if (!co_await conn->WaitConnected(Deadline::Infinite())) co_return conn->broken;
    std::shared_ptr<Waiter> waiter =
        SendFrame(conn, OnLoss::kRetry, [&](c::FrameWriter& w, auto corr) {
          if (options) {
            c::EncodeSubscribe(w, corr, topic, *options);
          } else {
            c::EncodeRespond(w, corr, topic);
          }
        });
    Result<Answer> a = co_await waiter->Wait();
    if (!a.ok() && IsRetry(a.status())) continue;
    if (!a.ok()) co_return a.status();
    c::FrameType expected = options ? c::FrameType::kSubscribed : c::FrameType::kResponding;
    if (a->type != expected) co_return Unexpected(*a, expected);
    Result<std::uint64_t> stream =
        options ? c::DecodeSubscribed(a->payload) : c::DecodeResponding(a->payload);
    if (!stream.ok()) co_return UnavailableError("junctiond: " + stream.status().message());
    std::uint64_t id = conn->next_stream++;
    conn->streams.emplace(id, StreamInfo{std::move(topic), std::move(options), *stream, {}});
    co_return id;
  }
}

awaitable<Status> CloseStreamOn(Conn* conn, std::uint64_t stream) {
  auto it = conn->streams.find(stream);
  if (it == conn->streams.end()) co_return OkStatus();  // closed already
  std::uint64_t server_id = it->second.server_id;
  conn->streams.erase(it);
  // Not connected: the daemon closed the stream with the connection.
  if (server_id == 0 || !conn->ready) co_return OkStatus();
  Status s = co_await ExpectOk(SendFrame(conn, OnLoss::kRetry, [&](c::FrameWriter& w, auto corr) {
    c::EncodeCloseStream(w, corr, server_id);
  }));
  if (IsRetry(s) || s.code() == StatusCode::kUnavailable) co_return OkStatus();
  co_return s;
}

namespace {

// A FETCH on the client's stream: its answer, or the status it failed with.
// Issued again on a new connection until the deadline.
awaitable<Result<Answer>> FetchOn(Conn* conn, std::uint64_t stream, std::size_t max,
                                  Deadline deadline) {
  while (true) {
    auto it = conn->streams.find(stream);
    if (it == conn->streams.end() || !conn->broken.ok()) {
      co_return CancelledError("the subscription is closed");
    }
    if (!it->second.failed.ok()) co_return it->second.failed;
    if (!conn->ready || it->second.server_id == 0) {
      if (!co_await conn->WaitConnected(deadline)) {
        if (!conn->broken.ok()) co_return CancelledError("the subscription is closed");
        co_return DeadlineExceededError("junctiond is not reachable (reconnecting)");
      }
      continue;
    }
    c::FetchFrame f{it->second.server_id, max, std::nullopt};
    if (!deadline.is_infinite()) f.timeout = deadline.Remaining(conn->clock);
    std::shared_ptr<Waiter> waiter = SendFrame(
        conn, OnLoss::kRetry, [&](c::FrameWriter& w, auto corr) { c::EncodeFetch(w, corr, f); });
    Result<Answer> a = co_await waiter->Wait();
    if (!a.ok() && IsRetry(a.status())) continue;
    co_return a;
  }
}

// Sends a FETCH ahead of the caller's next NextBatch (prefetch): its waiter,
// or null when the stream cannot take one now (not connected, reopening,
// closed, failed); the next NextBatch then fetches as usual. It polls
// (timeout 0): answered at once, with what is ready or with ERROR 4.
awaitable<std::shared_ptr<Waiter>> FetchAheadOn(Conn* conn, std::uint64_t stream, std::size_t max) {
  auto it = conn->streams.find(stream);
  if (it == conn->streams.end() || !conn->broken.ok() || !conn->ready ||
      it->second.server_id == 0 || !it->second.failed.ok()) {
    co_return nullptr;
  }
  c::FetchFrame f{it->second.server_id, max, Duration::zero()};
  co_return SendFrame(conn, OnLoss::kRetry,
                      [&](c::FrameWriter& w, auto corr) { c::EncodeFetch(w, corr, f); });
}

// The deliveries the FETCH sent ahead got, if one is out (`ahead`, cleared
// here) and got any; else the answer to a FETCH sent now. A poll answers
// within a round trip, so it is awaited whatever the caller's deadline;
// when it found nothing (or the connection was lost under it), asking
// again now sees whatever became ready since, as a FETCH without the
// prefetch would have.
awaitable<Result<Answer>> NextAnswerOn(Conn* conn, std::uint64_t stream, std::size_t max,
                                       Deadline deadline, std::shared_ptr<Waiter>& ahead) {
  if (ahead) {
    Result<Answer> got = co_await ahead->Wait();
    ahead.reset();
    if (got.ok() && got->type == c::FrameType::kDeliver) co_return got;
  }
  co_return co_await FetchOn(conn, stream, max, deadline);
}

// What the deliveries of one DELIVER have in common.
struct DeliveredVia {
  std::weak_ptr<Conn> conn;
  std::uint64_t stream = 0;
  std::uint64_t generation = 0;  // acks name the connection
};

class JunctionDeliveryControl final : public DeliveryControl {
 public:
  // `via` outlives this control (JunctionControls holds both).
  JunctionDeliveryControl(const DeliveredVia* via, std::uint64_t id) : via_(via), id_(id) {}
  Awaitable<Status> Ack() override { return Send(c::AckKind::kAck, std::nullopt, {}); }
  Awaitable<Status> AckSync() override { return Send(c::AckKind::kAckSync, std::nullopt, {}); }
  Awaitable<Status> Nack(std::optional<Duration> delay, std::string error) override {
    return Send(c::AckKind::kNack, delay, std::move(error));
  }
  Awaitable<Status> InProgress() override {
    return Send(c::AckKind::kInProgress, std::nullopt, {});
  }

 private:
  // Not a coroutine: the awaitable async_initiate returns is the only frame
  // per ack; its handler waits in the connection's queue of acks.
  Awaitable<Status> Send(c::AckKind kind, std::optional<Duration> delay, std::string error) {
    auto initiate = [weak = via_->conn, kind, stream = via_->stream, generation = via_->generation,
                     id = id_, delay, error = std::move(error)](auto handler) mutable {
      std::shared_ptr<Conn> conn = weak.lock();
      if (!conn) {
        // Not inline: the awaiting coroutine is still suspending.
        auto executor = asio::get_associated_executor(handler);
        asio::post(executor,
                   asio::append(std::move(handler), FailedPreconditionError("the bus is closed")));
        return;
      }
      if (asio::get_associated_executor(handler) == conn->executor) {
        conn->QueueAck(PendingAck{kind, stream, generation, id, delay, std::move(error),
                                  std::move(handler),
                                  /*here=*/true});
        return;
      }
      Conn* raw = conn.get();
      PendingAck ack{kind,
                     stream,
                     generation,
                     id,
                     delay,
                     std::move(error),
                     HoldingConn<decltype(handler)>{std::move(conn), std::move(handler)},
                     /*here=*/false};
      raw->Post([raw, ack = std::move(ack)]() mutable { raw->QueueAck(std::move(ack)); });
    };
    return asio::async_initiate<decltype(use_awaitable), void(Status)>(std::move(initiate),
                                                                       use_awaitable);
  }

  const DeliveredVia* via_;
  std::uint64_t id_;
};

// The controls of one DELIVER's deliveries in one allocation, each
// Delivery holding an aliasing pointer into it: not one allocation and one
// count on the connection's (cross-thread) weak count per delivery.
struct JunctionControls {
  DeliveredVia via;
  std::vector<JunctionDeliveryControl> controls;  // reserved whole: never moves
};

// Closes a client stream from a destructor: posted, not awaited. A call
// made after the destructor from another executor goes out after the
// CLOSE_STREAM (one post, co_spawn's, ahead of its own); one made on the
// connection's executor runs in place (Conn::On) and may go first. Nothing
// depends on that order: junctiond handles each request of a connection
// as its own coroutine, and a stream's close with them.
void CloseStreamLater(Conn* conn, std::uint64_t stream) {
  conn->Spawn(CloseStreamOn(conn, stream));
}

// Prefetch (JunctionConfig::prefetch; by default for ephemeral
// subscriptions only: at most once, no member beside them to take their
// messages): when a DELIVER comes full (`max` deliveries: more are likely
// waiting), a polling FETCH of the same `max` goes out before decoding it,
// so the daemon reads the next batch while the caller works through this
// one. Deliveries beyond a smaller `max` of the next call wait here for the
// one after. A group member prefetches only when asked to
// (`prefetch=all`): a batch fetched ahead is held from the other members,
// its ack deadline running, until this one asks again or closes (the group
// then redelivers it).
class JunctionSubscription final : public Subscription {
 public:
  JunctionSubscription(std::shared_ptr<Conn> conn, std::string topic, std::uint64_t stream,
                       bool prefetch)
      : conn_(std::move(conn)), topic_(std::move(topic)), stream_(stream), prefetch_(prefetch) {}
  ~JunctionSubscription() override {
    // The waiter's timer belongs to the connection's executor: drop it there.
    if (ahead_) conn_->Post([ahead = std::move(ahead_)] {});
    CloseStreamLater(conn_.get(), stream_);
  }

  Awaitable<Result<std::vector<Delivery>>> NextBatch(std::size_t max, Deadline deadline) override {
    if (max == 0) co_return InvalidArgumentError("NextBatch: max must be at least 1");
    if (closed_) co_return CancelledError("the subscription is closed");
    if (!held_.empty()) co_return TakeHeld(max);
    Result<Answer> a =
        co_await conn_->On(NextAnswerOn(conn_.get(), stream_, max, deadline, ahead_));
    if (!a.ok()) co_return a.status();
    if (a->type != c::FrameType::kDeliver) co_return Unexpected(*a, c::FrameType::kDeliver);
    std::vector<c::DeliveryHeader> headers;
    std::vector<c::DeliverBatch> batches;
    Result<c::DeliverFrame> f = c::DecodeDeliver(a->payload, a->version, headers, batches);
    if (!f.ok()) {
      co_return UnavailableError("junctiond sent a malformed DELIVER: " + f.status().message());
    }
    if (prefetch_ && !ahead_ && headers.size() == max) {
      ahead_ = co_await conn_->On(FetchAheadOn(conn_.get(), stream_, max));
    }
    std::vector<Message> messages;
    Status s = DecodeDeliveredMessages(headers, batches, c::kMaxBatchBytesLimit, messages);
    if (!s.ok()) co_return UnavailableError("junctiond sent a malformed DELIVER: " + s.message());
    auto shared = std::make_shared<JunctionControls>();
    shared->via = DeliveredVia{conn_, stream_, a->generation};
    shared->controls.reserve(headers.size());
    std::vector<Delivery> out;
    out.reserve(headers.size());
    for (std::size_t i = 0; i < headers.size(); ++i) {
      const c::DeliveryHeader& h = headers[i];
      JunctionDeliveryControl& control = shared->controls.emplace_back(&shared->via, h.delivery_id);
      out.emplace_back(topic_, h.partition, h.offset, h.attempt, std::move(messages[i]),
                       std::shared_ptr<DeliveryControl>(shared, &control));
    }
    if (out.size() > max) {  // the FETCH ahead asked for more than this call
      held_.assign(std::make_move_iterator(out.begin() + static_cast<std::ptrdiff_t>(max)),
                   std::make_move_iterator(out.end()));
      out.resize(max);
      held_next_ = 0;
    }
    co_return out;
  }

  Awaitable<Status> Close() override {
    closed_ = true;
    held_.clear();
    co_return co_await conn_->On(CloseAndDrop(conn_.get(), stream_, std::move(ahead_)));
  }

 private:
  static awaitable<Status> CloseAndDrop(Conn* conn, std::uint64_t stream,
                                        std::shared_ptr<Waiter> ahead) {
    ahead.reset();  // what its FETCH got goes back to the group with the stream
    co_return co_await CloseStreamOn(conn, stream);
  }

  std::vector<Delivery> TakeHeld(std::size_t max) {
    std::size_t n = std::min(max, held_.size() - held_next_);
    auto first = held_.begin() + static_cast<std::ptrdiff_t>(held_next_);
    std::vector<Delivery> out(std::make_move_iterator(first),
                              std::make_move_iterator(first + static_cast<std::ptrdiff_t>(n)));
    held_next_ += n;
    if (held_next_ == held_.size()) {
      held_.clear();
      held_next_ = 0;
    }
    return out;
  }

  std::shared_ptr<Conn> conn_;
  std::string topic_;
  std::uint64_t stream_;
  bool prefetch_;
  bool closed_ = false;
  std::shared_ptr<Waiter> ahead_;  // the FETCH sent ahead; touched on the connection's executor
  std::vector<Delivery> held_;     // fetched ahead beyond the last call's max
  std::size_t held_next_ = 0;
};

awaitable<Status> ReplyOn(Conn* conn, std::uint64_t generation, std::uint64_t request_id,
                          Message reply) {
  if (generation != conn->generation || !conn->ready) {
    co_return UnavailableError(
        "the connection that received this request was lost; its requester gets no reply");
  }
  Result<std::vector<std::byte>> batch =
      broker::EncodeMessageBatch(std::span(&reply, 1), WallMs(conn->clock), c::kMaxBatchBytesLimit);
  if (!batch.ok()) co_return batch.status();
  co_return co_await ExpectOk(SendFrame(conn, OnLoss::kFail, [&](c::FrameWriter& w, auto corr) {
    c::BeginReplyTo(w, corr, request_id);
    w.Raw(*batch);
    w.End();
  }));
}

class JunctionIncomingRequest final : public IncomingRequest {
 public:
  JunctionIncomingRequest(std::weak_ptr<Conn> conn, std::uint64_t generation, std::uint64_t id,
                          Message message)
      : conn_(std::move(conn)), generation_(generation), id_(id), message_(std::move(message)) {}
  const Message& message() const override { return message_; }
  Awaitable<Status> Reply(Message reply) override {
    std::shared_ptr<Conn> conn = conn_.lock();
    if (!conn) co_return FailedPreconditionError("the bus is closed");
    co_return co_await conn->On(ReplyOn(conn.get(), generation_, id_, std::move(reply)));
  }

 private:
  std::weak_ptr<Conn> conn_;
  std::uint64_t generation_;
  std::uint64_t id_;
  Message message_;
};

class JunctionResponder final : public Responder {
 public:
  JunctionResponder(std::shared_ptr<Conn> conn, std::uint64_t stream)
      : conn_(std::move(conn)), stream_(stream) {}
  ~JunctionResponder() override { CloseStreamLater(conn_.get(), stream_); }

  Awaitable<Result<std::unique_ptr<IncomingRequest>>> Next(Deadline deadline) override {
    Result<Answer> got = co_await conn_->On(FetchOn(conn_.get(), stream_, 1, deadline));
    if (!got.ok()) co_return got.status();
    const Answer& a = *got;
    if (a.type != c::FrameType::kRequestIn) co_return Unexpected(a, c::FrameType::kRequestIn);
    Result<c::RequestInFrame> f = c::DecodeRequestIn(a.payload);
    if (!f.ok()) co_return UnavailableError("junctiond: " + f.status().message());
    std::vector<Message> messages;
    Status s = broker::DecodeMessageBatch(f->batch, c::kMaxBatchBytesLimit, 1, messages);
    if (s.ok() && messages.size() != 1) s = InvalidArgumentError("not one message");
    if (!s.ok()) {
      co_return UnavailableError("junctiond sent a malformed REQUEST_IN: " + s.message());
    }
    co_return std::make_unique<JunctionIncomingRequest>(conn_, a.generation, f->request_id,
                                                        std::move(messages.front()));
  }
  Awaitable<Status> Close() override {
    co_return co_await conn_->On(CloseStreamOn(conn_.get(), stream_));
  }

 private:
  std::shared_ptr<Conn> conn_;
  std::uint64_t stream_;
};

}  // namespace

std::unique_ptr<Subscription> MakeSubscription(std::shared_ptr<Conn> conn, std::string topic,
                                               std::uint64_t stream, bool prefetch) {
  return std::make_unique<JunctionSubscription>(std::move(conn), std::move(topic), stream,
                                                prefetch);
}

std::unique_ptr<Responder> MakeResponder(std::shared_ptr<Conn> conn, std::uint64_t stream) {
  return std::make_unique<JunctionResponder>(std::move(conn), stream);
}

}  // namespace junction::transport::junction_client
