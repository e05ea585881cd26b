#pragma once

// DedupeWindow: the message ids a topic stored lately, for dropping a
// publish whose id it already holds. Thread: the broker's shard only.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/smart_ptr/local_shared_ptr.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "junction/clock.h"
#include "junction/ids.h"

namespace junction::broker {

// Message ids stored within the window, with where they went, kept as 64-bit
// hashes: a hit is only a candidate, which the broker confirms by reading
// the stored message's id. At most `max_ids` are kept; past that the oldest
// leave the window early (counted in `evicted`). A publish in flight holds
// its ids as pending, so a concurrent duplicate waits for it.
//
// Layout (about 64 bytes an id at the 1M cap), built so that storing an id
// costs one bucket's cache misses, which a caller can start early for a
// whole batch (Prefetch), and letting it go costs none:
//  * a ring of entries in the order they were added (hash, where, when),
//    each with a sequence number; ids leave from its front, by time or by
//    count, without touching the table;
//  * a table of buckets of 16 slots (two cache lines), a slot holding a tag
//    (the hash's high half) and an entry's sequence number: a slot whose
//    sequence number left the ring is free again (and every eighth add
//    clears one bucket's such slots, so that a 32-bit sequence number never
//    comes round to a live id). A lookup reads one bucket,
//    plus the ring entry of a slot whose tag matches (a duplicate, almost
//    always). The table doubles while it holds more than 4 ids a bucket,
//    up to max_ids / 4 buckets; at that size a bucket whose 16 slots are all
//    taken (about once in a million ids) lets its oldest id go early.
class DedupeWindow {
 public:
  struct Hit {
    PartitionId partition;
    Offset offset;
  };
  struct Pending;
  // Shard-only, so counted without atomics: a lock-prefixed count per id
  // is a full fence, which made each id's window insert (a cache miss on a
  // large window) wait for the one before (8% of junctiond's CPU on
  // pipelined publishes, perf).
  using PendingPtr = boost::local_shared_ptr<Pending>;
  struct Pending {
    // The id being stored: a view of the publishing call's message, which
    // outlives the entry (Broker::Store removes it before it returns).
    std::string_view id;
    std::optional<Hit> result;  // unset while in flight, or when it failed
    bool done = false;
    // Created by the first duplicate that waits; cancelled when done.
    std::unique_ptr<boost::asio::steady_timer> waiters;
    // The next pending id with the same hash (almost always none).
    PendingPtr next_same_hash;
  };

  DedupeWindow(Duration window, std::size_t max_ids);

  static std::uint64_t Hash(std::string_view id);

  // Drops ids stored before now - window, and the oldest past max_ids.
  void Expire(std::int64_t now_ms);
  // Starts loading what Find and Add of `hash` will read: called for a
  // batch's ids before looking any of them up, the cache misses overlap.
  void Prefetch(std::uint64_t hash) const;
  std::optional<Hit> Find(std::uint64_t hash) const;
  void Forget(std::uint64_t hash);
  // Pending ids are kept by hash(id) (the caller has it already), the ids
  // compared on a hit.
  PendingPtr FindPending(std::uint64_t hash, std::string_view id) const;
  // Under `hash`, pending->id's (a second publish of an id waits
  // for the first, so an id is pending once at most).
  void AddPending(std::uint64_t hash, PendingPtr pending);
  void RemovePending(std::uint64_t hash, const Pending* pending);
  // Replaces what the window held under `hash`. Ids are kept in the order
  // added; one added with an older time than the newest's is kept as if it
  // had the newest's (it leaves a little after its time, never before).
  void Add(std::uint64_t hash, Hit hit, std::int64_t stored_ms);
  // Ids held.
  std::size_t size() const { return live_; }
  std::uint64_t evicted() const { return evicted_; }
  Duration window() const { return window_; }
  bool enabled() const { return window_ > Duration::zero() && max_ids_ > 0; }

 private:
  static constexpr std::size_t kSlots = 16;        // per bucket
  static constexpr std::size_t kIdsPerBucket = 4;  // load at which the table doubles
  struct Entry {                                   // 32 bytes
    std::uint64_t hash = 0;
    std::int64_t stored_ms = 0;
    std::uint64_t offset = 0;
    std::uint32_t partition = 0;
    bool gone = false;  // forgotten, replaced or evicted: no slot points here
  };
  // A slot: tag << 32 | the low 32 bits of an entry's sequence number; 0 is
  // empty (a tag always has its low bit set).
  struct alignas(64) Bucket {
    std::array<std::uint64_t, kSlots> slots{};
  };
  static std::uint32_t Tag(std::uint64_t hash) {
    return static_cast<std::uint32_t>(hash >> 32) | 1u;
  }
  // Whether a slot's sequence number is in the ring (an empty slot's 0 may
  // be: callers check the tag first).
  bool InRing(std::uint64_t slot) const {
    return static_cast<std::uint32_t>(static_cast<std::uint32_t>(slot) -
                                      static_cast<std::uint32_t>(head_)) < count_;
  }
  std::uint64_t SequenceOf(std::uint64_t slot) const {
    return head_ + static_cast<std::uint32_t>(static_cast<std::uint32_t>(slot) -
                                              static_cast<std::uint32_t>(head_));
  }
  Entry& At(std::uint64_t sequence) { return ring_[sequence & (ring_.size() - 1)]; }
  const Entry& At(std::uint64_t sequence) const { return ring_[sequence & (ring_.size() - 1)]; }
  Bucket& BucketOf(std::uint64_t hash) { return buckets_[hash & (buckets_.size() - 1)]; }
  // The slot that holds `hash`, or null.
  const std::uint64_t* FindSlot(std::uint64_t hash) const;
  std::uint64_t* FindSlot(std::uint64_t hash);
  // Puts the ring's entry `sequence` in the table, in place of the slot of
  // an entry with its hash if there is one (which is then gone); true
  // unless its bucket was full and the table may still grow (the caller
  // grows it instead).
  bool Place(std::uint64_t sequence, bool may_grow);
  void Rebuild(std::size_t buckets);
  // Clears the slots of one bucket whose ids left the ring (the next one
  // each call; called every kSweepEvery adds).
  void Sweep();
  std::int64_t WindowMs() const;
  void PopFront(std::int64_t cutoff);
  void Resize(std::size_t ring_size);

  Duration window_;
  std::size_t max_ids_;
  std::size_t max_buckets_;
  std::uint64_t evicted_ = 0;
  // A power of two long; [head_, head_ + count_) by sequence.
  std::vector<Entry> ring_;
  std::uint64_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t live_ = 0;  // entries in the ring not gone
  std::int64_t newest_ms_ = 0;
  std::vector<Bucket> buckets_;  // a power of two of them, or none yet
  std::size_t sweep_ = 0;        // the bucket Sweep clears next
  // The keys are XXH3 hashes already: used as they are.
  struct HashIsKey {
    using is_avalanching = void;
    std::size_t operator()(std::uint64_t hash) const noexcept { return hash; }
  };
  // By hash; ids with the same hash chained through next_same_hash.
  boost::unordered_flat_map<std::uint64_t, PendingPtr, HashIsKey> pending_;
};

}  // namespace junction::broker
