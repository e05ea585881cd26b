// topics, groups and dlq: what the Bus API offers (CreateTopic,
// DescribeGroup, Seek) is built; listing, deleting and purging need admin
// frames of the wire protocol that are not built yet, and say so.

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "cli.h"
#include "junction/clock.h"
#include "junction/config.h"
#include "messaging_internal.h"

namespace junction::cli {
namespace {

constexpr Duration kAdminTimeout = std::chrono::seconds(10);

// Key/value lines with the keys aligned.
void PrintFields(const Context& context,
                 const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t width = 0;
  for (const auto& [name, value] : fields) width = std::max(width, name.size() + 1);
  for (const auto& [name, value] : fields) {
    context.out << Styled(context, kBold, Padded(name + ":", width)) << "  " << value << '\n';
  }
}

Awaitable<int> CreateTopic(const Context& context, Bus& bus, const MessagingOptions& options,
                           const std::atomic<bool>& /*stop*/) {
  TopicOptions topic;
  topic.partitions = options.partitions;
  if (!options.retention_bytes.empty()) {
    Result<config::Value> bytes =
        config::ParseValue(config::ByteSizeKey("retention_bytes", 0, ""), options.retention_bytes);
    if (!bytes.ok()) co_return Fail(context, "topics create: --retention-bytes", bytes.status());
    topic.retention_bytes = std::get<config::ByteSize>(*bytes).bytes;
  }
  if (!options.retention_age.empty()) {
    Result<Duration> age = ParseDuration(options.retention_age);
    if (!age.ok()) co_return Fail(context, "topics create: --retention-age", age.status());
    topic.retention_age = *age;
  }
  if (!options.dedupe_window.empty()) {
    Result<Duration> window = ParseDuration(options.dedupe_window);
    if (!window.ok()) co_return Fail(context, "topics create: --dedupe-window", window.status());
    topic.dedupe_window = *window;
  }
  Status created =
      co_await bus.CreateTopic(options.topic, topic, Deadline::After(RealClock(), kAdminTimeout));
  if (!created.ok()) co_return Fail(context, "topics create " + options.topic, created);
  if (context.json) {
    boost::json::object object;
    object["topic"] = options.topic;
    object["partitions"] = topic.partitions;
    context.out << boost::json::serialize(object) << '\n';
  } else {
    context.out << "topic " << options.topic << ": " << topic.partitions << " partition"
                << (topic.partitions == 1 ? "" : "s") << '\n';
  }
  co_return kExitOk;
}

Awaitable<int> GroupInfo(const Context& context, Bus& bus, const MessagingOptions& options,
                         const std::atomic<bool>& /*stop*/) {
  Result<junction::GroupInfo> info = co_await bus.DescribeGroup(
      options.topic, options.group, Deadline::After(RealClock(), kAdminTimeout));
  if (!info.ok()) {
    co_return Fail(context, "groups info " + options.topic + " " + options.group, info.status());
  }
  if (context.json) {
    boost::json::object object;
    object["topic"] = info->topic;
    object["group"] = info->group;
    object["members"] = info->members;
    object["in_flight"] = info->in_flight;
    object["backlog"] = info->backlog;
    object["dead_lettered"] = info->dead_lettered;
    object["dropped_by_retention"] = info->dropped_by_retention;
    context.out << boost::json::serialize(object) << '\n';
  } else {
    PrintFields(context, {{"topic", info->topic},
                          {"group", info->group},
                          {"members", std::to_string(info->members)},
                          {"in flight", std::to_string(info->in_flight)},
                          {"backlog", std::to_string(info->backlog)},
                          {"dead lettered", std::to_string(info->dead_lettered)},
                          {"dropped by retention", std::to_string(info->dropped_by_retention)}});
  }
  co_return kExitOk;
}

Awaitable<int> GroupSeek(const Context& context, Bus& bus, const MessagingOptions& options,
                         const std::atomic<bool>& /*stop*/) {
  Result<StartPosition> position = ParseStart(options.to, /*allow_offset=*/true);
  if (!position.ok()) co_return Fail(context, "groups seek: --to", position.status());
  Status sought = co_await bus.Seek(options.topic, options.group, *position,
                                    Deadline::After(RealClock(), kAdminTimeout));
  if (!sought.ok()) {
    co_return Fail(context, "groups seek " + options.topic + " " + options.group, sought);
  }
  if (context.json) {
    boost::json::object object;
    object["topic"] = options.topic;
    object["group"] = options.group;
    object["to"] = options.to;
    context.out << boost::json::serialize(object) << '\n';
  } else {
    context.out << "group " << options.group << " of " << options.topic << " moved to "
                << options.to << '\n';
  }
  co_return kExitOk;
}

int NotBuilt(const Context& context, const std::string& command, const std::string& why) {
  context.err << "junction: " << command << ": not built yet: " << why << '\n';
  return kExitFailure;
}

constexpr std::string_view kNoAdminFrames =
    "it needs the admin frames of the wire protocol (docs/formats/wire.md, types 0x40-0x5F), "
    "which junctiond refuses with UNIMPLEMENTED for now";

}  // namespace

void AddAdminCommands(CLI::App& app, MessagingOptions& options,
                      const std::function<void(CLI::App*)>& server) {
  CLI::App* topics = app.add_subcommand("topics", "Create and inspect topics");
  topics->require_subcommand(1);
  CLI::App* create = topics->add_subcommand("create", "Create a topic (OK when identical)");
  server(create);
  create->add_option("topic", options.topic, "Topic")->required();
  create->add_option("-p,--partitions", options.partitions, "Partitions (fixed once created)")
      ->check(CLI::Range(1, 1024));
  create->add_option("--retention-bytes", options.retention_bytes,
                     "Keep at most this much per partition (\"1GiB\")");
  create->add_option("--retention-age", options.retention_age,
                     "Drop segments older than this (\"7d\" is \"168h\")");
  create->add_option("--dedupe-window", options.dedupe_window,
                     "How long a message id is remembered (default 2m)");
  for (const char* name : {"ls", "info", "rm", "purge"}) {
    CLI::App* command = topics->add_subcommand(name, "(not built yet)");
    server(command);
    command->add_option("args", options.unbuilt_args);
  }

  CLI::App* groups = app.add_subcommand("groups", "Inspect and move consumer groups");
  groups->require_subcommand(1);
  CLI::App* info = groups->add_subcommand("info", "Members, in flight, backlog, dead letters");
  server(info);
  info->add_option("topic", options.topic, "Topic")->required();
  info->add_option("group", options.group, "Group")->required();
  CLI::App* seek = groups->add_subcommand(
      "seek", "Move a group in every partition (its in-flight deliveries become stale)");
  server(seek);
  seek->add_option("topic", options.topic, "Topic")->required();
  seek->add_option("group", options.group, "Group")->required();
  seek->add_option("--to", options.to, "earliest | latest | <offset> | <RFC 3339 time>")
      ->required();
  CLI::App* groups_ls = groups->add_subcommand("ls", "(not built yet)");
  server(groups_ls);
  groups_ls->add_option("args", options.unbuilt_args);

  CLI::App* dlq = app.add_subcommand("dlq", "Dead-letter topics (not built yet)");
  dlq->require_subcommand(1);
  for (const char* name : {"ls", "peek", "redrive"}) {
    CLI::App* command = dlq->add_subcommand(name, "(not built yet)");
    server(command);
    command->add_option("args", options.unbuilt_args);
    command->add_flag("--dry-run", options.dry_run, "List what would be redriven");
    command->add_option("--limit", options.limit, "At most this many messages");
  }
}

int RunAdmin(const Context& context, const CLI::App& app, const MessagingOptions& options) {
  if (app.got_subcommand("topics")) {
    const CLI::App& topics = *app.get_subcommand("topics");
    if (topics.got_subcommand("create")) return RunOnBus(context, options, CreateTopic, false);
    for (const char* name : {"ls", "info", "rm", "purge"}) {
      if (topics.got_subcommand(name)) {
        return NotBuilt(context, std::string("topics ") + name, std::string(kNoAdminFrames));
      }
    }
  }
  if (app.got_subcommand("groups")) {
    const CLI::App& groups = *app.get_subcommand("groups");
    if (groups.got_subcommand("info")) return RunOnBus(context, options, GroupInfo, false);
    if (groups.got_subcommand("seek")) return RunOnBus(context, options, GroupSeek, false);
    if (groups.got_subcommand("ls")) {
      return NotBuilt(context, "groups ls", std::string(kNoAdminFrames));
    }
  }
  if (app.got_subcommand("dlq")) {
    return NotBuilt(context, "dlq",
                    std::string(kNoAdminFrames) +
                        "; meanwhile `junction sub <topic>.<group>.dlq --group G` reads one");
  }
  return -1;
}

}  // namespace junction::cli
