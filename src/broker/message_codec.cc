#include "broker/message_codec.h"

#include <charconv>
#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "core/text.h"

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

Result<ExtensionValue> ParseExtension(std::string_view where, std::string_view value) {
  if (value.empty())
    return DataLossError(std::string(where) + ": extension value has no type byte");
  std::string_view text = value.substr(1);
  switch (value[0]) {
    case kTypeString:
      return ExtensionValue(std::string(text));
    case kTypeBool:
      if (text == "true") return ExtensionValue(true);
      if (text == "false") return ExtensionValue(false);
      return DataLossError(std::string(where) + ": not a boolean: " + Quote(text));
    case kTypeInt:
      if (auto v = ParseCanonicalInt(text); v && *v >= std::numeric_limits<std::int32_t>::min() &&
                                            *v <= std::numeric_limits<std::int32_t>::max()) {
        return ExtensionValue(static_cast<std::int32_t>(*v));
      }
      return DataLossError(std::string(where) + ": not a canonical int32: " + Quote(text));
    default:
      return DataLossError(std::string(where) + ": unknown extension type byte " +
                           Quote(value.substr(0, 1)));
  }
}

std::string* RequiredAttribute(Message& m, std::string_view name) {
  if (name == "id") return &m.id;
  if (name == "source") return &m.source;
  if (name == "specversion") return &m.specversion;
  if (name == "type") return &m.type;
  return nullptr;
}

// Stores one "ce-<name>" header into `m`; `seen_required` counts the four
// required attributes.
Status DecodeAttribute(std::string_view where, std::string_view name, const std::string& value,
                       Message& m, int& seen_required) {
  if (std::string* field = RequiredAttribute(m, name)) {
    *field = value;
    ++seen_required;
  } else if (name == "subject") {
    m.subject = value;
  } else if (name == "datacontenttype") {
    m.datacontenttype = value;
  } else if (name == "dataschema") {
    m.dataschema = value;
  } else if (name == "time") {
    Result<Timestamp> time = ParseRfc3339(value);
    if (!time.ok()) return DataLossError(std::string(where) + ": " + time.status().message());
    m.time = *time;
  } else if (name.empty()) {
    return DataLossError(std::string(where) + ": no attribute name after the prefix");
  } else {
    JUNCTION_ASSIGN_OR_RETURN(ExtensionValue extension, ParseExtension(where, value));
    m.extensions.emplace(std::string(name), std::move(extension));
  }
  return OkStatus();
}

}  // namespace

void AddMessage(codec::RecordBatchBuilder& builder, const Message& message,
                std::int64_t timestamp_ms, std::optional<std::int64_t> deliver_at_ms) {
  using Header = std::pair<std::string_view, std::optional<std::string_view>>;
  std::deque<std::string> owned;  // built names and values; a deque never moves them
  auto own = [&owned](std::string s) -> std::string_view {
    return owned.emplace_back(std::move(s));
  };
  std::vector<Header> headers;
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
  builder.Add(timestamp_ms, key, value, headers);
}

Result<StoredMessage> DecodeMessage(const codec::Record& record) {
  StoredMessage out;
  out.timestamp_ms = record.timestamp_ms;
  Message& m = out.message;
  if (record.key) m.key = *record.key;
  if (record.value) m.data = *record.value;

  std::unordered_set<std::string_view> seen;
  int seen_required = 0;
  for (const codec::RecordHeader& header : record.headers) {
    const std::string_view name = header.key;
    const std::string where = "record header " + Quote(name);
    if (!seen.insert(name).second) return DataLossError(where + ": appears twice");
    if (!header.value) return DataLossError(where + ": has no value");
    const std::string& value = *header.value;
    if (name.starts_with(kAttributePrefix)) {
      JUNCTION_RETURN_IF_ERROR(
          DecodeAttribute(where, name.substr(kAttributePrefix.size()), value, m, seen_required));
    } else if (name.starts_with(kUserHeaderPrefix)) {
      if (name.size() == kUserHeaderPrefix.size()) {
        return DataLossError(where + ": no header name after the prefix");
      }
      m.headers.emplace(name.substr(kUserHeaderPrefix.size()), value);
    } else if (name == kDeliverAtHeader) {
      out.deliver_at_ms = ParseCanonicalInt(value);
      if (!out.deliver_at_ms) {
        return DataLossError(where + ": not a canonical decimal int64: " + Quote(value));
      }
    } else if (!name.starts_with(kBrokerFieldPrefix)) {
      return DataLossError(where + ": unknown header");
    }  // else: a broker field of a later version; ignored.
  }
  if (seen_required != 4) {
    for (std::string_view required : {"ce-id", "ce-source", "ce-specversion", "ce-type"}) {
      if (!seen.contains(required)) {
        return DataLossError("record header " + Quote(required) + ": missing");
      }
    }
  }
  if (Status valid = m.Validate(); !valid.ok()) {
    return DataLossError("stored message is invalid: " + valid.message());
  }
  return out;
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

}  // namespace junction::broker
