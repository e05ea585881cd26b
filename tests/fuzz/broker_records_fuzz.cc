// Fuzzes the broker's decoders of stored bytes: a Message kept as a record
// (docs/formats/messages.md) and a group's acked offsets (AckSet, in
// docs/formats/state.md). The input is cut into a record: one byte of
// header count, then length-prefixed (one byte) strings for the key, the
// value and each header's name and value; the rest goes to AckSet::Decode.
// Oracles: a decoded message re-encodes to a record that decodes to the
// same message; a decoded AckSet re-encodes (no longer: overlong varints are
// accepted) to bytes that decode to the same set.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/ack_set.h"
#include "broker/message_codec.h"
#include "codec/record_batch.h"

namespace {

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}
  std::optional<std::string> Take() {
    if (rest_.empty()) return std::nullopt;
    std::size_t n = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    n = std::min(n, rest_.size());
    std::string s(rest_.substr(0, n));
    rest_.remove_prefix(n);
    return s;
  }
  std::uint8_t Byte() {
    if (rest_.empty()) return 0;
    auto b = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

void FuzzMessage(Input& in) {
  junction::codec::Record record;
  record.timestamp_ms = 1700000000000;
  std::uint8_t headers = in.Byte() % 24;
  record.key = in.Take();
  record.value = in.Take();
  for (std::uint8_t i = 0; i < headers; ++i) {
    std::optional<std::string> name = in.Take();
    if (!name) break;
    record.headers.push_back({*name, in.Take()});
  }
  auto stored = junction::broker::DecodeMessage(record);
  if (!stored.ok()) return;
  JUNCTION_CHECK(stored->message.Validate().ok()) << "decoded an invalid message";
  junction::codec::RecordBatchBuilder builder;
  junction::broker::AddMessage(builder, stored->message, record.timestamp_ms,
                               stored->deliver_at_ms);
  auto batch = builder.Build();
  JUNCTION_CHECK(batch.ok()) << batch.status();
  auto records = junction::codec::DecodeRecords(*batch);
  JUNCTION_CHECK(records.ok() && records->size() == 1) << "re-encoded message does not decode";
  auto again = junction::broker::DecodeMessage(records->front());
  JUNCTION_CHECK(again.ok()) << again.status();
  JUNCTION_CHECK(again->message == stored->message) << "message changed in a round trip";
  // What a group reads of a record it does not decode (as AddMessage wrote it).
  junction::codec::RecordViews views;
  JUNCTION_CHECK(views.Decode(*batch).ok()) << "re-encoded message does not decode";
  junction::broker::RecordSummary summary = junction::broker::SummarizeRecord(views.records()[0]);
  JUNCTION_CHECK(summary.size == junction::broker::MessageSize(again->message))
      << "a record's summary size differs from its message's";
  JUNCTION_CHECK(summary.delayed == again->deliver_at_ms.has_value()) << "delay not seen";
  JUNCTION_CHECK(again->deliver_at_ms == stored->deliver_at_ms) << "deliver_at changed";
}

void FuzzAckSet(std::string_view bytes) {
  std::string_view in = bytes;
  auto acked = junction::broker::AckSet::Decode(in);
  if (!acked.ok()) {
    JUNCTION_CHECK(in == bytes) << "a failed Decode consumed input";
    return;
  }
  std::string encoded;
  acked->EncodeTo(encoded);
  JUNCTION_CHECK(encoded.size() <= bytes.size() - in.size()) << "re-encoding grew";
  std::string_view again_in = encoded;
  auto again = junction::broker::AckSet::Decode(again_in);
  JUNCTION_CHECK(again.ok() && again_in.empty() && *again == *acked)
      << "AckSet changed in a round trip";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  FuzzMessage(in);
  FuzzAckSet(in.rest());
  return 0;
}
