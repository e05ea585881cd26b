// The CloudEvents JSON event and batch formats: JSON members <-> Message.

#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

#include "codec/json_reader.h"
#include "codec/text.h"
#include "junction/cloudevents.h"

namespace junction::cloudevents {
namespace {

using internal::AppendJsonString;
using internal::JsonEvent;
using internal::JsonKind;
using internal::JsonMember;
using internal::Quote;

// Deepest `data` that EncodeJson writes as a JSON value: inside an event
// inside a batch, it still fits the default DecodeLimits::max_depth.
constexpr std::size_t kMaxEncodedDataDepth = DecodeLimits{}.max_depth - 2;

std::string Attribute(std::string_view name) { return "attribute " + Quote(name); }

Status WrongType(const JsonMember& member, std::string_view want) {
  return InvalidArgumentError(Attribute(member.key) + ": must be " + std::string(want) + ", not " +
                              std::string(internal::JsonKindName(member.kind)));
}

Result<std::string> StringValue(const JsonMember& member, const DecodeLimits& limits) {
  if (member.kind != JsonKind::kString) return WrongType(member, "a string");
  if (member.string.size() > limits.max_attribute_bytes) {
    return ResourceExhaustedError(
        Attribute(member.key) + ": value is " + std::to_string(member.string.size()) +
        " bytes, more than the limit of " + std::to_string(limits.max_attribute_bytes));
  }
  return member.string;
}

bool IsExtensionName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

// A CloudEvents Integer: "only the integer component optionally prefixed with
// a minus sign", within 32 bits.
Result<std::int32_t> IntegerValue(const JsonMember& member) {
  const std::string& text = member.compact;
  std::int32_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return InvalidArgumentError(
        Attribute(member.key) +
        ": not a CloudEvents Integer (32-bit, no fraction or exponent): " + Quote(text));
  }
  return value;
}

Result<ExtensionValue> ExtensionFromJson(const JsonMember& member, const DecodeLimits& limits) {
  switch (member.kind) {
    case JsonKind::kBool:
      return ExtensionValue(member.boolean);
    case JsonKind::kNumber: {
      JUNCTION_ASSIGN_OR_RETURN(std::int32_t value, IntegerValue(member));
      return ExtensionValue(value);
    }
    case JsonKind::kString: {
      JUNCTION_ASSIGN_OR_RETURN(std::string value, StringValue(member, limits));
      return ExtensionValue(std::move(value));
    }
    default:
      return WrongType(member, "a string, boolean or integer");
  }
}

// Sets `data` from the `data` member (see the header for the rules).
Status DataFromJson(const JsonMember& member, Message& message) {
  if (!message.datacontenttype || internal::IsJsonMediaType(*message.datacontenttype)) {
    message.data = member.compact;
    if (!message.datacontenttype) message.datacontenttype = "application/json";
    return OkStatus();
  }
  if (member.kind == JsonKind::kNull) return OkStatus();
  if (member.kind != JsonKind::kString) {
    return InvalidArgumentError("attribute 'data': must be a string when datacontenttype " +
                                Quote(*message.datacontenttype) + " is not JSON, not " +
                                std::string(internal::JsonKindName(member.kind)));
  }
  message.data = member.string;
  return OkStatus();
}

Result<Message> MessageFromJson(const JsonEvent& members, const DecodeLimits& limits) {
  Message message;
  bool have_specversion = false, have_id = false, have_source = false, have_type = false;
  const JsonMember* data = nullptr;
  const JsonMember* data_base64 = nullptr;
  for (const JsonMember& member : members) {
    const std::string& key = member.key;
    if (key == "data") {  // null is an explicit JSON payload here
      data = &member;
      continue;
    }
    if (member.kind == JsonKind::kNull) continue;  // unset
    if (key == "specversion") {
      JUNCTION_ASSIGN_OR_RETURN(message.specversion, StringValue(member, limits));
      if (message.specversion != kCloudEventsSpecVersion) {
        return InvalidArgumentError("attribute 'specversion': unsupported version " +
                                    Quote(message.specversion) + " (only \"1.0\" is supported)");
      }
      have_specversion = true;
    } else if (key == "id") {
      JUNCTION_ASSIGN_OR_RETURN(message.id, StringValue(member, limits));
      have_id = true;
    } else if (key == "source") {
      JUNCTION_ASSIGN_OR_RETURN(message.source, StringValue(member, limits));
      have_source = true;
    } else if (key == "type") {
      JUNCTION_ASSIGN_OR_RETURN(message.type, StringValue(member, limits));
      have_type = true;
    } else if (key == "subject") {
      JUNCTION_ASSIGN_OR_RETURN(message.subject, StringValue(member, limits));
    } else if (key == "datacontenttype") {
      JUNCTION_ASSIGN_OR_RETURN(message.datacontenttype, StringValue(member, limits));
    } else if (key == "dataschema") {
      JUNCTION_ASSIGN_OR_RETURN(message.dataschema, StringValue(member, limits));
    } else if (key == "partitionkey") {
      JUNCTION_ASSIGN_OR_RETURN(message.key, StringValue(member, limits));
    } else if (key == "time") {
      JUNCTION_ASSIGN_OR_RETURN(std::string text, StringValue(member, limits));
      Result<Timestamp> time = ParseRfc3339(text);
      if (!time.ok()) return time.status().WithContext("attribute 'time'");
      message.time = *time;
    } else if (key == "data_base64") {
      if (member.kind != JsonKind::kString) return WrongType(member, "a string");
      data_base64 = &member;
    } else if (!IsExtensionName(key)) {
      return InvalidArgumentError(Attribute(key) +
                                  ": not a valid extension attribute name (only a-z and 0-9)");
    } else {
      if (message.extensions.size() >= limits.max_extensions) {
        return ResourceExhaustedError("more than " + std::to_string(limits.max_extensions) +
                                      " extension attributes");
      }
      JUNCTION_ASSIGN_OR_RETURN(message.extensions[key], ExtensionFromJson(member, limits));
    }
  }
  if (!have_specversion) return InvalidArgumentError("missing required attribute 'specversion'");
  if (!have_id) return InvalidArgumentError("missing required attribute 'id'");
  if (!have_source) return InvalidArgumentError("missing required attribute 'source'");
  if (!have_type) return InvalidArgumentError("missing required attribute 'type'");
  if (data && data_base64) {
    return InvalidArgumentError("both 'data' and 'data_base64' are present; an event has one");
  }
  if (data_base64) {
    std::optional<std::string> bytes = internal::Base64Decode(data_base64->string);
    if (!bytes) {
      return InvalidArgumentError("attribute 'data_base64': not valid Base64: " +
                                  Quote(data_base64->string));
    }
    message.data = std::move(*bytes);
  }
  if (data) JUNCTION_RETURN_IF_ERROR(DataFromJson(*data, message));
  JUNCTION_RETURN_IF_ERROR(message.Validate());
  return message;
}

Status CheckSize(std::string_view json, const DecodeLimits& limits) {
  if (json.size() > limits.max_input_bytes) {
    return ResourceExhaustedError("input is " + std::to_string(json.size()) +
                                  " bytes, more than the limit of " +
                                  std::to_string(limits.max_input_bytes));
  }
  return OkStatus();
}

void AppendMember(std::string& out, std::string_view name, std::string_view json_value) {
  if (out.size() > 1) out += ',';
  AppendJsonString(out, name);
  out += ':';
  out += json_value;
}

void AppendStringMember(std::string& out, std::string_view name, std::string_view value) {
  std::string literal;
  AppendJsonString(literal, value);
  AppendMember(out, name, literal);
}

void AppendData(std::string& out, const Message& message) {
  if (message.data.empty()) return;
  const std::optional<std::string>& type = message.datacontenttype;
  if (type && internal::IsJsonMediaType(*type)) {
    std::optional<std::string> compact = internal::CompactJson(message.data, kMaxEncodedDataDepth);
    if (compact && *compact == message.data) return AppendMember(out, "data", message.data);
  } else if (type && internal::IsText(message.data)) {
    return AppendStringMember(out, "data", message.data);
  }
  std::string literal;
  AppendJsonString(literal, internal::Base64Encode(message.data));
  AppendMember(out, "data_base64", literal);
}

}  // namespace

Result<Message> DecodeJson(std::string_view json, const DecodeLimits& limits) {
  JUNCTION_RETURN_IF_ERROR(CheckSize(json, limits));
  JUNCTION_ASSIGN_OR_RETURN(
      std::vector<JsonEvent> events,
      internal::ReadJsonEvents(json, internal::JsonShape::kEvent, {limits.max_depth, 1}));
  return MessageFromJson(events.front(), limits);
}

Result<std::vector<Message>> DecodeJsonBatch(std::string_view json, const DecodeLimits& limits) {
  JUNCTION_RETURN_IF_ERROR(CheckSize(json, limits));
  JUNCTION_ASSIGN_OR_RETURN(std::vector<JsonEvent> events,
                            internal::ReadJsonEvents(json, internal::JsonShape::kBatch,
                                                     {limits.max_depth, limits.max_batch_events}));
  std::vector<Message> messages;
  messages.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    Result<Message> message = MessageFromJson(events[i], limits);
    if (!message.ok()) return message.status().WithContext("event " + std::to_string(i));
    messages.push_back(std::move(*message));
  }
  return messages;
}

std::string EncodeJson(const Message& message) {
  std::string out = "{";
  AppendStringMember(out, "specversion", message.specversion);
  AppendStringMember(out, "id", message.id);
  AppendStringMember(out, "source", message.source);
  AppendStringMember(out, "type", message.type);
  if (message.subject) AppendStringMember(out, "subject", *message.subject);
  if (message.time) AppendStringMember(out, "time", FormatRfc3339(*message.time));
  if (message.datacontenttype) {
    AppendStringMember(out, "datacontenttype", *message.datacontenttype);
  }
  if (message.dataschema) AppendStringMember(out, "dataschema", *message.dataschema);
  if (message.key) AppendStringMember(out, "partitionkey", *message.key);
  for (const auto& [name, value] : message.extensions) {
    if (const auto* b = std::get_if<bool>(&value)) {
      AppendMember(out, name, *b ? "true" : "false");
    } else if (const auto* i = std::get_if<std::int32_t>(&value)) {
      AppendMember(out, name, std::to_string(*i));
    } else {
      AppendStringMember(out, name, std::get<std::string>(value));
    }
  }
  AppendData(out, message);
  out += '}';
  return out;
}

std::string EncodeJsonBatch(std::span<const Message> messages) {
  std::string out = "[";
  for (const Message& message : messages) {
    if (out.size() > 1) out += ',';
    out += EncodeJson(message);
  }
  out += ']';
  return out;
}

}  // namespace junction::cloudevents
