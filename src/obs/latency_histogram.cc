#include "obs/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace junction::obs {

std::size_t LatencyHistogram::IndexOf(std::uint64_t v) {
  if (v < kSubBuckets) return static_cast<std::size_t>(v);
  // v has its top bit at position `top` >= 7: keep the 7 bits below it.
  int top = 63 - std::countl_zero(v);
  int shift = top - kSubBucketBits;
  std::uint64_t mantissa = (v >> shift) - kSubBuckets;  // 0..127
  return static_cast<std::size_t>((shift + 1) * kSubBuckets + mantissa);
}

std::uint64_t LatencyHistogram::HighestInBucket(std::size_t index) {
  if (index < kSubBuckets) return index;
  std::uint64_t shift = index / kSubBuckets - 1;
  std::uint64_t mantissa = index % kSubBuckets + kSubBuckets;
  return ((mantissa + 1) << shift) - 1;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
  min_ = std::min(min_, other.min_);
}

std::uint64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(HighestInBucket(i), max_);
  }
  return max_;
}

}  // namespace junction::obs
