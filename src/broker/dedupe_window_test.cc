#include <cstdint>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <boost/smart_ptr/make_local_shared.hpp>

#include "broker/topic.h"

namespace junction::broker {
namespace {

using namespace std::chrono_literals;

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

}  // namespace
}  // namespace junction::broker
