// topics, groups and dlq: the administration the Bus API offers (on
// junction:// through the wire protocol's admin frames).

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <map>
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

Deadline AdminDeadline() { return Deadline::After(RealClock(), kAdminTimeout); }

// "1.5 MiB", "320 B".
std::string FormatBytes(std::uint64_t bytes) {
  constexpr std::array<const char*, 5> kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
  return text;
}

std::string Joined(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text.empty() ? "-" : text;
}

boost::json::object TopicJson(const TopicInfo& topic) {
  boost::json::object object;
  object["topic"] = topic.name;
  object["partitions"] = topic.options.partitions;
  object["messages"] = topic.messages();
  object["bytes"] = topic.bytes();
  boost::json::array partitions;
  for (const PartitionInfo& p : topic.partitions) {
    boost::json::object part;
    part["partition"] = p.partition.value();
    part["first_offset"] = p.log_start.value();
    part["next_offset"] = p.next_offset.value();
    part["messages"] = p.messages();
    part["bytes"] = p.bytes;
    partitions.push_back(std::move(part));
  }
  object["partition_info"] = std::move(partitions);
  boost::json::array groups;
  for (const std::string& g : topic.groups) groups.emplace_back(g);
  object["groups"] = std::move(groups);
  object["subscribers"] = topic.subscribers;
  const TopicOptions& o = topic.options;
  object["retention_bytes"] =
      o.retention_bytes ? boost::json::value(*o.retention_bytes) : boost::json::value(nullptr);
  object["retention_age_ms"] =
      o.retention_age
          ? boost::json::value(
                std::chrono::duration_cast<std::chrono::milliseconds>(*o.retention_age).count())
          : boost::json::value(nullptr);
  object["dedupe_window_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(o.dedupe_window).count();
  return object;
}

boost::json::object GroupJson(const junction::GroupInfo& info) {
  boost::json::object object;
  object["topic"] = info.topic;
  object["group"] = info.group;
  object["members"] = info.members;
  object["in_flight"] = info.in_flight;
  object["backlog"] = info.backlog;
  object["dead_lettered"] = info.dead_lettered;
  object["dropped_by_retention"] = info.dropped_by_retention;
  object["dead_letter_topic"] = info.dead_letter_topic;
  return object;
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
    context.out << boost::json::serialize(GroupJson(*info)) << '\n';
  } else {
    PrintFields(context, {{"topic", info->topic},
                          {"group", info->group},
                          {"members", std::to_string(info->members)},
                          {"in flight", std::to_string(info->in_flight)},
                          {"backlog", std::to_string(info->backlog)},
                          {"dead lettered", std::to_string(info->dead_lettered)},
                          {"dropped by retention", std::to_string(info->dropped_by_retention)},
                          {"dead-letter topic", info->dead_letter_topic}});
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

std::string DurationText(Duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  return std::to_string(ms / 1000) + "s";
}

Awaitable<int> TopicsList(const Context& context, Bus& bus, const MessagingOptions& /*options*/,
                          const std::atomic<bool>& /*stop*/) {
  Result<std::vector<TopicInfo>> topics = co_await bus.ListTopics(AdminDeadline());
  if (!topics.ok()) co_return Fail(context, "topics ls", topics.status());
  if (context.json) {
    for (const TopicInfo& t : *topics) context.out << boost::json::serialize(TopicJson(t)) << '\n';
    co_return kExitOk;
  }
  if (topics->empty()) {
    context.out << "no topics\n";
    co_return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const TopicInfo& t : *topics) {
    rows.push_back({t.name, std::to_string(t.options.partitions), std::to_string(t.messages()),
                    FormatBytes(t.bytes()), Joined(t.groups), std::to_string(t.subscribers)});
  }
  PrintTable(context, {"TOPIC", "PARTITIONS", "MESSAGES", "SIZE", "GROUPS", "SUBSCRIBERS"}, rows,
             {1, 2, 3, 5});
  co_return kExitOk;
}

Awaitable<int> TopicsInfo(const Context& context, Bus& bus, const MessagingOptions& options,
                          const std::atomic<bool>& /*stop*/) {
  Result<TopicInfo> topic = co_await bus.DescribeTopic(options.topic, AdminDeadline());
  if (!topic.ok()) co_return Fail(context, "topics info " + options.topic, topic.status());
  if (context.json) {
    context.out << boost::json::serialize(TopicJson(*topic)) << '\n';
    co_return kExitOk;
  }
  const TopicOptions& o = topic->options;
  std::string retention;
  if (o.retention_bytes) retention = FormatBytes(*o.retention_bytes) + " per partition";
  if (o.retention_age) {
    retention += (retention.empty() ? "" : ", ") + DurationText(*o.retention_age) + " old";
  }
  if (retention.empty()) retention = "none (kept until deleted or purged)";
  if (o.retention_drops_unacked) retention += "; drops what groups have not acked";
  PrintFields(context, {{"topic", topic->name},
                        {"partitions", std::to_string(o.partitions)},
                        {"messages", std::to_string(topic->messages())},
                        {"size", FormatBytes(topic->bytes())},
                        {"retention", retention},
                        {"dedupe window", DurationText(o.dedupe_window)},
                        {"groups", Joined(topic->groups)},
                        {"subscribers", std::to_string(topic->subscribers)}});
  context.out << '\n';
  std::vector<std::vector<std::string>> rows;
  for (const PartitionInfo& p : topic->partitions) {
    rows.push_back({std::to_string(p.partition.value()), std::to_string(p.log_start.value()),
                    std::to_string(p.next_offset.value()), std::to_string(p.messages()),
                    FormatBytes(p.bytes)});
  }
  PrintTable(context, {"PARTITION", "FIRST", "NEXT", "MESSAGES", "SIZE"}, rows, {0, 1, 2, 3, 4});
  co_return kExitOk;
}

// topics rm and topics purge: both need --yes, and say what they would remove.
Awaitable<int> TopicsRemoval(const Context& context, Bus& bus, const MessagingOptions& options,
                             bool purge) {
  const std::string command = std::string(purge ? "topics purge " : "topics rm ") + options.topic;
  Result<TopicInfo> topic = co_await bus.DescribeTopic(options.topic, AdminDeadline());
  if (!topic.ok()) co_return Fail(context, command, topic.status());
  if (!options.yes) {
    context.err << "junction: " << command << ": this "
                << (purge ? "deletes every message of" : "deletes, with its groups,") << " topic "
                << options.topic << " (" << topic->messages() << " messages, "
                << topic->groups.size() << " groups); add --yes to do it\n";
    co_return kExitUsage;
  }
  Status status;  // (GCC 12: no co_await inside a conditional expression)
  if (purge) {
    status = co_await bus.PurgeTopic(options.topic, AdminDeadline());
  } else {
    status = co_await bus.DeleteTopic(options.topic, AdminDeadline());
  }
  if (!status.ok()) co_return Fail(context, command, status);
  if (context.json) {
    boost::json::object object;
    object["topic"] = options.topic;
    object[purge ? "purged" : "deleted"] = topic->messages();
    context.out << boost::json::serialize(object) << '\n';
  } else {
    context.out << (purge ? "purged " : "deleted topic ") << options.topic << " ("
                << topic->messages() << " messages" << (purge ? " deleted" : "") << ")\n";
  }
  co_return kExitOk;
}

Awaitable<int> TopicsRm(const Context& context, Bus& bus, const MessagingOptions& options,
                        const std::atomic<bool>& /*stop*/) {
  co_return co_await TopicsRemoval(context, bus, options, /*purge=*/false);
}

Awaitable<int> TopicsPurge(const Context& context, Bus& bus, const MessagingOptions& options,
                           const std::atomic<bool>& /*stop*/) {
  co_return co_await TopicsRemoval(context, bus, options, /*purge=*/true);
}

Awaitable<int> GroupsList(const Context& context, Bus& bus, const MessagingOptions& options,
                          const std::atomic<bool>& /*stop*/) {
  Result<std::vector<junction::GroupInfo>> groups =
      co_await bus.ListGroups(options.topic, AdminDeadline());
  if (!groups.ok()) co_return Fail(context, "groups ls", groups.status());
  if (context.json) {
    for (const auto& g : *groups) context.out << boost::json::serialize(GroupJson(g)) << '\n';
    co_return kExitOk;
  }
  if (groups->empty()) {
    context.out << "no groups\n";
    co_return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& g : *groups) {
    rows.push_back({g.topic, g.group, std::to_string(g.members), std::to_string(g.in_flight),
                    std::to_string(g.backlog), std::to_string(g.dead_lettered),
                    g.dead_letter_topic});
  }
  PrintTable(context, {"TOPIC", "GROUP", "MEMBERS", "IN FLIGHT", "BACKLOG", "DEAD LETTERED", "DLQ"},
             rows, {2, 3, 4, 5});
  co_return kExitOk;
}

// Redriving reads a dead-letter topic as this group: what it acked was
// redriven, what it did not is still waiting.
constexpr std::string_view kRedriveGroup = "junction-redrive";

SubscribeOptions RedriveOptions() {
  SubscribeOptions options;
  options.group = std::string(kRedriveGroup);
  options.start = StartPosition::Earliest();
  options.ack_deadline = std::chrono::minutes(5);
  // What one run leaves unacked (a dry run, a message kept back) is free
  // again at once for the next, and never dead-lettered itself.
  options.backoff = {Duration::zero()};
  options.max_deliveries = 1'000'000'000;
  return options;
}

Awaitable<int> DlqList(const Context& context, Bus& bus, const MessagingOptions& /*options*/,
                       const std::atomic<bool>& /*stop*/) {
  Result<std::vector<junction::GroupInfo>> groups = co_await bus.ListGroups("", AdminDeadline());
  if (!groups.ok()) co_return Fail(context, "dlq ls", groups.status());
  Result<std::vector<TopicInfo>> topics = co_await bus.ListTopics(AdminDeadline());
  if (!topics.ok()) co_return Fail(context, "dlq ls", topics.status());
  // Each dead-letter topic: the groups that send to it, and what it holds.
  std::map<std::string, std::vector<std::string>> sources;
  for (const auto& g : *groups) {
    if (g.group != kRedriveGroup) sources[g.dead_letter_topic].push_back(g.topic + "/" + g.group);
  }
  for (const TopicInfo& t : *topics) {
    if (t.name.ends_with(".dlq")) sources.try_emplace(t.name);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [dlq, from] : sources) {
    std::uint64_t messages = 0;
    std::uint64_t waiting = 0;
    for (const TopicInfo& t : *topics) {
      if (t.name == dlq) messages = waiting = t.messages();
    }
    for (const auto& g : *groups) {
      if (g.topic == dlq && g.group == kRedriveGroup) waiting = g.backlog;
    }
    if (context.json) {
      boost::json::object object;
      object["dlq"] = dlq;
      boost::json::array list;
      for (const std::string& s : from) list.emplace_back(s);
      object["sources"] = std::move(list);
      object["messages"] = messages;
      object["waiting"] = waiting;
      context.out << boost::json::serialize(object) << '\n';
    } else {
      rows.push_back({dlq, Joined(from), std::to_string(messages), std::to_string(waiting)});
    }
  }
  if (context.json) co_return kExitOk;
  if (rows.empty()) {
    context.out << "no dead-letter topics\n";
    co_return kExitOk;
  }
  PrintTable(context, {"DLQ", "FROM (TOPIC/GROUP)", "MESSAGES", "WAITING"}, rows, {2, 3});
  co_return kExitOk;
}

Awaitable<int> DlqPeek(const Context& context, Bus& bus, const MessagingOptions& options,
                       const std::atomic<bool>& /*stop*/) {
  const std::string command = "dlq peek " + options.topic;
  Result<TopicInfo> topic = co_await bus.DescribeTopic(options.topic, AdminDeadline());
  if (!topic.ok()) co_return Fail(context, command, topic.status());
  const std::uint64_t limit = options.limit == 0 ? 10 : options.limit;
  std::uint64_t shown = 0;
  for (const PartitionInfo& p : topic->partitions) {
    Offset from = p.log_start;
    while (shown < limit) {
      Result<std::vector<TopicRecord>> records =
          co_await bus.ReadTopic(options.topic, p.partition, from,
                                 static_cast<std::size_t>(limit - shown), AdminDeadline());
      if (!records.ok()) co_return Fail(context, command, records.status());
      if (records->empty()) break;
      for (const TopicRecord& r : *records) {
        PrintMessage(context, options, options.topic, r.partition, r.offset, std::nullopt,
                     r.message, ++shown);
      }
      from = records->back().offset + 1;
    }
  }
  if (!context.json && !options.raw) {
    context.err << shown << " of " << topic->messages() << " stored messages shown\n";
  }
  co_return kExitOk;
}

// The message as it was before it was dead-lettered: without the headers
// the dead-lettering and the redeliveries added.
Message Original(const Message& dead) {
  Message message = dead;
  std::erase_if(message.headers, [](const auto& header) {
    return header.first.starts_with("junction-dlq-") || header.first == kHeaderAttempt;
  });
  return message;
}

Awaitable<int> DlqRedrive(const Context& context, Bus& bus, const MessagingOptions& options,
                          const std::atomic<bool>& stop) {
  const std::string command = "dlq redrive " + options.topic;
  Result<TopicInfo> topic = co_await bus.DescribeTopic(options.topic, AdminDeadline());
  if (!topic.ok()) co_return Fail(context, command, topic.status());
  Result<std::unique_ptr<Subscription>> sub =
      co_await bus.Subscribe(options.topic, RedriveOptions(), AdminDeadline());
  if (!sub.ok()) co_return Fail(context, command, sub.status());
  std::uint64_t handled = 0, redriven = 0, kept = 0, skipped = 0;
  std::map<std::string, std::uint64_t> by_topic;
  Status failure;
  while (!stop && failure.ok() && (options.limit == 0 || handled < options.limit)) {
    std::size_t want = 256;
    if (options.limit != 0) want = std::min<std::uint64_t>(want, options.limit - handled);
    // Whatever is ready within a second: the backlog, not what arrives later.
    Result<std::vector<Delivery>> batch =
        co_await (*sub)->NextBatch(want, Deadline::After(RealClock(), std::chrono::seconds(1)));
    if (!batch.ok() && batch.status().code() == StatusCode::kDeadlineExceeded) break;
    if (!batch.ok()) {
      failure = batch.status();
      break;
    }
    for (const Delivery& d : *batch) {
      ++handled;
      const Message& dead = d.message();
      auto origin = dead.headers.find(std::string(kHeaderDlqTopic));
      if (origin == dead.headers.end()) {
        ++skipped;
        context.err << "junction: " << command << ": skipped " << dead.id << " (offset "
                    << d.offset().value() << "): it has no " << kHeaderDlqTopic << " header\n";
        continue;
      }
      const std::string& target = origin->second;
      if (options.dry_run) {
        ++redriven;
        ++by_topic[target];
        if (context.json) {
          boost::json::object object;
          object["id"] = dead.id;
          object["offset"] = d.offset().value();
          object["to"] = target;
          object["dry_run"] = true;
          context.out << boost::json::serialize(object) << '\n';
        } else {
          context.out << "would redrive " << dead.id << " to " << target << '\n';
        }
        continue;
      }
      // The same id: the event is the same one. Within the target's dedupe
      // window the broker would not store it again, so it stays here.
      Result<PublishResult> published =
          co_await bus.Publish(target, Original(dead), {}, AdminDeadline());
      if (!published.ok()) {
        failure = published.status().WithContext("publishing " + dead.id + " to " + target);
        break;
      }
      if (published->duplicate) {
        ++kept;
        context.err << "junction: " << command << ": kept " << dead.id << ": " << target
                    << " stored this id within its dedupe window; redrive it after the window\n";
        continue;
      }
      // Acked once durable: a crash before it redrives the message again
      // (stored once within the window, at least once after it).
      if (Status acked = co_await d.AckSync(); !acked.ok()) {
        failure = acked.WithContext("acknowledging " + dead.id);
        break;
      }
      ++redriven;
      ++by_topic[target];
      if (context.json) {
        boost::json::object object;
        object["id"] = dead.id;
        object["offset"] = d.offset().value();
        object["to"] = target;
        object["partition"] = published->partition.value();
        object["to_offset"] = published->offset.value();
        context.out << boost::json::serialize(object) << '\n';
      }
    }
  }
  // What was not acked (a dry run, kept or skipped messages) is free again.
  (void)co_await (*sub)->Close();
  if (!context.json) {
    context.out << (options.dry_run ? "would redrive " : "redrove ") << redriven << " message"
                << (redriven == 1 ? "" : "s") << " from " << options.topic;
    std::string targets;
    for (const auto& [name, n] : by_topic) {
      targets += (targets.empty() ? "" : ", ") + name + ": " + std::to_string(n);
    }
    if (!targets.empty()) context.out << " (" << targets << ")";
    if (kept > 0) context.out << "; " << kept << " kept (within a dedupe window)";
    if (skipped > 0) context.out << "; " << skipped << " skipped (no origin header)";
    context.out << '\n';
  }
  if (!failure.ok()) co_return Fail(context, command, failure);
  co_return kExitOk;
}
}  // namespace

void AddAdminCommands(CLI::App& app, MessagingOptions& options,
                      const std::function<void(CLI::App*)>& server) {
  CLI::App* topics = app.add_subcommand("topics", "List, create, inspect, delete and purge topics");
  topics->require_subcommand(1);
  CLI::App* ls = topics->add_subcommand("ls", "Every topic: partitions, messages, size, groups");
  server(ls);
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
  CLI::App* info_topic = topics->add_subcommand("info", "A topic's settings and partitions");
  server(info_topic);
  info_topic->add_option("topic", options.topic, "Topic")->required();
  CLI::App* rm = topics->add_subcommand(
      "rm", "Delete a topic, its messages and its groups (not while subscribed)");
  server(rm);
  rm->add_option("topic", options.topic, "Topic")->required();
  rm->add_flag("-y,--yes", options.yes, "Really delete it");
  CLI::App* purge = topics->add_subcommand(
      "purge", "Delete every stored message; offsets go on, groups move past them");
  server(purge);
  purge->add_option("topic", options.topic, "Topic")->required();
  purge->add_flag("-y,--yes", options.yes, "Really purge it");

  CLI::App* groups = app.add_subcommand("groups", "List, inspect and move consumer groups");
  groups->require_subcommand(1);
  CLI::App* groups_ls =
      groups->add_subcommand("ls", "Groups of a topic (of every topic without one)");
  server(groups_ls);
  groups_ls->add_option("topic", options.topic, "Topic");
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

  CLI::App* dlq = app.add_subcommand("dlq", "Dead-letter topics: list, peek, redrive");
  dlq->require_subcommand(1);
  CLI::App* dlq_ls =
      dlq->add_subcommand("ls", "Dead-letter topics, the groups that feed them, what waits");
  server(dlq_ls);
  CLI::App* peek = dlq->add_subcommand("peek", "Show stored dead letters (nothing is consumed)");
  server(peek);
  peek->add_option("topic", options.topic, "Dead-letter topic")->required();
  peek->add_option("--limit", options.limit, "At most this many (default 10)");
  peek->add_flag("--raw", options.raw, "Print each body alone on its own line");
  CLI::App* redrive = dlq->add_subcommand(
      "redrive", "Publish dead letters again to the topic each came from (same id)");
  server(redrive);
  redrive->add_option("topic", options.topic, "Dead-letter topic")->required();
  redrive->add_flag("--dry-run", options.dry_run, "Say what would be redriven; change nothing");
  redrive->add_option("--limit", options.limit, "At most this many (default: all waiting)");
}

int RunAdmin(const Context& context, const CLI::App& app, const MessagingOptions& options) {
  if (app.got_subcommand("topics")) {
    const CLI::App& topics = *app.get_subcommand("topics");
    if (topics.got_subcommand("ls")) return RunOnBus(context, options, TopicsList, false);
    if (topics.got_subcommand("create")) return RunOnBus(context, options, CreateTopic, false);
    if (topics.got_subcommand("info")) return RunOnBus(context, options, TopicsInfo, false);
    if (topics.got_subcommand("rm")) return RunOnBus(context, options, TopicsRm, false);
    if (topics.got_subcommand("purge")) return RunOnBus(context, options, TopicsPurge, false);
  }
  if (app.got_subcommand("groups")) {
    const CLI::App& groups = *app.get_subcommand("groups");
    if (groups.got_subcommand("ls")) return RunOnBus(context, options, GroupsList, false);
    if (groups.got_subcommand("info")) return RunOnBus(context, options, GroupInfo, false);
    if (groups.got_subcommand("seek")) return RunOnBus(context, options, GroupSeek, false);
  }
  if (app.got_subcommand("dlq")) {
    const CLI::App& dlq = *app.get_subcommand("dlq");
    if (dlq.got_subcommand("ls")) return RunOnBus(context, options, DlqList, false);
    if (dlq.got_subcommand("peek")) return RunOnBus(context, options, DlqPeek, false);
    if (dlq.got_subcommand("redrive")) return RunOnBus(context, options, DlqRedrive, true);
  }
  return -1;
}

}  // namespace junction::cli
