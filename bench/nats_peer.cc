#include "bench/nats_peer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nats/nats.h>

#include "bench/cpu_time.h"

namespace junction::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

double SelfCpuSeconds() {
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// The server process: started with its log on a file, stopped (SIGTERM,
// then SIGKILL) by its PID when this goes out of scope.
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() { Stop(); }

  Status Start(const std::filesystem::path& binary, const std::filesystem::path& log) {
    // Port -1: the server picks a free one and names it in its log.
    std::vector<std::string> argv = {binary.string(), "-a", "127.0.0.1", "-p", "-1"};
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoToStatus(errno, "nats peer: open " + log.string());
    pid_ = ::fork();
    if (pid_ < 0) {
      int err = errno;
      ::close(fd);
      return ErrnoToStatus(err, "nats peer: fork");
    }
    if (pid_ == 0) {  // only async-signal-safe calls from here on
      // Killed with this process; signals the caller blocks (a daemon
      // blocks SIGTERM for its own handling) not blocked in the server.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fd);
    log_ = log;
    return Status();
  }

  // The "Listening for client connections on HOST:PORT" line's address,
  // waited for up to `timeout`.
  Result<std::string> WaitForAddress(std::chrono::milliseconds timeout) {
    constexpr std::string_view kListening = "Listening for client connections on ";
    const auto until = SteadyClock::now() + timeout;
    while (SteadyClock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return UnavailableError(fmt::format(
            "nats peer: nats-server {} at start; see {}",
            WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status))
                              : fmt::format("was killed by signal {}", WTERMSIG(status)),
            log_.string()));
      }
      std::ifstream file(log_);
      std::string line;
      while (std::getline(file, line)) {
        if (std::size_t at = line.find("Version:"); at != std::string::npos) {
          std::istringstream rest(line.substr(at + 8));
          rest >> version_;
        }
        std::size_t at = line.find(kListening);
        if (at != std::string::npos) return line.substr(at + kListening.size());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return UnavailableError("nats peer: nats-server did not listen within " +
                            std::to_string(timeout.count()) + " ms; see " + log_.string());
  }

  double CpuSeconds() const { return pid_ > 0 ? ProcessCpuSeconds(pid_) : 0; }
  const std::string& version() const { return version_; }

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto until = SteadyClock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (SteadyClock::now() >= until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_;
  std::string version_;
};

Status NatsError(natsStatus s, std::string_view what) {
  const char* last = nats_GetLastError(nullptr);
  return UnavailableError(fmt::format("nats peer: {}: {}{}{}", what, natsStatus_GetText(s),
                                      last != nullptr && *last != '\0' ? ": " : "",
                                      last != nullptr ? last : ""));
}

// What the subscription's callback (on the client library's delivery
// thread) counts; the calling thread polls it.
struct Received {
  std::uint64_t want = 0;
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::int64_t> last_ns{0};  // steady clock at the last one
};

void OnMessage(natsConnection* /*nc*/, natsSubscription* /*sub*/, natsMsg* msg, void* closure) {
  auto* received = static_cast<Received*>(closure);
  natsMsg_Destroy(msg);
  if (received->count.fetch_add(1, std::memory_order_relaxed) + 1 == received->want) {
    received->last_ns.store(SteadyClock::now().time_since_epoch().count(),
                            std::memory_order_release);
  }
}

// The two connections and the subscription, destroyed in order.
struct Clients {
  natsConnection* publisher = nullptr;
  natsConnection* subscriber = nullptr;
  natsSubscription* subscription = nullptr;
  Clients() = default;
  Clients(const Clients&) = delete;
  Clients& operator=(const Clients&) = delete;
  ~Clients() {
    natsSubscription_Destroy(subscription);
    natsConnection_Destroy(subscriber);
    natsConnection_Destroy(publisher);
  }
};

// `received` outlives the client library's threads (RunNatsPubSub waits
// for them), which may still call OnMessage after an early return here.
Result<NatsPeerResult> Drive(const NatsPeerOptions& options, ServerProcess& server,
                             const std::string& url, Received& received) {
  Clients clients;
  received.want = options.msgs;
  if (natsStatus s = natsConnection_ConnectTo(&clients.subscriber, url.c_str()); s != NATS_OK) {
    return NatsError(s, "connect to " + url);
  }
  if (natsStatus s = natsConnection_ConnectTo(&clients.publisher, url.c_str()); s != NATS_OK) {
    return NatsError(s, "connect to " + url);
  }
  const char* subject = "junction.bench.pubsub";
  if (natsStatus s = natsConnection_Subscribe(&clients.subscription, clients.subscriber, subject,
                                              OnMessage, &received);
      s != NATS_OK) {
    return NatsError(s, "subscribe");
  }
  // No limit: a slow subscriber would otherwise drop messages.
  if (natsStatus s = natsSubscription_SetPendingLimits(clients.subscription, -1, -1);
      s != NATS_OK) {
    return NatsError(s, "pending limits");
  }
  // The subscription is on the server before the first publish.
  if (natsStatus s = natsConnection_Flush(clients.subscriber); s != NATS_OK) {
    return NatsError(s, "flush the subscription");
  }
  std::string data(options.size, 'x');
  const int size = static_cast<int>(data.size());
  const double server_cpu_before = server.CpuSeconds();
  const double client_cpu_before = SelfCpuSeconds();
  const auto start = SteadyClock::now();
  for (std::uint64_t i = 0; i < options.msgs; ++i) {
    if (natsStatus s = natsConnection_Publish(clients.publisher, subject, data.data(), size);
        s != NATS_OK) {
      return NatsError(s, "publish");
    }
  }
  if (natsStatus s = natsConnection_Flush(clients.publisher); s != NATS_OK) {
    return NatsError(s, "flush the publishes");
  }
  const auto until = start + std::chrono::duration_cast<SteadyClock::duration>(
                                 std::chrono::duration<double>(options.timeout_seconds));
  // Set by the callback that took the last message (after its count).
  while (received.last_ns.load(std::memory_order_acquire) == 0 && SteadyClock::now() < until) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  NatsPeerResult result;
  result.client_cpu_seconds = SelfCpuSeconds() - client_cpu_before;
  result.server_cpu_seconds = server.CpuSeconds() - server_cpu_before;
  result.server_version = server.version();
  result.msgs = received.count.load(std::memory_order_relaxed);
  std::int64_t dropped = 0;
  natsSubscription_GetDropped(clients.subscription, &dropped);
  if (result.msgs < options.msgs) {
    return DataLossError(fmt::format(
        "nats peer: the subscriber received {} of {} messages in {} s ({} dropped as slow)",
        result.msgs, options.msgs, options.timeout_seconds, dropped));
  }
  const SteadyClock::time_point last{
      SteadyClock::duration(received.last_ns.load(std::memory_order_acquire))};
  result.seconds = std::chrono::duration<double>(last - start).count();
  return result;
}

}  // namespace

std::filesystem::path FindNatsServer(const std::filesystem::path& configured) {
  auto runnable = [](const std::filesystem::path& p) {
    return !p.empty() && ::access(p.c_str(), X_OK) == 0;
  };
  if (!configured.empty()) return runnable(configured) ? configured : std::filesystem::path();
  if (const char* env = std::getenv("JUNCTION_NATS_SERVER"); env != nullptr && *env != '\0') {
    return runnable(env) ? std::filesystem::path(env) : std::filesystem::path();
  }
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string_view rest = path;
    while (!rest.empty()) {
      std::size_t colon = rest.find(':');
      std::filesystem::path candidate =
          std::filesystem::path(std::string(rest.substr(0, colon))) / "nats-server";
      if (runnable(candidate)) return candidate;
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  std::filesystem::path debian = "/usr/sbin/nats-server";
  return runnable(debian) ? debian : std::filesystem::path();
}

Result<NatsPeerResult> RunNatsPubSub(const NatsPeerOptions& options) {
  std::filesystem::path binary = FindNatsServer(options.server);
  if (binary.empty()) {
    return NotFoundError(
        "nats peer: no nats-server (scripts/setup installs Debian's nats-server; or set "
        "JUNCTION_NATS_SERVER)");
  }
  if (options.log.empty()) return InvalidArgumentError("nats peer: no log path");
  ServerProcess server;
  JUNCTION_RETURN_IF_ERROR(server.Start(binary, options.log));
  JUNCTION_ASSIGN_OR_RETURN(std::string address,
                            server.WaitForAddress(std::chrono::milliseconds(10'000)));
  Received received;
  Result<NatsPeerResult> result = Drive(options, server, "nats://" + address, received);
  server.Stop();
  // Frees the client library's global state, and waits for its threads
  // (a subscription's may still be in OnMessage): `received` goes after.
  nats_CloseAndWait(5'000);
  return result;
}

}  // namespace junction::bench
