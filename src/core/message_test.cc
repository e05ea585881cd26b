#include "junction/message.h"

#include <chrono>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace junction {
namespace {

using std::chrono::nanoseconds;
using std::chrono::sys_days;
using ::testing::HasSubstr;

Message Valid() {
  Message m;
  m.id = "A234-1234-1234";
  m.source = "/mycontext";
  m.type = "com.example.someevent";
  return m;
}

void ExpectInvalid(const Message& m, std::string_view fragment) {
  Status status = m.Validate();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr(std::string(fragment)));
}

TEST(MessageValidate, MinimalEventIsValid) { EXPECT_TRUE(Valid().Validate().ok()); }

TEST(MessageValidate, FullEventIsValid) {
  Message m = Valid();
  m.subject = "larger-context";
  m.time = sys_days(std::chrono::year(2018) / 4 / 5);
  m.datacontenttype = "application/json; charset=utf-8";
  m.dataschema = "https://example.com/schema.json";
  m.extensions = {{"comexampleextension1", std::string("value")},
                  {"comexampleothervalue", std::int32_t{5}},
                  {"sampled", true}};
  m.key = "customer-42";
  m.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};
  m.data = std::string("\0\xff", 2);
  EXPECT_TRUE(m.Validate().ok()) << m.Validate();
}

TEST(MessageValidate, RequiredAttributesMustNotBeEmpty) {
  Message m = Valid();
  m.id.clear();
  ExpectInvalid(m, "attribute 'id': must not be empty");
  m = Valid();
  m.source.clear();
  ExpectInvalid(m, "attribute 'source': must not be empty");
  m = Valid();
  m.type.clear();
  ExpectInvalid(m, "attribute 'type': must not be empty");
  m = Valid();
  m.subject = "";
  ExpectInvalid(m, "attribute 'subject': must not be empty");
}

TEST(MessageValidate, SpecVersionMustBeOnePointZero) {
  Message m = Valid();
  m.specversion = "0.3";
  ExpectInvalid(m, "attribute 'specversion': must be \"1.0\", got '0.3'");
}

TEST(MessageValidate, SourceAcceptsTheSpecExamples) {
  for (const char* source :
       {"https://github.com/cloudevents", "mailto:cncf-wg-serverless@lists.cncf.io",
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "/cloudevents/spec/pull/123",
        "/sensors/tn-1234567/alerts", "1-555-123-4567", "/a%20b?q=1#frag"}) {
    Message m = Valid();
    m.source = source;
    EXPECT_TRUE(m.Validate().ok()) << source << ": " << m.Validate();
  }
}

TEST(MessageValidate, SourceMustBeAUriReference) {
  for (const char* source : {"has space", "bad%zz", "1a:b", "a#b#c", "caf\xc3\xa9"}) {
    Message m = Valid();
    m.source = source;
    ExpectInvalid(m, "attribute 'source': not a URI-reference");
  }
}

// The URI rules, each where CheckUri's one pass meets it: a colon ends a
// scheme only before the first '/', '?' or '#'; a percent-encoding needs two
// hex digits even at the end; one '#' at most.
TEST(MessageValidate, UriRulesWhereverTheyFallInTheString) {
  for (const char* source : {"a:b", "/a:b", "?q=a:b", "#f:g", "a+b.c-d:x", "%41", "x#%41"}) {
    Message m = Valid();
    m.source = source;
    EXPECT_TRUE(m.Validate().ok()) << source << ": " << m.Validate();
  }
  for (const char* source : {"%4", "a%", "%g1", ":a", "+a:b", "a:b#c#", "a b", "a|b"}) {
    Message m = Valid();
    m.source = source;
    ExpectInvalid(m, "attribute 'source': not a URI-reference");
  }
  Message m = Valid();
  m.dataschema = "a/b:c";  // the colon comes after a '/': no scheme
  ExpectInvalid(m, "attribute 'dataschema': not a URI (no scheme)");
  m.dataschema = "urn:a#b";
  EXPECT_TRUE(m.Validate().ok()) << m.Validate();
}

TEST(MessageValidate, DataSchemaMustBeAnAbsoluteUri) {
  Message m = Valid();
  m.dataschema = "/relative/schema";
  ExpectInvalid(m, "attribute 'dataschema': not a URI (no scheme)");
  m.dataschema = "";
  ExpectInvalid(m, "attribute 'dataschema': must not be empty");
}

TEST(MessageValidate, DataContentTypeMustBeAMediaType) {
  for (const char* type : {"json", "application/", " text/plain", "text /plain", "a/b\xc3\xa9"}) {
    Message m = Valid();
    m.datacontenttype = type;
    ExpectInvalid(m, "attribute 'datacontenttype'");
  }
}

TEST(MessageValidate, StringsMustBeCloudEventsStrings) {
  Message m = Valid();
  m.id = "a\nb";
  ExpectInvalid(m, "attribute 'id': contains a control character");
  m.id = "a\xc2\x85";  // U+0085, a C1 control
  ExpectInvalid(m, "attribute 'id': contains a control character");
  m.id = "\xed\xa0\x80";  // an encoded surrogate
  ExpectInvalid(m, "attribute 'id': not valid UTF-8");
  m.id = "\xef\xbf\xbe";  // U+FFFE
  ExpectInvalid(m, "attribute 'id': contains a Unicode noncharacter");
  m.id = "\xc0\xa0";  // overlong space
  ExpectInvalid(m, "attribute 'id': not valid UTF-8");
  m.id = "\xe2\x82\xac\xf0\x9f\x98\x80";  // U+20AC, U+1F600
  EXPECT_TRUE(m.Validate().ok());
}

// The printable ASCII fast path reads eight bytes at a time: every byte
// value, at every position of a word and in the tail after the last whole
// word, must be judged as the byte-at-a-time rule judges it.
TEST(MessageValidate, EveryByteIsJudgedWhereverItSitsInAString) {
  for (std::size_t length : {1u, 7u, 8u, 9u, 16u, 19u}) {
    for (std::size_t at = 0; at < length; ++at) {
      for (int b = 0; b < 256; ++b) {
        Message m = Valid();
        m.id = std::string(length, 'a');
        m.id[at] = static_cast<char>(b);
        Status s = m.Validate();
        if (b >= 0x20 && b < 0x7f) {
          EXPECT_TRUE(s.ok()) << "byte " << b << " at " << at << " of " << length << ": " << s;
        } else {
          // Alone, a control character or a byte of a broken UTF-8 sequence.
          EXPECT_EQ(s.code(), StatusCode::kInvalidArgument)
              << "byte " << b << " at " << at << " of " << length;
        }
      }
    }
  }
}

TEST(MessageValidate, ExtensionNamesAreLowercaseAlphanumeric) {
  for (const char* name : {"", "MyExt", "my-ext", "my_ext", "caf\xc3\xa9"}) {
    Message m = Valid();
    m.extensions[name] = true;
    ExpectInvalid(m, "not a valid extension name");
  }
  Message m = Valid();
  m.extensions["averyveryverylongextensionname"] = true;  // > 20 chars: accepted
  EXPECT_TRUE(m.Validate().ok());
}

TEST(MessageValidate, ExtensionNamesMustNotCollideWithContextAttributes) {
  for (const char* name : {"id", "time", "datacontenttype", "data"}) {
    Message m = Valid();
    m.extensions[name] = std::string("x");
    ExpectInvalid(m, "attribute '" + std::string(name) + "': not an extension");
  }
  Message m = Valid();
  m.extensions["partitionkey"] = std::string("x");
  ExpectInvalid(m, "set Message::key instead");
}

TEST(MessageValidate, ExtensionStringValuesAreChecked) {
  Message m = Valid();
  m.extensions["ext"] = std::string("tab\there");
  ExpectInvalid(m, "attribute 'ext': contains a control character");
}

TEST(MessageValidate, KeyMustNotBeEmpty) {
  Message m = Valid();
  m.key = "";
  ExpectInvalid(m, "attribute 'partitionkey' (key): must not be empty");
}

TEST(MessageValidate, HeadersMustBeSafeForHttp) {
  Message m = Valid();
  m.headers = {{"bad name", "v"}};
  ExpectInvalid(m, "header 'bad name': name is not an HTTP token");
  m.headers = {{"x-inject", "a\r\nhost: evil"}};
  ExpectInvalid(m, "header 'x-inject': value contains a control character");
  m.headers = {{"CE-id", "1"}};
  ExpectInvalid(m, "the ce- prefix is reserved");
}

TEST(MessageEquality, ComparesEveryField) {
  Message a = Valid();
  Message b = a;
  EXPECT_EQ(a, b);
  b.headers["traceparent"] = "x";
  EXPECT_NE(a, b);
  b = a;
  b.extensions["n"] = std::int32_t{1};
  Message c = a;
  c.extensions["n"] = std::string("1");
  EXPECT_NE(b, c);  // typed values differ from their string forms
}

TEST(MessagePrint, ShowsAttributesAndDataSize) {
  Message m = Valid();
  m.data = "hello";
  std::ostringstream os;
  os << m;
  EXPECT_THAT(os.str(), HasSubstr("id='A234-1234-1234'"));
  EXPECT_THAT(os.str(), HasSubstr("data=5 bytes"));
}

TEST(Rfc3339, ParsesUtcAndNormalisesOffsets) {
  Timestamp utc =
      sys_days(std::chrono::year(2018) / 4 / 5) + std::chrono::hours(17) + std::chrono::minutes(31);
  EXPECT_EQ(*ParseRfc3339("2018-04-05T17:31:00Z"), utc);
  EXPECT_EQ(*ParseRfc3339("2018-04-05t17:31:00z"), utc);
  EXPECT_EQ(*ParseRfc3339("2018-04-05T19:31:00+02:00"), utc);
  EXPECT_EQ(*ParseRfc3339("2018-04-05T12:01:00-05:30"), utc);
  EXPECT_EQ(*ParseRfc3339("2018-04-05T17:31:00-00:00"), utc);
  EXPECT_EQ(*ParseRfc3339("2018-04-05T17:31:00.5Z"), utc + std::chrono::milliseconds(500));
  EXPECT_EQ(*ParseRfc3339("2018-04-05T17:31:00.1234567891Z"), utc + nanoseconds(123456789));
  EXPECT_EQ(*ParseRfc3339("1969-12-31T23:59:59.999999999Z"), Timestamp(nanoseconds(-1)));
}

TEST(Rfc3339, RejectsWhatIsNotAnRfc3339Timestamp) {
  for (const char* text :
       {"", "2018-13-01T00:00:00Z", "2019-02-29T00:00:00Z", "2018-04-05 17:31:00Z",
        "2018-04-05T24:00:00Z", "2018-04-05T17:31:60Z", "2018-04-05T17:31:00", "2018-04-05T17:31Z",
        "2018-04-05T17:31:00.Z", "2018-04-05T17:31:00+0200", "2018-04-05T17:31:00Z ",
        "1600-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    Result<Timestamp> t = ParseRfc3339(text);
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(t.status().message(),
                HasSubstr("not an RFC 3339 timestamp: '" + std::string(text)));
  }
  EXPECT_THAT(ParseRfc3339("2016-12-31T23:59:60Z").status().message(), HasSubstr("leap second"));
}

TEST(Rfc3339, FormatsUtcWithMinimalFraction) {
  Timestamp t = *ParseRfc3339("2018-04-05T17:31:00Z");
  EXPECT_EQ(FormatRfc3339(t), "2018-04-05T17:31:00Z");
  EXPECT_EQ(FormatRfc3339(t + std::chrono::milliseconds(120)), "2018-04-05T17:31:00.12Z");
  EXPECT_EQ(FormatRfc3339(t + nanoseconds(1)), "2018-04-05T17:31:00.000000001Z");
  EXPECT_EQ(FormatRfc3339(Timestamp(nanoseconds(-1))), "1969-12-31T23:59:59.999999999Z");
}

TEST(Rfc3339, RoundTripsTheWholeRange) {
  for (Timestamp t : {Timestamp::min(), Timestamp::max(), Timestamp(nanoseconds(0)),
                      Timestamp(nanoseconds(1'522'949'460'123'456'789))}) {
    Result<Timestamp> parsed = ParseRfc3339(FormatRfc3339(t));
    ASSERT_TRUE(parsed.ok()) << FormatRfc3339(t) << ": " << parsed.status();
    EXPECT_EQ(*parsed, t);
  }
}

}  // namespace
}  // namespace junction
