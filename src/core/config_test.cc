#include "junction/config.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace junction::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(AddCoreKeys(schema_).ok());
    ASSERT_TRUE(schema_.Add(DurationKey("net.timeout", seconds(5), "timeout")).ok());
    ASSERT_TRUE(schema_.Add(ByteSizeKey("net.buffer", 64 << 20, "buffer")).ok());
    ASSERT_TRUE(schema_.Add(StringListKey("net.peers", {}, "peers")).ok());
    ASSERT_TRUE(schema_.Add(IntKey("topics.*.partitions", 1, 1, 64, "partitions")).ok());
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) / "config_test" / info->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "junction.toml").string();
  }

  void WriteFile(std::string_view content) { std::ofstream(path_) << content; }

  Result<Config> LoadWith(std::map<std::string, std::string> env, std::vector<Flag> flags = {}) {
    return Load(schema_, {.file = path_, .env = std::move(env), .flags = std::move(flags)});
  }

  std::string Error(const Result<Config>& result) {
    return result.ok() ? "ok" : result.status().message();
  }

  Schema schema_;
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(ConfigTest, NoFileRunsOnDefaults) {
  Result<Config> config =
      Load(schema_, {.default_file = (dir_ / "absent.toml").string(), .env = {}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("log.level"), "info");
  EXPECT_EQ(config->GetDuration("net.timeout"), seconds(5));
  EXPECT_EQ(config->GetByteSize("net.buffer"), 64u << 20);
  EXPECT_EQ(config->SourceOf("log.level").ToString(), "default");
}

TEST_F(ConfigTest, LayersFileThenEnvThenFlags) {
  WriteFile("[log]\nlevel = \"debug\"\nformat = \"text\"\n[service]\nname = \"orders\"\n");
  Result<Config> config = LoadWith({{"JUNCTION_LOG_FORMAT", "json"}, {"HOME", "/root"}},
                                   {{"service.name", "cli", "--service"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("log.level"), "debug");
  EXPECT_EQ(config->SourceOf("log.level").ToString(), path_ + ":2");
  EXPECT_EQ(config->GetString("log.format"), "json");
  EXPECT_EQ(config->SourceOf("log.format").ToString(), "JUNCTION_LOG_FORMAT");
  EXPECT_EQ(config->GetString("service.name"), "cli");
  EXPECT_EQ(config->SourceOf("service.name").ToString(), "--service");
}

TEST_F(ConfigTest, JunctionConfigVariableNamesTheFile) {
  WriteFile("log.level = \"warn\"\n");
  Result<Config> config = Load(schema_, {.default_file = "", .env = {{"JUNCTION_CONFIG", path_}}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("log.level"), "warn");
}

TEST_F(ConfigTest, MissingExplicitFileIsNotFound) {
  Result<Config> by_flag = LoadWith({});
  EXPECT_EQ(by_flag.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Error(by_flag), path_ + ": config file not found");
  Result<Config> by_env = Load(schema_, {.env = {{"JUNCTION_CONFIG", path_}}});
  EXPECT_EQ(by_env.status().code(), StatusCode::kNotFound);
}

TEST_F(ConfigTest, UnknownFileKeySuggestsTheNearestKey) {
  WriteFile("# comment\n[log]\nlevl = \"debug\"\n");
  EXPECT_EQ(Error(LoadWith({})), path_ + ":3: unknown key 'log.levl' (did you mean 'log.level'?)");
}

TEST_F(ConfigTest, BadFileValueNamesFileLineAndKey) {
  WriteFile("\n\nlog.level = \"loud\"\n");
  EXPECT_EQ(Error(LoadWith({})),
            path_ +
                ":3: log.level: expected one of trace, debug, info, warn, error, critical, "
                "off; got \"loud\"");
  WriteFile("[topics.orders]\npartitions = 500\n");
  EXPECT_EQ(Error(LoadWith({})),
            path_ + ":2: topics.orders.partitions: expected an integer in [1, 64]; got 500");
}

TEST_F(ConfigTest, TomlSyntaxErrorCarriesLineAndColumn) {
  WriteFile("[log]\nlevel = \"debug\n");
  std::string error = Error(LoadWith({}));
  EXPECT_TRUE(error.starts_with(path_ + ":2:")) << error;
}

TEST_F(ConfigTest, BadEnvValueNamesTheVariable) {
  Result<Config> config =
      Load(schema_, {.default_file = "", .env = {{"JUNCTION_LOG_FORMAT", "xml"}}});
  EXPECT_EQ(Error(config), "JUNCTION_LOG_FORMAT: expected one of auto, json, text; got \"xml\"");
}

TEST_F(ConfigTest, UnknownJunctionVariableIsAnError) {
  Result<Config> config = Load(schema_, {.default_file = "", .env = {{"JUNCTION_LOG_LEVLE", "x"}}});
  EXPECT_EQ(
      Error(config),
      "JUNCTION_LOG_LEVLE: unknown configuration variable (did you mean JUNCTION_LOG_LEVEL?)");
}

TEST_F(ConfigTest, WildcardTablesComeFromFileAndEnvironment) {
  WriteFile("[topics.orders]\npartitions = 8\n");
  Result<Config> config = LoadWith({{"JUNCTION_TOPICS_PAY_OUT_PARTITIONS", "4"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetInt("topics.orders.partitions"), 8);
  EXPECT_EQ(config->GetInt("topics.pay_out.partitions"), 4);
  EXPECT_EQ(config->GetInt("topics.other.partitions"), 1);
  EXPECT_EQ(config->TableNames("topics"), (std::vector<std::string>{"orders", "pay_out"}));
  std::vector<std::string> keys;
  for (const Entry& entry : config->Entries()) keys.push_back(entry.key);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "log.format", "log.level", "net.buffer", "net.peers", "net.timeout",
                      "service.name", "topics.orders.partitions", "topics.pay_out.partitions"}));
}

TEST_F(ConfigTest, FileTypesFollowTheSchema) {
  WriteFile("[net]\ntimeout = \"1m30s\"\nbuffer = 4096\npeers = [\"a\", \"b\"]\n");
  Result<Config> config = LoadWith({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetDuration("net.timeout"), seconds(90));
  EXPECT_EQ(config->GetByteSize("net.buffer"), 4096u);
  EXPECT_EQ(config->GetStringList("net.peers"), (std::vector<std::string>{"a", "b"}));
  WriteFile("net.timeout = 5\n");
  EXPECT_EQ(Error(LoadWith({})), path_ +
                                     ":1: net.timeout: expected a duration like \"250ms\", "
                                     "\"5s\" or \"2m\"; got 5");
}

TEST(ConfigValueTest, TextSyntaxParsesAndFormatsBack) {
  KeySpec duration = DurationKey("d", seconds(1), "");
  KeySpec bytes = ByteSizeKey("b", 0, "");
  KeySpec list = StringListKey("l", {}, "");
  KeySpec count = IntKey("i", 1, 1, 10, "");
  EXPECT_EQ(std::get<std::chrono::nanoseconds>(*ParseValue(duration, "250ms")), milliseconds(250));
  EXPECT_EQ(FormatValue(*ParseValue(duration, "120s")), "2m");
  EXPECT_FALSE(ParseValue(duration, "5").ok());
  EXPECT_FALSE(ParseValue(duration, "99999999999h").ok());
  EXPECT_EQ(std::get<ByteSize>(*ParseValue(bytes, "64MiB")).bytes, 64u << 20);
  EXPECT_EQ(std::get<ByteSize>(*ParseValue(bytes, "2KB")).bytes, 2000u);
  EXPECT_EQ(FormatValue(ByteSize{64u << 20}), "64MiB");
  EXPECT_FALSE(ParseValue(bytes, "64mb").ok());
  EXPECT_EQ(FormatValue(*ParseValue(list, " a, b ,c")), "a,b,c");
  EXPECT_EQ(ParseValue(count, "11").status().message(),
            "expected an integer in [1, 10]; got \"11\"");
}

TEST(ConfigSchemaTest, RejectsKeysThatCollide) {
  Schema schema;
  ASSERT_TRUE(schema.Add(StringKey("a.b_c", "", "")).ok());
  EXPECT_EQ(schema.Add(StringKey("a_b.c", "", "")).message(),
            "config keys 'a.b_c' and 'a_b.c' both map to environment variable JUNCTION_A_B_C");
  ASSERT_TRUE(schema.Add(IntKey("topics.*.partitions", 1, 1, 8, "")).ok());
  EXPECT_FALSE(schema.Add(IntKey("topics.orders.partitions", 1, 1, 8, "")).ok());
  EXPECT_FALSE(schema.Add(StringKey("topics_x_partitions", "", "")).ok());
  EXPECT_FALSE(schema.Add(StringKey("a.b_c.d", "", "")).ok());  // a.b_c is a value
  EXPECT_FALSE(schema.Add(StringKey("Bad.Name", "", "")).ok());
  EXPECT_FALSE(schema.Add(EnumKey("e", "z", {"x", "y"}, "")).ok());
  EXPECT_FALSE(schema.Add(IntKey("i", 0, 1, 8, "")).ok());
}

}  // namespace
}  // namespace junction::config
