#include "junction/message.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "core/text.h"

namespace junction {
namespace {

using std::chrono::nanoseconds;

using text::NextCodePoint;
using text::Quote;

// The length of the printable ASCII (0x20..0x7e) that `s` starts with,
// eight bytes at a time: a word holds a byte below 0x20 iff subtracting
// 0x20 from every byte borrows into the high bit of a byte whose own high
// bit is clear, and a byte above 0x7e iff adding 1 to every byte sets a
// high bit or one was set already (both exact as existence tests).
std::size_t PrintableAsciiPrefix(std::string_view s) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kHighBits = 0x8080808080808080;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, sizeof w);
    std::uint64_t below = (w - kOnes * 0x20) & ~w & kHighBits;
    std::uint64_t above = ((w + kOnes) | w) & kHighBits;
    if ((below | above) != 0) break;
  }
  while (i < s.size() && s[i] >= 0x20 && s[i] < 0x7f) ++i;
  return i;
}

// A CloudEvents String: UTF-8 without control characters or noncharacters.
Status CheckString(std::string_view what, std::string_view value) {
  // Printable ASCII (the usual case) is valid as it is: skip it undecoded.
  std::size_t i = PrintableAsciiPrefix(value);
  while (i < value.size()) {
    char32_t cp;
    if (!NextCodePoint(value, i, cp)) {
      return InvalidArgumentError(std::string(what) + ": not valid UTF-8: " + Quote(value));
    }
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
      return InvalidArgumentError(std::string(what) +
                                  ": contains a control character: " + Quote(value));
    }
    if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe) {
      return InvalidArgumentError(std::string(what) +
                                  ": contains a Unicode noncharacter: " + Quote(value));
    }
  }
  return OkStatus();
}

Status CheckNonEmptyString(std::string_view what, std::string_view value) {
  if (value.empty()) return InvalidArgumentError(std::string(what) + ": must not be empty");
  return CheckString(what, value);
}

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A table of the ASCII characters in `set` plus letters and digits.
struct CharClass {
  std::array<bool, 256> in{};
  explicit constexpr CharClass(std::string_view set) {
    for (char c = 'a'; c <= 'z'; ++c) in[static_cast<unsigned char>(c)] = true;
    for (char c = 'A'; c <= 'Z'; ++c) in[static_cast<unsigned char>(c)] = true;
    for (char c = '0'; c <= '9'; ++c) in[static_cast<unsigned char>(c)] = true;
    for (char c : set) in[static_cast<unsigned char>(c)] = true;
  }
  constexpr bool operator()(char c) const { return in[static_cast<unsigned char>(c)]; }
};

// RFC 7230 tchar.
constexpr CharClass IsTokenChar("!#$%&'*+-.^_`|~");

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// What each byte is to CheckUri: RFC 3986 unreserved, gen-delims and
// sub-delims are every character a URI may hold outside a
// percent-encoding; ':', '/', '?' and '#' also end a scheme, and '#' starts
// the fragment.
enum class UriByte : std::uint8_t { kNotAllowed, kPlain, kEndsScheme, kHash, kPercent };
struct UriBytes {
  std::array<UriByte, 256> of{};
  constexpr UriBytes() {
    for (char c = 'a'; c <= 'z'; ++c) of[static_cast<unsigned char>(c)] = UriByte::kPlain;
    for (char c = 'A'; c <= 'Z'; ++c) of[static_cast<unsigned char>(c)] = UriByte::kPlain;
    for (char c = '0'; c <= '9'; ++c) of[static_cast<unsigned char>(c)] = UriByte::kPlain;
    for (char c : std::string_view("-._~[]@!$&'()*+,;=")) {
      of[static_cast<unsigned char>(c)] = UriByte::kPlain;
    }
    for (char c : std::string_view(":/?")) of[static_cast<unsigned char>(c)] = UriByte::kEndsScheme;
    of['#'] = UriByte::kHash;
    of['%'] = UriByte::kPercent;
  }
  UriByte operator()(char c) const { return of[static_cast<unsigned char>(c)]; }
};
constexpr UriBytes kUriBytes;

// One pass: the characters, the percent-encodings, the number of '#', and
// where the scheme would end. A colon before the first '/', '?' or '#' must
// end a scheme (RFC 3986 §3.1): "a b:c" is no URI-reference at all.
Status CheckUri(std::string_view what, std::string_view value, bool absolute) {
  if (value.empty()) return InvalidArgumentError(std::string(what) + ": must not be empty");
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError(std::string(what) + ": not a " +
                                (absolute ? "URI" : "URI-reference") + " (" + std::string(why) +
                                "): " + Quote(value));
  };
  std::size_t hashes = 0;
  std::size_t scheme_end = std::string_view::npos;  // the first of ":/?#"
  for (std::size_t i = 0; i < value.size(); ++i) {
    switch (kUriBytes(value[i])) {
      case UriByte::kPlain:
        break;
      case UriByte::kHash:
        ++hashes;
        [[fallthrough]];
      case UriByte::kEndsScheme:
        if (scheme_end == std::string_view::npos) scheme_end = i;
        break;
      case UriByte::kPercent:
        if (i + 2 >= value.size() || !IsHex(value[i + 1]) || !IsHex(value[i + 2])) {
          return bad("'%' not followed by two hex digits");
        }
        i += 2;
        break;
      case UriByte::kNotAllowed:
        return bad("character not allowed in a URI");
    }
  }
  if (hashes > 1) return bad("more than one '#'");
  bool has_scheme = scheme_end != std::string_view::npos && value[scheme_end] == ':';
  if (has_scheme) {
    std::string_view scheme = value.substr(0, scheme_end);
    bool valid = !scheme.empty() && IsAlpha(scheme[0]);
    for (char c : scheme) {
      if (!IsAlpha(c) && !IsDigit(c) && c != '+' && c != '-' && c != '.') valid = false;
    }
    if (!valid) return bad("malformed scheme");
  }
  if (absolute && !has_scheme) return bad("no scheme");
  return OkStatus();
}

// RFC 2046: type "/" subtype, then optional ";" parameters (not inspected).
Status CheckMediaType(std::string_view what, std::string_view value) {
  JUNCTION_RETURN_IF_ERROR(CheckNonEmptyString(what, value));
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) {
      return InvalidArgumentError(std::string(what) +
                                  ": a media type is printable ASCII: " + Quote(value));
    }
  }
  if (value.front() == ' ' || value.back() == ' ') {
    return InvalidArgumentError(std::string(what) + ": leading or trailing space: " + Quote(value));
  }
  std::string_view essence = value.substr(0, value.find(';'));
  while (!essence.empty() && (essence.back() == ' ' || essence.back() == '\t')) {
    essence.remove_suffix(1);
  }
  std::size_t slash = essence.find('/');
  if (slash == std::string_view::npos || !IsToken(essence.substr(0, slash)) ||
      !IsToken(essence.substr(slash + 1))) {
    return InvalidArgumentError(std::string(what) +
                                ": not a media type of the form type/subtype: " + Quote(value));
  }
  return OkStatus();
}

constexpr std::array<std::string_view, 10> kReservedNames = {
    "id",   "source", "specversion",     "type",       "subject",
    "time", "data",   "datacontenttype", "dataschema", "partitionkey"};

Status CheckExtension(const std::string& name, const ExtensionValue& value) {
  std::string what = "attribute " + Quote(name);
  bool valid = !name.empty();
  for (char c : name) valid = valid && ((c >= 'a' && c <= 'z') || IsDigit(c));
  if (!valid) return InvalidArgumentError(what + ": not a valid extension name (only a-z and 0-9)");
  for (std::string_view reserved : kReservedNames) {
    if (name == reserved) {
      return InvalidArgumentError(
          what + (name == "partitionkey"
                      ? ": not an extension here; set Message::key instead"
                      : ": not an extension; this name belongs to the context attribute"));
    }
  }
  if (const auto* s = std::get_if<std::string>(&value)) return CheckString(what, *s);
  return OkStatus();
}

Status CheckHeader(const std::string& name, const std::string& value) {
  if (!IsToken(name)) {
    return InvalidArgumentError("header " + Quote(name) + ": name is not an HTTP token");
  }
  if (name.size() >= 3 && (name[0] == 'c' || name[0] == 'C') &&
      (name[1] == 'e' || name[1] == 'E') && name[2] == '-') {
    return InvalidArgumentError("header " + Quote(name) +
                                ": the ce- prefix is reserved for CloudEvents attributes");
  }
  for (char c : value) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
      return InvalidArgumentError("header " + Quote(name) +
                                  ": value contains a control character: " + Quote(value));
    }
  }
  return OkStatus();
}

// Reads exactly `width` digits at text[pos].
bool ReadDigits(std::string_view text, std::size_t pos, std::size_t width, int& out) {
  if (pos + width > text.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    if (!IsDigit(text[i])) return false;
    out = out * 10 + (text[i] - '0');
  }
  return true;
}

}  // namespace

Result<Timestamp> ParseRfc3339(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("not an RFC 3339 timestamp: " + Quote(text) + " (" +
                                std::string(why) + ")");
  };
  int year, month, day, hour, minute, second;
  if (!ReadDigits(text, 0, 4, year) || text.size() < 5 || text[4] != '-' ||
      !ReadDigits(text, 5, 2, month) || text.size() < 8 || text[7] != '-' ||
      !ReadDigits(text, 8, 2, day)) {
    return bad("expected YYYY-MM-DD");
  }
  if (text.size() < 11 || (text[10] != 'T' && text[10] != 't')) return bad("expected 'T'");
  if (!ReadDigits(text, 11, 2, hour) || text.size() < 14 || text[13] != ':' ||
      !ReadDigits(text, 14, 2, minute) || text.size() < 17 || text[16] != ':' ||
      !ReadDigits(text, 17, 2, second)) {
    return bad("expected hh:mm:ss");
  }
  std::size_t pos = 19;
  std::int64_t nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    std::size_t digits = 0;
    for (++pos; pos < text.size() && IsDigit(text[pos]); ++pos, ++digits) {
      if (digits < 9) nanos = nanos * 10 + (text[pos] - '0');
    }
    if (digits == 0) return bad("no digits after '.'");
    for (; digits < 9; ++digits) nanos *= 10;
  }
  int offset_seconds = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int offset_hour, offset_minute;
    if (!ReadDigits(text, pos + 1, 2, offset_hour) || text.size() < pos + 4 ||
        text[pos + 3] != ':' || !ReadDigits(text, pos + 4, 2, offset_minute)) {
      return bad("expected a zone offset +hh:mm");
    }
    if (offset_hour > 23 || offset_minute > 59) return bad("zone offset out of range");
    offset_seconds = (offset_hour * 3600 + offset_minute * 60) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad("expected 'Z' or a zone offset");
  }
  if (pos != text.size()) return bad("unexpected characters after the zone");
  if (month < 1 || month > 12) return bad("month out of range");
  std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(month),
                                   std::chrono::day(day)};
  if (!date.ok()) return bad("day out of range");
  if (hour > 23 || minute > 59) return bad("time of day out of range");
  if (second == 60) return bad("leap seconds are not supported");
  if (second > 59) return bad("second out of range");

  std::int64_t seconds =
      std::int64_t{std::chrono::sys_days(date).time_since_epoch().count()} * 86400 + hour * 3600 +
      minute * 60 + second - offset_seconds;
  if (seconds < 0 && nanos > 0) {  // keep the product in range near Timestamp::min()
    seconds += 1;
    nanos -= 1'000'000'000;
  }
  std::int64_t total;
  if (__builtin_mul_overflow(seconds, std::int64_t{1'000'000'000}, &total) ||
      __builtin_add_overflow(total, nanos, &total)) {
    return bad("outside the range 1677..2262 that a nanosecond timestamp holds");
  }
  return Timestamp(nanoseconds(total));
}

std::string FormatRfc3339(Timestamp t) {
  // Integer arithmetic throughout: near Timestamp::min() the start of the day
  // is not representable in nanoseconds.
  constexpr std::int64_t kNanosPerSecond = 1'000'000'000;
  constexpr std::int64_t kSecondsPerDay = 86'400;
  std::int64_t count = t.time_since_epoch().count();
  std::int64_t seconds = count / kNanosPerSecond;
  std::int64_t fraction = count % kNanosPerSecond;
  if (fraction < 0) fraction += kNanosPerSecond, seconds -= 1;
  std::int64_t days = seconds / kSecondsPerDay;
  std::int64_t second_of_day = seconds % kSecondsPerDay;
  if (second_of_day < 0) second_of_day += kSecondsPerDay, days -= 1;
  std::chrono::year_month_day date{std::chrono::sys_days(std::chrono::days(days))};
  std::array<char, 48> buf;
  int n = std::snprintf(buf.data(), buf.size(), "%04d-%02u-%02uT%02d:%02d:%02d",
                        static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                        static_cast<unsigned>(date.day()), static_cast<int>(second_of_day / 3600),
                        static_cast<int>(second_of_day / 60 % 60),
                        static_cast<int>(second_of_day % 60));
  std::string out(buf.data(), static_cast<std::size_t>(n));
  if (fraction != 0) {
    std::snprintf(buf.data(), buf.size(), ".%09lld", static_cast<long long>(fraction));
    std::string digits(buf.data());
    digits.erase(digits.find_last_not_of('0') + 1);
    out += digits;
  }
  out += 'Z';
  return out;
}

Status Message::Validate() const {
  if (specversion != kCloudEventsSpecVersion) {
    return InvalidArgumentError("attribute 'specversion': must be \"1.0\", got " +
                                Quote(specversion));
  }
  JUNCTION_RETURN_IF_ERROR(CheckNonEmptyString("attribute 'id'", id));
  JUNCTION_RETURN_IF_ERROR(CheckString("attribute 'source'", source));
  JUNCTION_RETURN_IF_ERROR(CheckUri("attribute 'source'", source, /*absolute=*/false));
  JUNCTION_RETURN_IF_ERROR(CheckNonEmptyString("attribute 'type'", type));
  if (subject) JUNCTION_RETURN_IF_ERROR(CheckNonEmptyString("attribute 'subject'", *subject));
  if (datacontenttype) {
    JUNCTION_RETURN_IF_ERROR(CheckMediaType("attribute 'datacontenttype'", *datacontenttype));
  }
  if (dataschema) {
    JUNCTION_RETURN_IF_ERROR(CheckString("attribute 'dataschema'", *dataschema));
    JUNCTION_RETURN_IF_ERROR(CheckUri("attribute 'dataschema'", *dataschema, /*absolute=*/true));
  }
  for (const auto& [name, value] : extensions) {
    JUNCTION_RETURN_IF_ERROR(CheckExtension(name, value));
  }
  if (key) JUNCTION_RETURN_IF_ERROR(CheckNonEmptyString("attribute 'partitionkey' (key)", *key));
  for (const auto& [name, value] : headers) {
    JUNCTION_RETURN_IF_ERROR(CheckHeader(name, value));
  }
  return OkStatus();
}

std::ostream& operator<<(std::ostream& os, const Message& m) {
  os << "Message{specversion=" << Quote(m.specversion) << " id=" << Quote(m.id)
     << " source=" << Quote(m.source) << " type=" << Quote(m.type);
  if (m.subject) os << " subject=" << Quote(*m.subject);
  if (m.time) os << " time=" << FormatRfc3339(*m.time);
  if (m.datacontenttype) os << " datacontenttype=" << Quote(*m.datacontenttype);
  if (m.dataschema) os << " dataschema=" << Quote(*m.dataschema);
  for (const auto& [name, value] : m.extensions) {
    os << " " << name << "=";
    if (const auto* b = std::get_if<bool>(&value)) os << (*b ? "true" : "false");
    if (const auto* i = std::get_if<std::int32_t>(&value)) os << *i;
    if (const auto* s = std::get_if<std::string>(&value)) os << Quote(*s);
  }
  if (m.key) os << " key=" << Quote(*m.key);
  for (const auto& [name, value] : m.headers) os << " header:" << name << "=" << Quote(value);
  return os << " data=" << m.data.size() << " bytes " << Quote(m.data) << "}";
}

}  // namespace junction
