#include "broker/partitioner.h"

#include <cstdint>
#include <map>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace junction::broker {
namespace {

struct Vector {
  std::string_view key;
  std::int32_t java_hash;  // what Kafka's Utils.murmur2 returns (a Java int)
};

void ExpectMatchesJava(const Vector& v) {
  EXPECT_EQ(static_cast<std::int32_t>(Murmur2(v.key)), v.java_hash) << "key '" << v.key << "'";
}

TEST(Murmur2Test, MatchesKafkaUtilsTestVectors) {
  // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2.
  for (const Vector& v : {
           Vector{"21", -973932308},
           Vector{"foobar", -790332482},
           Vector{"a-little-bit-long-string", -985981536},
           Vector{"a-little-bit-longer-string", -1486304829},
           Vector{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
           Vector{"abc", 479470107},
       }) {
    ExpectMatchesJava(v);
  }
}

TEST(Murmur2Test, MatchesJavaForEveryTailLengthAndEmptyInput) {
  // Java results published by akka (Murmur2Spec) and librdkafka (rdmurmur2.c):
  // lengths 0..5 cover every tail (0, 1, 2, 3 bytes after whole words).
  for (const Vector& v : {
           Vector{"", 0x106e08d9},
           Vector{"1", -1993445489},
           Vector{"12", 126087238},
           Vector{"123", -267702483},
           Vector{"1234", -1614185708},
           Vector{"12345", -1188365604},
           Vector{"kafka", static_cast<std::int32_t>(0xd067cf64u)},
       }) {
    ExpectMatchesJava(v);
  }
}

TEST(PartitionForKeyTest, MasksTheSignBitLikeKafkaInsteadOfTakingAbs) {
  // murmur2("21") is negative; abs() would give partition 2 of 3, Kafka's
  // toPositive (& 0x7fffffff) gives 0.
  EXPECT_EQ(PartitionForKey("21", 3), PartitionId(0));
  EXPECT_EQ(PartitionForKey("foobar", 10), PartitionId(6));
  EXPECT_EQ(PartitionForKey("abc", 7), PartitionId(4));
  EXPECT_EQ(PartitionForKey("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 1024),
            PartitionId(461));
}

TEST(PartitionForKeyTest, SinglePartitionTakesEveryKey) {
  for (std::string_view key : {"", "a", "foobar", "21"}) {
    EXPECT_EQ(PartitionForKey(key, 1), PartitionId(0));
  }
}

TEST(PartitionForKeyDeathTest, ZeroPartitionsIsABug) {
  EXPECT_DEATH((void)PartitionForKey("a", 0), "zero partitions");
}

TEST(StickyPartitionerTest, FillsOnePartitionWithBatchBytesThenTakesTheNext) {
  // Each Next is one store (here of one 250 B message).
  StickyPartitioner sticky(1000);
  std::vector<std::uint32_t> placed;
  for (int i = 0; i < 12; ++i) placed.push_back(sticky.Next(3, 250).value());
  // 4 x 250 B fill 1000 B: four messages per partition, in turn, then around.
  EXPECT_EQ(placed, (std::vector<std::uint32_t>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(sticky.Next(3, 250), PartitionId(0));
}

TEST(StickyPartitionerTest, SpreadsEvenlyOverTime) {
  StickyPartitioner sticky(1000);
  std::map<std::uint32_t, int> count;
  const int messages = 8 * 1000;
  for (int i = 0; i < messages; ++i) ++count[sticky.Next(8, 100 + i % 50).value()];
  ASSERT_EQ(count.size(), 8u);
  for (const auto& [partition, n] : count) {
    // Even but for the last, partly filled turn: within a turn (< 10 messages).
    EXPECT_NEAR(n, messages / 8.0, 10) << "partition " << partition;
  }
}

TEST(StickyPartitionerTest, AStoreOfBatchBytesOrMoreHasAPartitionToItself) {
  StickyPartitioner sticky(1000);
  EXPECT_EQ(sticky.Next(4, 5000), PartitionId(0));
  EXPECT_EQ(sticky.Next(4, 10), PartitionId(1));
  EXPECT_EQ(sticky.Next(4, 990), PartitionId(1));
  EXPECT_EQ(sticky.Next(4, 10), PartitionId(2));
}

TEST(StickyPartitionerTest, OnePartitionTakesEverything) {
  StickyPartitioner sticky(10);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sticky.Next(1, 7), PartitionId(0));
}

TEST(StickyPartitionerDeathTest, ZeroPartitionsIsABug) {
  StickyPartitioner sticky;
  EXPECT_DEATH((void)sticky.Next(0, 1), "zero partitions");
}

}  // namespace
}  // namespace junction::broker
