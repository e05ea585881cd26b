#pragma once

// What the broker keeps in its StateStore (docs/formats/state.md, "Broker
// records"): one record per topic ("topic/<name>": its options) and one per
// durable group ("group/<topic>/<group>": its settings and acked offsets).
// Pure functions; DataLoss on malformed input.

#include <string>
#include <string_view>
#include <vector>

#include "broker/ack_set.h"
#include "broker/group.h"
#include "junction/bus.h"

namespace junction::broker {

inline constexpr std::string_view kTopicKeyPrefix = "topic/";
inline constexpr std::string_view kGroupKeyPrefix = "group/";

std::string TopicKey(std::string_view topic);
std::string GroupKey(std::string_view topic, std::string_view group);

std::string EncodeTopicOptions(const TopicOptions& options);
Result<TopicOptions> DecodeTopicOptions(std::string_view bytes);

struct GroupRecord {
  GroupConfig config;
  std::vector<AckSet> acked;  // one per partition
};
std::string EncodeGroupRecord(const GroupConfig& config, const std::vector<AckSet>& acked);
Result<GroupRecord> DecodeGroupRecord(std::string_view bytes);

}  // namespace junction::broker
