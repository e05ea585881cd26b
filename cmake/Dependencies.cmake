# Every third-party dependency, from Debian 12 packages (scripts/setup).
include_guard(GLOBAL)

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

# Boost 1.81 (never Debian's default 1.74).
find_package(Boost 1.81.0 EXACT REQUIRED CONFIG COMPONENTS json url)

pkg_check_modules(FMT REQUIRED IMPORTED_TARGET fmt)
pkg_check_modules(SPDLOG REQUIRED IMPORTED_TARGET spdlog)
pkg_check_modules(TOMLPLUSPLUS REQUIRED IMPORTED_TARGET tomlplusplus)
pkg_check_modules(CLI11 REQUIRED IMPORTED_TARGET CLI11)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(PROMETHEUS REQUIRED IMPORTED_TARGET prometheus-cpp-core)
# cnats: the NATS client, for the NATS core peer of `junction bench daemon`
# (and the nats:// transport to come).
pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats)

# tcmalloc (gperftools, the minimal library) as the malloc of Junction's own
# executables: the broker's per-message allocations cost it 20-30% less CPU
# than glibc's malloc (bench/README.md, "CPU per message"). Libraries never
# link it (a program using Junction picks its own allocator), and a sanitizer
# build keeps the sanitizer's allocator.
if(JUNCTION_SANITIZER STREQUAL "" AND NOT JUNCTION_FUZZ)
  pkg_check_modules(TCMALLOC REQUIRED IMPORTED_TARGET libtcmalloc_minimal)
endif()

if(BUILD_TESTING)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(JUNCTION_BENCH)
  find_package(benchmark REQUIRED)
endif()
