#include "broker/topic.h"

#include <algorithm>
#include <iterator>

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

}  // namespace junction::broker
