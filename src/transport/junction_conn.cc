#include "transport/junction_conn.h"

#include <algorithm>

#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "junction/log.h"

namespace junction::transport::junction_client {

Status PublishDeadlineExceeded() {
  return DeadlineExceededError(
      "no answer from junctiond by the deadline; the message may still be stored (publish it "
      "again with the same id: it is stored once)");
}

Status RetryStatus() { return AbortedError("junction://: the connection was lost; retrying"); }

bool IsRetry(const Status& s) {
  return s.code() == StatusCode::kAborted && s.message() == RetryStatus().message();
}

std::int64_t WallMs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.WallNow().time_since_epoch())
      .count();
}

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

awaitable<Status> ExpectOk(std::shared_ptr<Waiter> waiter) {
  Result<Answer> a = co_await waiter->Wait();
  if (!a.ok()) co_return a.status();
  if (a->type != c::FrameType::kOk) co_return Unexpected(*a, c::FrameType::kOk);
  co_return OkStatus();
}

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
  Spawn(WriteLoop(this, generation));
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
  Spawn(Reconnect(this));
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
  for (PendingAck& a : queued) Complete(executor, a.done, a.here, why);
  if (heartbeat_timer != nullptr) heartbeat_timer->cancel();
  if (expiry_timer != nullptr) expiry_timer->cancel();
  boost::system::error_code ec;
  socket.close(ec);
  if (connecting != nullptr) connecting->close(ec);  // ends a reconnection attempt at once
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

awaitable<Status> Conn::Connect(asio::any_io_executor io) {
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto endpoints = co_await resolver.async_resolve(config.host, std::to_string(config.port),
                                                   asio::redirect_error(use_awaitable, ec));
  if (ec) co_return UnavailableError(where() + ": cannot resolve the host: " + ec.message());
  tcp::socket sock(io);
  decoder = c::FrameDecoder(c::kDefaultMaxFrameBytes);
  // The timeout closes the socket, which ends whatever step is waiting.
  auto done = std::make_shared<bool>(false);
  asio::steady_timer timeout(io, config.connect_timeout);
  timeout.async_wait([s = &sock, done](boost::system::error_code e) {
    if (!e && !*done) {
      boost::system::error_code ignored;
      s->close(ignored);
    }
  });
  connecting = &sock;
  co_await asio::async_connect(sock, endpoints, asio::redirect_error(use_awaitable, ec));
  // (Not a conditional expression: GCC 12 mis-compiles co_await in one.)
  Status s;
  if (ec) {
    s = UnavailableError(where() + ": cannot connect: " + ec.message());
  } else {
    s = co_await Handshake(sock);
  }
  connecting = nullptr;
  *done = true;
  timeout.cancel();
  if (s.ok() && !broken.ok()) s = broken;  // the bus closed meanwhile: never revived
  if (!s.ok()) {
    sock.close(ec);
    co_return s;
  }
  if (io == executor) {
    socket = std::move(sock);
  } else {
    // Connected on the opening thread's io_context: the descriptor moves to
    // the connection's executor.
    tcp protocol = sock.local_endpoint(ec).protocol();
    if (!ec) socket = tcp::socket(executor, protocol, sock.release(ec));
    if (ec) co_return UnavailableError(where() + ": cannot hand the socket over: " + ec.message());
  }
  ++generation;
  connected = true;
  last_received = last_sent = std::chrono::steady_clock::now();
  co_return OkStatus();
}

void Conn::Start() {
  Spawn(ReadLoop(this, generation));
  Spawn(Heartbeat(this, generation));
}

awaitable<Status> Conn::Handshake(tcp::socket& sock) {
  boost::system::error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  std::vector<std::byte> hello(std::begin(c::kPreamble), std::end(c::kPreamble));
  c::FrameWriter w(hello);
  c::EncodeHello(w, {.min_version = c::kMinWireVersion,
                     .max_version = c::kWireVersion,
                     .max_frame_bytes = c::kDefaultMaxFrameBytes,
                     .heartbeat = config.heartbeat,
                     .auto_create_topics = options.auto_create_topics,
                     .default_topic = options.default_topic,
                     .client = "junction-cpp"});
  co_await asio::async_write(sock, asio::buffer(hello), asio::redirect_error(use_awaitable, ec));
  std::optional<c::Frame> frame;
  while (!ec && !(frame = decoder.Next())) {
    if (decoder.error()) break;
    std::span<std::byte> room = decoder.Prepare(4096);
    std::size_t n = co_await sock.async_read_some(asio::buffer(room.data(), room.size()),
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
  if (welcome->version < c::kMinWireVersion || welcome->version > c::kWireVersion) {
    co_return UnavailableError(where() + ": junctiond chose wire version " +
                               std::to_string(welcome->version) +
                               ", which this client does not speak");
  }
  Result<Capabilities> caps = c::CapabilitiesFromBits(welcome->capabilities);
  if (!caps.ok()) co_return UnavailableError(where() + ": " + caps.status().message());
  capabilities = *caps;
  peer_max_frame = welcome->max_frame_bytes;
  heartbeat = welcome->heartbeat;
  version = welcome->version;
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
    Status s = co_await self->Connect(self->executor);
    if (s.ok()) {
      self->Start();
      break;
    }
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
  self->heartbeat_timer = &timer;
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
  if (self->heartbeat_timer == &timer) self->heartbeat_timer = nullptr;
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
  waiter->Set(
      Answer{frame.type(), {frame.payload.begin(), frame.payload.end()}, generation, version});
}

void Conn::QueueAck(PendingAck ack) {
  Status refused;
  if (!broken.ok()) {
    refused = broken;
  } else if (ack.generation != generation || !ready) {
    refused = FailedPreconditionError(
        "the connection that delivered this message was lost; the group redelivers it");
  }
  if (!refused.ok()) {
    // Posted: this may run inside the caller's initiation.
    asio::post(executor, asio::append(std::move(ack.done), std::move(refused)));
    return;
  }
  acks.push_back(std::move(ack));
  if (!acks_posted) {
    acks_posted = true;
    // Every ack queued in this turn goes in one frame.
    Post([this] {
      acks_posted = false;
      Spawn(SendAcks(this, std::exchange(acks, {})));
    });
  }
}

void Conn::ExpireAt(const std::shared_ptr<PublishCall>& call, Deadline deadline) {
  if (deadline.is_infinite()) return;
  call->expiry = publish_expiries.emplace(deadline.when(), call);
  if (!expiry_running) {
    // Posted: a spawn would run the loop at once, and a deadline already
    // past would complete its caller inside that caller's initiation.
    expiry_running = true;
    Post([this] { Spawn(ExpiryLoop(this)); });
  } else if (expiry_timer != nullptr && deadline.when() < expiry_due) {
    expiry_timer->cancel();  // sooner than the timer: it looks again
  }
}

void Conn::Finish(PublishCall& call, const Status& failed, std::span<const PublishResult> results) {
  if (call.done) return;
  call.done = true;
  if (call.expiry) {
    publish_expiries.erase(*call.expiry);
    call.expiry.reset();
  }
  if (call.one) {
    Result<PublishResult> r = failed;
    if (failed.ok()) r = results.front();
    Complete(executor, call.one, call.here, std::move(r));
  } else {
    Result<std::vector<PublishResult>> r = failed;
    if (failed.ok()) r = std::vector<PublishResult>(results.begin(), results.end());
    Complete(executor, call.many, call.here, std::move(r));
  }
}

awaitable<void> Conn::ExpiryLoop(Conn* self) {
  asio::steady_timer timer(self->executor);
  self->expiry_timer = &timer;
  const bool real_clock = &self->clock == &RealClock();
  while (!self->publish_expiries.empty() && self->broken.ok()) {
    MonoTime first = self->publish_expiries.begin()->first;
    if (Deadline::At(first).Expired(self->clock)) {
      std::shared_ptr<PublishCall> call = self->publish_expiries.begin()->second.lock();
      self->publish_expiries.erase(self->publish_expiries.begin());
      if (call) {
        call->expiry.reset();
        self->Finish(*call, PublishDeadlineExceeded(), {});
      }
      continue;
    }
    if (real_clock) {
      self->expiry_due = first;
      timer.expires_at(first);
    } else {
      // A test's virtual clock, which the timer cannot follow.
      self->expiry_due = MonoTime::min();
      timer.expires_after(std::chrono::milliseconds(20));
    }
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
  self->expiry_timer = nullptr;
  self->expiry_running = false;
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
  for (std::size_t i = 0; i < acks.size(); ++i) {
    Complete(self->executor, acks[i].done, acks[i].here, std::move(*answers[i]));
  }
}

}  // namespace junction::transport::junction_client
