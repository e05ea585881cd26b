#include "core/affinity.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace junction {
namespace {

std::string CpuList(std::span<const int> cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    // Runs of consecutive ids as "a-b", like taskset -c and /proc.
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j;
  }
  return out;
}

Status SetThreadCpus(std::span<const int> cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) CPU_SET(cpu, &set);
  if (int err = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set); err != 0) {
    // EINVAL: none of them is online and in this process's cpuset.
    return InvalidArgumentError("cannot run on CPUs " + CpuList(cpus) + ": " + std::strerror(err));
  }
  return OkStatus();
}

}  // namespace

Result<std::vector<int>> ThreadCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (int err = ::pthread_getaffinity_np(::pthread_self(), sizeof set, &set); err != 0) {
    return InternalError(std::string("pthread_getaffinity_np: ") + std::strerror(err));
  }
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

Status CheckCpus(std::span<const int> cpus) {
  if (cpus.empty()) return InvalidArgumentError("an empty CPU set");
  const long configured = ::sysconf(_SC_NPROCESSORS_CONF);
  for (int cpu : cpus) {
    if (cpu < 0 || cpu >= CPU_SETSIZE || (configured > 0 && cpu >= configured)) {
      return InvalidArgumentError("CPU " + std::to_string(cpu) +
                                  " does not exist (this machine has " +
                                  std::to_string(configured) + ")");
    }
  }
  return OkStatus();
}

Status PinThread(std::span<const int> cpus) {
  JUNCTION_RETURN_IF_ERROR(CheckCpus(cpus));
  return SetThreadCpus(cpus);
}

ScopedThreadCpus::ScopedThreadCpus(std::span<const int> cpus) {
  if (cpus.empty()) return;
  Result<std::vector<int>> previous = ThreadCpus();
  if (!previous.ok()) {
    status_ = previous.status();
    return;
  }
  status_ = PinThread(cpus);
  if (status_.ok()) previous_ = *std::move(previous);
}

ScopedThreadCpus::~ScopedThreadCpus() {
  // The set held before, so the kernel accepts it again unless CPUs went
  // offline meanwhile; nothing to report to from a destructor then.
  if (!previous_.empty()) (void)SetThreadCpus(previous_);
}

}  // namespace junction
