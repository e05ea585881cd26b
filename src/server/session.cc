#include "server/session.h"

#include <algorithm>
#include <deque>
#include <utility>

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "broker/message_codec.h"
#include "junction/log.h"

namespace junction::server {
namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
namespace c = codec;

namespace {

MonoTime SteadyNow() { return std::chrono::steady_clock::now(); }

// Reads up to this much at a time; a connection that has nothing buffered
// and nothing waiting on its socket holds no read buffer at all.
constexpr std::size_t kReadChunk = 16u << 10;
// A frame never needs more: the largest message takes 1 MiB, plus headers.
constexpr std::size_t kMaxMessagesPerBatch = 100'000;

}  // namespace

Session::Session(asio::ip::tcp::socket socket, std::shared_ptr<ServerContext> context,
                 std::size_t shard)
    : socket_(std::move(socket)),
      executor_(socket_.get_executor()),
      shard_(shard),
      context_(std::move(context)),
      decoder_(c::kHandshakeMaxFrameBytes),
      room_(executor_, asio::steady_timer::time_point::max()),
      watchdog_(executor_),
      last_received_(SteadyNow()),
      last_sent_(SteadyNow()),
      heartbeat_(context_->options.heartbeat),
      started_(SteadyNow()) {
  boost::system::error_code ec;
  auto endpoint = socket_.remote_endpoint(ec);
  peer_ =
      ec ? "unknown peer" : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

Session::~Session() { context_->open.fetch_sub(1); }

Bus& Session::BusFor(std::string_view topic) {
  Brokers& brokers = *context_->brokers;
  if (brokers.size() == 1) return brokers.at(0);
  if (auto it = placements_.find(topic); it != placements_.end()) return brokers.at(it->second);
  Brokers::Placement placed = brokers.Find(topic);
  if (placed.fixed && placements_.size() < 10'000) placements_.emplace(topic, placed.broker);
  return brokers.at(placed.broker);
}

template <typename A>
void Session::Spawn(A a) {
  Begin();
  auto run = [](std::shared_ptr<Session> self, A op) -> awaitable<void> {
    co_await std::move(op);
    self->Done();
  };
  asio::co_spawn(executor_, run(shared_from_this(), std::move(a)), asio::detached);
}

void Session::SpawnTask(awaitable<void> task) { Spawn(std::move(task)); }

void Session::Done() {
  --outstanding_;
  Wake();
  if (going_away_ && outstanding_ == 0 && !closed_) {
    close_after_write_ = true;
    if (!writing_) {
      if (out_.empty()) {
        CloseSocket();
      } else {
        Flush();
      }
    }
  }
}

void Session::Wake() { room_.cancel(); }

awaitable<void> Session::WaitForRoom() {
  boost::system::error_code ec;
  room_.expires_at(asio::steady_timer::time_point::max());
  co_await room_.async_wait(asio::redirect_error(use_awaitable, ec));
}

void Session::Flush() {
  if (writing_ || closed_ || out_.empty()) return;
  writing_ = true;
  asio::co_spawn(executor_, WriteLoop(shared_from_this()), asio::detached);
}

awaitable<void> Session::WriteLoop(std::shared_ptr<Session> self) {
  while (!self->out_.empty() && !self->closed_) {
    std::swap(self->out_, self->sending_);
    boost::system::error_code ec;
    co_await asio::async_write(self->socket_, asio::buffer(self->sending_),
                               asio::redirect_error(use_awaitable, ec));
    self->sending_.clear();
    if (self->sending_.capacity() > self->context_->options.max_send_buffer) {
      std::vector<std::byte>().swap(self->sending_);
    }
    self->last_sent_ = SteadyNow();
    self->Wake();
    if (ec) {
      self->CloseSocket();
      break;
    }
  }
  self->writing_ = false;
  if (self->close_after_write_ && !self->closed_) self->CloseSocket();
}

void Session::SendError(std::uint32_t correlation, const Status& status) {
  c::FrameWriter w = writer();
  c::EncodeError(w, correlation, static_cast<std::uint16_t>(status.code()), status.message());
  Flush();
}

void Session::AnswerStatus(std::uint32_t correlation, const Status& status) {
  if (!status.ok()) {
    SendError(correlation, status);
    return;
  }
  c::FrameWriter w = writer();
  c::EncodeOk(w, correlation);
  Flush();
}

void Session::CloseWith(c::ConnectionError code, std::string message) {
  if (closed_ || close_after_write_) return;
  context_->protocol_errors.fetch_add(1);
  log::Info("closing a connection",
            {{"peer", peer_}, {"code", c::ConnectionErrorName(code)}, {"error", message}});
  c::FrameWriter w = writer();
  c::EncodeError(w, 0, static_cast<std::uint16_t>(code), message);
  going_away_ = true;
  close_after_write_ = true;
  close_requested_ = SteadyNow();
  if (!writing_) Flush();
}

void Session::CloseSocket() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  watchdog_.cancel();
  Wake();
}

void Session::PostHere(std::function<void()> f) {
  asio::any_io_executor executor;
  std::uint64_t moves = 0;
  {
    std::lock_guard lock(executor_mu_);
    executor = executor_;
    moves = moves_;
  }
  asio::post(executor, [self = shared_from_this(), moves, f = std::move(f)]() mutable {
    bool moved = false;
    {
      std::lock_guard lock(self->executor_mu_);
      moved = self->moves_ != moves;
    }
    // Moved meanwhile: this shard no longer runs the session. (It cannot
    // move while this runs: Move runs on this shard too.)
    if (moved) {
      self->PostHere(std::move(f));
      return;
    }
    f();
  });
}

void Session::Abort() {
  PostHere([self = shared_from_this()] { self->CloseSocket(); });
}

void Session::Shutdown() {
  PostHere([self = shared_from_this()] {
    if (self->going_away_ || self->closed_) return;
    self->going_away_ = true;
    c::FrameWriter w = self->writer();
    c::EncodeGoaway(w, "junctiond is shutting down");
    self->Flush();
    // Pending fetches end (Cancelled) as their streams close.
    self->Spawn(self->CloseStreams());
  });
}

void Session::StartWatchdog() {
  watchdog_running_ = true;
  asio::co_spawn(
      executor_,
      [](std::shared_ptr<Session> s) -> awaitable<void> {
        co_await s->Watchdog();
      }(shared_from_this()),
      asio::detached);
}

awaitable<void> Session::Run(std::shared_ptr<Session> self) {
  self->StartWatchdog();
  bool open = co_await self->Handshake();
  while (open) {
    co_await self->ReadLoop();
    if (!self->move_to_) break;
    bool moved = co_await self->Move();
    if (moved) co_return;  // Resume goes on on the other shard
    open = self->DispatchHeld();
  }
  co_await Finish(self);
}

awaitable<void> Session::Resume(std::shared_ptr<Session> self) {
  self->StartWatchdog();
  if (self->DispatchHeld()) co_await self->ReadLoop();
  co_await Finish(self);
}

bool Session::DispatchHeld() {
  if (!held_) return !closed_;
  c::Frame frame = *held_;
  held_.reset();
  if (closed_) return false;
  context_->frames.fetch_add(1, std::memory_order_relaxed);
  return Dispatch(frame);
}

bool Session::WantsToMove(const c::Frame& frame) {
  if (placed_) return false;
  switch (frame.type()) {
    case c::FrameType::kPublish:
    case c::FrameType::kSubscribe:
    case c::FrameType::kRequest:
    case c::FrameType::kRespond:
      break;
    default:
      return false;
  }
  placed_ = true;  // the first such frame decides, whatever it decides
  const Brokers& brokers = *context_->brokers;
  if (!context_->options.place_connections || brokers.size() == 1 || context_->shards.size() == 1) {
    return false;
  }
  Result<std::string_view> topic = c::PeekTopic(frame.payload);
  if (!topic.ok()) return false;  // Dispatch answers the malformed frame
  std::size_t shard = brokers.shard(brokers.Owner(*topic));
  if (shard == shard_) return false;
  move_to_ = shard;
  held_ = frame;
  return true;
}

awaitable<bool> Session::Move() {
  std::size_t to = *move_to_;
  move_to_.reset();
  // What was being written (WELCOME) goes out first, from here.
  while (writing_ && !closed_) co_await WaitForRoom();
  // The watchdog ends before the session leaves: nothing may touch it on
  // this shard afterwards.
  stopping_watchdog_ = true;
  watchdog_.cancel();
  while (watchdog_running_) co_await WaitForRoom();
  stopping_watchdog_ = false;
  bool quiet = !closed_ && !close_after_write_ && !going_away_ && outstanding_ == 0 &&
               streams_.empty() && requests_.empty() && !writing_ && out_.empty() &&
               sending_.empty();
  if (!quiet) {
    StartWatchdog();
    co_return false;
  }
  asio::io_context& target = *context_->shards[to];
  boost::system::error_code ec;
  asio::ip::tcp::endpoint local = socket_.local_endpoint(ec);
  asio::ip::tcp::socket moved(target);
  if (!ec) {
    asio::ip::tcp::socket::native_handle_type fd = socket_.release(ec);
    if (ec) {
      // Still ours: stay.
      StartWatchdog();
      co_return false;
    }
    moved.assign(local.protocol(), fd, ec);
    if (ec) ::close(fd);
  }
  if (ec) {
    log::Warn("junctiond: could not move a connection to its topic's shard",
              {{"peer", peer_}, {"error", ec.message()}});
    if (socket_.is_open()) {
      CloseSocket();  // still ours (no local endpoint): close it as any other
    } else {
      closed_ = true;  // released, and the descriptor closed above
      Wake();
    }
    co_return false;
  }
  {
    std::lock_guard lock(executor_mu_);
    socket_ = std::move(moved);
    executor_ = target.get_executor();
    ++moves_;
  }
  room_ = asio::steady_timer(executor_, asio::steady_timer::time_point::max());
  watchdog_ = asio::steady_timer(executor_);
  shard_ = to;
  context_->moved.fetch_add(1, std::memory_order_relaxed);
  asio::co_spawn(executor_, Resume(shared_from_this()), asio::detached);
  co_return true;
}

awaitable<void> Session::Finish(std::shared_ptr<Session> self) {
  co_await self->CloseStreams();
  self->requests_.clear();
  // Wait for the answers still being written, then close.
  while (!self->closed_ && (self->writing_ || self->outstanding_ > 0)) {
    if (!self->going_away_) {
      self->going_away_ = true;
    }
    co_await self->WaitForRoom();
  }
  self->CloseSocket();
  std::lock_guard lock(self->context_->mu);
  self->context_->sessions.erase(self.get());
}

awaitable<bool> Session::Handshake() {
  // The preamble, read without reading past it.
  std::byte preamble[c::kPreambleSize];
  std::size_t have = 0;
  while (true) {
    boost::system::error_code ec;
    std::size_t n =
        co_await socket_.async_read_some(asio::buffer(preamble + have, c::kPreambleSize - have),
                                         asio::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
    have += n;
    last_received_ = SteadyNow();
    c::PeerKind kind = c::ClassifyPeer({preamble, have});
    if (kind == c::PeerKind::kIncomplete) continue;
    if (kind == c::PeerKind::kJunction) break;
    context_->refused.fetch_add(1);
    context_->protocol_errors.fetch_add(1);
    if (kind == c::PeerKind::kTls) {
      log::Info("refused a TLS client: the wire port is plain Junction", {{"peer", peer_}});
      std::span<const std::byte> alert = c::TlsRefusal();
      out_.assign(alert.begin(), alert.end());
    } else if (kind == c::PeerKind::kHttp) {
      log::Info("refused an HTTP request on the wire port", {{"peer", peer_}});
      std::string answer = c::HttpRefusal(context_->options.admin_address);
      const auto* p = reinterpret_cast<const std::byte*>(answer.data());
      out_.assign(p, p + answer.size());
    } else {
      log::Info("refused a client without the Junction preamble", {{"peer", peer_}});
      c::FrameWriter w = writer();
      c::EncodeError(w, 0, static_cast<std::uint16_t>(c::ConnectionError::kNotJunction),
                     "not a Junction client: the connection must start with the preamble of "
                     "docs/formats/wire.md");
    }
    close_after_write_ = true;
    going_away_ = true;
    Flush();
    co_return false;
  }
  // HELLO, within the handshake's frame limit.
  std::optional<c::Frame> frame;
  while (!(frame = decoder_.Next())) {
    if (decoder_.error()) {
      CloseWith(decoder_.error()->code, decoder_.error()->message);
      co_return false;
    }
    if (!co_await ReadMore()) co_return false;
  }
  if (frame->type() != c::FrameType::kHello) {
    CloseWith(c::ConnectionError::kMalformedFrame,
              "expected HELLO, got " + c::FrameTypeName(frame->header.type));
    co_return false;
  }
  Result<c::Hello> hello = c::DecodeHello(frame->payload);
  if (!hello.ok()) {
    CloseWith(c::ConnectionError::kMalformedFrame, hello.status().message());
    co_return false;
  }
  const std::uint16_t newest = context_->options.max_wire_version;
  if (hello->min_version > newest || hello->max_version < c::kMinWireVersion) {
    context_->refused.fetch_add(1);
    CloseWith(c::ConnectionError::kUnsupportedVersion,
              "the client speaks versions " + std::to_string(hello->min_version) + "-" +
                  std::to_string(hello->max_version) + ", this server speaks " +
                  std::to_string(c::kMinWireVersion) + "-" + std::to_string(newest));
    co_return false;
  }
  version_ = std::min(hello->max_version, newest);
  heartbeat_ = std::max(
      {context_->options.heartbeat, hello->heartbeat, Duration(std::chrono::milliseconds(100))});
  peer_max_frame_ = std::min(hello->max_frame_bytes, c::kMaxMaxFrameBytes);
  auto_create_ = hello->auto_create_topics;
  default_topic_ = hello->default_topic;
  decoder_.set_max_frame_bytes(context_->options.max_frame_bytes);
  c::FrameWriter w = writer();
  c::EncodeWelcome(w, frame->header.correlation,
                   {.version = version_,
                    .max_frame_bytes = context_->options.max_frame_bytes,
                    .heartbeat = heartbeat_,
                    .capabilities = c::CapabilityBits(context_->brokers->at(0).capabilities()),
                    .server = "junctiond"});
  Flush();
  handshaken_ = true;
  co_return true;
}

awaitable<bool> Session::ReadMore() {
  boost::system::error_code ec;
  // Nothing buffered: what a burst grew goes back, so that a connection
  // waiting for bytes holds one read's worth (kReadChunk) at most. The read
  // goes to the socket at once: Asio tries it straight away unless the last
  // read drained the socket, and otherwise waits on the readiness event
  // registered with the socket. (Waiting with async_wait first, to hold no
  // buffer at all while idle, cost a system call per read to re-arm the
  // descriptor and a second pass through epoll: three of the daemon's
  // sixteen system calls per request-reply, at about 1 us each here.)
  if (decoder_.buffered() == 0) decoder_.Shrink(kReadChunk);
  std::span<std::byte> room = decoder_.Prepare(kReadChunk);
  std::size_t n = co_await socket_.async_read_some(asio::buffer(room.data(), room.size()),
                                                   asio::redirect_error(use_awaitable, ec));
  if (ec || closed_) co_return false;
  decoder_.Commit(n);
  last_received_ = SteadyNow();
  co_return true;
}

awaitable<void> Session::ReadLoop() {
  const ServerOptions& o = context_->options;
  while (!closed_ && !close_after_write_) {
    while (std::optional<c::Frame> frame = decoder_.Next()) {
      if (WantsToMove(*frame)) co_return;  // Run moves the session, then dispatches it
      context_->frames.fetch_add(1, std::memory_order_relaxed);
      if (!Dispatch(*frame)) co_return;
    }
    if (decoder_.error()) {
      CloseWith(decoder_.error()->code, decoder_.error()->message);
      co_return;
    }
    if (decoder_.in_frame()) {
      if (!frame_started_) frame_started_ = SteadyNow();
    } else {
      frame_started_.reset();
    }
    // Back-pressure: stop reading while too much is unanswered or unsent.
    while (!closed_ && (outstanding_ >= o.max_requests_per_connection ||
                        out_.size() + sending_.size() > o.max_send_buffer)) {
      co_await WaitForRoom();
    }
    if (closed_ || !co_await ReadMore()) co_return;
  }
}

awaitable<void> Session::Watchdog() {
  const ServerOptions& o = context_->options;
  while (!closed_ && !stopping_watchdog_) {
    Duration tick = handshaken_ ? heartbeat_ / 4 : o.handshake_timeout / 10;
    tick = std::clamp<Duration>(tick, std::chrono::milliseconds(10), std::chrono::seconds(1));
    watchdog_.expires_after(tick);
    boost::system::error_code ec;
    co_await watchdog_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (closed_ || stopping_watchdog_) break;
    MonoTime now = SteadyNow();
    if (close_requested_ && now - *close_requested_ > std::chrono::seconds(5)) {
      CloseSocket();  // the peer does not read its error
      break;
    }
    if (!handshaken_ && !close_after_write_ && now - started_ > o.handshake_timeout) {
      CloseWith(c::ConnectionError::kHandshakeTimeout, "no HELLO within the handshake timeout");
      close_requested_ = now;
      continue;
    }
    if (frame_started_ && now - *frame_started_ > o.frame_timeout) {
      CloseWith(c::ConnectionError::kFrameTimeout, "a frame took longer than the frame timeout");
      continue;
    }
    if (!handshaken_) continue;
    if (now - last_received_ > 3 * heartbeat_) {
      CloseWith(c::ConnectionError::kHeartbeatTimeout, "nothing received for three heartbeats");
      continue;
    }
    if (now - last_sent_ >= heartbeat_ && !close_after_write_) {
      c::FrameWriter w = writer();
      c::EncodePing(w, c::FrameType::kPing,
                    static_cast<std::uint64_t>(now.time_since_epoch().count()));
      last_sent_ = now;
      Flush();
    }
  }
  watchdog_running_ = false;
  Wake();  // Move waits for this
}

bool Session::Dispatch(const c::Frame& frame) {
  const std::uint32_t corr = frame.header.correlation;
  const ServerOptions& o = context_->options;
  auto malformed = [&](const Status& status) {
    CloseWith(c::ConnectionError::kMalformedFrame, status.message());
    return false;
  };
  if (going_away_ && frame.type() != c::FrameType::kPing && frame.type() != c::FrameType::kPong) {
    c::FrameWriter w = writer();
    c::EncodeError(w, corr, static_cast<std::uint16_t>(c::ConnectionError::kShuttingDown),
                   "junctiond is shutting down");
    Flush();
    return true;
  }
  switch (frame.type()) {
    case c::FrameType::kPing: {
      Result<std::uint64_t> nonce = c::DecodePing(frame.payload);
      if (!nonce.ok()) return malformed(nonce.status());
      c::FrameWriter w = writer();
      c::EncodePing(w, c::FrameType::kPong, *nonce);
      Flush();
      return true;
    }
    case c::FrameType::kPong: {
      Result<std::uint64_t> nonce = c::DecodePing(frame.payload);
      if (!nonce.ok()) return malformed(nonce.status());
      return true;
    }
    case c::FrameType::kCreateTopic: {
      Result<c::CreateTopicFrame> f = c::DecodeCreateTopic(frame.payload);
      if (!f.ok()) return malformed(f.status());
      Spawn(HandleCreateTopic(corr, std::string(f->topic), f->options));
      return true;
    }
    case c::FrameType::kPublish: {
      Result<c::PublishFrame> f = c::DecodePublish(frame.payload);
      if (!f.ok()) return malformed(f.status());
      std::vector<std::shared_ptr<broker::StoredMessage>> messages;
      bool storable = false;
      Status decoded = broker::DecodeStoredBatch(f->batch, o.max_frame_bytes, kMaxMessagesPerBatch,
                                                 messages, &storable);
      if (!decoded.ok()) {
        SendError(corr, decoded);
        return true;
      }
      // One message goes through the bus's mailbox, stored with whatever
      // else is being published to its topic: the batch is of no use there.
      std::vector<std::byte> batch;
      if (storable && messages.size() > 1) batch.assign(f->batch.begin(), f->batch.end());
      Spawn(HandlePublish(corr, std::string(f->topic), std::move(messages), std::move(batch),
                          f->options));
      return true;
    }
    case c::FrameType::kSubscribe: {
      Result<c::SubscribeFrame> f = c::DecodeSubscribe(frame.payload);
      if (!f.ok()) return malformed(f.status());
      Spawn(HandleSubscribe(corr, std::string(f->topic), std::move(f->options)));
      return true;
    }
    case c::FrameType::kFetch:
      return OnFetch(frame);
    case c::FrameType::kAck:
      return OnAck(frame);
    case c::FrameType::kCloseStream: {
      Result<std::uint64_t> id = c::DecodeCloseStream(frame.payload);
      if (!id.ok()) return malformed(id.status());
      auto it = streams_.find(*id);
      if (it == streams_.end()) {
        SendError(corr, NotFoundError("no stream " + std::to_string(*id) + " on this connection"));
        return true;
      }
      std::shared_ptr<Stream> stream = std::move(it->second);
      streams_.erase(it);
      Spawn(HandleCloseStream(corr, std::move(stream)));
      return true;
    }
    case c::FrameType::kSeek: {
      Result<c::SeekFrame> f = c::DecodeSeek(frame.payload);
      if (!f.ok()) return malformed(f.status());
      Spawn(HandleSeek(corr, std::string(f->topic), std::string(f->group), f->position));
      return true;
    }
    case c::FrameType::kDescribeGroup: {
      Result<c::DescribeGroupFrame> f = c::DecodeDescribeGroup(frame.payload);
      if (!f.ok()) return malformed(f.status());
      Spawn(HandleDescribe(corr, std::string(f->topic), std::string(f->group)));
      return true;
    }
    case c::FrameType::kRequest: {
      Result<c::RequestFrame> f = c::DecodeRequest(frame.payload);
      if (!f.ok()) return malformed(f.status());
      std::vector<Message> messages;
      Status decoded = broker::DecodeMessageBatch(f->batch, o.max_frame_bytes, 1, messages);
      if (decoded.ok() && messages.size() != 1) {
        decoded = InvalidArgumentError("REQUEST: the batch must hold exactly one message");
      }
      if (!decoded.ok()) {
        SendError(corr, decoded);
        return true;
      }
      Deadline deadline = f->timeout.count() == 0 ? Deadline::Infinite()
                                                  : Deadline::After(*context_->clock, f->timeout);
      Spawn(HandleRequest(corr, std::string(f->topic), std::move(messages.front()), deadline));
      return true;
    }
    case c::FrameType::kRespond: {
      Result<std::string_view> topic = c::DecodeRespond(frame.payload);
      if (!topic.ok()) return malformed(topic.status());
      Spawn(HandleRespond(corr, std::string(*topic)));
      return true;
    }
    case c::FrameType::kReplyTo: {
      Result<c::ReplyToFrame> f = c::DecodeReplyTo(frame.payload);
      if (!f.ok()) return malformed(f.status());
      std::vector<Message> messages;
      Status decoded = broker::DecodeMessageBatch(f->batch, o.max_frame_bytes, 1, messages);
      if (decoded.ok() && messages.size() != 1) {
        decoded = InvalidArgumentError("REPLY_TO: the batch must hold exactly one message");
      }
      auto it = requests_.find(f->request_id);
      if (decoded.ok() && it == requests_.end()) {
        decoded = FailedPreconditionError("request " + std::to_string(f->request_id) +
                                          " is not open on this connection (already replied?)");
      }
      if (!decoded.ok()) {
        SendError(corr, decoded);
        return true;
      }
      std::unique_ptr<IncomingRequest> request = std::move(it->second);
      requests_.erase(it);
      Spawn(HandleReplyTo(corr, std::move(request), std::move(messages.front())));
      return true;
    }
    case c::FrameType::kHello:
      return malformed(InvalidArgumentError("HELLO after the handshake"));
    default:
      break;
  }
  if (c::IsReservedAdminType(frame.header.type)) return OnAdmin(frame);
  CloseWith(c::ConnectionError::kUnknownFrameType,
            c::IsKnownFrameType(frame.header.type)
                ? c::FrameTypeName(frame.header.type) + " is not sent by clients"
                : "unknown frame type " + c::FrameTypeName(frame.header.type));
  return false;
}

bool Session::OnFetch(const c::Frame& frame) {
  Result<c::FetchFrame> f = c::DecodeFetch(frame.payload);
  if (!f.ok()) {
    CloseWith(c::ConnectionError::kMalformedFrame, f.status().message());
    return false;
  }
  const std::uint32_t corr = frame.header.correlation;
  auto it = streams_.find(f->stream);
  if (it == streams_.end()) {
    SendError(corr,
              NotFoundError("no stream " + std::to_string(f->stream) + " on this connection"));
    return true;
  }
  std::shared_ptr<Stream> stream = it->second;
  if (stream->fetching) {
    SendError(corr, FailedPreconditionError("stream " + std::to_string(f->stream) +
                                            " already has a FETCH waiting"));
    return true;
  }
  Deadline deadline =
      f->timeout ? Deadline::After(*context_->clock, *f->timeout) : Deadline::Infinite();
  if (f->timeout && f->timeout->count() == 0) deadline = Deadline::Past();
  stream->fetching = true;
  std::size_t max = static_cast<std::size_t>(std::min<std::uint64_t>(f->max_messages, 4096));
  Spawn(HandleFetch(corr, std::move(stream), max, deadline));
  return true;
}

bool Session::OnAck(const c::Frame& frame) {
  c::AckReader reader(frame.payload);
  // Per entry, in order: its answer, or nullopt until HandleAck has it.
  std::vector<std::optional<Status>> early;
  std::vector<SlotAck> one_by_one;
  std::vector<AckBatch> batches;  // one per bus, almost always one
  early.reserve(reader.count());
  while (std::optional<c::AckEntry> a = reader.Next()) {
    auto it = streams_.find(a->stream);
    if (it == streams_.end()) {
      early.push_back(FailedPreconditionError("stream " + std::to_string(a->stream) +
                                              " is closed: its deliveries went back to the group"));
      continue;
    }
    Stream& stream = *it->second;
    auto d = stream.deliveries.find(a->delivery_id);
    if (d == stream.deliveries.end()) {
      // An ephemeral delivery counts as acked when delivered.
      if (stream.ephemeral) {
        early.emplace_back(OkStatus());
      } else {
        early.emplace_back(FailedPreconditionError("delivery " + std::to_string(a->delivery_id) +
                                                   " of stream " + std::to_string(a->stream) +
                                                   " was already acked or nacked"));
      }
      continue;
    }
    const std::size_t slot = early.size();
    early.emplace_back(std::nullopt);
    const Stream::Outstanding& out = d->second;
    if (out.ref && stream.bus != nullptr && a->kind != c::AckKind::kAckSync) {
      auto batch = std::find_if(batches.begin(), batches.end(),
                                [&](const AckBatch& b) { return b.bus == stream.bus; });
      if (batch == batches.end()) {
        batch = batches.insert(batches.end(), AckBatch{});
        batch->bus = stream.bus;
      }
      transport::AckOp op;
      op.ref = *out.ref;
      if (a->kind == c::AckKind::kNack) {
        op.kind = transport::AckOp::Kind::kNack;
        op.delay = a->delay;
        op.error = std::string(a->error);
      } else if (a->kind == c::AckKind::kInProgress) {
        op.kind = transport::AckOp::Kind::kInProgress;
      }
      batch->ops.push_back(std::move(op));
      batch->slots.push_back(slot);
    } else {
      switch (a->kind) {
        case c::AckKind::kAck:
          one_by_one.push_back({slot, out.delivery.Ack()});
          break;
        case c::AckKind::kAckSync:
          one_by_one.push_back({slot, out.delivery.AckSync()});
          break;
        case c::AckKind::kNack:
          one_by_one.push_back({slot, out.delivery.Nack(a->delay, std::string(a->error))});
          break;
        case c::AckKind::kInProgress:
          one_by_one.push_back({slot, out.delivery.InProgress()});
          break;
      }
    }
    if (a->kind != c::AckKind::kInProgress) stream.deliveries.erase(d);
  }
  if (!reader.status().ok()) {
    CloseWith(c::ConnectionError::kMalformedFrame, reader.status().message());
    return false;
  }
  Spawn(HandleAck(frame.header.correlation, std::move(one_by_one), std::move(batches),
                  std::move(early)));
  return true;
}

}  // namespace junction::server
