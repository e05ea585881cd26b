#pragma once
// The client's side of DELIVER (docs/formats/wire.md): which record of the
// frame's batches is each delivery's message.

#include <cstdint>
#include <span>
#include <vector>

#include "codec/wire.h"
#include "junction/message.h"
#include "junction/status.h"

namespace junction::transport {

// The messages of a DELIVER frame, one per header and in the headers'
// order: each is the record at its offset in a stored batch of its
// partition, else the next record of the frame's unstored batches. Every
// batch is verified (structure, checksum, at most `max_batch_bytes`). Each
// message carries the attempt header (junction-attempt) of its delivery, as
// on the embedded transports. InvalidArgument naming what is wrong: a bad batch or
// record, a delivery found twice or nowhere, records left over.
Status DecodeDeliveredMessages(std::span<const codec::DeliveryHeader> headers,
                               std::span<const codec::DeliverBatch> batches,
                               std::uint32_t max_batch_bytes, std::vector<Message>& out);

}  // namespace junction::transport
