#pragma once

// The strong integer types that name positions and things in the system.

#include <cstdint>

#include "junction/strong_int.h"

namespace junction {

// Position of a record in a partition's log; the first record is 0.
using Offset = StrongInt<std::uint64_t, struct OffsetTag>;
// Index of a partition within a topic.
using PartitionId = StrongInt<std::uint32_t, struct PartitionIdTag>;
// Index of a broker shard (one per core) within a process.
using ShardId = StrongInt<std::uint32_t, struct ShardIdTag>;
// A producer's identity for idempotent publishing (dedupe).
using ProducerId = StrongInt<std::uint64_t, struct ProducerIdTag>;
// A producer's per-partition sequence number, increasing by one per record.
using SequenceNumber = StrongInt<std::uint64_t, struct SequenceNumberTag>;
// How many times a message has been handed to a consumer (1 on first delivery).
using DeliveryCount = StrongInt<std::uint32_t, struct DeliveryCountTag>;

}  // namespace junction
