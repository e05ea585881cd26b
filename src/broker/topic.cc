#include "broker/topic.h"

#include <algorithm>
#include <iterator>

#include <xxhash.h>

namespace junction::broker {

Status ValidateName(std::string_view kind, std::string_view name) {
  constexpr std::size_t kMaxName = 249;
  if (name.empty()) return InvalidArgumentError(std::string(kind) + " name is empty");
  if (name.size() > kMaxName) {
    return InvalidArgumentError(std::string(kind) + " name is longer than 249 characters");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return InvalidArgumentError(std::string(kind) + " name '" + std::string(name) +
                                  "' may use only letters, digits, '.', '_' and '-'");
    }
  }
  if (name.starts_with("__")) {
    return InvalidArgumentError(std::string(kind) + " name '" + std::string(name) +
                                "' starts with '__', which is reserved for Junction");
  }
  return OkStatus();
}

void TailCache::Append(Offset base, std::vector<std::shared_ptr<const StoredMessage>> messages,
                       std::shared_ptr<const StoredBatch> batch) {
  if (messages.empty()) return;
  if (messages_.empty() || base != end()) {
    Clear();
    begin_ = base;
  }
  for (auto& message : messages) {
    std::size_t size = message->size();
    messages_.push_back(std::move(message));
    sizes_.push_back(size);
    bytes_ += size;
  }
  if (batch != nullptr && batch->base_offset == base && batch->records == messages.size()) {
    bytes_ += batch->bytes.size();
    batches_.push_back(std::move(batch));
  }
  while (messages_.size() > kMaxMessages || (bytes_ > kMaxBytes && messages_.size() > 1)) {
    PopFront();
  }
}

const std::shared_ptr<const StoredMessage>* TailCache::Find(Offset offset) const {
  if (offset < begin_ || offset >= end()) return nullptr;
  return &messages_[offset.value() - begin_.value()];
}

std::shared_ptr<const StoredBatch> TailCache::BatchAt(Offset offset) const {
  // The last batch starting at or before `offset`.
  auto it = std::upper_bound(
      batches_.begin(), batches_.end(), offset,
      [](Offset o, const std::shared_ptr<const StoredBatch>& b) { return o < b->base_offset; });
  if (it == batches_.begin()) return nullptr;
  const std::shared_ptr<const StoredBatch>& b = *std::prev(it);
  if (offset.value() - b->base_offset.value() >= b->records) return nullptr;
  return b;
}

void TailCache::TrimBefore(Offset offset) {
  while (!messages_.empty() && begin_ < offset) PopFront();
  if (messages_.empty() && begin_ < offset) begin_ = offset;
}

void TailCache::Clear() {
  messages_.clear();
  sizes_.clear();
  batches_.clear();
  bytes_ = 0;
}

void TailCache::PopFront() {
  bytes_ -= sizes_.front();
  sizes_.pop_front();
  messages_.pop_front();
  if (!batches_.empty() && batches_.front()->base_offset <= begin_) {
    bytes_ -= batches_.front()->bytes.size();
    batches_.pop_front();
  }
  begin_ = Offset(begin_.value() + 1);
}

std::uint64_t DedupeWindow::Hash(std::string_view id) { return XXH3_64bits(id.data(), id.size()); }

void DedupeWindow::Expire(std::int64_t now_ms) {
  std::int64_t cutoff =
      now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(window_).count();
  while (!order_.empty() && (order_.front().first < cutoff || order_.size() > max_ids_)) {
    bool early = order_.front().first >= cutoff;
    auto it = ids_.find(order_.front().second);
    if (it != ids_.end() && it->second.stored_ms == order_.front().first) {
      ids_.erase(it);
      if (early) ++evicted_;
    }
    order_.pop_front();
  }
}

const DedupeWindow::Hit* DedupeWindow::Find(std::uint64_t hash) const {
  auto it = ids_.find(hash);
  return it == ids_.end() ? nullptr : &it->second.hit;
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

void DedupeWindow::Add(std::uint64_t hash, Hit hit, std::int64_t stored_ms) {
  if (!enabled()) return;
  ids_[hash] = Stored{hit, stored_ms};
  // Kept sorted by time even when ids arrive out of order (rebuild at open).
  if (order_.empty() || order_.back().first <= stored_ms) {
    order_.emplace_back(stored_ms, hash);
  } else {
    auto at = std::upper_bound(order_.begin(), order_.end(), stored_ms,
                               [](std::int64_t t, const auto& e) { return t < e.first; });
    order_.emplace(at, stored_ms, hash);
  }
}

}  // namespace junction::broker
