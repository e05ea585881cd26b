#pragma once

// Fixed-width little-endian loads and stores, and LEB128 varints, for the
// formats in docs/formats/. Every read is bounds-checked by its caller.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

namespace junction::codec {

template <typename T>
requires std::is_integral_v<T>
inline T LoadLE(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) {
    auto* b = reinterpret_cast<std::byte*>(&v);
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(b[i], b[sizeof(T) - 1 - i]);
  }
  return v;
}

template <typename T>
requires std::is_integral_v<T>
inline void StoreLE(std::byte* p, T v) {
  if constexpr (std::endian::native == std::endian::big) {
    auto* b = reinterpret_cast<std::byte*>(&v);
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(b[i], b[sizeof(T) - 1 - i]);
  }
  std::memcpy(p, &v, sizeof(T));
}

inline constexpr std::size_t kMaxVarintBytes = 10;

inline std::uint64_t ZigZagEncode(std::int64_t n) {
  return (static_cast<std::uint64_t>(n) << 1) ^ static_cast<std::uint64_t>(n >> 63);
}
inline std::int64_t ZigZagDecode(std::uint64_t n) {
  return static_cast<std::int64_t>(n >> 1) ^ -static_cast<std::int64_t>(n & 1);
}

// Appends `v` as unsigned LEB128 (1 to 10 bytes).
inline void PutVarint(std::string& out, std::uint64_t v) {
  char bytes[10];
  std::size_t n = 0;
  while (v >= 0x80) {
    bytes[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  bytes[n++] = static_cast<char>(v);
  out.append(bytes, n);
}

// Reads an unsigned LEB128 from `in` at `*pos`, advancing `*pos`. nullopt when
// the input ends inside the varint or it is longer than 10 bytes / overflows.
inline std::optional<std::uint64_t> GetVarint(std::span<const std::byte> in, std::size_t& pos) {
  std::uint64_t result = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (pos >= in.size()) return std::nullopt;
    auto byte = static_cast<std::uint8_t>(in[pos++]);
    if (shift == 63 && byte > 1) return std::nullopt;  // overflow
    result |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return result;
  }
  return std::nullopt;
}

}  // namespace junction::codec
