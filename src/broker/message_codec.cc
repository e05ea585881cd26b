#include "broker/message_codec.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "core/text.h"
#include "junction/result.h"

namespace junction::broker {
namespace {

using text::Quote;

constexpr char kTypeString = 's';
constexpr char kTypeBool = 'b';
constexpr char kTypeInt = 'i';

// The value of `text` when it is the canonical decimal form of an int64: what
// std::to_string writes, nothing else ("+1", "01", "-0", " 1" are not).
std::optional<std::int64_t> ParseCanonicalInt(std::string_view text) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (std::to_string(value) != text) return std::nullopt;
  return value;
}

// An extension value as text, without its type byte.
std::string ExtensionText(const ExtensionValue& value) {
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<std::int32_t>(&value)) return std::to_string(*i);
  return std::get<std::string>(value);
}

char ExtensionType(const ExtensionValue& value) {
  if (std::holds_alternative<bool>(value)) return kTypeBool;
  if (std::holds_alternative<std::int32_t>(value)) return kTypeInt;
  return kTypeString;
}

// "record header 'name'", for errors about one header (built only then).
std::string Where(std::string_view header) { return "record header " + Quote(header); }

Result<ExtensionValue> ParseExtension(std::string_view header, std::string_view value) {
  if (value.empty()) return DataLossError(Where(header) + ": extension value has no type byte");
  std::string_view text = value.substr(1);
  switch (value[0]) {
    case kTypeString:
      return ExtensionValue(std::string(text));
    case kTypeBool:
      if (text == "true") return ExtensionValue(true);
      if (text == "false") return ExtensionValue(false);
      return DataLossError(Where(header) + ": not a boolean: " + Quote(text));
    case kTypeInt:
      if (auto v = ParseCanonicalInt(text); v && *v >= std::numeric_limits<std::int32_t>::min() &&
                                            *v <= std::numeric_limits<std::int32_t>::max()) {
        return ExtensionValue(static_cast<std::int32_t>(*v));
      }
      return DataLossError(Where(header) + ": not a canonical int32: " + Quote(text));
    default:
      return DataLossError(Where(header) + ": unknown extension type byte " +
                           Quote(value.substr(0, 1)));
  }
}

// The first header name that appears twice, if any. A stored message has a
// handful of headers: up to kLinear they are compared pairwise, which
// allocates nothing; more go through a set.
std::optional<std::string_view> RepeatedName(std::span<const codec::RecordHeaderView> headers) {
  constexpr std::size_t kLinear = 16;
  if (headers.size() <= kLinear) {
    for (std::size_t i = 1; i < headers.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (headers[i].key == headers[j].key) return headers[i].key;
      }
    }
    return std::nullopt;
  }
  std::unordered_set<std::string_view> seen;
  seen.reserve(headers.size());
  for (const codec::RecordHeaderView& header : headers) {
    if (!seen.insert(header.key).second) return header.key;
  }
  return std::nullopt;
}

std::string* RequiredAttribute(Message& m, std::string_view name) {
  if (name == "id") return &m.id;
  if (name == "source") return &m.source;
  if (name == "specversion") return &m.specversion;
  if (name == "type") return &m.type;
  return nullptr;
}

// Stores one "ce-<name>" header (`header`) into `m`; `seen_required` counts
// the four required attributes.
Status DecodeAttribute(std::string_view header, std::string_view name, std::string_view value,
                       Message& m, int& seen_required) {
  if (std::string* field = RequiredAttribute(m, name)) {
    *field = value;
    ++seen_required;
  } else if (name == "subject") {
    m.subject.emplace(value);
  } else if (name == "datacontenttype") {
    m.datacontenttype.emplace(value);
  } else if (name == "dataschema") {
    m.dataschema.emplace(value);
  } else if (name == "time") {
    Result<Timestamp> time = ParseRfc3339(value);
    if (!time.ok()) return DataLossError(Where(header) + ": " + time.status().message());
    m.time = *time;
  } else if (name.empty()) {
    return DataLossError(Where(header) + ": no attribute name after the prefix");
  } else {
    JUNCTION_ASSIGN_OR_RETURN(ExtensionValue extension, ParseExtension(header, value));
    m.extensions.emplace(std::string(name), std::move(extension));
  }
  return OkStatus();
}

}  // namespace

void AddMessage(codec::RecordBatchBuilder& builder, const Message& message,
                std::int64_t timestamp_ms, std::optional<std::int64_t> deliver_at_ms) {
  using Header = std::pair<std::string_view, std::optional<std::string_view>>;
  // Built names and values, reserved up front so that no view into them
  // moves (and nothing is allocated for a message that needs none).
  std::vector<std::string> owned;
  owned.reserve((message.time ? 1 : 0) + 2 * message.extensions.size() + message.headers.size() +
                (deliver_at_ms ? 1 : 0));
  auto own = [&owned](std::string s) -> std::string_view {
    JUNCTION_CHECK(owned.size() < owned.capacity()) << "AddMessage reserved too little";
    return owned.emplace_back(std::move(s));
  };
  // On the stack for the usual message (attributes and a few extensions or headers).
  boost::container::small_vector<Header, 16> headers;
  headers.reserve(9 + message.extensions.size() + message.headers.size());

  headers.emplace_back("ce-id", message.id);
  headers.emplace_back("ce-source", message.source);
  headers.emplace_back("ce-specversion", message.specversion);
  headers.emplace_back("ce-type", message.type);
  if (message.subject) headers.emplace_back("ce-subject", *message.subject);
  if (message.time) headers.emplace_back("ce-time", own(FormatRfc3339(*message.time)));
  if (message.datacontenttype) {
    headers.emplace_back("ce-datacontenttype", *message.datacontenttype);
  }
  if (message.dataschema) headers.emplace_back("ce-dataschema", *message.dataschema);
  for (const auto& [name, value] : message.extensions) {
    headers.emplace_back(own(std::string(kAttributePrefix) + name),
                         own(ExtensionType(value) + ExtensionText(value)));
  }
  for (const auto& [name, value] : message.headers) {
    headers.emplace_back(own(std::string(kUserHeaderPrefix) + name), value);
  }
  if (deliver_at_ms) headers.emplace_back(kDeliverAtHeader, own(std::to_string(*deliver_at_ms)));

  std::optional<std::string_view> key;
  if (message.key) key = *message.key;
  std::optional<std::string_view> value;
  if (!message.data.empty()) value = message.data;
  builder.Add(timestamp_ms, key, value, std::span<const Header>(headers.data(), headers.size()));
}

Result<StoredMessage> DecodeMessage(const codec::Record& record) {
  boost::container::small_vector<codec::RecordHeaderView, 16> headers;
  headers.reserve(record.headers.size());
  for (const codec::RecordHeader& h : record.headers) {
    headers.push_back({h.key, h.value ? std::optional<std::string_view>(*h.value) : std::nullopt});
  }
  codec::RecordView view{
      record.offset, record.timestamp_ms,
      record.key ? std::optional<std::string_view>(*record.key) : std::nullopt,
      record.value ? std::optional<std::string_view>(*record.value) : std::nullopt,
      std::span<const codec::RecordHeaderView>(headers.data(), headers.size())};
  return DecodeMessage(view);
}

Status DecodeMessageInto(const codec::RecordView& record, Message& m,
                         std::optional<std::int64_t>* deliver_at_ms) {
  if (record.key) m.key.emplace(*record.key);
  if (record.value) m.data = *record.value;

  if (std::optional<std::string_view> twice = RepeatedName(record.headers)) {
    return DataLossError(Where(*twice) + ": appears twice");
  }
  int seen_required = 0;
  for (const codec::RecordHeaderView& header : record.headers) {
    const std::string_view name = header.key;
    if (!header.value) return DataLossError(Where(name) + ": has no value");
    const std::string_view value = *header.value;
    if (name.starts_with(kAttributePrefix)) {
      JUNCTION_RETURN_IF_ERROR(
          DecodeAttribute(name, name.substr(kAttributePrefix.size()), value, m, seen_required));
    } else if (name.starts_with(kUserHeaderPrefix)) {
      if (name.size() == kUserHeaderPrefix.size()) {
        return DataLossError(Where(name) + ": no header name after the prefix");
      }
      m.headers.emplace(name.substr(kUserHeaderPrefix.size()), value);
    } else if (name == kDeliverAtHeader) {
      std::optional<std::int64_t> at = ParseCanonicalInt(value);
      if (!at) {
        return DataLossError(Where(name) + ": not a canonical decimal int64: " + Quote(value));
      }
      if (deliver_at_ms != nullptr) *deliver_at_ms = at;
    } else if (!name.starts_with(kBrokerFieldPrefix)) {
      return DataLossError(Where(name) + ": unknown header");
    }  // else: a broker field of a later version; ignored.
  }
  if (seen_required != 4) {  // (no name repeats, so one of the four is absent)
    for (std::string_view required : {"ce-id", "ce-source", "ce-specversion", "ce-type"}) {
      auto named = [required](const codec::RecordHeaderView& h) { return h.key == required; };
      if (std::none_of(record.headers.begin(), record.headers.end(), named)) {
        return DataLossError(Where(required) + ": missing");
      }
    }
  }
  if (Status valid = m.Validate(); !valid.ok()) {
    return DataLossError("stored message is invalid: " + valid.message());
  }
  return OkStatus();
}

Result<StoredMessage> DecodeMessage(const codec::RecordView& record) {
  Message m;
  std::optional<std::int64_t> deliver_at_ms;
  JUNCTION_RETURN_IF_ERROR(DecodeMessageInto(record, m, &deliver_at_ms));
  return StoredMessage(std::move(m), record.timestamp_ms, deliver_at_ms);
}

Result<std::shared_ptr<StoredMessage>> DecodeStoredMessage(const codec::RecordView& record) {
  auto box = std::make_shared<StoredMessage>(record.timestamp_ms);
  JUNCTION_RETURN_IF_ERROR(DecodeMessageInto(record, box->message, &box->deliver_at_ms));
  box->size_ = MessageSize(box->message);
  return box;
}

RecordSummary SummarizeRecord(const codec::RecordView& record) {
  RecordSummary summary;
  summary.size = (record.key ? record.key->size() : 0) + (record.value ? record.value->size() : 0);
  for (const codec::RecordHeaderView& header : record.headers) {
    const std::string_view name = header.key;
    const std::size_t value = header.value ? header.value->size() : 0;
    if (name.starts_with(kAttributePrefix)) {
      std::string_view attribute = name.substr(kAttributePrefix.size());
      if (attribute == "id" || attribute == "source" || attribute == "specversion" ||
          attribute == "type" || attribute == "subject" || attribute == "time" ||
          attribute == "datacontenttype" || attribute == "dataschema") {
        summary.size += value;
      } else {
        // An extension: its name and its text, without the type byte.
        summary.size += attribute.size() + (value > 0 ? value - 1 : 0);
      }
    } else if (name.starts_with(kUserHeaderPrefix)) {
      summary.size += name.size() - kUserHeaderPrefix.size() + value;
    } else if (name == kDeliverAtHeader) {
      summary.delayed = true;
    }
  }
  return summary;
}

Result<std::shared_ptr<StoredMessage>> DecodeStoredRecordAt(const StoredBatch& batch,
                                                            std::uint32_t position) {
  std::vector<codec::RecordHeaderView> headers;
  JUNCTION_ASSIGN_OR_RETURN(codec::RecordView record,
                            codec::DecodeRecordAt(batch.bytes, position, headers));
  return DecodeStoredMessage(record);
}

std::size_t MessageSize(const Message& message) {
  std::size_t size = message.data.size() + message.id.size() + message.source.size() +
                     message.specversion.size() + message.type.size();
  if (message.subject) size += message.subject->size();
  if (message.time) size += FormatRfc3339(*message.time).size();
  if (message.datacontenttype) size += message.datacontenttype->size();
  if (message.dataschema) size += message.dataschema->size();
  for (const auto& [name, value] : message.extensions) {
    const auto* text = std::get_if<std::string>(&value);
    size += name.size() + (text != nullptr ? text->size() : ExtensionText(value).size());
  }
  if (message.key) size += message.key->size();
  for (const auto& [name, value] : message.headers) size += name.size() + value.size();
  return size;
}

Result<std::vector<std::byte>> EncodeMessageBatch(std::span<const Message> messages,
                                                  std::int64_t timestamp_ms,
                                                  std::uint32_t max_batch_bytes) {
  codec::RecordBatchBuilder builder({.max_batch_bytes = max_batch_bytes});
  for (const Message& m : messages) AddMessage(builder, m, timestamp_ms, std::nullopt);
  return builder.Build();
}

namespace {

// DecodeMessageBatch's checks; `take` gets each decoded message in order.
template <typename Take>
Status DecodeBatchWith(std::span<const std::byte> batch, std::uint32_t max_batch_bytes,
                       std::size_t max_messages, bool* storable, Take take) {
  if (storable != nullptr) *storable = false;
  Result<codec::BatchHeader> header = codec::ParseBatchHeader(batch, max_batch_bytes);
  if (!header.ok()) return InvalidArgumentError("record batch: " + header.status().message());
  if (header->record_count > max_messages) {
    return InvalidArgumentError("record batch: " + std::to_string(header->record_count) +
                                " records, more than the " + std::to_string(max_messages) +
                                " expected");
  }
  codec::RecordViews views;
  if (Status decoded = views.Decode(batch, max_batch_bytes); !decoded.ok()) {
    return InvalidArgumentError("record batch: " + decoded.message());
  }
  std::span<const codec::RecordView> records = views.records();
  bool as_received =
      header->producer_id == ProducerId() && header->base_sequence == SequenceNumber();
  for (std::size_t i = 0; i < records.size(); ++i) {
    const codec::RecordView& record = records[i];
    if (Status taken = take(records.size(), record); !taken.ok()) {
      return InvalidArgumentError("record " + std::to_string(i) + ": " + taken.message());
    }
    if (as_received) {
      auto broker_field = [](const codec::RecordHeaderView& h) {
        return h.key.starts_with(kBrokerFieldPrefix);
      };
      as_received = record.offset == header->base_offset + i &&
                    record.timestamp_ms == header->first_timestamp_ms &&
                    std::none_of(record.headers.begin(), record.headers.end(), broker_field);
    }
  }
  if (storable != nullptr) *storable = as_received;
  return OkStatus();
}

}  // namespace

Status DecodeMessageBatch(std::span<const std::byte> batch, std::uint32_t max_batch_bytes,
                          std::size_t max_messages, std::vector<Message>& out, bool* storable) {
  out.clear();
  return DecodeBatchWith(batch, max_batch_bytes, max_messages, storable,
                         [&out](std::size_t count, const codec::RecordView& record) {
                           if (out.empty()) out.reserve(count);
                           return DecodeMessageInto(record, out.emplace_back());
                         });
}

Status DecodeStoredBatch(std::span<const std::byte> batch, std::uint32_t max_batch_bytes,
                         std::size_t max_messages, std::vector<std::shared_ptr<StoredMessage>>& out,
                         bool* storable) {
  out.clear();
  return DecodeBatchWith(batch, max_batch_bytes, max_messages, storable,
                         [&out](std::size_t count, const codec::RecordView& record) -> Status {
                           if (out.empty()) out.reserve(count);
                           JUNCTION_ASSIGN_OR_RETURN(std::shared_ptr<StoredMessage> stored,
                                                     DecodeStoredMessage(record));
                           out.push_back(std::move(stored));
                           return OkStatus();
                         });
}

}  // namespace junction::broker
