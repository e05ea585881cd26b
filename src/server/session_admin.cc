// Session: the administrative frames (docs/formats/wire.md, 0x40-0x5F).

#include <algorithm>
#include <utility>

#include "broker/message_codec.h"
#include "server/session.h"

namespace junction::server {
namespace asio = boost::asio;
using asio::awaitable;
namespace c = codec;

namespace {

// READ_TOPIC answers at most this many messages at once.
constexpr std::uint64_t kMaxReadMessages = 1000;

}  // namespace

bool Session::OnAdmin(const c::Frame& frame) {
  const std::uint32_t corr = frame.header.correlation;
  auto malformed = [&](const Status& status) {
    CloseWith(c::ConnectionError::kMalformedFrame, status.message());
    return false;
  };
  switch (frame.type()) {
    case c::FrameType::kListTopics: {
      if (Status s = c::DecodeEmpty(frame.payload, "LIST_TOPICS"); !s.ok()) return malformed(s);
      SpawnTask(HandleListTopics(corr, std::nullopt));
      return true;
    }
    case c::FrameType::kDescribeTopic:
    case c::FrameType::kListGroups:
    case c::FrameType::kDeleteTopic:
    case c::FrameType::kPurgeTopic: {
      Result<std::string_view> topic =
          c::DecodeTopicOnly(frame.payload, c::FrameTypeName(frame.header.type));
      if (!topic.ok()) return malformed(topic.status());
      std::string name(*topic);
      switch (frame.type()) {
        case c::FrameType::kDescribeTopic:
          SpawnTask(HandleListTopics(corr, std::move(name)));
          break;
        case c::FrameType::kListGroups:
          SpawnTask(HandleListGroups(corr, std::move(name)));
          break;
        default:
          SpawnTask(HandleRemoval(corr, frame.type(), std::move(name)));
          break;
      }
      return true;
    }
    case c::FrameType::kReadTopic: {
      Result<c::ReadTopicFrame> f = c::DecodeReadTopic(frame.payload);
      if (!f.ok()) return malformed(f.status());
      SpawnTask(HandleReadTopic(corr, std::string(f->topic), f->partition, f->from,
                                std::min(f->max_messages, kMaxReadMessages)));
      return true;
    }
    default:
      SendError(corr, UnimplementedError("frame type " + c::FrameTypeName(frame.header.type) +
                                         " is not implemented by this server"));
      return true;
  }
}

awaitable<void> Session::HandleListTopics(std::uint32_t correlation,
                                          std::optional<std::string> topic) {
  Result<std::vector<TopicInfo>> topics = std::vector<TopicInfo>{};
  if (topic) {
    Result<TopicInfo> one = co_await BusFor(*topic).DescribeTopic(*topic, Deadline::Infinite());
    if (one.ok()) {
      topics->push_back(std::move(*one));
    } else {
      topics = one.status();
    }
  } else {
    topics = co_await context_->brokers->ListTopics(Deadline::Infinite());
  }
  if (!topics.ok()) {
    SendError(correlation, topics.status());
    co_return;
  }
  c::FrameWriter w = writer();
  c::EncodeTopics(w, correlation, *topics);
  Flush();
}

awaitable<void> Session::HandleListGroups(std::uint32_t correlation, std::string topic) {
  Result<std::vector<GroupInfo>> groups =
      co_await context_->brokers->ListGroups(topic, Deadline::Infinite());
  if (!groups.ok()) {
    SendError(correlation, groups.status());
    co_return;
  }
  c::FrameWriter w = writer();
  c::EncodeGroups(w, correlation, *groups);
  Flush();
}

awaitable<void> Session::HandleRemoval(std::uint32_t correlation, c::FrameType type,
                                       std::string topic) {
  Status s;  // (GCC 12: no co_await inside a conditional expression)
  if (type == c::FrameType::kDeleteTopic) {
    s = co_await BusFor(topic).DeleteTopic(topic, Deadline::Infinite());
    if (s.ok()) context_->topics_deleted.fetch_add(1);
  } else {
    s = co_await BusFor(topic).PurgeTopic(topic, Deadline::Infinite());
  }
  AnswerStatus(correlation, s);
}

awaitable<void> Session::HandleReadTopic(std::uint32_t correlation, std::string topic,
                                         PartitionId partition, Offset from,
                                         std::uint64_t max_messages) {
  Result<std::vector<TopicRecord>> records = co_await BusFor(topic).ReadTopic(
      topic, partition, from, static_cast<std::size_t>(max_messages), Deadline::Infinite());
  if (!records.ok()) {
    SendError(correlation, records.status());
    co_return;
  }
  // As many as fit in one frame the client takes (at least one: a message
  // fits by the limits both sides share).
  const std::size_t room = peer_max_frame_ - 1024;
  std::vector<Message> messages;
  messages.reserve(records->size());
  for (TopicRecord& r : *records) messages.push_back(std::move(r.message));
  std::size_t n = messages.size();
  std::vector<std::byte> batch;
  while (n > 0) {
    std::size_t offsets_bytes = 8 * n;
    Result<std::vector<std::byte>> encoded = broker::EncodeMessageBatch(
        std::span(messages.data(), n), WallMs(*context_->clock),
        static_cast<std::uint32_t>(
            std::min(room - std::min(room, offsets_bytes), std::size_t{c::kMaxBatchBytesLimit})));
    if (encoded.ok()) {
      batch = std::move(*encoded);
      break;
    }
    if (encoded.status().code() != StatusCode::kResourceExhausted || n == 1) {
      SendError(correlation, encoded.status());
      co_return;
    }
    n /= 2;
  }
  c::FrameWriter w = writer();
  c::BeginRecords(w, correlation, partition, n);
  for (std::size_t i = 0; i < n; ++i) c::EncodeRecordOffset(w, (*records)[i].offset);
  if (n > 0) w.Raw(batch);
  w.End();
  Flush();
}

}  // namespace junction::server
