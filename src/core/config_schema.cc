// The schema half of junction/config.h: key specs, value syntax, names.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "core/config_internal.h"
#include "junction/config.h"

namespace junction::config {
namespace internal {

std::vector<std::string> SplitKey(std::string_view key) {
  std::vector<std::string> segments;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = key.find('.', start);
    segments.emplace_back(key.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return segments;
}

std::string JoinKey(const std::vector<std::string>& segments) {
  std::string key;
  for (const std::string& segment : segments) {
    if (!key.empty()) key += '.';
    key += segment;
  }
  return key;
}

bool MatchesPattern(const std::vector<std::string>& pattern,
                    const std::vector<std::string>& segments) {
  if (pattern.size() != segments.size()) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != "*" && pattern[i] != segments[i]) return false;
  }
  return true;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool CloseEnough(std::string_view typed, std::string_view candidate) {
  std::size_t limit = std::clamp<std::size_t>(typed.size() / 3, 1, 3);
  return EditDistance(typed, candidate) <= limit;
}

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string Describe(const KeySpec& spec) {
  switch (spec.type) {
    case Type::kString:
      return "a string";
    case Type::kEnum: {
      std::string out = "one of ";
      for (std::size_t i = 0; i < spec.allowed.size(); ++i) {
        out += (i == 0 ? "" : ", ") + spec.allowed[i];
      }
      return out;
    }
    case Type::kInt:
      if (spec.min == std::numeric_limits<std::int64_t>::min() &&
          spec.max == std::numeric_limits<std::int64_t>::max()) {
        return "an integer";
      }
      return "an integer in [" + std::to_string(spec.min) + ", " + std::to_string(spec.max) + "]";
    case Type::kBool:
      return "true or false";
    case Type::kDouble:
      return "a number";
    case Type::kDuration:
      return "a duration like \"250ms\", \"5s\" or \"2m\"";
    case Type::kByteSize:
      return "a byte size like \"64MiB\" or \"512KB\"";
    case Type::kStringList:
      return "a list of strings";
  }
  return "a value";
}

}  // namespace internal

namespace {

using internal::Quote;
using Nanos = std::chrono::nanoseconds;

struct Unit {
  std::string_view suffix;
  std::uint64_t factor;
};

// Longest suffixes first so that "ms" is not read as "m" + "s".
constexpr Unit kDurationUnits[] = {{"ns", 1},
                                   {"us", 1'000},
                                   {"ms", 1'000'000},
                                   {"s", 1'000'000'000},
                                   {"m", 60'000'000'000},
                                   {"h", 3'600'000'000'000}};
constexpr Unit kByteUnits[] = {{"KiB", 1ULL << 10},
                               {"MiB", 1ULL << 20},
                               {"GiB", 1ULL << 30},
                               {"TiB", 1ULL << 40},
                               {"KB", 1'000},
                               {"MB", 1'000'000},
                               {"GB", 1'000'000'000},
                               {"TB", 1'000'000'000'000},
                               {"B", 1}};

// Reads leading digits of `text` into `value`; returns how many were read.
std::size_t ReadDigits(std::string_view text, std::uint64_t& value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc()) return ec == std::errc::result_out_of_range ? std::string_view::npos : 0;
  return static_cast<std::size_t>(end - text.data());
}

// "1m30s", "250ms"; "0" alone is allowed.
std::optional<Nanos> ParseDuration(std::string_view text) {
  if (text == "0") return Nanos(0);
  if (text.empty()) return std::nullopt;
  std::uint64_t total = 0;
  while (!text.empty()) {
    std::uint64_t number = 0;
    std::size_t digits = ReadDigits(text, number);
    if (digits == 0 || digits == std::string_view::npos) return std::nullopt;
    text.remove_prefix(digits);
    const Unit* unit = nullptr;
    for (const Unit& u : kDurationUnits) {
      if (text.starts_with(u.suffix) &&
          (unit == nullptr || u.suffix.size() > unit->suffix.size())) {
        unit = &u;
      }
    }
    if (unit == nullptr) return std::nullopt;
    text.remove_prefix(unit->suffix.size());
    constexpr std::uint64_t kMax = std::numeric_limits<std::int64_t>::max();
    if (number > (kMax - total) / unit->factor) return std::nullopt;
    total += number * unit->factor;
  }
  return Nanos(static_cast<std::int64_t>(total));
}

std::optional<ByteSize> ParseByteSize(std::string_view text) {
  std::uint64_t number = 0;
  std::size_t digits = ReadDigits(text, number);
  if (digits == 0 || digits == std::string_view::npos) return std::nullopt;
  std::string_view suffix = text.substr(digits);
  if (suffix.empty()) return ByteSize{number};
  for (const Unit& unit : kByteUnits) {
    if (suffix != unit.suffix) continue;
    if (number > std::numeric_limits<std::uint64_t>::max() / unit.factor) return std::nullopt;
    return ByteSize{number * unit.factor};
  }
  return std::nullopt;
}

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool IsValidSegment(std::string_view segment) {
  if (segment == "*") return true;
  if (segment.empty()) return false;
  return std::all_of(segment.begin(), segment.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Whether some string matches both glob patterns, where '*' stands for one or
// more characters (environment names of wildcard keys).
bool GlobsOverlap(std::string_view p, std::string_view q) {
  // Expand '*' to "?*" (one character, then any number) and search the
  // product automaton: dp[i][j] = suffixes p[i:] and q[j:] can match.
  auto expand = [](std::string_view s) {
    std::string out;
    for (char c : s) out += c == '*' ? std::string("?*") : std::string(1, c);
    return out;
  };
  std::string a = expand(p);
  std::string b = expand(q);
  std::vector<std::vector<char>> dp(a.size() + 1, std::vector<char>(b.size() + 1, 0));
  dp[a.size()][b.size()] = 1;
  for (std::size_t i = a.size() + 1; i-- > 0;) {
    for (std::size_t j = b.size() + 1; j-- > 0;) {
      if (i == a.size() && j == b.size()) continue;
      bool match = false;
      if (i < a.size() && a[i] == '*') match = dp[i + 1][j] || (j < b.size() && dp[i][j + 1]);
      if (!match && j < b.size() && b[j] == '*')
        match = dp[i][j + 1] || (i < a.size() && dp[i + 1][j]);
      if (!match && i < a.size() && j < b.size() && a[i] != '*' && b[j] != '*') {
        match = (a[i] == b[j] || a[i] == '?' || b[j] == '?') && dp[i + 1][j + 1];
      }
      dp[i][j] = match;
    }
  }
  return dp[0][0] != 0;
}

// Whether one key's segments are a proper prefix of the other's: then one of
// them would have to be both a value and a table.
bool IsTablePrefix(const std::vector<std::string>& shorter,
                   const std::vector<std::string>& longer) {
  if (shorter.size() >= longer.size()) return false;
  for (std::size_t i = 0; i < shorter.size(); ++i) {
    if (shorter[i] != "*" && longer[i] != "*" && shorter[i] != longer[i]) return false;
  }
  return true;
}

Status CheckDefault(const KeySpec& spec) {
  Type type = spec.type;
  const Value& v = spec.default_value;
  bool ok = false;
  switch (type) {
    case Type::kString:
      ok = std::holds_alternative<std::string>(v);
      break;
    case Type::kEnum:
      ok = std::holds_alternative<std::string>(v) && !spec.allowed.empty() &&
           std::find(spec.allowed.begin(), spec.allowed.end(), std::get<std::string>(v)) !=
               spec.allowed.end();
      break;
    case Type::kInt:
      ok = std::holds_alternative<std::int64_t>(v) && spec.min <= std::get<std::int64_t>(v) &&
           std::get<std::int64_t>(v) <= spec.max;
      break;
    case Type::kBool:
      ok = std::holds_alternative<bool>(v);
      break;
    case Type::kDouble:
      ok = std::holds_alternative<double>(v);
      break;
    case Type::kDuration:
      ok = std::holds_alternative<Nanos>(v) && std::get<Nanos>(v).count() >= 0;
      break;
    case Type::kByteSize:
      ok = std::holds_alternative<ByteSize>(v);
      break;
    case Type::kStringList:
      ok = std::holds_alternative<std::vector<std::string>>(v);
      break;
  }
  if (!ok) return InvalidArgumentError("config key '" + spec.name + "': invalid default value");
  return OkStatus();
}

KeySpec MakeSpec(std::string name, Type type, Value value, std::string description) {
  KeySpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.default_value = std::move(value);
  spec.description = std::move(description);
  return spec;
}

}  // namespace

KeySpec StringKey(std::string name, std::string default_value, std::string description) {
  return MakeSpec(std::move(name), Type::kString, std::move(default_value), std::move(description));
}
KeySpec IntKey(std::string name, std::int64_t default_value, std::int64_t min, std::int64_t max,
               std::string description) {
  KeySpec spec = MakeSpec(std::move(name), Type::kInt, default_value, std::move(description));
  spec.min = min;
  spec.max = max;
  return spec;
}
KeySpec BoolKey(std::string name, bool default_value, std::string description) {
  return MakeSpec(std::move(name), Type::kBool, default_value, std::move(description));
}
KeySpec DoubleKey(std::string name, double default_value, std::string description) {
  return MakeSpec(std::move(name), Type::kDouble, default_value, std::move(description));
}
KeySpec DurationKey(std::string name, Nanos default_value, std::string description) {
  return MakeSpec(std::move(name), Type::kDuration, default_value, std::move(description));
}
KeySpec ByteSizeKey(std::string name, std::uint64_t default_bytes, std::string description) {
  return MakeSpec(std::move(name), Type::kByteSize, ByteSize{default_bytes},
                  std::move(description));
}
KeySpec EnumKey(std::string name, std::string default_value, std::vector<std::string> allowed,
                std::string description) {
  KeySpec spec =
      MakeSpec(std::move(name), Type::kEnum, std::move(default_value), std::move(description));
  spec.allowed = std::move(allowed);
  return spec;
}
KeySpec StringListKey(std::string name, std::vector<std::string> default_value,
                      std::string description) {
  return MakeSpec(std::move(name), Type::kStringList, std::move(default_value),
                  std::move(description));
}

std::string EnvVarName(std::string_view key) {
  std::string name = "JUNCTION_";
  for (char c : key) {
    name += c == '.' ? '_' : (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  return name;
}

Result<Value> ParseValue(const KeySpec& spec, std::string_view text) {
  auto expected = [&] {
    return InvalidArgumentError("expected " + internal::Describe(spec) + "; got " + Quote(text));
  };
  switch (spec.type) {
    case Type::kString:
      return Value(std::string(text));
    case Type::kEnum:
      if (std::find(spec.allowed.begin(), spec.allowed.end(), text) == spec.allowed.end()) {
        return expected();
      }
      return Value(std::string(text));
    case Type::kInt: {
      std::int64_t n = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec != std::errc() || end != text.data() + text.size() || n < spec.min || n > spec.max) {
        return expected();
      }
      return Value(n);
    }
    case Type::kBool:
      if (text == "true" || text == "1") return Value(true);
      if (text == "false" || text == "0") return Value(false);
      return expected();
    case Type::kDouble: {
      double d = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
      if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(d)) {
        return expected();
      }
      return Value(d);
    }
    case Type::kDuration:
      if (std::optional<Nanos> d = ParseDuration(text)) return Value(*d);
      return expected();
    case Type::kByteSize:
      if (std::optional<ByteSize> b = ParseByteSize(text)) return Value(*b);
      return expected();
    case Type::kStringList: {
      std::vector<std::string> items;
      if (Trim(text).empty()) return Value(items);
      std::size_t start = 0;
      while (true) {
        std::size_t comma = text.find(',', start);
        items.emplace_back(Trim(text.substr(start, comma - start)));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
      return Value(std::move(items));
    }
  }
  return InternalError("unknown config type");
}

std::string FormatValue(const Value& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, double>) {
          char buffer[32];
          auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
          return std::string(buffer, ec == std::errc() ? end : buffer);
        } else if constexpr (std::is_same_v<T, Nanos>) {
          if (v.count() == 0) return "0s";
          auto count = static_cast<std::uint64_t>(v.count());
          for (auto it = std::rbegin(kDurationUnits); it != std::rend(kDurationUnits); ++it) {
            if (count % it->factor == 0)
              return std::to_string(count / it->factor) + std::string(it->suffix);
          }
          return std::to_string(v.count()) + "ns";
        } else if constexpr (std::is_same_v<T, ByteSize>) {
          for (int i = 3; i >= 0; --i) {  // TiB down to KiB
            const Unit& unit = kByteUnits[i];
            if (v.bytes != 0 && v.bytes % unit.factor == 0) {
              return std::to_string(v.bytes / unit.factor) + std::string(unit.suffix);
            }
          }
          return std::to_string(v.bytes) + "B";
        } else {
          return Join(v, ",");
        }
      },
      value);
}

Status Schema::Add(KeySpec spec) {
  std::vector<std::string> segments = internal::SplitKey(spec.name);
  bool valid =
      segments.front() != "*" && std::all_of(segments.begin(), segments.end(), IsValidSegment);
  if (!valid) return InvalidArgumentError("malformed config key '" + spec.name + "'");
  JUNCTION_RETURN_IF_ERROR(CheckDefault(spec));
  std::string env = EnvVarName(spec.name);
  for (const KeySpec& other : keys_) {
    std::vector<std::string> other_segments = internal::SplitKey(other.name);
    if (other.name == spec.name) {
      return InvalidArgumentError("config key '" + spec.name + "' is registered twice");
    }
    if (GlobsOverlap(env, EnvVarName(other.name))) {
      return InvalidArgumentError("config keys '" + other.name + "' and '" + spec.name +
                                  "' both map to environment variable " + env);
    }
    if (IsTablePrefix(segments, other_segments) || IsTablePrefix(other_segments, segments)) {
      return InvalidArgumentError("config key '" + spec.name + "' conflicts with '" + other.name +
                                  "' (a key cannot also be a table)");
    }
  }
  keys_.push_back(std::move(spec));
  return OkStatus();
}

const KeySpec* Schema::Find(std::string_view key) const {
  std::vector<std::string> segments = internal::SplitKey(key);
  for (const KeySpec& spec : keys_) {
    if (internal::MatchesPattern(internal::SplitKey(spec.name), segments)) return &spec;
  }
  return nullptr;
}

std::string Schema::Suggest(std::string_view key) const {
  std::vector<std::string> segments = internal::SplitKey(key);
  std::string best;
  std::size_t best_distance = std::string::npos;
  for (const KeySpec& spec : keys_) {
    // Fill the wildcards with what the user typed so they do not count.
    std::vector<std::string> candidate = internal::SplitKey(spec.name);
    for (std::size_t i = 0; i < candidate.size() && i < segments.size(); ++i) {
      if (candidate[i] == "*") candidate[i] = segments[i];
    }
    std::string name = internal::JoinKey(candidate);
    std::size_t distance = internal::EditDistance(key, name);
    if (internal::CloseEnough(key, name) && distance < best_distance) {
      best = name;
      best_distance = distance;
    }
  }
  return best;
}

Status AddCoreKeys(Schema& schema) {
  JUNCTION_RETURN_IF_ERROR(schema.Add(
      EnumKey("log.level", "info", {"trace", "debug", "info", "warn", "error", "critical", "off"},
              "lowest level of log lines written")));
  JUNCTION_RETURN_IF_ERROR(
      schema.Add(EnumKey("log.format", "auto", {"auto", "json", "text"},
                         "log line format; auto is text on a terminal, JSON otherwise")));
  return schema.Add(StringKey("service.name", "junction", "service name written in log lines"));
}

}  // namespace junction::config
