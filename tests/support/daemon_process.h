#pragma once

// A junctiond (or `junction broker`) run as a child process on loopback for
// tests: started on a free port of 127.0.0.1, its URL read from the banner
// it prints, stopped by its own PID (SIGTERM, or SIGKILL by Kill()). The
// destructor kills what is still running, so no test leaves a daemon behind.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace junction::testing {

class DaemonProcess {
 public:
  DaemonProcess() = default;
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;
  ~DaemonProcess() { Kill(); }

  // Runs `argv` (argv[0] the binary's path) with `--data-dir=<dir>
  // --listen=127.0.0.1:<port>` appended (port 0: a free one), stderr
  // appended to <dir>.stderr. Returns once the banner named the URL; an
  // empty string (and the process reaped) when it never did.
  std::string Start(std::vector<std::string> argv, const std::filesystem::path& dir, int port = 0);

  // Sends `sig` to the daemon.
  void Signal(int sig) const;

  // The exit status (128 + signal number for a signal), waiting up to
  // `timeout`; -1, after a SIGKILL by PID, when it did not exit in time.
  int Wait(std::chrono::milliseconds timeout);

  // SIGKILL by PID and reap; nothing when not running.
  void Kill();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& url() const { return url_; }
  // "127.0.0.1:port" of the url.
  std::string address() const;

 private:
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace junction::testing
