// junctiond under many connections: 5,000 idle ones (handshaken, then
// silent) cost little memory each, and a real client is still served while
// they are open. The daemon is a child process stopped by its PID.

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codec/wire.h"
#include "core/run_sync.h"
#include "junction/bus.h"
#include "tests/support/daemon_process.h"

namespace junction {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
namespace c = codec;

constexpr int kIdle = 5000;

std::uint64_t ResidentBytes(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t pages = 0;
  std::uint64_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// A connected socket to 127.0.0.1:port that sent the preamble and HELLO and
// read the WELCOME; -1 on failure.
int Handshaken(int port, const std::vector<std::byte>& hello) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::write(fd, hello.data(), hello.size()) != static_cast<ssize_t>(hello.size())) {
    ::close(fd);
    return -1;
  }
  c::FrameDecoder decoder(c::kMaxMaxFrameBytes);
  while (true) {
    if (std::optional<c::Frame> frame = decoder.Next()) {
      if (frame->type() == c::FrameType::kWelcome) return fd;
      continue;
    }
    std::span<std::byte> room = decoder.Prepare(4096);
    ssize_t n = ::read(fd, room.data(), room.size());
    if (n <= 0) {
      ::close(fd);
      return -1;
    }
    decoder.Commit(static_cast<std::size_t>(n));
  }
}

TEST(DaemonLimitsTest, FiveThousandIdleConnectionsCostLittleAndOthersAreStillServed) {
  rlimit files{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
  if (files.rlim_max < kIdle + 200) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << files.rlim_max << " is below " << kIdle + 200;
  }
  files.rlim_cur = files.rlim_max;  // the daemon inherits it
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &files), 0);

  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "daemon_limits_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  testing::DaemonProcess daemon;
  std::string url = daemon.Start({JUNCTIOND_PATH, "--shards=2", "--log-level=warn"}, dir / "data");
  ASSERT_FALSE(url.empty()) << "junctiond did not start; see " << dir.string() << "/data.stderr";
  int port = std::stoi(url.substr(url.rfind(':') + 1));

  std::vector<std::byte> hello(std::begin(c::kPreamble), std::end(c::kPreamble));
  c::FrameWriter w(hello);
  c::EncodeHello(w, {.client = "daemon_limits_test"});

  std::uint64_t before = ResidentBytes(daemon.pid());
  std::vector<int> idle;
  idle.reserve(kIdle);
  for (int i = 0; i < kIdle; ++i) {
    int fd = Handshaken(port, hello);
    ASSERT_GE(fd, 0) << "connection " << i << " failed";
    idle.push_back(fd);
  }
  std::uint64_t after = ResidentBytes(daemon.pid());
  double per_connection = after > before ? static_cast<double>(after - before) / kIdle : 0;
  std::printf("junctiond RSS %.1f MiB -> %.1f MiB with %d idle connections: %.1f KiB each\n",
              before / 1048576.0, after / 1048576.0, kIdle, per_connection / 1024);
  EXPECT_LT(per_connection, 1024.0 * 1024);  // the bound: 1 MiB per connection
  RecordProperty("bytes_per_idle_connection", static_cast<int>(per_connection));

  // A real client is served while they are open.
  Result<std::unique_ptr<Bus>> bus = Bus::Open(url);
  ASSERT_TRUE(bus.ok()) << bus.status();
  Message m;
  m.id = "while-idle";
  m.source = "/daemon-limits-test";
  m.type = "probe";
  Result<PublishResult> published =
      RunSync((*bus)->Publish("probes", m, {}, Deadline::After(RealClock(), 10s)));
  EXPECT_TRUE(published.ok()) << published.status();
  SubscribeOptions options;
  options.group = "g";
  auto sub = RunSync((*bus)->Subscribe("probes", options, Deadline::After(RealClock(), 10s)));
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto delivery = RunSync((*sub)->Next(Deadline::After(RealClock(), 10s)));
  ASSERT_TRUE(delivery.ok()) << delivery.status();
  EXPECT_EQ(delivery->message().id, "while-idle");
  EXPECT_TRUE(RunSync((*sub)->Close()).ok());
  EXPECT_TRUE(RunSync((*bus)->Close()).ok());

  for (int fd : idle) ::close(fd);
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(30s), 0);
}

}  // namespace
}  // namespace junction
