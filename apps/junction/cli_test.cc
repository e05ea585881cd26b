// Runs the built `junction` binary as a subprocess (stdout and stderr are
// files, never a terminal) and checks its output and exit codes.

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "cli_test_util.h"
#include "junction/version.h"

namespace junction::cli {
namespace {

TEST_F(CliTest, VersionPrintsBuildInfoAsTextAndJson) {
  std::string version(GetBuildInfo().version);
  Outcome text = Run("version");
  EXPECT_EQ(text.code, 0);
  EXPECT_TRUE(text.out.starts_with("junction " + version + "\n")) << text.out;
  EXPECT_EQ(text.err, "");

  Outcome json = Run("--log-level debug version --json");
  ASSERT_EQ(json.code, 0) << json.err;
  boost::json::object object = boost::json::parse(json.out).as_object();
  EXPECT_EQ(object.at("version").as_string(), version);
  for (const char* key : {"git_commit", "build_type", "compiler"})
    EXPECT_TRUE(object.contains(key));
  EXPECT_NE(json.err.find(R"("msg":"configuration loaded")"), std::string::npos) << json.err;
}

TEST_F(CliTest, UsageErrorsExitTwoWithNothingOnStdout) {
  for (const char* args :
       {"--frobnicate version", "frobnicate", "--color=sometimes version", "config", ""}) {
    Outcome outcome = Run(args);
    EXPECT_EQ(outcome.code, 2) << args;
    EXPECT_EQ(outcome.out, "") << args;
    EXPECT_NE(outcome.err, "") << args;
  }
  Outcome help = Run("--help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("version"), std::string::npos);
}

TEST_F(CliTest, ConfigPrintShowsFileValueAndItsLine) {
  WriteConfig("# logging\n[log]\nlevel = \"debug\"\n");
  Outcome text = Run("config print");
  EXPECT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("junction.toml:3"), std::string::npos) << text.out;
  boost::json::object entry = LogLevelEntry(Run("config print --json"));
  EXPECT_EQ(entry.at("value").as_string(), "debug");
  EXPECT_EQ(entry.at("source").as_string(), "junction.toml:3");
}

TEST_F(CliTest, EnvironmentBeatsFileAndFlagBeatsEnvironment) {
  WriteConfig("log.level = \"debug\"\n");
  boost::json::object by_env = LogLevelEntry(Run("--json config print", "JUNCTION_LOG_LEVEL=warn"));
  EXPECT_EQ(by_env.at("value").as_string(), "warn");
  EXPECT_EQ(by_env.at("source").as_string(), "JUNCTION_LOG_LEVEL");
  boost::json::object by_flag =
      LogLevelEntry(Run("--json config print --log-level error", "JUNCTION_LOG_LEVEL=warn"));
  EXPECT_EQ(by_flag.at("value").as_string(), "error");
  EXPECT_EQ(by_flag.at("source").as_string(), "--log-level");
}

TEST_F(CliTest, BadConfigFailsWithFileAndLine) {
  WriteConfig("[log]\nlevl = \"debug\"\n");
  Outcome outcome = Run("config print");
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.out, "");
  EXPECT_EQ(outcome.err,
            "junction: junction.toml:2: unknown key 'log.levl' (did you mean 'log.level'?)\n");
  std::filesystem::remove(dir_ / "junction.toml");
  Outcome typo = Run("version", "JUNCTION_LOG_LEVL=info");
  EXPECT_EQ(typo.code, 1);
  EXPECT_NE(typo.err.find("JUNCTION_LOG_LEVL"), std::string::npos);
}

TEST_F(CliTest, ColoursOnlyWhenAskedOnAPipe) {
  auto has_escape = [](const Outcome& o) { return o.out.find('\x1b') != std::string::npos; };
  EXPECT_FALSE(has_escape(Run("config print")));
  EXPECT_FALSE(has_escape(Run("config print", "NO_COLOR=1")));
  EXPECT_FALSE(has_escape(Run("config print --color=auto", "NO_COLOR=1")));
  EXPECT_TRUE(has_escape(Run("config print --color=always", "NO_COLOR=1")));
}

}  // namespace
}  // namespace junction::cli
