// junctiond's configuration keys (daemon.h) reach ServerOptions, and the
// two that size a many-core daemon do what they say: broker.brokers is the
// count a new data directory is laid out with, broker.blocking_threads the
// write/fdatasync threads of each broker.

#include "server/daemon.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "junction/config.h"
#include "server/server.h"
#include "storage/config.h"
#include "tests/support/temp_dir.h"

namespace junction::server {
namespace {

Result<ServerOptions> Load(std::map<std::string, std::string> env) {
  static config::Schema* schema = [] {
    auto* s = new config::Schema;
    EXPECT_TRUE(storage::AddConfigKeys(*s).ok());
    EXPECT_TRUE(AddConfigKeys(*s).ok());
    return s;
  }();
  JUNCTION_ASSIGN_OR_RETURN(config::Config cfg,
                            config::Load(*schema, {.default_file = "", .env = std::move(env)}));
  return OptionsFromConfig(cfg);
}

TEST(DaemonConfigTest, BrokersAndBlockingThreadsComeFromTheConfiguration) {
  Result<ServerOptions> defaults = Load({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->brokers, 0u);  // one per shard
  EXPECT_EQ(defaults->blocking_threads, 8u);

  Result<ServerOptions> set =
      Load({{"JUNCTION_BROKER_BROKERS", "3"}, {"JUNCTION_BROKER_BLOCKING_THREADS", "2"}});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->brokers, 3u);
  EXPECT_EQ(set->blocking_threads, 2u);

  Result<ServerOptions> too_many = Load({{"JUNCTION_BROKER_BROKERS", "257"}});
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("JUNCTION_BROKER_BROKERS"), std::string::npos)
      << too_many.status();  // where the value came from
  EXPECT_NE(too_many.status().message().find("[0, 256]"), std::string::npos) << too_many.status();
  EXPECT_FALSE(Load({{"JUNCTION_BROKER_BLOCKING_THREADS", "0"}}).ok());
}

int ThreadsOfThisProcess() {
  int n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)task;
    ++n;
  }
  return n;
}

// Threads a daemon on `dir` with these options starts (it is stopped after).
int ThreadsStarted(const std::filesystem::path& dir, std::size_t brokers,
                   std::size_t blocking_threads) {
  ServerOptions options;
  options.data_dir = dir;
  options.listen = "127.0.0.1:0";
  options.shards = 1;
  options.brokers = brokers;
  options.blocking_threads = blocking_threads;
  int before = ThreadsOfThisProcess();
  Result<std::unique_ptr<Server>> server = Server::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return -1;
  int started = ThreadsOfThisProcess() - before;
  EXPECT_TRUE((*server)->Stop().ok());
  return started;
}

TEST(DaemonConfigTest, ANewDirectoryGetsTheBrokersAskedForEachWithItsBlockingThreads) {
  test_support::TempDir three("junction-daemon-config");
  test_support::TempDir other("junction-daemon-config");
  int with_two = ThreadsStarted(three.path(), 3, 2);
  int with_five = ThreadsStarted(other.path(), 3, 5);
  EXPECT_EQ(with_five - with_two, 3 * (5 - 2));  // three brokers, three more threads each

  std::ifstream layout(three.path() / "junctiond.layout");
  std::string text((std::istreambuf_iterator<char>(layout)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("brokers = 3"), std::string::npos) << text;
  EXPECT_TRUE(std::filesystem::is_directory(three.path() / "broker-2"));
}

}  // namespace
}  // namespace junction::server
