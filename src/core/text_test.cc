#include "core/text.h"

#include <gtest/gtest.h>

namespace junction::text {
namespace {

TEST(Utf8Test, AcceptsWellFormedAndRejectsTheRest) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // été € 😀
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));                                        // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));                                    // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));                                // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));                                        // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));  // lone continuation byte
}

TEST(Utf8Test, NextCodePointDecodesAndLeavesIndexOnFailure) {
  std::string_view s = "a\xe2\x82\xac";
  std::size_t i = 0;
  char32_t cp = 0;
  ASSERT_TRUE(NextCodePoint(s, i, cp));
  EXPECT_EQ(cp, U'a');
  ASSERT_TRUE(NextCodePoint(s, i, cp));
  EXPECT_EQ(cp, U'\u20ac');
  EXPECT_EQ(i, s.size());
  std::size_t at = 0;
  EXPECT_FALSE(NextCodePoint("\xff", at, cp));
  EXPECT_EQ(at, 0u);
}

TEST(JsonEscapeTest, EscapesControlsAndReplacesBadBytes) {
  std::string out;
  AppendJsonEscaped(out, "q\"b\\n\n\t\x01\x7f \xc3\xa9 \xff");
  EXPECT_EQ(out, "q\\\"b\\\\n\\n\\t\\u0001\\u007f \xc3\xa9 \xef\xbf\xbd");
}

TEST(QuoteTest, CutsLongValuesAndShowsUnprintableBytes) {
  EXPECT_EQ(Quote("abc"), "'abc'");
  EXPECT_EQ(Quote("a\nb\xff"), "'a\\x0ab\\xff'");
  EXPECT_EQ(Quote(std::string(70, 'x')), "'" + std::string(64, 'x') + "...'");
}

}  // namespace
}  // namespace junction::text
