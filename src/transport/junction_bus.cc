#include "transport/junction_bus.h"

#include <deque>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "broker/message_codec.h"
#include "codec/wire.h"

namespace junction::transport {
namespace asio = boost::asio;
namespace c = codec;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

template <typename T>
awaitable<std::optional<T>> Optional(awaitable<T> a) {
  co_return co_await std::move(a);
}

// A value set once by one coroutine and awaited by another, both on the
// connection's executor.
template <typename T>
class Signal {
 public:
  explicit Signal(const asio::any_io_executor& ex)
      : wake_(ex, asio::steady_timer::time_point::max()) {}
  void Set(T value) {
    if (value_) return;
    value_.emplace(std::move(value));
    wake_.cancel();
  }
  bool done() const { return value_.has_value(); }
  awaitable<T> Wait() {
    while (!value_) {
      boost::system::error_code ignored;
      co_await wake_.async_wait(asio::redirect_error(use_awaitable, ignored));
    }
    co_return std::move(*value_);
  }

 private:
  asio::steady_timer wake_;
  std::optional<T> value_;
};

// The answer to a request: its frame's type and a copy of its payload, or
// the failure of the connection.
struct Answer {
  c::FrameType type = c::FrameType::kOk;
  std::vector<std::byte> payload;
};
using Waiter = Signal<Result<Answer>>;

std::int64_t WallMs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.WallNow().time_since_epoch())
      .count();
}

// The status an answer stands for when it is not the expected frame.
Status Unexpected(const Answer& answer, c::FrameType expected) {
  if (answer.type == c::FrameType::kError) {
    Result<c::ErrorFrame> e = c::DecodeError(answer.payload);
    if (!e.ok())
      return UnavailableError("junctiond sent a malformed ERROR: " + e.status().message());
    return c::ErrorFrameStatus(*e);
  }
  return UnavailableError("junctiond answered " +
                          c::FrameTypeName(static_cast<std::uint8_t>(answer.type)) + " where " +
                          c::FrameTypeName(static_cast<std::uint8_t>(expected)) + " was due");
}

struct PendingAck {
  c::AckKind kind;
  std::uint64_t stream;
  std::uint64_t delivery_id;
  std::optional<Duration> delay;
  std::string error;
  std::shared_ptr<Signal<Status>> done;
};

// The connection: socket, frame decoder, send buffer, the requests waiting
// for answers. Runs on its own io_context thread; everything here happens
// there. User-facing objects hold it by shared_ptr; coroutines running on
// its thread hold a raw pointer, so the last reference never drops there.
struct Conn {
  Conn(JunctionConfig config, const BusOptions& options, const Clock& clock)
      : config(std::move(config)),
        options(options),
        clock(clock),
        work(asio::make_work_guard(ctx)),
        executor(ctx.get_executor()),
        socket(ctx),
        decoder(c::kDefaultMaxFrameBytes) {
    thread = std::thread([this] { ctx.run(); });
  }

  ~Conn() {
    work.reset();
    asio::post(ctx, [this] { CloseSocket(UnavailableError("the bus was destroyed")); });
    ctx.stop();
    thread.join();
  }

  // Runs `a` on the connection's thread and resumes on the caller's executor.
  template <typename T>
  awaitable<T> On(awaitable<T> a) {
    std::optional<T> out = co_await asio::co_spawn(executor, Optional(std::move(a)), use_awaitable);
    co_return std::move(*out);
  }

  template <typename T>
  T RunBlocking(awaitable<T> a) {
    std::optional<T> out = asio::co_spawn(executor, Optional(std::move(a)), asio::use_future).get();
    return std::move(*out);
  }

  awaitable<Status> Connect();
  awaitable<void> ReadLoop();
  awaitable<void> Heartbeat();
  void OnFrame(const c::Frame& frame);
  void Fail(const Status& status);
  void CloseSocket(const Status& why);

  // Starts a request: a correlation id and its waiter. The caller encodes
  // the frame with that id into `out`, then calls Flush.
  std::pair<std::uint32_t, std::shared_ptr<Waiter>> Start() {
    std::uint32_t corr = next_correlation++;
    if (next_correlation == 0) next_correlation = 1;
    auto waiter = std::make_shared<Waiter>(executor);
    if (!broken.ok()) {
      waiter->Set(broken);
    } else {
      pending.emplace(corr, waiter);
    }
    return {corr, waiter};
  }
  void Flush();
  static awaitable<void> WriteLoop(Conn* self);

  awaitable<Status> QueueAck(PendingAck ack);
  static awaitable<void> SendAcks(Conn* self, std::vector<PendingAck> acks);

  JunctionConfig config;
  BusOptions options;
  const Clock& clock;
  asio::io_context ctx{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::any_io_executor executor;
  tcp::socket socket;
  c::FrameDecoder decoder;
  std::vector<std::byte> out;
  std::vector<std::byte> sending;
  bool writing = false;
  std::uint32_t next_correlation = 1;
  std::unordered_map<std::uint32_t, std::shared_ptr<Waiter>> pending;
  Status broken;  // OK while connected
  bool closed = false;
  std::uint32_t peer_max_frame = c::kDefaultMaxFrameBytes;
  Duration heartbeat{};
  MonoTime last_received{};
  MonoTime last_sent{};
  Capabilities capabilities;
  std::set<std::uint64_t> streams;  // open on the server
  std::vector<PendingAck> acks;
  bool acks_posted = false;
  std::thread thread;
};

void Conn::Flush() {
  if (writing || out.empty() || !broken.ok()) return;
  writing = true;
  asio::co_spawn(executor, WriteLoop(this), asio::detached);
}

awaitable<void> Conn::WriteLoop(Conn* self) {
  while (!self->out.empty() && self->broken.ok()) {
    std::swap(self->out, self->sending);
    boost::system::error_code ec;
    co_await asio::async_write(self->socket, asio::buffer(self->sending),
                               asio::redirect_error(use_awaitable, ec));
    self->sending.clear();
    self->last_sent = std::chrono::steady_clock::now();
    if (ec) {
      self->Fail(UnavailableError("lost the connection to junctiond: " + ec.message()));
      break;
    }
  }
  self->writing = false;
}

void Conn::CloseSocket(const Status& why) {
  Fail(why);
  boost::system::error_code ec;
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void Conn::Fail(const Status& status) {
  if (!broken.ok()) return;
  broken = status;
  auto waiting = std::move(pending);
  pending.clear();
  for (auto& [corr, waiter] : waiting) waiter->Set(status);
  boost::system::error_code ec;
  socket.close(ec);
}

awaitable<Status> Conn::Connect() {
  tcp::resolver resolver(executor);
  boost::system::error_code ec;
  auto endpoints = co_await resolver.async_resolve(config.host, std::to_string(config.port),
                                                   asio::redirect_error(use_awaitable, ec));
  std::string where = "junction://" + config.host + ":" + std::to_string(config.port);
  if (ec) co_return UnavailableError(where + ": cannot resolve the host: " + ec.message());
  // The timeout closes the socket, which ends whatever step is waiting.
  auto done = std::make_shared<bool>(false);
  asio::steady_timer timeout(executor, config.connect_timeout);
  timeout.async_wait([this, done](boost::system::error_code e) {
    if (!e && !*done) {
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  });
  co_await asio::async_connect(socket, endpoints, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    *done = true;
    co_return UnavailableError(where + ": cannot connect: " + ec.message());
  }
  socket.set_option(tcp::no_delay(true), ec);
  {
    out.assign(std::begin(c::kPreamble), std::end(c::kPreamble));
    c::FrameWriter w(out);
    c::EncodeHello(w, {.min_version = c::kWireVersion,
                       .max_version = c::kWireVersion,
                       .max_frame_bytes = c::kDefaultMaxFrameBytes,
                       .heartbeat = config.heartbeat,
                       .auto_create_topics = options.auto_create_topics,
                       .default_topic = options.default_topic,
                       .client = "junction-cpp"});
    co_await asio::async_write(socket, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
    out.clear();
  }
  std::optional<c::Frame> frame;
  while (!ec && !(frame = decoder.Next())) {
    if (decoder.error()) break;
    std::span<std::byte> room = decoder.Prepare(4096);
    std::size_t n = co_await socket.async_read_some(asio::buffer(room.data(), room.size()),
                                                    asio::redirect_error(use_awaitable, ec));
    decoder.Commit(n);
  }
  *done = true;
  timeout.cancel();
  if (ec) {
    co_return UnavailableError(where + ": the handshake failed (" + ec.message() +
                               "); is junctiond listening there?");
  }
  if (!frame) {
    co_return UnavailableError(where + ": not junctiond: " + decoder.error()->message);
  }
  if (frame->type() == c::FrameType::kError) {
    Answer a{frame->type(), {frame->payload.begin(), frame->payload.end()}};
    co_return Unexpected(a, c::FrameType::kWelcome).WithContext(where);
  }
  if (frame->type() != c::FrameType::kWelcome) {
    co_return UnavailableError(where + ": expected WELCOME, got " +
                               c::FrameTypeName(frame->header.type));
  }
  Result<c::Welcome> welcome = c::DecodeWelcome(frame->payload);
  if (!welcome.ok()) co_return UnavailableError(where + ": " + welcome.status().message());
  Result<Capabilities> caps = c::CapabilitiesFromBits(welcome->capabilities);
  if (!caps.ok()) co_return UnavailableError(where + ": " + caps.status().message());
  capabilities = *caps;
  peer_max_frame = welcome->max_frame_bytes;
  heartbeat = welcome->heartbeat;
  last_received = last_sent = std::chrono::steady_clock::now();
  asio::co_spawn(executor, ReadLoop(), asio::detached);
  asio::co_spawn(executor, Heartbeat(), asio::detached);
  co_return OkStatus();
}

awaitable<void> Conn::ReadLoop() {
  while (broken.ok()) {
    while (std::optional<c::Frame> frame = decoder.Next()) OnFrame(*frame);
    if (decoder.error()) {
      CloseSocket(UnavailableError("junctiond sent a bad frame: " + decoder.error()->message));
      co_return;
    }
    if (!broken.ok()) co_return;
    std::span<std::byte> room = decoder.Prepare(16u << 10);
    boost::system::error_code ec;
    std::size_t n = co_await socket.async_read_some(asio::buffer(room.data(), room.size()),
                                                    asio::redirect_error(use_awaitable, ec));
    if (ec) {
      Fail(UnavailableError(ec == asio::error::eof
                                ? "junctiond closed the connection"
                                : "lost the connection to junctiond: " + ec.message()));
      co_return;
    }
    decoder.Commit(n);
    last_received = std::chrono::steady_clock::now();
  }
}

awaitable<void> Conn::Heartbeat() {
  asio::steady_timer timer(executor);
  while (broken.ok()) {
    timer.expires_after(std::max<Duration>(heartbeat / 4, std::chrono::milliseconds(25)));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!broken.ok()) break;
    MonoTime now = std::chrono::steady_clock::now();
    if (now - last_received > 3 * heartbeat) {
      CloseSocket(UnavailableError("junctiond stopped answering (no frame for three heartbeats)"));
      break;
    }
    if (now - last_sent >= heartbeat) {
      c::FrameWriter w(out);
      c::EncodePing(w, c::FrameType::kPing, 0);
      last_sent = now;
      Flush();
    }
  }
}

void Conn::OnFrame(const c::Frame& frame) {
  switch (frame.type()) {
    case c::FrameType::kPing: {
      Result<std::uint64_t> nonce = c::DecodePing(frame.payload);
      c::FrameWriter w(out);
      c::EncodePing(w, c::FrameType::kPong, nonce.ok() ? *nonce : 0);
      Flush();
      return;
    }
    case c::FrameType::kPong:
    // GOAWAY: the server answers what it read, then closes: new calls
    // would be refused, and the close fails whatever still waits.
    case c::FrameType::kGoaway:
      return;
    default:
      break;
  }
  if (frame.header.correlation == 0) {
    if (frame.type() == c::FrameType::kError) {
      Result<c::ErrorFrame> e = c::DecodeError(frame.payload);
      CloseSocket(e.ok() ? c::ErrorFrameStatus(*e)
                         : UnavailableError("junctiond sent a malformed ERROR"));
    }
    return;
  }
  auto it = pending.find(frame.header.correlation);
  if (it == pending.end()) return;  // an answer nobody waits for any more
  std::shared_ptr<Waiter> waiter = std::move(it->second);
  pending.erase(it);
  waiter->Set(Answer{frame.type(), {frame.payload.begin(), frame.payload.end()}});
}

awaitable<Status> Conn::QueueAck(PendingAck ack) {
  auto done = std::make_shared<Signal<Status>>(executor);
  ack.done = done;
  if (!broken.ok()) co_return broken;
  acks.push_back(std::move(ack));
  if (!acks_posted) {
    acks_posted = true;
    // Every ack queued in this turn goes in one frame.
    asio::post(executor, [this] {
      acks_posted = false;
      asio::co_spawn(executor, SendAcks(this, std::exchange(acks, {})), asio::detached);
    });
  }
  co_return co_await done->Wait();
}

awaitable<void> Conn::SendAcks(Conn* self, std::vector<PendingAck> acks) {
  auto [corr, waiter] = self->Start();
  c::FrameWriter w(self->out);
  c::BeginAck(w, corr, acks.size());
  for (const PendingAck& a : acks) {
    c::EncodeAckEntry(w, {a.kind, a.stream, a.delivery_id, a.delay, a.error});
  }
  w.End();
  self->Flush();
  Result<Answer> answer = co_await waiter->Wait();
  std::vector<Status> statuses;
  Status failed;
  if (!answer.ok()) {
    failed = answer.status();
  } else if (answer->type != c::FrameType::kAcked) {
    failed = Unexpected(*answer, c::FrameType::kAcked);
  } else if (Status s = c::DecodeAcked(answer->payload, statuses); !s.ok()) {
    failed = UnavailableError("junctiond sent a malformed ACKED: " + s.message());
  } else if (statuses.size() != acks.size()) {
    failed = UnavailableError("junctiond answered a different number of acks");
  }
  for (std::size_t i = 0; i < acks.size(); ++i) {
    acks[i].done->Set(failed.ok() ? statuses[i] : failed);
  }
}

// ---- Calls, each run on the connection's thread ----

awaitable<Result<Answer>> Call(Conn* conn, std::shared_ptr<Waiter> waiter) {
  conn->Flush();
  co_return co_await waiter->Wait();
}

awaitable<Status> CreateTopicOn(Conn* conn, std::string topic, TopicOptions options) {
  auto [corr, waiter] = conn->Start();
  c::FrameWriter w(conn->out);
  c::EncodeCreateTopic(w, corr, topic, options);
  Result<Answer> a = co_await Call(conn, waiter);
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kOk) co_return Unexpected(*a, c::FrameType::kOk);
  co_return OkStatus();
}

awaitable<Result<std::vector<PublishResult>>> PublishOn(Conn* conn, std::string topic,
                                                        std::vector<Message> messages,
                                                        PublishOptions options) {
  // This bus's own limit (BusOptions::max_message_bytes); the daemon
  // enforces its own as well.
  for (const Message& m : messages) {
    std::size_t size = broker::MessageSize(m);
    if (size > conn->options.max_message_bytes) {
      co_return ResourceExhaustedError("message of " + std::to_string(size) +
                                       " bytes exceeds max_message_bytes (" +
                                       std::to_string(conn->options.max_message_bytes) + ")");
    }
  }
  Result<std::vector<std::byte>> batch = broker::EncodeMessageBatch(
      messages, WallMs(conn->clock),
      std::min<std::uint32_t>(conn->peer_max_frame - 4096, c::kMaxBatchBytesLimit));
  if (!batch.ok()) co_return batch.status();
  auto [corr, waiter] = conn->Start();
  c::FrameWriter w(conn->out);
  c::BeginPublish(w, corr, topic, options);
  w.Raw(*batch);
  w.End();
  Result<Answer> a = co_await Call(conn, waiter);
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kPublished) co_return Unexpected(*a, c::FrameType::kPublished);
  std::vector<PublishResult> results;
  if (Status s = c::DecodePublished(a->payload, results); !s.ok()) {
    co_return UnavailableError("junctiond sent a malformed PUBLISHED: " + s.message());
  }
  if (results.size() != messages.size()) {
    co_return UnavailableError("junctiond answered a different number of publishes");
  }
  co_return results;
}

awaitable<Result<std::uint64_t>> OpenStreamOn(Conn* conn, std::string topic,
                                              std::optional<SubscribeOptions> options) {
  auto [corr, waiter] = conn->Start();
  c::FrameWriter w(conn->out);
  if (options) {
    c::EncodeSubscribe(w, corr, topic, *options);
  } else {
    c::EncodeRespond(w, corr, topic);
  }
  Result<Answer> a = co_await Call(conn, waiter);
  if (!a.ok()) co_return a.status();
  c::FrameType expected = options ? c::FrameType::kSubscribed : c::FrameType::kResponding;
  if (a->type != expected) co_return Unexpected(*a, expected);
  Result<std::uint64_t> stream =
      options ? c::DecodeSubscribed(a->payload) : c::DecodeResponding(a->payload);
  if (!stream.ok()) co_return UnavailableError("junctiond: " + stream.status().message());
  conn->streams.insert(*stream);
  co_return *stream;
}

awaitable<Status> CloseStreamOn(Conn* conn, std::uint64_t stream) {
  if (conn->streams.erase(stream) == 0) co_return OkStatus();  // closed already
  auto [corr, waiter] = conn->Start();
  c::FrameWriter w(conn->out);
  c::EncodeCloseStream(w, corr, stream);
  Result<Answer> a = co_await Call(conn, waiter);
  if (!a.ok()) co_return OkStatus();  // the connection is gone: so is the stream
  if (a->type != c::FrameType::kOk) co_return Unexpected(*a, c::FrameType::kOk);
  co_return OkStatus();
}

// A FETCH: its answer, or the status it failed with.
awaitable<Result<Answer>> FetchOn(Conn* conn, std::uint64_t stream, std::size_t max,
                                  Deadline deadline) {
  if (!conn->streams.contains(stream)) co_return CancelledError("the subscription is closed");
  c::FetchFrame f{stream, max, std::nullopt};
  if (!deadline.is_infinite()) f.timeout = deadline.Remaining(conn->clock);
  auto [corr, waiter] = conn->Start();
  c::FrameWriter w(conn->out);
  c::EncodeFetch(w, corr, f);
  co_return co_await Call(conn, waiter);
}

class JunctionDeliveryControl final : public DeliveryControl {
 public:
  JunctionDeliveryControl(std::weak_ptr<Conn> conn, std::uint64_t stream, std::uint64_t id)
      : conn_(std::move(conn)), stream_(stream), id_(id) {}
  Awaitable<Status> Ack() override { return Send(c::AckKind::kAck, std::nullopt, {}); }
  Awaitable<Status> AckSync() override { return Send(c::AckKind::kAckSync, std::nullopt, {}); }
  Awaitable<Status> Nack(std::optional<Duration> delay, std::string error) override {
    return Send(c::AckKind::kNack, delay, std::move(error));
  }
  Awaitable<Status> InProgress() override {
    return Send(c::AckKind::kInProgress, std::nullopt, {});
  }

 private:
  Awaitable<Status> Send(c::AckKind kind, std::optional<Duration> delay, std::string error) {
    return SendOn(conn_, PendingAck{kind, stream_, id_, delay, std::move(error), nullptr});
  }
  static Awaitable<Status> SendOn(std::weak_ptr<Conn> weak, PendingAck ack) {
    std::shared_ptr<Conn> conn = weak.lock();
    if (!conn) co_return FailedPreconditionError("the bus is closed");
    co_return co_await conn->On(conn->QueueAck(std::move(ack)));
  }

  std::weak_ptr<Conn> conn_;
  std::uint64_t stream_;
  std::uint64_t id_;
};

class JunctionSubscription final : public Subscription {
 public:
  JunctionSubscription(std::shared_ptr<Conn> conn, std::string topic, std::uint64_t stream)
      : conn_(std::move(conn)), topic_(std::move(topic)), stream_(stream) {}
  ~JunctionSubscription() override {
    Conn* conn = conn_.get();
    asio::post(conn->executor, [conn, stream = stream_] {
      asio::co_spawn(conn->executor, CloseStreamOn(conn, stream), asio::detached);
    });
  }

  Awaitable<Result<std::vector<Delivery>>> NextBatch(std::size_t max, Deadline deadline) override {
    if (max == 0) co_return InvalidArgumentError("NextBatch: max must be at least 1");
    Result<Answer> a = co_await conn_->On(FetchOn(conn_.get(), stream_, max, deadline));
    if (!a.ok()) co_return a.status();
    if (a->type != c::FrameType::kDeliver) co_return Unexpected(*a, c::FrameType::kDeliver);
    std::vector<c::DeliveryHeader> headers;
    Result<c::DeliverFrame> f = c::DecodeDeliver(a->payload, headers);
    if (!f.ok())
      co_return UnavailableError("junctiond sent a malformed DELIVER: " + f.status().message());
    std::vector<Message> messages;
    Status s =
        broker::DecodeMessageBatch(f->batch, c::kMaxBatchBytesLimit, headers.size(), messages);
    if (s.ok() && messages.size() != headers.size()) {
      s = InvalidArgumentError("the batch holds a different number of messages");
    }
    if (!s.ok()) co_return UnavailableError("junctiond sent a malformed DELIVER: " + s.message());
    std::vector<Delivery> out;
    out.reserve(headers.size());
    for (std::size_t i = 0; i < headers.size(); ++i) {
      const c::DeliveryHeader& h = headers[i];
      auto control = std::make_shared<JunctionDeliveryControl>(conn_, stream_, h.delivery_id);
      out.emplace_back(topic_, h.partition, h.offset, h.attempt, std::move(messages[i]),
                       std::move(control));
    }
    co_return out;
  }

  Awaitable<Status> Close() override {
    co_return co_await conn_->On(CloseStreamOn(conn_.get(), stream_));
  }

 private:
  std::shared_ptr<Conn> conn_;
  std::string topic_;
  std::uint64_t stream_;
};

awaitable<Status> ReplyOn(Conn* conn, std::uint64_t request_id, Message reply) {
  Result<std::vector<std::byte>> batch =
      broker::EncodeMessageBatch(std::span(&reply, 1), WallMs(conn->clock), c::kMaxBatchBytesLimit);
  if (!batch.ok()) co_return batch.status();
  auto [corr, waiter] = conn->Start();
  c::FrameWriter w(conn->out);
  c::BeginReplyTo(w, corr, request_id);
  w.Raw(*batch);
  w.End();
  Result<Answer> a = co_await Call(conn, waiter);
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kOk) co_return Unexpected(*a, c::FrameType::kOk);
  co_return OkStatus();
}

class JunctionIncomingRequest final : public IncomingRequest {
 public:
  JunctionIncomingRequest(std::weak_ptr<Conn> conn, std::uint64_t id, Message message)
      : conn_(std::move(conn)), id_(id), message_(std::move(message)) {}
  const Message& message() const override { return message_; }
  Awaitable<Status> Reply(Message reply) override {
    std::shared_ptr<Conn> conn = conn_.lock();
    if (!conn) co_return FailedPreconditionError("the bus is closed");
    co_return co_await conn->On(ReplyOn(conn.get(), id_, std::move(reply)));
  }

 private:
  std::weak_ptr<Conn> conn_;
  std::uint64_t id_;
  Message message_;
};

class JunctionResponder final : public Responder {
 public:
  JunctionResponder(std::shared_ptr<Conn> conn, std::uint64_t stream)
      : conn_(std::move(conn)), stream_(stream) {}
  ~JunctionResponder() override {
    Conn* conn = conn_.get();
    asio::post(conn->executor, [conn, stream = stream_] {
      asio::co_spawn(conn->executor, CloseStreamOn(conn, stream), asio::detached);
    });
  }

  Awaitable<Result<std::unique_ptr<IncomingRequest>>> Next(Deadline deadline) override {
    Result<Answer> a = co_await conn_->On(FetchOn(conn_.get(), stream_, 1, deadline));
    if (!a.ok()) co_return a.status();
    if (a->type != c::FrameType::kRequestIn) co_return Unexpected(*a, c::FrameType::kRequestIn);
    Result<c::RequestInFrame> f = c::DecodeRequestIn(a->payload);
    if (!f.ok()) co_return UnavailableError("junctiond: " + f.status().message());
    std::vector<Message> messages;
    Status s = broker::DecodeMessageBatch(f->batch, c::kMaxBatchBytesLimit, 1, messages);
    if (s.ok() && messages.size() != 1) s = InvalidArgumentError("not one message");
    if (!s.ok())
      co_return UnavailableError("junctiond sent a malformed REQUEST_IN: " + s.message());
    co_return std::make_unique<JunctionIncomingRequest>(conn_, f->request_id,
                                                        std::move(messages.front()));
  }
  Awaitable<Status> Close() override {
    co_return co_await conn_->On(CloseStreamOn(conn_.get(), stream_));
  }

 private:
  std::shared_ptr<Conn> conn_;
  std::uint64_t stream_;
};

awaitable<Status> SeekOn(Conn* conn, std::string topic, std::string group, StartPosition p) {
  auto [corr, waiter] = conn->Start();
  c::FrameWriter w(conn->out);
  c::EncodeSeek(w, corr, {topic, group, p});
  Result<Answer> a = co_await Call(conn, waiter);
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kOk) co_return Unexpected(*a, c::FrameType::kOk);
  co_return OkStatus();
}

awaitable<Result<GroupInfo>> DescribeOn(Conn* conn, std::string topic, std::string group) {
  auto [corr, waiter] = conn->Start();
  c::FrameWriter w(conn->out);
  c::EncodeDescribeGroup(w, corr, {topic, group});
  Result<Answer> a = co_await Call(conn, waiter);
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kGroupInfo) co_return Unexpected(*a, c::FrameType::kGroupInfo);
  Result<GroupInfo> info = c::DecodeGroupInfo(a->payload);
  if (!info.ok()) co_return UnavailableError("junctiond: " + info.status().message());
  co_return std::move(*info);
}

awaitable<Result<Message>> RequestOn(Conn* conn, std::string topic, Message request,
                                     Deadline deadline) {
  Result<std::vector<std::byte>> batch = broker::EncodeMessageBatch(
      std::span(&request, 1), WallMs(conn->clock), c::kMaxBatchBytesLimit);
  if (!batch.ok()) co_return batch.status();
  Duration timeout{};
  if (!deadline.is_infinite()) {
    timeout = deadline.Remaining(conn->clock);
    if (timeout.count() == 0)
      co_return DeadlineExceededError("the deadline passed before the call");
  }
  auto [corr, waiter] = conn->Start();
  c::FrameWriter w(conn->out);
  c::BeginRequest(w, corr, topic, timeout);
  w.Raw(*batch);
  w.End();
  Result<Answer> a = co_await Call(conn, waiter);
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kReply) co_return Unexpected(*a, c::FrameType::kReply);
  Result<std::span<const std::byte>> reply = c::DecodeBatchOnly(a->payload, "REPLY");
  if (!reply.ok()) co_return UnavailableError("junctiond: " + reply.status().message());
  std::vector<Message> messages;
  Status s = broker::DecodeMessageBatch(*reply, c::kMaxBatchBytesLimit, 1, messages);
  if (s.ok() && messages.size() != 1) s = InvalidArgumentError("not one message");
  if (!s.ok()) co_return UnavailableError("junctiond sent a malformed REPLY: " + s.message());
  co_return std::move(messages.front());
}

awaitable<Status> CloseOn(Conn* conn) {
  if (conn->closed) co_return FailedPreconditionError("the bus is closed");
  conn->closed = true;
  // Leave every group first, so that what this bus held goes back to the
  // other members before Close returns.
  std::vector<std::uint64_t> streams(conn->streams.begin(), conn->streams.end());
  for (std::uint64_t s : streams) (void)co_await CloseStreamOn(conn, s);
  // Then wait for the answers still due (publishes in flight).
  asio::steady_timer pause(conn->executor);
  MonoTime give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!conn->pending.empty() && conn->broken.ok() &&
         std::chrono::steady_clock::now() < give_up) {
    pause.expires_after(std::chrono::milliseconds(1));
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  conn->CloseSocket(FailedPreconditionError("the bus is closed"));
  co_return OkStatus();
}

class JunctionBus final : public Bus {
 public:
  explicit JunctionBus(std::shared_ptr<Conn> conn) : conn_(std::move(conn)) {}
  ~JunctionBus() override {
    Conn* conn = conn_.get();
    asio::post(conn->executor, [conn] {
      if (!conn->closed) asio::co_spawn(conn->executor, CloseOn(conn), asio::detached);
    });
  }

  const Capabilities& capabilities() const override { return conn_->capabilities; }

  Awaitable<Status> CreateTopic(std::string_view topic, TopicOptions options,
                                Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(CreateTopicOn(conn_.get(), std::string(topic), options));
  }

  Awaitable<Result<PublishResult>> Publish(std::string_view topic, Message message,
                                           PublishOptions options, Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    std::vector<Message> one;
    one.push_back(std::move(message));
    Result<std::vector<PublishResult>> r =
        co_await conn_->On(PublishOn(conn_.get(), std::string(topic), std::move(one), options));
    if (!r.ok()) co_return r.status();
    co_return r->front();
  }

  Awaitable<Result<std::vector<PublishResult>>> PublishBatch(std::string_view topic,
                                                             std::vector<Message> messages,
                                                             PublishOptions options,
                                                             Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    if (messages.empty()) co_return std::vector<PublishResult>{};
    co_return co_await conn_->On(
        PublishOn(conn_.get(), std::string(topic), std::move(messages), options));
  }

  Awaitable<Result<std::unique_ptr<Subscription>>> Subscribe(std::string_view topic,
                                                             SubscribeOptions options,
                                                             Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    Result<std::uint64_t> stream =
        co_await conn_->On(OpenStreamOn(conn_.get(), std::string(topic), std::move(options)));
    if (!stream.ok()) co_return stream.status();
    co_return std::make_unique<JunctionSubscription>(conn_, std::string(topic), *stream);
  }

  Awaitable<Status> Seek(std::string_view topic, std::string_view group, StartPosition position,
                         Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(
        SeekOn(conn_.get(), std::string(topic), std::string(group), position));
  }

  Awaitable<Result<GroupInfo>> DescribeGroup(std::string_view topic, std::string_view group,
                                             Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    co_return co_await conn_->On(DescribeOn(conn_.get(), std::string(topic), std::string(group)));
  }

  Awaitable<Result<Message>> Request(std::string_view topic, Message request,
                                     Deadline deadline) override {
    co_return co_await conn_->On(
        RequestOn(conn_.get(), std::string(topic), std::move(request), deadline));
  }

  Awaitable<Result<std::unique_ptr<Responder>>> Respond(std::string_view topic,
                                                        Deadline deadline) override {
    JUNCTION_CO_RETURN_IF_ERROR(CheckDeadline(deadline));
    Result<std::uint64_t> stream =
        co_await conn_->On(OpenStreamOn(conn_.get(), std::string(topic), std::nullopt));
    if (!stream.ok()) co_return stream.status();
    co_return std::make_unique<JunctionResponder>(conn_, *stream);
  }

  Awaitable<Status> Close() override { co_return co_await conn_->On(CloseOn(conn_.get())); }

 private:
  Status CheckDeadline(Deadline deadline) const {
    if (deadline.Expired(conn_->clock)) {
      return DeadlineExceededError("the deadline passed before the call");
    }
    return OkStatus();
  }

  std::shared_ptr<Conn> conn_;
};

}  // namespace

Result<std::unique_ptr<Bus>> OpenJunctionBus(JunctionConfig config, const BusOptions& options) {
  if (options.executor) {
    return InvalidArgumentError(
        "BusOptions::executor is for mem:// and file://; junction:// runs its connection on a "
        "thread of its own");
  }
  if (!options.shard_cpus.empty() || !options.blocking_cpus.empty()) {
    return InvalidArgumentError(
        "BusOptions::shard_cpus and blocking_cpus are for mem:// and "
        "file://");
  }
  const Clock& clock = options.clock != nullptr ? *options.clock : RealClock();
  auto conn = std::make_shared<Conn>(std::move(config), options, clock);
  Status connected = conn->RunBlocking(conn->Connect());
  if (!connected.ok()) return connected;
  return std::unique_ptr<Bus>(std::make_unique<JunctionBus>(std::move(conn)));
}

}  // namespace junction::transport
