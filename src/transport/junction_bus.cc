#include "transport/junction_bus.h"

#include <pthread.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
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
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "broker/message_codec.h"
#include "codec/wire.h"
#include "junction/log.h"

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

// The answer to a request: its frame's type and a copy of its payload.
struct Answer {
  c::FrameType type = c::FrameType::kOk;
  std::vector<std::byte> payload;
  std::uint64_t generation = 0;  // of the connection it came on
};
using Waiter = Signal<Result<Answer>>;

// What becomes of a request in flight when the connection is lost.
enum class OnLoss : std::uint8_t {
  kResend,  // sent again, as is, on the next connection (idempotent: publishes carry ids)
  kRetry,   // failed with kRetryStatus: its caller builds it again (it names a stream)
  kFail,    // failed with Unavailable (acks, requests, replies: not safe to repeat)
};

// Internal: a FETCH or CLOSE_STREAM whose connection was lost.
Status RetryStatus() { return AbortedError("junction://: the connection was lost; retrying"); }
bool IsRetry(const Status& s) {
  return s.code() == StatusCode::kAborted && s.message() == RetryStatus().message();
}

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
  std::uint64_t stream;      // the client's stream id
  std::uint64_t generation;  // of the connection that delivered it
  std::uint64_t delivery_id;
  std::optional<Duration> delay;
  std::string error;
  std::shared_ptr<Signal<Status>> done;
};

// A subscription or responder, as this client knows it: opened again on
// every new connection.
struct StreamInfo {
  std::string topic;
  std::optional<SubscribeOptions> subscribe;  // nullopt: a responder
  std::uint64_t server_id = 0;                // on the current connection; 0 while reopening
  Status failed;                              // reopening failed: every fetch gets this
};

struct Request {
  std::shared_ptr<Waiter> waiter;
  std::vector<std::byte> frame;  // kept for kResend, and while not ready
  OnLoss on_loss;
  std::uint64_t sent_on = 0;  // the generation it was written on; 0: not yet
};

// The connection: socket, frame decoder, send buffer, the requests waiting
// for answers, the streams to reopen. Runs on its own io_context thread;
// everything here happens there. User-facing objects hold it by shared_ptr;
// coroutines running on its thread hold a raw pointer, so the last
// reference never drops there.
//
// A lost connection is opened again with backoff (50 ms doubling to 2 s,
// with jitter) until the bus closes: publishes in flight are sent again
// with their message ids (the daemon's dedupe window stores each once),
// subscriptions and responders are opened again (the group redelivered
// what the old member held), fetches are issued again; acks and requests
// in flight fail with Unavailable.
struct Conn {
  Conn(JunctionConfig config, const BusOptions& options, const Clock& clock)
      : config(std::move(config)),
        options(options),
        clock(clock),
        work(asio::make_work_guard(ctx)),
        executor(ctx.get_executor()),
        socket(ctx),
        decoder(c::kDefaultMaxFrameBytes) {
    thread = std::thread([this] {
      ::pthread_setname_np(::pthread_self(), "jn-conn");  // for top and perf
      ctx.run();
    });
  }

  ~Conn() {
    work.reset();
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

  std::string where() const {
    return "junction://" + config.host + ":" + std::to_string(config.port);
  }

  awaitable<Status> Connect();
  awaitable<Status> Handshake();
  static awaitable<void> ReadLoop(Conn* self, std::uint64_t generation);
  static awaitable<void> Heartbeat(Conn* self, std::uint64_t generation);
  static awaitable<void> Reconnect(Conn* self);
  awaitable<void> Reopen();
  void OnFrame(const c::Frame& frame);
  void Lost(const Status& why);
  // Permanent: every waiting call fails with `why`, no reconnection.
  void Fail(const Status& why);
  // Waits until ready (true), closed or past `deadline` (false).
  awaitable<bool> WaitConnected(Deadline deadline);

  // Sends a request (its frame encoded with correlation `corr` by the
  // caller) and returns its waiter. While disconnected it is held and sent
  // on the next connection (kResend, kRetry) or failed (kFail).
  std::shared_ptr<Waiter> Send(std::uint32_t corr, std::vector<std::byte> frame, OnLoss on_loss);
  std::uint32_t NextCorrelation() {
    std::uint32_t corr = next_correlation++;
    if (next_correlation == 0) next_correlation = 1;
    return corr;
  }
  void Flush();
  static awaitable<void> WriteLoop(Conn* self, std::uint64_t generation);

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
  std::map<std::uint32_t, Request> pending;  // by correlation: resent in order
  bool connected = false;                    // the socket is up (streams may still be reopening)
  bool ready = false;                        // connected, and every stream reopened
  std::uint64_t generation = 0;              // bumps on every connection
  Status broken;                             // OK until the bus closes
  bool closed = false;
  std::uint32_t peer_max_frame = c::kDefaultMaxFrameBytes;
  Duration heartbeat{};
  MonoTime last_received{};
  MonoTime last_sent{};
  Capabilities capabilities;
  std::uint64_t next_stream = 1;
  std::map<std::uint64_t, StreamInfo> streams;  // by the client's id
  std::vector<PendingAck> acks;
  bool acks_posted = false;
  std::minstd_rand jitter{std::random_device{}()};
  std::thread thread;
};

std::shared_ptr<Waiter> Conn::Send(std::uint32_t corr, std::vector<std::byte> frame,
                                   OnLoss on_loss) {
  auto waiter = std::make_shared<Waiter>(executor);
  if (!broken.ok()) {
    waiter->Set(broken);
    return waiter;
  }
  if (!ready && on_loss == OnLoss::kFail) {
    waiter->Set(UnavailableError(where() + ": not connected (reconnecting)"));
    return waiter;
  }
  std::uint64_t sent_on = 0;
  if (ready) {
    out.insert(out.end(), frame.begin(), frame.end());
    Flush();
    sent_on = generation;
    if (on_loss != OnLoss::kResend) frame.clear();  // never sent again
  }
  pending.emplace(corr, Request{waiter, std::move(frame), on_loss, sent_on});
  return waiter;
}

void Conn::Flush() {
  if (writing || out.empty() || !connected) return;
  writing = true;
  asio::co_spawn(executor, WriteLoop(this, generation), asio::detached);
}

awaitable<void> Conn::WriteLoop(Conn* self, std::uint64_t generation) {
  while (!self->out.empty() && self->connected && self->generation == generation) {
    std::swap(self->out, self->sending);
    boost::system::error_code ec;
    co_await asio::async_write(self->socket, asio::buffer(self->sending),
                               asio::redirect_error(use_awaitable, ec));
    self->sending.clear();
    self->last_sent = std::chrono::steady_clock::now();
    if (ec) {
      if (self->generation == generation) self->Lost(UnavailableError("write: " + ec.message()));
      break;
    }
  }
  if (self->generation == generation) self->writing = false;
}

void Conn::Lost(const Status& why) {
  if (!connected) return;
  connected = false;
  ready = false;
  writing = false;
  out.clear();
  sending.clear();
  boost::system::error_code ec;
  socket.close(ec);
  if (!broken.ok()) return;
  log::Warn("junction://: lost the connection to junctiond; reconnecting",
            {{"server", where()}, {"error", why.message()}});
  for (auto it = pending.begin(); it != pending.end();) {
    Request& r = it->second;
    // Kept: what is sent again, and what was never sent.
    if (r.on_loss == OnLoss::kResend || r.sent_on == 0) {
      r.sent_on = 0;
      ++it;
      continue;
    }
    r.waiter->Set(r.on_loss == OnLoss::kRetry
                      ? RetryStatus()
                      : UnavailableError(where() + ": the connection was lost (" + why.message() +
                                         ") before the answer came"));
    it = pending.erase(it);
  }
  for (auto& [id, info] : streams) info.server_id = 0;
  asio::co_spawn(executor, Reconnect(this), asio::detached);
}

void Conn::Fail(const Status& why) {
  if (!broken.ok()) return;
  broken = why;
  connected = false;
  ready = false;
  auto waiting = std::move(pending);
  pending.clear();
  for (auto& [corr, r] : waiting) r.waiter->Set(why);
  auto queued = std::exchange(acks, {});
  for (PendingAck& a : queued) a.done->Set(why);
  boost::system::error_code ec;
  socket.close(ec);
}

awaitable<bool> Conn::WaitConnected(Deadline deadline) {
  while (!ready && broken.ok()) {
    if (deadline.Expired(clock)) co_return false;
    // Polls (the deadline may be on a virtual clock).
    asio::steady_timer poll(executor, std::chrono::milliseconds(20));
    boost::system::error_code ignored;
    co_await poll.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
  co_return ready;
}

awaitable<Status> Conn::Connect() {
  tcp::resolver resolver(executor);
  boost::system::error_code ec;
  auto endpoints = co_await resolver.async_resolve(config.host, std::to_string(config.port),
                                                   asio::redirect_error(use_awaitable, ec));
  if (ec) co_return UnavailableError(where() + ": cannot resolve the host: " + ec.message());
  socket = tcp::socket(ctx);
  decoder = c::FrameDecoder(c::kDefaultMaxFrameBytes);
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
  // (Not a conditional expression: GCC 12 mis-compiles co_await in one.)
  Status s;
  if (ec) {
    s = UnavailableError(where() + ": cannot connect: " + ec.message());
  } else {
    s = co_await Handshake();
  }
  *done = true;
  timeout.cancel();
  if (!s.ok()) {
    socket.close(ec);
    co_return s;
  }
  ++generation;
  connected = true;
  last_received = last_sent = std::chrono::steady_clock::now();
  asio::co_spawn(executor, ReadLoop(this, generation), asio::detached);
  asio::co_spawn(executor, Heartbeat(this, generation), asio::detached);
  co_return OkStatus();
}

awaitable<Status> Conn::Handshake() {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  std::vector<std::byte> hello(std::begin(c::kPreamble), std::end(c::kPreamble));
  c::FrameWriter w(hello);
  c::EncodeHello(w, {.min_version = c::kWireVersion,
                     .max_version = c::kWireVersion,
                     .max_frame_bytes = c::kDefaultMaxFrameBytes,
                     .heartbeat = config.heartbeat,
                     .auto_create_topics = options.auto_create_topics,
                     .default_topic = options.default_topic,
                     .client = "junction-cpp"});
  co_await asio::async_write(socket, asio::buffer(hello), asio::redirect_error(use_awaitable, ec));
  std::optional<c::Frame> frame;
  while (!ec && !(frame = decoder.Next())) {
    if (decoder.error()) break;
    std::span<std::byte> room = decoder.Prepare(4096);
    std::size_t n = co_await socket.async_read_some(asio::buffer(room.data(), room.size()),
                                                    asio::redirect_error(use_awaitable, ec));
    decoder.Commit(n);
  }
  if (ec) {
    co_return UnavailableError(where() + ": the handshake failed (" + ec.message() +
                               "); is junctiond listening there?");
  }
  if (!frame) co_return UnavailableError(where() + ": not junctiond: " + decoder.error()->message);
  if (frame->type() == c::FrameType::kError) {
    Answer a{frame->type(), {frame->payload.begin(), frame->payload.end()}};
    co_return Unexpected(a, c::FrameType::kWelcome).WithContext(where());
  }
  if (frame->type() != c::FrameType::kWelcome) {
    co_return UnavailableError(where() + ": expected WELCOME, got " +
                               c::FrameTypeName(frame->header.type));
  }
  Result<c::Welcome> welcome = c::DecodeWelcome(frame->payload);
  if (!welcome.ok()) co_return UnavailableError(where() + ": " + welcome.status().message());
  Result<Capabilities> caps = c::CapabilitiesFromBits(welcome->capabilities);
  if (!caps.ok()) co_return UnavailableError(where() + ": " + caps.status().message());
  capabilities = *caps;
  peer_max_frame = welcome->max_frame_bytes;
  heartbeat = welcome->heartbeat;
  co_return OkStatus();
}

awaitable<void> Conn::Reconnect(Conn* self) {
  Duration backoff = std::chrono::milliseconds(50);
  asio::steady_timer pause(self->executor);
  while (self->broken.ok() && !self->connected) {
    // Full jitter over the backoff, so that many clients do not return at once.
    auto wait = Duration(std::uniform_int_distribution<Duration::rep>(
        backoff.count() / 2, backoff.count())(self->jitter));
    pause.expires_after(wait);
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!self->broken.ok()) co_return;
    Status s = co_await self->Connect();
    if (s.ok()) break;
    backoff = std::min<Duration>(backoff * 2, std::chrono::seconds(2));
  }
  if (!self->connected) co_return;
  log::Info("junction://: connected again", {{"server", self->where()}});
  co_await self->Reopen();
}

// On a new connection: opens every stream again, then sends what waited.
awaitable<void> Conn::Reopen() {
  std::uint64_t gen = generation;
  std::vector<std::uint64_t> ids;
  for (const auto& [id, info] : streams) ids.push_back(id);
  for (std::uint64_t id : ids) {
    auto it = streams.find(id);
    if (it == streams.end()) continue;  // closed meanwhile
    std::uint32_t corr = NextCorrelation();
    c::FrameWriter w(out);
    if (it->second.subscribe) {
      c::EncodeSubscribe(w, corr, it->second.topic, *it->second.subscribe);
    } else {
      c::EncodeRespond(w, corr, it->second.topic);
    }
    auto waiter = std::make_shared<Waiter>(executor);
    pending.emplace(corr, Request{waiter, {}, OnLoss::kRetry, generation});
    Flush();
    Result<Answer> a = co_await waiter->Wait();
    if (generation != gen || !connected) co_return;  // lost again: the next Reopen does it
    it = streams.find(id);
    if (it == streams.end() || !a.ok()) continue;
    StreamInfo& info = it->second;
    c::FrameType expected = info.subscribe ? c::FrameType::kSubscribed : c::FrameType::kResponding;
    if (a->type != expected) {
      info.failed = Unexpected(*a, expected);
      continue;
    }
    Result<std::uint64_t> stream =
        info.subscribe ? c::DecodeSubscribed(a->payload) : c::DecodeResponding(a->payload);
    if (!stream.ok()) {
      info.failed = UnavailableError(stream.status().message());
      continue;
    }
    info.server_id = *stream;
  }
  // Then what waited for the connection, in the order it was first sent.
  for (auto& [corr, r] : pending) {
    if (r.sent_on != 0 || r.frame.empty()) continue;
    out.insert(out.end(), r.frame.begin(), r.frame.end());
    r.sent_on = generation;
    if (r.on_loss != OnLoss::kResend) std::vector<std::byte>().swap(r.frame);
  }
  ready = true;
  Flush();
}

awaitable<void> Conn::ReadLoop(Conn* self, std::uint64_t generation) {
  while (self->connected && self->generation == generation) {
    while (std::optional<c::Frame> frame = self->decoder.Next()) {
      self->OnFrame(*frame);
      if (!self->connected || self->generation != generation) co_return;
    }
    if (self->decoder.error()) {
      self->Lost(UnavailableError("junctiond sent a bad frame: " + self->decoder.error()->message));
      co_return;
    }
    std::span<std::byte> room = self->decoder.Prepare(16u << 10);
    boost::system::error_code ec;
    std::size_t n = co_await self->socket.async_read_some(asio::buffer(room.data(), room.size()),
                                                          asio::redirect_error(use_awaitable, ec));
    if (self->generation != generation) co_return;
    if (ec) {
      self->Lost(UnavailableError(ec == asio::error::eof ? "junctiond closed the connection"
                                                         : "read: " + ec.message()));
      co_return;
    }
    self->decoder.Commit(n);
    self->last_received = std::chrono::steady_clock::now();
  }
}

awaitable<void> Conn::Heartbeat(Conn* self, std::uint64_t generation) {
  asio::steady_timer timer(self->executor);
  while (self->connected && self->generation == generation) {
    timer.expires_after(std::max<Duration>(self->heartbeat / 4, std::chrono::milliseconds(25)));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!self->connected || self->generation != generation) break;
    MonoTime now = std::chrono::steady_clock::now();
    if (now - self->last_received > 3 * self->heartbeat) {
      self->Lost(UnavailableError("junctiond stopped answering (nothing for three heartbeats)"));
      break;
    }
    if (now - self->last_sent >= self->heartbeat) {
      c::FrameWriter w(self->out);
      c::EncodePing(w, c::FrameType::kPing, 0);
      self->last_sent = now;
      self->Flush();
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
    // GOAWAY: the server answers what it read, then closes; the close
    // starts the reconnection.
    case c::FrameType::kGoaway:
      return;
    default:
      break;
  }
  if (frame.header.correlation == 0) {
    if (frame.type() == c::FrameType::kError) {
      Result<c::ErrorFrame> e = c::DecodeError(frame.payload);
      Lost(e.ok() ? c::ErrorFrameStatus(*e) : UnavailableError("junctiond sent a malformed ERROR"));
    }
    return;
  }
  auto it = pending.find(frame.header.correlation);
  if (it == pending.end()) return;  // an answer nobody waits for any more
  std::shared_ptr<Waiter> waiter = std::move(it->second.waiter);
  pending.erase(it);
  waiter->Set(Answer{frame.type(), {frame.payload.begin(), frame.payload.end()}, generation});
}

awaitable<Status> Conn::QueueAck(PendingAck ack) {
  auto done = std::make_shared<Signal<Status>>(executor);
  ack.done = done;
  if (!broken.ok()) co_return broken;
  if (ack.generation != generation || !ready) {
    co_return FailedPreconditionError(
        "the connection that delivered this message was lost; the group redelivers it");
  }
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
  if (acks.empty()) co_return;
  std::vector<std::optional<Status>> answers(acks.size());
  std::vector<std::size_t> sent;
  std::uint32_t corr = self->NextCorrelation();
  std::vector<std::byte> frame;
  c::FrameWriter w(frame);
  std::size_t count = 0;
  for (std::size_t i = 0; i < acks.size(); ++i) {
    auto s = self->streams.find(acks[i].stream);
    if (acks[i].generation != self->generation || s == self->streams.end() ||
        s->second.server_id == 0) {
      answers[i] = FailedPreconditionError(
          "the connection that delivered this message was lost; the group redelivers it");
    } else {
      sent.push_back(i);
      ++count;
    }
  }
  if (count > 0) {
    c::BeginAck(w, corr, count);
    for (std::size_t i : sent) {
      const PendingAck& a = acks[i];
      c::EncodeAckEntry(
          w, {a.kind, self->streams[a.stream].server_id, a.delivery_id, a.delay, a.error});
    }
    w.End();
    Result<Answer> answer = co_await self->Send(corr, std::move(frame), OnLoss::kFail)->Wait();
    std::vector<Status> statuses;
    Status failed;
    if (!answer.ok()) {
      failed = answer.status();
    } else if (answer->type != c::FrameType::kAcked) {
      failed = Unexpected(*answer, c::FrameType::kAcked);
    } else if (Status s = c::DecodeAcked(answer->payload, statuses); !s.ok()) {
      failed = UnavailableError("junctiond sent a malformed ACKED: " + s.message());
    } else if (statuses.size() != count) {
      failed = UnavailableError("junctiond answered a different number of acks");
    }
    for (std::size_t k = 0; k < sent.size(); ++k) {
      answers[sent[k]] = failed.ok() ? statuses[k] : failed;
    }
  }
  for (std::size_t i = 0; i < acks.size(); ++i) acks[i].done->Set(*answers[i]);
}

// ---- Calls, each run on the connection's thread ----

// Encodes a frame with a fresh correlation id; `encode(writer, corr)`.
template <typename Encode>
std::shared_ptr<Waiter> SendFrame(Conn* conn, OnLoss on_loss, Encode encode) {
  std::uint32_t corr = conn->NextCorrelation();
  std::vector<std::byte> frame;
  c::FrameWriter w(frame);
  encode(w, corr);
  return conn->Send(corr, std::move(frame), on_loss);
}

awaitable<Status> ExpectOk(std::shared_ptr<Waiter> waiter) {
  Result<Answer> a = co_await waiter->Wait();
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kOk) co_return Unexpected(*a, c::FrameType::kOk);
  co_return OkStatus();
}

awaitable<Status> CreateTopicOn(Conn* conn, std::string topic, TopicOptions options) {
  co_return co_await ExpectOk(SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
    c::EncodeCreateTopic(w, corr, topic, options);
  }));
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
  // Sent again after a reconnection: the ids make the daemon store it once.
  std::shared_ptr<Waiter> waiter =
      SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
        c::BeginPublish(w, corr, topic, options);
        w.Raw(*batch);
        w.End();
      });
  Result<Answer> a = co_await waiter->Wait();
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

class JunctionDeliveryControl final : public DeliveryControl {
 public:
  JunctionDeliveryControl(std::weak_ptr<Conn> conn, std::uint64_t stream, std::uint64_t generation,
                          std::uint64_t id)
      : conn_(std::move(conn)), stream_(stream), generation_(generation), id_(id) {}
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
    return SendOn(conn_,
                  PendingAck{kind, stream_, generation_, id_, delay, std::move(error), nullptr});
  }
  static Awaitable<Status> SendOn(std::weak_ptr<Conn> weak, PendingAck ack) {
    std::shared_ptr<Conn> conn = weak.lock();
    if (!conn) co_return FailedPreconditionError("the bus is closed");
    co_return co_await conn->On(conn->QueueAck(std::move(ack)));
  }

  std::weak_ptr<Conn> conn_;
  std::uint64_t stream_;
  std::uint64_t generation_;
  std::uint64_t id_;
};

// Closes a client stream from a destructor: posted, not awaited.
void CloseStreamLater(Conn* conn, std::uint64_t stream) {
  asio::post(conn->executor, [conn, stream] {
    asio::co_spawn(conn->executor, CloseStreamOn(conn, stream), asio::detached);
  });
}

class JunctionSubscription final : public Subscription {
 public:
  JunctionSubscription(std::shared_ptr<Conn> conn, std::string topic, std::uint64_t stream)
      : conn_(std::move(conn)), topic_(std::move(topic)), stream_(stream) {}
  ~JunctionSubscription() override { CloseStreamLater(conn_.get(), stream_); }

  Awaitable<Result<std::vector<Delivery>>> NextBatch(std::size_t max, Deadline deadline) override {
    if (max == 0) co_return InvalidArgumentError("NextBatch: max must be at least 1");
    Result<Answer> a = co_await conn_->On(FetchOn(conn_.get(), stream_, max, deadline));
    if (!a.ok()) co_return a.status();
    if (a->type != c::FrameType::kDeliver) co_return Unexpected(*a, c::FrameType::kDeliver);
    std::vector<c::DeliveryHeader> headers;
    Result<c::DeliverFrame> f = c::DecodeDeliver(a->payload, headers);
    if (!f.ok()) {
      co_return UnavailableError("junctiond sent a malformed DELIVER: " + f.status().message());
    }
    std::vector<Message> messages;
    Status s =
        broker::DecodeMessageBatch(f->batch, c::kMaxBatchBytesLimit, headers.size(), messages);
    if (s.ok() && messages.size() != headers.size()) {
      s = InvalidArgumentError("the batch holds a different number of messages");
    }
    if (!s.ok()) co_return UnavailableError("junctiond sent a malformed DELIVER: " + s.message());
    std::uint64_t generation = a->generation;  // acks name the connection
    std::vector<Delivery> out;
    out.reserve(headers.size());
    for (std::size_t i = 0; i < headers.size(); ++i) {
      const c::DeliveryHeader& h = headers[i];
      auto control =
          std::make_shared<JunctionDeliveryControl>(conn_, stream_, generation, h.delivery_id);
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

awaitable<Status> SeekOn(Conn* conn, std::string topic, std::string group, StartPosition p) {
  co_return co_await ExpectOk(SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
    c::EncodeSeek(w, corr, {topic, group, p});
  }));
}

awaitable<Result<GroupInfo>> DescribeOn(Conn* conn, std::string topic, std::string group) {
  Result<Answer> a = co_await SendFrame(conn, OnLoss::kResend, [&](c::FrameWriter& w, auto corr) {
                       c::EncodeDescribeGroup(w, corr, {topic, group});
                     })->Wait();
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
    if (timeout.count() == 0) {
      co_return DeadlineExceededError("the deadline passed before the call");
    }
  }
  // Not repeated on a new connection: a responder may have seen it.
  Result<Answer> a = co_await SendFrame(conn, OnLoss::kFail, [&](c::FrameWriter& w, auto corr) {
                       c::BeginRequest(w, corr, topic, timeout);
                       w.Raw(*batch);
                       w.End();
                     })->Wait();
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
  std::vector<std::uint64_t> ids;
  for (const auto& [id, info] : conn->streams) ids.push_back(id);
  for (std::uint64_t id : ids) (void)co_await CloseStreamOn(conn, id);
  // Then wait (a while) for the answers still due: publishes in flight.
  asio::steady_timer pause(conn->executor);
  MonoTime give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!conn->pending.empty() && conn->connected && std::chrono::steady_clock::now() < give_up) {
    pause.expires_after(std::chrono::milliseconds(1));
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  conn->Fail(FailedPreconditionError("the bus is closed"));
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

  const Capabilities& capabilities() const override { return capabilities_; }

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
  // Read from the user's threads: copied once, at open.
  Capabilities capabilities_ = conn_->capabilities;
};

awaitable<bool> MarkReady(Conn* conn) {
  conn->ready = conn->connected;  // nothing to reopen on the first connection
  co_return conn->ready;
}

}  // namespace

Result<std::unique_ptr<Bus>> OpenJunctionBus(JunctionConfig config, const BusOptions& options) {
  if (options.executor) {
    return InvalidArgumentError(
        "BusOptions::executor is for mem:// and file://; junction:// runs its connection on a "
        "thread of its own");
  }
  if (!options.shard_cpus.empty() || !options.blocking_cpus.empty()) {
    return InvalidArgumentError(
        "BusOptions::shard_cpus and blocking_cpus are for mem:// and file://");
  }
  const Clock& clock = options.clock != nullptr ? *options.clock : RealClock();
  auto conn = std::make_shared<Conn>(std::move(config), options, clock);
  Status connected = conn->RunBlocking(conn->Connect());
  if (!connected.ok()) return connected;
  conn->RunBlocking(MarkReady(conn.get()));
  return std::unique_ptr<Bus>(std::make_unique<JunctionBus>(std::move(conn)));
}

}  // namespace junction::transport
