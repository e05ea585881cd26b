#include <chrono>
#include <cstdint>

#include <gtest/gtest.h>

#include "broker/group.h"
#include "junction/clock.h"

namespace junction::broker {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::int64_t WallMillis(const Clock& clock) {
  return std::chrono::duration_cast<milliseconds>(clock.WallNow().time_since_epoch()).count();
}

// A ManualClock that another thread moves by `jump` right after the next
// `at`-th wall reading (counting from 1), as the model test's Advance did
// between the shard's two reads.
class JumpingClock final : public Clock {
 public:
  JumpingClock(Duration jump, int at) : jump_(jump), at_(at) {}
  MonoTime Now() const override { return inner_.Now(); }
  WallTime WallNow() const override {
    WallTime wall = inner_.WallNow();
    if (++walls_ == at_) inner_.Advance(jump_);
    return wall;
  }
  const ManualClock& inner() const { return inner_; }

 private:
  mutable ManualClock inner_;
  Duration jump_;
  int at_;
  mutable int walls_ = 0;
};

TEST(ClockInstantTest, BothClocksAreOfOneMomentWhenTheClockMovesBetweenTheReads) {
  JumpingClock clock(seconds(30), 1);
  const MonoTime start = clock.inner().Now();
  const std::int64_t start_ms = WallMillis(clock.inner());
  const auto [mono, wall_ms] = ClockInstant(clock);
  // Read again after the move: both are 30 s on. A pair of the first wall
  // reading and the later monotonic one would put every timer computed
  // from it 30 s late.
  EXPECT_EQ(mono - start, Duration(seconds(30)));
  EXPECT_EQ(wall_ms - start_ms, 30'000);
}

TEST(ClockInstantTest, AStillClockIsReadOnce) {
  JumpingClock clock(seconds(30), 2);  // would jump on a second wall reading
  const MonoTime start = clock.inner().Now();
  const auto [mono, wall_ms] = ClockInstant(clock);
  EXPECT_EQ(mono, start);
  EXPECT_EQ(wall_ms, WallMillis(clock.inner()));  // no second reading made the jump
  EXPECT_EQ(clock.inner().Now(), start);
}

}  // namespace
}  // namespace junction::broker
