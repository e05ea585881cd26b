#include "tests/support/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

namespace junction::testing {

std::string DaemonProcess::Start(std::vector<std::string> argv, const std::filesystem::path& dir,
                                 int port) {
  Kill();
  url_.clear();
  argv.push_back("--data-dir=" + dir.string());
  argv.push_back("--listen=127.0.0.1:" + std::to_string(port));
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  std::string err_path = dir.string() + ".stderr";
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {};
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return {};
  }
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) ::dup2(err, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  // The banner's first line names the URL.
  std::string line;
  char ch = 0;
  while (::read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
  ::close(out[0]);
  std::size_t at = line.find("junction://");
  if (at == std::string::npos) {
    Kill();
    return {};
  }
  std::size_t end = line.find(' ', at);
  url_ = line.substr(at, end - at);
  return url_;
}

void DaemonProcess::Signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

int DaemonProcess::Wait(std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Kill();
  return -1;
}

void DaemonProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string DaemonProcess::address() const {
  std::string_view prefix = "junction://";
  return url_.size() > prefix.size() ? url_.substr(prefix.size()) : std::string();
}

}  // namespace junction::testing
