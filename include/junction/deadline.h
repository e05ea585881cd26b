#pragma once

// Deadline: the monotonic instant by which a call must finish. Every call that
// waits takes one; a deadline is passed down from hop to hop, never extended.

#include <algorithm>
#include <chrono>

#include "junction/clock.h"

namespace junction {

class Deadline {
 public:
  // No deadline: waits may last forever.
  static constexpr Deadline Infinite() { return Deadline(MonoTime::max()); }
  static constexpr Deadline At(MonoTime when) { return Deadline(when); }
  // `timeout` from now on `clock`. Saturates instead of overflowing.
  static Deadline After(const Clock& clock, Duration timeout);
  // Already expired.
  static constexpr Deadline Past() { return Deadline(MonoTime::min()); }

  constexpr MonoTime when() const { return when_; }
  constexpr bool is_infinite() const { return when_ == MonoTime::max(); }

  bool Expired(const Clock& clock) const { return clock.Now() >= when_; }
  // Time left, never negative; Duration::max() when infinite.
  Duration Remaining(const Clock& clock) const;

  // The earlier of the two: a callee never gets more time than its caller.
  friend constexpr Deadline Earliest(Deadline a, Deadline b) {
    return Deadline(std::min(a.when_, b.when_));
  }
  friend constexpr auto operator<=>(Deadline, Deadline) = default;

 private:
  constexpr explicit Deadline(MonoTime when) : when_(when) {}
  MonoTime when_;
};

}  // namespace junction
