#pragma once

// Byte and text helpers shared by the CloudEvents codecs: UTF-8 checks,
// Base64 (RFC 4648), the percent-encoding of the CloudEvents HTTP binding,
// media types and quoting for error messages. Pure functions.

#include <optional>
#include <string>
#include <string_view>

#include "core/text.h"

namespace junction::cloudevents::internal {

// From core: well-formed UTF-8, and quoting of values in error messages.
using text::IsValidUtf8;
using text::Quote;

// True when `bytes` is text that a JSON string carries without blowing up:
// valid UTF-8 with no control characters other than tab, LF and CR.
bool IsText(std::string_view bytes);

// Standard Base64 alphabet with '=' padding.
std::string Base64Encode(std::string_view bytes);
// nullopt unless `text` is padded standard Base64 (no whitespace).
std::optional<std::string> Base64Decode(std::string_view text);

// CloudEvents HTTP binding §3.1.3.2: every byte outside U+0021..U+007E, and
// space, '"' and '%', becomes %XX (upper-case hex).
std::string PercentEncode(std::string_view value);
// One round of percent-decoding; nullopt when a '%' is not followed by two
// hex digits.
std::optional<std::string> PercentDecode(std::string_view value);

// ASCII lower case.
std::string ToLower(std::string_view s);
// `s` without leading and trailing spaces and tabs.
std::string_view TrimWhitespace(std::string_view s);

// The media type without parameters, trimmed and lower-cased:
// "Application/JSON; charset=utf-8" -> "application/json".
std::string MediaTypeEssence(std::string_view content_type);
// JSON-formatted content per the CloudEvents JSON format §3.1.1: the essence
// has the form */json or */*+json.
bool IsJsonMediaType(std::string_view content_type);

}  // namespace junction::cloudevents::internal
