#pragma once

// Byte and text helpers shared by the CloudEvents codecs: UTF-8 checks,
// Base64 (RFC 4648), the percent-encoding of the CloudEvents HTTP binding,
// media types and quoting for error messages. Pure functions.

#include <optional>
#include <string>
#include <string_view>

namespace junction::cloudevents::internal {

// True when `bytes` is well-formed UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

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

// 'value' cut to 64 bytes, non-printable bytes as \xNN: safe to put in an
// error message.
std::string Quote(std::string_view value);

}  // namespace junction::cloudevents::internal
