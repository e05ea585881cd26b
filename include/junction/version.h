#pragma once

#include <string_view>

namespace junction {

// What this binary is: printed by `junction version` and served by daemons.
struct BuildInfo {
  std::string_view version;     // semantic version, "0.1.0"
  std::string_view git_commit;  // short hash at configure time, or empty
  std::string_view build_type;  // CMake build type: Debug, Release, ...
  std::string_view compiler;
};

BuildInfo GetBuildInfo();

}  // namespace junction
