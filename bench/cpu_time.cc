#include "bench/cpu_time.h"

#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <system_error>

namespace junction::bench {

double TaskCpuSeconds(const std::filesystem::path& task) {
  std::ifstream schedstat(task / "schedstat");
  double ns = 0;
  if (schedstat >> ns && ns > 0) return ns / 1e9;  // (0: scheduler statistics off)
  std::ifstream stat_file(task / "stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the name, which ends at the last ')': state is field 3,
  // utime 14 and stime 15.
  std::size_t close = stat.rfind(')');
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  if (close == std::string::npos || ticks <= 0) return 0;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  double used = 0;
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 14 || n == 15) used += std::stod(field);
  }
  return used / ticks;
}

double ProcessCpuSeconds(pid_t pid) {
  std::error_code ec;
  double seconds = 0;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    seconds += TaskCpuSeconds(task.path());
  }
  return seconds;
}

}  // namespace junction::bench
