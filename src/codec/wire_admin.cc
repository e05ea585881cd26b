// The administrative frames of docs/formats/wire.md (0x40-0x5F).

#include <string>
#include <vector>

#include "codec/wire.h"
#include "codec/wire_internal.h"

namespace junction::codec {

using internal::Finish;
using internal::GetGroupInfo;
using internal::GetTopicOptions;
using internal::PutGroupInfo;
using internal::PutTopicOptions;
using internal::ToU32;

namespace {

// A count of items that take at least `min_bytes` each: never more than the
// payload has room for (checked before anything is reserved).
std::size_t Count(PayloadReader& r, const char* field, std::size_t min_bytes) {
  return static_cast<std::size_t>(r.VarintAtMost(field, r.remaining() / min_bytes));
}

}  // namespace

void EncodeTopicOnly(FrameWriter& w, FrameType type, std::uint32_t correlation,
                     std::string_view topic) {
  w.Begin(type, correlation);
  w.Str(topic);
  w.End();
}

Result<std::string_view> DecodeTopicOnly(std::span<const std::byte> payload,
                                         std::string_view frame) {
  PayloadReader r(payload);
  std::string_view topic = r.Str("topic");
  return Finish(r, frame, topic);
}

void EncodeTopics(FrameWriter& w, std::uint32_t correlation, std::span<const TopicInfo> topics) {
  w.Begin(FrameType::kTopics, correlation);
  w.Varint(topics.size());
  for (const TopicInfo& t : topics) {
    w.Str(t.name);
    PutTopicOptions(w, t.options);
    w.Varint(t.partitions.size());
    for (const PartitionInfo& p : t.partitions) {
      w.U64(p.log_start.value());
      w.U64(p.next_offset.value());
      w.Varint(p.bytes);
    }
    w.Varint(t.groups.size());
    for (const std::string& g : t.groups) w.Str(g);
    w.Varint(t.subscribers);
  }
  w.End();
}

Result<std::vector<TopicInfo>> DecodeTopics(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  // The smallest topic is 7 bytes: an empty name, partitions, has,
  // dedupe_window, no partitions, no groups, subscribers (one byte each).
  std::vector<TopicInfo> topics(Count(r, "topics", 7));
  for (TopicInfo& t : topics) {
    t.name = std::string(r.Str("name"));
    t.options = GetTopicOptions(r);
    t.partitions.resize(Count(r, "partitions", 17));
    for (std::size_t p = 0; p < t.partitions.size(); ++p) {
      PartitionInfo& info = t.partitions[p];
      info.partition = PartitionId(static_cast<std::uint32_t>(p));
      info.log_start = Offset(r.U64("log_start"));
      info.next_offset = Offset(r.U64("next_offset"));
      info.bytes = r.Varint("bytes");
      if (info.next_offset < info.log_start) r.Fail("next_offset: below log_start");
    }
    t.groups.resize(Count(r, "groups", 1));
    for (std::string& g : t.groups) g = std::string(r.Str("group"));
    t.subscribers = ToU32(r.VarintAtMost("subscribers", 0xFFFFFFFF));
    if (!r.ok()) break;
  }
  return Finish(r, "TOPICS", std::move(topics));
}

void EncodeGroups(FrameWriter& w, std::uint32_t correlation, std::span<const GroupInfo> groups) {
  w.Begin(FrameType::kGroups, correlation);
  w.Varint(groups.size());
  for (const GroupInfo& g : groups) PutGroupInfo(w, g);
  w.End();
}

Result<std::vector<GroupInfo>> DecodeGroups(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  std::vector<GroupInfo> groups;
  std::size_t n = Count(r, "groups", 8);
  groups.reserve(n);
  for (std::size_t i = 0; i < n && r.ok(); ++i) groups.push_back(GetGroupInfo(r));
  return Finish(r, "GROUPS", std::move(groups));
}

void EncodeReadTopic(FrameWriter& w, std::uint32_t correlation, const ReadTopicFrame& read) {
  w.Begin(FrameType::kReadTopic, correlation);
  w.Str(read.topic);
  w.Varint(read.partition.value());
  w.U64(read.from.value());
  w.Varint(read.max_messages);
  w.End();
}

Result<ReadTopicFrame> DecodeReadTopic(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  ReadTopicFrame f;
  f.topic = r.Str("topic");
  f.partition = PartitionId(ToU32(r.VarintAtMost("partition", 0xFFFFFFFF)));
  f.from = Offset(r.U64("from"));
  f.max_messages = r.Varint("max_messages");
  return Finish(r, "READ_TOPIC", f);
}

void BeginRecords(FrameWriter& w, std::uint32_t correlation, PartitionId partition,
                  std::size_t count) {
  w.Begin(FrameType::kRecords, correlation);
  w.Varint(partition.value());
  w.Varint(count);
}

Result<RecordsFrame> DecodeRecords(std::span<const std::byte> payload,
                                   std::vector<Offset>& offsets) {
  PayloadReader r(payload);
  offsets.clear();
  RecordsFrame f;
  f.partition = PartitionId(ToU32(r.VarintAtMost("partition", 0xFFFFFFFF)));
  std::size_t n = Count(r, "count", 8);
  offsets.reserve(n);
  for (std::size_t i = 0; i < n && r.ok(); ++i) offsets.emplace_back(r.U64("offset"));
  if (n > 0) f.batch = r.Batch("batch");
  return Finish(r, "RECORDS", f);
}

}  // namespace junction::codec
