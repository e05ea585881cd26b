// Simulated power loss at random points of random concurrent workloads: after recovery
// every acknowledged record is there, unchanged, at its offset. Replay one seed with
// JUNCTION_CRASH_SEED=<seed>.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

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

constexpr int kShards = 4;
constexpr std::uint64_t kSeedsPerShard = 2500;  // 10,000 seeds in all
constexpr std::uint64_t kNegativeControlSeeds = 300;
constexpr int kReportedFailures = 10;  // in detail; the rest are counted

enum class CrashPoint {
  kBetweenHandlers,   // after a random number of handlers ran on the io_context
  kAtAFileOperation,  // at a random mutating file operation (inside a flush)
  kAfterCleanClose,
};
constexpr const char* kCrashPointNames[] = {"between handlers", "at a file operation",
                                            "after a clean close"};

// What one seed did and what recovery broke.
struct Outcome {
  std::vector<std::string> violations;
  bool lost_ack = false;  // an acknowledged batch is missing or moved
  std::size_t acked = 0;
  std::size_t batches = 0;
  bool crashed_mid_run = false;  // some append was still to complete (or failed) at the crash
  CrashPoint crash_point = CrashPoint::kBetweenHandlers;
  int crash_mode = 0;        // index into kCrashModes
  std::size_t segments = 0;  // after recovery
  bool cut = false;          // recovery cut a torn tail
};

using Results = std::vector<std::optional<Result<AppendResult>>>;

constexpr CrashMode kCrashModes[] = {CrashMode::kDropUnsynced, CrashMode::kTearUnsynced,
                                     CrashMode::kTearAndGarbleUnsynced, CrashMode::kKeepUnsynced};
constexpr const char* kCrashModeNames[] = {"drop", "tear", "tear+garble", "keep"};

boost::asio::awaitable<void> Appender(Log& log, std::vector<std::size_t> plan,
                                      const std::vector<TestBatch>& batches, Results& results) {
  for (std::size_t id : plan) results[id] = co_await log.Append(batches[id].bytes);
}

bool AllDone(const Results& results) {
  for (const auto& r : results) {
    if (!r) return false;
  }
  return true;
}

// Checks the recovered log against what was submitted and acknowledged.
void CheckRecovered(Log& log, const std::vector<TestBatch>& batches, const Results& results,
                    Outcome& out) {
  auto fail = [&](const std::string& what) { out.violations.push_back(what); };
  LogStatus status = log.status();
  if (status.state != LogState::kOpen) fail("recovered log not open: " + status.error.ToString());
  if (status.log_start != Offset(0)) fail("log_start moved without retention");
  Result<std::vector<StoredBatch>> stored = ReadWholeLog(log, 64 << 10, /*decode=*/false);
  if (!stored.ok()) return fail("reading the recovered log: " + stored.status().ToString());
  out.segments = status.segments;
  out.cut = status.bytes_truncated_at_open > 0;

  // Batches are told apart by their checksums (their keys are unique) and compared byte
  // for byte: same bytes at the same base offset, same records.
  std::unordered_map<std::uint64_t, std::size_t> by_checksum;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    by_checksum[codec::ComputeBatchChecksum(batches[i].bytes)] = i;
  }
  std::vector<std::optional<Offset>> recovered_at(batches.size());
  for (const StoredBatch& batch : *stored) {
    const std::string at = " at offset " + std::to_string(batch.header.base_offset.value());
    auto it = by_checksum.find(batch.header.checksum);
    if (it == by_checksum.end()) {
      fail("a batch nobody appended" + at);
      continue;
    }
    if (batch.bytes != Stamped(batches[it->second].bytes, batch.header.base_offset)) {
      fail("batch " + std::to_string(it->second) + at + " differs from the one appended");
    }
    if (recovered_at[it->second]) fail("batch " + std::to_string(it->second) + " stored twice");
    recovered_at[it->second] = batch.header.base_offset;
  }

  Offset end_of_acked(0);
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (!results[i] || !results[i]->ok()) continue;
    const AppendResult& ack = **results[i];
    end_of_acked = std::max(end_of_acked, ack.last_offset + 1);
    if (recovered_at[i] != ack.base_offset) {
      out.lost_ack = true;
      fail("acknowledged batch " + std::to_string(i) + " (offset " +
           std::to_string(ack.base_offset.value()) + ") " +
           (recovered_at[i] ? "moved to " + std::to_string(recovered_at[i]->value()) : "lost"));
    }
  }
  if (log.high_watermark() < end_of_acked) fail("high watermark below acknowledged records");
}

Outcome RunSeed(std::uint64_t seed, FsyncPolicy policy) {
  std::mt19937_64 rng(seed);
  FaultInjectionEnv env;
  ManualClock clock;
  const fs::path dir = "/topic-0";
  LogOptions options;
  options.fsync = policy;
  options.segment_bytes = 4096u << (rng() % 3);  // 4-16 KiB: a few batches fill one
  options.segment_age = hours(1);                // and the test ages segments out
  options.index_interval_bytes = rng() % 2 == 0 ? 128 : 4096;
  options.max_open_segments = 2;

  // 2-6 appenders, each appending 1-20 batches of 1-5 small records.
  const std::size_t appenders = 2 + rng() % 5;
  std::vector<TestBatch> batches;
  std::vector<std::vector<std::size_t>> plans(appenders);
  for (std::size_t a = 0; a < appenders; ++a) {
    for (std::uint64_t b = 1 + rng() % 20; b > 0; --b) {
      plans[a].push_back(batches.size());
      batches.push_back(RandomBatch(rng, std::to_string(a) + "-" + std::to_string(b), 5, 48));
    }
  }
  Outcome out;
  out.batches = batches.size();
  Results results(batches.size());
  {
    boost::asio::io_context ctx;
    Result<std::unique_ptr<Log>> log =
        Log::Open(SingleThreadContext(env, clock, ctx), dir, options);
    if (!log.ok()) {
      out.violations.push_back("open: " + log.status().ToString());
      return out;
    }
    for (auto& plan : plans) {
      boost::asio::co_spawn(ctx, Appender(**log, plan, batches, results), boost::asio::detached);
    }
    // Run a random number of handlers, sometimes letting the segment age out.
    auto step = [&](std::uint64_t steps) {
      for (; steps > 0; --steps) {
        if (rng() % 16 == 0) clock.Advance(hours(1));
        if (ctx.poll_one() == 0) return;
      }
    };
    out.crash_point = static_cast<CrashPoint>(rng() % 8 < 3 ? 0 : rng() % 8 < 7 ? 1 : 2);
    switch (out.crash_point) {
      case CrashPoint::kBetweenHandlers:
        step(rng() % (2 * batches.size() + 8));
        out.crashed_mid_run = !AllDone(results);
        break;
      case CrashPoint::kAtAFileOperation: {
        // Power fails at the n-th mutating file operation, inside a flush or a roll:
        // that operation and every later one never happen.
        std::uint64_t before = env.mutations();
        env.FailNth(FaultOp::kAny, static_cast<int>(1 + rng() % (2 * batches.size() + 4)), EIO,
                    {.sticky = true});
        step(std::numeric_limits<std::uint64_t>::max());
        out.crashed_mid_run = env.mutations() - before > 0 &&
                              !std::all_of(results.begin(), results.end(),
                                           [](const auto& r) { return r && r->ok(); });
        break;
      }
      case CrashPoint::kAfterCleanClose:
        // Nothing unsynced may be needed to read a cleanly closed log.
        step(std::numeric_limits<std::uint64_t>::max());
        if (!AllDone(results) || !CloseNow(ctx, **log).ok()) {
          out.violations.push_back("run or clean close did not finish");
        }
        break;
    }
    out.crash_mode = static_cast<int>(rng() % 4);
    env.SimulateCrash(kCrashModes[out.crash_mode], rng());
    // The old process is dead: whatever it still does must not reach the "disk". Its
    // handles already fail; make every new mutation fail too, then let it wind down.
    env.FailNth(FaultOp::kAny, 1, EIO, {.sticky = true});
    if (!PollUntil(ctx, [&] { return AllDone(results); })) {
      out.violations.push_back("appends never completed after the crash");
    }
    log->reset();
  }
  env.ClearFaults();
  for (const auto& r : results) out.acked += r && r->ok() ? 1 : 0;

  boost::asio::io_context ctx;
  Result<std::unique_ptr<Log>> log = Log::Open(SingleThreadContext(env, clock, ctx), dir, options);
  if (!log.ok()) {
    out.violations.push_back("reopen after the crash: " + log.status().ToString());
    return out;
  }
  CheckRecovered(**log, batches, results, out);

  // A new append continues after everything acknowledged.
  Offset high_watermark = (*log)->high_watermark();
  Result<AppendResult> next = AppendNow(ctx, **log, RandomBatch(rng, "after", 3, 16).bytes);
  if (!next.ok()) {
    out.violations.push_back("append after recovery: " + next.status().ToString());
  } else if (next->base_offset != high_watermark) {
    out.violations.push_back("append after recovery got offset " +
                             std::to_string(next->base_offset.value()) + ", high watermark " +
                             std::to_string(high_watermark.value()));
  }
  return out;
}

std::string Describe(std::uint64_t seed, const Outcome& out) {
  std::ostringstream s;
  s << "seed " << seed << " (replay: JUNCTION_CRASH_SEED=" << seed << "), " << out.batches
    << " batches, " << out.acked << " acknowledged, crash (" << kCrashModeNames[out.crash_mode]
    << ") " << kCrashPointNames[static_cast<int>(out.crash_point)]
    << (out.crashed_mid_run ? ", mid-run" : ", after the run") << ":";
  for (const std::string& v : out.violations) s << "\n  " << v;
  return s.str();
}

std::optional<std::uint64_t> ReplaySeed() {
  const char* seed = std::getenv("JUNCTION_CRASH_SEED");
  if (seed == nullptr) return std::nullopt;
  return std::strtoull(seed, nullptr, 10);
}

class LogCrashTest : public testing::TestWithParam<int> {};

TEST_P(LogCrashTest, AcknowledgedRecordsSurvivePowerLoss) {
  ScopedLogLevel quiet(log::Level::kOff);
  std::uint64_t first = static_cast<std::uint64_t>(GetParam()) * kSeedsPerShard;
  std::uint64_t count = kSeedsPerShard;
  if (std::optional<std::uint64_t> seed = ReplaySeed()) {
    if (*seed / kSeedsPerShard != static_cast<std::uint64_t>(GetParam())) GTEST_SKIP();
    first = *seed;
    count = 1;
  }
  int failures = 0;
  std::size_t with_acks = 0, rolled = 0, acked = 0, cut = 0;
  std::size_t mid_run[3] = {}, points[3] = {};
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    Outcome out = RunSeed(seed, FsyncPolicy::Always());
    if (!out.violations.empty() && ++failures <= kReportedFailures) {
      ADD_FAILURE() << Describe(seed, out);
    }
    ++points[static_cast<int>(out.crash_point)];
    mid_run[static_cast<int>(out.crash_point)] += out.crashed_mid_run;
    with_acks += out.acked > 0;
    rolled += out.segments > 1;
    acked += out.acked;
    cut += out.cut;
  }
  std::cout << count << " seeds, " << with_acks << " with acknowledged appends (" << acked
            << " in all), " << rolled << " recovered several segments, " << cut
            << " cut a torn tail; crashes:";
  for (int p = 0; p < 3; ++p) {
    std::cout << " " << kCrashPointNames[p] << " " << points[p] << " (" << mid_run[p]
              << " mid-run)";
  }
  std::cout << "\n";
  EXPECT_EQ(failures, 0) << "seeds failed (the first " << kReportedFailures << " are above)";
  if (count > 1) {
    // The harness must exercise what it claims to.
    EXPECT_GT(mid_run[0], count / 10);
    EXPECT_GT(mid_run[1], count / 10);
    EXPECT_GT(points[2], count / 20);
    EXPECT_GT(with_acks, count / 2);
    EXPECT_GT(rolled, count / 4);
    EXPECT_GT(cut, count / 40);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, LogCrashTest, testing::Range(0, kShards));

// Negative control: the same harness must catch a log that acknowledges before fsync.
TEST(LogCrashNegativeControl, IntervalFsyncLosesAcknowledgedRecords) {
  ScopedLogLevel quiet(log::Level::kOff);
  std::size_t detected = 0;
  for (std::uint64_t seed = 0; seed < kNegativeControlSeeds; ++seed) {
    detected += RunSeed(seed, FsyncPolicy::Interval(hours(24))).lost_ack;
  }
  std::cout << "fsync=interval lost acknowledged records in " << detected << " of "
            << kNegativeControlSeeds << " seeds\n";
  EXPECT_GE(detected, 1u) << "the checker cannot detect lost acknowledged records";
}

}  // namespace
}  // namespace junction::storage
