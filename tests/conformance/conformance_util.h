#pragma once

// The fixture and helpers of the conformance suite: the async contract of
// include/junction/bus.h (DESIGN.md "Async semantics"), checked for every
// transport URL through the public API only.
//
// Each test body is a coroutine run by Run() on an io_context on the test
// thread. Time is a ManualClock (BusOptions::clock): tests move it with
// clock().Advance() and poll with Next(Deadline::Past()); the only real-time
// wait is Run's 30 s guard, which fails a test whose bus hangs.
//
// Helpers named Must*/Publish/Join throw TestFailure on an unexpected error;
// Run reports it at the caller's line and ends the test. Inside a coroutine use
// EXPECT_* or CO_ASSERT_* (ASSERT_* would `return`, which a coroutine cannot).

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "junction/bus.h"
#include "junction/clock.h"
#include "junction/deadline.h"
#include "junction/message.h"
#include "junction/result.h"
#include "junction/status.h"
#include "server/server.h"

// ASSERT_* for coroutine bodies: fail the test and co_return.
#define CO_FATAL_FAILURE_(message) \
  co_return GTEST_MESSAGE_(message, ::testing::TestPartResult::kFatalFailure)
#define CO_ASSERT_TRUE(condition) \
  GTEST_TEST_BOOLEAN_(condition, #condition, false, true, CO_FATAL_FAILURE_)
#define CO_ASSERT_EQ(a, b) \
  GTEST_PRED_FORMAT2_(::testing::internal::EqHelper::Compare, a, b, CO_FATAL_FAILURE_)

namespace junction::conformance {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

inline constexpr Deadline kForever = Deadline::Infinite();
inline constexpr Deadline kNow = Deadline::Past();

// A call site, filled in by default arguments (std::source_location is not
// usable by clang-14 with libstdc++ 12, which clang-tidy runs on).
struct Where {
  const char* file = "";
  int line = 0;
  static constexpr Where Current(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return Where{file, line};
  }
};

// An unexpected error in a helper; Run reports it at `where`.
class TestFailure : public std::runtime_error {
 public:
  TestFailure(const std::string& what, Where where) : std::runtime_error(what), where_(where) {}
  const Where& where() const { return where_; }

 private:
  Where where_;
};

inline Status StatusOf(const Status& status) { return status; }
template <typename T>
Status StatusOf(const Result<T>& result) {
  return result.status();
}
template <typename T>
StatusCode Code(const T& outcome) {
  return StatusOf(outcome).code();
}

// The value, or a TestFailure naming the status and the caller's line.
template <typename T>
T Must(Result<T> result, Where where = Where::Current()) {
  if (!result.ok()) throw TestFailure(result.status().ToString(), where);
  return std::move(result).value();
}
inline void Must(const Status& status, Where where = Where::Current()) {
  if (!status.ok()) throw TestFailure(status.ToString(), where);
}

// A valid event with id `id` (source "/conformance", type "test.event").
inline Message Msg(std::string id, std::optional<std::string> key = std::nullopt,
                   std::string data = {}) {
  Message m;
  m.id = std::move(id);
  m.source = "/conformance";
  m.type = "test.event";
  m.key = std::move(key);
  m.data = std::move(data);
  return m;
}

// A batch of one. (GCC 12 cannot keep a braced list's array in a coroutine
// frame: `co_await bus().PublishBatch(topic, {m}, ...)` does not compile.)
inline std::vector<Message> One(Message message) {
  std::vector<Message> batch;
  batch.push_back(std::move(message));
  return batch;
}

// Subscription options joining `group` (empty: ephemeral).
inline SubscribeOptions Group(std::string group) {
  SubscribeOptions options;
  options.group = std::move(group);
  return options;
}

inline std::vector<std::string> Ids(const std::vector<Delivery>& deliveries) {
  std::vector<std::string> ids;
  for (const Delivery& d : deliveries) ids.push_back(d.message().id);
  return ids;
}

// The header's value, or "<absent>".
inline std::string Header(const Message& message, std::string_view name) {
  auto it = message.headers.find(std::string(name));
  return it == message.headers.end() ? "<absent>" : it->second;
}

// The outcome of an operation started with Spawn(): lets a test run two calls
// at once (a Request and the Responder serving it). Single-threaded: used on
// the test's io_context only.
template <typename T>
class Pending {
 public:
  explicit Pending(const boost::asio::any_io_executor& executor)
      : wake_(executor, boost::asio::steady_timer::time_point::max()) {}
  bool done() const { return outcome_.has_value(); }
  void Set(T outcome) {
    outcome_.emplace(std::move(outcome));
    wake_.cancel();
  }
  // Waits for the outcome (event-driven: the timer never expires, Set cancels it).
  Awaitable<T> Wait() {
    while (!outcome_) {
      boost::system::error_code ignored;
      co_await wake_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    }
    co_return std::move(*outcome_);
  }

 private:
  boost::asio::steady_timer wake_;
  std::optional<T> outcome_;
};

template <typename T>
Awaitable<void> Fulfil(std::shared_ptr<Pending<T>> pending, Awaitable<T> operation) {
  pending->Set(co_await std::move(operation));
}

// A parameter that ends in this runs the bus on the test's io_context
// (BusOptions::executor) instead of a thread of its own: the embedded
// broker's shard, or the junction:// connection.
inline constexpr std::string_view kOnTestExecutor = " on the test's executor";

// One suite, one transport per instantiation parameter: "mem://", or
// "file://" (completed with a fresh temporary directory per test), or
// "junction://" (a junctiond started in the test's process on a fresh
// file:// directory, on the test's clock, and reached over loopback), the
// last two possibly followed by kOnTestExecutor.
class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Runs `body` to completion on the test thread; FAILs after 30 s real time.
  void Run(const std::function<Awaitable<void>()>& body);

  Bus& bus() { return *world_->bus; }
  const Capabilities& caps() { return world_->bus->capabilities(); }
  ManualClock& clock() { return world_->clock; }

  // Closes the bus and opens the same URL again (with `options` when given;
  // its clock is always the test's ManualClock). REQUIRES: the test holds no
  // Subscription or Responder of the old bus.
  Awaitable<void> Reopen(std::optional<BusOptions> options = std::nullopt,
                         Where where = Where::Current());

  // Destroys the bus (closing it if still open). A later bus() call is not
  // allowed; TearDown copes.
  void DropBus() { world_->bus.reset(); }

  // Starts `operation` now; the test awaits it later with ->Wait().
  template <typename T>
  std::shared_ptr<Pending<T>> Spawn(Awaitable<T> operation) {
    auto pending = std::make_shared<Pending<T>>(world_->ctx.get_executor());
    boost::asio::co_spawn(world_->ctx, Fulfil(pending, std::move(operation)), ReportException);
    return pending;
  }

  // When `capability` is missing, runs `refused_call` and expects it to fail
  // with Unimplemented; returns `capability`. `refused_call` is not run when
  // the capability is there.
  template <typename T>
  Awaitable<bool> Supported(bool capability, Awaitable<T> refused_call,
                            Where where = Where::Current()) {
    if (capability) co_return true;
    Status status = StatusOf(co_await std::move(refused_call));
    if (status.code() != StatusCode::kUnimplemented) {
      ADD_FAILURE_AT(where.file, static_cast<int>(where.line))
          << "a missing capability must be refused with Unimplemented, got " << status;
    }
    co_return false;
  }
  Awaitable<bool> SupportsGroups(Where where = Where::Current()) {
    return Supported(caps().groups, bus().Subscribe("orders", Group("g"), kForever), where);
  }

  Awaitable<PublishResult> Publish(std::string topic, Message message, PublishOptions options = {},
                                   Where where = Where::Current());
  // Publishes "<prefix>0".."<prefix>{n-1}" (keyless) one by one.
  Awaitable<std::vector<PublishResult>> PublishN(std::string topic, int n, std::string prefix = "m",
                                                 Where where = Where::Current());
  Awaitable<std::unique_ptr<Subscription>> Join(std::string topic, SubscribeOptions options,
                                                Where where = Where::Current());
  Awaitable<GroupInfo> Describe(std::string topic, std::string group,
                                Where where = Where::Current());

  // Every delivery available now (polls Next(Deadline::Past()) until
  // DeadlineExceeded; any other error fails the test).
  static Awaitable<std::vector<Delivery>> Drain(Subscription& sub, Where where = Where::Current());
  // The next delivery, waiting for it (for work the bus finishes in the
  // background, such as storing a dead letter; only Run's guard bounds it).
  static Awaitable<Delivery> AwaitOne(Subscription& sub, Where where = Where::Current()) {
    co_return Must(co_await sub.Next(kForever), where);
  }
  // Lets whatever else is queued on the test's io_context run first.
  static Awaitable<void> Yield() {
    co_await boost::asio::post(co_await boost::asio::this_coro::executor,
                               boost::asio::use_awaitable);
  }
  // Exactly one delivery available now.
  static Awaitable<Delivery> TakeOne(Subscription& sub, Where where = Where::Current());

 private:
  // What a hung bus may still touch from its own threads: leaked, not
  // destroyed, when Run times out.
  struct World {
    ManualClock clock;
    boost::asio::io_context ctx;
    std::unique_ptr<server::Server> server;  // junction:// only: the daemon, in-process
    std::unique_ptr<Bus> bus;
  };

  static void ReportException(const std::exception_ptr& e);

  std::string url_;
  bool on_test_executor_ = false;
  std::filesystem::path dir_;  // file:// only
  std::unique_ptr<World> world_;
  bool hung_ = false;
};

}  // namespace junction::conformance
