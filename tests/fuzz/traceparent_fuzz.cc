// Parses arbitrary bytes as a traceparent and as a tracestate header. Oracles:
// whatever parses re-parses from its own Format() to the same value, a
// canonical version-00 input formats back to itself, and a tracestate rebuilt
// with Put() equals the parsed one.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "junction/result.h"
#include "junction/trace_context.h"

namespace junction {
namespace {

void CheckTraceParent(std::string_view input) {
  Result<TraceParent> parsed = TraceParent::Parse(input);
  if (!parsed.ok()) {
    JUNCTION_CHECK(parsed.status().code() == StatusCode::kInvalidArgument) << parsed.status();
    return;
  }
  const std::string formatted = parsed->Format();
  JUNCTION_CHECK(formatted.size() == TraceParent::kSize) << formatted;
  Result<TraceParent> again = TraceParent::Parse(formatted);
  JUNCTION_CHECK(again.ok()) << formatted << ": " << again.status();
  const TraceParent expected(
      parsed->trace_id(), parsed->parent_id(),
      static_cast<std::uint8_t>(parsed->flags() & TraceParent::kDefinedFlags));
  JUNCTION_CHECK(*again == expected) << formatted;
  JUNCTION_CHECK(again->Format() == formatted) << formatted;
  if (input.starts_with("00") && (parsed->flags() & ~TraceParent::kDefinedFlags) == 0) {
    JUNCTION_CHECK(formatted == input) << formatted;
  }
}

void CheckTraceState(std::string_view input) {
  Result<TraceState> parsed = TraceState::Parse(input);
  if (!parsed.ok()) {
    JUNCTION_CHECK(parsed.status().code() == StatusCode::kInvalidArgument) << parsed.status();
    return;
  }
  JUNCTION_CHECK(parsed->size() <= TraceState::kMaxMembers);
  std::set<std::string_view> keys;
  TraceState rebuilt;
  for (auto it = parsed->members().rbegin(); it != parsed->members().rend(); ++it) {
    JUNCTION_CHECK(TraceState::IsValidKey(it->key)) << it->key;
    JUNCTION_CHECK(TraceState::IsValidValue(it->value)) << it->value;
    JUNCTION_CHECK(keys.insert(it->key).second) << "duplicate " << it->key;
    JUNCTION_CHECK(rebuilt.Put(it->key, it->value).ok()) << it->key;
  }
  JUNCTION_CHECK(rebuilt == *parsed) << input;

  const std::string formatted = parsed->Format();
  Result<TraceState> again = TraceState::Parse(formatted);
  JUNCTION_CHECK(again.ok()) << formatted << ": " << again.status();
  JUNCTION_CHECK(*again == *parsed) << formatted;
  JUNCTION_CHECK(again->Format() == formatted) << formatted;
}

}  // namespace
}  // namespace junction

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  junction::CheckTraceParent(input);
  junction::CheckTraceState(input);
  return 0;
}
