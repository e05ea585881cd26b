#pragma once

// record_batch.cc's two readers of one record, here so that a fuzzer can
// hold one against the other. Not part of the codec's interface.

#include <cstddef>
#include <span>
#include <vector>

#include "codec/record_batch.h"
#include "junction/result.h"

namespace junction::codec::internal {

// The record at `pos` of `body` (a batch's records, after its header):
// every check, and an error naming the field that failed. Advances `pos`;
// appends the record's headers to `headers` (the view's span is left empty
// for the caller to point at them once they stop moving).
Result<RecordView> DecodeRecordChecked(std::span<const std::byte> body, std::size_t& pos,
                                       const BatchHeader& header,
                                       std::vector<RecordHeaderView>& headers);

// The same record read on raw pointers, without building an error: true,
// with `pos`, `headers` and `out` as DecodeRecordChecked leaves them, only
// for a record DecodeRecordChecked accepts; false (nothing changed) for a
// record it refuses, and possibly for some it accepts, which the caller
// then reads with DecodeRecordChecked.
bool DecodeRecordFast(std::span<const std::byte> body, std::size_t& pos, const BatchHeader& header,
                      std::vector<RecordHeaderView>& headers, RecordView& out);

}  // namespace junction::codec::internal
