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

// Placement of messages without a key: one partition takes them until about
// `batch_bytes` went there, then the next partition (in turn) does. Messages
// published at about the same time then share one partition's group commit,
// one fdatasync, where round robin would have every partition pay its own
// for a share of them; over time each partition gets an even share. One per
// topic, used on its shard (not thread-safe).
class StickyPartitioner {
 public:
  // 64 publishers of ~150 B messages fill about seven group commits before
  // the partition changes, so that few commits are split between two
  // partitions (with 16 KiB, Kafka's batch.size, 40% of them were).
  static constexpr std::size_t kDefaultBatchBytes = 64 * 1024;

  explicit StickyPartitioner(std::size_t batch_bytes = kDefaultBatchBytes)
      : batch_bytes_(batch_bytes) {}

  // The partition for a keyless message of about `bytes`; a message of
  // batch_bytes or more has a partition to itself. REQUIRES: partitions > 0.
  PartitionId Next(std::uint32_t partitions, std::size_t bytes);

 private:
  std::size_t batch_bytes_;
  std::uint32_t current_ = 0;
  std::size_t filled_ = 0;  // bytes placed on current_ so far
};

}  // namespace junction::broker
