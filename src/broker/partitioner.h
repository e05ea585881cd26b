#pragma once

// Key-based partition placement, compatible with Kafka's default partitioner
// so that a key lands on the same partition number here as in Kafka. Pure
// functions, callable from any thread.

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

}  // namespace junction::broker
