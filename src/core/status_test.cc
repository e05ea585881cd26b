#include "junction/status.h"

#include <cerrno>
#include <set>

#include <gtest/gtest.h>

namespace junction {
namespace {

TEST(StatusTest, DefaultIsOkAndDropsMessage) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.code(), StatusCode::kOk);
  EXPECT_EQ(ok.ToString(), "OK");
  EXPECT_EQ(Status(StatusCode::kOk, "ignored").message(), "");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = NotFoundError("topic 'orders' does not exist");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: topic 'orders' does not exist");
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status s = DataLossError("checksum mismatch").WithContext("segment 00000042.log");
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "segment 00000042.log: checksum mismatch");
  EXPECT_TRUE(OkStatus().WithContext("anything").ok());
}

TEST(StatusTest, EveryCodeHasAUniqueNameThatRoundTrips) {
  std::set<std::string_view> names;
  for (int i = 0; i < kStatusCodeCount; ++i) {
    auto code = static_cast<StatusCode>(i);
    std::string_view name = StatusCodeName(code);
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_EQ(StatusCodeFromName(name), code);
    EXPECT_EQ(GrpcCodeFor(code), i);
    EXPECT_EQ(StatusCodeFromGrpc(i), code);
  }
  EXPECT_EQ(StatusCodeFromName("NOPE"), std::nullopt);
  EXPECT_EQ(StatusCodeFromGrpc(17), std::nullopt);
  EXPECT_EQ(StatusCodeFromGrpc(-1), std::nullopt);
}

TEST(StatusTest, HttpMappingFollowsGoogleRpcCode) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(StatusCode::kCancelled), 499);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDeadlineExceeded), 504);
}

TEST(StatusTest, HttpStatusesMapBackToTheirCodes) {
  // Codes with a dedicated HTTP status survive the round trip.
  for (StatusCode code :
       {StatusCode::kOk, StatusCode::kInvalidArgument, StatusCode::kNotFound,
        StatusCode::kPermissionDenied, StatusCode::kUnauthenticated, StatusCode::kResourceExhausted,
        StatusCode::kUnimplemented, StatusCode::kUnavailable, StatusCode::kDeadlineExceeded,
        StatusCode::kCancelled}) {
    EXPECT_EQ(StatusCodeFromHttp(HttpStatusFor(code)), code) << code;
  }
  EXPECT_EQ(StatusCodeFromHttp(204), StatusCode::kOk);
  EXPECT_EQ(StatusCodeFromHttp(418), StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusCodeFromHttp(599), StatusCode::kInternal);
  EXPECT_EQ(StatusCodeFromHttp(302), StatusCode::kUnknown);
}

TEST(StatusTest, ErrnoMapsToCanonicalCodesAndNamesTheErrno) {
  Status full = ErrnoToStatus(ENOSPC, "append to 00000000.log");
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(full.message(), "append to 00000000.log: No space left on device (ENOSPC)");
  EXPECT_EQ(ErrnoToStatus(EIO, "fsync").code(), StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoToStatus(ENOENT, "open").code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoToStatus(EACCES, "open").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoToStatus(EEXIST, "mkdir").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoToStatus(EINVAL, "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoToStatus(0, "x").code(), StatusCode::kUnknown);  // never OK
}

}  // namespace
}  // namespace junction
