// The Env contract, run against every implementation: PosixEnv in a fresh temporary
// directory, NewMemEnv() and FaultInjectionEnv.

#include "core/env.h"

#include <stdlib.h>

#include <array>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/fault_injection_env.h"

namespace junction {
namespace {

namespace fs = std::filesystem;
using testing::ElementsAre;
using testing::HasSubstr;

enum class Kind { kPosix, kMem, kFaultInjection };

std::span<const std::byte> Bytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

class EnvContractTest : public testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kPosix) {
      std::string dir = (fs::path(testing::TempDir()) / "junction_env_XXXXXX").string();
      ASSERT_NE(::mkdtemp(dir.data()), nullptr);
      env_ = &PosixEnv();
      root_ = dir;
      return;
    }
    owned_ = GetParam() == Kind::kMem ? NewMemEnv() : std::make_unique<FaultInjectionEnv>();
    env_ = owned_.get();
    root_ = "/data";
    ASSERT_EQ(env_->CreateDirs(root_), OkStatus());
  }

  void TearDown() override {
    std::error_code ignored;
    if (GetParam() == Kind::kPosix) fs::remove_all(root_, ignored);
  }

  fs::path Path(std::string_view name) const { return root_ / name; }

  void Write(const fs::path& path, std::string_view contents) {
    auto file = env_->NewWritableFile(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_EQ((*file)->Append(contents), OkStatus());
    ASSERT_EQ((*file)->Close(), OkStatus());
  }

  std::string Read(const fs::path& path) {
    auto contents = ReadFileToString(*env_, path);
    EXPECT_TRUE(contents.ok()) << contents.status();
    return contents.value_or("<error>");
  }

  std::unique_ptr<Env> owned_;
  Env* env_ = nullptr;
  fs::path root_;
};

TEST_P(EnvContractTest, AppendedBytesReadBackAfterClose) {
  auto file = env_->NewWritableFile(Path("log"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->Append("hello"), OkStatus());
  ASSERT_EQ((*file)->Append(Bytes(" world")), OkStatus());
  EXPECT_EQ((*file)->Size(), 11u);
  ASSERT_EQ((*file)->Sync(), OkStatus());
  ASSERT_EQ((*file)->Close(), OkStatus());
  EXPECT_EQ(env_->GetFileSize(Path("log")).value_or(0), 11u);
  EXPECT_EQ(Read(Path("log")), "hello world");
}

TEST_P(EnvContractTest, ReadIsShortAtEndOfFileAndEmptyBeyond) {
  Write(Path("f"), "0123456789");
  auto file = env_->NewRandomAccessFile(Path("f"));
  ASSERT_TRUE(file.ok()) << file.status();
  std::array<std::byte, 4> buffer{};
  EXPECT_EQ((*file)->Read(8, buffer).value_or(99), 2u);
  EXPECT_EQ(static_cast<char>(buffer[0]), '8');
  EXPECT_EQ((*file)->Read(10, buffer).value_or(99), 0u);
  EXPECT_EQ((*file)->Read(1000, buffer).value_or(99), 0u);
  EXPECT_EQ((*file)->Size().value_or(0), 10u);
}

TEST_P(EnvContractTest, ReaderSeesBytesAppendedAfterItOpened) {
  auto writer = env_->NewWritableFile(Path("active"));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_EQ((*writer)->Append("ab"), OkStatus());
  auto reader = env_->NewRandomAccessFile(Path("active"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_EQ((*writer)->Append("cd"), OkStatus());
  EXPECT_EQ((*reader)->Size().value_or(0), 4u);
  std::array<std::byte, 2> buffer{};
  ASSERT_EQ((*reader)->Read(2, buffer).value_or(0), 2u);
  EXPECT_EQ(static_cast<char>(buffer[1]), 'd');
}

TEST_P(EnvContractTest, AppendableFileContinuesWhereWritableFileTruncates) {
  Write(Path("f"), "abc");
  auto appendable = env_->NewAppendableFile(Path("f"));
  ASSERT_TRUE(appendable.ok()) << appendable.status();
  EXPECT_EQ((*appendable)->Size(), 3u);
  ASSERT_EQ((*appendable)->Append("def"), OkStatus());
  ASSERT_EQ((*appendable)->Close(), OkStatus());
  EXPECT_EQ(Read(Path("f")), "abcdef");

  auto writable = env_->NewWritableFile(Path("f"));
  ASSERT_TRUE(writable.ok()) << writable.status();
  EXPECT_EQ((*writable)->Size(), 0u);
  EXPECT_EQ(env_->GetFileSize(Path("f")).value_or(99), 0u);
}

TEST_P(EnvContractTest, AppendVEqualsSequentialAppends) {
  // More pieces than IOV_MAX (1024), some empty, so writev needs several calls.
  std::vector<std::string> records;
  for (int i = 0; i < 1500; ++i) records.push_back(i % 7 == 0 ? "" : std::to_string(i) + ";");
  std::vector<std::span<const std::byte>> pieces;
  for (const std::string& record : records) pieces.push_back(Bytes(record));

  auto vectored = env_->NewWritableFile(Path("vectored"));
  auto sequential = env_->NewWritableFile(Path("sequential"));
  ASSERT_TRUE(vectored.ok() && sequential.ok());
  ASSERT_EQ((*vectored)->AppendV(pieces), OkStatus());
  for (const std::string& record : records) ASSERT_EQ((*sequential)->Append(record), OkStatus());
  EXPECT_EQ((*vectored)->Size(), (*sequential)->Size());
  EXPECT_EQ(Read(Path("vectored")), Read(Path("sequential")));
}

TEST_P(EnvContractTest, RenameReplacesTarget) {
  Write(Path("meta.tmp"), "new");
  Write(Path("meta"), "old");
  ASSERT_EQ(env_->RenameFile(Path("meta.tmp"), Path("meta")), OkStatus());
  EXPECT_FALSE(env_->FileExists(Path("meta.tmp")));
  EXPECT_EQ(Read(Path("meta")), "new");
}

TEST_P(EnvContractTest, GetChildrenListsNamesSorted) {
  Write(Path("c"), "");
  Write(Path("a"), "");
  ASSERT_EQ(env_->CreateDir(Path("b")), OkStatus());
  auto children = env_->GetChildren(root_);
  ASSERT_TRUE(children.ok()) << children.status();
  EXPECT_THAT(*children, ElementsAre("a", "b", "c"));
}

TEST_P(EnvContractTest, TruncateCutsTheTail) {
  Write(Path("segment"), "good-batch|torn");
  ASSERT_EQ(env_->Truncate(Path("segment"), 11), OkStatus());
  EXPECT_EQ(Read(Path("segment")), "good-batch|");
  EXPECT_EQ(env_->GetFileSize(Path("segment")).value_or(0), 11u);
}

TEST_P(EnvContractTest, SecondLockOfSamePathFailsUntilReleased) {
  auto first = env_->LockFile(Path("LOCK"));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = env_->LockFile(Path("LOCK"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(Path("LOCK").string()));
  first->reset();
  EXPECT_TRUE(env_->LockFile(Path("LOCK")).ok());
}

TEST_P(EnvContractTest, MissingFileErrorsNameThePath) {
  fs::path missing = Path("missing");
  EXPECT_FALSE(env_->FileExists(missing));
  for (const Status& status :
       {env_->NewRandomAccessFile(missing).status(), env_->GetFileSize(missing).status(),
        env_->GetChildren(missing).status(), env_->RemoveFile(missing),
        env_->RenameFile(missing, Path("other")), env_->Truncate(missing, 0),
        env_->NewWritableFile(missing / "child").status()}) {
    EXPECT_EQ(status.code(), StatusCode::kNotFound) << status;
    EXPECT_THAT(status.message(), HasSubstr(missing.string()));
  }
}

TEST_P(EnvContractTest, DirectoriesNestAndMustBeEmptyToRemove) {
  fs::path leaf = Path("a/b/c");
  ASSERT_EQ(env_->CreateDirs(leaf), OkStatus());
  ASSERT_EQ(env_->CreateDirs(leaf), OkStatus());
  EXPECT_EQ(env_->CreateDir(Path("a")).code(), StatusCode::kAlreadyExists);
  Write(leaf / "f", "x");
  EXPECT_EQ(env_->RemoveDir(leaf).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(env_->GetFileSize(leaf).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_EQ(env_->RemoveFile(leaf / "f"), OkStatus());
  ASSERT_EQ(env_->RemoveDir(leaf), OkStatus());
  EXPECT_FALSE(env_->FileExists(leaf));
  EXPECT_TRUE(env_->FileExists(Path("a/b")));
}

TEST_P(EnvContractTest, WriteFileAtomicallyReplacesContentsAndLeavesNoTemp) {
  ASSERT_EQ(WriteFileAtomically(*env_, Path("meta"), "v1"), OkStatus());
  ASSERT_EQ(WriteFileAtomically(*env_, Path("meta"), "v2"), OkStatus());
  EXPECT_EQ(Read(Path("meta")), "v2");
  EXPECT_THAT(env_->GetChildren(root_).value_or(std::vector<std::string>{}), ElementsAre("meta"));
}

TEST_P(EnvContractTest, ClosedFileRefusesAppendsAndClosesTwice) {
  auto file = env_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->Close(), OkStatus());
  EXPECT_EQ((*file)->Append("late").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*file)->Close(), OkStatus());
}

TEST_P(EnvContractTest, ConcurrentWritersOnDistinctFilesDoNotInterfere) {
  constexpr int kWriters = 4;
  constexpr int kRecords = 100;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      auto file = env_->NewWritableFile(Path("w" + std::to_string(w)));
      ASSERT_TRUE(file.ok()) << file.status();
      for (int i = 0; i < kRecords; ++i) {
        ASSERT_EQ((*file)->Append("record-" + std::to_string(w) + ";"), OkStatus());
        if (i % 25 == 0) {
          ASSERT_EQ((*file)->Sync(), OkStatus());
        }
        if (i % 10 == 0) {
          ASSERT_TRUE(env_->GetChildren(root_).ok());
        }
      }
      ASSERT_EQ((*file)->Close(), OkStatus());
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int w = 0; w < kWriters; ++w) {
    std::string expected;
    for (int i = 0; i < kRecords; ++i) expected += "record-" + std::to_string(w) + ";";
    EXPECT_EQ(Read(Path("w" + std::to_string(w))), expected);
  }
}

INSTANTIATE_TEST_SUITE_P(AllEnvs, EnvContractTest,
                         testing::Values(Kind::kPosix, Kind::kMem, Kind::kFaultInjection),
                         [](const testing::TestParamInfo<Kind>& info) {
                           switch (info.param) {
                             case Kind::kPosix:
                               return "Posix";
                             case Kind::kMem:
                               return "Mem";
                             case Kind::kFaultInjection:
                               return "FaultInjection";
                           }
                           return "Unknown";
                         });

}  // namespace
}  // namespace junction
