#include "broker/partitioner.h"

#include "junction/result.h"

namespace junction::broker {
namespace {

constexpr std::uint32_t kSeed = 0x9747b28c;
constexpr std::uint32_t kMultiplier = 0x5bd1e995;
constexpr unsigned kShift = 24;

std::uint32_t Byte(std::string_view data, std::size_t i) {
  return static_cast<unsigned char>(data[i]);
}

}  // namespace

std::uint32_t Murmur2(std::string_view data) {
  // Kafka mixes the length in as a Java int; keys are far below 2^31 bytes.
  std::uint32_t hash = kSeed ^ static_cast<std::uint32_t>(data.size());
  const std::size_t whole = data.size() - data.size() % 4;
  for (std::size_t i = 0; i < whole; i += 4) {
    // Four bytes, little-endian, as Kafka reads them.
    std::uint32_t word =
        Byte(data, i) | Byte(data, i + 1) << 8 | Byte(data, i + 2) << 16 | Byte(data, i + 3) << 24;
    word *= kMultiplier;
    word ^= word >> kShift;
    word *= kMultiplier;
    hash = hash * kMultiplier ^ word;
  }
  const std::size_t tail = data.size() - whole;
  if (tail > 0) {
    if (tail >= 3) hash ^= Byte(data, whole + 2) << 16;
    if (tail >= 2) hash ^= Byte(data, whole + 1) << 8;
    hash ^= Byte(data, whole);
    hash *= kMultiplier;
  }
  hash ^= hash >> 13;
  hash *= kMultiplier;
  hash ^= hash >> 15;
  return hash;
}

PartitionId PartitionForKey(std::string_view key, std::uint32_t partitions) {
  JUNCTION_CHECK(partitions > 0) << "PartitionForKey with zero partitions";
  return PartitionId((Murmur2(key) & 0x7fffffffu) % partitions);
}

PartitionId StickyPartitioner::Next(std::uint32_t partitions, std::size_t bytes) {
  JUNCTION_CHECK(partitions > 0) << "StickyPartitioner::Next with zero partitions";
  if (current_ >= partitions) current_ %= partitions;
  PartitionId placed(current_);
  filled_ += bytes;
  if (filled_ >= batch_bytes_) {
    current_ = (current_ + 1) % partitions;
    filled_ = 0;
  }
  return placed;
}

}  // namespace junction::broker
