#pragma once

// Field groups several frames share (wire_frames.cc, wire_admin.cc).

#include <cstdint>
#include <string_view>

#include "codec/wire.h"

namespace junction::codec::internal {

// The decoded value, or the payload's first error; fails on bytes left over.
template <typename T>
Result<T> Finish(PayloadReader& r, std::string_view frame, T value) {
  r.End();
  if (!r.ok()) return r.status(frame);
  return value;
}

inline std::uint32_t ToU32(std::uint64_t v) { return static_cast<std::uint32_t>(v); }

// `topic options` of docs/formats/wire.md.
void PutTopicOptions(FrameWriter& w, const TopicOptions& options);
TopicOptions GetTopicOptions(PayloadReader& r);
// `group info` (GROUP_INFO's payload, and each of GROUPS').
void PutGroupInfo(FrameWriter& w, const GroupInfo& info);
GroupInfo GetGroupInfo(PayloadReader& r);

}  // namespace junction::codec::internal
