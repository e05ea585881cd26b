#include "junction/clock.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace junction {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ManualClockTest, MovesOnlyWhenAdvanced) {
  ManualClock clock;
  MonoTime start = clock.Now();
  WallTime wall = clock.WallNow();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(seconds(3));
  EXPECT_EQ(clock.Now() - start, seconds(3));
  EXPECT_EQ(clock.WallNow() - wall, seconds(3));
}

TEST(ManualClockTest, WallClockCanJumpAlone) {
  ManualClock clock;
  MonoTime mono = clock.Now();
  clock.SetWall(WallTime(seconds(0)));
  EXPECT_EQ(clock.WallNow(), WallTime(seconds(0)));
  EXPECT_EQ(clock.Now(), mono);
}

TEST(ManualClockTest, ConcurrentAdvancesAllCount) {
  ManualClock clock;
  MonoTime start = clock.Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&clock] {
      for (int i = 0; i < 1000; ++i) {
        clock.Advance(milliseconds(1));
        (void)clock.WallNow();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(clock.Now() - start, milliseconds(4000));
}

TEST(ManualClockDeathTest, CannotGoBackwards) {
  ManualClock clock;
  EXPECT_DEATH(clock.Advance(milliseconds(-1)), "cannot go back in time");
}

TEST(RealClockTest, IsMonotonic) {
  Clock& clock = RealClock();
  MonoTime a = clock.Now();
  MonoTime b = clock.Now();
  EXPECT_LE(a, b);
  EXPECT_GT(clock.WallNow().time_since_epoch().count(), 0);
}

}  // namespace
}  // namespace junction
