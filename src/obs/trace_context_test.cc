#include "junction/trace_context.h"

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace junction {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::string_view kSampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr std::string_view kTraceHex = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSpanHex = "00f067aa0ba902b7";

std::string Header(std::string_view version, std::string_view trace, std::string_view parent,
                   std::string_view flags) {
  return std::string(version) + "-" + std::string(trace) + "-" + std::string(parent) + "-" +
         std::string(flags);
}

// The error message of a traceparent that must not parse.
std::string TraceParentError(std::string_view header) {
  Result<TraceParent> parsed = TraceParent::Parse(header);
  EXPECT_FALSE(parsed.ok()) << header;
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  return parsed.status().message();
}

TEST(TraceParentTest, ParsesSpecExampleFields) {
  Result<TraceParent> parsed = TraceParent::Parse(kSampled);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->trace_id().ToHex(), kTraceHex);
  EXPECT_EQ(parsed->parent_id().ToHex(), kSpanHex);
  EXPECT_TRUE(parsed->sampled());
  EXPECT_FALSE(TraceParent::Parse(Header("00", kTraceHex, kSpanHex, "00"))->sampled());
}

TEST(TraceParentTest, FormatOfParseIsIdentityForVersion00) {
  for (std::string_view flags : {"00", "01"}) {
    for (std::string_view trace :
         {kTraceHex, std::string_view("0000000000000000000000000000000f")}) {
      std::string header = Header("00", trace, kSpanHex, flags);
      Result<TraceParent> parsed = TraceParent::Parse(header);
      ASSERT_TRUE(parsed.ok()) << header;
      EXPECT_EQ(parsed->Format(), header);
    }
  }
}

TEST(TraceParentTest, RejectsEachMalformedField) {
  const std::string zeros32(32, '0'), zeros16(16, '0');
  EXPECT_EQ(TraceParentError(Header("00", zeros32, kSpanHex, "01")),
            "traceparent: trace-id is all zeros");
  EXPECT_EQ(TraceParentError(Header("00", kTraceHex, zeros16, "01")),
            "traceparent: parent-id is all zeros");
  EXPECT_THAT(TraceParentError(Header("ff", kTraceHex, kSpanHex, "01")), HasSubstr("version ff"));
  EXPECT_THAT(TraceParentError(Header("0g", kTraceHex, kSpanHex, "01")), HasSubstr("version"));
  EXPECT_THAT(TraceParentError(Header("00", kTraceHex, kSpanHex, "0x")), HasSubstr("trace-flags"));
  EXPECT_THAT(TraceParentError(std::string(kSampled) + "-"), HasSubstr("55 characters"));
  EXPECT_THAT(TraceParentError(kSampled.substr(0, 54)), HasSubstr("55 characters"));
  EXPECT_THAT(TraceParentError("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
              HasSubstr("version"));
  EXPECT_THAT(TraceParentError("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"),
              HasSubstr("after trace-id"));
  EXPECT_THAT(TraceParentError("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01"),
              HasSubstr("after parent-id"));
  EXPECT_THAT(TraceParentError(""), HasSubstr("version"));
}

TEST(TraceParentTest, RejectsUppercaseHexAnywhere) {
  EXPECT_THAT(TraceParentError(Header("0A", kTraceHex, kSpanHex, "01")), HasSubstr("version"));
  EXPECT_THAT(TraceParentError(Header("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kSpanHex, "01")),
              HasSubstr("trace-id"));
  EXPECT_THAT(TraceParentError(Header("00", kTraceHex, "00F067AA0BA902B7", "01")),
              HasSubstr("parent-id"));
  EXPECT_THAT(TraceParentError(Header("00", kTraceHex, kSpanHex, "0A")), HasSubstr("trace-flags"));
}

TEST(TraceParentTest, FutureVersionReadsPrefixAndDowngradesTo00) {
  const std::string v42 = Header("42", kTraceHex, kSpanHex, "01");
  for (const std::string& header : {v42, v42 + "-anything-after", v42 + "-"}) {
    Result<TraceParent> parsed = TraceParent::Parse(header);
    ASSERT_TRUE(parsed.ok()) << header << ": " << parsed.status();
    EXPECT_EQ(parsed->Format(), kSampled);
  }
  EXPECT_THAT(TraceParentError(v42 + "x"), HasSubstr("followed by '-'"));
  EXPECT_THAT(TraceParentError(v42.substr(0, 54)), HasSubstr("shorter than 55"));
}

TEST(TraceParentTest, UndefinedFlagsAreKeptButNotEmitted) {
  Result<TraceParent> parsed = TraceParent::Parse(Header("00", kTraceHex, kSpanHex, "ff"));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->flags(), 0xff);
  EXPECT_TRUE(parsed->sampled());
  EXPECT_EQ(parsed->Format(), kSampled);
  EXPECT_EQ(parsed->Child().flags(), 0xff);
}

TEST(TraceParentTest, ChildKeepsTraceAndFlagsWithNewParent) {
  TraceParent parent = *TraceParent::Parse(kSampled);
  TraceParent child = parent.Child();
  EXPECT_EQ(child.trace_id(), parent.trace_id());
  EXPECT_TRUE(child.sampled());
  EXPECT_NE(child.parent_id(), parent.parent_id());
  EXPECT_TRUE(child.parent_id().IsValid());
}

TEST(TraceParentTest, RandomIdsAreValidDistinctAndRoundTrip) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    TraceParent root = TraceParent::NewRoot(/*sampled=*/i % 2 == 0);
    EXPECT_EQ(root.sampled(), i % 2 == 0);
    EXPECT_TRUE(seen.insert(root.trace_id().ToHex()).second);
    EXPECT_TRUE(seen.insert(root.parent_id().ToHex()).second);
    EXPECT_EQ(*TraceParent::Parse(root.Format()), root);
  }
  EXPECT_EQ(TraceId::FromHex(kTraceHex)->ToHex(), kTraceHex);
  EXPECT_FALSE(SpanId::FromHex(kTraceHex).has_value());
}

TEST(TraceParentTest, ForkedChildDoesNotRepeatParentIds) {
  SpanId::Random();  // seed this thread's generator before forking
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const SpanId::Bytes bytes = SpanId::Random().bytes();
    _exit(write(fds[1], bytes.data(), bytes.size()) == SpanId::kSize ? 0 : 1);
  }
  SpanId::Bytes from_child{};
  ASSERT_EQ(read(fds[0], from_child.data(), from_child.size()), SpanId::kSize);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  close(fds[0]);
  close(fds[1]);
  EXPECT_NE(SpanId(from_child), SpanId::Random());
}

TEST(TraceStateTest, ParsesWithOwsAndEmptyMembers) {
  Result<TraceState> parsed =
      TraceState::Parse(" ,rojo=00f067aa0ba902b7 ,\t, congo=t61rcWkgMzE,  ");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->members(), ElementsAre(TraceState::Member{"rojo", "00f067aa0ba902b7"},
                                             TraceState::Member{"congo", "t61rcWkgMzE"}));
  EXPECT_EQ(parsed->Format(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  EXPECT_TRUE(TraceState::Parse("")->empty());
  EXPECT_EQ(TraceState::Parse("a= lead")->Get("a"), " lead");
}

TEST(TraceStateTest, KeyRules) {
  EXPECT_TRUE(TraceState::IsValidKey("a0_-*/"));
  EXPECT_TRUE(TraceState::IsValidKey("a" + std::string(255, 'z')));
  EXPECT_FALSE(TraceState::IsValidKey("a" + std::string(256, 'z')));
  EXPECT_FALSE(TraceState::IsValidKey("0simple"));
  EXPECT_FALSE(TraceState::IsValidKey("Upper"));
  EXPECT_FALSE(TraceState::IsValidKey(""));
  EXPECT_TRUE(TraceState::IsValidKey("0tenant@system"));
  EXPECT_TRUE(TraceState::IsValidKey(std::string(241, 't') + "@" + "s" + std::string(13, '9')));
  EXPECT_FALSE(TraceState::IsValidKey(std::string(242, 't') + "@s"));
  EXPECT_FALSE(TraceState::IsValidKey("t@s" + std::string(14, 'x')));
  EXPECT_FALSE(TraceState::IsValidKey("t@0system"));
  EXPECT_FALSE(TraceState::IsValidKey("@system"));
  EXPECT_FALSE(TraceState::IsValidKey("tenant@"));
  EXPECT_FALSE(TraceState::IsValidKey("a@b@c"));
}

TEST(TraceStateTest, ValueRules) {
  EXPECT_TRUE(TraceState::IsValidValue(" !~<>"));
  EXPECT_TRUE(TraceState::IsValidValue(std::string(256, 'v')));
  EXPECT_FALSE(TraceState::IsValidValue(std::string(257, 'v')));
  EXPECT_FALSE(TraceState::IsValidValue(""));
  EXPECT_FALSE(TraceState::IsValidValue("trailing "));
  EXPECT_FALSE(TraceState::IsValidValue("a,b"));
  EXPECT_FALSE(TraceState::IsValidValue("a=b"));
  EXPECT_FALSE(TraceState::IsValidValue("tab\there"));
  EXPECT_FALSE(TraceState::IsValidValue("\x7f"));
}

TEST(TraceStateTest, RejectsBadMembersDuplicatesAndOverflow) {
  EXPECT_THAT(TraceState::Parse("novalue").status().message(), HasSubstr("no '='"));
  EXPECT_THAT(TraceState::Parse("a=1,b=2,a=3").status().message(), HasSubstr("duplicate key"));
  EXPECT_THAT(TraceState::Parse("Bad=1").status().message(), HasSubstr("invalid key"));
  EXPECT_THAT(TraceState::Parse("a=").status().message(), HasSubstr("invalid value"));
  EXPECT_THAT(TraceState::Parse("a=x=y").status().message(), HasSubstr("invalid value"));
  std::string members;
  for (int i = 0; i < 32; ++i) members += "k" + std::to_string(i) + "=v,";
  EXPECT_EQ(TraceState::Parse(members)->size(), 32u);
  EXPECT_THAT(TraceState::Parse(members + "k32=v").status().message(), HasSubstr("32"));
}

TEST(TraceStateTest, PutMovesUpdatedKeyToFront) {
  TraceState state = *TraceState::Parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  ASSERT_TRUE(state.Put("congo", "ucfJifl5GOE").ok());
  EXPECT_EQ(state.Format(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
  ASSERT_TRUE(state.Put("new", "1").ok());
  EXPECT_EQ(state.Format(), "new=1,congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
  EXPECT_EQ(state.Get("rojo"), "00f067aa0ba902b7");
  EXPECT_EQ(state.Get("absent"), std::nullopt);
}

TEST(TraceStateTest, PutRejectsInvalidAndLeavesStateUnchanged) {
  TraceState state = *TraceState::Parse("a=1");
  EXPECT_EQ(state.Put("A", "1").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(state.Put("a", "x,y").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(state.Format(), "a=1");
}

TEST(TraceStateTest, PutBeyond32DropsTheOldest) {
  TraceState state;
  for (int i = 0; i < 32; ++i) ASSERT_TRUE(state.Put("k" + std::to_string(i), "v").ok());
  ASSERT_TRUE(state.Put("k0", "again").ok());  // update: no drop
  EXPECT_EQ(state.size(), 32u);
  ASSERT_TRUE(state.Put("newest", "v").ok());
  EXPECT_EQ(state.size(), 32u);
  EXPECT_EQ(state.members().front().key, "newest");
  EXPECT_FALSE(state.Get("k1").has_value());  // oldest untouched entry
  EXPECT_EQ(state.Get("k0"), "again");
}

TEST(TraceStateTest, DeleteRemovesOnlyThatKey) {
  TraceState state = *TraceState::Parse("a=1,b=2,c=3");
  EXPECT_TRUE(state.Delete("b"));
  EXPECT_FALSE(state.Delete("b"));
  EXPECT_EQ(state.Format(), "a=1,c=3");
}

}  // namespace
}  // namespace junction
