#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "junction/cloudevents.h"

namespace junction::cloudevents {
namespace {

using ::testing::HasSubstr;

// The examples of the CloudEvents JSON format spec (formats/json-format.md
// §3.2 and §4.3), verbatim except that the placeholder
// "... base64 encoded string ..." is replaced by real Base64.
constexpr std::string_view kBinaryExample = R"({
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "id" : "A234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/vnd.apache.thrift.binary",
    "data_base64" : "AAECA/8="
})";

constexpr std::string_view kXmlExample = R"({
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "id" : "B234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "unsetextension": null,
    "datacontenttype" : "application/xml",
    "data" : "<much wow=\"xml\"/>"
})";

constexpr std::string_view kJsonObjectExample = R"({
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "subject": null,
    "id" : "C234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/json",
    "data" : {
        "appinfoA" : "abc",
        "appinfoB" : 123,
        "appinfoC" : true
    }
})";

constexpr std::string_view kJsonStringExample = R"({
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "subject": null,
    "id" : "D234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "data" : "I'm just a string"
})";

constexpr std::string_view kBatchExample = R"([
  {
      "specversion" : "1.0",
      "type" : "com.example.someevent",
      "source" : "/mycontext/4",
      "id" : "B234-1234-1234",
      "time" : "2018-04-05T17:31:00Z",
      "comexampleextension1" : "value",
      "comexampleothervalue" : 5,
      "datacontenttype" : "application/vnd.apache.thrift.binary",
      "data_base64" : "AAECA/8="
  },
  {
      "specversion" : "1.0",
      "type" : "com.example.someotherevent",
      "source" : "/mycontext/9",
      "id" : "C234-1234-1234",
      "time" : "2018-04-05T17:31:05Z",
      "comexampleextension1" : "value",
      "comexampleothervalue" : 5,
      "datacontenttype" : "application/json",
      "data" : {
          "appinfoA" : "abc",
          "appinfoB" : 123,
          "appinfoC" : true
      }
  }
])";

// Decodes, encodes and decodes again; the two decodes must agree.
Message RoundTrip(std::string_view json) {
  Result<Message> first = DecodeJson(json);
  EXPECT_TRUE(first.ok()) << first.status();
  if (!first.ok()) return {};
  std::string encoded = EncodeJson(*first);
  Result<Message> second = DecodeJson(encoded);
  EXPECT_TRUE(second.ok()) << second.status() << " in " << encoded;
  if (second.ok()) {
    EXPECT_EQ(*second, *first) << encoded;
  }
  return *first;
}

void ExpectError(std::string_view json, StatusCode code, std::string_view fragment,
                 const DecodeLimits& limits = {}) {
  Result<Message> m = DecodeJson(json, limits);
  ASSERT_FALSE(m.ok()) << json;
  EXPECT_EQ(m.status().code(), code) << m.status();
  EXPECT_THAT(m.status().message(), HasSubstr(std::string(fragment)));
}

std::string Event(std::string_view members) {
  return R"({"specversion":"1.0","id":"1","source":"/s","type":"t")" +
         (members.empty() ? "" : "," + std::string(members)) + "}";
}

TEST(CloudEventsJson, SpecBinaryExampleRoundTrips) {
  Message m = RoundTrip(kBinaryExample);
  EXPECT_EQ(m.id, "A234-1234-1234");
  EXPECT_EQ(m.data, std::string("\x00\x01\x02\x03\xff", 5));
  EXPECT_EQ(m.extensions.at("comexampleextension1"), ExtensionValue(std::string("value")));
  EXPECT_EQ(m.extensions.at("comexampleothervalue"), ExtensionValue(std::int32_t{5}));
  EXPECT_EQ(FormatRfc3339(*m.time), "2018-04-05T17:31:00Z");
}

TEST(CloudEventsJson, SpecXmlExampleRoundTrips) {
  Message m = RoundTrip(kXmlExample);
  EXPECT_EQ(m.data, R"(<much wow="xml"/>)");
  EXPECT_FALSE(m.extensions.contains("unsetextension"));
  EXPECT_THAT(EncodeJson(m), HasSubstr(R"("data":"<much wow=\"xml\"/>")"));
}

TEST(CloudEventsJson, SpecJsonObjectExampleRoundTrips) {
  Message m = RoundTrip(kJsonObjectExample);
  EXPECT_FALSE(m.subject.has_value());
  EXPECT_EQ(m.data, R"({"appinfoA":"abc","appinfoB":123,"appinfoC":true})");
  EXPECT_THAT(EncodeJson(m), HasSubstr(R"("data":{"appinfoA":"abc")"));
}

TEST(CloudEventsJson, SpecJsonStringExampleImpliesApplicationJson) {
  Message m = RoundTrip(kJsonStringExample);
  EXPECT_EQ(m.data, R"("I'm just a string")");
  EXPECT_EQ(m.datacontenttype, "application/json");
}

TEST(CloudEventsJson, SpecBatchExampleRoundTrips) {
  Result<std::vector<Message>> batch = DecodeJsonBatch(kBatchExample);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ((*batch)[1].type, "com.example.someotherevent");
  Result<std::vector<Message>> again = DecodeJsonBatch(EncodeJsonBatch(*batch));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *batch);
}

TEST(CloudEventsJson, EmptyBatchIsValid) {
  Result<std::vector<Message>> batch = DecodeJsonBatch(" [ ] ");
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_TRUE(batch->empty());
  EXPECT_EQ(EncodeJsonBatch({}), "[]");
}

TEST(CloudEventsJson, EncodingPreservesDataBytes) {
  Message m;
  m.id = "1";
  m.source = "/s";
  m.type = "t";
  m.key = "order-7";
  m.extensions = {{"flag", false}, {"n", std::int32_t{-2147483647 - 1}}};
  m.datacontenttype = "application/json";
  m.data = R"({ "not": "compact" })";  // valid JSON, but re-compacting would change it
  EXPECT_THAT(EncodeJson(m), HasSubstr(R"("data_base64":)"));
  EXPECT_THAT(EncodeJson(m), HasSubstr(R"("partitionkey":"order-7")"));
  m.datacontenttype = "text/plain";
  m.data = std::string("bin\0ary", 7);
  EXPECT_THAT(EncodeJson(m), HasSubstr(R"("data_base64":"YmluAGFyeQ==")"));
  m.datacontenttype.reset();
  m.data = "[1]";  // without a content type, data is opaque
  EXPECT_THAT(EncodeJson(m), HasSubstr(R"("data_base64":)"));
  m.headers["traceparent"] = "x";  // JSON has no place for transport headers
  Result<Message> decoded = DecodeJson(EncodeJson(m));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  m.headers.clear();
  EXPECT_EQ(*decoded, m);
}

TEST(CloudEventsJson, NullDataIsAnExplicitJsonPayload) {
  Message m = RoundTrip(Event(R"("datacontenttype":"application/json","data":null)"));
  EXPECT_EQ(m.data, "null");
  EXPECT_TRUE(RoundTrip(Event(R"("datacontenttype":"text/plain","data":null)")).data.empty());
}

TEST(CloudEventsJson, RejectsWrongTypes) {
  ExpectError(Event(R"("subject":5)"), StatusCode::kInvalidArgument,
              "attribute 'subject': must be a string, not a number");
  ExpectError(R"({"specversion":"1.0","id":5,"source":"/s","type":"t"})",
              StatusCode::kInvalidArgument, "attribute 'id': must be a string, not a number");
  ExpectError(Event(R"("ext":{"a":1})"), StatusCode::kInvalidArgument,
              "attribute 'ext': must be a string, boolean or integer, not a JSON object");
  ExpectError(Event(R"("ext":1.5)"), StatusCode::kInvalidArgument,
              "attribute 'ext': not a CloudEvents Integer");
  ExpectError(Event(R"("ext":2147483648)"), StatusCode::kInvalidArgument,
              "attribute 'ext': not a CloudEvents Integer");
  ExpectError(Event(R"("datacontenttype":"text/plain","data":[1])"), StatusCode::kInvalidArgument,
              "attribute 'data': must be a string when datacontenttype 'text/plain' is not JSON");
}

TEST(CloudEventsJson, RejectsMissingRequiredAttributes) {
  ExpectError(R"({"specversion":"1.0","id":"1","source":"/s"})", StatusCode::kInvalidArgument,
              "missing required attribute 'type'");
  ExpectError(R"({"specversion":"1.0","id":"1","source":"/s","type":null})",
              StatusCode::kInvalidArgument, "missing required attribute 'type'");
  ExpectError(R"({"id":"1","source":"/s","type":"t"})", StatusCode::kInvalidArgument,
              "missing required attribute 'specversion'");
  ExpectError(R"({"specversion":"1.0","id":"","source":"/s","type":"t"})",
              StatusCode::kInvalidArgument, "attribute 'id': must not be empty");
}

TEST(CloudEventsJson, RejectsOtherSpecVersions) {
  ExpectError(R"({"specversion":"0.3","id":"1","source":"/s","type":"t"})",
              StatusCode::kInvalidArgument, "attribute 'specversion': unsupported version '0.3'");
}

TEST(CloudEventsJson, RejectsDuplicateKeysAtAnyDepth) {
  ExpectError(Event(R"("id":"2")"), StatusCode::kInvalidArgument, "duplicate key 'id'");
  ExpectError(Event(R"("data":{"a":1,"b":{"x":1,"x":2}})"), StatusCode::kInvalidArgument,
              "attribute 'data': duplicate key 'x'");
}

TEST(CloudEventsJson, RejectsMalformedJsonAndTrailingGarbage) {
  ExpectError(R"({"specversion":"1.0",)", StatusCode::kInvalidArgument,
              "malformed JSON at byte 21");
  ExpectError("", StatusCode::kInvalidArgument, "malformed JSON at byte 0");
  ExpectError(Event("") + " {}", StatusCode::kInvalidArgument,
              "trailing characters after the JSON value");
  ExpectError("[]", StatusCode::kInvalidArgument,
              "an event must be a JSON object, not a JSON array");
}

TEST(CloudEventsJson, RejectsBadData) {
  ExpectError(Event(R"("data":"x","data_base64":"eA==")"), StatusCode::kInvalidArgument,
              "both 'data' and 'data_base64'");
  ExpectError(Event(R"("data_base64":"not base64!")"), StatusCode::kInvalidArgument,
              "attribute 'data_base64': not valid Base64");
}

TEST(CloudEventsJson, RejectsBadAttributeValues) {
  ExpectError(Event(R"("time":"2018-13-01T00:00:00Z")"), StatusCode::kInvalidArgument,
              "attribute 'time': not an RFC 3339 timestamp: '2018-13-01T00:00:00Z'");
  ExpectError(Event(R"("my-ext":"x")"), StatusCode::kInvalidArgument,
              "attribute 'my-ext': not a valid extension attribute name");
  ExpectError(Event(R"("ext":"a\u0000b")"), StatusCode::kInvalidArgument,
              "attribute 'ext': contains a control character");
}

TEST(CloudEventsJson, BatchErrorsNameTheEvent) {
  std::string batch = "[" + Event("") + "," + Event(R"("time":"2018-13-01T00:00:00Z")") + "]";
  Result<std::vector<Message>> m = DecodeJsonBatch(batch);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(),
              HasSubstr("event 1: attribute 'time': not an RFC 3339 timestamp"));
  m = DecodeJsonBatch("[" + Event("") + ",7]");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("event 1 must be a JSON object, not a number"));
  EXPECT_THAT(DecodeJsonBatch(Event("")).status().message(), HasSubstr("a batch must be"));
}

TEST(CloudEventsJson, EnforcesLimits) {
  DecodeLimits tight;
  tight.max_input_bytes = 10;
  ExpectError(Event(""), StatusCode::kResourceExhausted, "more than the limit of 10", tight);
  tight = {};
  tight.max_depth = 2;  // the event object and one level inside it
  ExpectError(Event(R"("data":[[1]])"), StatusCode::kResourceExhausted,
              "JSON nested deeper than 2 levels", tight);
  EXPECT_TRUE(DecodeJson(Event(R"("data":[1])"), tight).ok());
  tight = {};
  tight.max_extensions = 1;
  ExpectError(Event(R"("a":1,"b":2)"), StatusCode::kResourceExhausted,
              "more than 1 extension attributes", tight);
  tight = {};
  tight.max_attribute_bytes = 3;
  ExpectError(Event(R"("subject":"abcd")"), StatusCode::kResourceExhausted,
              "attribute 'subject': value is 4 bytes", tight);
  tight = {};
  tight.max_batch_events = 1;
  Result<std::vector<Message>> batch =
      DecodeJsonBatch("[" + Event("") + "," + Event("") + "]", tight);
  EXPECT_EQ(batch.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(batch.status().message(), HasSubstr("batch has more than 1 events"));
}

}  // namespace
}  // namespace junction::cloudevents
