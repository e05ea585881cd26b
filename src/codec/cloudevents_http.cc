// The CloudEvents HTTP protocol binding: binary, structured and batched modes.

#include <array>
#include <set>
#include <string>
#include <utility>

#include "codec/text.h"
#include "junction/cloudevents.h"

namespace junction::cloudevents {
namespace {

using internal::Quote;
using internal::ToLower;

constexpr std::string_view kContentType = "Content-Type";

// Headers that describe the HTTP message itself rather than the event; they
// never become Message::headers and are never written from them.
constexpr std::array<std::string_view, 10> kHttpOwnedHeaders = {
    "content-type", "content-length",   "host",    "connection",        "keep-alive",
    "te",           "proxy-connection", "trailer", "transfer-encoding", "upgrade"};

bool IsHttpOwned(std::string_view lower_name) {
  for (std::string_view owned : kHttpOwnedHeaders) {
    if (lower_name == owned) return true;
  }
  return false;
}

// HTTP binding §3: a Content-Type with this prefix selects structured or
// batched mode.
bool IsCloudEventsMediaType(std::string_view content_type) {
  return internal::MediaTypeEssence(content_type).starts_with("application/cloudevents");
}

bool IsCeHeader(std::string_view lower_name) { return lower_name.starts_with("ce-"); }

void AppendTransportHeaders(const Message& message, HttpMessage& http) {
  for (const auto& [name, value] : message.headers) {
    std::string lower = ToLower(name);
    if (IsHttpOwned(lower) || IsCeHeader(lower)) continue;
    http.headers.emplace_back(name, value);
  }
}

// RFC 7230 §3.2.6: a quoted-string with backslash escapes, as older senders
// wrote ce- values. Anything else is returned as it is.
Result<std::string> Unquote(std::string_view value) {
  if (value.empty() || value.front() != '"') return std::string(value);
  std::string out;
  for (std::size_t i = 1; i < value.size(); ++i) {
    char c = value[i];
    if (c == '"') {
      if (i + 1 != value.size()) break;
      return out;
    }
    if (c == '\\') {
      if (++i == value.size()) break;
      c = value[i];
    }
    out += c;
  }
  return InvalidArgumentError("malformed quoted string");
}

// A ce- header value as the attribute's string: unquoted, percent-decoded,
// UTF-8, within the size limit.
Result<std::string> CeHeaderValue(std::string_view name, std::string_view raw,
                                  const DecodeLimits& limits) {
  std::string where = "header " + Quote(name);
  Result<std::string> unquoted = Unquote(raw);
  if (!unquoted.ok()) return unquoted.status().WithContext(where);
  std::optional<std::string> value = internal::PercentDecode(*unquoted);
  if (!value) return InvalidArgumentError(where + ": malformed percent-encoding: " + Quote(raw));
  if (!internal::IsValidUtf8(*value)) {
    return InvalidArgumentError(where + ": percent-decoded value is not UTF-8: " + Quote(raw));
  }
  if (value->size() > limits.max_attribute_bytes) {
    return ResourceExhaustedError(where + ": value is " + std::to_string(value->size()) +
                                  " bytes, more than the limit of " +
                                  std::to_string(limits.max_attribute_bytes));
  }
  return std::move(*value);
}

bool IsExtensionName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Sets the attribute that ce-<attribute> names.
Status SetAttribute(Message& message, const std::string& attribute, std::string value,
                    const DecodeLimits& limits) {
  if (attribute == "specversion") {
    message.specversion = std::move(value);
  } else if (attribute == "id") {
    message.id = std::move(value);
  } else if (attribute == "source") {
    message.source = std::move(value);
  } else if (attribute == "type") {
    message.type = std::move(value);
  } else if (attribute == "subject") {
    message.subject = std::move(value);
  } else if (attribute == "dataschema") {
    message.dataschema = std::move(value);
  } else if (attribute == "partitionkey") {
    message.key = std::move(value);
  } else if (attribute == "time") {
    Result<Timestamp> time = ParseRfc3339(value);
    if (!time.ok()) return time.status().WithContext("header 'ce-time'");
    message.time = *time;
  } else if (attribute == "datacontenttype") {
    return InvalidArgumentError(
        "header 'ce-datacontenttype' is not allowed in binary mode; Content-Type carries it");
  } else if (!IsExtensionName(attribute) || attribute == "data") {
    return InvalidArgumentError("header " + Quote("ce-" + attribute) +
                                ": not a valid extension attribute name (only a-z and 0-9)");
  } else {
    if (message.extensions.size() >= limits.max_extensions) {
      return ResourceExhaustedError("more than " + std::to_string(limits.max_extensions) +
                                    " extension attributes");
    }
    message.extensions[attribute] = std::move(value);
  }
  return OkStatus();
}

void AddTransportHeader(Message& message, std::string lower_name, std::string_view value) {
  auto [it, inserted] = message.headers.try_emplace(std::move(lower_name), value);
  if (!inserted) {
    it->second += ", ";
    it->second += value;
  }
}

// Binary mode: the attributes come from ce- headers, the data is the body.
Result<Message> DecodeBinary(const HttpMessage& http, const std::string* content_type,
                             const DecodeLimits& limits) {
  Message message;
  message.specversion.clear();
  std::set<std::string> seen;
  for (const auto& [name, raw_value] : http.headers) {
    std::string lower = ToLower(name);
    std::string_view value = internal::TrimWhitespace(raw_value);
    if (IsCeHeader(lower)) {
      if (!seen.insert(lower).second) {
        return InvalidArgumentError("duplicate header " + Quote(lower));
      }
      JUNCTION_ASSIGN_OR_RETURN(std::string decoded, CeHeaderValue(lower, value, limits));
      JUNCTION_RETURN_IF_ERROR(SetAttribute(message, lower.substr(3), std::move(decoded), limits));
    } else if (!IsHttpOwned(lower)) {
      AddTransportHeader(message, std::move(lower), value);
    }
  }
  if (!seen.contains("ce-specversion")) {
    return InvalidArgumentError("not a CloudEvent: no ce-specversion header");
  }
  for (std::string_view required : {"ce-id", "ce-source", "ce-type"}) {
    if (!seen.contains(std::string(required))) {
      return InvalidArgumentError("missing required header " + Quote(required));
    }
  }
  if (content_type) message.datacontenttype = std::string(internal::TrimWhitespace(*content_type));
  message.data = http.body;
  JUNCTION_RETURN_IF_ERROR(message.Validate());
  return message;
}

Status CheckSize(const HttpMessage& http, const DecodeLimits& limits) {
  std::size_t total = http.body.size();
  for (const auto& [name, value] : http.headers) total += name.size() + value.size();
  if (total > limits.max_input_bytes) {
    return ResourceExhaustedError("HTTP message is " + std::to_string(total) +
                                  " bytes, more than the limit of " +
                                  std::to_string(limits.max_input_bytes));
  }
  return OkStatus();
}

// The one Content-Type header, or nullptr.
Result<const std::string*> FindContentType(const HttpMessage& http) {
  const std::string* found = nullptr;
  for (const auto& [name, value] : http.headers) {
    if (ToLower(name) != "content-type") continue;
    if (found) return InvalidArgumentError("more than one Content-Type header");
    found = &value;
  }
  return found;
}

}  // namespace

HttpMessage EncodeHttpBinary(const Message& message) {
  // A receiver would take such a Content-Type for structured mode.
  if (message.datacontenttype && IsCloudEventsMediaType(*message.datacontenttype)) {
    return EncodeHttpStructured(message);
  }
  HttpMessage http;
  auto add = [&](std::string_view attribute, std::string_view value) {
    http.headers.emplace_back("ce-" + std::string(attribute), internal::PercentEncode(value));
  };
  add("specversion", message.specversion);
  add("id", message.id);
  add("source", message.source);
  add("type", message.type);
  if (message.subject) add("subject", *message.subject);
  if (message.time) add("time", FormatRfc3339(*message.time));
  if (message.dataschema) add("dataschema", *message.dataschema);
  if (message.key) add("partitionkey", *message.key);
  for (const auto& [name, value] : message.extensions) {
    if (const auto* b = std::get_if<bool>(&value)) {
      add(name, *b ? "true" : "false");
    } else if (const auto* i = std::get_if<std::int32_t>(&value)) {
      add(name, std::to_string(*i));
    } else {
      add(name, std::get<std::string>(value));
    }
  }
  if (message.datacontenttype) http.headers.emplace_back(kContentType, *message.datacontenttype);
  AppendTransportHeaders(message, http);
  http.body = message.data;
  return http;
}

HttpMessage EncodeHttpStructured(const Message& message) {
  HttpMessage http;
  http.headers.emplace_back(kContentType, std::string(kJsonMediaType) + "; charset=utf-8");
  AppendTransportHeaders(message, http);
  http.body = EncodeJson(message);
  return http;
}

HttpMessage EncodeHttpBatch(std::span<const Message> messages) {
  HttpMessage http;
  http.headers.emplace_back(kContentType, std::string(kJsonBatchMediaType) + "; charset=utf-8");
  http.body = EncodeJsonBatch(messages);
  return http;
}

Result<Message> DecodeHttp(const HttpMessage& http, const DecodeLimits& limits) {
  JUNCTION_RETURN_IF_ERROR(CheckSize(http, limits));
  JUNCTION_ASSIGN_OR_RETURN(const std::string* content_type, FindContentType(http));
  if (!content_type || !IsCloudEventsMediaType(*content_type)) {
    return DecodeBinary(http, content_type, limits);
  }
  std::string essence = internal::MediaTypeEssence(*content_type);
  if (essence.starts_with("application/cloudevents-batch")) {
    return InvalidArgumentError("Content-Type " + Quote(*content_type) +
                                " is a batch of events; use DecodeHttpBatch");
  }
  if (essence != kJsonMediaType) {
    return UnimplementedError("unsupported CloudEvents event format " + Quote(essence) +
                              "; only application/cloudevents+json is supported");
  }
  JUNCTION_ASSIGN_OR_RETURN(Message message, DecodeJson(http.body, limits));
  for (const auto& [name, value] : http.headers) {
    std::string lower = ToLower(name);
    if (IsHttpOwned(lower) || IsCeHeader(lower)) continue;
    AddTransportHeader(message, std::move(lower), internal::TrimWhitespace(value));
  }
  JUNCTION_RETURN_IF_ERROR(message.Validate());
  return message;
}

Result<std::vector<Message>> DecodeHttpBatch(const HttpMessage& http, const DecodeLimits& limits) {
  JUNCTION_RETURN_IF_ERROR(CheckSize(http, limits));
  JUNCTION_ASSIGN_OR_RETURN(const std::string* content_type, FindContentType(http));
  std::string essence = content_type ? internal::MediaTypeEssence(*content_type) : "";
  if (essence != kJsonBatchMediaType) {
    return InvalidArgumentError("Content-Type " + Quote(content_type ? *content_type : "") +
                                " is not " + std::string(kJsonBatchMediaType));
  }
  return DecodeJsonBatch(http.body, limits);
}

}  // namespace junction::cloudevents
