#include "junction/strong_int.h"

#include <sstream>
#include <type_traits>
#include <unordered_set>

#include <gtest/gtest.h>

#include "junction/ids.h"

namespace junction {
namespace {

// Values of different meanings do not mix, and plain integers do not convert.
static_assert(!std::is_convertible_v<Offset, PartitionId>);
static_assert(!std::is_convertible_v<std::uint64_t, Offset>);
static_assert(!std::is_convertible_v<Offset, std::uint64_t>);
static_assert(!std::is_constructible_v<Offset, PartitionId>);
static_assert(sizeof(Offset) == sizeof(std::uint64_t));
static_assert(std::is_trivially_copyable_v<Offset>);

TEST(StrongIntTest, ArithmeticWithCountsAndDistances) {
  Offset first(10);
  Offset next = first + 5;
  EXPECT_EQ(next.value(), 15u);
  EXPECT_EQ(next - first, 5u);
  EXPECT_EQ((next - 3).value(), 12u);
  ++next;
  EXPECT_EQ(next, Offset(16));
  Offset before = next++;
  EXPECT_EQ(before, Offset(16));
  EXPECT_EQ(next, Offset(17));
  next += 3;
  next -= 1;
  EXPECT_EQ(next, Offset(19));
}

TEST(StrongIntTest, OrdersAndHashes) {
  EXPECT_LT(Offset(1), Offset(2));
  EXPECT_GE(Offset::Max(), Offset(0));
  EXPECT_EQ(Offset(), Offset(0));
  std::unordered_set<PartitionId> partitions{PartitionId(1), PartitionId(2), PartitionId(1)};
  EXPECT_EQ(partitions.size(), 2u);
}

TEST(StrongIntTest, PrintsAsItsNumber) {
  std::ostringstream os;
  os << Offset(42) << " " << PartitionId(7);
  EXPECT_EQ(os.str(), "42 7");
}

}  // namespace
}  // namespace junction
