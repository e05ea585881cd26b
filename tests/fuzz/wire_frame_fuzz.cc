// Fuzzes the wire protocol's decoders (docs/formats/wire.md). The first
// input byte picks how the rest is split into reads (the decoder must give
// the same frames for any split); every frame is then decoded by its type,
// and every one that decodes is encoded again and must decode to the same
// values (a round-trip oracle). The frame limit is small so that the
// decoder's length check is reached often.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "codec/wire.h"
#include "junction/result.h"

namespace {

namespace c = junction::codec;
using junction::Result;

constexpr std::uint32_t kMaxFrame = c::kMinMaxFrameBytes;

std::span<const std::byte> PayloadOf(const std::vector<std::byte>& frame) {
  return std::span(frame).subspan(c::kFrameHeaderSize);
}

bool SameOptions(const junction::SubscribeOptions& a, const junction::SubscribeOptions& b) {
  return a.group == b.group && a.start.kind == b.start.kind && a.start.offset == b.start.offset &&
         a.start.time == b.start.time && a.ordered == b.ordered &&
         a.ack_deadline == b.ack_deadline && a.max_deliveries == b.max_deliveries &&
         a.backoff == b.backoff && a.dead_letter_topic == b.dead_letter_topic &&
         a.max_in_flight == b.max_in_flight && a.max_in_flight_bytes == b.max_in_flight_bytes;
}

void RoundTrip(const c::Frame& frame) {
  std::vector<std::byte> out;
  c::FrameWriter w(out);
  switch (frame.type()) {
    case c::FrameType::kPublish: {
      Result<c::PublishFrame> f = c::DecodePublish(frame.payload);
      if (!f.ok()) return;
      c::BeginPublish(w, 1, f->topic, f->options);
      w.Raw(f->batch);
      w.End();
      Result<c::PublishFrame> g = c::DecodePublish(PayloadOf(out));
      JUNCTION_CHECK(g.ok()) << g.status();
      JUNCTION_CHECK(g->topic == f->topic && g->options.partition == f->options.partition &&
                     g->options.deliver_at == f->options.deliver_at &&
                     g->options.delay == f->options.delay && g->batch.size() == f->batch.size());
      return;
    }
    case c::FrameType::kSubscribe: {
      Result<c::SubscribeFrame> f = c::DecodeSubscribe(frame.payload);
      if (!f.ok()) return;
      c::EncodeSubscribe(w, 1, f->topic, f->options);
      Result<c::SubscribeFrame> g = c::DecodeSubscribe(PayloadOf(out));
      JUNCTION_CHECK(g.ok()) << g.status();
      JUNCTION_CHECK(g->topic == f->topic && SameOptions(g->options, f->options));
      return;
    }
    case c::FrameType::kAck: {
      c::AckReader reader(frame.payload);
      std::vector<c::AckEntry> acks;
      while (std::optional<c::AckEntry> a = reader.Next()) acks.push_back(*a);
      if (!reader.status().ok()) return;
      JUNCTION_CHECK(acks.size() == reader.count());
      c::BeginAck(w, 1, acks.size());
      for (const c::AckEntry& a : acks) c::EncodeAckEntry(w, a);
      w.End();
      c::AckReader again(PayloadOf(out));
      std::size_t i = 0;
      while (std::optional<c::AckEntry> a = again.Next()) {
        JUNCTION_CHECK(i < acks.size());
        const c::AckEntry& b = acks[i++];
        JUNCTION_CHECK(a->kind == b.kind && a->stream == b.stream &&
                       a->delivery_id == b.delivery_id && a->delay == b.delay &&
                       a->error == b.error);
      }
      JUNCTION_CHECK(again.status().ok() && i == acks.size()) << again.status();
      return;
    }
    case c::FrameType::kDeliver: {
      // Both versions' layouts; each decoded frame must encode back to one
      // that decodes the same.
      for (std::uint16_t version : {std::uint16_t{1}, c::kWireVersion}) {
        std::vector<c::DeliveryHeader> headers;
        std::vector<c::DeliverBatch> batches;
        Result<c::DeliverFrame> f = c::DecodeDeliver(frame.payload, version, headers, batches);
        if (!f.ok()) continue;
        JUNCTION_CHECK(!batches.empty() && batches.size() <= headers.size());
        std::vector<std::byte> encoded;
        c::FrameWriter again_w(encoded);
        c::BeginDeliver(again_w, 1, f->stream, headers.size());
        for (const c::DeliveryHeader& h : headers) c::EncodeDeliveryHeader(again_w, h);
        if (version == 1) {
          again_w.Raw(batches.front().batch);
        } else {
          c::BeginDeliverBatches(again_w, batches.size());
          for (const c::DeliverBatch& b : batches) c::EncodeDeliverBatch(again_w, b);
        }
        again_w.End();
        std::vector<c::DeliveryHeader> again;
        std::vector<c::DeliverBatch> again_batches;
        Result<c::DeliverFrame> g =
            c::DecodeDeliver(PayloadOf(encoded), version, again, again_batches);
        JUNCTION_CHECK(g.ok()) << g.status();
        JUNCTION_CHECK(g->stream == f->stream && again.size() == headers.size() &&
                       again_batches.size() == batches.size());
        for (std::size_t i = 0; i < headers.size(); ++i) {
          JUNCTION_CHECK(again[i].partition == headers[i].partition &&
                         again[i].offset == headers[i].offset &&
                         again[i].attempt == headers[i].attempt &&
                         again[i].delivery_id == headers[i].delivery_id);
        }
        for (std::size_t i = 0; i < batches.size(); ++i) {
          JUNCTION_CHECK(again_batches[i].stored == batches[i].stored &&
                         std::ranges::equal(again_batches[i].batch, batches[i].batch));
        }
      }
      return;
    }
    case c::FrameType::kPublished: {
      std::vector<junction::PublishResult> results;
      if (!c::DecodePublished(frame.payload, results).ok()) return;
      c::BeginPublished(w, 1, results.size());
      for (const junction::PublishResult& r : results) c::EncodePublishedResult(w, r);
      w.End();
      std::vector<junction::PublishResult> again;
      JUNCTION_CHECK(c::DecodePublished(PayloadOf(out), again).ok());
      JUNCTION_CHECK(again.size() == results.size());
      return;
    }
    case c::FrameType::kAcked: {
      std::vector<junction::Status> statuses;
      if (!c::DecodeAcked(frame.payload, statuses).ok()) return;
      c::BeginAcked(w, 1, statuses.size());
      for (const junction::Status& s : statuses) c::EncodeAckedResult(w, s);
      w.End();
      std::vector<junction::Status> again;
      JUNCTION_CHECK(c::DecodeAcked(PayloadOf(out), again).ok());
      JUNCTION_CHECK(again == statuses);
      return;
    }
    case c::FrameType::kHello:
      (void)c::DecodeHello(frame.payload);
      return;
    case c::FrameType::kWelcome:
      (void)c::DecodeWelcome(frame.payload);
      return;
    case c::FrameType::kPing:
    case c::FrameType::kPong:
      (void)c::DecodePing(frame.payload);
      return;
    case c::FrameType::kError: {
      Result<c::ErrorFrame> e = c::DecodeError(frame.payload);
      if (e.ok()) JUNCTION_CHECK(!c::ErrorFrameStatus(*e).ok());
      return;
    }
    case c::FrameType::kCreateTopic:
      (void)c::DecodeCreateTopic(frame.payload);
      return;
    case c::FrameType::kSubscribed:
      (void)c::DecodeSubscribed(frame.payload);
      return;
    case c::FrameType::kFetch:
      (void)c::DecodeFetch(frame.payload);
      return;
    case c::FrameType::kCloseStream:
      (void)c::DecodeCloseStream(frame.payload);
      return;
    case c::FrameType::kSeek:
      (void)c::DecodeSeek(frame.payload);
      return;
    case c::FrameType::kDescribeGroup:
      (void)c::DecodeDescribeGroup(frame.payload);
      return;
    case c::FrameType::kGroupInfo:
      (void)c::DecodeGroupInfo(frame.payload);
      return;
    case c::FrameType::kRequest:
      (void)c::DecodeRequest(frame.payload);
      return;
    case c::FrameType::kReply:
      (void)c::DecodeBatchOnly(frame.payload, "REPLY");
      return;
    case c::FrameType::kRespond:
      (void)c::DecodeRespond(frame.payload);
      return;
    case c::FrameType::kResponding:
      (void)c::DecodeResponding(frame.payload);
      return;
    case c::FrameType::kRequestIn:
      (void)c::DecodeRequestIn(frame.payload);
      return;
    case c::FrameType::kReplyTo:
      (void)c::DecodeReplyTo(frame.payload);
      return;
    case c::FrameType::kGoaway:
    case c::FrameType::kOk:
    case c::FrameType::kListTopics:
      (void)c::DecodeEmpty(frame.payload, "OK");
      return;
    case c::FrameType::kDescribeTopic:
    case c::FrameType::kListGroups:
    case c::FrameType::kDeleteTopic:
    case c::FrameType::kPurgeTopic:
      (void)c::DecodeTopicOnly(frame.payload, "DESCRIBE_TOPIC");
      return;
    case c::FrameType::kTopics: {
      Result<std::vector<junction::TopicInfo>> topics = c::DecodeTopics(frame.payload);
      if (!topics.ok()) return;
      std::vector<std::byte> out;
      c::FrameWriter w(out);
      c::EncodeTopics(w, 1, *topics);
      Result<std::vector<junction::TopicInfo>> again = c::DecodeTopics(PayloadOf(out));
      JUNCTION_CHECK(again.ok() && again->size() == topics->size()) << "TOPICS round trip";
      return;
    }
    case c::FrameType::kGroups: {
      Result<std::vector<junction::GroupInfo>> groups = c::DecodeGroups(frame.payload);
      if (!groups.ok()) return;
      std::vector<std::byte> out;
      c::FrameWriter w(out);
      c::EncodeGroups(w, 1, *groups);
      Result<std::vector<junction::GroupInfo>> again = c::DecodeGroups(PayloadOf(out));
      JUNCTION_CHECK(again.ok() && again->size() == groups->size()) << "GROUPS round trip";
      return;
    }
    case c::FrameType::kReadTopic:
      (void)c::DecodeReadTopic(frame.payload);
      return;
    case c::FrameType::kRecords: {
      std::vector<junction::Offset> offsets;
      (void)c::DecodeRecords(frame.payload, offsets);
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t step = std::size_t{data[0]} + 1;
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  (void)c::ClassifyPeer(input);
  c::FrameDecoder decoder(kMaxFrame);
  std::size_t pos = 0;
  std::size_t frames = 0;
  while (pos < input.size() && !decoder.error()) {
    std::span<std::byte> room = decoder.Prepare(step);
    std::size_t n = std::min({step, room.size(), input.size() - pos});
    std::memcpy(room.data(), input.data() + pos, n);
    decoder.Commit(n);
    pos += n;
    // Never holds more than the largest frame allowed plus one read.
    JUNCTION_CHECK(decoder.capacity() <= kMaxFrame + 4 + 2 * step) << decoder.capacity();
    while (std::optional<c::Frame> frame = decoder.Next()) {
      ++frames;
      RoundTrip(*frame);
    }
  }
  (void)frames;
  return 0;
}
