#include "storage/config.h"

#include <gtest/gtest.h>

namespace junction::storage {
namespace {

Result<LogOptions> Load(std::map<std::string, std::string> env) {
  static config::Schema* schema = [] {
    auto* s = new config::Schema;
    EXPECT_TRUE(AddConfigKeys(*s).ok());
    return s;
  }();
  JUNCTION_ASSIGN_OR_RETURN(config::Config cfg,
                            config::Load(*schema, {.default_file = "", .env = std::move(env)}));
  return LogOptionsFromConfig(cfg);
}

TEST(StorageConfigTest, DefaultsAreTheSafeLogOptions) {
  Result<LogOptions> options = Load({});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->fsync, FsyncPolicy::Always());
  EXPECT_EQ(options->segment_bytes, LogOptions{}.segment_bytes);
  EXPECT_FALSE(options->retention_bytes.has_value());
  EXPECT_FALSE(options->retention_age.has_value());
}

TEST(StorageConfigTest, EnvironmentSetsPolicyAndRetention) {
  Result<LogOptions> options = Load({{"JUNCTION_STORAGE_FSYNC", "interval=200ms"},
                                     {"JUNCTION_STORAGE_RETENTION_BYTES", "1GiB"},
                                     {"JUNCTION_STORAGE_RETENTION_AGE", "48h"}});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->fsync, FsyncPolicy::Interval(std::chrono::milliseconds(200)));
  EXPECT_EQ(options->retention_bytes, 1ull << 30);
  EXPECT_EQ(options->retention_age, std::chrono::hours(48));
}

TEST(StorageConfigTest, BadValuesNameTheKeyAndItsSource) {
  Result<LogOptions> bad_policy = Load({{"JUNCTION_STORAGE_FSYNC", "sometimes"}});
  ASSERT_FALSE(bad_policy.ok());
  EXPECT_NE(bad_policy.status().message().find("storage.fsync (from JUNCTION_STORAGE_FSYNC)"),
            std::string::npos)
      << bad_policy.status();
  Result<LogOptions> tiny = Load({{"JUNCTION_STORAGE_SEGMENT_BYTES", "1KiB"}});
  ASSERT_FALSE(tiny.ok());
  EXPECT_NE(tiny.status().message().find("segment_bytes"), std::string::npos);
}

}  // namespace
}  // namespace junction::storage
