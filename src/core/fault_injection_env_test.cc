#include "core/fault_injection_env.h"

#include <array>
#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace junction {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

class FaultInjectionEnvTest : public testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(CreateDurableDir(env_, "/db"), OkStatus()); }

  static Status CreateDurableDir(FaultInjectionEnv& env, const fs::path& dir) {
    JUNCTION_RETURN_IF_ERROR(env.CreateDirs(dir));
    return env.SyncDir(dir.parent_path());
  }

  // Creates `path` (its name durable unless told otherwise) holding `synced` durably
  // followed by `unsynced`; returns the still-open file.
  static std::unique_ptr<WritableFile> Create(FaultInjectionEnv& env, const fs::path& path,
                                              std::string_view synced, std::string_view unsynced,
                                              bool sync_dir = true) {
    auto file = env.NewWritableFile(path);
    EXPECT_TRUE(file.ok()) << file.status();
    if (!file.ok()) return nullptr;
    EXPECT_EQ((*file)->Append(synced), OkStatus());
    EXPECT_EQ((*file)->Sync(), OkStatus());
    EXPECT_EQ((*file)->Append(unsynced), OkStatus());
    if (sync_dir) {
      EXPECT_EQ(env.SyncDir(path.parent_path()), OkStatus());
    }
    return std::move(file).value();
  }

  static std::string Read(FaultInjectionEnv& env, const fs::path& path) {
    return ReadFileToString(env, path).value_or("<missing>");
  }

  static std::vector<std::string> Children(FaultInjectionEnv& env, const fs::path& dir) {
    return env.GetChildren(dir).value_or(std::vector<std::string>{"<error>"});
  }

  FaultInjectionEnv env_;
};

TEST_F(FaultInjectionEnvTest, WriteAfterCrashIsGoneUnlessSynced) {
  auto file = Create(env_, "/db/log", "durable;", "volatile");
  env_.SimulateCrash(CrashMode::kDropUnsynced, 0);
  EXPECT_EQ(Read(env_, "/db/log"), "durable;");
}

TEST_F(FaultInjectionEnvTest, KeepModeLosesNothing) {
  auto file = Create(env_, "/db/log", "durable;", "volatile", /*sync_dir=*/false);
  env_.SimulateCrash(CrashMode::kKeepUnsynced, 0);
  EXPECT_EQ(Read(env_, "/db/log"), "durable;volatile");
}

TEST_F(FaultInjectionEnvTest, SyncedFileSurvivesOnlyIfItsDirectoryWasSynced) {
  Create(env_, "/db/named", "data", "");
  Create(env_, "/db/unnamed", "data", "", /*sync_dir=*/false);
  env_.SimulateCrash(CrashMode::kDropUnsynced, 0);
  EXPECT_EQ(Read(env_, "/db/named"), "data");
  EXPECT_FALSE(env_.FileExists("/db/unnamed"));
}

TEST_F(FaultInjectionEnvTest, RenameAndRemovalNeedSyncDir) {
  Create(env_, "/db/a", "A", "");
  Create(env_, "/db/b", "B", "");
  ASSERT_EQ(env_.RenameFile("/db/a", "/db/c"), OkStatus());
  ASSERT_EQ(env_.RemoveFile("/db/b"), OkStatus());
  env_.SimulateCrash(CrashMode::kDropUnsynced, 0);
  EXPECT_EQ(Children(env_, "/db"), (std::vector<std::string>{"a", "b"}));

  ASSERT_EQ(env_.RenameFile("/db/a", "/db/c"), OkStatus());
  ASSERT_EQ(env_.RemoveFile("/db/b"), OkStatus());
  ASSERT_EQ(env_.SyncDir("/db"), OkStatus());
  env_.SimulateCrash(CrashMode::kDropUnsynced, 0);
  EXPECT_EQ(Children(env_, "/db"), (std::vector<std::string>{"c"}));
  EXPECT_EQ(Read(env_, "/db/c"), "A");
}

TEST_F(FaultInjectionEnvTest, TornWriteKeepsOnlyAPrefixOfTheUnsyncedTail) {
  const std::string written = "AAAABBBBBBBB";  // 4 synced, 8 not
  std::set<std::size_t> sizes;
  for (std::uint64_t seed = 0; seed < 32; ++seed) {
    FaultInjectionEnv env;
    ASSERT_EQ(CreateDurableDir(env, "/db"), OkStatus());
    Create(env, "/db/log", "AAAA", "BBBBBBBB");
    env.SimulateCrash(CrashMode::kTearUnsynced, seed);
    std::string survived = Read(env, "/db/log");
    ASSERT_GE(survived.size(), 4u);
    EXPECT_EQ(survived, written.substr(0, survived.size())) << "seed " << seed;
    sizes.insert(survived.size());
  }
  EXPECT_GT(sizes.size(), 3u) << "the torn length should vary with the seed";
}

TEST_F(FaultInjectionEnvTest, GarbledTearNeverTouchesSyncedBytes) {
  const std::string written = "AAAABBBBBBBB";
  int garbled = 0;
  for (std::uint64_t seed = 0; seed < 32; ++seed) {
    FaultInjectionEnv env;
    ASSERT_EQ(CreateDurableDir(env, "/db"), OkStatus());
    Create(env, "/db/log", "AAAA", "BBBBBBBB");
    env.SimulateCrash(CrashMode::kTearAndGarbleUnsynced, seed);
    std::string survived = Read(env, "/db/log");
    ASSERT_GE(survived.size(), 4u);
    ASSERT_LE(survived.size(), written.size());
    EXPECT_EQ(survived.substr(0, 4), "AAAA");
    if (survived != written.substr(0, survived.size())) ++garbled;
  }
  EXPECT_GT(garbled, 0);
}

TEST_F(FaultInjectionEnvTest, TornDirectoryKeepsAPrefixOfItsChanges) {
  std::set<int> survivor_counts;
  for (std::uint64_t seed = 0; seed < 32; ++seed) {
    FaultInjectionEnv env;
    ASSERT_EQ(CreateDurableDir(env, "/db"), OkStatus());
    for (int i = 0; i < 5; ++i) Create(env, "/db/f" + std::to_string(i), "x", "", false);
    env.SimulateCrash(CrashMode::kTearUnsynced, seed);
    std::vector<std::string> expected;
    std::vector<std::string> children = Children(env, "/db");
    for (std::size_t i = 0; i < children.size(); ++i) expected.push_back("f" + std::to_string(i));
    EXPECT_EQ(children, expected) << "created in order f0..f4, so a prefix of them survives";
    survivor_counts.insert(static_cast<int>(children.size()));
  }
  EXPECT_GT(survivor_counts.size(), 2u);
}

// A workload with synced, unsynced and unnamed data; returns what a crash leaves.
std::map<std::string, std::string> CrashWorkload(CrashMode mode, std::uint64_t seed) {
  FaultInjectionEnv env;
  EXPECT_EQ(env.CreateDirs("/db"), OkStatus());
  std::vector<std::unique_ptr<WritableFile>> files;
  for (int i = 0; i < 4; ++i) {
    auto file = env.NewWritableFile("/db/f" + std::to_string(i));
    EXPECT_EQ((*file)->Append("synced-" + std::to_string(i)), OkStatus());
    EXPECT_EQ((*file)->Sync(), OkStatus());
    EXPECT_EQ((*file)->Append("-unsynced-tail"), OkStatus());
    if (i == 1) {
      EXPECT_EQ(env.SyncDir("/db"), OkStatus());
    }
    files.push_back(std::move(file).value());
  }
  env.SimulateCrash(mode, seed);
  std::map<std::string, std::string> state;
  for (const std::string& name : env.GetChildren("/db").value_or(std::vector<std::string>{})) {
    state[name] = ReadFileToString(env, "/db/" + name).value_or("");
  }
  return state;
}

TEST_F(FaultInjectionEnvTest, SameSeedGivesTheSameCrash) {
  std::set<std::map<std::string, std::string>> outcomes;
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    auto outcome = CrashWorkload(CrashMode::kTearAndGarbleUnsynced, seed);
    EXPECT_EQ(outcome, CrashWorkload(CrashMode::kTearAndGarbleUnsynced, seed)) << seed;
    outcomes.insert(outcome);
  }
  EXPECT_GT(outcomes.size(), 1u);
}

TEST_F(FaultInjectionEnvTest, HandlesOpenedBeforeCrashFailAndNewOnesWork) {
  auto writer = Create(env_, "/db/log", "data", "");
  auto reader = env_.NewRandomAccessFile("/db/log");
  auto lock = env_.LockFile("/db/LOCK");
  ASSERT_TRUE(reader.ok() && lock.ok());
  env_.SimulateCrash(CrashMode::kKeepUnsynced, 0);

  std::array<std::byte, 4> buffer{};
  for (const Status& status : {writer->Append("x"), writer->Sync(),
                               (*reader)->Read(0, buffer).status(), (*reader)->Size().status()}) {
    EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
    EXPECT_THAT(status.message(), HasSubstr("handle opened before simulated crash"));
  }
  EXPECT_EQ(Read(env_, "/db/log"), "data");
  auto relocked = env_.LockFile("/db/LOCK");  // the crash released the old lock
  ASSERT_TRUE(relocked.ok()) << relocked.status();
  lock->reset();  // and destroying the stale one does not release the new one
  EXPECT_EQ(env_.LockFile("/db/LOCK").status().code(), StatusCode::kUnavailable);
}

TEST_F(FaultInjectionEnvTest, StickyEnospcFailsEveryLaterWriteUntilCleared) {
  env_.FailNth(FaultOp::kWrite, 1, ENOSPC, {.sticky = true});
  auto first = env_.NewWritableFile("/db/first");
  auto second = env_.NewWritableFile("/db/second");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ((*first)->Append("a").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ((*second)->Append("b").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ((*second)->Append("b").code(), StatusCode::kFailedPrecondition);  // broken handle
  env_.ClearFaults();
  auto third = env_.NewWritableFile("/db/third");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ((*third)->Append("c"), OkStatus());
}

// Appends and syncs five records; returns how many were acknowledged and the first error.
std::pair<int, Status> AppendRecords(FaultInjectionEnv& env) {
  auto file = env.NewWritableFile("/db/log");
  if (!file.ok()) return {0, file.status()};
  for (int i = 0; i < 5; ++i) {
    Status status = (*file)->Append("record;");
    if (status.ok()) status = (*file)->Sync();
    if (!status.ok()) return {i, status};
  }
  return {5, OkStatus()};
}

TEST_F(FaultInjectionEnvTest, EveryWriteOfAWorkloadCanBeMadeToFail) {
  FaultInjectionEnv probe;
  ASSERT_EQ(probe.CreateDirs("/db"), OkStatus());
  ASSERT_EQ(AppendRecords(probe).first, 5);
  ASSERT_EQ(probe.writes(), 5u);
  ASSERT_EQ(probe.syncs(), 5u);
  for (int k = 1; k <= 5; ++k) {
    FaultInjectionEnv env;
    ASSERT_EQ(env.CreateDirs("/db"), OkStatus());
    env.FailNth(FaultOp::kWrite, k, EIO);
    auto [acknowledged, status] = AppendRecords(env);
    EXPECT_EQ(acknowledged, k - 1);
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status;
    EXPECT_THAT(status.message(), HasSubstr("/db/log"));
    EXPECT_EQ(env.GetFileSize("/db/log").value_or(0), 7u * (k - 1));
  }
}

TEST_F(FaultInjectionEnvTest, PartialWriteStoresAnUnsyncedPrefix) {
  auto file = Create(env_, "/db/log", "ok;", "");
  env_.FailNth(FaultOp::kWrite, 1, ENOSPC, {.partial_write = true});
  EXPECT_EQ(file->Append("12345678").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(file->Size(), 7u);
  EXPECT_EQ(Read(env_, "/db/log"), "ok;1234");
  env_.SimulateCrash(CrashMode::kDropUnsynced, 0);
  EXPECT_EQ(Read(env_, "/db/log"), "ok;");
}

TEST_F(FaultInjectionEnvTest, FailedSyncLosesTheTailEvenIfALaterSyncSucceeds) {
  auto file = Create(env_, "/db/log", "acked;", "pending;");
  env_.FailNth(FaultOp::kSync, 1, EIO);
  EXPECT_EQ(file->Sync().code(), StatusCode::kUnavailable);
  ASSERT_EQ(file->Close(), OkStatus());
  auto reopened = env_.NewAppendableFile("/db/log");
  ASSERT_TRUE(reopened.ok());
  ASSERT_EQ((*reopened)->Sync(), OkStatus());  // the kernel forgot the dirty pages
  env_.SimulateCrash(CrashMode::kDropUnsynced, 0);
  EXPECT_EQ(Read(env_, "/db/log"), "acked;");
}

TEST_F(FaultInjectionEnvTest, AtomicWriteLeavesOldOrNewAfterFailureAtAnyStep) {
  FaultInjectionEnv probe;
  ASSERT_EQ(CreateDurableDir(probe, "/db"), OkStatus());
  std::uint64_t before = probe.mutations();
  ASSERT_EQ(WriteFileAtomically(probe, "/db/meta", "new"), OkStatus());
  const int steps = static_cast<int>(probe.mutations() - before);
  ASSERT_GE(steps, 5);  // open, append, sync, rename, sync dir
  for (int k = 1; k <= steps; ++k) {
    FaultInjectionEnv env;
    ASSERT_EQ(CreateDurableDir(env, "/db"), OkStatus());
    ASSERT_EQ(WriteFileAtomically(env, "/db/meta", "old"), OkStatus());
    env.FailNth(FaultOp::kAny, k, EIO);
    EXPECT_FALSE(WriteFileAtomically(env, "/db/meta", "new").ok()) << "step " << k;
    env.ClearFaults();
    env.SimulateCrash(CrashMode::kTearAndGarbleUnsynced, k);
    EXPECT_THAT(Read(env, "/db/meta"), testing::AnyOf("old", "new")) << "step " << k;
  }
}

TEST_F(FaultInjectionEnvTest, CrashWhileWritersRunLeavesWholeSyncedRecords) {
  for (int w = 0; w < 2; ++w) Create(env_, "/db/w" + std::to_string(w), "", "");
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([this, w] {
      auto file = env_.NewAppendableFile("/db/w" + std::to_string(w));
      ASSERT_TRUE(file.ok()) << file.status();
      for (int i = 0; i < 200; ++i) {
        Status status = (*file)->Append("rec;");
        if (status.ok()) status = (*file)->Sync();
        if (!status.ok()) {
          EXPECT_THAT(status.message(), HasSubstr("simulated crash"));
          return;
        }
      }
    });
  }
  env_.SimulateCrash(CrashMode::kDropUnsynced, 1);
  for (std::thread& writer : writers) writer.join();
  for (int w = 0; w < 2; ++w) {
    std::string survived = Read(env_, "/db/w" + std::to_string(w));
    std::string whole_records;
    while (whole_records.size() < survived.size()) whole_records += "rec;";
    EXPECT_EQ(survived, whole_records);
  }
}

TEST(CreateDirsDurablyTest, NewDirectoriesSurviveACrashWhereCreateDirsDoesNot) {
  FaultInjectionEnv env;
  ASSERT_TRUE(env.CreateDirs("/plain/a/b").ok());
  ASSERT_TRUE(CreateDirsDurably(env, "/durable/a/b").ok());
  ASSERT_TRUE(CreateDirsDurably(env, "/durable/a/b").ok());  // idempotent
  env.SimulateCrash(CrashMode::kDropUnsynced);
  EXPECT_FALSE(env.FileExists("/plain/a"));  // "/plain" itself rode on the SyncDir of "/"
  EXPECT_TRUE(env.FileExists("/durable/a/b"));
}

}  // namespace
}  // namespace junction
