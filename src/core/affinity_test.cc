#include "core/affinity.h"

#include <sched.h>

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace junction {
namespace {

TEST(AffinityTest, APinnedThreadRunsOnItsCpusAndThreadsItCreatesInheritThem) {
  Result<std::vector<int>> before = ThreadCpus();
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_FALSE(before->empty());
  const std::vector<int> one{before->back()};
  std::vector<int> inside;
  std::vector<int> child;
  std::vector<int> after;
  // On a thread of its own, so the test's main thread is never left pinned.
  std::thread([&] {
    {
      ScopedThreadCpus scope(one);
      ASSERT_TRUE(scope.status().ok()) << scope.status();
      inside = *ThreadCpus();
      std::thread([&] { child = *ThreadCpus(); }).join();
    }
    after = *ThreadCpus();
  }).join();
  EXPECT_EQ(inside, one);
  EXPECT_EQ(child, one);
  EXPECT_EQ(after, *before);
}

TEST(AffinityTest, PinThreadNarrowsTheCallingThreadOnly) {
  Result<std::vector<int>> all = ThreadCpus();
  ASSERT_TRUE(all.ok());
  std::vector<int> pinned;
  std::thread([&] {
    ASSERT_TRUE(PinThread(std::vector<int>{all->front()}).ok());
    pinned = *ThreadCpus();
  }).join();
  EXPECT_EQ(pinned, std::vector<int>{all->front()});
  EXPECT_EQ(*ThreadCpus(), *all);
}

TEST(AffinityTest, CpusTheProcessCannotUseAreRefusedByNumber) {
  Result<std::vector<int>> all = ThreadCpus();
  ASSERT_TRUE(all.ok());
  Status empty = CheckCpus({});
  EXPECT_EQ(empty.code(), StatusCode::kInvalidArgument);
  Status negative = CheckCpus(std::vector<int>{-1});
  EXPECT_EQ(negative.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(negative.message().find("CPU -1"), std::string::npos) << negative;
  Status huge = PinThread(std::vector<int>{CPU_SETSIZE});
  EXPECT_EQ(huge.code(), StatusCode::kInvalidArgument);
  // One past the highest CPU this thread may use is not one it may use
  // (missing from the machine, or outside the process's cpuset).
  if (all->back() + 1 < CPU_SETSIZE) {
    std::thread([&] {
      Status outside = PinThread(std::vector<int>{all->back() + 1});
      EXPECT_EQ(outside.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(outside.message().find(std::to_string(all->back() + 1)), std::string::npos)
          << outside;
      EXPECT_EQ(*ThreadCpus(), *all);
    }).join();
  }
  // A refused scope leaves the thread as it was.
  std::vector<int> during;
  std::thread([&] {
    ScopedThreadCpus scope(std::vector<int>{-5});
    EXPECT_EQ(scope.status().code(), StatusCode::kInvalidArgument);
    during = *ThreadCpus();
  }).join();
  EXPECT_EQ(during, *all);
  EXPECT_TRUE(CheckCpus(*all).ok());
}

}  // namespace
}  // namespace junction
