#pragma once

// CloudEvents 1.0 codecs for Message: the JSON event format
// (application/cloudevents+json), the JSON batch format
// (application/cloudevents-batch+json) and the HTTP protocol binding (binary,
// structured and batched content modes). Pure functions: no I/O, no state,
// callable from any thread. Every decoder returns only Messages that pass
// Message::Validate(), and is fuzzed (tests/fuzz/cloudevents_json_fuzz.cc).
//
// Mapping of Message fields that CloudEvents does not name directly:
//  * Message::key is the `partitionkey` extension attribute.
//  * Message::headers travel as plain HTTP headers; the JSON formats have no
//    place for them (EncodeJson drops them, DecodeJson returns none).
//  * JSON-valued data is normalised to compact JSON text (see "data" below).
//
// Errors say what is wrong and where, e.g.
//   "event 3: attribute 'time': not an RFC 3339 timestamp: '2018-13-01T...'"
// (batch events count from 0). Oversized input is ResourceExhausted;
// everything else that is not a valid event is InvalidArgument.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "junction/message.h"
#include "junction/result.h"

namespace junction::cloudevents {

inline constexpr std::string_view kJsonMediaType = "application/cloudevents+json";
inline constexpr std::string_view kJsonBatchMediaType = "application/cloudevents-batch+json";

// Bounds on what a decoder accepts, so that hostile input costs bounded memory
// and time. Exceeding one is ResourceExhausted.
struct DecodeLimits {
  // JSON text; for HTTP, the body plus every header name and value.
  std::size_t max_input_bytes = std::size_t{1} << 20;
  std::size_t max_batch_events = 10'000;
  // Nesting of JSON arrays and objects, counting the event object (and a
  // batch's array) itself.
  std::size_t max_depth = 64;
  std::size_t max_extensions = 64;
  // Any one attribute or extension value (not data), after decoding.
  std::size_t max_attribute_bytes = 4096;
};

// ---- JSON event format ----------------------------------------------------
//
// Data (CloudEvents JSON format §3.1):
//  Decoding. `data_base64` is Base64 (RFC 4648, padded) binary. A `data`
//  member under a JSON datacontenttype (*/json, */*+json) or none is a JSON
//  value, stored as its compact JSON text (numbers as written, no whitespace);
//  when datacontenttype is absent it becomes "application/json", as the spec
//  recommends. Under any other datacontenttype `data` must be a JSON string
//  (its UTF-8 bytes are the data) or null (no data). Both `data` and a non-null
//  `data_base64`: an error. A `null` attribute is an absent one.
//  Encoding never changes data bytes. They go into `data` as a JSON value when
//  datacontenttype is JSON and they already are compact JSON (as DecodeJson
//  produces) nested at most max_depth - 2 levels deep; as a JSON string when
//  datacontenttype is not JSON and they are UTF-8 text (no control characters
//  but tab, LF, CR); otherwise — including every message without a
//  datacontenttype — as `data_base64`.

// Decodes one structured-mode event. Errors: malformed JSON, trailing
// characters, duplicate keys, a missing required attribute, a wrong JSON type
// ("attribute 'id': must be a string, not a number"), specversion other than
// "1.0", an invalid extension name or value, bad Base64, and anything that
// Message::Validate() rejects.
Result<Message> DecodeJson(std::string_view json, const DecodeLimits& limits = {});

// Compact JSON. REQUIRES: message.Validate().ok() (otherwise the output is
// something DecodeJson rejects). Drops message.headers.
std::string EncodeJson(const Message& message);

// A JSON array of structured events; the empty array is a valid batch.
Result<std::vector<Message>> DecodeJsonBatch(std::string_view json,
                                             const DecodeLimits& limits = {});
std::string EncodeJsonBatch(std::span<const Message> messages);

// ---- HTTP protocol binding ------------------------------------------------

// An HTTP request or response as far as CloudEvents cares: header fields in
// order (names in any case, repeated names allowed) and the body. Method,
// target and status are the caller's.
struct HttpMessage {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Binary content mode: ce-specversion, ce-id, ce-source, ce-type, then the
// optional attributes, ce-partitionkey (key) and extensions as ce-<name>, all
// percent-encoded per the HTTP binding §3.1.3.2 (space, '"', '%' and every
// byte outside printable ASCII); Content-Type from datacontenttype; then
// message.headers as they are (except ones HTTP itself owns: Content-Length,
// Host, Connection, Transfer-Encoding and the like); body = data.
// A message whose datacontenttype is itself a CloudEvents format
// (application/cloudevents...) cannot be told apart from structured mode by a
// receiver, so it is encoded in structured mode instead.
// REQUIRES: message.Validate().ok().
HttpMessage EncodeHttpBinary(const Message& message);

// Structured content mode: Content-Type application/cloudevents+json, the
// body EncodeJson(message), and message.headers as in binary mode.
HttpMessage EncodeHttpStructured(const Message& message);

// Batched content mode: Content-Type application/cloudevents-batch+json and
// EncodeJsonBatch. Message headers are not carried.
HttpMessage EncodeHttpBatch(std::span<const Message> messages);

// Decodes a binary- or structured-mode event, chosen by Content-Type:
// application/cloudevents+json is structured; another application/cloudevents
// format is Unimplemented; a batch type is an error that points to
// DecodeHttpBatch; anything else is binary mode. Header names are
// case-insensitive. In binary mode, ce- header values are unquoted (RFC 7230
// quoted-string) and percent-decoded and must then be UTF-8, every extension
// comes back as a string (HTTP carries no types), and a missing ce-specversion
// is "not a CloudEvent: no ce-specversion header". In both modes the other
// headers become message.headers (names lower-cased, repeated ones joined with
// ", "), except Content-Type and those HTTP owns (Content-Length, Host,
// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
// Upgrade); structured mode ignores ce- headers.
Result<Message> DecodeHttp(const HttpMessage& http, const DecodeLimits& limits = {});

// Decodes a batched-mode message (Content-Type
// application/cloudevents-batch+json). Headers are not copied into the events.
Result<std::vector<Message>> DecodeHttpBatch(const HttpMessage& http,
                                             const DecodeLimits& limits = {});

}  // namespace junction::cloudevents
