// A junctiond's topics spread over its brokers (brokers.h), through a real
// junction:// client: each topic on the broker its name hashes to, found
// there again after a restart (with another shard count too), a directory
// of a single-broker daemon kept as one broker, a group's dead letters on
// its topic's broker, and a broken layout file refused.

#include "server/brokers.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/env.h"
#include "core/run_sync.h"
#include "junction/bus.h"
#include "junction/clock.h"
#include "server/server.h"

namespace junction::server {
namespace {

namespace fs = std::filesystem;

class BrokersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "junction-brokers-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    client_.reset();
    if (server_) {
      EXPECT_TRUE(server_->Stop().ok());
    }
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Result<std::unique_ptr<Server>> StartOn(std::size_t shards, std::size_t brokers = 0) {
    ServerOptions options;
    options.brokers = brokers;
    options.place_connections = place_connections_;
    options.data_dir = dir_;
    options.fsync = "never";
    options.listen = "127.0.0.1:0";
    options.shards = shards;
    return Server::Start(options);
  }
  void Start(std::size_t shards, std::size_t brokers = 0) {
    Result<std::unique_ptr<Server>> server = StartOn(shards, brokers);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    Result<std::unique_ptr<Bus>> client = Bus::Open("junction://" + server_->address());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  void Restart(std::size_t shards) {
    ASSERT_TRUE(RunSync(client_->Close()).ok());
    client_.reset();
    ASSERT_TRUE(server_->Stop().ok());
    server_.reset();
    Start(shards);
  }
  // The directory broker `i` of a daemon on dir_ keeps its topics in.
  fs::path TopicsOf(std::size_t i) const {
    return (i == 0 ? dir_ : dir_ / ("broker-" + std::to_string(i))) / "topics";
  }
  Deadline Soon() const { return Deadline::After(RealClock(), std::chrono::seconds(10)); }

  Message Text(std::string id, std::string data) {
    Message m;
    m.id = std::move(id);
    m.source = "/test";
    m.type = "test";
    m.data = std::move(data);
    return m;
  }

  fs::path dir_;
  bool place_connections_ = true;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Bus> client_;
};

std::vector<std::string> Names(const std::vector<TopicInfo>& topics) {
  std::vector<std::string> names;
  for (const TopicInfo& t : topics) names.push_back(t.name);
  return names;
}

TEST_F(BrokersTest, TopicsGoWhereTheirNamesHashAndAreFoundThereAfterARestart) {
  Start(2);  // a new directory: one broker per shard
  std::vector<std::string> names;
  for (int n = 0; n < 12; ++n) names.push_back("spread-" + std::to_string(n));
  for (const std::string& name : names) {
    ASSERT_TRUE(RunSync(client_->CreateTopic(name, {}, Soon())).ok()) << name;
    ASSERT_TRUE(
        RunSync(client_->Publish(name, Text(name + "-1", "hello " + name), {}, Soon())).ok());
  }
  std::size_t on_second = 0;
  for (const std::string& name : names) {
    std::size_t owner = Brokers::HashedOf(name, 2);
    on_second += owner;
    EXPECT_TRUE(fs::is_directory(TopicsOf(owner) / name)) << name;
    EXPECT_FALSE(fs::exists(TopicsOf(1 - owner) / name)) << name;
  }
  EXPECT_GT(on_second, 0u);  // both brokers hold some (12 names: not all on one)
  EXPECT_LT(on_second, names.size());
  Result<std::vector<TopicInfo>> listed = RunSync(client_->ListTopics(Soon()));
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(Names(*listed), sorted);  // both brokers', in name order

  // One shard now: the directory still has two brokers, so every topic is
  // found where it was, with its message.
  Restart(1);
  listed = RunSync(client_->ListTopics(Soon()));
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(Names(*listed), sorted);
  for (const std::string& name : names) {
    Result<std::vector<TopicRecord>> records =
        RunSync(client_->ReadTopic(name, PartitionId(0), Offset(0), 10, Soon()));
    ASSERT_TRUE(records.ok()) << name << ": " << records.status();
    ASSERT_EQ(records->size(), 1u) << name;
    EXPECT_EQ((*records)[0].message.data, "hello " + name);
    // Its id is still within the dedupe window of its own broker.
    Result<PublishResult> again =
        RunSync(client_->Publish(name, Text(name + "-1", "again"), {}, Soon()));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->duplicate) << name;
  }
  std::ifstream layout(dir_ / Brokers::kLayoutFile);
  std::string text((std::istreambuf_iterator<char>(layout)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("brokers = 2\n"), std::string::npos) << text;
}

TEST_F(BrokersTest, ADirectoryOfASingleBrokerStaysOneBroker) {
  // What a daemon wrote before brokers were spread: one broker's data in
  // the directory itself, no layout file.
  Start(2, 1);
  for (int n = 0; n < 8; ++n) {
    std::string name = "old-" + std::to_string(n);
    ASSERT_TRUE(RunSync(client_->CreateTopic(name, {}, Soon())).ok());
    ASSERT_TRUE(RunSync(client_->Publish(name, Text(name, "kept"), {}, Soon())).ok());
  }
  ASSERT_TRUE(RunSync(client_->Close()).ok());
  client_.reset();
  ASSERT_TRUE(server_->Stop().ok());
  server_.reset();
  ASSERT_TRUE(fs::remove(dir_ / Brokers::kLayoutFile));
  Start(2);
  for (int n = 0; n < 8; ++n) {
    std::string name = "old-" + std::to_string(n);
    Result<std::vector<TopicRecord>> records =
        RunSync(client_->ReadTopic(name, PartitionId(0), Offset(0), 10, Soon()));
    ASSERT_TRUE(records.ok()) << name << ": " << records.status();
    ASSERT_EQ(records->size(), 1u);
    EXPECT_EQ((*records)[0].message.data, "kept");
  }
  // New topics go to the one broker too.
  ASSERT_TRUE(RunSync(client_->CreateTopic("new-one", {}, Soon())).ok());
  EXPECT_TRUE(fs::is_directory(TopicsOf(0) / "new-one"));
  EXPECT_FALSE(fs::exists(dir_ / "broker-1"));
}

// A topic and group whose default dead-letter topic hashes to the other
// broker.
struct Split {
  std::string topic;
  SubscribeOptions group;
};
Split SplitGroup() {
  for (int n = 0;; ++n) {
    Split s{"orders-" + std::to_string(n), {}};
    s.group.group = "billing";
    if (Brokers::HashedOf(s.topic, 2) != Brokers::HashedOf(DeadLetterTopic(s.topic, s.group), 2)) {
      return s;
    }
  }
}

TEST_F(BrokersTest, DeadLettersGoToTheTopicOnTheGroupsBroker) {
  Start(2);
  Split split = SplitGroup();
  std::string dlq = DeadLetterTopic(split.topic, split.group);
  std::size_t owner = Brokers::HashedOf(split.topic, 2);
  split.group.max_deliveries = 1;
  ASSERT_TRUE(RunSync(client_->CreateTopic(split.topic, {}, Soon())).ok());
  Result<std::unique_ptr<Subscription>> sub =
      RunSync(client_->Subscribe(split.topic, split.group, Soon()));
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(RunSync(client_->Publish(split.topic, Text("m1", "poison"), {}, Soon())).ok());
  Result<Delivery> delivery = RunSync((*sub)->Next(Soon()));
  ASSERT_TRUE(delivery.ok()) << delivery.status();
  ASSERT_TRUE(RunSync(delivery->Nack(Duration::zero(), "cannot parse")).ok());

  // The group's broker made the dead-letter topic on itself, and the client
  // finds it there by name. (The move is asynchronous: the topic can exist
  // a moment before the message is stored in it.)
  Result<TopicInfo> info = NotFoundError("not yet");
  Result<std::vector<TopicRecord>> records = NotFoundError("not yet");
  for (int tries = 0; tries < 500 && !(records.ok() && !records->empty()); ++tries) {
    info = RunSync(client_->DescribeTopic(dlq, Soon()));
    if (info.ok())
      records = RunSync(client_->ReadTopic(dlq, PartitionId(0), Offset(0), 10, Soon()));
    if (!records.ok() || records->empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(fs::is_directory(TopicsOf(owner) / dlq));
  EXPECT_FALSE(fs::exists(TopicsOf(1 - owner) / dlq));
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].message.data, "poison");
  ASSERT_TRUE(RunSync((*sub)->Close()).ok());

  // After a restart the dead-letter topic is found on the group's broker.
  Restart(2);
  records = RunSync(client_->ReadTopic(dlq, PartitionId(0), Offset(0), 10, Soon()));
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(records->size(), 1u);
  Result<std::vector<TopicInfo>> listed = RunSync(client_->ListTopics(Soon()));
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(Names(*listed), (std::vector<std::string>{split.topic, dlq}));
}

TEST_F(BrokersTest, AGroupsDeadLetterTopicIsReservedOnItsBroker) {
  Start(2);
  Split split = SplitGroup();
  std::string dlq = DeadLetterTopic(split.topic, split.group);
  std::size_t owner = Brokers::HashedOf(split.topic, 2);
  ASSERT_TRUE(RunSync(client_->CreateTopic(split.topic, {}, Soon())).ok());
  Result<std::unique_ptr<Subscription>> sub =
      RunSync(client_->Subscribe(split.topic, split.group, Soon()));
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(RunSync((*sub)->Close()).ok());
  // Made by hand before any dead letter: on the group's broker, not where
  // its name hashes, so the group's dead letters would land in it.
  ASSERT_TRUE(RunSync(client_->CreateTopic(dlq, {}, Soon())).ok());
  EXPECT_TRUE(fs::is_directory(TopicsOf(owner) / dlq));
  ASSERT_TRUE(RunSync(client_->DeleteTopic(dlq, Soon())).ok());
  EXPECT_FALSE(fs::exists(TopicsOf(owner) / dlq));
  // After a restart nothing is in memory: the group on disk reserves the
  // name again, before any member subscribes.
  Restart(2);
  ASSERT_TRUE(RunSync(client_->CreateTopic(dlq, {}, Soon())).ok());
  EXPECT_TRUE(fs::is_directory(TopicsOf(owner) / dlq));
  EXPECT_FALSE(fs::exists(TopicsOf(1 - owner) / dlq));
}

TEST_F(BrokersTest, ADeadLetterTopicOnAnotherBrokerIsRefused) {
  Start(2);
  Split split = SplitGroup();
  std::string dlq = DeadLetterTopic(split.topic, split.group);
  ASSERT_TRUE(RunSync(client_->CreateTopic(split.topic, {}, Soon())).ok());
  // The dead-letter topic exists before the group, where its name hashes.
  ASSERT_TRUE(RunSync(client_->CreateTopic(dlq, {}, Soon())).ok());
  Result<std::unique_ptr<Subscription>> sub =
      RunSync(client_->Subscribe(split.topic, split.group, Soon()));
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.status().code(), StatusCode::kFailedPrecondition) << sub.status();
  EXPECT_NE(sub.status().message().find(dlq), std::string::npos) << sub.status();
  // A name that is no topic yet is entered on the topic's broker, even
  // when it hashes to the other one, and made there.
  std::size_t owner = Brokers::HashedOf(split.topic, 2);
  SubscribeOptions other = split.group;
  for (int n = 0;
       other.dead_letter_topic.empty() || Brokers::HashedOf(other.dead_letter_topic, 2) == owner;
       ++n) {
    other.dead_letter_topic = split.topic + ".failed-" + std::to_string(n);
  }
  Result<std::unique_ptr<Subscription>> ok =
      RunSync(client_->Subscribe(split.topic, other, Soon()));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_TRUE(RunSync((*ok)->Close()).ok());
  ASSERT_TRUE(RunSync(client_->CreateTopic(other.dead_letter_topic, {}, Soon())).ok());
  EXPECT_TRUE(fs::is_directory(TopicsOf(owner) / other.dead_letter_topic));
  // Ephemeral subscriptions have no dead letters.
  Result<std::unique_ptr<Subscription>> ephemeral =
      RunSync(client_->Subscribe(split.topic, {}, Soon()));
  ASSERT_TRUE(ephemeral.ok()) << ephemeral.status();
  ASSERT_TRUE(RunSync((*ephemeral)->Close()).ok());
}

// One topic on each broker.
std::vector<std::string> TopicPerBroker() {
  std::vector<std::string> topics(2);
  for (int n = 0; topics[0].empty() || topics[1].empty(); ++n) {
    std::string name = "per-broker-" + std::to_string(n);
    topics[Brokers::HashedOf(name, 2)] = name;
  }
  return topics;
}

TEST_F(BrokersTest, GroupsOnTwoBrokersCannotShareADeadLetterTopic) {
  Start(2);
  std::vector<std::string> topics = TopicPerBroker();
  for (const std::string& t : topics)
    ASSERT_TRUE(RunSync(client_->CreateTopic(t, {}, Soon())).ok());
  // Either order: the first group's broker gets the name, the second is
  // refused (its dead letters would make a second topic of that name).
  for (std::size_t first : {0u, 1u}) {
    SubscribeOptions group;
    group.group = "audit-" + std::to_string(first);  // a new group each time
    group.dead_letter_topic = "shared.dlq." + std::to_string(first);
    Result<std::unique_ptr<Subscription>> a =
        RunSync(client_->Subscribe(topics[first], group, Soon()));
    ASSERT_TRUE(a.ok()) << a.status();
    Result<std::unique_ptr<Subscription>> b =
        RunSync(client_->Subscribe(topics[1 - first], group, Soon()));
    ASSERT_FALSE(b.ok()) << "first on broker " << first;
    EXPECT_EQ(b.status().code(), StatusCode::kFailedPrecondition) << b.status();
    EXPECT_NE(b.status().message().find(group.dead_letter_topic), std::string::npos);
    ASSERT_TRUE(RunSync((*a)->Close()).ok());
    // The name is the first group's broker's from now on.
    ASSERT_TRUE(RunSync(client_->CreateTopic(group.dead_letter_topic, {}, Soon())).ok());
    EXPECT_TRUE(fs::is_directory(TopicsOf(first) / group.dead_letter_topic));
  }
}

// `n` publishes to `topic` at once (pipelined on one connection); how many
// were stored.
Awaitable<int> PublishAtOnce(Bus& bus, std::string topic, int n) {
  auto executor = co_await boost::asio::this_coro::executor;
  int stored = 0;
  int done = 0;
  boost::asio::steady_timer all(executor, boost::asio::steady_timer::time_point::max());
  for (int i = 0; i < n; ++i) {
    Message m;
    m.id = topic + "-at-once-" + std::to_string(i);
    m.source = "/test";
    m.type = "test";
    m.data = "at once";
    boost::asio::co_spawn(executor,
                          bus.Publish(topic, std::move(m), {},
                                      Deadline::After(RealClock(), std::chrono::seconds(10))),
                          [&](const std::exception_ptr& e, const Result<PublishResult>& r) {
                            if (!e && r.ok()) ++stored;
                            if (++done == n) all.cancel();
                          });
  }
  while (done < n) {
    boost::system::error_code ec;
    co_await all.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
  co_return stored;
}

TEST_F(BrokersTest, AConnectionMovesToTheShardOfItsFirstTopicsBroker) {
  // Connections are handed to the shards in turn from shard 0; broker i
  // runs on shard i.
  Start(2);  // connection 1: shard 0
  std::vector<std::string> topics = TopicPerBroker();
  const std::string& far = topics[1];
  ASSERT_TRUE(RunSync(client_->CreateTopic(far, {}, Soon())).ok());  // not a topic frame
  EXPECT_EQ(server_->stats().connections_moved, 0u);
  ASSERT_TRUE(RunSync(client_->Publish(far, Text("first", "moves"), {}, Soon())).ok());
  EXPECT_EQ(server_->stats().connections_moved, 1u);

  // Connection 2 lands on shard 1, where `far`'s broker runs: it stays.
  Result<std::unique_ptr<Bus>> second = Bus::Open("junction://" + server_->address());
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(RunSync((*second)->Publish(far, Text("second", "stays"), {}, Soon())).ok());
  EXPECT_EQ(server_->stats().connections_moved, 1u);

  // Connection 3 (shard 0) starts with 64 publishes in flight: the first
  // moves it, the other 63 are read and answered on the new shard.
  Result<std::unique_ptr<Bus>> third = Bus::Open("junction://" + server_->address());
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(RunSync(PublishAtOnce(**third, far, 64)), 64);
  EXPECT_EQ(server_->stats().connections_moved, 2u);

  // The moved connection goes on working: a group on it gets all 66, a
  // topic on the other broker is still reached (through a hop).
  SubscribeOptions group;
  group.group = "readers";
  Result<std::unique_ptr<Subscription>> sub = RunSync(client_->Subscribe(far, group, Soon()));
  ASSERT_TRUE(sub.ok()) << sub.status();
  std::size_t received = 0;
  while (received < 66) {
    Result<std::vector<Delivery>> batch = RunSync((*sub)->NextBatch(100, Soon()));
    ASSERT_TRUE(batch.ok()) << batch.status() << " after " << received;
    for (Delivery& d : *batch) ASSERT_TRUE(RunSync(d.Ack()).ok());
    received += batch->size();
  }
  EXPECT_EQ(received, 66u);
  ASSERT_TRUE(RunSync((*sub)->Close()).ok());
  ASSERT_TRUE(RunSync(client_->CreateTopic(topics[0], {}, Soon())).ok());
  ASSERT_TRUE(RunSync(client_->Publish(topics[0], Text("near", "hop"), {}, Soon())).ok());
  EXPECT_EQ(server_->stats().connections_moved, 2u);  // once only
  ASSERT_TRUE(RunSync((*second)->Close()).ok());
  ASSERT_TRUE(RunSync((*third)->Close()).ok());
}

TEST_F(BrokersTest, ConnectionsStayWhereTheyWereAcceptedWhenPlacementIsOff) {
  place_connections_ = false;
  Start(2);
  std::vector<std::string> topics = TopicPerBroker();
  ASSERT_TRUE(RunSync(client_->CreateTopic(topics[1], {}, Soon())).ok());
  ASSERT_TRUE(RunSync(client_->Publish(topics[1], Text("first", "stays"), {}, Soon())).ok());
  EXPECT_EQ(RunSync(PublishAtOnce(*client_, topics[1], 16)), 16);
  EXPECT_EQ(server_->stats().connections_moved, 0u);
}

TEST_F(BrokersTest, ABrokenLayoutFileIsAClearError) {
  {
    std::ofstream layout(dir_ / Brokers::kLayoutFile);
    layout << "brokers = many\n";
  }
  Result<std::unique_ptr<Server>> server = StartOn(2);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kDataLoss) << server.status();
  EXPECT_NE(server.status().message().find("junctiond.layout"), std::string::npos);
  {
    std::ofstream layout(dir_ / Brokers::kLayoutFile);
    layout << "# nothing\n";
  }
  server = StartOn(2);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kDataLoss) << server.status();
}

TEST_F(BrokersTest, ABrokerThatCannotOpenLeavesTheOthersClosed) {
  // Broker 1's directory is held (its state lock): start-up fails, and
  // broker 0 (opened first) is closed again, so a second start succeeds
  // once the holder is gone.
  Start(2);
  ASSERT_TRUE(RunSync(client_->Close()).ok());
  client_.reset();
  ASSERT_TRUE(server_->Stop().ok());
  server_.reset();
  Result<std::unique_ptr<FileLock>> holder =
      PosixEnv().LockFile(dir_ / "broker-1" / "state" / "LOCK");
  ASSERT_TRUE(holder.ok()) << holder.status();
  Result<std::unique_ptr<Server>> server = StartOn(2);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kUnavailable) << server.status();
  EXPECT_NE(server.status().message().find("broker-1"), std::string::npos) << server.status();
  holder->reset();
  Start(2);
}

}  // namespace
}  // namespace junction::server
