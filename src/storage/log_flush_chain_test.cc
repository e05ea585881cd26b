// fsync=always: appends made while a flush runs are flushed by the same job
// as soon as that flush is done, without waiting for the shard to handle the
// completion first; their acknowledgements still come in offset order, and a
// failed flush fails what it left behind.

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "core/fault_injection_env.h"
#include "storage/log.h"
#include "storage/log_test_util.h"

namespace junction::storage {
namespace {

using namespace test_util;  // NOLINT(google-build-using-namespace): test helpers

constexpr std::string_view kDir = "/chain-0";
constexpr auto kPatience = std::chrono::minutes(1);  // a hang, not a timing assertion

// Counts the fdatasyncs of .log files; the one numbered `hold` (from 1) waits
// in Sync until Release().
class GatedEnv final : public EnvWrapper {
 public:
  explicit GatedEnv(Env& base) : EnvWrapper(base) {}

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const fs::path& path) override {
    return Wrap(path, target().NewWritableFile(path));
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const fs::path& path) override {
    return Wrap(path, target().NewAppendableFile(path));
  }

  void Hold(int nth) {
    std::lock_guard lock(mutex_);
    hold_ = nth;
  }
  void Release() {
    std::lock_guard lock(mutex_);
    hold_ = 0;
    changed_.notify_all();
  }
  // Waits until `n` .log syncs have started; false after kPatience.
  bool WaitForSyncs(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return syncs_ >= n; });
  }
  // Waits until `n` .log syncs have returned; false after kPatience.
  bool WaitForSynced(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return synced_ >= n; });
  }

 private:
  class File final : public WritableFile {
   public:
    File(GatedEnv& env, std::unique_ptr<WritableFile> base) : env_(env), base_(std::move(base)) {}
    Status AppendV(std::span<const std::span<const std::byte>> pieces) override {
      return base_->AppendV(pieces);
    }
    Status Sync() override {
      env_.Entered();
      Status status = base_->Sync();
      env_.Left();
      return status;
    }
    Status Close() override { return base_->Close(); }
    std::uint64_t Size() const override { return base_->Size(); }

   private:
    GatedEnv& env_;
    std::unique_ptr<WritableFile> base_;
  };

  Result<std::unique_ptr<WritableFile>> Wrap(const fs::path& path,
                                             Result<std::unique_ptr<WritableFile>> file) {
    if (!file.ok() || path.extension() != ".log") return file;
    return std::unique_ptr<WritableFile>(std::make_unique<File>(*this, std::move(*file)));
  }
  void Entered() {
    std::unique_lock lock(mutex_);
    int mine = ++syncs_;
    changed_.notify_all();
    changed_.wait_for(lock, kPatience, [&] { return hold_ != mine; });
  }
  void Left() {
    std::lock_guard lock(mutex_);
    ++synced_;
    changed_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  int hold_ = 0;    // guarded by mutex_
  int syncs_ = 0;   // guarded by mutex_
  int synced_ = 0;  // guarded by mutex_
};

class LogFlushChainTest : public testing::Test {
 protected:
  void Open() {
    options_.fsync = FsyncPolicy::Always();
    Result<std::unique_ptr<Log>> log =
        Log::Open({env_, clock_, shard_.get_executor(), pool_.get_executor()}, kDir, options_);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(log).value();
  }

  // Starts an append of one batch of `records` records; its result lands in
  // the returned slot (in completion order, `order`).
  std::shared_ptr<std::optional<Result<AppendResult>>> Append(int records, const std::string& tag) {
    std::vector<codec::Record> batch(static_cast<std::size_t>(records));
    for (int i = 0; i < records; ++i) {
      batch[static_cast<std::size_t>(i)].value = tag + "-" + std::to_string(i);
    }
    auto slot = std::make_shared<std::optional<Result<AppendResult>>>();
    log_->AsyncAppend(MakeBatch(std::move(batch)).bytes,
                      [this, slot, tag](Result<AppendResult> result) {
                        *slot = std::move(result);
                        order_.push_back(tag);
                      });
    return slot;
  }

  // Runs the shard until every slot is filled; false after kPatience idle.
  bool RunUntilDone(
      const std::vector<std::shared_ptr<std::optional<Result<AppendResult>>>>& slots) {
    auto work = boost::asio::make_work_guard(shard_);
    shard_.restart();
    auto done = [&] {
      for (const auto& slot : slots) {
        if (!slot->has_value()) return false;
      }
      return true;
    };
    while (!done()) {
      if (shard_.run_one_for(kPatience) == 0) return false;
    }
    return true;
  }

  FaultInjectionEnv disk_;
  GatedEnv env_{disk_};
  ManualClock clock_;
  LogOptions options_;
  std::vector<std::string> order_;  // shard only
  boost::asio::io_context shard_;
  boost::asio::thread_pool pool_{1};  // after shard_: joined first
  std::unique_ptr<Log> log_;          // destroyed before both
};

TEST_F(LogFlushChainTest, TheFlushJobTakesAppendsMadeMeanwhileWithoutTheShard) {
  Open();
  env_.Hold(1);
  auto first = Append(2, "a");  // starts a flush; its sync waits at the gate
  ASSERT_TRUE(env_.WaitForSyncs(1));
  auto second = Append(1, "b");  // made while the flush runs
  auto third = Append(1, "c");
  // The shard does not run from here on until both syncs are done: only the
  // flush job itself can start the second flush.
  env_.Release();
  ASSERT_TRUE(env_.WaitForSynced(2)) << "the appends made meanwhile waited for the shard";
  ASSERT_TRUE(RunUntilDone({first, second, third})) << "appends never completed";
  ASSERT_TRUE((*first)->ok()) << (*first)->status();
  ASSERT_TRUE((*second)->ok()) << (*second)->status();
  ASSERT_TRUE((*third)->ok()) << (*third)->status();
  EXPECT_EQ((**first)->base_offset, Offset(0));
  EXPECT_EQ((**second)->base_offset, Offset(2));
  EXPECT_EQ((**third)->base_offset, Offset(3));
  EXPECT_EQ(order_, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(log_->high_watermark(), Offset(4));
}

TEST_F(LogFlushChainTest, AFewAppendsMadeMeanwhileWaitForTheShardToGatherMore) {
  Open();
  env_.Hold(1);
  auto first = Append(8, "a");
  ASSERT_TRUE(env_.WaitForSyncs(1));
  auto second = Append(1, "b");  // fewer than half the records of the flush
  env_.Release();
  ASSERT_TRUE(env_.WaitForSynced(1));
  // Left for the shard, which flushes it once the first completion ran.
  ASSERT_TRUE(RunUntilDone({first, second})) << "the append left behind was never flushed";
  ASSERT_TRUE((*second)->ok()) << (*second)->status();
  EXPECT_EQ((**second)->base_offset, Offset(8));
  EXPECT_EQ(order_, (std::vector<std::string>{"a", "b"}));
}

TEST_F(LogFlushChainTest, AFailedFlushFailsWhatItLeftBehindAndLaterAppends) {
  Open();
  env_.Hold(1);
  auto first = Append(1, "a");
  ASSERT_TRUE(env_.WaitForSyncs(1));
  disk_.FailNth(FaultOp::kSync, 1, EIO);  // the sync now waiting at the gate
  auto second = Append(1, "b");
  env_.Release();
  ASSERT_TRUE(RunUntilDone({first, second}));
  EXPECT_FALSE((*first)->ok()) << "a failed fdatasync was acknowledged";
  EXPECT_FALSE((*second)->ok()) << "an append queued behind a failed flush was acknowledged";
  auto third = Append(1, "c");
  ASSERT_TRUE(RunUntilDone({third}));
  EXPECT_EQ((*third)->status().code(), StatusCode::kFailedPrecondition) << (*third)->status();
  EXPECT_EQ(log_->high_watermark(), Offset(0));
}

}  // namespace
}  // namespace junction::storage
