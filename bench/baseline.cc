// `junction bench baseline`: the floors a transport is compared with, on
// this machine, now: a loopback TCP ping-pong of 100 B and a 100 B write +
// fdatasync loop.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "bench/broker_scenarios.h"  // RunFdatasyncLatency
#include "bench/bus_bench.h"

namespace junction::bench {
namespace {

constexpr std::size_t kPingBytes = 100;

bool ReadFully(int fd, char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool WriteFully(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

Status Errno(const char* what) {
  return InternalError(std::string(what) + ": " + std::strerror(errno));
}

// Round trips of 100 B over 127.0.0.1 between two threads, for `each`.
Result<std::unique_ptr<obs::LatencyHistogram>> TcpPingPong(Seconds each) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return Errno("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    Status s = Errno("bind/listen");
    ::close(listener);
    return s;
  }
  std::thread echo([listener] {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buffer[kPingBytes];
    while (ReadFully(fd, buffer, sizeof buffer) && WriteFully(fd, buffer, sizeof buffer)) {
    }
    ::close(fd);
  });
  auto histogram = std::make_unique<obs::LatencyHistogram>();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Status status;
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    status = Errno("connect");
  } else {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buffer[kPingBytes];
    std::memset(buffer, 'p', sizeof buffer);
    auto until = std::chrono::steady_clock::now() + each;
    while (std::chrono::steady_clock::now() < until) {
      auto sent = std::chrono::steady_clock::now();
      if (!WriteFully(fd, buffer, sizeof buffer) || !ReadFully(fd, buffer, sizeof buffer)) {
        status = Errno("ping-pong");
        break;
      }
      histogram->Record(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - sent)
                            .count());
    }
  }
  if (fd >= 0) ::close(fd);  // the echo thread reads EOF and ends
  ::shutdown(listener, SHUT_RDWR);
  echo.join();
  ::close(listener);
  if (!status.ok()) return status;
  return histogram;
}

}  // namespace

Result<BaselineResult> RunBaseline(const std::filesystem::path& dir, Seconds each) {
  BaselineResult result;
  result.dir = dir;
  JUNCTION_ASSIGN_OR_RETURN(result.tcp_round_trip, TcpPingPong(each));
  JUNCTION_ASSIGN_OR_RETURN(std::vector<double> micros,
                            RunFdatasyncLatency(dir / "baseline-fdatasync", kPingBytes, each));
  result.fdatasync = std::make_unique<obs::LatencyHistogram>();
  for (double us : micros) result.fdatasync->Record(static_cast<std::int64_t>(us * 1000));
  return result;
}

}  // namespace junction::bench
