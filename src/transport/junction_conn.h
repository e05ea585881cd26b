#pragma once

// The connection of a junction:// bus (internal to src/transport): socket,
// frames, requests waiting for answers, reconnection. junction_bus.cc
// builds the Bus on it; junction_conn.cc holds its methods.

#include <pthread.h>

#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "codec/record_batch.h"
#include "codec/wire.h"
#include "junction/bus.h"
#include "junction/clock.h"
#include "junction/deadline.h"
#include "transport/holding.h"
#include "transport/junction_bus.h"

namespace junction::transport::junction_client {
namespace asio = boost::asio;
struct Conn;
namespace c = codec;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

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
  // Wait(), or nullopt once `deadline` (on `clock`) has passed. On the
  // real clock the timer is set to the deadline itself, so a long wait (a
  // FETCH that long-polls for 30 s) sleeps until then; on any other clock
  // (a test's virtual one, which the timer cannot follow) the deadline is
  // looked at every 20 ms.
  awaitable<std::optional<T>> WaitUntil(Deadline deadline, const Clock& clock) {
    const bool real_clock = &clock == &RealClock();
    while (!value_) {
      if (deadline.Expired(clock)) co_return std::nullopt;
      if (deadline.is_infinite()) {
        wake_.expires_at(asio::steady_timer::time_point::max());
      } else if (real_clock) {
        wake_.expires_at(deadline.when());
      } else {
        wake_.expires_after(std::chrono::milliseconds(20));
      }
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
  std::uint64_t generation = 0;             // of the connection it came on
  std::uint16_t version = c::kWireVersion;  // the wire version that connection speaks
};
using Waiter = Signal<Result<Answer>>;

// What becomes of a request in flight when the connection is lost.
enum class OnLoss : std::uint8_t {
  kResend,  // sent again, as is, on the next connection (idempotent: publishes carry ids)
  kRetry,   // failed with kRetryStatus: its caller builds it again (it names a stream)
  kFail,    // failed with Unavailable (acks, requests, replies: not safe to repeat)
};

// Completes a caller's handler with `value`, on the connection's executor
// `executor`: in place when the caller runs there too (`here`: what
// dispatch would do, without asking the type-erased handler for its
// executor each time), else dispatched to the caller's executor. Never
// from inside the initiation that took the handler (the awaiting coroutine
// is still suspending): post there instead.
//
// In place, the caller's code runs inside ours until it next suspends: an
// exception it lets out (a completion handler of its co_spawn that
// rethrows) is thrown again from a posted handler, out of the run() of
// that executor, as it would have been had the completion been posted;
// ours carries on with the next caller.
//
// Dispatching holds work on the caller's executor until it returns: the
// caller may run the handler, finish, and let its io_context's run() return
// (and the io_context go) only once this thread is done with its scheduler.
template <typename Handler, typename Value>
void Complete(const asio::any_io_executor& executor, Handler& handler, bool here, Value value) {
  if (here) {
    try {
      std::move(handler)(std::move(value));
    } catch (...) {
      asio::post(executor, [e = std::current_exception()] { std::rethrow_exception(e); });
    }
    return;
  }
  auto work = asio::make_work_guard(asio::get_associated_executor(handler));
  asio::dispatch(asio::append(std::move(handler), std::move(value)));
}

// A caller's completion handler that holds the Conn until it is called (or
// destroyed) where the caller runs: on the connection's own thread nothing
// else would keep the Conn alive for a call whose bus was dropped under it,
// and the Conn must never be released on that thread.
template <typename Handler>
using HoldingConn = Holding<Conn, Handler>;

struct PendingAck {
  c::AckKind kind;
  std::uint64_t stream;      // the client's stream id
  std::uint64_t generation;  // of the connection that delivered it
  std::uint64_t delivery_id;
  std::optional<Duration> delay;
  std::string error;
  // The caller's: no coroutine frame or signal of its own per ack. Never
  // move-assigned (see PublishCall).
  asio::any_completion_handler<void(Status)> done;
  bool here = false;  // the caller runs on the connection's executor
};

// A subscription or responder, as this client knows it: opened again on
// every new connection.
struct StreamInfo {
  std::string topic;
  std::optional<SubscribeOptions> subscribe;  // nullopt: a responder
  std::uint64_t server_id = 0;                // on the current connection; 0 while reopening
  Status failed;                              // reopening failed: every fetch gets this
};

// Publishes of one topic (with default PublishOptions) gathered while the
// connection's thread is busy, sent as one PUBLISH frame: one record batch,
// one append on the broker. Each caller gets its own slice of the results.
//
// A caller is completed once: by the answer, or by its deadline
// (Conn::publish_expiries, one timer for the connection), after which the
// answer is ignored. A single Publish waits with the handler of its own
// initiation; PublishBatch, and publishes that cannot take the fast path,
// with their coroutine's.
//
// (Boost 1.81's any_completion_handler must never be move-assigned: its
// move assignment wraps the handler in itself until the stack overflows.
// These handlers are constructed in place and only ever move-constructed.)
struct PublishCall {
  using One = asio::any_completion_handler<void(Result<PublishResult>)>;
  using Many = asio::any_completion_handler<void(Result<std::vector<PublishResult>>)>;
  PublishCall(One h, bool here) : one(std::move(h)), here(here) {}
  PublishCall(Many h, bool here) : many(std::move(h)), here(here) {}

  One one;    // a single Publish's
  Many many;  // else
  bool here;  // the caller runs on the connection's executor
  bool done = false;
  // Its entry in Conn::publish_expiries while it has one.
  std::optional<std::multimap<MonoTime, std::weak_ptr<PublishCall>>::iterator> expiry;
};

struct PublishBuffer {
  PublishBuffer(std::uint32_t max_batch_bytes, std::int64_t timestamp_ms)
      : builder({.max_batch_bytes = max_batch_bytes}), timestamp_ms(timestamp_ms) {}

  struct Caller {
    std::size_t first = 0;
    std::size_t count = 0;
    std::shared_ptr<PublishCall> call;
  };
  std::string topic;
  c::RecordBatchBuilder builder;  // the messages, encoded as they come
  std::int64_t timestamp_ms;      // of every record (the daemon stamps its own)
  std::size_t count = 0;          // messages in `builder`
  std::size_t bytes = 0;          // their MessageSize: the coalescing limit
  std::vector<Caller> callers;
};

struct Request {
  std::shared_ptr<Waiter> waiter;
  std::vector<std::byte> frame;  // kept for kResend, and while not ready
  OnLoss on_loss;
  std::uint64_t sent_on = 0;  // the generation it was written on; 0: not yet
};

// The connection: socket, frame decoder, send buffer, the requests waiting
// for answers, the streams to reopen. Everything here happens on
// `executor`: a thread of its own by default, or the caller's executor
// (BusOptions::executor), where a call made from that executor reaches the
// connection without a thread hop.
//
// Lifetime. User-facing objects hold the Conn by shared_ptr. On its own
// thread, coroutines hold a raw pointer, so the last reference never drops
// there (the destructor joins that thread, and the pending coroutines die
// with its io_context). On the caller's executor there is no thread to
// join: every coroutine or handler the Conn starts holds it (`Hold`), and
// closing ends them all (the socket closes, the heartbeat timer is
// cancelled, every waiter gets its answer), so the Conn is freed there once
// the last of them returns.
//
// A lost connection is opened again with backoff (50 ms doubling to 2 s,
// with jitter) until the bus closes: publishes in flight are sent again
// with their message ids (the daemon's dedupe window stores each once),
// subscriptions and responders are opened again (the group redelivered
// what the old member held), fetches are issued again; acks and requests
// in flight fail with Unavailable.
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(JunctionConfig config, const BusOptions& options, const Clock& clock)
      : config(std::move(config)),
        options(options),
        clock(clock),
        own_ctx(options.executor ? nullptr : std::make_unique<asio::io_context>(1)),
        executor(options.executor ? *options.executor : own_ctx->get_executor()),
        socket(executor),
        decoder(c::kDefaultMaxFrameBytes) {
    if (!own_ctx) return;
    work.emplace(own_ctx->get_executor());
    thread = std::thread([this] {
      ::pthread_setname_np(::pthread_self(), "jn-conn");  // for top and perf
      own_ctx->run();
    });
  }

  ~Conn() {
    if (!own_ctx) return;
    work.reset();
    own_ctx->stop();
    thread.join();
  }

  // On the caller's executor: a reference that keeps this Conn alive in a
  // coroutine or handler it starts. On its own thread: null (that thread
  // must never drop the last reference: it would join itself).
  std::shared_ptr<Conn> Hold() { return own_ctx ? nullptr : shared_from_this(); }

  // Starts `a` on the connection's executor, detached (its result ignored),
  // holding the Conn.
  template <typename T>
  void Spawn(awaitable<T> a) {
    asio::co_spawn(executor, std::move(a), [hold = Hold()](const auto&... /*ignored*/) {});
  }
  // Runs `f` on the connection's executor, later, holding the Conn.
  template <typename F>
  void Post(F f) {
    asio::post(executor, [hold = Hold(), f = std::move(f)]() mutable { f(); });
  }

  // Runs `a` on the connection's executor and resumes on the caller's. A
  // caller already there (a bus on the caller's executor) runs it in place:
  // a spawn would cost a coroutine, a post and executor copies per call.
  template <typename T>
  awaitable<T> On(awaitable<T> a) {
    if ((co_await asio::this_coro::executor) == executor) co_return co_await std::move(a);
    std::optional<T> out = co_await asio::co_spawn(executor, Optional(std::move(a)), use_awaitable);
    co_return std::move(*out);
  }

  // Own thread only: runs `a` there and waits for it.
  template <typename T>
  T RunBlocking(awaitable<T> a) {
    std::optional<T> out = asio::co_spawn(executor, Optional(std::move(a)), asio::use_future).get();
    return std::move(*out);
  }

  std::string where() const {
    return "junction://" + config.host + ":" + std::to_string(config.port);
  }

  // Resolves, connects and handshakes on a socket of `io` (the
  // connection's executor, or the opening thread's own io_context for the
  // first connection on the caller's executor), which becomes `socket` on
  // `executor`; Start() then runs the connection.
  awaitable<Status> Connect(asio::any_io_executor io);
  awaitable<Status> Handshake(tcp::socket& sock);
  void Start();
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

  // On the connection's executor: queues `ack` for the next ACK frame (one
  // per turn of the executor), or fails it.
  void QueueAck(PendingAck ack);
  static awaitable<void> SendAcks(Conn* self, std::vector<PendingAck> acks);

  // Publish callers: `call` fails with DeadlineExceeded once `deadline`
  // passes unless finished before.
  void ExpireAt(const std::shared_ptr<PublishCall>& call, Deadline deadline);
  // Completes `call` (once) with its slice of the results, or `failed`.
  void Finish(PublishCall& call, const Status& failed, std::span<const PublishResult> results);
  static awaitable<void> ExpiryLoop(Conn* self);

  JunctionConfig config;
  BusOptions options;
  const Clock& clock;
  std::unique_ptr<asio::io_context> own_ctx;  // null on the caller's executor
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
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
  std::uint16_t version = c::kWireVersion;  // agreed in the last handshake
  Duration heartbeat{};
  asio::steady_timer* heartbeat_timer = nullptr;  // the current Heartbeat's: closing cancels it
  tcp::socket* connecting = nullptr;  // Connect's socket while it runs: closing closes it
  MonoTime last_received{};
  MonoTime last_sent{};
  Capabilities capabilities;
  std::uint64_t next_stream = 1;
  std::map<std::uint64_t, StreamInfo> streams;  // by the client's id
  std::vector<PendingAck> acks;
  bool acks_posted = false;
  std::map<std::string, std::shared_ptr<PublishBuffer>, std::less<>> publishes;  // by topic
  bool publishes_posted = false;
  // Publish callers with a deadline, by deadline; ExpiryLoop runs while
  // there are any, its timer set to the first (on the real clock; on any
  // other clock it looks every 20 ms).
  std::multimap<MonoTime, std::weak_ptr<PublishCall>> publish_expiries;
  bool expiry_running = false;                 // ExpiryLoop is started (posted) or running
  asio::steady_timer* expiry_timer = nullptr;  // ExpiryLoop's while it runs
  MonoTime expiry_due = MonoTime::max();       // when that timer fires
  std::minstd_rand jitter{std::random_device{}()};
  std::thread thread;
};

// Encodes a frame with a fresh correlation id; `encode(writer, corr)`.
template <typename Encode>
std::shared_ptr<Waiter> SendFrame(Conn* conn, OnLoss on_loss, Encode encode) {
  std::uint32_t corr = conn->NextCorrelation();
  std::vector<std::byte> frame;
  c::FrameWriter w(frame);
  encode(w, corr);
  return conn->Send(corr, std::move(frame), on_loss);
}

// The answer `waiter` gets, expected to be OK.
awaitable<Status> ExpectOk(std::shared_ptr<Waiter> waiter);

// A publish whose deadline passed after it was handed to the connection: it
// may still be stored (it goes out again on reconnection); publishing it
// again with the same message id stores it once.
Status PublishDeadlineExceeded();
// Internal: a FETCH or CLOSE_STREAM whose connection was lost.
Status RetryStatus();
bool IsRetry(const Status& s);
std::int64_t WallMs(const Clock& clock);
// The status an answer stands for when it is not the expected frame.
Status Unexpected(const Answer& answer, c::FrameType expected);

}  // namespace junction::transport::junction_client
