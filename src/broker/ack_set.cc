#include "broker/ack_set.h"

#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "codec/byte_order.h"

namespace junction::broker {

AckSet::AckSet(Offset floor) : floor_(floor) {}

bool AckSet::Contains(Offset o) const {
  if (o < floor_) return true;
  auto next = ranges_.upper_bound(o);
  return next != ranges_.begin() && std::prev(next)->second > o;
}

bool AckSet::Add(Offset o) {
  JUNCTION_CHECK(o < Offset::Max()) << "AckSet::Add(" << o << "): offset out of range";
  if (o < floor_) return false;
  auto next = ranges_.upper_bound(o);
  if (next != ranges_.begin() && std::prev(next)->second > o) return false;

  ++acked_above_floor_;
  Offset end = o + 1;
  if (next != ranges_.end() && next->first == end) {
    end = next->second;
    next = ranges_.erase(next);
  }
  if (o == floor_) {
    // No range starts at or below the floor, so nothing lies before `o`.
    acked_above_floor_ -= end - floor_;
    floor_ = end;
    return true;
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->second == o) {
      prev->second = end;
      return true;
    }
  }
  ranges_.emplace_hint(next, o, end);
  return true;
}

void AckSet::Reset(Offset floor) {
  floor_ = floor;
  ranges_.clear();
  acked_above_floor_ = 0;
}

void AckSet::AdvanceFloor(Offset floor) {
  if (floor <= floor_) return;
  floor_ = floor;
  while (!ranges_.empty() && ranges_.begin()->first <= floor_) {
    auto [begin, end] = *ranges_.begin();
    acked_above_floor_ -= end - begin;
    if (end > floor_) floor_ = end;
    ranges_.erase(ranges_.begin());
  }
}

Offset AckSet::NextUnacked(Offset from) const {
  if (from < floor_) return floor_;
  auto next = ranges_.upper_bound(from);
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    // Ranges never touch, so the end of the one holding `from` is unacked.
    if (prev->second > from) return prev->second;
  }
  return from;
}

void AckSet::EncodeTo(std::string& out) const {
  codec::PutVarint(out, floor_.value());
  codec::PutVarint(out, ranges_.size());
  Offset previous_end = floor_;
  for (const auto& [begin, end] : ranges_) {
    codec::PutVarint(out, begin - previous_end);
    codec::PutVarint(out, end - begin);
    previous_end = end;
  }
}

Result<AckSet> AckSet::Decode(std::string_view& in) {
  auto bytes = std::as_bytes(std::span(in.data(), in.size()));
  std::size_t pos = 0;
  auto read = [&](const char* field) -> Result<std::uint64_t> {
    std::optional<std::uint64_t> v = codec::GetVarint(bytes, pos);
    if (!v) return DataLossError(std::string("ack set: ") + field + ": truncated or bad varint");
    return *v;
  };
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t floor, read("floor"));
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t count, read("range count"));
  AckSet set{Offset(floor)};
  std::uint64_t previous_end = floor;
  const std::uint64_t max_end = Offset::Max().value();
  for (std::uint64_t i = 0; i < count; ++i) {
    // Every range takes at least two bytes, so a huge count fails here on
    // truncation after reading what is there, without allocating for it.
    JUNCTION_ASSIGN_OR_RETURN(std::uint64_t gap, read("range gap"));
    JUNCTION_ASSIGN_OR_RETURN(std::uint64_t length, read("range length"));
    std::string where = "ack set: range " + std::to_string(i);
    if (gap == 0) return DataLossError(where + ": touches or overlaps the one before");
    if (length == 0) return DataLossError(where + ": empty");
    if (gap > max_end - previous_end || length > max_end - (previous_end + gap)) {
      return DataLossError(where + ": offset overflow");
    }
    const std::uint64_t begin = previous_end + gap;
    const std::uint64_t end = begin + length;
    set.ranges_.emplace_hint(set.ranges_.end(), Offset(begin), Offset(end));
    set.acked_above_floor_ += length;
    previous_end = end;
  }
  in.remove_prefix(pos);
  return set;
}

}  // namespace junction::broker
