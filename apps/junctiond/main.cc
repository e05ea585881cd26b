// junctiond: the broker daemon (src/server). Configured by junction.toml,
// JUNCTION_* variables and these flags (`junctiond --help`).

#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "junction/config.h"
#include "junction/log.h"
#include "server/daemon.h"
#include "storage/config.h"

namespace {

int Fail(const junction::Status& status) {
  std::cerr << "junctiond: " << status.message() << '\n';
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace junction;  // NOLINT(google-build-using-namespace)
  CLI::App app("junctiond: the Junction broker daemon", "junctiond");
  std::string config_file;
  std::string data_dir;
  std::string listen;
  std::string admin;
  std::string fsync;
  std::string log_level;
  int shards = -1;
  app.add_option("--config", config_file,
                 "Configuration file (default: $JUNCTION_CONFIG, else ./junction.toml)");
  app.add_option("--data-dir", data_dir, "Directory of topics and groups (broker.data_dir)");
  app.add_option("--listen", listen, "HOST:PORT of the wire protocol (broker.listen)");
  app.add_option("--admin", admin,
                 "HOST:PORT of /metrics, /livez, /readyz (broker.admin; empty: off)");
  app.add_option("--fsync", fsync, "always | never | interval=200ms (storage.fsync)");
  app.add_option("--shards", shards, "Event-loop threads, 0: one per CPU (broker.shards)");
  app.add_option("--log-level", log_level, "Lowest level of log lines on stderr")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, std::cout, std::cerr) == 0 ? 0 : 2;
  }
  config::Schema schema;
  for (const Status& s : {config::AddCoreKeys(schema), storage::AddConfigKeys(schema),
                          server::AddConfigKeys(schema)}) {
    if (!s.ok()) return Fail(s);
  }
  config::LoadOptions load;
  load.file = config_file;
  load.env = config::ProcessEnvironment();
  if (!data_dir.empty()) load.flags.push_back({"broker.data_dir", data_dir, "--data-dir"});
  if (!listen.empty()) load.flags.push_back({"broker.listen", listen, "--listen"});
  if (!admin.empty()) load.flags.push_back({"broker.admin", admin, "--admin"});
  if (!fsync.empty()) load.flags.push_back({"storage.fsync", fsync, "--fsync"});
  if (shards >= 0) load.flags.push_back({"broker.shards", std::to_string(shards), "--shards"});
  if (!log_level.empty()) load.flags.push_back({"log.level", log_level, "--log-level"});
  Result<config::Config> config = config::Load(schema, load);
  if (!config.ok()) return Fail(config.status());
  Result<log::Level> level = log::ParseLevel(config->GetString("log.level"));
  Result<log::Format> format = log::ParseFormat(config->GetString("log.format"));
  if (!level.ok()) return Fail(level.status());
  if (!format.ok()) return Fail(format.status());
  log::Options log_options;
  log_options.service = "junctiond";
  log_options.level = *level;
  log_options.format = *format;
  if (Status s = log::Init(log_options); !s.ok()) return Fail(s);
  Result<server::ServerOptions> options = server::OptionsFromConfig(*config);
  if (!options.ok()) return Fail(options.status());
  int code = server::RunDaemon(*options, stdout);
  log::Flush();
  return code;
}
