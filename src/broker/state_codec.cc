#include "broker/state_codec.h"

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>

#include "codec/byte_order.h"

namespace junction::broker {
namespace {

constexpr std::uint64_t kFormatVersion = 1;
constexpr std::uint64_t kMaxPartitions = 1024;
constexpr std::uint64_t kMaxBackoffSteps = 64;

std::int64_t Millis(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

void PutString(std::string& out, std::string_view s) {
  codec::PutVarint(out, s.size());
  out.append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  Result<std::uint64_t> Varint(std::string_view what) {
    auto span = std::as_bytes(std::span(bytes_.data(), bytes_.size()));
    auto v = codec::GetVarint(span, pos_);
    if (!v) return DataLossError("state record: bad or truncated " + std::string(what));
    return *v;
  }
  Result<std::string> String(std::string_view what) {
    JUNCTION_ASSIGN_OR_RETURN(std::uint64_t n, Varint(what));
    if (n > bytes_.size() - pos_) {
      return DataLossError("state record: truncated " + std::string(what));
    }
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::string_view rest() const { return bytes_.substr(pos_); }
  void Skip(std::size_t n) { pos_ += n; }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

Status CheckVersion(Reader& in) {
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t version, in.Varint("version"));
  if (version != kFormatVersion) {
    return DataLossError("state record: unknown format version " + std::to_string(version));
  }
  return OkStatus();
}

// Optional values are written as 0 (absent) or value + 1.
void PutOptional(std::string& out, std::optional<std::uint64_t> v) {
  codec::PutVarint(out, v ? *v + 1 : 0);
}

}  // namespace

std::string TopicKey(std::string_view topic) {
  return std::string(kTopicKeyPrefix) + std::string(topic);
}

std::string GroupKey(std::string_view topic, std::string_view group) {
  return std::string(kGroupKeyPrefix) + std::string(topic) + "/" + std::string(group);
}

std::string EncodeTopicOptions(const TopicOptions& options) {
  std::string out;
  codec::PutVarint(out, kFormatVersion);
  codec::PutVarint(out, options.partitions);
  PutOptional(out, options.retention_bytes);
  PutOptional(out, options.retention_age
                       ? std::optional<std::uint64_t>(Millis(*options.retention_age))
                       : std::nullopt);
  codec::PutVarint(out, options.retention_drops_unacked ? 1 : 0);
  codec::PutVarint(out, static_cast<std::uint64_t>(Millis(options.dedupe_window)));
  return out;
}

Result<TopicOptions> DecodeTopicOptions(std::string_view bytes) {
  Reader in(bytes);
  JUNCTION_RETURN_IF_ERROR(CheckVersion(in));
  TopicOptions options;
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t partitions, in.Varint("partitions"));
  if (partitions == 0 || partitions > kMaxPartitions) {
    return DataLossError("state record: partitions out of range");
  }
  options.partitions = static_cast<std::uint32_t>(partitions);
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t bytes_limit, in.Varint("retention_bytes"));
  if (bytes_limit != 0) options.retention_bytes = bytes_limit - 1;
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t age, in.Varint("retention_age"));
  if (age != 0) options.retention_age = std::chrono::milliseconds(age - 1);
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t drops, in.Varint("retention_drops_unacked"));
  options.retention_drops_unacked = drops != 0;
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t window, in.Varint("dedupe_window"));
  options.dedupe_window = std::chrono::milliseconds(window);
  if (!in.done()) return DataLossError("state record: trailing bytes after topic options");
  return options;
}

std::string EncodeGroupRecord(const GroupConfig& config, const std::vector<AckSet>& acked) {
  std::string out;
  codec::PutVarint(out, kFormatVersion);
  codec::PutVarint(out, config.ordered ? 1 : 0);
  codec::PutVarint(out, static_cast<std::uint64_t>(Millis(config.ack_deadline)));
  codec::PutVarint(out, config.max_deliveries);
  codec::PutVarint(out, config.backoff.size());
  for (Duration d : config.backoff) codec::PutVarint(out, static_cast<std::uint64_t>(Millis(d)));
  PutString(out, config.dead_letter_topic);
  codec::PutVarint(out, acked.size());
  for (const AckSet& a : acked) a.EncodeTo(out);
  return out;
}

Result<GroupRecord> DecodeGroupRecord(std::string_view bytes) {
  Reader in(bytes);
  JUNCTION_RETURN_IF_ERROR(CheckVersion(in));
  GroupRecord record;
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t ordered, in.Varint("ordered"));
  record.config.ordered = ordered != 0;
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t deadline, in.Varint("ack_deadline"));
  record.config.ack_deadline = std::chrono::milliseconds(deadline);
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t max_deliveries, in.Varint("max_deliveries"));
  if (max_deliveries == 0 || max_deliveries > UINT32_MAX) {
    return DataLossError("state record: max_deliveries out of range");
  }
  record.config.max_deliveries = static_cast<std::uint32_t>(max_deliveries);
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t steps, in.Varint("backoff"));
  if (steps > kMaxBackoffSteps) return DataLossError("state record: too many backoff steps");
  for (std::uint64_t i = 0; i < steps; ++i) {
    JUNCTION_ASSIGN_OR_RETURN(std::uint64_t ms, in.Varint("backoff step"));
    record.config.backoff.push_back(std::chrono::milliseconds(ms));
  }
  JUNCTION_ASSIGN_OR_RETURN(record.config.dead_letter_topic, in.String("dead_letter_topic"));
  JUNCTION_ASSIGN_OR_RETURN(std::uint64_t partitions, in.Varint("partition count"));
  if (partitions > kMaxPartitions) return DataLossError("state record: partitions out of range");
  std::string_view rest = in.rest();
  for (std::uint64_t i = 0; i < partitions; ++i) {
    JUNCTION_ASSIGN_OR_RETURN(AckSet acked, AckSet::Decode(rest));
    record.acked.push_back(std::move(acked));
  }
  if (!rest.empty()) return DataLossError("state record: trailing bytes after group state");
  return record;
}

}  // namespace junction::broker
