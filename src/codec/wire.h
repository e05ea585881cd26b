#pragma once

// The wire protocol between clients and junctiond, specified in
// docs/formats/wire.md; this file follows it frame for frame. Pure code on
// bytes: no I/O, thread-compatible.
//
//   FrameDecoder  resumable: bytes in as they arrive, whole frames out; the
//                 length is checked before anything is allocated, and after
//                 its buffer has grown to the largest frame seen it
//                 allocates nothing more.
//   FrameWriter   appends frames to a buffer the caller reuses.
//   Encode*/Decode*  one pair per frame type. Decoders return views into the
//                 payload (valid while the frame is) and allocate nothing,
//                 except for SUBSCRIBE's backoff list and the strings of the
//                 rarely sent frames.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "junction/bus.h"
#include "junction/clock.h"
#include "junction/ids.h"
#include "junction/message.h"
#include "junction/result.h"
#include "junction/status.h"

namespace junction::codec {

// The newest version this code speaks, and the oldest (docs/formats/wire.md:
// version 2 changed only DELIVER's batches).
inline constexpr std::uint16_t kWireVersion = 2;
inline constexpr std::uint16_t kMinWireVersion = 1;
inline constexpr std::size_t kPreambleSize = 8;
// \x8aJNC\r\n\x1a\n
inline constexpr std::byte kPreamble[kPreambleSize] = {
    std::byte{0x8A}, std::byte{0x4A}, std::byte{0x4E}, std::byte{0x43},
    std::byte{0x0D}, std::byte{0x0A}, std::byte{0x1A}, std::byte{0x0A}};
inline constexpr std::size_t kFrameHeaderSize = 12;
inline constexpr std::uint32_t kDefaultMaxFrameBytes = 16u << 20;
inline constexpr std::uint32_t kMinMaxFrameBytes = 64u << 10;
inline constexpr std::uint32_t kMaxMaxFrameBytes = 64u << 20;
// Before WELCOME the server takes frames of at most this many bytes.
inline constexpr std::uint32_t kHandshakeMaxFrameBytes = 4u << 10;
inline constexpr std::size_t kMaxBackoffSteps = 64;

enum class FrameType : std::uint8_t {
  kHello = 0x01,
  kWelcome = 0x02,
  kPing = 0x03,
  kPong = 0x04,
  kError = 0x05,
  kGoaway = 0x06,
  kOk = 0x07,
  kCreateTopic = 0x10,
  kPublish = 0x11,
  kPublished = 0x12,
  kSubscribe = 0x20,
  kSubscribed = 0x21,
  kFetch = 0x22,
  kDeliver = 0x23,
  kAck = 0x24,
  kAcked = 0x25,
  kCloseStream = 0x26,
  kSeek = 0x27,
  kDescribeGroup = 0x28,
  kGroupInfo = 0x29,
  kRequest = 0x30,
  kReply = 0x31,
  kRespond = 0x32,
  kResponding = 0x33,
  kRequestIn = 0x34,
  kReplyTo = 0x35,
  // Administration (0x40-0x5F).
  kListTopics = 0x40,
  kTopics = 0x41,
  kDescribeTopic = 0x42,
  kListGroups = 0x43,
  kGroups = 0x44,
  kReadTopic = 0x45,
  kRecords = 0x46,
  kDeleteTopic = 0x47,
  kPurgeTopic = 0x48,
};

// The frame's name ("PUBLISH"), or "0x4f" for a type this version does not know.
std::string FrameTypeName(std::uint8_t type);
// Whether `type` is defined by this version.
bool IsKnownFrameType(std::uint8_t type);
// Types reserved for administrative frames (0x40-0x5F): the ones this
// version does not know are refused per request, not with a close.
inline bool IsReservedAdminType(std::uint8_t type) { return type >= 0x40 && type <= 0x5F; }

// ERROR codes about the connection (below 100: a request's StatusCode).
enum class ConnectionError : std::uint16_t {
  kNotJunction = 100,
  kUnsupportedVersion = 101,
  kMalformedFrame = 102,
  kFrameTooLarge = 103,
  kUnknownFrameType = 104,
  kHandshakeTimeout = 105,
  kFrameTimeout = 106,
  kHeartbeatTimeout = 107,
  kShuttingDown = 108,
  kTooManyConnections = 109,
};
std::string_view ConnectionErrorName(ConnectionError code);  // "FRAME_TOO_LARGE"

// What the first bytes of a connection are.
enum class PeerKind : std::uint8_t {
  kIncomplete,  // fewer than kPreambleSize bytes, all consistent with the preamble
  kJunction,    // the preamble
  kTls,         // a TLS record (16 03)
  kHttp,        // an HTTP/1 request line ("GET ", "POST ", ...)
  kOther,
};
PeerKind ClassifyPeer(std::span<const std::byte> first_bytes);
// The TLS alert (protocol_version) and the HTTP answer the server sends
// before closing a TLS or HTTP peer. `admin` names the admin HTTP address
// ("" when there is none).
std::span<const std::byte> TlsRefusal();
std::string HttpRefusal(std::string_view admin);

struct FrameHeader {
  std::uint32_t length = 0;  // bytes after the length field: 8 + payload
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t correlation = 0;
  std::size_t payload_size() const { return length - (kFrameHeaderSize - 4); }
};

struct Frame {
  FrameHeader header;
  std::span<const std::byte> payload;
  FrameType type() const { return static_cast<FrameType>(header.type); }
};

// A connection-level failure: the code to send, and what went wrong.
struct WireError {
  ConnectionError code;
  std::string message;
};

// Splits a byte stream into frames. Not thread-safe.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::uint32_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  // Room for at least `min_bytes` more received bytes (more when the frame
  // being read is known to need it, never more than it needs plus
  // `min_bytes`). Valid until the next call of any method.
  std::span<std::byte> Prepare(std::size_t min_bytes);
  // `n` bytes were written at the start of Prepare's span.
  void Commit(std::size_t n) { end_ += n; }

  // The next complete frame (valid until the next Prepare or Next), nullopt
  // when more bytes are needed, or the error to close with: a length above
  // max_frame_bytes or below 8, non-zero flags or reserved bytes. After an
  // error the decoder stays failed.
  std::optional<Frame> Next();
  const std::optional<WireError>& error() const { return error_; }

  // Bytes received and not yet returned in a frame.
  std::size_t buffered() const { return end_ - begin_; }
  // Whether a frame has started and is not yet complete.
  bool in_frame() const { return buffered() > 0; }
  // Capacity held, for the per-connection memory bound.
  std::size_t capacity() const { return size_; }
  void set_max_frame_bytes(std::uint32_t n) { max_frame_bytes_ = n; }
  // Releases the buffer when nothing is buffered and it grew past `keep`.
  void Shrink(std::size_t keep);

 private:
  std::uint32_t max_frame_bytes_;
  // Not zero-filled when it grows (a vector's would be): received bytes
  // overwrite it, and only [begin_, end_) is ever read.
  std::unique_ptr<std::byte[]> buffer_;
  std::size_t size_ = 0;
  std::size_t begin_ = 0;  // first byte not yet returned
  std::size_t end_ = 0;    // one past the last received byte
  std::optional<WireError> error_;
};

// Appends frames to a buffer. Not thread-safe.
class FrameWriter {
 public:
  explicit FrameWriter(std::vector<std::byte>& out) : out_(out) {}

  void Begin(FrameType type, std::uint32_t correlation);
  // Closes the frame Begin opened: writes its length. Returns the frame's size.
  std::size_t End();

  void U8(std::uint8_t v) { out_.push_back(std::byte{v}); }
  void U16(std::uint16_t v);
  void U32(std::uint32_t v);
  void U64(std::uint64_t v);
  void I64(std::int64_t v) { U64(static_cast<std::uint64_t>(v)); }
  void Varint(std::uint64_t v);
  void Str(std::string_view s);
  void Dur(Duration d) { Varint(d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count())); }
  void Time(Timestamp t) { I64(t.time_since_epoch().count()); }
  void Raw(std::span<const std::byte> bytes);

 private:
  std::vector<std::byte>& out_;
  std::size_t start_ = 0;
};

// Reads a payload field by field. The first failure sticks: later reads
// return zero values, and status() names the first field that failed.
class PayloadReader {
 public:
  explicit PayloadReader(std::span<const std::byte> payload) : in_(payload) {}

  std::uint8_t U8(const char* field);
  std::uint16_t U16(const char* field);
  std::uint32_t U32(const char* field);
  std::uint64_t U64(const char* field);
  std::int64_t I64(const char* field) { return static_cast<std::int64_t>(U64(field)); }
  std::uint64_t Varint(const char* field);
  // A varint that must be at most `max`.
  std::uint64_t VarintAtMost(const char* field, std::uint64_t max);
  std::string_view Str(const char* field);
  Duration Dur(const char* field);
  Timestamp Time(const char* field) { return Timestamp(Duration(I64(field))); }
  // A record batch: its batch_length says where it ends.
  std::span<const std::byte> Batch(const char* field);
  // Fails unless every byte was read.
  void End();
  // Records a failure (for checks the caller makes on read values).
  void Fail(std::string message);

  bool ok() const { return error_.empty(); }
  std::size_t remaining() const { return in_.size() - pos_; }
  // OK, or InvalidArgument naming the field and the frame.
  Status status(std::string_view frame) const;

 private:
  bool Need(std::size_t n, const char* field);

  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  std::string error_;
};

// ---- Frames. Encode* append one whole frame; Decode* read a payload. ----

struct Hello {
  std::uint16_t min_version = kWireVersion;
  std::uint16_t max_version = kWireVersion;
  std::uint32_t max_frame_bytes = kDefaultMaxFrameBytes;
  Duration heartbeat{};
  bool auto_create_topics = true;
  TopicOptions default_topic{};
  std::string_view client;
};
void EncodeHello(FrameWriter& w, const Hello& hello);
Result<Hello> DecodeHello(std::span<const std::byte> payload);

struct Welcome {
  std::uint16_t version = kWireVersion;
  std::uint32_t max_frame_bytes = kDefaultMaxFrameBytes;
  Duration heartbeat{};
  std::uint16_t capabilities = 0;  // CapabilityBits
  std::string_view server;
};
std::uint16_t CapabilityBits(const Capabilities& capabilities);
// InvalidArgument for bits this version does not define.
Result<Capabilities> CapabilitiesFromBits(std::uint16_t bits);
void EncodeWelcome(FrameWriter& w, std::uint32_t correlation, const Welcome& welcome);
Result<Welcome> DecodeWelcome(std::span<const std::byte> payload);

void EncodePing(FrameWriter& w, FrameType type, std::uint64_t nonce);  // PING or PONG
Result<std::uint64_t> DecodePing(std::span<const std::byte> payload);

struct ErrorFrame {
  std::uint16_t code = 0;
  std::string_view message;
};
void EncodeError(FrameWriter& w, std::uint32_t correlation, std::uint16_t code,
                 std::string_view message);
Result<ErrorFrame> DecodeError(std::span<const std::byte> payload);
// The Status an ERROR frame stands for: its code when below 100, else
// Unavailable naming the connection error.
Status ErrorFrameStatus(const ErrorFrame& error);

void EncodeGoaway(FrameWriter& w, std::string_view reason);
void EncodeOk(FrameWriter& w, std::uint32_t correlation);
// Payloads that must be empty (OK).
Status DecodeEmpty(std::span<const std::byte> payload, std::string_view frame);

struct CreateTopicFrame {
  std::string_view topic;
  TopicOptions options;
};
void EncodeCreateTopic(FrameWriter& w, std::uint32_t correlation, std::string_view topic,
                       const TopicOptions& options);
Result<CreateTopicFrame> DecodeCreateTopic(std::span<const std::byte> payload);

struct PublishFrame {
  std::string_view topic;
  PublishOptions options;
  std::span<const std::byte> batch;
};
// Writes the frame's fields up to the batch; the caller appends the batch
// (FrameWriter::Raw) and ends the frame.
void BeginPublish(FrameWriter& w, std::uint32_t correlation, std::string_view topic,
                  const PublishOptions& options);
Result<PublishFrame> DecodePublish(std::span<const std::byte> payload);

// PUBLISHED: the count, then the results (EncodePublishedResult each).
void BeginPublished(FrameWriter& w, std::uint32_t correlation, std::size_t count);
void EncodePublishedResult(FrameWriter& w, const PublishResult& result);
// Decodes into `out` (cleared first; its capacity is reused).
Status DecodePublished(std::span<const std::byte> payload, std::vector<PublishResult>& out);

struct SubscribeFrame {
  std::string_view topic;
  SubscribeOptions options;  // (group, dead-letter topic and backoff are copies)
};
void EncodeSubscribe(FrameWriter& w, std::uint32_t correlation, std::string_view topic,
                     const SubscribeOptions& options);
Result<SubscribeFrame> DecodeSubscribe(std::span<const std::byte> payload);

void EncodeSubscribed(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream);
Result<std::uint64_t> DecodeSubscribed(std::span<const std::byte> payload);

struct FetchFrame {
  std::uint64_t stream = 0;
  std::uint64_t max_messages = 1;
  std::optional<Duration> timeout;  // nullopt: until the stream closes
};
void EncodeFetch(FrameWriter& w, std::uint32_t correlation, const FetchFrame& fetch);
Result<FetchFrame> DecodeFetch(std::span<const std::byte> payload);

// One delivery's place in a DELIVER frame (where its message is: see
// DeliverBatch).
struct DeliveryHeader {
  PartitionId partition;
  Offset offset;
  DeliveryCount attempt;
  std::uint64_t delivery_id = 0;
};
// A record batch of a DELIVER frame. Unstored (`stored` empty): its
// records are, in order, the messages of the deliveries that no stored
// batch of the frame holds. Stored: the batch as partition `*stored` keeps
// it (base_offset written); the record at a delivery's offset in that
// partition is the delivery's message, and its other records are not this
// consumer's. Version 1 frames have one unstored batch.
struct DeliverBatch {
  std::optional<PartitionId> stored;
  std::span<const std::byte> batch;
};
// DELIVER: BeginDeliver, one EncodeDeliveryHeader per delivery, then in
// version 1 the batch (FrameWriter::Raw) and End; in version 2
// BeginDeliverBatches, one EncodeDeliverBatch per batch, and End.
void BeginDeliver(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream,
                  std::size_t count);
void EncodeDeliveryHeader(FrameWriter& w, const DeliveryHeader& d);
void BeginDeliverBatches(FrameWriter& w, std::size_t count);
void EncodeDeliverBatch(FrameWriter& w, const DeliverBatch& batch);
// Reads a DELIVER of wire version `version`: the stream, the headers (into
// `headers`, cleared first) and the batches (into `batches`, cleared first;
// they point into `payload`). The batches' structure is checked (each ends
// where its batch_length says), not their records or checksums.
struct DeliverFrame {
  std::uint64_t stream = 0;
};
Result<DeliverFrame> DecodeDeliver(std::span<const std::byte> payload, std::uint16_t version,
                                   std::vector<DeliveryHeader>& headers,
                                   std::vector<DeliverBatch>& batches);

enum class AckKind : std::uint8_t { kAck = 1, kAckSync = 2, kNack = 3, kInProgress = 4 };
struct AckEntry {
  AckKind kind = AckKind::kAck;
  std::uint64_t stream = 0;
  std::uint64_t delivery_id = 0;
  std::optional<Duration> delay;  // nack only
  std::string_view error;         // nack only
};
void BeginAck(FrameWriter& w, std::uint32_t correlation, std::size_t count);
void EncodeAckEntry(FrameWriter& w, const AckEntry& ack);
// Reads ACK one entry at a time, allocation-free.
class AckReader {
 public:
  explicit AckReader(std::span<const std::byte> payload);
  std::size_t count() const { return count_; }
  // The next entry, or nullopt after the last one (then status() says
  // whether the frame was well formed: every entry read, nothing left).
  std::optional<AckEntry> Next();
  Status status() const { return reader_.status("ACK"); }

 private:
  PayloadReader reader_;
  std::size_t count_ = 0;
  std::size_t read_ = 0;
};

void BeginAcked(FrameWriter& w, std::uint32_t correlation, std::size_t count);
void EncodeAckedResult(FrameWriter& w, const Status& status);
// Decodes into `out` (cleared first).
Status DecodeAcked(std::span<const std::byte> payload, std::vector<Status>& out);

void EncodeCloseStream(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream);
Result<std::uint64_t> DecodeCloseStream(std::span<const std::byte> payload);

struct SeekFrame {
  std::string_view topic;
  std::string_view group;
  StartPosition position;
};
void EncodeSeek(FrameWriter& w, std::uint32_t correlation, const SeekFrame& seek);
Result<SeekFrame> DecodeSeek(std::span<const std::byte> payload);

struct DescribeGroupFrame {
  std::string_view topic;
  std::string_view group;
};
void EncodeDescribeGroup(FrameWriter& w, std::uint32_t correlation, const DescribeGroupFrame& d);
Result<DescribeGroupFrame> DecodeDescribeGroup(std::span<const std::byte> payload);
void EncodeGroupInfo(FrameWriter& w, std::uint32_t correlation, const GroupInfo& info);
Result<GroupInfo> DecodeGroupInfo(std::span<const std::byte> payload);

struct RequestFrame {
  std::string_view topic;
  Duration timeout{};  // zero: none
  std::span<const std::byte> batch;
};
void BeginRequest(FrameWriter& w, std::uint32_t correlation, std::string_view topic,
                  Duration timeout);
Result<RequestFrame> DecodeRequest(std::span<const std::byte> payload);
// REPLY is a batch alone: Begin(kReply), Raw(batch), End.
Result<std::span<const std::byte>> DecodeBatchOnly(std::span<const std::byte> payload,
                                                   std::string_view frame);

void EncodeRespond(FrameWriter& w, std::uint32_t correlation, std::string_view topic);
Result<std::string_view> DecodeRespond(std::span<const std::byte> payload);

// The topic a PUBLISH, SUBSCRIBE, REQUEST or RESPOND payload starts with,
// read without decoding the rest (junctiond places a connection by it).
Result<std::string_view> PeekTopic(std::span<const std::byte> payload);
void EncodeResponding(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream);
Result<std::uint64_t> DecodeResponding(std::span<const std::byte> payload);

struct RequestInFrame {
  std::uint64_t stream = 0;
  std::uint64_t request_id = 0;
  std::span<const std::byte> batch;
};
void BeginRequestIn(FrameWriter& w, std::uint32_t correlation, std::uint64_t stream,
                    std::uint64_t request_id);
Result<RequestInFrame> DecodeRequestIn(std::span<const std::byte> payload);

struct ReplyToFrame {
  std::uint64_t request_id = 0;
  std::span<const std::byte> batch;
};
void BeginReplyTo(FrameWriter& w, std::uint32_t correlation, std::uint64_t request_id);
Result<ReplyToFrame> DecodeReplyTo(std::span<const std::byte> payload);

// ---- Administration (wire_admin.cc) ----

// LIST_TOPICS is empty; DESCRIBE_TOPIC, DELETE_TOPIC and PURGE_TOPIC carry a
// topic name alone; LIST_GROUPS a topic name ("" for every topic).
void EncodeTopicOnly(FrameWriter& w, FrameType type, std::uint32_t correlation,
                     std::string_view topic);
Result<std::string_view> DecodeTopicOnly(std::span<const std::byte> payload,
                                         std::string_view frame);

// TOPICS: the answer to LIST_TOPICS and DESCRIBE_TOPIC (one topic).
void EncodeTopics(FrameWriter& w, std::uint32_t correlation, std::span<const TopicInfo> topics);
Result<std::vector<TopicInfo>> DecodeTopics(std::span<const std::byte> payload);

// GROUPS: the answer to LIST_GROUPS.
void EncodeGroups(FrameWriter& w, std::uint32_t correlation, std::span<const GroupInfo> groups);
Result<std::vector<GroupInfo>> DecodeGroups(std::span<const std::byte> payload);

struct ReadTopicFrame {
  std::string_view topic;
  PartitionId partition;
  Offset from;
  std::uint64_t max_messages = 0;
};
void EncodeReadTopic(FrameWriter& w, std::uint32_t correlation, const ReadTopicFrame& read);
Result<ReadTopicFrame> DecodeReadTopic(std::span<const std::byte> payload);

// RECORDS: BeginRecords, one offset per message (EncodeRecordOffset), then,
// when there is at least one, the batch of the messages (FrameWriter::Raw),
// and End.
void BeginRecords(FrameWriter& w, std::uint32_t correlation, PartitionId partition,
                  std::size_t count);
inline void EncodeRecordOffset(FrameWriter& w, Offset offset) { w.U64(offset.value()); }
struct RecordsFrame {
  PartitionId partition;
  std::span<const std::byte> batch;  // empty when there are no records
};
// Reads RECORDS: the offsets (into `offsets`, cleared first) and the batch.
Result<RecordsFrame> DecodeRecords(std::span<const std::byte> payload,
                                   std::vector<Offset>& offsets);

}  // namespace junction::codec
