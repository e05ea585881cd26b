#include "obs/latency_histogram.h"

#include <cstdint>
#include <memory>
#include <random>

#include <gtest/gtest.h>

namespace junction::obs {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZeros) {
  auto h = std::make_unique<LatencyHistogram>();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->ValueAtQuantile(0.5), 0u);
  EXPECT_EQ(h->max(), 0u);
  EXPECT_EQ(h->min(), 0u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  auto h = std::make_unique<LatencyHistogram>();
  for (int v = 1; v <= 100; ++v) h->Record(v);
  EXPECT_EQ(h->ValueAtQuantile(0.5), 50u);
  EXPECT_EQ(h->ValueAtQuantile(0.99), 99u);
  EXPECT_EQ(h->ValueAtQuantile(1.0), 100u);
  EXPECT_EQ(h->ValueAtQuantile(0.0), 1u);
  EXPECT_EQ(h->min(), 1u);
  EXPECT_DOUBLE_EQ(h->mean(), 50.5);
}

TEST(LatencyHistogramTest, EveryValueLandsInABucketWithinOnePartIn128) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 100000; ++i) {
    std::uint64_t v = random() >> (random() % 64);
    std::size_t index = LatencyHistogram::IndexOf(v);
    ASSERT_LT(index, LatencyHistogram::kBuckets) << v;
    std::uint64_t high = LatencyHistogram::HighestInBucket(index);
    ASSERT_GE(high, v);
    ASSERT_LE(static_cast<double>(high - v), static_cast<double>(v) / 128.0 + 1) << v;
    if (index > 0) {
      ASSERT_LT(LatencyHistogram::HighestInBucket(index - 1), v) << v;  // buckets tile the line
    }
  }
  EXPECT_EQ(LatencyHistogram::IndexOf(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogramTest, QuantilesOfAKnownDistributionAndTheirMerge) {
  auto a = std::make_unique<LatencyHistogram>();
  auto b = std::make_unique<LatencyHistogram>();
  // 1,000,000 values 1 us .. 1000 us, split across two histograms.
  for (int i = 1; i <= 1'000'000; ++i) (i % 2 == 0 ? *a : *b).Record(std::int64_t{i} * 1000);
  a->Merge(*b);
  EXPECT_EQ(a->count(), 1'000'000u);
  EXPECT_EQ(a->max(), 1'000'000'000u);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double exact = q * 1e9;
    double got = static_cast<double>(a->ValueAtQuantile(q));
    EXPECT_GE(got, exact - 1000) << q;
    EXPECT_LE(got, exact * (1 + 1.0 / 128)) << q;
  }
  EXPECT_EQ(a->ValueAtQuantile(1.0), a->max());
}

TEST(LatencyHistogramTest, NegativeValuesCountAsZero) {
  auto h = std::make_unique<LatencyHistogram>();
  h->Record(-5);
  EXPECT_EQ(h->count(), 1u);
  EXPECT_EQ(h->max(), 0u);
}

}  // namespace
}  // namespace junction::obs
