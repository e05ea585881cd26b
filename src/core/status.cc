#include "junction/status.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "junction/result.h"

namespace junction {
namespace {

struct CodeInfo {
  std::string_view name;
  int http_status;
};

// The one table from codes to names and HTTP statuses (gRPC numbers are the
// codes themselves). HTTP choices follow google.rpc.Code's documentation.
constexpr std::array<CodeInfo, kStatusCodeCount> kCodes = {{
    {"OK", 200},
    {"CANCELLED", 499},
    {"UNKNOWN", 500},
    {"INVALID_ARGUMENT", 400},
    {"DEADLINE_EXCEEDED", 504},
    {"NOT_FOUND", 404},
    {"ALREADY_EXISTS", 409},
    {"PERMISSION_DENIED", 403},
    {"RESOURCE_EXHAUSTED", 429},
    {"FAILED_PRECONDITION", 400},
    {"ABORTED", 409},
    {"OUT_OF_RANGE", 400},
    {"UNIMPLEMENTED", 501},
    {"INTERNAL", 500},
    {"UNAVAILABLE", 503},
    {"DATA_LOSS", 500},
    {"UNAUTHENTICATED", 401},
}};

const CodeInfo& Info(StatusCode code) {
  auto index = static_cast<std::size_t>(code);
  return index < kCodes.size() ? kCodes[index] : kCodes[static_cast<int>(StatusCode::kUnknown)];
}

std::string_view ErrnoName(int error_number) {
  switch (error_number) {
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case EINTR:
      return "EINTR";
    case EIO:
      return "EIO";
    case EBADF:
      return "EBADF";
    case EAGAIN:
      return "EAGAIN";
    case ENOMEM:
      return "ENOMEM";
    case EACCES:
      return "EACCES";
    case EBUSY:
      return "EBUSY";
    case EEXIST:
      return "EEXIST";
    case EXDEV:
      return "EXDEV";
    case ENOTDIR:
      return "ENOTDIR";
    case EISDIR:
      return "EISDIR";
    case EINVAL:
      return "EINVAL";
    case EMFILE:
      return "EMFILE";
    case ENFILE:
      return "ENFILE";
    case EFBIG:
      return "EFBIG";
    case ENOSPC:
      return "ENOSPC";
    case EROFS:
      return "EROFS";
    case ENAMETOOLONG:
      return "ENAMETOOLONG";
    case ENOTEMPTY:
      return "ENOTEMPTY";
    case EDQUOT:
      return "EDQUOT";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case ECONNRESET:
      return "ECONNRESET";
    case EPIPE:
      return "EPIPE";
    default:
      return "";
  }
}

StatusCode ErrnoToCode(int error_number) {
  switch (error_number) {
    case 0:
      return StatusCode::kOk;
    case EINVAL:
    case ENAMETOOLONG:
    case E2BIG:
    case EDOM:
    case EFAULT:
    case EILSEQ:
    case ENOEXEC:
    case ENOTSOCK:
    case ESPIPE:
      return StatusCode::kInvalidArgument;
    case ETIMEDOUT:
      return StatusCode::kDeadlineExceeded;
    case ENOENT:
    case ENODEV:
    case ENXIO:
    case ESRCH:
      return StatusCode::kNotFound;
    case EEXIST:
    case EADDRINUSE:
    case EALREADY:
      return StatusCode::kAlreadyExists;
    case EPERM:
    case EACCES:
    case EROFS:
      return StatusCode::kPermissionDenied;
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EFBIG:
    case EMLINK:
    case ENOBUFS:
    case EMSGSIZE:
      return StatusCode::kResourceExhausted;
    case ENOTDIR:
    case EISDIR:
    case EBADF:
    case ENOTEMPTY:
    case EXDEV:
    case ETXTBSY:
      return StatusCode::kFailedPrecondition;
    case EDEADLK:
      return StatusCode::kAborted;
    case EOVERFLOW:
    case ERANGE:
      return StatusCode::kOutOfRange;
    case ENOSYS:
    case ENOTSUP:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
      return StatusCode::kUnimplemented;
    case EIO:
    case EAGAIN:
    case EBUSY:
    case EINTR:
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case ENETDOWN:
    case ENETUNREACH:
    case EPIPE:
    case ENOTCONN:
      return StatusCode::kUnavailable;
    case ECANCELED:
      return StatusCode::kCancelled;
    default:
      return StatusCode::kUnknown;
  }
}

}  // namespace

std::string_view StatusCodeName(StatusCode code) { return Info(code).name; }

std::optional<StatusCode> StatusCodeFromName(std::string_view name) {
  for (std::size_t i = 0; i < kCodes.size(); ++i) {
    if (kCodes[i].name == name) return static_cast<StatusCode>(i);
  }
  return std::nullopt;
}

int HttpStatusFor(StatusCode code) { return Info(code).http_status; }

StatusCode StatusCodeFromHttp(int http_status) {
  if (http_status >= 200 && http_status < 300) return StatusCode::kOk;
  switch (http_status) {
    case 400:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 408:
      return StatusCode::kDeadlineExceeded;
    case 409:
      return StatusCode::kAborted;
    case 412:
      return StatusCode::kFailedPrecondition;
    case 413:
      return StatusCode::kResourceExhausted;
    case 416:
      return StatusCode::kOutOfRange;
    case 429:
      return StatusCode::kResourceExhausted;
    case 499:
      return StatusCode::kCancelled;
    case 501:
      return StatusCode::kUnimplemented;
    case 502:
    case 503:
      return StatusCode::kUnavailable;
    case 504:
      return StatusCode::kDeadlineExceeded;
    default:
      break;
  }
  if (http_status >= 400 && http_status < 500) return StatusCode::kFailedPrecondition;
  if (http_status >= 500 && http_status < 600) return StatusCode::kInternal;
  return StatusCode::kUnknown;
}

int GrpcCodeFor(StatusCode code) { return static_cast<int>(code); }

std::optional<StatusCode> StatusCodeFromGrpc(int grpc_code) {
  if (grpc_code < 0 || grpc_code >= kStatusCodeCount) return std::nullopt;
  return static_cast<StatusCode>(grpc_code);
}

Status::Status(StatusCode code, std::string message)
    : rep_(code == StatusCode::kOk ? nullptr
                                   : std::make_shared<const Rep>(Rep{code, std::move(message)})) {}

const std::string& Status::message() const {
  static const std::string* const kEmpty = new std::string();
  return rep_ ? rep_->message : *kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(rep_->code));
  if (!rep_->message.empty()) {
    out += ": ";
    out += rep_->message;
  }
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  if (!rep_->message.empty()) {
    message += ": ";
    message += rep_->message;
  }
  return Status(rep_->code, std::move(message));
}

std::ostream& operator<<(std::ostream& os, const Status& status) { return os << status.ToString(); }
std::ostream& operator<<(std::ostream& os, StatusCode code) { return os << StatusCodeName(code); }

#define JUNCTION_DEFINE_ERROR(Name, Code) \
  Status Name(std::string message) { return Status(StatusCode::Code, std::move(message)); }
JUNCTION_DEFINE_ERROR(CancelledError, kCancelled)
JUNCTION_DEFINE_ERROR(UnknownError, kUnknown)
JUNCTION_DEFINE_ERROR(InvalidArgumentError, kInvalidArgument)
JUNCTION_DEFINE_ERROR(DeadlineExceededError, kDeadlineExceeded)
JUNCTION_DEFINE_ERROR(NotFoundError, kNotFound)
JUNCTION_DEFINE_ERROR(AlreadyExistsError, kAlreadyExists)
JUNCTION_DEFINE_ERROR(PermissionDeniedError, kPermissionDenied)
JUNCTION_DEFINE_ERROR(ResourceExhaustedError, kResourceExhausted)
JUNCTION_DEFINE_ERROR(FailedPreconditionError, kFailedPrecondition)
JUNCTION_DEFINE_ERROR(AbortedError, kAborted)
JUNCTION_DEFINE_ERROR(OutOfRangeError, kOutOfRange)
JUNCTION_DEFINE_ERROR(UnimplementedError, kUnimplemented)
JUNCTION_DEFINE_ERROR(InternalError, kInternal)
JUNCTION_DEFINE_ERROR(UnavailableError, kUnavailable)
JUNCTION_DEFINE_ERROR(DataLossError, kDataLoss)
JUNCTION_DEFINE_ERROR(UnauthenticatedError, kUnauthenticated)
#undef JUNCTION_DEFINE_ERROR

Status ErrnoToStatus(int error_number, std::string_view context) {
  std::string message(context);
  if (!message.empty()) message += ": ";
  message += std::strerror(error_number);  // NOLINT(concurrency-mt-unsafe): glibc's is safe
  if (auto name = ErrnoName(error_number); !name.empty()) {
    message += " (";
    message += name;
    message += ")";
  }
  StatusCode code = ErrnoToCode(error_number);
  if (code == StatusCode::kOk) code = StatusCode::kUnknown;
  return Status(code, std::move(message));
}

namespace internal {

const Status& NoResultStatus() {
  static const Status* const kNoResult = new Status(StatusCode::kUnknown, "no result");
  return *kNoResult;
}

void ResultValueMissing(const Status& status) {
  std::fprintf(stderr, "FATAL: Result::value() called on an error: %s\n",
               status.ToString().c_str());
  std::abort();
}

void ResultErrorMissing() {
  std::fprintf(stderr, "FATAL: Result::error() called on a value\n");
  std::abort();
}

CheckFailure::CheckFailure(const char* file, int line, const char* condition) {
  stream_ << file << ":" << line << ": JUNCTION_CHECK failed: " << condition << " ";
}

CheckFailure::~CheckFailure() {
  std::string text = stream_.str();
  std::fprintf(stderr, "FATAL: %s\n", text.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace internal
}  // namespace junction
