#pragma once

// CPU time read from /proc, for the suites' "CPU per msg" rows.

#include <sys/types.h>

#include <filesystem>

namespace junction::bench {

// A thread's CPU seconds (`task`: a /proc/PID/task/TID directory):
// schedstat's first field (nanoseconds on a CPU), or, where the kernel keeps
// no schedstat, stat's utime + stime (ticks).
double TaskCpuSeconds(const std::filesystem::path& task);

// A process's CPU seconds: the sum of its threads' (0 when it is gone).
double ProcessCpuSeconds(pid_t pid);

}  // namespace junction::bench
