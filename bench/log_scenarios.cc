#include "bench/log_scenarios.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "codec/record_batch.h"
#include "core/affinity.h"
#include "junction/clock.h"

namespace junction::bench {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

constexpr long kTmpfsMagic = 0x01021994;

double SecondsBetween(MonoTime from, MonoTime to) { return Seconds(to - from).count(); }

// Names the calling thread while in scope, so that `perf report --sort comm`
// tells the shard, the blocking pool and the plain loop apart.
class ThreadName {
 public:
  explicit ThreadName(const char* name) {
    ::pthread_getname_np(::pthread_self(), old_, sizeof old_);
    ::pthread_setname_np(::pthread_self(), name);
  }
  ~ThreadName() { ::pthread_setname_np(::pthread_self(), old_); }
  ThreadName(const ThreadName&) = delete;
  ThreadName& operator=(const ThreadName&) = delete;

 private:
  char old_[16] = {};
};

Status Errno(std::string_view what, const fs::path& path) {
  return ErrnoToStatus(errno, std::string(what) + " " + path.string());
}

std::string StatfsTypeName(long magic) {
  switch (magic) {
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case kTmpfsMagic:
      return "tmpfs";
    case 0x794c7630:
      return "overlay";
    case 0x6969:
      return "nfs";
    case 0x2FC12FC1:
      return "zfs";
    case 0xF2F52010:
      return "f2fs";
    default: {
      std::ostringstream out;
      out << "statfs magic 0x" << std::hex << magic;
      return out.str();
    }
  }
}

// Writes all of `data` to `fd`, continuing short writes and retrying EINTR.
bool WriteAll(int fd, const std::byte* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

struct AppendState {
  const AppendLoad& load;
  bool stop = false;  // set by the run's timer
  int live = 0;
  Status error;
  std::uint64_t claimed_bytes = 0;
  std::uint64_t records = 0;
  std::uint64_t batches = 0;
  MonoTime end;
};

// One appender: awaits each append before issuing the next.
asio::awaitable<void> AppendLoop(storage::Log& log, AppendState& state) {
  while (state.error.ok() && !state.stop &&
         (state.load.max_bytes == 0 || state.claimed_bytes < state.load.max_bytes)) {
    state.claimed_bytes += state.load.batch.size();  // before the await: no overshoot
    Result<storage::AppendResult> appended = co_await log.Append(state.load.batch);
    if (!appended.ok()) {
      if (state.error.ok()) state.error = appended.status();
      co_return;
    }
    state.records += state.load.records_per_batch;
    ++state.batches;
  }
}

// One append of a client on another thread, run on the shard: false when the
// client should stop. Touches `state` on the shard only.
asio::awaitable<bool> AppendOnce(storage::Log& log, AppendState& state) {
  if (!state.error.ok() || state.stop ||
      (state.load.max_bytes != 0 && state.claimed_bytes >= state.load.max_bytes)) {
    co_return false;
  }
  state.claimed_bytes += state.load.batch.size();
  Result<storage::AppendResult> appended = co_await log.Append(state.load.batch);
  if (!appended.ok()) {
    if (state.error.ok()) state.error = appended.status();
    co_return false;
  }
  state.records += state.load.records_per_batch;
  ++state.batches;
  co_return true;
}

// A client on its own thread: hands each append to the shard and waits for it.
asio::awaitable<void> ClientAppendLoop(storage::Log& log, AppendState& state,
                                       asio::any_io_executor shard) {
  while (true) {
    // Named first: GCC 12 mishandles temporaries inside a co_await condition.
    asio::awaitable<bool> once = AppendOnce(log, state);
    bool more = co_await asio::co_spawn(shard, std::move(once), asio::use_awaitable);
    if (!more) break;
  }
}

}  // namespace

std::string DescribeException(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

std::string FilesystemInfo::ToString() const {
  return source.empty() ? type : type + " on " + source;
}

Result<FilesystemInfo> DescribeFilesystem(const fs::path& dir) {
  struct statfs fs_stat {};
  if (::statfs(dir.c_str(), &fs_stat) != 0) return Errno("statfs", dir);
  FilesystemInfo info;
  info.is_tmpfs = static_cast<long>(fs_stat.f_type) == kTmpfsMagic;
  info.type = StatfsTypeName(static_cast<long>(fs_stat.f_type));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Errno("stat", dir);
  // mountinfo: "36 35 98:0 /root /mnt rw,noatime shared:1 - ext4 /dev/vda rw"
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  std::string device = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev;
    fields >> id >> parent >> dev;
    if (dev != device) continue;
    std::size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string type, source;
    tail >> type >> source;
    if (!type.empty()) info.type = type;
    info.source = source;
    break;
  }
  return info;
}

fs::path DefaultScratchParent() {
  Result<FilesystemInfo> var_tmp = DescribeFilesystem("/var/tmp");
  if (var_tmp.ok() && !var_tmp->is_tmpfs) return "/var/tmp";
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  return ec ? fs::path("/var/tmp") : cwd;
}

Result<std::unique_ptr<ScratchDir>> ScratchDir::Create(const fs::path& parent) {
  std::string name = (parent / "junction-bench-XXXXXX").string();
  if (::mkdtemp(name.data()) == nullptr) return Errno("mkdtemp", name);
  return std::unique_ptr<ScratchDir>(new ScratchDir(name));
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Result<fs::path> ScratchDir::FreshSubdir(std::string_view name) {
  fs::path dir = path_ / name;
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return ErrnoToStatus(ec.value(), "remove " + dir.string());
  if (!fs::create_directory(dir, ec) || ec) {
    return ErrnoToStatus(ec ? ec.value() : EEXIST, "mkdir " + dir.string());
  }
  return dir;
}

Result<PlainSyncRun> RunPlainWriteSync(const fs::path& file, std::size_t bytes_per_sync,
                                       Seconds duration) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open", file);
  std::vector<std::byte> buffer(std::max<std::size_t>(bytes_per_sync, 1), std::byte{0x5a});
  const Clock& clock = RealClock();
  PlainSyncRun run;
  Status error;
  ThreadName name("jn-plain");
  MonoTime start = clock.Now();
  MonoTime deadline = start + std::chrono::duration_cast<Duration>(duration);
  do {
    if (!WriteAll(fd, buffer.data(), buffer.size())) {
      error = Errno("write", file);
      break;
    }
    if (::fdatasync(fd) != 0) {
      error = Errno("fdatasync", file);
      break;
    }
    ++run.syncs;
    run.bytes += buffer.size();
  } while (clock.Now() < deadline);
  run.seconds = SecondsBetween(start, clock.Now());
  ::close(fd);
  ::unlink(file.c_str());
  if (!error.ok()) return error;
  return run;
}

Result<ReadRun> RunPlainPread(const fs::path& dir, std::size_t chunk) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".log") files.push_back(entry.path());
  }
  if (ec) return ErrnoToStatus(ec.value(), "list " + dir.string());
  std::sort(files.begin(), files.end());
  std::vector<std::byte> buffer(chunk);
  const Clock& clock = RealClock();
  ReadRun run;
  MonoTime start = clock.Now();
  for (const fs::path& file : files) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("open", file);
    off_t offset = 0;
    while (true) {
      ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Status error = Errno("pread", file);
        ::close(fd);
        return error;
      }
      if (n == 0) break;
      offset += n;
      run.bytes += static_cast<std::uint64_t>(n);
      ++run.reads;
    }
    ::close(fd);
  }
  run.seconds = SecondsBetween(start, clock.Now());
  return run;
}

Result<std::vector<std::byte>> MakeBatch(std::size_t value_bytes, std::uint32_t records) {
  codec::RecordBatchBuilder builder;
  std::string value(value_bytes, 'v');
  std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            RealClock().WallNow().time_since_epoch())
                            .count();
  for (std::uint32_t i = 0; i < records; ++i) builder.Add(now_ms, std::nullopt, value);
  return builder.Build();
}

Result<std::unique_ptr<LogHarness>> LogHarness::Open(const fs::path& dir,
                                                     const storage::LogOptions& options) {
  std::unique_ptr<LogHarness> harness(new LogHarness());
  asio::post(harness->blocking_, [] { ::pthread_setname_np(::pthread_self(), "jn-blocking"); });
  storage::Log::Context context{harness->env_, RealClock(), harness->shard_.get_executor(),
                                harness->blocking_.get_executor()};
  const Clock& clock = RealClock();
  MonoTime start = clock.Now();
  JUNCTION_ASSIGN_OR_RETURN(harness->log_, storage::Log::Open(context, dir, options));
  harness->open_seconds_ = SecondsBetween(start, clock.Now());
  return harness;
}

LogHarness::~LogHarness() { Abandon(); }

template <typename Fn>
Status LogHarness::RunOnShard(Fn&& fn) {
  try {
    asio::post(shard_, std::forward<Fn>(fn));
    shard_.restart();
    shard_.run();
    return OkStatus();
  } catch (const std::exception& e) {
    return InternalError(std::string("shard: ") + e.what());
  }
}

storage::LogStatus LogHarness::status() {
  storage::LogStatus status;
  RunOnShard([&] { status = log_->status(); }).IgnoreError();
  return status;
}

Result<AppendRun> LogHarness::RunAppends(const AppendLoad& load) {
  JUNCTION_CHECK(log_ != nullptr) << "RunAppends on a closed harness";
  JUNCTION_CHECK(load.in_flight >= 1);
  JUNCTION_CHECK(load.duration > Seconds::zero() || load.max_bytes > 0) << "an endless run";
  const Clock& clock = RealClock();
  AppendState state{load, false, load.in_flight, OkStatus(), 0, 0, 0, {}};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work(
      shard_.get_executor());
  asio::steady_timer timer(shard_);
  IoCounters before;
  MonoTime start;
  ThreadName name("jn-shard");
  // The client thread (from_other_thread) is put back on the set this
  // thread had: only the shard and the blocking thread are pinned.
  Result<std::vector<int>> unpinned = ThreadCpus();
  JUNCTION_RETURN_IF_ERROR(unpinned.status());
  ScopedThreadCpus shard_cpus(load.shard_cpus);
  JUNCTION_RETURN_IF_ERROR(shard_cpus.status());
  struct BlockingCpus {  // the pool's one thread, pinned for the run
    asio::thread_pool& pool;
    Result<std::vector<int>> previous = std::vector<int>();
    ~BlockingCpus() {
      if (previous.ok() && !previous->empty()) {
        asio::post(pool, asio::use_future([this] { (void)PinThread(*previous); })).get();
      }
    }
  } blocking_cpus{blocking_};
  if (!load.blocking_cpus.empty()) {
    Status pinned = asio::post(blocking_, asio::use_future([&] {
                                 blocking_cpus.previous = ThreadCpus();
                                 if (!blocking_cpus.previous.ok()) {
                                   return blocking_cpus.previous.status();
                                 }
                                 Status s = PinThread(load.blocking_cpus);
                                 if (!s.ok()) blocking_cpus.previous = std::vector<int>();
                                 return s;
                               }))
                        .get();
    JUNCTION_RETURN_IF_ERROR(pinned);
  }
  // The other thread's io_context (from_other_thread): runs until every
  // client loop ended.
  std::optional<asio::io_context> clients;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> client_work;
  std::thread client_thread;
  if (load.from_other_thread) {
    clients.emplace(1);
    client_work.emplace(clients->get_executor());
    client_thread = std::thread([&] {
      ::pthread_setname_np(::pthread_self(), "jn-client");
      if (!load.shard_cpus.empty()) (void)PinThread(*unpinned);
      clients->run();
    });
  }
  const double cpu_before = ProcessCpuSeconds();
  Status ran = RunOnShard([&] {
    before = env_.Snapshot();
    start = clock.Now();
    if (load.duration > Seconds::zero()) {
      timer.expires_after(std::chrono::duration_cast<Duration>(load.duration));
      timer.async_wait([&](boost::system::error_code ec) {
        if (!ec) state.stop = true;
      });
    }
    auto finished = [&](const std::exception_ptr& e) {  // on the shard
      if (e && state.error.ok()) state.error = InternalError(DescribeException(e));
      if (--state.live == 0) {
        state.end = clock.Now();
        timer.cancel();
        work.reset();
      }
    };
    for (int i = 0; i < load.in_flight; ++i) {
      if (!load.from_other_thread) {
        asio::co_spawn(shard_, AppendLoop(*log_, state), finished);
        continue;
      }
      asio::co_spawn(clients->get_executor(), ClientAppendLoop(*log_, state, shard_.get_executor()),
                     [&, finished](const std::exception_ptr& e) {
                       asio::post(shard_, [finished, e] { finished(e); });
                     });
    }
  });
  if (clients) {
    client_work.reset();
    if (!ran.ok()) clients->stop();  // the shard is gone: the loops cannot end
    client_thread.join();
  }
  JUNCTION_RETURN_IF_ERROR(ran);
  JUNCTION_RETURN_IF_ERROR(state.error);
  AppendRun run;
  run.records = state.records;
  run.batches = state.batches;
  run.io = env_.Snapshot().Since(before);
  run.seconds = SecondsBetween(start, state.end);
  run.cpu_seconds = ProcessCpuSeconds() - cpu_before;
  return run;
}

Result<ReadRun> LogHarness::ReadAll(std::size_t max_bytes) {
  JUNCTION_CHECK(log_ != nullptr) << "ReadAll on a closed harness";
  Result<ReadRun> result = InternalError("ReadAll did not run");
  Status ran = RunOnShard([&] {
    const Clock& clock = RealClock();
    ReadRun run;
    MonoTime start = clock.Now();
    Offset next = log_->status().log_start;
    Offset end = log_->high_watermark();
    while (next < end) {
      Result<storage::ReadResult> read = log_->Read(next, max_bytes);
      if (!read.ok()) {
        result = read.status();
        return;
      }
      if (read->next_offset <= next) {
        std::ostringstream message;
        message << "Read(" << next << ") made no progress";
        result = InternalError(message.str());
        return;
      }
      run.bytes += read->batches.size();
      ++run.reads;
      next = read->next_offset;
    }
    run.seconds = SecondsBetween(start, clock.Now());
    result = run;
  });
  JUNCTION_RETURN_IF_ERROR(ran);
  return result;
}

Status LogHarness::Close() {
  if (log_ == nullptr) return OkStatus();
  Status closed = InternalError("Close did not complete");
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work(
      shard_.get_executor());
  Status ran = RunOnShard([&] {
    asio::co_spawn(shard_, log_->Close(), [&](const std::exception_ptr& e, Status status) {
      closed = e ? InternalError(DescribeException(e)) : std::move(status);
      work.reset();
    });
  });
  Abandon();  // the Log is closed: destroying it now is the clean path
  JUNCTION_RETURN_IF_ERROR(ran);
  return closed;
}

void LogHarness::Abandon() {
  if (log_ == nullptr) return;
  RunOnShard([&] { log_.reset(); }).IgnoreError();
  log_.reset();  // if the shard failed to run it
}

void PlainSyncRun::Add(const PlainSyncRun& other) {
  syncs += other.syncs;
  bytes += other.bytes;
  seconds += other.seconds;
}

double ProcessCpuSeconds() {
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void AppendRun::Add(const AppendRun& other) {
  cpu_seconds += other.cpu_seconds;
  records += other.records;
  batches += other.batches;
  io.segment_writes += other.io.segment_writes;
  io.segment_bytes += other.io.segment_bytes;
  io.segment_syncs += other.io.segment_syncs;
  io.other_syncs += other.io.other_syncs;
  seconds += other.seconds;
}

double AppendVsFloor::round_ratio_stddev() const {
  if (round_ratios.size() < 2) return 0;
  double mean = 0;
  for (double r : round_ratios) mean += r;
  mean /= static_cast<double>(round_ratios.size());
  double squares = 0;
  for (double r : round_ratios) squares += (r - mean) * (r - mean);
  return std::sqrt(squares / static_cast<double>(round_ratios.size() - 1));
}

Result<AppendVsFloor> RunAppendsAgainstFloor(LogHarness& harness, const AppendLoad& load,
                                             const fs::path& plain_file, int rounds) {
  JUNCTION_CHECK(rounds >= 1 && load.duration > Seconds::zero());
  AppendLoad slice = load;
  slice.duration = load.duration / rounds;
  AppendVsFloor result;
  for (int round = 0; round < rounds; ++round) {
    JUNCTION_ASSIGN_OR_RETURN(AppendRun run, harness.RunAppends(slice));
    result.log.Add(run);
    if (result.log.io.segment_syncs == 0) {
      return InternalError("the log acknowledged appends without any fdatasync");
    }
    auto bytes_per_sync = static_cast<std::size_t>(std::llround(result.log.bytes_per_sync()));
    JUNCTION_ASSIGN_OR_RETURN(PlainSyncRun plain,
                              RunPlainWriteSync(plain_file, bytes_per_sync, slice.duration));
    result.plain.Add(plain);
    double floor = plain.syncs_per_second() * run.records_per_sync();
    if (floor > 0) result.round_ratios.push_back(run.records_per_second() / floor);
  }
  return result;
}

Result<AppendRun> FillLog(const fs::path& dir, std::uint64_t bytes) {
  storage::LogOptions options;
  options.fsync = storage::FsyncPolicy::Never();
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::byte> batch,
                            MakeBatch(kFillValueBytes, kFillRecordsPerBatch));
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<LogHarness> writer, LogHarness::Open(dir, options));
  AppendLoad load{std::move(batch), kFillRecordsPerBatch, 16, Seconds::zero(), bytes};
  JUNCTION_ASSIGN_OR_RETURN(AppendRun fill, writer->RunAppends(load));
  JUNCTION_RETURN_IF_ERROR(writer->Close());
  return fill;
}

}  // namespace junction::bench
