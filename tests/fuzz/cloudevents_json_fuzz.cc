// Fuzzes the CloudEvents JSON decoders with a round-trip oracle: every event
// that decodes must encode and decode again to an equal Message, through the
// JSON format, the batch format and both HTTP content modes.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "junction/cloudevents.h"
#include "junction/message.h"
#include "junction/result.h"

namespace {

using junction::Message;
using junction::Result;
namespace ce = junction::cloudevents;

// Re-encoding may legitimately outgrow the input (escapes, Base64, headers),
// so the second decode lifts the size limit; every other limit stays.
ce::DecodeLimits Relaxed() {
  ce::DecodeLimits limits;
  limits.max_input_bytes = std::numeric_limits<std::size_t>::max();
  return limits;
}

// HTTP headers carry no types: binary mode returns extensions as strings.
Message WithStringExtensions(Message m) {
  for (auto& [name, value] : m.extensions) {
    if (const auto* b = std::get_if<bool>(&value)) value = std::string(*b ? "true" : "false");
    if (const auto* i = std::get_if<std::int32_t>(&value)) value = std::to_string(*i);
  }
  return m;
}

void CheckRoundTrips(const Message& m) {
  JUNCTION_CHECK(m.Validate().ok()) << "decoder returned an invalid message: " << m.Validate();

  std::string json = ce::EncodeJson(m);
  Result<Message> from_json = ce::DecodeJson(json, Relaxed());
  JUNCTION_CHECK(from_json.ok()) << from_json.status() << " re-decoding " << json;
  JUNCTION_CHECK(*from_json == m) << "JSON round trip: " << m << " became " << *from_json;

  Result<Message> structured = ce::DecodeHttp(ce::EncodeHttpStructured(m), Relaxed());
  JUNCTION_CHECK(structured.ok()) << structured.status();
  JUNCTION_CHECK(*structured == m) << "structured HTTP: " << m << " became " << *structured;

  Result<Message> binary = ce::DecodeHttp(ce::EncodeHttpBinary(m), Relaxed());
  JUNCTION_CHECK(binary.ok()) << binary.status() << " for " << m;
  // ... unless the data is a CloudEvent itself, which goes structured.
  std::string type = m.datacontenttype.value_or("");
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool nested_event = type.starts_with("application/cloudevents");
  Message expected = nested_event ? m : WithStringExtensions(m);
  JUNCTION_CHECK(*binary == expected) << "binary HTTP: " << expected << " became " << *binary;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  if (Result<Message> m = ce::DecodeJson(input); m.ok()) CheckRoundTrips(*m);

  if (Result<std::vector<Message>> batch = ce::DecodeJsonBatch(input); batch.ok()) {
    for (const Message& m : *batch) CheckRoundTrips(m);
    std::string json = ce::EncodeJsonBatch(*batch);
    Result<std::vector<Message>> again = ce::DecodeJsonBatch(json, Relaxed());
    JUNCTION_CHECK(again.ok()) << again.status() << " re-decoding " << json;
    JUNCTION_CHECK(*again == *batch) << "batch round trip changed " << json;
  }
  return 0;
}
