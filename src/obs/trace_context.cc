#include "junction/trace_context.h"

#include <pthread.h>
#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <utility>

namespace junction {
namespace internal {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int LowerHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::uint64_t SplitMix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t RotateLeft(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Bumped in a forked child so that it does not repeat its parent's ids.
std::atomic<std::uint64_t> fork_generation{0};

void RegisterForkHandlerOnce() {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr,
                   [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
    return true;
  }();
  (void)registered;
}

// xoshiro256** (Blackman & Vigna): fast and statistically sound for ids that
// must be unique, not secret.
class Xoshiro256 {
 public:
  std::uint64_t Next() {
    std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
    if (!seeded_ || generation != generation_) Seed(generation);
    const std::uint64_t result = RotateLeft(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = RotateLeft(s_[3], 45);
    return result;
  }

 private:
  void Seed(std::uint64_t generation) {
    RegisterForkHandlerOnce();
    std::uint64_t seed[4] = {};
    std::size_t filled = 0;
    auto* bytes = reinterpret_cast<unsigned char*>(seed);
    while (filled < sizeof(seed)) {
      ssize_t n = getrandom(bytes + filled, sizeof(seed) - filled, 0);
      if (n > 0) {
        filled += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EINTR) {
        break;
      }
    }
    // Without getrandom (very old kernels, seccomp), mix what differs between
    // threads and runs; ids stay unique in practice, as trace ids need.
    std::uint64_t mix = static_cast<std::uint64_t>(
                            std::chrono::high_resolution_clock::now().time_since_epoch().count()) ^
                        std::hash<std::thread::id>{}(std::this_thread::get_id()) ^
                        reinterpret_cast<std::uintptr_t>(this);
    if (filled < sizeof(seed)) {
      for (std::uint64_t& word : seed) word ^= SplitMix64(mix);
    }
    // Run the seed through SplitMix64 so that the state is never all zero.
    for (int i = 0; i < 4; ++i) {
      std::uint64_t word = seed[i] + static_cast<std::uint64_t>(i);
      s_[i] = SplitMix64(word);
    }
    seeded_ = true;
    generation_ = generation;
  }

  std::uint64_t s_[4] = {};
  bool seeded_ = false;
  std::uint64_t generation_ = 0;
};

thread_local Xoshiro256 rng;

}  // namespace

bool DecodeLowerHex(std::string_view hex, std::span<std::uint8_t> out) {
  if (hex.size() != 2 * out.size()) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    int high = LowerHexValue(hex[2 * i]);
    int low = LowerHexValue(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<std::uint8_t>((high << 4) | low);
  }
  return true;
}

void AppendLowerHex(std::span<const std::uint8_t> bytes, std::string& out) {
  for (std::uint8_t b : bytes) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0x0f]);
  }
}

void FillRandomNonZero(std::span<std::uint8_t> out) {
  if (out.empty()) return;
  bool nonzero = false;
  while (!nonzero) {
    for (std::size_t i = 0; i < out.size(); i += 8) {
      std::uint64_t word = rng.Next();
      std::size_t n = std::min<std::size_t>(8, out.size() - i);
      std::memcpy(out.data() + i, &word, n);
    }
    nonzero = std::any_of(out.begin(), out.end(), [](std::uint8_t b) { return b != 0; });
  }
}

}  // namespace internal

// ---- traceparent ----

namespace {

// Field offsets within the 55-character prefix:
// vv-tttttttttttttttttttttttttttttttt-pppppppppppppppp-ff
constexpr std::size_t kTraceIdPos = 3;
constexpr std::size_t kParentIdPos = kTraceIdPos + TraceId::kHexSize + 1;  // 36
constexpr std::size_t kFlagsPos = kParentIdPos + SpanId::kHexSize + 1;     // 53
static_assert(kFlagsPos + 2 == TraceParent::kSize);

Status TraceParentError(std::string_view what) {
  return InvalidArgumentError("traceparent: " + std::string(what));
}

}  // namespace

TraceParent::TraceParent(const TraceId& trace_id, const SpanId& parent_id, std::uint8_t flags)
    : trace_id_(trace_id), parent_id_(parent_id), flags_(flags) {
  JUNCTION_CHECK(trace_id_.IsValid()) << "TraceParent needs a non-zero trace-id";
  JUNCTION_CHECK(parent_id_.IsValid()) << "TraceParent needs a non-zero parent-id";
}

TraceParent TraceParent::NewRoot(bool sampled) {
  return TraceParent(TraceId::Random(), SpanId::Random(), sampled ? kSampledFlag : 0);
}

Result<TraceParent> TraceParent::Parse(std::string_view header) {
  std::uint8_t version = 0;
  if (header.size() < 3 || !internal::DecodeLowerHex(header.substr(0, 2), {&version, 1}) ||
      header[2] != '-') {
    return TraceParentError("version is not 2 lowercase hex digits followed by '-'");
  }
  if (version == 0xff) return TraceParentError("version ff is invalid");
  if (version == 0x00 && header.size() != kSize) {
    return TraceParentError("version 00 must be 55 characters, got " +
                            std::to_string(header.size()));
  }
  if (header.size() < kSize) {
    return TraceParentError("shorter than 55 characters (" + std::to_string(header.size()) + ")");
  }
  if (header.size() > kSize && header[kSize] != '-') {
    return TraceParentError("trace-flags must be followed by '-' or the end");
  }

  std::optional<TraceId> trace_id = TraceId::FromHex(header.substr(kTraceIdPos, TraceId::kHexSize));
  if (!trace_id) return TraceParentError("trace-id is not 32 lowercase hex digits");
  if (header[kParentIdPos - 1] != '-') return TraceParentError("no '-' after trace-id");
  if (!trace_id->IsValid()) return TraceParentError("trace-id is all zeros");

  std::optional<SpanId> parent_id = SpanId::FromHex(header.substr(kParentIdPos, SpanId::kHexSize));
  if (!parent_id) return TraceParentError("parent-id is not 16 lowercase hex digits");
  if (header[kFlagsPos - 1] != '-') return TraceParentError("no '-' after parent-id");
  if (!parent_id->IsValid()) return TraceParentError("parent-id is all zeros");

  std::uint8_t flags = 0;
  if (!internal::DecodeLowerHex(header.substr(kFlagsPos, 2), {&flags, 1})) {
    return TraceParentError("trace-flags is not 2 lowercase hex digits");
  }
  return TraceParent(*trace_id, *parent_id, flags);
}

std::string TraceParent::Format() const {
  std::string out;
  out.reserve(kSize);
  out.append("00-");
  internal::AppendLowerHex(trace_id_.bytes(), out);
  out.push_back('-');
  internal::AppendLowerHex(parent_id_.bytes(), out);
  out.push_back('-');
  const std::uint8_t flags = flags_ & kDefinedFlags;
  internal::AppendLowerHex({&flags, 1}, out);
  return out;
}

TraceParent TraceParent::Child() const { return TraceParent(trace_id_, SpanId::Random(), flags_); }

// ---- tracestate ----

namespace {

bool IsLcAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsKeyChar(char c) {
  return IsLcAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}
bool IsOws(char c) { return c == ' ' || c == '\t'; }

// `first` then 0..max_rest key characters.
bool IsKeyPart(std::string_view part, bool digit_first, std::size_t max_rest) {
  if (part.empty() || part.size() > 1 + max_rest) return false;
  if (!IsLcAlpha(part[0]) && !(digit_first && IsDigit(part[0]))) return false;
  return std::all_of(part.begin() + 1, part.end(), IsKeyChar);
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// Input echoed in an error message: at most 64 characters, non-printables escaped.
std::string Quote(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  std::string out = "'";
  for (char c : text.substr(0, kMaxShown)) {
    if (c >= 0x20 && c <= 0x7e) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<std::uint8_t>(c);
      out.append("\\x");
      internal::AppendLowerHex({&byte, 1}, out);
    }
  }
  out.append(text.size() > kMaxShown ? "'..." : "'");
  return out;
}

Status TraceStateError(std::string what) {
  return InvalidArgumentError("tracestate: " + std::move(what));
}

}  // namespace

bool TraceState::IsValidKey(std::string_view key) {
  std::size_t at = key.find('@');
  if (at == std::string_view::npos) return IsKeyPart(key, /*digit_first=*/false, 255);
  return IsKeyPart(key.substr(0, at), /*digit_first=*/true, 240) &&
         IsKeyPart(key.substr(at + 1), /*digit_first=*/false, 13);
}

bool TraceState::IsValidValue(std::string_view value) {
  if (value.empty() || value.size() > 256 || value.back() == ' ') return false;
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

Result<TraceState> TraceState::Parse(std::string_view header) {
  TraceState state;
  while (true) {
    std::size_t comma = header.find(',');
    std::string_view member = TrimOws(header.substr(0, comma));
    if (!member.empty()) {
      std::size_t eq = member.find('=');
      if (eq == std::string_view::npos) {
        return TraceStateError("list-member " + Quote(member) + " has no '='");
      }
      std::string_view key = member.substr(0, eq);
      std::string_view value = member.substr(eq + 1);
      if (!IsValidKey(key)) return TraceStateError("invalid key " + Quote(key));
      if (!IsValidValue(value)) {
        return TraceStateError("invalid value for key " + Quote(key));
      }
      if (state.Get(key)) return TraceStateError("duplicate key " + Quote(key));
      if (state.members_.size() == kMaxMembers) {
        return TraceStateError("more than 32 list-members");
      }
      state.members_.push_back(Member{std::string(key), std::string(value)});
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return state;
}

std::optional<std::string_view> TraceState::Get(std::string_view key) const {
  for (const Member& member : members_) {
    if (member.key == key) return std::string_view{member.value};
  }
  return std::nullopt;
}

Status TraceState::Put(std::string_view key, std::string_view value) {
  if (!IsValidKey(key)) return TraceStateError("invalid key " + Quote(key));
  if (!IsValidValue(value)) {
    return TraceStateError("invalid value for key " + Quote(key));
  }
  Delete(key);
  members_.insert(members_.begin(), Member{std::string(key), std::string(value)});
  if (members_.size() > kMaxMembers) members_.pop_back();
  return OkStatus();
}

bool TraceState::Delete(std::string_view key) {
  auto it = std::find_if(members_.begin(), members_.end(),
                         [key](const Member& member) { return member.key == key; });
  if (it == members_.end()) return false;
  members_.erase(it);
  return true;
}

std::string TraceState::Format() const {
  std::string out;
  for (const Member& member : members_) {
    if (!out.empty()) out.push_back(',');
    out.append(member.key);
    out.push_back('=');
    out.append(member.value);
  }
  return out;
}

}  // namespace junction
