#pragma once

// Result<T>: a value or a non-OK Status, shaped like std::expected<T, Status>.
//
//   Result<Offset> r = log.Append(batch);
//   if (!r) return r.status();
//   Use(*r);
//
// Macros (statements, not expressions):
//   JUNCTION_RETURN_IF_ERROR(expr);            // expr is a Status or a Result
//   JUNCTION_ASSIGN_OR_RETURN(auto x, expr);   // x = *expr, or return its status
//   JUNCTION_CO_RETURN_IF_ERROR / JUNCTION_CO_ASSIGN_OR_RETURN: the same in
//   coroutines, where `return` must be `co_return`.
//   JUNCTION_CHECK(cond) << "detail";          // a broken invariant: abort

#include <cstdlib>
#include <sstream>
#include <type_traits>
#include <utility>
#include <variant>

#include "junction/status.h"

namespace junction {

namespace internal {
// Unknown "no result", made once and shared (a default Result costs no
// allocation).
const Status& NoResultStatus();
}  // namespace internal

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>, "use Status, not Result<Status>");

 public:
  using value_type = T;

  // Unknown error "no result", like absl::StatusOr: a default is needed by
  // Asio, which carries a coroutine's result to a completion handler
  // (co_spawn(ex, bus.Publish(...), [](std::exception_ptr, Result<...>) {})).
  Result() : rep_(internal::NoResultStatus()) {}

  // REQUIRES: !status.ok(). An OK status without a value is a bug and becomes
  // Internal so that it cannot be mistaken for success.
  Result(Status status) : rep_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<0>(rep_).ok()) {
      rep_ = Status(StatusCode::kInternal, "Result constructed from an OK status without a value");
    }
  }
  Result(const T& value) : rep_(std::in_place_index<1>, value) {}        // NOLINT
  Result(T&& value) : rep_(std::in_place_index<1>, std::move(value)) {}  // NOLINT
  // Implicit like std::expected, so `return value;` works in a function
  // returning Result<T>.
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Status> && !std::is_same_v<std::decay_t<U>, Result<T>>)
      // NOLINTNEXTLINE(google-explicit-constructor,bugprone-forwarding-reference-overload)
      Result(U&& value)
      : rep_(std::in_place_index<1>, std::forward<U>(value)) {}
  template <typename... Args>
  explicit Result(std::in_place_t, Args&&... args)
      : rep_(std::in_place_index<1>, std::forward<Args>(args)...) {}

  bool ok() const { return rep_.index() == 1; }
  bool has_value() const { return ok(); }
  explicit operator bool() const { return ok(); }

  // OK when a value is held.
  Status status() const& { return ok() ? Status() : std::get<0>(rep_); }
  Status status() && { return ok() ? Status() : std::move(std::get<0>(rep_)); }
  // std::expected spelling. REQUIRES: !ok().
  const Status& error() const& {
    CheckError();
    return std::get<0>(rep_);
  }

  // REQUIRES: ok(). Aborts with the status otherwise.
  T& value() & {
    CheckValue();
    return std::get<1>(rep_);
  }
  const T& value() const& {
    CheckValue();
    return std::get<1>(rep_);
  }
  T&& value() && {
    CheckValue();
    return std::move(std::get<1>(rep_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? std::get<1>(rep_) : static_cast<T>(std::forward<U>(fallback));
  }
  template <typename U>
  T value_or(U&& fallback) && {
    return ok() ? std::move(std::get<1>(rep_)) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void CheckValue() const;
  void CheckError() const;

  std::variant<Status, T> rep_;
};

namespace internal {

[[noreturn]] void ResultValueMissing(const Status& status);
[[noreturn]] void ResultErrorMissing();

// Collects the message of a failed JUNCTION_CHECK and aborts when destroyed.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure();

  template <typename V>
  CheckFailure& operator<<(const V& v) {
    stream_ << v;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

// Lets `JUNCTION_CHECK(c) << x` be a void expression in both ?: branches.
struct Voidify {
  void operator&(const CheckFailure&) {}
};

inline const Status& ToStatus(const Status& s) { return s; }
inline Status ToStatus(Status&& s) { return std::move(s); }
template <typename T>
Status ToStatus(const Result<T>& r) {
  return r.status();
}
template <typename T>
Status ToStatus(Result<T>&& r) {
  return std::move(r).status();
}

}  // namespace internal

template <typename T>
void Result<T>::CheckValue() const {
  if (!ok()) internal::ResultValueMissing(std::get<0>(rep_));
}
template <typename T>
void Result<T>::CheckError() const {
  if (ok()) internal::ResultErrorMissing();
}

}  // namespace junction

// NOLINTBEGIN(bugprone-macro-parentheses): macro arguments are statements and declarations
#define JUNCTION_INTERNAL_CONCAT_(a, b) a##b
#define JUNCTION_INTERNAL_CONCAT(a, b) JUNCTION_INTERNAL_CONCAT_(a, b)

#define JUNCTION_RETURN_IF_ERROR(expr)                                                          \
  do {                                                                                          \
    if (auto junction_status_ = ::junction::internal::ToStatus(expr); !junction_status_.ok()) { \
      return junction_status_;                                                                  \
    }                                                                                           \
  } while (false)

#define JUNCTION_CO_RETURN_IF_ERROR(expr)                                                       \
  do {                                                                                          \
    if (auto junction_status_ = ::junction::internal::ToStatus(expr); !junction_status_.ok()) { \
      co_return junction_status_;                                                               \
    }                                                                                           \
  } while (false)

#define JUNCTION_INTERNAL_ASSIGN_OR_RETURN(tmp, lhs, expr, ret) \
  auto tmp = (expr);                                            \
  if (!tmp.ok()) ret std::move(tmp).status();                   \
  lhs = std::move(tmp).value()

#define JUNCTION_ASSIGN_OR_RETURN(lhs, expr)                                                    \
  JUNCTION_INTERNAL_ASSIGN_OR_RETURN(JUNCTION_INTERNAL_CONCAT(junction_result_, __LINE__), lhs, \
                                     expr, return )

#define JUNCTION_CO_ASSIGN_OR_RETURN(lhs, expr)                                                 \
  JUNCTION_INTERNAL_ASSIGN_OR_RETURN(JUNCTION_INTERNAL_CONCAT(junction_result_, __LINE__), lhs, \
                                     expr, co_return )

#define JUNCTION_CHECK(condition)                 \
  (condition) ? (void)0                           \
              : ::junction::internal::Voidify() & \
                    ::junction::internal::CheckFailure(__FILE__, __LINE__, #condition)
// NOLINTEND(bugprone-macro-parentheses)
