#include "transport/junction_deliver.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "broker/message_codec.h"
#include "codec/record_batch.h"
#include "junction/bus.h"

namespace junction::transport {
namespace {

using codec::DeliverBatch;
using codec::DeliveryHeader;

Message Msg(const std::string& id) {
  Message m;
  m.id = id;
  m.source = "/test";
  m.type = "test.delivered";
  m.data = "data of " + id;
  return m;
}

// A batch of messages `ids` as a partition stores it from `base` on.
std::vector<std::byte> Stored(std::uint64_t base, const std::vector<std::string>& ids) {
  std::vector<Message> messages;
  for (const std::string& id : ids) messages.push_back(Msg(id));
  std::vector<std::byte> batch = *broker::EncodeMessageBatch(messages, 1'000);
  codec::SetBaseOffset(batch, Offset(base));
  return batch;
}

DeliveryHeader At(std::uint32_t partition, std::uint64_t offset, std::uint32_t attempt = 1) {
  return {PartitionId(partition), Offset(offset), DeliveryCount(attempt), offset};
}

std::vector<std::string> Ids(const std::vector<Message>& messages) {
  std::vector<std::string> ids;
  for (const Message& m : messages) ids.push_back(m.id);
  return ids;
}

TEST(JunctionDeliverTest, TakesItsRecordsFromStoredBatchesAndTheRestInOrder) {
  // Partition 1 stores a..d at 10..13; this consumer has 11 and 13 of it, a
  // redelivery from partition 0 between them, and another after.
  std::vector<std::byte> stored = Stored(10, {"a", "b", "c", "d"});
  std::vector<std::byte> unstored = Stored(0, {"x", "y"});
  std::vector<DeliveryHeader> headers = {At(1, 11), At(0, 5, 3), At(1, 13), At(0, 6, 2)};
  std::vector<DeliverBatch> batches = {{PartitionId(1), stored}, {std::nullopt, unstored}};
  std::vector<Message> out;
  Status s = DecodeDeliveredMessages(headers, batches, codec::kDefaultMaxBatchBytes, out);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Ids(out), (std::vector<std::string>{"b", "x", "d", "y"}));
  EXPECT_EQ(out[0].headers.at(std::string(kHeaderAttempt)), "1");
  EXPECT_EQ(out[1].headers.at(std::string(kHeaderAttempt)), "3");
  EXPECT_EQ(out[3].data, "data of y");
}

TEST(JunctionDeliverTest, AStoredBatchOfAnotherPartitionHoldsNoneOfThem) {
  std::vector<std::byte> stored = Stored(10, {"a", "b"});
  std::vector<DeliveryHeader> headers = {At(0, 10)};
  std::vector<DeliverBatch> batches = {{PartitionId(1), stored}};
  std::vector<Message> out;
  Status s = DecodeDeliveredMessages(headers, batches, codec::kDefaultMaxBatchBytes, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("delivery 0 has no record"), std::string::npos) << s;
}

TEST(JunctionDeliverTest, RefusesADeliveryFoundTwice) {
  std::vector<std::byte> first = Stored(10, {"a", "b"});
  std::vector<std::byte> second = Stored(11, {"b", "c"});
  std::vector<DeliveryHeader> headers = {At(0, 11)};
  std::vector<DeliverBatch> batches = {{PartitionId(0), first}, {PartitionId(0), second}};
  std::vector<Message> out;
  Status s = DecodeDeliveredMessages(headers, batches, codec::kDefaultMaxBatchBytes, out);
  EXPECT_NE(s.message().find("two records"), std::string::npos) << s;
}

TEST(JunctionDeliverTest, RefusesRecordsLeftOver) {
  std::vector<std::byte> unstored = Stored(0, {"x", "y"});
  std::vector<DeliveryHeader> headers = {At(0, 1)};
  std::vector<DeliverBatch> batches = {{std::nullopt, unstored}};
  std::vector<Message> out;
  Status s = DecodeDeliveredMessages(headers, batches, codec::kDefaultMaxBatchBytes, out);
  EXPECT_NE(s.message().find("more records than deliveries"), std::string::npos) << s;
}

TEST(JunctionDeliverTest, RefusesABatchWhoseChecksumFails) {
  std::vector<std::byte> stored = Stored(10, {"a"});
  stored.back() ^= std::byte{1};
  std::vector<DeliveryHeader> headers = {At(0, 10)};
  std::vector<DeliverBatch> batches = {{PartitionId(0), stored}};
  std::vector<Message> out;
  Status s = DecodeDeliveredMessages(headers, batches, codec::kDefaultMaxBatchBytes, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("stored batch of partition 0"), std::string::npos) << s;
}

}  // namespace
}  // namespace junction::transport
