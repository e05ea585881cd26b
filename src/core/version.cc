#include "junction/version.h"

#include "core/version.h"

namespace junction {

BuildInfo GetBuildInfo() {
  BuildInfo info;
  info.version = internal::kVersion;
  info.git_commit = JUNCTION_GIT_COMMIT;
  info.build_type = JUNCTION_BUILD_TYPE;
#if defined(__clang__)
  info.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  info.compiler = "gcc " __VERSION__;
#endif
  return info;
}

}  // namespace junction
