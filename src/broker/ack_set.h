#pragma once

// AckSet: the acked offsets of one partition for one group, kept as a floor
// (every offset below it is acked) and the disjoint, non-adjacent ranges of
// acked offsets above it. Acks arrive out of order; the floor advances as soon
// as the gap above it fills. A plain value: not thread-safe, copyable,
// comparable.
//
// Encoding (EncodeTo/Decode), all unsigned LEB128 varints:
//   floor, range_count, then per range in ascending order:
//   gap   = begin - (end of the previous range, or floor for the first), >= 1
//   count = end - begin, >= 1
// so a range is never empty, never touches the floor and never touches or
// overlaps its neighbour; a decoder rejects anything else, so each AckSet has
// exactly one encoding.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "junction/ids.h"
#include "junction/result.h"

namespace junction::broker {

class AckSet {
 public:
  explicit AckSet(Offset floor = Offset{0});

  // Every offset below is acked.
  Offset floor() const { return floor_; }
  // Acked? O(log n).
  bool Contains(Offset o) const;
  // Marks `o` acked: false if it already was. Merges adjacent ranges and
  // advances the floor when the range touches it. O(log n).
  // REQUIRES: o < Offset::Max() (end offsets are exclusive).
  bool Add(Offset o);
  // Forgets everything; every offset below `floor` is acked, none above.
  void Reset(Offset floor);
  // Marks every offset below `floor` acked (no-op if not above floor()); the
  // floor then also absorbs a range it reaches. Amortised O(log n): each
  // range is dropped at most once.
  void AdvanceFloor(Offset floor);
  // Disjoint acked ranges above floor.
  std::size_t range_count() const { return ranges_.size(); }
  // Acked offsets at or above floor. O(1).
  std::uint64_t acked_above_floor() const { return acked_above_floor_; }
  // The first offset >= from that is not acked. O(log n).
  Offset NextUnacked(Offset from) const;

  // Appends the encoding described above.
  void EncodeTo(std::string& out) const;
  // Decodes one AckSet from the front of `in` and removes its bytes from
  // `in`. DataLoss on truncated, malformed (overlong varint, empty,
  // overlapping or touching ranges, overflow) input; `in` is then unchanged.
  static Result<AckSet> Decode(std::string_view& in);

  friend bool operator==(const AckSet&, const AckSet&) = default;

 private:
  Offset floor_;
  std::map<Offset, Offset> ranges_;      // begin -> end (exclusive); floor_ < begin
  std::uint64_t acked_above_floor_ = 0;  // sum of the ranges' lengths
};

}  // namespace junction::broker
