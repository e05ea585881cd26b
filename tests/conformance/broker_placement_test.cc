// Keyless placement on the embedded broker: one store's keyless messages
// (a PublishBatch) share one partition, so one group commit takes them; the
// partitions take turns between stores.

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/run_sync.h"
#include "junction/bus.h"

namespace junction {
namespace {

std::vector<Message> Batch(int first, int n, std::size_t bytes) {
  std::vector<Message> out;
  for (int i = first; i < first + n; ++i) {
    Message m;
    m.id = "m" + std::to_string(i);
    m.source = "/t";
    m.type = "t";
    m.data = std::string(bytes, 'x');
    out.push_back(std::move(m));
  }
  return out;
}

TEST(BrokerPlacementTest, AKeylessBatchIsNeverSplitAndBatchesTakeTurns) {
  std::unique_ptr<Bus> bus = std::move(*Bus::Open("mem://"));
  TopicOptions topic;
  topic.partitions = 4;
  ASSERT_TRUE(RunSync(bus->CreateTopic("events", topic, Deadline::Infinite())).ok());
  std::map<std::uint32_t, int> batches_on;
  for (int b = 0; b < 40; ++b) {
    // 50 x 1 KiB: most of a partition's turn (64 KiB) in one store, so that
    // a turn ends inside nearly every other batch.
    Result<std::vector<PublishResult>> placed =
        RunSync(bus->PublishBatch("events", Batch(b * 50, 50, 1024), {}, Deadline::Infinite()));
    ASSERT_TRUE(placed.ok()) << placed.status();
    ASSERT_EQ(placed->size(), 50u);
    for (const PublishResult& r : *placed) {
      ASSERT_EQ(r.partition, placed->front().partition) << "batch " << b << " was split";
    }
    ++batches_on[placed->front().partition.value()];
  }
  EXPECT_EQ(batches_on.size(), 4u) << "every partition takes some batches";
  for (const auto& [partition, n] : batches_on) {
    EXPECT_EQ(n, 10) << "partition " << partition;  // two batches a turn, in turn
  }
  ASSERT_TRUE(RunSync(bus->Close()).ok());
}

}  // namespace
}  // namespace junction
