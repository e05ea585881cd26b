#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "junction/cloudevents.h"

namespace junction::cloudevents {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Decodes, encodes in binary mode and decodes again; the decodes must agree.
Message RoundTrip(const HttpMessage& http) {
  Result<Message> first = DecodeHttp(http);
  EXPECT_TRUE(first.ok()) << first.status();
  if (!first.ok()) return {};
  Result<Message> second = DecodeHttp(EncodeHttpBinary(*first));
  EXPECT_TRUE(second.ok()) << second.status();
  if (second.ok()) {
    EXPECT_EQ(*second, *first);
  }
  return *first;
}

void ExpectError(const HttpMessage& http, StatusCode code, std::string_view fragment) {
  Result<Message> m = DecodeHttp(http);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), code) << m.status();
  EXPECT_THAT(m.status().message(), HasSubstr(std::string(fragment)));
}

Headers Required() {
  return {{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "/s"}, {"ce-type", "t"}};
}

HttpMessage WithHeader(std::string name, std::string value) {
  HttpMessage http{Required(), ""};
  http.headers.emplace_back(std::move(name), std::move(value));
  return http;
}

// The binary-mode re-encodings in the JSON format spec §3.2 (raw binary bytes
// made concrete).
TEST(CloudEventsHttp, JsonSpecBinaryModeExamplesRoundTrip) {
  Headers common = {{"ce-specversion", "1.0"},
                    {"ce-type", "com.example.someevent"},
                    {"ce-source", "/mycontext"},
                    {"ce-time", "2018-04-05T17:31:00Z"},
                    {"ce-comexampleextension1", "value"},
                    {"ce-comexampleothervalue", "5"}};
  struct Example {
    std::string id, content_type, body;
  };
  for (const Example& e : std::vector<Example>{
           {"A234-1234-1234", "application/vnd.apache.thrift.binary", std::string("\0\x01\xff", 3)},
           {"B234-1234-1234", "application/xml", R"(<much wow="xml"/>)"},
           {"C234-1234-1234", "application/json",
            "{\n  \"appinfoA\" : \"abc\",\n  \"appinfoB\" : 123,\n  \"appinfoC\" : true\n}"},
           {"D234-1234-1234", "application/json", R"("I'm just a string")"}}) {
    HttpMessage http{common, e.body};
    http.headers.emplace_back("ce-id", e.id);
    http.headers.emplace_back("content-type", e.content_type);
    Message m = RoundTrip(http);
    EXPECT_EQ(m.id, e.id);
    EXPECT_EQ(m.datacontenttype, e.content_type);
    EXPECT_EQ(m.data, e.body);
    EXPECT_EQ(m.extensions.at("comexampleothervalue"), ExtensionValue(std::string("5")));
    // And through the structured JSON format, data bytes intact.
    Result<Message> structured = DecodeHttp(EncodeHttpStructured(m));
    ASSERT_TRUE(structured.ok()) << structured.status();
    EXPECT_EQ(*structured, m);
  }
}

// HTTP binding §3.1.4: the request example, "further attributes" omitted.
TEST(CloudEventsHttp, BindingBinaryRequestExampleRoundTrips) {
  HttpMessage http{{{"Host", "webhook.example.com"},
                    {"ce-specversion", "1.0"},
                    {"ce-type", "com.example.someevent"},
                    {"ce-time", "2018-04-05T03:56:24Z"},
                    {"ce-id", "1234-1234-1234"},
                    {"ce-source", "/mycontext/subcontext"},
                    {"Content-Type", "application/json; charset=utf-8"},
                    {"Content-Length", "27"}},
                   "{\n    \"application\": 1\n}"};
  Message m = RoundTrip(http);
  EXPECT_EQ(m.source, "/mycontext/subcontext");
  EXPECT_EQ(m.datacontenttype, "application/json; charset=utf-8");
  EXPECT_TRUE(m.headers.empty());  // Host and Content-Length belong to HTTP
}

// HTTP binding §3.2.4: structured mode, attributes filled in.
TEST(CloudEventsHttp, BindingStructuredExampleDecodes) {
  HttpMessage http{{{"Host", "webhook.example.com"},
                    {"Content-Type", "application/cloudevents+json; charset=utf-8"},
                    {"Content-Length", "nnnn"},
                    {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
                   R"({
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "id" : "1",
    "data" : { "x" : 1 }
})"};
  Result<Message> m = DecodeHttp(http);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->data, R"({"x":1})");
  EXPECT_THAT(m->headers, Contains(Pair("traceparent", HasSubstr("0af765"))));
  Result<Message> again = DecodeHttp(EncodeHttpStructured(*m));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *m);
}

TEST(CloudEventsHttp, PercentEncodesPerTheBinding) {
  Message m = *DecodeHttp(WithHeader("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"));
  EXPECT_EQ(m.subject, "Euro \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_THAT(EncodeHttpBinary(m).headers,
              Contains(Pair("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80")));
  m.subject = R"(100% "quoted")";
  EXPECT_THAT(EncodeHttpBinary(m).headers, Contains(Pair("ce-subject", "100%25%20%22quoted%22")));
  EXPECT_EQ(DecodeHttp(WithHeader("ce-subject", "%e2%82%ac"))->subject, "\xe2\x82\xac");
  EXPECT_EQ(DecodeHttp(WithHeader("ce-subject", R"("a \"b\" c")"))->subject, R"(a "b" c)");
}

TEST(CloudEventsHttp, HeaderNamesAreCaseInsensitive) {
  HttpMessage http{{{"CE-SpecVersion", "1.0"},
                    {"Ce-Id", "1"},
                    {"CE-SOURCE", "/s"},
                    {"ce-type", "t"},
                    {"CE-PartitionKey", "k"},
                    {"X-Trace", "a"},
                    {"x-trace", "b"}},
                   ""};
  Message m = RoundTrip(http);
  EXPECT_EQ(m.key, "k");
  EXPECT_EQ(m.headers.at("x-trace"), "a, b");
}

TEST(CloudEventsHttp, EncodingNeverWritesHeadersThatHttpOwns) {
  Message m = *DecodeHttp(HttpMessage{Required(), "x"});
  m.headers = {{"Content-Length", "999"}, {"Transfer-Encoding", "chunked"}, {"x-ok", "1"}};
  Headers headers = EncodeHttpBinary(m).headers;
  EXPECT_EQ(headers.back(), (std::pair<std::string, std::string>("x-ok", "1")));
  for (const auto& [name, value] : headers) EXPECT_NE(name, "Content-Length");
}

TEST(CloudEventsHttp, RejectsWhatIsNotABinaryModeEvent) {
  ExpectError(HttpMessage{{{"Content-Type", "application/json"}}, "{}"},
              StatusCode::kInvalidArgument, "not a CloudEvent: no ce-specversion header");
  ExpectError(HttpMessage{{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-type", "t"}}, ""},
              StatusCode::kInvalidArgument, "missing required header 'ce-source'");
  ExpectError(WithHeader("ce-id", "2"), StatusCode::kInvalidArgument, "duplicate header 'ce-id'");
  ExpectError(WithHeader("ce-datacontenttype", "text/plain"), StatusCode::kInvalidArgument,
              "header 'ce-datacontenttype' is not allowed in binary mode");
  ExpectError(WithHeader("ce-my_ext", "x"), StatusCode::kInvalidArgument,
              "header 'ce-my_ext': not a valid extension attribute name");
  ExpectError(WithHeader("ce-time", "yesterday"), StatusCode::kInvalidArgument,
              "header 'ce-time': not an RFC 3339 timestamp: 'yesterday'");
  ExpectError(WithHeader("ce-subject", "%C0%A0"), StatusCode::kInvalidArgument,
              "header 'ce-subject': percent-decoded value is not UTF-8");
  ExpectError(WithHeader("ce-subject", "50%"), StatusCode::kInvalidArgument,
              "header 'ce-subject': malformed percent-encoding");
  ExpectError(WithHeader("ce-subject", "\"open"), StatusCode::kInvalidArgument,
              "header 'ce-subject': malformed quoted string");
  HttpMessage http{Required(), ""};
  http.headers[0].second = "0.3";
  ExpectError(http, StatusCode::kInvalidArgument, "attribute 'specversion'");
}

TEST(CloudEventsHttp, ChoosesTheModeFromContentType) {
  Message m = *DecodeHttp(HttpMessage{Required(), ""});
  HttpMessage batch = EncodeHttpBatch(std::vector<Message>{m, m});
  ExpectError(batch, StatusCode::kInvalidArgument, "use DecodeHttpBatch");
  Result<std::vector<Message>> events = DecodeHttpBatch(batch);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(*events, (std::vector<Message>{m, m}));
  EXPECT_FALSE(DecodeHttpBatch(EncodeHttpStructured(m)).ok());
  ExpectError(HttpMessage{{{"Content-Type", "application/cloudevents+avro"}}, ""},
              StatusCode::kUnimplemented, "unsupported CloudEvents event format");
  ExpectError(HttpMessage{{{"content-type", "a/b"}, {"Content-Type", "a/b"}}, ""},
              StatusCode::kInvalidArgument, "more than one Content-Type header");
}

TEST(CloudEventsHttp, EventCarryingAnEventTravelsStructured) {
  Message m = *DecodeHttp(HttpMessage{Required(), ""});
  m.datacontenttype = "application/cloudevents+json";
  m.data = EncodeJson(m);
  HttpMessage http = EncodeHttpBinary(m);  // binary mode could not mark it
  EXPECT_THAT(http.headers, Contains(Pair("Content-Type", HasSubstr("cloudevents+json"))));
  Result<Message> decoded = DecodeHttp(http);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, m);
}

TEST(CloudEventsHttp, EnforcesLimits) {
  DecodeLimits limits;
  limits.max_input_bytes = 16;
  Result<Message> m = DecodeHttp(HttpMessage{Required(), ""}, limits);
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  limits = {};
  limits.max_attribute_bytes = 3;
  m = DecodeHttp(WithHeader("ce-subject", "abcd"), limits);
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(m.status().message(), HasSubstr("header 'ce-subject': value is 4 bytes"));
}

}  // namespace
}  // namespace junction::cloudevents
