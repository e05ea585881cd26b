// Recovery from damaged files: a known log is written, its files are edited through the
// Env as a crash or a bad disk would leave them, and the reopened log must hold exactly
// what the format (docs/formats/log.md, "Durability and recovery") promises.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "codec/byte_order.h"
#include "core/fault_injection_env.h"
#include "storage/log.h"
#include "storage/log_test_util.h"

namespace junction::storage {
namespace {

using namespace test_util;  // NOLINT(google-build-using-namespace): test helpers
using std::chrono::hours;
using testing::HasSubstr;

constexpr std::int64_t kT0 = 1'767'225'600'000;

// Batch i of the known log: 1-3 records (1 for every fifth, so that any flipped header bit
// of such a batch is detectable: record_count is outside the checksum), timestamps that
// mostly grow but sometimes step back.
TestBatch KnownBatch(int i) {
  std::vector<codec::Record> records(i % 5 == 4 ? 1 : 1 + i % 3);
  std::int64_t ts = kT0 + 100 * i + ((i * 37) % 7 - 3) * 60;
  for (std::size_t j = 0; j < records.size(); ++j) {
    records[j].timestamp_ms = ts + static_cast<std::int64_t>(j) * 10;
    records[j].key = "k" + std::to_string(i) + "-" + std::to_string(j);
    records[j].value = std::string(10 + (7 * i) % 50, static_cast<char>('a' + i % 26));
    if (j == 0) records[j].headers.push_back({"n", std::to_string(i)});
  }
  return MakeBatch(std::move(records));
}

class LogRecoveryTest : public testing::Test {
 protected:
  LogRecoveryTest() {
    options_.segment_age = hours(1);
    options_.index_interval_bytes = 256;
  }

  // Appends `count` known batches, rolling to a new segment before each batch in
  // `roll_before`, checks that the segments hold them back to back, and closes the log
  // cleanly (Close) or not (destroyed without Close).
  void WriteLog(int count, bool clean, const std::set<int>& roll_before = {}) {
    ASSERT_TRUE(Reopen().ok());
    for (int i = 0; i < count; ++i) {
      if (roll_before.contains(i)) clock_.Advance(hours(1));
      batches_.push_back(KnownBatch(i));
      Result<AppendResult> r = AppendNow(ctx_, *log_, batches_.back().bytes);
      ASSERT_TRUE(r.ok()) << r.status();
      bases_.push_back(r->base_offset);
    }
    segments_ = ListSegments(env_, dir_);
    ASSERT_EQ(segments_.size(), roll_before.size() + 1) << "rolls did not happen as expected";
    std::vector<std::string> expected(segments_.size());
    for (int i = 0; i < count; ++i) {
      std::size_t s = SegmentOf(i);
      positions_.push_back(expected[s].size());
      expected[s] += AsString(Stamped(batches_[i].bytes, bases_[i]));
    }
    for (std::size_t s = 0; s < segments_.size(); ++s) {
      ASSERT_EQ(ReadFileOrEmpty(env_, Segment(s)), expected[s])
          << "segment " << s << " does not hold its batches back to back";
    }
    if (clean) {
      ASSERT_EQ(CloseNow(ctx_, *log_), OkStatus());
    }
    log_.reset();
  }

  Status Reopen() {
    log_.reset();
    Result<std::unique_ptr<Log>> log =
        Log::Open(SingleThreadContext(env_, clock_, ctx_), dir_, options_);
    if (!log.ok()) {
      ADD_FAILURE() << "open: " << log.status();
      return log.status();
    }
    log_ = std::move(log).value();
    return OkStatus();
  }

  std::size_t SegmentOf(int i) const {
    std::size_t s = 0;
    while (s + 1 < segments_.size() && segments_[s + 1] <= bases_[i]) ++s;
    return s;
  }
  fs::path Segment(std::size_t s, std::string_view ext = ".log") const {
    return SegmentFile(dir_, segments_[s], ext);
  }
  std::uint64_t SizeOf(int i) const { return batches_[i].bytes.size(); }
  Offset NextOffset() const { return bases_.back() + batches_.back().records.size(); }

  // The log reads back as exactly the first `count` known batches.
  void ExpectBatches(int count) {
    Result<std::vector<StoredBatch>> stored = ReadWholeLog(*log_);
    ASSERT_TRUE(stored.ok()) << stored.status();
    ASSERT_EQ(stored->size(), static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      EXPECT_EQ((*stored)[i].bytes, Stamped(batches_[i].bytes, bases_[i])) << "batch " << i;
    }
    EXPECT_EQ(log_->high_watermark(),
              count == 0 ? Offset(0) : bases_[count - 1] + batches_[count - 1].records.size());
  }

  // A new append lands at `expected` and reads back.
  void ExpectAppendAt(Offset expected) {
    TestBatch probe = MakeBatch({{Offset(0), kT0, "probe", "after recovery", {}}});
    Result<AppendResult> r = AppendNow(ctx_, *log_, probe.bytes);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->base_offset, expected);
    Result<ReadResult> read = log_->Read(expected, 1);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->batches, Stamped(probe.bytes, expected));
  }

  std::int64_t MaxTimestamp(int i) const { return batches_[i].records.back().timestamp_ms; }

  // Read() finds the batch holding any offset; OffsetForTime the first batch whose max
  // timestamp reaches t (brute force over the known batches).
  void ExpectLookupsCorrect() {
    for (std::size_t i = 0; i < batches_.size(); ++i) {
      for (Offset o : {bases_[i], bases_[i] + (batches_[i].records.size() - 1)}) {
        Result<ReadResult> read = log_->Read(o, 1);
        ASSERT_TRUE(read.ok()) << "offset " << o << ": " << read.status();
        EXPECT_EQ(read->batches, Stamped(batches_[i].bytes, bases_[i])) << "offset " << o;
      }
    }
    std::vector<std::int64_t> times = {kT0 - 1000, kT0 + 1'000'000};
    for (std::size_t i = 0; i < batches_.size(); ++i) {
      for (std::int64_t d : {-1, 0, 1}) times.push_back(MaxTimestamp(static_cast<int>(i)) + d);
    }
    for (std::int64_t t : times) {
      Offset expected = NextOffset();
      for (std::size_t i = 0; i < batches_.size(); ++i) {
        if (MaxTimestamp(static_cast<int>(i)) >= t) {
          expected = bases_[i];
          break;
        }
      }
      Result<Offset> found = log_->OffsetForTime(t);
      ASSERT_TRUE(found.ok()) << "OffsetForTime(" << t << "): " << found.status();
      EXPECT_EQ(*found, expected) << "OffsetForTime(" << t << ")";
    }
  }

  FaultInjectionEnv env_;
  ManualClock clock_;
  boost::asio::io_context ctx_;
  const fs::path dir_ = "/orders-0";
  LogOptions options_;
  std::vector<TestBatch> batches_;
  std::vector<Offset> bases_;
  std::vector<Offset> segments_;
  std::vector<std::uint64_t> positions_;  // of each batch in its segment
  std::unique_ptr<Log> log_;              // destroyed before ctx_
};

TEST_F(LogRecoveryTest, CleanCloseIsTrustedOnReopen) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(5, /*clean=*/true));
  ASSERT_TRUE(Reopen().ok());
  EXPECT_TRUE(log_->status().clean_open);
  EXPECT_EQ(log_->status().bytes_truncated_at_open, 0u);
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(5));
  ExpectAppendAt(NextOffset());
}

TEST_F(LogRecoveryTest, UncleanShutdownIsScannedAndLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(5, /*clean=*/false, {3}));
  ASSERT_TRUE(Reopen().ok());
  EXPECT_FALSE(log_->status().clean_open);
  EXPECT_EQ(log_->status().bytes_truncated_at_open, 0u);
  EXPECT_EQ(log_->status().segments, 2u);
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(5));
  ExpectAppendAt(NextOffset());
}

TEST_F(LogRecoveryTest, TornTailAtEveryByteOfTheLastBatchKeepsTheBatchesBefore) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(5, /*clean=*/false));
  const std::string full = ReadFileOrEmpty(env_, Segment(0));
  const std::uint64_t start = positions_[4];
  for (std::uint64_t cut = 0; cut < SizeOf(4) && !HasFailure(); ++cut) {
    SCOPED_TRACE("kept " + std::to_string(cut) + " bytes of the last batch");
    ASSERT_EQ(RewriteFile(env_, Segment(0), full.substr(0, start + cut)), OkStatus());
    ASSERT_TRUE(Reopen().ok());
    LogStatus status = log_->status();
    EXPECT_EQ(status.state, LogState::kOpen) << status.error;
    EXPECT_EQ(status.bytes_truncated_at_open, cut);
    EXPECT_EQ(env_.GetFileSize(Segment(0)).value_or(0), start);
    ASSERT_NO_FATAL_FAILURE(ExpectBatches(4));
    ExpectAppendAt(bases_[4]);
  }
}

TEST_F(LogRecoveryTest, BitFlipAnywhereInTheTailBatchCutsIt) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(5, /*clean=*/false));
  ASSERT_EQ(batches_[4].records.size(), 1u);  // see KnownBatch
  const std::string full = ReadFileOrEmpty(env_, Segment(0));
  const std::uint64_t start = positions_[4];
  for (std::uint64_t at = 0; at < SizeOf(4) && !HasFailure(); ++at) {
    SCOPED_TRACE("flipped bit " + std::to_string(at % 8) + " of byte " + std::to_string(at));
    std::string damaged = full;
    damaged[start + at] = static_cast<char>(damaged[start + at] ^ (1 << (at % 8)));
    ASSERT_EQ(RewriteFile(env_, Segment(0), damaged), OkStatus());
    ASSERT_TRUE(Reopen().ok());
    EXPECT_EQ(log_->status().state, LogState::kOpen) << log_->status().error;
    EXPECT_EQ(log_->status().bytes_truncated_at_open, SizeOf(4));
    ASSERT_NO_FATAL_FAILURE(ExpectBatches(4));
  }
}

TEST_F(LogRecoveryTest, BitFlipInAMiddleBatchMarksTheLogCorruptAndCutsNothing) {
  // Recovery checks the active segment from its last index entry on: no entries here.
  options_.index_interval_bytes = 1 << 20;
  ASSERT_NO_FATAL_FAILURE(WriteLog(5, /*clean=*/false));
  const std::string full = ReadFileOrEmpty(env_, Segment(0));
  const std::uint64_t start = positions_[2];
  // The checksum itself, the first checksummed byte, a record byte, the last byte.
  for (std::uint64_t at :
       {std::uint64_t{24}, std::uint64_t{32}, std::uint64_t{80}, SizeOf(2) - 1}) {
    SCOPED_TRACE("flipped byte " + std::to_string(at) + " of batch 2");
    std::string damaged = full;
    damaged[start + at] = static_cast<char>(damaged[start + at] ^ 0x10);
    ASSERT_EQ(RewriteFile(env_, Segment(0), damaged), OkStatus());
    ASSERT_TRUE(Reopen().ok());
    LogStatus status = log_->status();
    EXPECT_EQ(status.state, LogState::kCorrupt);
    EXPECT_EQ(status.error.code(), StatusCode::kDataLoss) << status.error;
    EXPECT_EQ(status.corrupt_from, bases_[2]);
    EXPECT_EQ(status.bytes_truncated_at_open, 0u);
    for (int i : {0, 1}) {
      Result<ReadResult> read = log_->Read(bases_[i], 1);
      ASSERT_TRUE(read.ok()) << "batch " << i << ": " << read.status();
      EXPECT_EQ(read->batches, Stamped(batches_[i].bytes, bases_[i]));
    }
    for (int i : {2, 3}) {
      Result<ReadResult> read = log_->Read(bases_[i], 1 << 20);
      ASSERT_FALSE(read.ok()) << "batch " << i << " read past the damage";
      EXPECT_EQ(read.status().code(), StatusCode::kDataLoss) << read.status();
    }
    Status at_damage = log_->Read(bases_[2], 1).status();
    EXPECT_THAT(at_damage.message(), HasSubstr(std::to_string(bases_[2].value())));
    EXPECT_THAT(at_damage.message(), HasSubstr(std::to_string(start)));
    Result<AppendResult> append = AppendNow(ctx_, *log_, KnownBatch(9).bytes);
    EXPECT_EQ(append.status().code(), StatusCode::kFailedPrecondition) << append.status();
    EXPECT_EQ(ReadFileOrEmpty(env_, Segment(0)), damaged) << "recovery changed a corrupt log";
  }
}

TEST_F(LogRecoveryTest, BitFlipInASealedSegmentIsNeverCutOrSkipped) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(6, /*clean=*/false, {3}));
  std::string damaged = ReadFileOrEmpty(env_, Segment(0));
  damaged[positions_[1] + 80] ^= 0x01;
  ASSERT_EQ(RewriteFile(env_, Segment(0), damaged), OkStatus());
  ASSERT_TRUE(Reopen().ok());
  // Found at open (kCorrupt) or only by the read: either way never cut, never skipped.
  LogStatus status = log_->status();
  EXPECT_EQ(status.bytes_truncated_at_open, 0u);
  if (status.state == LogState::kCorrupt) {
    EXPECT_EQ(status.corrupt_from, bases_[1]);
  }
  EXPECT_TRUE(log_->Read(bases_[0], 1).ok());
  EXPECT_EQ(log_->Read(bases_[1], 1).status().code(), StatusCode::kDataLoss);
  Result<ReadResult> spanning = log_->Read(bases_[0], 1 << 20);  // must not skip the damage
  if (spanning.ok()) {
    EXPECT_LE(spanning->next_offset, bases_[1]);
  } else {
    EXPECT_EQ(spanning.status().code(), StatusCode::kDataLoss) << spanning.status();
  }
  EXPECT_EQ(ReadFileOrEmpty(env_, Segment(0)), damaged);
}

TEST_F(LogRecoveryTest, PowerLossAfterCleanCloseKeepsLookupsCorrect) {
  // The index is written without fsync; the clean-shutdown marker is durable.
  ASSERT_NO_FATAL_FAILURE(WriteLog(40, /*clean=*/true, {20}));
  env_.SimulateCrash(CrashMode::kDropUnsynced);
  ASSERT_TRUE(Reopen().ok());
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(40));
  ASSERT_NO_FATAL_FAILURE(ExpectLookupsCorrect());
  ExpectAppendAt(NextOffset());
}

class NewSegmentTest : public LogRecoveryTest, public testing::WithParamInterface<bool> {};

TEST_P(NewSegmentTest, EmptyNewSegmentIsAccepted) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(4, /*clean=*/GetParam()));
  ASSERT_EQ(RewriteFile(env_, SegmentFile(dir_, NextOffset(), ".log"), ""), OkStatus());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(log_->status().state, LogState::kOpen) << log_->status().error;
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(4));
  ExpectAppendAt(NextOffset());
}

TEST_P(NewSegmentTest, HalfAHeaderInANewSegmentIsCut) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(4, /*clean=*/GetParam()));
  std::string next = AsString(Stamped(KnownBatch(4).bytes, NextOffset()));
  ASSERT_EQ(RewriteFile(env_, SegmentFile(dir_, NextOffset(), ".log"), next.substr(0, 36)),
            OkStatus());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(log_->status().state, LogState::kOpen) << log_->status().error;
  EXPECT_EQ(log_->status().bytes_truncated_at_open, 36u);
  EXPECT_FALSE(log_->status().clean_open);
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(4));
  ExpectAppendAt(NextOffset());
}

INSTANTIATE_TEST_SUITE_P(AfterCleanAndUncleanClose, NewSegmentTest, testing::Bool(),
                         [](const auto& info) { return info.param ? "Clean" : "Unclean"; });

enum class Garbage { kZeros, kRandom, kStaleCopyOfFirstBatch };

class GarbageAfterTailTest : public LogRecoveryTest, public testing::WithParamInterface<Garbage> {};

TEST_P(GarbageAfterTailTest, IsCutAndNothingElse) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(5, /*clean=*/false));
  std::string garbage;
  switch (GetParam()) {
    case Garbage::kZeros:
      garbage.assign(4096, '\0');
      break;
    case Garbage::kRandom: {
      std::mt19937_64 rng(7);
      garbage = RandomString(rng, 100);
      break;
    }
    case Garbage::kStaleCopyOfFirstBatch:
      garbage = AsString(Stamped(batches_[0].bytes, bases_[0]));
      break;
  }
  std::string full = ReadFileOrEmpty(env_, Segment(0));
  ASSERT_EQ(RewriteFile(env_, Segment(0), full + garbage), OkStatus());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(log_->status().state, LogState::kOpen) << log_->status().error;
  EXPECT_EQ(log_->status().bytes_truncated_at_open, garbage.size());
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(5));
  ExpectAppendAt(NextOffset());
}

INSTANTIATE_TEST_SUITE_P(Kinds, GarbageAfterTailTest,
                         testing::Values(Garbage::kZeros, Garbage::kRandom,
                                         Garbage::kStaleCopyOfFirstBatch));

TEST_F(LogRecoveryTest, MarkerThatLiesAboutTheSizeIsIgnored) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(5, /*clean=*/true));
  const std::string full = ReadFileOrEmpty(env_, Segment(0));
  // Longer than the marker says: garbage appended after the clean close.
  ASSERT_EQ(RewriteFile(env_, Segment(0), full + std::string(100, 'x')), OkStatus());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_FALSE(log_->status().clean_open);
  EXPECT_EQ(log_->status().bytes_truncated_at_open, 100u);
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(5));
  ASSERT_EQ(CloseNow(ctx_, *log_), OkStatus());
  // Shorter than the marker says: the last batch torn in half.
  std::uint64_t keep = positions_[4] + SizeOf(4) / 2;
  ASSERT_EQ(RewriteFile(env_, Segment(0), full.substr(0, keep)), OkStatus());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_FALSE(log_->status().clean_open);
  EXPECT_EQ(log_->status().bytes_truncated_at_open, keep - positions_[4]);
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(4));
}

TEST_F(LogRecoveryTest, MarkerIsConsumedByTheOpenThatTrustsIt) {
  ASSERT_NO_FATAL_FAILURE(WriteLog(5, /*clean=*/true));
  ASSERT_TRUE(Reopen().ok());
  ASSERT_TRUE(log_->status().clean_open);
  log_.reset();  // a crash: the marker of the earlier close must not be trusted again
  std::string damaged = ReadFileOrEmpty(env_, Segment(0));
  damaged.back() ^= 0x01;  // same size, so only a scan finds it
  ASSERT_EQ(RewriteFile(env_, Segment(0), damaged), OkStatus());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_FALSE(log_->status().clean_open);
  EXPECT_EQ(log_->status().bytes_truncated_at_open, SizeOf(4));
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(4));
}

// ---- Stale and missing indexes (docs/formats/log.md, "Index").

// One 16-byte entry, as the format specifies it.
struct IndexEntry {
  std::uint32_t relative_offset;
  std::uint32_t position;
  std::int64_t max_timestamp;
};
constexpr std::size_t kEntrySize = 16;

std::vector<IndexEntry> ParseIndex(const std::string& bytes) {
  std::vector<IndexEntry> out;
  auto* p = reinterpret_cast<const std::byte*>(bytes.data());
  for (std::size_t at = 0; at + kEntrySize <= bytes.size(); at += kEntrySize) {
    out.push_back({codec::LoadLE<std::uint32_t>(p + at), codec::LoadLE<std::uint32_t>(p + at + 4),
                   codec::LoadLE<std::int64_t>(p + at + 8)});
  }
  return out;
}

std::string Encode(const std::vector<IndexEntry>& entries) {
  std::string out(entries.size() * kEntrySize, '\0');
  auto* p = reinterpret_cast<std::byte*>(out.data());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    codec::StoreLE(p + kEntrySize * i, entries[i].relative_offset);
    codec::StoreLE(p + kEntrySize * i + 4, entries[i].position);
    codec::StoreLE(p + kEntrySize * i + 8, entries[i].max_timestamp);
  }
  return out;
}

enum class IndexDamage {
  kNone,
  kMissing,
  kEntryPastTheEnd,
  kNotMonotonic,
  kTruncatedEntry,
  kFewerEntries,
  kEmpty,
};

std::string DamageName(IndexDamage d) {
  switch (d) {
    case IndexDamage::kNone:
      return "Intact";
    case IndexDamage::kMissing:
      return "Missing";
    case IndexDamage::kEntryPastTheEnd:
      return "EntryPastTheEnd";
    case IndexDamage::kNotMonotonic:
      return "NotMonotonic";
    case IndexDamage::kTruncatedEntry:
      return "TruncatedEntry";
    case IndexDamage::kFewerEntries:
      return "FewerEntries";
    case IndexDamage::kEmpty:
      return "Empty";
  }
  return "Unknown";
}

// Which damage, in the sealed (first) or the active segment, after a clean close or not.
using IndexCase = std::tuple<IndexDamage, bool, bool>;

class StaleIndexTest : public LogRecoveryTest, public testing::WithParamInterface<IndexCase> {
 protected:
  void Damage(std::size_t s) {
    const fs::path index = Segment(s, ".index");
    std::string bytes = ReadFileOrEmpty(env_, index);
    std::vector<IndexEntry> entries = ParseIndex(bytes);
    ASSERT_GE(entries.size(), 2u) << "too few index entries to damage";
    switch (std::get<0>(GetParam())) {
      case IndexDamage::kNone:
        return;
      case IndexDamage::kMissing:
        ASSERT_EQ(env_.RemoveFile(index), OkStatus());
        ASSERT_EQ(env_.SyncDir(dir_), OkStatus());
        return;
      case IndexDamage::kEntryPastTheEnd: {
        auto size = static_cast<std::uint32_t>(env_.GetFileSize(Segment(s)).value_or(0));
        IndexEntry last = entries.back();
        entries.push_back({last.relative_offset + 1000, size + 4096, last.max_timestamp + 1});
        break;
      }
      case IndexDamage::kNotMonotonic:
        std::reverse(entries.begin(), entries.end());
        break;
      case IndexDamage::kTruncatedEntry:
        ASSERT_EQ(RewriteFile(env_, index, bytes.substr(0, bytes.size() - 5)), OkStatus());
        return;
      case IndexDamage::kFewerEntries:
        entries.resize(1);
        break;
      case IndexDamage::kEmpty:
        entries.clear();
        break;
    }
    ASSERT_EQ(RewriteFile(env_, index, Encode(entries)), OkStatus());
  }

  // The index files on disk, where present, describe their segment truthfully.
  void ExpectIndexesConsistent() {
    for (Offset base : ListSegments(env_, dir_)) {
      SCOPED_TRACE("segment " + std::to_string(base.value()));
      std::string log_bytes = ReadFileOrEmpty(env_, SegmentFile(dir_, base, ".log"));
      std::map<std::uint32_t, std::pair<std::uint32_t, std::int64_t>> batch_at;  // position, max
      std::int64_t max_ts = std::numeric_limits<std::int64_t>::min();
      for (std::size_t at = 0; at < log_bytes.size();) {
        Result<codec::BatchHeader> h =
            codec::ParseBatchHeader(std::as_bytes(std::span(log_bytes)).subspan(at));
        ASSERT_TRUE(h.ok()) << h.status();
        max_ts = std::max(max_ts, h->max_timestamp_ms);
        batch_at[static_cast<std::uint32_t>(h->base_offset - base)] = {
            static_cast<std::uint32_t>(at), max_ts};
        at += h->batch_length;
      }
      std::string bytes = ReadFileOrEmpty(env_, SegmentFile(dir_, base, ".index"));
      EXPECT_EQ(bytes.size() % kEntrySize, 0u) << "partial index entry";
      std::optional<IndexEntry> previous;
      for (const IndexEntry& e : ParseIndex(bytes)) {
        auto it = batch_at.find(e.relative_offset);
        ASSERT_NE(it, batch_at.end()) << "index names no batch: " << e.relative_offset;
        EXPECT_EQ(e.position, it->second.first) << "entry " << e.relative_offset;
        EXPECT_EQ(e.max_timestamp, it->second.second) << "entry " << e.relative_offset;
        if (previous) {
          EXPECT_LT(previous->relative_offset, e.relative_offset);
        }
        previous = e;
      }
    }
  }
};

TEST_P(StaleIndexTest, IsRebuiltAndLookupsStayCorrect) {
  const auto [damage, sealed, clean] = GetParam();
  ASSERT_NO_FATAL_FAILURE(WriteLog(40, clean, {20}));
  ASSERT_NO_FATAL_FAILURE(Damage(sealed ? 0 : 1));
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(log_->status().state, LogState::kOpen) << log_->status().error;
  EXPECT_EQ(log_->status().bytes_truncated_at_open, 0u);
  ASSERT_NO_FATAL_FAILURE(ExpectBatches(40));
  ASSERT_NO_FATAL_FAILURE(ExpectLookupsCorrect());
  ExpectAppendAt(NextOffset());
  ASSERT_EQ(CloseNow(ctx_, *log_), OkStatus());
  ExpectIndexesConsistent();
}

std::string IndexCaseName(const testing::TestParamInfo<IndexCase>& info) {
  return DamageName(std::get<0>(info.param)) + (std::get<1>(info.param) ? "InSealed" : "InActive") +
         (std::get<2>(info.param) ? "AfterCleanClose" : "AfterCrash");
}

// What a power loss can leave of an index written without fsync, whether or not the log
// was closed cleanly before it.
INSTANTIATE_TEST_SUITE_P(
    PowerLoss, StaleIndexTest,
    testing::Combine(testing::Values(IndexDamage::kNone, IndexDamage::kTruncatedEntry,
                                     IndexDamage::kFewerEntries, IndexDamage::kEmpty),
                     testing::Bool(), testing::Bool()),
    IndexCaseName);

// Damage no crash makes (a deleted file, a bad disk): checked when the marker is absent.
INSTANTIATE_TEST_SUITE_P(Tampering, StaleIndexTest,
                         testing::Combine(testing::Values(IndexDamage::kMissing,
                                                          IndexDamage::kEntryPastTheEnd,
                                                          IndexDamage::kNotMonotonic),
                                          testing::Bool(), testing::Values(false)),
                         IndexCaseName);

}  // namespace
}  // namespace junction::storage
