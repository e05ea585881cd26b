#pragma once

// A strict, streaming JSON reader for the CloudEvents JSON formats, built on
// Boost.JSON's SAX parser (kept out of this header). Unlike a DOM parse it
// rejects duplicate object keys at any depth, reports where input went wrong,
// and returns each event's members with nested values (such as `data`) as
// canonical compact JSON text:
//   * no whitespace between tokens;
//   * numbers exactly as written;
//   * strings re-escaped: '"', '\\' and control characters (\b \f \n \r \t,
//     others as \u00xx); everything else, non-ASCII included, as raw UTF-8.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "junction/result.h"

namespace junction::cloudevents::internal {

enum class JsonKind { kNull, kBool, kNumber, kString, kObject, kArray };

// "a string", "an object", ... for error messages.
std::string_view JsonKindName(JsonKind kind);

// One member of an event object.
struct JsonMember {
  std::string key;
  JsonKind kind = JsonKind::kNull;
  bool boolean = false;  // kBool
  std::string string;    // kString: the decoded string
  std::string compact;   // every kind: the value as canonical compact JSON
};

using JsonEvent = std::vector<JsonMember>;

enum class JsonShape {
  kEvent,  // one JSON object
  kBatch,  // a JSON array of objects
};

struct JsonReadLimits {
  std::size_t max_depth;   // nesting of arrays and objects, outermost included
  std::size_t max_events;  // kBatch only
};

// Reads `json` as one event (kEvent: a result of size 1) or a batch. Errors:
// InvalidArgument for malformed JSON ("malformed JSON at byte 17: syntax
// error"), trailing characters, a wrong shape or a duplicate key;
// ResourceExhausted past a limit. In a batch, messages start "event N: "
// (N counts from 0).
Result<std::vector<JsonEvent>> ReadJsonEvents(std::string_view json, JsonShape shape,
                                              const JsonReadLimits& limits);

// The canonical compact form of `json`, or nullopt unless it is exactly one
// valid JSON value with unique keys nested at most `max_depth` deep.
std::optional<std::string> CompactJson(std::string_view json, std::size_t max_depth);

// Appends `s` to `out` as a JSON string literal, escaped as described above.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace junction::cloudevents::internal
