// The runner of the model-based randomized test of the embedded broker
// (model_test.cc): one seed's random sequence of ops against a Bus on a
// ManualClock and against the reference model in broker_model.h. Single
// thread: the runner drives its own io_context.

#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "broker_model.h"
#include "core/env.h"
#include "junction/bus.h"
#include "junction/clock.h"

namespace junction::model_test {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

constexpr std::string_view kTopic = "t";
constexpr std::uint32_t kPartitions = 2;
// Where a run's bus lives. The real disk costs ~0.35 s of syncs per seed, so
// most file:// seeds run the same durable code on an in-memory Env.
enum class Where { kFileOnMemEnv, kFileOnDisk, kMem };

struct Suite {
  Where where;
  std::uint64_t seed_base;
  int seeds;
  int steps;  // ops per sequence, before the drain
  const char* test_name;
};
constexpr int kMaxMembersPerGroup = 3;
constexpr int kTail = 20;                 // ops shown with a divergence
constexpr auto kHangGuard = 20s;          // real time one bus call may take
constexpr Duration kDedupeWindow = 2min;  // TopicOptions' default
// Every clock advance is whole seconds plus 1 ms, every broker duration whole
// seconds: a timer never falls due exactly at the current time (unless it is
// zero), so no check depends on whether the broker compares with < or <=.
constexpr Duration kTick = 1ms;

// The integer in the environment variable `name`, else `fallback`.
int EnvInt(const char* name, int fallback);
// `t` in seconds with milliseconds, e.g. "12.001s".
std::string Time(Duration t);

struct Held {
  Delivery delivery;
  std::size_t index = 0;
  std::uint64_t token = 0;
};

struct Member {
  int id = 0;
  int group = 0;
  std::unique_ptr<Subscription> subscription;
  std::vector<Held> held;
  // The last state (Runner::change_) at which its Next() found nothing after
  // an earlier Next() had already processed the timers due then.
  std::uint64_t empty_at = UINT64_MAX;
};

// One seed: a Bus, the model, and the random sequence between them.
class Runner {
 public:
  Runner(std::uint64_t seed, const Suite& suite, bool trace);
  ~Runner();
  std::string Run();

 private:
  // Runs `awaitable` on the test's io_context until it completes.
  template <typename T>
  T Await(Awaitable<T> awaitable) {
    std::optional<T> result;
    std::exception_ptr exception;
    bool done = false;
    boost::asio::co_spawn(
        ctx_, [&]() -> Awaitable<void> { result.emplace(co_await std::move(awaitable)); },
        [&](std::exception_ptr e) {
          exception = std::move(e);
          done = true;
        });
    const auto limit = std::chrono::steady_clock::now() + kHangGuard;
    while (!done) {
      ctx_.run_one_for(50ms);
      if (!done && std::chrono::steady_clock::now() > limit) {
        // The coroutine still references the bus: no way to unwind cleanly.
        Diverge("a bus call did not complete within " + std::to_string(kHangGuard.count()) +
                " s of real time");
        std::fprintf(stderr, "%s\n", failure_.c_str());
        std::abort();
      }
    }
    if (exception) {
      try {
        std::rethrow_exception(exception);
      } catch (const std::exception& e) {
        Diverge(std::string("a bus call threw: ") + e.what());
      } catch (...) {
        Diverge("a bus call threw");
      }
      std::fprintf(stderr, "%s\n", failure_.c_str());
      std::abort();
    }
    return std::move(*result);
  }

  bool Diverge(const std::string& what);
  bool Check(const std::string& error);
  bool Expect(const Status& status, StatusCode code, const std::string& what);
  void Trace(const std::string& line, bool changes = true);
  std::uint64_t Random(std::uint64_t n);

  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Random(items.size())];
  }

  SubscribeOptions Options(int group) const;
  int MembersOf(int group) const;
  std::string Name(const Member& m) const;

  // ---- operations ----
  bool Open();
  bool Step();
  bool StoreResult(const Message& message, std::optional<PartitionId> forced,
                   const Result<PublishResult>& result, Duration deliver_at);
  bool Publish();
  bool Republish();
  bool Join(int group);
  bool JoinRandom();
  bool Leave(std::size_t which);
  bool Leave();
  bool Poll(Member& member, Held* delivered);
  bool PollRandom();
  bool Sweep(int group, bool ack = false, bool* any = nullptr);
  bool SettleHeld(int group, const Held& held, Settle kind, std::optional<Duration> delay);
  bool SettleRandom(Settle kind);
  bool SettleOrphan();
  void Advance(Duration delta);
  bool AdvanceRandom();
  bool Seek();
  bool Describe();
  bool Restart();

  // ---- the end ----
  bool Drain();
  bool CheckDeadLetters();
  bool CheckNothingAfterRestart();

  struct Copy {
    std::size_t index;
    Duration stored_at;
  };

  const std::uint64_t seed_;
  const Suite suite_;
  const bool durable_;
  const bool trace_;
  std::mt19937_64 rng_;
  ManualClock clock_;
  boost::asio::io_context ctx_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      ctx_.get_executor()};
  std::filesystem::path dir_;
  std::string url_;
  std::unique_ptr<Env> env_;  // file:// on an in-memory Env (else the real disk)
  Model model_;
  std::unique_ptr<Bus> bus_;  // outlives the subscriptions below
  std::vector<Member> members_;
  std::vector<std::pair<int, Held>> orphans_;  // deliveries of members that left
  std::uint64_t change_ = 0;                   // counts ops that may have changed the bus's state
  std::uint64_t first_empty_at_ = UINT64_MAX;  // change_ of the last Next() that found nothing
  int next_member_ = 0;
  int published_ = 0;
  int op_ = 0;
  std::vector<std::uint64_t> next_offset_ = std::vector<std::uint64_t>(kPartitions, 0);
  std::map<std::string, PartitionId> key_partition_;
  std::map<std::string, std::vector<Copy>> copies_;  // by message id
  std::deque<std::string> tail_;
  std::chrono::steady_clock::time_point traced_ = std::chrono::steady_clock::now();
  std::string failure_;
};

}  // namespace junction::model_test
