#include "codec/wire.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "codec/byte_order.h"
#include "codec/record_batch.h"

namespace junction::codec {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

std::span<const std::byte> Bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::vector<std::byte> OneRecordBatch(std::string_view value) {
  RecordBatchBuilder builder;
  builder.Add(1'700'000'000'000, std::nullopt, value);
  return *builder.Build();
}

// Feeds `bytes` to a decoder `step` bytes at a time; returns the frames'
// types and payload sizes, and whether the decoder failed.
struct Fed {
  std::vector<std::pair<FrameType, std::size_t>> frames;
  std::optional<WireError> error;
  std::size_t max_capacity = 0;
};
Fed Feed(std::span<const std::byte> bytes, std::size_t step, std::uint32_t max_frame) {
  FrameDecoder decoder(max_frame);
  Fed fed;
  std::size_t pos = 0;
  while (pos < bytes.size() && !decoder.error()) {
    std::span<std::byte> room = decoder.Prepare(step);
    std::size_t n = std::min({step, room.size(), bytes.size() - pos});
    std::memcpy(room.data(), bytes.data() + pos, n);
    decoder.Commit(n);
    pos += n;
    fed.max_capacity = std::max(fed.max_capacity, decoder.capacity());
    while (std::optional<Frame> f = decoder.Next()) {
      fed.frames.emplace_back(f->type(), f->payload.size());
    }
  }
  fed.error = decoder.error();
  return fed;
}

TEST(WireTest, FramesSurviveAnySplitOfTheStream) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  EncodePing(w, FrameType::kPing, 42);
  std::vector<std::byte> batch = OneRecordBatch(std::string(5000, 'x'));
  BeginPublish(w, 7, "orders", {});
  w.Raw(batch);
  w.End();
  EncodeOk(w, 9);
  for (std::size_t step : {1, 3, 13, 4096, 1 << 20}) {
    Fed fed = Feed(out, step, kDefaultMaxFrameBytes);
    ASSERT_FALSE(fed.error) << step;
    ASSERT_EQ(fed.frames.size(), 3u) << step;
    EXPECT_EQ(fed.frames[0].first, FrameType::kPing);
    EXPECT_EQ(fed.frames[1].first, FrameType::kPublish);
    EXPECT_EQ(fed.frames[2].first, FrameType::kOk);
    EXPECT_EQ(fed.frames[2].second, 0u);
  }
}

TEST(WireTest, OversizedLengthFailsBeforeAnyAllocation) {
  for (std::uint32_t length : {0xFFFFFFFFu, kMinMaxFrameBytes + 1}) {
    std::byte header[kFrameHeaderSize] = {};
    StoreLE<std::uint32_t>(header, length);
    Fed fed = Feed(header, 1, kMinMaxFrameBytes);
    ASSERT_TRUE(fed.error);
    EXPECT_EQ(fed.error->code, ConnectionError::kFrameTooLarge);
    EXPECT_NE(fed.error->message.find(std::to_string(length)), std::string::npos);
    EXPECT_LE(fed.max_capacity, 64u);  // never sized for the claimed length
  }
}

TEST(WireTest, MalformedHeadersFail) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  EncodeOk(w, 1);
  std::vector<std::byte> flags = out;
  flags[5] = std::byte{1};
  Fed fed = Feed(flags, 64, kDefaultMaxFrameBytes);
  ASSERT_TRUE(fed.error);
  EXPECT_EQ(fed.error->code, ConnectionError::kMalformedFrame);
  EXPECT_NE(fed.error->message.find("flags"), std::string::npos);

  std::byte short_length[4];
  StoreLE<std::uint32_t>(short_length, 7);
  fed = Feed(short_length, 4, kDefaultMaxFrameBytes);
  ASSERT_TRUE(fed.error);
  EXPECT_EQ(fed.error->code, ConnectionError::kMalformedFrame);
}

TEST(WireTest, GarbageAfterAValidFrameIsAnErrorAfterThatFrame) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  EncodePing(w, FrameType::kPing, 1);
  for (char c : std::string_view("\xff\xff\xff\xffgarbage")) out.push_back(std::byte(c));
  Fed fed = Feed(out, 5, kDefaultMaxFrameBytes);
  ASSERT_EQ(fed.frames.size(), 1u);
  ASSERT_TRUE(fed.error);
  EXPECT_EQ(fed.error->code, ConnectionError::kFrameTooLarge);
}

TEST(WireTest, DecoderReusesItsBufferOnceGrown) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  for (int i = 0; i < 100; ++i) EncodePing(w, FrameType::kPing, i);
  FrameDecoder decoder(kDefaultMaxFrameBytes);
  std::size_t pos = 0;
  std::size_t capacity_after_first = 0;
  int frames = 0;
  while (pos < out.size()) {
    std::span<std::byte> room = decoder.Prepare(20);
    std::size_t n = std::min<std::size_t>(20, out.size() - pos);
    std::memcpy(room.data(), out.data() + pos, n);
    decoder.Commit(n);
    pos += n;
    while (decoder.Next()) ++frames;
    if (capacity_after_first == 0) capacity_after_first = decoder.capacity();
    EXPECT_EQ(decoder.capacity(), capacity_after_first);
  }
  EXPECT_EQ(frames, 100);
}

TEST(WireTest, PeersAreToldApartByTheirFirstBytes) {
  EXPECT_EQ(ClassifyPeer({kPreamble, kPreambleSize}), PeerKind::kJunction);
  EXPECT_EQ(ClassifyPeer({kPreamble, 3}), PeerKind::kIncomplete);
  EXPECT_EQ(ClassifyPeer({}), PeerKind::kIncomplete);
  std::byte tls[] = {std::byte{0x16}, std::byte{0x03}, std::byte{0x01}, std::byte{0x02}};
  EXPECT_EQ(ClassifyPeer(tls), PeerKind::kTls);
  EXPECT_EQ(ClassifyPeer({tls, 1}), PeerKind::kIncomplete);
  EXPECT_EQ(ClassifyPeer(Bytes("GET /metrics HTTP/1.1\r\n")), PeerKind::kHttp);
  EXPECT_EQ(ClassifyPeer(Bytes("POST / HTTP/1.1\r\n")), PeerKind::kHttp);
  EXPECT_EQ(ClassifyPeer(Bytes("GE")), PeerKind::kIncomplete);
  EXPECT_EQ(ClassifyPeer(Bytes("hello there")), PeerKind::kOther);
  EXPECT_EQ(ClassifyPeer(Bytes("\x8aJNC\r\n\x1a\r")), PeerKind::kOther);
  std::string http = HttpRefusal("127.0.0.1:9101");
  EXPECT_TRUE(http.starts_with("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_NE(http.find("http://127.0.0.1:9101/"), std::string::npos);
  EXPECT_EQ(TlsRefusal().size(), 7u);
}

TEST(WireTest, HandshakeRoundTripsAndChecksItsFields) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  EncodeHello(w, {.min_version = 1,
                  .max_version = 3,
                  .max_frame_bytes = 1u << 20,
                  .heartbeat = 2s,
                  .auto_create_topics = false,
                  .default_topic =
                      [] {
                        TopicOptions three;
                        three.partitions = 3;
                        return three;
                      }(),
                  .client = "junction-cli 0.1"});
  Result<Hello> hello = DecodeHello(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(hello.ok()) << hello.status();
  EXPECT_EQ(hello->max_version, 3);
  EXPECT_EQ(hello->max_frame_bytes, 1u << 20);
  EXPECT_EQ(hello->heartbeat, 2s);
  EXPECT_EQ(hello->client, "junction-cli 0.1");
  EXPECT_FALSE(hello->auto_create_topics);
  EXPECT_EQ(hello->default_topic.partitions, 3u);

  out.clear();
  EncodeHello(w, {.max_frame_bytes = 100, .client = ""});
  Result<Hello> tiny = DecodeHello(std::span(out).subspan(kFrameHeaderSize));
  EXPECT_EQ(tiny.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tiny.status().message().find("max_frame_bytes"), std::string::npos);
}

TEST(WireTest, PublishCarriesItsOptionsAndTheBatchUnchanged) {
  std::vector<std::byte> batch = OneRecordBatch("hello");
  std::vector<std::byte> out;
  FrameWriter w(out);
  PublishOptions options;
  options.partition = PartitionId(3);
  options.delay = 1500ms;
  BeginPublish(w, 11, "orders", options);
  w.Raw(batch);
  w.End();
  Result<PublishFrame> f = DecodePublish(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->topic, "orders");
  EXPECT_EQ(f->options.partition, PartitionId(3));
  EXPECT_EQ(f->options.delay, Duration(1500ms));
  EXPECT_FALSE(f->options.deliver_at);
  ASSERT_EQ(f->batch.size(), batch.size());
  EXPECT_EQ(std::memcmp(f->batch.data(), batch.data(), batch.size()), 0);

  // One byte more than the batch: refused, naming what is left over.
  out.push_back(std::byte{0});
  StoreLE<std::uint32_t>(out.data(), static_cast<std::uint32_t>(out.size() - 4));
  Result<PublishFrame> extra = DecodePublish(std::span(out).subspan(kFrameHeaderSize));
  EXPECT_EQ(extra.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(extra.status().message().find("left after the last field"), std::string::npos);

  // A batch_length past the frame's end.
  std::vector<std::byte> cut(out.begin(), out.end() - 10);
  Result<PublishFrame> short_batch = DecodePublish(std::span(cut).subspan(kFrameHeaderSize));
  EXPECT_NE(short_batch.status().message().find("past the frame's end"), std::string::npos);
}

TEST(WireTest, SubscribeRoundTripsEveryOption) {
  SubscribeOptions o;
  o.group = "billing";
  o.start = StartPosition::AtOffset(Offset(17));
  o.ordered = true;
  o.ack_deadline = 45s;
  o.max_deliveries = 7;
  o.backoff = {10ms, 2s};
  o.dead_letter_topic = "orders.dead";
  o.max_in_flight = 33;
  o.max_in_flight_bytes = 1 << 20;
  std::vector<std::byte> out;
  FrameWriter w(out);
  EncodeSubscribe(w, 5, "orders", o);
  Result<SubscribeFrame> f = DecodeSubscribe(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->topic, "orders");
  EXPECT_EQ(f->options.group, "billing");
  EXPECT_EQ(f->options.start.kind, StartPosition::Kind::kOffset);
  EXPECT_EQ(f->options.start.offset, Offset(17));
  EXPECT_TRUE(f->options.ordered);
  EXPECT_EQ(f->options.ack_deadline, Duration(45s));
  EXPECT_EQ(f->options.max_deliveries, 7u);
  EXPECT_EQ(f->options.backoff, (std::vector<Duration>{10ms, 2s}));
  EXPECT_EQ(f->options.dead_letter_topic, "orders.dead");
  EXPECT_EQ(f->options.max_in_flight, 33u);
  EXPECT_EQ(f->options.max_in_flight_bytes, 1u << 20);
}

TEST(WireTest, SubscribeRefusesMoreBackoffStepsThanTheLimit) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  w.Begin(FrameType::kSubscribe, 1);
  w.Str("t");
  w.Str("g");
  w.U8(0);
  w.Varint(0);
  w.I64(0);
  w.U8(0);
  w.Dur(1s);
  w.Varint(5);
  w.Varint(1'000'000);  // backoff_count
  w.End();
  Result<SubscribeFrame> f = DecodeSubscribe(std::span(out).subspan(kFrameHeaderSize));
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("backoff_count"), std::string::npos);
}

TEST(WireTest, FetchSaysHowManyAndHowLong) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  EncodeFetch(w, 3, {.stream = 4, .max_messages = 100, .timeout = Duration(0)});
  Result<FetchFrame> poll = DecodeFetch(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(poll.ok()) << poll.status();
  EXPECT_EQ(poll->stream, 4u);
  EXPECT_EQ(poll->max_messages, 100u);
  EXPECT_EQ(poll->timeout, Duration(0));
  out.clear();
  EncodeFetch(w, 3, {.stream = 4, .max_messages = 1, .timeout = std::nullopt});
  Result<FetchFrame> wait = DecodeFetch(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(wait.ok()) << wait.status();
  EXPECT_FALSE(wait->timeout);
  out.clear();
  EncodeFetch(w, 3, {.stream = 4, .max_messages = 0, .timeout = std::nullopt});
  EXPECT_FALSE(DecodeFetch(std::span(out).subspan(kFrameHeaderSize)).ok());
}

TEST(WireTest, DeliverCarriesHeadersThenTheBatchInVersionOne) {
  std::vector<std::byte> batch = OneRecordBatch("m");
  std::vector<std::byte> out;
  FrameWriter w(out);
  BeginDeliver(w, 12, 9, 1);
  EncodeDeliveryHeader(w, {PartitionId(2), Offset(300), DeliveryCount(4), 77});
  w.Raw(batch);
  w.End();
  std::vector<DeliveryHeader> headers;
  std::vector<DeliverBatch> batches;
  Result<DeliverFrame> f =
      DecodeDeliver(std::span(out).subspan(kFrameHeaderSize), 1, headers, batches);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->stream, 9u);
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0].partition, PartitionId(2));
  EXPECT_EQ(headers[0].offset, Offset(300));
  EXPECT_EQ(headers[0].attempt, DeliveryCount(4));
  EXPECT_EQ(headers[0].delivery_id, 77u);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_FALSE(batches[0].stored);
  EXPECT_EQ(batches[0].batch.size(), batch.size());
  // The same bytes are not a version 2 frame: no batch count.
  EXPECT_FALSE(DecodeDeliver(std::span(out).subspan(kFrameHeaderSize), 2, headers, batches).ok());
}

TEST(WireTest, DeliverCarriesStoredAndUnstoredBatchesInVersionTwo) {
  std::vector<std::byte> stored = OneRecordBatch("stored");
  SetBaseOffset(stored, Offset(300));
  std::vector<std::byte> unstored = OneRecordBatch("unstored");
  std::vector<std::byte> out;
  FrameWriter w(out);
  BeginDeliver(w, 12, 9, 2);
  EncodeDeliveryHeader(w, {PartitionId(2), Offset(300), DeliveryCount(1), 77});
  EncodeDeliveryHeader(w, {PartitionId(0), Offset(5), DeliveryCount(3), 78});
  BeginDeliverBatches(w, 2);
  EncodeDeliverBatch(w, {PartitionId(2), stored});
  EncodeDeliverBatch(w, {std::nullopt, unstored});
  w.End();
  std::vector<DeliveryHeader> headers;
  std::vector<DeliverBatch> batches;
  Result<DeliverFrame> f =
      DecodeDeliver(std::span(out).subspan(kFrameHeaderSize), 2, headers, batches);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->stream, 9u);
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers[1].delivery_id, 78u);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].stored, PartitionId(2));
  EXPECT_TRUE(std::ranges::equal(batches[0].batch, stored));
  EXPECT_FALSE(batches[1].stored);
  EXPECT_TRUE(std::ranges::equal(batches[1].batch, unstored));
}

TEST(WireTest, DeliverRefusesMoreBatchesThanDeliveriesAndNone) {
  std::vector<std::byte> batch = OneRecordBatch("m");
  for (std::size_t n : {std::size_t{0}, std::size_t{2}}) {
    std::vector<std::byte> out;
    FrameWriter w(out);
    BeginDeliver(w, 12, 9, 1);
    EncodeDeliveryHeader(w, {PartitionId(0), Offset(0), DeliveryCount(1), 1});
    BeginDeliverBatches(w, n);
    for (std::size_t i = 0; i < n; ++i) EncodeDeliverBatch(w, {std::nullopt, batch});
    w.End();
    std::vector<DeliveryHeader> headers;
    std::vector<DeliverBatch> batches;
    Result<DeliverFrame> f =
        DecodeDeliver(std::span(out).subspan(kFrameHeaderSize), 2, headers, batches);
    EXPECT_FALSE(f.ok()) << n;
  }
}

TEST(WireTest, AcksAreReadOneAtATime) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  BeginAck(w, 3, 3);
  EncodeAckEntry(w, {AckKind::kAck, 5, 10, std::nullopt, {}});
  EncodeAckEntry(w, {AckKind::kNack, 5, 11, 250ms, "boom"});
  EncodeAckEntry(w, {AckKind::kNack, 6, 12, std::nullopt, ""});
  w.End();
  AckReader reader{std::span(out).subspan(kFrameHeaderSize)};
  EXPECT_EQ(reader.count(), 3u);
  std::vector<AckEntry> acks;
  while (std::optional<AckEntry> a = reader.Next()) acks.push_back(*a);
  ASSERT_TRUE(reader.status().ok()) << reader.status();
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[0].kind, AckKind::kAck);
  EXPECT_EQ(acks[0].delivery_id, 10u);
  EXPECT_EQ(acks[2].stream, 6u);
  EXPECT_EQ(acks[1].delay, Duration(250ms));
  EXPECT_EQ(acks[1].error, "boom");
  EXPECT_FALSE(acks[2].delay);

  // A count the bytes cannot hold is refused up front.
  std::vector<std::byte> lie;
  FrameWriter lw(lie);
  BeginAck(lw, 3, 1000);
  EncodeAckEntry(lw, {AckKind::kAck, 5, 10, std::nullopt, {}});
  lw.End();
  AckReader liar{std::span(lie).subspan(kFrameHeaderSize)};
  EXPECT_FALSE(liar.Next());
  EXPECT_NE(liar.status().message().find("count"), std::string::npos);
}

TEST(WireTest, AckedAndPublishedResultsRoundTrip) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  BeginAcked(w, 1, 2);
  EncodeAckedResult(w, OkStatus());
  EncodeAckedResult(w, FailedPreconditionError("stale attempt"));
  w.End();
  std::vector<Status> statuses;
  ASSERT_TRUE(DecodeAcked(std::span(out).subspan(kFrameHeaderSize), statuses).ok());
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_EQ(statuses[1], FailedPreconditionError("stale attempt"));

  out.clear();
  BeginPublished(w, 1, 2);
  EncodePublishedResult(w, {PartitionId(1), Offset(99), false});
  EncodePublishedResult(w, {PartitionId(0), Offset(3), true});
  w.End();
  std::vector<PublishResult> results;
  ASSERT_TRUE(DecodePublished(std::span(out).subspan(kFrameHeaderSize), results).ok());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].offset, Offset(99));
  EXPECT_TRUE(results[1].duplicate);
}

TEST(WireTest, ErrorFramesMapToStatuses) {
  EXPECT_EQ(ErrorFrameStatus({5, "no topic 'x'"}), NotFoundError("no topic 'x'"));
  Status closed = ErrorFrameStatus({103, "frame length 99 is above the limit"});
  EXPECT_EQ(closed.code(), StatusCode::kUnavailable);
  EXPECT_NE(closed.message().find("FRAME_TOO_LARGE"), std::string::npos);
  std::vector<std::byte> out;
  FrameWriter w(out);
  EncodeError(w, 0, 0, "");
  EXPECT_FALSE(DecodeError(std::span(out).subspan(kFrameHeaderSize)).ok());
}

TEST(WireTest, GroupInfoSeekAndRequestFramesRoundTrip) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  GroupInfo info{"orders", "billing", 2, 5, 100, 1, 0, "orders.billing.dlq"};
  EncodeGroupInfo(w, 4, info);
  Result<GroupInfo> g = DecodeGroupInfo(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->group, "billing");
  EXPECT_EQ(g->backlog, 100u);
  EXPECT_EQ(g->dead_letter_topic, "orders.billing.dlq");

  out.clear();
  Timestamp t = Timestamp(Duration(1'800'000'000'123'456'789));
  EncodeSeek(w, 4, {"orders", "billing", StartPosition::AtTime(t)});
  Result<SeekFrame> s = DecodeSeek(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->position.kind, StartPosition::Kind::kTime);
  EXPECT_EQ(s->position.time, t);

  out.clear();
  std::vector<std::byte> batch = OneRecordBatch("q");
  BeginRequest(w, 8, "prices", 3s);
  w.Raw(batch);
  w.End();
  Result<RequestFrame> r = DecodeRequest(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->topic, "prices");
  EXPECT_EQ(r->timeout, Duration(3s));
  EXPECT_EQ(r->batch.size(), batch.size());
}

TEST(WireTest, CapabilitiesTravelAsBits) {
  Capabilities all;
  all.durable = all.ordered_groups = all.delayed_delivery = all.dedupe = all.seek = true;
  all.dead_letters = all.request_reply = true;
  std::uint16_t bits = CapabilityBits(all);
  EXPECT_EQ(bits, 0x1FF);
  Result<Capabilities> back = CapabilitiesFromBits(bits);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->durable && back->seek && back->ephemeral);
  Capabilities few;
  few.groups = false;
  Result<Capabilities> none = CapabilitiesFromBits(CapabilityBits(few));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->groups);
  EXPECT_TRUE(none->ephemeral);
  EXPECT_FALSE(CapabilitiesFromBits(0x200).ok());
}

// The fuzzer's find: TOPICS holding only the smallest topics (7 bytes each)
// were refused by a count bound that assumed 8.
TEST(WireTest, TopicsOfTheSmallestSizeRoundTrip) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  std::vector<TopicInfo> topics(9);
  for (TopicInfo& t : topics) t.options.dedupe_window = Duration::zero();  // one byte
  EncodeTopics(w, 1, topics);
  EXPECT_EQ(out.size(), kFrameHeaderSize + 1 + 9 * 7);
  Result<std::vector<TopicInfo>> back = DecodeTopics(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->size(), 9u);
  // One more topic than the bytes left can hold is still refused before
  // anything is reserved.
  out[kFrameHeaderSize] = std::byte{10};
  EXPECT_FALSE(DecodeTopics(std::span(out).subspan(kFrameHeaderSize)).ok());
}

TEST(WireTest, AdminFramesRoundTrip) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  TopicInfo topic{.name = "orders",
                  .options = {.partitions = 2, .retention_bytes = 1u << 30},
                  .partitions = {{PartitionId(0), Offset(5), Offset(9), 4096},
                                 {PartitionId(1), Offset(0), Offset(3), 512}},
                  .groups = {"billing", "shipping"},
                  .subscribers = 3};
  std::vector<TopicInfo> topics{topic, TopicInfo{.name = "empty"}};
  topics[1].partitions.push_back({PartitionId(0), Offset(0), Offset(0), 0});
  EncodeTopics(w, 3, topics);
  Result<std::vector<TopicInfo>> t = DecodeTopics(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].name, "orders");
  EXPECT_EQ((*t)[0].options.retention_bytes, 1u << 30);
  EXPECT_EQ((*t)[0].partitions[1].partition, PartitionId(1));
  EXPECT_EQ((*t)[0].messages(), 7u);
  EXPECT_EQ((*t)[0].bytes(), 4608u);
  EXPECT_EQ((*t)[0].groups, (std::vector<std::string>{"billing", "shipping"}));
  EXPECT_EQ((*t)[0].subscribers, 3u);
  EXPECT_EQ((*t)[1].messages(), 0u);

  out.clear();
  std::vector<GroupInfo> groups{{"orders", "billing", 1, 2, 3, 4, 5, "orders.billing.dlq"}};
  EncodeGroups(w, 4, groups);
  Result<std::vector<GroupInfo>> g = DecodeGroups(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->size(), 1u);
  EXPECT_EQ((*g)[0].dropped_by_retention, 5u);

  out.clear();
  EncodeReadTopic(w, 5, {"orders", PartitionId(1), Offset(7), 100});
  Result<ReadTopicFrame> r = DecodeReadTopic(std::span(out).subspan(kFrameHeaderSize));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->topic, "orders");
  EXPECT_EQ(r->partition, PartitionId(1));
  EXPECT_EQ(r->from, Offset(7));
  EXPECT_EQ(r->max_messages, 100u);

  out.clear();
  std::vector<std::byte> batch = OneRecordBatch("q");
  BeginRecords(w, 6, PartitionId(1), 1);
  EncodeRecordOffset(w, Offset(7));
  w.Raw(batch);
  w.End();
  std::vector<Offset> offsets;
  Result<RecordsFrame> rec = DecodeRecords(std::span(out).subspan(kFrameHeaderSize), offsets);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(offsets, std::vector<Offset>{Offset(7)});
  EXPECT_EQ(rec->batch.size(), batch.size());

  out.clear();
  BeginRecords(w, 6, PartitionId(0), 0);
  w.End();
  EXPECT_TRUE(DecodeRecords(std::span(out).subspan(kFrameHeaderSize), offsets).ok());
  EXPECT_TRUE(offsets.empty());
}

TEST(WireTest, AdminFramesWithLyingCountsFailBeforeReserving) {
  std::vector<std::byte> out;
  FrameWriter w(out);
  w.Begin(FrameType::kTopics, 1);
  w.Varint(1'000'000'000);  // topics, with nothing after
  w.End();
  Result<std::vector<TopicInfo>> t = DecodeTopics(std::span(out).subspan(kFrameHeaderSize));
  EXPECT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("topics"), std::string::npos) << t.status();

  out.clear();
  w.Begin(FrameType::kRecords, 1);
  w.Varint(0);
  w.Varint(1'000'000);  // offsets
  w.U64(1);
  w.End();
  std::vector<Offset> offsets;
  EXPECT_FALSE(DecodeRecords(std::span(out).subspan(kFrameHeaderSize), offsets).ok());
  EXPECT_LT(offsets.capacity(), 16u);
}

TEST(WireTest, FrameTypesHaveNames) {
  EXPECT_EQ(FrameTypeName(0x11), "PUBLISH");
  EXPECT_EQ(FrameTypeName(0x4f), "0x4f");
  EXPECT_TRUE(IsKnownFrameType(0x35));
  EXPECT_FALSE(IsKnownFrameType(0x36));
  EXPECT_TRUE(IsReservedAdminType(0x40));
  EXPECT_EQ(FrameTypeName(0x48), "PURGE_TOPIC");
  EXPECT_EQ(ConnectionErrorName(ConnectionError::kTooManyConnections), "TOO_MANY_CONNECTIONS");
}

}  // namespace
}  // namespace junction::codec
