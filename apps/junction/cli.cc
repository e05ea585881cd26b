#include "cli.h"

#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "bench_command.h"
#include "commands.h"
#include "junction/config.h"
#include "junction/log.h"
#include "messaging.h"
#include "server/daemon.h"
#include "storage/config.h"

namespace junction::cli {
namespace {

struct GlobalOptions {
  bool json = false;
  std::string log_level;
  std::string config_file;
  std::string color = "auto";
};

// `junction broker`: flags that override broker.* and storage.* keys.
struct BrokerFlags {
  std::string data_dir;
  std::string listen;
  std::string admin;
  std::string fsync;
  int shards = -1;
  int brokers = -1;
};

// Colours only on a terminal, and never when NO_COLOR is set and non-empty
// (https://no-color.org), unless --color=always.
bool UseColor(const std::string& mode) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && no_color[0] != '\0') return false;
  return ::isatty(STDOUT_FILENO) != 0;
}

Result<config::Config> LoadConfig(const config::Schema& schema, const GlobalOptions& options,
                                  const BrokerFlags& broker) {
  config::LoadOptions load;
  load.file = options.config_file;
  load.env = config::ProcessEnvironment();
  if (!options.log_level.empty()) {
    load.flags.push_back({"log.level", options.log_level, "--log-level"});
  }
  if (!broker.data_dir.empty()) {
    load.flags.push_back({"broker.data_dir", broker.data_dir, "--data-dir"});
  }
  if (!broker.listen.empty()) load.flags.push_back({"broker.listen", broker.listen, "--listen"});
  if (!broker.admin.empty()) load.flags.push_back({"broker.admin", broker.admin, "--admin"});
  if (!broker.fsync.empty()) load.flags.push_back({"storage.fsync", broker.fsync, "--fsync"});
  if (broker.shards >= 0) {
    load.flags.push_back({"broker.shards", std::to_string(broker.shards), "--shards"});
  }
  if (broker.brokers >= 0) {
    load.flags.push_back({"broker.brokers", std::to_string(broker.brokers), "--brokers"});
  }
  return config::Load(schema, load);
}

Status StartLogging(const config::Config& config) {
  JUNCTION_ASSIGN_OR_RETURN(log::Level level, log::ParseLevel(config.GetString("log.level")));
  JUNCTION_ASSIGN_OR_RETURN(log::Format format, log::ParseFormat(config.GetString("log.format")));
  log::Options options;
  options.service = config.GetString("service.name");
  options.level = level;
  options.format = format;
  return log::Init(options);
}

int Fail(const Status& status) {
  std::cerr << "junction: " << status.message() << '\n';
  return kExitFailure;
}

int RunBroker(const config::Config& config) {
  Result<server::ServerOptions> options = server::OptionsFromConfig(config);
  if (!options.ok()) return Fail(options.status());
  return server::RunDaemon(*options, stdout);
}

int RunParsed(CLI::App& app, const GlobalOptions& options, const BenchOptions& bench,
              const BrokerFlags& broker, const MessagingOptions& messaging) {
  config::Schema schema;
  if (Status s = config::AddCoreKeys(schema); !s.ok()) return Fail(s);
  if (Status s = storage::AddConfigKeys(schema); !s.ok()) return Fail(s);
  if (Status s = server::AddConfigKeys(schema); !s.ok()) return Fail(s);
  if (Status s = AddMessagingConfigKeys(schema); !s.ok()) return Fail(s);
  Result<config::Config> config = LoadConfig(schema, options, broker);
  if (!config.ok()) return Fail(config.status());
  if (Status s = StartLogging(*config); !s.ok()) return Fail(s);
  log::Debug("configuration loaded", {{"entries", config->Entries().size()}});

  Context context{*config, std::cout, std::cerr, options.json, UseColor(options.color)};
  int code = kExitFailure;
  if (app.got_subcommand("version")) {
    code = RunVersion(context);
  } else if (CLI::App* config_command = app.get_subcommand("config");
             config_command->got_subcommand("print")) {
    code = RunConfigPrint(context);
  } else if (app.got_subcommand("bench")) {
    code = RunBench(context, *app.get_subcommand("bench"), bench);
  } else if (app.got_subcommand("broker")) {
    code = RunBroker(*config);
  } else {
    code = RunMessaging(context, app, messaging);
  }
  std::cout.flush();
  log::Flush();
  if (!std::cout) {
    std::cerr << "junction: cannot write to stdout\n";
    return kExitFailure;
  }
  return code;
}

}  // namespace

int Run(int argc, char** argv) {
  try {
    CLI::App app("junction: messaging and RPC toolkit", "junction");
    app.fallthrough();  // global options also after the subcommand
    app.require_subcommand(1);
    GlobalOptions options;
    // Global options: the last occurrence wins, before or after the subcommand.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_flag("--json", options.json, "Machine-readable JSON on stdout");
    app.add_option("--log-level", options.log_level, "Lowest level of log lines on stderr")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    app.add_option("--config", options.config_file,
                   "Configuration file (default: $JUNCTION_CONFIG, else ./junction.toml)");
    app.add_option("--color", options.color, "Colours on stdout")
        ->check(CLI::IsMember({"auto", "always", "never"}));

    app.add_subcommand("version", "Print version, git commit, build type and compiler");
    CLI::App* config_command = app.add_subcommand("config", "Inspect the configuration");
    config_command->require_subcommand(1);
    config_command->add_subcommand("print", "Print every effective key, its value and source");
    BenchOptions bench;
    AddBenchCommand(app, bench);
    BrokerFlags broker;
    CLI::App* broker_command =
        app.add_subcommand("broker", "Run junctiond in the foreground (Ctrl-C stops it)");
    broker_command->add_option("--data-dir", broker.data_dir,
                               "Directory of topics and groups (broker.data_dir)");
    broker_command->add_option("--listen", broker.listen,
                               "HOST:PORT of the wire protocol (broker.listen)");
    broker_command->add_option("--admin", broker.admin,
                               "HOST:PORT of /metrics, /livez, /readyz (broker.admin; empty: off)");
    broker_command->add_option("--fsync", broker.fsync,
                               "always | never | interval=200ms (storage.fsync)");
    broker_command->add_option("--shards", broker.shards,
                               "Event-loop threads, 0: one per CPU (broker.shards)");
    broker_command->add_option(
        "--brokers", broker.brokers,
        "Brokers a new data directory spreads its topics over, 0: one per shard (broker.brokers)");

    MessagingOptions messaging;
    AddMessagingCommands(app, messaging);

    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      int code = app.exit(e, std::cout, std::cerr);  // help goes to stdout
      return code == 0 ? kExitOk : kExitUsage;
    }
    return RunParsed(app, options, bench, broker, messaging);
  } catch (const std::exception& e) {
    std::cerr << "junction: " << e.what() << '\n';
    return kExitFailure;
  }
}

}  // namespace junction::cli
