#include "junction/clock.h"

#include "junction/deadline.h"
#include "junction/result.h"

namespace junction {
namespace {

class SystemClock final : public Clock {
 public:
  MonoTime Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
};

// 2026-01-01T00:00:00Z: a fixed, recognisable start for virtual wall time.
constexpr std::chrono::seconds kManualWallStart{1767225600};

}  // namespace

Clock& RealClock() {
  static SystemClock clock;
  return clock;
}

ManualClock::ManualClock()
    : mono_(MonoTime(std::chrono::hours(1))), wall_(WallTime(kManualWallStart)) {}

MonoTime ManualClock::Now() const {
  std::lock_guard lock(mutex_);
  return mono_;
}

WallTime ManualClock::WallNow() const {
  std::lock_guard lock(mutex_);
  return wall_;
}

void ManualClock::Advance(Duration delta) {
  JUNCTION_CHECK(delta >= Duration::zero()) << "ManualClock cannot go back in time";
  std::lock_guard lock(mutex_);
  mono_ += delta;
  wall_ += std::chrono::duration_cast<WallTime::duration>(delta);
}

void ManualClock::SetWall(WallTime wall) {
  std::lock_guard lock(mutex_);
  wall_ = wall;
}

Deadline Deadline::After(const Clock& clock, Duration timeout) {
  MonoTime now = clock.Now();
  if (timeout <= Duration::zero()) return Deadline(now);
  if (timeout >= MonoTime::max() - now) return Infinite();
  return Deadline(now + timeout);
}

Duration Deadline::Remaining(const Clock& clock) const {
  if (is_infinite()) return Duration::max();
  MonoTime now = clock.Now();
  if (now >= when_) return Duration::zero();
  return when_ - now;
}

}  // namespace junction
