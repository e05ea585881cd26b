#pragma once

// Helpers shared by the Log test suites (crash, recovery, fault, group commit):
// building batches, driving a Log on a single-thread io_context (deterministic and
// steppable), reading a whole log back, editing its files through an Env, and an Env
// that records what each Sync made durable. Test-only; header-only.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "codec/record_batch.h"
#include "core/env.h"
#include "junction/log.h"
#include "junction/result.h"
#include "storage/log.h"

namespace junction::storage::test_util {

namespace fs = std::filesystem;
using Bytes = std::vector<std::byte>;

// A batch as a producer submits it: its records (offsets ignored) and its bytes
// (base_offset 0).
struct TestBatch {
  std::vector<codec::Record> records;
  Bytes bytes;
};

inline TestBatch MakeBatch(std::vector<codec::Record> records) {
  codec::RecordBatchBuilder builder;
  for (const codec::Record& record : records) builder.Add(record);
  Result<Bytes> bytes = builder.Build();
  JUNCTION_CHECK(bytes.ok()) << bytes.status();
  return {std::move(records), std::move(bytes).value()};
}

inline std::string RandomString(std::mt19937_64& rng, std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; i += 8) {
    std::uint64_t bits = rng();
    std::memcpy(s.data() + i, &bits, std::min<std::size_t>(8, size - i));
  }
  return s;
}

// 1..max_records records with keys "<tag>/<i>" (unique per batch when tags are), random
// values of up to max_value bytes (sometimes none), 0-2 headers and timestamps near
// 2026-01-01. Values above 256 bytes are a random prefix plus filler, to stay cheap.
inline TestBatch RandomBatch(std::mt19937_64& rng, const std::string& tag, int max_records,
                             std::size_t max_value) {
  std::vector<codec::Record> records(1 + rng() % static_cast<std::uint64_t>(max_records));
  for (std::size_t i = 0; i < records.size(); ++i) {
    codec::Record& r = records[i];
    r.timestamp_ms = 1'767'225'600'000 + static_cast<std::int64_t>(rng() % 100'000);
    r.key = tag + "/" + std::to_string(i);
    if (rng() % 8 != 0) {
      std::size_t size = rng() % (max_value + 1);
      r.value = RandomString(rng, std::min<std::size_t>(size, 256));
      r.value->resize(size, static_cast<char>('a' + rng() % 26));
    }
    for (std::uint64_t h = rng() % 3; h > 0; --h) {
      std::optional<std::string> value;
      if (rng() % 4 != 0) value = RandomString(rng, rng() % 8);
      r.headers.push_back({"h" + std::to_string(h), std::move(value)});
    }
  }
  return MakeBatch(std::move(records));
}

// `records` as they read back from a batch stored at `base`.
inline std::vector<codec::Record> WithOffsets(std::vector<codec::Record> records, Offset base) {
  for (std::size_t i = 0; i < records.size(); ++i) records[i].offset = base + i;
  return records;
}

// `batch` as the log stores it at `base`.
inline Bytes Stamped(Bytes batch, Offset base) {
  codec::SetBaseOffset(batch, base);
  return batch;
}

// Sets the log level for its lifetime (the Log logs every open; thousands of opens
// would bury a failure).
class ScopedLogLevel {
 public:
  explicit ScopedLogLevel(log::Level level) : previous_(log::GetLevel()) { log::SetLevel(level); }
  ~ScopedLogLevel() { log::SetLevel(previous_); }
  ScopedLogLevel(const ScopedLogLevel&) = delete;
  ScopedLogLevel& operator=(const ScopedLogLevel&) = delete;

 private:
  log::Level previous_;
};

// A Log context whose blocking work runs on the shard itself: the caller's thread is the
// only one, so a run is deterministic and can be stepped handler by handler.
inline Log::Context SingleThreadContext(Env& env, const Clock& clock,
                                        boost::asio::io_context& ctx) {
  return Log::Context{env, clock, ctx.get_executor(), ctx.get_executor()};
}

// Runs ready handlers of `ctx` on the calling thread until done(). Never blocks: false
// when nothing is left to run while done() is still false (the run hangs).
inline bool PollUntil(boost::asio::io_context& ctx, const std::function<bool()>& done) {
  while (!done()) {
    if (ctx.stopped()) ctx.restart();
    if (ctx.poll_one() == 0 && !done()) return false;
  }
  return true;
}

inline boost::asio::awaitable<void> AppendInto(Log& log, Bytes batch,
                                               std::optional<Result<AppendResult>>& out) {
  out = co_await log.Append(std::move(batch));
}

// Appends one batch on a single-thread context and waits for its completion.
inline Result<AppendResult> AppendNow(boost::asio::io_context& ctx, Log& log, Bytes batch) {
  std::optional<Result<AppendResult>> out;
  boost::asio::co_spawn(ctx, AppendInto(log, std::move(batch), out), boost::asio::detached);
  if (!PollUntil(ctx, [&] { return out.has_value(); })) {
    return InternalError("test: append never completed");
  }
  return std::move(*out);
}

inline boost::asio::awaitable<void> CloseInto(Log& log, std::optional<Status>& out) {
  out = co_await log.Close();
}

inline Status CloseNow(boost::asio::io_context& ctx, Log& log) {
  std::optional<Status> out;
  boost::asio::co_spawn(ctx, CloseInto(log, out), boost::asio::detached);
  if (!PollUntil(ctx, [&] { return out.has_value(); })) {
    return InternalError("test: close never completed");
  }
  return *out;
}

// One batch read back from a log, verified and decoded.
struct StoredBatch {
  codec::BatchHeader header;
  Bytes bytes;
  std::vector<codec::Record> records;  // with absolute offsets
};

// Splits a ReadResult's bytes into verified batches, decoding their records if `decode`.
inline Result<std::vector<StoredBatch>> SplitBatches(std::span<const std::byte> bytes,
                                                     bool decode = true) {
  std::vector<StoredBatch> out;
  while (!bytes.empty()) {
    JUNCTION_ASSIGN_OR_RETURN(codec::BatchHeader header, codec::ParseBatchHeader(bytes));
    if (header.batch_length > bytes.size()) return DataLossError("test: read a partial batch");
    std::span<const std::byte> one = bytes.first(header.batch_length);
    JUNCTION_RETURN_IF_ERROR(codec::VerifyBatch(one));
    std::vector<codec::Record> records;
    if (decode) {
      JUNCTION_ASSIGN_OR_RETURN(records, codec::DecodeRecords(one));
    }
    out.push_back({header, Bytes(one.begin(), one.end()), std::move(records)});
    bytes = bytes.subspan(header.batch_length);
  }
  return out;
}

// Reads [log_start, high_watermark) with Read(), and checks that the batches continue
// each other's offsets from log_start to the high watermark.
inline Result<std::vector<StoredBatch>> ReadWholeLog(Log& log, std::size_t max_bytes = 64 << 10,
                                                     bool decode = true) {
  const Offset start = log.status().log_start;
  const Offset end = log.high_watermark();
  std::vector<StoredBatch> out;
  Offset from = start;
  while (from < end) {
    JUNCTION_ASSIGN_OR_RETURN(ReadResult read, log.Read(from, max_bytes));
    JUNCTION_ASSIGN_OR_RETURN(std::vector<StoredBatch> batches, SplitBatches(read.batches, decode));
    if (batches.empty() || read.next_offset <= from) {
      return InternalError("test: Read(" + std::to_string(from.value()) + ") made no progress");
    }
    for (StoredBatch& batch : batches) {
      Offset expected = out.empty() ? start : out.back().header.next_offset();
      if (batch.header.base_offset != expected) {
        return DataLossError("test: batch at offset " +
                             std::to_string(batch.header.base_offset.value()) + ", expected " +
                             std::to_string(expected.value()));
      }
      out.push_back(std::move(batch));
    }
    if (read.next_offset != out.back().header.next_offset()) {
      return InternalError("test: next_offset does not follow the last batch read");
    }
    from = read.next_offset;
  }
  if (from != end) return InternalError("test: read past the high watermark");
  return out;
}

// ---- Files of a log directory, edited through an Env.

inline fs::path SegmentFile(const fs::path& dir, Offset base, std::string_view extension) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu", static_cast<unsigned long long>(base.value()));
  return dir / (std::string(name) + std::string(extension));
}

// Base offsets of the segments (".log" files) in `dir`, ascending.
inline std::vector<Offset> ListSegments(Env& env, const fs::path& dir) {
  std::vector<Offset> bases;
  for (const std::string& name : env.GetChildren(dir).value_or(std::vector<std::string>{})) {
    if (name.size() == 24 && name.ends_with(".log")) {
      bases.push_back(Offset(std::stoull(name.substr(0, 20))));
    }
  }
  std::sort(bases.begin(), bases.end());
  return bases;
}

inline std::string ReadFileOrEmpty(Env& env, const fs::path& path) {
  return ReadFileToString(env, path).value_or("");
}

// Replaces `path` durably with `contents` (NewWritableFile, Append, Sync, SyncDir).
inline Status RewriteFile(Env& env, const fs::path& path, std::string_view contents) {
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env.NewWritableFile(path));
  JUNCTION_RETURN_IF_ERROR(file->Append(contents));
  JUNCTION_RETURN_IF_ERROR(file->Sync());
  JUNCTION_RETURN_IF_ERROR(file->Close());
  return env.SyncDir(path.parent_path());
}

inline std::string AsString(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// ---- RecordingEnv: what each successful Sync made durable.

// Forwards to `base` and records, per file, the size the last successful Sync made
// durable and whether a SyncDir of its directory followed its creation; and the paths
// of all writes and syncs (SyncDir: the directory) in call order. Files it did not see
// created are taken as wholly durable. Thread-safe; `base` must outlive it.
class RecordingEnv final : public Env {
 public:
  struct FileState {
    std::uint64_t durable_bytes = 0;
    bool name_durable = false;
  };

  explicit RecordingEnv(Env& base) : base_(base) {}

  std::optional<FileState> file(const fs::path& path) const {
    std::lock_guard lock(mutex_);
    auto it = files_.find(Key(path));
    if (it == files_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<fs::path> write_log() const {
    std::lock_guard lock(mutex_);
    return writes_;
  }
  std::vector<fs::path> sync_log() const {
    std::lock_guard lock(mutex_);
    return syncs_;
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const fs::path& path) override {
    return Open(path, /*truncate=*/true);
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const fs::path& path) override {
    return Open(path, /*truncate=*/false);
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const fs::path& path) override {
    return base_.NewRandomAccessFile(path);
  }
  bool FileExists(const fs::path& path) override { return base_.FileExists(path); }
  Result<std::uint64_t> GetFileSize(const fs::path& path) override {
    return base_.GetFileSize(path);
  }
  Result<std::vector<std::string>> GetChildren(const fs::path& dir) override {
    return base_.GetChildren(dir);
  }
  Status CreateDir(const fs::path& path) override { return base_.CreateDir(path); }
  Status CreateDirs(const fs::path& path) override { return base_.CreateDirs(path); }
  Status RemoveFile(const fs::path& path) override {
    Status status = base_.RemoveFile(path);
    std::lock_guard lock(mutex_);
    if (status.ok()) files_.erase(Key(path));
    return status;
  }
  Status RemoveDir(const fs::path& path) override { return base_.RemoveDir(path); }
  Status RenameFile(const fs::path& from, const fs::path& to) override {
    std::optional<FileState> state = Seen(from);
    Status status = base_.RenameFile(from, to);
    std::lock_guard lock(mutex_);
    if (status.ok()) {
      files_.erase(Key(from));
      files_[Key(to)] = {state ? state->durable_bytes : 0, false};
    }
    return status;
  }
  Status Truncate(const fs::path& path, std::uint64_t size) override {
    Seen(path);
    Status status = base_.Truncate(path, size);
    std::lock_guard lock(mutex_);
    if (status.ok()) files_[Key(path)].durable_bytes = size;
    return status;
  }
  Status SyncDir(const fs::path& dir) override {
    {
      std::lock_guard lock(mutex_);
      syncs_.push_back(dir);
    }
    Status status = base_.SyncDir(dir);
    std::lock_guard lock(mutex_);
    if (status.ok()) {
      for (auto& [key, state] : files_) {
        if (fs::path(key).parent_path() == Key(dir)) state.name_durable = true;
      }
    }
    return status;
  }
  Result<std::unique_ptr<FileLock>> LockFile(const fs::path& path) override {
    return base_.LockFile(path);
  }

 private:
  class File final : public WritableFile {
   public:
    File(RecordingEnv& env, fs::path path, std::unique_ptr<WritableFile> file)
        : env_(env), path_(std::move(path)), file_(std::move(file)) {}
    Status AppendV(std::span<const std::span<const std::byte>> pieces) override {
      {
        std::lock_guard lock(env_.mutex_);
        env_.writes_.push_back(path_);
      }
      return file_->AppendV(pieces);
    }
    Status Sync() override {
      std::uint64_t size = file_->Size();
      {
        std::lock_guard lock(env_.mutex_);
        env_.syncs_.push_back(path_);
      }
      Status status = file_->Sync();
      std::lock_guard lock(env_.mutex_);
      if (status.ok()) {
        FileState& state = env_.files_[Key(path_)];
        state.durable_bytes = std::max(state.durable_bytes, size);
      }
      return status;
    }
    Status Close() override { return file_->Close(); }
    std::uint64_t Size() const override { return file_->Size(); }

   private:
    RecordingEnv& env_;
    fs::path path_;
    std::unique_ptr<WritableFile> file_;
  };

  static std::string Key(const fs::path& path) {
    fs::path normal = path.lexically_normal();
    if (!normal.has_filename() && normal != normal.root_path()) normal = normal.parent_path();
    return normal.string();
  }

  // The state of `path`, registering an existing file not seen before as durable.
  std::optional<FileState> Seen(const fs::path& path) {
    bool exists = base_.FileExists(path);
    std::uint64_t size = exists ? base_.GetFileSize(path).value_or(0) : 0;
    std::lock_guard lock(mutex_);
    auto it = files_.find(Key(path));
    if (it != files_.end()) return it->second;
    if (!exists) return std::nullopt;
    return files_[Key(path)] = {size, true};
  }

  Result<std::unique_ptr<WritableFile>> Open(const fs::path& path, bool truncate) {
    Seen(path);
    Result<std::unique_ptr<WritableFile>> file =
        truncate ? base_.NewWritableFile(path) : base_.NewAppendableFile(path);
    if (!file.ok()) return file;
    std::lock_guard lock(mutex_);
    FileState& state = files_[Key(path)];  // a new file: nothing durable, not even its name
    if (truncate) state.durable_bytes = 0;
    std::unique_ptr<WritableFile> wrapped =
        std::make_unique<File>(*this, path, std::move(file).value());
    return wrapped;
  }

  Env& base_;
  mutable std::mutex mutex_;
  std::map<std::string, FileState> files_;  // guarded by mutex_; by normalized path
  std::vector<fs::path> writes_;            // guarded by mutex_
  std::vector<fs::path> syncs_;             // guarded by mutex_
};

}  // namespace junction::storage::test_util
