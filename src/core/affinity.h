#pragma once

// CPU affinity of the calling thread (Linux). A thread inherits the set of
// the thread that creates it, which is how a pool of threads someone else
// creates (an asio::thread_pool) is given a set: see ScopedThreadCpus.

#include <span>
#include <vector>

#include "junction/result.h"
#include "junction/status.h"

namespace junction {

// The CPUs the calling thread may run on, ascending.
Result<std::vector<int>> ThreadCpus();

// OK when `cpus` names CPUs that exist: not empty, every id below the number
// of CPUs configured (and CPU_SETSIZE). InvalidArgument naming the id
// otherwise. Whether the process may run there only the kernel tells: PinThread.
Status CheckCpus(std::span<const int> cpus);

// Restricts the calling thread to `cpus`: CheckCpus, then the kernel, which
// refuses (InvalidArgument) a set with no CPU online and in this process's
// cpuset.
Status PinThread(std::span<const int> cpus);

// Pins the calling thread to `cpus` while it lives and puts its previous set
// back when destroyed, so that the threads created meanwhile get `cpus`.
// An empty `cpus` does nothing. Check status() before relying on it.
class ScopedThreadCpus {
 public:
  explicit ScopedThreadCpus(std::span<const int> cpus);
  ~ScopedThreadCpus();
  ScopedThreadCpus(const ScopedThreadCpus&) = delete;
  ScopedThreadCpus& operator=(const ScopedThreadCpus&) = delete;

  const Status& status() const { return status_; }

 private:
  std::vector<int> previous_;  // empty: nothing to restore
  Status status_;
};

}  // namespace junction
