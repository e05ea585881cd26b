// StateStore on FaultInjectionEnv, driven on one io_context thread (and once with a
// blocking pool): durability across reopen and crashes, compaction, Put order.

#include "broker/state_store.h"

#include <cerrno>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "core/fault_injection_env.h"
#include "storage/log_test_util.h"

namespace junction::broker {
namespace {

using storage::test_util::PollUntil;
using Entries = StateStore::Entries;
using Updates = std::vector<StateStore::Update>;

constexpr std::string_view kDir = "/state";

std::vector<std::string> Generations(Env& env) {
  std::vector<std::string> out;
  for (const std::string& name : env.GetChildren(kDir).value_or(std::vector<std::string>{})) {
    if (name.starts_with("gen-")) out.push_back(name);
  }
  return out;
}

// Starts `op` on `io`; `out` is set when it completes.
void Spawn(boost::asio::io_context& io, boost::asio::awaitable<Status> op,
           std::optional<Status>& out) {
  boost::asio::co_spawn(io, std::move(op), [&out](const std::exception_ptr& e, Status s) {
    out = e ? InternalError("exception") : std::move(s);
  });
}

class StateStoreTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<StateStore>> OpenStore(StateStoreOptions options = {}) {
    return StateStore::Open(storage::test_util::SingleThreadContext(env_, clock_, io_),
                            std::string(kDir), options);
  }
  Status Run(boost::asio::awaitable<Status> op) {
    std::optional<Status> out;
    Spawn(io_, std::move(op), out);
    if (!PollUntil(io_, [&] { return out.has_value(); })) return InternalError("never completed");
    return *out;
  }
  // Puts `updates` on the store and on `model`.
  Status Put(StateStore& store, Updates updates, Entries& model) {
    for (const auto& [key, value] : updates) {
      if (value) {
        model[key] = *value;
      } else {
        model.erase(key);
      }
    }
    return Run(store.Put(std::move(updates)));
  }

  storage::test_util::ScopedLogLevel quiet_{log::Level::kError};
  FaultInjectionEnv env_;
  ManualClock clock_;
  boost::asio::io_context io_;
};

TEST_F(StateStoreTest, PutsAndDeletesSurviveReopen) {
  Entries model;
  {
    auto store = *OpenStore();
    EXPECT_TRUE(store->entries().empty());
    ASSERT_TRUE(
        Put(*store, {{"a", "1"}, {"b", "2"}, {"x", "gone"}, {"x", std::nullopt}}, model).ok());
    ASSERT_TRUE(Put(*store, {{"a", std::nullopt}, {"c", "3"}}, model).ok());
    ASSERT_TRUE(Put(*store, {{"b", "22"}, {"", "empty key"}}, model).ok());
    EXPECT_EQ(store->entries(), (Entries{{"", "empty key"}, {"b", "22"}, {"c", "3"}}));
    EXPECT_EQ(store->live_bytes(), 3u + 9u + 2u);
    ASSERT_TRUE(Run(store->Close()).ok());
    EXPECT_EQ(Run(store->Put({{"d", "4"}})).code(), StatusCode::kFailedPrecondition);
  }
  auto store = *OpenStore();
  EXPECT_EQ(store->entries(), model);
  EXPECT_EQ(store->live_bytes(), 3u + 9u + 2u);
}

TEST_F(StateStoreTest, AcknowledgedPutsSurvivePowerLoss) {
  Entries model;
  auto store = *OpenStore();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Put(*store, {{"k" + std::to_string(i % 7), std::to_string(i)}}, model).ok());
  }
  env_.SimulateCrash(CrashMode::kTearAndGarbleUnsynced, 7);
  store.reset();
  EXPECT_EQ((*OpenStore())->entries(), model);
}

TEST_F(StateStoreTest, SecondOpenOfTheSameDirectoryIsRefused) {
  auto store = *OpenStore();
  EXPECT_EQ(OpenStore().status().code(), StatusCode::kUnavailable);
}

TEST_F(StateStoreTest, ManyPutsCompactAndTheLogShrinks) {
  Entries model;
  auto store = *OpenStore();  // compacts above max(1 MiB, 4 x live)
  std::uint64_t largest = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string value(1000, static_cast<char>('a' + i % 26));
    ASSERT_TRUE(Put(*store, {{"group/" + std::to_string(i % 40), value}}, model).ok());
    largest = std::max(largest, store->log_bytes());
  }
  EXPECT_GT(store->generation(), 1u);
  EXPECT_LE(largest, (1u << 20) + 2048u);  // never much above the threshold
  EXPECT_LT(store->log_bytes(), largest);
  EXPECT_EQ(store->entries(), model);
  ASSERT_TRUE(Run(store->Compact()).ok());
  EXPECT_LT(store->log_bytes(), store->live_bytes() + 4096);
  EXPECT_EQ(Generations(env_),
            std::vector<std::string>{"gen-" + std::to_string(store->generation())});
  ASSERT_TRUE(Run(store->Close()).ok());
  store = *OpenStore();
  EXPECT_EQ(store->entries(), model);
}

TEST_F(StateStoreTest, CompactionIsDurableUnderAnUnsafeFsyncPolicy) {
  Entries model;
  auto store = *OpenStore({.fsync = storage::FsyncPolicy::Never()});
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Put(*store, {{"k" + std::to_string(i % 4), std::to_string(i)}}, model).ok());
  }
  ASSERT_TRUE(Run(store->Compact()).ok());
  env_.SimulateCrash(CrashMode::kDropUnsynced);
  store.reset();
  store = *OpenStore();
  EXPECT_EQ(store->generation(), 2u);
  EXPECT_EQ(store->entries(), model);
}

TEST_F(StateStoreTest, FailedCompactionBeforeTheSwitchKeepsTheOldGeneration) {
  Entries model;
  auto store = *OpenStore();
  ASSERT_TRUE(Put(*store, {{"a", "1"}}, model).ok());
  env_.FailNth(FaultOp::kSync, 1, ENOSPC);  // the new generation's first sync
  EXPECT_EQ(Run(store->Compact()).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(store->generation(), 1u);
  EXPECT_EQ(Generations(env_), std::vector<std::string>{"gen-1"});  // the new one removed
  ASSERT_TRUE(Put(*store, {{"b", "2"}}, model).ok());
  ASSERT_TRUE(Run(store->Compact()).ok());
  EXPECT_EQ(store->generation(), 3u);
  store.reset();
  EXPECT_EQ((*OpenStore())->entries(), model);
}

TEST_F(StateStoreTest, CorruptCurrentIsDataLoss) {
  ASSERT_TRUE(Run((*OpenStore())->Close()).ok());
  const std::string current = std::string(kDir) + "/CURRENT";
  ASSERT_TRUE(storage::test_util::RewriteFile(env_, current, "gen-1\n").ok());
  Status status = OpenStore().status();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("/state/CURRENT is corrupt"), std::string::npos) << status;

  ASSERT_TRUE(
      storage::test_util::RewriteFile(env_, current, "junction state log, format 1\ngeneration 9\n")
          .ok());
  status = OpenStore().status();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("/state/gen-9 does not exist"), std::string::npos) << status;
  EXPECT_EQ(Generations(env_), std::vector<std::string>{"gen-1"});  // nothing was removed
}

// The puts of the crash test: eight keys rewritten over and over.
Updates CrashPut(int i) {
  return {{"key" + std::to_string(i % 8), std::string(100, static_cast<char>('a' + i % 26))},
          {"gone" + std::to_string(i), std::nullopt}};
}

// One run: 60 acknowledged Puts, then a Put that triggers compaction while every
// mutation from the `fail_from`-th on fails (the process dies there), power loss, reopen.
struct CrashRun {
  std::uint64_t mutations = 0;  // made by the last Put (and its compaction)
  std::optional<Status> last_put;
  Entries before, after, recovered;
  std::vector<std::string> generations;  // after reopening
};

CrashRun RunCrash(std::optional<int> fail_from, CrashMode mode, std::uint64_t seed) {
  CrashRun run;
  FaultInjectionEnv env;
  ManualClock clock;
  boost::asio::io_context io;
  auto context = storage::test_util::SingleThreadContext(env, clock, io);
  auto put = [&](StateStore& store, Updates updates) {
    std::optional<Status> out;
    Spawn(io, store.Put(std::move(updates)), out);
    EXPECT_TRUE(PollUntil(io, [&] { return out.has_value(); }));
    return out.value_or(InternalError("never completed"));
  };
  {
    auto store = *StateStore::Open(context, std::string(kDir), {.compact_min_bytes = 1u << 30});
    for (int i = 0; i < 60; ++i) EXPECT_TRUE(put(*store, CrashPut(i)).ok());
    run.before = store->entries();
  }
  const StateStoreOptions options{.compact_min_bytes = 4096};
  auto store = *StateStore::Open(context, std::string(kDir), options);
  const std::uint64_t start = env.mutations();
  if (fail_from) env.FailNth(FaultOp::kAny, *fail_from, EIO, {.sticky = true});
  run.last_put = put(*store, CrashPut(60));
  run.mutations = env.mutations() - start;
  env.SimulateCrash(mode, seed);
  store.reset();
  env.ClearFaults();
  run.after = run.before;
  for (auto& [key, value] : CrashPut(60)) {
    if (value) run.after[key] = *value;
  }
  Result<std::unique_ptr<StateStore>> reopened =
      StateStore::Open(context, std::string(kDir), options);
  EXPECT_TRUE(reopened.ok()) << reopened.status();
  if (reopened.ok()) run.recovered = (*reopened)->entries();
  run.generations = Generations(env);
  return run;
}

TEST(StateStoreCrashTest, CrashAtEveryStepOfACompactionKeepsTheOldOrTheNewState) {
  storage::test_util::ScopedLogLevel quiet(log::Level::kOff);
  CrashRun clean = RunCrash(std::nullopt, CrashMode::kDropUnsynced, 0);
  ASSERT_TRUE(clean.last_put->ok());
  ASSERT_EQ(clean.recovered, clean.after);
  ASSERT_EQ(clean.generations, std::vector<std::string>{"gen-2"});  // it did compact
  ASSERT_GT(clean.mutations, 10u);
  for (int k = 1; k <= static_cast<int>(clean.mutations) + 1; ++k) {
    for (CrashMode mode : {CrashMode::kDropUnsynced, CrashMode::kTearAndGarbleUnsynced}) {
      SCOPED_TRACE("fail from mutation " + std::to_string(k) + ", mode " +
                   std::to_string(static_cast<int>(mode)));
      CrashRun run = RunCrash(k, mode, static_cast<std::uint64_t>(k));
      if (run.last_put->ok()) {
        EXPECT_EQ(run.recovered, run.after);
      } else {
        EXPECT_TRUE(run.recovered == run.before || run.recovered == run.after);
      }
      EXPECT_EQ(run.generations.size(), 1u);
    }
  }
}

// Eight writers, each awaiting 25 Puts in turn, so that Puts arrive while compactions
// run: every Put is applied and logged in the order it was called.
void ConcurrentPutsKeepOrder(bool blocking_pool) {
  FaultInjectionEnv env;
  ManualClock clock;
  boost::asio::io_context io;
  boost::asio::thread_pool pool(2);
  boost::asio::any_io_executor blocking = io.get_executor();
  if (blocking_pool) blocking = pool.get_executor();
  storage::Log::Context context{env, clock, io.get_executor(), blocking};
  auto run_until = [&](const std::function<bool()>& done) {
    auto guard = boost::asio::make_work_guard(io);
    io.restart();
    while (!done()) io.run_one();  // with the pool, waits for its posts
  };
  constexpr int kWriters = 8;
  constexpr int kPutsEach = 25;
  auto store = *StateStore::Open(context, std::string(kDir), {.compact_min_bytes = 4096});
  Entries model;
  int next_seq = 0;
  int done = 0;
  int last_seen = -1;  // "seq" as of the last completion: applied Puts never go back
  auto writer = [&](int w) -> boost::asio::awaitable<void> {
    for (int n = 0; n < kPutsEach; ++n) {
      const int seq = next_seq++;
      Updates updates{{"seq", std::to_string(seq)},
                      {"w" + std::to_string(w), std::string(200, static_cast<char>('a' + n))}};
      for (const auto& [key, value] : updates) model[key] = *value;
      Status status = co_await store->Put(std::move(updates));
      EXPECT_TRUE(status.ok()) << status;
      const int seen = std::stoi(store->entries().at("seq"));
      EXPECT_GE(seen, std::max(seq, last_seen));
      last_seen = seen;
    }
    ++done;
  };
  for (int w = 0; w < kWriters; ++w) boost::asio::co_spawn(io, writer(w), boost::asio::detached);
  run_until([&] { return done == kWriters; });
  EXPECT_GT(store->generation(), 3u);
  EXPECT_EQ(store->entries(), model);
  const std::string last_generation = "gen-" + std::to_string(store->generation());
  std::optional<Status> closed;
  Spawn(io, store->Close(), closed);
  run_until([&] { return closed.has_value(); });
  ASSERT_TRUE(closed->ok()) << *closed;
  store.reset();
  pool.join();  // the pool's last flush job may hold the log's lock a moment past Close
  context.blocking = io.get_executor();

  // The current generation holds the compaction's snapshot, then the later Puts in order.
  auto log = *storage::Log::Open(context, std::string(kDir) + "/" + last_generation, {});
  auto batches = *storage::test_util::ReadWholeLog(*log);
  std::vector<int> seqs;
  for (const auto& batch : batches) {
    for (const auto& record : batch.records) {
      if (record.key == "seq") seqs.push_back(std::stoi(*record.value));
    }
  }
  // Deterministic on one thread: Puts follow the last compaction (with the pool, it
  // may have been the last Put's).
  if (!blocking_pool) {
    EXPECT_GT(seqs.size(), 1u);
  }
  ASSERT_FALSE(seqs.empty());
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()) &&
              std::adjacent_find(seqs.begin(), seqs.end()) == seqs.end());
  EXPECT_EQ(seqs.back(), kWriters * kPutsEach - 1);
  log.reset();
  EXPECT_EQ((*StateStore::Open(context, std::string(kDir), StateStoreOptions{}))->entries(), model);
}

TEST(StateStoreOrderTest, ConcurrentPutsKeepOrderAcrossCompactions) {
  storage::test_util::ScopedLogLevel quiet(log::Level::kError);
  ConcurrentPutsKeepOrder(/*blocking_pool=*/false);
}

TEST(StateStoreOrderTest, ConcurrentPutsKeepOrderWithABlockingPool) {
  storage::test_util::ScopedLogLevel quiet(log::Level::kError);
  ConcurrentPutsKeepOrder(/*blocking_pool=*/true);
}

}  // namespace
}  // namespace junction::broker
