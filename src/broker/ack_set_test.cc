#include "broker/ack_set.h"

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace junction::broker {
namespace {

using std::string_literals::operator""s;  // NOLINT(misc-unused-using-decls): used

Offset O(std::uint64_t v) { return Offset(v); }

AckSet RoundTrip(const AckSet& set) {
  std::string bytes;
  set.EncodeTo(bytes);
  std::string_view in = bytes;
  Result<AckSet> decoded = AckSet::Decode(in);
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(in.empty());
  return decoded.value_or(AckSet(O(12345)));
}

TEST(AckSetTest, OutOfOrderAcksMergeAndAdvanceTheFloor) {
  AckSet set(O(10));
  EXPECT_TRUE(set.Add(O(12)));
  EXPECT_TRUE(set.Add(O(14)));
  EXPECT_EQ(set.range_count(), 2u);
  EXPECT_TRUE(set.Add(O(13)));  // bridges [12,13) and [14,15)
  EXPECT_EQ(set.range_count(), 1u);
  EXPECT_EQ(set.acked_above_floor(), 3u);
  EXPECT_FALSE(set.Add(O(13)));
  EXPECT_FALSE(set.Add(O(9)));  // below the floor: acked already
  EXPECT_EQ(set.NextUnacked(O(0)), O(10));
  EXPECT_EQ(set.NextUnacked(O(12)), O(15));

  EXPECT_TRUE(set.Add(O(11)));
  EXPECT_EQ(set.floor(), O(10));
  EXPECT_TRUE(set.Add(O(10)));  // fills the gap: the floor swallows the range
  EXPECT_EQ(set.floor(), O(15));
  EXPECT_EQ(set.range_count(), 0u);
  EXPECT_EQ(set.acked_above_floor(), 0u);
  EXPECT_TRUE(set.Contains(O(14)));
  EXPECT_FALSE(set.Contains(O(15)));
}

TEST(AckSetTest, AdvanceFloorDropsRangesBelowAndAbsorbsOneItReaches) {
  AckSet set;
  for (std::uint64_t o : {3, 4, 8, 9, 20}) ASSERT_TRUE(set.Add(O(o)));
  set.AdvanceFloor(O(8));
  EXPECT_EQ(set.floor(), O(10));  // reached [8,10)
  EXPECT_EQ(set.range_count(), 1u);
  EXPECT_EQ(set.acked_above_floor(), 1u);
  set.AdvanceFloor(O(5));  // lower: no-op
  EXPECT_EQ(set.floor(), O(10));
  set.Reset(O(2));
  EXPECT_EQ(set, AckSet(O(2)));
}

TEST(AckSetTest, EncodingIsCompactAndRoundTrips) {
  AckSet set(O(1000));
  for (std::uint64_t o : {1002ull, 1003ull, 1010ull, 5000000000ull}) ASSERT_TRUE(set.Add(O(o)));
  std::string bytes;
  set.EncodeTo(bytes);
  // floor: 2 bytes, count: 1, (gap, length) per range: 1+1, 1+1, 5+1.
  EXPECT_EQ(bytes.size(), 2u + 1u + 2u + 2u + 6u);
  EXPECT_EQ(RoundTrip(set), set);
  EXPECT_EQ(RoundTrip(AckSet()), AckSet());
}

TEST(AckSetTest, DecodeConsumesOnlyItsOwnBytes) {
  AckSet a(O(5));
  ASSERT_TRUE(a.Add(O(7)));
  std::string bytes;
  a.EncodeTo(bytes);
  AckSet(O(9)).EncodeTo(bytes);
  std::string_view in = bytes;
  EXPECT_EQ(AckSet::Decode(in).value(), a);
  EXPECT_EQ(AckSet::Decode(in).value(), AckSet(O(9)));
  EXPECT_TRUE(in.empty());
}

TEST(AckSetTest, EveryTruncationIsDataLossAndLeavesInputAlone) {
  AckSet set(O(300));
  for (std::uint64_t o : {302, 400, 401, 100000}) ASSERT_TRUE(set.Add(O(o)));
  std::string bytes;
  set.EncodeTo(bytes);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::string_view in(bytes.data(), n);
    Result<AckSet> r = AckSet::Decode(in);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes";
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(in.size(), n);
  }
}

TEST(AckSetTest, MalformedRangesAreDataLoss) {
  auto decode = [](const std::string& bytes) {
    std::string_view in = bytes;
    return AckSet::Decode(in).status();
  };
  // floor 5, one range with gap 0 (touches the floor).
  EXPECT_EQ(decode("\x05\x01\x00\x01"s).message(),
            "ack set: range 0: touches or overlaps the one before");
  EXPECT_EQ(decode("\x05\x01\x01\x00"s).message(), "ack set: range 0: empty");
  // Two ranges, the second touching the first.
  EXPECT_EQ(decode("\x05\x02\x01\x01\x00\x01"s).message(),
            "ack set: range 1: touches or overlaps the one before");
  // A range past the largest offset.
  std::string overflow;
  overflow += std::string(9, '\xff') + '\x01';  // floor 2^64 - 1
  overflow += "\x01\x01\x01";
  EXPECT_EQ(decode(overflow).message(), "ack set: range 0: offset overflow");
  // An overlong varint, and a count far beyond the bytes given.
  EXPECT_EQ(decode(std::string(11, '\x80')).code(), StatusCode::kDataLoss);
  EXPECT_EQ(decode("\x05\xff\xff\xff\xff\x0f\x01\x01"s).code(), StatusCode::kDataLoss);
}

// The model: the set of acked offsets in [0, kSpace).
TEST(AckSetTest, RandomOperationsMatchASetModel) {
  constexpr std::uint64_t kSpace = 300;
  for (std::uint32_t seed : {1u, 2u, 3u, 42u, 2024u}) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::uint64_t> offset(0, kSpace - 1);
    AckSet set;
    std::set<std::uint64_t> model;
    for (int step = 0; step < 3000; ++step) {
      const std::uint64_t o = offset(rng);
      const int op = static_cast<int>(rng() % 100);
      if (op < 85) {
        EXPECT_EQ(set.Add(O(o)), model.insert(o).second) << "Add " << o;
      } else if (op < 95) {
        set.AdvanceFloor(O(o));
        for (std::uint64_t i = 0; i < o; ++i) model.insert(i);
      } else if (op < 97) {
        set.Reset(O(o / 4));
        model.clear();
        for (std::uint64_t i = 0; i < o / 4; ++i) model.insert(i);
      } else {
        ASSERT_EQ(RoundTrip(set), set);
      }
      // Derive every observable from the model and compare.
      std::uint64_t floor = 0;
      while (model.contains(floor)) ++floor;
      ASSERT_EQ(set.floor(), O(floor)) << "step " << step;
      std::size_t ranges = 0;
      for (std::uint64_t i = floor; i < kSpace; ++i) {
        if (model.contains(i) && !model.contains(i - 1)) ++ranges;
      }
      ASSERT_EQ(set.range_count(), ranges);
      ASSERT_EQ(set.acked_above_floor(), model.size() - floor);
      const std::uint64_t probe = offset(rng);
      ASSERT_EQ(set.Contains(O(probe)), model.contains(probe)) << probe;
      std::uint64_t next = probe;
      while (model.contains(next)) ++next;
      ASSERT_EQ(set.NextUnacked(O(probe)), O(next)) << probe;
    }
  }
}

}  // namespace
}  // namespace junction::broker
