#pragma once

// Status: the outcome of an operation that can fail in an expected way.
//
// Codes are the 17 canonical codes shared with gRPC (and abseil). Choosing one:
//   Unavailable        - transient; the same call may succeed if retried.
//   Aborted            - a conflict; retry at a higher level (re-read, then retry).
//   FailedPrecondition - the system is not in a state for this call; do not
//                        retry until something is fixed.
//   DataLoss           - stored data is corrupt or lost.
// One table (HttpStatusFor, GrpcCodeFor) maps codes onto the wire.

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace junction {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

inline constexpr int kStatusCodeCount = 17;

// "INVALID_ARGUMENT", as gRPC spells it.
std::string_view StatusCodeName(StatusCode code);
// Inverse of StatusCodeName; nullopt for an unknown name.
std::optional<StatusCode> StatusCodeFromName(std::string_view name);
// The HTTP status a server answers with for `code` (kOk -> 200).
int HttpStatusFor(StatusCode code);
// The status code a client infers from an HTTP status it received.
StatusCode StatusCodeFromHttp(int http_status);
// The numeric gRPC status code (identical numbering).
int GrpcCodeFor(StatusCode code);
// nullopt when `grpc_code` is outside 0..16.
std::optional<StatusCode> StatusCodeFromGrpc(int grpc_code);

// An OK Status is a null pointer: creating, moving and testing one (every
// call that succeeds does) costs a word, not a string. An error's code and
// message are immutable and shared by its copies.
class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  const std::string& message() const;

  // "NOT_FOUND: topic 'orders' does not exist"; "OK" when ok().
  std::string ToString() const;

  // The same code with "context: message". OK stays OK.
  Status WithContext(std::string_view context) const;

  // Explicitly discards a status the caller has decided not to act on.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;  // null: OK
};

std::ostream& operator<<(std::ostream& os, const Status& status);
std::ostream& operator<<(std::ostream& os, StatusCode code);

inline Status OkStatus() { return Status(); }
Status CancelledError(std::string message);
Status UnknownError(std::string message);
Status InvalidArgumentError(std::string message);
Status DeadlineExceededError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status PermissionDeniedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message);
Status AbortedError(std::string message);
Status OutOfRangeError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);
Status UnavailableError(std::string message);
Status DataLossError(std::string message);
Status UnauthenticatedError(std::string message);

// Maps an errno value to a Status: "context: strerror (ENOSPC)". ENOSPC and
// EDQUOT become ResourceExhausted, EIO Unavailable, ENOENT NotFound, and so on.
Status ErrnoToStatus(int error_number, std::string_view context);

}  // namespace junction
