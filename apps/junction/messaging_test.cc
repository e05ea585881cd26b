// The messaging commands end to end: a `junction broker` child process on a
// free loopback port, and `junction pub/sub/req/reply/topics/groups` run
// against it as subprocesses. Every process started here is stopped by its
// PID.

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "cli_test_util.h"
#include "junction/bus.h"
#include "junction/clock.h"
#include "tests/support/daemon_process.h"

namespace junction::cli {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

class MessagingTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    std::string url = broker_.Start({JUNCTION_CLI_PATH, "broker", "--shards=1", "--log-level=warn"},
                                    dir_ / "data");
    ASSERT_FALSE(url.empty()) << ReadFile("data.stderr");
    url_ = url;
    env_ = "JUNCTION_URL=" + url;
  }

  void TearDown() override {
    broker_.Signal(SIGTERM);
    EXPECT_EQ(broker_.Wait(30s), 0) << "junction broker did not stop cleanly on SIGTERM";
  }

  Outcome Junction(const std::string& args, const std::string& input = "") {
    return Run(args, env_, input);
  }

  // Starts `junction <args>` in the background (its output in
  // background.out/.err); returns its PID.
  pid_t Background(const std::string& args) {
    std::string command = "cd '" + dir_.string() + "' && exec env -i PATH=/usr/bin:/bin " + env_ +
                          " " + JUNCTION_CLI_PATH + " " + args +
                          " </dev/null >background.out 2>background.err";
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }

  // The exit code of `pid` within `timeout`, else -1 after a SIGKILL by PID.
  static int WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid)
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      std::this_thread::sleep_for(10ms);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }

  // Runs `op` against the daemon through the library, on a bus of its own.
  template <typename T>
  T OnBus(const std::function<Awaitable<T>(Bus&)>& op) {
    Result<std::unique_ptr<Bus>> bus = Bus::Open(url_);
    EXPECT_TRUE(bus.ok()) << bus.status();
    boost::asio::io_context io;
    std::optional<T> out;
    boost::asio::co_spawn(io, op(**bus), [&](const std::exception_ptr& e, T value) {
      if (e) std::rethrow_exception(e);
      out = std::move(value);
    });
    io.run();
    boost::asio::co_spawn(io, (*bus)->Close(), boost::asio::detached);
    io.restart();
    io.run();
    return *std::move(out);
  }

  testing::DaemonProcess broker_;
  std::string url_;
  std::string env_;
};

// Dead-letters `n` messages of `topic` as group `group` (one attempt each).
Awaitable<Status> DeadLetter(Bus& bus, std::string topic, std::string group, int n) {
  SubscribeOptions options;
  options.group = group;
  options.max_deliveries = 1;
  Result<std::unique_ptr<Subscription>> sub =
      co_await bus.Subscribe(topic, options, Deadline::After(RealClock(), 20s));
  if (!sub.ok()) co_return sub.status();
  for (int i = 0; i < n; ++i) {
    Result<Delivery> d = co_await (*sub)->Next(Deadline::After(RealClock(), 20s));
    if (!d.ok()) co_return d.status();
    if (Status s = co_await d->Nack(std::nullopt, "boom"); !s.ok()) co_return s;
  }
  std::string dlq = topic + "." + group + ".dlq";
  for (int tries = 0; tries < 2000; ++tries) {  // stored in the background
    Result<TopicInfo> info = co_await bus.DescribeTopic(dlq, Deadline::After(RealClock(), 20s));
    if (info.ok() && info->messages() == static_cast<std::uint64_t>(n)) break;
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, 10ms);
    co_await t.async_wait(boost::asio::use_awaitable);
  }
  co_return co_await (*sub)->Close();
}

TEST_F(MessagingTest, PublishedMessagesReachAGroupInOrderAndItsAcksEmptyTheBacklog) {
  Outcome created = Junction("topics create orders --partitions 3");
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_EQ(created.out, "topic orders: 3 partitions\n");
  Outcome published = Junction("pub orders 'order {{n}}' --count 3 --key customer-7 -H 'x-b: 2'");
  ASSERT_EQ(published.code, 0) << published.err;
  EXPECT_TRUE(published.out.starts_with("published 3 messages to orders")) << published.out;

  Outcome raw = Junction("sub orders --group billing --from earliest --count 3 --raw --wait 20s");
  ASSERT_EQ(raw.code, 0) << raw.err;
  EXPECT_EQ(raw.out, "order 1\norder 2\norder 3\n");  // one key: one partition, in order

  Outcome info = Junction("--json groups info orders billing");
  ASSERT_EQ(info.code, 0) << info.err;
  boost::json::object group = boost::json::parse(info.out).as_object();
  EXPECT_EQ(group.at("backlog").as_int64(), 0);  // each printed message was acked
  EXPECT_EQ(group.at("in_flight").as_int64(), 0);

  Outcome seek = Junction("groups seek orders billing --to earliest");
  ASSERT_EQ(seek.code, 0) << seek.err;
  Outcome again = Junction("--json groups info orders billing");
  EXPECT_EQ(boost::json::parse(again.out).as_object().at("backlog").as_int64(), 3);
}

TEST_F(MessagingTest, JsonDeliveriesCarryThePositionTheEventAndTheHeaders) {
  ASSERT_EQ(Junction("pub audit '{\"a\":1}' --content-type application/json --type audit.v1 "
                     "--id evt-1 -H trace:abc")
                .code,
            0);
  Outcome sub = Junction("sub audit --group g --from earliest --count 1 --json --wait 20s");
  ASSERT_EQ(sub.code, 0) << sub.err;
  boost::json::object line = boost::json::parse(sub.out).as_object();
  EXPECT_EQ(line.at("topic").as_string(), "audit");
  EXPECT_EQ(line.at("offset").as_int64(), 0);
  EXPECT_EQ(line.at("attempt").as_int64(), 1);
  const boost::json::object& event = line.at("event").as_object();
  EXPECT_EQ(event.at("id").as_string(), "evt-1");
  EXPECT_EQ(event.at("type").as_string(), "audit.v1");
  EXPECT_EQ(event.at("data").at("a").as_int64(), 1);  // JSON data stays JSON
  EXPECT_EQ(line.at("headers").at("trace").as_string(), "abc");
}

TEST_F(MessagingTest, TheSameIdIsStoredOnceAndStdinLinesAreMessages) {
  Outcome first = Junction("--json pub t body --id fixed");
  Outcome second = Junction("--json pub t body --id fixed");
  ASSERT_EQ(first.code, 0) << first.err;
  ASSERT_EQ(second.code, 0) << second.err;
  boost::json::object a = boost::json::parse(first.out).as_object();
  boost::json::object b = boost::json::parse(second.out).as_object();
  EXPECT_FALSE(a.at("duplicate").as_bool());
  EXPECT_TRUE(b.at("duplicate").as_bool());
  EXPECT_EQ(a.at("offset"), b.at("offset"));

  ASSERT_EQ(Junction("pub t --lines", "x\ny\n").code, 0);
  Outcome all = Junction("sub t --group g --from earliest --raw --count 3 --wait 20s");
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(all.out, "body\nx\ny\n");
}

TEST_F(MessagingTest, ReplyRunsItsCommandPerRequest) {
  pid_t replier = Background("reply svc --count 2 --command 'tr a-z A-Z'");
  ASSERT_GT(replier, 0);
  // The responder is up once a request stops failing with "no responders".
  Outcome loud;
  for (int i = 0; i < 200; ++i) {
    loud = Junction("req svc 'make me loud' --timeout 10s");
    if (loud.err.find("no responders") == std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(loud.code, 0) << loud.err;
  EXPECT_EQ(loud.out, "MAKE ME LOUD\n");
  Outcome json = Junction("--json req svc quiet --timeout 10s");
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(boost::json::parse(json.out).at("event").at("data_base64").as_string(),
            "UVVJRVQ=");  // "QUIET"
  EXPECT_EQ(WaitFor(replier, 30s), 0) << ReadFile("background.err");
}

TEST_F(MessagingTest, TopicsGroupsAndDeadLettersAreAdministeredFromTheShell) {
  ASSERT_EQ(Junction("topics create orders --partitions 2 --dedupe-window 0s").code, 0);
  ASSERT_EQ(Junction("pub orders 'order {{n}}' --count 4").code, 0);
  ASSERT_EQ(Junction("pub payments 'payment {{n}}' --count 1").code, 0);
  Outcome ls = Junction("topics ls");
  ASSERT_EQ(ls.code, 0) << ls.err;
  EXPECT_EQ(ls.out.rfind("TOPIC", 0), 0u) << ls.out;
  EXPECT_NE(ls.out.find("orders"), std::string::npos) << ls.out;
  Outcome info = Junction("--json topics info orders");
  ASSERT_EQ(info.code, 0) << info.err;
  boost::json::object orders = boost::json::parse(info.out).as_object();
  EXPECT_EQ(orders.at("messages").as_int64(), 4);
  EXPECT_EQ(orders.at("partitions").as_int64(), 2);

  ASSERT_TRUE(OnBus<Status>([](Bus& bus) { return DeadLetter(bus, "orders", "billing", 2); }).ok());
  ASSERT_TRUE(
      OnBus<Status>([](Bus& bus) { return DeadLetter(bus, "payments", "billing", 1); }).ok());
  Outcome dlq = Junction("--json dlq ls");
  ASSERT_EQ(dlq.code, 0) << dlq.err;
  EXPECT_NE(
      dlq.out.find(
          R"("dlq":"orders.billing.dlq","sources":["orders/billing"],"messages":2,"waiting":2)"),
      std::string::npos)
      << dlq.out;
  Outcome peek = Junction("--json dlq peek orders.billing.dlq");
  ASSERT_EQ(peek.code, 0) << peek.err;
  EXPECT_NE(peek.out.find(R"("junction-dlq-topic":"orders")"), std::string::npos) << peek.out;
  EXPECT_NE(peek.out.find(R"("junction-dlq-last-error":"boom")"), std::string::npos) << peek.out;

  Outcome dry = Junction("dlq redrive orders.billing.dlq --dry-run");
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would redrive 2 messages from orders.billing.dlq (orders: 2)"),
            std::string::npos)
      << dry.out;
  Outcome redrive = Junction("dlq redrive orders.billing.dlq");
  ASSERT_EQ(redrive.code, 0) << redrive.err;
  EXPECT_NE(redrive.out.find("redrove 2 messages from orders.billing.dlq (orders: 2)"),
            std::string::npos)
      << redrive.out;
  Outcome again = Junction("dlq redrive orders.billing.dlq");
  EXPECT_NE(again.out.find("redrove 0 messages"), std::string::npos) << again.out;
  info = Junction("--json topics info orders");
  EXPECT_EQ(boost::json::parse(info.out).at("messages").as_int64(), 6) << "redriven once each";
  // payments keeps the default 2-minute dedupe window: its dead letter stays.
  Outcome kept = Junction("dlq redrive payments.billing.dlq");
  EXPECT_EQ(kept.code, 0) << kept.err;
  EXPECT_NE(kept.out.find("redrove 0 messages from payments.billing.dlq; 1 kept"),
            std::string::npos)
      << kept.out;

  Outcome groups = Junction("groups ls orders");
  ASSERT_EQ(groups.code, 0) << groups.err;
  EXPECT_NE(groups.out.find("orders.billing.dlq"), std::string::npos) << groups.out;

  Outcome unsure = Junction("topics purge orders");
  EXPECT_EQ(unsure.code, 2);
  EXPECT_NE(unsure.err.find("add --yes"), std::string::npos) << unsure.err;
  ASSERT_EQ(Junction("topics purge orders --yes").code, 0);
  info = Junction("--json topics info orders");
  EXPECT_EQ(boost::json::parse(info.out).at("messages").as_int64(), 0);
  Outcome rm = Junction("topics rm orders --yes");
  ASSERT_EQ(rm.code, 0) << rm.err;
  EXPECT_EQ(Junction("topics info orders").code, 1);
}

TEST_F(MessagingTest, FailuresAreClearAndExitOne) {
  Outcome nobody = Junction("req nobody hello");
  EXPECT_EQ(nobody.code, 1);
  EXPECT_EQ(nobody.err, "junction: req: no responders on 'nobody'\n");

  Outcome from = Junction("sub t --from earliest");
  EXPECT_EQ(from.code, 1);
  EXPECT_NE(from.err.find("--from: needs --group"), std::string::npos) << from.err;

  Outcome short_count = Junction("sub empty --group g --count 2 --wait 300ms");
  EXPECT_EQ(short_count.code, 1);
  EXPECT_NE(short_count.err.find("0 of 2 messages within --wait 300ms"), std::string::npos)
      << short_count.err;

  Outcome header = Junction("pub t x -H nocolon");
  EXPECT_EQ(header.code, 1);
  EXPECT_NE(header.err.find("expected name:value"), std::string::npos) << header.err;

  Outcome unknown = Junction("topics info nope");
  EXPECT_EQ(unknown.code, 1);
  EXPECT_EQ(unknown.err, "junction: topics info nope: topic 'nope' does not exist\n");

  Outcome unreachable = Run("pub t x --server junction://127.0.0.1:1?connect_timeout_ms=500");
  EXPECT_EQ(unreachable.code, 1);
  EXPECT_NE(unreachable.err.find("127.0.0.1:1"), std::string::npos) << unreachable.err;
}

TEST_F(MessagingTest, BenchScenariosThroughTheDaemonCountEveryMessage) {
  for (const char* scenario : {"queue", "pubsub", "req", "pub", "sub"}) {
    Outcome run = Junction(std::string("--json --log-level=warn bench ") + scenario +
                           " --msgs 600 --producers 2 --consumers 2 --partitions 2");
    ASSERT_EQ(run.code, 0) << scenario << ": " << run.err;
    boost::json::object result = boost::json::parse(run.out).as_object();
    EXPECT_TRUE(result.at("bus_per_client").as_bool()) << "the default on junction://";
    std::int64_t expected = std::string_view(scenario) == "pubsub" ? 1200 : 600;  // 2 consumers
    EXPECT_EQ(result.at("ops").as_int64(), expected) << scenario;
    EXPECT_EQ(result.at("errors").as_int64(), 0) << scenario;
    EXPECT_GT(result.at("ops_per_second").as_double(), 0) << scenario;
    if (std::string_view(scenario) == "sub") {
      EXPECT_TRUE(result.at("latency").is_null());
    } else {
      EXPECT_EQ(result.at("latency").at("count").as_int64(), expected) << scenario;
      EXPECT_LE(result.at("latency").at("p50_us").as_double(),
                result.at("latency").at("max_us").as_double());
    }
  }
  // Batches of 7 (the last of each producer's claims may be short): every
  // message is still counted once and timed.
  for (const char* scenario : {"pub", "queue"}) {
    Outcome run = Junction(std::string("--json --log-level=warn bench ") + scenario +
                           " --msgs 600 --batch 7 --in-flight 4 --producers 2 --partitions 2");
    ASSERT_EQ(run.code, 0) << scenario << ": " << run.err;
    boost::json::object result = boost::json::parse(run.out).as_object();
    EXPECT_EQ(result.at("batch").as_int64(), 7);
    EXPECT_EQ(result.at("ops").as_int64(), 600) << scenario;
    EXPECT_EQ(result.at("errors").as_int64(), 0) << scenario;
    EXPECT_EQ(result.at("latency").at("count").as_int64(), 600) << scenario;
  }
  // One shared bus (one connection, on a thread of its own) for every client.
  for (const char* scenario : {"queue", "req"}) {
    Outcome run = Junction(std::string("--json --log-level=warn bench ") + scenario +
                           " --bus shared --msgs 300 --producers 2 --consumers 2");
    ASSERT_EQ(run.code, 0) << scenario << ": " << run.err;
    boost::json::object result = boost::json::parse(run.out).as_object();
    EXPECT_FALSE(result.at("bus_per_client").as_bool());
    EXPECT_EQ(result.at("ops").as_int64(), 300) << scenario;
    EXPECT_EQ(result.at("errors").as_int64(), 0) << scenario;
  }
  Outcome batched_request = Junction("bench req --batch 2 --msgs 10");
  EXPECT_EQ(batched_request.code, 1);
  EXPECT_NE(batched_request.err.find("batch applies to publishes"), std::string::npos)
      << batched_request.err;
  Outcome fsync = Junction("bench queue --fsync never --msgs 10");
  EXPECT_EQ(fsync.code, 1);
  EXPECT_NE(fsync.err.find("--fsync applies to file:// URLs"), std::string::npos) << fsync.err;
}

TEST_F(MessagingTest, BenchDaemonPutsEveryGoalBesideItsPeerInOneTable) {
  Outcome run = Junction(
      "--json --log-level=error bench daemon --msgs 1000 --request-msgs 100 --batch 10 "
      "--dir .");
  ASSERT_EQ(run.code, 0) << run.err;
  boost::json::array rows = boost::json::parse(run.out).as_array();
  int with_goal = 0;
  int pipelined = 0;
  std::vector<double> ratios;  // per fsync policy, in order
  std::vector<double> lowest;
  std::vector<double> highest;
  // Per batched load: daemon shards and the rest, CPU us per message, and
  // the rate with every CPU busy at that cost.
  std::map<std::string, std::array<double, 3>, std::less<>> cpu;
  // The NATS core peer (a nats-server this run started): its rate, and the
  // daemon's pipelined pub/sub rate beside it.
  double nats_rate = 0;
  double daemon_pubsub_rate = 0;
  const boost::json::object* nats_ratio = nullptr;
  for (const boost::json::value& row : rows) {
    const boost::json::object& r = row.as_object();
    std::string_view scenario = r.at("scenario").as_string();
    if (scenario.starts_with("vs nats-server: core NATS pub/sub")) {
      nats_rate = r.at("value").as_double();
    }
    if (scenario.starts_with("pubsub via junctiond, non-durable, pipelined")) {
      daemon_pubsub_rate = r.at("value").as_double();
    }
    if (scenario == "vs nats-server: junctiond pubsub, batched / core NATS") nats_ratio = &r;
    // A load's CPU may round to 0 where the kernel counts it in ticks.
    if (scenario.find("CPU per msg") != std::string_view::npos) {
      EXPECT_GE(r.at("value").as_double(), 0) << scenario;
    } else {
      EXPECT_GT(r.at("value").as_double(), 0) << scenario;
    }
    if (r.at("goal").is_string()) {
      ++with_goal;
      EXPECT_TRUE(r.at("met").is_bool());
    }
    if (scenario.find("pipelined") != std::string_view::npos) {
      ++pipelined;  // the throughput goals, measured with PublishBatch of --batch
      EXPECT_NE(scenario.find("batches of 10"), std::string_view::npos) << scenario;
      EXPECT_TRUE(r.at("goal").is_string()) << scenario;
      // Beside the same load on the in-process broker, in this run.
      EXPECT_GT(r.at("ratio").as_double(), 0) << scenario;
    }
    if (scenario.starts_with("queue via junctiond / file://") && r.at("unit") != "ratio") {
      EXPECT_GT(r.at("ratio").as_double(), 0);  // both sides measured in this run
      ratios.push_back(r.at("ratio").as_double());
    }
    for (std::string_view load : {"durable queue, batched: ", "pubsub, batched: "}) {
      if (!scenario.starts_with(load)) continue;
      std::string_view what = scenario.substr(load.size());
      std::size_t k = what.starts_with("daemon shards CPU per msg")            ? 0
                      : what.starts_with("client + blocking pool CPU per msg") ? 1
                                                                               : 2;
      cpu[std::string(load)][k] = r.at("value").as_double();
    }
    if (scenario.find("of 3 rounds") != std::string_view::npos) {
      (scenario.find("lowest") != std::string_view::npos ? lowest : highest)
          .push_back(r.at("value").as_double());
    }
  }
  // The daemon and in-process loads took turns: the ratio of the totals is
  // a weighted mean of the rounds' ratios, so it lies between them.
  ASSERT_EQ(ratios.size(), 2u);
  ASSERT_EQ(lowest.size(), 2u);
  ASSERT_EQ(highest.size(), 2u);
  for (std::size_t i = 0; i < ratios.size(); ++i) {
    EXPECT_LE(lowest[i], ratios[i] * (1 + 1e-9));
    EXPECT_GE(highest[i], ratios[i] * (1 - 1e-9));
  }
  ASSERT_EQ(cpu.size(), 2u);
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(::sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  const double cpus = CPU_COUNT(&allowed);
  for (const auto& [load, v] : cpu) {
    // Every allowed CPU busy at (shards + rest) us per message.
    if (v[0] + v[1] > 0) {
      EXPECT_NEAR(v[2], cpus * 1e6 / (v[0] + v[1]), v[2] * 1e-6) << load;
    }
  }
  EXPECT_EQ(with_goal, 5);  // 0.80 for each fsync, 1M durable, 2.2x request-reply, 2M pubsub
  EXPECT_EQ(pipelined, 2);  // durable queue, pub/sub
  // All 1000 messages reached the NATS subscriber (else the run fails).
  EXPECT_GT(nats_rate, 0);
  ASSERT_NE(nats_ratio, nullptr);
  EXPECT_DOUBLE_EQ(nats_ratio->at("value").as_double(), daemon_pubsub_rate);
  EXPECT_DOUBLE_EQ(nats_ratio->at("peer").as_double(), nats_rate);
  EXPECT_NEAR(nats_ratio->at("ratio").as_double(), daemon_pubsub_rate / nats_rate, 1e-9);
}

TEST_F(MessagingTest, BenchDaemonSaysWhenItHasNoNatsServer) {
  Outcome run = Junction(
      "--log-level=error bench daemon --msgs 1000 --request-msgs 100 --batch 10 --dir . "
      "--nats-server ./no-such-nats-server");
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.err.find("no nats-server"), std::string::npos) << run.err;
}

TEST_F(MessagingTest, BenchBaselineMeasuresTheRoundTripAndFdatasync) {
  Outcome run = Junction("--json bench baseline --seconds 0.2 --dir .");
  ASSERT_EQ(run.code, 0) << run.err;
  boost::json::object result = boost::json::parse(run.out).as_object();
  EXPECT_GT(result.at("tcp_round_trip").at("count").as_int64(), 0);
  EXPECT_GT(result.at("fdatasync").at("count").as_int64(), 0);
  EXPECT_GT(result.at("tcp_round_trip").at("p50_us").as_double(), 0);
}

}  // namespace
}  // namespace junction::cli
