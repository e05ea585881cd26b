// junctiond killed with SIGKILL at random moments, 50 times, while four
// publishers (junction://, fsync=always, a message id each, one publish in
// flight each so that their order is defined) keep publishing and retry with
// the same id whatever fails. Afterwards a group reads the topic from the
// start: no acknowledged message is missing, none is stored twice, each
// producer's messages are stored in its order, and offsets only grow.
//
// The daemon is a child process, restarted on the same port and data
// directory, and stopped by its PID (SIGKILL, and SIGTERM at the end).

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/run_sync.h"
#include "junction/bus.h"
#include "tests/support/daemon_process.h"

namespace junction {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

constexpr int kCycles = 50;
constexpr int kPublishers = 4;
constexpr std::string_view kTopic = "orders";

// A loopback port free right now (the daemon binds it with SO_REUSEADDR, so
// the restarts can take it again after each kill).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ADD_FAILURE() << "no free loopback port: " << std::strerror(errno);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

Message Msg(int producer, std::uint64_t seq) {
  Message m;
  m.id = "p" + std::to_string(producer) + "-" + std::to_string(seq);
  m.source = "/daemon-kill-test";
  m.type = "test.event";
  m.key = "p" + std::to_string(producer);  // one partition per producer: its order is defined
  m.data = std::to_string(seq);
  return m;
}

struct Acked {
  std::uint64_t seq;
  PublishResult result;
};

class DaemonKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One directory per test: ctest runs the tests of this file at once.
    dir_ = std::filesystem::path(::testing::TempDir()) / "daemon_kill_test" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    port_ = FreePort();
  }

  void StartDaemon() {
    std::string url = daemon_.Start(
        {JUNCTIOND_PATH, "--shards=2", "--fsync=always", "--log-level=warn"}, dir_ / "data", port_);
    ASSERT_FALSE(url.empty()) << "junctiond did not start; see " << dir_.string() << "/data.stderr";
    url_ = url;
  }

  // Publishes seq 0, 1, 2, ... one at a time until `stop`; a failed publish
  // is retried with the same message (and so the same id) until it is acked.
  void Publish(int producer, const std::atomic<bool>& stop, std::vector<Acked>& acked) {
    Result<std::unique_ptr<Bus>> bus = Bus::Open(url_ + "?connect_timeout_ms=2000");
    ASSERT_TRUE(bus.ok()) << bus.status();
    for (std::uint64_t seq = 0; !stop;) {
      Result<PublishResult> r = RunSync(
          (*bus)->Publish(kTopic, Msg(producer, seq), {}, Deadline::After(RealClock(), 5s)));
      if (r.ok()) {
        acked.push_back({seq, *r});
        ++seq;
      } else {
        ++failures_;
        std::this_thread::sleep_for(5ms);
      }
    }
    EXPECT_TRUE(RunSync((*bus)->Close()).ok());
  }

  std::filesystem::path dir_;
  int port_ = 0;
  std::string url_;
  testing::DaemonProcess daemon_;
  std::atomic<std::uint64_t> failures_{0};
};

TEST_F(DaemonKillTest, NoAckedMessageIsLostOrStoredTwiceAcrossFiftyKills) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  {
    Result<std::unique_ptr<Bus>> bus = Bus::Open(url_);
    ASSERT_TRUE(bus.ok()) << bus.status();
    TopicOptions topic;
    topic.partitions = 4;
    ASSERT_TRUE(
        RunSync((*bus)->CreateTopic(kTopic, topic, Deadline::After(RealClock(), 10s))).ok());
    ASSERT_TRUE(RunSync((*bus)->Close()).ok());
  }

  std::atomic<bool> stop{false};
  std::vector<std::vector<Acked>> acked(kPublishers);
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] { Publish(p, stop, acked[p]); });
  }
  std::mt19937 random(20261127);
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + random() % 130));
    daemon_.Kill();  // SIGKILL by PID, reaped
    ASSERT_NO_FATAL_FAILURE(StartDaemon()) << "cycle " << cycle;
  }
  std::this_thread::sleep_for(300ms);  // every publisher gets acks after the last restart
  stop = true;
  for (std::thread& t : publishers) t.join();

  std::size_t total_acked = 0;
  std::set<std::string> acked_ids;
  for (int p = 0; p < kPublishers; ++p) {
    total_acked += acked[p].size();
    for (const Acked& a : acked[p]) acked_ids.insert(Msg(p, a.seq).id);
    // Offsets a producer was given only grow (its messages share a partition).
    for (std::size_t i = 1; i < acked[p].size(); ++i) {
      EXPECT_EQ(acked[p][i].result.partition, acked[p][0].result.partition);
      EXPECT_GT(acked[p][i].result.offset, acked[p][i - 1].result.offset)
          << "producer " << p << " seq " << acked[p][i].seq;
    }
  }
  ASSERT_GT(total_acked, static_cast<std::size_t>(kPublishers * kCycles / 4))
      << "too little was published to say anything";

  // Read everything stored, from the start.
  Result<std::unique_ptr<Bus>> bus = Bus::Open(url_);
  ASSERT_TRUE(bus.ok()) << bus.status();
  SubscribeOptions options;
  options.group = "verify";
  options.start = StartPosition::Earliest();
  options.max_in_flight = 4096;
  Result<std::unique_ptr<Subscription>> sub =
      RunSync((*bus)->Subscribe(kTopic, options, Deadline::After(RealClock(), 10s)));
  ASSERT_TRUE(sub.ok()) << sub.status();
  std::map<std::string, int> stored;                   // id -> copies
  std::map<int, std::vector<std::uint64_t>> sequence;  // producer -> seqs in offset order
  std::map<PartitionId, Offset> last_offset;
  std::size_t found = 0;
  while (true) {
    Result<std::vector<Delivery>> batch = RunSync((*sub)->NextBatch(
        1024, Deadline::After(RealClock(), found == acked_ids.size() ? 1s : 10s)));
    if (!batch.ok()) {
      ASSERT_EQ(batch.status().code(), StatusCode::kDeadlineExceeded) << batch.status();
      break;
    }
    for (Delivery& d : *batch) {
      auto [it, first] = last_offset.try_emplace(d.partition(), d.offset());
      if (!first) {
        EXPECT_GT(d.offset(), it->second) << "partition " << d.partition();
        it->second = d.offset();
      }
      if (++stored[d.message().id] == 1 && acked_ids.contains(d.message().id)) ++found;
      int producer = d.message().key->back() - '0';
      sequence[producer].push_back(std::stoull(d.message().data));
      EXPECT_TRUE(RunSync(d.Ack()).ok());
    }
  }
  int duplicates = 0;
  for (const auto& [id, copies] : stored) duplicates += copies - 1;
  int lost = 0;
  for (const std::string& id : acked_ids) lost += stored.contains(id) ? 0 : 1;
  EXPECT_EQ(lost, 0) << "of " << acked_ids.size() << " acknowledged";
  EXPECT_EQ(duplicates, 0);
  for (const auto& [producer, seqs] : sequence) {
    for (std::size_t i = 1; i < seqs.size(); ++i) {
      EXPECT_EQ(seqs[i], seqs[i - 1] + 1) << "producer " << producer << " at " << i;
    }
  }
  ASSERT_TRUE(RunSync((*sub)->Close()).ok());
  ASSERT_TRUE(RunSync((*bus)->Close()).ok());
  RecordProperty("acked", static_cast<int>(total_acked));
  RecordProperty("failed_publishes", static_cast<int>(failures_.load()));
  std::printf("acked %zu messages over %d kills; %llu publish attempts failed and were retried\n",
              total_acked, kCycles, static_cast<unsigned long long>(failures_.load()));
  daemon_.Signal(SIGTERM);
  EXPECT_EQ(daemon_.Wait(30s), 0);
}

// A consumer process killed between receiving a message and acking it: the
// message comes again to the group's next member, with its attempt raised.
TEST_F(DaemonKillTest, AConsumerKilledBeforeItsAckHasTheMessageRedelivered) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  // Forked before this process opens any Bus: the child starts with one thread.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    Result<std::unique_ptr<Bus>> bus = Bus::Open(url_);
    if (!bus.ok()) ::_exit(2);
    SubscribeOptions options;
    options.group = "workers";
    options.ack_deadline = 2s;
    auto sub = RunSync((*bus)->Subscribe(kTopic, options, Deadline::After(RealClock(), 10s)));
    if (!sub.ok()) ::_exit(3);
    char ready = 'r';
    if (::write(pipe_fds[1], &ready, 1) != 1) ::_exit(4);
    auto delivery = RunSync((*sub)->Next(Deadline::After(RealClock(), 30s)));
    if (!delivery.ok()) ::_exit(5);
    std::string id = delivery->message().id;
    if (::write(pipe_fds[1], id.data(), id.size()) != static_cast<ssize_t>(id.size())) ::_exit(6);
    ::pause();  // killed here, never acking
    ::_exit(7);
  }
  ::close(pipe_fds[1]);
  char ready = 0;
  ASSERT_EQ(::read(pipe_fds[0], &ready, 1), 1) << "the consumer process did not subscribe";

  Result<std::unique_ptr<Bus>> bus = Bus::Open(url_);
  ASSERT_TRUE(bus.ok()) << bus.status();
  ASSERT_TRUE(RunSync((*bus)->Publish(kTopic, Msg(0, 1))).ok());
  char id[64] = {};
  ssize_t n = ::read(pipe_fds[0], id, sizeof id - 1);
  ::close(pipe_fds[0]);
  ASSERT_GT(n, 0) << "the consumer process got nothing";
  EXPECT_EQ(std::string(id, static_cast<std::size_t>(n)), Msg(0, 1).id);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);

  SubscribeOptions options;
  options.group = "workers";
  options.ack_deadline = 2s;
  auto sub = RunSync((*bus)->Subscribe(kTopic, options, Deadline::After(RealClock(), 10s)));
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto again = RunSync((*sub)->Next(Deadline::After(RealClock(), 30s)));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->message().id, Msg(0, 1).id);
  EXPECT_EQ(again->attempt(), DeliveryCount(2));
  EXPECT_EQ(again->message().headers.at(std::string(kHeaderAttempt)), "2");
  EXPECT_TRUE(RunSync(again->Ack()).ok());
  ASSERT_TRUE(RunSync((*sub)->Close()).ok());
  ASSERT_TRUE(RunSync((*bus)->Close()).ok());
  daemon_.Signal(SIGTERM);
  EXPECT_EQ(daemon_.Wait(30s), 0);
}

}  // namespace
}  // namespace junction
