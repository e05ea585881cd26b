#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/smart_ptr/make_local_shared.hpp>

#include "broker/dedupe_window.h"

namespace junction::broker {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kMinuteMs = 60'000;

DedupeWindow::Hit At(std::uint64_t offset, std::uint32_t partition = 0) {
  return {PartitionId(partition), Offset(offset)};
}

// Where the window says `hash` went, or -1.
std::int64_t OffsetOf(const DedupeWindow& window, std::uint64_t hash) {
  std::optional<DedupeWindow::Hit> hit = window.Find(hash);
  return hit ? static_cast<std::int64_t>(hit->offset.value()) : -1;
}

std::uint64_t HashOf(int i) { return DedupeWindow::Hash("id-" + std::to_string(i)); }

// `id` is a literal: it outlives the pending entry, as a publish's message does.
DedupeWindow::PendingPtr PendingFor(std::string_view id) {
  auto pending = boost::make_local_shared<DedupeWindow::Pending>();
  pending->id = id;
  return pending;
}

TEST(DedupeWindowTest, FindsAPendingIdByHashAndId) {
  DedupeWindow window(2min, 1000);
  auto a = PendingFor("a");
  window.AddPending(DedupeWindow::Hash("a"), a);
  EXPECT_EQ(window.FindPending(DedupeWindow::Hash("a"), "a"), a);
  EXPECT_EQ(window.FindPending(DedupeWindow::Hash("b"), "b"), nullptr);
  window.RemovePending(DedupeWindow::Hash("a"), a.get());
  EXPECT_EQ(window.FindPending(DedupeWindow::Hash("a"), "a"), nullptr);
}

// Two ids with one hash (forced here; XXH3 collisions are rare, not
// impossible): each is found by its own id, and removing one keeps the other.
TEST(DedupeWindowTest, IdsSharingAHashArePendingSideBySide) {
  DedupeWindow window(2min, 1000);
  constexpr std::uint64_t kSameHash = 42;
  auto a = PendingFor("a");
  auto b = PendingFor("b");
  auto c = PendingFor("c");
  window.AddPending(kSameHash, a);
  window.AddPending(kSameHash, b);
  window.AddPending(kSameHash, c);
  EXPECT_EQ(window.FindPending(kSameHash, "a"), a);
  EXPECT_EQ(window.FindPending(kSameHash, "b"), b);
  EXPECT_EQ(window.FindPending(kSameHash, "c"), c);
  EXPECT_EQ(window.FindPending(kSameHash, "d"), nullptr);

  window.RemovePending(kSameHash, b.get());  // from the middle of the chain
  EXPECT_EQ(window.FindPending(kSameHash, "b"), nullptr);
  EXPECT_EQ(window.FindPending(kSameHash, "a"), a);
  EXPECT_EQ(window.FindPending(kSameHash, "c"), c);

  window.RemovePending(kSameHash, c.get());  // the front
  EXPECT_EQ(window.FindPending(kSameHash, "a"), a);
  window.RemovePending(kSameHash, a.get());
  EXPECT_EQ(window.FindPending(kSameHash, "a"), nullptr);
  // Removing what is not there changes nothing.
  window.RemovePending(kSameHash, a.get());
  EXPECT_EQ(window.FindPending(kSameHash, "a"), nullptr);
}

TEST(DedupeWindowTest, AnIdIsFoundUntilItsTimeIsUp) {
  DedupeWindow window(std::chrono::minutes(1), 1000);
  window.Add(HashOf(1), At(7, 2), 1000);
  std::optional<DedupeWindow::Hit> hit = window.Find(HashOf(1));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->partition, PartitionId(2));
  EXPECT_EQ(hit->offset, Offset(7));
  EXPECT_FALSE(window.Find(HashOf(2)));
  window.Expire(1000 + kMinuteMs);  // stored exactly one window ago: still in
  EXPECT_EQ(OffsetOf(window, HashOf(1)), 7);
  window.Expire(1000 + kMinuteMs + 1);
  EXPECT_EQ(OffsetOf(window, HashOf(1)), -1);
  EXPECT_EQ(window.size(), 0u);
  EXPECT_EQ(window.evicted(), 0u);  // it left on time
}

TEST(DedupeWindowTest, PastMaxIdsTheOldestLeaveEarlyAndAreCounted) {
  DedupeWindow window(std::chrono::hours(1), 100);
  for (int i = 0; i < 150; ++i) window.Add(HashOf(i), At(i), 1000 + i);
  EXPECT_EQ(window.size(), 100u);
  EXPECT_EQ(window.evicted(), 50u);
  for (int i = 0; i < 150; ++i) EXPECT_EQ(OffsetOf(window, HashOf(i)), i < 50 ? -1 : i) << i;
}

// At the cap an add lets the oldest go first; one whose time is up (Expire
// not called since) did not leave early.
TEST(DedupeWindowTest, AtTheCapAnIdWhoseTimeIsUpIsNotCountedAsEvicted) {
  DedupeWindow window(std::chrono::minutes(1), 100);
  for (int i = 0; i < 100; ++i) window.Add(HashOf(i), At(i), 1000);
  window.Add(HashOf(100), At(100), 1000 + kMinuteMs + 1);
  EXPECT_EQ(window.evicted(), 0u);
  EXPECT_EQ(OffsetOf(window, HashOf(0)), -1);
  EXPECT_EQ(OffsetOf(window, HashOf(1)), 1);  // up too, but not yet expired
  window.Add(HashOf(101), At(101), 1000);     // an older time, kept as the newest's
  EXPECT_EQ(window.evicted(), 0u);
  EXPECT_EQ(window.size(), 100u);
}

TEST(DedupeWindowTest, AForgottenIdIsGoneAndAnAddedAgainIdHasItsNewPlace) {
  DedupeWindow window(std::chrono::minutes(1), 1000);
  window.Add(HashOf(1), At(1), 1000);
  window.Add(HashOf(2), At(2), 1000);
  window.Forget(HashOf(1));
  EXPECT_EQ(OffsetOf(window, HashOf(1)), -1);
  EXPECT_EQ(OffsetOf(window, HashOf(2)), 2);
  EXPECT_EQ(window.size(), 1u);
  window.Forget(HashOf(1));  // not there: nothing changes
  EXPECT_EQ(window.size(), 1u);
  window.Add(HashOf(2), At(20), 2000);
  EXPECT_EQ(OffsetOf(window, HashOf(2)), 20);
  EXPECT_EQ(window.size(), 1u);
  // It left with the time of its second store, not its first.
  window.Expire(1000 + kMinuteMs + 1);
  EXPECT_EQ(OffsetOf(window, HashOf(2)), 20);
  window.Expire(2000 + kMinuteMs + 1);
  EXPECT_EQ(OffsetOf(window, HashOf(2)), -1);
  EXPECT_EQ(window.evicted(), 0u);
}

// The table grows (and the ring with it) from nothing to 200,000 ids: each
// is found where it went, and ids never added are not.
TEST(DedupeWindowTest, ManyIdsAreEachFoundWhereTheyWent) {
  DedupeWindow window(std::chrono::hours(1), 1'000'000);
  constexpr int kIds = 200'000;
  for (int i = 0; i < kIds; ++i) window.Add(HashOf(i), At(i, i % 3), 1000);
  EXPECT_EQ(window.size(), static_cast<std::size_t>(kIds));
  EXPECT_EQ(window.evicted(), 0u);
  int wrong = 0;
  for (int i = 0; i < kIds; ++i) {
    std::optional<DedupeWindow::Hit> hit = window.Find(HashOf(i));
    wrong += !hit || hit->offset != Offset(i) || hit->partition != PartitionId(i % 3);
  }
  EXPECT_EQ(wrong, 0);
  int found = 0;
  for (int i = kIds; i < kIds + 10'000; ++i) found += window.Find(HashOf(i)).has_value();
  EXPECT_EQ(found, 0);
}

// Ids whose hashes share a bucket (forced: equal low bits): the table grows
// to its full size (max_ids / 4 buckets) before it lets any go, and then the
// bucket's oldest id goes, counted.
TEST(DedupeWindowTest, AFullBucketOfTheFullSizeTableLetsItsOldestGo) {
  DedupeWindow window(std::chrono::hours(1), 64);  // 16 buckets at most
  std::vector<std::uint64_t> same_bucket;
  for (std::uint64_t i = 1; i <= 17; ++i) same_bucket.push_back(i << 40);
  for (std::size_t i = 0; i < 16; ++i) window.Add(same_bucket[i], At(i), 1000);
  EXPECT_EQ(window.evicted(), 0u);  // sixteen slots a bucket
  window.Add(same_bucket[16], At(16), 1000);
  EXPECT_EQ(window.evicted(), 1u);
  EXPECT_EQ(window.size(), 16u);
  EXPECT_EQ(OffsetOf(window, same_bucket[0]), -1);
  for (std::size_t i = 1; i <= 16; ++i) {
    EXPECT_EQ(OffsetOf(window, same_bucket[i]), static_cast<std::int64_t>(i));
  }
  // Other buckets are unaffected.
  window.Add(HashOf(1), At(100), 1000);
  EXPECT_EQ(OffsetOf(window, HashOf(1)), 100);
  EXPECT_EQ(window.evicted(), 1u);
}

// An id added with an older time than one before it leaves with the newer
// one's time: late, never early.
TEST(DedupeWindowTest, AnIdAddedOutOfTimeOrderNeverLeavesEarly) {
  DedupeWindow window(std::chrono::minutes(1), 1000);
  window.Add(HashOf(1), At(1), 5000);
  window.Add(HashOf(2), At(2), 1000);
  window.Expire(1000 + kMinuteMs + 1);
  EXPECT_EQ(OffsetOf(window, HashOf(2)), 2);
  window.Expire(5000 + kMinuteMs + 1);
  EXPECT_EQ(OffsetOf(window, HashOf(1)), -1);
  EXPECT_EQ(OffsetOf(window, HashOf(2)), -1);
}

// A window that filled and drained (its ring and table shrink) keeps
// working: what is left is found, what left is not, new ids go in.
TEST(DedupeWindowTest, AWindowThatDrainedKeepsWhatIsLeftAndTakesNewIds) {
  DedupeWindow window(std::chrono::minutes(1), 1'000'000);
  for (int i = 0; i < 10'000; ++i) window.Add(HashOf(i), At(i), i < 9'990 ? 1000 : 30'000);
  window.Expire(1000 + kMinuteMs + 1);
  EXPECT_EQ(window.size(), 10u);
  for (int i = 9'980; i < 10'000; ++i) EXPECT_EQ(OffsetOf(window, HashOf(i)), i < 9'990 ? -1 : i);
  for (int i = 10'000; i < 10'100; ++i) window.Add(HashOf(i), At(i), 40'000);
  for (int i = 9'990; i < 10'100; ++i) EXPECT_EQ(OffsetOf(window, HashOf(i)), i) << i;
  EXPECT_EQ(window.size(), 110u);
  EXPECT_EQ(window.evicted(), 0u);
}

}  // namespace
}  // namespace junction::broker
