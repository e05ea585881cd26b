// Runs the built junctiond as a subprocess on loopback: a client reaches it
// over junction://, SIGTERM stops it cleanly (state kept, clean-shutdown
// markers written), and a second signal during a slow stop exits at once.
// Every daemon started here is stopped by its PID.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "codec/wire.h"
#include "junction/bus.h"
#include "tests/support/daemon_process.h"

namespace junction {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

// junctiond on `dir`, listening on a free loopback port, with two shards.
class Daemon : public testing::DaemonProcess {
 public:
  void Start(const std::filesystem::path& dir) {
    std::string url = DaemonProcess::Start({JUNCTIOND_PATH, "--shards=2", "--log-level=warn"}, dir);
    ASSERT_FALSE(url.empty()) << "junctiond printed no URL; see " << dir.string() << ".stderr";
  }
};

// Runs `a` on a fresh io_context and returns its result.
template <typename T>
T RunSync(Awaitable<T> a) {
  boost::asio::io_context ctx;
  std::future<T> f = boost::asio::co_spawn(ctx, std::move(a), boost::asio::use_future);
  ctx.run();
  return f.get();
}

Message Msg(std::string id) {
  Message m;
  m.id = std::move(id);
  m.source = "/junctiond-test";
  m.type = "test.event";
  m.data = "payload";
  return m;
}

class JunctiondTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = std::filesystem::path(::testing::TempDir()) / "junctiond_test" / info->name();
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    dir_ = root_ / "data";
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(root_);
  }

  std::filesystem::path root_;
  std::filesystem::path dir_;
};

TEST_F(JunctiondTest, SigtermStopsCleanlyAndTheStateSurvives) {
  Daemon daemon;
  ASSERT_NO_FATAL_FAILURE(daemon.Start(dir_));
  {
    Result<std::unique_ptr<Bus>> bus = Bus::Open(daemon.url());
    ASSERT_TRUE(bus.ok()) << bus.status();
    Status s = RunSync([&]() -> Awaitable<Status> {
      for (int i = 0; i < 10; ++i) {
        Result<PublishResult> r = co_await (*bus)->Publish("orders", Msg("m" + std::to_string(i)));
        if (!r.ok()) co_return r.status();
      }
      SubscribeOptions group;
      group.group = "billing";
      Result<std::unique_ptr<Subscription>> sub =
          co_await (*bus)->Subscribe("orders", group, Deadline::Infinite());
      if (!sub.ok()) co_return sub.status();
      // Ack the first four only.
      for (int i = 0; i < 4; ++i) {
        Result<Delivery> d = co_await (*sub)->Next(Deadline::Infinite());
        if (!d.ok()) co_return d.status();
        if (Status a = co_await d->AckSync(); !a.ok()) co_return a;
      }
      co_return co_await (*bus)->Close();
    }());
    ASSERT_TRUE(s.ok()) << s;
  }
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(30s), 0);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "topics" / "orders" / "0" / "clean-shutdown"));

  Daemon again;
  ASSERT_NO_FATAL_FAILURE(again.Start(dir_));
  Result<std::unique_ptr<Bus>> bus = Bus::Open(again.url());
  ASSERT_TRUE(bus.ok()) << bus.status();
  std::vector<std::string> ids;
  bool duplicate = false;
  Status s = RunSync([&]() -> Awaitable<Status> {
    SubscribeOptions group;
    group.group = "billing";
    Result<std::unique_ptr<Subscription>> sub =
        co_await (*bus)->Subscribe("orders", group, Deadline::Infinite());
    if (!sub.ok()) co_return sub.status();
    while (true) {
      Result<std::vector<Delivery>> batch = co_await (*sub)->NextBatch(100, Deadline::Past());
      if (!batch.ok()) break;
      for (const Delivery& d : *batch) ids.push_back(d.message().id);
    }
    // The dedupe window survived the restart too.
    Result<PublishResult> r = co_await (*bus)->Publish("orders", Msg("m3"));
    if (!r.ok()) co_return r.status();
    duplicate = r->duplicate;
    co_return co_await (*bus)->Close();
  }());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ids, (std::vector<std::string>{"m4", "m5", "m6", "m7", "m8", "m9"}));
  EXPECT_TRUE(duplicate);
  again.Signal(SIGINT);
  EXPECT_EQ(again.Wait(30s), 0);
}

TEST_F(JunctiondTest, ASecondSignalDuringTheStopExitsAtOnce) {
  Daemon daemon;
  ASSERT_NO_FATAL_FAILURE(daemon.Start(dir_));
  // A client that sends PINGs and never reads the PONGs: once the
  // daemon's buffers toward it are full, its graceful stop cannot finish
  // that connection and waits out its drain (10 s).
  std::size_t colon = daemon.url().rfind(':');
  int port = std::stoi(daemon.url().substr(colon + 1));
  signal(SIGPIPE, SIG_IGN);  // a closed connection is an error below, not a dead test
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::vector<std::byte> out(std::begin(codec::kPreamble), std::end(codec::kPreamble));
  codec::FrameWriter w(out);
  codec::EncodeHello(w, {.heartbeat = 60s, .client = "never-reads"});
  ASSERT_EQ(write(fd, out.data(), out.size()), static_cast<ssize_t>(out.size()));
  out.clear();
  for (int i = 0; i < 1000; ++i) codec::EncodePing(w, codec::FrameType::kPing, i);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  // Until the daemon stops reading (its send buffer is full) and ours fills.
  auto until = std::chrono::steady_clock::now() + 20s;
  std::size_t idle_rounds = 0;
  std::size_t pos = 0;  // a write may take part of the buffer: the rest goes next
  while (idle_rounds < 50 && std::chrono::steady_clock::now() < until) {
    ssize_t n = write(fd, out.data() + pos, out.size() - pos);
    ASSERT_TRUE(n > 0 || errno == EAGAIN) << "write: " << std::strerror(errno);
    if (n > 0) {
      idle_rounds = 0;
      pos = (pos + static_cast<std::size_t>(n)) % out.size();
    } else {
      ++idle_rounds;
      std::this_thread::sleep_for(10ms);
    }
  }
  daemon.Signal(SIGTERM);
  std::this_thread::sleep_for(500ms);
  daemon.Signal(SIGTERM);
  // 130: the second signal ended the stop; a finished stop exits with 0.
  EXPECT_EQ(daemon.Wait(30s), 130);
  close(fd);
}

}  // namespace
}  // namespace junction
