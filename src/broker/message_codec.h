#pragma once

// How the broker keeps a junction::Message as one record of a record batch.
// The mapping is specified in docs/formats/messages.md; this file follows it.
// Pure functions, callable from any thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/record_batch.h"
#include "junction/message.h"
#include "junction/result.h"

namespace junction::broker {

// Record header names of docs/formats/messages.md.
inline constexpr std::string_view kAttributePrefix = "ce-";
inline constexpr std::string_view kUserHeaderPrefix = "h-";
inline constexpr std::string_view kBrokerFieldPrefix = "x-";
inline constexpr std::string_view kDeliverAtHeader = "x-deliver-at";

// The size counted against max_message_bytes and consumer byte credit: data
// plus every attribute, extension (name and value as text), key, header name
// and value (docs/formats/messages.md, "Size"). Independent of the encoding.
std::size_t MessageSize(const Message& message);

// A message as the broker keeps and shares it. `message` is not changed once
// boxed: size() is its MessageSize, computed once here (a group's credit and
// the tail cache ask for it on every delivery).
struct StoredMessage {
  // Takes the message over (one move: make_shared<StoredMessage>(std::move(m))).
  explicit StoredMessage(Message&& m) : message(std::move(m)), size_(MessageSize(message)) {}
  // An empty message stamped `timestamp`, for DecodeStoredMessage to fill.
  explicit StoredMessage(std::int64_t timestamp) : timestamp_ms(timestamp), size_(0) {}
  StoredMessage(Message m, std::int64_t timestamp, std::optional<std::int64_t> deliver_at)
      : message(std::move(m)),
        timestamp_ms(timestamp),
        deliver_at_ms(deliver_at),
        size_(MessageSize(message)) {}

  std::size_t size() const { return size_; }

  Message message;
  std::int64_t timestamp_ms = 0;                // record timestamp: when the broker stored it
  std::optional<std::int64_t> deliver_at_ms{};  // delayed delivery
  friend bool operator==(const StoredMessage&, const StoredMessage&) = default;

 private:
  friend Result<std::shared_ptr<StoredMessage>> DecodeStoredMessage(
      const codec::RecordView& record);
  std::size_t size_;
};

// A record batch as its partition stores it (base_offset written), shared by
// the tail cache and the first delivery of each of its messages, so that
// junctiond can send it to consumers unchanged (docs/formats/wire.md,
// DELIVER). Not changed once shared.
struct StoredBatch {
  StoredBatch(Offset base, std::uint32_t count, std::vector<std::byte> batch)
      : base_offset(base), records(count), bytes(std::move(batch)) {}
  Offset base_offset;
  std::uint32_t records;  // offsets [base_offset, base_offset + records)
  std::vector<std::byte> bytes;
};

// Adds `message` as one record with the given timestamp. Does not validate:
// a Message that fails Validate() is written, and DecodeMessage rejects it.
void AddMessage(codec::RecordBatchBuilder& builder, const Message& message,
                std::int64_t timestamp_ms, std::optional<std::int64_t> deliver_at_ms);

// Decodes a record written by AddMessage. DataLoss naming the bad header or
// field on malformed input, and when the decoded Message fails
// Message::Validate(). Unknown "x-" headers are ignored.
Result<StoredMessage> DecodeMessage(const codec::RecordView& record);
Result<StoredMessage> DecodeMessage(const codec::Record& record);
// The same into `out`, which must be a default Message: the fields are built
// in place, not moved (a Message move touches two maps and nine strings).
// `deliver_at_ms` (when given) receives the delay. On error `out` is partly
// filled.
Status DecodeMessageInto(const codec::RecordView& record, Message& out,
                         std::optional<std::int64_t>* deliver_at_ms = nullptr);
// The same, boxed as the broker keeps it, built in the box.
Result<std::shared_ptr<StoredMessage>> DecodeStoredMessage(const codec::RecordView& record);

// What a group needs of a stored record before, or instead of, decoding it
// (junctiond sends most records as stored, and never builds their Message).
struct RecordSummary {
  // MessageSize of the message in a record AddMessage wrote (for any other
  // record, its bytes counted the same way: credit only).
  std::size_t size = 0;
  bool delayed = false;  // has kDeliverAtHeader
};
RecordSummary SummarizeRecord(const codec::RecordView& record);

// DecodeStoredMessage of the record at byte `position` of `batch`
// (uncompressed; codec::DecodeRecordAt): what a group decodes of a record
// it held as a position in a stored batch, once it needs the Message.
Result<std::shared_ptr<StoredMessage>> DecodeStoredRecordAt(const StoredBatch& batch,
                                                            std::uint32_t position);

// Messages in one record batch, as the wire protocol carries them
// (docs/formats/wire.md): one record each, in order, stamped `timestamp_ms`.
// ResourceExhausted when the batch would pass `max_batch_bytes`.
Result<std::vector<std::byte>> EncodeMessageBatch(
    std::span<const Message> messages, std::int64_t timestamp_ms,
    std::uint32_t max_batch_bytes = codec::kDefaultMaxBatchBytes);
// Verifies a batch (structure, checksum) and decodes every record into
// `out` (cleared first). InvalidArgument naming the record on any failure;
// `max_messages` caps the record count before anything is decoded.
//
// `storable` (when given) is set to whether the broker may store these bytes
// as they came, with only base_offset, the batch times and the checksum
// written (codec::StampBatchTime): no producer id or sequence, offset deltas
// 0, 1, 2, ..., every record at the batch's first timestamp (delta zero), and
// no broker field ("x-" header) in any record, since those are the broker's
// to write. EncodeMessageBatch's batches are storable.
Status DecodeMessageBatch(std::span<const std::byte> batch, std::uint32_t max_batch_bytes,
                          std::size_t max_messages, std::vector<Message>& out,
                          bool* storable = nullptr);
// The same, each message boxed as the broker keeps it (size and all):
// junctiond's PUBLISH, whose messages the broker then stores without
// building them again (Broker::PublishDecoded).
Status DecodeStoredBatch(std::span<const std::byte> batch, std::uint32_t max_batch_bytes,
                         std::size_t max_messages, std::vector<std::shared_ptr<StoredMessage>>& out,
                         bool* storable = nullptr);

}  // namespace junction::broker
