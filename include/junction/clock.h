#pragma once

// Clock: the one source of time. Code that waits, retries or expires things
// reads time from a Clock it was given, so tests run on virtual time with
// ManualClock instead of sleeping.

#include <chrono>
#include <mutex>

namespace junction {

// Monotonic time: for deadlines, timeouts and durations.
using MonoTime = std::chrono::steady_clock::time_point;
// Wall-clock time: for timestamps that leave the process (records, events, logs).
using WallTime = std::chrono::system_clock::time_point;
using Duration = std::chrono::nanoseconds;

// Thread-safe: every implementation may be read from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Now() const = 0;
  virtual WallTime WallNow() const = 0;
};

// The process's real clocks. The returned reference lives forever.
Clock& RealClock();

// Virtual time that moves only when a test moves it. Starts at an arbitrary
// fixed point (monotonic) and at 2026-01-01T00:00:00Z (wall).
// Thread-safe.
class ManualClock final : public Clock {
 public:
  ManualClock();
  MonoTime Now() const override;
  WallTime WallNow() const override;

  // Moves both clocks forward. REQUIRES: delta >= 0.
  void Advance(Duration delta);
  // Sets the wall clock alone (wall time may jump, even backwards).
  void SetWall(WallTime wall);

 private:
  mutable std::mutex mutex_;
  MonoTime mono_;  // guarded by mutex_
  WallTime wall_;  // guarded by mutex_
};

}  // namespace junction
