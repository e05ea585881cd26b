#include "core/text.h"

#include <array>

namespace junction::text {
namespace {

constexpr std::size_t kMaxQuoted = 64;
constexpr char kHex[] = "0123456789abcdef";

}  // namespace

bool NextCodePoint(std::string_view s, std::size_t& i, char32_t& cp) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    cp = b0;
    i += 1;
    return true;
  }
  std::size_t len = 0;
  char32_t min = 0;
  char32_t value = 0;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2, min = 0x80, value = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, min = 0x800, value = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, min = 0x10000, value = b0 & 0x07;
  } else {
    return false;
  }
  if (s.size() - i < len) return false;
  for (std::size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return false;
    value = (value << 6) | (byte(i + k) & 0x3f);
  }
  if (value < min || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return false;
  cp = value;
  i += len;
  return true;
}

bool IsValidUtf8(std::string_view s) {
  char32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    if (!NextCodePoint(s, i, cp)) return false;
  }
  return true;
}

void AppendJsonEscaped(std::string& out, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t start = i;
      char32_t cp = 0;
      if (NextCodePoint(s, i, cp)) {
        out.append(s.substr(start, i - start));
      } else {
        out += "\xef\xbf\xbd";
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
}

std::string Quote(std::string_view value) {
  std::string out = "'";
  for (std::size_t i = 0; i < value.size() && i < kMaxQuoted; ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (value.size() > kMaxQuoted) out += "...";
  out += "'";
  return out;
}

}  // namespace junction::text
