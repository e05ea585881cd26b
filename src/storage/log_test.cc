// Behaviour of Log on the in-memory Env, driven on one io_context thread.

#include "storage/log.h"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "codec/record_batch.h"
#include "core/fault_injection_env.h"

namespace junction::storage {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

std::vector<std::byte> Batch(std::string_view value, std::int64_t ts = 1000, int records = 1) {
  codec::RecordBatchBuilder builder;
  for (int i = 0; i < records; ++i) builder.Add(ts, std::nullopt, value);
  return *builder.Build();
}

class LogTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<Log>> OpenLog(LogOptions options = {}) {
    return Log::Open({env_, clock_, io_.get_executor(), io_.get_executor()}, "/p", options);
  }

  Result<AppendResult> Append(Log& log, std::vector<std::byte> batch) {
    std::optional<Result<AppendResult>> out;
    log.AsyncAppend(std::move(batch), [&](Result<AppendResult> r) { out = std::move(r); });
    io_.restart();
    io_.run();
    return *std::move(out);
  }

  Status Close(Log& log) {
    std::optional<Status> out;
    boost::asio::co_spawn(io_, log.Close(),
                          [&](const std::exception_ptr&, const Status& s) { out = s; });
    io_.restart();
    io_.run();
    return *out;
  }

  // Every record value from `from` to the high watermark, in small reads.
  std::vector<std::string> ReadAll(Log& log, Offset from, std::size_t max_bytes = 100) {
    std::vector<std::string> values;
    while (from < log.high_watermark()) {
      Result<ReadResult> r = log.Read(from, max_bytes);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      std::span<const std::byte> bytes = r->batches;
      while (!bytes.empty()) {
        auto header = codec::ParseBatchHeader(bytes);
        auto records = codec::DecodeRecords(bytes.first(header->batch_length));
        EXPECT_TRUE(records.ok()) << records.status();
        for (const auto& rec : *records) values.push_back(rec.value.value_or(""));
        bytes = bytes.subspan(header->batch_length);
      }
      EXPECT_GT(r->next_offset, from);
      from = r->next_offset;
    }
    return values;
  }

  FaultInjectionEnv env_;
  ManualClock clock_;
  boost::asio::io_context io_;
};

TEST_F(LogTest, AppendAssignsDenseOffsetsAndReadReturnsThem) {
  auto log = *OpenLog();
  EXPECT_EQ(Append(*log, Batch("a"))->base_offset, Offset(0));
  Result<AppendResult> second = Append(*log, Batch("b", 1000, 3));
  EXPECT_EQ(second->base_offset, Offset(1));
  EXPECT_EQ(second->last_offset, Offset(3));
  EXPECT_EQ(log->high_watermark(), Offset(4));
  EXPECT_EQ(ReadAll(*log, Offset(0)), (std::vector<std::string>{"a", "b", "b", "b"}));
  // A read from the middle of a batch returns the whole batch.
  Result<ReadResult> middle = log->Read(Offset(2), 1 << 20);
  ASSERT_TRUE(middle.ok());
  EXPECT_EQ(codec::ParseBatchHeader(middle->batches)->base_offset, Offset(1));
  EXPECT_EQ(middle->next_offset, Offset(4));
}

TEST_F(LogTest, ReadBoundsAreErrorsNamingTheOffsets) {
  auto log = *OpenLog();
  ASSERT_TRUE(Append(*log, Batch("a")).ok());
  EXPECT_TRUE(log->Read(Offset(1), 100)->batches.empty());  // at the high watermark
  Result<ReadResult> beyond = log->Read(Offset(5), 100);
  EXPECT_EQ(beyond.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(beyond.status().message().find("high watermark 1"), std::string::npos);
}

TEST_F(LogTest, MalformedAndOversizedBatchesAreRefusedAndTheLogStaysOpen) {
  auto log = *OpenLog({.max_batch_bytes = 4096});
  std::vector<std::byte> bad = Batch("a");
  bad.back() ^= std::byte{1};
  EXPECT_EQ(Append(*log, bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Append(*log, Batch(std::string(5000, 'x'))).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(Append(*log, Batch("ok"))->base_offset, Offset(0));
}

TEST_F(LogTest, SegmentsRollBySizeAndReadsCrossThem) {
  auto log = *OpenLog({.segment_bytes = 4096, .index_interval_bytes = 256});
  std::vector<std::string> expected;
  for (int i = 0; i < 100; ++i) {
    expected.push_back(std::string(100, static_cast<char>('a' + i % 26)));
    ASSERT_TRUE(Append(*log, Batch(expected.back())).ok());
  }
  EXPECT_GT(log->status().segments, 3u);
  EXPECT_EQ(ReadAll(*log, Offset(0)), expected);
  EXPECT_EQ(ReadAll(*log, Offset(57), 1 << 20).front(), expected[57]);  // via the index
}

TEST_F(LogTest, SegmentsRollByAge) {
  auto log = *OpenLog({.segment_age = hours(1)});
  ASSERT_TRUE(Append(*log, Batch("a")).ok());
  clock_.Advance(hours(2));
  ASSERT_TRUE(Append(*log, Batch("b")).ok());
  EXPECT_EQ(log->status().segments, 2u);
}

TEST_F(LogTest, OffsetForTimeFindsTheFirstBatchAtOrAfter) {
  auto log = *OpenLog({.segment_bytes = 4096, .index_interval_bytes = 128});
  for (int i = 0; i < 60; ++i)
    ASSERT_TRUE(Append(*log, Batch(std::string(80, 'v'), 1000 + 10 * i)).ok());
  EXPECT_EQ(*log->OffsetForTime(0), Offset(0));
  EXPECT_EQ(*log->OffsetForTime(1000), Offset(0));
  EXPECT_EQ(*log->OffsetForTime(1001), Offset(1));
  EXPECT_EQ(*log->OffsetForTime(1000 + 10 * 42), Offset(42));
  EXPECT_EQ(*log->OffsetForTime(1000 + 10 * 59 + 1), Offset(60));  // none: high watermark
}

TEST_F(LogTest, RetentionBySizeDeletesWholeOldSegments) {
  auto log = *OpenLog({.segment_bytes = 4096, .retention_bytes = 8192});
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(Append(*log, Batch(std::string(100, 'r'))).ok());
  std::size_t before = log->status().segments;
  Result<std::size_t> deleted = log->EnforceRetention();
  io_.restart();
  io_.run();
  ASSERT_TRUE(deleted.ok());
  EXPECT_GT(*deleted, 0u);
  LogStatus s = log->status();
  EXPECT_EQ(s.segments, before - *deleted);
  EXPECT_LE(s.size_bytes, 8192u + 4096u);
  EXPECT_GT(s.log_start, Offset(0));
  EXPECT_EQ(log->Read(Offset(0), 100).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(ReadAll(*log, s.log_start).size(), (s.high_watermark - s.log_start));
  EXPECT_FALSE(env_.FileExists("/p/00000000000000000000.log"));
}

TEST_F(LogTest, RetentionByAgeKeepsTheActiveSegment) {
  auto log = *OpenLog({.segment_bytes = 4096, .retention_age = hours(1)});
  std::int64_t now_ms =
      std::chrono::duration_cast<milliseconds>(clock_.WallNow().time_since_epoch()).count();
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(Append(*log, Batch(std::string(100, 'o'), now_ms)).ok());
  EXPECT_EQ(*log->EnforceRetention(), 0u);
  clock_.Advance(hours(2));
  std::size_t segments = log->status().segments;
  ASSERT_GT(segments, 1u);
  EXPECT_EQ(*log->EnforceRetention(), segments - 1);
  EXPECT_EQ(log->status().segments, 1u);
  EXPECT_EQ(log->high_watermark(), Offset(100));
}

TEST_F(LogTest, CleanCloseIsReopenedFromTheMarkerAlone) {
  {
    auto log = *OpenLog({.segment_bytes = 4096});
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(Append(*log, Batch(std::string(100, 'c'))).ok());
    ASSERT_TRUE(Close(*log).ok());
    EXPECT_EQ(Append(*log, Batch("late")).status().code(), StatusCode::kFailedPrecondition);
  }
  auto log = *OpenLog({.segment_bytes = 4096});
  EXPECT_TRUE(log->status().clean_open);
  EXPECT_EQ(log->high_watermark(), Offset(50));
  EXPECT_EQ(Append(*log, Batch("next"))->base_offset, Offset(50));
  EXPECT_EQ(ReadAll(*log, Offset(0)).size(), 51u);
}

TEST_F(LogTest, UncleanReopenRecoversEverythingAcknowledged) {
  {
    auto log = *OpenLog({.segment_bytes = 4096, .index_interval_bytes = 200});
    for (int i = 0; i < 80; ++i) ASSERT_TRUE(Append(*log, Batch(std::to_string(i))).ok());
  }  // destroyed without Close
  env_.SimulateCrash(CrashMode::kDropUnsynced, 1);
  auto log = *OpenLog({.segment_bytes = 4096, .index_interval_bytes = 200});
  EXPECT_FALSE(log->status().clean_open);
  EXPECT_EQ(log->high_watermark(), Offset(80));
  std::vector<std::string> values = ReadAll(*log, Offset(0));
  ASSERT_EQ(values.size(), 80u);
  EXPECT_EQ(values[79], "79");
}

Result<Offset> RunPurge(boost::asio::io_context& io, Log& log) {
  std::optional<Result<Offset>> out;
  boost::asio::co_spawn(io, log.Purge(),
                        [&](const std::exception_ptr&, Result<Offset> r) { out = std::move(r); });
  io.restart();
  io.run();
  return *std::move(out);
}

TEST_F(LogTest, PurgeDeletesEveryRecordAndOffsetsGoOn) {
  LogOptions options{.segment_bytes = 4096};
  {
    auto log = *OpenLog(options);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(Append(*log, Batch(std::string(100, 'p'))).ok());
    ASSERT_GT(log->status().segments, 1u);
    Result<Offset> start = RunPurge(io_, *log);
    ASSERT_TRUE(start.ok()) << start.status();
    EXPECT_EQ(*start, Offset(100));
    LogStatus s = log->status();
    EXPECT_EQ(s.log_start, Offset(100));
    EXPECT_EQ(s.segments, 1u);
    EXPECT_EQ(s.size_bytes, 0u);
    EXPECT_EQ(log->Read(Offset(0), 100).status().code(), StatusCode::kOutOfRange);
    EXPECT_FALSE(env_.FileExists("/p/00000000000000000000.log"));
    EXPECT_EQ(Append(*log, Batch("after"))->base_offset, Offset(100));
    EXPECT_EQ(ReadAll(*log, Offset(100)), std::vector<std::string>{"after"});
    // Purging an empty tail changes nothing but is fine.
    ASSERT_TRUE(RunPurge(io_, *log).ok());
    EXPECT_EQ(Append(*log, Batch("later"))->base_offset, Offset(101));
  }  // no Close: the purge must be durable by itself
  env_.SimulateCrash(CrashMode::kDropUnsynced, 1);
  auto log = *OpenLog(options);
  EXPECT_EQ(log->status().log_start, Offset(101));
  EXPECT_EQ(log->high_watermark(), Offset(102));
  EXPECT_EQ(ReadAll(*log, Offset(101)), (std::vector<std::string>{"later"}));
}

TEST_F(LogTest, AppendsMadeDuringAPurgeLandAfterIt) {
  auto log = *OpenLog();
  ASSERT_TRUE(Append(*log, Batch("old")).ok());
  std::optional<Result<Offset>> purged;
  std::optional<Result<AppendResult>> appended;
  boost::asio::co_spawn(io_, log->Purge(),
                        [&](const std::exception_ptr&, const Result<Offset>& r) { purged = r; });
  // Runs once the purge has started (co_spawn posts the coroutine's start).
  boost::asio::post(io_, [&] {
    log->AsyncAppend(Batch("new"), [&](const Result<AppendResult>& r) { appended = r; });
  });
  io_.restart();
  io_.run();
  ASSERT_TRUE(purged && purged->ok());
  ASSERT_TRUE(appended && appended->ok()) << appended->status();
  EXPECT_EQ(**purged, Offset(1));
  EXPECT_EQ(ReadAll(*log, log->status().log_start), std::vector<std::string>{"new"});
}

TEST_F(LogTest, AFailedPurgeMakesTheLogReadOnly) {
  auto log = *OpenLog();
  ASSERT_TRUE(Append(*log, Batch("a")).ok());
  env_.FailNth(FaultOp::kAny, 1, ENOSPC, {.sticky = true});
  Result<Offset> purged = RunPurge(io_, *log);
  EXPECT_FALSE(purged.ok());
  EXPECT_EQ(log->status().state, LogState::kReadOnly);
  EXPECT_EQ(Append(*log, Batch("b")).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(LogTest, SecondOpenOfTheSameDirectoryIsRefused) {
  auto log = *OpenLog();
  Result<std::unique_ptr<Log>> second = OpenLog();
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

TEST_F(LogTest, InvalidOptionsAreNamed) {
  Result<std::unique_ptr<Log>> log = OpenLog({.segment_bytes = 10});
  EXPECT_EQ(log.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(log.status().message().find("segment_bytes"), std::string::npos);
}

TEST(FsyncPolicyTest, ParsesAndPrints) {
  EXPECT_EQ(*FsyncPolicy::Parse("always"), FsyncPolicy::Always());
  EXPECT_EQ(*FsyncPolicy::Parse("never"), FsyncPolicy::Never());
  EXPECT_EQ(*FsyncPolicy::Parse("interval=2s"), FsyncPolicy::Interval(milliseconds(2000)));
  EXPECT_EQ(FsyncPolicy::Interval(milliseconds(200)).ToString(), "interval=200ms");
  EXPECT_FALSE(FsyncPolicy::Parse("interval=0ms").ok());
  EXPECT_FALSE(FsyncPolicy::Parse("sometimes").ok());
}

}  // namespace
}  // namespace junction::storage
