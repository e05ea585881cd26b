#pragma once

// W3C Trace Context Level 1 (https://www.w3.org/TR/trace-context-1/): the
// `traceparent` and `tracestate` headers that carry a trace from hop to hop
// over HTTP, gRPC metadata and message headers.
//
//   Result<TraceParent> parent = TraceParent::Parse(headers["traceparent"]);
//   TraceParent mine = parent ? parent->Child() : TraceParent::NewRoot(/*sampled=*/false);
//   out["traceparent"] = mine.Format();
//
// All types are values: thread-compatible (const methods may be called from
// any number of threads; mutation needs external synchronisation).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "junction/result.h"
#include "junction/status.h"

namespace junction {
namespace internal {

// Decodes exactly 2 * out.size() lowercase hex digits. False on any other
// character (uppercase included) or length.
bool DecodeLowerHex(std::string_view hex, std::span<std::uint8_t> out);
// Appends 2 * bytes.size() lowercase hex digits to `out`.
void AppendLowerHex(std::span<const std::uint8_t> bytes, std::string& out);
// Fills `out` from a per-thread PRNG seeded from getrandom(2) (reseeded in a
// forked child). Fast, not cryptographic. Never leaves `out` all zero.
void FillRandomNonZero(std::span<std::uint8_t> out);

// An identifier of N bytes, shown as 2N lowercase hex digits. The all-zero
// value (the default) is the spec's "invalid" id.
template <std::size_t N, typename Tag>
class TraceContextId {
 public:
  static constexpr std::size_t kSize = N;
  static constexpr std::size_t kHexSize = 2 * N;
  using Bytes = std::array<std::uint8_t, N>;

  constexpr TraceContextId() = default;  // all zero: invalid
  constexpr explicit TraceContextId(const Bytes& bytes) : bytes_(bytes) {}

  // A fresh random id, never all zero. Thread-safe.
  static TraceContextId Random() {
    TraceContextId id;
    FillRandomNonZero(id.bytes_);
    return id;
  }
  // nullopt unless `hex` is exactly kHexSize lowercase hex digits. An all-zero
  // id is returned as is (check IsValid()).
  static std::optional<TraceContextId> FromHex(std::string_view hex) {
    TraceContextId id;
    if (!DecodeLowerHex(hex, id.bytes_)) return std::nullopt;
    return id;
  }

  // False for the all-zero id.
  constexpr bool IsValid() const {
    for (std::uint8_t b : bytes_) {
      if (b != 0) return true;
    }
    return false;
  }
  std::string ToHex() const {
    std::string out;
    out.reserve(kHexSize);
    AppendLowerHex(bytes_, out);
    return out;
  }
  const Bytes& bytes() const { return bytes_; }

  friend constexpr bool operator==(const TraceContextId&, const TraceContextId&) = default;

 private:
  Bytes bytes_{};
};

}  // namespace internal

// The 16-byte id of a whole trace.
using TraceId = internal::TraceContextId<16, struct TraceIdTag>;
// The 8-byte id of one span (the `parent-id` field of traceparent).
using SpanId = internal::TraceContextId<8, struct SpanIdTag>;

// The `traceparent` header: version-trace_id-parent_id-flags.
// Invariant: trace_id() and parent_id() are valid (not all zero).
class TraceParent {
 public:
  static constexpr std::uint8_t kSampledFlag = 0x01;
  // The flags that version 00 defines; Format() emits only these.
  static constexpr std::uint8_t kDefinedFlags = kSampledFlag;
  // Length of a version-00 header, and the prefix every later version shares.
  static constexpr std::size_t kSize = 55;

  // REQUIRES: trace_id.IsValid() && parent_id.IsValid().
  TraceParent(const TraceId& trace_id, const SpanId& parent_id, std::uint8_t flags);

  // A new trace: random trace-id and parent-id.
  static TraceParent NewRoot(bool sampled);

  // Parses a header value by the spec's rules, including those for versions
  // above 00 (the first 55 characters are read; the rest, after a '-', is
  // ignored). Flags are kept as received, undefined bits included.
  // InvalidArgument naming the fault otherwise ("traceparent: trace-id is all zeros").
  static Result<TraceParent> Parse(std::string_view header);

  // The canonical version-00 form (55 characters), whatever version was parsed;
  // undefined flag bits are cleared.
  std::string Format() const;

  // The context for a child span: same trace-id and flags, a new random parent-id.
  TraceParent Child() const;

  const TraceId& trace_id() const { return trace_id_; }
  const SpanId& parent_id() const { return parent_id_; }
  std::uint8_t flags() const { return flags_; }
  bool sampled() const { return (flags_ & kSampledFlag) != 0; }

  friend bool operator==(const TraceParent&, const TraceParent&) = default;

 private:
  TraceId trace_id_;
  SpanId parent_id_;
  std::uint8_t flags_;
};

// The `tracestate` header: an ordered list of at most 32 vendor entries
// `key=value`, the most recently written first. Invariant: keys are unique
// and every key and value is valid by IsValidKey / IsValidValue.
class TraceState {
 public:
  static constexpr std::size_t kMaxMembers = 32;

  struct Member {
    std::string key;
    std::string value;
    friend bool operator==(const Member&, const Member&) = default;
  };

  TraceState() = default;

  // Parses a (combined) header value. Empty and whitespace-only members are
  // skipped; spaces and tabs around members are ignored. InvalidArgument for a
  // bad key or value, a duplicate key, or more than 32 members.
  static Result<TraceState> Parse(std::string_view header);

  // key = simple-key / tenant-id "@" system-id, as in Level 1:
  //   simple-key: lcalpha then 0..255 of lcalpha / DIGIT / _ - * /
  //   tenant-id:  (lcalpha / DIGIT) then 0..240 of those; system-id: lcalpha then 0..13.
  static bool IsValidKey(std::string_view key);
  // 1..256 chars of 0x20-0x7E except ',' and '=', not ending in a space.
  static bool IsValidValue(std::string_view value);

  // The value for `key`; the view lives until the next mutation.
  std::optional<std::string_view> Get(std::string_view key) const;
  // Inserts or updates `key` and moves it to the front. When that makes 33
  // members, the last (oldest) one is dropped. InvalidArgument if the key or
  // value is invalid (the state is then unchanged).
  Status Put(std::string_view key, std::string_view value);
  // Removes `key`; false if it was absent.
  bool Delete(std::string_view key);

  // "k1=v1,k2=v2"; empty when there are no members.
  std::string Format() const;

  const std::vector<Member>& members() const { return members_; }
  std::size_t size() const { return members_.size(); }
  bool empty() const { return members_.empty(); }

  friend bool operator==(const TraceState&, const TraceState&) = default;

 private:
  std::vector<Member> members_;  // front = most recently put
};

}  // namespace junction
