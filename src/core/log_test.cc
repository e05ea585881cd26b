#include "junction/log.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace junction::log {
namespace {

constexpr std::string_view kPrefix = R"({"ts":"2026-01-01T00:00:00.000000Z","level":"info","msg":)";

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(Format::kJson, /*async=*/false); }
  void TearDown() override { Shutdown(); }

  void Start(Format format, bool async) {
    ASSERT_TRUE(Init({.service = "svc",
                      .level = Level::kInfo,
                      .format = format,
                      .async = async,
                      .async_queue_size = 16,
                      .output = &out_,
                      .clock = &clock_})
                    .ok());
  }

  std::vector<std::string> Lines() {
    Flush();
    std::vector<std::string> lines;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::ostringstream out_;
  ManualClock clock_;
};

TEST_F(LogTest, JsonLineHasFixedKeysThenFields) {
  clock_.Advance(std::chrono::microseconds(1'234'567));
  Info("partition opened", {{"topic", "orders"},
                            {"bytes", std::uint64_t{12}},
                            {"delta", -3},
                            {"ratio", 0.5},
                            {"sealed", true}});
  EXPECT_EQ(Lines(),
            std::vector<std::string>{R"({"ts":"2026-01-01T00:00:01.234567Z","level":"info",)"
                                     R"("msg":"partition opened","service":"svc","topic":"orders",)"
                                     R"("bytes":12,"delta":-3,"ratio":0.5,"sealed":true})"});
}

TEST_F(LogTest, ExtremeNumbersKeepAllDigits) {
  Info("n", {{"max", std::numeric_limits<std::uint64_t>::max()},
             {"min", std::numeric_limits<std::int64_t>::min()},
             {"nan", std::numeric_limits<double>::quiet_NaN()}});
  EXPECT_EQ(Lines()[0], std::string(kPrefix) + R"("n","service":"svc","max":18446744073709551615,)"
                                               R"("min":-9223372036854775808,"nan":"NaN"})");
}

TEST_F(LogTest, EscapesQuotesBackslashesControlsAndInvalidUtf8) {
  Info("say \"hi\"\\\n\t\x01",
       {{"utf8", "caf\xc3\xa9 \xff \xe2\x82"}, {"surrogate", "\xed\xa0\x80"}});
  EXPECT_EQ(Lines()[0], std::string(kPrefix) +
                            R"("say \"hi\"\\\n\t\u0001","service":"svc",)"
                            "\"utf8\":\"caf\xc3\xa9 \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\","
                            "\"surrogate\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}");
}

TEST_F(LogTest, FieldNamedLikeFixedKeyGetsUnderscore) {
  Info("m", {{"msg", "shadow"}, {"level", 3}});
  EXPECT_EQ(Lines()[0],
            std::string(kPrefix) + R"("m","service":"svc","_msg":"shadow","_level":3})");
}

TEST_F(LogTest, TraceScopeAddsIdsAndRestoresOuterScope) {
  {
    TraceScope outer("aaaa", "1111");
    {
      TraceScope inner("bbbb", "2222");
      Info("inner");
    }
    Info("outer");
    Info("explicit", {{"span_id", "3333"}});
  }
  Info("none");
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], std::string(kPrefix) +
                          R"("inner","service":"svc","trace_id":"bbbb","span_id":"2222"})");
  EXPECT_EQ(lines[1], std::string(kPrefix) +
                          R"("outer","service":"svc","trace_id":"aaaa","span_id":"1111"})");
  EXPECT_EQ(lines[2], std::string(kPrefix) +
                          R"("explicit","service":"svc","trace_id":"aaaa","span_id":"3333"})");
  EXPECT_EQ(lines[3], std::string(kPrefix) + R"("none","service":"svc"})");
}

TEST_F(LogTest, LevelBelowThresholdIsDropped) {
  Debug("hidden");
  SetLevel(Level::kError);
  Warn("hidden too");
  Error("shown");
  SetLevel(Level::kOff);
  Critical("silenced");
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"("level":"error","msg":"shown")"), std::string::npos);
  EXPECT_FALSE(Enabled(Level::kOff));
}

TEST_F(LogTest, TextFormatIsOneReadableLine) {
  Start(Format::kText, /*async=*/false);
  TraceScope scope("abcd", "");
  Warn("disk slow", {{"path", "/var/lib/my dir"}, {"ms", 250}});
  EXPECT_EQ(Lines(), std::vector<std::string>{"2026-01-01T00:00:00.000000Z WARN  disk slow "
                                              "path=\"/var/lib/my dir\" ms=250 trace_id=abcd"});
}

TEST(LogParseTest, ParseLevelAcceptsNamesAndExplainsRejection) {
  for (Level level : {Level::kTrace, Level::kDebug, Level::kInfo, Level::kWarn, Level::kError,
                      Level::kCritical, Level::kOff}) {
    EXPECT_EQ(ParseLevel(LevelName(level)).value(), level);
  }
  Result<Level> bad = ParseLevel("loud");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "expected one of trace, debug, info, warn, error, critical, off; got \"loud\"");
  EXPECT_EQ(ParseFormat("text").value(), Format::kText);
  EXPECT_FALSE(ParseFormat("xml").ok());
}

constexpr int kThreads = 4;
constexpr int kPerThread = 200;

// Every line must come out whole: compare the multiset of lines written by
// several threads with the lines each thread logged.
void ExpectWholeLinesFromThreads(std::vector<std::string> lines) {
  std::vector<std::string> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      expected.push_back(std::string(kPrefix) + R"("tick","service":"svc","thread":)" +
                         std::to_string(t) + R"(,"i":)" + std::to_string(i) + R"(,"pad":")" +
                         std::string(300, static_cast<char>('a' + t)) + "\"}");
    }
  }
  std::sort(expected.begin(), expected.end());
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, expected);
}

void LogFromThreads() {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      std::string pad(300, static_cast<char>('a' + t));
      for (int i = 0; i < kPerThread; ++i) Info("tick", {{"thread", t}, {"i", i}, {"pad", pad}});
    });
  }
  for (std::thread& thread : threads) thread.join();
}

TEST_F(LogTest, ConcurrentThreadsNeverInterleaveLines) {
  LogFromThreads();
  ExpectWholeLinesFromThreads(Lines());
}

TEST_F(LogTest, AsyncModeWithSmallQueueWritesEveryLineByFlush) {
  Start(Format::kJson, /*async=*/true);
  LogFromThreads();
  ExpectWholeLinesFromThreads(Lines());
}

TEST_F(LogTest, ReinitDrainsThePreviousAsyncLogger) {
  Start(Format::kJson, /*async=*/true);
  for (int i = 0; i < 100; ++i) Info("queued", {{"i", i}});
  std::ostringstream other;
  ASSERT_TRUE(Init({.output = &other, .clock = &clock_}).ok());
  std::string written = out_.str();
  EXPECT_EQ(std::count(written.begin(), written.end(), '\n'), 100);
  EXPECT_NE(written.find(R"("i":99})"), std::string::npos);
  Shutdown();  // before `other` goes away
}

}  // namespace
}  // namespace junction::log
