#pragma once

// Message: one event as Junction carries it, modelled on CloudEvents 1.0.
//
// The same Message crosses HTTP (CloudEvents binary or structured mode), the
// wire protocol and every external engine without loss; the codecs live in
// junction/cloudevents.h. A Message is a plain value: copyable, comparable,
// and not tied to any thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <variant>

#include "junction/result.h"
#include "junction/status.h"

namespace junction {

// A point in time, UTC, with nanosecond precision. The same type as WallTime
// on our platforms (libstdc++'s system_clock counts nanoseconds). Its range is
// 1677-09-21T00:12:43Z .. 2262-04-11T23:47:16Z; parsing rejects times outside it.
using Timestamp = std::chrono::sys_time<std::chrono::nanoseconds>;

// Parses an RFC 3339 date-time ("2018-04-05T17:31:00Z",
// "2018-04-05T19:31:00.123456789+02:00"), normalised to UTC. 'T' and 'Z' may be
// lower case; "-00:00" means UTC. Fractional digits beyond the ninth are
// truncated. Leap seconds (":60") and times outside Timestamp's range are
// InvalidArgument, as is anything else that is not an RFC 3339 date-time.
Result<Timestamp> ParseRfc3339(std::string_view text);

// "2018-04-05T17:31:00Z"; a fraction is written only when non-zero, with its
// trailing zeros dropped ("...:00.12Z"). ParseRfc3339 of the result gives `t`.
std::string FormatRfc3339(Timestamp t);

// The value of a CloudEvents extension attribute. Boolean and Integer (a
// signed 32-bit number) are typed; String, URI, URI-reference, Timestamp and
// Binary values are carried in their canonical string form.
using ExtensionValue = std::variant<bool, std::int32_t, std::string>;

inline constexpr std::string_view kCloudEventsSpecVersion = "1.0";

// One event. Field names are the CloudEvents attribute names.
//
// Invariants that Validate() checks (a decoder never returns a Message that
// fails them; an encoder's output for a Message that fails them is rejected by
// the matching decoder):
//  * id, source, type: non-empty; specversion: "1.0".
//  * subject, datacontenttype, dataschema: when present, non-empty.
//  * source is a URI-reference, dataschema an absolute URI (checked at the
//    level of RFC 3986 characters and scheme syntax), datacontenttype has the
//    RFC 2046 "type/subtype[;parameters]" form.
//  * Every string attribute, extension string and key is a CloudEvents String:
//    valid UTF-8 without control characters (U+0000-U+001F, U+007F-U+009F),
//    surrogates or Unicode noncharacters.
//  * Extension names are lowercase a-z and 0-9 only (the spec recommends at
//    most 20 characters; longer names are accepted) and are not the name of a
//    context attribute, "data", "data_base64" or "partitionkey" (see key).
//  * Header names are HTTP tokens and must not start with "ce-" (reserved for
//    CloudEvents attributes in HTTP); header values contain no control
//    characters other than horizontal tab.
struct Message {
  // Required context attributes.
  std::string id;
  std::string source;  // URI-reference
  std::string specversion = std::string(kCloudEventsSpecVersion);
  std::string type;

  // Optional context attributes.
  std::optional<std::string> subject;
  std::optional<Timestamp> time;
  // RFC 2046 media type of `data`. When absent, `data` is opaque bytes.
  std::optional<std::string> datacontenttype;
  std::optional<std::string> dataschema;  // absolute URI

  // Extension attributes by name (sorted, so encodings are deterministic).
  std::map<std::string, ExtensionValue> extensions;

  // Ordering and partitioning key: messages with the same key are delivered in
  // order. In CloudEvents encodings it is the `partitionkey` extension
  // attribute of the Partitioning extension. When present, non-empty.
  std::optional<std::string> key;

  // Free-form transport metadata that is not a CloudEvents attribute, such as
  // the W3C `traceparent` header. Sorted by name; decoders lowercase HTTP
  // header names.
  std::map<std::string, std::string> headers;

  // The payload. std::string is used as a byte container: any bytes, not
  // necessarily text. Empty means "no data" (an event without data and one
  // with empty data are the same Message).
  std::string data;

  // OK, or InvalidArgument naming the first offending attribute or header:
  // "attribute 'source': must not be empty".
  Status Validate() const;

  friend bool operator==(const Message& a, const Message& b) = default;
};

// A one-line, human-readable rendering for logs and test failures (data is
// shown by size only).
std::ostream& operator<<(std::ostream& os, const Message& message);

}  // namespace junction
