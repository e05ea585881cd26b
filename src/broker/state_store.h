#pragma once

// StateStore: the broker's internal compacted log (docs/formats/state.md, "Compacted
// state log"). A durable map from key to value (group state: ack floors, ...) kept as
// records of a storage::Log: the latest record of a key wins, a record without a value
// deletes the key. When the log has grown well past the live data, every live entry is
// written into a fresh log generation and the store switches to it atomically through
// the file CURRENT, so a crash at any point leaves the old or the new generation whole.
//
// Threads: a StateStore belongs to one shard, as its Log does. Put, Compact, Close and
// the accessors are called on the shard only, and complete there. Blocking work
// (opening logs, writing CURRENT, removing old generations) runs on the blocking
// executor.
//
// Failure: a failed write of the log makes it read-only, so later Puts fail (the Log's
// rule). A failed compaction before CURRENT is replaced leaves the store on the old
// generation, working; a failure while replacing CURRENT (or reopening the new
// generation) makes the store read-only, because which generation survives a crash is
// then unknown: reopening the store recovers whichever one CURRENT durably names.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/env.h"
#include "junction/result.h"
#include "junction/status.h"
#include "storage/log.h"
#include "storage/options.h"

namespace junction::broker {

struct StateStoreOptions {
  storage::FsyncPolicy fsync{};
  // A Put compacts afterwards when the log holds more than
  // max(compact_min_bytes, compact_live_ratio x live_bytes()) bytes, and more than twice
  // its size right after the last compaction (so that entries whose record overhead
  // exceeds their own bytes cannot make every Put compact).
  std::uint64_t compact_min_bytes = 1u << 20;
  std::uint64_t compact_live_ratio = 4;
};

class StateStore {
 public:
  using Update = std::pair<std::string, std::optional<std::string>>;  // nullopt: delete
  using Entries = std::map<std::string, std::string, std::less<>>;

  // Opens the store under `dir`, creating it if missing: takes an exclusive lock on
  // dir/LOCK for the store's lifetime (a second Open fails with Unavailable), reads
  // CURRENT, removes stale generations and recovers the map by reading the whole
  // current log. DataLoss when CURRENT is malformed or names a missing generation, or
  // when the log is corrupt. Blocking, like storage::Log::Open: call it on the blocking
  // executor or at start-up. `ctx` (env, clock, shard and blocking executors) is used
  // for every Log of the store and must satisfy storage::Log::Context's lifetimes.
  static Result<std::unique_ptr<StateStore>> Open(storage::Log::Context ctx,
                                                  std::filesystem::path dir,
                                                  storage::FsyncPolicy fsync);
  static Result<std::unique_ptr<StateStore>> Open(storage::Log::Context ctx,
                                                  std::filesystem::path dir,
                                                  StateStoreOptions options);

  // Destroying a store without Close() loses no acknowledged Put; Puts still waiting
  // are dropped without completing. REQUIRES: on the shard; no Compact() running and no
  // Put in its compaction (await them, or Close() first).
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // The latest value of every live key.
  const Entries& entries() const { return entries_; }

  // Applies `updates` in order (a later update of the same key wins) as ONE record
  // batch: completes once the batch is durable per the fsync policy, with entries()
  // already updated. Puts are written and applied in the order they are awaited, also
  // across a compaction (Puts that arrive while one runs wait for it). A Put that finds
  // the log too large compacts before it completes; its own updates were durable before,
  // so it reports OK even when the compaction fails (which is logged). An empty Put is a
  // no-op. Errors: ResourceExhausted (batch above the log's max_batch_bytes),
  // FailedPrecondition (closing, closed or read-only), the Log's write or fsync error.
  boost::asio::awaitable<Status> Put(std::vector<Update> updates);

  // Writes every live entry into a new generation and switches to it now, waiting for
  // the Puts in flight first. FailedPrecondition when closing or read-only.
  boost::asio::awaitable<Status> Compact();

  // Waits for the Puts already called and a compaction in progress, then closes the
  // log. Later Puts fail with FailedPrecondition.
  boost::asio::awaitable<Status> Close();

  std::uint64_t log_bytes() const;                          // bytes of the current generation's log
  std::uint64_t live_bytes() const { return live_bytes_; }  // sum of key + value sizes
  std::uint64_t generation() const { return generation_; }  // names dir/gen-<n>
  const std::filesystem::path& dir() const { return dir_; }

 private:
  using Waiter = boost::asio::any_completion_handler<void()>;

  StateStore(storage::Log::Context ctx, std::filesystem::path dir, StateStoreOptions options,
             std::unique_ptr<FileLock> lock, std::unique_ptr<storage::Log> log,
             std::uint64_t generation, Entries entries);

  Status Writable() const;  // FailedPrecondition when Puts are refused
  void Apply(std::vector<Update>&& updates);
  bool NeedsCompaction() const;
  void AdvanceTurn();
  void WakeTurn();
  void NotifyChange();
  boost::asio::awaitable<void> WaitForTurn(std::uint64_t ticket);
  boost::asio::awaitable<void> WaitForChange();
  // Waits for the Puts in flight, then writes the new generation and switches to it.
  // REQUIRES: !compacting_.
  boost::asio::awaitable<Status> RunCompaction();
  boost::asio::awaitable<Status> WriteGeneration();

  storage::Log::Context ctx_;
  std::filesystem::path dir_;
  StateStoreOptions options_;
  std::unique_ptr<FileLock> lock_;
  std::unique_ptr<storage::Log> log_;
  std::uint64_t generation_;
  std::uint64_t next_generation_;
  std::uint64_t compacted_bytes_ = 0;  // log size right after the last compaction

  Entries entries_;
  std::uint64_t live_bytes_ = 0;

  // Puts take tickets in call order and append in ticket order: next_turn_ is the ticket
  // allowed to append next (none while compacting_).
  std::uint64_t next_ticket_ = 0;
  std::uint64_t next_turn_ = 0;
  std::uint64_t last_applied_ = 0;  // ticket + 1 of the last Put applied
  std::map<std::uint64_t, Waiter> turn_waiters_;
  std::vector<Waiter> change_waiters_;  // Close and compaction, re-checking conditions
  int in_flight_ = 0;                   // appends issued, not completed
  bool compacting_ = false;
  bool closing_ = false;
  bool closed_ = false;
  Status close_status_;
  Status broken_;  // why the store is read-only (OK: it is not)
};

}  // namespace junction::broker
