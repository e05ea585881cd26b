#pragma once

// Helpers shared by config.cc and config_schema.cc. Not part of the API.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "junction/config.h"

namespace junction::config::internal {

// "a.b.c" -> {"a", "b", "c"}, and back.
std::vector<std::string> SplitKey(std::string_view key);
std::string JoinKey(const std::vector<std::string>& segments);
// Whether `segments` match `pattern`, where a "*" segment matches any one.
bool MatchesPattern(const std::vector<std::string>& pattern,
                    const std::vector<std::string>& segments);
// Levenshtein distance, and whether `candidate` is close enough to `typed`
// to be offered as "did you mean".
std::size_t EditDistance(std::string_view a, std::string_view b);
bool CloseEnough(std::string_view typed, std::string_view candidate);
// "\"text\"".
std::string Quote(std::string_view text);
// What a value of `spec` must look like, for messages: "one of a, b, c",
// "an integer in [1, 64]", "a duration like \"250ms\", \"5s\" or \"2m\"".
std::string Describe(const KeySpec& spec);

}  // namespace junction::config::internal
