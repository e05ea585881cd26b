#pragma once

// Text helpers every module shares: UTF-8 decoding, JSON string escaping and
// quoting of untrusted values for error messages. Pure functions.

#include <cstddef>
#include <string>
#include <string_view>

namespace junction::text {

// Decodes the UTF-8 sequence at s[i] into `cp` and advances `i`. False (and
// `i` unchanged) for anything that is not well-formed UTF-8: overlong forms,
// surrogates, code points above U+10FFFF, truncated sequences.
// REQUIRES: i < s.size().
bool NextCodePoint(std::string_view s, std::size_t& i, char32_t& cp);

bool IsValidUtf8(std::string_view s);

// Appends `s` as the inside of a JSON string: quotes, backslashes and control
// characters escaped, each byte of ill-formed UTF-8 replaced by U+FFFD, so
// the output is always valid JSON whatever the input.
void AppendJsonEscaped(std::string& out, std::string_view s);

// 'value' for an error message: cut to 64 bytes (then "..."), bytes outside
// printable ASCII as \xNN, so that the message stays one printable line.
std::string Quote(std::string_view value);

}  // namespace junction::text
