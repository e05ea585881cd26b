// log_bench: the log's kernels under Google Benchmark (bench/README.md).
// Every Log benchmark measures its floor or peer in the same run and reports
// the ratio as a counter.
//
//   log_bench [--dir=DIR] [--seconds=N] [--rounds=N] [--log-bytes=SIZE] [--benchmark_...]
//
// --dir: where the scratch directory goes (default /var/tmp unless tmpfs);
// --seconds: length of each timed append run and of its plain loop (2);
// --rounds: how often an append run alternates with its plain loop (10);
// --log-bytes: size of the log for the read and open benchmarks (256MiB).

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/log_scenarios.h"
#include "junction/config.h"

namespace junction::bench {
namespace {

namespace fs = std::filesystem;

struct Flags {
  fs::path dir;
  Seconds seconds{2};
  std::uint64_t log_bytes = 256ull << 20;
  int rounds = 10;
};

Flags& GetFlags() {
  static Flags flags;
  return flags;
}

ScratchDir*& Scratch() {
  static ScratchDir* scratch = nullptr;
  return scratch;
}

storage::LogOptions AlwaysOptions() {
  storage::LogOptions options;
  options.fsync = storage::FsyncPolicy::Always();
  return options;
}

void Skip(benchmark::State& state, const Status& status) {
  state.SkipWithError(status.ToString().c_str());
}

// The floor: write() + fdatasync() of range(0) bytes appended to one file.
void BM_PlainWriteFdatasync(benchmark::State& state) {
  auto bytes = static_cast<std::size_t>(state.range(0));
  fs::path file = Scratch()->path() / "plain-kernel.dat";
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    Skip(state, ErrnoToStatus(errno, "open " + file.string()));
    return;
  }
  std::vector<std::byte> buffer(bytes, std::byte{0x5a});
  for (auto _ : state) {
    if (::write(fd, buffer.data(), buffer.size()) != static_cast<ssize_t>(buffer.size()) ||
        ::fdatasync(fd) != 0) {
      Skip(state, ErrnoToStatus(errno, "write+fdatasync " + file.string()));
      break;
    }
  }
  ::close(fd);
  ::unlink(file.c_str());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["fsyncs/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PlainWriteFdatasync)
    ->Arg(180)
    ->Arg(1100)
    ->Arg(16 << 10)
    ->Arg(256 << 10)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Log::Append, fsync=always, one record of range(0) bytes per batch,
// range(1) x range(2) appends in flight, against the plain loop at the bytes
// per fdatasync the Log achieved (RunAppendsAgainstFloor).
void BM_LogAppendAlways(benchmark::State& state) {
  const Flags& flags = GetFlags();
  for (auto _ : state) {
    Result<fs::path> dir = Scratch()->FreshSubdir("append");
    Result<std::vector<std::byte>> batch = MakeBatch(static_cast<std::size_t>(state.range(0)), 1);
    if (!dir.ok() || !batch.ok()) {
      Skip(state, dir.ok() ? batch.status() : dir.status());
      break;
    }
    Result<std::unique_ptr<LogHarness>> harness = LogHarness::Open(*dir, AlwaysOptions());
    if (!harness.ok()) {
      Skip(state, harness.status());
      break;
    }
    AppendLoad load{std::move(*batch), 1, static_cast<int>(state.range(1) * state.range(2)),
                    flags.seconds, 0};
    Result<AppendVsFloor> both =
        RunAppendsAgainstFloor(**harness, load, Scratch()->path() / "plain.dat", flags.rounds);
    Status closed = (*harness)->Close();
    if (!both.ok() || !closed.ok()) {
      Skip(state, both.ok() ? closed : both.status());
      break;
    }
    const AppendRun* run = &both->log;
    state.SetIterationTime(run->seconds);
    double plain_records = both->plain_records_per_second();
    state.SetItemsProcessed(static_cast<std::int64_t>(run->records));
    state.counters["fsyncs/s"] = run->syncs_per_second();
    state.counters["rec/fsync"] = run->records_per_sync();
    state.counters["B/fsync"] = run->bytes_per_sync();
    state.counters["plain_rec/s"] = plain_records;
    state.counters["plain_fsyncs/s"] = both->plain.syncs_per_second();
    state.counters["ratio"] = plain_records > 0 ? run->records_per_second() / plain_records : 0;
    state.counters["ratio_sd"] = both->round_ratio_stddev();
  }
}
BENCHMARK(BM_LogAppendAlways)
    ->ArgNames({"value", "appenders", "window"})
    ->Args({100, 1, 1})
    ->Args({100, 16, 1})
    ->Args({100, 64, 1})
    ->Args({1024, 1, 1})
    ->Args({1024, 16, 1})
    ->Args({1024, 64, 1})
    ->Args({100, 64, 64})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// A log of --log-bytes, written once per process.
Result<fs::path> FilledLog() {
  static Result<fs::path> dir = []() -> Result<fs::path> {
    JUNCTION_ASSIGN_OR_RETURN(fs::path path, Scratch()->FreshSubdir("big"));
    JUNCTION_RETURN_IF_ERROR(FillLog(path, GetFlags().log_bytes).status());
    return path;
  }();
  return dir;
}

// Log::Read(next, 1 MiB) front to back from page cache; peer: pread of the
// same files in 1 MiB chunks.
void BM_LogReadSequential(benchmark::State& state) {
  Result<fs::path> dir = FilledLog();
  Result<std::unique_ptr<LogHarness>> harness =
      dir.ok() ? LogHarness::Open(*dir, AlwaysOptions())
               : Result<std::unique_ptr<LogHarness>>(dir.status());
  if (!harness.ok()) {
    Skip(state, harness.status());
    return;
  }
  std::uint64_t bytes = 0;
  double seconds = 0;
  for (auto _ : state) {
    Result<ReadRun> read = (*harness)->ReadAll(1 << 20);
    if (!read.ok()) {
      Skip(state, read.status());
      break;
    }
    bytes += read->bytes;
    seconds += read->seconds;
  }
  Result<ReadRun> plain = RunPlainPread(*dir, 1 << 20);
  (*harness)->Close().IgnoreError();
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  if (plain.ok() && seconds > 0 && plain->bytes_per_second() > 0) {
    state.counters["plain_GB/s"] = plain->bytes_per_second() / 1e9;
    state.counters["ratio"] = (bytes / seconds) / plain->bytes_per_second();
  }
}
BENCHMARK(BM_LogReadSequential)->UseRealTime()->Unit(benchmark::kMillisecond);

// Log::Open of the --log-bytes log after a clean (range(0) == 1) or an
// unclean (0: one append, then the Log destroyed without Close) shutdown.
void BM_LogOpen(benchmark::State& state) {
  bool clean = state.range(0) == 1;
  Result<fs::path> dir = FilledLog();
  if (!dir.ok()) {
    Skip(state, dir.status());
    return;
  }
  Result<std::vector<std::byte>> batch = MakeBatch(100, 1);
  for (auto _ : state) {
    if (!clean) {
      Result<std::unique_ptr<LogHarness>> before = LogHarness::Open(*dir, AlwaysOptions());
      if (!before.ok() || !batch.ok()) {
        Skip(state, before.ok() ? batch.status() : before.status());
        break;
      }
      AppendLoad one{*batch, 1, 1, Seconds::zero(), batch->size()};
      Status appended = (*before)->RunAppends(one).status();
      (*before)->Abandon();
      if (!appended.ok()) {
        Skip(state, appended);
        break;
      }
    }
    Result<std::unique_ptr<LogHarness>> harness = LogHarness::Open(*dir, AlwaysOptions());
    if (!harness.ok()) {
      Skip(state, harness.status());
      break;
    }
    state.SetIterationTime((*harness)->open_seconds());
    storage::LogStatus status = (*harness)->status();
    state.counters["clean_open"] = status.clean_open ? 1 : 0;
    state.counters["MiB"] = static_cast<double>(status.size_bytes) / (1 << 20);
    Status closed = (*harness)->Close();
    if (!closed.ok()) {
      Skip(state, closed);
      break;
    }
  }
}
BENCHMARK(BM_LogOpen)
    ->ArgName("clean")
    ->Arg(1)
    ->Arg(0)
    ->Iterations(3)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// Takes --dir=, --seconds= and --log-bytes= out of argv (before Google
// Benchmark sees it); false with a message on a bad value.
bool ParseOwnFlags(int& argc, char** argv) {
  Flags& flags = GetFlags();
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value_of = [&](std::string_view name) -> std::optional<std::string> {
      if (arg.substr(0, name.size()) != name) return std::nullopt;
      return std::string(arg.substr(name.size()));
    };
    if (auto dir = value_of("--dir=")) {
      flags.dir = *dir;
    } else if (auto seconds = value_of("--seconds=")) {
      char* end = nullptr;
      double value = std::strtod(seconds->c_str(), &end);
      if (end == seconds->c_str() || *end != '\0' || !(value > 0)) {
        std::cerr << "log_bench: --seconds wants a positive number, got " << *seconds << '\n';
        return false;
      }
      flags.seconds = Seconds(value);
    } else if (auto rounds = value_of("--rounds=")) {
      flags.rounds = std::atoi(rounds->c_str());
      if (flags.rounds < 1) {
        std::cerr << "log_bench: --rounds wants a positive integer, got " << *rounds << '\n';
        return false;
      }
    } else if (auto size = value_of("--log-bytes=")) {
      Result<config::Value> bytes =
          config::ParseValue(config::ByteSizeKey("log_bytes", 0, "log size"), *size);
      if (!bytes.ok()) {
        std::cerr << "log_bench: --log-bytes: " << bytes.status().message() << '\n';
        return false;
      }
      flags.log_bytes = std::get<config::ByteSize>(*bytes).bytes;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return true;
}

}  // namespace
}  // namespace junction::bench

int main(int argc, char** argv) {
  using namespace junction::bench;  // NOLINT(google-build-using-namespace): main only
  if (!ParseOwnFlags(argc, argv)) return 2;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  const Flags& flags = GetFlags();
  fs::path parent = flags.dir.empty() ? DefaultScratchParent() : flags.dir;
  junction::Result<std::unique_ptr<ScratchDir>> scratch = ScratchDir::Create(parent);
  if (!scratch.ok()) {
    std::cerr << "log_bench: " << scratch.status().ToString() << '\n';
    return 1;
  }
  Scratch() = scratch->get();
  junction::Result<FilesystemInfo> filesystem = DescribeFilesystem((*scratch)->path());
  std::string where = filesystem.ok() ? filesystem->ToString() : filesystem.status().ToString();
  benchmark::AddCustomContext("scratch_dir", (*scratch)->path().string());
  benchmark::AddCustomContext("filesystem", where);
  if (filesystem.ok() && filesystem->is_tmpfs) {
    std::cerr << "log_bench: warning: " << parent << " is tmpfs: fdatasync costs nothing\n";
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
