#pragma once

// StrongInt<T, Tag>: an integer that does not mix with integers of another
// meaning. An Offset cannot be passed where a PartitionId is expected, and
// neither converts silently to or from a plain integer.
//
//   using Offset = StrongInt<std::uint64_t, struct OffsetTag>;
//   Offset next = first + 3;        // adding a count is fine
//   std::uint64_t n = next - first; // the distance is a plain count

#include <compare>
#include <concepts>
#include <cstddef>
#include <functional>
#include <limits>
#include <ostream>

namespace junction {

template <std::integral T, typename Tag>
class StrongInt {
 public:
  using value_type = T;

  constexpr StrongInt() = default;
  constexpr explicit StrongInt(T value) : value_(value) {}

  constexpr T value() const { return value_; }

  static constexpr StrongInt Min() { return StrongInt(std::numeric_limits<T>::min()); }
  static constexpr StrongInt Max() { return StrongInt(std::numeric_limits<T>::max()); }

  friend constexpr auto operator<=>(StrongInt, StrongInt) = default;

  constexpr StrongInt& operator++() {
    ++value_;
    return *this;
  }
  constexpr StrongInt operator++(int) {
    StrongInt old = *this;
    ++value_;
    return old;
  }
  constexpr StrongInt& operator+=(T delta) {
    value_ += delta;
    return *this;
  }
  constexpr StrongInt& operator-=(T delta) {
    value_ -= delta;
    return *this;
  }
  friend constexpr StrongInt operator+(StrongInt a, T delta) { return StrongInt(a.value_ + delta); }
  friend constexpr StrongInt operator-(StrongInt a, T delta) { return StrongInt(a.value_ - delta); }
  // The distance between two values of one kind is a plain count.
  friend constexpr T operator-(StrongInt a, StrongInt b) { return a.value_ - b.value_; }

  friend std::ostream& operator<<(std::ostream& os, StrongInt v) {
    if constexpr (sizeof(T) == 1) {
      return os << static_cast<int>(v.value_);
    } else {
      return os << v.value_;
    }
  }

 private:
  T value_{};
};

}  // namespace junction

template <std::integral T, typename Tag>
struct std::hash<junction::StrongInt<T, Tag>> {
  std::size_t operator()(junction::StrongInt<T, Tag> v) const noexcept {
    return std::hash<T>{}(v.value());
  }
};
