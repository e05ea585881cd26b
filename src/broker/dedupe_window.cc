#include "broker/dedupe_window.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <utility>

#include <xxhash.h>

namespace junction::broker {
namespace {

constexpr std::size_t kMinRing = 64;
constexpr std::size_t kMinBuckets = 4;
constexpr std::uint64_t kRebuildAhead = 16;  // entries placed ahead of their prefetch
constexpr std::uint64_t kSweepEvery = 8;     // adds per bucket Sweep clears

}  // namespace

DedupeWindow::DedupeWindow(Duration window, std::size_t max_ids)
    : window_(window),
      // Sequence numbers are compared in 32 bits (Sweep keeps that sound).
      max_ids_(std::min<std::size_t>(max_ids, std::size_t{1} << 30)),
      max_buckets_(std::bit_ceil(std::max(kMinBuckets, max_ids_ / kIdsPerBucket))) {}

std::uint64_t DedupeWindow::Hash(std::string_view id) { return XXH3_64bits(id.data(), id.size()); }

const std::uint64_t* DedupeWindow::FindSlot(std::uint64_t hash) const {
  if (buckets_.empty()) return nullptr;
  const std::uint32_t tag = Tag(hash);
  for (const std::uint64_t& slot : buckets_[hash & (buckets_.size() - 1)].slots) {
    if (static_cast<std::uint32_t>(slot >> 32) == tag && InRing(slot) &&
        At(SequenceOf(slot)).hash == hash) {
      return &slot;
    }
  }
  return nullptr;
}

std::uint64_t* DedupeWindow::FindSlot(std::uint64_t hash) {
  return const_cast<std::uint64_t*>(std::as_const(*this).FindSlot(hash));
}

void DedupeWindow::Prefetch(std::uint64_t hash) const {
  if (buckets_.empty()) return;
  const Bucket& bucket = buckets_[hash & (buckets_.size() - 1)];
  static_assert(sizeof(Bucket) == 128);
  __builtin_prefetch(&bucket.slots[0], 1);
  __builtin_prefetch(&bucket.slots[kSlots / 2], 1);
}

std::optional<DedupeWindow::Hit> DedupeWindow::Find(std::uint64_t hash) const {
  const std::uint64_t* slot = FindSlot(hash);
  if (slot == nullptr) return std::nullopt;
  const Entry& entry = At(SequenceOf(*slot));
  return Hit{PartitionId(entry.partition), Offset(entry.offset)};
}

void DedupeWindow::Forget(std::uint64_t hash) {
  std::uint64_t* slot = FindSlot(hash);
  if (slot == nullptr) return;
  At(SequenceOf(*slot)).gone = true;
  *slot = 0;
  --live_;
}

bool DedupeWindow::Place(std::uint64_t sequence, bool may_grow) {
  const std::uint64_t hash = At(sequence).hash;
  const std::uint32_t tag = Tag(hash);
  const std::uint64_t value = std::uint64_t{tag} << 32 | static_cast<std::uint32_t>(sequence);
  Bucket& bucket = BucketOf(hash);
  std::uint64_t* free = nullptr;
  std::uint64_t* oldest = nullptr;
  for (std::uint64_t& slot : bucket.slots) {
    if (slot == 0 || !InRing(slot)) {  // free: empty, or its entry left the ring
      if (free == nullptr) free = &slot;
      continue;
    }
    if (static_cast<std::uint32_t>(slot >> 32) == tag) {
      Entry& same = At(SequenceOf(slot));
      if (same.hash == hash && SequenceOf(slot) != sequence) {  // replaced
        same.gone = true;
        --live_;
        slot = value;
        return true;
      }
    }
    if (oldest == nullptr || SequenceOf(slot) < SequenceOf(*oldest)) oldest = &slot;
  }
  if (free != nullptr) {
    *free = value;
    return true;
  }
  if (may_grow && buckets_.size() < max_buckets_) return false;
  // Sixteen ids in one bucket of a full-size table: the oldest goes early.
  At(SequenceOf(*oldest)).gone = true;
  --live_;
  ++evicted_;
  *oldest = value;
  return true;
}

void DedupeWindow::Rebuild(std::size_t buckets) {
  while (true) {
    buckets_.assign(buckets, Bucket{});
    bool placed = true;
    const std::uint64_t end = head_ + count_;
    for (std::uint64_t s = head_; s < end && placed; ++s) {
      // Each Place is a miss on a large table: start the ones ahead.
      if (s + kRebuildAhead < end) Prefetch(At(s + kRebuildAhead).hash);
      if (!At(s).gone) placed = Place(s, true);
    }
    if (placed) return;
    buckets *= 2;  // a bucket overflowed below the full size
  }
}

void DedupeWindow::Resize(std::size_t ring_size) {
  std::vector<Entry> ring(ring_size);
  for (std::uint64_t s = head_; s < head_ + count_; ++s) ring[s & (ring_size - 1)] = At(s);
  ring_ = std::move(ring);
}

void DedupeWindow::Add(std::uint64_t hash, Hit hit, std::int64_t stored_ms) {
  if (!enabled()) return;
  // Kept in time order, so that the front is always the oldest.
  newest_ms_ = std::max(newest_ms_, stored_ms);
  // At the cap, the oldest goes first (early, unless its time is up), so
  // that the ring never outgrows max_ids.
  while (count_ >= max_ids_) PopFront(newest_ms_ - WindowMs());
  if (count_ == ring_.size()) Resize(std::max(kMinRing, ring_.size() * 2));
  const std::uint64_t sequence = head_ + count_;
  At(sequence) = Entry{.hash = hash,
                       .stored_ms = newest_ms_,
                       .offset = hit.offset.value(),
                       .partition = hit.partition.value(),
                       .gone = false};
  ++count_;
  ++live_;
  if (buckets_.empty()) {
    Rebuild(kMinBuckets);  // places the new entry too
  } else {
    // Doubled past kIdsPerBucket ids a bucket, or when the new id's bucket
    // is full below the full size.
    const bool grow = live_ > kIdsPerBucket * buckets_.size() && buckets_.size() < max_buckets_;
    if (grow || !Place(sequence, true)) Rebuild(buckets_.size() * 2);
  }
  if ((sequence & (kSweepEvery - 1)) == 0) Sweep();
}

void DedupeWindow::Sweep() {
  // A slot is free once its id's sequence number left the ring, compared
  // in 32 bits; left alone for 2^32 more adds it would look taken again.
  // Clearing one bucket every kSweepEvery adds goes round the whole table
  // every buckets_.size() * kSweepEvery adds (at most 2^31), before that.
  sweep_ &= buckets_.size() - 1;
  for (std::uint64_t& slot : buckets_[sweep_].slots) {
    if (slot != 0 && !InRing(slot)) slot = 0;
  }
  sweep_ = (sweep_ + 1) & (buckets_.size() - 1);
  __builtin_prefetch(&buckets_[sweep_], 1);  // the next one, for next time
}

void DedupeWindow::PopFront(std::int64_t cutoff) {
  const Entry& front = At(head_);
  if (!front.gone) {
    --live_;
    if (front.stored_ms >= cutoff) ++evicted_;  // before its time
  }
  // Its slot, if any, is free from now on: its sequence left the ring.
  ++head_;
  --count_;
}

std::int64_t DedupeWindow::WindowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(window_).count();
}

void DedupeWindow::Expire(std::int64_t now_ms) {
  const std::int64_t cutoff = now_ms - WindowMs();
  while (count_ > 0 && (At(head_).stored_ms < cutoff || count_ > max_ids_)) PopFront(cutoff);
  // A window that emptied gives its memory back.
  if (ring_.size() > kMinRing && count_ * 8 < ring_.size()) {
    Resize(std::max(kMinRing, std::bit_ceil(count_ * 2)));
    std::size_t buckets = kMinBuckets;
    while (buckets < max_buckets_ && live_ > kIdsPerBucket * buckets) buckets *= 2;
    if (buckets < buckets_.size()) Rebuild(buckets);
  }
}

DedupeWindow::PendingPtr DedupeWindow::FindPending(std::uint64_t hash, std::string_view id) const {
  auto it = pending_.find(hash);
  if (it == pending_.end()) return nullptr;
  for (const PendingPtr* p = &it->second; *p; p = &(*p)->next_same_hash) {
    if ((*p)->id == id) return *p;
  }
  return nullptr;
}

void DedupeWindow::AddPending(std::uint64_t hash, PendingPtr pending) {
  auto [it, inserted] = pending_.try_emplace(hash, pending);
  if (!inserted) {  // another id with the same hash is pending: chained in front
    pending->next_same_hash = std::move(it->second);
    it->second = std::move(pending);
  }
}

void DedupeWindow::RemovePending(std::uint64_t hash, const Pending* pending) {
  auto it = pending_.find(hash);
  if (it == pending_.end()) return;
  for (PendingPtr* p = &it->second; *p; p = &(*p)->next_same_hash) {
    if (p->get() != pending) continue;
    *p = std::move((*p)->next_same_hash);  // unlinks it
    break;
  }
  if (!it->second) pending_.erase(it);
}

}  // namespace junction::broker
