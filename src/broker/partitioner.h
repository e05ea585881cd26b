#pragma once

// Partition placement. Keyed messages: compatible with Kafka's default
// partitioner, so that a key lands on the same partition number here as in
// Kafka (pure functions, callable from any thread). Keyless messages: sticky,
// as Kafka's default partitioner has been since 2.4 (KIP-480).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "junction/ids.h"

namespace junction::broker {

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2, seed
// 0x9747b28c) of the bytes of `data`, as a uint32 (Kafka returns the same bits
// as a signed int).
std::uint32_t Murmur2(std::string_view data);

// Kafka's default partitioner for keyed records:
// (murmur2(key) & 0x7fffffff) % partitions. REQUIRES: partitions > 0.
PartitionId PartitionForKey(std::string_view key, std::uint32_t partitions);

// Placement of messages without a key, a store at a time (the keyless
// messages of one Publish/PublishBatch call, or of the single publishes the
// shard's mailbox gathered): one partition takes whole stores until about
// `batch_bytes` went there, then the next partition (in turn) does. A store
// is never split, so its messages share one partition's group commit, one
// fdatasync, where round robin would have every partition pay its own for a
// share of them; over time each partition gets an even share. Kafka's sticky
// partitioner likewise changes partitions between batches only. One per
// topic, used on its shard (not thread-safe).
class StickyPartitioner {
 public:
  // About seven group commits of 64 publishers' ~150 B messages, so that the
  // partitions take turns at a steady stream in runs, not every commit.
  static constexpr std::size_t kDefaultBatchBytes = 64 * 1024;

  explicit StickyPartitioner(std::size_t batch_bytes = kDefaultBatchBytes)
      : batch_bytes_(batch_bytes) {}

  // The partition for a store of keyless messages of about `bytes` in all;
  // one of batch_bytes or more has a partition to itself. REQUIRES:
  // partitions > 0.
  PartitionId Next(std::uint32_t partitions, std::size_t bytes);

 private:
  std::size_t batch_bytes_;
  std::uint32_t current_ = 0;
  std::size_t filled_ = 0;  // bytes placed on current_ so far
};

}  // namespace junction::broker
