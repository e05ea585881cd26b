#include "server/brokers.h"

#include <algorithm>
#include <charconv>
#include <exception>
#include <optional>
#include <tuple>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "broker/partitioner.h"
#include "core/env.h"
#include "junction/log.h"

namespace junction::server {
namespace {

namespace asio = boost::asio;

constexpr std::string_view kLayoutKey = "brokers = ";

// Runs `work` on `io`, which no thread runs yet, from this thread.
template <typename T>
Result<T> RunHere(asio::io_context& io, Awaitable<Result<T>> work) {
  if (io.stopped()) io.restart();
  std::optional<Result<T>> out;
  asio::co_spawn(io, std::move(work), [&out](const std::exception_ptr& e, Result<T> r) {
    out = e ? Result<T>(InternalError("junctiond: a broker's listing threw")) : std::move(r);
  });
  while (!out) {
    if (io.run_one() == 0) break;
  }
  if (io.stopped()) io.restart();
  if (!out) return InternalError("junctiond: a broker's shard ran out of work mid-listing");
  return std::move(*out);
}

Awaitable<Result<bool>> Closed(Bus& bus) {
  Status s = co_await bus.Close();
  if (!s.ok()) co_return s;
  co_return true;
}

Result<std::size_t> ParseLayout(const std::filesystem::path& path, std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    if (!line.starts_with(kLayoutKey)) continue;
    line.remove_prefix(kLayoutKey.size());
    std::size_t count = 0;
    auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), count);
    if (ec != std::errc() || ptr != line.data() + line.size() || count < 1 ||
        count > Brokers::kMaxBrokers) {
      return DataLossError("junctiond: " + path.string() + ": 'brokers' must be 1 to " +
                           std::to_string(Brokers::kMaxBrokers) + ", not '" + std::string(line) +
                           "'");
    }
    return count;
  }
  return DataLossError("junctiond: " + path.string() + " names no 'brokers = N'");
}

// How many brokers the data directory `dir` holds (see Brokers::Open).
Result<std::size_t> LayoutOf(Env& env, const std::filesystem::path& dir, std::size_t wanted) {
  std::filesystem::path path = dir / Brokers::kLayoutFile;
  if (env.FileExists(path)) {
    JUNCTION_ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, path));
    return ParseLayout(path, text);
  }
  std::size_t count = wanted;
  if (env.FileExists(dir)) {
    JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> children, env.GetChildren(dir));
    // Data from before brokers were spread: all of it is broker 0's.
    if (!children.empty()) count = 1;
  } else {
    JUNCTION_RETURN_IF_ERROR(env.CreateDirs(dir));
  }
  std::string text =
      "# junctiond: the topics of this data directory are spread over this many\n"
      "# brokers, broker 0 here and broker N in broker-N/. Set when the\n"
      "# directory was made; a topic is found on its broker by this count.\n";
  text += std::string(kLayoutKey) + std::to_string(count) + "\n";
  JUNCTION_RETURN_IF_ERROR(WriteFileAtomically(env, path, text));
  return count;
}

}  // namespace

Brokers::~Brokers() = default;

std::size_t Brokers::HashedOf(std::string_view topic, std::size_t count) {
  if (count <= 1) return 0;
  return (broker::Murmur2(topic) & 0x7fffffffu) % count;
}

Brokers::Placement Brokers::Find(std::string_view topic) const {
  if (buses_.size() <= 1) return {0, true};
  {
    std::lock_guard lock(mu_);
    auto it = placed_.find(topic);
    if (it != placed_.end()) return {it->second, true};
  }
  return {Hashed(topic), false};
}

std::size_t Brokers::Enter(const std::string& name, std::size_t broker) {
  std::lock_guard lock(mu_);
  return placed_.try_emplace(name, broker).first->second;
}

Result<std::unique_ptr<Brokers>> Brokers::Open(std::string_view url_text, std::size_t count,
                                               const BusOptions& options, Env* env,
                                               std::span<asio::io_context* const> shards) {
  if (shards.empty()) return InvalidArgumentError("junctiond: no shards for the brokers");
  if (count < 1 || count > kMaxBrokers) {
    return InvalidArgumentError("junctiond: brokers must be 1 to " + std::to_string(kMaxBrokers));
  }
  auto parsed = boost::urls::parse_uri(url_text);
  if (!parsed) {
    return InvalidArgumentError("bad bus URL '" + std::string(url_text) +
                                "': " + parsed.error().message());
  }
  std::unique_ptr<Brokers> brokers(new Brokers());
  brokers->shard_count_ = shards.size();
  std::vector<std::string> urls;
  if (parsed->scheme() == "file") {
    std::filesystem::path dir(std::string(parsed->path()));
    if (dir.empty() || !dir.is_absolute()) {
      return InvalidArgumentError("file:// needs an absolute directory: file:///var/lib/junction");
    }
    JUNCTION_ASSIGN_OR_RETURN(count, LayoutOf(env != nullptr ? *env : PosixEnv(), dir, count));
    urls.emplace_back(url_text);
    for (std::size_t i = 1; i < count; ++i) {
      boost::urls::url sub(*parsed);
      sub.set_path((dir / ("broker-" + std::to_string(i))).string());
      urls.emplace_back(sub.buffer());
    }
  } else if (parsed->scheme() == "mem") {
    urls.assign(count, std::string(url_text));  // each an in-memory broker of its own
  } else {
    urls.emplace_back(url_text);  // a bus of another kind is served as it is
  }
  brokers->urls_ = urls;
  Status s;
  for (std::size_t i = 0; i < urls.size() && s.ok(); ++i) {
    BusOptions bus_options = options;
    bus_options.executor = shards[brokers->shard(i)]->get_executor();
    Result<std::unique_ptr<Bus>> bus = Bus::Open(urls[i], bus_options);
    if (bus.ok()) {
      brokers->buses_.push_back(std::move(*bus));
    } else {
      s = bus.status().WithContext("junctiond: opening " + urls[i]);
    }
  }
  if (s.ok()) s = brokers->Scan(shards);
  if (s.ok()) return brokers;
  // Those opened close cleanly (their markers written, their locks let go):
  // a bus on a shard's executor is closed and freed there.
  for (std::size_t i = 0; i < brokers->buses_.size(); ++i) {
    (void)RunHere(*shards[brokers->shard(i)], Closed(brokers->at(i)));
  }
  brokers->buses_.clear();
  for (asio::io_context* shard : shards) {
    shard->run();
    shard->restart();
  }
  return s;
}

Status Brokers::Scan(std::span<asio::io_context* const> shards) {
  if (buses_.size() <= 1) return OkStatus();
  std::unordered_map<std::string, std::size_t> found;  // every topic: its broker
  struct DeadLetters {
    std::string topic;  // the dead-letter topic
    std::string group;  // "<topic>/<group>"
    std::size_t broker;
  };
  std::vector<DeadLetters> dead_letters;
  for (std::size_t i = 0; i < buses_.size(); ++i) {
    asio::io_context& io = *shards[shard(i)];
    JUNCTION_ASSIGN_OR_RETURN(std::vector<TopicInfo> topics,
                              RunHere(io, at(i).ListTopics(Deadline::Infinite())));
    for (TopicInfo& topic : topics) {
      auto [it, added] = found.emplace(topic.name, i);
      if (!added) {
        return FailedPreconditionError("junctiond: topic '" + topic.name + "' is on broker " +
                                       std::to_string(it->second) + " (" + urls_[it->second] +
                                       ") and on broker " + std::to_string(i) + " (" + urls_[i] +
                                       "); remove one copy");
      }
    }
    JUNCTION_ASSIGN_OR_RETURN(std::vector<GroupInfo> groups,
                              RunHere(io, at(i).ListGroups("", Deadline::Infinite())));
    for (GroupInfo& group : groups) {
      if (group.dead_letter_topic.empty()) continue;
      dead_letters.push_back(
          {std::move(group.dead_letter_topic), group.topic + "/" + group.group, i});
    }
  }
  std::unordered_map<std::string, std::string> claimed_by;  // dead-letter topic -> group
  for (const DeadLetters& d : dead_letters) {
    auto [it, added] = found.emplace(d.topic, d.broker);
    if (!added && it->second != d.broker) {
      auto other = claimed_by.find(d.topic);
      std::string holder =
          other != claimed_by.end() ? "the dead letters of group " + other->second : "a topic";
      return FailedPreconditionError(
          "junctiond: the dead-letter topic '" + d.topic + "' of group " + d.group + " (broker " +
          std::to_string(d.broker) + ", " + urls_[d.broker] + ") is " + holder + " on broker " +
          std::to_string(it->second) + " (" + urls_[it->second] +
          "); its broker would make a second topic of that name: delete the group or that topic");
    }
    claimed_by.emplace(d.topic, d.group);
  }
  std::lock_guard lock(mu_);
  placed_.insert(found.begin(), found.end());
  return OkStatus();
}

Awaitable<Status> Brokers::PlaceDeadLetters(std::string topic, const SubscribeOptions& options) {
  if (buses_.size() <= 1 || options.group.empty()) co_return OkStatus();
  std::size_t owner = Owner(topic);
  std::string dlq;
  Result<GroupInfo> group =
      co_await at(owner).DescribeGroup(topic, options.group, Deadline::Infinite());
  if (group.ok()) {
    dlq = std::move(group->dead_letter_topic);
  } else if (group.status().code() == StatusCode::kNotFound) {
    dlq = DeadLetterTopic(topic, options);
  } else {
    co_return group.status();
  }
  if (dlq.empty()) co_return OkStatus();
  if (std::size_t on = Enter(dlq, owner); on != owner) {
    co_return FailedPreconditionError(
        "the dead-letter topic '" + dlq + "' of group '" + options.group +
        "' belongs to another junctiond broker than topic '" + topic +
        "' (it is a topic there, or another group's dead letters); a group's dead letters stay "
        "on its topic's broker: name another dead-letter topic (broker " +
        std::to_string(on) + ", not " + std::to_string(owner) + ")");
  }
  co_return OkStatus();
}

Awaitable<Status> Brokers::Create(std::string topic, TopicOptions options, Deadline deadline) {
  std::size_t broker = buses_.size() <= 1 ? 0 : Enter(topic, Owner(topic));
  co_return co_await at(broker).CreateTopic(topic, options, deadline);
}

Awaitable<Result<std::vector<TopicInfo>>> Brokers::ListTopics(Deadline deadline) {
  std::vector<TopicInfo> all;
  for (const auto& bus : buses_) {
    Result<std::vector<TopicInfo>> topics = co_await bus->ListTopics(deadline);
    if (!topics.ok()) co_return topics.status();
    std::move(topics->begin(), topics->end(), std::back_inserter(all));
  }
  std::sort(all.begin(), all.end(),
            [](const TopicInfo& a, const TopicInfo& b) { return a.name < b.name; });
  co_return all;
}

Awaitable<Result<std::vector<GroupInfo>>> Brokers::ListGroups(std::string topic,
                                                              Deadline deadline) {
  if (!topic.empty()) co_return co_await For(topic).ListGroups(topic, deadline);
  std::vector<GroupInfo> all;
  for (const auto& bus : buses_) {
    Result<std::vector<GroupInfo>> groups = co_await bus->ListGroups("", deadline);
    if (!groups.ok()) co_return groups.status();
    std::move(groups->begin(), groups->end(), std::back_inserter(all));
  }
  std::sort(all.begin(), all.end(), [](const GroupInfo& a, const GroupInfo& b) {
    return std::tie(a.topic, a.group) < std::tie(b.topic, b.group);
  });
  co_return all;
}

}  // namespace junction::server
