// The deadlines of junction:// publishes against a daemon that holds its
// answers: a publish whose deadline passes fails alone with DeadlineExceeded
// at that deadline, the others gathered into its frame get the late answer,
// and an answer that comes after a caller gave up is dropped.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "codec/record_batch.h"
#include "codec/wire.h"
#include "core/run_sync.h"
#include "junction/bus.h"
#include "junction/clock.h"

namespace junction::transport {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
namespace asio = boost::asio;
using asio::ip::tcp;
namespace c = codec;

Message Event(std::string id) {
  Message m;
  m.id = std::move(id);
  m.source = "/junction_publish_test";
  m.type = "test.event";
  return m;
}

// One connection on a loopback port: the handshake, then every PUBLISH is
// held unanswered until Release(); from then on each is answered at once
// (offsets counted from 0). Stops by itself when the client closes.
class HoldingDaemon {
 public:
  HoldingDaemon() : acceptor_(ctx_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~HoldingDaemon() {
    Release();
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }

  std::string url() const { return "junction://127.0.0.1:" + std::to_string(port_); }

  // Answers what is held, and everything after.
  void Release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }
  // The record count of each PUBLISH frame received so far.
  std::vector<std::uint32_t> publishes() {
    std::lock_guard lock(mutex_);
    return publishes_;
  }
  // Waits (at most 10 s) until `n` PUBLISH frames came.
  bool WaitForPublishes(std::size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return publishes_.size() >= n; });
  }

 private:
  void Serve() {
    boost::system::error_code ec;
    tcp::socket socket(ctx_);
    acceptor_.accept(socket, ec);
    if (ec) return;
    std::array<std::byte, c::kPreambleSize> preamble{};
    asio::read(socket, asio::buffer(preamble), ec);
    c::FrameDecoder decoder(c::kMaxMaxFrameBytes);
    std::uint64_t next_offset = 0;
    while (!ec) {
      std::optional<c::Frame> frame = decoder.Next();
      if (!frame) {
        if (decoder.error()) return;
        std::span<std::byte> room = decoder.Prepare(4096);
        std::size_t n = socket.read_some(asio::buffer(room.data(), room.size()), ec);
        decoder.Commit(n);
        continue;
      }
      std::vector<std::byte> out;
      c::FrameWriter w(out);
      if (frame->type() == c::FrameType::kHello) {
        // (Heartbeats every 5 s: the client's silence limit is far off.)
        c::EncodeWelcome(w, frame->header.correlation,
                         {.heartbeat = 5s, .server = "holding-daemon"});
      } else if (frame->type() == c::FrameType::kPing) {
        Result<std::uint64_t> nonce = c::DecodePing(frame->payload);
        c::EncodePing(w, c::FrameType::kPong, nonce.ok() ? *nonce : 0);
      } else if (frame->type() == c::FrameType::kPublish) {
        Result<c::PublishFrame> publish = c::DecodePublish(frame->payload);
        ASSERT_TRUE(publish.ok()) << publish.status();
        Result<c::BatchHeader> header = c::ParseBatchHeader(publish->batch);
        ASSERT_TRUE(header.ok()) << header.status();
        {
          std::unique_lock lock(mutex_);
          publishes_.push_back(header->record_count);
          changed_.notify_all();
          changed_.wait(lock, [&] { return released_; });
        }
        c::BeginPublished(w, frame->header.correlation, header->record_count);
        for (std::uint32_t i = 0; i < header->record_count; ++i) {
          c::EncodePublishedResult(w, {PartitionId(0), Offset(next_offset++), false});
        }
        w.End();
      } else {
        continue;  // nothing else this test needs answered
      }
      asio::write(socket, asio::buffer(out), ec);
    }
  }

  asio::io_context ctx_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool released_ = false;                 // guarded by mutex_
  std::vector<std::uint32_t> publishes_;  // guarded by mutex_
  std::thread thread_;
};

// Runs `io` until `done` holds or 10 s pass; false then.
template <typename Done>
bool RunUntil(asio::io_context& io, Done done) {
  auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < give_up) io.run_for(5ms);
  return done();
}

TEST(JunctionPublishTest, AGatheredPublishPastItsDeadlineFailsAloneAndTheOthersGetTheLateAnswer) {
  HoldingDaemon daemon;
  asio::io_context io;
  BusOptions options;
  options.executor = io.get_executor();  // both publishes gathered on this thread
  Result<std::unique_ptr<Bus>> bus = Bus::Open(daemon.url(), options);
  ASSERT_TRUE(bus.ok()) << bus.status();

  const auto start = std::chrono::steady_clock::now();
  std::optional<Result<PublishResult>> soon, patient;
  std::chrono::steady_clock::time_point soon_at;
  asio::co_spawn(
      io,
      [&]() -> Awaitable<void> {
        soon =
            co_await (*bus)->Publish("t", Event("soon"), {}, Deadline::After(RealClock(), 200ms));
        soon_at = std::chrono::steady_clock::now();
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> Awaitable<void> {
        patient = co_await (*bus)->Publish("t", Event("patient"), {}, Deadline::Infinite());
      },
      asio::detached);

  ASSERT_TRUE(RunUntil(io, [&] { return soon.has_value(); }));
  EXPECT_EQ(soon->status().code(), StatusCode::kDeadlineExceeded) << soon->status();
  EXPECT_GE(soon_at - start, 200ms);
  EXPECT_FALSE(patient.has_value());                             // still waiting for the answer
  EXPECT_EQ(daemon.publishes(), std::vector<std::uint32_t>{2});  // one frame for both

  daemon.Release();
  ASSERT_TRUE(RunUntil(io, [&] { return patient.has_value(); }));
  ASSERT_TRUE(patient->ok()) << patient->status();
  EXPECT_EQ((*patient)->offset, Offset(1));  // its own slice of the answer

  std::optional<Status> closed;
  asio::co_spawn(
      io, [&]() -> Awaitable<void> { closed = co_await (*bus)->Close(); }, asio::detached);
  ASSERT_TRUE(RunUntil(io, [&] { return closed.has_value(); }));
  EXPECT_TRUE(closed->ok()) << *closed;
  bus->reset();
  io.run_for(50ms);  // what the connection still has to finish
}

TEST(JunctionPublishTest, ALateAnswerAfterTheDeadlineIsDroppedAndTheNextPublishGetsItsOwn) {
  HoldingDaemon daemon;
  Result<std::unique_ptr<Bus>> bus = Bus::Open(daemon.url());  // its own thread
  ASSERT_TRUE(bus.ok()) << bus.status();

  const auto start = std::chrono::steady_clock::now();
  Result<PublishResult> lost =
      RunSync((*bus)->Publish("t", Event("lost"), {}, Deadline::After(RealClock(), 150ms)));
  EXPECT_EQ(lost.status().code(), StatusCode::kDeadlineExceeded) << lost.status();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  ASSERT_TRUE(daemon.WaitForPublishes(1));  // it was sent: only the answer is late

  daemon.Release();  // the late answer comes, for nobody
  Result<PublishResult> next =
      RunSync((*bus)->Publish("t", Event("next"), {}, Deadline::After(RealClock(), 10s)));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->offset, Offset(1));
  EXPECT_EQ(daemon.publishes(), (std::vector<std::uint32_t>{1, 1}));
  EXPECT_TRUE(RunSync((*bus)->Close()).ok());
}

// A publish awaited after its deadline passed (on the bus's clock) is
// refused before anything is sent, never completed inside its own
// initiation; the next publish goes out alone.
TEST(JunctionPublishTest, APublishAwaitedPastItsDeadlineSendsNothing) {
  HoldingDaemon daemon;
  daemon.Release();  // answers at once
  ManualClock clock;
  asio::io_context io;
  BusOptions options;
  options.executor = io.get_executor();
  options.clock = &clock;
  Result<std::unique_ptr<Bus>> bus = Bus::Open(daemon.url(), options);
  ASSERT_TRUE(bus.ok()) << bus.status();

  std::optional<Result<PublishResult>> late, next;
  std::optional<Result<std::vector<PublishResult>>> late_batch;
  asio::co_spawn(
      io,
      [&]() -> Awaitable<void> {
        Awaitable<Result<PublishResult>> publish =
            (*bus)->Publish("t", Event("late"), {}, Deadline::After(clock, 10ms));
        std::vector<Message> two;
        two.push_back(Event("late-1"));
        two.push_back(Event("late-2"));
        Awaitable<Result<std::vector<PublishResult>>> batch =
            (*bus)->PublishBatch("t", std::move(two), {}, Deadline::After(clock, 10ms));
        clock.Advance(20ms);  // past the deadlines before the calls start
        late = co_await std::move(publish);
        late_batch = co_await std::move(batch);
        next = co_await (*bus)->Publish("t", Event("next"), {}, Deadline::Infinite());
      },
      asio::detached);
  ASSERT_TRUE(RunUntil(io, [&] { return next.has_value(); }));
  EXPECT_EQ(late->status().code(), StatusCode::kDeadlineExceeded) << late->status();
  EXPECT_THAT(late->status().message(), ::testing::HasSubstr("nothing was sent"));
  // (PublishBatch is a coroutine: its own check of the deadline refuses it.)
  EXPECT_EQ(late_batch->status().code(), StatusCode::kDeadlineExceeded) << late_batch->status();
  ASSERT_TRUE(next->ok()) << next->status();
  EXPECT_EQ((*next)->offset, Offset(0));                         // the first stored
  EXPECT_EQ(daemon.publishes(), std::vector<std::uint32_t>{1});  // "next" alone

  std::optional<Status> closed;
  asio::co_spawn(
      io, [&]() -> Awaitable<void> { closed = co_await (*bus)->Close(); }, asio::detached);
  ASSERT_TRUE(RunUntil(io, [&] { return closed.has_value(); }));
  bus->reset();
  io.run_for(50ms);
}

}  // namespace
}  // namespace junction::transport
