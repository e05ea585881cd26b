#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "broker/topic.h"

namespace junction::broker {
namespace {

std::vector<std::shared_ptr<const StoredMessage>> Messages(std::uint64_t first, std::size_t n,
                                                           std::size_t data_bytes = 10) {
  std::vector<std::shared_ptr<const StoredMessage>> out;
  for (std::size_t i = 0; i < n; ++i) {
    Message m;
    m.id = "m" + std::to_string(first + i);
    m.source = "/t";
    m.type = "t";
    m.data.assign(data_bytes, 'x');
    out.push_back(std::make_shared<const StoredMessage>(std::move(m)));
  }
  return out;
}

std::string IdAt(const TailCache& tail, std::uint64_t offset) {
  const auto* found = tail.Find(Offset(offset));
  return found == nullptr ? "<none>" : (*found)->message.id;
}

TEST(TailCacheTest, FindsConsecutiveBatchesByOffset) {
  TailCache tail;
  EXPECT_TRUE(tail.empty());
  tail.Append(Offset(10), Messages(10, 3));
  tail.Append(Offset(13), Messages(13, 2));
  EXPECT_EQ(tail.begin(), Offset(10));
  EXPECT_EQ(tail.end(), Offset(15));
  EXPECT_EQ(IdAt(tail, 9), "<none>");
  EXPECT_EQ(IdAt(tail, 10), "m10");
  EXPECT_EQ(IdAt(tail, 14), "m14");
  EXPECT_EQ(IdAt(tail, 15), "<none>");
}

TEST(TailCacheTest, ABatchThatDoesNotContinueItReplacesIt) {
  TailCache tail;
  tail.Append(Offset(0), Messages(0, 3));
  tail.Append(Offset(5), Messages(5, 2));  // 3 and 4 never came (a failed append)
  EXPECT_EQ(tail.begin(), Offset(5));
  EXPECT_EQ(IdAt(tail, 2), "<none>");
  EXPECT_EQ(IdAt(tail, 5), "m5");
  tail.Append(Offset(1), Messages(1, 1));  // out of order: from the log instead
  EXPECT_EQ(tail.begin(), Offset(1));
  EXPECT_EQ(tail.end(), Offset(2));
  EXPECT_EQ(IdAt(tail, 5), "<none>");
}

TEST(TailCacheTest, TrimForgetsWhatEveryGroupRead) {
  TailCache tail;
  tail.Append(Offset(0), Messages(0, 5));
  tail.TrimBefore(Offset(3));
  EXPECT_EQ(tail.begin(), Offset(3));
  EXPECT_EQ(IdAt(tail, 2), "<none>");
  EXPECT_EQ(IdAt(tail, 3), "m3");
  tail.TrimBefore(Offset(9));
  EXPECT_TRUE(tail.empty());
  tail.Append(Offset(9), Messages(9, 1));
  EXPECT_EQ(IdAt(tail, 9), "m9");
}

TEST(TailCacheTest, KeepsAtMostItsBoundsOldestOutFirst) {
  TailCache tail;
  tail.Append(Offset(0), Messages(0, TailCache::kMaxMessages + 5));
  EXPECT_EQ(tail.begin(), Offset(5));
  EXPECT_EQ(tail.end(), Offset(TailCache::kMaxMessages + 5));

  TailCache big;
  const std::size_t each = TailCache::kMaxBytes / 4;
  big.Append(Offset(0), Messages(0, 6, each));
  EXPECT_EQ(big.end(), Offset(6));
  EXPECT_LE(big.end().value() - big.begin().value(), 4u);
  EXPECT_EQ(IdAt(big, 5), "m5");

  TailCache huge;  // one message over the byte bound is still kept (the newest)
  huge.Append(Offset(0), Messages(0, 1, TailCache::kMaxBytes + 1));
  EXPECT_EQ(IdAt(huge, 0), "m0");
}

TEST(TailCacheTest, KeepsTheStoredBatchOfEachAppendUntilItsFirstMessageLeaves) {
  TailCache tail;
  auto first = std::make_shared<const StoredBatch>(Offset(10), 3, std::vector<std::byte>(100));
  auto second = std::make_shared<const StoredBatch>(Offset(13), 2, std::vector<std::byte>(100));
  tail.Append(Offset(10), Messages(10, 3), first);
  tail.Append(Offset(13), Messages(13, 2), second);
  tail.Append(Offset(15), Messages(15, 1));  // stored without a kept batch
  EXPECT_EQ(tail.BatchAt(Offset(9)), nullptr);
  EXPECT_EQ(tail.BatchAt(Offset(10)), first);
  EXPECT_EQ(tail.BatchAt(Offset(12)), first);
  EXPECT_EQ(tail.BatchAt(Offset(14)), second);
  EXPECT_EQ(tail.BatchAt(Offset(15)), nullptr);
  // A batch that does not hold exactly the appended messages is not kept.
  auto wrong = std::make_shared<const StoredBatch>(Offset(16), 5, std::vector<std::byte>(100));
  tail.Append(Offset(16), Messages(16, 1), wrong);
  EXPECT_EQ(tail.BatchAt(Offset(16)), nullptr);
  // Trimming the batch's first message drops the batch (its other messages
  // stay, to be encoded when delivered).
  tail.TrimBefore(Offset(11));
  EXPECT_EQ(IdAt(tail, 11), "m11");
  EXPECT_EQ(tail.BatchAt(Offset(11)), nullptr);
  EXPECT_EQ(tail.BatchAt(Offset(13)), second);
  tail.Clear();
  EXPECT_EQ(tail.BatchAt(Offset(13)), nullptr);
}

TEST(TailCacheTest, KeptBatchesCountAgainstTheByteBound) {
  TailCache tail;
  const std::size_t each = TailCache::kMaxBytes / 4;
  for (std::uint64_t i = 0; i < 4; ++i) {
    // Each message's batch is about as large as it: two per append.
    auto batch = std::make_shared<const StoredBatch>(Offset(i), 1, std::vector<std::byte>(each));
    tail.Append(Offset(i), Messages(i, 1, each), batch);
  }
  EXPECT_EQ(tail.end(), Offset(4));
  EXPECT_LE(tail.end().value() - tail.begin().value(), 2u);
  EXPECT_NE(tail.BatchAt(Offset(3)), nullptr);
}

}  // namespace
}  // namespace junction::broker
