#pragma once

// LatencyHistogram: counts of nanosecond values in log-linear buckets, as
// HdrHistogram lays them out: every power of two is cut into 128 equal
// buckets, so a value is kept to within 1/128 (0.8%) of itself, from 1 ns to
// 2^63 ns, in a fixed 58 KiB. Recording is a few instructions and never
// allocates; histograms of several threads merge exactly.
//
// Not thread-safe: one per thread, merged when the run is over.

#include <array>
#include <cstdint>

namespace junction::obs {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr std::uint64_t kSubBuckets = 1u << kSubBucketBits;  // 128
  static constexpr std::size_t kBuckets = (64 - kSubBucketBits + 1) * kSubBuckets;

  // Negative values count as 0.
  void Record(std::int64_t nanos) {
    std::uint64_t v = nanos < 0 ? 0 : static_cast<std::uint64_t>(nanos);
    ++counts_[IndexOf(v)];
    ++count_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }
  void Merge(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return count_ == 0 ? 0 : max_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }
  // The smallest recorded value v such that a share of at least q of all
  // values is <= v, reported as the highest value of v's bucket (never more
  // than max()); 0 when empty. q in [0, 1].
  std::uint64_t ValueAtQuantile(double q) const;

  // The bucket of `v` and the highest value that bucket holds.
  static std::size_t IndexOf(std::uint64_t v);
  static std::uint64_t HighestInBucket(std::size_t index);

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
};

}  // namespace junction::obs
