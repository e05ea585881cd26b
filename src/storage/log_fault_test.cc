// Failed writes and fsyncs (EIO, a full disk) at every point of a fixed workload: the
// Log loses no acknowledged append, fails the rest, turns read-only, and a reopen after
// the cause is gone recovers. Also a real full tmpfs, when the test may mount one.

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "core/fault_injection_env.h"
#include "storage/log.h"
#include "storage/log_test_util.h"

namespace junction::storage {
namespace {

using namespace test_util;  // NOLINT(google-build-using-namespace): test helpers
using std::chrono::hours;
using testing::HasSubstr;

constexpr int kAppenders = 3;
constexpr int kBatchesPerAppender = 12;
constexpr std::string_view kDir = "/events-0";

// The fixed workload: 3 appenders of 12 batches; small segments and aged-out segments
// make it roll, a small index interval makes it write index entries.
const std::vector<TestBatch>& WorkloadBatches() {
  static const std::vector<TestBatch> batches = [] {
    std::mt19937_64 rng(42);
    std::vector<TestBatch> out;
    for (int i = 0; i < kAppenders * kBatchesPerAppender; ++i) {
      out.push_back(RandomBatch(rng, "w" + std::to_string(i), 3, 400));
    }
    return out;
  }();
  return batches;
}

LogOptions WorkloadOptions() {
  LogOptions options;
  options.segment_bytes = 4096;
  options.segment_age = hours(1);
  options.index_interval_bytes = 128;
  return options;
}

using Results = std::vector<std::optional<Result<AppendResult>>>;

// One run of the workload on a fresh fault-injecting disk.
struct Harness {
  FaultInjectionEnv disk;
  RecordingEnv env{disk};
  ManualClock clock;
  boost::asio::io_context ctx;
  std::unique_ptr<Log> log;  // destroyed before ctx
  Results results = Results(WorkloadBatches().size());
  std::vector<std::size_t> completed;  // batch ids in completion order

  Status Open() {
    log.reset();
    Result<std::unique_ptr<Log>> opened =
        Log::Open(SingleThreadContext(env, clock, ctx), kDir, WorkloadOptions());
    if (!opened.ok()) return opened.status();
    log = std::move(opened).value();
    return OkStatus();
  }

  bool RunWorkload() {
    for (int a = 0; a < kAppenders; ++a) {
      boost::asio::co_spawn(ctx, Appender(a), boost::asio::detached);
    }
    return PollUntil(ctx, [&] { return completed.size() == results.size(); });
  }

  boost::asio::awaitable<void> Appender(int a) {
    for (int b = 0; b < kBatchesPerAppender; ++b) {
      if (a == 0 && b % 5 == 2) clock.Advance(hours(1));  // the next flush rolls by age
      std::size_t id =
          static_cast<std::size_t>(a) * kBatchesPerAppender + static_cast<std::size_t>(b);
      results[id] = co_await log->Append(WorkloadBatches()[id].bytes);
      completed.push_back(id);
    }
  }
};

struct Fault {
  const char* name;
  FaultOp op;
  int error_number;
  FaultOptions options;
  StatusCode code;         // what ErrnoToStatus makes of error_number
  const char* errno_name;  // named in every error message
};

const Fault kEioOnWrite{"EioOnWrite", FaultOp::kWrite, EIO, {}, StatusCode::kUnavailable, "EIO"};
const Fault kEioOnSync{"EioOnSync", FaultOp::kSync, EIO, {}, StatusCode::kUnavailable, "EIO"};
const Fault kDiskFull{"StickyEnospcWithShortWrite",
                      FaultOp::kWrite,
                      ENOSPC,
                      {.sticky = true, .partial_write = true},
                      StatusCode::kResourceExhausted,
                      "ENOSPC"};

// The paths of the ops of `fault`'s kind that the workload does after Open, in order
// (a directory for SyncDir).
std::vector<fs::path> WorkloadOps(const Fault& fault) {
  Harness h;
  EXPECT_EQ(h.Open(), OkStatus());
  if (!h.log) return {};
  std::size_t before = (fault.op == FaultOp::kWrite ? h.env.write_log() : h.env.sync_log()).size();
  std::uint64_t counted = fault.op == FaultOp::kWrite ? h.disk.writes() : h.disk.syncs();
  EXPECT_TRUE(h.RunWorkload());
  for (const auto& r : h.results) EXPECT_TRUE(r && r->ok()) << "the workload fails without faults";
  std::vector<fs::path> ops = fault.op == FaultOp::kWrite ? h.env.write_log() : h.env.sync_log();
  ops.erase(ops.begin(), ops.begin() + static_cast<std::ptrdiff_t>(before));
  std::uint64_t now = fault.op == FaultOp::kWrite ? h.disk.writes() : h.disk.syncs();
  EXPECT_EQ(ops.size(), now - counted) << "RecordingEnv and FaultInjectionEnv disagree";
  return ops;
}

// After reopening: every acknowledged append is there at its offset, every batch is one
// the workload appended, and a new append continues after all of them.
void ExpectRecovered(boost::asio::io_context& ctx, Log& log, const std::vector<TestBatch>& batches,
                     const Results& results) {
  EXPECT_EQ(log.status().state, LogState::kOpen) << log.status().error;
  Result<std::vector<StoredBatch>> stored = ReadWholeLog(log);
  ASSERT_TRUE(stored.ok()) << stored.status();
  std::map<Offset, const StoredBatch*> by_offset;
  for (const StoredBatch& b : *stored) by_offset[b.header.base_offset] = &b;
  Offset end(0);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i] || !results[i]->ok()) continue;
    const AppendResult& ack = **results[i];
    end = std::max(end, ack.last_offset + 1);
    auto it = by_offset.find(ack.base_offset);
    ASSERT_NE(it, by_offset.end()) << "acknowledged batch " << i << " lost";
    EXPECT_EQ(it->second->records, WithOffsets(batches[i].records, ack.base_offset))
        << "acknowledged batch " << i;
  }
  for (const StoredBatch& b : *stored) {
    bool known = false;
    for (const TestBatch& t : batches)
      known |= WithOffsets(t.records, b.header.base_offset) == b.records;
    EXPECT_TRUE(known) << "a batch nobody appended at " << b.header.base_offset;
  }
  Offset high_watermark = log.high_watermark();
  EXPECT_GE(high_watermark, end);
  Result<AppendResult> next = AppendNow(ctx, log, batches[0].bytes);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->base_offset, high_watermark);
}

class LogFaultTest : public testing::TestWithParam<std::tuple<Fault, bool>> {
 protected:
  // Fails the k-th op (`target`), runs the workload, checks the Log's behaviour, then
  // reopens it (after a power loss if the parameter says so) and checks recovery.
  void FailAt(int k, const std::vector<fs::path>& ops) {
    const auto [fault, crash] = GetParam();
    Harness h;
    ASSERT_EQ(h.Open(), OkStatus());
    h.disk.FailNth(fault.op, k, fault.error_number, fault.options);
    ASSERT_TRUE(h.RunWorkload()) << "appends never completed";

    // A failed index write costs only a rebuild (the index is derived data); any other
    // failed op, or a sticky one that reaches a data write later, is fatal.
    bool fatal = false;
    for (std::size_t j = static_cast<std::size_t>(k - 1);
         j < (fault.options.sticky ? ops.size() : static_cast<std::size_t>(k)); ++j) {
      fatal |= ops[j].extension() != ".index";
    }
    LogStatus status = h.log->status();
    if (!fatal) {
      for (const auto& r : h.results) EXPECT_TRUE(r->ok()) << r->status();
      EXPECT_EQ(status.state, LogState::kOpen) << status.error;
    } else {
      EXPECT_EQ(status.state, LogState::kReadOnly);
      EXPECT_EQ(status.error.code(), fault.code) << status.error;
      EXPECT_THAT(status.error.message(), HasSubstr(fault.errno_name));
      bool failed_before = false;
      int with_the_error = 0;
      for (std::size_t id : h.completed) {
        const Result<AppendResult>& r = *h.results[id];
        EXPECT_FALSE(failed_before && r.ok()) << "batch " << id << " acknowledged after a failure";
        failed_before |= !r.ok();
        if (r.ok()) continue;
        with_the_error += r.status().code() == fault.code;
        EXPECT_THAT(r.status().code(), testing::AnyOf(fault.code, StatusCode::kFailedPrecondition))
            << r.status();
        EXPECT_THAT(r.status().message(), HasSubstr(fault.errno_name));
      }
      EXPECT_GE(with_the_error, 1) << "no append of the failed flush got the error";
      Result<AppendResult> later = AppendNow(h.ctx, *h.log, WorkloadBatches()[0].bytes);
      EXPECT_EQ(later.status().code(), StatusCode::kFailedPrecondition) << later.status();
      EXPECT_THAT(later.status().message(), HasSubstr(fault.errno_name));
      // Reads of acknowledged records go on.
      Result<std::vector<StoredBatch>> readable = ReadWholeLog(*h.log);
      ASSERT_TRUE(readable.ok()) << readable.status();
      std::size_t acked = 0;
      for (const auto& r : h.results) acked += r->ok();
      EXPECT_EQ(readable->size(), acked);
    }

    h.log.reset();
    if (crash) h.disk.SimulateCrash(CrashMode::kDropUnsynced);
    h.disk.ClearFaults();
    ASSERT_EQ(h.Open(), OkStatus());
    ExpectRecovered(h.ctx, *h.log, WorkloadBatches(), h.results);
  }
};

TEST_P(LogFaultTest, EveryFailurePointKeepsAcknowledgedAppends) {
  ScopedLogLevel quiet(log::Level::kOff);
  const Fault& fault = std::get<0>(GetParam());
  std::vector<fs::path> ops = WorkloadOps(fault);
  ASSERT_GE(ops.size(), 3u);
  std::map<std::string, int> kinds;
  for (const fs::path& p : ops) ++kinds[p.has_extension() ? p.extension().string() : "dir"];
  for (int k = 1; k <= static_cast<int>(ops.size()) && !HasFailure(); ++k) {
    SCOPED_TRACE("failing op " + std::to_string(k) + " of " + std::to_string(ops.size()) + ": " +
                 ops[static_cast<std::size_t>(k - 1)].string());
    FailAt(k, ops);
  }
  std::cout << fault.name << ": " << ops.size() << " failure points (";
  for (const auto& [kind, n] : kinds) std::cout << " " << kind << "=" << n;
  std::cout << " )\n";
}

INSTANTIATE_TEST_SUITE_P(Faults, LogFaultTest,
                         testing::Combine(testing::Values(kEioOnWrite, kEioOnSync, kDiskFull),
                                          testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) +
                                  (std::get<1>(info.param) ? "ThenPowerLoss" : "ThenRestart");
                         });

// ---- A real full disk.

// Mounts a 2 MiB tmpfs on a new temporary directory; unmounts and removes it at the end.
class TmpfsMount {
 public:
  TmpfsMount() {
    char path[] = "/tmp/junction-enospc-XXXXXX";
    if (::mkdtemp(path) == nullptr) {
      why_not_ = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    path_ = path;
    if (::mount("tmpfs", path, "tmpfs", 0, "size=2m") != 0) {
      why_not_ = std::string("mount -t tmpfs -o size=2m: ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& why_not() const { return why_not_; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  bool mounted_ = false;
  std::string why_not_;
};

TEST(LogDiskFullTest, RealTmpfsFillsUpAndTheLogRecoversOnceSpaceIsFreed) {
  if (::geteuid() != 0) GTEST_SKIP() << "not root: cannot mount a tmpfs to fill";
  TmpfsMount disk;
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  Env& env = PosixEnv();
  ManualClock clock;
  boost::asio::io_context ctx;
  const fs::path dir = disk.path() / "orders-0";
  LogOptions options;
  options.segment_bytes = 1 << 20;
  Result<std::unique_ptr<Log>> log = Log::Open(SingleThreadContext(env, clock, ctx), dir, options);
  ASSERT_TRUE(log.ok()) << log.status();

  std::mt19937_64 rng(1);
  std::vector<TestBatch> batches;
  Results results;
  auto append = [&](std::size_t max_value) {
    batches.push_back(RandomBatch(rng, "b" + std::to_string(batches.size()), 3, max_value));
    results.push_back(AppendNow(ctx, **log, batches.back().bytes));
    return results.back()->status();
  };
  for (int i = 0; i < 3; ++i) ASSERT_EQ(append(1000), OkStatus());

  // Fill the file system through the Env, as another tenant of the disk would.
  const fs::path filler = disk.path() / "filler";
  {
    Result<std::unique_ptr<WritableFile>> file = env.NewWritableFile(filler);
    ASSERT_TRUE(file.ok()) << file.status();
    const std::string chunk(64 << 10, 'f');
    Status status;
    for (int i = 0; i < 64 && status.ok(); ++i) status = (*file)->Append(chunk);
    ASSERT_EQ(status.code(), StatusCode::kResourceExhausted) << status;
    EXPECT_THAT(status.message(), HasSubstr("ENOSPC"));
  }

  Status failure;
  for (int i = 0; i < 200 && failure.ok(); ++i) failure = append(8000);
  ASSERT_FALSE(failure.ok()) << "the log never noticed the full disk";
  EXPECT_EQ(failure.code(), StatusCode::kResourceExhausted) << failure;
  EXPECT_THAT(failure.message(), HasSubstr("ENOSPC"));
  EXPECT_EQ((*log)->status().state, LogState::kReadOnly);
  EXPECT_EQ((*log)->status().error.code(), StatusCode::kResourceExhausted);
  Result<AppendResult> later = AppendNow(ctx, **log, batches[0].bytes);
  EXPECT_EQ(later.status().code(), StatusCode::kFailedPrecondition) << later.status();
  EXPECT_THAT(later.status().message(), HasSubstr("ENOSPC"));

  log->reset();
  ASSERT_EQ(env.RemoveFile(filler), OkStatus());
  log = Log::Open(SingleThreadContext(env, clock, ctx), dir, options);
  ASSERT_TRUE(log.ok()) << log.status();
  ExpectRecovered(ctx, **log, batches, results);
  ASSERT_EQ(CloseNow(ctx, **log), OkStatus());
}

}  // namespace
}  // namespace junction::storage
