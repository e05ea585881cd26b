#include "codec/wire.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "codec/byte_order.h"
#include "codec/record_batch.h"

namespace junction::codec {
namespace {

constexpr std::size_t kLengthField = 4;
// The fields of the header after the length: type, flags, reserved, correlation.
constexpr std::uint32_t kMinFrameLength = kFrameHeaderSize - kLengthField;

std::string Hex(std::uint8_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  out += kDigits[v >> 4];
  out += kDigits[v & 0xf];
  return out;
}

constexpr std::array<std::byte, 7> kTlsAlert = {std::byte{0x15}, std::byte{0x03}, std::byte{0x01},
                                                std::byte{0x00}, std::byte{0x02}, std::byte{0x02},
                                                std::byte{0x46}};  // fatal protocol_version

constexpr std::string_view kHttpMethods[] = {"GET ",     "POST ",  "PUT ",   "HEAD ",    "DELETE ",
                                             "OPTIONS ", "PATCH ", "TRACE ", "CONNECT ", "PRI "};

}  // namespace

std::string FrameTypeName(std::uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kHello:
      return "HELLO";
    case FrameType::kWelcome:
      return "WELCOME";
    case FrameType::kPing:
      return "PING";
    case FrameType::kPong:
      return "PONG";
    case FrameType::kError:
      return "ERROR";
    case FrameType::kGoaway:
      return "GOAWAY";
    case FrameType::kOk:
      return "OK";
    case FrameType::kCreateTopic:
      return "CREATE_TOPIC";
    case FrameType::kPublish:
      return "PUBLISH";
    case FrameType::kPublished:
      return "PUBLISHED";
    case FrameType::kSubscribe:
      return "SUBSCRIBE";
    case FrameType::kSubscribed:
      return "SUBSCRIBED";
    case FrameType::kFetch:
      return "FETCH";
    case FrameType::kDeliver:
      return "DELIVER";
    case FrameType::kAck:
      return "ACK";
    case FrameType::kAcked:
      return "ACKED";
    case FrameType::kCloseStream:
      return "CLOSE_STREAM";
    case FrameType::kSeek:
      return "SEEK";
    case FrameType::kDescribeGroup:
      return "DESCRIBE_GROUP";
    case FrameType::kGroupInfo:
      return "GROUP_INFO";
    case FrameType::kRequest:
      return "REQUEST";
    case FrameType::kReply:
      return "REPLY";
    case FrameType::kRespond:
      return "RESPOND";
    case FrameType::kResponding:
      return "RESPONDING";
    case FrameType::kRequestIn:
      return "REQUEST_IN";
    case FrameType::kReplyTo:
      return "REPLY_TO";
    case FrameType::kListTopics:
      return "LIST_TOPICS";
    case FrameType::kTopics:
      return "TOPICS";
    case FrameType::kDescribeTopic:
      return "DESCRIBE_TOPIC";
    case FrameType::kListGroups:
      return "LIST_GROUPS";
    case FrameType::kGroups:
      return "GROUPS";
    case FrameType::kReadTopic:
      return "READ_TOPIC";
    case FrameType::kRecords:
      return "RECORDS";
    case FrameType::kDeleteTopic:
      return "DELETE_TOPIC";
    case FrameType::kPurgeTopic:
      return "PURGE_TOPIC";
  }
  return Hex(type);
}

bool IsKnownFrameType(std::uint8_t type) { return FrameTypeName(type)[0] != '0'; }

std::string_view ConnectionErrorName(ConnectionError code) {
  switch (code) {
    case ConnectionError::kNotJunction:
      return "NOT_JUNCTION";
    case ConnectionError::kUnsupportedVersion:
      return "UNSUPPORTED_VERSION";
    case ConnectionError::kMalformedFrame:
      return "MALFORMED_FRAME";
    case ConnectionError::kFrameTooLarge:
      return "FRAME_TOO_LARGE";
    case ConnectionError::kUnknownFrameType:
      return "UNKNOWN_FRAME_TYPE";
    case ConnectionError::kHandshakeTimeout:
      return "HANDSHAKE_TIMEOUT";
    case ConnectionError::kFrameTimeout:
      return "FRAME_TIMEOUT";
    case ConnectionError::kHeartbeatTimeout:
      return "HEARTBEAT_TIMEOUT";
    case ConnectionError::kShuttingDown:
      return "SHUTTING_DOWN";
    case ConnectionError::kTooManyConnections:
      return "TOO_MANY_CONNECTIONS";
  }
  return "UNKNOWN_CONNECTION_ERROR";
}

PeerKind ClassifyPeer(std::span<const std::byte> first) {
  std::size_t n = std::min(first.size(), kPreambleSize);
  if (n == 0) return PeerKind::kIncomplete;
  if (std::memcmp(first.data(), kPreamble, n) == 0) {
    return n == kPreambleSize ? PeerKind::kJunction : PeerKind::kIncomplete;
  }
  if (first.size() >= 2 && first[0] == std::byte{0x16} && first[1] == std::byte{0x03}) {
    return PeerKind::kTls;
  }
  std::string_view text(reinterpret_cast<const char*>(first.data()), first.size());
  for (std::string_view method : kHttpMethods) {
    if (text.starts_with(method)) return PeerKind::kHttp;
  }
  // A method cut short (a byte at a time) is still undecided.
  if (text.size() < kPreambleSize) {
    for (std::string_view method : kHttpMethods) {
      if (method.starts_with(text)) return PeerKind::kIncomplete;
    }
    if (text.size() == 1 && first[0] == std::byte{0x16}) return PeerKind::kIncomplete;
  }
  return PeerKind::kOther;
}

std::span<const std::byte> TlsRefusal() { return kTlsAlert; }

std::string HttpRefusal(std::string_view admin) {
  std::string body =
      "This port speaks the Junction wire protocol (docs/formats/wire.md), not HTTP.\n";
  if (!admin.empty()) {
    body += "The HTTP admin endpoints (/metrics, /livez, /readyz) are at http://";
    body += admin;
    body += "/\n";
  }
  std::string out = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n";
  out += "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out += body;
  return out;
}

// ---- FrameDecoder ----

std::span<std::byte> FrameDecoder::Prepare(std::size_t min_bytes) {
  // What the frame being read still needs, when its length is known.
  std::size_t want = min_bytes;
  if (buffered() >= kLengthField && !error_) {
    std::uint32_t length = LoadLE<std::uint32_t>(buffer_.get() + begin_);
    if (length <= max_frame_bytes_) {
      std::size_t whole = kLengthField + std::size_t{length};
      if (whole > buffered()) want = std::max(want, whole - buffered());
    }
  }
  if (size_ - end_ < want) {
    // Move what is buffered to the front, then grow if that is not enough.
    if (begin_ > 0) {
      std::memmove(buffer_.get(), buffer_.get() + begin_, buffered());
      end_ -= begin_;
      begin_ = 0;
    }
    if (size_ - end_ < want) {
      const std::size_t size = end_ + want;
      std::unique_ptr<std::byte[]> grown = std::make_unique_for_overwrite<std::byte[]>(size);
      if (end_ > 0) std::memcpy(grown.get(), buffer_.get(), end_);
      buffer_ = std::move(grown);
      size_ = size;
    }
  }
  return {buffer_.get() + end_, size_ - end_};
}

std::optional<Frame> FrameDecoder::Next() {
  if (error_) return std::nullopt;
  if (buffered() < kLengthField) {
    if (begin_ == end_) begin_ = end_ = 0;
    return std::nullopt;
  }
  const std::byte* p = buffer_.get() + begin_;
  FrameHeader h;
  h.length = LoadLE<std::uint32_t>(p);
  if (h.length > max_frame_bytes_) {
    error_ = WireError{ConnectionError::kFrameTooLarge,
                       "frame length " + std::to_string(h.length) + " is above the limit of " +
                           std::to_string(max_frame_bytes_) + " bytes"};
    return std::nullopt;
  }
  if (h.length < kMinFrameLength) {
    error_ = WireError{ConnectionError::kMalformedFrame,
                       "frame length " + std::to_string(h.length) + " is below the header's 8"};
    return std::nullopt;
  }
  if (buffered() < kLengthField + std::size_t{h.length}) return std::nullopt;
  h.type = static_cast<std::uint8_t>(p[4]);
  h.flags = static_cast<std::uint8_t>(p[5]);
  std::uint16_t reserved = LoadLE<std::uint16_t>(p + 6);
  h.correlation = LoadLE<std::uint32_t>(p + 8);
  if (h.flags != 0 || reserved != 0) {
    error_ = WireError{ConnectionError::kMalformedFrame,
                       FrameTypeName(h.type) + " frame has non-zero " +
                           (h.flags != 0 ? "flags" : "reserved bytes")};
    return std::nullopt;
  }
  Frame frame{h, {p + kFrameHeaderSize, h.payload_size()}};
  begin_ += kLengthField + h.length;
  return frame;
}

void FrameDecoder::Shrink(std::size_t keep) {
  if (buffered() == 0 && size_ > keep) {
    buffer_.reset();
    size_ = 0;
    begin_ = end_ = 0;
  }
}

// ---- FrameWriter ----

void FrameWriter::Begin(FrameType type, std::uint32_t correlation) {
  start_ = out_.size();
  out_.resize(start_ + kFrameHeaderSize);
  std::byte* p = out_.data() + start_;
  StoreLE<std::uint32_t>(p, 0);
  p[4] = std::byte{static_cast<std::uint8_t>(type)};
  p[5] = std::byte{0};
  StoreLE<std::uint16_t>(p + 6, 0);
  StoreLE<std::uint32_t>(p + 8, correlation);
}

std::size_t FrameWriter::End() {
  std::size_t size = out_.size() - start_;
  StoreLE<std::uint32_t>(out_.data() + start_, static_cast<std::uint32_t>(size - kLengthField));
  return size;
}

void FrameWriter::U16(std::uint16_t v) {
  std::size_t at = out_.size();
  out_.resize(at + 2);
  StoreLE(out_.data() + at, v);
}
void FrameWriter::U32(std::uint32_t v) {
  std::size_t at = out_.size();
  out_.resize(at + 4);
  StoreLE(out_.data() + at, v);
}
void FrameWriter::U64(std::uint64_t v) {
  std::size_t at = out_.size();
  out_.resize(at + 8);
  StoreLE(out_.data() + at, v);
}
void FrameWriter::Varint(std::uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(std::byte{static_cast<std::uint8_t>((v & 0x7f) | 0x80)});
    v >>= 7;
  }
  out_.push_back(std::byte{static_cast<std::uint8_t>(v)});
}
void FrameWriter::Str(std::string_view s) {
  Varint(s.size());
  Raw({reinterpret_cast<const std::byte*>(s.data()), s.size()});
}
void FrameWriter::Raw(std::span<const std::byte> bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
}

// ---- PayloadReader ----

bool PayloadReader::Need(std::size_t n, const char* field) {
  if (!ok()) return false;
  if (remaining() < n) {
    Fail(std::string(field) + ": needs " + std::to_string(n) + " bytes, " +
         std::to_string(remaining()) + " left");
    return false;
  }
  return true;
}

void PayloadReader::Fail(std::string message) {
  if (ok()) error_ = std::move(message);
}

std::uint8_t PayloadReader::U8(const char* field) {
  if (!Need(1, field)) return 0;
  return static_cast<std::uint8_t>(in_[pos_++]);
}
std::uint16_t PayloadReader::U16(const char* field) {
  if (!Need(2, field)) return 0;
  auto v = LoadLE<std::uint16_t>(in_.data() + pos_);
  pos_ += 2;
  return v;
}
std::uint32_t PayloadReader::U32(const char* field) {
  if (!Need(4, field)) return 0;
  auto v = LoadLE<std::uint32_t>(in_.data() + pos_);
  pos_ += 4;
  return v;
}
std::uint64_t PayloadReader::U64(const char* field) {
  if (!Need(8, field)) return 0;
  auto v = LoadLE<std::uint64_t>(in_.data() + pos_);
  pos_ += 8;
  return v;
}
std::uint64_t PayloadReader::Varint(const char* field) {
  if (!ok()) return 0;
  std::optional<std::uint64_t> v = GetVarint(in_, pos_);
  if (!v) {
    Fail(std::string(field) + ": malformed varint");
    return 0;
  }
  return *v;
}
std::uint64_t PayloadReader::VarintAtMost(const char* field, std::uint64_t max) {
  std::uint64_t v = Varint(field);
  if (v > max) {
    Fail(std::string(field) + ": " + std::to_string(v) + " is above " + std::to_string(max));
    return 0;
  }
  return v;
}
std::string_view PayloadReader::Str(const char* field) {
  std::uint64_t n = Varint(field);
  if (!ok()) return {};
  if (n > remaining()) {
    Fail(std::string(field) + ": length " + std::to_string(n) + " is past the frame's end");
    return {};
  }
  std::string_view s(reinterpret_cast<const char*>(in_.data() + pos_), n);
  pos_ += n;
  return s;
}
Duration PayloadReader::Dur(const char* field) {
  std::uint64_t n = Varint(field);
  if (n > static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max())) {
    Fail(std::string(field) + ": duration out of range");
    return {};
  }
  return Duration(static_cast<Duration::rep>(n));
}
std::span<const std::byte> PayloadReader::Batch(const char* field) {
  if (!Need(kBatchHeaderSize, field)) return {};
  std::uint32_t length = LoadLE<std::uint32_t>(in_.data() + pos_ + batch_field::kBatchLength);
  if (length < kBatchHeaderSize || length > remaining()) {
    Fail(std::string(field) + ": batch_length " + std::to_string(length) +
         (length < kBatchHeaderSize ? " is below the header's 72" : " is past the frame's end"));
    return {};
  }
  std::span<const std::byte> batch = in_.subspan(pos_, length);
  pos_ += length;
  return batch;
}
void PayloadReader::End() {
  if (ok() && remaining() != 0) {
    Fail(std::to_string(remaining()) + " bytes left after the last field");
  }
}
Status PayloadReader::status(std::string_view frame) const {
  if (ok()) return OkStatus();
  return InvalidArgumentError(std::string(frame) + " frame: " + error_);
}

}  // namespace junction::codec
