// The frames of docs/formats/wire.md, one Encode*/Decode* pair each (the
// framing itself is wire.cc).

#include <cstdint>
#include <string>

#include "codec/record_batch.h"
#include "codec/wire.h"
#include "codec/wire_internal.h"

namespace junction::codec {

namespace {

void PutPosition(FrameWriter& w, const StartPosition& p) {
  w.U8(static_cast<std::uint8_t>(p.kind));
  w.Varint(p.offset.value());
  w.Time(p.time);
}

StartPosition GetPosition(PayloadReader& r) {
  StartPosition p;
  std::uint8_t kind = r.U8("start_kind");
  if (kind > static_cast<std::uint8_t>(StartPosition::Kind::kTime)) {
    r.Fail("start_kind: unknown kind " + std::to_string(kind));
  }
  p.kind = static_cast<StartPosition::Kind>(kind);
  p.offset = Offset(r.Varint("start_offset"));
  p.time = r.Time("start_time");
  return p;
}

}  // namespace

namespace internal {

void PutTopicOptions(FrameWriter& w, const TopicOptions& options) {
  w.Varint(options.partitions);
  std::uint8_t has = (options.retention_bytes ? 1 : 0) | (options.retention_age ? 2 : 0) |
                     (options.retention_drops_unacked ? 4 : 0);
  w.U8(has);
  if (options.retention_bytes) w.Varint(*options.retention_bytes);
  if (options.retention_age) w.Dur(*options.retention_age);
  w.Dur(options.dedupe_window);
}

TopicOptions GetTopicOptions(PayloadReader& r) {
  TopicOptions o;
  o.partitions = ToU32(r.VarintAtMost("partitions", 0xFFFFFFFF));
  std::uint8_t has = r.U8("has");
  if (has & ~7u) r.Fail("has: unknown bits");
  if (has & 1) o.retention_bytes = r.Varint("retention_bytes");
  if (has & 2) o.retention_age = r.Dur("retention_age");
  o.retention_drops_unacked = (has & 4) != 0;
  o.dedupe_window = r.Dur("dedupe_window");
  return o;
}

void PutGroupInfo(FrameWriter& w, const GroupInfo& info) {
  w.Str(info.topic);
  w.Str(info.group);
  w.Varint(info.members);
  w.Varint(info.in_flight);
  w.Varint(info.backlog);
  w.Varint(info.dead_lettered);
  w.Varint(info.dropped_by_retention);
  w.Str(info.dead_letter_topic);
}

GroupInfo GetGroupInfo(PayloadReader& r) {
  GroupInfo g;
  g.topic = std::string(r.Str("topic"));
  g.group = std::string(r.Str("group"));
  g.members = ToU32(r.VarintAtMost("members", 0xFFFFFFFF));
  g.in_flight = r.Varint("in_flight");
  g.backlog = r.Varint("backlog");
  g.dead_lettered = r.Varint("dead_lettered");
  g.dropped_by_retention = r.Varint("dropped_by_retention");
  g.dead_letter_topic = std::string(r.Str("dead_letter_topic"));
  return g;
}

}  // namespace internal

using internal::Finish;
using internal::GetGroupInfo;
using internal::GetTopicOptions;
using internal::PutGroupInfo;
using internal::PutTopicOptions;
using internal::ToU32;

void EncodeHello(FrameWriter& w, const Hello& hello) {
  w.Begin(FrameType::kHello, 0);
  w.U16(hello.min_version);
  w.U16(hello.max_version);
  w.U32(hello.max_frame_bytes);
  w.Dur(hello.heartbeat);
  w.U8(hello.auto_create_topics ? 1 : 0);
  PutTopicOptions(w, hello.default_topic);
  w.Str(hello.client);
  w.End();
}

Result<Hello> DecodeHello(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  Hello h;
  h.min_version = r.U16("min_version");
  h.max_version = r.U16("max_version");
  h.max_frame_bytes = r.U32("max_frame_bytes");
  h.heartbeat = r.Dur("heartbeat");
  std::uint8_t flags = r.U8("flags");
  if (flags > 1) r.Fail("flags: unknown bits");
  h.auto_create_topics = (flags & 1) != 0;
  h.default_topic = GetTopicOptions(r);
  h.client = r.Str("client");
  if (r.ok() && h.min_version > h.max_version) r.Fail("min_version is above max_version");
  if (r.ok() && h.max_frame_bytes < kMinMaxFrameBytes) r.Fail("max_frame_bytes is below 64 KiB");
  return Finish(r, "HELLO", h);
}

void EncodeWelcome(FrameWriter& w, std::uint32_t correlation, const Welcome& welcome) {
  w.Begin(FrameType::kWelcome, correlation);
  w.U16(welcome.version);
  w.U32(welcome.max_frame_bytes);
  w.Dur(welcome.heartbeat);
  w.U16(welcome.capabilities);
  w.Str(welcome.server);
  w.End();
}

Result<Welcome> DecodeWelcome(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  Welcome h;
  h.version = r.U16("version");
  h.max_frame_bytes = r.U32("max_frame_bytes");
  h.heartbeat = r.Dur("heartbeat");
  h.capabilities = r.U16("capabilities");
  if (h.capabilities >> 9) r.Fail("capabilities: unknown bits");
  h.server = r.Str("server");
  if (r.ok() && h.max_frame_bytes < kMinMaxFrameBytes) r.Fail("max_frame_bytes is below 64 KiB");
  return Finish(r, "WELCOME", h);
}

std::uint16_t CapabilityBits(const Capabilities& c) {
  bool bits[] = {c.durable, c.groups,       c.ordered_groups, c.delayed_delivery, c.dedupe,
                 c.seek,    c.dead_letters, c.request_reply,  c.ephemeral};
  std::uint16_t out = 0;
  for (std::size_t i = 0; i < std::size(bits); ++i) {
    if (bits[i]) out |= static_cast<std::uint16_t>(1u << i);
  }
  return out;
}

Result<Capabilities> CapabilitiesFromBits(std::uint16_t bits) {
  if (bits >> 9) return InvalidArgumentError("capabilities: unknown bits");
  auto bit = [bits](int i) { return ((bits >> i) & 1) != 0; };
  Capabilities c;
  c.durable = bit(0);
  c.groups = bit(1);
  c.ordered_groups = bit(2);
  c.delayed_delivery = bit(3);
  c.dedupe = bit(4);
  c.seek = bit(5);
  c.dead_letters = bit(6);
  c.request_reply = bit(7);
  c.ephemeral = bit(8);
  return c;
}

void EncodePing(FrameWriter& w, FrameType type, std::uint64_t nonce) {
  w.Begin(type, 0);
  w.U64(nonce);
  w.End();
}

Result<std::uint64_t> DecodePing(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  std::uint64_t nonce = r.U64("nonce");
  return Finish(r, "PING", nonce);
}

void EncodeError(FrameWriter& w, std::uint32_t correlation, std::uint16_t code,
                 std::string_view message) {
  w.Begin(FrameType::kError, correlation);
  w.U16(code);
  w.Str(message);
  w.End();
}

Result<ErrorFrame> DecodeError(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  ErrorFrame e;
  e.code = r.U16("code");
  e.message = r.Str("message");
  if (r.ok() && e.code == 0) r.Fail("code: 0 is not an error");
  return Finish(r, "ERROR", e);
}

Status ErrorFrameStatus(const ErrorFrame& error) {
  if (error.code < kStatusCodeCount) {
    return Status(static_cast<StatusCode>(error.code), std::string(error.message));
  }
  if (error.code < 100) {
    return UnknownError("status code " + std::to_string(error.code) + ": " +
                        std::string(error.message));
  }
  return UnavailableError(
      "junctiond closed the connection: " +
      std::string(ConnectionErrorName(static_cast<ConnectionError>(error.code))) + ": " +
      std::string(error.message));
}

void EncodeGoaway(FrameWriter& w, std::string_view reason) {
  w.Begin(FrameType::kGoaway, 0);
  w.Str(reason);
  w.End();
}

void EncodeOk(FrameWriter& w, std::uint32_t correlation) {
  w.Begin(FrameType::kOk, correlation);
  w.End();
}

Status DecodeEmpty(std::span<const std::byte> payload, std::string_view frame) {
  PayloadReader r(payload);
  r.End();
  return r.status(frame);
}

void EncodeCreateTopic(FrameWriter& w, std::uint32_t correlation, std::string_view topic,
                       const TopicOptions& options) {
  w.Begin(FrameType::kCreateTopic, correlation);
  w.Str(topic);
  PutTopicOptions(w, options);
  w.End();
}

Result<CreateTopicFrame> DecodeCreateTopic(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  CreateTopicFrame f;
  f.topic = r.Str("topic");
  f.options = GetTopicOptions(r);
  return Finish(r, "CREATE_TOPIC", f);
}

void BeginPublish(FrameWriter& w, std::uint32_t correlation, std::string_view topic,
                  const PublishOptions& options) {
  w.Begin(FrameType::kPublish, correlation);
  w.Str(topic);
  std::uint8_t has =
      (options.partition ? 1 : 0) | (options.deliver_at ? 2 : 0) | (options.delay ? 4 : 0);
  w.U8(has);
  if (options.partition) w.Varint(options.partition->value());
  if (options.deliver_at) w.Time(*options.deliver_at);
  if (options.delay) w.Dur(*options.delay);
}

Result<PublishFrame> DecodePublish(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  PublishFrame f;
  f.topic = r.Str("topic");
  std::uint8_t has = r.U8("has");
  if (has & ~7u) r.Fail("has: unknown bits");
  if (has & 1) f.options.partition = PartitionId(ToU32(r.VarintAtMost("partition", 0xFFFFFFFF)));
  if (has & 2) f.options.deliver_at = r.Time("deliver_at");
  if (has & 4) f.options.delay = r.Dur("delay");
  f.batch = r.Batch("batch");
  return Finish(r, "PUBLISH", f);
}

void BeginPublished(FrameWriter& w, std::uint32_t correlation, std::size_t count) {
  w.Begin(FrameType::kPublished, correlation);
  w.Varint(count);
}

void EncodePublishedResult(FrameWriter& w, const PublishResult& result) {
  w.Varint(result.partition.value());
  w.Varint(result.offset.value());
  w.U8(result.duplicate ? 1 : 0);
}

Status DecodePublished(std::span<const std::byte> payload, std::vector<PublishResult>& out) {
  out.clear();
  PayloadReader r(payload);
  // Each result takes at least 3 bytes: a count above remaining/3 is a lie.
  std::uint64_t count = r.VarintAtMost("count", r.remaining() / 3);
  out.reserve(count);
  for (std::uint64_t i = 0; i < count && r.ok(); ++i) {
    PublishResult p;
    p.partition = PartitionId(ToU32(r.VarintAtMost("partition", 0xFFFFFFFF)));
    p.offset = Offset(r.Varint("offset"));
    std::uint8_t dup = r.U8("duplicate");
    if (dup > 1) r.Fail("duplicate: not 0 or 1");
    p.duplicate = dup == 1;
    out.push_back(p);
  }
  r.End();
  return r.status("PUBLISHED");
}

void EncodeSubscribe(FrameWriter& w, std::uint32_t correlation, std::string_view topic,
                     const SubscribeOptions& o) {
  w.Begin(FrameType::kSubscribe, correlation);
  w.Str(topic);
  w.Str(o.group);
  PutPosition(w, o.start);
  w.U8(o.ordered ? 1 : 0);
  w.Dur(o.ack_deadline);
  w.Varint(o.max_deliveries);
  w.Varint(o.backoff.size());
  for (Duration d : o.backoff) w.Dur(d);
  w.Str(o.dead_letter_topic);
  w.Varint(o.max_in_flight);
  w.Varint(o.max_in_flight_bytes);
  w.End();
}

Result<SubscribeFrame> DecodeSubscribe(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  SubscribeFrame f;
  SubscribeOptions& o = f.options;
  f.topic = r.Str("topic");
  o.group = std::string(r.Str("group"));
  o.start = GetPosition(r);
  std::uint8_t ordered = r.U8("ordered");
  if (ordered > 1) r.Fail("ordered: not 0 or 1");
  o.ordered = ordered == 1;
  o.ack_deadline = r.Dur("ack_deadline");
  o.max_deliveries = ToU32(r.VarintAtMost("max_deliveries", 0xFFFFFFFF));
  std::uint64_t steps = r.VarintAtMost("backoff_count", kMaxBackoffSteps);
  o.backoff.clear();
  for (std::uint64_t i = 0; i < steps && r.ok(); ++i) o.backoff.push_back(r.Dur("backoff"));
  o.dead_letter_topic = std::string(r.Str("dead_letter_topic"));
  o.max_in_flight = ToU32(r.VarintAtMost("max_in_flight", 0xFFFFFFFF));
  o.max_in_flight_bytes = r.Varint("max_in_flight_bytes");
  return Finish(r, "SUBSCRIBE", std::move(f));
}

void EncodeSubscribed(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream) {
  w.Begin(FrameType::kSubscribed, correlation);
  w.Varint(stream);
  w.End();
}

Result<std::uint64_t> DecodeSubscribed(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  std::uint64_t stream = r.Varint("stream");
  return Finish(r, "SUBSCRIBED", stream);
}

void EncodeFetch(FrameWriter& w, std::uint32_t correlation, const FetchFrame& fetch) {
  w.Begin(FrameType::kFetch, correlation);
  w.Varint(fetch.stream);
  w.Varint(fetch.max_messages);
  w.U8(fetch.timeout ? 1 : 0);
  if (fetch.timeout) w.Dur(*fetch.timeout);
  w.End();
}

Result<FetchFrame> DecodeFetch(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  FetchFrame f;
  f.stream = r.Varint("stream");
  f.max_messages = r.Varint("max_messages");
  if (r.ok() && f.max_messages == 0) r.Fail("max_messages: zero");
  std::uint8_t has_timeout = r.U8("has_timeout");
  if (has_timeout > 1) r.Fail("has_timeout: not 0 or 1");
  if (has_timeout == 1) f.timeout = r.Dur("timeout");
  return Finish(r, "FETCH", f);
}

void BeginDeliver(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream,
                  std::size_t count) {
  w.Begin(FrameType::kDeliver, correlation);
  w.Varint(stream);
  w.Varint(count);
}

void EncodeDeliveryHeader(FrameWriter& w, const DeliveryHeader& d) {
  w.Varint(d.partition.value());
  w.Varint(d.offset.value());
  w.Varint(d.attempt.value());
  w.Varint(d.delivery_id);
}

void BeginDeliverBatches(FrameWriter& w, std::size_t count) { w.Varint(count); }

void EncodeDeliverBatch(FrameWriter& w, const DeliverBatch& batch) {
  w.Varint(batch.stored ? std::uint64_t{batch.stored->value()} + 1 : 0);
  w.Raw(batch.batch);
}

Result<DeliverFrame> DecodeDeliver(std::span<const std::byte> payload, std::uint16_t version,
                                   std::vector<DeliveryHeader>& headers,
                                   std::vector<DeliverBatch>& batches) {
  headers.clear();
  batches.clear();
  PayloadReader r(payload);
  DeliverFrame f;
  f.stream = r.Varint("stream");
  // A header takes at least 4 bytes, and the batch at least 72.
  std::size_t room = r.remaining() > kBatchHeaderSize ? r.remaining() - kBatchHeaderSize : 0;
  std::uint64_t count = r.VarintAtMost("count", room / 4);
  if (r.ok() && count == 0) r.Fail("count: zero deliveries");
  headers.reserve(count);
  for (std::uint64_t i = 0; i < count && r.ok(); ++i) {
    DeliveryHeader d;
    d.partition = PartitionId(ToU32(r.VarintAtMost("partition", 0xFFFFFFFF)));
    d.offset = Offset(r.Varint("offset"));
    d.attempt = DeliveryCount(ToU32(r.VarintAtMost("attempt", 0xFFFFFFFF)));
    d.delivery_id = r.Varint("delivery_id");
    headers.push_back(d);
  }
  if (version < 2) {
    std::span<const std::byte> batch = r.Batch("batch");
    if (r.ok()) batches.push_back({std::nullopt, batch});
    return Finish(r, "DELIVER", f);
  }
  // A batch takes its source byte and at least a batch header.
  std::uint64_t n = r.VarintAtMost("batches", r.remaining() / (kBatchHeaderSize + 1));
  if (r.ok() && n == 0) r.Fail("batches: none");
  if (r.ok() && n > count) r.Fail("batches: more than deliveries");
  batches.reserve(n);
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
    std::uint64_t source = r.VarintAtMost("source", std::uint64_t{0xFFFFFFFF} + 1);
    std::span<const std::byte> batch = r.Batch("batch");
    if (!r.ok()) break;
    std::optional<PartitionId> stored;
    if (source > 0) stored = PartitionId(static_cast<std::uint32_t>(source - 1));
    batches.push_back({stored, batch});
  }
  return Finish(r, "DELIVER", f);
}

void BeginAck(FrameWriter& w, std::uint32_t correlation, std::size_t count) {
  w.Begin(FrameType::kAck, correlation);
  w.Varint(count);
}

void EncodeAckEntry(FrameWriter& w, const AckEntry& ack) {
  w.U8(static_cast<std::uint8_t>(ack.kind));
  w.Varint(ack.stream);
  w.Varint(ack.delivery_id);
  if (ack.kind == AckKind::kNack) {
    w.U8(ack.delay ? 1 : 0);
    if (ack.delay) w.Dur(*ack.delay);
    w.Str(ack.error);
  }
}

AckReader::AckReader(std::span<const std::byte> payload) : reader_(payload) {
  // An entry takes at least 3 bytes.
  count_ = reader_.VarintAtMost("count", reader_.remaining() / 3);
  if (reader_.ok() && count_ == 0) reader_.Fail("count: zero acks");
}

std::optional<AckEntry> AckReader::Next() {
  if (!reader_.ok()) return std::nullopt;
  if (read_ == count_) {
    reader_.End();
    return std::nullopt;
  }
  ++read_;
  AckEntry a;
  std::uint8_t kind = reader_.U8("kind");
  if (kind < 1 || kind > 4) {
    reader_.Fail("kind: unknown ack kind " + std::to_string(kind));
    return std::nullopt;
  }
  a.kind = static_cast<AckKind>(kind);
  a.stream = reader_.Varint("stream");
  a.delivery_id = reader_.Varint("delivery_id");
  if (a.kind == AckKind::kNack) {
    std::uint8_t has_delay = reader_.U8("has_delay");
    if (has_delay > 1) reader_.Fail("has_delay: not 0 or 1");
    if (has_delay == 1) a.delay = reader_.Dur("delay");
    a.error = reader_.Str("error");
  }
  if (!reader_.ok()) return std::nullopt;
  return a;
}

void BeginAcked(FrameWriter& w, std::uint32_t correlation, std::size_t count) {
  w.Begin(FrameType::kAcked, correlation);
  w.Varint(count);
}

void EncodeAckedResult(FrameWriter& w, const Status& status) {
  w.U8(static_cast<std::uint8_t>(status.code()));
  if (!status.ok()) w.Str(status.message());
}

Status DecodeAcked(std::span<const std::byte> payload, std::vector<Status>& out) {
  out.clear();
  PayloadReader r(payload);
  std::uint64_t count = r.VarintAtMost("count", r.remaining());
  out.reserve(count);
  for (std::uint64_t i = 0; i < count && r.ok(); ++i) {
    std::uint8_t code = r.U8("code");
    if (code >= kStatusCodeCount) r.Fail("code: unknown status code " + std::to_string(code));
    if (code == 0) {
      out.push_back(OkStatus());
    } else {
      std::string_view message = r.Str("message");
      out.emplace_back(static_cast<StatusCode>(code), std::string(message));
    }
  }
  r.End();
  return r.status("ACKED");
}

void EncodeCloseStream(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream) {
  w.Begin(FrameType::kCloseStream, correlation);
  w.Varint(stream);
  w.End();
}

Result<std::uint64_t> DecodeCloseStream(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  std::uint64_t stream = r.Varint("stream");
  return Finish(r, "CLOSE_STREAM", stream);
}

void EncodeSeek(FrameWriter& w, std::uint32_t correlation, const SeekFrame& seek) {
  w.Begin(FrameType::kSeek, correlation);
  w.Str(seek.topic);
  w.Str(seek.group);
  PutPosition(w, seek.position);
  w.End();
}

Result<SeekFrame> DecodeSeek(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  SeekFrame f;
  f.topic = r.Str("topic");
  f.group = r.Str("group");
  f.position = GetPosition(r);
  return Finish(r, "SEEK", f);
}

void EncodeDescribeGroup(FrameWriter& w, std::uint32_t correlation, const DescribeGroupFrame& d) {
  w.Begin(FrameType::kDescribeGroup, correlation);
  w.Str(d.topic);
  w.Str(d.group);
  w.End();
}

Result<DescribeGroupFrame> DecodeDescribeGroup(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  DescribeGroupFrame f;
  f.topic = r.Str("topic");
  f.group = r.Str("group");
  return Finish(r, "DESCRIBE_GROUP", f);
}

void EncodeGroupInfo(FrameWriter& w, std::uint32_t correlation, const GroupInfo& info) {
  w.Begin(FrameType::kGroupInfo, correlation);
  PutGroupInfo(w, info);
  w.End();
}

Result<GroupInfo> DecodeGroupInfo(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  GroupInfo g = GetGroupInfo(r);
  return Finish(r, "GROUP_INFO", std::move(g));
}

void BeginRequest(FrameWriter& w, std::uint32_t correlation, std::string_view topic,
                  Duration timeout) {
  w.Begin(FrameType::kRequest, correlation);
  w.Str(topic);
  w.Dur(timeout);
}

Result<RequestFrame> DecodeRequest(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  RequestFrame f;
  f.topic = r.Str("topic");
  f.timeout = r.Dur("timeout");
  f.batch = r.Batch("batch");
  return Finish(r, "REQUEST", f);
}

Result<std::span<const std::byte>> DecodeBatchOnly(std::span<const std::byte> payload,
                                                   std::string_view frame) {
  PayloadReader r(payload);
  std::span<const std::byte> batch = r.Batch("batch");
  return Finish(r, frame, batch);
}

void EncodeRespond(FrameWriter& w, std::uint32_t correlation, std::string_view topic) {
  w.Begin(FrameType::kRespond, correlation);
  w.Str(topic);
  w.End();
}

Result<std::string_view> PeekTopic(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  std::string_view topic = r.Str("topic");
  if (!r.ok()) return r.status("topic");
  return topic;
}

Result<std::string_view> DecodeRespond(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  std::string_view topic = r.Str("topic");
  return Finish(r, "RESPOND", topic);
}

void EncodeResponding(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream) {
  w.Begin(FrameType::kResponding, correlation);
  w.Varint(stream);
  w.End();
}

Result<std::uint64_t> DecodeResponding(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  std::uint64_t stream = r.Varint("stream");
  return Finish(r, "RESPONDING", stream);
}

void BeginRequestIn(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream,
                    std::uint64_t request_id) {
  w.Begin(FrameType::kRequestIn, correlation);
  w.Varint(stream);
  w.U64(request_id);
}

Result<RequestInFrame> DecodeRequestIn(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  RequestInFrame f;
  f.stream = r.Varint("stream");
  f.request_id = r.U64("request_id");
  f.batch = r.Batch("batch");
  return Finish(r, "REQUEST_IN", f);
}

void BeginReplyTo(FrameWriter& w, std::uint32_t correlation, std::uint64_t request_id) {
  w.Begin(FrameType::kReplyTo, correlation);
  w.U64(request_id);
}

Result<ReplyToFrame> DecodeReplyTo(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  ReplyToFrame f;
  f.request_id = r.U64("request_id");
  f.batch = r.Batch("batch");
  return Finish(r, "REPLY_TO", f);
}

}  // namespace junction::codec
