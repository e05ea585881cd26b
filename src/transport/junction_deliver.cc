#include "transport/junction_deliver.h"

#include <string>
#include <utility>

#include <boost/unordered/unordered_flat_map.hpp>

#include "broker/group.h"
#include "broker/message_codec.h"
#include "codec/record_batch.h"

namespace junction::transport {

Status DecodeDeliveredMessages(std::span<const codec::DeliveryHeader> headers,
                               std::span<const codec::DeliverBatch> batches,
                               std::uint32_t max_batch_bytes, std::vector<Message>& out) {
  out.clear();
  out.resize(headers.size());
  std::vector<bool> found(headers.size(), false);
  auto take = [&](std::size_t i, const codec::RecordView& record) -> Status {
    if (found[i]) {
      return InvalidArgumentError("delivery " + std::to_string(i) + " has two records");
    }
    if (Status decoded = broker::DecodeMessageInto(record, out[i]); !decoded.ok()) {
      return InvalidArgumentError("delivery " + std::to_string(i) + ": " + decoded.message());
    }
    broker::SetAttemptHeader(out[i], headers[i].attempt);
    found[i] = true;
    return OkStatus();
  };
  codec::RecordViews views;  // one batch at a time, its buffers reused
  // Stored batches first: they name their deliveries by (partition, offset).
  boost::unordered_flat_map<std::pair<std::uint32_t, std::uint64_t>, std::size_t> where;
  for (const codec::DeliverBatch& b : batches) {
    if (!b.stored) continue;
    if (where.empty()) {
      where.reserve(headers.size());
      for (std::size_t i = 0; i < headers.size(); ++i) {
        where.emplace(std::pair(headers[i].partition.value(), headers[i].offset.value()), i);
      }
    }
    if (Status decoded = views.Decode(b.batch, max_batch_bytes); !decoded.ok()) {
      return InvalidArgumentError("stored batch of partition " + std::to_string(b.stored->value()) +
                                  ": " + decoded.message());
    }
    for (const codec::RecordView& record : views.records()) {
      auto it = where.find(std::pair(b.stored->value(), record.offset.value()));
      if (it == where.end()) continue;  // another consumer's
      JUNCTION_RETURN_IF_ERROR(take(it->second, record));
    }
  }
  // Then the unstored ones: the rest, in order.
  std::size_t next = 0;
  for (const codec::DeliverBatch& b : batches) {
    if (b.stored) continue;
    if (Status decoded = views.Decode(b.batch, max_batch_bytes); !decoded.ok()) {
      return InvalidArgumentError("batch: " + decoded.message());
    }
    for (const codec::RecordView& record : views.records()) {
      while (next < headers.size() && found[next]) ++next;
      if (next == headers.size()) return InvalidArgumentError("more records than deliveries");
      JUNCTION_RETURN_IF_ERROR(take(next, record));
    }
  }
  for (std::size_t i = 0; i < headers.size(); ++i) {
    if (!found[i]) return InvalidArgumentError("delivery " + std::to_string(i) + " has no record");
  }
  return OkStatus();
}

}  // namespace junction::transport
