#include "storage/log.h"

#include <algorithm>
#include <limits>

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "junction/log.h"
#include "storage/log_internal.h"
#include "storage/segment.h"

namespace junction::storage {
namespace {

std::string OffsetText(Offset offset) { return std::to_string(offset.value()); }

// See MaybeStartFlush: how much must queue during completions before a flush
// starts without waiting for the completions to finish.
constexpr std::size_t kEagerFlushBytes = 64 * 1024;

}  // namespace

std::uint64_t Log::Records(const std::vector<PendingAppend>& appends) {
  std::uint64_t n = 0;
  for (const PendingAppend& append : appends) n += (append.last - append.base) + 1;
  return n;
}

Log::Log(Context context, std::filesystem::path dir, LogOptions options, Recovered recovered)
    : context_(std::move(context)),
      dir_(std::move(dir)),
      options_(options),
      lock_(std::move(recovered.lock)),
      writer_(std::move(recovered.writer)),
      alive_(std::make_shared<int>(0)),
      segments_(std::move(recovered.segments)),
      state_(recovered.state),
      error_(std::move(recovered.error)),
      corrupt_from_(recovered.corrupt_from),
      truncated_at_open_(recovered.truncated),
      clean_open_(recovered.clean) {
  log_start_ = segments_.front().base;
  high_watermark_ = segments_.back().next;
  next_offset_ = high_watermark_;
  if (options_.fsync.acks_after_sync()) handoff_ = std::make_shared<Handoff>();
  if (options_.fsync.kind == FsyncPolicy::Kind::kInterval && state_ == LogState::kOpen) {
    sync_timer_ = std::make_unique<boost::asio::steady_timer>(context_.shard);
    ArmIntervalSync();
  }
}

Log::~Log() = default;

boost::asio::awaitable<Result<AppendResult>> Log::Append(std::vector<std::byte> batch) {
  // Not a coroutine itself: the operation's own awaitable, one frame fewer.
  return AsyncAppend(std::move(batch), boost::asio::use_awaitable);
}

void Log::Fail(AppendHandler handler, Status status) {
  // Never complete inside the initiating call: post to the shard.
  boost::asio::post(context_.shard, boost::asio::append(std::move(handler),
                                                        Result<AppendResult>(std::move(status))));
}

void Log::StartAppend(std::vector<std::byte> batch, AppendHandler handler) {
  if (state_ != LogState::kOpen || closing_) {
    Status why = state_ == LogState::kOpen ? FailedPreconditionError("log is closing")
                 : state_ == LogState::kClosed
                     ? FailedPreconditionError("log is closed")
                     : FailedPreconditionError("log is read-only: " + error_.ToString());
    Fail(std::move(handler), why.WithContext(dir_.string()));
    return;
  }
  if (batch.size() > options_.max_batch_bytes) {
    Fail(std::move(handler), ResourceExhaustedError("batch of " + std::to_string(batch.size()) +
                                                    " bytes exceeds max_batch_bytes " +
                                                    std::to_string(options_.max_batch_bytes)));
    return;
  }
  Result<codec::BatchHeader> header = codec::VerifyBatch(batch, options_.max_batch_bytes);
  if (!header.ok()) {
    Fail(std::move(handler), InvalidArgumentError("malformed batch: " + header.status().message()));
    return;
  }
  Offset base = next_offset_;
  codec::SetBaseOffset(batch, base);
  next_offset_ = base + (std::uint64_t{header->last_offset_delta} + 1);
  PendingAppend append{std::move(batch), base, base + header->last_offset_delta,
                       header->max_timestamp_ms, std::move(handler)};
  if (flushing_ && handoff_) {
    std::lock_guard lock(handoff_->mutex);
    if (handoff_->job_running) {
      handoff_->appends.push_back(std::move(append));
      return;
    }
  }
  pending_bytes_ += append.batch.size();
  pending_.push_back(std::move(append));
  MaybeStartFlush();
}

void Log::MaybeStartFlush() {
  if (flushing_ || purging_ || state_ != LogState::kOpen) return;
  // While completions run, their coroutines append again; gather those into
  // one flush, but start it once enough has queued, so that the disk works
  // while the rest of the completions run.
  if (completing_ && pending_bytes_ < kEagerFlushBytes) return;
  bool sync_only = pending_.empty() && sync_wanted_;
  if (pending_.empty() && !sync_only) return;
  flushing_ = true;
  bool sync = options_.fsync.acks_after_sync() || sync_wanted_;
  sync_wanted_ = false;
  std::vector<PendingAppend> appends = std::move(pending_);
  pending_.clear();
  pending_bytes_ = 0;
  std::shared_ptr<Handoff> handoff;
  if (handoff_) {
    std::lock_guard lock(handoff_->mutex);
    handoff_->job_running = true;
    handoff = handoff_;
  }
  boost::asio::post(context_.blocking,
                    [writer = writer_, lock = lock_, appends = std::move(appends), sync,
                     handoff = std::move(handoff), alive = std::weak_ptr<int>(alive_), this,
                     shard = context_.shard]() mutable {
                      while (true) {
                        FlushOutcome outcome = writer->Flush(appends, sync);
                        std::vector<PendingAppend> next;
                        if (handoff) {
                          std::lock_guard taking(handoff->mutex);
                          // Go on only when the appends made meanwhile are at least half as
                          // many records as this flush carried: a steady stream. Fewer, and
                          // the completions about to run are likely to bring more; the shard
                          // gathers those with the rest (MaybeStartFlush).
                          if (outcome.status.ok() && !handoff->appends.empty() &&
                              2 * Records(handoff->appends) >= Records(appends)) {
                            next = std::move(handoff->appends);
                            handoff->appends.clear();
                            outcome.continued = true;
                          } else {
                            handoff->job_running = false;
                          }
                        }
                        const bool continued = outcome.continued;
                        if (!continued) {
                          // Let go of the files and the directory lock before the completion
                          // can run: a Close() it finishes may be followed at once by an Open
                          // of the same directory.
                          writer.reset();
                          lock.reset();
                        }
                        boost::asio::post(shard, [alive, this, outcome = std::move(outcome),
                                                  appends = std::move(appends)]() mutable {
                          // A destroyed Log drops the completion; its handlers are destroyed
                          // uncalled.
                          if (alive.lock()) OnFlushDone(outcome, std::move(appends));
                        });
                        if (!continued) return;
                        appends = std::move(next);
                      }
                    });
}

void Log::OnFlushDone(const FlushOutcome& outcome, std::vector<PendingAppend> appends) {
  flushing_ = outcome.continued;
  if (!outcome.continued && handoff_) {
    // What the job left behind goes first: it was appended before pending_.
    std::vector<PendingAppend> left = TakeHandoff();
    if (!left.empty()) {
      for (PendingAppend& append : left) pending_bytes_ += append.batch.size();
      for (PendingAppend& append : pending_) left.push_back(std::move(append));
      pending_ = std::move(left);
    }
  }
  if (!outcome.status.ok()) {
    state_ = LogState::kReadOnly;
    error_ = outcome.status;
    log::Error("log write failed; the partition is read-only until reopened",
               {{"dir", dir_.string()}, {"error", outcome.status.ToString()}});
    for (PendingAppend& append : appends) {
      boost::asio::dispatch(
          boost::asio::append(std::move(append.handler), Result<AppendResult>(outcome.status)));
    }
    std::vector<PendingAppend> waiting = TakeHandoff();
    for (PendingAppend& append : pending_) waiting.push_back(std::move(append));
    pending_.clear();
    pending_bytes_ = 0;
    Status later = FailedPreconditionError("log is read-only: " + error_.ToString());
    for (PendingAppend& append : waiting) {
      boost::asio::dispatch(
          boost::asio::append(std::move(append.handler), Result<AppendResult>(later)));
    }
    NotifyIdle();
    return;
  }
  for (const SegmentInfo& info : outcome.segments) {
    if (info.base == segments_.back().base) {
      segments_.back() = info;
    } else {
      segments_.push_back(info);
    }
  }
  high_watermark_ = segments_.back().next;
  // Run the completions with new flushes held back, so that appends made by
  // the resumed coroutines gather into one flush.
  completing_ = true;
  for (PendingAppend& append : appends) {
    boost::asio::dispatch(boost::asio::append(
        std::move(append.handler), Result<AppendResult>(AppendResult{append.base, append.last})));
  }
  completing_ = false;
  MaybeStartFlush();
  if (!flushing_) NotifyIdle();
}

std::vector<Log::PendingAppend> Log::TakeHandoff() {
  std::vector<PendingAppend> taken;
  if (!handoff_) return taken;
  std::lock_guard lock(handoff_->mutex);
  taken = std::move(handoff_->appends);
  handoff_->appends.clear();
  return taken;
}

void Log::NotifyIdle() {
  std::vector<boost::asio::any_completion_handler<void()>> waiters = std::move(idle_waiters_);
  idle_waiters_.clear();
  for (auto& waiter : waiters) boost::asio::dispatch(std::move(waiter));
}

void Log::ArmIntervalSync() {
  sync_timer_->expires_after(options_.fsync.interval);
  sync_timer_->async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
    if (ec || !alive.lock() || state_ != LogState::kOpen || closing_) return;
    sync_wanted_ = true;
    MaybeStartFlush();
    ArmIntervalSync();
  });
}

Status Log::ReadableStatus(Offset from) const {
  if (state_ == LogState::kClosed) return FailedPreconditionError("log is closed");
  if (from < log_start_) {
    return OutOfRangeError("offset " + OffsetText(from) + " is before the log start " +
                           OffsetText(log_start_) + " (deleted by retention)");
  }
  if (corrupt_from_ && from >= *corrupt_from_) {
    return DataLossError("offset " + OffsetText(from) + " is unreadable: " + error_.message());
  }
  if (from > high_watermark_) {
    return OutOfRangeError("offset " + OffsetText(from) + " is beyond the high watermark " +
                           OffsetText(high_watermark_));
  }
  return OkStatus();
}

Status Log::MarkCorrupt(Offset at, Status why) {
  why = why.WithContext(dir_.string());
  if (why.code() != StatusCode::kDataLoss) return why;  // an I/O error, not damage
  if (corrupt_from_ && *corrupt_from_ <= at) return why;
  bool was_writable = state_ == LogState::kOpen;
  state_ = LogState::kCorrupt;
  corrupt_from_ = at;
  error_ = why;
  log::Error("partition is corrupt; reads stop before the damage and appends are refused",
             {{"dir", dir_.string()}, {"offset", at.value()}, {"reason", why.message()}});
  if (was_writable) {
    std::vector<PendingAppend> waiting = TakeHandoff();
    for (PendingAppend& append : pending_) waiting.push_back(std::move(append));
    pending_.clear();
    pending_bytes_ = 0;
    for (PendingAppend& append : waiting) {
      boost::asio::post(
          context_.shard,
          boost::asio::append(
              std::move(append.handler),
              Result<AppendResult>(FailedPreconditionError("log is corrupt: " + why.message()))));
    }
  }
  return why;
}

Result<Log::OpenFiles*> Log::FilesFor(const SegmentInfo& segment) {
  auto it = open_.find(segment.base);
  if (it == open_.end()) {
    if (open_.size() > options_.max_open_segments) {
      auto oldest = std::min_element(open_.begin(), open_.end(), [](const auto& a, const auto& b) {
        return a.second.last_use < b.second.last_use;
      });
      open_.erase(oldest);
    }
    OpenFiles files;
    JUNCTION_ASSIGN_OR_RETURN(files.log, context_.env.NewRandomAccessFile(
                                             dir_ / SegmentFileName(segment.base, kLogSuffix)));
    JUNCTION_ASSIGN_OR_RETURN(files.index, context_.env.NewRandomAccessFile(
                                               dir_ / SegmentFileName(segment.base, kIndexSuffix)));
    it = open_.emplace(segment.base, std::move(files)).first;
  }
  it->second.last_use = ++use_clock_;
  return &it->second;
}

Result<std::uint64_t> Log::PositionOf(const SegmentInfo& segment, OpenFiles& files, Offset offset) {
  if (cursor_ && cursor_->segment == segment.base && cursor_->next == offset) {
    return cursor_->position;
  }
  JUNCTION_ASSIGN_OR_RETURN(std::optional<IndexEntry> entry,
                            IndexFloor(*files.index, segment.index_entries,
                                       static_cast<std::uint32_t>(offset - segment.base)));
  std::uint64_t position = entry ? entry->position : 0;
  Offset expected = entry ? segment.base + entry->relative_offset : segment.base;
  BatchScanner scanner(*files.log, position, segment.size, expected, options_.max_batch_bytes,
                       std::size_t{64} << 10);
  while (true) {
    Result<std::optional<ScannedBatch>> batch = scanner.Next();
    if (!batch.ok()) return MarkCorrupt(scanner.expected(), batch.status());
    if (!*batch) {
      return MarkCorrupt(scanner.expected(),
                         DataLossError("offset " + OffsetText(offset) + " not found in segment " +
                                       SegmentFileName(segment.base, kLogSuffix)));
    }
    if ((*batch)->header.last_offset() >= offset) return (*batch)->position;
  }
}

Result<ReadResult> Log::Read(Offset from, std::size_t max_bytes) {
  JUNCTION_RETURN_IF_ERROR(ReadableStatus(from));
  ReadResult result;
  result.high_watermark = high_watermark_;
  result.next_offset = from;
  if (from == high_watermark_) return result;
  auto it = std::upper_bound(segments_.begin(), segments_.end(), from,
                             [](Offset o, const SegmentInfo& s) { return o < s.base; });
  JUNCTION_CHECK(it != segments_.begin()) << "no segment holds offset " << from;
  const SegmentInfo& segment = *std::prev(it);
  if (from >= segment.next) {  // an empty active segment after a full one
    result.next_offset = segment.next;
    return result;
  }
  JUNCTION_ASSIGN_OR_RETURN(OpenFiles * files, FilesFor(segment));
  Result<std::uint64_t> start = PositionOf(segment, *files, from);
  if (!start.ok()) return start.status();

  // One pread of up to max_bytes straight into the result, then keep the
  // whole batches (at least one: a second read when the first is larger).
  std::uint64_t position = *start;
  std::uint64_t available = segment.size - position;
  std::size_t want = static_cast<std::size_t>(
      std::min<std::uint64_t>(available, std::max(max_bytes, codec::kBatchHeaderSize)));
  std::vector<std::byte>& out = result.batches;
  out.resize(want);
  JUNCTION_ASSIGN_OR_RETURN(std::size_t got, files->log->Read(position, out));
  out.resize(got);
  std::size_t at = 0;
  std::optional<Offset> expected;  // unknown until the first batch: `from` may be inside it
  auto damaged = [&](const Status& why) {
    return MarkCorrupt(expected.value_or(from),
                       why.WithContext("segment " + SegmentFileName(segment.base, kLogSuffix) +
                                       " position " + std::to_string(position + at)));
  };
  while (at + codec::kBatchHeaderSize <= out.size()) {
    auto header = codec::ParseBatchHeader(std::span(out).subspan(at), options_.max_batch_bytes);
    if (!header.ok()) return damaged(header.status());
    if (at + header->batch_length > out.size()) {
      if (at > 0) break;
      if (header->batch_length > available) {
        return damaged(DataLossError("batch runs past the acknowledged end of the segment"));
      }
      out.resize(header->batch_length);
      JUNCTION_ASSIGN_OR_RETURN(std::size_t more,
                                files->log->Read(position + got, std::span(out).subspan(got)));
      if (more != out.size() - got) return damaged(DataLossError("short read of a batch"));
    }
    auto verified = codec::VerifyBatch(std::span(out).subspan(at, header->batch_length),
                                       options_.max_batch_bytes);
    if (!verified.ok()) return damaged(verified.status());
    if (expected && verified->base_offset != *expected) {
      return damaged(DataLossError("batch offsets do not continue"));
    }
    expected = verified->next_offset();
    at += header->batch_length;
  }
  if (!expected) return damaged(DataLossError("no whole batch at the read position"));
  out.resize(at);
  result.next_offset = *expected;
  cursor_ = Cursor{segment.base, *expected, position + at};
  return result;
}

Result<Offset> Log::OffsetForTime(std::int64_t timestamp_ms) {
  JUNCTION_RETURN_IF_ERROR(ReadableStatus(log_start_));
  for (const SegmentInfo& segment : segments_) {
    if (segment.max_timestamp_ms < timestamp_ms || segment.size == 0) continue;
    JUNCTION_ASSIGN_OR_RETURN(OpenFiles * files, FilesFor(segment));
    JUNCTION_ASSIGN_OR_RETURN(
        std::uint64_t first,
        IndexFirstAtOrAfterTime(*files->index, segment.index_entries, timestamp_ms));
    std::uint64_t position = 0;
    Offset expected = segment.base;
    if (first > 0) {  // every batch before entry `first - 1`'s, and it, is older
      JUNCTION_ASSIGN_OR_RETURN(IndexEntry entry, ReadIndexEntry(*files->index, first - 1));
      position = entry.position;
      expected = segment.base + entry.relative_offset;
    }
    BatchScanner scanner(*files->log, position, segment.size, expected, options_.max_batch_bytes);
    while (true) {
      Result<std::optional<ScannedBatch>> batch = scanner.Next();
      if (!batch.ok()) return MarkCorrupt(scanner.expected(), batch.status());
      if (!*batch) break;
      if ((*batch)->header.max_timestamp_ms >= timestamp_ms) return (*batch)->header.base_offset;
    }
  }
  return high_watermark_;
}

Result<std::size_t> Log::EnforceRetention(std::optional<Offset> keep_from) {
  if (!options_.retention_bytes && !options_.retention_age) return std::size_t{0};
  std::uint64_t total = 0;
  for (const SegmentInfo& s : segments_) total += s.size;
  std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            context_.clock.WallNow().time_since_epoch())
                            .count();
  std::size_t drop = 0;
  while (drop + 1 < segments_.size()) {  // never the active segment
    const SegmentInfo& s = segments_[drop];
    if (keep_from && s.next > *keep_from) break;
    bool too_big = options_.retention_bytes && total > *options_.retention_bytes;
    bool too_old =
        options_.retention_age && s.max_timestamp_ms < now_ms - options_.retention_age->count();
    if (!too_big && !too_old) break;
    total -= s.size;
    ++drop;
  }
  if (drop == 0) return std::size_t{0};
  std::vector<std::filesystem::path> doomed = DropSegments(drop);
  boost::asio::post(
      context_.blocking, [&env = context_.env, doomed = std::move(doomed), dir = dir_] {
        for (const auto& path : doomed) {
          if (Status s = env.RemoveFile(path); !s.ok() && s.code() != StatusCode::kNotFound) {
            log::Warn("retention could not remove a segment file", {{"error", s.ToString()}});
          }
        }
        if (Status s = env.SyncDir(dir); !s.ok()) {
          log::Warn("retention could not sync the directory", {{"error", s.ToString()}});
        }
      });
  log::Info("retention deleted segments", {{"dir", dir_.string()},
                                           {"segments", static_cast<std::uint64_t>(drop)},
                                           {"log_start", log_start_.value()}});
  return drop;
}

std::vector<std::filesystem::path> Log::DropSegments(std::size_t count) {
  std::vector<std::filesystem::path> doomed;
  for (std::size_t i = 0; i < count; ++i) {
    doomed.push_back(dir_ / SegmentFileName(segments_[i].base, kLogSuffix));
    doomed.push_back(dir_ / SegmentFileName(segments_[i].base, kIndexSuffix));
    open_.erase(segments_[i].base);
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(count));
  log_start_ = segments_.front().base;
  if (cursor_ && cursor_->segment < log_start_) cursor_.reset();
  return doomed;
}

boost::asio::awaitable<void> Log::WaitIdle() {
  co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
      [this](auto handler) { idle_waiters_.emplace_back(std::move(handler)); },
      boost::asio::use_awaitable);
}

boost::asio::awaitable<Result<Offset>> Log::Purge() {
  auto refused = [this] {
    return FailedPreconditionError(state_ == LogState::kOpen && closing_ ? "log is closing"
                                   : state_ == LogState::kClosed
                                       ? "log is closed"
                                       : "log is not writable: " + error_.ToString())
        .WithContext(dir_.string());
  };
  if (state_ != LogState::kOpen || closing_ || purging_) {
    if (purging_) co_return FailedPreconditionError("a purge is already running");
    co_return refused();
  }
  purging_ = true;  // holds new flushes back; appends queue in pending_
  while (flushing_) co_await WaitIdle();
  if (state_ != LogState::kOpen) {  // the flush we waited for failed
    purging_ = false;
    co_return refused();
  }
  const Offset at = high_watermark_;
  const bool roll = segments_.back().base < at;
  Status status;
  if (roll || segments_.size() > 1) {
    std::vector<std::filesystem::path> doomed;
    if (roll) {
      segments_.push_back(SegmentInfo{at, at, 0, std::numeric_limits<std::int64_t>::min(), 0});
    }
    doomed = DropSegments(segments_.size() - 1);
    co_await boost::asio::post(context_.blocking, boost::asio::use_awaitable);
    if (roll) status = writer_->Roll(at);
    for (const auto& path : doomed) {
      if (!status.ok()) break;
      if (Status s = context_.env.RemoveFile(path); !s.ok() && s.code() != StatusCode::kNotFound) {
        status = s;
      }
    }
    if (status.ok()) status = context_.env.SyncDir(dir_);
    co_await boost::asio::post(context_.shard, boost::asio::use_awaitable);
  }
  purging_ = false;
  if (!status.ok()) {
    // Which files survive a crash is unknown: no more writes, as after a
    // failed flush (OnFlushDone fails the appends waiting).
    OnFlushDone(FlushOutcome{status.WithContext("purge"), {}, false}, {});
    co_return status;
  }
  log::Info("purged", {{"dir", dir_.string()}, {"log_start", at.value()}});
  MaybeStartFlush();
  if (!flushing_) NotifyIdle();
  co_return at;
}

boost::asio::awaitable<Status> Log::Close() {
  if (state_ == LogState::kClosed) co_return OkStatus();
  closing_ = true;
  while (flushing_ || purging_ || !pending_.empty()) co_await WaitIdle();
  if (sync_timer_) sync_timer_->cancel();
  Status status;
  if (writer_) {
    bool write_marker = state_ == LogState::kOpen;
    std::vector<SegmentInfo> segments = segments_;
    co_await boost::asio::post(context_.blocking, boost::asio::use_awaitable);
    status = writer_->Close();
    if (status.ok() && write_marker && !writer_->index_unsure) {
      status = WriteFileAtomically(context_.env, dir_ / kCleanShutdownFile,
                                   EncodeCleanShutdown(segments));
    }
    co_await boost::asio::post(context_.shard, boost::asio::use_awaitable);
    writer_.reset();
  }
  state_ = LogState::kClosed;
  open_.clear();
  lock_.reset();
  co_return status;
}

LogStatus Log::status() const {
  LogStatus s;
  s.state = state_;
  s.error = error_;
  s.corrupt_from = corrupt_from_;
  s.log_start = log_start_;
  s.high_watermark = high_watermark_;
  s.next_offset = next_offset_;
  for (const SegmentInfo& segment : segments_) s.size_bytes += segment.size;
  s.segments = segments_.size();
  s.bytes_truncated_at_open = truncated_at_open_;
  s.clean_open = clean_open_;
  return s;
}

Offset Log::high_watermark() const { return high_watermark_; }
Offset Log::log_start() const { return log_start_; }
Offset Log::next_offset() const { return next_offset_; }
const std::filesystem::path& Log::dir() const { return dir_; }

}  // namespace junction::storage
