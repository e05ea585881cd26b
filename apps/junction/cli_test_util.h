#pragma once

// The fixture of the tests that run the built `junction` binary as a
// subprocess (stdout and stderr are files, never a terminal).

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace junction::cli {

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) / "cli_test" / info->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  // Runs `junction <args>` in dir_ with only PATH and `env` in its
  // environment and `input` on its stdin.
  Outcome Run(const std::string& args, const std::string& env = "", const std::string& input = "") {
    std::ofstream(dir_ / "stdin.txt", std::ios::binary | std::ios::trunc) << input;
    std::string command = "cd '" + dir_.string() + "' && env -i PATH=/usr/bin:/bin " + env + " " +
                          JUNCTION_CLI_PATH + " " + args + " <stdin.txt >stdout.txt 2>stderr.txt";
    int status = std::system(command.c_str());
    Outcome outcome;
    outcome.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    outcome.out = ReadFile("stdout.txt");
    outcome.err = ReadFile("stderr.txt");
    return outcome;
  }

  std::string ReadFile(const std::string& name) {
    std::ifstream in(dir_ / name);
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
  }

  void WriteConfig(const std::string& content) { std::ofstream(dir_ / "junction.toml") << content; }

  // The "log.level" entry of `config print --json`.
  boost::json::object LogLevelEntry(const Outcome& outcome) {
    EXPECT_EQ(outcome.code, 0) << outcome.err;
    return boost::json::parse(outcome.out).as_object().at("log.level").as_object();
  }

  std::filesystem::path dir_;
};

}  // namespace junction::cli
