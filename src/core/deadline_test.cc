#include "junction/deadline.h"

#include <gtest/gtest.h>

namespace junction {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(DeadlineTest, ExpiresOnVirtualTime) {
  ManualClock clock;
  Deadline deadline = Deadline::After(clock, milliseconds(100));
  EXPECT_FALSE(deadline.Expired(clock));
  EXPECT_EQ(deadline.Remaining(clock), milliseconds(100));
  clock.Advance(milliseconds(99));
  EXPECT_FALSE(deadline.Expired(clock));
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(deadline.Expired(clock));
  EXPECT_EQ(deadline.Remaining(clock), Duration::zero());
  clock.Advance(seconds(5));
  EXPECT_EQ(deadline.Remaining(clock), Duration::zero());  // never negative
}

TEST(DeadlineTest, InfiniteNeverExpiresAndSaturates) {
  ManualClock clock;
  Deadline forever = Deadline::Infinite();
  EXPECT_TRUE(forever.is_infinite());
  clock.Advance(std::chrono::hours(24 * 365));
  EXPECT_FALSE(forever.Expired(clock));
  EXPECT_EQ(forever.Remaining(clock), Duration::max());
  EXPECT_TRUE(Deadline::After(clock, Duration::max()).is_infinite());
}

TEST(DeadlineTest, NonPositiveTimeoutIsAlreadyExpired) {
  ManualClock clock;
  EXPECT_TRUE(Deadline::After(clock, Duration::zero()).Expired(clock));
  EXPECT_TRUE(Deadline::After(clock, milliseconds(-5)).Expired(clock));
  EXPECT_TRUE(Deadline::Past().Expired(clock));
}

TEST(DeadlineTest, EarliestNeverExtendsTheCallersBudget) {
  ManualClock clock;
  Deadline caller = Deadline::After(clock, seconds(1));
  Deadline wanted = Deadline::After(clock, seconds(30));
  EXPECT_EQ(Earliest(caller, wanted), caller);
  EXPECT_EQ(Earliest(Deadline::Infinite(), caller), caller);
  EXPECT_LT(caller, wanted);
}

}  // namespace
}  // namespace junction
