#include "broker/state_store.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <span>
#include <string_view>
#include <system_error>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "codec/record_batch.h"
#include "junction/log.h"

namespace junction::broker {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
using Bytes = std::vector<std::byte>;

constexpr std::string_view kCurrentFile = "CURRENT";
constexpr std::string_view kCurrentTmpFile = "CURRENT.tmp";
constexpr std::string_view kLockFile = "LOCK";
constexpr std::string_view kGenerationPrefix = "gen-";
constexpr std::string_view kCurrentHeader = "junction state log, format 1\n";
constexpr std::size_t kReadBytes = 4u << 20;   // per Log::Read while recovering
constexpr std::size_t kChunkBytes = 1u << 20;  // records per batch written by compaction

std::string GenerationName(std::uint64_t generation) {
  return std::string(kGenerationPrefix) + std::to_string(generation);
}

// The generation of a directory named "gen-<n>" (canonical decimal), else nullopt.
std::optional<std::uint64_t> ParseGenerationName(std::string_view name) {
  if (!name.starts_with(kGenerationPrefix)) return std::nullopt;
  std::string_view digits = name.substr(kGenerationPrefix.size());
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n == 0 ||
      digits != std::to_string(n)) {
    return std::nullopt;
  }
  return n;
}

std::string EncodeCurrent(std::uint64_t generation) {
  return std::string(kCurrentHeader) + "generation " + std::to_string(generation) + "\n";
}

Result<std::uint64_t> ParseCurrent(std::string_view text, const fs::path& path) {
  auto corrupt = [&](std::string_view why) {
    return DataLossError(path.string() + " is corrupt: " + std::string(why) +
                         " (expected \"junction state log, format 1\" and \"generation <n>\")");
  };
  if (!text.starts_with(kCurrentHeader)) return corrupt("bad first line");
  text.remove_prefix(kCurrentHeader.size());
  constexpr std::string_view kKey = "generation ";
  if (!text.starts_with(kKey) || !text.ends_with('\n')) return corrupt("bad second line");
  text = text.substr(kKey.size(), text.size() - kKey.size() - 1);
  std::optional<std::uint64_t> generation =
      ParseGenerationName(std::string(kGenerationPrefix) + std::string(text));
  if (!generation) return corrupt("bad generation number");
  return *generation;
}

std::int64_t NowMs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.WallNow().time_since_epoch())
      .count();
}

storage::LogOptions LogOptionsFor(const storage::FsyncPolicy& fsync) {
  storage::LogOptions options;
  options.fsync = fsync;
  return options;
}

// Creates `dir` and its missing parents, each made durable by a SyncDir of its parent.
Status CreateDirDurably(Env& env, const fs::path& dir) {
  std::vector<fs::path> created;
  for (fs::path p = dir; !p.empty() && !env.FileExists(p); p = p.parent_path()) {
    created.push_back(p);
    if (p == p.parent_path()) break;
  }
  JUNCTION_RETURN_IF_ERROR(env.CreateDirs(dir));
  for (const fs::path& p : created) {
    fs::path parent = p.parent_path();
    JUNCTION_RETURN_IF_ERROR(env.SyncDir(parent.empty() ? fs::path(".") : parent));
  }
  return OkStatus();
}

// True if a log directory holds a record: some segment (".log") is not empty.
bool HoldsRecords(Env& env, const fs::path& log_dir) {
  for (const std::string& name : env.GetChildren(log_dir).value_or(std::vector<std::string>{})) {
    if (name.ends_with(".log") && env.GetFileSize(log_dir / name).value_or(1) > 0) return true;
  }
  return false;
}

// Removes a generation's directory and its files (a Log directory has no subdirectory).
// The removal is durable after SyncDir of its parent.
Status RemoveGeneration(Env& env, const fs::path& log_dir) {
  if (!env.FileExists(log_dir)) return OkStatus();
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> names, env.GetChildren(log_dir));
  for (const std::string& name : names) JUNCTION_RETURN_IF_ERROR(env.RemoveFile(log_dir / name));
  return env.RemoveDir(log_dir);
}

struct SwitchOutcome {
  Status status;
  bool maybe_switched = false;  // CURRENT may name the new generation (now or after a crash)
};

// Points CURRENT at `generation`: CURRENT.tmp written and synced, renamed over CURRENT,
// the directory synced. A crash leaves CURRENT naming the old or the new generation.
SwitchOutcome ReplaceCurrent(Env& env, const fs::path& dir, std::uint64_t generation) {
  const fs::path tmp = dir / kCurrentTmpFile;
  Status written = [&]() -> Status {
    JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env.NewWritableFile(tmp));
    JUNCTION_RETURN_IF_ERROR(file->Append(EncodeCurrent(generation)));
    JUNCTION_RETURN_IF_ERROR(file->Sync());
    return file->Close();
  }();
  if (!written.ok()) {
    env.RemoveFile(tmp).IgnoreError();  // Open removes it otherwise
    return {written, false};
  }
  if (Status renamed = env.RenameFile(tmp, dir / kCurrentFile); !renamed.ok()) {
    return {renamed, true};  // a failed rename is not known to have done nothing
  }
  return {env.SyncDir(dir), true};
}

// Replays the whole log: the latest record of a key wins, a record without value deletes.
Result<StateStore::Entries> ReadEntries(storage::Log& log) {
  storage::LogStatus status = log.status();
  if (status.state == storage::LogState::kCorrupt) return status.error;
  StateStore::Entries entries;
  Offset from = status.log_start;
  while (from < log.high_watermark()) {
    JUNCTION_ASSIGN_OR_RETURN(storage::ReadResult read, log.Read(from, kReadBytes));
    std::span<const std::byte> bytes = read.batches;
    while (!bytes.empty()) {
      JUNCTION_ASSIGN_OR_RETURN(codec::BatchHeader header, codec::ParseBatchHeader(bytes));
      if (header.batch_length > bytes.size()) return DataLossError("a read returned half a batch");
      JUNCTION_ASSIGN_OR_RETURN(std::vector<codec::Record> records,
                                codec::DecodeRecords(bytes.first(header.batch_length)));
      for (codec::Record& record : records) {
        if (!record.key) {
          return DataLossError("record at offset " + std::to_string(record.offset.value()) +
                               " of " + log.dir().string() + " has no key");
        }
        if (record.value) {
          entries.insert_or_assign(std::move(*record.key), std::move(*record.value));
        } else {
          entries.erase(*record.key);
        }
      }
      bytes = bytes.subspan(header.batch_length);
    }
    if (read.next_offset <= from) return InternalError("a log read made no progress");
    from = read.next_offset;
  }
  return entries;
}

// Every entry as a record, in batches of about kChunkBytes (an entry larger than that
// gets a batch of its own: it fitted in the Put's batch, so it fits here).
Result<std::vector<Bytes>> EncodeEntries(const StateStore::Entries& entries,
                                         std::int64_t timestamp_ms) {
  std::vector<Bytes> batches;
  codec::RecordBatchBuilder builder;
  for (const auto& [key, value] : entries) {
    constexpr std::size_t kRecordOverhead = 32;  // varints of one record, at most
    if (builder.record_count() > 0 &&
        builder.uncompressed_bytes() + key.size() + value.size() + kRecordOverhead > kChunkBytes) {
      JUNCTION_ASSIGN_OR_RETURN(batches.emplace_back(), builder.Build());
    }
    builder.Add(timestamp_ms, key, value);
  }
  if (builder.record_count() > 0) {
    JUNCTION_ASSIGN_OR_RETURN(batches.emplace_back(), builder.Build());
  }
  return batches;
}

}  // namespace

Result<std::unique_ptr<StateStore>> StateStore::Open(storage::Log::Context ctx, fs::path dir,
                                                     storage::FsyncPolicy fsync) {
  StateStoreOptions options;
  options.fsync = fsync;
  return Open(std::move(ctx), std::move(dir), options);
}

Result<std::unique_ptr<StateStore>> StateStore::Open(storage::Log::Context ctx, fs::path dir,
                                                     StateStoreOptions options) {
  Env& env = ctx.env;
  JUNCTION_RETURN_IF_ERROR(CreateDirDurably(env, dir));
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<FileLock> lock, env.LockFile(dir / kLockFile));
  if (env.FileExists(dir / kCurrentTmpFile)) {
    JUNCTION_RETURN_IF_ERROR(env.RemoveFile(dir / kCurrentTmpFile));
  }
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> names, env.GetChildren(dir));
  std::vector<std::uint64_t> generations;
  for (const std::string& name : names) {
    if (auto generation = ParseGenerationName(name)) generations.push_back(*generation);
  }
  std::sort(generations.begin(), generations.end());

  const fs::path current_path = dir / kCurrentFile;
  std::optional<std::uint64_t> current;
  if (env.FileExists(current_path)) {
    JUNCTION_ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, current_path));
    JUNCTION_ASSIGN_OR_RETURN(current, ParseCurrent(text, current_path));
    if (!std::binary_search(generations.begin(), generations.end(), *current)) {
      return DataLossError(current_path.string() + " names generation " + std::to_string(*current) +
                           ", but " + (dir / GenerationName(*current)).string() +
                           " does not exist");
    }
    // What CURRENT says must be durable before the generations it obsoletes go.
    JUNCTION_RETURN_IF_ERROR(env.SyncDir(dir));
  } else {
    // No CURRENT: a first Open that crashed before writing it, whose log is empty.
    for (std::uint64_t generation : generations) {
      fs::path log_dir = dir / GenerationName(generation);
      if (HoldsRecords(env, log_dir)) {
        return DataLossError(current_path.string() + " is missing but " + log_dir.string() +
                             " holds records; restore CURRENT to name the live generation");
      }
    }
  }
  bool removed = false;
  for (std::uint64_t generation : generations) {
    if (generation == current) continue;
    JUNCTION_RETURN_IF_ERROR(RemoveGeneration(env, dir / GenerationName(generation)));
    removed = true;
  }
  if (removed) JUNCTION_RETURN_IF_ERROR(env.SyncDir(dir));

  const std::uint64_t generation =
      current.value_or(generations.empty() ? 1 : generations.back() + 1);
  JUNCTION_ASSIGN_OR_RETURN(
      std::unique_ptr<storage::Log> log,
      storage::Log::Open(ctx, dir / GenerationName(generation), LogOptionsFor(options.fsync)));
  if (!current) JUNCTION_RETURN_IF_ERROR(ReplaceCurrent(env, dir, generation).status);
  JUNCTION_ASSIGN_OR_RETURN(Entries entries, ReadEntries(*log));
  return std::unique_ptr<StateStore>(new StateStore(std::move(ctx), std::move(dir), options,
                                                    std::move(lock), std::move(log), generation,
                                                    std::move(entries)));
}

StateStore::StateStore(storage::Log::Context ctx, fs::path dir, StateStoreOptions options,
                       std::unique_ptr<FileLock> lock, std::unique_ptr<storage::Log> log,
                       std::uint64_t generation, Entries entries)
    : ctx_(std::move(ctx)),
      dir_(std::move(dir)),
      options_(options),
      lock_(std::move(lock)),
      log_(std::move(log)),
      generation_(generation),
      next_generation_(generation + 1),
      entries_(std::move(entries)) {
  for (const auto& [key, value] : entries_) live_bytes_ += key.size() + value.size();
}

StateStore::~StateStore() {
  JUNCTION_CHECK(!compacting_) << "StateStore " << dir_ << " destroyed while compacting";
}

std::uint64_t StateStore::log_bytes() const { return log_->status().size_bytes; }

Status StateStore::Writable() const {
  if (closing_) return FailedPreconditionError("state store " + dir_.string() + " is closed");
  if (!broken_.ok()) {
    return FailedPreconditionError("state store " + dir_.string() +
                                   " is read-only until reopened: " + broken_.ToString());
  }
  return OkStatus();
}

asio::awaitable<Status> StateStore::Put(std::vector<Update> updates) {
  JUNCTION_CO_RETURN_IF_ERROR(Writable());
  if (updates.empty()) co_return OkStatus();
  codec::RecordBatchBuilder builder;
  const std::int64_t now_ms = NowMs(ctx_.clock);
  for (const auto& [key, value] : updates) {
    builder.Add(
        now_ms, key,
        value ? std::optional<std::string_view>(*value) : std::optional<std::string_view>());
  }
  JUNCTION_CO_ASSIGN_OR_RETURN(Bytes batch, builder.Build());

  const std::uint64_t ticket = next_ticket_++;
  while (compacting_ || ticket != next_turn_) co_await WaitForTurn(ticket);
  if (!broken_.ok()) {  // a compaction failed while this Put waited
    AdvanceTurn();
    co_return Writable();
  }
  ++in_flight_;
  // The append is started before the turn passes on, so the Log gets Puts in turn order.
  Result<storage::AppendResult> appended =
      co_await asio::async_initiate<decltype(asio::use_awaitable),
                                    void(Result<storage::AppendResult>)>(
          [this](auto handler, Bytes bytes) {
            log_->AsyncAppend(std::move(bytes), std::move(handler));
            AdvanceTurn();
          },
          asio::use_awaitable, std::move(batch));
  --in_flight_;
  if (appended.ok()) {
    // The Log completes appends in the order they were made.
    JUNCTION_CHECK(ticket >= last_applied_) << "state log completed a Put out of order";
    last_applied_ = ticket + 1;
    Apply(std::move(updates));
  }
  NotifyChange();
  if (!appended.ok()) co_return appended.status();
  if (!compacting_ && !closing_ && broken_.ok() && NeedsCompaction()) {
    if (Status compacted = co_await RunCompaction(); !compacted.ok()) {
      log::Warn("state store compaction failed",
                {{"dir", dir_.string()}, {"error", compacted.ToString()}});
    }
  }
  co_return OkStatus();
}

asio::awaitable<Status> StateStore::Compact() {
  JUNCTION_CO_RETURN_IF_ERROR(Writable());
  while (compacting_) co_await WaitForChange();
  JUNCTION_CO_RETURN_IF_ERROR(Writable());
  co_return co_await RunCompaction();
}

asio::awaitable<Status> StateStore::Close() {
  if (closing_) {
    while (!closed_) co_await WaitForChange();
    co_return close_status_;
  }
  closing_ = true;
  while (compacting_ || in_flight_ > 0 || next_turn_ != next_ticket_) co_await WaitForChange();
  close_status_ = co_await log_->Close();
  closed_ = true;
  lock_.reset();
  NotifyChange();
  co_return close_status_;
}

void StateStore::Apply(std::vector<Update>&& updates) {
  for (auto& [key, value] : updates) {
    auto it = entries_.find(key);
    if (it != entries_.end()) live_bytes_ -= it->first.size() + it->second.size();
    if (!value) {
      if (it != entries_.end()) entries_.erase(it);
      continue;
    }
    live_bytes_ += key.size() + value->size();
    if (it != entries_.end()) {
      it->second = std::move(*value);
    } else {
      entries_.emplace(std::move(key), std::move(*value));
    }
  }
}

bool StateStore::NeedsCompaction() const {
  storage::LogStatus status = log_->status();
  if (status.state != storage::LogState::kOpen) return false;
  const std::uint64_t threshold =
      std::max(options_.compact_min_bytes, options_.compact_live_ratio * live_bytes_);
  return status.size_bytes > threshold && status.size_bytes > 2 * compacted_bytes_;
}

asio::awaitable<void> StateStore::WaitForTurn(std::uint64_t ticket) {
  return asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [this, ticket](auto handler) { turn_waiters_.emplace(ticket, Waiter(std::move(handler))); },
      asio::use_awaitable);
}

asio::awaitable<void> StateStore::WaitForChange() {
  return asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [this](auto handler) { change_waiters_.emplace_back(std::move(handler)); },
      asio::use_awaitable);
}

void StateStore::AdvanceTurn() {
  ++next_turn_;
  WakeTurn();
  NotifyChange();
}

void StateStore::WakeTurn() {
  if (compacting_) return;
  auto it = turn_waiters_.find(next_turn_);
  if (it == turn_waiters_.end()) return;
  Waiter waiter = std::move(it->second);
  turn_waiters_.erase(it);
  asio::post(ctx_.shard, std::move(waiter));  // it re-checks its turn when it runs
}

void StateStore::NotifyChange() {
  std::vector<Waiter> waiters = std::move(change_waiters_);
  change_waiters_.clear();
  for (Waiter& waiter : waiters) asio::post(ctx_.shard, std::move(waiter));
}

asio::awaitable<Status> StateStore::RunCompaction() {
  JUNCTION_CHECK(!compacting_);
  compacting_ = true;  // Puts wait for their turn from here on
  while (in_flight_ > 0) co_await WaitForChange();
  Status status;
  if (storage::LogStatus log = log_->status(); log.state != storage::LogState::kOpen) {
    status = FailedPreconditionError("state log " + log_->dir().string() +
                                     " is not open: " + log.error.ToString());
  } else {
    status = co_await WriteGeneration();
  }
  compacting_ = false;
  WakeTurn();
  NotifyChange();
  co_return status;
}

asio::awaitable<Status> StateStore::WriteGeneration() {
  const std::uint64_t generation = next_generation_++;
  const fs::path log_dir = dir_ / GenerationName(generation);
  const storage::LogOptions log_options = LogOptionsFor(options_.fsync);
  const std::uint64_t bytes_before = log_bytes();
  Env& env = ctx_.env;

  // 1. The new generation, complete and durable while CURRENT still names the old one.
  //    Under "always" every acknowledged append is; otherwise Close syncs, and the log is
  //    reopened after the switch (a clean open reads only the shutdown marker).
  const bool reopen = !options_.fsync.acks_after_sync();
  JUNCTION_CO_ASSIGN_OR_RETURN(std::vector<Bytes> batches,
                               EncodeEntries(entries_, NowMs(ctx_.clock)));
  co_await asio::post(ctx_.blocking, asio::use_awaitable);
  Result<std::unique_ptr<storage::Log>> fresh = storage::Log::Open(ctx_, log_dir, log_options);
  co_await asio::post(ctx_.shard, asio::use_awaitable);
  Status status = fresh.status();
  for (std::size_t i = 0; status.ok() && i < batches.size(); ++i) {
    status = (co_await (*fresh)->Append(std::move(batches[i]))).status();
  }
  if (status.ok() && reopen) {
    status = co_await (*fresh)->Close();
    fresh = FailedPreconditionError("closed");
  }
  // 2. CURRENT names it.
  SwitchOutcome switched;
  if (status.ok()) {
    co_await asio::post(ctx_.blocking, asio::use_awaitable);
    switched = ReplaceCurrent(env, dir_, generation);
    if (switched.status.ok() && reopen) fresh = storage::Log::Open(ctx_, log_dir, log_options);
    co_await asio::post(ctx_.shard, asio::use_awaitable);
    status = switched.status.ok() ? fresh.status() : switched.status;
  }
  if (!status.ok()) {
    if (fresh.ok()) {
      (co_await (*fresh)->Close()).IgnoreError();
      fresh = status;
    }
    status = status.WithContext("compacting into " + log_dir.string());
    if (switched.maybe_switched) {
      broken_ = status;  // which generation a crash leaves is unknown: stop writing
      co_return status;
    }
    co_await asio::post(ctx_.blocking, asio::use_awaitable);
    Status removed = RemoveGeneration(env, log_dir);
    co_await asio::post(ctx_.shard, asio::use_awaitable);
    if (!removed.ok()) {
      log::Warn("could not remove an abandoned state generation; the next open removes it",
                {{"dir", log_dir.string()}, {"error", removed.ToString()}});
    }
    co_return status;
  }

  // 4. The old generation is obsolete: close and remove it.
  std::unique_ptr<storage::Log> old = std::exchange(log_, std::move(fresh).value());
  const std::uint64_t old_generation = std::exchange(generation_, generation);
  compacted_bytes_ = log_bytes();
  Status old_closed = co_await old->Close();
  old.reset();
  const fs::path old_dir = dir_ / GenerationName(old_generation);
  co_await asio::post(ctx_.blocking, asio::use_awaitable);
  Status removed = RemoveGeneration(env, old_dir);
  if (removed.ok()) removed = env.SyncDir(dir_);
  co_await asio::post(ctx_.shard, asio::use_awaitable);
  if (!old_closed.ok() || !removed.ok()) {
    log::Warn("could not remove an old state generation; the next open removes it",
              {{"dir", old_dir.string()},
               {"error", (old_closed.ok() ? removed : old_closed).ToString()}});
  }
  log::Info("state store compacted", {{"dir", dir_.string()},
                                      {"generation", generation},
                                      {"bytes_before", bytes_before},
                                      {"bytes_after", compacted_bytes_},
                                      {"entries", entries_.size()}});
  co_return OkStatus();
}

}  // namespace junction::broker
