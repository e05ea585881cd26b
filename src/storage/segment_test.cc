#include "storage/segment.h"

#include <gtest/gtest.h>

#include "core/env.h"

namespace junction::storage {
namespace {

TEST(SegmentFileNameTest, TwentyDigitsRoundTrip) {
  EXPECT_EQ(SegmentFileName(Offset(42), kLogSuffix), "00000000000000000042.log");
  EXPECT_EQ(ParseSegmentFileName("00000000000000000042.log", kLogSuffix), Offset(42));
  EXPECT_EQ(ParseSegmentFileName(SegmentFileName(Offset::Max(), kIndexSuffix), kIndexSuffix),
            Offset::Max());
  EXPECT_EQ(ParseSegmentFileName("00000000000000000042.index", kLogSuffix), std::nullopt);
  EXPECT_EQ(ParseSegmentFileName("0000000000000000004x.log", kLogSuffix), std::nullopt);
  EXPECT_EQ(ParseSegmentFileName("42.log", kLogSuffix), std::nullopt);
}

class IndexTest : public ::testing::Test {
 protected:
  std::unique_ptr<RandomAccessFile> WriteIndex(const std::vector<IndexEntry>& entries,
                                               std::size_t extra_bytes = 0) {
    std::vector<std::byte> raw(entries.size() * kIndexEntrySize + extra_bytes);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      EncodeIndexEntry(entries[i],
                       std::span(raw).subspan(i * kIndexEntrySize).first<kIndexEntrySize>());
    }
    auto file = *env_->NewWritableFile("/i");
    EXPECT_TRUE(file->Append(raw).ok());
    return *env_->NewRandomAccessFile("/i");
  }
  std::unique_ptr<Env> env_ = NewMemEnv();
};

TEST_F(IndexTest, LoadKeepsTheConsistentPrefix) {
  std::vector<IndexEntry> good = {{10, 4096, 5}, {20, 8192, 5}, {30, 12288, 9}};
  EXPECT_EQ(*LoadIndex(*WriteIndex(good, 7), 1 << 20), good);  // partial entry ignored
  std::vector<IndexEntry> back_in_time = good;
  back_in_time.push_back({40, 16384, 8});
  EXPECT_EQ(*LoadIndex(*WriteIndex(back_in_time), 1 << 20), good);
  std::vector<IndexEntry> not_increasing = good;
  not_increasing.push_back({30, 16384, 10});
  EXPECT_EQ(*LoadIndex(*WriteIndex(not_increasing), 1 << 20), good);
  EXPECT_EQ(LoadIndex(*WriteIndex(good), 10000)->size(), 2u);  // past the end of the log
}

TEST_F(IndexTest, FloorAndTimeLookups) {
  auto index = WriteIndex({{10, 100, 5}, {20, 200, 7}, {30, 300, 9}});
  EXPECT_EQ(*IndexFloor(*index, 3, 5), std::nullopt);
  EXPECT_EQ(IndexFloor(*index, 3, 10)->value().position, 100u);
  EXPECT_EQ(IndexFloor(*index, 3, 29)->value().position, 200u);
  EXPECT_EQ(IndexFloor(*index, 3, 99)->value().position, 300u);
  EXPECT_EQ(IndexFloor(*index, 2, 99)->value().position, 200u);  // only the first two count
  EXPECT_EQ(*IndexFirstAtOrAfterTime(*index, 3, 0), 0u);
  EXPECT_EQ(*IndexFirstAtOrAfterTime(*index, 3, 6), 1u);
  EXPECT_EQ(*IndexFirstAtOrAfterTime(*index, 3, 9), 2u);
  EXPECT_EQ(*IndexFirstAtOrAfterTime(*index, 3, 10), 3u);
}

}  // namespace
}  // namespace junction::storage
