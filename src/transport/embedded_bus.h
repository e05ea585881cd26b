#pragma once

// The embedded transports: mem:// and file:// run a broker::Broker in this
// process, on a shard thread of its own (or on BusOptions::executor) with a
// blocking pool for writes and fdatasyncs. Calls from other executors hop to
// the shard and resume on the caller's executor; calls made on the shard run
// in place.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/delivery_ref.h"
#include "junction/bus.h"
#include "storage/options.h"

namespace junction::broker {
struct StoredBatch;
struct StoredMessage;
}  // namespace junction::broker

namespace junction::transport {

struct EmbeddedConfig {
  bool durable = true;        // false: mem:// (an in-memory Env)
  std::filesystem::path dir;  // file:// only
  storage::LogOptions log{};
  std::size_t max_group_entries = 10000;  // BrokerOptions::max_group_entries
  // Threads for writes and fdatasyncs: partitions flush at once up to this
  // many (with 4, 8 partitions under load waited for each other's fsyncs).
  std::size_t blocking_threads = 8;
};

// For junctiond (src/server): PublishBatch (no deadline) of `messages`,
// which broker::DecodeStoredBatch decoded (so each passed
// Message::Validate) from the record batch `batch` that came off the wire;
// `batch` is empty unless DecodeStoredBatch said storable. On an embedded
// bus the broker keeps the boxes, checks their sizes, not their contents
// again, and stores those bytes as they came when the whole batch goes to
// one partition (broker::Broker::PublishDecoded); on any other bus this is
// PublishBatch of the messages. The caller must not share the boxes: the
// broker writes their timestamps.
Awaitable<Result<std::vector<PublishResult>>> PublishReceived(
    Bus& bus, std::string_view topic, std::vector<std::shared_ptr<broker::StoredMessage>> messages,
    std::vector<std::byte> batch, PublishOptions options);

// For junctiond: Subscription::NextBatch, and beside each delivery (at the
// same index) the record batch that holds its message as its partition
// stores it, when the broker still had that batch in memory (a first
// delivery, from the tail cache or a read of the log, on a bus given
// KeepStoredBatches).
// Such a delivery's own message is left empty (no copy is made): `message`
// is the broker's, without the attempt header, or null when the broker
// never decoded it (the record at byte `position` of `batch`:
// broker::DecodeStoredRecordAt). On any other subscription, and for every
// other delivery, both are null and the Delivery is whole.
// `ref` names every delivery of an embedded subscription for ApplyAcks.
struct StoredRef {
  std::shared_ptr<const broker::StoredBatch> batch;
  std::shared_ptr<const broker::StoredMessage> message;
  std::optional<broker::DeliveryRef> ref;
  std::uint32_t position = 0;
};
struct StoredDeliveries {
  std::vector<Delivery> deliveries;
  std::vector<StoredRef> stored;
};
Awaitable<Result<StoredDeliveries>> NextBatchStored(Subscription& subscription, std::size_t max,
                                                    Deadline deadline);

// For junctiond: what Delivery::Ack, Nack and InProgress do, for many
// deliveries of one embedded bus at once (their StoredRef::ref): one hop to
// its shard (none from there) instead of one call each, and each group
// pumped once, after all of them. Each op's status at its index; all
// FailedPrecondition when `bus` is not embedded.
struct AckOp {
  enum class Kind : std::uint8_t { kAck, kNack, kInProgress };
  broker::DeliveryRef ref;
  Kind kind = Kind::kAck;
  std::optional<Duration> delay;  // kNack
  std::string error;              // kNack
};
Awaitable<std::vector<Status>> ApplyAcks(Bus& bus, std::vector<AckOp> ops);

// For junctiond: broker::BrokerOptions::keep_stored_batches on an embedded
// bus (nothing on any other). REQUIRES: nothing runs the bus's executor yet
// (as Bus::Open with BusOptions::executor).
void KeepStoredBatches(Bus& bus);

// Blocking: opens (recovers) the broker before returning.
Result<std::unique_ptr<Bus>> OpenEmbeddedBus(EmbeddedConfig config, const BusOptions& options);

}  // namespace junction::transport
