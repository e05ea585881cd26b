// Group commit under 16 concurrent appenders: every acknowledgement comes after a Sync
// that covers the batch (rule one), and appends share syncs. Runs once with the
// blocking work on the shard (deterministic) and once on a 2-thread pool.

#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "core/fault_injection_env.h"
#include "storage/log.h"
#include "storage/log_test_util.h"

namespace junction::storage {
namespace {

using namespace test_util;  // NOLINT(google-build-using-namespace): test helpers
using std::chrono::hours;

constexpr int kAppenders = 16;
constexpr int kBatchesPerAppender = 40;
constexpr std::string_view kDir = "/gc-0";

// Empty when the batch acknowledged at `base` is durable: the Syncs seen by `env` cover
// it in its segment, the segment's name was made durable by SyncDir, every older
// segment is durable whole, and the bytes there are the batch appended.
std::string CheckDurable(RecordingEnv& env, Offset base, const Bytes& appended) {
  std::vector<Offset> segments = ListSegments(env, kDir);
  std::string problem;
  for (std::size_t s = 0; s < segments.size() && segments[s] <= base; ++s) {
    fs::path path = SegmentFile(kDir, segments[s], ".log");
    std::optional<RecordingEnv::FileState> state = env.file(path);
    if (!state || !state->name_durable) return path.string() + ": name not durable";
    bool holds = s + 1 == segments.size() || base < segments[s + 1];
    if (!holds) {
      std::uint64_t size = env.GetFileSize(path).value_or(0);
      if (state->durable_bytes < size) return path.string() + ": sealed but not all durable";
      continue;
    }
    std::string bytes = ReadFileOrEmpty(env, path);
    for (std::uint64_t at = 0; at + codec::kBatchHeaderSize <= bytes.size();) {
      Result<codec::BatchHeader> h =
          codec::ParseBatchHeader(std::as_bytes(std::span(bytes)).subspan(at));
      if (!h.ok()) return path.string() + ": " + h.status().ToString();
      if (h->base_offset == base) {
        if (bytes.compare(at, appended.size(), AsString(Stamped(appended, base))) != 0) {
          return "the bytes at offset " + std::to_string(base.value()) + " are not the batch";
        }
        if (at + appended.size() > state->durable_bytes) {
          return "acknowledged offset " + std::to_string(base.value()) + " ends at position " +
                 std::to_string(at + appended.size()) + " but only " +
                 std::to_string(state->durable_bytes) + " bytes are synced";
        }
        return "";
      }
      at += h->batch_length;
    }
    return "acknowledged offset " + std::to_string(base.value()) + " not in " + path.string();
  }
  return "no segment holds acknowledged offset " + std::to_string(base.value());
}

struct Workload {
  std::vector<TestBatch> batches;
  std::vector<std::optional<Result<AppendResult>>> results;
  std::vector<std::string> problems;  // touched on the shard only
  int done = 0;
};

boost::asio::awaitable<void> Appender(Log& log, RecordingEnv& env, ManualClock& clock,
                                      Workload& run, int a) {
  for (int b = 0; b < kBatchesPerAppender; ++b) {
    if (a == 0 && b % 10 == 9) clock.Advance(hours(1));  // the segment ages out: a roll
    std::size_t id =
        static_cast<std::size_t>(a) * kBatchesPerAppender + static_cast<std::size_t>(b);
    Result<AppendResult> r = co_await log.Append(run.batches[id].bytes);
    if (r.ok()) {
      std::string problem = CheckDurable(env, r->base_offset, run.batches[id].bytes);
      if (!problem.empty()) run.problems.push_back(problem);
    }
    run.results[id] = std::move(r);
  }
  ++run.done;
}

// Runs the shard on this thread until done(); blocks while the pool works. False when
// nothing happened for a minute (a hang, not a timing assertion).
bool RunUntil(boost::asio::io_context& shard, const std::function<bool()>& done) {
  auto work = boost::asio::make_work_guard(shard);
  shard.restart();
  while (!done()) {
    if (shard.run_one_for(std::chrono::minutes(1)) == 0) return false;
  }
  return true;
}

// 16 appenders of 40 batches on a shard whose blocking work runs on a 2-thread pool
// (parameter true) or on the shard itself.
class LogGroupCommitTest : public testing::TestWithParam<bool> {
 protected:
  LogGroupCommitTest() {
    std::mt19937_64 rng(3);
    for (int i = 0; i < kAppenders * kBatchesPerAppender; ++i) {
      run_.batches.push_back(RandomBatch(rng, "g" + std::to_string(i), 4, 100));
    }
    run_.results.resize(run_.batches.size());
    options_.segment_age = hours(1);
    options_.index_interval_bytes = 1024;
  }

  // Runs the workload; returns the number of segment fsyncs it took.
  std::size_t RunWorkload(FsyncPolicy policy) {
    options_.fsync = policy;
    boost::asio::any_io_executor blocking = shard_.get_executor();
    if (GetParam()) blocking = pool_.get_executor();
    Result<std::unique_ptr<Log>> log =
        Log::Open({env_, clock_, shard_.get_executor(), blocking}, kDir, options_);
    EXPECT_TRUE(log.ok()) << log.status();
    if (!log.ok()) return 0;
    log_ = std::move(log).value();
    const std::size_t before = SegmentSyncs();
    for (int a = 0; a < kAppenders; ++a) {
      boost::asio::co_spawn(shard_, Appender(*log_, env_, clock_, run_, a), boost::asio::detached);
    }
    EXPECT_TRUE(RunUntil(shard_, [&] { return run_.done == kAppenders; }))
        << "appends never completed";
    return SegmentSyncs() - before;
  }

  std::size_t SegmentSyncs() const {
    std::size_t n = 0;
    for (const fs::path& p : env_.sync_log()) n += p.extension() == ".log";
    return n;
  }

  FaultInjectionEnv disk_;
  RecordingEnv env_{disk_};
  ManualClock clock_;
  Workload run_;
  LogOptions options_;
  boost::asio::io_context shard_;
  // After shard_: destroyed (joined) first, so a flush job still posting its
  // completion never touches a destroyed io_context.
  boost::asio::thread_pool pool_{2};
  std::unique_ptr<Log> log_;  // destroyed before shard_ and pool_
};

TEST_P(LogGroupCommitTest, AcknowledgesOnlySyncedBatchesAndSharesSyncs) {
  const std::size_t syncs = RunWorkload(FsyncPolicy::Always());
  ASSERT_TRUE(log_);
  for (const auto& r : run_.results) ASSERT_TRUE(r && r->ok()) << r->status();
  for (const std::string& problem : run_.problems) ADD_FAILURE() << problem;
  const std::size_t appends = run_.batches.size();
  std::cout << (GetParam() ? "thread pool" : "shard") << ": " << appends << " appends, " << syncs
            << " segment fsyncs (" << static_cast<double>(syncs) / static_cast<double>(appends)
            << " per append), " << log_->status().segments << " segments\n";
  EXPECT_LT(syncs, appends) << "no group commit";
  EXPECT_GE(log_->status().segments, 3u) << "the workload should roll segments";

  // And it all survives power loss (nothing is in flight: every append completed).
  log_.reset();
  disk_.SimulateCrash(CrashMode::kDropUnsynced);
  boost::asio::io_context ctx;
  Result<std::unique_ptr<Log>> reopened =
      Log::Open(SingleThreadContext(disk_, clock_, ctx), kDir, options_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  Result<std::vector<StoredBatch>> stored = ReadWholeLog(**reopened);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), appends);
  std::map<Offset, const StoredBatch*> by_offset;
  for (const StoredBatch& b : *stored) by_offset[b.header.base_offset] = &b;
  for (std::size_t i = 0; i < appends; ++i) {
    Offset base = (*run_.results[i])->base_offset;
    ASSERT_TRUE(by_offset.contains(base)) << "acknowledged batch " << i << " lost";
    EXPECT_EQ(by_offset[base]->records, WithOffsets(run_.batches[i].records, base));
  }
}

// Negative control: a log that acknowledges after write() must be caught by the check.
TEST_P(LogGroupCommitTest, CheckCatchesAcknowledgementsBeforeFsync) {
  RunWorkload(FsyncPolicy::Interval(hours(24)));
  EXPECT_FALSE(run_.problems.empty()) << "the durability check cannot fail";
  log_.reset();
}

INSTANTIATE_TEST_SUITE_P(BlockingExecutor, LogGroupCommitTest, testing::Bool(),
                         [](const auto& info) { return info.param ? "ThreadPool" : "Shard"; });

}  // namespace
}  // namespace junction::storage
