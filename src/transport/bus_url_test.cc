// Bus::Open's URL handling: every malformed URL or option is refused with a
// message naming what is wrong, transports not built yet say so, and the
// embedded options are accepted in range.

#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "junction/bus.h"

namespace junction {
namespace {

using ::testing::HasSubstr;

Status OpenStatus(const std::string& url) {
  Result<std::unique_ptr<Bus>> bus = Bus::Open(url);
  return bus.ok() ? OkStatus() : bus.status();
}

TEST(BusUrl, TransportsNotBuiltYetAreUnimplemented) {
  for (const char* url :
       {"nats://127.0.0.1:4222", "amqp://127.0.0.1:5672", "kafka://127.0.0.1:9092"}) {
    Status status = OpenStatus(url);
    EXPECT_EQ(status.code(), StatusCode::kUnimplemented) << url << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr("not built yet")) << url;
  }
}

TEST(BusUrl, JunctionWithNobodyListeningIsUnavailable) {
  // Port 1 on loopback: nothing listens there (it needs root to bind).
  Status status = OpenStatus("junction://127.0.0.1:1?connect_timeout_ms=2000");
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("junction://127.0.0.1:1"));
  EXPECT_EQ(OpenStatus("junction://127.0.0.1:7522?colour=red").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStatus("junction://127.0.0.1:0").code(), StatusCode::kInvalidArgument);
}

TEST(BusUrl, MalformedUrlsAreInvalid) {
  for (const char* url : {"", "no scheme", "http://example.com", "file://relative/dir",
                          "file://otherhost/dir", "file://"}) {
    EXPECT_EQ(OpenStatus(url).code(), StatusCode::kInvalidArgument) << "'" << url << "'";
  }
}

TEST(BusUrl, UnknownOptionsAreNamed) {
  Status status = OpenStatus("mem://?fsinc=always");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'fsinc'"));
  EXPECT_THAT(status.message(), HasSubstr("max_group_entries"));
}

TEST(BusUrl, NumericOptionsMustBeWholeNumbersInRange) {
  for (const char* url :
       {"mem://?segment_bytes=abc", "mem://?segment_bytes=12k", "mem://?segment_bytes=-1",
        "mem://?max_group_entries=", "mem://?max_group_entries=0", "mem://?max_group_entries=1e3",
        "mem://?max_group_entries=10000001", "mem://?max_group_entries=99999999999999999999999"}) {
    Status status = OpenStatus(url);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << url << ": " << status;
  }
  EXPECT_THAT(OpenStatus("mem://?max_group_entries=0").message(), HasSubstr("max_group_entries"));
}

TEST(BusUrl, EmbeddedOptionsInRangeOpen) {
  for (const char* url : {"mem://", "mem://?max_group_entries=1",
                          "mem://?max_group_entries=10000000&segment_bytes=4096",
                          "mem://?blocking_threads=1", "mem://?blocking_threads=256"}) {
    Result<std::unique_ptr<Bus>> bus = Bus::Open(url);
    EXPECT_TRUE(bus.ok()) << url << ": " << bus.status();
  }
}

}  // namespace
}  // namespace junction
